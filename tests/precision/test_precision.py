"""sora_hf.precision: the CPU bf16 check, and `--bf16` training falling back to fp32 where the CPU emulates bf16.

The check's answer is forced both ways (the component under test is the fallback); the check itself is run for real
on this CPU and, in a subprocess, with oneDNN held to AVX2 (`DNNL_MAX_CPU_ISA=AVX2`), where bf16 is emulated.
"""

import json
import logging
import os
import platform
import subprocess
import sys

import pytest
import torch
from conftest import TINY_SORA
from datasets import Dataset
from transformers import TrainingArguments

import sora_hf.precision as precision
from sora_hf import SoraConfig, SoraForSequenceClassification
from sora_hf.errors import UserInputError
from sora_hf.precision import FORCE_BF16_ENV, CpuBf16Check, check_training_bf16, cpu_bf16_check
from sora_hf.training.arguments import SoraTrainingArguments
from sora_hf.training.trainer import SoraTrainer

EMULATED = CpuBf16Check(native=False, slowdown=41.5, capability="AVX2", avx512_bf16=False, amx_bf16=False)
NATIVE = CpuBf16Check(native=True, slowdown=0.5, capability="AVX512", avx512_bf16=True, amx_bf16=False)


@pytest.fixture
def cpu(monkeypatch, caplog):
    """Force the check's answer (`cpu(EMULATED)`), with a fresh warn-once state and no force flag."""
    monkeypatch.delenv(FORCE_BF16_ENV, raising=False)
    monkeypatch.delenv("ACCELERATE_MIXED_PRECISION", raising=False)
    precision._warn_once.cache_clear()
    caplog.set_level(logging.WARNING, logger="sora_hf.precision")

    def force(answer: CpuBf16Check) -> None:
        monkeypatch.setattr(precision, "cpu_bf16_check", lambda: answer)

    yield force
    precision._warn_once.cache_clear()


def warnings_logged(caplog) -> list[str]:
    return [record.getMessage() for record in caplog.records if record.name == "sora_hf.precision"]


def train_and_record_dtype(args: TrainingArguments) -> tuple[SoraTrainer, set[torch.dtype]]:
    """Two real training steps of a tiny classifier; the dtypes its first Linear layer computed in."""
    torch.manual_seed(0)
    model = SoraForSequenceClassification(SoraConfig(**TINY_SORA))
    generator = torch.Generator().manual_seed(0)
    ids = torch.randint(5, TINY_SORA["vocab_size"], (8, 12), generator=generator).tolist()
    dataset = Dataset.from_dict({"input_ids": ids, "labels": [i % 3 for i in range(8)]})
    trainer = SoraTrainer(model=model, args=args, train_dataset=dataset)
    dtypes: set[torch.dtype] = set()
    linear = next(module for module in model.modules() if isinstance(module, torch.nn.Linear))
    handle = linear.register_forward_hook(lambda module, inputs, output: dtypes.add(output.dtype))
    trainer.train()
    handle.remove()
    return trainer, dtypes


def sora_args(tmp_path, **fields) -> SoraTrainingArguments:
    return SoraTrainingArguments(
        output_dir=str(tmp_path),
        per_device_train_batch_size=4,
        max_steps=2,
        report_to=[],
        save_strategy="no",
        use_cpu=True,
        **fields,
    )


def test_emulated_bf16_trains_in_fp32_with_one_warning(cpu, caplog, tmp_path):
    cpu(EMULATED)
    args = sora_args(tmp_path, bf16=True)
    assert args.bf16 is False and args.mixed_precision == "no"  # switched when the arguments are made
    (message,) = warnings_logged(caplog)
    assert "EMULATED" in message and "41.50x" in message and "AVX2" in message
    assert "training in fp32" in message and f"{FORCE_BF16_ENV}=1" in message

    trainer, dtypes = train_and_record_dtype(args)
    assert dtypes == {torch.float32}
    assert trainer.accelerator.mixed_precision == "no"
    assert trainer.state.global_step == 2

    sora_args(tmp_path, bf16=True)  # a second run in the same process: no second warning
    assert len(warnings_logged(caplog)) == 1


def test_plain_training_arguments_fall_back_in_sora_trainer(cpu, caplog, tmp_path):
    """Pretraining passes transformers' own `TrainingArguments`: `SoraTrainer.__init__` switches those."""
    cpu(EMULATED)
    args = TrainingArguments(
        output_dir=str(tmp_path),
        per_device_train_batch_size=4,
        max_steps=2,
        report_to=[],
        use_cpu=True,
        bf16=True,
    )
    assert args.bf16 is True and not warnings_logged(caplog)
    trainer, dtypes = train_and_record_dtype(args)
    assert trainer.args.bf16 is False and dtypes == {torch.float32}
    assert len(warnings_logged(caplog)) == 1


def test_accelerate_mixed_precision_bf16_falls_back_too(cpu, monkeypatch, tmp_path):
    """`accelerate launch --mixed_precision bf16` sets ACCELERATE_MIXED_PRECISION, not `--bf16`."""
    cpu(EMULATED)
    monkeypatch.setenv("ACCELERATE_MIXED_PRECISION", "bf16")
    args = sora_args(tmp_path)
    assert args.mixed_precision == "no"


def test_forced_bf16_trains_in_bf16_with_a_warning(cpu, caplog, monkeypatch, tmp_path):
    cpu(EMULATED)
    monkeypatch.setenv(FORCE_BF16_ENV, "1")
    args = sora_args(tmp_path, bf16=True)
    assert args.bf16 is True and args.mixed_precision == "bf16"
    (message,) = warnings_logged(caplog)
    assert "41.50x" in message and "bf16 anyway" in message
    trainer, dtypes = train_and_record_dtype(args)
    assert torch.bfloat16 in dtypes and trainer.accelerator.mixed_precision == "bf16"


def test_native_bf16_is_kept_without_a_word(cpu, caplog, tmp_path):
    cpu(NATIVE)
    args = sora_args(tmp_path, bf16=True)
    assert args.bf16 is True and not warnings_logged(caplog)
    _, dtypes = train_and_record_dtype(args)
    assert torch.bfloat16 in dtypes


def test_fp32_runs_never_run_the_check(cpu, monkeypatch, tmp_path):
    def refuse():
        raise AssertionError("the check ran for an fp32 run")

    monkeypatch.setattr(precision, "cpu_bf16_check", refuse)
    assert check_training_bf16(sora_args(tmp_path)) is False
    assert check_training_bf16(None) is False


def test_bad_force_value_names_the_variable(cpu, monkeypatch, tmp_path):
    cpu(EMULATED)
    monkeypatch.setenv(FORCE_BF16_ENV, "maybe")
    with pytest.raises(UserInputError, match=rf"{FORCE_BF16_ENV}='maybe'.*set it to 1"):
        sora_args(tmp_path, bf16=True)


def test_the_check_on_this_cpu():
    check = cpu_bf16_check()
    assert check is cpu_bf16_check()  # measured once per process
    assert check.capability == torch.backends.cpu.get_cpu_capability()
    assert 0 < check.slowdown < float("inf")
    assert check.native == (check.slowdown <= precision.NATIVE_SLOWDOWN_LIMIT)
    if check.avx512_bf16 or check.amx_bf16:  # the instructions are there and oneDNN uses them
        assert check.native, check.describe()
    assert check.describe().startswith("bf16 native" if check.native else "bf16 EMULATED")


@pytest.mark.skipif(platform.machine() not in ("x86_64", "AMD64"), reason="DNNL_MAX_CPU_ISA=AVX2 is x86 only")
def test_the_check_finds_emulated_bf16():
    """oneDNN held to AVX2 multiplies bf16 without bf16 instructions, as on an AVX2-only CPU."""
    code = (
        "import json; from sora_hf.precision import cpu_bf16_check as c; "
        "r = c(); print(json.dumps({'native': r.native, 'slowdown': r.slowdown}))"
    )
    env = {**os.environ, "DNNL_MAX_CPU_ISA": "AVX2", "ONEDNN_MAX_CPU_ISA": "AVX2", "OMP_NUM_THREADS": "1"}
    result = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120, check=True
    )
    found = json.loads(result.stdout.strip().splitlines()[-1])
    assert found["native"] is False and found["slowdown"] > precision.NATIVE_SLOWDOWN_LIMIT, found
