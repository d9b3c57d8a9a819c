"""Distillation with two processes through `accelerate launch` (gloo, CPU) matches one process, same global batch."""

import os
import socket
import subprocess
import sys

import torch
from conftest import SCRIPTS_DIR

SCRIPT = SCRIPTS_DIR / "distill_ddp.py"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_two_processes_match_one_process(tmp_path):
    env = {**os.environ, "OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false"}
    one = [
        sys.executable,
        str(SCRIPT),
        "--output",
        str(tmp_path / "one.pt"),
        "--output_dir",
        str(tmp_path / "one"),
    ]
    two = [
        sys.executable,
        "-m",
        "accelerate.commands.launch",
        # accelerate 1.15 runs `--cpu --num_processes 2` as ONE process (its simple launcher); `--multi_gpu` goes
        # through torchrun, and on a machine without GPUs accelerate then picks MULTI_CPU with gloo
        "--multi_gpu",
        "--num_processes",
        "2",
        "--num_machines",
        "1",
        "--mixed_precision",
        "no",
        "--dynamo_backend",
        "no",
        "--main_process_port",
        str(free_port()),
        str(SCRIPT),
        "--output",
        str(tmp_path / "two.pt"),
        "--output_dir",
        str(tmp_path / "two"),
    ]
    runs = [
        subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        for command in (one, two)
    ]
    for run in runs:
        output = run.communicate(timeout=300)[0].decode(errors="replace")
        assert run.returncode == 0, output[-3000:]
    single, double = torch.load(tmp_path / "one.pt"), torch.load(tmp_path / "two.pt")
    assert single.pop("world_size").item() == 1 and double.pop("world_size").item() == 2
    assert single.keys() == double.keys() and any(name.startswith("terms.") for name in single)
    for name in single:
        torch.testing.assert_close(double[name], single[name], rtol=0, atol=1e-5, msg=name)
