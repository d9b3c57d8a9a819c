# Copyright 2026 The sora_hf authors. Licensed under the Apache License, Version 2.0.
"""Sora encoder-decoder with a language-modelling head and `generate`: translation, summarization, dialogue."""

from typing import Any

import torch
from torch import nn
from transformers.cache_utils import EncoderDecoderCache
from transformers.generation import GenerationConfig, GenerationMixin
from transformers.modeling_outputs import BaseModelOutput, Seq2SeqLMOutput
from transformers.processing_utils import Unpack
from transformers.utils import TransformersKwargs, can_return_tuple
from transformers.utils.deprecation import deprecate_kwarg

from .configuration_sora import SoraConfig
from .input_checks import check_labels
from .modeling_sora import WORD_EMBEDDINGS, SoraModel, shift_tokens_right
from .modeling_sora_base import SoraPreTrainedModel
from .modeling_sora_losses import token_cross_entropy
from .serving import PackedLinear, can_pack


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
            attention_mask,
            input_ids=input_ids,
            inputs_embeds=inputs_embeds,
            pixel_values=pixel_values,
            input_features=input_features,
            feature_attention_mask=feature_attention_mask,
            **kwargs,
        )
        if decoder_input_ids is None and decoder_inputs_embeds is None:
            decoder_input_ids = self.model.shifted_input_ids(input_ids)
        # The decoder directly, not through `SoraModel`: every `generate` step would pay that call and its output.
        decoder_outputs = self.model.decoder(
            input_ids=decoder_input_ids,
            attention_mask=decoder_attention_mask,
            encoder_hidden_states=encoder_outputs.last_hidden_state,
            encoder_attention_mask=encoder_outputs.attention_mask,
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


__all__ = ["SoraForConditionalGeneration"]
