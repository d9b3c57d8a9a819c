"""What every benchmark prints beside its numbers: the CPU, its bf16 support and torch's thread count."""

import platform

import torch


def cpu_capability() -> dict[str, object]:
    """The CPU's name, whether it runs bf16 natively (avx512_bf16 / amx_bf16), and torch's threads and version."""
    name, flags = platform.processor() or "unknown", set()
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name") and name in ("unknown", "x86_64", ""):
                    name = line.split(":", 1)[1].strip()
                elif line.startswith("flags"):
                    flags = set(line.split(":", 1)[1].split())
                    break
    except OSError:
        pass
    return {
        "cpu": name,
        "avx512_bf16": "avx512_bf16" in flags,
        "amx_bf16": "amx_bf16" in flags,
        "torch_threads": torch.get_num_threads(),
        "torch": torch.__version__,
    }


def describe(capability: dict[str, object]) -> str:
    """One line for the top of a benchmark's output."""
    native = capability["avx512_bf16"] or capability["amx_bf16"]
    return (
        f"CPU: {capability['cpu']} | avx512_bf16: {capability['avx512_bf16']} | amx_bf16: {capability['amx_bf16']} "
        f"| bf16 {'native' if native else 'EMULATED (~65x slower than fp32): bf16 rows do not pay here'} | "
        f"torch {capability['torch']}, {capability['torch_threads']} threads"
    )
