"""Round trips through the local Hub with the real clients: push with transformers/peft/Trainer, load it back.

Every push and load below is the library's own Hub code; only `HF_ENDPOINT` points at tests/hub_server.py.
"""

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import REPO_ROOT, TINY_SORA
from datasets import Dataset
from hub_server import WRITE_TOKEN, clients_pointed_at
from huggingface_hub import HfApi, ModelCard, snapshot_download
from huggingface_hub.errors import RepositoryNotFoundError
from peft import AutoPeftModelForSequenceClassification, LoraConfig, TaskType, get_peft_model
from transformers import (
    AutoModelForSequenceClassification,
    AutoTokenizer,
    TrainingArguments,
    pipeline,
)

from sora_hf import SoraConfig, SoraForSequenceClassification, train_sora_tokenizer
from sora_hf.training.trainer import SoraTrainer

REPO = "sora-tester/tiny-sora-classifier"
ADAPTER_REPO = "sora-tester/tiny-sora-classifier-lora"
TEXTS = [
    "the movie was great and the music was lovely",
    "terrible acting and a boring plot",
    "I loved every minute of it",
    "slow, dull and far too long",
] * 8
LABELS = [1, 0, 1, 0] * 8
SRC = REPO_ROOT / "src"


def tiny_model(tokenizer, seed: int) -> SoraForSequenceClassification:
    torch.manual_seed(seed)
    config = SoraConfig(**{**TINY_SORA, "vocab_size": len(tokenizer), "num_labels": 2})
    return SoraForSequenceClassification(config).eval()


def logits(model, batch) -> torch.Tensor:
    with torch.no_grad():
        return model(**batch).logits


def file_hashes(folder: Path) -> dict[str, str]:
    return {
        str(path.relative_to(folder)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(folder.rglob("*"))
        if path.is_file() and ".cache" not in path.parts
    }


@pytest.fixture(scope="module")
def hub_home(hub_server, tmp_path_factory):
    """Clients pointed at the session's Hub server, for the whole module, with a cache of the module's own."""
    with clients_pointed_at(hub_server.endpoint, tmp_path_factory.mktemp("hf_home")):
        yield hub_server


@pytest.fixture(scope="module")
def published(hub_home):
    """Push a tokenizer, a model on main, another model on branch `dev`, and a LoRA adapter of the first."""
    tokenizer = train_sora_tokenizer(TEXTS, vocab_size=300, min_frequency=1)
    v1, v2 = tiny_model(tokenizer, seed=0), tiny_model(tokenizer, seed=1)
    model_commit = v1.push_to_hub(REPO, token=WRITE_TOKEN).oid
    tokenizer.push_to_hub(REPO, token=WRITE_TOKEN)
    v2.push_to_hub(REPO, token=WRITE_TOKEN, revision="dev")
    tokenizer.push_to_hub(REPO, token=WRITE_TOKEN, revision="dev")

    base = AutoModelForSequenceClassification.from_pretrained(REPO)
    torch.manual_seed(2)
    # init_lora_weights=False: a random (not zero) update, so the adapter visibly changes the outputs.
    lora = LoraConfig(task_type=TaskType.SEQ_CLS, r=4, lora_alpha=8, init_lora_weights=False)
    adapted = get_peft_model(base, lora).eval()
    adapted.push_to_hub(ADAPTER_REPO, token=WRITE_TOKEN)
    batch = tokenizer(TEXTS[:4], return_tensors="pt", padding=True)
    return {
        "tokenizer": tokenizer,
        "v1": v1,
        "v2": v2,
        "adapted": adapted,
        "model_commit": model_commit,
        "batch": batch,
    }


def test_model_and_tokenizer_load_back_bit_identical(published):
    model = AutoModelForSequenceClassification.from_pretrained(REPO).eval()
    tokenizer = AutoTokenizer.from_pretrained(REPO)
    assert type(model).__name__ == "SoraForSequenceClassification"
    assert type(tokenizer).__name__ == "SoraTokenizer"
    assert tokenizer(TEXTS)["input_ids"] == published["tokenizer"](TEXTS)["input_ids"]
    assert torch.equal(logits(model, published["batch"]), logits(published["v1"], published["batch"]))
    for name, tensor in published["v1"].state_dict().items():
        assert torch.equal(model.state_dict()[name], tensor), name


def test_revisions_branch_and_commit(published):
    batch = published["batch"]
    on_dev = AutoModelForSequenceClassification.from_pretrained(REPO, revision="dev").eval()
    at_commit = AutoModelForSequenceClassification.from_pretrained(
        REPO, revision=published["model_commit"]
    ).eval()
    on_main = AutoModelForSequenceClassification.from_pretrained(REPO, revision="main").eval()
    assert torch.equal(logits(on_dev, batch), logits(published["v2"], batch))
    assert torch.equal(logits(at_commit, batch), logits(published["v1"], batch))
    assert torch.equal(logits(on_main, batch), logits(published["v1"], batch))
    assert not torch.equal(logits(on_dev, batch), logits(on_main, batch))
    refs = HfApi().list_repo_refs(REPO)
    assert {branch.name for branch in refs.branches} == {"main", "dev"}


def test_snapshot_download_matches_save_pretrained(published, tmp_path):
    published["v1"].save_pretrained(tmp_path / "local")
    published["tokenizer"].save_pretrained(tmp_path / "local")
    local = file_hashes(tmp_path / "local")
    snapshot = Path(snapshot_download(REPO))
    remote = file_hashes(snapshot)
    assert set(remote) == set(local) | {"README.md", ".gitattributes"}
    assert {name: remote[name] for name in local} == local
    assert (
        snapshot.name == HfApi().model_info(REPO).sha
    )  # the cache folder is named after the resolved commit


def test_pipeline_from_repo_id(published):
    classifier = pipeline("text-classification", model=REPO)
    local = pipeline("text-classification", model=published["v1"], tokenizer=published["tokenizer"])
    assert classifier(TEXTS[:4]) == local(TEXTS[:4])


def test_peft_adapter_round_trip(published):
    api = HfApi()
    files = set(api.list_repo_files(ADAPTER_REPO))
    assert {"adapter_config.json", "adapter_model.safetensors", "README.md"} <= files
    assert "model.safetensors" not in files  # only the adapter travels, the base comes from its own repo
    config = json.loads(Path(api.hf_hub_download(ADAPTER_REPO, "adapter_config.json")).read_text())
    assert config["base_model_name_or_path"] == REPO
    assert set(config["target_modules"]) >= {"qkv_proj"}

    reloaded = AutoPeftModelForSequenceClassification.from_pretrained(ADAPTER_REPO).eval()
    batch = published["batch"]
    assert torch.equal(logits(reloaded, batch), logits(published["adapted"], batch))
    assert not torch.equal(logits(reloaded, batch), logits(published["v1"], batch))


def test_private_repo_needs_the_token(published, hub_home):
    published["v1"].push_to_hub("sora-tester/private-sora", token=WRITE_TOKEN, private=True)
    assert HfApi().model_info("sora-tester/private-sora", token=WRITE_TOKEN).private is True
    with pytest.raises(OSError, match="sora-tester/private-sora"):
        AutoModelForSequenceClassification.from_pretrained("sora-tester/private-sora")
    with pytest.raises(RepositoryNotFoundError):
        snapshot_download("sora-tester/private-sora")
    model = AutoModelForSequenceClassification.from_pretrained("sora-tester/private-sora", token=WRITE_TOKEN)
    assert torch.equal(logits(model.eval(), published["batch"]), logits(published["v1"], published["batch"]))


def test_trainer_push_to_hub_with_model_card(published, tmp_path):
    tokenizer = published["tokenizer"]
    model = tiny_model(tokenizer, seed=3).train()
    data = Dataset.from_dict({"text": TEXTS, "label": LABELS}).map(
        lambda batch: tokenizer(batch["text"], truncation=True, max_length=32),
        batched=True,
        remove_columns=["text"],
    )

    def accuracy(prediction) -> dict[str, float]:
        return {
            "accuracy": float((np.argmax(prediction.predictions, axis=-1) == prediction.label_ids).mean())
        }

    args = TrainingArguments(
        output_dir=str(tmp_path / "run"),
        max_steps=4,
        per_device_train_batch_size=8,
        per_device_eval_batch_size=16,
        learning_rate=1e-3,
        eval_strategy="steps",
        eval_steps=2,
        logging_steps=2,
        save_strategy="no",
        report_to=[],
        use_cpu=True,
        push_to_hub=True,
        hub_model_id="sora-tester/trainer-run",
        hub_token=WRITE_TOKEN,
        hub_strategy="end",
        seed=0,
    )
    trainer = SoraTrainer(
        model=model,
        args=args,
        train_dataset=data,
        eval_dataset=data,
        processing_class=tokenizer,
        compute_metrics=accuracy,
    )
    trainer.train()
    metrics = trainer.evaluate()
    commit = trainer.push_to_hub(dataset="toy-sentiment", dataset_tags="toy-sentiment", license="mit")

    files = set(HfApi().list_repo_files("sora-tester/trainer-run", revision=commit.oid))
    assert {"config.json", "model.safetensors", "tokenizer.json", "README.md"} <= files
    assert "training_args.bin" not in files  # a pickle: SoraTrainer pushes what `sora-hf push` shares
    card = ModelCard.load("sora-tester/trainer-run")
    assert card.data.license == "mit"
    assert card.data.datasets == ["toy-sentiment"]
    assert card.data.pipeline_tag == "text-classification"
    [result] = card.data.eval_results
    assert (result.task_type, result.dataset_name, result.metric_type) == (
        "text-classification",
        "toy-sentiment",
        "accuracy",
    )
    assert result.metric_value == pytest.approx(metrics["eval_accuracy"])
    assert "| Training Loss | Epoch | Step | Validation Loss | accuracy |" in card.text

    reloaded = AutoModelForSequenceClassification.from_pretrained("sora-tester/trainer-run").eval()
    trainer.model.eval()
    batch = tokenizer(TEXTS[:4], return_tensors="pt", padding=True)
    assert torch.equal(logits(reloaded, batch), logits(trainer.model, batch))


FRESH_PROCESS_SCRIPT = """
import json, os, sys
import torch
import sora_hf  # registers Sora with the Auto classes
from huggingface_hub import snapshot_download
from peft import AutoPeftModelForSequenceClassification
from transformers import AutoModelForSequenceClassification, AutoTokenizer, pipeline

repo, adapter_repo, commit, texts, out = sys.argv[1], sys.argv[2], sys.argv[3], json.loads(sys.argv[4]), sys.argv[5]
cache = os.path.join(os.environ["HF_HOME"], "hub")
assert not os.path.exists(cache) or not os.listdir(cache), "the cache must start empty"
tokenizer = AutoTokenizer.from_pretrained(repo)
batch = tokenizer(texts, return_tensors="pt", padding=True)
outputs = {"input_ids": batch["input_ids"]}
with torch.no_grad():
    for name, revision in [("main", None), ("dev", "dev"), ("commit", commit)]:
        model = AutoModelForSequenceClassification.from_pretrained(repo, revision=revision).eval()
        outputs[name] = model(**batch).logits
    outputs["adapter"] = AutoPeftModelForSequenceClassification.from_pretrained(adapter_repo).eval()(**batch).logits
torch.save(outputs, out + ".pt")
snapshot = snapshot_download(repo)
result = {
    "pipeline": pipeline("text-classification", model=repo)(texts),
    "snapshot_files": sorted(os.listdir(snapshot)),
    "cached_repos": sorted(os.listdir(cache)),
}
with open(out + ".json", "w") as f:
    json.dump(result, f)
"""


def test_fresh_process_with_an_empty_cache_gets_identical_outputs(published, hub_home, tmp_path):
    env = dict(os.environ)
    env.update(
        HF_ENDPOINT=hub_home.endpoint, HF_HOME=str(tmp_path / "empty_home"), HF_HUB_DISABLE_TELEMETRY="1"
    )
    env.pop("HF_TOKEN", None)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(SRC), env.get("PYTHONPATH")]))
    out = tmp_path / "fresh"
    args = [REPO, ADAPTER_REPO, published["model_commit"], json.dumps(TEXTS[:4]), str(out)]
    done = subprocess.run(
        [sys.executable, "-c", FRESH_PROCESS_SCRIPT, *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]

    outputs = torch.load(out.with_suffix(".pt"))
    result = json.loads(out.with_suffix(".json").read_text())
    batch = published["batch"]
    assert torch.equal(outputs["input_ids"], batch["input_ids"])
    assert torch.equal(outputs["main"], logits(published["v1"], batch))
    assert torch.equal(outputs["commit"], logits(published["v1"], batch))
    assert torch.equal(outputs["dev"], logits(published["v2"], batch))
    assert torch.equal(outputs["adapter"], logits(published["adapted"], batch))
    local = pipeline("text-classification", model=published["v1"], tokenizer=published["tokenizer"])
    assert result["pipeline"] == local(TEXTS[:4])
    assert "model.safetensors" in result["snapshot_files"] and "tokenizer.json" in result["snapshot_files"]
    assert "models--sora-tester--tiny-sora-classifier" in result["cached_repos"]


def test_the_round_trips_used_the_hub_api(published, hub_home):
    """The calls DESIGN.md lists were all made, and nothing asked for a route the server lacks."""
    routes = {entry["route"] for entry in hub_home.requests()}
    for route in [
        "POST /api/repos/create",
        "POST /api/validate-yaml",
        "POST /api/models/{repo}/preupload/{rev}",
        "POST /api/models/{repo}/commit/{rev}",
        "POST /api/models/{repo}/branch/{branch}",
        "GET /api/models/{repo}",
        "GET /api/models/{repo}/tree/{rev}",
        "HEAD /{repo}/resolve/{rev}/{path}",
        "GET /{repo}/resolve/{rev}/{path}",
    ]:
        assert route in routes, route
    unknown = {entry["path"] for entry in hub_home.requests() if entry["route"] == "no-route"}
    assert unknown <= {"/api/agent-harnesses"}  # huggingface_hub's optional agent registry; a 404 is fine
