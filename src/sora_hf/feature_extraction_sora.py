# Copyright 2026 The sora_hf authors. Licensed under the Apache License, Version 2.0.
"""Feature extractor for Sora's audio tower: 16 kHz mono audio -> normalized log-mel frames, padded, with a mask."""

import math
import numbers
from typing import Any

import numpy as np
from transformers.audio_utils import mel_filter_bank
from transformers.feature_extraction_sequence_utils import SequenceFeatureExtractor
from transformers.feature_extraction_utils import BatchFeature
from transformers.utils import PaddingStrategy, TensorType, is_torch_tensor, logging

from .packaged import PackagedNameMixin

logger = logging.get_logger(__name__)

# A 2-D array with at most this many columns (and more rows) is one clip with its channels last (7.1 surround: 8).
MAX_CHANNELS = 8
MONO_FIX = "SoraFeatureExtractor takes mono audio: average the channels first"


def resample_audio(waveform: np.ndarray, orig_rate: int, target_rate: int) -> np.ndarray:
    """Polyphase resampling (scipy.signal.resample_poly, with its anti-aliasing filter) from `orig_rate`."""
    try:
        from scipy.signal import resample_poly
    except ImportError as error:
        raise ValueError(
            f"Audio at {orig_rate} Hz must be resampled to {target_rate} Hz, which needs scipy "
            f"(pip install scipy); or resample it yourself and pass sampling_rate={target_rate}."
        ) from error
    divisor = math.gcd(orig_rate, target_rate)
    return resample_poly(waveform, target_rate // divisor, orig_rate // divisor).astype(np.float32)


class SoraFeatureExtractor(PackagedNameMixin, SequenceFeatureExtractor):
    r"""
    Turns mono audio into the `input_features` (`(batch, feature_size, frames)`) and `feature_attention_mask`
    (`(batch, frames)`) of Sora's audio tower.

    Log-mel spectrogram: 25 ms Hann windows (`n_fft=400`) every 10 ms (`hop_length=160`) at 16 kHz, `feature_size`
    mel bands from 20 Hz to 8 kHz, natural log; then (`do_normalize`) each utterance is standardized per mel band
    over its own frames, which removes most of the loudness and channel differences between speakers.

    Sampling rate: audio at another rate is resampled to `sampling_rate` with scipy's polyphase filter when
    `do_resample=True` (the default), and refused with a `ValueError` when `do_resample=False`. Without a
    `sampling_rate` argument the audio is assumed to be at `sampling_rate` already (a warning says so).

    Input rules:
    - one clip is a 1-D waveform; a batch is a list of them, or a 2-D array with one clip per row (as in
      `WhisperFeatureExtractor`). A `(1, n)` or `(n, 1)` array is one mono clip.
    - multichannel audio raises `ValueError` asking for mono (average the channels): a clip of 2-D shape in a list,
      a `(n, c)` array with `c <= 8` channels last (as soundfile reads), and a `(2, n)` array, which could be
      stereo channels first (as torchaudio loads) or two clips (pass `list(array)` for those).
    - NumPy/torch integer arrays are PCM and are scaled to [-1, 1]: signed by `2**(bits - 1)` (int16 / 32768),
      unsigned (8-bit WAV) centred on `2**(bits - 1)` first. Python lists and float arrays are used as they are.
    - empty clips, NaN or infinite samples, and bool or complex arrays raise `ValueError` naming the clip.

    The mask is named `feature_attention_mask` (not `attention_mask`), so it does not collide with the text mask
    when `SoraProcessor` returns both.

    Example:

    ```python
    >>> import numpy as np
    >>> from sora_hf import SoraFeatureExtractor
    >>> extractor = SoraFeatureExtractor()
    >>> batch = extractor([np.zeros(16000), np.zeros(8000)], sampling_rate=16000, return_tensors="pt")
    >>> batch["input_features"].shape, batch["feature_attention_mask"].sum(-1).tolist()
    (torch.Size([2, 64, 101]), [101, 51])
    ```
    """

    model_input_names = ["input_features", "feature_attention_mask"]

    def __init__(
        self,
        feature_size: int = 64,
        sampling_rate: int = 16000,
        hop_length: int = 160,
        n_fft: int = 400,
        padding_value: float = 0.0,
        do_normalize: bool = True,
        do_resample: bool = True,
        return_attention_mask: bool = True,
        **kwargs: Any,
    ):
        super().__init__(
            feature_size=feature_size,
            sampling_rate=sampling_rate,
            padding_value=padding_value,
            return_attention_mask=return_attention_mask,
            **kwargs,
        )
        self.hop_length = hop_length
        self.n_fft = n_fft
        self.do_normalize = do_normalize
        self.do_resample = do_resample
        self.mel_filters = mel_filter_bank(
            num_frequency_bins=n_fft // 2 + 1,
            num_mel_filters=feature_size,
            min_frequency=20.0,
            max_frequency=sampling_rate / 2,
            sampling_rate=sampling_rate,
            norm="slaney",
            mel_scale="slaney",
        ).astype(np.float32)
        self.window = np.hanning(n_fft + 1)[:-1].astype(np.float32)

    def to_dict(self) -> dict[str, Any]:
        """The serializable settings (the mel filters and window are rebuilt from them)."""
        output = super().to_dict()
        output.pop("mel_filters", None)
        output.pop("window", None)
        return output

    def log_mel(self, waveform: np.ndarray) -> np.ndarray:
        """`(frames, feature_size)` log-mel energies of one waveform (centered frames, zero-padded edges)."""
        half = self.n_fft // 2
        padded = np.pad(waveform, (half, half))
        num_frames = 1 + (len(padded) - self.n_fft) // self.hop_length
        frames = np.lib.stride_tricks.sliding_window_view(padded, self.n_fft)[:: self.hop_length][:num_frames]
        power = np.abs(np.fft.rfft(frames * self.window, axis=-1)) ** 2
        mel = power.astype(np.float32) @ self.mel_filters
        features = np.log(np.maximum(mel, 1e-10))
        if self.do_normalize:
            features = (features - features.mean(0)) / (features.std(0) + 1e-5)
        return features.astype(np.float32)

    def _clips(self, raw_speech: Any) -> list:
        """The clips of `raw_speech`: one waveform, a list of them, or a 2-D array (one clip per row)."""
        if is_torch_tensor(raw_speech):
            raw_speech = raw_speech.detach().cpu().numpy()
        if isinstance(raw_speech, np.ndarray) and raw_speech.ndim >= 2:
            shape = raw_speech.shape
            if raw_speech.ndim > 2:
                raise ValueError(
                    f"Audio of shape {shape} has {raw_speech.ndim} dimensions; pass one 1-D waveform, a list of them, "
                    "or a 2-D array with one clip per row."
                )
            rows, columns = shape
            if raw_speech.size == 0:
                raise ValueError(f"Audio of shape {shape} is empty; pass at least one sample per example.")
            if rows == 1 or columns == 1:
                return [raw_speech.reshape(-1)]
            if columns <= MAX_CHANNELS and rows > columns:
                raise ValueError(
                    f"Audio of shape {shape} looks like one clip with {columns} channels last (as soundfile reads "
                    f"it). {MONO_FIX}: `audio.mean(axis=1)`. For a batch, pass a list of 1-D clips."
                )
            if rows == 2:
                raise ValueError(
                    f"Audio of shape {shape} is ambiguous: stereo with channels first (as torchaudio loads it) or "
                    f"two clips. {MONO_FIX} (`audio.mean(axis=0)`), or pass two clips as a list (`list(audio)`)."
                )
            return list(raw_speech)
        if isinstance(raw_speech, (list, tuple)) and len(raw_speech) > 0 and not np.isscalar(raw_speech[0]):
            return list(raw_speech)
        return [raw_speech]

    def _waveform(self, audio: Any, index: int, sampling_rate: int) -> np.ndarray:
        if is_torch_tensor(audio):
            audio = audio.detach().cpu().numpy()
        # Python lists carry no sample format: they are float samples. Arrays say theirs in their dtype.
        waveform = (
            np.asarray(audio, dtype=np.float32) if isinstance(audio, (list, tuple)) else np.asarray(audio)
        )
        if waveform.ndim == 2 and 1 in waveform.shape:
            waveform = waveform.reshape(-1)
        if waveform.ndim == 2:
            raise ValueError(
                f"Audio {index} has shape {waveform.shape}, {min(waveform.shape)} channels: {MONO_FIX}, "
                f"e.g. `audio.mean(axis={int(np.argmin(waveform.shape))})`."
            )
        if waveform.ndim != 1:
            raise ValueError(
                f"Audio {index} has shape {waveform.shape}; pass one 1-D array of samples per example."
            )
        if waveform.size == 0:
            raise ValueError(f"Audio {index} is empty (0 samples); pass at least one sample per example.")
        if waveform.dtype.kind in "iu":
            half_range = 2.0 ** (8 * waveform.dtype.itemsize - 1)
            offset = half_range if waveform.dtype.kind == "u" else 0.0
            waveform = ((waveform.astype(np.float64) - offset) / half_range).astype(np.float32)
        elif waveform.dtype.kind == "f":
            with np.errstate(over="ignore"):  # float64 beyond float32's range becomes inf, refused below
                waveform = waveform.astype(np.float32)
        else:
            raise ValueError(
                f"Audio {index} has dtype {waveform.dtype}; pass float samples in [-1, 1] or integer PCM samples."
            )
        if not np.isfinite(waveform).all():
            bad = np.flatnonzero(~np.isfinite(waveform))
            raise ValueError(
                f"Audio {index} has {bad.size} NaN or infinite samples (or beyond float32's 3.4e38), the first "
                f"at sample {bad[0]}; they would make every feature NaN. Repair or drop the clip, e.g. "
                "`np.nan_to_num(audio)`."
            )
        if sampling_rate != self.sampling_rate:
            if not self.do_resample:
                raise ValueError(
                    f"Audio {index} is at {sampling_rate} Hz but this feature extractor takes {self.sampling_rate} "
                    f"Hz and do_resample=False; resample it, or use SoraFeatureExtractor(do_resample=True)."
                )
            waveform = resample_audio(waveform, sampling_rate, self.sampling_rate)
        return waveform

    def _features(self, waveform: np.ndarray, index: int) -> np.ndarray:
        with np.errstate(over="ignore", invalid="ignore"):  # overflow is reported below, naming the clip
            features = self.log_mel(waveform)
        if not np.isfinite(features).all():
            peak = float(np.abs(waveform).max())
            raise ValueError(
                f"Audio {index} peaks at {peak:.3g}, too loud for float32 log-mel features; pass float samples in "
                "[-1, 1] (divide integer-scaled floats by 32768)."
            )
        return features

    def __call__(
        self,
        raw_speech: np.ndarray | list[float] | list[np.ndarray] | list[list[float]],
        sampling_rate: int | None = None,
        padding: bool | str | PaddingStrategy = "longest",
        max_length: int | None = None,
        truncation: bool = False,
        pad_to_multiple_of: int | None = None,
        return_attention_mask: bool | None = None,
        return_tensors: str | TensorType | None = None,
        **kwargs: Any,
    ) -> BatchFeature:
        """Featurize one waveform or a batch; `max_length` counts frames (100 per second), for padding/truncation."""
        if sampling_rate is None:
            logger.warning_once(
                f"No sampling_rate given to {type(self).__name__}: assuming {self.sampling_rate} Hz. Pass "
                "sampling_rate=... so audio at another rate is resampled instead of misread."
            )
            sampling_rate = self.sampling_rate
        if (
            not isinstance(sampling_rate, numbers.Integral)
            or isinstance(sampling_rate, bool)
            or sampling_rate <= 0
        ):
            raise ValueError(f"sampling_rate must be a positive integer (Hz), got {sampling_rate!r}.")
        sampling_rate = int(sampling_rate)
        if isinstance(raw_speech, (list, tuple)) and not raw_speech:
            raise ValueError("No audio given: pass a 1-D waveform or a list of them.")
        batch = self._clips(raw_speech)
        features = [
            self._features(self._waveform(audio, i, sampling_rate), i) for i, audio in enumerate(batch)
        ]
        padded = self.pad(
            BatchFeature({"input_features": features}),
            padding=padding,
            max_length=max_length,
            truncation=truncation,
            pad_to_multiple_of=pad_to_multiple_of,
            return_attention_mask=return_attention_mask,
        )
        output = {"input_features": [np.asarray(f, dtype=np.float32).T for f in padded["input_features"]]}
        if "attention_mask" in padded:
            output["feature_attention_mask"] = [
                np.asarray(m, dtype=np.int64) for m in padded["attention_mask"]
            ]
        return BatchFeature(output, tensor_type=return_tensors)


__all__ = ["SoraFeatureExtractor"]
