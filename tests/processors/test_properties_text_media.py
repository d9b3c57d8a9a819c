"""Property-based tests (hypothesis) for the tokenizer, the feature extractor and the image processor (issue 23).

Each property says what every input gets: the right output, or a `ValueError`; never another exception. The
example counts are bounded (about 10 s in all on one core) and derandomized, so a run is reproducible; set
SORA_PROPERTY_SCALE=20 to draw 20 times as many fresh random examples when hunting for bugs.
"""

import os
import unicodedata

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from PIL import Image

from sora_hf import SoraFeatureExtractor, SoraImageProcessor

SCALE = float(os.environ.get("SORA_PROPERTY_SCALE", "1"))


def bounded(examples: int) -> settings:
    return settings(
        max_examples=max(1, int(examples * SCALE)),
        deadline=None,
        derandomize=SCALE == 1,
        database=None,  # no .hypothesis/ folder in the checkout
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
    )


# ---- tokenizer ---------------------------------------------------------------------------------------------------

# Pieces that stress a byte-level BPE: every Unicode category (surrogates included), plus the hard cases named.
PIECES = st.one_of(
    st.characters(exclude_categories=()),  # any code point, lone surrogates (Cs) and controls (Cc) included
    st.sampled_from(
        [
            " ", "  ", "\t", "\n", "\r\n", "\x00", "\x7f", "\u200b", "\u200d", "\u00a0", "\ufeff", "\u2028",
            "😊", "👩‍👩‍👧", "🇯🇵", "❤️", "\U0001f3fb",  # emoji: ZWJ sequence, flag, variation selector, modifier
            "עברית", "العربية", "\u200f", "\u202e", "\u2067",  # RTL text and direction marks
            "e\u0301", "\u0308", "ﬁ", "Ⅻ", "½", "ǅ",  # combining marks, compatibility characters
            "<s>", "</s>", "<mask>", "<pad>", "<unk>",  # the special tokens' strings, in user text
            "\ud800", "\udfff", "\ud83d\ude00",  # a lone high and low surrogate, and a UTF-16 pair
            "the cat", " sat", ".", " ,",
        ]
    ),
)  # fmt: skip
TEXT = st.lists(PIECES, max_size=12).map("".join)


def first_surrogate(text: str) -> int | None:
    return next((i for i, char in enumerate(text) if unicodedata.category(char) == "Cs"), None)


@bounded(300)
@given(text=TEXT)
def test_any_text_round_trips_exactly_or_names_its_surrogate(tiny_tokenizer, text):
    position = first_surrogate(text)
    if position is not None:
        with pytest.raises(ValueError, match=f"lone surrogate .* at character {position}:"):
            tiny_tokenizer(text)
        return
    encoding = tiny_tokenizer(text, split_special_tokens=True, return_offsets_mapping=True)
    ids = encoding["input_ids"]
    assert ids[0] == tiny_tokenizer.cls_token_id and ids[-1] == tiny_tokenizer.sep_token_id
    assert tiny_tokenizer.unk_token_id not in ids
    assert tiny_tokenizer.decode(ids, skip_special_tokens=True) == text
    assert all(0 <= start <= end <= len(text) for start, end in encoding["offset_mapping"])
    body = tiny_tokenizer.encode(text, add_special_tokens=False, split_special_tokens=True)
    assert tiny_tokenizer.decode(body) == text


@bounded(100)
@given(texts=st.lists(TEXT, max_size=4), pair=st.booleans())
def test_any_batch_encodes_and_decodes_or_names_the_text(tiny_tokenizer, texts, pair):
    pairs = texts[::-1] if pair else None
    bad = [(f"text[{i}]", p) for i, t in enumerate(texts) if (p := first_surrogate(t)) is not None]
    if pair:
        bad += [(f"text_pair[{i}]", p) for i, t in enumerate(pairs) if (p := first_surrogate(t)) is not None]
    if bad:
        with pytest.raises(ValueError, match="lone surrogate"):
            tiny_tokenizer(texts, pairs, split_special_tokens=True, padding=True, return_tensors="pt")
        return
    batch = tiny_tokenizer(texts, pairs, split_special_tokens=True, padding=True, return_tensors="pt")
    assert batch["input_ids"].shape[0] == len(texts) == batch["attention_mask"].shape[0]
    if not pair:
        assert tiny_tokenizer.batch_decode(batch["input_ids"], skip_special_tokens=True) == texts


@bounded(150)
@given(ids=st.lists(st.integers(min_value=-(2**70), max_value=2**70) | st.integers(0, 400), max_size=8))
def test_decoding_any_ids_gives_text_or_names_the_bad_id(tiny_tokenizer, ids):
    size = len(tiny_tokenizer)
    bad = [index for index in ids if not 0 <= index < size]
    if bad:
        with pytest.raises(ValueError, match=f"Cannot decode token id {bad[0]}: .* has {size} tokens"):
            tiny_tokenizer.decode(ids)
    else:
        assert isinstance(tiny_tokenizer.decode(ids), str)


# ---- images ------------------------------------------------------------------------------------------------------

IMAGE_DTYPES = ["uint8", "uint16", "int16", "int64", "float16", "float32", "float64", "bool"]
VALUE_RANGES = ["unit", "byte", "wide", "negative", "nonfinite"]


def spatial_size(shape: tuple[int, ...]) -> tuple[int, int] | None:
    """(height, width) by the processor's rule (3 channels first, else last), or None when no axis holds 3."""
    if len(shape) != 3:
        return None
    if shape[0] == 3:
        return shape[1], shape[2]
    if shape[-1] == 3:
        return shape[0], shape[1]
    return None


@st.composite
def array_images(draw) -> tuple[np.ndarray, bool]:
    """(image, valid): an array of some layout, dtype and value range; valid when the processor must take it."""
    height, width = draw(st.integers(0, 40)), draw(st.integers(0, 40))
    channels = draw(st.sampled_from([3, 3, 3, 1, 4]))
    layout = draw(st.sampled_from(["first", "last"]))
    dtype = np.dtype(draw(st.sampled_from(IMAGE_DTYPES)))
    value_range = draw(st.sampled_from(VALUE_RANGES))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    shape = (channels, height, width) if layout == "first" else (height, width, channels)
    high = {"unit": 1.0, "byte": 255.0, "wide": 70000.0, "negative": 1.0, "nonfinite": 1.0}[value_range]
    values = rng.uniform(-1.0 if value_range == "negative" else 0.0, high, shape)
    if value_range == "nonfinite" and values.size:
        values.flat[rng.integers(values.size)] = rng.choice([np.nan, np.inf, -np.inf])
    if dtype.kind in "iu":
        info = np.iinfo(dtype)
        finite = np.nan_to_num(values, posinf=0.0, neginf=0.0)
        image = np.clip(finite, max(info.min, -70000), min(info.max, 70000)).astype(dtype)
    else:
        with np.errstate(over="ignore"):
            image = values.astype(dtype)
    # Valid: an axis of 3 channels, not empty, pixel values (0-255 integers, floats in [0, 1] or 0-255).
    size = spatial_size(shape)
    valid = (
        size is not None
        and min(size) > 0
        and dtype.kind in "iuf"
        and bool(np.isfinite(image).all())
        and image.min() >= 0
        and image.max() <= 255
    )
    return image, valid


@st.composite
def pil_images(draw) -> tuple[Image.Image, bool]:
    mode = draw(st.sampled_from(["RGB", "RGBA", "L", "1", "P", "I", "F", "CMYK"]))
    size = (draw(st.integers(0, 40)), draw(st.integers(0, 40)))
    return Image.new(mode, size, color=draw(st.integers(0, 255))), min(size) > 0


@bounded(150)
@given(images=st.lists(st.one_of(array_images(), pil_images()), min_size=1, max_size=3))
def test_any_images_give_unit_range_pixels_or_a_value_error(images):
    processor = SoraImageProcessor()
    batch = [image for image, _ in images]
    if all(valid for _, valid in images):
        pixel_values = processor(batch, return_tensors="np")["pixel_values"]
        assert pixel_values.shape == (len(batch), 3, 64, 64) and pixel_values.dtype == np.float32
        assert np.isfinite(pixel_values).all()
        assert pixel_values.min() >= -1 - 1e-6 and pixel_values.max() <= 1 + 1e-6
    else:
        with pytest.raises(ValueError):
            processor(batch, return_tensors="np")


@bounded(40)
@given(
    height=st.integers(1, 40),
    width=st.integers(1, 40),
    dtype=st.sampled_from(["uint8", "float32"]),
    seed=st.integers(0, 2**32 - 1),
)
def test_channels_first_and_last_give_the_same_pixels(height, width, dtype, seed):
    assume(height != 3)  # (3, W, 3) is read as channels first
    rng = np.random.default_rng(seed)
    last = rng.integers(0, 256, (height, width, 3)).astype(dtype)
    processor = SoraImageProcessor()
    np.testing.assert_array_equal(
        processor(last, return_tensors="np")["pixel_values"],
        processor(np.moveaxis(last, -1, 0), return_tensors="np")["pixel_values"],
    )


# ---- audio -------------------------------------------------------------------------------------------------------

AUDIO_DTYPES = ["float32", "float64", "float16", "int16", "int32", "int8", "uint8", "bool", "complex64"]
RATES = [8000, 16000, 22050, 44100]


def clip_array(rng: np.random.Generator, shape: tuple[int, ...], dtype: np.dtype, broken: str) -> np.ndarray:
    values = rng.uniform(-1, 1, shape)
    if broken == "nonfinite" and values.size:
        values.flat[rng.integers(values.size)] = rng.choice([np.nan, np.inf, -np.inf])
    if broken == "loud":
        values *= 1e30
    with np.errstate(over="ignore"):
        if dtype.kind in "iu":
            info = np.iinfo(dtype)
            return np.clip(np.nan_to_num(values) * info.max, info.min, info.max).astype(dtype)
        return values.astype(dtype)


def clips_in(shape: tuple[int, ...]) -> int | None:
    """How many clips an array of `shape` holds by the documented rule, or None for a ValueError."""
    if len(shape) == 1:
        return 1 if shape[0] > 0 else None
    if len(shape) != 2 or 0 in shape:
        return None
    rows, columns = shape
    if rows == 1 or columns == 1:
        return 1
    if columns <= 8 and rows > columns:  # channels last
        return None
    if rows == 2:  # stereo channels first, or two clips: ambiguous
        return None
    return rows


@st.composite
def audio_inputs(draw):
    """(audio, clips): an array or a list of clips, and the number of clips it means (None: a ValueError)."""
    dtype = np.dtype(draw(st.sampled_from(AUDIO_DTYPES)))
    broken = draw(st.sampled_from(["no", "no", "no", "nonfinite", "loud"]))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    # Integers are clipped to their range (finite, at most full scale); floats keep NaN, inf and 1e30.
    usable = dtype.kind in "iu" or (dtype.kind == "f" and broken == "no")
    if draw(st.booleans()):
        lengths = draw(st.lists(st.integers(0, 3000), min_size=1, max_size=3))
        clips = [clip_array(rng, (n,), dtype, broken) for n in lengths]
        return clips, len(clips) if usable and min(lengths) > 0 else None
    shape = draw(
        st.sampled_from(["n", "rows", "1n", "n1", "2n", "n2", "3d"]).flatmap(
            lambda form: st.integers(0, 3000).map(
                lambda n: {
                    "n": (n,),
                    "rows": (3 + n % 2, n // 2),
                    "1n": (1, n),
                    "n1": (n, 1),
                    "2n": (2, n),
                    "n2": (n, 2),
                    "3d": (2, 2, n),
                }[form]
            )
        )
    )
    clips = clips_in(shape)
    return clip_array(rng, shape, dtype, broken), clips if usable else None


@bounded(150)
@given(audio=audio_inputs(), rate=st.sampled_from(RATES))
def test_any_audio_gives_finite_features_or_a_value_error(audio, rate):
    audio, clips = audio
    extractor = SoraFeatureExtractor()
    if clips is None:
        with pytest.raises(ValueError):
            extractor(audio, sampling_rate=rate, return_tensors="np")
        return
    batch = extractor(audio, sampling_rate=rate, return_tensors="np")
    features, mask = batch["input_features"], batch["feature_attention_mask"]
    assert features.shape[:2] == (clips, 64) and features.dtype == np.float32
    assert mask.shape == (clips, features.shape[2]) and (mask.sum(-1) >= 1).all()
    assert np.isfinite(features).all()
