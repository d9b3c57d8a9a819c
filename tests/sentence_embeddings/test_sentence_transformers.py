"""Sora's distilled sentence space through sentence-transformers: saved folders, the packaged `sora`, bad input."""

import json

import pytest
import torch
from conftest import save_tiny_sora
from safetensors.torch import load_file
from transformers import AutoProcessor

sentence_transformers = pytest.importorskip("sentence_transformers")

from sora_hf import SoraConfig, SoraForPreTraining, SoraModel, SoraTokenizer, packaged_checkpoint_path  # noqa: E402
from sora_hf.sentence_embeddings import (  # noqa: E402
    load_sentence_transformer,
    save_sentence_transformer,
    write_sentence_transformer_modules,
)

TEXTS = [
    "The cat sat on the mat.",
    "A dog is running in the park with a ball.",
    "Rain again today.",
    "She reads a long book about the history of the river and the old city by the sea.",
    "The cat is sleeping.",
    "We walked to the market in the morning.",
] * 4
BATCH = TEXTS[:6]  # very different lengths: the batch is padded


@pytest.fixture(scope="module")
def tiny_folder(tmp_path_factory):
    """A tiny encoder-decoder pretraining checkpoint with mean pooling and a 24-d sentence head."""
    folder = tmp_path_factory.mktemp("tiny_sora")
    return save_tiny_sora(
        folder, TEXTS, sentence_embedding_size=24, classifier_pooling="mean", is_encoder_decoder=True
    )


def sentence_embeddings(folder, texts):
    model = SoraForPreTraining.from_pretrained(folder).eval()
    batch = SoraTokenizer.from_pretrained(folder)(texts, padding=True, return_tensors="pt")
    assert (batch["attention_mask"] == 0).any()
    with torch.no_grad():
        return model(**batch).sentence_embeddings


@pytest.mark.parametrize("normalize", [True, False])
def test_saved_folder_encodes_like_the_model(tiny_folder, tmp_path, normalize):
    folder = save_sentence_transformer(tiny_folder, tmp_path / "st", normalize=normalize)
    model = sentence_transformers.SentenceTransformer(folder, device="cpu")
    assert isinstance(model[0].auto_model, SoraModel) and model[0].auto_model.decoder is None
    assert model.get_embedding_dimension() == 24
    expected = sentence_embeddings(tiny_folder, BATCH)
    if normalize:
        expected = torch.nn.functional.normalize(expected, dim=-1)
    encoded = model.encode(BATCH, convert_to_tensor=True, batch_size=len(BATCH))
    torch.testing.assert_close(encoded, expected, atol=1e-5, rtol=0)
    # one at a time (no padding) gives the same vectors
    torch.testing.assert_close(
        model.encode(BATCH, convert_to_tensor=True, batch_size=1), encoded, atol=1e-5, rtol=0
    )


def test_modules_written_in_place_read_the_encoder_only(tiny_folder, tmp_path):
    import shutil

    folder = shutil.copytree(tiny_folder, tmp_path / "in_place")
    weights_before = (folder / "model.safetensors").read_bytes()
    written = write_sentence_transformer_modules(folder, folder)
    assert (folder / "model.safetensors").read_bytes() == weights_before  # the checkpoint is not rewritten
    assert set(written) >= {"modules.json", "2_Dense", "3_Dense", "4_Normalize"}
    config = json.loads((folder / "sentence_bert_config.json").read_text())
    assert config["config_kwargs"] == {"is_encoder_decoder": False}
    model = load_sentence_transformer(folder, device="cpu")
    assert model[0].auto_model.decoder is None
    expected = torch.nn.functional.normalize(sentence_embeddings(folder, BATCH), dim=-1)
    torch.testing.assert_close(model.encode(BATCH, convert_to_tensor=True), expected, atol=1e-5, rtol=0)


def test_packaged_sora_loads_as_a_sentence_transformer():
    model = load_sentence_transformer("sora", device="cpu")
    assert model[0].auto_model.decoder is None and model.max_seq_length == 128
    embeddings = model.encode(["A man is playing a guitar.", "Someone plays the guitar.", "The stock fell."])
    assert embeddings.shape == (3, 384)
    torch.testing.assert_close(torch.from_numpy(embeddings).norm(dim=-1), torch.ones(3), atol=1e-5, rtol=0)
    similarity = model.similarity(embeddings, embeddings)
    assert similarity[0, 1] > similarity[0, 2]


def test_packaged_dense_modules_match_the_packaged_weights():
    """The small Dense copies must be re-written whenever the packaged weights change (package script does)."""
    folder = packaged_checkpoint_path()
    weights = load_file(f"{folder}/model.safetensors")
    for module, prefix in (("2_Dense", "pooler.dense"), ("3_Dense", "sentence_embedding_head")):
        dense = load_file(f"{folder}/{module}/model.safetensors")
        for name in ("weight", "bias"):
            assert torch.equal(dense[f"linear.{name}"], weights[f"{prefix}.{name}"])


def test_text_only_folder_gives_its_tokenizer_through_auto_processor(tiny_folder):
    assert isinstance(AutoProcessor.from_pretrained(tiny_folder), SoraTokenizer)


def test_bad_input_is_refused(tiny_folder, tmp_path):
    no_head = tmp_path / "no_head"
    SoraForPreTraining(
        SoraConfig(hidden_size=32, num_hidden_layers=1, num_attention_heads=4)
    ).save_pretrained(no_head)
    with pytest.raises(ValueError, match="no sentence-embedding head"):
        save_sentence_transformer(no_head, tmp_path / "st")
    with pytest.raises(ValueError, match="SoraForPreTraining"):
        save_sentence_transformer(SoraModel.from_pretrained(tiny_folder), tmp_path / "st")
    with pytest.raises(ValueError, match="tokenizer="):
        save_sentence_transformer(SoraForPreTraining.from_pretrained(tiny_folder), tmp_path / "st")
    with pytest.raises(ValueError, match="max_seq_length"):
        save_sentence_transformer(tiny_folder, tmp_path / "st", max_seq_length=1000)
    with pytest.raises(ValueError, match="no config.json"):
        write_sentence_transformer_modules(tiny_folder, tmp_path / "empty")
    with pytest.raises(ValueError, match="no modules.json"):
        load_sentence_transformer(tiny_folder)
