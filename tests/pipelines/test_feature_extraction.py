"""`pipeline("feature-extraction")` on a Sora folder gives the encoder's states, also for an encoder-decoder."""

import torch
from transformers import pipeline

from sora_hf import SoraConfig, SoraModel, SoraTokenizer, packaged_checkpoint_path


def test_the_packaged_encoder_decoder_gives_its_encoder_states():
    path = packaged_checkpoint_path("sora")
    assert SoraConfig.from_pretrained(path).is_encoder_decoder
    extractor = pipeline("feature-extraction", model=path)
    text = "the cat sat on the mat."
    features = torch.tensor(extractor(text))
    tokenizer = SoraTokenizer.from_pretrained(path)
    batch = tokenizer(text, return_tensors="pt")
    model = SoraModel.from_pretrained(path).eval()
    with torch.no_grad():
        encoder_states = model.encoder(**batch).last_hidden_state
        decoder_states = model(**batch).last_hidden_state
    assert features.shape == (1, batch["input_ids"].shape[1], 256)
    assert torch.allclose(features, encoder_states, atol=1e-5)
    assert not torch.allclose(features, decoder_states, atol=1e-2)


def test_an_encoder_only_folder_gives_the_same_states(tmp_path):
    path = packaged_checkpoint_path("sora")
    encoder_only = SoraModel.from_pretrained(path, is_encoder_decoder=False)
    encoder_only.save_pretrained(tmp_path)
    SoraTokenizer.from_pretrained(path).save_pretrained(tmp_path)
    text = "rain fell on the quiet town."
    assert torch.allclose(
        torch.tensor(pipeline("feature-extraction", model=str(tmp_path))(text)),
        torch.tensor(pipeline("feature-extraction", model=path)(text)),
        atol=1e-5,
    )
