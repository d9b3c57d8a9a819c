"""Whether this CPU runs bf16 natively, and the fp32 fallback of `--bf16` training on CPUs that emulate it.

On a CPU without bf16 instructions (no avx512_bf16 or amx_bf16: AVX2-only x86, say) torch emulates bf16 and a
matrix product runs 20-65x slower than in fp32, so a `--bf16` run crawls. `cpu_bf16_check` looks once per process
(torch's CPU capability and flags, and a timed bf16-vs-fp32 matmul, which decides); `check_training_bf16`, called
by `SoraTrainingArguments` and `SoraTrainer`, trains such runs in fp32 with one warning unless `SORA_FORCE_BF16=1`.
"""

from __future__ import annotations

import functools
import math
import os
import time
from dataclasses import dataclass

import torch
from transformers.utils import logging

from .errors import UserInputError

logger = logging.get_logger(__name__)

FORCE_BF16_ENV = "SORA_FORCE_BF16"
# Native bf16 multiplies in about the fp32 time or less (0.5x with avx512_bf16 here); emulation takes 20-65x.
NATIVE_SLOWDOWN_LIMIT = 2.0
MATMUL_SIZE = 256
MATMUL_REPEATS = 5


@dataclass(frozen=True)
class CpuBf16Check:
    """What `cpu_bf16_check` found: the measured bf16/fp32 matmul time ratio decides `native`."""

    native: bool
    slowdown: float  # bf16 time / fp32 time of a MATMUL_SIZE^3 product, best of MATMUL_REPEATS each
    capability: str  # torch.backends.cpu.get_cpu_capability(): "AVX512", "AVX2", "DEFAULT", ...
    avx512_bf16: bool
    amx_bf16: bool

    def describe(self) -> str:
        """One line for logs and benchmark headers."""
        flags = "/".join(name for name in ("avx512_bf16", "amx_bf16") if getattr(self, name))
        return (
            f"bf16 {'native' if self.native else 'EMULATED'} on this CPU (torch CPU capability {self.capability}, "
            f"{flags or 'no avx512_bf16/amx_bf16'}): a {MATMUL_SIZE}^3 bf16 matmul takes {self.slowdown:.2f}x "
            "the fp32 time"
        )


def _cpu_flags() -> dict:
    """torch's cpuinfo flags (`avx512_bf16`, `amx_bf16`, ...); empty where this torch does not report them."""
    try:
        return dict(torch._C._cpu._get_cpu_capability())
    except (AttributeError, RuntimeError, TypeError):
        return {}


def _matmul_slowdown() -> float:
    """bf16 / fp32 time of one CPU matrix product (interleaved repeats, best of each)."""
    generator = torch.Generator().manual_seed(0)  # the global RNG stays untouched
    fp32 = [torch.randn(MATMUL_SIZE, MATMUL_SIZE, generator=generator) for _ in range(2)]
    bf16 = [tensor.to(torch.bfloat16) for tensor in fp32]
    best = {torch.float32: math.inf, torch.bfloat16: math.inf}
    with torch.inference_mode(), torch.autocast("cpu", enabled=False):
        torch.mm(*fp32), torch.mm(*bf16)  # warm-up: oneDNN builds its kernels on the first call
        for _ in range(MATMUL_REPEATS):
            for a, b in (fp32, bf16):
                start = time.perf_counter()
                torch.mm(a, b)
                best[a.dtype] = min(best[a.dtype], time.perf_counter() - start)
    return best[torch.bfloat16] / max(best[torch.float32], 1e-9)


@functools.cache
def cpu_bf16_check() -> CpuBf16Check:
    """Whether this CPU runs bf16 natively, measured once per process (milliseconds; ~0.1 s where emulated)."""
    flags = _cpu_flags()
    slowdown = _matmul_slowdown()
    return CpuBf16Check(
        native=slowdown <= NATIVE_SLOWDOWN_LIMIT,
        slowdown=slowdown,
        capability=torch.backends.cpu.get_cpu_capability(),
        avx512_bf16=bool(flags.get("avx512_bf16", False)),
        amx_bf16=bool(flags.get("amx_bf16", False)),
    )


def cpu_runs_bf16_natively() -> bool:
    """True where bf16 pays on this CPU (see `cpu_bf16_check`)."""
    return cpu_bf16_check().native


def bf16_forced() -> bool:
    """`SORA_FORCE_BF16=1`: keep bf16 training on a CPU that emulates it."""
    value = os.environ.get(FORCE_BF16_ENV, "").strip().lower()
    if value in ("", "0", "false", "no"):
        return False
    if value in ("1", "true", "yes"):
        return True
    raise UserInputError(
        f"{FORCE_BF16_ENV}={value!r}: set it to 1 to train in bf16 on a CPU that emulates it, or 0 (or unset it) "
        "to let the run fall back to fp32 there."
    )


@functools.cache
def _warn_once(message: str) -> None:
    logger.warning(message)


def check_training_bf16(args) -> bool:
    """Before a run trains in bf16 on the CPU: where the CPU emulates bf16, switch `args` to fp32 (one warning with the
    measured slowdown) unless `SORA_FORCE_BF16=1`. Returns whether the run still uses bf16; `args` may be None."""
    if args is None:
        return False
    wants_bf16 = args.bf16 or args.bf16_full_eval or getattr(args, "mixed_precision", None) == "bf16"
    if not wants_bf16 or args.device.type != "cpu":
        return wants_bf16
    check = cpu_bf16_check()
    if check.native:
        return True
    if bf16_forced():
        _warn_once(
            f"{check.describe()}; training in bf16 anyway because {FORCE_BF16_ENV}=1: expect each step to take "
            "many times longer than in fp32."
        )
        return True
    _warn_once(
        f"{check.describe()}, so --bf16 would make training crawl: training in fp32 instead (bf16=False). "
        f"Set {FORCE_BF16_ENV}=1 to train in bf16 anyway."
    )
    args.bf16 = False
    args.bf16_full_eval = False
    if getattr(args, "mixed_precision", None) == "bf16":  # `accelerate launch --mixed_precision bf16`
        args.mixed_precision = "no"
    return False
