"""Pushing and pulling when things go wrong: no token, a bad token, a missing repo, a server that dies mid-way."""

import hashlib
import json
from pathlib import Path

import pytest
import torch
from conftest import TINY_SORA
from hub_server import OTHER_TOKEN, READ_TOKEN, WRITE_TOKEN, clients_pointed_at
from huggingface_hub import HfApi
from huggingface_hub.errors import HfHubHTTPError, RepositoryNotFoundError, RevisionNotFoundError
from transformers import AutoModelForSequenceClassification

from sora_hf import SoraConfig, SoraForSequenceClassification
from sora_hf.cli import main as cli
from sora_hf.hub import pull_repo, push_folder


def tiny_model(seed: int) -> SoraForSequenceClassification:
    torch.manual_seed(seed)
    config = SoraConfig(**{**TINY_SORA, "vocab_size": 300, "num_labels": 2})
    return SoraForSequenceClassification(config)


def folder_state(folder: Path) -> dict[str, str]:
    """Every file under `folder` (recursively) and the sha256 of its bytes."""
    return {
        str(path.relative_to(folder)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(folder.rglob("*"))
        if path.is_file()
    }


def saved_folder(path: Path, seed: int, notes: str | None = None) -> Path:
    tiny_model(seed).save_pretrained(path)
    if notes is not None:
        (path / "notes").mkdir()
        (path / "notes" / "run.txt").write_text(notes)
    return path


@pytest.fixture
def fresh_hub(fresh_hub_server, tmp_path):
    """A Hub server of the test's own (it gets broken and restarted), with the clients pointed at it."""
    with clients_pointed_at(fresh_hub_server.endpoint, tmp_path / "hf_home"):
        yield fresh_hub_server


def test_push_without_a_token(hub, tmp_path, capsys):
    folder = saved_folder(tmp_path / "model", seed=0)
    with pytest.raises(HfHubHTTPError, match="401") as raised:
        tiny_model(0).push_to_hub("sora-tester/no-token")
    assert raised.value.response.status_code == 401
    with pytest.raises(ValueError, match="No Hugging Face token"):
        push_folder(folder, "sora-tester/no-token")
    assert cli(["push", "--folder", str(folder), "--repo-id", "sora-tester/no-token"]) == 1
    assert "No Hugging Face token" in capsys.readouterr().err
    assert not HfApi().repo_exists("sora-tester/no-token", token=WRITE_TOKEN)


def test_push_with_a_bad_token(hub, tmp_path, capsys):
    folder = saved_folder(tmp_path / "model", seed=0)
    with pytest.raises(HfHubHTTPError, match="Invalid credentials in Authorization header"):
        tiny_model(0).push_to_hub("sora-tester/bad-token", token="hf_revoked_token")
    with pytest.raises(ValueError, match="rejected the token"):
        push_folder(folder, "sora-tester/bad-token", token="hf_revoked_token")
    args = [
        "push",
        "--folder",
        str(folder),
        "--repo-id",
        "sora-tester/bad-token",
        "--token",
        "hf_revoked_token",
    ]
    assert cli(args) == 1
    assert "rejected the token (401 Unauthorized)" in capsys.readouterr().err
    assert not HfApi().repo_exists("sora-tester/bad-token", token=WRITE_TOKEN)


def test_push_without_write_rights(hub, tmp_path):
    folder = saved_folder(tmp_path / "model", seed=0)
    with pytest.raises(HfHubHTTPError, match="read-only") as raised:
        push_folder(folder, "sora-tester/read-only-push", token=READ_TOKEN)
    assert raised.value.response.status_code == 403
    with pytest.raises(HfHubHTTPError, match="rights to write in the namespace 'sora-tester'"):
        push_folder(folder, "sora-tester/not-yours", token=OTHER_TOKEN)


def test_missing_repo_and_revision(hub, tmp_path, capsys):
    folder = saved_folder(tmp_path / "model", seed=0)
    with pytest.raises(RepositoryNotFoundError, match="'sora-tester/does-not-exist' does not exist"):
        pull_repo("sora-tester/does-not-exist", tmp_path / "pulled")
    assert not (tmp_path / "pulled").exists()
    assert (
        cli(["pull", "--repo-id", "sora-tester/does-not-exist", "--local-dir", str(tmp_path / "pulled")]) == 1
    )
    assert "Repository Not Found" in capsys.readouterr().err
    with pytest.raises(RepositoryNotFoundError, match="'sora-tester/does-not-exist' does not exist"):
        push_folder(folder, "sora-tester/does-not-exist", token=WRITE_TOKEN, create=False)
    with pytest.raises(OSError, match="sora-tester/does-not-exist"):
        AutoModelForSequenceClassification.from_pretrained("sora-tester/does-not-exist")

    push_folder(folder, "sora-tester/has-no-branch", token=WRITE_TOKEN)
    with pytest.raises(RevisionNotFoundError):
        pull_repo("sora-tester/has-no-branch", tmp_path / "pulled", revision="no-such-branch")
    assert not (tmp_path / "pulled").exists()
    with pytest.raises(ValueError, match="is not a folder with files"):
        push_folder(tmp_path / "nothing-here", "sora-tester/has-no-branch", token=WRITE_TOKEN)


def test_server_dies_during_the_commit(fresh_hub, tmp_path, capsys):
    """The commit lands whole or not at all; the local folder is untouched; the same push works afterwards."""
    repo_id = "sora-tester/crash-commit"
    api = HfApi(token=WRITE_TOKEN)
    first = saved_folder(tmp_path / "v1", seed=0)
    assert cli(["push", "--folder", str(first), "--repo-id", repo_id, "--token", WRITE_TOKEN]) == 0
    before = api.model_info(repo_id)
    before_files = {path: api.hf_hub_download(repo_id, path) for path in api.list_repo_files(repo_id)}

    second = saved_folder(tmp_path / "v2", seed=1, notes="trained longer")
    local_before = folder_state(second)
    blobs = fresh_hub.root / "blobs"
    blob_count = len(list(blobs.iterdir()))
    fresh_hub.stop()
    fresh_hub.start(fault="die-mid-commit")

    args = ["push", "--folder", str(second), "--repo-id", repo_id, "--token", WRITE_TOKEN]
    assert cli(args) == 1
    error = capsys.readouterr().err
    assert "Lost the connection to the Hub" in error and "run the same push again" in error
    assert fresh_hub.wait_for_exit() == 70  # the server process really died inside the commit call
    assert len(list(blobs.iterdir())) > blob_count  # ... after storing some of the new files

    fresh_hub.start()
    after = api.model_info(repo_id)
    assert after.sha == before.sha
    assert sorted(sibling.rfilename for sibling in after.siblings) == sorted(before_files)
    assert "notes/run.txt" not in api.list_repo_files(repo_id)
    for path, local_copy in before_files.items():  # what was there is still there, byte for byte
        fresh = api.hf_hub_download(repo_id, path, force_download=True)
        assert Path(fresh).read_bytes() == Path(local_copy).read_bytes()
    assert folder_state(second) == local_before  # the folder being pushed was only read

    assert cli(args) == 0  # the server is back: the same push goes through
    pulled = pull_repo(repo_id, tmp_path / "pulled")
    assert {k: v for k, v in folder_state(pulled).items() if k != ".gitattributes"} == local_before
    commits = api.list_repo_commits(repo_id)
    assert len(commits) == 3  # creation, v1, v2: the failed attempt left no commit


def test_transformers_push_to_a_dying_server(fresh_hub):
    """`model.push_to_hub` raises when the server dies mid-commit, and works against the restarted server."""
    repo_id = "sora-tester/crash-push-to-hub"
    model = tiny_model(0)
    HfApi(token=WRITE_TOKEN).create_repo(repo_id)
    fresh_hub.stop()
    fresh_hub.start(fault="die-mid-commit")
    with pytest.raises(Exception, match="Server disconnected without sending a response"):
        model.push_to_hub(repo_id, token=WRITE_TOKEN)
    fresh_hub.wait_for_exit()
    fresh_hub.start()
    assert HfApi().list_repo_files(repo_id) == [".gitattributes"]
    model.push_to_hub(repo_id, token=WRITE_TOKEN)
    reloaded = AutoModelForSequenceClassification.from_pretrained(repo_id)
    for name, tensor in model.state_dict().items():
        assert torch.equal(reloaded.state_dict()[name], tensor), name


def test_server_dies_during_a_pull(fresh_hub, tmp_path):
    """A pull cut short leaves nothing at --local-dir (and no staging folder); pulling again works."""
    repo_id = "sora-tester/crash-pull"
    source = saved_folder(tmp_path / "model", seed=0, notes="pulled twice")
    push_folder(source, repo_id, token=WRITE_TOKEN)
    fresh_hub.stop()
    # The last file breaks, after the others are downloaded. One worker, so no other download is in flight
    # when the server dies (huggingface_hub would retry those with backoffs of up to 23 s).
    fresh_hub.start(fault="die-mid-download:notes/run.txt")
    target = tmp_path / "downloads" / "crash-pull"
    with pytest.raises(ConnectionError, match="run the same pull again"):
        pull_repo(repo_id, target, max_workers=1)
    assert fresh_hub.wait_for_exit() == 70
    assert list((tmp_path / "downloads").iterdir()) == []

    fresh_hub.start()
    pull_repo(repo_id, target)
    assert {k: v for k, v in folder_state(target).items() if k != ".gitattributes"} == folder_state(source)


def test_pushing_to_a_stopped_server(fresh_hub, tmp_path):
    folder = saved_folder(tmp_path / "model", seed=0)
    fresh_hub.stop()
    with pytest.raises(ConnectionError, match="Lost the connection to the Hub"):
        push_folder(folder, "sora-tester/nobody-home", token=WRITE_TOKEN)
    fresh_hub.start()
    commit = push_folder(folder, "sora-tester/nobody-home", token=WRITE_TOKEN)
    assert (
        json.loads(Path(HfApi().hf_hub_download("sora-tester/nobody-home", "config.json")).read_text())[
            "model_type"
        ]
        == "sora"
    )
    assert commit.oid == HfApi().model_info("sora-tester/nobody-home").sha
