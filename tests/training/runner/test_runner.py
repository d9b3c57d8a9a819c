"""The one runner: every task on tiny data with LoRA, FGM and a teacher; resuming; refusing a used output_dir."""

import json
from pathlib import Path

import pytest
import torch
from conftest import SCRIPTS_DIR, save_tiny_sora
from safetensors import safe_open
from safetensors.torch import load_file

from sora_hf.data.tasks import load_task_dataset
from sora_hf.errors import UserInputError
from sora_hf.training.runner import finetune_main, parse_task_arguments

TEXT_TASKS = ["classification", "ner", "qa", "translation", "summarization", "dialogue"]
MULTIMODAL_TASKS = ["easy_vqa", "spoken_commands"]
TINY_TOWERS = [
    "--hidden_size", "32", "--num_hidden_layers", "1", "--num_attention_heads", "2",
    "--intermediate_size", "64", "--tower_hidden_size", "16", "--tower_layers", "1",
    "--image_size", "32", "--num_mel_bins", "16",
]  # fmt: skip


@pytest.fixture(scope="module")
def tiny_checkpoint(tmp_path_factory):
    """A pretraining checkpoint with a decoder (like `sora`) and a tokenizer trained on every task's text."""
    folder = tmp_path_factory.mktemp("tiny-sora-runner")
    texts = list(load_task_dataset("sentiment")["train"].select(range(600))["text"])
    texts += [p["es"] for p in load_task_dataset("translation")["train"].select(range(300))["translation"]]
    texts += list(load_task_dataset("qa")["train"].select(range(300))["context"])
    return save_tiny_sora(folder, texts, vocab_size=500, is_encoder_decoder=True, decoder_layers=1)


def task_argv(task: str, checkpoint: str, output_dir, *extra: str) -> list[str]:
    """A tiny run of `task`: 32 training examples, 4 steps, 8 test examples."""
    model = TINY_TOWERS if task in MULTIMODAL_TASKS else ["--model_name_or_path", checkpoint]
    lengths = []
    if task in ("translation", "summarization", "dialogue"):
        lengths = ["--max_source_length", "48", "--max_target_length", "16", "--generation_max_length", "8"]
    return [
        *model, *lengths,
        "--output_dir", str(output_dir), "--max_train_samples", "32", "--max_eval_samples", "8",
        "--max_test_samples", "8", "--max_steps", "4", "--per_device_train_batch_size", "8",
        "--per_device_eval_batch_size", "8", "--learning_rate", "1e-3", "--logging_steps", "1",
        "--report_to", "none", "--use_cpu", "--run_baseline", "false", "--seed", "3", *extra,
    ]  # fmt: skip


def run(task: str, argv: list[str]) -> dict:
    return finetune_main(task, argv)


def weights(folder) -> dict[str, torch.Tensor]:
    return load_file(str(folder / "model.safetensors"))


@pytest.mark.parametrize("task", TEXT_TASKS + MULTIMODAL_TASKS)
def test_every_task_trains_with_lora_fgm_and_a_teacher_and_resumes(task, tiny_checkpoint, tmp_path):
    # the teacher: the same task fine-tuned plainly (same tokenizer and labels)
    teacher = tmp_path / "teacher"
    run(task, task_argv(task, tiny_checkpoint, teacher, "--save_strategy", "no", "--max_steps", "2"))

    options = ["--lora_r", "2", "--adversarial_method", "fgm", "--teacher_name_or_path", str(teacher)]
    options += ["--save_strategy", "steps", "--save_steps", "2"]
    full = tmp_path / "full"
    results = run(task, task_argv(task, tiny_checkpoint, full, *options))

    # LoRA: only the adapter (and the head peft saves with it) trains
    with safe_open(str(full / "adapter" / "adapter_model.safetensors"), "pt") as adapter:
        adapter_size = sum(adapter.get_tensor(name).numel() for name in adapter.keys())
    assert results["trainable_parameters"] == adapter_size
    assert results["trainable_parameters"] < results["total_parameters"] / 4
    # both extra terms reached the loss and the log
    logged = json.loads((full / "trainer_state.json").read_text())["log_history"]
    assert all("loss_fgm" in entry and "loss_kd" in entry for entry in logged if "loss" in entry)
    assert set(results["loss_terms"]) == {"loss_fgm", "loss_kd"}
    assert results["steps"] == 4 and (full / "README.md").is_file() and (full / "loss_curve.png").is_file()

    # resume from the step-2 checkpoint: continues at step 2 and ends with the same weights
    resumed = tmp_path / "resumed"
    resumed_results = run(
        task,
        task_argv(
            task, tiny_checkpoint, resumed, *options, "--resume_from_checkpoint", str(full / "checkpoint-2")
        ),
    )
    assert resumed_results["resumed_from"].endswith("checkpoint-2") and resumed_results["steps"] == 4
    resumed_log = json.loads((resumed / "trainer_state.json").read_text())["log_history"]
    losses = {e["step"]: (e["loss"], e["loss_fgm"], e["loss_kd"]) for e in logged if "loss" in e}
    assert {e["step"]: (e["loss"], e["loss_fgm"], e["loss_kd"]) for e in resumed_log if "loss" in e} == losses
    for name, tensor in weights(full).items():
        assert torch.equal(tensor, weights(resumed)[name]), name


def test_a_used_output_dir_is_refused_unless_resumed_or_overwritten(tiny_checkpoint, tmp_path):
    output_dir = tmp_path / "run"
    base = task_argv("classification", tiny_checkpoint, output_dir, "--save_steps", "2", "--max_steps", "2")
    run("classification", base)
    assert (output_dir / "checkpoint-2").is_dir()
    with pytest.raises(UserInputError, match="holds another run's checkpoints.*--overwrite_output_dir"):
        run("classification", base)
    results = run("classification", [*base, "--overwrite_output_dir", "true"])
    assert results["resumed_from"] is None and results["steps"] == 2
    # `true` resumes the newest checkpoint and trains on to the new max_steps
    again = run("classification", [*base, "--resume_from_checkpoint", "true", "--max_steps", "4"])
    assert again["resumed_from"].endswith("checkpoint-2") and again["steps"] == 4


def test_arguments_from_a_json_file(tiny_checkpoint, tmp_path):
    values = {
        "model_name_or_path": tiny_checkpoint,
        "output_dir": str(tmp_path / "run"),
        "lora_r": 4,
        "max_steps": 4,
        "adversarial_method": "pgd",
        "use_cpu": True,
    }
    file = tmp_path / "args.json"
    file.write_text(json.dumps(values))
    args, training_args = parse_task_arguments("classification", [str(file)])
    assert (args.lora_r, training_args.max_steps, training_args.adversarial_method) == (4, 4, "pgd")
    assert args.model_name_or_path == tiny_checkpoint and training_args.output_dir == str(tmp_path / "run")


def test_flags_a_task_cannot_honour_are_refused(tiny_checkpoint, tmp_path):
    with pytest.raises(UserInputError, match="robustness_attacks"):
        run("ner", task_argv("ner", tiny_checkpoint, tmp_path / "a", "--robustness_attacks", "embedding"))
    with pytest.raises(UserInputError, match="distill_attention_weight need.* --teacher_name_or_path"):
        run("ner", task_argv("ner", tiny_checkpoint, tmp_path / "c", "--distill_attention_weight", "1"))
    with pytest.raises(UserInputError, match="serves text classification only, not qa"):
        run("qa", task_argv("qa", tiny_checkpoint, tmp_path / "d", "--distill_use_cached_logits", "true"))
    with pytest.raises(UserInputError, match="lora_r or --peft_config"):
        run("qa", task_argv("qa", tiny_checkpoint, tmp_path / "b", "--lora_r", "2", "--peft_config", "x"))


def test_two_processes_only_the_main_one_writes_and_pushes(tiny_checkpoint, tmp_path, hub):
    """`accelerate launch` with two processes (gloo): rank 1 trains and evaluates, but writes nothing under the
    output folder and never talks to the Hub; rank 0 writes the folder and pushes it."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    from hub_server import WRITE_TOKEN
    from huggingface_hub import HfApi

    accelerate = Path(sys.executable).with_name("accelerate")
    launch = [str(accelerate), "launch", "--multi_gpu", "--num_processes", "2", "--num_machines", "1"]
    launch += ["--mixed_precision", "no", "--dynamo_backend", "no", "--main_process_port", "29523"]
    script = SCRIPTS_DIR / "runner_ddp.py"
    argv = task_argv("classification", tiny_checkpoint, tmp_path / "run", "--save_strategy", "no")
    argv += ["--push_to_hub", "--hub_model_id", "sora-tester/ddp-run", "--hub_token", WRITE_TOKEN]
    environment = {**os.environ, "OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false"}
    result = subprocess.run(
        [*launch, str(script), str(tmp_path / "record"), "classification", *argv],
        env=environment,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    main = json.loads((tmp_path / "record.rank0.json").read_text())
    other = json.loads((tmp_path / "record.rank1.json").read_text())
    assert other == {"writes": [], "hub_connections": 0}
    # (safetensors writes from Rust, which Python's audit hook does not see)
    assert {"README.md", "classification_results.json", "loss_curve.png", "config.json"} <= set(
        main["writes"]
    )
    assert main["hub_connections"] > 0
    files = set(HfApi().list_repo_files("sora-tester/ddp-run"))
    assert {"model.safetensors", "README.md", "classification_results.json", "confusion_matrix.png"} <= files


def test_a_token_given_on_the_command_line_reaches_no_file(tiny_checkpoint, tmp_path, hub):
    """`--hub_token` is redacted in every recorded command, left out of `training_args.bin`, and nothing pushed
    holds it."""
    from hub_server import WRITE_TOKEN
    from huggingface_hub import HfApi, snapshot_download

    argv = task_argv("classification", tiny_checkpoint, tmp_path / "run", "--save_steps", "2")
    argv += ["--push_to_hub", "--hub_model_id", "sora-tester/token-run", "--hub_token", WRITE_TOKEN]
    results = run("classification", argv)
    assert "--hub_token '<redacted>'" in results["command"]
    for path in (tmp_path / "run").rglob("*"):
        if path.is_file():
            assert WRITE_TOKEN.encode() not in path.read_bytes(), path
    pushed = set(HfApi().list_repo_files("sora-tester/token-run"))
    assert "training_args.bin" not in pushed and not any(name.startswith("checkpoint-") for name in pushed)
    assert {"README.md", "classification_results.json", "loss_curve.png", "model.safetensors"} <= pushed
    local = snapshot_download("sora-tester/token-run", local_dir=tmp_path / "pulled")
    for path in Path(local).rglob("*"):
        if path.is_file():
            assert WRITE_TOKEN.encode() not in path.read_bytes(), path


def test_own_csv_to_pgd_lora_run_to_hub_to_pipeline_in_a_fresh_process(tiny_checkpoint, tmp_path, hub):
    """A new user's path: one CSV, one `sora-hf finetune` with PGD + LoRA + push, then `pipeline(model=repo)` in
    another process predicts what the local folder predicts."""
    import csv
    import os
    import subprocess
    import sys

    from hub_server import WRITE_TOKEN
    from huggingface_hub import HfApi
    from transformers import pipeline

    from sora_hf.cli import main as cli_main

    tweets = load_task_dataset("sentiment")["train"].shuffle(seed=0).select(range(120))
    names = tweets.features["label"].names
    with open(tmp_path / "reviews.csv", "w", newline="") as file:
        writer = csv.writer(file)
        writer.writerow(["review", "mood"])
        writer.writerows([text, names[label]] for text, label in zip(tweets["text"], tweets["label"]))
    code = cli_main(
        ["finetune", "--task", "classification", "--train_file", str(tmp_path / "reviews.csv")]
        + ["--text_column", "review", "--label_column", "mood", "--model_name_or_path", tiny_checkpoint]
        + ["--adversarial_method", "pgd", "--adversarial_steps", "2", "--lora_r", "4", "--max_steps", "3"]
        # a save at step 2 pushes the adapter checkpoint; the final push replaces it with the merged model
        + ["--output_dir", str(tmp_path / "run"), "--report_to", "none", "--use_cpu", "--save_steps", "2"]
        + ["--push_to_hub", "--hub_model_id", "sora-tester/reviews", "--hub_token", WRITE_TOKEN]
    )
    assert code == 0
    results = json.loads((tmp_path / "run" / "classification_results.json").read_text())
    assert results["split_sizes"] == {"train": 96, "validation": 12, "test": 12}  # split off the one file
    assert "loss_pgd" in results["loss_terms"] and results["adapter"] == "adapter/"
    pushed = set(HfApi().list_repo_files("sora-tester/reviews"))
    assert {"model.safetensors", "README.md", "classification_results.json", "confusion_matrix.png"} <= pushed
    assert {"adapter/adapter_model.safetensors", "tokenizer.json"} <= pushed
    assert "adapter_config.json" not in pushed and not any(name.startswith("checkpoint-") for name in pushed)

    texts = ["what a lovely day", "this is the worst service ever", "the meeting is at 3pm"]
    local = pipeline("text-classification", model=str(tmp_path / "run"))(texts)
    script = (
        "import json, sys, sora_hf\n"
        "from transformers import pipeline\n"
        "print(json.dumps(pipeline('text-classification', model='sora-tester/reviews')(json.loads(sys.argv[1]))))"
    )
    done = subprocess.run(
        [sys.executable, "-c", script, json.dumps(texts)],
        env={**os.environ, "TOKENIZERS_PARALLELISM": "false"},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    remote = json.loads(done.stdout.strip().splitlines()[-1])
    assert [p["label"] for p in remote] == [p["label"] for p in local]
    assert [round(p["score"], 5) for p in remote] == [round(p["score"], 5) for p in local]


def test_a_run_killed_after_a_checkpoint_resumes_to_the_uninterrupted_weights(tiny_checkpoint, tmp_path):
    """SIGKILL a real `sora-hf finetune` process once a checkpoint is complete, resume from it in a new process:
    the final weights equal those of the same run left alone."""
    import signal
    import subprocess
    import sys
    import time

    options = ["--max_steps", "120", "--save_strategy", "steps", "--save_steps", "2", "--logging_steps", "10"]
    options += ["--adversarial_method", "fgm", "--max_train_samples", "64"]
    run("classification", task_argv("classification", tiny_checkpoint, tmp_path / "whole", *options))

    killed = tmp_path / "killed"
    argv = task_argv("classification", tiny_checkpoint, killed, *options)
    script = "import sys\nfrom sora_hf.training.runner import finetune_main\nfinetune_main('classification', sys.argv[1:])"
    process = subprocess.Popen(
        [sys.executable, "-c", script, *argv], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    deadline = time.time() + 300
    while not (killed / "checkpoint-6" / "trainer_state.json").is_file() and process.poll() is None:
        assert time.time() < deadline, "no checkpoint appeared"
        time.sleep(0.01)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert not (killed / "classification_results.json").exists()  # it died mid-run
    complete = [p for p in killed.glob("checkpoint-*") if (p / "trainer_state.json").is_file()]
    newest = max(complete, key=lambda p: int(p.name.split("-")[1]))
    resumed = run("classification", [*argv, "--resume_from_checkpoint", str(newest)])
    assert resumed["steps"] == 120 and resumed["resumed_from"] == str(newest)
    for name, tensor in weights(tmp_path / "whole").items():
        assert torch.equal(tensor, weights(killed)[name]), name


def test_a_qa_window_too_small_for_its_questions_is_named(tiny_checkpoint, tmp_path):
    with pytest.raises(UserInputError, match="--max_length 64 leaves .* not more than --doc_stride 32"):
        run(
            "qa",
            task_argv("qa", tiny_checkpoint, tmp_path / "qa", "--max_length", "64", "--doc_stride", "32"),
        )
