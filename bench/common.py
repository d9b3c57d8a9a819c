"""What every benchmark prints beside its numbers: the CPU, whether it runs bf16 natively, and torch's thread count."""

import platform
import time

import torch

from sora_hf.precision import cpu_bf16_check

EMULATED_BF16_REASON = (
    "this CPU emulates bf16 (sora_hf.precision.cpu_bf16_check), where bf16 rows would not pay"
)


def cpu_capability() -> dict[str, object]:
    """The CPU's name, its bf16 support (`sora_hf.precision.cpu_bf16_check`: flags and the measured bf16/fp32
    matmul time ratio, which decides `bf16_native`), and torch's threads and version."""
    name = platform.processor() or "unknown"
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name") and name in ("unknown", "x86_64", ""):
                    name = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    check = cpu_bf16_check()
    return {
        "cpu": name,
        "torch_cpu_capability": check.capability,
        "avx512_bf16": check.avx512_bf16,
        "amx_bf16": check.amx_bf16,
        "bf16_native": check.native,
        "bf16_matmul_slowdown": check.slowdown,
        "torch_threads": torch.get_num_threads(),
        "torch": torch.__version__,
    }


def describe(capability: dict[str, object]) -> str:
    """One line for the top of a benchmark's output."""
    bf16 = (
        "native"
        if capability["bf16_native"]
        else "EMULATED: bf16 rows are skipped or marked, they do not pay here"
    )
    return (
        f"CPU: {capability['cpu']} | torch capability {capability['torch_cpu_capability']} | "
        f"avx512_bf16: {capability['avx512_bf16']} | amx_bf16: {capability['amx_bf16']} | "
        f"bf16 {bf16} (256^3 bf16 matmul at {capability['bf16_matmul_slowdown']:.2f}x the fp32 time) | "
        f"torch {capability['torch']}, {capability['torch_threads']} threads"
    )


def skip_emulated_bf16(capability: dict[str, object], what: str) -> bool:
    """True (after printing why) when `what` is a bf16 row this CPU would only emulate."""
    if capability["bf16_native"]:
        return False
    print(
        f"{what} skipped: {EMULATED_BF16_REASON} ({capability['bf16_matmul_slowdown']:.0f}x slower than fp32)"
    )
    return True


def matmul_flops(
    dtype: torch.dtype = torch.bfloat16, size: int = 4096, repeats: int = 3, device: str = "cpu"
) -> float:
    """Best FLOP/s of a size^3 matrix product in `dtype` (the peak that model FLOP utilisation is measured against)."""
    a = torch.randn(size, size, dtype=dtype, device=device)
    b = torch.randn(size, size, dtype=dtype, device=device)
    synchronize = torch.cuda.synchronize if a.is_cuda else lambda: None
    torch.matmul(a, b)
    best = 0.0
    for _ in range(repeats):
        synchronize()
        start = time.perf_counter()
        torch.matmul(a, b)
        synchronize()
        best = max(best, 2 * size**3 / (time.perf_counter() - start))
    return best
