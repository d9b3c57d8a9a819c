# Copyright 2026 The sora_hf authors. Licensed under the Apache License, Version 2.0.
"""Early fusion of text with image and audio tokens: the projector from a tower's width into the encoder's, the
concatenation `[text; image patches; audio frames]` with modality embeddings, and the bilinear fusion pooler."""

import torch
from torch import nn

from .configuration_sora import SoraConfig
from .modeling_sora_base import SoraEncoderOutput, UnitScaleLinear, masked_mean

# Rows of the encoder's `modality_embeddings`.
TEXT, IMAGE, AUDIO = 0, 1, 2


class SoraModalityProjector(nn.Module):
    """Linear map from a tower's width to the encoder's, then LayerNorm: the text embeddings' scale."""

    def __init__(self, input_size: int, config: SoraConfig):
        super().__init__()
        self.linear = nn.Linear(input_size, config.hidden_size)
        self.layer_norm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        return self.layer_norm(self.linear(hidden_states))


def check_media_batch(
    batch_size: int, pixel_values: torch.Tensor | None, input_features: torch.Tensor | None
) -> None:
    """Raise `ValueError` when images or audio do not come one per text."""
    for name, media in (("pixel_values", pixel_values), ("input_features", input_features)):
        if media is not None and media.shape[0] != batch_size:
            raise ValueError(
                f"{name} holds {media.shape[0]} examples but the text holds {batch_size}: pass one "
                "image/audio per text (repeat it for several questions about the same one)."
            )


def concatenate_modalities(
    text_states: torch.Tensor,
    text_mask: torch.Tensor | None,
    media: list[tuple[int, torch.Tensor, torch.Tensor | None]],
    modality_embeddings: nn.Embedding,
) -> tuple[torch.Tensor, torch.Tensor]:
    """`[text; media...]`, each part plus its modality embedding, and the fused padding mask. `media` holds
    `(modality, projected states, mask or None for no padding)` in order."""
    batch_size, text_length = text_states.shape[:2]
    if text_mask is None:
        text_mask = torch.ones(batch_size, text_length, dtype=torch.long, device=text_states.device)
    modality = modality_embeddings.weight
    states, masks = [text_states + modality[TEXT]], [text_mask.long()]
    for kind, media_states, media_mask in media:
        states.append(media_states.to(text_states.dtype) + modality[kind])
        if media_mask is None:
            media_mask = torch.ones(media_states.shape[:2], dtype=torch.long, device=media_states.device)
        masks.append(media_mask)
    return torch.cat(states, dim=1), torch.cat(masks, dim=1)


class SoraFusionProjection(UnitScaleLinear):
    """Initialised at unit scale: at `initializer_range` 0.02 the product of two such projections starts at a
    near-zero saddle it leaves only after thousands of steps."""


class SoraFusionPooler(nn.Module):
    """The `<s>` summary (dense + tanh) plus, when image/audio tokens are present, the LayerNorm-ed Hadamard product
    of projected text and media means: low-rank bilinear pooling (Kim et al., 2017), so "is there a red shape?" is a
    product of question and image features rather than a function the attention layers must discover from scratch."""

    first_token_only = False  # reads the media positions too

    def __init__(self, config: SoraConfig):
        super().__init__()
        self.dense = nn.Linear(config.hidden_size, config.hidden_size)
        self.text_projection = SoraFusionProjection(config.hidden_size, config.hidden_size)
        self.media_projection = SoraFusionProjection(config.hidden_size, config.hidden_size)
        self.layer_norm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)

    def forward(self, hidden_states: torch.Tensor, encoder_output: SoraEncoderOutput) -> torch.Tensor:
        pooled = torch.tanh(self.dense(hidden_states[:, 0]))
        text_length, mask = encoder_output.text_length, encoder_output.attention_mask
        if text_length == hidden_states.shape[1]:
            return pooled  # text alone: nothing to fuse
        text = masked_mean(hidden_states[:, :text_length], mask[:, :text_length])
        media = masked_mean(hidden_states[:, text_length:], mask[:, text_length:])
        fused = torch.tanh(self.text_projection(text)) * torch.tanh(self.media_projection(media))
        return pooled + self.layer_norm(fused)


__all__ = ["SoraFusionPooler", "SoraModalityProjector"]
