# Copyright 2026 The sora_hf authors. Licensed under the Apache License, Version 2.0.
"""`SoraProcessor`: one callable that prepares text, images and audio for a multimodal Sora model."""

from typing import Any

from transformers import AutoTokenizer
from transformers.feature_extraction_utils import BatchFeature
from transformers.processing_utils import ProcessorMixin
from transformers.utils import FEATURE_EXTRACTOR_NAME, PROCESSOR_NAME, cached_file

from .packaged import resolve_pretrained_name


class SoraProcessor(ProcessorMixin):
    r"""
    Wraps a `SoraImageProcessor`, a `SoraFeatureExtractor` and a `SoraTokenizer` (saved together, loaded with
    `AutoProcessor`). Calling it with any of `text`, `images` and `audio` returns the inputs every Sora head takes:
    `input_ids` and `attention_mask` (text), `pixel_values` (images), `input_features` and
    `feature_attention_mask` (audio). Give one image and/or one audio clip per text.

    Example:

    ```python
    >>> processor = SoraProcessor(SoraImageProcessor(), SoraFeatureExtractor(), SoraTokenizer.from_pretrained("sora"))
    >>> batch = processor(text=["what color is the shape?"], images=[image], return_tensors="pt")
    >>> model(**batch).logits
    ```
    """

    def __init__(self, image_processor=None, feature_extractor=None, tokenizer=None, **kwargs):
        super().__init__(image_processor, feature_extractor, tokenizer, **kwargs)

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path, **kwargs):
        """Load a saved processor; a text-only Sora folder (no processor or preprocessor config) gives its
        tokenizer, as `AutoProcessor` does for text-only models (sentence-transformers loads Sora this way)."""
        path = resolve_pretrained_name(pretrained_model_name_or_path)
        lookup = {
            key: kwargs[key]
            for key in ("cache_dir", "token", "revision", "subfolder", "local_files_only")
            if key in kwargs
        }
        has_processor_files = any(
            cached_file(
                path,
                name,
                **lookup,
                _raise_exceptions_for_missing_entries=False,
                _raise_exceptions_for_connection_errors=False,
            )
            for name in (PROCESSOR_NAME, FEATURE_EXTRACTOR_NAME)
        )
        if not has_processor_files:
            return AutoTokenizer.from_pretrained(path, **kwargs)
        return super().from_pretrained(path, **kwargs)

    def __call__(
        self,
        text: str | list[str] | None = None,
        images: Any = None,
        audio: Any = None,
        sampling_rate: int | None = None,
        return_tensors: str | None = None,
        text_kwargs: dict[str, Any] | None = None,
        images_kwargs: dict[str, Any] | None = None,
        audio_kwargs: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> BatchFeature:
        """Tokenize `text`, process `images`, featurize `audio` (at `sampling_rate`); at least one of them.

        Extra keywords go to the tokenizer (`padding`, `truncation`, `max_length`, ...); `images_kwargs` and
        `audio_kwargs` reach the image processor and the feature extractor.
        """
        if text is None and images is None and audio is None:
            raise ValueError("SoraProcessor needs at least one of text, images or audio.")
        data: dict[str, Any] = {}
        sizes = {}
        if text is not None:
            text_inputs = self.tokenizer(text, **{**kwargs, **(text_kwargs or {})})
            data.update(text_inputs)
            sizes["text"] = 1 if isinstance(text, str) else len(text)
        if images is not None:
            pixel_values = self.image_processor(images, **(images_kwargs or {}))["pixel_values"]
            data["pixel_values"] = pixel_values
            sizes["images"] = len(pixel_values)
        if audio is not None:
            audio_inputs = self.feature_extractor(audio, sampling_rate=sampling_rate, **(audio_kwargs or {}))
            data.update(audio_inputs)
            sizes["audio"] = len(audio_inputs["input_features"])
        if len(set(sizes.values())) > 1:
            raise ValueError(
                f"SoraProcessor got batches of different sizes {sizes}: give one image and/or one audio clip per "
                "text (repeat an image for several questions about it)."
            )
        return BatchFeature(data, tensor_type=return_tensors)

    @property
    def model_input_names(self) -> list[str]:
        """The keys `__call__` can return, which the Sora models accept."""
        return list(
            dict.fromkeys(
                self.tokenizer.model_input_names
                + self.image_processor.model_input_names
                + self.feature_extractor.model_input_names
            )
        )


__all__ = ["SoraProcessor"]
