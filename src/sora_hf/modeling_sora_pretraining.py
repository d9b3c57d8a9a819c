# Copyright 2026 The sora_hf authors. Licensed under the Apache License, Version 2.0.
"""Sora with its pretraining heads: masked LM and next-sentence prediction on the encoder, BART-style denoising on
the decoder, and the heads distilled from a teacher's sentence embeddings and per-token states."""

from dataclasses import dataclass

import torch
from torch import nn
from transformers.modeling_outputs import ModelOutput
from transformers.processing_utils import Unpack
from transformers.utils import can_return_tuple

from .configuration_sora import SoraConfig
from .input_checks import check_labels
from .modeling_sora import WORD_EMBEDDINGS, SoraModel, shift_tokens_right
from .modeling_sora_base import SoraEncoderKwargs, SoraPreTrainedModel, takes_encoder_inputs
from .modeling_sora_heads import SoraLMHead, SoraPooler
from .modeling_sora_losses import (
    masked_lm_logits_and_loss,
    next_sentence_loss,
    sentence_distillation_loss,
    token_cross_entropy,
    token_distillation_loss,
)


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
    @takes_encoder_inputs
    def forward(
        self,
        input_ids: torch.LongTensor | None = None,
        attention_mask: torch.Tensor | None = None,
        token_type_ids: torch.LongTensor | None = None,
        labels: torch.LongTensor | None = None,
        next_sentence_label: torch.LongTensor | None = None,
        denoising_input_ids: torch.LongTensor | None = None,
        denoising_attention_mask: torch.Tensor | None = None,
        decoder_labels: torch.LongTensor | None = None,
        teacher_embeddings: torch.FloatTensor | None = None,
        teacher_token_states: torch.FloatTensor | None = None,
        teacher_token_mask: torch.Tensor | None = None,
        **kwargs: Unpack[SoraEncoderKwargs],
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
        self.check_teacher_inputs(teacher_embeddings, teacher_token_states)
        outputs = self.model.encoder(input_ids, attention_mask, token_type_ids, **kwargs)
        text_states = outputs.text_hidden_states
        prediction_logits, mlm_loss = masked_lm_logits_and_loss(
            self.lm_head, text_states, labels, self.sparse_prediction
        )
        pooled_output = self.pooler(outputs.last_hidden_state, outputs)
        seq_relationship_logits = self.nsp_head(pooled_output)
        sentence_embeddings = token_states = None
        if self.sentence_embedding_head is not None:
            sentence_embeddings = self.sentence_embedding_head(pooled_output)
        if self.token_distillation_head is not None:
            # A slice of its own: with one shared slice the two heads' gradients would add up in another order.
            token_states = self.token_distillation_head(outputs.text_hidden_states)
        denoising_logits, denoising_loss = self.denoising_logits_and_loss(
            denoising_input_ids, denoising_attention_mask, decoder_labels
        )
        losses = {  # each None without its targets
            "mlm_loss": mlm_loss,
            "nsp_loss": next_sentence_loss(seq_relationship_logits, next_sentence_label),
            "denoising_loss": denoising_loss,
            "sentence_distillation_loss": sentence_distillation_loss(sentence_embeddings, teacher_embeddings),
            "token_distillation_loss": token_distillation_loss(
                token_states, teacher_token_states, teacher_token_mask
            ),
        }
        terms = [term for term in losses.values() if term is not None]
        return SoraForPreTrainingOutput(
            loss=sum(terms) if terms else None,
            prediction_logits=prediction_logits,
            seq_relationship_logits=seq_relationship_logits,
            denoising_logits=denoising_logits,
            sentence_embeddings=sentence_embeddings,
            token_states=token_states,
            hidden_states=outputs.hidden_states,
            attentions=outputs.attentions,
            **losses,
        )

    def check_teacher_inputs(
        self, teacher_embeddings: torch.Tensor | None, teacher_token_states: torch.Tensor | None
    ) -> None:
        """Raise `ValueError` when teacher targets come for a head this model was built without."""
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

    def denoising_logits_and_loss(
        self,
        denoising_input_ids: torch.LongTensor | None,
        denoising_attention_mask: torch.Tensor | None,
        decoder_labels: torch.LongTensor | None,
    ) -> tuple[torch.Tensor | None, torch.Tensor | None]:
        """BART-style denoising: the decoder's logits reconstructing `decoder_labels` from the corrupted text, and
        their cross-entropy (both None without `decoder_labels`)."""
        if decoder_labels is None:
            return None, None
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
        return denoising_logits, token_cross_entropy(denoising_logits, decoder_labels)


__all__ = ["SoraForPreTraining"]
