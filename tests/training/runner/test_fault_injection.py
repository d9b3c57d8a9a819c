"""Faults: a run SIGKILLed at seeded points (mid-step, mid-checkpoint-save) and resumed each time ends with the
weights of the uninterrupted run, for fine-tuning and pretraining; a second run into a busy output folder is refused."""

import os
import random
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from conftest import SCRIPTS_DIR
from safetensors.torch import load_file
from transformers.trainer_utils import get_last_checkpoint

from sora_hf.errors import UserInputError
from sora_hf.training.checkpoints import (
    RUN_INFO_FILE,
    checkpoint_problem,
    newest_complete_checkpoint,
    output_dir_lock,
)
from sora_hf.training.runner import finetune_main

KILL_AT = SCRIPTS_DIR / "kill_at.py"
SAVE_KINDS = ("weights", "optimizer", "state")  # the faults that strike while checkpoint-N is being written
ENVIRONMENT = {**os.environ, "OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false"}


def fault_plan(seed: int, kills: int, max_steps: int, save_steps: int) -> list[str]:
    """`kills` faults at increasing steps (after the first checkpoint), kinds and steps drawn with `seed`."""
    rng = random.Random(seed)
    plan, last = [], save_steps
    for _ in range(kills):
        kind = rng.choice(("step", *SAVE_KINDS))
        room = max_steps - 2 * (kills - len(plan))  # leave steps for the faults still to place
        if kind == "step":
            step = rng.randint(last + 1, room)
        else:
            step = rng.choice(range((last // save_steps + 1) * save_steps, room + 1, save_steps))
        plan.append(f"{kind}:{step}")
        last = step
    return plan


def run_with_faults(
    command: list[str], output_dir: Path, plan: list[str], resume, while_last_runs=None
) -> list[str]:
    """Run `sora-hf *command` once per fault (each SIGKILLed at its point) and once more to the end, resuming
    with `resume(output_dir)` arguments; the stderr of every run. `while_last_runs(pid)` is called while the last
    run holds its output folder."""
    logs = []
    for number, fault in enumerate([*plan, "none"]):
        log = output_dir.parent / f"{output_dir.name}-{number}.log"
        with open(log, "w") as stderr:
            process = subprocess.Popen(
                [sys.executable, str(KILL_AT), fault, *command, *resume(output_dir)],
                env=ENVIRONMENT,
                stderr=stderr,
            )
            if fault == "none" and while_last_runs is not None:
                wait_for_the_lock(process, output_dir)
                while_last_runs(process.pid)
            process.wait(timeout=600)
        logs.append(log.read_text())
        if fault == "none":
            assert process.returncode == 0, logs[-1][-3000:]
            break
        assert process.returncode == -signal.SIGKILL, (
            f"{fault}: exit {process.returncode}\n{logs[-1][-3000:]}"
        )
        kind, step = fault.split(":")
        if kind in SAVE_KINDS:  # a partial checkpoint-N is left, the one Trainer alone would resume from
            partial = output_dir / f"checkpoint-{step}"
            assert checkpoint_problem(partial) is not None
            assert get_last_checkpoint(str(output_dir)) == str(partial)
    return logs


def wait_for_the_lock(process: subprocess.Popen, output_dir: Path) -> None:
    """Until `process` holds the run lock of `output_dir` (it has written its pid there)."""
    deadline = time.time() + 300
    while True:
        try:
            if f'"pid": {process.pid}' in (output_dir / RUN_INFO_FILE).read_text():
                return
        except FileNotFoundError:
            pass
        assert process.poll() is None and time.time() < deadline, (
            "the run never took its output folder's lock"
        )
        time.sleep(0.01)


def assert_same_weights(expected: Path, actual: Path) -> None:
    reference = load_file(str(expected / "model.safetensors"))
    for name, tensor in load_file(str(actual / "model.safetensors")).items():
        assert torch.equal(tensor, reference[name]), name


def assert_no_temporaries(output_dir: Path) -> None:
    left = [path for path in output_dir.rglob(".*") if ".tmp-" in path.name or ".old-" in path.name]
    assert not left, left


def assert_partial_checkpoints_were_skipped(plan: list[str], logs: list[str], output_dir: Path) -> None:
    for fault, next_log in zip(plan, logs[1:]):
        kind, step = fault.split(":")
        if kind in SAVE_KINDS:
            assert f"Skipping {output_dir / f'checkpoint-{step}'}: " in next_log, (fault, next_log[-2000:])


def finetune_argv(checkpoint: str, output_dir: Path) -> list[str]:
    return [
        "--model_name_or_path", checkpoint, "--output_dir", str(output_dir), "--max_train_samples", "64",
        "--max_eval_samples", "8", "--max_test_samples", "8", "--max_steps", "12", "--save_steps", "2",
        "--per_device_train_batch_size", "8", "--learning_rate", "1e-3", "--report_to", "none", "--use_cpu",
        "--run_baseline", "false", "--seed", "3", "--logging_steps", "1",
    ]  # fmt: skip


def test_finetuning_killed_three_times_resumes_to_the_uninterrupted_weights(sentiment_checkpoint, tmp_path):
    finetune_main("classification", finetune_argv(sentiment_checkpoint, tmp_path / "whole"))
    killed = tmp_path / "killed"
    plan = fault_plan(seed=4, kills=3, max_steps=12, save_steps=2)  # weights:6, step:8, state:10

    def resume(output_dir: Path) -> list[str]:
        return ["--resume_from_checkpoint", "true"] if any(output_dir.glob("checkpoint-*")) else []

    def second_run_is_refused(pid: int) -> None:  # a second run into the folder while the last one trains
        with pytest.raises(
            UserInputError, match=rf"is in use by another run \(pid {pid} on {socket.gethostname()}"
        ):
            finetune_main("classification", [*finetune_argv(sentiment_checkpoint, killed), *resume(killed)])

    command = ["finetune", "--task", "classification", *finetune_argv(sentiment_checkpoint, killed)]
    logs = run_with_faults(command, killed, plan, resume, while_last_runs=second_run_is_refused)
    assert_partial_checkpoints_were_skipped(plan, logs, killed)
    assert_same_weights(tmp_path / "whole", killed)
    assert_no_temporaries(killed)


def test_pretraining_killed_three_times_resumes_to_the_uninterrupted_weights(tmp_path):
    from transformers import HfArgumentParser, TrainingArguments

    from sora_hf import train_sora_tokenizer
    from sora_hf.data.corpus import build_corpus
    from sora_hf.training.pretraining import PretrainingArguments, run_pretraining

    corpus = build_corpus(tmp_path / "corpus", sources=["wordnet"], max_docs_per_source=300, verbose=False)
    tokenizer = train_sora_tokenizer(corpus["train"], vocab_size=300, text_column="text")
    tokenizer.save_pretrained(tmp_path / "tokenizer")

    def argv(output_dir: Path) -> list[str]:
        return [
            "--corpus_dir", str(tmp_path / "corpus"), "--tokenizer_name_or_path", str(tmp_path / "tokenizer"),
            "--hidden_size", "32", "--num_hidden_layers", "2", "--num_attention_heads", "4",
            "--intermediate_size", "64", "--decoder_layers", "1", "--max_length", "32", "--max_eval_samples", "8",
            "--output_dir", str(output_dir), "--max_steps", "10", "--save_steps", "2",
            "--per_device_train_batch_size", "4", "--learning_rate", "3e-3", "--report_to", "none", "--use_cpu",
            "--seed", "0", "--logging_steps", "1",
        ]  # fmt: skip

    parser = HfArgumentParser((PretrainingArguments, TrainingArguments))
    run_pretraining(*parser.parse_args_into_dataclasses(argv(tmp_path / "whole")))
    killed = tmp_path / "killed"
    plan = fault_plan(seed=7, kills=3, max_steps=10, save_steps=2)  # optimizer:4, state:6, step:7

    # `true`: the newest complete checkpoint (--seed drew the weights, so every try builds the same model)
    def resume(output_dir: Path) -> list[str]:
        return ["--resume_from_checkpoint", "true"] if newest_complete_checkpoint(output_dir) else []

    logs = run_with_faults(["pretrain", *argv(killed)], killed, plan, resume)
    assert_same_weights(tmp_path / "whole", killed)
    assert_no_temporaries(killed)
    assert len(logs) == len(plan) + 1


HOLD_LOCK = """
import sys, time
from sora_hf.training.checkpoints import output_dir_lock
with output_dir_lock(sys.argv[1]):
    print("held", flush=True)
    time.sleep(600)
"""


def test_a_second_run_into_a_busy_output_dir_is_refused_naming_the_first(sentiment_checkpoint, tmp_path):
    output_dir = tmp_path / "run"
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD_LOCK, str(output_dir)], env=ENVIRONMENT, stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        argv = finetune_argv(sentiment_checkpoint, output_dir)
        with pytest.raises(UserInputError) as refused:
            finetune_main("classification", argv)
        message = str(refused.value)
        assert (
            f"--output_dir {output_dir} is in use by another run (pid {holder.pid} on {socket.gethostname()}"
            in message
        )
        assert "--resume_from_checkpoint true" in message and "another --output_dir" in message
        assert not any(output_dir.glob("checkpoint-*"))
    finally:
        holder.send_signal(signal.SIGKILL)  # the operating system frees the lock of a killed run
        holder.wait()
    with output_dir_lock(output_dir):  # free again, though the killed holder left its files
        assert f'"pid": {os.getpid()}' in (output_dir / RUN_INFO_FILE).read_text()
    assert not (output_dir / RUN_INFO_FILE).exists()
