"""`sora-hf push` publishes what a run folder means to share: no checkpoints, pickles, logs, outside links or tokens."""

import json
from pathlib import Path

import pytest
from conftest import save_tiny_classifier
from hub_server import WRITE_TOKEN
from huggingface_hub import HfApi

from sora_hf.cli import main as cli
from sora_hf.hub import plan_push, push_folder

# built at run time so that no token-shaped literal sits in the source
FAKE_TOKEN = "hf_" + "AbCdEfGh" * 4 + "42"
TEXTS = ["a run folder holds more than the model", "only part of it is meant for the Hub"] * 10

# what a Trainer run leaves behind, besides the model and tokenizer save_pretrained writes
SHARED = {
    "README.md": "# sora-run\n\nLoad it with `hf_hub_download` into hf_home; see hf_transformers.\n",
    "loss_curve.png": b"\x89PNG\r\n\x1a\nnot really a plot",
    "classification_results.json": json.dumps(
        {"test_accuracy": 0.75, "command": "finetune --token <redacted>"}
    ),
    "all_results.json": json.dumps({"eval_accuracy": 0.75}),
    "adapter/adapter_config.json": json.dumps({"peft_type": "LORA", "r": 8}),
    "adapter/adapter_model.safetensors": b"adapter weights",
    "chat_template.jinja": "{{ messages }}",
}
PRIVATE = {
    "checkpoint-1/model.safetensors": b"weights again",
    "checkpoint-1/config.json": "{}",
    "checkpoint-1/optimizer.pt": b"pickled optimizer state",
    "checkpoint-1/scheduler.pt": b"pickled scheduler",
    "checkpoint-1/rng_state.pth": b"pickled rng",
    "checkpoint-1/trainer_state.json": "{}",
    "runs/Dec07_10-00-00_host/events.out.tfevents.1733565600.host.1.0": b"tensorboard",
    "training_args.bin": b"pickled TrainingArguments",
    "trainer_state.json": "{}",
    "pytorch_model.bin": b"a pickle",
    ".env": "HF_TOKEN=not-shared",
}


def write_files(folder: Path, files: dict[str, str | bytes]) -> None:
    for name, content in files.items():
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content)


def files_under(folder: Path) -> set[str]:
    return {path.relative_to(folder).as_posix() for path in folder.rglob("*") if path.is_file()}


@pytest.fixture(scope="module")
def saved_model(tmp_path_factory) -> Path:
    """A tiny model and tokenizer as save_pretrained writes them."""
    return save_tiny_classifier(tmp_path_factory.mktemp("saved") / "model", TEXTS)


@pytest.fixture
def run_folder(saved_model, tmp_path) -> tuple[Path, set[str]]:
    """A fine-tuning run's output folder, and the files a default push must upload from it."""
    folder = tmp_path / "run"
    write_files(folder, {p: (saved_model / p).read_bytes() for p in files_under(saved_model)})
    model_files = files_under(folder)
    assert {"config.json", "model.safetensors", "tokenizer.json"} <= model_files
    write_files(folder, SHARED)
    write_files(folder, PRIVATE)
    return folder, model_files | set(SHARED)


def pushed_files(repo_id: str) -> set[str]:
    return set(HfApi(token=WRITE_TOKEN).list_repo_files(repo_id)) - {".gitattributes"}


def push(folder: Path, repo_id: str, *options: str) -> int:
    return cli(["push", "--folder", str(folder), "--repo-id", repo_id, "--token", WRITE_TOKEN, *options])


def test_default_push_sends_the_model_card_plots_and_results_only(hub, run_folder, capsys):
    folder, expected = run_folder
    assert push(folder, "sora-tester/run-default") == 0
    assert pushed_files("sora-tester/run-default") == expected

    out = capsys.readouterr().out
    listed = [line.strip() for line in out.splitlines() if line.startswith("  ")]
    assert listed == sorted(expected)
    assert f"Uploading {len(expected)} files from {folder}:" in out
    assert (
        "Left out (add with --include PATTERN): .env, checkpoint-1/ (6 files), pytorch_model.bin, "
        "runs/ (1 file), trainer_state.json, training_args.bin" in out
    )


def test_include_and_exclude_change_the_default_set(hub, run_folder, capsys):
    folder, expected = run_folder
    options = [
        "--include",
        "checkpoint-1/*",
        "--exclude",
        "*.png",
        "adapter/*",
        "--exclude",
        "*/optimizer.pt",
    ]
    assert push(folder, "sora-tester/run-filtered", *options) == 0
    checkpoint = {name for name in PRIVATE if name.startswith("checkpoint-1/")} - {
        "checkpoint-1/optimizer.pt"
    }
    adapter = {"adapter/adapter_config.json", "adapter/adapter_model.safetensors"}
    assert pushed_files("sora-tester/run-filtered") == (expected - adapter - {"loss_curve.png"}) | checkpoint

    assert push(folder, "sora-tester/run-everything", "--include", "*") == 0
    assert pushed_files("sora-tester/run-everything") == files_under(folder)

    # --exclude wins over --include
    assert push(folder, "sora-tester/run-excluded", "--include", "*", "--exclude", "runs/", ".*") == 0
    assert pushed_files("sora-tester/run-excluded") == files_under(folder) - {
        ".env",
        *(name for name in PRIVATE if name.startswith("runs/")),
    }

    capsys.readouterr()
    assert push(folder, "sora-tester/run-nothing", "--exclude", "*") == 1
    assert "None of the" in capsys.readouterr().err
    assert not HfApi().repo_exists("sora-tester/run-nothing", token=WRITE_TOKEN)


def test_dry_run_lists_the_files_and_contacts_no_hub(hub, run_folder, capsys):
    folder, expected = run_folder
    assert cli(["push", "--folder", str(folder), "--repo-id", "sora-tester/run-dry", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert f"Would upload {len(expected)} files from {folder}:" in out
    assert [line.strip() for line in out.splitlines() if line.startswith("  ")] == sorted(expected)
    assert "Pushed" not in out
    assert not any("sora-tester/run-dry" in request["path"] for request in hub.requests())

    plan = plan_push(folder)  # what the command shows is what push_folder sends
    assert plan.files == sorted(expected)
    with pytest.raises(ValueError, match="got a PushPlan and include/exclude"):
        push_folder(plan, "sora-tester/run-dry", token=WRITE_TOKEN, include=["*"])


def test_symlinks_out_of_the_folder_are_refused(hub, run_folder, tmp_path, capsys):
    folder, expected = run_folder
    outside = tmp_path / "outside"
    write_files(outside, {"secret.txt": "private notes", "data/train.json": "{}"})
    (folder / "notes.txt").symlink_to(outside / "secret.txt")
    repo_id = "sora-tester/run-symlink"

    assert push(folder, repo_id) == 1
    error = capsys.readouterr().err
    assert f"symlinks lead outside it (notes.txt -> {outside / 'secret.txt'})" in error
    assert not HfApi().repo_exists(repo_id, token=WRITE_TOKEN)  # refused before anything reached the Hub

    # a linked folder leading outside is refused as soon as a pattern would take files from it
    (folder / "data").symlink_to(outside / "data", target_is_directory=True)
    with pytest.raises(ValueError, match=r"data -> .*outside/data, notes\.txt -> "):
        plan_push(folder, include=["*"])
    plan_push(folder, exclude=["notes.txt"])  # no error: the default patterns take nothing from data/

    # links left out by the filters do not matter; links inside the folder are sent with their target's bytes
    (folder / "key").symlink_to(outside / "secret.txt")
    (folder / "card.md").symlink_to(folder / "README.md")
    assert push(folder, repo_id, "--exclude", "notes.txt") == 0
    assert pushed_files(repo_id) == expected | {"card.md"}
    card = HfApi().hf_hub_download(repo_id, "card.md", token=WRITE_TOKEN)
    assert Path(card).read_text() == SHARED["README.md"]


def test_text_files_holding_a_token_are_refused(hub, run_folder, capsys):
    folder, expected = run_folder
    results = json.loads((folder / "classification_results.json").read_text())
    results["command"] = f"finetune --hub_token {FAKE_TOKEN}"
    (folder / "classification_results.json").write_text(json.dumps(results, indent=2))
    repo_id = "sora-tester/run-token"

    with pytest.raises(
        ValueError, match=r"classification_results\.json \(line 3\) contains a string that looks"
    ):
        push_folder(folder, repo_id, token=WRITE_TOKEN)
    with (folder / "README.md").open("a") as card:
        card.write(f"\nexport HF_TOKEN={FAKE_TOKEN}\n")
    assert push(folder, repo_id, "--include", "*") == 1
    error = capsys.readouterr().err
    assert "README.md (line 5), classification_results.json (line 3) contain a string" in error
    assert FAKE_TOKEN not in error
    assert not HfApi().repo_exists(repo_id, token=WRITE_TOKEN)

    # a file holding a token may stay in the folder as long as the push leaves it out
    assert push(folder, repo_id, "--exclude", "README.md", "classification_results.json") == 0
    assert pushed_files(repo_id) == expected - {"README.md", "classification_results.json"}
