"""Shared pytest fixtures. Each fixture group is owned by the test module family named in its comment."""

import os
import sys
from pathlib import Path

import pytest

TESTS_DIR = Path(__file__).resolve().parent
REPO_ROOT = TESTS_DIR.parent
# the scripts that tests run in subprocesses (`accelerate launch`, kill points)
SCRIPTS_DIR = TESTS_DIR / "scripts"
FIXTURES_DIR = TESTS_DIR / "fixtures"

# the example scripts' shared modules (comparison drivers) import as they do when a script runs
sys.path.insert(0, str(REPO_ROOT / "examples"))

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")


# ---- Local Hub server (owner: tests/hub/) -------------------------------------------------------------------


@pytest.fixture(scope="session")
def hub_server(tmp_path_factory):
    """One local Hub API server process (tests/hub_server.py) shared by the session."""
    from hub_server import LocalHub

    hub = LocalHub(tmp_path_factory.mktemp("hub_server")).start()
    yield hub
    hub.stop()


@pytest.fixture
def fresh_hub_server(tmp_path):
    """A local Hub server of the test's own, for tests that break, stop or restart it."""
    from hub_server import LocalHub

    hub = LocalHub(tmp_path / "hub_server").start()
    yield hub
    hub.stop()


@pytest.fixture
def hub(hub_server, tmp_path):
    """The session's Hub server, with huggingface_hub and transformers pointed at it and an empty cache."""
    from hub_server import clients_pointed_at

    with clients_pointed_at(hub_server.endpoint, tmp_path / "hf_home"):
        yield hub_server


def finetune_on_user_file(task: str, checkpoint, data_file, output_dir, *options: str) -> int:
    """`sora-hf finetune --task TASK` for two steps on the user's file (train = validation = test); its exit code."""
    from sora_hf.cli import main as cli_main

    files = [arg for split in ("train", "validation", "test") for arg in (f"--{split}_file", str(data_file))]
    return cli_main(
        ["finetune", "--task", task, "--model_name_or_path", str(checkpoint), *files, *options]
        + ["--output_dir", str(output_dir), "--max_steps", "2", "--report_to", "none", "--use_cpu"]
        + ["--save_strategy", "no"]
    )


# ---- Tiny Sora sizes (owner: every test module that builds a tiny text model) ------------------------------

TINY_SORA = dict(
    vocab_size=120,
    hidden_size=32,
    num_hidden_layers=2,
    num_attention_heads=4,
    intermediate_size=64,
    max_position_embeddings=64,
    num_labels=3,
)


# A tokenizer corpus for tiny checkpoints, and a batch of three lengths (padded on the right) to run them on.
TEXTS = [
    "the cat sat on the mat",
    "a dog ran in the park",
    "the bird sang a song in the tree",
    "rain fell on the quiet town",
] * 10
BATCH = ["the cat", "a dog ran in the park", "the bird sang a song in the tree on the mat"]


@pytest.fixture(scope="session")
def tiny_tokenizer():
    """A BPE tokenizer (300 tokens) trained on `TEXTS`, shared by the session: tests only read it."""
    from sora_hf import train_sora_tokenizer

    return train_sora_tokenizer(iter(TEXTS), vocab_size=300, min_frequency=1)


def tiny_encoder_decoder_config(tokenizer, **overrides):
    """A tiny encoder-decoder `SoraConfig` (hidden 32, 2 + 1 layers, 64 positions) sized for `tokenizer`."""
    from sora_hf import SoraConfig

    settings = dict(
        vocab_size=len(tokenizer),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=64,
        decoder_layers=1,
        is_encoder_decoder=True,
        max_position_embeddings=64,
    )
    return SoraConfig(**{**settings, **overrides})


# ---- Tiny Sora checkpoints (owner: the test modules that build one: training/runner, hub, ...) -------------


def save_tiny_sora(folder, texts, *, vocab_size=600, min_frequency=2, model_class=None, **config) -> str:
    """Save a tiny Sora (hidden 32, 2 layers, 4 heads) and a BPE tokenizer trained on `texts` in `folder`.

    `model_class` defaults to `SoraForPreTraining` (a pretraining checkpoint, like `sora`); `config` overrides
    or adds `SoraConfig` fields (`max_position_embeddings` defaults to 128). The weights are drawn after
    `torch.manual_seed(0)`. Returns `folder` as a string.
    """
    import torch

    from sora_hf import SoraConfig, SoraForPreTraining, train_sora_tokenizer

    tokenizer = train_sora_tokenizer(iter(texts), vocab_size=vocab_size, min_frequency=min_frequency)
    torch.manual_seed(0)
    sizes = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=64)
    config = SoraConfig(vocab_size=len(tokenizer), **sizes, **{"max_position_embeddings": 128, **config})
    (model_class or SoraForPreTraining)(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return str(folder)


@pytest.fixture(scope="session")
def sentiment_checkpoint(tmp_path_factory) -> str:
    """A tiny pretraining Sora with a tokenizer (300 tokens) trained on 400 sentiment texts; tests only read it."""
    from sora_hf.data.tasks import load_task_dataset

    texts = load_task_dataset("sentiment")["train"].select(range(400))["text"]
    return save_tiny_sora(tmp_path_factory.mktemp("tiny-sora-sentiment"), texts, vocab_size=300)


def save_tiny_classifier(folder, texts) -> Path:
    """Save a tiny two-label `SoraForSequenceClassification` (64 positions) and a tokenizer (300 tokens) trained on
    `texts` in `folder`."""
    from sora_hf import SoraForSequenceClassification

    save_tiny_sora(
        folder,
        texts,
        vocab_size=300,
        min_frequency=1,
        model_class=SoraForSequenceClassification,
        max_position_embeddings=64,
        num_labels=2,
    )
    return Path(folder)
