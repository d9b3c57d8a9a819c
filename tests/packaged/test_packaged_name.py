"""The name `sora`: every Sora class resolves it to the packaged checkpoint through one mixin; the Auto classes and
`pipeline()`, which look names up on the Hub, fail with a message that says what to pass instead."""

import os

import pytest
import torch
from transformers import (
    AutoConfig,
    AutoModel,
    AutoModelForMaskedLM,
    AutoProcessor,
    AutoTokenizer,
    pipeline,
)

from sora_hf import (
    SoraConfig,
    SoraFeatureExtractor,
    SoraForMaskedLM,
    SoraImageProcessor,
    SoraModel,
    SoraProcessor,
    SoraTokenizer,
    packaged_checkpoint_path,
)
from sora_hf.packaged import PackagedNameMixin

AUTO_LOOKUPS = {
    "AutoConfig": lambda: AutoConfig.from_pretrained("sora"),
    "AutoModel": lambda: AutoModel.from_pretrained("sora"),
    "AutoModelForMaskedLM": lambda: AutoModelForMaskedLM.from_pretrained("sora"),
    "AutoTokenizer": lambda: AutoTokenizer.from_pretrained("sora"),
    "AutoProcessor": lambda: AutoProcessor.from_pretrained("sora"),
    "pipeline": lambda: pipeline("fill-mask", model="sora"),
}


@pytest.fixture(scope="module")
def hub_without_sora(tmp_path_factory):
    """A Hub of this module's own (the shared one checks that nobody asks it for missing routes), clients pointed at
    it: no repo is named `sora` there."""
    from hub_server import LocalHub, clients_pointed_at

    hub = LocalHub(tmp_path_factory.mktemp("hub_without_sora")).start()
    with clients_pointed_at(hub.endpoint, tmp_path_factory.mktemp("hf_home")):
        yield hub
    hub.stop()


def test_every_sora_class_resolves_the_name_through_one_mixin():
    for sora_class in (
        SoraConfig,
        SoraModel,
        SoraForMaskedLM,
        SoraTokenizer,
        SoraImageProcessor,
        SoraFeatureExtractor,
    ):
        assert issubclass(sora_class, PackagedNameMixin), sora_class
    assert SoraConfig.from_pretrained("sora").vocab_size == 12000
    tokenizer = SoraTokenizer.from_pretrained("sora")
    assert len(tokenizer) == 12000
    assert type(SoraProcessor.from_pretrained("sora")) is type(
        tokenizer
    )  # a text-only folder gives its tokenizer
    by_name = SoraForMaskedLM.from_pretrained("sora").eval()
    by_path = SoraForMaskedLM.from_pretrained(packaged_checkpoint_path("sora")).eval()
    batch = tokenizer(["the cat sat on the <mask>."], return_tensors="pt")
    with torch.no_grad():
        assert torch.equal(by_name(**batch).logits, by_path(**batch).logits)


def test_a_local_folder_named_sora_wins(tmp_path, monkeypatch):
    SoraConfig(vocab_size=77, hidden_size=16, num_hidden_layers=1, num_attention_heads=2).save_pretrained(
        tmp_path / "sora"
    )
    monkeypatch.chdir(tmp_path)
    assert SoraConfig.from_pretrained("sora").vocab_size == 77
    assert AutoConfig.from_pretrained("sora").vocab_size == 77  # a folder: the Auto classes find it too


@pytest.mark.parametrize("lookup", AUTO_LOOKUPS, ids=str)
def test_auto_classes_and_pipeline_name_the_packaged_path(lookup, hub_without_sora):
    """Against a Hub that has no repo `sora` (the local test Hub), each lookup fails with the path to pass."""
    with pytest.raises(OSError) as raised:
        AUTO_LOOKUPS[lookup]()
    message = str(raised.value)
    assert "ships inside sora_hf" in message and "sora_hf.packaged_checkpoint_path('sora')" in message
    assert "huggingface.co" not in message


def test_other_missing_names_keep_transformers_error(hub_without_sora):
    with pytest.raises(OSError) as raised:
        AutoConfig.from_pretrained("no-such-model-anywhere")
    assert "sora_hf" not in str(raised.value)


def test_auto_classes_and_pipeline_load_the_packaged_path():
    path = packaged_checkpoint_path("sora")
    assert os.path.isdir(path)
    fill = pipeline("fill-mask", model=path, top_k=3)
    assert len(fill("the cat sat on the <mask>.")) == 3
    assert type(AutoModelForMaskedLM.from_pretrained(path)) is SoraForMaskedLM
