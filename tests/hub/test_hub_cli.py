"""`sora-hf push` and `sora-hf pull` against the local Hub server."""

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import torch
from conftest import REPO_ROOT, save_tiny_classifier
from hub_server import WRITE_TOKEN
from huggingface_hub import HfApi
from transformers import AutoModelForSequenceClassification, AutoTokenizer

from sora_hf.cli import main as cli

SRC = REPO_ROOT / "src"
TEXTS = ["a small model for the command line", "push it and pull it back again"] * 10


def folder_state(folder: Path) -> dict[str, str]:
    return {
        str(path.relative_to(folder)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(folder.rglob("*"))
        if path.is_file()
    }


def test_push_to_a_private_branch_and_pull_it_back(hub, tmp_path, capsys):
    source = save_tiny_classifier(tmp_path / "model", TEXTS)
    repo_id = "sora-tester/cli-model"
    push = ["push", "--folder", str(source), "--repo-id", repo_id, "--private", "--revision", "dev"]
    assert cli([*push, "--token", WRITE_TOKEN]) == 0
    assert f"Pushed {source} to {repo_id}@" in capsys.readouterr().out

    api = HfApi(token=WRITE_TOKEN)
    assert api.model_info(repo_id).private is True
    assert api.list_repo_files(repo_id) == [".gitattributes"]  # main is untouched: the push went to dev
    assert set(api.list_repo_files(repo_id, revision="dev")) == {".gitattributes", *folder_state(source)}
    [commit, *_] = api.list_repo_commits(repo_id, revision="dev")
    assert commit.title == "Upload model with sora-hf"

    pull = ["pull", "--repo-id", repo_id, "--revision", "dev", "--local-dir", str(tmp_path / "pulled")]
    assert cli(pull) == 1  # private: no token, no repo
    assert "Repository Not Found" in capsys.readouterr().err
    assert not (tmp_path / "pulled").exists()
    assert cli([*pull, "--token", WRITE_TOKEN]) == 0
    assert f"Pulled {repo_id} (" in capsys.readouterr().out
    pulled = folder_state(tmp_path / "pulled")
    assert {k: v for k, v in pulled.items() if k != ".gitattributes"} == folder_state(source)
    assert sorted(os.listdir(tmp_path)) == ["hf_home", "model", "pulled"]  # no staging folder left behind

    assert cli([*pull, "--token", WRITE_TOKEN]) == 1  # the folder is not empty any more
    assert "already exists and is not empty" in capsys.readouterr().err

    batch = AutoTokenizer.from_pretrained(tmp_path / "pulled")(TEXTS[:2], return_tensors="pt", padding=True)
    with torch.no_grad():
        pulled_logits = AutoModelForSequenceClassification.from_pretrained(tmp_path / "pulled")(
            **batch
        ).logits
        source_logits = AutoModelForSequenceClassification.from_pretrained(source)(**batch).logits
    assert torch.equal(pulled_logits, source_logits)


def test_pushing_again_sends_only_changed_files(hub, tmp_path):
    source = save_tiny_classifier(tmp_path / "model", TEXTS)
    repo_id = "sora-tester/cli-update"
    assert cli(["push", "--folder", str(source), "--repo-id", repo_id, "--token", WRITE_TOKEN]) == 0
    (source / "notes.txt").write_text("second push")
    assert cli(["push", "--folder", str(source), "--repo-id", repo_id, "--token", WRITE_TOKEN]) == 0
    api = HfApi(token=WRITE_TOKEN)
    assert "notes.txt" in api.list_repo_files(repo_id)
    assert len(api.list_repo_commits(repo_id)) == 3  # creation, first push, second push
    commits = [r for r in hub.requests() if r["route"].endswith("/commit/{rev}") and repo_id in r["path"]]
    assert len(commits[0]["added"]) == len(folder_state(source)) - 1
    assert commits[1]["added"] == ["notes.txt"]  # the client left out the files the Hub already has


def test_console_script_in_a_fresh_process(hub, tmp_path):
    """The real entry point, with the token from HF_TOKEN and a repo name without namespace."""
    source = save_tiny_classifier(tmp_path / "model", TEXTS)
    env = dict(os.environ, HF_ENDPOINT=hub.endpoint, HF_HOME=str(tmp_path / "home"), HF_TOKEN=WRITE_TOKEN)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(SRC), env.get("PYTHONPATH")]))
    command = [
        sys.executable,
        "-m",
        "sora_hf.cli",
        "push",
        "--folder",
        str(source),
        "--repo-id",
        "cli-bare-name",
    ]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "Pushed" in done.stdout and "sora-tester/cli-bare-name@" in done.stdout
    assert set(HfApi().list_repo_files("sora-tester/cli-bare-name")) == {
        ".gitattributes",
        *folder_state(source),
    }
