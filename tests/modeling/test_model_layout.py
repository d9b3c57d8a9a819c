"""The shape of the model code (issue 24): thin heads over one encoder call, the encoder's output carrying its mask
and text length, one output type per class, and one attention layout through each layer."""

import inspect

import pytest
import torch
from datasets import Dataset
from transformers import Trainer, TrainingArguments

from sora_hf import (
    SoraConfig,
    SoraForMaskedLM,
    SoraForPreTraining,
    SoraForQuestionAnswering,
    SoraForSequenceClassification,
    SoraForTokenClassification,
    SoraModel,
)
from sora_hf.modeling_sora import SoraModelOutput
from sora_hf.modeling_sora_base import ENCODER_INPUTS, SoraEncoderLayer, SoraEncoderOutput
from sora_hf.modeling_sora_fusion import SoraFusionPooler
from sora_hf.modeling_sora_heads import SoraPooler

TINY = dict(
    vocab_size=60,
    hidden_size=16,
    num_hidden_layers=2,
    num_attention_heads=2,
    intermediate_size=32,
    num_labels=3,
)
VISION = dict(
    hidden_size=8,
    num_hidden_layers=1,
    num_attention_heads=2,
    intermediate_size=16,
    image_size=8,
    patch_size=4,
)
AUDIO = dict(hidden_size=8, num_hidden_layers=1, num_attention_heads=2, intermediate_size=16, num_mel_bins=4)
ENCODER_HEADS = [
    SoraForPreTraining,
    SoraForMaskedLM,
    SoraForSequenceClassification,
    SoraForTokenClassification,
    SoraForQuestionAnswering,
]


def padded_batch(batch: int = 3, length: int = 7) -> dict[str, torch.Tensor]:
    input_ids = torch.randint(5, 60, (batch, length), generator=torch.Generator().manual_seed(0))
    attention_mask = (torch.arange(length) < torch.tensor([length, 4, 2][:batch])[:, None]).long()
    return dict(input_ids=input_ids.masked_fill(attention_mask == 0, 0), attention_mask=attention_mask)


@pytest.mark.parametrize("head", ENCODER_HEADS, ids=lambda head: head.__name__)
def test_a_plain_trainer_keeps_every_encoder_input_column(head, tmp_path):
    """Heads pass the encoder's inputs through `**kwargs`, yet their signature names them, so `Trainer`'s
    `remove_unused_columns` keeps token_type_ids, images and audio and drops only what no input uses."""
    parameters = inspect.signature(head.forward).parameters
    assert set(ENCODER_INPUTS) <= set(parameters)
    rows = 4
    dataset = Dataset.from_dict(
        {
            "input_ids": [[1, 5, 6, 2]] * rows,
            "attention_mask": [[1, 1, 1, 1]] * rows,
            "token_type_ids": [[0, 0, 1, 1]] * rows,
            "pixel_values": torch.zeros(rows, 3, 8, 8).tolist(),
            "not_an_input": ["x"] * rows,
        }
    )
    config = SoraConfig(**TINY, vision_config=VISION)
    trainer = Trainer(
        head(config),
        TrainingArguments(tmp_path, per_device_train_batch_size=2, report_to="none", use_cpu=True),
        train_dataset=dataset,
    )
    batch = next(iter(trainer.get_train_dataloader()))
    assert {"input_ids", "attention_mask", "token_type_ids", "pixel_values"} <= set(batch)
    assert "not_an_input" not in batch


def test_the_encoder_output_carries_its_mask_and_text_length():
    torch.manual_seed(0)
    batch = padded_batch()
    text_model = SoraModel(SoraConfig(**TINY)).eval()
    outputs = text_model.encoder(**batch)
    assert isinstance(outputs, SoraEncoderOutput)
    assert outputs.text_length == 7 and torch.equal(outputs.attention_mask, batch["attention_mask"])
    assert torch.equal(outputs.text_hidden_states, outputs.last_hidden_state)

    fused_model = SoraModel(SoraConfig(**TINY, vision_config=VISION, audio_config=AUDIO)).eval()
    features = torch.randn(3, 4, 12)
    feature_mask = (torch.arange(12) < torch.tensor([12, 8, 4])[:, None]).long()
    outputs = fused_model.encoder(
        **batch,
        pixel_values=torch.randn(3, 3, 8, 8),
        input_features=features,
        feature_attention_mask=feature_mask,
    )
    # 7 text positions, 4 image patches, 3 audio frames after two stride-2 convolutions
    assert outputs.text_length == 7 and outputs.last_hidden_state.shape[1] == 7 + 4 + 3
    assert outputs.text_hidden_states.shape[1] == 7
    assert outputs.attention_mask[:, :7].equal(batch["attention_mask"])
    assert outputs.attention_mask[:, 7:11].eq(1).all()
    assert outputs.attention_mask[:, 11:].sum(1).tolist() == [3, 2, 1]


def test_poolers_read_the_hidden_states_and_the_encoder_output():
    torch.manual_seed(0)
    config = SoraConfig(**TINY, vision_config=VISION)
    model = SoraModel(config).eval()
    batch = padded_batch()
    text = model.encoder(**batch)
    fused = model.encoder(**batch, pixel_values=torch.randn(3, 3, 8, 8))
    mean_pooler, first_pooler, fusion_pooler = (
        SoraPooler(config, mean=True),
        SoraPooler(config),
        SoraFusionPooler(config),
    )
    for pooler in (mean_pooler, first_pooler, fusion_pooler):
        assert list(inspect.signature(pooler.forward).parameters) == ["hidden_states", "encoder_output"]
    mask = batch["attention_mask"].unsqueeze(-1).float()
    expected_mean = (text.last_hidden_state * mask).sum(1) / mask.sum(1)
    assert torch.allclose(
        mean_pooler(text.last_hidden_state, text), torch.tanh(mean_pooler.dense(expected_mean))
    )
    # Text alone: the fusion pooler is the `<s>` summary; with an image it adds the bilinear term.
    first = torch.tanh(fusion_pooler.dense(text.last_hidden_state[:, 0]))
    assert torch.equal(fusion_pooler(text.last_hidden_state, text), first)
    assert not torch.allclose(
        fusion_pooler(fused.last_hidden_state, fused),
        torch.tanh(fusion_pooler.dense(fused.last_hidden_state[:, 0])),
    )


@pytest.mark.parametrize("is_encoder_decoder", [False, True])
def test_the_bare_model_returns_one_output_type(is_encoder_decoder):
    model = SoraModel(SoraConfig(**TINY, is_encoder_decoder=is_encoder_decoder)).eval()
    outputs = model(**padded_batch(), output_hidden_states=True)
    assert type(outputs) is SoraModelOutput
    if is_encoder_decoder:
        assert outputs.encoder_last_hidden_state.shape == (3, 7, 16)
        assert len(outputs.decoder_hidden_states) == 3 and outputs.hidden_states is None
    else:
        assert outputs.encoder_last_hidden_state is None and len(outputs.hidden_states) == 3


def test_each_layer_keeps_one_layout():
    """Padded text runs as its real tokens alone through every layer (in and out); recording attentions runs the
    layers padded instead. Nothing pads or unpads inside a layer."""
    model = SoraModel(SoraConfig(**TINY)).eval()
    batch = padded_batch()
    shapes = []

    def record(module, args, output):
        shapes.append((tuple(args[0].shape), tuple(output.shape)))

    handles = [layer.register_forward_hook(record) for layer in model.encoder.layers]
    assert all(isinstance(layer, SoraEncoderLayer) for layer in model.encoder.layers)
    real = int(batch["attention_mask"].sum())
    model.encoder(**batch)
    assert shapes == [((real, 16), (real, 16))] * 2
    shapes.clear()
    model.encoder(**batch, output_attentions=True)
    assert shapes == [((3, 7, 16), (3, 7, 16))] * 2
    for handle in handles:
        handle.remove()


@pytest.mark.parametrize("head", ENCODER_HEADS, ids=lambda head: head.__name__)
def test_each_head_calls_the_encoder_once(head):
    model = head(SoraConfig(**TINY)).eval()
    calls = []
    model.model.encoder.register_forward_hook(lambda *args: calls.append(1))
    model(**padded_batch(), token_type_ids=torch.zeros(3, 7, dtype=torch.long))
    assert len(calls) == 1


@pytest.mark.parametrize("recorded", [{}, {"output_hidden_states": True}])
def test_encoder_outputs_given_as_a_tuple_keep_their_mask(recorded):
    """`encoder_outputs` from `return_dict=False` (states, mask, text length and per-layer states in any order) give
    the same logits as the encoder run inside, its padding mask included."""
    from sora_hf import SoraForConditionalGeneration

    torch.manual_seed(0)
    model = SoraForConditionalGeneration(SoraConfig(**TINY, is_encoder_decoder=True)).eval()
    batch = padded_batch()
    decoder_input_ids = batch["input_ids"][:, :4]
    expected = model(**batch, decoder_input_ids=decoder_input_ids).logits
    encoder_tuple = model.get_encoder()(**batch, return_dict=False, **recorded)
    outputs = model(encoder_outputs=encoder_tuple, decoder_input_ids=decoder_input_ids, **recorded)
    assert torch.equal(outputs.logits, expected)
    if recorded:
        assert len(outputs.encoder_hidden_states) == 3
