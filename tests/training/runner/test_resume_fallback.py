"""Resuming picks the newest complete checkpoint, naming each newer one it skips and why."""

import json
import shutil

import pytest
import torch
from safetensors.torch import load_file
from transformers.trainer_utils import get_last_checkpoint

from sora_hf.errors import UserInputError
from sora_hf.training.checkpoints import checkpoint_problem, newest_complete_checkpoint
from sora_hf.training.runner import finetune_main


def classification_argv(checkpoint: str, output_dir, *extra: str) -> list[str]:
    """A tiny classification run: 6 steps of 8 examples, a checkpoint every 2 steps."""
    return [
        "--model_name_or_path", checkpoint, "--output_dir", str(output_dir), "--max_train_samples", "48",
        "--max_eval_samples", "8", "--max_test_samples", "8", "--max_steps", "6", "--save_steps", "2",
        "--per_device_train_batch_size", "8", "--learning_rate", "1e-3", "--report_to", "none", "--use_cpu",
        "--run_baseline", "false", "--seed", "3", *extra,
    ]  # fmt: skip


def test_resume_true_skips_a_truncated_checkpoint_and_one_without_trainer_state(
    sentiment_checkpoint, tmp_path, capsys
):
    run = tmp_path / "run"
    argv = classification_argv(sentiment_checkpoint, run)
    finetune_main("classification", argv)
    uninterrupted = load_file(str(run / "model.safetensors"))

    weights = run / "checkpoint-6" / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])  # a save cut off mid-file
    (run / "checkpoint-4" / "trainer_state.json").unlink()  # a save cut off before its last file
    assert get_last_checkpoint(str(run)).endswith("checkpoint-6")  # what Trainer alone would resume from

    with pytest.raises(
        UserInputError, match=r"checkpoint-6: not a complete checkpoint \(model.safetensors is cut"
    ):
        finetune_main("classification", [*argv, "--resume_from_checkpoint", str(run / "checkpoint-6")])
    capsys.readouterr()
    resumed = finetune_main("classification", [*argv, "--resume_from_checkpoint", "true"])
    stderr = capsys.readouterr().err
    assert resumed["resumed_from"] == str(run / "checkpoint-2") and resumed["steps"] == 6
    assert f"Skipping {run / 'checkpoint-6'}: model.safetensors is cut off (" in stderr
    assert f"Skipping {run / 'checkpoint-4'}: no trainer_state.json" in stderr
    assert f"Using {run / 'checkpoint-2'}, the newest complete checkpoint." in stderr
    for name, tensor in load_file(
        str(run / "model.safetensors")
    ).items():  # steps 3-6 again: the same weights
        assert torch.equal(tensor, uninterrupted[name]), name
    assert checkpoint_problem(run / "checkpoint-6") is None  # re-saved whole by the resumed run
    assert checkpoint_problem(run / "checkpoint-4") is None


def test_checkpoint_problems_are_named(sentiment_checkpoint, tmp_path):
    run = tmp_path / "run"
    finetune_main("classification", classification_argv(sentiment_checkpoint, run, "--max_steps", "2"))
    complete = run / "checkpoint-2"
    assert checkpoint_problem(complete) is None

    def damaged(name: str):
        folder = run / f"checkpoint-{len(list(run.glob('checkpoint-*'))) + 10}"
        shutil.copytree(complete, folder)
        return folder, folder / name

    folder, state = damaged("trainer_state.json")
    state.write_text(state.read_text()[:40])
    assert checkpoint_problem(folder) == "trainer_state.json is unreadable (cut off while being written)"
    folder, optimizer = damaged("optimizer.pt")
    optimizer.write_bytes(optimizer.read_bytes()[:-100])
    assert checkpoint_problem(folder) == "optimizer.pt is cut off (not a whole torch.save archive)"
    folder, weights = damaged("model.safetensors")
    weights.write_bytes(weights.read_bytes()[:5])
    assert checkpoint_problem(folder) == "model.safetensors is cut off (5 bytes, no header)"
    folder, weights = damaged("model.safetensors")
    weights.unlink()
    assert checkpoint_problem(folder).startswith("no weights file")
    folder, index = damaged("model.safetensors.index.json")
    index.write_text(json.dumps({"weight_map": {"a": "model-00001-of-00002.safetensors"}}))
    assert checkpoint_problem(folder) == (
        "model.safetensors.index.json names missing shard(s) model-00001-of-00002.safetensors"
    )
    # the newest of these is damaged: the search walks back to the complete one
    assert newest_complete_checkpoint(run) == str(complete)
    assert newest_complete_checkpoint(tmp_path / "absent") is None
