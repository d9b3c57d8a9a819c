"""DDP: two CPU processes (gloo, `accelerate launch`) with half batches end with the parameters of one process with
the whole batch, for FGM, PGD and FreeLB (the trainer's single backward per micro-batch carries DDP's all-reduce)."""

import os
import subprocess
import sys
from pathlib import Path

import torch
from conftest import SCRIPTS_DIR
from safetensors.torch import load_file

SCRIPT = SCRIPTS_DIR / "adversarial_ddp.py"


def run(command: list[str], tmp_path: Path) -> None:
    environment = {**os.environ, "OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false"}
    result = subprocess.run(
        command, cwd=tmp_path, env=environment, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]


def test_two_processes_match_one_process_with_the_same_global_batch(tmp_path):
    accelerate = Path(sys.executable).with_name("accelerate")
    # `--cpu --num_processes 2` starts ONE process in accelerate 1.15 (its simple launcher); `--multi_gpu` goes
    # through torchrun, and on a machine without GPUs accelerate then picks MULTI_CPU with gloo
    launch = [str(accelerate), "launch", "--multi_gpu", "--num_processes", "2", "--num_machines", "1"]
    launch += ["--mixed_precision", "no", "--dynamo_backend", "no", "--main_process_port", "29517"]
    run([*launch, str(SCRIPT), "--output", str(tmp_path / "ddp.safetensors")], tmp_path)
    run([sys.executable, str(SCRIPT), "--output", str(tmp_path / "single.safetensors")], tmp_path)
    ddp, single = load_file(tmp_path / "ddp.safetensors"), load_file(tmp_path / "single.safetensors")
    runs = {name.split(".")[0] for name in single} - {"init"}
    assert ddp.keys() == single.keys()
    assert runs == {"fgm-find_unused", "pgd-find_unused", "freelb-find_unused", "freelb-static"}
    for name in single:
        torch.testing.assert_close(ddp[name], single[name], rtol=0, atol=1e-5, msg=name)
    for run_name in runs:  # training moved the parameters, differently per method
        weight = f"{run_name}.classifier.weight"
        assert (single[weight] - single["init.classifier.weight"]).abs().max() > 1e-2, run_name
    assert not torch.allclose(
        single["fgm-find_unused.classifier.weight"], single["pgd-find_unused.classifier.weight"]
    )
