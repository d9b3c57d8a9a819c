# Copyright 2026 The sora_hf authors. Licensed under the Apache License, Version 2.0.
"""PyTorch Sora model: a pre-LayerNorm Transformer encoder with an optional causal decoder (`SoraModel`).

The shared layers are in `modeling_sora_base.py`, the image and audio towers in `modeling_sora_vision.py` and
`modeling_sora_audio.py`, their fusion with the text in `modeling_sora_fusion.py`; the heads in
`modeling_sora_heads.py` (encoder tasks), `modeling_sora_pretraining.py` and `modeling_sora_generation.py`."""

from dataclasses import dataclass, replace
from typing import Any

import torch
from torch import nn
from transformers.cache_utils import DynamicCache, EncoderDecoderCache
from transformers.masking_utils import create_bidirectional_mask, create_causal_mask
from transformers.modeling_outputs import (
    BaseModelOutput,
    BaseModelOutputWithPastAndCrossAttentions,
    Seq2SeqModelOutput,
)
from transformers.processing_utils import Unpack
from transformers.utils import TransformersKwargs, can_return_tuple
from transformers.utils.deprecation import deprecate_kwarg
from transformers.utils.generic import merge_with_config_defaults
from transformers.utils.output_capturing import OutputRecorder, capture_outputs

from .configuration_sora import SoraConfig
from .input_checks import (
    check_decoder_masks,
    check_encoder_inputs,
    check_input_ids,
    check_inputs_embeds,
    check_sequence_length,
    check_text_inputs,
    is_tracing,
)
from .modeling_sora_audio import SoraAudioModel
from .modeling_sora_base import (
    RealTokens,
    SoraCrossAttention,
    SoraDecoderLayer,
    SoraEncoderLayer,
    SoraEncoderOutput,
    SoraPreTrainedModel,
    SoraSelfAttention,
    recording,
)
from .modeling_sora_fusion import (
    AUDIO,
    IMAGE,
    SoraModalityProjector,
    check_media_batch,
    concatenate_modalities,
)
from .modeling_sora_vision import SoraVisionModel

WORD_EMBEDDINGS = "model.encoder.embeddings.word_embeddings.weight"


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


class SoraEncoder(SoraPreTrainedModel):
    """Embeddings, a stack of `SoraEncoderLayer` and a final LayerNorm; with `config.vision_config` /
    `config.audio_config`, image / audio towers whose tokens join the text tokens before layer `fusion_layer`."""

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
            input_ids = self.lone_start_token(pixel_values if pixel_values is not None else input_features)
            attention_mask = token_type_ids = position_ids = None
        check_encoder_inputs(
            self.config, input_ids, attention_mask, token_type_ids, position_ids, inputs_embeds
        )
        hidden_states = self.embeddings(input_ids, token_type_ids, position_ids, inputs_embeds)
        text_length = hidden_states.shape[1]
        # Media tokens join before layer `fusion_layer`; the layers below it read the text alone.
        fusion_layer = self.config.fusion_layer if has_media else len(self.layers)
        first_token_only = first_token_only and not has_media and computes_first_token_alone(attention_mask)
        hidden_states = self.run_text_layers(
            hidden_states, attention_mask, fusion_layer, first_token_only, **kwargs
        )
        if has_media:
            hidden_states, attention_mask = self.fuse(
                hidden_states, attention_mask, pixel_values, input_features, feature_attention_mask
            )
            layer_mask = create_bidirectional_mask(
                config=self.config, inputs_embeds=hidden_states, attention_mask=attention_mask
            )
            for layer in self.layers[fusion_layer:]:
                hidden_states = layer(hidden_states, layer_mask, **kwargs)
        return SoraEncoderOutput(
            last_hidden_state=self.final_layer_norm(hidden_states),
            attention_mask=attention_mask,
            text_length=text_length,
        )

    def run_text_layers(
        self,
        hidden_states: torch.Tensor,
        attention_mask: torch.Tensor | None,
        num_layers: int,
        first_token_only: bool,
        **kwargs: Unpack[TransformersKwargs],
    ) -> torch.Tensor:
        """The first `num_layers` layers over the text. Padded text runs on its real tokens alone (no projection or
        MLP work on padding; padding positions keep their embeddings), except while per-position attentions or
        hidden states are recorded: those are padded, so the layers then run padded under the mask."""
        if num_layers == 0:
            return hidden_states
        real_tokens = None
        if not recording("attentions") and not recording("hidden_states"):
            real_tokens = RealTokens.from_mask(attention_mask, hidden_states)
        layer_mask = None
        if real_tokens is None:
            layer_mask = create_bidirectional_mask(
                config=self.config, inputs_embeds=hidden_states, attention_mask=attention_mask
            )
        states = real_tokens.unpad(hidden_states) if real_tokens is not None else hidden_states
        for index, layer in enumerate(self.layers[:num_layers]):
            last = index == num_layers - 1
            states = layer(
                states,
                layer_mask,
                real_tokens=real_tokens,
                first_token_only=first_token_only and last,
                **kwargs,
            )
        if first_token_only:
            return states.unsqueeze(1)
        return real_tokens.pad(states, into=hidden_states) if real_tokens is not None else states

    def lone_start_token(self, media: torch.Tensor) -> torch.LongTensor:
        """`<s>` alone for each example: the text of a media-only input."""
        cls_id = (
            self.config.cls_token_id if self.config.cls_token_id is not None else self.config.bos_token_id
        )
        return torch.full((media.shape[0], 1), cls_id or 0, dtype=torch.long, device=media.device)

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
        """Early fusion: run the towers, project their tokens and join them after the text; the fused mask."""
        check_media_batch(text_states.shape[0], pixel_values, input_features)
        media = []
        if pixel_values is not None:
            image = self.vision_projector(self.vision_tower(pixel_values).last_hidden_state)
            media.append((IMAGE, image, None))
        if input_features is not None:
            audio = self.audio_tower(input_features, feature_attention_mask)
            media.append((AUDIO, self.audio_projector(audio.last_hidden_state), audio.attention_mask))
        return concatenate_modalities(text_states, text_mask, media, self.modality_embeddings)


def computes_first_token_alone(attention_mask: torch.Tensor | None) -> bool:
    """Whether the last layer may compute the first position alone: not while tracing or recording per-layer
    outputs, and only when every sequence starts with a real token (right padding)."""
    return (
        not is_tracing()
        and not recording("hidden_states")
        and not recording("attentions")
        and (attention_mask is None or bool(attention_mask[:, 0].all()))
    )


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


@dataclass
class SoraModelOutput(Seq2SeqModelOutput):
    r"""
    The bare model's output. Encoder-only: `last_hidden_state`, `hidden_states` and `attentions` are the encoder's.
    With a decoder (BART's convention): `last_hidden_state`, `cache` and the `decoder_*` fields are the decoder's,
    `encoder_*` the encoder's.

    hidden_states (`tuple(torch.FloatTensor)`, *optional*):
        Encoder-only: the embeddings and each encoder layer's output (`output_hidden_states=True`).
    attentions (`tuple(torch.FloatTensor)`, *optional*):
        Encoder-only: each encoder layer's attention weights (`output_attentions=True`).
    attention_mask (`torch.LongTensor` of shape `(batch_size, sequence_length)`, *optional*):
        Encoder-only: the padding mask of `last_hidden_state` (with images or audio, of the fused sequence).
    """

    hidden_states: tuple[torch.FloatTensor, ...] | None = None
    attentions: tuple[torch.FloatTensor, ...] | None = None
    attention_mask: torch.LongTensor | None = None


def encoder_output_from_tuple(items: tuple, attention_mask: torch.Tensor | None) -> SoraEncoderOutput:
    """A `SoraEncoderOutput` from the tuple an encoder returns with `return_dict=False`: the states first, then, in
    any order, per-layer states (3-D) and attentions (4-D), the mask it used (2-D) and the text length (int)."""
    states, *rest = items
    per_layer = {entry[0].dim(): entry for entry in rest if isinstance(entry, tuple) and entry}
    masks = [entry for entry in rest if isinstance(entry, torch.Tensor) and entry.dim() == 2]
    lengths = [entry for entry in rest if isinstance(entry, int)]
    return SoraEncoderOutput(
        last_hidden_state=states,
        hidden_states=per_layer.get(3),
        attentions=per_layer.get(4),
        attention_mask=masks[0] if masks else attention_mask,
        text_length=lengths[0] if lengths else states.shape[1],
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
        self,
        encoder_outputs: BaseModelOutput | tuple | None,
        attention_mask: torch.Tensor | None = None,
        **encoder_inputs: Any,
    ) -> SoraEncoderOutput:
        """Run the encoder, or take precomputed `encoder_outputs` (a tuple or another output type is wrapped, with
        `attention_mask` as the mask its states were computed under)."""
        if encoder_outputs is None:
            return self.encoder(attention_mask=attention_mask, **encoder_inputs)
        if isinstance(encoder_outputs, SoraEncoderOutput):
            if encoder_outputs.attention_mask is None and attention_mask is not None:
                return replace(encoder_outputs, attention_mask=attention_mask)
            return encoder_outputs
        if not isinstance(encoder_outputs, BaseModelOutput):
            return encoder_output_from_tuple(encoder_outputs, attention_mask)
        return SoraEncoderOutput(
            last_hidden_state=encoder_outputs.last_hidden_state,
            hidden_states=encoder_outputs.hidden_states,
            attentions=encoder_outputs.attentions,
            attention_mask=attention_mask,
            text_length=encoder_outputs.last_hidden_state.shape[1],
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
    ) -> SoraModelOutput:
        r"""
        decoder_input_ids (`torch.LongTensor` of shape `(batch_size, target_sequence_length)`, *optional*):
            Decoder input ids; when absent (and there is a decoder), built by shifting `input_ids` right.
        """
        encoder_outputs = self.encode(
            encoder_outputs,
            attention_mask,
            input_ids=input_ids,
            token_type_ids=token_type_ids,
            position_ids=position_ids,
            inputs_embeds=inputs_embeds,
            pixel_values=pixel_values,
            input_features=input_features,
            feature_attention_mask=feature_attention_mask,
            **kwargs,
        )
        if self.decoder is None:
            return SoraModelOutput(
                last_hidden_state=encoder_outputs.last_hidden_state,
                hidden_states=encoder_outputs.hidden_states,
                attentions=encoder_outputs.attentions,
                attention_mask=encoder_outputs.attention_mask,
            )
        if decoder_input_ids is None and decoder_inputs_embeds is None:
            decoder_input_ids = self.shifted_input_ids(input_ids)
        decoder_outputs = self.decoder(
            input_ids=decoder_input_ids,
            attention_mask=decoder_attention_mask,
            encoder_hidden_states=encoder_outputs.last_hidden_state,
            encoder_attention_mask=encoder_outputs.attention_mask,
            cache=cache,
            inputs_embeds=decoder_inputs_embeds,
            use_cache=use_cache,
            **kwargs,
        )
        return SoraModelOutput(
            last_hidden_state=decoder_outputs.last_hidden_state,
            cache=decoder_outputs.cache,
            decoder_hidden_states=decoder_outputs.hidden_states,
            decoder_attentions=decoder_outputs.attentions,
            cross_attentions=decoder_outputs.cross_attentions,
            encoder_last_hidden_state=encoder_outputs.last_hidden_state,
            encoder_hidden_states=encoder_outputs.hidden_states,
            encoder_attentions=encoder_outputs.attentions,
        )


__all__ = ["SoraDecoder", "SoraEncoder", "SoraModel", "SoraPreTrainedModel"]
