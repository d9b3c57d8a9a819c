# Copyright 2026 The sora_hf authors. Licensed under the Apache License, Version 2.0.
"""PyTorch Sora model: a pre-LayerNorm Transformer encoder with an optional causal decoder, and optional image and
audio towers whose tokens are fused with the text tokens in the encoder (early fusion)."""

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from safetensors import SafetensorError
from torch import nn
from transformers import initialization as init
from transformers.activations import ACT2FN
from transformers.cache_utils import Cache, DynamicCache, EncoderDecoderCache
from transformers.generation import GenerationConfig, GenerationMixin
from transformers.masking_utils import create_bidirectional_mask, create_causal_mask
from transformers.modeling_layers import GradientCheckpointingLayer
from transformers.modeling_outputs import (
    BaseModelOutput,
    BaseModelOutputWithPastAndCrossAttentions,
    MaskedLMOutput,
    ModelOutput,
    QuestionAnsweringModelOutput,
    Seq2SeqLMOutput,
    Seq2SeqModelOutput,
    SequenceClassifierOutput,
    TokenClassifierOutput,
)
from transformers.modeling_utils import ALL_ATTENTION_FUNCTIONS, PreTrainedModel
from transformers.processing_utils import Unpack
from transformers.utils import TransformersKwargs, can_return_tuple, is_torchdynamo_compiling
from transformers.utils.deprecation import deprecate_kwarg
from transformers.utils.generic import is_flash_attention_requested, merge_with_config_defaults
from transformers.utils.output_capturing import OutputRecorder, _active_collector, capture_outputs

from .atomic_files import StrPath, save_files_atomically
from .configuration_sora import CheckedConfigMixin, SoraAudioConfig, SoraConfig, SoraVisionConfig
from .errors import CorruptCheckpointError
from .packaged import find_corrupt_safetensors, resolve_pretrained_name
from .serving import PackedLinear, can_pack

WORD_EMBEDDINGS = "model.encoder.embeddings.word_embeddings.weight"


def is_tracing() -> bool:
    """True while dynamo compiles/exports or TorchScript traces (ONNX export): data-dependent checks and branches
    are skipped so the graph stays valid for every input."""
    return is_torchdynamo_compiling() or torch.jit.is_tracing()


def check_input_ids(input_ids: torch.Tensor, vocab_size: int) -> None:
    """Raise `ValueError` naming the first id outside `[0, vocab_size)`; asynchronous on accelerators."""
    if is_tracing() or input_ids.numel() == 0 or input_ids.device.type == "meta":
        return
    in_range = (input_ids >= 0) & (input_ids < vocab_size)
    if input_ids.device.type != "cpu":
        # No device-to-host sync: the kernel fails later if the assertion does not hold.
        torch._assert_async(in_range.all(), f"input_ids must lie in [0, {vocab_size})")
        return
    if not bool(in_range.all()):
        bad_id = int(input_ids[~in_range].flatten()[0])
        raise ValueError(
            f"input_ids contains id {bad_id}, outside the vocabulary [0, {vocab_size}). Encode the text with "
            f"the tokenizer that matches this model, or resize the embeddings with `resize_token_embeddings`."
        )


def check_index_range(
    name: str, values: torch.Tensor, limit: int, bound: str, fix: str, ignore_index: int | None = None
) -> None:
    """Raise `ValueError` naming `name`, its first value outside `[0, limit)` (`ignore_index` allowed) and `bound`,
    what sets the limit (`"config.num_labels=3"`); skipped while tracing, asynchronous on accelerators."""
    if is_tracing() or values.numel() == 0 or values.device.type == "meta" or values.is_floating_point():
        return
    in_range = (values >= 0) & (values < limit)
    if ignore_index is not None:
        in_range |= values == ignore_index
    if values.device.type != "cpu":
        torch._assert_async(in_range.all(), f"{name} must lie in [0, {limit})")
        return
    if not bool(in_range.all()):
        bad_value = int(values[~in_range].flatten()[0])
        ignored = f" or {ignore_index} (ignored)" if ignore_index is not None else ""
        raise ValueError(
            f"{name} contains {bad_value}, outside the allowed range [0, {limit}){ignored} ({bound}). {fix}"
        )


def check_text_inputs(
    config: SoraConfig,
    input_shape: tuple[int, ...],
    attention_mask: torch.Tensor | None,
    token_type_ids: torch.Tensor | None,
    position_ids: torch.Tensor | None,
    name: str = "input_ids",
) -> None:
    """Raise `ValueError` when a batch is empty or a mask, segment ids or positions do not match the ids (shape or
    range); the data-dependent range checks are skipped while tracing."""
    if is_tracing():
        return
    if len(input_shape) != 2:
        raise ValueError(
            f"{name} must have shape (batch_size, sequence_length), got {input_shape}. Batch a single text as "
            "tokenizer(text, return_tensors='pt') does (shape (1, length))."
        )
    if 0 in input_shape:
        raise ValueError(
            f"{name} has shape {input_shape}: the model needs at least one sequence of at least one token. Skip "
            "empty batches, and keep the tokenizer's special tokens (add_special_tokens=True) so no text is empty."
        )
    if (
        attention_mask is not None
        and attention_mask.dim() != 4
        and tuple(attention_mask.shape) != input_shape
    ):
        raise ValueError(
            f"attention_mask has shape {tuple(attention_mask.shape)} but {name} has shape {input_shape}: give one "
            "mask row per sequence, as long as the sequence (the tokenizer returns both with padding=True)."
        )
    for field, values, limit, bound in (
        ("token_type_ids", token_type_ids, config.type_vocab_size, "type_vocab_size"),
        ("position_ids", position_ids, config.max_position_embeddings, "max_position_embeddings"),
    ):
        if values is None:
            continue
        shape = tuple(values.shape)
        if shape != input_shape and shape != (1, input_shape[1]) and shape != (input_shape[1],):
            raise ValueError(
                f"{field} has shape {tuple(values.shape)} but {name} has shape {input_shape}: give one value per "
                f"token, shape {input_shape} (or (1, {input_shape[1]}) for every sequence)."
            )
        check_index_range(
            field,
            values,
            limit,
            f"config.{bound}={limit}",
            f"Give {field} in [0, {limit - 1}], or build the model with a larger config.{bound}.",
        )


def check_inputs_embeds(inputs_embeds: torch.Tensor, hidden_size: int, name: str = "inputs_embeds") -> None:
    """Raise `ValueError` when embeddings are not `(batch, sequence, hidden_size)`."""
    if not is_tracing() and (inputs_embeds.dim() != 3 or inputs_embeds.shape[-1] != hidden_size):
        raise ValueError(
            f"{name} must have shape (batch_size, sequence_length, hidden_size={hidden_size}), got "
            f"{tuple(inputs_embeds.shape)}. Compute them with model.get_input_embeddings()(input_ids)."
        )


def check_labels(
    name: str, labels: torch.Tensor, shape: tuple[int, ...], num_classes: int, field: str | None
) -> None:
    """Raise `ValueError` when class-id labels do not have `shape` or name a class outside `[0, num_classes)` (-100
    marks ignored positions); `field` is the config field that sets `num_classes` (None: fixed by the task)."""
    if is_tracing():
        return
    if tuple(labels.shape) != tuple(shape):
        raise ValueError(
            f"{name} has shape {tuple(labels.shape)} but the model makes predictions of shape {tuple(shape)}: give "
            "one label per prediction (-100 where there is none)."
        )
    if field is None:
        bound, fix = f"{num_classes} classes", f"Use 0..{num_classes - 1}, or -100 to ignore an example."
    else:
        bound = f"config.{field}={num_classes}"
        fix = (
            f"Use class ids 0..{num_classes - 1} (-100 marks ignored positions), or build the model with {field} "
            f"covering every class (e.g. from_pretrained(..., {field}=<number of classes>))."
        )
    check_index_range(name, labels, num_classes, bound, fix, ignore_index=-100)


def check_decoder_masks(
    inputs_embeds: torch.Tensor,
    attention_mask: torch.Tensor | None,
    encoder_hidden_states: torch.Tensor | None,
    encoder_attention_mask: torch.Tensor | None,
) -> None:
    """Raise `ValueError` when the decoder's inputs, its mask and the encoder's states disagree on the batch, or the
    encoder mask on the encoder's length."""
    if is_tracing():
        return
    batch_size, seq_length = inputs_embeds.shape[:2]
    if seq_length == 0:
        raise ValueError(
            "The decoder inputs have no tokens (decoder_input_ids or labels of length 0): give at least one, e.g. "
            "leave decoder_input_ids out so they start with config.decoder_start_token_id."
        )
    if attention_mask is not None and attention_mask.dim() == 2:
        if attention_mask.shape[0] != batch_size or attention_mask.shape[1] < seq_length:
            raise ValueError(
                f"decoder_attention_mask has shape {tuple(attention_mask.shape)} but the decoder inputs have shape "
                f"{(batch_size, seq_length)}: give one mask row per target sequence, at least as long as it."
            )
    if encoder_hidden_states is None:
        return
    if encoder_hidden_states.shape[0] != batch_size:
        raise ValueError(
            f"The decoder inputs (decoder_input_ids, decoder_inputs_embeds or labels) hold {batch_size} sequences but "
            f"the encoder's input holds {encoder_hidden_states.shape[0]}: give one target per source text."
        )
    encoder_shape = tuple(encoder_hidden_states.shape[:2])
    if (
        encoder_attention_mask is not None
        and encoder_attention_mask.dim() == 2
        and tuple(encoder_attention_mask.shape) != encoder_shape
    ):
        raise ValueError(
            f"attention_mask has shape {tuple(encoder_attention_mask.shape)} but the encoder's output covers "
            f"{encoder_shape} positions: pass the attention_mask that goes with input_ids (or with encoder_outputs)."
        )


def check_sequence_length(seq_length: int, max_positions: int) -> None:
    """Raise `ValueError` when a sequence is longer than the learned positions."""
    if seq_length > max_positions:
        raise ValueError(
            f"Sequence length {seq_length} exceeds the model's position limit max_position_embeddings="
            f"{max_positions}. Truncate the input (tokenizer(..., truncation=True, max_length={max_positions}))."
        )


def check_pixel_values(pixel_values: torch.Tensor, config: SoraVisionConfig) -> None:
    """Raise `ValueError` when images do not have the shape the vision tower was built for."""
    if pixel_values.ndim != 4:
        raise ValueError(
            f"pixel_values must have shape (batch, channels, height, width), got {tuple(pixel_values.shape)}. "
            "Prepare images with SoraImageProcessor (or SoraProcessor)."
        )
    channels, height, width = pixel_values.shape[1:]
    if channels != config.num_channels:
        raise ValueError(
            f"pixel_values has {channels} channel(s) but the vision tower expects {config.num_channels}: convert "
            f"the images (e.g. `image.convert('RGB')`) or let SoraImageProcessor(do_convert_rgb=True) do it."
        )
    if (height, width) != (config.image_size, config.image_size):
        raise ValueError(
            f"pixel_values are {height}x{width} but the vision tower expects {config.image_size}x"
            f"{config.image_size}; resize them with SoraImageProcessor(size={{'height': {config.image_size}, "
            f"'width': {config.image_size}}})."
        )


def check_input_features(input_features: torch.Tensor, config: SoraAudioConfig) -> None:
    """Raise `ValueError` when log-mel features do not have the shape the audio tower was built for."""
    if input_features.ndim != 3 or input_features.shape[1] != config.num_mel_bins:
        raise ValueError(
            f"input_features must have shape (batch, num_mel_bins={config.num_mel_bins}, frames), got "
            f"{tuple(input_features.shape)}; compute them with SoraFeatureExtractor(feature_size="
            f"{config.num_mel_bins})."
        )
    if input_features.shape[-1] == 0:
        raise ValueError(
            "input_features has no frames: the audio is empty. Pass at least one frame of audio."
        )


def subsampled_lengths(lengths: torch.Tensor) -> torch.Tensor:
    """Frames left after the audio tower's two convolutions (kernel 3, stride 2, padding 1)."""
    for _ in range(2):
        lengths = (lengths - 1) // 2 + 1
    return lengths


def shift_tokens_right(
    input_ids: torch.Tensor, pad_token_id: int, decoder_start_token_id: int
) -> torch.Tensor:
    """Shift ids one position to the right and start with `decoder_start_token_id` (labels -> decoder inputs)."""
    for name, value in (("decoder_start_token_id", decoder_start_token_id), ("pad_token_id", pad_token_id)):
        if value is None:
            raise ValueError(
                f"config.{name} is None, but the decoder inputs are made by shifting labels (or input_ids) right, "
                f"which needs it: set config.{name} (Sora's tokenizer uses decoder_start_token_id=2 (</s>) and "
                "pad_token_id=0), or pass decoder_input_ids."
            )
    if input_ids.dim() != 2 or 0 in input_ids.shape:
        raise ValueError(
            f"The decoder inputs are made by shifting labels (or input_ids) right, but those have shape "
            f"{tuple(input_ids.shape)}: give (batch_size, length) ids with at least one sequence of one token."
        )
    shifted = input_ids.new_zeros(input_ids.shape)
    shifted[:, 1:] = input_ids[:, :-1].clone()
    shifted[:, 0] = decoder_start_token_id
    shifted.masked_fill_(shifted == -100, pad_token_id)
    return shifted


@dataclass
class RealTokens:
    """Where the real (non-padding) tokens of a `(batch, seq)` block sit, so that position-wise work (LayerNorm,
    projections, MLP) runs on them alone and attention runs within each sequence's real tokens (ModernBERT's
    unpadding with a variable-length attention product)."""

    indices: torch.Tensor
    batch_size: int
    seq_length: int
    cu_seqlens: torch.Tensor  # (batch + 1,) int32: where each row's tokens start in the packed order
    spans: list[tuple[int, int]]  # the same offsets on the host, one (start, end) per row
    max_length: int

    @classmethod
    def from_mask(
        cls, attention_mask: torch.Tensor | None, hidden_states: torch.Tensor
    ) -> "RealTokens | None":
        """The real tokens of a 2D padding mask over `hidden_states`; None when nothing is padded, while compiling,
        or when the mask also covers positions the states do not hold (prefix tuning's virtual tokens)."""
        if (
            attention_mask is None
            or attention_mask.dim() != 2
            or attention_mask.shape != hidden_states.shape[:2]
            or is_tracing()
        ):
            return None
        real = attention_mask.bool()
        if bool(real.all()):
            return None
        lengths = real.sum(1, dtype=torch.int32)
        cu_seqlens = nn.functional.pad(lengths.cumsum(0, dtype=torch.int32), (1, 0))
        offsets = cu_seqlens.tolist()
        return cls(
            indices=real.flatten().nonzero().squeeze(-1),
            batch_size=attention_mask.shape[0],
            seq_length=attention_mask.shape[1],
            cu_seqlens=cu_seqlens,
            spans=list(zip(offsets[:-1], offsets[1:])),
            max_length=int(lengths.max()),
        )

    def unpad(self, states: torch.Tensor) -> torch.Tensor:
        """`(batch, seq, ...)` -> `(num_real, ...)`."""
        return states.flatten(0, 1).index_select(0, self.indices)

    def pad(self, states: torch.Tensor, into: torch.Tensor | None = None) -> torch.Tensor:
        """`(num_real, ...)` -> `(batch, seq, ...)`, padding positions taken from `into` (zeros by default)."""
        if into is None:
            into = states.new_zeros(self.batch_size, self.seq_length, *states.shape[1:])
        return into.flatten(0, 1).index_copy(0, self.indices, states).view(into.shape)


def recording(output: str) -> bool:
    """True while `output_<output>` is collecting per-layer outputs (`"attentions"`, `"hidden_states"`)."""
    collected = _active_collector.get()
    return collected is not None and output in collected


def varlen_attention_forward(
    module: nn.Module,
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    real_tokens: RealTokens,
    dropout: float = 0.0,
    scaling: float | None = None,
    first_token_only: bool = False,
    **kwargs: Unpack[TransformersKwargs],
) -> torch.Tensor:
    """Attention of packed `(1, heads, num_real, head_dim)` tokens within each sequence, no padding in the product:
    flash attention's variable-length kernel when configured, else the configured kernel once per sequence. With
    `first_token_only`, only each sequence's first token queries (one output row per sequence)."""
    implementation = module.config._attn_implementation
    attention_interface: Callable = ALL_ATTENTION_FUNCTIONS.get_interface(
        implementation, eager_attention_forward
    )
    if is_flash_attention_requested(requested_attention_implementation=implementation):
        cu_seqlens = real_tokens.cu_seqlens.to(query.device)
        cu_seqlens_q, max_length_q = cu_seqlens, real_tokens.max_length
        if first_token_only:
            query = query[:, :, cu_seqlens[:-1].long()]
            cu_seqlens_q, max_length_q = (
                torch.arange(len(cu_seqlens), dtype=torch.int32, device=query.device),
                1,
            )
        attn_output, _ = attention_interface(
            module,
            query,
            key,
            value,
            None,
            dropout=dropout,
            scaling=scaling,
            cu_seq_lens_q=cu_seqlens_q,
            cu_seq_lens_k=cu_seqlens,
            max_length_q=max_length_q,
            max_length_k=real_tokens.max_length,
            **kwargs,
        )
        return attn_output[0]
    outputs = []
    for start, end in real_tokens.spans:
        if start == end:  # a row of padding only
            continue
        attn_output, _ = attention_interface(
            module,
            query[:, :, start : start + 1 if first_token_only else end],
            key[:, :, start:end],
            value[:, :, start:end],
            None,
            dropout=dropout,
            scaling=scaling,
            **kwargs,
        )
        outputs.append(attn_output[0])
    if not outputs:  # every sequence is padding only: no token queries
        return query.new_zeros(0, query.shape[1], value.shape[-1])
    return torch.cat(outputs)


def eager_attention_forward(
    module: nn.Module,
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    attention_mask: torch.Tensor | None,
    scaling: float,
    dropout: float = 0.0,
    **kwargs: Unpack[TransformersKwargs],
) -> tuple[torch.Tensor, torch.Tensor]:
    attn_weights = torch.matmul(query, key.transpose(2, 3)) * scaling
    if attention_mask is not None:
        attn_weights = attn_weights + attention_mask
    attn_weights = nn.functional.softmax(attn_weights, dim=-1, dtype=torch.float32).to(query.dtype)
    attn_weights = nn.functional.dropout(attn_weights, p=dropout, training=module.training)
    attn_output = torch.matmul(attn_weights, value).transpose(1, 2).contiguous()
    return attn_output, attn_weights


class SoraEmbeddings(nn.Module):
    """Word, learned absolute position and token-type embeddings."""

    def __init__(self, config: SoraConfig):
        super().__init__()
        self.config = config
        self.word_embeddings = nn.Embedding(config.vocab_size, config.hidden_size, config.pad_token_id)
        self.position_embeddings = nn.Embedding(config.max_position_embeddings, config.hidden_size)
        self.token_type_embeddings = nn.Embedding(config.type_vocab_size, config.hidden_size)
        self.layer_norm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.dropout = nn.Dropout(config.hidden_dropout_prob)

    def forward(
        self,
        input_ids: torch.LongTensor | None = None,
        token_type_ids: torch.LongTensor | None = None,
        position_ids: torch.LongTensor | None = None,
        inputs_embeds: torch.Tensor | None = None,
    ) -> torch.Tensor:
        if inputs_embeds is None:
            check_input_ids(input_ids, self.config.vocab_size)
            inputs_embeds = self.word_embeddings(input_ids)
        seq_length = inputs_embeds.shape[1]
        check_sequence_length(seq_length, self.config.max_position_embeddings)
        if position_ids is None:
            position_ids = torch.arange(seq_length, device=inputs_embeds.device).unsqueeze(0)
        embeddings = inputs_embeds + self.position_embeddings(position_ids)
        if token_type_ids is not None:
            embeddings = embeddings + self.token_type_embeddings(token_type_ids)
        else:
            embeddings = embeddings + self.token_type_embeddings.weight[0]
        return self.dropout(self.layer_norm(embeddings))


class SoraSelfAttention(nn.Module):
    """Multi-head self-attention with one fused query/key/value projection."""

    def __init__(
        self, config: SoraConfig, num_heads: int, is_causal: bool = False, layer_idx: int | None = None
    ):
        super().__init__()
        self.config = config
        self.num_heads = num_heads
        self.head_dim = config.hidden_size // num_heads
        self.scaling = self.head_dim**-0.5
        self.attention_dropout = config.attention_probs_dropout_prob
        self.is_causal = is_causal
        self.layer_idx = layer_idx
        self.qkv_proj = nn.Linear(config.hidden_size, 3 * config.hidden_size)
        self.o_proj = nn.Linear(config.hidden_size, config.hidden_size)

    @deprecate_kwarg("past_key_values", "5.40.0", new_name="cache")
    def forward(
        self,
        hidden_states: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        cache: Cache | None = None,
        real_tokens: RealTokens | None = None,
        first_token_only: bool = False,
        **kwargs: Unpack[TransformersKwargs],
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """With `first_token_only`, only the first token of each sequence queries: its output alone comes back."""
        qkv = self.qkv_proj(hidden_states)
        dropout = self.attention_dropout if self.training else 0.0
        if real_tokens is not None and not recording("attentions"):
            # `hidden_states` holds only the real tokens: attention runs sequence by sequence on them
            query, key, value = (
                qkv.view(1, -1, 3, self.num_heads, self.head_dim).permute(2, 0, 3, 1, 4).unbind(0)
            )
            attn_output = varlen_attention_forward(
                self,
                query,
                key,
                value,
                real_tokens,
                dropout=dropout,
                scaling=self.scaling,
                first_token_only=first_token_only,
                **kwargs,
            )
            return self.o_proj(attn_output.reshape(-1, self.num_heads * self.head_dim)), None
        if real_tokens is not None:  # attention weights are wanted in the padded layout
            qkv = real_tokens.pad(qkv)
        input_shape = qkv.shape[:-1]
        qkv = qkv.view(*input_shape, 3, self.num_heads, self.head_dim)
        query, key, value = qkv.permute(2, 0, 3, 1, 4).unbind(0)
        if cache is not None:
            key, value = cache.update(key, value, self.layer_idx)
        if first_token_only:
            query, input_shape = query[:, :, :1], (input_shape[0], 1)
            attention_mask = attention_mask[:, :, :1] if attention_mask is not None else None

        attention_interface: Callable = ALL_ATTENTION_FUNCTIONS.get_interface(
            self.config._attn_implementation, eager_attention_forward
        )
        attn_output, attn_weights = attention_interface(
            self,
            query,
            key,
            value,
            attention_mask,
            dropout=dropout,
            scaling=self.scaling,
            **kwargs,
        )
        attn_output = attn_output.reshape(*input_shape, -1)
        if real_tokens is not None:
            attn_output = attn_output[:, 0] if first_token_only else real_tokens.unpad(attn_output)
        return self.o_proj(attn_output.contiguous()), attn_weights


class SoraCrossAttention(nn.Module):
    """Multi-head attention from decoder queries to encoder keys and values (computed once, then cached)."""

    def __init__(self, config: SoraConfig, num_heads: int, layer_idx: int | None = None):
        super().__init__()
        self.config = config
        self.num_heads = num_heads
        self.head_dim = config.hidden_size // num_heads
        self.scaling = self.head_dim**-0.5
        self.attention_dropout = config.attention_probs_dropout_prob
        self.is_causal = False
        self.layer_idx = layer_idx
        self.q_proj = nn.Linear(config.hidden_size, config.hidden_size)
        self.kv_proj = nn.Linear(config.hidden_size, 2 * config.hidden_size)
        self.o_proj = nn.Linear(config.hidden_size, config.hidden_size)

    @deprecate_kwarg("past_key_values", "5.40.0", new_name="cache")
    def forward(
        self,
        hidden_states: torch.Tensor,
        encoder_hidden_states: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        cache: EncoderDecoderCache | None = None,
        **kwargs: Unpack[TransformersKwargs],
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        input_shape = hidden_states.shape[:-1]
        query = self.q_proj(hidden_states).view(*input_shape, self.num_heads, self.head_dim).transpose(1, 2)
        if cache is not None and cache.is_updated.get(self.layer_idx):
            key = cache.cross_attention_cache.layers[self.layer_idx].keys
            value = cache.cross_attention_cache.layers[self.layer_idx].values
        else:
            kv_shape = (*encoder_hidden_states.shape[:-1], 2, self.num_heads, self.head_dim)
            key, value = self.kv_proj(encoder_hidden_states).view(kv_shape).permute(2, 0, 3, 1, 4).unbind(0)
            if cache is not None:
                key, value = cache.cross_attention_cache.update(key, value, self.layer_idx)
                cache.is_updated[self.layer_idx] = True

        attention_interface: Callable = ALL_ATTENTION_FUNCTIONS.get_interface(
            self.config._attn_implementation, eager_attention_forward
        )
        attn_output, attn_weights = attention_interface(
            self,
            query,
            key,
            value,
            attention_mask,
            dropout=self.attention_dropout if self.training else 0.0,
            scaling=self.scaling,
            **kwargs,
        )
        attn_output = self.o_proj(attn_output.reshape(*input_shape, -1).contiguous())
        return attn_output, attn_weights


class SoraMLP(nn.Module):
    """Position-wise feed-forward block."""

    def __init__(self, config: SoraConfig, intermediate_size: int):
        super().__init__()
        self.fc1 = nn.Linear(config.hidden_size, intermediate_size)
        self.act_fn = ACT2FN[config.hidden_act]
        self.fc2 = nn.Linear(intermediate_size, config.hidden_size)

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.act_fn(self.fc1(hidden_states)))


class SoraEncoderLayer(GradientCheckpointingLayer):
    """Pre-LayerNorm block: self-attention, then MLP, each inside a residual connection."""

    def __init__(self, config: SoraConfig, layer_idx: int):
        super().__init__()
        self.self_attn_layer_norm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.self_attn = SoraSelfAttention(config, config.num_attention_heads, layer_idx=layer_idx)
        self.final_layer_norm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.mlp = SoraMLP(config, config.intermediate_size)
        self.dropout = nn.Dropout(config.hidden_dropout_prob)

    def forward(
        self,
        hidden_states: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        real_tokens: RealTokens | None = None,
        first_token_only: bool = False,
        **kwargs: Unpack[TransformersKwargs],
    ) -> torch.Tensor:
        """With `real_tokens`, everything but the attention product runs on the real tokens only; padding
        positions pass through unchanged. With `first_token_only`, only the first position comes out, and the
        work after the key/value projection runs for it alone: `(batch, 1, hidden)`."""
        states = real_tokens.unpad(hidden_states) if real_tokens is not None else hidden_states
        attn_output, _ = self.self_attn(
            self.self_attn_layer_norm(states),
            attention_mask,
            real_tokens=real_tokens,
            first_token_only=first_token_only,
            **kwargs,
        )
        if first_token_only:
            states = hidden_states[:, 0]
            attn_output = attn_output.view_as(states)
        states = states + self.dropout(attn_output)
        states = states + self.dropout(self.mlp(self.final_layer_norm(states)))
        if first_token_only:
            return states.unsqueeze(1)
        return real_tokens.pad(states, into=hidden_states) if real_tokens is not None else states


class SoraDecoderLayer(GradientCheckpointingLayer):
    """Pre-LayerNorm block: causal self-attention, cross-attention to the encoder, then MLP."""

    def __init__(self, config: SoraConfig, layer_idx: int):
        super().__init__()
        heads = config.decoder_attention_heads
        self.self_attn_layer_norm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.self_attn = SoraSelfAttention(config, heads, is_causal=True, layer_idx=layer_idx)
        self.encoder_attn_layer_norm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.encoder_attn = SoraCrossAttention(config, heads, layer_idx=layer_idx)
        self.final_layer_norm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.mlp = SoraMLP(config, config.decoder_intermediate_size)
        self.dropout = nn.Dropout(config.hidden_dropout_prob)

    @deprecate_kwarg("past_key_values", "5.40.0", new_name="cache")
    def forward(
        self,
        hidden_states: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        encoder_hidden_states: torch.Tensor | None = None,
        encoder_attention_mask: torch.Tensor | None = None,
        cache: EncoderDecoderCache | None = None,
        use_cache: bool | None = True,
        **kwargs: Unpack[TransformersKwargs],
    ) -> torch.Tensor:
        self_attn_cache = cache.self_attention_cache if cache is not None else None
        attn_output, _ = self.self_attn(
            self.self_attn_layer_norm(hidden_states), attention_mask, cache=self_attn_cache, **kwargs
        )
        hidden_states = hidden_states + self.dropout(attn_output)
        if encoder_hidden_states is not None:
            attn_output, _ = self.encoder_attn(
                self.encoder_attn_layer_norm(hidden_states),
                encoder_hidden_states,
                encoder_attention_mask,
                cache=cache,
                **kwargs,
            )
            hidden_states = hidden_states + self.dropout(attn_output)
        hidden_states = hidden_states + self.dropout(self.mlp(self.final_layer_norm(hidden_states)))
        return hidden_states


class SoraPreTrainedModel(PreTrainedModel):
    config: SoraConfig
    base_model_prefix = "model"
    supports_gradient_checkpointing = True
    _no_split_modules = ["SoraEncoderLayer", "SoraDecoderLayer", "SoraEmbeddings"]
    _supports_flash_attn = True
    _supports_sdpa = True
    _supports_flex_attn = True
    _supports_attention_backend = True
    _can_compile_fullgraph = False  # input-id validation reads the ids on CPU
    # Sequence-level losses are plain means over the micro-batch: Trainer scales them for gradient
    # accumulation. Token-level heads override this and take `num_items_in_batch`.
    accepts_loss_kwargs = False

    def __init__(self, config: SoraConfig | SoraVisionConfig | SoraAudioConfig, *inputs, **kwargs):
        # A config changed in place past its checks (`config.id2label.clear()`) is caught here, before any layer.
        if isinstance(config, CheckedConfigMixin):
            config.check()
        super().__init__(config, *inputs, **kwargs)

    @torch.no_grad()
    def _init_weights(self, module: nn.Module) -> None:
        super()._init_weights(module)
        if isinstance(module, SoraFusionProjection):
            init.normal_(module.weight, mean=0.0, std=module.in_features**-0.5)

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path, *args, **kwargs):
        """Load weights; the name `sora` means the packaged checkpoint (a local folder `sora` still wins). A truncated
        or corrupt weights file raises `CorruptCheckpointError` naming it."""
        name_or_path = resolve_pretrained_name(pretrained_model_name_or_path)
        try:
            return super().from_pretrained(name_or_path, *args, **kwargs)
        except SafetensorError as error:
            corrupt = find_corrupt_safetensors(
                name_or_path,
                subfolder=kwargs.get("subfolder") or "",
                cache_dir=kwargs.get("cache_dir"),
                revision=kwargs.get("revision"),
            )
            if corrupt is None:
                raise
            path, problem = corrupt
            raise CorruptCheckpointError(
                f"{path} is truncated or corrupt ({problem}), as an interrupted save or download leaves it. Save the "
                "model again with save_pretrained, or download it again with from_pretrained(..., "
                "force_download=True)."
            ) from error

    def save_pretrained(self, save_directory: StrPath, *args, **kwargs) -> None:
        """`PreTrainedModel.save_pretrained`, each file renamed into place whole: a process loading the folder
        meanwhile reads the old or the new file, never half of one (see `atomic_files.save_files_atomically`)."""
        save_files_atomically(super().save_pretrained, save_directory, *args, **kwargs)


@dataclass
class SoraEncoderOutput(BaseModelOutput):
    r"""
    attention_mask (`torch.LongTensor` of shape `(batch_size, sequence_length)`, *optional*):
        Padding mask of `last_hidden_state` when it is not the text alone: the fused sequence `[text; image
        patches; audio frames]` of the encoder, or the subsampled frames of the audio tower.
    """

    attention_mask: torch.LongTensor | None = None


class SoraConvolutionalPatchEmbeddings(nn.Module):
    """Early-convolution stem: stride-2 3x3 convolutions (BatchNorm + GELU) down to one vector per patch."""

    def __init__(self, config: SoraVisionConfig):
        super().__init__()
        halvings = config.patch_size.bit_length() - 1
        # Widths double towards hidden_size: hidden/2**(k-1), ..., hidden/2, then the last convolution.
        widths = [config.num_channels] + [
            max(config.hidden_size // 2 ** (halvings - i), 8) for i in range(1, halvings)
        ]
        layers: list[nn.Module] = []
        for in_channels, out_channels in zip(widths[:-1], widths[1:]):
            layers += [
                nn.Conv2d(in_channels, out_channels, kernel_size=3, stride=2, padding=1),
                nn.BatchNorm2d(out_channels),
                ACT2FN[config.hidden_act],
            ]
        layers.append(nn.Conv2d(widths[-1], config.hidden_size, kernel_size=3, stride=2, padding=1))
        self.layers = nn.Sequential(*layers)

    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        return self.layers(pixel_values)


class SoraVisionModel(SoraPreTrainedModel):
    """ViT-style image tower: non-overlapping patches, learned patch positions, pre-LayerNorm layers."""

    config: SoraVisionConfig
    main_input_name = "pixel_values"
    _can_record_outputs = {"hidden_states": SoraEncoderLayer, "attentions": SoraSelfAttention}

    def __init__(self, config: SoraVisionConfig):
        super().__init__(config)
        if config.patch_embedding_type == "convolutional":
            self.patch_embeddings = SoraConvolutionalPatchEmbeddings(config)
        else:
            self.patch_embeddings = nn.Conv2d(
                config.num_channels,
                config.hidden_size,
                kernel_size=config.patch_size,
                stride=config.patch_size,
            )
        self.position_embeddings = nn.Embedding(config.num_patches, config.hidden_size)
        self.dropout = nn.Dropout(config.hidden_dropout_prob)
        self.layers = nn.ModuleList([SoraEncoderLayer(config, i) for i in range(config.num_hidden_layers)])
        self.final_layer_norm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.gradient_checkpointing = False
        self.post_init()

    def get_input_embeddings(self) -> nn.Module:
        return self.patch_embeddings

    @merge_with_config_defaults
    @capture_outputs
    def forward(
        self, pixel_values: torch.FloatTensor, **kwargs: Unpack[TransformersKwargs]
    ) -> SoraEncoderOutput:
        r"""
        pixel_values (`torch.FloatTensor` of shape `(batch_size, num_channels, image_size, image_size)`):
            Images prepared by `SoraImageProcessor`.
        """
        check_pixel_values(pixel_values, self.config)
        pixel_values = pixel_values.to(self.position_embeddings.weight.dtype)
        patches = self.patch_embeddings(pixel_values).flatten(2).transpose(1, 2)  # (batch, patches, hidden)
        hidden_states = self.dropout(patches + self.position_embeddings.weight)
        for layer in self.layers:
            hidden_states = layer(hidden_states, None, **kwargs)
        return SoraEncoderOutput(last_hidden_state=self.final_layer_norm(hidden_states))


class SoraAudioModel(SoraPreTrainedModel):
    """Audio tower: log-mel frames, two stride-2 convolutions (4x subsampling), learned positions, pre-LN layers."""

    config: SoraAudioConfig
    main_input_name = "input_features"
    _can_record_outputs = {"hidden_states": SoraEncoderLayer, "attentions": SoraSelfAttention}

    def __init__(self, config: SoraAudioConfig):
        super().__init__(config)
        self.conv1 = nn.Conv1d(config.num_mel_bins, config.hidden_size, kernel_size=3, stride=2, padding=1)
        self.conv2 = nn.Conv1d(config.hidden_size, config.hidden_size, kernel_size=3, stride=2, padding=1)
        self.act_fn = ACT2FN[config.hidden_act]
        self.position_embeddings = nn.Embedding(config.max_source_positions, config.hidden_size)
        self.dropout = nn.Dropout(config.hidden_dropout_prob)
        self.layers = nn.ModuleList([SoraEncoderLayer(config, i) for i in range(config.num_hidden_layers)])
        self.final_layer_norm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.gradient_checkpointing = False
        self.post_init()

    def get_input_embeddings(self) -> nn.Conv1d:
        return self.conv1

    @merge_with_config_defaults
    @capture_outputs
    def forward(
        self,
        input_features: torch.FloatTensor,
        feature_attention_mask: torch.Tensor | None = None,
        **kwargs: Unpack[TransformersKwargs],
    ) -> SoraEncoderOutput:
        r"""
        input_features (`torch.FloatTensor` of shape `(batch_size, num_mel_bins, frames)`):
            Log-mel features prepared by `SoraFeatureExtractor`.
        feature_attention_mask (`torch.Tensor` of shape `(batch_size, frames)`, *optional*):
            1 for real frames, 0 for padding.
        """
        check_input_features(input_features, self.config)
        batch_size, _, frames = input_features.shape
        if feature_attention_mask is None:
            feature_attention_mask = torch.ones(
                batch_size, frames, dtype=torch.long, device=input_features.device
            )
        elif tuple(feature_attention_mask.shape) != (batch_size, frames):
            raise ValueError(
                f"feature_attention_mask has shape {tuple(feature_attention_mask.shape)} but input_features hold "
                f"{batch_size} clip(s) of {frames} frames: pass the mask SoraFeatureExtractor returns with them "
                "(shape (batch_size, frames))."
            )
        lengths = feature_attention_mask.sum(-1)
        if not is_torchdynamo_compiling() and bool((lengths == 0).any()):
            empty = int((lengths == 0).nonzero()[0])
            raise ValueError(
                f"Audio example {empty} is empty (feature_attention_mask has no frame set): pass at least one "
                "frame of audio per example, or leave input_features out for that batch."
            )
        # Padding frames are zeroed before each convolution, so a clip gives the same output padded or alone.
        features = input_features.to(self.conv1.weight.dtype) * feature_attention_mask[:, None, :]
        hidden_states = self.act_fn(self.conv1(features))
        half_lengths = (lengths - 1) // 2 + 1
        half_mask = torch.arange(hidden_states.shape[-1], device=lengths.device) < half_lengths[:, None]
        hidden_states = self.act_fn(self.conv2(hidden_states * half_mask[:, None, :]))
        hidden_states = hidden_states.transpose(1, 2)
        seq_length = hidden_states.shape[1]
        if seq_length > self.config.max_source_positions:
            raise ValueError(
                f"The audio gives {seq_length} frames after subsampling, more than the audio tower's "
                f"max_source_positions={self.config.max_source_positions}; truncate it (SoraFeatureExtractor("
                f"..., truncation=True, max_length={4 * self.config.max_source_positions}))."
            )
        attention_mask = (
            torch.arange(seq_length, device=lengths.device) < subsampled_lengths(lengths)[:, None]
        ).long()
        hidden_states = self.dropout(hidden_states + self.position_embeddings.weight[:seq_length])
        layer_mask = create_bidirectional_mask(
            config=self.config, inputs_embeds=hidden_states, attention_mask=attention_mask
        )
        for layer in self.layers:
            hidden_states = layer(hidden_states, layer_mask, **kwargs)
        return SoraEncoderOutput(
            last_hidden_state=self.final_layer_norm(hidden_states), attention_mask=attention_mask
        )


class SoraModalityProjector(nn.Module):
    """Linear map from a tower's width to the encoder's, then LayerNorm: the text embeddings' scale."""

    def __init__(self, input_size: int, config: SoraConfig):
        super().__init__()
        self.linear = nn.Linear(input_size, config.hidden_size)
        self.layer_norm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        return self.layer_norm(self.linear(hidden_states))


def text_positions(
    hidden_states: torch.Tensor, input_ids: torch.Tensor | None, inputs_embeds: torch.Tensor | None
) -> torch.Tensor:
    """The text part of a fused sequence: it comes first, and is the lone `<s>` when no text was given."""
    text = input_ids if input_ids is not None else inputs_embeds
    return hidden_states[:, : text.shape[1] if text is not None else 1]


class SoraEncoder(SoraPreTrainedModel):
    """Embeddings, a stack of `SoraEncoderLayer` and a final LayerNorm; with `config.vision_config` /
    `config.audio_config`, image / audio towers whose tokens join the text tokens before the first layer."""

    _can_record_outputs = {"hidden_states": SoraEncoderLayer, "attentions": SoraSelfAttention}

    def __init__(self, config: SoraConfig):
        super().__init__(config)
        self.embeddings = SoraEmbeddings(config)
        self.vision_tower = self.audio_tower = None
        if config.vision_config is not None:
            self.vision_tower = SoraVisionModel(config.vision_config)
            self.vision_projector = SoraModalityProjector(config.vision_config.hidden_size, config)
        if config.audio_config is not None:
            self.audio_tower = SoraAudioModel(config.audio_config)
            self.audio_projector = SoraModalityProjector(config.audio_config.hidden_size, config)
        if config.vision_config is not None or config.audio_config is not None:
            # Modality-type embeddings (0 text, 1 image, 2 audio), added to every token of the fused sequence.
            self.modality_embeddings = nn.Embedding(3, config.hidden_size)
        self.layers = nn.ModuleList([SoraEncoderLayer(config, i) for i in range(config.num_hidden_layers)])
        self.final_layer_norm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.gradient_checkpointing = False
        self.post_init()

    def get_input_embeddings(self) -> nn.Embedding:
        return self.embeddings.word_embeddings

    def set_input_embeddings(self, value: nn.Embedding) -> None:
        self.embeddings.word_embeddings = value

    @merge_with_config_defaults
    @capture_outputs
    def forward(
        self,
        input_ids: torch.LongTensor | None = None,
        attention_mask: torch.Tensor | None = None,
        token_type_ids: torch.LongTensor | None = None,
        position_ids: torch.LongTensor | None = None,
        inputs_embeds: torch.Tensor | None = None,
        pixel_values: torch.FloatTensor | None = None,
        input_features: torch.FloatTensor | None = None,
        feature_attention_mask: torch.Tensor | None = None,
        first_token_only: bool = False,
        **kwargs: Unpack[TransformersKwargs],
    ) -> SoraEncoderOutput:
        r"""
        pixel_values (`torch.FloatTensor` of shape `(batch_size, num_channels, image_size, image_size)`, *optional*):
            Images (from `SoraImageProcessor`) for the vision tower; needs `config.vision_config`.
        input_features (`torch.FloatTensor` of shape `(batch_size, num_mel_bins, frames)`, *optional*):
            Log-mel features (from `SoraFeatureExtractor`) for the audio tower; needs `config.audio_config`.
        feature_attention_mask (`torch.Tensor` of shape `(batch_size, frames)`, *optional*):
            Padding mask of `input_features`.
        first_token_only (`bool`, *optional*, defaults to `False`):
            The caller reads only the first (`<s>`) position of `last_hidden_state`: the last layer then computes
            that position alone (`last_hidden_state` is `(batch_size, 1, hidden_size)`). Ignored, with the full
            state returned, for media inputs, left padding, tracing, or while hidden states or attentions are
            recorded.
        """
        self.check_media_towers(pixel_values, input_features)
        has_media = pixel_values is not None or input_features is not None
        if has_media and input_ids is None and inputs_embeds is None:
            # No text: the sequence starts with `<s>` alone, so the pooler and every head find their token.
            media = pixel_values if pixel_values is not None else input_features
            cls_id = (
                self.config.cls_token_id if self.config.cls_token_id is not None else self.config.bos_token_id
            )
            input_ids = torch.full((media.shape[0], 1), cls_id or 0, dtype=torch.long, device=media.device)
            attention_mask = token_type_ids = position_ids = None
        if (input_ids is None) ^ (inputs_embeds is not None):
            raise ValueError("You must specify exactly one of input_ids or inputs_embeds.")
        if input_ids is not None:
            check_text_inputs(
                self.config, tuple(input_ids.shape), attention_mask, token_type_ids, position_ids
            )
        else:
            check_inputs_embeds(inputs_embeds, self.config.hidden_size)
            check_text_inputs(
                self.config,
                tuple(inputs_embeds.shape[:-1]),
                attention_mask,
                token_type_ids,
                position_ids,
                name="inputs_embeds (without the hidden dimension)",
            )
        hidden_states = self.embeddings(input_ids, token_type_ids, position_ids, inputs_embeds)
        # Media tokens join before layer `fusion_layer`; the layers below it read the text alone.
        fusion_layer = self.config.fusion_layer if has_media else len(self.layers)
        if fusion_layer:
            text_mask = create_bidirectional_mask(
                config=self.config, inputs_embeds=hidden_states, attention_mask=attention_mask
            )
            # Padding then costs no projection or MLP work.
            real_tokens = RealTokens.from_mask(attention_mask, hidden_states)
            first_token_only = (
                first_token_only
                and not has_media
                and not is_tracing()
                and not recording("hidden_states")
                and not recording("attentions")
                and (attention_mask is None or bool(attention_mask[:, 0].all()))
            )
            for index, layer in enumerate(self.layers[:fusion_layer]):
                hidden_states = layer(
                    hidden_states,
                    text_mask,
                    real_tokens=real_tokens,
                    first_token_only=first_token_only and index == fusion_layer - 1,
                    **kwargs,
                )
        fused_mask = None
        if has_media:
            hidden_states, fused_mask = self.fuse(
                hidden_states, attention_mask, pixel_values, input_features, feature_attention_mask
            )
            layer_mask = create_bidirectional_mask(
                config=self.config, inputs_embeds=hidden_states, attention_mask=fused_mask
            )
            for layer in self.layers[fusion_layer:]:
                hidden_states = layer(hidden_states, layer_mask, **kwargs)
        return SoraEncoderOutput(
            last_hidden_state=self.final_layer_norm(hidden_states), attention_mask=fused_mask
        )

    def check_media_towers(
        self, pixel_values: torch.Tensor | None, input_features: torch.Tensor | None
    ) -> None:
        """Raise `ValueError` when images or audio reach a model built without the matching tower."""
        if pixel_values is not None and self.vision_tower is None:
            raise ValueError(
                "pixel_values were given but this Sora model has no vision tower (config.vision_config is None). "
                "Build it with SoraConfig(vision_config=SoraVisionConfig(...)), or drop pixel_values."
            )
        if input_features is not None and self.audio_tower is None:
            raise ValueError(
                "input_features were given but this Sora model has no audio tower (config.audio_config is None). "
                "Build it with SoraConfig(audio_config=SoraAudioConfig(...)), or drop input_features."
            )

    def fuse(
        self,
        text_states: torch.Tensor,
        text_mask: torch.Tensor | None,
        pixel_values: torch.Tensor | None,
        input_features: torch.Tensor | None,
        feature_attention_mask: torch.Tensor | None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Early fusion: `[text; image patches; audio frames]`, each with its modality embedding, and their mask."""
        batch_size, text_length = text_states.shape[:2]
        if text_mask is None:
            text_mask = torch.ones(batch_size, text_length, dtype=torch.long, device=text_states.device)
        modality = self.modality_embeddings.weight
        states, masks = [text_states + modality[0]], [text_mask.long()]
        for name, media in (("pixel_values", pixel_values), ("input_features", input_features)):
            if media is not None and media.shape[0] != batch_size:
                raise ValueError(
                    f"{name} holds {media.shape[0]} examples but the text holds {batch_size}: pass one "
                    "image/audio per text (repeat it for several questions about the same one)."
                )
        if pixel_values is not None:
            image = self.vision_projector(self.vision_tower(pixel_values).last_hidden_state)
            states.append(image.to(text_states.dtype) + modality[1])
            masks.append(torch.ones(image.shape[:2], dtype=torch.long, device=image.device))
        if input_features is not None:
            audio_outputs = self.audio_tower(input_features, feature_attention_mask)
            audio = self.audio_projector(audio_outputs.last_hidden_state)
            states.append(audio.to(text_states.dtype) + modality[2])
            masks.append(audio_outputs.attention_mask)
        return torch.cat(states, dim=1), torch.cat(masks, dim=1)


class SoraDecoder(SoraPreTrainedModel):
    """Word and position embeddings, a stack of `SoraDecoderLayer` and a final LayerNorm."""

    _can_record_outputs = {
        "hidden_states": SoraDecoderLayer,
        "attentions": OutputRecorder(SoraSelfAttention, index=1, layer_name="self_attn"),
        "cross_attentions": OutputRecorder(SoraCrossAttention, index=1, layer_name="encoder_attn"),
    }

    def __init__(self, config: SoraConfig):
        super().__init__(config)
        self.embed_tokens = nn.Embedding(config.vocab_size, config.hidden_size, config.pad_token_id)
        self.embed_positions = nn.Embedding(config.max_position_embeddings, config.hidden_size)
        self.layers = nn.ModuleList([SoraDecoderLayer(config, i) for i in range(config.decoder_layers)])
        self.final_layer_norm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.dropout = nn.Dropout(config.hidden_dropout_prob)
        self.gradient_checkpointing = False
        self.post_init()

    def get_input_embeddings(self) -> nn.Embedding:
        return self.embed_tokens

    def set_input_embeddings(self, value: nn.Embedding) -> None:
        self.embed_tokens = value

    @merge_with_config_defaults
    @capture_outputs
    @deprecate_kwarg("past_key_values", "5.40.0", new_name="cache")
    def forward(
        self,
        input_ids: torch.LongTensor | None = None,
        attention_mask: torch.Tensor | None = None,
        encoder_hidden_states: torch.Tensor | None = None,
        encoder_attention_mask: torch.Tensor | None = None,
        cache: EncoderDecoderCache | None = None,
        inputs_embeds: torch.Tensor | None = None,
        use_cache: bool | None = None,
        **kwargs: Unpack[TransformersKwargs],
    ) -> BaseModelOutputWithPastAndCrossAttentions:
        if (input_ids is None) ^ (inputs_embeds is not None):
            raise ValueError("You must specify exactly one of decoder_input_ids or decoder_inputs_embeds.")
        if inputs_embeds is None:
            check_text_inputs(self.config, tuple(input_ids.shape), None, None, None, name="decoder_input_ids")
            check_input_ids(input_ids, self.config.vocab_size)
            inputs_embeds = self.embed_tokens(input_ids)
        else:
            check_inputs_embeds(inputs_embeds, self.config.hidden_size, name="decoder_inputs_embeds")
        check_decoder_masks(inputs_embeds, attention_mask, encoder_hidden_states, encoder_attention_mask)
        if use_cache and cache is None:
            # Grown layer by layer: a config-sized cache counts the encoder's layers when the config is not
            # encoder-decoder, and building one reshapes a copy of the config on every call.
            cache = EncoderDecoderCache(DynamicCache(), DynamicCache())

        seq_length = inputs_embeds.shape[1]
        # A static cache counts its length in a tensor: positions stay on the device, and the check reads it
        # only outside compilation.
        cache_length = cache.get_seq_length() if cache is not None else 0
        if not is_tracing():
            check_sequence_length(int(cache_length) + seq_length, self.config.max_position_embeddings)
        position_ids = torch.arange(seq_length, device=inputs_embeds.device) + cache_length

        self_attn_cache = cache.self_attention_cache if cache is not None else None
        if (
            attention_mask is None
            and seq_length == 1
            and not getattr(self_attn_cache, "is_compileable", False)
        ):
            causal_mask = None  # a decoding step without padding sees every cached position: nothing to mask
        else:  # (a static cache holds unwritten positions, masked here)
            causal_mask = create_causal_mask(
                config=self.config,
                inputs_embeds=inputs_embeds,
                attention_mask=attention_mask,
                cache=self_attn_cache,
            )
        encoder_attention_mask = create_bidirectional_mask(
            config=self.config,
            inputs_embeds=inputs_embeds,
            attention_mask=encoder_attention_mask,
            encoder_hidden_states=encoder_hidden_states,
        )
        hidden_states = self.dropout(inputs_embeds + self.embed_positions(position_ids).unsqueeze(0))
        for layer in self.layers:
            hidden_states = layer(
                hidden_states,
                causal_mask,
                encoder_hidden_states,  # positional, so gradient checkpointing passes it through
                encoder_attention_mask=encoder_attention_mask,
                cache=cache,
                use_cache=use_cache,
                **kwargs,
            )
        return BaseModelOutputWithPastAndCrossAttentions(
            last_hidden_state=self.final_layer_norm(hidden_states), cache=cache
        )


class SoraModel(SoraPreTrainedModel):
    """The bare Sora encoder, plus the decoder when `config.is_encoder_decoder` (or `with_decoder=True`)."""

    _tied_weights_keys = {"decoder.embed_tokens.weight": "encoder.embeddings.word_embeddings.weight"}
    # The heads of a pretraining checkpoint (`sora`) that the bare model does not hold.
    _keys_to_ignore_on_load_unexpected = [
        r"^(lm_head|nsp_head|pooler|sentence_embedding_head|token_distillation_head)\.",
    ]

    def __init__(self, config: SoraConfig, with_decoder: bool | None = None):
        super().__init__(config)
        with_decoder = config.is_encoder_decoder if with_decoder is None else with_decoder
        self.encoder = SoraEncoder(config)
        self.decoder = SoraDecoder(config) if with_decoder else None
        if self.decoder is None:
            self._tied_weights_keys = {}
            self._keys_to_ignore_on_load_unexpected = [
                *self._keys_to_ignore_on_load_unexpected,
                r"^(model\.)?decoder\.",
            ]
        self.post_init()

    def get_input_embeddings(self) -> nn.Embedding:
        return self.encoder.embeddings.word_embeddings

    def set_input_embeddings(self, value: nn.Embedding) -> None:
        self.encoder.embeddings.word_embeddings = value
        if self.decoder is not None:
            self.decoder.embed_tokens = value

    def encode(
        self, encoder_outputs: BaseModelOutput | tuple | None, **encoder_inputs: Any
    ) -> BaseModelOutput:
        """Run the encoder on `encoder_inputs`, or take precomputed `encoder_outputs` (a tuple is wrapped)."""
        if encoder_outputs is None:
            return self.encoder(**encoder_inputs)
        if isinstance(encoder_outputs, BaseModelOutput):
            return encoder_outputs
        return BaseModelOutput(
            last_hidden_state=encoder_outputs[0],
            hidden_states=encoder_outputs[1] if len(encoder_outputs) > 1 else None,
            attentions=encoder_outputs[2] if len(encoder_outputs) > 2 else None,
        )

    def shifted_input_ids(self, input_ids: torch.LongTensor | None) -> torch.LongTensor:
        """Decoder inputs when none are given: `input_ids` shifted right (BART's denoising default)."""
        if input_ids is None:
            raise ValueError("Pass decoder_input_ids or decoder_inputs_embeds (or input_ids to shift).")
        return shift_tokens_right(input_ids, self.config.pad_token_id, self.config.decoder_start_token_id)

    @can_return_tuple
    @deprecate_kwarg("past_key_values", "5.40.0", new_name="cache")
    def forward(
        self,
        input_ids: torch.LongTensor | None = None,
        attention_mask: torch.Tensor | None = None,
        decoder_input_ids: torch.LongTensor | None = None,
        decoder_attention_mask: torch.LongTensor | None = None,
        token_type_ids: torch.LongTensor | None = None,
        position_ids: torch.LongTensor | None = None,
        encoder_outputs: BaseModelOutput | tuple | None = None,
        cache: EncoderDecoderCache | None = None,
        inputs_embeds: torch.Tensor | None = None,
        decoder_inputs_embeds: torch.Tensor | None = None,
        use_cache: bool | None = None,
        pixel_values: torch.FloatTensor | None = None,
        input_features: torch.FloatTensor | None = None,
        feature_attention_mask: torch.Tensor | None = None,
        **kwargs: Unpack[TransformersKwargs],
    ) -> BaseModelOutput | Seq2SeqModelOutput:
        r"""
        decoder_input_ids (`torch.LongTensor` of shape `(batch_size, target_sequence_length)`, *optional*):
            Decoder input ids; when absent (and there is a decoder), built by shifting `input_ids` right.
        """
        encoder_outputs = self.encode(
            encoder_outputs,
            input_ids=input_ids,
            attention_mask=attention_mask,
            token_type_ids=token_type_ids,
            position_ids=position_ids,
            inputs_embeds=inputs_embeds,
            pixel_values=pixel_values,
            input_features=input_features,
            feature_attention_mask=feature_attention_mask,
            **kwargs,
        )
        if self.decoder is None:
            return encoder_outputs

        if decoder_input_ids is None and decoder_inputs_embeds is None:
            decoder_input_ids = self.shifted_input_ids(input_ids)
        decoder_outputs = self.decoder(
            input_ids=decoder_input_ids,
            attention_mask=decoder_attention_mask,
            encoder_hidden_states=encoder_outputs.last_hidden_state,
            # With images or audio the decoder attends to the fused sequence, under the fused mask.
            encoder_attention_mask=getattr(encoder_outputs, "attention_mask", None)
            if getattr(encoder_outputs, "attention_mask", None) is not None
            else attention_mask,
            cache=cache,
            inputs_embeds=decoder_inputs_embeds,
            use_cache=use_cache,
            **kwargs,
        )
        return Seq2SeqModelOutput(
            last_hidden_state=decoder_outputs.last_hidden_state,
            cache=decoder_outputs.cache,
            decoder_hidden_states=decoder_outputs.hidden_states,
            decoder_attentions=decoder_outputs.attentions,
            cross_attentions=decoder_outputs.cross_attentions,
            encoder_last_hidden_state=encoder_outputs.last_hidden_state,
            encoder_hidden_states=encoder_outputs.hidden_states,
            encoder_attentions=encoder_outputs.attentions,
        )


class SoraLMHead(nn.Module):
    """Dense + activation + LayerNorm, then a projection onto the (tied) vocabulary."""

    def __init__(self, config: SoraConfig):
        super().__init__()
        self.dense = nn.Linear(config.hidden_size, config.hidden_size)
        self.act_fn = ACT2FN[config.hidden_act]
        self.layer_norm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.decoder = nn.Linear(config.hidden_size, config.vocab_size)

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.layer_norm(self.act_fn(self.dense(hidden_states))))


class SoraPooler(nn.Module):
    """Dense + tanh over the first (`<s>`) token, or with `mean=True` over the mean of the real tokens: the
    sentence representation for NSP and classification."""

    def __init__(self, config: SoraConfig, mean: bool = False):
        super().__init__()
        self.dense = nn.Linear(config.hidden_size, config.hidden_size)
        self.mean = mean

    def forward(
        self, hidden_states: torch.Tensor, attention_mask: torch.Tensor | None = None
    ) -> torch.Tensor:
        if not self.mean:
            summary = hidden_states[:, 0]
        elif attention_mask is None:
            summary = hidden_states.mean(1)
        else:
            summary = masked_mean(hidden_states, attention_mask)
        return torch.tanh(self.dense(summary))


def masked_mean(hidden_states: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean over the positions where `mask` is 1."""
    mask = mask.unsqueeze(-1).to(hidden_states.dtype)
    return (hidden_states * mask).sum(1) / mask.sum(1).clamp(min=1)


class SoraFusionProjection(nn.Linear):
    """A linear map initialised at unit scale (std `in_features ** -0.5`) instead of `initializer_range`: at 0.02
    the product of two such projections starts at a near-zero saddle it leaves only after thousands of steps."""


class SoraFusionPooler(SoraPooler):
    """`SoraPooler` plus, when image/audio tokens are present, the LayerNorm-ed Hadamard product of projected
    text and media means: low-rank bilinear pooling (Kim et al., 2017), so "is there a red shape?" is a product
    of question and image features rather than a function the attention layers must discover from scratch."""

    def __init__(self, config: SoraConfig):
        super().__init__(config)
        self.text_projection = SoraFusionProjection(config.hidden_size, config.hidden_size)
        self.media_projection = SoraFusionProjection(config.hidden_size, config.hidden_size)
        self.layer_norm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)

    def forward(
        self, hidden_states: torch.Tensor, text_length: int, attention_mask: torch.Tensor | None
    ) -> torch.Tensor:
        """`attention_mask` is the encoder's fused padding mask (`None` exactly when there are no media tokens)."""
        pooled = super().forward(hidden_states)
        if attention_mask is None:
            return pooled  # text alone: nothing to fuse
        text = masked_mean(hidden_states[:, :text_length], attention_mask[:, :text_length])
        media = masked_mean(hidden_states[:, text_length:], attention_mask[:, text_length:])
        fused = torch.tanh(self.text_projection(text)) * torch.tanh(self.media_projection(media))
        return pooled + self.layer_norm(fused)


def token_cross_entropy(
    logits: torch.Tensor, labels: torch.Tensor, num_items_in_batch: torch.Tensor | int | None = None
) -> torch.Tensor:
    """Cross-entropy over labelled tokens (-100 ignored): a mean, or a sum over `num_items_in_batch`. A batch without
    a labelled token gives 0, not the NaN of an empty mean (which would also poison the other pretraining losses)."""
    logits = logits.reshape(-1, logits.shape[-1]).float()
    labels = labels.reshape(-1).to(logits.device)
    loss = nn.functional.cross_entropy(logits, labels, reduction="sum")
    if num_items_in_batch is None:
        return loss / (labels != -100).sum().clamp(min=1)
    return loss / torch.as_tensor(num_items_in_batch, device=loss.device)


def masked_lm_logits_and_loss(
    lm_head: SoraLMHead,
    hidden_states: torch.Tensor,
    labels: torch.Tensor | None,
    sparse: bool,
    num_items_in_batch: torch.Tensor | int | None = None,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Vocabulary logits (only at labelled positions when `sparse`) and the token cross-entropy."""
    if labels is None:
        return lm_head(hidden_states), None
    check_labels("labels", labels, hidden_states.shape[:2], lm_head.decoder.out_features, "vocab_size")
    if sparse:
        labelled = labels != -100
        hidden_states, labels = hidden_states[labelled], labels[labelled]
    logits = lm_head(hidden_states)
    return logits, token_cross_entropy(logits, labels, num_items_in_batch)


@dataclass
class SoraForPreTrainingOutput(ModelOutput):
    r"""
    loss: sum of the masked-LM, next-sentence and (with a decoder) denoising losses that had labels.
    prediction_logits: vocabulary logits; only at labelled positions, flattened, when `sparse_prediction`.
    seq_relationship_logits: next-sentence logits (0 = B follows A, 1 = B is random).
    denoising_logits: decoder vocabulary logits for the reconstructed text (encoder-decoder configs only).
    sentence_embeddings: the pooled `<s>` vector mapped into the teacher's embedding space (configs with
        `sentence_embedding_size` only).
    token_states: every position's final hidden state mapped into the teacher's hidden space (configs with
        `token_distillation_size` only).
    mlm_loss, nsp_loss, denoising_loss, sentence_distillation_loss, token_distillation_loss: the separate terms,
        for logging.
    """

    loss: torch.FloatTensor | None = None
    prediction_logits: torch.FloatTensor | None = None
    seq_relationship_logits: torch.FloatTensor | None = None
    denoising_logits: torch.FloatTensor | None = None
    mlm_loss: torch.FloatTensor | None = None
    nsp_loss: torch.FloatTensor | None = None
    denoising_loss: torch.FloatTensor | None = None
    sentence_embeddings: torch.FloatTensor | None = None
    sentence_distillation_loss: torch.FloatTensor | None = None
    token_states: torch.FloatTensor | None = None
    token_distillation_loss: torch.FloatTensor | None = None
    hidden_states: tuple[torch.FloatTensor, ...] | None = None
    attentions: tuple[torch.FloatTensor, ...] | None = None


def token_distillation_loss(
    token_states: torch.Tensor, teacher_token_states: torch.Tensor, teacher_token_mask: torch.Tensor | None
) -> torch.Tensor:
    """Mean over the positions that have a teacher target of the squared distance divided by √size (data2vec's
    scaling: summed over dimensions it would swamp the masked-LM loss, averaged it would vanish beside it)."""
    if teacher_token_states.shape != token_states.shape:
        raise ValueError(
            f"teacher_token_states have shape {tuple(teacher_token_states.shape)} but the token-distillation head "
            f"predicts {tuple(token_states.shape)}: give one target of size config.token_distillation_size per "
            "input position (zeros where teacher_token_mask is 0)."
        )
    squared = (token_states.float() - teacher_token_states.float()).pow(2).sum(-1) / math.sqrt(
        token_states.shape[-1]
    )
    if teacher_token_mask is None:
        return squared.mean()
    if teacher_token_mask.shape != squared.shape:
        raise ValueError(
            f"teacher_token_mask has shape {tuple(teacher_token_mask.shape)}; it must be (batch_size, "
            f"sequence_length) = {tuple(squared.shape)}, 1 where a position has a teacher target."
        )
    weights = teacher_token_mask.to(squared.dtype)
    return (squared * weights).sum() / weights.sum().clamp_min(1.0)


class SoraForPreTraining(SoraPreTrainedModel):
    """Sora with the pretraining heads: masked LM and next-sentence prediction on the encoder, when
    `config.is_encoder_decoder` BART-style denoising (reconstruct the original text) on the decoder, and when
    `config.sentence_embedding_size` is set a sentence-embedding head distilled from a teacher's embeddings, and when
    `config.token_distillation_size` is set a per-token head regressed onto a teacher's hidden states."""

    _keys_to_ignore_on_load_unexpected = [r"^model\.decoder\.", r"^lm_head\.weight$"]

    def __init__(self, config: SoraConfig, sparse_prediction: bool = True):
        super().__init__(config)
        self.sparse_prediction = sparse_prediction
        self.model = SoraModel(config)
        self.lm_head = SoraLMHead(config)
        # The pooler the sequence classifier inherits; it reads what the classifier will read.
        self.pooler = SoraPooler(config, mean=config.classifier_pooling == "mean")
        self.nsp_head = nn.Linear(config.hidden_size, 2)
        self._tied_weights_keys = {"lm_head.decoder.weight": WORD_EMBEDDINGS}
        if self.model.decoder is not None:
            self.denoising_head = nn.Linear(config.hidden_size, config.vocab_size, bias=False)
            self._tied_weights_keys["denoising_head.weight"] = WORD_EMBEDDINGS
        self.sentence_embedding_head = (
            nn.Linear(config.hidden_size, config.sentence_embedding_size)
            if config.sentence_embedding_size
            else None
        )
        self.token_distillation_head = (
            nn.Linear(config.hidden_size, config.token_distillation_size)
            if config.token_distillation_size
            else None
        )
        self.post_init()

    def get_output_embeddings(self) -> nn.Linear:
        return self.lm_head.decoder

    def set_output_embeddings(self, new_embeddings: nn.Linear) -> None:
        self.lm_head.decoder = new_embeddings

    @can_return_tuple
    def forward(
        self,
        input_ids: torch.LongTensor | None = None,
        attention_mask: torch.Tensor | None = None,
        token_type_ids: torch.LongTensor | None = None,
        position_ids: torch.LongTensor | None = None,
        inputs_embeds: torch.Tensor | None = None,
        pixel_values: torch.FloatTensor | None = None,
        input_features: torch.FloatTensor | None = None,
        feature_attention_mask: torch.Tensor | None = None,
        labels: torch.LongTensor | None = None,
        next_sentence_label: torch.LongTensor | None = None,
        denoising_input_ids: torch.LongTensor | None = None,
        denoising_attention_mask: torch.Tensor | None = None,
        decoder_labels: torch.LongTensor | None = None,
        teacher_embeddings: torch.FloatTensor | None = None,
        teacher_token_states: torch.FloatTensor | None = None,
        teacher_token_mask: torch.Tensor | None = None,
        **kwargs: Unpack[TransformersKwargs],
    ) -> SoraForPreTrainingOutput:
        r"""
        labels (`torch.LongTensor` of shape `(batch_size, sequence_length)`, *optional*):
            Masked-LM targets; -100 marks positions that are not predicted.
        next_sentence_label (`torch.LongTensor` of shape `(batch_size,)`, *optional*):
            0 when segment B follows segment A, 1 when B is a random segment.
        denoising_input_ids (`torch.LongTensor` of shape `(batch_size, noisy_length)`, *optional*):
            Corrupted text (spans infilled with `<mask>`, sentences permuted) for the decoder objective.
        denoising_attention_mask (`torch.Tensor` of shape `(batch_size, noisy_length)`, *optional*):
            Padding mask of `denoising_input_ids`.
        decoder_labels (`torch.LongTensor` of shape `(batch_size, target_length)`, *optional*):
            The original text the decoder reconstructs; -100 marks padding.
        teacher_embeddings (`torch.FloatTensor` of shape `(batch_size, sentence_embedding_size)`, *optional*):
            A teacher's embeddings of the (unmasked) texts; the loss adds the mean squared distance to them.
        teacher_token_states (`torch.FloatTensor` of shape `(batch_size, sequence_length, token_distillation_size)`, *optional*):
            A teacher's hidden states of the (unmasked) text aligned to this model's positions; the loss adds the
            mean squared error of the token-distillation head's predictions at the positions `teacher_token_mask`
            marks.
        teacher_token_mask (`torch.Tensor` of shape `(batch_size, sequence_length)`, *optional*):
            1 where a position has a teacher target (text tokens), 0 elsewhere (special tokens, padding).
        """
        if teacher_embeddings is not None and self.sentence_embedding_head is None:
            raise ValueError(
                "teacher_embeddings were given but this model has no sentence-embedding head: load or build it "
                "with sentence_embedding_size=<the teacher's embedding size> in its config."
            )
        if teacher_token_states is not None and self.token_distillation_head is None:
            raise ValueError(
                "teacher_token_states were given but this model has no token-distillation head: load or build it "
                "with token_distillation_size=<the teacher's hidden size> in its config."
            )
        outputs = self.model.encoder(
            input_ids=input_ids,
            attention_mask=attention_mask,
            token_type_ids=token_type_ids,
            position_ids=position_ids,
            inputs_embeds=inputs_embeds,
            pixel_values=pixel_values,
            input_features=input_features,
            feature_attention_mask=feature_attention_mask,
            **kwargs,
        )
        sequence_output = outputs.last_hidden_state
        prediction_logits, mlm_loss = masked_lm_logits_and_loss(
            self.lm_head,
            text_positions(sequence_output, input_ids, inputs_embeds),
            labels,
            self.sparse_prediction,
        )
        # With media the encoder returns the fused sequence's mask; the text mask would not cover it.
        pooled_mask = outputs.attention_mask if outputs.attention_mask is not None else attention_mask
        pooled_output = self.pooler(sequence_output, pooled_mask)
        seq_relationship_logits = self.nsp_head(pooled_output)
        sentence_embeddings = sentence_distillation_loss = None
        if self.sentence_embedding_head is not None:
            sentence_embeddings = self.sentence_embedding_head(pooled_output)
        if teacher_embeddings is not None:
            if teacher_embeddings.shape != sentence_embeddings.shape:
                raise ValueError(
                    f"teacher_embeddings have shape {tuple(teacher_embeddings.shape)} but the sentence-embedding "
                    f"head predicts {tuple(sentence_embeddings.shape)}: give one embedding of size "
                    f"config.sentence_embedding_size={self.config.sentence_embedding_size} per row."
                )
            squared_distance = (sentence_embeddings.float() - teacher_embeddings.float()).pow(2).sum(-1)
            sentence_distillation_loss = squared_distance.mean()
        token_states = distilled_token_loss = None
        if self.token_distillation_head is not None:
            token_states = self.token_distillation_head(
                text_positions(sequence_output, input_ids, inputs_embeds)
            )
        if teacher_token_states is not None:
            distilled_token_loss = token_distillation_loss(
                token_states, teacher_token_states, teacher_token_mask
            )
        nsp_loss = None
        if next_sentence_label is not None:
            check_labels(
                "next_sentence_label",
                next_sentence_label.reshape(-1),
                seq_relationship_logits.shape[:1],
                2,
                None,
            )
            nsp_loss = nn.functional.cross_entropy(
                seq_relationship_logits.float(), next_sentence_label.view(-1)
            )

        denoising_logits = denoising_loss = None
        if decoder_labels is not None:
            if self.model.decoder is None:
                raise ValueError(
                    "decoder_labels were given but this model has no decoder: build it from a config with "
                    "is_encoder_decoder=True to train the denoising objective."
                )
            check_labels(
                "decoder_labels",
                decoder_labels,
                tuple(decoder_labels.shape),
                self.config.vocab_size,
                "vocab_size",
            )
            seq2seq = self.model(
                input_ids=denoising_input_ids,
                attention_mask=denoising_attention_mask,
                decoder_input_ids=shift_tokens_right(
                    decoder_labels, self.config.pad_token_id, self.config.decoder_start_token_id
                ),
                use_cache=False,
            )
            denoising_logits = self.denoising_head(seq2seq.last_hidden_state)
            denoising_loss = token_cross_entropy(denoising_logits, decoder_labels)

        terms = [
            term
            for term in (mlm_loss, nsp_loss, denoising_loss, sentence_distillation_loss, distilled_token_loss)
            if term is not None
        ]
        return SoraForPreTrainingOutput(
            loss=sum(terms) if terms else None,
            prediction_logits=prediction_logits,
            seq_relationship_logits=seq_relationship_logits,
            denoising_logits=denoising_logits,
            mlm_loss=mlm_loss,
            nsp_loss=nsp_loss,
            denoising_loss=denoising_loss,
            sentence_embeddings=sentence_embeddings,
            sentence_distillation_loss=sentence_distillation_loss,
            token_states=token_states,
            token_distillation_loss=distilled_token_loss,
            hidden_states=outputs.hidden_states,
            attentions=outputs.attentions,
        )


class SoraForMaskedLM(SoraPreTrainedModel):
    """Sora encoder with the masked-LM head (fill-mask)."""

    accepts_loss_kwargs = True  # token-level loss: normalised by Trainer's `num_items_in_batch`

    _tied_weights_keys = {"lm_head.decoder.weight": WORD_EMBEDDINGS}
    _keys_to_ignore_on_load_unexpected = [
        r"^model\.decoder\.",
        r"^pooler\.",
        r"^nsp_head\.",
        r"^(sentence_embedding|token_distillation)_head\.",
    ]

    def __init__(self, config: SoraConfig, sparse_prediction: bool = False):
        super().__init__(config)
        self.sparse_prediction = sparse_prediction
        self.model = SoraModel(config, with_decoder=False)
        self.lm_head = SoraLMHead(config)
        self.post_init()

    def get_output_embeddings(self) -> nn.Linear:
        return self.lm_head.decoder

    def set_output_embeddings(self, new_embeddings: nn.Linear) -> None:
        self.lm_head.decoder = new_embeddings

    @can_return_tuple
    def forward(
        self,
        input_ids: torch.LongTensor | None = None,
        attention_mask: torch.Tensor | None = None,
        token_type_ids: torch.LongTensor | None = None,
        position_ids: torch.LongTensor | None = None,
        inputs_embeds: torch.Tensor | None = None,
        pixel_values: torch.FloatTensor | None = None,
        input_features: torch.FloatTensor | None = None,
        feature_attention_mask: torch.Tensor | None = None,
        labels: torch.LongTensor | None = None,
        **kwargs: Unpack[TransformersKwargs],
    ) -> MaskedLMOutput:
        r"""
        labels (`torch.LongTensor` of shape `(batch_size, sequence_length)`, *optional*):
            Masked-LM targets; -100 marks positions that are not predicted.
        """
        num_items_in_batch = kwargs.pop("num_items_in_batch", None)
        outputs = self.model.encoder(
            input_ids=input_ids,
            attention_mask=attention_mask,
            token_type_ids=token_type_ids,
            position_ids=position_ids,
            inputs_embeds=inputs_embeds,
            pixel_values=pixel_values,
            input_features=input_features,
            feature_attention_mask=feature_attention_mask,
            **kwargs,
        )
        logits, loss = masked_lm_logits_and_loss(
            self.lm_head,
            text_positions(outputs.last_hidden_state, input_ids, inputs_embeds),
            labels,
            self.sparse_prediction,
            num_items_in_batch,
        )
        return MaskedLMOutput(
            loss=loss, logits=logits, hidden_states=outputs.hidden_states, attentions=outputs.attentions
        )


class SoraForSequenceClassification(SoraPreTrainedModel):
    """Sora encoder with a pooled classification/regression head (`problem_type` picks the loss)."""

    _keys_to_ignore_on_load_unexpected = [
        r"^model\.decoder\.",
        r"^lm_head\.",
        r"^nsp_head\.",
        r"^(sentence_embedding|token_distillation)_head\.",
    ]

    def __init__(self, config: SoraConfig):
        super().__init__(config)
        self.num_labels = config.num_labels
        self.model = SoraModel(config, with_decoder=False)
        has_media_tower = config.vision_config is not None or config.audio_config is not None
        self.pooler = (
            SoraFusionPooler(config)
            if has_media_tower and config.fusion_pooling == "bilinear"
            else SoraPooler(config, mean=config.classifier_pooling == "mean")
        )
        dropout = (
            config.classifier_dropout if config.classifier_dropout is not None else config.hidden_dropout_prob
        )
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear(config.hidden_size, config.num_labels)
        self.post_init()

    @can_return_tuple
    def forward(
        self,
        input_ids: torch.LongTensor | None = None,
        attention_mask: torch.Tensor | None = None,
        token_type_ids: torch.LongTensor | None = None,
        position_ids: torch.LongTensor | None = None,
        inputs_embeds: torch.Tensor | None = None,
        pixel_values: torch.FloatTensor | None = None,
        input_features: torch.FloatTensor | None = None,
        feature_attention_mask: torch.Tensor | None = None,
        labels: torch.LongTensor | None = None,
        **kwargs: Unpack[TransformersKwargs],
    ) -> SequenceClassifierOutput:
        r"""
        labels (`torch.LongTensor` of shape `(batch_size,)`, *optional*):
            Class ids (single-label), multi-hot floats (multi-label) or floats (regression, `num_labels == 1`).
        """
        outputs = self.model.encoder(
            input_ids=input_ids,
            attention_mask=attention_mask,
            token_type_ids=token_type_ids,
            position_ids=position_ids,
            inputs_embeds=inputs_embeds,
            pixel_values=pixel_values,
            input_features=input_features,
            feature_attention_mask=feature_attention_mask,
            # the `<s>` pooler reads one position: the last layer computes no other
            first_token_only=type(self.pooler) is SoraPooler and not self.pooler.mean,
            **kwargs,
        )
        if isinstance(self.pooler, SoraFusionPooler):
            text_length = text_positions(outputs.last_hidden_state, input_ids, inputs_embeds).shape[1]
            pooled = self.pooler(outputs.last_hidden_state, text_length, outputs.attention_mask)
        else:
            mask = outputs.attention_mask if outputs.attention_mask is not None else attention_mask
            pooled = self.pooler(outputs.last_hidden_state, mask)
        logits = self.classifier(self.dropout(pooled))
        loss = None
        if labels is not None:
            problem_type = self.config.problem_type
            if problem_type == "single_label_classification" or (
                problem_type is None
                and self.num_labels > 1
                and labels.dtype in (torch.long, torch.int)
                and labels.numel() == logits.shape[0]
            ):
                check_labels("labels", labels.reshape(-1), logits.shape[:1], self.num_labels, "num_labels")
            loss = self.loss_function(labels=labels, pooled_logits=logits, config=self.config)
        return SequenceClassifierOutput(
            loss=loss, logits=logits, hidden_states=outputs.hidden_states, attentions=outputs.attentions
        )


# Weights of a pretraining checkpoint that a per-token or span head does not use.
PRETRAINING_ONLY_KEYS = [
    r"^model\.decoder\.",
    r"^lm_head\.",
    r"^nsp_head\.",
    r"^(sentence_embedding|token_distillation)_head\.",
    r"^pooler\.",
]


class SoraForTokenClassification(SoraPreTrainedModel):
    """Sora encoder with a per-token classification head (NER)."""

    accepts_loss_kwargs = True  # token-level loss: normalised by Trainer's `num_items_in_batch`

    _keys_to_ignore_on_load_unexpected = PRETRAINING_ONLY_KEYS

    def __init__(self, config: SoraConfig):
        super().__init__(config)
        self.num_labels = config.num_labels
        self.model = SoraModel(config, with_decoder=False)
        dropout = (
            config.classifier_dropout if config.classifier_dropout is not None else config.hidden_dropout_prob
        )
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear(config.hidden_size, config.num_labels)
        self.post_init()

    @can_return_tuple
    def forward(
        self,
        input_ids: torch.LongTensor | None = None,
        attention_mask: torch.Tensor | None = None,
        token_type_ids: torch.LongTensor | None = None,
        position_ids: torch.LongTensor | None = None,
        inputs_embeds: torch.Tensor | None = None,
        pixel_values: torch.FloatTensor | None = None,
        input_features: torch.FloatTensor | None = None,
        feature_attention_mask: torch.Tensor | None = None,
        labels: torch.LongTensor | None = None,
        **kwargs: Unpack[TransformersKwargs],
    ) -> TokenClassifierOutput:
        r"""
        labels (`torch.LongTensor` of shape `(batch_size, sequence_length)`, *optional*):
            Tag ids per token; -100 marks positions without a tag (special tokens, continuation sub-words).
        """
        num_items_in_batch = kwargs.pop("num_items_in_batch", None)
        outputs = self.model.encoder(
            input_ids=input_ids,
            attention_mask=attention_mask,
            token_type_ids=token_type_ids,
            position_ids=position_ids,
            inputs_embeds=inputs_embeds,
            pixel_values=pixel_values,
            input_features=input_features,
            feature_attention_mask=feature_attention_mask,
            **kwargs,
        )
        logits = self.classifier(
            self.dropout(text_positions(outputs.last_hidden_state, input_ids, inputs_embeds))
        )
        loss = None
        if labels is not None:
            check_labels("labels", labels, logits.shape[:2], self.num_labels, "num_labels")
            loss = token_cross_entropy(logits, labels, num_items_in_batch)
        return TokenClassifierOutput(
            loss=loss, logits=logits, hidden_states=outputs.hidden_states, attentions=outputs.attentions
        )


class SoraForQuestionAnswering(SoraPreTrainedModel):
    """Sora encoder with a span head (start and end logits) for extractive question answering."""

    _keys_to_ignore_on_load_unexpected = PRETRAINING_ONLY_KEYS

    def __init__(self, config: SoraConfig):
        super().__init__(config)
        self.model = SoraModel(config, with_decoder=False)
        self.qa_outputs = nn.Linear(config.hidden_size, 2)
        self.post_init()

    @can_return_tuple
    def forward(
        self,
        input_ids: torch.LongTensor | None = None,
        attention_mask: torch.Tensor | None = None,
        token_type_ids: torch.LongTensor | None = None,
        position_ids: torch.LongTensor | None = None,
        inputs_embeds: torch.Tensor | None = None,
        pixel_values: torch.FloatTensor | None = None,
        input_features: torch.FloatTensor | None = None,
        feature_attention_mask: torch.Tensor | None = None,
        start_positions: torch.LongTensor | None = None,
        end_positions: torch.LongTensor | None = None,
        **kwargs: Unpack[TransformersKwargs],
    ) -> QuestionAnsweringModelOutput:
        r"""
        start_positions (`torch.LongTensor` of shape `(batch_size,)`, *optional*):
            Token index where the answer starts.
        end_positions (`torch.LongTensor` of shape `(batch_size,)`, *optional*):
            Token index where the answer ends (inclusive).
        """
        outputs = self.model.encoder(
            input_ids=input_ids,
            attention_mask=attention_mask,
            token_type_ids=token_type_ids,
            position_ids=position_ids,
            inputs_embeds=inputs_embeds,
            pixel_values=pixel_values,
            input_features=input_features,
            feature_attention_mask=feature_attention_mask,
            **kwargs,
        )
        text_states = text_positions(outputs.last_hidden_state, input_ids, inputs_embeds)
        start_logits, end_logits = self.qa_outputs(text_states).split(1, dim=-1)
        start_logits = start_logits.squeeze(-1).contiguous()
        end_logits = end_logits.squeeze(-1).contiguous()
        loss = None
        if start_positions is not None and end_positions is not None:
            loss = self.loss_function(start_logits, end_logits, start_positions, end_positions)
        return QuestionAnsweringModelOutput(
            loss=loss,
            start_logits=start_logits,
            end_logits=end_logits,
            hidden_states=outputs.hidden_states,
            attentions=outputs.attentions,
        )


class SoraForConditionalGeneration(SoraPreTrainedModel, GenerationMixin):
    """Sora encoder-decoder with a language-modelling head: translation, summarization, dialogue."""

    accepts_loss_kwargs = True  # token-level loss: normalised by Trainer's `num_items_in_batch`
    # With a static cache the decoding step traces as one graph: the data-dependent checks are skipped while tracing.
    _can_compile_fullgraph = True

    _tied_weights_keys = {"lm_head.weight": WORD_EMBEDDINGS}
    _keys_to_ignore_on_load_unexpected = [
        r"^lm_head\.(dense|layer_norm|decoder)",
        r"^nsp_head\.",
        r"^(sentence_embedding|token_distillation)_head\.",
        r"^pooler\.",
    ]

    def __init__(self, config: SoraConfig):
        if not config.is_encoder_decoder:
            raise ValueError(
                "SoraForConditionalGeneration needs an encoder-decoder config, but config.is_encoder_decoder is False "
                "(generate() and its cache depend on it). Build it with SoraConfig(..., is_encoder_decoder=True); to "
                "add a new decoder to an encoder-only checkpoint, load it with from_pretrained(path, "
                "is_encoder_decoder=True)."
            )
        super().__init__(config)
        self.model = SoraModel(config, with_decoder=True)
        self.lm_head = nn.Linear(config.hidden_size, config.vocab_size, bias=False)
        self.post_init()

    def get_output_embeddings(self) -> nn.Linear:
        return self.lm_head

    def set_output_embeddings(self, new_embeddings: nn.Linear) -> None:
        self.lm_head = new_embeddings

    def generate(self, *args: Any, **kwargs: Any) -> Any:
        """`GenerationMixin.generate`, with the LM head (the largest matmul of a decoding step) packed for oneDNN's
        matmul for the duration of the call when it runs on CPU in fp32: for the few rows of a step MKL's product
        behind `nn.Linear` is 3-8x slower on some CPUs (AMD EPYC here). The weights cannot change during the call, so the packed
        copy cannot go stale; outputs match `nn.Linear` within float rounding."""
        lm_head = self.lm_head
        if type(lm_head) is not nn.Linear or not can_pack(lm_head):
            return super().generate(*args, **kwargs)
        self.lm_head = PackedLinear(lm_head)
        try:
            return super().generate(*args, **kwargs)
        finally:
            self.lm_head = lm_head

    def _reorder_cache(self, cache: EncoderDecoderCache, beam_idx: torch.LongTensor) -> EncoderDecoderCache:
        """Beam search: reorder the self-attention cache only. Beams never leave their example, and an example's beams
        share its encoder keys and values, so the cross-attention cache needs no copy."""
        cache.self_attention_cache.reorder_cache(beam_idx)
        return cache

    def _validate_generated_length(
        self, generation_config: GenerationConfig, input_ids_length: int, has_default_max_length: bool
    ) -> None:
        """transformers' checks, plus the decoder's learned positions: a request for more tokens than they cover
        fails here, naming it, instead of at the step that runs out of positions."""
        super()._validate_generated_length(generation_config, input_ids_length, has_default_max_length)
        limit = self.config.max_position_embeddings
        # The last generated token is never fed back: `max_length` tokens take `max_length - 1` positions.
        if generation_config.max_length - 1 <= limit:
            return
        if generation_config.max_new_tokens is not None:
            asked = f"max_new_tokens={generation_config.max_new_tokens}"
            fix = f"Lower max_new_tokens to at most {limit + 1 - input_ids_length}"
        else:
            asked = f"max_length={generation_config.max_length}"
            fix = f"Lower max_length to at most {limit + 1}, or set max_new_tokens"
        raise ValueError(
            f"Generating {asked} after a decoder prompt of {input_ids_length} token(s) needs "
            f"{generation_config.max_length - 1} decoder positions, which exceeds the model's position limit "
            f"max_position_embeddings={limit}. {fix} (the encoder input does not count: it has its own "
            f"{limit} positions)."
        )

    def _valid_auto_compile_criteria(self, model_kwargs: dict, generation_config: GenerationConfig) -> bool:
        """transformers' rule (a static cache), except that an explicit `compile_config` also compiles on CPU."""
        compile_config = generation_config.compile_config
        if compile_config is not None and compile_config._compile_all_devices is None:
            compile_config._compile_all_devices = True
        return super()._valid_auto_compile_criteria(model_kwargs, generation_config)

    @can_return_tuple
    @deprecate_kwarg("past_key_values", "5.40.0", new_name="cache")
    def forward(
        self,
        input_ids: torch.LongTensor | None = None,
        attention_mask: torch.Tensor | None = None,
        decoder_input_ids: torch.LongTensor | None = None,
        decoder_attention_mask: torch.LongTensor | None = None,
        encoder_outputs: BaseModelOutput | tuple | None = None,
        cache: EncoderDecoderCache | None = None,
        inputs_embeds: torch.Tensor | None = None,
        decoder_inputs_embeds: torch.Tensor | None = None,
        labels: torch.LongTensor | None = None,
        use_cache: bool | None = None,
        pixel_values: torch.FloatTensor | None = None,
        input_features: torch.FloatTensor | None = None,
        feature_attention_mask: torch.Tensor | None = None,
        **kwargs: Unpack[TransformersKwargs],
    ) -> Seq2SeqLMOutput:
        r"""
        labels (`torch.LongTensor` of shape `(batch_size, target_sequence_length)`, *optional*):
            Target ids; -100 marks ignored positions. Decoder inputs are the labels shifted right.
        """
        num_items_in_batch = kwargs.pop("num_items_in_batch", None)
        if labels is not None and decoder_input_ids is None and decoder_inputs_embeds is None:
            # checked before the shift, so that a bad label is named as one, not as a decoder input id
            check_labels("labels", labels, tuple(labels.shape), self.config.vocab_size, "vocab_size")
            decoder_input_ids = shift_tokens_right(
                labels, self.config.pad_token_id, self.config.decoder_start_token_id
            )
        encoder_outputs = self.model.encode(
            encoder_outputs,
            input_ids=input_ids,
            attention_mask=attention_mask,
            inputs_embeds=inputs_embeds,
            pixel_values=pixel_values,
            input_features=input_features,
            feature_attention_mask=feature_attention_mask,
            **kwargs,
        )
        if decoder_input_ids is None and decoder_inputs_embeds is None:
            decoder_input_ids = self.model.shifted_input_ids(input_ids)
        # The decoder directly, not through `SoraModel`: every `generate` step would pay that call and its output.
        # With images or audio the decoder attends to the fused sequence, under the fused mask.
        fused_mask = getattr(encoder_outputs, "attention_mask", None)
        decoder_outputs = self.model.decoder(
            input_ids=decoder_input_ids,
            attention_mask=decoder_attention_mask,
            encoder_hidden_states=encoder_outputs.last_hidden_state,
            encoder_attention_mask=fused_mask if fused_mask is not None else attention_mask,
            cache=cache,
            inputs_embeds=decoder_inputs_embeds,
            use_cache=use_cache,
            **kwargs,
        )
        logits = self.lm_head(decoder_outputs.last_hidden_state)
        loss = None
        if labels is not None:
            check_labels("labels", labels, logits.shape[:2], logits.shape[-1], "vocab_size")
            loss = token_cross_entropy(logits, labels, num_items_in_batch)
        return Seq2SeqLMOutput(
            loss=loss,
            logits=logits,
            cache=decoder_outputs.cache,
            decoder_hidden_states=decoder_outputs.hidden_states,
            decoder_attentions=decoder_outputs.attentions,
            cross_attentions=decoder_outputs.cross_attentions,
            encoder_last_hidden_state=encoder_outputs.last_hidden_state,
            encoder_hidden_states=encoder_outputs.hidden_states,
            encoder_attentions=encoder_outputs.attentions,
        )


__all__ = [
    "SoraAudioModel",
    "SoraEncoder",
    "SoraDecoder",
    "SoraForConditionalGeneration",
    "SoraForMaskedLM",
    "SoraForPreTraining",
    "SoraForQuestionAnswering",
    "SoraForSequenceClassification",
    "SoraForTokenClassification",
    "SoraModel",
    "SoraPreTrainedModel",
    "SoraVisionModel",
]
