"""Outputs of every Sora head on fixed batches, saved as the regression reference for the model code.

    python tests/scripts/reference_outputs.py save tests/fixtures/reference_outputs
    python tests/scripts/reference_outputs.py compare tests/fixtures/reference_outputs [--exact]

`save` builds each case (a tiny config, or a head loaded from the packaged `sora`), stores the weights a case draws
at random (tiny models: all of them; `sora` heads: the new head only) and the outputs in eval mode; `compare` loads
those weights into today's classes and compares. Made on the model code of commit 6136fed (session 13, before the
issue-24 reshaping) with OMP_NUM_THREADS=2 on an AVX-512 CPU; `--exact` holds with the same thread count (another
count sums in another order: differences of ~1e-7). The test `tests/modeling/test_reference_outputs.py` runs
`compare` within float rounding.
"""

import sys
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

import sora_hf
from sora_hf import (
    SoraAudioModel,
    SoraConfig,
    SoraForConditionalGeneration,
    SoraForMaskedLM,
    SoraForPreTraining,
    SoraForQuestionAnswering,
    SoraForSequenceClassification,
    SoraForTokenClassification,
    SoraModel,
    SoraVisionModel,
)

TINY = dict(
    vocab_size=90,
    hidden_size=32,
    num_hidden_layers=2,
    num_attention_heads=4,
    intermediate_size=64,
    max_position_embeddings=40,
    num_labels=3,
)
VISION = dict(
    hidden_size=24,
    num_hidden_layers=1,
    num_attention_heads=2,
    intermediate_size=48,
    image_size=16,
    patch_size=4,
)
AUDIO = dict(hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=32, num_mel_bins=8)

CONFIGS = {
    "text": dict(TINY),
    "text_mean": dict(TINY, classifier_pooling="mean"),
    "seq2seq": dict(TINY, is_encoder_decoder=True, decoder_layers=1, decoder_attention_heads=2),
    "distill": dict(TINY, is_encoder_decoder=True, sentence_embedding_size=12, token_distillation_size=10),
    "media": dict(
        TINY,
        vision_config=VISION,
        audio_config=AUDIO,
        fusion_layer=1,
        sentence_embedding_size=12,
        token_distillation_size=10,
    ),
    "media_first_token": dict(TINY, vision_config=VISION, fusion_pooling="first_token"),
    "conv_vision": dict(TINY, vision_config=dict(VISION, patch_embedding_type="convolutional")),
}
HEADS = {
    "model": SoraModel,
    "pretraining": SoraForPreTraining,
    "masked_lm": SoraForMaskedLM,
    "sequence_classification": SoraForSequenceClassification,
    "token_classification": SoraForTokenClassification,
    "question_answering": SoraForQuestionAnswering,
    "conditional_generation": SoraForConditionalGeneration,
}
# The outputs compared: every tensor a head returns that is not a per-layer tuple or a cache.
FIELDS = (
    "loss",
    "logits",
    "last_hidden_state",
    "encoder_last_hidden_state",
    "prediction_logits",
    "seq_relationship_logits",
    "denoising_logits",
    "sentence_embeddings",
    "token_states",
    "mlm_loss",
    "nsp_loss",
    "denoising_loss",
    "sentence_distillation_loss",
    "token_distillation_loss",
    "start_logits",
    "end_logits",
)


def text_batch(vocab_size: int, batch: int = 3, length: int = 9) -> dict[str, torch.Tensor]:
    """Right-padded ids (three lengths), a mask, segment ids, and labels for every head."""
    generator = torch.Generator().manual_seed(1)
    input_ids = torch.randint(5, vocab_size, (batch, length), generator=generator)
    lengths = torch.tensor([length, length - 3, 4][:batch])
    attention_mask = (torch.arange(length) < lengths[:, None]).long()
    input_ids[:, 0] = 1
    input_ids = input_ids.masked_fill(attention_mask == 0, 0)
    token_type_ids = (torch.arange(length) >= 3).long().expand(batch, -1) * attention_mask
    mlm_labels = torch.full_like(input_ids, -100)
    mlm_labels[:, 2] = input_ids[:, 2]
    mlm_labels[:, 3] = input_ids[:, 3]
    return dict(
        input_ids=input_ids,
        attention_mask=attention_mask,
        token_type_ids=token_type_ids,
        mlm_labels=mlm_labels,
        token_labels=torch.randint(0, 3, (batch, length), generator=generator).masked_fill(
            attention_mask == 0, -100
        ),
        class_labels=torch.tensor([0, 2, 1][:batch]),
        next_sentence_label=torch.tensor([0, 1, 0][:batch]),
        start_positions=torch.tensor([1, 2, 0][:batch]),
        end_positions=torch.tensor([3, 4, 2][:batch]),
        decoder_labels=input_ids[:, :6].masked_fill(attention_mask[:, :6] == 0, -100),
    )


def media_batch(config: SoraConfig, batch: int = 3) -> dict[str, torch.Tensor]:
    """Images and padded audio features matching the config's towers."""
    generator = torch.Generator().manual_seed(2)
    media = {}
    if config.vision_config is not None:
        size = config.vision_config.image_size
        media["pixel_values"] = torch.randn(batch, 3, size, size, generator=generator)
    if config.audio_config is not None:
        frames = 24
        media["input_features"] = torch.randn(
            batch, config.audio_config.num_mel_bins, frames, generator=generator
        )
        media["feature_attention_mask"] = (
            torch.arange(frames) < torch.tensor([24, 17, 9][:batch])[:, None]
        ).long()
    return media


def head_inputs(head: str, config: SoraConfig, data: dict, media: dict) -> dict:
    """The keyword arguments `head` takes for the batch, labels included."""
    text = {key: data[key] for key in ("input_ids", "attention_mask")}
    if head != "conditional_generation":
        text["token_type_ids"] = data["token_type_ids"]
    inputs = {**text, **media}
    if head == "pretraining":
        inputs.update(labels=data["mlm_labels"], next_sentence_label=data["next_sentence_label"])
        if config.is_encoder_decoder:
            inputs.update(
                denoising_input_ids=data["input_ids"],
                denoising_attention_mask=data["attention_mask"],
                decoder_labels=data["decoder_labels"],
            )
        generator = torch.Generator().manual_seed(3)
        batch, length = data["input_ids"].shape
        if config.sentence_embedding_size:
            inputs["teacher_embeddings"] = torch.randn(
                batch, config.sentence_embedding_size, generator=generator
            )
        if config.token_distillation_size:
            inputs["teacher_token_states"] = torch.randn(
                batch, length, config.token_distillation_size, generator=generator
            )
            inputs["teacher_token_mask"] = data["attention_mask"]
    elif head == "masked_lm":
        inputs["labels"] = data["mlm_labels"]
    elif head == "sequence_classification":
        inputs["labels"] = data["class_labels"]
    elif head == "token_classification":
        inputs["labels"] = data["token_labels"]
    elif head == "question_answering":
        inputs.update(start_positions=data["start_positions"], end_positions=data["end_positions"])
    elif head == "conditional_generation":
        inputs["labels"] = data["decoder_labels"]
    return inputs


def cases():
    """(name, build(), inputs) for every tiny config x head that applies, the towers alone, and `sora`'s heads."""
    for config_name, fields in CONFIGS.items():
        config = SoraConfig(**fields)
        data = text_batch(config.vocab_size)
        media = media_batch(config)
        for head, model_class in HEADS.items():
            if head == "conditional_generation" and not config.is_encoder_decoder:
                continue
            yield f"{config_name}-{head}", config, model_class, head_inputs(head, config, data, media)
    tower_config = SoraConfig(**CONFIGS["media"])
    media = media_batch(tower_config)
    yield "vision_tower", tower_config.vision_config, SoraVisionModel, {"pixel_values": media["pixel_values"]}
    audio = {key: media[key] for key in ("input_features", "feature_attention_mask")}
    yield "audio_tower", tower_config.audio_config, SoraAudioModel, audio


def sora_cases():
    """Every head loaded from the packaged `sora` (two short padded texts)."""
    data = text_batch(12000, batch=2, length=7)
    config = SoraConfig.from_pretrained(sora_hf.packaged_checkpoint_path("sora"))
    for head, model_class in HEADS.items():
        yield f"sora-{head}", model_class, head_inputs(head, config, data, {})


def collect(outputs) -> dict[str, torch.Tensor]:
    return {
        field: outputs[field].detach().float().contiguous()
        for field in FIELDS
        if field in outputs and outputs[field] is not None
    }


def run(model, inputs) -> dict[str, torch.Tensor]:
    model.eval()
    with torch.no_grad():
        return collect(model(**inputs))


def sora_model(model_class, name: str, folder: Path, save: bool):
    """A head loaded from `sora`, its newly drawn weights saved (save) or restored from the reference (compare)."""
    path = sora_hf.packaged_checkpoint_path("sora")
    torch.manual_seed(0)
    model = model_class.from_pretrained(path, num_labels=3)
    from safetensors import safe_open

    with safe_open(str(Path(path) / "model.safetensors"), framework="pt") as checkpoint:
        stored = set(checkpoint.keys())
    state = model.state_dict()
    stored |= {key.removeprefix("model.") for key in stored}
    tied = {state[key].data_ptr() for key in stored if key in state}
    new = {
        key: value.clone().contiguous()
        for key, value in state.items()
        if key not in stored and value.data_ptr() not in tied
    }
    weights_file = folder / f"{name}.weights.safetensors"
    if save:
        if new:
            save_file(new, weights_file)
    elif weights_file.exists():
        reference = load_file(weights_file)
        if set(new) != set(reference) or any(not torch.equal(new[key], reference[key]) for key in reference):
            raise AssertionError(
                f"{name}: the new head's weights drawn after manual_seed(0) differ from the reference"
            )
    return model


@torch.no_grad()
def round_to_half(model) -> None:
    """Round every float weight to a float16 value, so the weights are stored in half the space, exactly."""
    for value in model.state_dict().values():
        if value.is_floating_point():
            value.copy_(value.half().float())


def half_state(model) -> dict[str, torch.Tensor]:
    """The state dict in float16 (exact after `round_to_half`), tied tensors stored once per name."""
    return {
        key: value.half().contiguous() if value.is_floating_point() else value.clone().contiguous()
        for key, value in model.state_dict().items()
    }


def main() -> int:
    command, folder = sys.argv[1], Path(sys.argv[2])
    exact = "--exact" in sys.argv
    folder.mkdir(parents=True, exist_ok=True)
    failures = []
    checked = 0

    def handle(name, model, inputs, save_weights):
        nonlocal checked
        outputs = run(model, inputs)
        if command == "save":
            if save_weights:
                save_file(half_state(model), folder / f"{name}.weights.safetensors")
            save_file(outputs, folder / f"{name}.outputs.safetensors")
            return
        expected = load_file(folder / f"{name}.outputs.safetensors")
        if set(expected) != set(outputs):
            failures.append(f"{name}: fields {sorted(outputs)} != {sorted(expected)}")
            return
        for field, value in expected.items():
            checked += 1
            got = outputs[field]
            if got.shape != value.shape:
                failures.append(f"{name}.{field}: shape {tuple(got.shape)} != {tuple(value.shape)}")
            elif exact and not torch.equal(got, value):
                failures.append(f"{name}.{field}: max |diff| {float((got - value).abs().max()):.3g} (exact)")
            elif not torch.allclose(got, value, rtol=1e-4, atol=1e-5):
                failures.append(f"{name}.{field}: max |diff| {float((got - value).abs().max()):.3g}")

    for name, config, model_class, inputs in cases():
        torch.manual_seed(0)
        model = model_class(config)
        if command == "save":
            round_to_half(model)
        else:
            state = load_file(folder / f"{name}.weights.safetensors")
            # The same seed draws the same weights: the modules are created in the same order as before.
            drawn = half_state(model)
            if set(drawn) != set(state) or any(not torch.equal(drawn[key], state[key]) for key in state):
                failures.append(
                    f"{name}: a fresh model drawn after manual_seed(0) differs from the reference"
                )
            state = {
                key: value.float() if value.is_floating_point() else value for key, value in state.items()
            }
            missing, unexpected = model.load_state_dict(state, strict=False)
            if missing or unexpected:
                failures.append(f"{name}: missing {missing}, unexpected {unexpected}")
                continue
        handle(name, model, inputs, save_weights=True)
    for name, model_class, inputs in sora_cases():
        handle(name, sora_model(model_class, name, folder, command == "save"), inputs, save_weights=False)
    if command == "compare":
        print(f"compared {checked} output tensors; {len(failures)} differ" + (" (exact)" if exact else ""))
        for failure in failures:
            print("  " + failure)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
