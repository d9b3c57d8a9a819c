# Copyright 2026 The sora_hf authors. Licensed under the Apache License, Version 2.0.
"""What every Sora model shares: unpadded token bookkeeping, attention, the encoder and decoder layers, the
pretrained base class, the encoder output, and the base of the image and audio towers."""

import inspect
from collections.abc import Callable
from dataclasses import dataclass

import torch
from safetensors import SafetensorError
from torch import nn
from transformers import initialization as init
from transformers.activations import ACT2FN
from transformers.cache_utils import Cache, EncoderDecoderCache
from transformers.masking_utils import create_bidirectional_mask
from transformers.modeling_layers import GradientCheckpointingLayer
from transformers.modeling_outputs import BaseModelOutput
from transformers.modeling_utils import ALL_ATTENTION_FUNCTIONS, PreTrainedModel
from transformers.processing_utils import Unpack
from transformers.utils import TransformersKwargs
from transformers.utils.deprecation import deprecate_kwarg
from transformers.utils.generic import is_flash_attention_requested
from transformers.utils.output_capturing import _active_collector

from .atomic_files import StrPath, save_files_atomically
from .configuration_sora import CheckedConfigMixin, SoraAudioConfig, SoraConfig, SoraVisionConfig
from .errors import CorruptCheckpointError
from .input_checks import is_tracing
from .packaged import PackagedNameMixin, find_corrupt_safetensors, resolve_pretrained_name


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

    def first(self, states: torch.Tensor) -> torch.Tensor:
        """`(num_real, ...)` -> each sequence's first real token, `(batch, ...)` (every row must hold one)."""
        return states.index_select(0, self.cu_seqlens[:-1].long())


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
        """`hidden_states` is `(batch, seq, hidden)` under `attention_mask`, or with `real_tokens` the real tokens
        alone, `(num_real, hidden)`, attending within their sequence (no weights come back). With
        `first_token_only`, only each sequence's first token queries: one output row per sequence."""
        qkv = self.qkv_proj(hidden_states)
        dropout = self.attention_dropout if self.training else 0.0
        if real_tokens is not None:
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
        input_shape = qkv.shape[:-1]
        query, key, value = (
            qkv.view(*input_shape, 3, self.num_heads, self.head_dim).permute(2, 0, 3, 1, 4).unbind(0)
        )
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
        return self.o_proj(attn_output.reshape(*input_shape, -1).contiguous()), attn_weights


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

    def __init__(self, config: SoraConfig | SoraVisionConfig | SoraAudioConfig, layer_idx: int):
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
        """The same layout in and out: `(batch, seq, hidden)`, or with `real_tokens` the real tokens alone. With
        `first_token_only`, only each sequence's first position comes out, `(batch, hidden)`, and the work after
        the key/value projection runs for it alone."""
        attn_output, _ = self.self_attn(
            self.self_attn_layer_norm(hidden_states),
            attention_mask,
            real_tokens=real_tokens,
            first_token_only=first_token_only,
            **kwargs,
        )
        if first_token_only:
            hidden_states = (
                real_tokens.first(hidden_states) if real_tokens is not None else hidden_states[:, 0]
            )
            attn_output = attn_output.view_as(hidden_states)
        hidden_states = hidden_states + self.dropout(attn_output)
        return hidden_states + self.dropout(self.mlp(self.final_layer_norm(hidden_states)))


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


@dataclass
class SoraTowerOutput(BaseModelOutput):
    r"""
    attention_mask (`torch.LongTensor` of shape `(batch_size, sequence_length)`, *optional*):
        Padding mask of `last_hidden_state`: the subsampled frames of the audio tower (None for images).
    """

    attention_mask: torch.LongTensor | None = None


@dataclass
class SoraEncoderOutput(SoraTowerOutput):
    r"""
    attention_mask (`torch.LongTensor` of shape `(batch_size, sequence_length)`, *optional*):
        The padding mask the layers used: the fused mask of `[text; image patches; audio frames]` with media, else
        the text's `attention_mask` as given (None: no padding).
    text_length (`int`):
        How many leading positions of `last_hidden_state` are text (the rest are image patches and audio frames).
    """

    text_length: int | None = None

    @property
    def text_hidden_states(self) -> torch.Tensor:
        """The text positions of `last_hidden_state` (the per-token heads read these)."""
        return self.last_hidden_state[:, : self.text_length]


def masked_mean(hidden_states: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean over the positions where `mask` is 1."""
    mask = mask.unsqueeze(-1).to(hidden_states.dtype)
    return (hidden_states * mask).sum(1) / mask.sum(1).clamp(min=1)


class SoraEncoderKwargs(TransformersKwargs, total=False):
    """The encoder's inputs besides `input_ids` and `attention_mask`, which every encoder head passes through.

    token_type_ids (`torch.LongTensor` of shape `(batch_size, sequence_length)`): segment ids (0 or 1).
    position_ids (`torch.LongTensor` of shape `(batch_size, sequence_length)`): positions, by default 0, 1, ...
    inputs_embeds (`torch.FloatTensor` of shape `(batch_size, sequence_length, hidden_size)`): instead of ids.
    pixel_values (`torch.FloatTensor` of shape `(batch_size, channels, image_size, image_size)`): images for the
        vision tower (from `SoraImageProcessor`).
    input_features (`torch.FloatTensor` of shape `(batch_size, num_mel_bins, frames)`): log-mel features for the
        audio tower (from `SoraFeatureExtractor`).
    feature_attention_mask (`torch.LongTensor` of shape `(batch_size, frames)`): padding mask of `input_features`.
    """

    token_type_ids: torch.LongTensor | None
    inputs_embeds: torch.FloatTensor | None
    pixel_values: torch.FloatTensor | None
    input_features: torch.FloatTensor | None
    feature_attention_mask: torch.LongTensor | None


# The same names as a tuple: `position_ids` (declared by TransformersKwargs) and SoraEncoderKwargs' own keys.
ENCODER_INPUTS = (
    "position_ids",
    *(name for name in SoraEncoderKwargs.__annotations__ if name not in TransformersKwargs.__annotations__),
)


def takes_encoder_inputs(forward: Callable) -> Callable:
    """Name the encoder's inputs in a head's `forward` signature, which passes them on through `**kwargs`:
    `Trainer` keeps only the dataset columns the signature names (`remove_unused_columns`)."""
    signature = inspect.signature(forward)
    parameters = [p for p in signature.parameters.values() if p.kind is not inspect.Parameter.VAR_KEYWORD]
    named = {p.name for p in parameters}
    extra = [
        inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=None)
        for name in ENCODER_INPUTS
        if name not in named
    ]
    variadic = [p for p in signature.parameters.values() if p.kind is inspect.Parameter.VAR_KEYWORD]
    forward.__signature__ = signature.replace(parameters=[*parameters, *extra, *variadic])
    return forward


class SoraPreTrainedModel(PackagedNameMixin, PreTrainedModel):
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
        if isinstance(module, UnitScaleLinear):
            init.normal_(module.weight, mean=0.0, std=module.in_features**-0.5)

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path, *args, **kwargs):
        """Load weights (`sora` is the packaged checkpoint); a truncated or corrupt weights file raises
        `CorruptCheckpointError` naming it."""
        try:
            return super().from_pretrained(pretrained_model_name_or_path, *args, **kwargs)
        except SafetensorError as error:
            corrupt = find_corrupt_safetensors(
                resolve_pretrained_name(pretrained_model_name_or_path),
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


class UnitScaleLinear(nn.Linear):
    """A linear map initialised at unit scale (std `in_features ** -0.5`) instead of `initializer_range`."""


class SoraTowerModel(SoraPreTrainedModel):
    """Base of the image and audio towers: the subclass's embeddings, then pre-LayerNorm encoder layers and a final
    LayerNorm over the tower's tokens."""

    _can_record_outputs = {"hidden_states": SoraEncoderLayer, "attentions": SoraSelfAttention}

    def add_layers(self, config: SoraVisionConfig | SoraAudioConfig) -> None:
        """Create the layer stack; called after the subclass's embeddings, so weights are drawn in that order."""
        self.dropout = nn.Dropout(config.hidden_dropout_prob)
        self.layers = nn.ModuleList([SoraEncoderLayer(config, i) for i in range(config.num_hidden_layers)])
        self.final_layer_norm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.gradient_checkpointing = False

    def run_layers(
        self,
        embeddings: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        **kwargs: Unpack[TransformersKwargs],
    ) -> SoraTowerOutput:
        """Dropout, every layer and the final LayerNorm over `embeddings` (padding given by `attention_mask`)."""
        hidden_states = self.dropout(embeddings)
        layer_mask = None
        if attention_mask is not None:
            layer_mask = create_bidirectional_mask(
                config=self.config, inputs_embeds=hidden_states, attention_mask=attention_mask
            )
        for layer in self.layers:
            hidden_states = layer(hidden_states, layer_mask, **kwargs)
        return SoraTowerOutput(
            last_hidden_state=self.final_layer_norm(hidden_states), attention_mask=attention_mask
        )
