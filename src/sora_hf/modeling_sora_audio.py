# Copyright 2026 The sora_hf authors. Licensed under the Apache License, Version 2.0.
"""Sora's audio tower: log-mel frames, two stride-2 convolutions (4x fewer frames), learned positions and
pre-LayerNorm layers; the encoder projects its frames into the text width and fuses them with the text."""

import torch
from torch import nn
from transformers.activations import ACT2FN
from transformers.processing_utils import Unpack
from transformers.utils import TransformersKwargs, is_torchdynamo_compiling
from transformers.utils.generic import merge_with_config_defaults
from transformers.utils.output_capturing import capture_outputs

from .configuration_sora import SoraAudioConfig
from .modeling_sora_base import SoraTowerModel, SoraTowerOutput


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


def checked_feature_mask(
    input_features: torch.Tensor, feature_attention_mask: torch.Tensor | None
) -> torch.Tensor:
    """The frames' padding mask (all ones when not given); `ValueError` when its shape is wrong or a clip is empty."""
    batch_size, _, frames = input_features.shape
    if feature_attention_mask is None:
        return torch.ones(batch_size, frames, dtype=torch.long, device=input_features.device)
    if tuple(feature_attention_mask.shape) != (batch_size, frames):
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
    return feature_attention_mask


class SoraAudioModel(SoraTowerModel):
    """Audio tower: log-mel frames, two stride-2 convolutions (4x subsampling), learned positions, pre-LN layers."""

    config: SoraAudioConfig
    main_input_name = "input_features"

    def __init__(self, config: SoraAudioConfig):
        super().__init__(config)
        self.conv1 = nn.Conv1d(config.num_mel_bins, config.hidden_size, kernel_size=3, stride=2, padding=1)
        self.conv2 = nn.Conv1d(config.hidden_size, config.hidden_size, kernel_size=3, stride=2, padding=1)
        self.act_fn = ACT2FN[config.hidden_act]
        self.position_embeddings = nn.Embedding(config.max_source_positions, config.hidden_size)
        self.add_layers(config)
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
    ) -> SoraTowerOutput:
        r"""
        input_features (`torch.FloatTensor` of shape `(batch_size, num_mel_bins, frames)`):
            Log-mel features prepared by `SoraFeatureExtractor`.
        feature_attention_mask (`torch.Tensor` of shape `(batch_size, frames)`, *optional*):
            1 for real frames, 0 for padding.
        """
        check_input_features(input_features, self.config)
        feature_attention_mask = checked_feature_mask(input_features, feature_attention_mask)
        hidden_states, attention_mask = self.subsample(input_features, feature_attention_mask)
        seq_length = hidden_states.shape[1]
        return self.run_layers(
            hidden_states + self.position_embeddings.weight[:seq_length], attention_mask, **kwargs
        )

    def subsample(
        self, input_features: torch.Tensor, feature_attention_mask: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The two stride-2 convolutions: `(batch, frames / 4, hidden)` states and their padding mask."""
        lengths = feature_attention_mask.sum(-1)
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
        return hidden_states, attention_mask


__all__ = ["SoraAudioModel"]
