# Copyright 2026 The sora_hf authors. Licensed under the Apache License, Version 2.0.
"""The losses Sora's heads compute: token cross-entropy (masked LM, tagging, generation), next-sentence prediction,
and the two distillation terms of pretraining (sentence embeddings, per-token states)."""

import math

import torch
from torch import nn

from .input_checks import check_labels


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
    lm_head: nn.Module,
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


def next_sentence_loss(
    seq_relationship_logits: torch.Tensor, next_sentence_label: torch.Tensor | None
) -> torch.Tensor | None:
    """Cross-entropy of the next-sentence logits (0 = B follows A, 1 = B is random); None without labels."""
    if next_sentence_label is None:
        return None
    check_labels(
        "next_sentence_label", next_sentence_label.reshape(-1), seq_relationship_logits.shape[:1], 2, None
    )
    return nn.functional.cross_entropy(seq_relationship_logits.float(), next_sentence_label.view(-1))


def sentence_distillation_loss(
    sentence_embeddings: torch.Tensor | None, teacher_embeddings: torch.Tensor | None
) -> torch.Tensor | None:
    """Mean over the batch of the squared distance to the teacher's sentence embeddings; None without them."""
    if teacher_embeddings is None:
        return None
    if teacher_embeddings.shape != sentence_embeddings.shape:
        raise ValueError(
            f"teacher_embeddings have shape {tuple(teacher_embeddings.shape)} but the sentence-embedding "
            f"head predicts {tuple(sentence_embeddings.shape)}: give one embedding of size "
            f"config.sentence_embedding_size={sentence_embeddings.shape[-1]} per row."
        )
    return (sentence_embeddings.float() - teacher_embeddings.float()).pow(2).sum(-1).mean()


def token_distillation_loss(
    token_states: torch.Tensor | None,
    teacher_token_states: torch.Tensor | None,
    teacher_token_mask: torch.Tensor | None,
) -> torch.Tensor | None:
    """Mean over the positions that have a teacher target of the squared distance divided by √size (data2vec's
    scaling: summed over dimensions it would swamp the masked-LM loss, averaged it would vanish beside it); None
    without targets."""
    if teacher_token_states is None:
        return None
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
