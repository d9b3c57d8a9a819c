# Copyright 2026 The sora_hf authors. Licensed under the Apache License, Version 2.0.
"""Image processor for Sora's vision tower: RGB, resize, rescale to [0, 1], normalize (PIL/NumPy backend)."""

import numpy as np
from transformers.feature_extraction_utils import BatchFeature
from transformers.image_processing_backends import PilBackend
from transformers.image_utils import ChannelDimension, ImageInput, PILImageResampling, SizeDict
from transformers.processing_utils import ImagesKwargs, Unpack
from transformers.utils import TensorType

from .packaged import PackagedNameMixin


class SoraImageProcessor(PackagedNameMixin, PilBackend):
    r"""
    Turns images into the `pixel_values` of Sora's vision tower: `(batch, 3, 64, 64)` floats by default.

    PIL images of any mode are converted to RGB. NumPy arrays and torch tensors are not guessed at: they must
    already hold 3 channels (channels first or last; `(3, H, 3)` is read as channels first), otherwise a
    `ValueError` says how to convert them.
    Then: resize to `size` (bilinear), rescale by 1/255 and normalize with mean = std = 0.5 (values in [-1, 1]).

    Pixel values, decided per image: integer images (and PIL images) hold 0-255 and are rescaled by
    `rescale_factor`. Float images whose values all lie in [0, 1] are taken as already rescaled (torchvision's
    convention) and are not rescaled again; float images with larger values are taken as 0-255 and rescaled.
    Values outside [0, 255], NaN or infinite values, bool or complex arrays, and empty images (a side of 0 pixels)
    raise `ValueError` naming the image's index. `do_rescale=False` turns rescaling off for every image.

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
            if kwargs.get("input_data_format") is None and shape[0] != shape[-1]:
                # The 3 says where the channels are; the library's guess takes a height of 1, 3 or 4 for channels.
                kwargs["input_data_format"] = (
                    ChannelDimension.FIRST if shape[0] == 3 else ChannelDimension.LAST
                )
        return super().process_image(image, do_convert_rgb=do_convert_rgb, **kwargs)

    def _check_pixels(self, image: np.ndarray, index: int) -> None:
        """Raise `ValueError` for an empty image or pixel values that no image format holds."""
        height, width = image.shape[-2:]
        if height == 0 or width == 0:
            raise ValueError(
                f"Image {index} is empty ({height}x{width} pixels, height x width): pass images of at least 1x1."
            )
        if image.dtype.kind not in "iuf":
            raise ValueError(
                f"Image {index} has dtype {image.dtype}; pass uint8 pixels (0-255) or floats in [0, 1], e.g. "
                "`mask.astype(np.uint8) * 255` for a bool mask."
            )
        low, high = image.min(), image.max()
        if not (np.isfinite(low) and np.isfinite(high)):
            raise ValueError(
                f"Image {index} has NaN or infinite pixel values: repair it, e.g. `np.nan_to_num(image)`."
            )
        if low < 0 or high > 255:
            raise ValueError(
                f"Image {index} has pixel values in [{low}, {high}]; SoraImageProcessor takes 0-255 (integers) or "
                "[0, 1] (floats). Undo any normalization, or convert 16-bit images to 8 bits "
                "(`(image // 257).astype(np.uint8)`)."
            )

    def _preprocess(
        self,
        images: list[np.ndarray],
        do_resize: bool,
        size: SizeDict,
        resample: PILImageResampling | None,
        do_center_crop: bool,
        crop_size: SizeDict,
        do_rescale: bool,
        rescale_factor: float,
        do_normalize: bool,
        image_mean: float | list[float] | None,
        image_std: float | list[float] | None,
        do_pad: bool | None,
        pad_size: SizeDict | None,
        return_tensors: str | TensorType | None,
        **kwargs,
    ) -> BatchFeature:
        """`PilBackend._preprocess`, with each image checked and rescaled only when its values are not in [0, 1]."""
        if not images:
            raise ValueError("No images given: pass an image or a list of images.")
        processed_images = []
        for index, image in enumerate(images):
            self._check_pixels(image, index)
            rescale_this = do_rescale
            if do_rescale and image.dtype.kind == "f":
                if (
                    image.max() > 1
                ):  # floats in 0-255: to [0, 1] before the resize, which reads floats as [0, 1]
                    image = self.rescale(image, rescale_factor)
                rescale_this = False
            if do_resize:
                image = self.resize(image=image, size=size, resample=resample)
            if do_center_crop:
                image = self.center_crop(image, crop_size)
            if rescale_this:
                image = self.rescale(image, rescale_factor)
            if do_normalize:
                image = self.normalize(image, image_mean, image_std)
            processed_images.append(image)

        if do_pad:
            processed_images = self.pad(processed_images, pad_size=pad_size)

        return BatchFeature(data={"pixel_values": processed_images}, tensor_type=return_tensors)


__all__ = ["SoraImageProcessor"]
