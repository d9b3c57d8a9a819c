"""The packaged pretrained `sora`: every Sora class and the Auto classes load it, and it is really pretrained."""

import os

import pytest
import torch
from transformers import AutoModelForMaskedLM, AutoModelForSeq2SeqLM, AutoTokenizer, pipeline

import sora_hf
from sora_hf import (
    SoraConfig,
    SoraForConditionalGeneration,
    SoraForMaskedLM,
    SoraForPreTraining,
    SoraForQuestionAnswering,
    SoraForSequenceClassification,
    SoraForTokenClassification,
    SoraModel,
    SoraTokenizer,
)

SORA_CLASSES = [
    SoraModel,
    SoraForPreTraining,
    SoraForMaskedLM,
    SoraForSequenceClassification,
    SoraForTokenClassification,
    SoraForQuestionAnswering,
    SoraForConditionalGeneration,
]


def test_packaged_checkpoint_is_small_safetensors():
    folder = sora_hf.packaged_checkpoint_path("sora")
    files = os.listdir(folder)
    assert "model.safetensors" in files and not any(
        f.endswith((".bin", ".pt", ".pth", ".pkl")) for f in files
    )
    assert os.path.getsize(os.path.join(folder, "model.safetensors")) <= 40 * 2**20


@pytest.mark.parametrize("model_class", SORA_CLASSES)
def test_every_sora_class_loads_sora(model_class):
    model = model_class.from_pretrained("sora")
    reference = SoraForPreTraining.from_pretrained("sora")
    assert torch.equal(
        model.get_input_embeddings().weight, reference.model.encoder.embeddings.word_embeddings.weight
    )


def test_config_and_tokenizer_resolve_sora():
    config = SoraConfig.from_pretrained("sora")
    tokenizer = SoraTokenizer.from_pretrained("sora")
    assert config.is_encoder_decoder and config.vocab_size == len(tokenizer)
    text = "Die Katze schläft; el gato duerme 🐈"
    assert tokenizer.decode(tokenizer(text)["input_ids"], skip_special_tokens=True) == text


def test_a_local_folder_named_sora_wins(tmp_path, monkeypatch):
    local = SoraForMaskedLM(
        SoraConfig(
            vocab_size=50, hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=32
        )
    )
    local.save_pretrained(tmp_path / "sora")
    monkeypatch.chdir(tmp_path)
    assert SoraForMaskedLM.from_pretrained("sora").config.vocab_size == 50


def test_pretrained_sora_fills_masks_better_than_chance():
    path = sora_hf.packaged_checkpoint_path("sora")
    tokenizer = AutoTokenizer.from_pretrained(path)
    model = AutoModelForMaskedLM.from_pretrained(path).eval()
    sentences = [
        "In the beginning God created the heavens and the earth.",
        "The function returns a list of strings.",
        "A small domesticated animal that is kept as a pet.",
        "This package contains the documentation for the library.",
    ]
    hits = total = 0
    for sentence in sentences:
        ids = tokenizer(sentence, return_tensors="pt")["input_ids"]
        for position in range(1, ids.shape[1] - 1):
            masked = ids.clone()
            masked[0, position] = tokenizer.mask_token_id
            with torch.no_grad():
                prediction = model(input_ids=masked).logits[0, position].argmax()
            hits += int(prediction == ids[0, position])
            total += 1
    assert hits / total > 0.2  # chance is 1/12,000
    fill = pipeline("fill-mask", model=path)
    assert len(fill("The capital of the kingdom was a large <mask>.")) == 5


def test_pretrained_decoder_reconstructs_text():
    path = sora_hf.packaged_checkpoint_path("sora")
    tokenizer = AutoTokenizer.from_pretrained(path)
    model = AutoModelForSeq2SeqLM.from_pretrained(path).eval()
    text = "The function returns a list of strings."
    inputs = tokenizer(text, return_tensors="pt")
    with torch.no_grad():
        loss = model(**inputs, labels=inputs["input_ids"]).loss
    assert float(loss) < 3.0  # a random decoder scores about ln(12,000) = 9.4
