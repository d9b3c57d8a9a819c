# Copyright 2026 The sora_hf authors. Licensed under the Apache License, Version 2.0.
"""Sora model configuration."""

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

from huggingface_hub.dataclasses import strict
from huggingface_hub.errors import StrictDataclassFieldValidationError
from transformers.activations import ACT2FN
from transformers.configuration_utils import PreTrainedConfig, SubConfigSpec

from .errors import ConfigFieldTypeError
from .packaged import PackagedNameMixin

SIZE_FIELDS = (
    "vocab_size",
    "hidden_size",
    "num_hidden_layers",
    "num_attention_heads",
    "intermediate_size",
    "max_position_embeddings",
    "type_vocab_size",
    "decoder_layers",
    "decoder_attention_heads",
    "decoder_intermediate_size",
)
PROBABILITY_FIELDS = ("hidden_dropout_prob", "attention_probs_dropout_prob", "classifier_dropout")
TOKEN_ID_FIELDS = (
    "pad_token_id",
    "bos_token_id",
    "eos_token_id",
    "sep_token_id",
    "cls_token_id",
    "mask_token_id",
    "decoder_start_token_id",
)


PATCH_EMBEDDING_TYPES = ("linear", "convolutional")
FUSION_POOLINGS = ("bilinear", "first_token")
CLASSIFIER_POOLINGS = ("first_token", "mean")


# True while several fields change together (`update`) or transformers reshapes a copy (`get_text_config`).
_CHECKS_PAUSED: ContextVar[bool] = ContextVar("sora_config_checks_paused", default=False)


@contextmanager
def checks_paused() -> Iterator[None]:
    """Assignments inside skip the per-field checks (the caller checks the result)."""
    token = _CHECKS_PAUSED.set(True)
    try:
        yield
    finally:
        _CHECKS_PAUSED.reset(token)


def checked_on_assignment(cls: type) -> type:
    """Make a strict config class check itself again whenever a field it declares is assigned after construction.

    `from_pretrained(..., field=value)` overrides and `config.field = value` set attributes one by one after
    `__init__`, past the checks of `__post_init__`. The assignment is undone when the config would become invalid,
    and a value of the wrong type raises `ConfigFieldTypeError` (a `ValueError`) instead of strict's own error.
    """
    strict_setattr = cls.__setattr__
    # Fields the class declares, plus `id2label` (what `num_labels` sets); transformers' own attributes
    # (`dtype`, `_attn_implementation`, `architectures`, ...) are set freely.
    watched = {
        name
        for klass in cls.__mro__
        if issubclass(klass, CheckedConfigMixin)
        for name in vars(klass).get("__annotations__", {})
    }
    watched.add("id2label")

    def __setattr__(self, name: str, value: Any) -> None:
        name = cls.attribute_map.get(name, name)
        state = self.__dict__
        watch = name in watched and state.get("_post_init_done") and not _CHECKS_PAUSED.get()
        missing = object()
        before = state.get(name, missing)
        try:
            strict_setattr(self, name, value)
        except StrictDataclassFieldValidationError as error:
            raise ConfigFieldTypeError(
                f"{cls.__name__}.{name}={value!r:.100} has the wrong type: {error.__cause__}. Pass a value of the "
                "type the field declares."
            ) from error
        if not watch:
            return
        try:
            self.check()
        except ValueError as error:
            if before is missing:
                state.pop(name, None)
            else:
                state[name] = before
            raise ValueError(
                f"{error} (Undone: {cls.__name__}.{name} keeps {before!r:.100}. To change several fields that "
                "depend on each other, set them together with `config.update({...})`.)"
            ) from None

    cls.__setattr__ = __setattr__
    return cls


class CheckedConfigMixin:
    """`check()` and `update()` for the Sora configs; `check()` runs after `__init__` and on every assignment."""

    def check(self) -> None:
        """Raise `ValueError` naming the field when any field this config declares is invalid."""
        self.validate_architecture()

    def update(self, config_dict: dict[str, Any]) -> None:
        """Set several fields at once, checked together: one at a time, a valid combination such as
        `{"hidden_size": 48, "num_attention_heads": 6}` could fail half way. Nothing changes when it is invalid."""
        before = dict(self.__dict__)
        try:
            with checks_paused():
                for key, value in config_dict.items():
                    setattr(self, key, value)
            self.check()
        except Exception:
            self.__dict__.clear()
            self.__dict__.update(before)
            raise

    def get_text_config(self, decoder: bool | None = None, encoder: bool | None = None) -> PreTrainedConfig:
        """`PreTrainedConfig.get_text_config`: for one side of an encoder-decoder it renames fields one by one on a
        copy (`decoder_layers` -> `num_hidden_layers`), through states the per-field checks would refuse."""
        with checks_paused():
            return super().get_text_config(decoder=decoder, encoder=encoder)


def _check_tower(config: PreTrainedConfig, fields: tuple[str, ...]) -> None:
    """Raise `ValueError` naming the field when a tower size, probability or activation is invalid."""
    name = type(config).__name__
    for field in fields:
        value = getattr(config, field)
        if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
            raise ValueError(f"{name}.{field} must be a positive integer, got {value!r}.")
    layers = config.num_hidden_layers
    if not isinstance(layers, int) or isinstance(layers, bool) or layers < 0:
        raise ValueError(
            f"{name}.num_hidden_layers must be an integer >= 0, got {config.num_hidden_layers!r}."
        )
    if config.hidden_size % config.num_attention_heads != 0:
        raise ValueError(
            f"{name}.hidden_size ({config.hidden_size}) must be divisible by num_attention_heads "
            f"({config.num_attention_heads}); choose heads among the divisors of {config.hidden_size}."
        )
    for field in ("hidden_dropout_prob", "attention_probs_dropout_prob"):
        value = getattr(config, field)
        if not 0.0 <= value < 1.0:
            raise ValueError(f"{name}.{field} must be a probability in [0, 1), got {value!r}.")
    if config.hidden_act not in ACT2FN:
        raise ValueError(
            f"{name}.hidden_act={config.hidden_act!r} is unknown; allowed values: {sorted(ACT2FN)}."
        )
    if not config.layer_norm_eps > 0:
        raise ValueError(f"{name}.layer_norm_eps must be positive, got {config.layer_norm_eps!r}.")


@checked_on_assignment
@strict
class SoraTowerConfig(CheckedConfigMixin, PreTrainedConfig):
    r"""
    The fields Sora's image and audio towers share: the size and regularisation of their pre-LayerNorm Transformer
    layers (`num_hidden_layers=0`: embeddings only). Not used alone: see `SoraVisionConfig` and `SoraAudioConfig`.
    """

    hidden_size: int = 128
    num_hidden_layers: int = 2
    num_attention_heads: int = 4
    intermediate_size: int = 512
    hidden_act: str = "gelu"
    hidden_dropout_prob: float | int = 0.1
    attention_probs_dropout_prob: float | int = 0.1
    initializer_range: float = 0.02
    layer_norm_eps: float = 1e-12

    # Fields that must be positive integers (the subclasses add theirs).
    positive_fields = ("hidden_size", "num_attention_heads", "intermediate_size")

    def __post_init__(self, **kwargs):
        super().__post_init__(**kwargs)
        self.check()

    def validate_architecture(self):
        """Raise `ValueError` naming the field when a size, probability or activation is invalid."""
        _check_tower(self, self.positive_fields)


@checked_on_assignment
@strict
class SoraVisionConfig(SoraTowerConfig):
    r"""
    Configuration of Sora's vision tower: ViT-style patch embeddings, learned patch positions and
    `num_hidden_layers` pre-LayerNorm Transformer layers (0 = patch embeddings only).

    `patch_embedding_type="linear"` embeds each patch with one linear map (ViT); `"convolutional"` with a stem
    of stride-2 3x3 convolutions + BatchNorm + GELU (Xiao et al., 2021, "Early Convolutions Help Transformers
    See Better"; needs a power-of-two `patch_size`), which learns shapes from a few thousand images where the
    linear patches do not (easy-vqa: shape answers 0.88 vs 0.56 after 300 steps).

    Its outputs are projected to the text `hidden_size` and fused with the text tokens in the Sora encoder.

    Example:

    ```python
    >>> from sora_hf import SoraConfig, SoraVisionConfig
    >>> config = SoraConfig(vision_config=SoraVisionConfig(image_size=64, patch_size=8))
    ```
    """

    model_type = "sora_vision"
    base_config_key = "vision_config"
    positive_fields = (*SoraTowerConfig.positive_fields, "image_size", "patch_size", "num_channels")

    image_size: int = 64
    patch_size: int = 8
    num_channels: int = 3
    patch_embedding_type: str = "linear"

    def validate_architecture(self):
        """Raise `ValueError` naming the field when a size, probability, activation or patch setting is invalid."""
        super().validate_architecture()
        if self.image_size % self.patch_size != 0:
            raise ValueError(
                f"SoraVisionConfig.image_size ({self.image_size}) must be a multiple of patch_size "
                f"({self.patch_size})."
            )
        if self.patch_embedding_type not in PATCH_EMBEDDING_TYPES:
            raise ValueError(
                f"SoraVisionConfig.patch_embedding_type={self.patch_embedding_type!r} is unknown; choose one of "
                f"{list(PATCH_EMBEDDING_TYPES)}."
            )
        if self.patch_embedding_type == "convolutional" and (
            self.patch_size < 2 or self.patch_size & (self.patch_size - 1)
        ):
            raise ValueError(
                f"SoraVisionConfig.patch_size={self.patch_size} must be a power of two (2, 4, 8, ...) for the "
                "convolutional patch stem (one stride-2 convolution per halving), or use patch_embedding_type="
                "'linear'."
            )

    @property
    def num_patches(self) -> int:
        """Image tokens per image: (image_size / patch_size) ** 2."""
        return (self.image_size // self.patch_size) ** 2


@checked_on_assignment
@strict
class SoraAudioConfig(SoraTowerConfig):
    r"""
    Configuration of Sora's audio tower: log-mel frames (`num_mel_bins` x frames, from `SoraFeatureExtractor`),
    two stride-2 1-D convolutions (4x fewer frames), learned positions and `num_hidden_layers` pre-LayerNorm
    Transformer layers. `max_source_positions` bounds the subsampled length (512 = 20 s at a 10 ms hop).

    Example:

    ```python
    >>> from sora_hf import SoraAudioConfig, SoraConfig
    >>> config = SoraConfig(audio_config=SoraAudioConfig(num_mel_bins=64))
    ```
    """

    model_type = "sora_audio"
    base_config_key = "audio_config"
    positive_fields = (*SoraTowerConfig.positive_fields, "num_mel_bins", "max_source_positions")

    num_mel_bins: int = 64
    max_source_positions: int = 512


@checked_on_assignment
@strict
class SoraConfig(PackagedNameMixin, CheckedConfigMixin, PreTrainedConfig):
    r"""
    Configuration of a Sora model: a pre-LayerNorm Transformer encoder with an optional causal decoder.

    `is_encoder_decoder=False` (default) builds an encoder-only model (like BERT); `is_encoder_decoder=True`
    adds a decoder with cross-attention (like BART) for `SoraForConditionalGeneration`. Decoder sizes default
    to the encoder's. `vision_config` / `audio_config` (absent by default) add an image / audio tower whose
    tokens are fused with the text tokens in the encoder, from layer `fusion_layer` on (0: every layer sees them;
    k: the first k layers read the text alone); every head then accepts `pixel_values` / `input_features`.
    `classifier_pooling` picks what the sequence classifier's pooler reads from a text: the `<s>` state
    (`"first_token"`, as BERT) or the mean over real tokens (`"mean"`, as sentence-transformers and ModernBERT's
    option). `fusion_pooling` picks the sequence classifier's summary of a fused input: `"bilinear"` adds the Hadamard
    product of the projected text and media means to the `<s>` summary; `"first_token"` uses `<s>` alone.
    `sentence_embedding_size` (absent by default) gives `SoraForPreTraining` a head that maps the pooled `<s>`
    vector onto a teacher's sentence embeddings of that size (sentence-embedding distillation in pretraining);
    `token_distillation_size` (absent by default) gives it a head that maps every token's final hidden state onto
    a teacher's states of the same characters (token-level distillation across tokenizers).

    Example:

    ```python
    >>> from sora_hf import SoraConfig, SoraModel
    >>> config = SoraConfig(hidden_size=256, num_hidden_layers=4, num_attention_heads=4)
    >>> model = SoraModel(config)
    ```
    """

    model_type = "sora"
    attribute_map = {"d_model": "hidden_size", "encoder_layers": "num_hidden_layers"}
    sub_configs_defaults = {
        "vision_config": SubConfigSpec(SoraVisionConfig, optional=True),
        "audio_config": SubConfigSpec(SoraAudioConfig, optional=True),
    }

    vocab_size: int = 16000
    hidden_size: int = 256
    num_hidden_layers: int = 4
    num_attention_heads: int = 4
    intermediate_size: int = 1024
    hidden_act: str = "gelu"
    hidden_dropout_prob: float | int = 0.1
    attention_probs_dropout_prob: float | int = 0.1
    max_position_embeddings: int = 512
    type_vocab_size: int = 2
    initializer_range: float = 0.02
    layer_norm_eps: float = 1e-12
    classifier_dropout: float | int | None = None
    is_encoder_decoder: bool = False
    decoder_layers: int | None = None
    decoder_attention_heads: int | None = None
    decoder_intermediate_size: int | None = None
    use_cache: bool = True
    pad_token_id: int | None = 0
    bos_token_id: int | None = 1
    eos_token_id: int | None = 2
    sep_token_id: int | None = 2
    cls_token_id: int | None = 1
    mask_token_id: int | None = 4
    decoder_start_token_id: int | None = 2
    is_decoder: bool = False
    add_cross_attention: bool = False
    tie_word_embeddings: bool = True
    vision_config: dict | SoraVisionConfig | None = None
    audio_config: dict | SoraAudioConfig | None = None
    fusion_layer: int = 0
    fusion_pooling: str = "bilinear"
    classifier_pooling: str = "first_token"
    sentence_embedding_size: int | None = None
    token_distillation_size: int | None = None

    def __post_init__(self, **kwargs):
        if self.decoder_layers is None:
            self.decoder_layers = self.num_hidden_layers
        if self.decoder_attention_heads is None:
            self.decoder_attention_heads = self.num_attention_heads
        if self.decoder_intermediate_size is None:
            self.decoder_intermediate_size = self.intermediate_size
        super().__post_init__(**kwargs)
        # Checked here too, so a bad value raises a plain ValueError at construction (strict validation wraps it);
        # after the parent's `__post_init__`, which sets `num_labels` and the keyword-only extras.
        self.check()

    def __setattr__(self, name, value):
        # `num_labels` only sets `id2label`: checked here, where the value given is still known.
        if name == "num_labels" and (not isinstance(value, int) or isinstance(value, bool) or value < 1):
            raise ValueError(
                f"SoraConfig.num_labels must be a positive integer (the number of classes; 1 for regression), got "
                f"{value!r}."
            )
        # `from_pretrained(..., vision_config={...})` sets sub-configs after construction: build them here too.
        if name in type(self).sub_configs_defaults and isinstance(value, dict):
            value = type(self).sub_configs_defaults[name].config_class(**value)
        super().__setattr__(name, value)

    @classmethod
    def from_dict(cls, config_dict: dict[str, Any], **kwargs) -> "SoraConfig":
        """`PreTrainedConfig.from_dict`, with keyword overrides of SoraConfig's own fields (`from_pretrained(path,
        num_attention_heads=8)`) built into the config at once, so they are checked together with the rest."""
        fields = set(cls.__annotations__) - set(cls.sub_configs_defaults)
        overrides = {
            cls.attribute_map.get(key, key): kwargs.pop(key)
            for key in list(kwargs)
            if cls.attribute_map.get(key, key) in fields
        }
        return super().from_dict({**config_dict, **overrides}, **kwargs)

    def check(self) -> None:
        """Raise `ValueError` naming the field when a size, probability, special-token id or `num_labels` is invalid."""
        self.validate_architecture()
        self.validate_token_ids()
        self.validate_num_labels()

    def validate_num_labels(self):
        """Raise `ValueError` when the classification heads would get no output (`num_labels` < 1)."""
        if self.id2label is not None and len(self.id2label) < 1:
            raise ValueError(
                f"SoraConfig.num_labels must be a positive integer (the number of classes; 1 for regression), got "
                f"{len(self.id2label)} (id2label={self.id2label!r}). Pass num_labels=<number of classes> or a "
                "non-empty id2label."
            )

    def validate_architecture(self):
        """Raise `ValueError` naming the field when a size, probability or activation is invalid."""
        for name in SIZE_FIELDS:
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
                raise ValueError(f"SoraConfig.{name} must be a positive integer, got {value!r}.")
        for name in PROBABILITY_FIELDS:
            value = getattr(self, name)
            if value is not None and not 0.0 <= value < 1.0:
                raise ValueError(f"SoraConfig.{name} must be a probability in [0, 1), got {value!r}.")
        for hidden_field, heads_field in (
            ("hidden_size", "num_attention_heads"),
            ("hidden_size", "decoder_attention_heads"),
        ):
            if self.hidden_size % getattr(self, heads_field) != 0:
                hint = (
                    " (unless given, it takes num_attention_heads' value when the config is made, not later)"
                    if heads_field == "decoder_attention_heads"
                    else ""
                )
                raise ValueError(
                    f"SoraConfig.{hidden_field} ({self.hidden_size}) must be divisible by {heads_field} "
                    f"({getattr(self, heads_field)}){hint}; choose heads among the divisors of {self.hidden_size}."
                )
        if self.hidden_act not in ACT2FN:
            raise ValueError(
                f"SoraConfig.hidden_act={self.hidden_act!r} is unknown; allowed values: {sorted(ACT2FN)}."
            )
        if not self.layer_norm_eps > 0:
            raise ValueError(f"SoraConfig.layer_norm_eps must be positive, got {self.layer_norm_eps!r}.")
        if not isinstance(self.fusion_layer, int) or not 0 <= self.fusion_layer < self.num_hidden_layers:
            raise ValueError(
                f"SoraConfig.fusion_layer must be an integer in [0, num_hidden_layers - 1] = [0, "
                f"{self.num_hidden_layers - 1}] (the first encoder layer that sees image/audio tokens), got "
                f"{self.fusion_layer!r}."
            )
        for name in ("sentence_embedding_size", "token_distillation_size"):
            size = getattr(self, name)
            if size is not None and (not isinstance(size, int) or isinstance(size, bool) or size <= 0):
                raise ValueError(
                    f"SoraConfig.{name} must be None or a positive integer (the teacher's hidden size), got "
                    f"{size!r}."
                )
        if self.classifier_pooling not in CLASSIFIER_POOLINGS:
            raise ValueError(
                f"SoraConfig.classifier_pooling={self.classifier_pooling!r} is unknown; choose one of "
                f"{list(CLASSIFIER_POOLINGS)}."
            )
        if self.fusion_pooling not in FUSION_POOLINGS:
            raise ValueError(
                f"SoraConfig.fusion_pooling={self.fusion_pooling!r} is unknown; choose one of {list(FUSION_POOLINGS)}."
            )

    def validate_token_ids(self):
        """Raise `ValueError` when a special-token id lies outside `[0, vocab_size)`."""
        for name in TOKEN_ID_FIELDS:
            value = getattr(self, name)
            if value is None:
                continue
            values = value if isinstance(value, list) else [value]
            for token_id in values:
                if not isinstance(token_id, int) or not 0 <= token_id < self.vocab_size:
                    raise ValueError(
                        f"SoraConfig.{name}={value!r} is outside the vocabulary: allowed values are None or "
                        f"integers in [0, {self.vocab_size - 1}] (vocab_size={self.vocab_size})."
                    )


__all__ = ["SoraAudioConfig", "SoraConfig", "SoraTowerConfig", "SoraVisionConfig"]
