# Copyright 2026 The sora_hf authors. Licensed under the Apache License, Version 2.0.
"""Sora's image tower: ViT-style patch embeddings (linear or an early-convolution stem), learned patch positions and
pre-LayerNorm layers; the encoder projects its patches into the text width and fuses them with the text."""

import torch
from torch import nn
from transformers.activations import ACT2FN
from transformers.processing_utils import Unpack
from transformers.utils import TransformersKwargs
from transformers.utils.generic import merge_with_config_defaults
from transformers.utils.output_capturing import capture_outputs

from .configuration_sora import SoraVisionConfig
from .modeling_sora_base import SoraTowerModel, SoraTowerOutput


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


class SoraVisionModel(SoraTowerModel):
    """ViT-style image tower: non-overlapping patches, learned patch positions, pre-LayerNorm layers."""

    config: SoraVisionConfig
    main_input_name = "pixel_values"

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
        self.add_layers(config)
        self.post_init()

    def get_input_embeddings(self) -> nn.Module:
        return self.patch_embeddings

    @merge_with_config_defaults
    @capture_outputs
    def forward(
        self, pixel_values: torch.FloatTensor, **kwargs: Unpack[TransformersKwargs]
    ) -> SoraTowerOutput:
        r"""
        pixel_values (`torch.FloatTensor` of shape `(batch_size, num_channels, image_size, image_size)`):
            Images prepared by `SoraImageProcessor`.
        """
        check_pixel_values(pixel_values, self.config)
        pixel_values = pixel_values.to(self.position_embeddings.weight.dtype)
        patches = self.patch_embeddings(pixel_values).flatten(2).transpose(1, 2)  # (batch, patches, hidden)
        return self.run_layers(patches + self.position_embeddings.weight, **kwargs)


__all__ = ["SoraVisionModel"]
