"""Bad inputs to the tokenizer, feature extractor, image processor and processor (issue 23): each one named.

Every test feeds exactly the input the issue lists and checks the behaviour it gets now: an error that names the
input, the value and the fix, or (where the meaning is clear and the libraries agree) the right result.
"""

import re

import numpy as np
import pytest
import torch
from conftest import TEXTS, save_tiny_sora
from PIL import Image
from transformers import AutoTokenizer, pipeline

from sora_hf import (
    SoraConfig,
    SoraFeatureExtractor,
    SoraImageProcessor,
    SoraProcessor,
    SoraTokenizer,
    train_sora_tokenizer,
)

RATE = 16000


def tone(seconds: float = 1.0, noise: float = 0.01) -> np.ndarray:
    """A 440 Hz tone with a little white noise, so that every mel band holds some energy."""
    rng = np.random.default_rng(0)
    t = np.arange(int(seconds * RATE)) / RATE
    return (0.5 * np.sin(2 * np.pi * 440 * t) + rng.normal(0, noise, t.size)).astype(np.float32)


def features(audio, **kwargs) -> np.ndarray:
    extractor = SoraFeatureExtractor(**kwargs)
    return extractor(audio, sampling_rate=RATE, return_tensors="np")["input_features"]


def pixels(images, **kwargs) -> np.ndarray:
    return SoraImageProcessor()(images, return_tensors="np", **kwargs)["pixel_values"]


# ---- tokenizer: loading ----------------------------------------------------------------------------------------


def test_loading_a_model_folder_without_tokenizer_files_raises(tmp_path):
    SoraConfig(vocab_size=300).save_pretrained(tmp_path)  # a model folder, but no tokenizer saved in it
    for load in (SoraTokenizer.from_pretrained, AutoTokenizer.from_pretrained, SoraProcessor.from_pretrained):
        with pytest.raises(ValueError, match="No tokenizer files in") as error:
            load(tmp_path)
        assert str(tmp_path) in str(error.value) and "tokenizer.json" in str(error.value)
        assert "save_pretrained" in str(error.value)


def test_loading_an_empty_folder_or_one_with_only_the_tokenizer_config_raises(tiny_tokenizer, tmp_path):
    with pytest.raises(ValueError, match="No tokenizer files in"):
        SoraTokenizer.from_pretrained(tmp_path)
    tiny_tokenizer.save_pretrained(tmp_path)
    (tmp_path / "tokenizer.json").unlink()
    with pytest.raises(ValueError, match="No tokenizer files in"):
        SoraTokenizer.from_pretrained(tmp_path)


def test_a_pipeline_on_a_checkpoint_without_its_tokenizer_does_not_start(tmp_path):
    folder = save_tiny_sora(tmp_path / "tiny", TEXTS, vocab_size=300)
    assert pipeline("fill-mask", model=folder)("the cat <mask> on the mat")  # with its tokenizer: answers
    for name in ("tokenizer.json", "tokenizer_config.json"):
        (tmp_path / "tiny" / name).unlink()
    with pytest.raises(ValueError, match="No tokenizer files in"):
        pipeline("fill-mask", model=folder)


def test_the_byte_only_tokenizer_is_still_built_in_code(tiny_tokenizer, tmp_path):
    assert len(SoraTokenizer()) == 5 + 256
    tiny_tokenizer.save_pretrained(tmp_path)
    assert SoraTokenizer.from_pretrained(tmp_path).get_vocab() == tiny_tokenizer.get_vocab()


# ---- tokenizer: encoding ---------------------------------------------------------------------------------------


def test_a_lone_surrogate_is_named_with_its_position_and_the_fix(tiny_tokenizer):
    with pytest.raises(
        ValueError, match=re.escape(r"text has a lone surrogate '\ud800' (U+D800) at character 2")
    ):
        tiny_tokenizer("ab\ud800c")
    with pytest.raises(ValueError, match=re.escape("text[1] has a lone surrogate")) as error:
        tiny_tokenizer(["fine", "x\udfffy"])
    assert "errors='replace'" not in str(error.value) and "'replace'" in str(error.value)
    with pytest.raises(ValueError, match="text_pair has a lone surrogate"):
        tiny_tokenizer("fine", "\udc00")
    with pytest.raises(ValueError, match="lone surrogate"):
        tiny_tokenizer.tokenize("\ud83d")
    with pytest.raises(ValueError, match="lone surrogate"):
        tiny_tokenizer.encode("\ud83d")


def test_the_surrogate_fixes_in_the_message_work(tiny_tokenizer):
    escaped_emoji = "smile \ud83d\ude00"  # a UTF-16 surrogate pair, as JSON escapes give it
    joined = escaped_emoji.encode("utf-16", "surrogatepass").decode("utf-16")
    assert joined == "smile 😀"
    assert tiny_tokenizer.decode(tiny_tokenizer(joined)["input_ids"], skip_special_tokens=True) == joined
    replaced = "ab\ud800c".encode("utf-8", "replace").decode("utf-8")
    assert tiny_tokenizer.decode(tiny_tokenizer(replaced)["input_ids"], skip_special_tokens=True) == "ab?c"


def test_training_on_a_text_with_a_lone_surrogate_raises():
    with pytest.raises(ValueError, match=re.escape(r"lone surrogate '\ud800' (U+D800) at character 4")):
        train_sora_tokenizer(["hello world", "bad \ud800 text"] * 5, vocab_size=300)


def test_an_empty_batch_gives_an_empty_batch(tiny_tokenizer):
    batch = tiny_tokenizer([])
    assert dict(batch) == {"input_ids": [], "token_type_ids": [], "attention_mask": []}
    assert batch.encodings == []
    tensors = tiny_tokenizer([], padding=True, return_tensors="pt")
    assert set(tensors) == {"input_ids", "token_type_ids", "attention_mask"}
    assert all(value.shape[0] == 0 and value.dtype == torch.long for value in tensors.values())
    padded = tiny_tokenizer([], padding="max_length", max_length=8, return_tensors="np")
    assert padded["input_ids"].shape == (0, 8)
    assert dict(tiny_tokenizer([], text_target=[])) == {
        "input_ids": [],
        "token_type_ids": [],
        "attention_mask": [],
        "labels": [],
    }
    assert dict(tiny_tokenizer([], [])) == dict(batch)
    with pytest.raises(ValueError, match="batch length"):
        tiny_tokenizer([], ["a pair without a first text"])


def test_the_processor_passes_an_empty_text_batch_through(tiny_tokenizer):
    processor = SoraProcessor(SoraImageProcessor(), SoraFeatureExtractor(), tiny_tokenizer)
    assert processor(text=[], return_tensors="pt")["input_ids"].shape[0] == 0


# ---- tokenizer: decoding ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("bad", [-1, 300, 10**6])
def test_decoding_an_id_outside_the_vocabulary_names_it_and_the_size(tiny_tokenizer, bad):
    size = len(tiny_tokenizer)
    message = re.escape(
        f"Cannot decode token id {bad}: the tokenizer's vocabulary has {size} tokens (ids 0 to {size - 1})"
    )
    assert bad < 0 or bad >= size
    with pytest.raises(ValueError, match=message):
        tiny_tokenizer.decode([1, 5, bad, 2])
    with pytest.raises(ValueError, match=message):
        tiny_tokenizer.decode(torch.tensor([bad]))
    with pytest.raises(ValueError, match=message):
        tiny_tokenizer.batch_decode([[5, 6], [bad]])
    with pytest.raises(ValueError, match=message):
        tiny_tokenizer.decode(bad)


def test_decoding_every_id_in_the_vocabulary_still_works(tiny_tokenizer):
    ids = list(range(len(tiny_tokenizer)))
    assert len(tiny_tokenizer.decode(ids)) > 0
    assert tiny_tokenizer.decode([]) == ""
    assert (
        tiny_tokenizer.decode(tiny_tokenizer("the cat")["input_ids"], skip_special_tokens=True) == "the cat"
    )


# ---- train_sora_tokenizer: file names ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "names", [["typo.txt"], ["data/train"], ["corpus.jsonl", "more.txt"], ["wiki.train.raw"], ["notes.MD"]]
)
def test_a_missing_file_name_is_not_trained_on_as_text(names, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # relative names resolve in an empty folder
    with pytest.raises(ValueError, match=re.escape(f"these do not exist: {names}")):
        train_sora_tokenizer(names, vocab_size=300)


def test_lists_of_texts_still_train(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    # Whitespace, or no separator and no text-file suffix: texts, even when one item looks like a file name.
    for texts in (
        ["see notes.txt for details", "typo.txt"] * 20,
        ["hello", "world", "e.g.", "U.S.", "3.14"] * 20,
    ):
        tokenizer = train_sora_tokenizer(texts, vocab_size=300, min_frequency=1)
        assert len(tokenizer) > 261
    # A generator skips the file-name check: a corpus of file names is texts.
    assert (
        len(train_sora_tokenizer(iter(["typo.txt", "data/x.txt"] * 20), vocab_size=300, min_frequency=1))
        > 261
    )


def test_existing_file_names_still_train(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "corpus.txt").write_text("\n".join(TEXTS), encoding="utf-8")
    assert train_sora_tokenizer(["corpus.txt"], vocab_size=300).tokenize(" the cat") == ["Ġthe", "Ġcat"]


# ---- audio -------------------------------------------------------------------------------------------------------


def test_stereo_channels_first_is_refused_as_ambiguous():
    stereo = np.stack([tone(), tone()])  # (2, 16000): torchaudio's layout, or two clips
    for audio in (stereo, torch.from_numpy(stereo)):
        with pytest.raises(ValueError, match=re.escape("Audio of shape (2, 16000) is ambiguous")) as error:
            features(audio)
        assert "audio.mean(axis=0)" in str(error.value) and "list(audio)" in str(error.value)
    assert features(stereo.mean(axis=0)).shape == (1, 64, 101)
    assert features(list(stereo)).shape == (2, 64, 101)


def test_stereo_channels_last_is_refused():
    stereo = np.stack([tone(), tone()], axis=1)  # (16000, 2): soundfile's layout
    with pytest.raises(
        ValueError, match=re.escape("(16000, 2) looks like one clip with 2 channels last")
    ) as error:
        features(stereo)
    assert "audio.mean(axis=1)" in str(error.value)
    with pytest.raises(ValueError, match=re.escape("Audio 1 has shape (16000, 2), 2 channels")) as error:
        features([tone(), stereo])
    assert "audio.mean(axis=1)" in str(error.value)
    with pytest.raises(ValueError, match=re.escape("Audio 0 has shape (2, 16000), 2 channels")) as error:
        features([stereo.T])
    assert "audio.mean(axis=0)" in str(error.value)


def test_a_single_channel_axis_is_one_clip_and_rows_are_clips():
    mono = features(tone())
    for audio in (tone()[None], tone()[:, None], torch.from_numpy(tone()[None]), [tone()[None]]):
        np.testing.assert_array_equal(features(audio), mono)
    assert features(np.stack([tone()] * 3)).shape == (
        3,
        64,
        101,
    )  # WhisperFeatureExtractor's rule: rows are clips
    with pytest.raises(ValueError, match="3 dimensions"):
        features(np.zeros((2, 2, 16000), dtype=np.float32))


def test_integer_pcm_is_scaled_to_unit_range():
    clip = tone()
    as_int16 = np.round(clip * 32767).astype(np.int16)
    as_uint8 = np.round(clip * 127 + 128).astype(np.uint8)  # 8-bit WAV: unsigned, centred on 128
    unnormalized = features(clip, do_normalize=False)
    # Before: the int16 log-mels were log(32767²) ≈ 20.8 higher in every band.
    assert np.abs(features(as_int16, do_normalize=False) - unnormalized).max() < 0.05
    # 8-bit quantization noise moves the weak bands; unscaled, every band moved by log(128²) ≈ 9.7.
    assert np.abs(features(as_uint8, do_normalize=False) - unnormalized).mean() < 0.2
    assert np.abs(features(torch.from_numpy(as_int16), do_normalize=False) - unnormalized).max() < 0.05
    # Python lists carry no sample format: ints in a list are sample values, as before.
    np.testing.assert_allclose(
        features([0, 1, -1] * 100, do_normalize=False),
        features(np.array([0.0, 1, -1] * 100), do_normalize=False),
    )


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        (np.nan, "Audio 1 has 1 NaN or infinite samples (or beyond float32's 3.4e38), the first at sample 5"),
        (np.inf, "Audio 1 has 1 NaN or infinite samples"),
        (-np.inf, "Audio 1 has 1 NaN or infinite samples"),
    ],
)
def test_non_finite_audio_names_the_clip_and_sample(bad, message):
    broken = tone()
    broken[5] = bad
    with pytest.raises(ValueError, match=re.escape(message)) as error:
        features([tone(), broken])
    assert "np.nan_to_num" in str(error.value)


def test_audio_too_loud_for_float32_features_and_unusable_dtypes_are_named():
    with pytest.raises(ValueError, match="Audio 0 has 10 NaN or infinite samples"):
        features(np.full(10, 1e300))  # float64 beyond float32
    with pytest.raises(ValueError, match=re.escape("Audio 0 peaks at 1e+30")):
        features(np.full(1000, 1e30, dtype=np.float32))
    for dtype in (bool, np.complex64):
        with pytest.raises(ValueError, match=f"Audio 0 has dtype {np.dtype(dtype)}"):
            features(np.ones(100, dtype=dtype))


def test_a_numpy_integer_sampling_rate_is_a_sampling_rate():
    extractor = SoraFeatureExtractor()
    np.testing.assert_array_equal(
        extractor(tone(), sampling_rate=np.int64(RATE), return_tensors="np")["input_features"],
        features(tone()),
    )


def test_the_processor_refuses_stereo_audio(tiny_tokenizer):
    processor = SoraProcessor(SoraImageProcessor(), SoraFeatureExtractor(), tiny_tokenizer)
    with pytest.raises(ValueError, match="ambiguous"):
        processor(text=["one", "two"], audio=np.stack([tone(), tone()]), sampling_rate=RATE)


# ---- images ------------------------------------------------------------------------------------------------------


def test_float_images_in_unit_range_are_not_rescaled_again():
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (20, 30, 3)).astype(np.uint8)
    expected = pixels(image)
    np.testing.assert_allclose(
        pixels(image.astype(np.float32) / 255), expected, atol=1e-6
    )  # before: all ≈ -1
    np.testing.assert_allclose(pixels(image.astype(np.float32)), expected, atol=1e-6)  # floats in 0-255
    np.testing.assert_allclose(pixels(torch.from_numpy(image).float() / 255), expected, atol=1e-6)
    # Without the resize (no 8-bit round trip), floats keep their precision.
    halves = np.full((3, 64, 64), 0.5, dtype=np.float32)
    np.testing.assert_allclose(pixels(halves, do_resize=False), 0.0, atol=1e-6)
    # A binary mask in floats: 1.0 is white.
    mask = np.stack([np.eye(64, dtype=np.float32)] * 3)
    assert set(np.unique(pixels(mask, do_resize=False))) == {-1.0, 1.0}
    # do_rescale=False still means no rescaling for any image.
    np.testing.assert_allclose(pixels(halves, do_resize=False, do_rescale=False), 0.0, atol=1e-6)
    np.testing.assert_allclose(pixels(image.astype(np.float32), do_rescale=False).max(), 509.0, atol=1e-3)


@pytest.mark.parametrize(
    ("images", "message"),
    [
        (np.zeros((0, 0, 3), dtype=np.uint8), "Image 0 is empty (0x0 pixels"),
        ([Image.new("RGB", (4, 4)), Image.new("RGB", (0, 0))], "Image 1 is empty (0x0 pixels"),
        (Image.new("RGB", (5, 0)), "Image 0 is empty (0x5 pixels"),
        (np.zeros((3, 8, 0), dtype=np.float32), "Image 0 is empty (8x0 pixels"),
    ],
)
def test_an_empty_image_names_its_index_and_size(images, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        pixels(images)


@pytest.mark.parametrize(
    ("image", "message"),
    [
        (np.full((3, 8, 8), -0.5, dtype=np.float32), "Image 0 has pixel values in [-0.5, -0.5]"),
        (np.full((3, 8, 8), 4000, dtype=np.uint16), "Image 0 has pixel values in [4000, 4000]"),
        (np.full((3, 8, 8), np.nan, dtype=np.float32), "Image 0 has NaN or infinite pixel values"),
        (np.ones((3, 8, 8), dtype=bool), "Image 0 has dtype bool"),
    ],
)
def test_pixel_values_no_image_holds_are_named(image, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        pixels(image)


@pytest.mark.parametrize("height", [1, 2, 4])
def test_channels_last_images_one_two_or_four_pixels_high_are_read_as_rgb(height):
    # The library guesses channels first for a leading 1, 3 or 4; only (3, W, 3) stays ambiguous (channels first).
    image = np.random.default_rng(0).integers(0, 256, (height, 7, 3)).astype(np.uint8)
    np.testing.assert_array_equal(pixels(image), pixels(np.moveaxis(image, -1, 0)))


def test_no_images_is_an_error():
    with pytest.raises(ValueError, match="No images given"):
        pixels([])
