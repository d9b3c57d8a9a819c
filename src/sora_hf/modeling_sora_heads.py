# Copyright 2026 The sora_hf authors. Licensed under the Apache License, Version 2.0.
"""Sora's encoder heads: masked LM (fill-mask), sequence classification, token classification and extractive
question answering. Each is one encoder call, its projection and its loss."""

import torch
from torch import nn
from transformers.activations import ACT2FN
from transformers.modeling_outputs import (
    MaskedLMOutput,
    QuestionAnsweringModelOutput,
    SequenceClassifierOutput,
    TokenClassifierOutput,
)
from transformers.processing_utils import Unpack
from transformers.utils import can_return_tuple

from .configuration_sora import SoraConfig
from .input_checks import check_labels
from .modeling_sora import WORD_EMBEDDINGS, SoraModel
from .modeling_sora_base import (
    SoraEncoderKwargs,
    SoraEncoderOutput,
    SoraPreTrainedModel,
    masked_mean,
    takes_encoder_inputs,
)
from .modeling_sora_fusion import SoraFusionPooler
from .modeling_sora_losses import masked_lm_logits_and_loss, token_cross_entropy

# Weights of a pretraining checkpoint that a per-token or span head does not use.
PRETRAINING_ONLY_KEYS = [
    r"^model\.decoder\.",
    r"^lm_head\.",
    r"^nsp_head\.",
    r"^(sentence_embedding|token_distillation)_head\.",
    r"^pooler\.",
]


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

    @property
    def first_token_only(self) -> bool:
        """Reads the `<s>` position alone."""
        return not self.mean

    def forward(self, hidden_states: torch.Tensor, encoder_output: SoraEncoderOutput) -> torch.Tensor:
        mask = encoder_output.attention_mask
        if not self.mean:
            summary = hidden_states[:, 0]
        elif mask is None:
            summary = hidden_states.mean(1)
        else:
            summary = masked_mean(hidden_states, mask)
        return torch.tanh(self.dense(summary))


def classifier_dropout(config: SoraConfig) -> nn.Dropout:
    """Dropout before a classifier: `classifier_dropout`, or `hidden_dropout_prob` when unset."""
    return nn.Dropout(
        config.classifier_dropout if config.classifier_dropout is not None else config.hidden_dropout_prob
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
    @takes_encoder_inputs
    def forward(
        self,
        input_ids: torch.LongTensor | None = None,
        attention_mask: torch.Tensor | None = None,
        token_type_ids: torch.LongTensor | None = None,
        labels: torch.LongTensor | None = None,
        **kwargs: Unpack[SoraEncoderKwargs],
    ) -> MaskedLMOutput:
        r"""
        labels (`torch.LongTensor` of shape `(batch_size, sequence_length)`, *optional*):
            Masked-LM targets; -100 marks positions that are not predicted.
        """
        num_items_in_batch = kwargs.pop("num_items_in_batch", None)
        outputs = self.model.encoder(input_ids, attention_mask, token_type_ids, **kwargs)
        logits, loss = masked_lm_logits_and_loss(
            self.lm_head, outputs.text_hidden_states, labels, self.sparse_prediction, num_items_in_batch
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
        self.dropout = classifier_dropout(config)
        self.classifier = nn.Linear(config.hidden_size, config.num_labels)
        self.post_init()

    @can_return_tuple
    @takes_encoder_inputs
    def forward(
        self,
        input_ids: torch.LongTensor | None = None,
        attention_mask: torch.Tensor | None = None,
        token_type_ids: torch.LongTensor | None = None,
        labels: torch.LongTensor | None = None,
        **kwargs: Unpack[SoraEncoderKwargs],
    ) -> SequenceClassifierOutput:
        r"""
        labels (`torch.LongTensor` of shape `(batch_size,)`, *optional*):
            Class ids (single-label), multi-hot floats (multi-label) or floats (regression, `num_labels == 1`).
        """
        # An `<s>` pooler reads one position: the last layer then computes no other.
        first_token_only = self.pooler.first_token_only
        outputs = self.model.encoder(
            input_ids, attention_mask, token_type_ids, first_token_only=first_token_only, **kwargs
        )
        logits = self.classifier(self.dropout(self.pooler(outputs.last_hidden_state, outputs)))
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


class SoraForTokenClassification(SoraPreTrainedModel):
    """Sora encoder with a per-token classification head (NER)."""

    accepts_loss_kwargs = True  # token-level loss: normalised by Trainer's `num_items_in_batch`

    _keys_to_ignore_on_load_unexpected = PRETRAINING_ONLY_KEYS

    def __init__(self, config: SoraConfig):
        super().__init__(config)
        self.num_labels = config.num_labels
        self.model = SoraModel(config, with_decoder=False)
        self.dropout = classifier_dropout(config)
        self.classifier = nn.Linear(config.hidden_size, config.num_labels)
        self.post_init()

    @can_return_tuple
    @takes_encoder_inputs
    def forward(
        self,
        input_ids: torch.LongTensor | None = None,
        attention_mask: torch.Tensor | None = None,
        token_type_ids: torch.LongTensor | None = None,
        labels: torch.LongTensor | None = None,
        **kwargs: Unpack[SoraEncoderKwargs],
    ) -> TokenClassifierOutput:
        r"""
        labels (`torch.LongTensor` of shape `(batch_size, sequence_length)`, *optional*):
            Tag ids per token; -100 marks positions without a tag (special tokens, continuation sub-words).
        """
        num_items_in_batch = kwargs.pop("num_items_in_batch", None)
        outputs = self.model.encoder(input_ids, attention_mask, token_type_ids, **kwargs)
        logits = self.classifier(self.dropout(outputs.text_hidden_states))
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
    @takes_encoder_inputs
    def forward(
        self,
        input_ids: torch.LongTensor | None = None,
        attention_mask: torch.Tensor | None = None,
        token_type_ids: torch.LongTensor | None = None,
        start_positions: torch.LongTensor | None = None,
        end_positions: torch.LongTensor | None = None,
        **kwargs: Unpack[SoraEncoderKwargs],
    ) -> QuestionAnsweringModelOutput:
        r"""
        start_positions (`torch.LongTensor` of shape `(batch_size,)`, *optional*):
            Token index where the answer starts.
        end_positions (`torch.LongTensor` of shape `(batch_size,)`, *optional*):
            Token index where the answer ends (inclusive).
        """
        outputs = self.model.encoder(input_ids, attention_mask, token_type_ids, **kwargs)
        start_logits, end_logits = self.qa_outputs(outputs.text_hidden_states).split(1, dim=-1)
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


__all__ = [
    "SoraForMaskedLM",
    "SoraForQuestionAnswering",
    "SoraForSequenceClassification",
    "SoraForTokenClassification",
]
