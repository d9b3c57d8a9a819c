# Copyright 2026 The sora_hf authors. Licensed under the Apache License, Version 2.0.
"""Image processor for Sora's vision tower: RGB, resize, rescale to [0, 1], normalize (PIL/NumPy backend)."""

import numpy as np
from transformers.image_processing_backends import PilBackend
from transformers.image_utils import ImageInput, PILImageResampling
from transformers.processing_utils import ImagesKwargs, Unpack


class SoraImageProcessor(PilBackend):
    r"""
    Turns images into the `pixel_values` of Sora's vision tower: `(batch, 3, 64, 64)` floats by default.

    PIL images of any mode are converted to RGB. NumPy arrays and torch tensors are not guessed at: they must
    already hold 3 channels (channels first or last), otherwise a `ValueError` says how to convert them.
    Then: resize to `size` (bilinear), rescale by 1/255 and normalize with mean = std = 0.5 (values in [-1, 1]).

    Example:

    ```python
    >>> from PIL import Image
    >>> from sora_hf import SoraImageProcessor
    >>> SoraImageProcessor()(Image.new("RGB", (100, 80)), return_tensors="pt")["pixel_values"].shape
    torch.Size([1, 3, 64, 64])
    ```
    """

    model_input_names = ["pixel_values"]
    resample = PILImageResampling.BILINEAR
    image_mean = [0.5, 0.5, 0.5]
    image_std = [0.5, 0.5, 0.5]
    size = {"height": 64, "width": 64}
    do_resize = True
    do_rescale = True
    do_normalize = True
    do_convert_rgb = True

    def __init__(self, **kwargs: Unpack[ImagesKwargs]):
        super().__init__(**kwargs)

    def process_image(self, image: ImageInput, do_convert_rgb: bool | None = None, **kwargs) -> np.ndarray:
        """One image as a channels-first array; raise `ValueError` for arrays that are not 3-channel."""
        if not hasattr(image, "convert"):  # a NumPy array or a torch tensor, not a PIL image
            shape = tuple(image.shape)
            if len(shape) != 3 or (shape[0] != 3 and shape[-1] != 3):
                raise ValueError(
                    f"An image of shape {shape} has the wrong number of channels: SoraImageProcessor expects 3 "
                    "(RGB), channels first (3, H, W) or last (H, W, 3). Pass a PIL image (any mode is converted "
                    "to RGB), or convert the array, e.g. `np.repeat(gray[..., None], 3, axis=-1)` for grayscale "
                    "or `rgba[..., :3]` for RGBA."
                )
            do_convert_rgb = False  # already RGB; PIL's conversion only applies to PIL images
        return super().process_image(image, do_convert_rgb=do_convert_rgb, **kwargs)


__all__ = ["SoraImageProcessor"]
