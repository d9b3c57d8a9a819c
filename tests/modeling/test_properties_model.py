"""Property-based tests (hypothesis) of the models and configs (issue 23): a random `SoraConfig` either builds a model
that runs a forward pass or raises a `ValueError` naming a field; random batch shapes, masks, ids and labels give
every head outputs of the right shape or a `ValueError` naming the input, never another exception.

Example counts are bounded (`CONFIG_EXAMPLES`, `INPUT_EXAMPLES` per head) so the module stays within seconds;
`derandomize=True` makes CI runs repeat the same examples, and `database=None` writes nothing to the repository.
`SORA_PROPERTY_SCALE=20 pytest tests/modeling/test_properties_model.py` explores 20 times as many, fresh random examples.
"""

import math
import os

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sora_hf import (
    SoraAudioConfig,
    SoraConfig,
    SoraForConditionalGeneration,
    SoraForMaskedLM,
    SoraForPreTraining,
    SoraForQuestionAnswering,
    SoraForSequenceClassification,
    SoraForTokenClassification,
    SoraModel,
    SoraVisionConfig,
)

SCALE = int(os.environ.get("SORA_PROPERTY_SCALE", "1"))
CONFIG_EXAMPLES = 200 * SCALE
INPUT_EXAMPLES = 100 * SCALE
PROPERTY_SETTINGS = dict(
    deadline=None,
    database=None,
    derandomize=SCALE == 1,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

CONFIG_FIELDS = {
    *SoraConfig.__annotations__,
    *SoraVisionConfig.__annotations__,
    *SoraAudioConfig.__annotations__,
    "num_labels",
}

# ---- random configs ----------------------------------------------------------------------------------------------


@st.composite
def heads_for(draw, hidden_size: int) -> int:
    return draw(st.sampled_from([heads for heads in range(1, hidden_size + 1) if hidden_size % heads == 0]))


@st.composite
def vision_configs(draw) -> dict:
    patch_embedding_type = draw(st.sampled_from(["linear", "convolutional"]))
    patch_size = draw(st.sampled_from([2, 4] if patch_embedding_type == "convolutional" else [2, 3, 4]))
    hidden_size = draw(st.sampled_from([8, 12, 16]))
    return {
        "hidden_size": hidden_size,
        "num_hidden_layers": draw(st.integers(0, 1)),
        "num_attention_heads": draw(heads_for(hidden_size)),
        "intermediate_size": draw(st.integers(1, 16)),
        "image_size": patch_size * draw(st.integers(1, 3)),
        "patch_size": patch_size,
        "patch_embedding_type": patch_embedding_type,
    }


@st.composite
def audio_configs(draw) -> dict:
    hidden_size = draw(st.sampled_from([8, 12, 16]))
    return {
        "hidden_size": hidden_size,
        "num_hidden_layers": draw(st.integers(0, 1)),
        "num_attention_heads": draw(heads_for(hidden_size)),
        "intermediate_size": draw(st.integers(1, 16)),
        "num_mel_bins": draw(st.integers(1, 6)),
        "max_source_positions": draw(st.integers(1, 6)),
    }


probabilities = st.sampled_from([0.0, 0.1, 0.5, 0.9, 0])
activations = st.sampled_from(["gelu", "relu", "silu", "tanh", "gelu_new"])


@st.composite
def valid_config_kwargs(draw) -> dict:
    """A valid tiny config: every field SoraConfig knows drawn from its valid range (optional ones sometimes)."""
    hidden_size = draw(st.sampled_from([4, 6, 8, 12, 16]))
    layers = draw(st.integers(1, 2))
    vocab_size = draw(st.integers(5, 40))
    kwargs = {
        "vocab_size": vocab_size,
        "hidden_size": hidden_size,
        "num_hidden_layers": layers,
        "num_attention_heads": draw(heads_for(hidden_size)),
        "intermediate_size": draw(st.integers(1, 24)),
        "max_position_embeddings": draw(st.integers(1, 12)),
        "type_vocab_size": draw(st.integers(1, 3)),
        "hidden_dropout_prob": draw(probabilities),
        "attention_probs_dropout_prob": draw(probabilities),
        "hidden_act": draw(activations),
        "layer_norm_eps": draw(st.sampled_from([1e-12, 1e-5, 0.1])),
        "num_labels": draw(st.integers(1, 4)),
    }
    optional = {
        "classifier_dropout": st.one_of(st.none(), probabilities),
        "is_encoder_decoder": st.booleans(),
        "decoder_layers": st.integers(1, 2),
        "decoder_attention_heads": heads_for(hidden_size),
        "decoder_intermediate_size": st.integers(1, 24),
        "pad_token_id": st.one_of(st.none(), st.integers(0, vocab_size - 1)),
        "decoder_start_token_id": st.one_of(st.none(), st.integers(0, vocab_size - 1)),
        "fusion_layer": st.integers(0, layers - 1),
        "classifier_pooling": st.sampled_from(["first_token", "mean"]),
        "fusion_pooling": st.sampled_from(["bilinear", "first_token"]),
        "sentence_embedding_size": st.one_of(st.none(), st.integers(1, 8)),
        "token_distillation_size": st.one_of(st.none(), st.integers(1, 8)),
        "vision_config": vision_configs(),
        "audio_config": audio_configs(),
    }
    for name in draw(st.sets(st.sampled_from(sorted(optional)), max_size=4)):
        kwargs[name] = draw(optional[name])
    return kwargs


# Values no field of its kind accepts: the wrong type, zero, negative, out of range, unknown names.
BAD_SIZES = [0, -1, None, 4.0, "4", True]
BAD_VALUES = {
    **{name: BAD_SIZES for name in ("vocab_size", "hidden_size", "num_hidden_layers", "intermediate_size")},
    **{name: BAD_SIZES for name in ("max_position_embeddings", "type_vocab_size", "decoder_layers")},
    "num_attention_heads": [*BAD_SIZES, 5, 7],
    "decoder_attention_heads": [*BAD_SIZES, 5, 7],
    "decoder_intermediate_size": BAD_SIZES,
    "hidden_dropout_prob": [-0.1, 1.0, 1.5, math.nan, "0.1", None],
    "attention_probs_dropout_prob": [-0.1, 1.0, math.inf],
    "classifier_dropout": [-0.5, 1.0, "high"],
    "hidden_act": ["swishy", "", None],
    "layer_norm_eps": [0.0, -1e-5, math.nan, "1e-5"],
    "num_labels": [0, -1, True, 2.5],
    "pad_token_id": [-1, 10**6, "0"],
    "mask_token_id": [-2, 40],
    "decoder_start_token_id": [-1, 40],
    "fusion_layer": [-1, 2, 5, None],
    "classifier_pooling": ["max", None],
    "fusion_pooling": ["concat"],
    "sentence_embedding_size": [0, -1, 2.0],
    "token_distillation_size": [0, -3],
    "vision_config": [
        {"image_size": 10, "patch_size": 4},
        {"patch_embedding_type": "convolutional", "patch_size": 3, "image_size": 9},
        {"patch_embedding_type": "hexagonal"},
        {"hidden_size": 10, "num_attention_heads": 4},
        {"num_channels": 0},
    ],
    "audio_config": [{"num_mel_bins": 0}, {"max_source_positions": -1}, {"hidden_act": "swishy"}],
}


@st.composite
def config_kwargs(draw) -> dict:
    """A valid config, and about half the time one or two fields set to a value their kind refuses."""
    kwargs = draw(valid_config_kwargs())
    if draw(st.booleans()):
        for name in draw(st.sets(st.sampled_from(sorted(BAD_VALUES)), min_size=1, max_size=2)):
            kwargs[name] = draw(st.sampled_from(BAD_VALUES[name]))
    return kwargs


HEADS = [
    SoraModel,
    SoraForPreTraining,
    SoraForMaskedLM,
    SoraForSequenceClassification,
    SoraForTokenClassification,
    SoraForQuestionAnswering,
    SoraForConditionalGeneration,
]


def assert_names_a_field(error: ValueError) -> None:
    message = str(error)
    assert any(field in message for field in CONFIG_FIELDS), f"no config field named in: {message}"


def forward_inputs(config: SoraConfig, generator: torch.Generator) -> dict[str, torch.Tensor]:
    """A valid batch for `config`: in-vocabulary ids within the position limit, and media when it has towers."""
    length = min(5, config.max_position_embeddings)
    inputs = {"input_ids": torch.randint(0, config.vocab_size, (2, length), generator=generator)}
    inputs["attention_mask"] = torch.ones(2, length, dtype=torch.long)
    inputs["attention_mask"][1, length // 2 + 1 :] = 0
    if config.vision_config is not None:
        vision = config.vision_config
        inputs["pixel_values"] = torch.rand(2, vision.num_channels, vision.image_size, vision.image_size)
    if config.audio_config is not None:
        audio = config.audio_config
        inputs["input_features"] = torch.randn(2, audio.num_mel_bins, 4 * audio.max_source_positions)
    return inputs


def run_forward(head: type, config: SoraConfig, seed: int) -> None:
    """Build `head` from `config`, run it on a valid batch and check the output shapes and values."""
    torch.manual_seed(seed)
    model = head(config).eval()
    inputs = forward_inputs(config, torch.Generator().manual_seed(seed))
    with torch.no_grad():
        outputs = model(**inputs)
    batch, length = inputs["input_ids"].shape
    if head is SoraForSequenceClassification:
        assert outputs.logits.shape == (batch, config.num_labels)
    elif head is SoraForQuestionAnswering:
        assert outputs.start_logits.shape == outputs.end_logits.shape == (batch, length)
    elif head is SoraForTokenClassification:
        assert outputs.logits.shape == (batch, length, config.num_labels)
    elif head in (SoraForMaskedLM, SoraForConditionalGeneration):
        assert outputs.logits.shape == (batch, length, config.vocab_size)
    elif head is SoraForPreTraining:
        assert outputs.prediction_logits.shape == (batch, length, config.vocab_size)
        assert outputs.seq_relationship_logits.shape == (batch, 2)
    else:
        assert outputs[0].shape[0] == batch and outputs[0].shape[-1] == config.hidden_size
    assert all(torch.isfinite(value).all() for value in outputs.to_tuple() if isinstance(value, torch.Tensor))


def test_random_config_builds_a_working_model_or_names_a_field():
    ran, refused = [], []

    @settings(max_examples=CONFIG_EXAMPLES, **PROPERTY_SETTINGS)
    @given(kwargs=config_kwargs(), head=st.sampled_from(HEADS), seed=st.integers(0, 2**16))
    def check(kwargs, head, seed):
        # the generating head needs an encoder-decoder config (refused, naming the field, otherwise)
        kwargs.setdefault("is_encoder_decoder", head is SoraForConditionalGeneration)
        try:
            config = SoraConfig(**kwargs)
        except ValueError as error:
            assert_names_a_field(error)
            refused.append(kwargs)
            return
        try:
            run_forward(head, config, seed)
        except ValueError as error:
            # a config a head cannot use (a seq2seq head without a start token to shift labels by), named
            assert_names_a_field(error)
            assert head in (SoraForConditionalGeneration, SoraForPreTraining, SoraModel), str(error)
            refused.append(kwargs)
            return
        ran.append(kwargs)

    check()
    # both halves of the property are exercised: valid configs run forward passes, invalid ones are refused
    counts = (len(ran), len(refused))
    assert min(counts) >= CONFIG_EXAMPLES // 10, counts


GOOD_VALUES = {
    "vocab_size": [8, 40],
    "hidden_size": [8, 12],
    "num_hidden_layers": [1, 2],
    "num_attention_heads": [1, 2, 4],
    "decoder_attention_heads": [1, 2, 4],
    "intermediate_size": [4, 16],
    "max_position_embeddings": [6, 12],
    "hidden_dropout_prob": [0.0, 0.2, 0],
    "hidden_act": ["relu", "gelu"],
    "num_labels": [1, 2, 5],
    "pad_token_id": [0, 3, None],
    "fusion_layer": [0, 1],
    "classifier_pooling": ["mean", "first_token"],
}


@settings(max_examples=CONFIG_EXAMPLES // 2, **PROPERTY_SETTINGS)
@given(
    kwargs=valid_config_kwargs(),
    assignments=st.lists(
        st.one_of(
            st.sampled_from(sorted(GOOD_VALUES)).flatmap(
                lambda name: st.tuples(st.just(name), st.sampled_from(GOOD_VALUES[name]))
            ),
            st.sampled_from(sorted(set(BAD_VALUES) - {"vision_config", "audio_config"})).flatmap(
                lambda name: st.tuples(st.just(name), st.sampled_from(BAD_VALUES[name]))
            ),
        ),
        max_size=6,
    ),
)
def test_assignments_keep_the_config_valid_or_change_nothing(kwargs, assignments):
    config = SoraConfig(**kwargs)
    for name, value in assignments:
        before = config.to_dict()
        try:
            setattr(config, name, value)
        except ValueError as error:
            assert_names_a_field(error)
            assert config.to_dict() == before, f"{name}={value!r} was refused but changed the config"
    config.check()  # still valid after whatever was accepted
    SoraModel(config).eval().encoder(torch.zeros(1, 1, dtype=torch.long))


# ---- random inputs for every head ----------------------------------------------------------------------------------

VOCAB, HIDDEN, POSITIONS, LABELS, SEGMENTS = 50, 16, 12, 3, 2
INPUT_NAMES = (
    "input_ids",
    "inputs_embeds",
    "attention_mask",
    "token_type_ids",
    "position_ids",
    "labels",
    "next_sentence_label",
    "decoder",
    "max_position_embeddings",
)


@pytest.fixture(scope="module")
def models() -> dict[type, torch.nn.Module]:
    config = SoraConfig(
        vocab_size=VOCAB,
        hidden_size=HIDDEN,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=32,
        max_position_embeddings=POSITIONS,
        type_vocab_size=SEGMENTS,
        num_labels=LABELS,
        is_encoder_decoder=True,
    )
    torch.manual_seed(0)
    return {head: head(config).eval() for head in HEADS}


@st.composite
def batches(draw, head: type) -> dict[str, torch.Tensor]:
    """Random shapes (empty and over-long included), masks (all-padding rows and wrong shapes included), ids, segment
    ids, positions and labels (out of range and -100 included)."""
    batch = draw(st.integers(0, 3))
    length = draw(st.integers(0, POSITIONS + 2))

    def tensor(low: int, high: int, shape: tuple[int, ...]) -> torch.Tensor:
        values = draw(st.lists(st.integers(low, high), min_size=math.prod(shape), max_size=math.prod(shape)))
        return torch.tensor(values, dtype=torch.long).view(shape)

    bad = draw(st.booleans())  # half the batches may hold an out-of-range value somewhere
    inputs = {"input_ids": tensor(-1 if bad else 0, VOCAB if bad else VOCAB - 1, (batch, length))}
    mask_kind = draw(st.sampled_from(["none", "random", "padded", "wrong-shape"]))
    if mask_kind == "random":
        inputs["attention_mask"] = tensor(0, 1, (batch, length))
    elif mask_kind == "padded":
        lengths = [draw(st.integers(1, max(length, 1))) for _ in range(batch)]
        inputs["attention_mask"] = (
            torch.arange(length)[None] < torch.tensor(lengths, dtype=torch.long)[:, None]
        ).long()
    elif mask_kind == "wrong-shape":
        inputs["attention_mask"] = torch.ones(
            draw(st.integers(0, 3)), draw(st.integers(0, POSITIONS)), dtype=torch.long
        )
    if "attention_mask" in inputs and draw(st.booleans()):
        inputs["attention_mask"] = inputs["attention_mask"].to(
            draw(st.sampled_from([torch.bool, torch.float32]))
        )
    if draw(st.integers(0, 4)) == 0:  # embeddings instead of ids, sometimes of the wrong width
        width = draw(st.sampled_from([HIDDEN, HIDDEN, HIDDEN // 2]))
        inputs["inputs_embeds"] = torch.randn(batch, length, width)
        ids = inputs.pop("input_ids")
        # no ids to shift: the decoder needs inputs of its own
        if head in (SoraForConditionalGeneration, SoraModel):
            inputs["decoder_input_ids"] = ids[:, :1] if length else ids
    if head not in (SoraForConditionalGeneration,) and draw(st.booleans()):
        inputs["token_type_ids"] = tensor(
            -1 if bad else 0, SEGMENTS if bad else SEGMENTS - 1, (batch, length)
        )
    if head not in (SoraForConditionalGeneration,) and draw(st.booleans()):
        inputs["position_ids"] = tensor(
            -1 if bad else 0, POSITIONS if bad else POSITIONS - 1, (batch, length)
        )
    if draw(st.booleans()):
        if head is SoraForSequenceClassification:
            inputs["labels"] = tensor(-1 if bad else 0, LABELS if bad else LABELS - 1, (batch,))
        elif head is SoraForTokenClassification:
            inputs["labels"] = tensor(-100, LABELS if bad else LABELS - 1, (batch, length)).clamp_min(-100)
            inputs["labels"][(inputs["labels"] < 0) & (inputs["labels"] != -1)] = -100
        elif head is SoraForQuestionAnswering:
            inputs["start_positions"] = tensor(-1, length + 1, (batch,))
            inputs["end_positions"] = tensor(-1, length + 1, (batch,))
        elif head in (SoraForMaskedLM, SoraForPreTraining):
            labels = tensor(-1 if bad else 0, VOCAB if bad else VOCAB - 1, (batch, length))
            keep = tensor(0, 1, (batch, length)).bool()
            inputs["labels"] = labels.masked_fill(~keep, -100)
            if head is SoraForPreTraining:
                inputs["next_sentence_label"] = tensor(0, 2 if bad else 1, (batch,))
        elif head is SoraForConditionalGeneration:
            target_length = draw(st.integers(0, POSITIONS + 1))
            labels = tensor(-1 if bad else 0, VOCAB if bad else VOCAB - 1, (batch, target_length))
            inputs["labels"] = labels
    return inputs


def expected_shapes(head: type, inputs: dict[str, torch.Tensor]) -> dict[str, tuple[int, ...]]:
    text = inputs["input_ids"] if "input_ids" in inputs else inputs["inputs_embeds"]
    batch, length = text.shape[:2]
    if head is SoraModel:
        target = inputs["decoder_input_ids"].shape[1] if "decoder_input_ids" in inputs else length
        return {"last_hidden_state": (batch, target, HIDDEN)}
    if head is SoraForSequenceClassification:
        return {"logits": (batch, LABELS)}
    if head is SoraForTokenClassification:
        return {"logits": (batch, length, LABELS)}
    if head is SoraForQuestionAnswering:
        return {"start_logits": (batch, length), "end_logits": (batch, length)}
    if head is SoraForMaskedLM:
        return {"logits": (batch, length, VOCAB)}
    if head is SoraForPreTraining:
        labelled = int((inputs["labels"] != -100).sum()) if "labels" in inputs else None
        logits = (labelled, VOCAB) if labelled is not None else (batch, length, VOCAB)
        return {"prediction_logits": logits, "seq_relationship_logits": (batch, 2)}
    target = inputs["labels"].shape[1] if "labels" in inputs else length
    if "decoder_input_ids" in inputs:
        target = inputs["decoder_input_ids"].shape[1]
    return {"logits": (batch, target, VOCAB)}


@pytest.mark.parametrize("head", HEADS, ids=[head.__name__ for head in HEADS])
def test_random_batches_give_right_shapes_or_a_named_value_error(models, head):
    model = models[head]
    ran = []

    @settings(max_examples=INPUT_EXAMPLES, **PROPERTY_SETTINGS)
    @given(inputs=batches(head))
    def check(inputs):
        try:
            with torch.no_grad():
                outputs = model(**inputs)
        except ValueError as error:
            assert any(name in str(error) for name in INPUT_NAMES), f"no input named in: {error}"
            return
        ran.append(inputs)
        for name, shape in expected_shapes(head, inputs).items():
            assert tuple(outputs[name].shape) == shape, name
        mask = inputs.get("attention_mask")
        if mask is None or bool(mask.any(-1).all()):  # every sequence has a real token: every value is finite
            for name in expected_shapes(head, inputs):
                assert torch.isfinite(outputs[name]).all(), name
        if getattr(outputs, "loss", None) is not None and any(
            bool((inputs[name] != -100).any()) for name in ("labels", "next_sentence_label") if name in inputs
        ):
            assert torch.isfinite(outputs.loss)

    check()
    assert len(ran) >= INPUT_EXAMPLES // 20, "almost every random batch was refused: the shapes went untested"


# ---- random images and audio for a fused head ----------------------------------------------------------------------

IMAGE, CHANNELS, MELS, AUDIO_POSITIONS = 8, 3, 4, 4


@pytest.fixture(scope="module")
def fused_classifier() -> SoraForSequenceClassification:
    config = SoraConfig(
        vocab_size=VOCAB,
        hidden_size=HIDDEN,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=32,
        max_position_embeddings=POSITIONS,
        num_labels=LABELS,
        fusion_layer=1,
        vision_config={
            "hidden_size": 8,
            "num_hidden_layers": 1,
            "num_attention_heads": 2,
            "intermediate_size": 8,
            "image_size": IMAGE,
            "patch_size": 4,
            "num_channels": CHANNELS,
        },
        audio_config={
            "hidden_size": 8,
            "num_hidden_layers": 1,
            "num_attention_heads": 2,
            "intermediate_size": 8,
            "num_mel_bins": MELS,
            "max_source_positions": AUDIO_POSITIONS,
        },
    )
    torch.manual_seed(0)
    return SoraForSequenceClassification(config).eval()


@st.composite
def media_batches(draw) -> dict[str, torch.Tensor]:
    """Text or not, images and audio of the right or a wrong shape, batch sizes that agree or not, padded frames."""
    batch = draw(st.integers(1, 3))
    other_batch = draw(st.sampled_from([batch, batch, batch, batch + 1]))
    inputs = {}
    if draw(st.booleans()):
        length = draw(st.integers(1, 6))
        inputs["input_ids"] = torch.randint(0, VOCAB, (batch, length))
        if draw(st.booleans()):
            inputs["attention_mask"] = (
                (torch.arange(length)[None] < draw(st.integers(1, length))).long().repeat(batch, 1)
            )
    if draw(st.booleans()):
        shape = draw(
            st.sampled_from(
                [
                    (other_batch, CHANNELS, IMAGE, IMAGE),
                    (other_batch, CHANNELS, IMAGE, IMAGE),
                    (other_batch, 1, IMAGE, IMAGE),
                    (other_batch, CHANNELS, IMAGE - 2, IMAGE),
                    (CHANNELS, IMAGE, IMAGE),
                ]
            )
        )
        inputs["pixel_values"] = torch.rand(shape)
    if draw(st.booleans()):
        frames = draw(st.integers(0, 4 * AUDIO_POSITIONS + 3))
        mels = draw(st.sampled_from([MELS, MELS, MELS + 1]))
        inputs["input_features"] = torch.randn(other_batch, mels, frames)
        mask_kind = draw(st.sampled_from(["none", "lengths", "zeros", "wrong-shape"]))
        if mask_kind == "lengths":
            lengths = torch.tensor([draw(st.integers(0, frames)) for _ in range(other_batch)])
            inputs["feature_attention_mask"] = (torch.arange(frames)[None] < lengths[:, None]).long()
        elif mask_kind == "zeros":
            inputs["feature_attention_mask"] = torch.zeros(other_batch, frames, dtype=torch.long)
        elif mask_kind == "wrong-shape":
            inputs["feature_attention_mask"] = torch.ones(other_batch, frames + 1, dtype=torch.long)
    return inputs


MEDIA_NAMES = (
    "pixel_values",
    "input_features",
    "feature_attention_mask",
    "Audio example",
    "input_ids",
    "audio",
)


def test_random_images_and_audio_give_right_shapes_or_a_named_value_error(fused_classifier):
    @settings(max_examples=INPUT_EXAMPLES, **PROPERTY_SETTINGS)
    @given(inputs=media_batches())
    def check(inputs):
        try:
            with torch.no_grad():
                logits = fused_classifier(**inputs).logits
        except ValueError as error:
            assert any(name in str(error) for name in MEDIA_NAMES), f"no input named in: {error}"
            return
        media = [inputs[name] for name in ("input_ids", "pixel_values", "input_features") if name in inputs]
        assert logits.shape == (media[0].shape[0], LABELS) if media else logits.shape[1] == LABELS
        assert torch.isfinite(logits).all()

    check()
