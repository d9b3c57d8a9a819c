"""Dynamic int8 quantization (`sora_hf.quantization`): every head quantizes, stays close to fp32, saves as
safetensors and reloads to identical outputs; bad input is refused with a `ValueError`."""

import copy
import json
import subprocess
import sys

import pytest
import torch
from conftest import TINY_SORA
from safetensors import safe_open
from transformers import AutoModel, AutoModelForSequenceClassification

import sora_hf
from sora_hf import SoraAudioConfig, SoraConfig, SoraVisionConfig
from sora_hf.quantization import (
    QUANT_METHOD,
    SoraInt8Config,
    SoraInt8Linear,
    is_int8_quantized,
    quantize_int8,
    save_int8,
)

TEXT = TINY_SORA
MULTIMODAL = dict(
    vision_config=SoraVisionConfig(
        hidden_size=16,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=32,
        image_size=16,
        patch_size=4,
    ),
    audio_config=SoraAudioConfig(
        hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=32, num_mel_bins=8
    ),
)
# name -> (class, config overrides, batch builder options)
HEADS = {
    "model": ("SoraModel", {}, {}),
    "sequence_classification": ("SoraForSequenceClassification", {}, {}),
    "sequence_classification_mean": ("SoraForSequenceClassification", {"classifier_pooling": "mean"}, {}),
    "token_classification": ("SoraForTokenClassification", {}, {}),
    "question_answering": ("SoraForQuestionAnswering", {}, {}),
    "masked_lm": ("SoraForMaskedLM", {}, {}),
    "pretraining": ("SoraForPreTraining", {}, {}),
    "pretraining_denoising": ("SoraForPreTraining", {"is_encoder_decoder": True}, {"decoder": True}),
    "conditional_generation": (
        "SoraForConditionalGeneration",
        {"is_encoder_decoder": True},
        {"decoder": True},
    ),
    "multimodal_classification": ("SoraForSequenceClassification", MULTIMODAL, {"media": True}),
    "multimodal_question_answering": ("SoraForQuestionAnswering", MULTIMODAL, {"media": True}),
}
# 8-bit weights (step max|w_row| / 127) and 7-bit activations (step range / 127) each err by about half a percent
# per Linear; chained through ~5 Linears of a random tiny model whose outputs sit near zero, the largest error
# measured is 3% of the largest output (seeds 0-2). 5% leaves room while a wrong scale, transpose or skipped bias
# (errors of the output's own size) still fails.
RELATIVE_TOLERANCE = 0.05


def make_batch(decoder: bool = False, media: bool = False) -> dict[str, torch.Tensor]:
    """Three texts of lengths 12, 7 and 4, padded to 12: the encoder takes its unpadded path."""
    generator = torch.Generator().manual_seed(0)
    input_ids = torch.randint(5, 120, (3, 12), generator=generator)
    attention_mask = (torch.arange(12)[None, :] < torch.tensor([[12], [7], [4]])).long()
    batch = {"input_ids": input_ids.masked_fill(attention_mask == 0, 0), "attention_mask": attention_mask}
    if decoder:
        batch["decoder_input_ids"] = torch.randint(5, 120, (3, 5), generator=generator)
    if media:
        batch["pixel_values"] = torch.randn(3, 3, 16, 16, generator=generator)
        batch["input_features"] = torch.randn(3, 8, 20, generator=generator)
    return batch


def build(head: str) -> tuple[torch.nn.Module, dict[str, torch.Tensor]]:
    class_name, overrides, batch_options = HEADS[head]
    torch.manual_seed(0)
    model = getattr(sora_hf, class_name)(SoraConfig(**{**TEXT, **overrides})).eval()
    return model, make_batch(**batch_options)


@torch.inference_mode()
def tensors(model: torch.nn.Module, batch: dict[str, torch.Tensor]) -> tuple[type, dict[str, torch.Tensor]]:
    """The output class and its tensor fields."""
    outputs = model(**batch)
    return type(outputs), {key: value for key, value in outputs.items() if isinstance(value, torch.Tensor)}


@pytest.mark.parametrize("head", HEADS)
def test_every_head_quantizes_saves_and_reloads(head, tmp_path):
    model, batch = build(head)
    float_class, float_outputs = tensors(model, batch)
    quantized = quantize_int8(copy.deepcopy(model))
    assert is_int8_quantized(quantized) and not quantized.training
    int8_class, int8_outputs = tensors(quantized, batch)
    assert int8_class is float_class and int8_outputs.keys() == float_outputs.keys()
    for key, expected in float_outputs.items():
        assert int8_outputs[key].shape == expected.shape
        error = (int8_outputs[key] - expected).abs().max()
        assert error <= RELATIVE_TOLERANCE * expected.abs().max(), (key, float(error))

    save_int8(quantized, tmp_path)
    saved_files = {path.name for path in tmp_path.iterdir()} - {"generation_config.json"}
    assert saved_files == {"config.json", "model.safetensors"}  # nothing pickled
    saved = json.loads((tmp_path / "config.json").read_text())["quantization_config"]
    assert saved["quant_method"] == QUANT_METHOD
    with safe_open(tmp_path / "model.safetensors", "pt") as weights:
        dtypes = {key: weights.get_slice(key).get_dtype() for key in weights.keys()}
    prefix = "encoder.layers.0.mlp.fc1" if head == "model" else "model.encoder.layers.0.mlp.fc1"
    assert dtypes[f"{prefix}.weight"] == "I8" and dtypes[f"{prefix}.weight_scale"] == "F32"

    reloaded = type(model).from_pretrained(tmp_path)
    assert not reloaded.training
    kept = {name for name, module in reloaded.named_modules() if type(module) is torch.nn.Linear}
    assert kept == set(saved["modules_to_not_convert"])
    reloaded_class, reloaded_outputs = tensors(reloaded, batch)
    assert reloaded_class is float_class
    for key, value in int8_outputs.items():
        assert torch.equal(reloaded_outputs[key], value), key


def test_classifier_keeps_its_head_in_float_and_shrinks(tmp_path):
    model, _ = build("sequence_classification")
    model.save_pretrained(tmp_path / "fp32")
    quantize_int8(model).save_pretrained(tmp_path / "int8")
    assert type(model.classifier) is torch.nn.Linear  # transformers' default: the last layer stays float
    assert isinstance(model.model.encoder.layers[0].self_attn.qkv_proj, SoraInt8Linear)
    linear_bytes = sum(
        module.weight.numel() * 3 for module in model.modules() if isinstance(module, SoraInt8Linear)
    )  # 4 -> 1 byte per weight
    fp32_size = (tmp_path / "fp32" / "model.safetensors").stat().st_size
    assert (tmp_path / "int8" / "model.safetensors").stat().st_size < fp32_size - 0.9 * linear_bytes


def test_tied_output_embeddings_stay_tied():
    model, batch = build("conditional_generation")
    quantize_int8(model)
    assert model.lm_head.weight is model.model.encoder.embeddings.word_embeddings.weight
    generated = model.generate(batch["input_ids"], attention_mask=batch["attention_mask"], max_new_tokens=4)
    assert generated.shape[0] == 3


def test_quantize_while_loading_a_float_checkpoint(tmp_path):
    model, batch = build("token_classification")
    model.save_pretrained(tmp_path / "fp32")
    loaded = AutoModel.from_pretrained(tmp_path / "fp32", quantization_config=SoraInt8Config())
    assert is_int8_quantized(loaded)
    direct = quantize_int8(AutoModel.from_pretrained(tmp_path / "fp32"))
    assert torch.equal(
        tensors(loaded, batch)[1]["last_hidden_state"], tensors(direct, batch)[1]["last_hidden_state"]
    )
    loaded.save_pretrained(tmp_path / "int8")
    assert torch.equal(
        tensors(AutoModel.from_pretrained(tmp_path / "int8"), batch)[1]["last_hidden_state"],
        tensors(loaded, batch)[1]["last_hidden_state"],
    )


def test_modules_to_not_convert_is_honoured_and_saved(tmp_path):
    model, batch = build("sequence_classification")
    quantize_int8(model, modules_to_not_convert=["fc2"])
    assert type(model.model.encoder.layers[1].mlp.fc2) is torch.nn.Linear
    assert isinstance(model.classifier, SoraInt8Linear)  # an explicit list replaces the defaults
    model.save_pretrained(tmp_path)
    reloaded = AutoModelForSequenceClassification.from_pretrained(tmp_path)
    assert type(reloaded.model.encoder.layers[1].mlp.fc2) is torch.nn.Linear
    assert torch.equal(tensors(reloaded, batch)[1]["logits"], tensors(model, batch)[1]["logits"])


@pytest.mark.parametrize("shape", [(5, 32), (2, 5, 32), (32,)])
def test_int8_linear_matches_its_documented_numerics(shape):
    """`y = fq(x) @ (q_w * s_w).T + b`, fq: 7-bit affine fake quantization over the whole input (fbgemm's dynamic
    scheme with reduce_range); any leading shape, the unpadded `(num_tokens, hidden)` one included."""
    if torch.backends.quantized.engine not in ("x86", "fbgemm"):
        pytest.skip("the reference models fbgemm's activation scheme")
    torch.manual_seed(0)
    linear = torch.nn.Linear(32, 48)
    quantized = SoraInt8Linear.from_linear(linear)
    assert quantized.weight.dtype == torch.int8 and quantized.weight.abs().max() == 127
    x = torch.randn(*shape) * 3
    low, high = min(float(x.min()), 0.0), max(float(x.max()), 0.0)
    scale = (high - low) / 127
    zero_point = round(-low / scale)
    fake_quantized = (torch.clamp(torch.round(x / scale) + zero_point, 0, 127) - zero_point) * scale
    expected = torch.nn.functional.linear(fake_quantized, quantized.dequantized_weight(), quantized.bias)
    output = quantized(x)
    assert output.shape == (*shape[:-1], 48)
    torch.testing.assert_close(output, expected, atol=1e-5, rtol=1e-5)


def test_int8_linear_repacks_after_its_weights_change():
    torch.manual_seed(0)
    quantized = SoraInt8Linear.from_linear(torch.nn.Linear(16, 8))
    x = torch.randn(4, 16)
    before = quantized(x)
    with torch.no_grad():
        quantized.bias.add_(1.0)
    assert torch.allclose(quantized(x), before + 1.0, atol=1e-5)


def test_import_sora_hf_alone_loads_int8_checkpoints(tmp_path):
    model, _ = build("sequence_classification")
    quantize_int8(model).save_pretrained(tmp_path)
    # a fresh process that never imports `sora_hf.quantization` itself: `import sora_hf` registers the quantizer
    code = (
        "import sys, sora_hf\n"
        "from transformers import AutoModelForSequenceClassification\n"
        "model = AutoModelForSequenceClassification.from_pretrained(sys.argv[1])\n"
        "assert type(model.model.encoder.layers[0].mlp.fc1).__name__ == 'SoraInt8Linear'\n"
    )
    subprocess.run([sys.executable, "-c", code, str(tmp_path)], check=True, timeout=300)


def test_bad_input_is_refused(tmp_path):
    model, _ = build("sequence_classification")
    with pytest.raises(ValueError, match="PreTrainedModel"):
        quantize_int8(torch.nn.Linear(4, 4))
    with pytest.raises(ValueError, match="match no Linear layer"):
        quantize_int8(copy.deepcopy(model), modules_to_not_convert=["clasifier"])
    with pytest.raises(ValueError, match="list of module names"):
        SoraInt8Config(modules_to_not_convert="classifier")
    with pytest.raises(ValueError, match="not int8-quantized"):
        save_int8(model, tmp_path)
    with pytest.raises(ValueError, match="no Linear layer left"):
        quantize_int8(copy.deepcopy(model), modules_to_not_convert=["model", "pooler", "classifier"])
    quantize_int8(model)
    with pytest.raises(ValueError, match="already quantized"):
        quantize_int8(model)
