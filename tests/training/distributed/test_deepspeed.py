"""DeepSpeed ZeRO-2 and ZeRO-3 through `accelerate launch --config_file examples/accelerate/deepspeed_zero{2,3}.yaml`
with two CPU processes (`--num_processes 2`, and the script's `--ddp_backend gloo`: accelerate ignores DeepSpeed
under `use_cpu`; DeepSpeed runs on its CPU accelerator): distillation ends where one process ends, the teacher stays
whole, frozen and outside the engine, and the adversarial terms are refused. Also: accelerate reads every config in
examples/accelerate/ into the plugin settings the README describes."""

import json
import os
import socket
import subprocess
import sys
from pathlib import Path
from unittest import mock

import pytest
import torch
from conftest import REPO_ROOT, SCRIPTS_DIR
from safetensors.torch import load_file

pytest.importorskip("deepspeed")

CONFIGS = REPO_ROOT / "examples" / "accelerate"
# CPU processes even where a GPU exists: two ranks on one GPU would not run, and DeepSpeed would pick CUDA
CPU_ONLY = {
    "OMP_NUM_THREADS": "1",
    "TOKENIZERS_PARALLELISM": "false",
    "CUDA_VISIBLE_DEVICES": "",
    "DS_ACCELERATOR": "cpu",
}
# observed: at most 1.5e-7 apart (a half batch per process, ZeRO's partitioned reductions)
ATOL = 1e-5


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def launch_environment(config: Path, *options: str) -> tuple[dict, object]:
    """The environment and launch arguments `accelerate launch --config_file CONFIG` gives its processes: accelerate's
    own argument handling, with the start of the processes (torchrun) replaced by a capture."""
    from accelerate.commands import launch

    captured = {}

    def capture(args):
        captured.update(environment=dict(os.environ), args=args)

    parser = launch.launch_command_parser()
    with mock.patch.object(launch, "_run_torchrun", capture):
        launch.launch_command(parser.parse_args(["--config_file", str(config), *options, "train.py"]))
    return captured["environment"], captured["args"]


def test_accelerate_reads_every_config():
    from accelerate.utils import DeepSpeedPlugin, FullyShardedDataParallelPlugin
    from torch.distributed.fsdp import CPUOffloadPolicy, StateDictType

    assert sorted(p.name for p in CONFIGS.glob("*.yaml")) == [
        "ddp.yaml",
        "deepspeed_zero2.yaml",
        "deepspeed_zero3.yaml",
        "fsdp.yaml",
        "fsdp_multinode.yaml",
    ]
    environment, args = launch_environment(CONFIGS / "ddp.yaml")
    assert args.multi_gpu and args.num_processes == 8 and environment["ACCELERATE_MIXED_PRECISION"] == "no"

    for name in ("fsdp.yaml", "fsdp_multinode.yaml"):
        environment, args = launch_environment(
            CONFIGS / name, *(["--machine_rank", "1"] if "multi" in name else [])
        )
        with mock.patch.dict(os.environ, environment):
            plugin = FullyShardedDataParallelPlugin()
        assert plugin.fsdp_version == 2 and plugin.reshard_after_forward is True  # FSDP2, full shard
        assert plugin.transformer_cls_names_to_wrap == ["SoraEncoderLayer", "SoraDecoderLayer"]
        assert plugin.auto_wrap_policy.__name__ == "transformer_auto_wrap_policy"
        assert plugin.state_dict_type == StateDictType.SHARDED_STATE_DICT
        assert not isinstance(plugin.cpu_offload, CPUOffloadPolicy)
    assert (args.num_machines, args.num_processes, args.machine_rank) == (2, 16, 1)
    assert (args.main_process_ip, args.main_process_port) == ("10.0.0.1", 29500)

    for stage in (2, 3):
        environment, args = launch_environment(
            CONFIGS / f"deepspeed_zero{stage}.yaml", "--num_processes", "2"
        )
        with mock.patch.dict(os.environ, environment):
            plugin = DeepSpeedPlugin()
        zero = plugin.deepspeed_config["zero_optimization"]
        assert zero["stage"] == stage and args.num_processes == 2
        # batch size, accumulation and clipping come from the script's flags
        assert plugin.deepspeed_config["gradient_accumulation_steps"] == "auto"
        if stage == 3:
            assert plugin.zero3_init_flag and zero["stage3_gather_16bit_weights_on_model_save"]


class SingleRun:
    """The distillation run of tests/scripts/distill_ddp.py in one process with the whole batch, started at once
    (it runs beside the first launch) and waited for when its tensors are first read."""

    def __init__(self, folder: Path):
        environment = {**os.environ, **CPU_ONLY}
        self.output = folder / "one.pt"
        command = [sys.executable, str(SCRIPTS_DIR / "distill_ddp.py"), "--output", str(self.output)]
        self.process = subprocess.Popen(
            [*command, "--output_dir", str(folder / "run")],
            env=environment,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        self._tensors = None

    def tensors(self) -> dict[str, torch.Tensor]:
        if self._tensors is None:
            output = self.process.communicate(timeout=600)[0].decode(errors="replace")
            assert self.process.returncode == 0, output[-4000:]
            self._tensors = torch.load(self.output)
            assert self._tensors.pop("world_size").item() == 1
        return self._tensors


@pytest.fixture(scope="module")
def single(tmp_path_factory):
    run = SingleRun(tmp_path_factory.mktemp("one"))
    yield run
    if run.process.poll() is None:
        run.process.kill()


@pytest.mark.parametrize("stage", [2, 3])
def test_zero_matches_one_process_with_a_whole_teacher(stage, single, tmp_path):
    environment = {**os.environ, **CPU_ONLY}
    config = CONFIGS / f"deepspeed_zero{stage}.yaml"
    launch = [sys.executable, "-m", "accelerate.commands.launch", "--config_file", str(config)]
    launch += ["--num_processes", "2", "--main_process_port", str(free_port())]
    output = tmp_path / "tensors.safetensors"
    done = subprocess.run(
        [*launch, str(SCRIPTS_DIR / "deepspeed_checks.py"), "--output", str(output)],
        env=environment,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    tensors, checks = load_file(output), json.loads(output.with_suffix(".json").read_text())
    single = single.tensors()

    assert checks["engine"] == "DeepSpeedEngine" and checks["zero_stage"] == stage
    assert checks["student_partitioned"] is (stage == 3)
    assert tensors.keys() == single.keys() and {"log.loss_kd", "log.loss_hidden"} <= tensors.keys()
    for name in single:  # student, the hidden-state projection (trained inside the engine), logged terms
        torch.testing.assert_close(tensors[name], single[name], rtol=0, atol=ATOL, msg=name)

    # the teacher: whole, frozen, not in the engine; a saved one loads whole through load_teacher
    assert (
        not checks["teacher_partitioned"]
        and not checks["teacher_trainable"]
        and not checks["teacher_in_engine"]
    )
    assert not checks["load_teacher_partitioned"] and checks["load_teacher_logits_match"]
    if (
        stage == 3
    ):  # plain from_pretrained partitions a model under ZeRO-3: SoraTrainer refuses such a teacher
        assert checks["from_pretrained_partitioned"]
        assert "ZeRO-3-partitioned parameters" in checks["partitioned_teacher_error"]
        assert "load_teacher" in checks["partitioned_teacher_error"]
    assert "adversarial_method='fgm' under DeepSpeed" in checks["fgm_error"]
    assert "examples/accelerate/fsdp.yaml" in checks["fgm_error"]
