"""SoraImageProcessor, SoraFeatureExtractor and SoraProcessor: outputs, bad input, Auto classes, the Hub."""

import numpy as np
import pytest
import torch
from hub_server import WRITE_TOKEN
from huggingface_hub import HfApi
from PIL import Image
from transformers import AutoFeatureExtractor, AutoImageProcessor, AutoProcessor

from sora_hf import (
    SoraConfig,
    SoraFeatureExtractor,
    SoraForSequenceClassification,
    SoraImageProcessor,
    SoraProcessor,
    SoraTokenizer,
)

RATE = 16000


def tone(seconds: float, rate: int = RATE, frequency: float = 440.0) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    return (0.5 * np.sin(2 * np.pi * frequency * t)).astype(np.float32)


@pytest.fixture(scope="module")
def processor() -> SoraProcessor:
    return SoraProcessor(SoraImageProcessor(), SoraFeatureExtractor(), SoraTokenizer.from_pretrained("sora"))


def sample_inputs() -> dict:
    images = [Image.new("RGB", (100, 80), (255, 0, 0)), Image.new("L", (64, 64), 255)]
    return dict(
        text=["what color is the shape?", "is there a circle?"],
        images=images,
        audio=[tone(1.0), tone(0.5)],
        sampling_rate=RATE,
        padding=True,
    )


def assert_same_batches(a, b) -> None:
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(torch.as_tensor(a[key]), torch.as_tensor(b[key])), key


# ---- images --------------------------------------------------------------------------------------------------


def test_image_processor_resizes_converts_to_rgb_and_normalizes():
    pixels = SoraImageProcessor()(sample_inputs()["images"], return_tensors="pt")["pixel_values"]
    assert pixels.shape == (2, 3, 64, 64)
    assert torch.allclose(pixels[0, :, 10, 10], torch.tensor([1.0, -1.0, -1.0]))  # red, in [-1, 1]
    assert torch.allclose(pixels[1], torch.ones(3, 64, 64))  # white grayscale -> RGB
    arrays = SoraImageProcessor()(np.zeros((3, 64, 64), dtype=np.uint8), return_tensors="pt")["pixel_values"]
    assert torch.allclose(arrays, -torch.ones(1, 3, 64, 64))


@pytest.mark.parametrize("shape", [(64, 64, 4), (2, 64, 64), (64, 64, 1)])
def test_image_arrays_with_the_wrong_number_of_channels_raise(shape):
    with pytest.raises(ValueError, match="wrong number of channels"):
        SoraImageProcessor()(np.zeros(shape, dtype=np.uint8))


def test_image_processor_round_trip_through_auto_image_processor(tmp_path):
    SoraImageProcessor(size={"height": 32, "width": 32}).save_pretrained(tmp_path)
    reloaded = AutoImageProcessor.from_pretrained(tmp_path)
    assert type(reloaded) is SoraImageProcessor
    assert reloaded(Image.new("RGB", (50, 50)), return_tensors="pt")["pixel_values"].shape == (1, 3, 32, 32)


# ---- audio ---------------------------------------------------------------------------------------------------


def test_feature_extractor_pads_and_masks():
    batch = SoraFeatureExtractor()([tone(1.0), tone(0.5)], sampling_rate=RATE, return_tensors="pt")
    assert batch["input_features"].shape == (2, 64, 101)  # 10 ms hop, centred frames
    assert batch["feature_attention_mask"].sum(-1).tolist() == [101, 51]
    assert torch.all(batch["input_features"][1, :, 51:] == 0)
    alone = SoraFeatureExtractor()(tone(0.5), sampling_rate=RATE, return_tensors="pt")["input_features"]
    assert torch.allclose(alone[0], batch["input_features"][1, :, :51])


def test_feature_extractor_truncates_and_pads_to_max_length():
    extractor = SoraFeatureExtractor()
    long = extractor(tone(2.0), sampling_rate=RATE, truncation=True, max_length=80, return_tensors="pt")
    assert long["input_features"].shape == (1, 64, 80) and long["feature_attention_mask"].sum() == 80
    short = extractor(tone(0.2), sampling_rate=RATE, padding="max_length", max_length=80, return_tensors="pt")
    assert short["input_features"].shape == (1, 64, 80) and short["feature_attention_mask"].sum() == 21


def test_other_sampling_rates_are_resampled_or_refused():
    extractor = SoraFeatureExtractor()
    at_16k = extractor(tone(1.0), sampling_rate=RATE, return_tensors="np")["input_features"][0]
    at_8k = extractor(tone(1.0, rate=8000), sampling_rate=8000, return_tensors="np")["input_features"][0]
    assert at_8k.shape == at_16k.shape
    assert np.abs(at_8k - at_16k)[:, 5:-5].mean() < 0.05  # the same tone, once resampled (edges aside)
    with pytest.raises(ValueError, match="8000 Hz.*do_resample=False"):
        SoraFeatureExtractor(do_resample=False)(tone(1.0, rate=8000), sampling_rate=8000)
    with pytest.raises(ValueError, match="sampling_rate must be a positive integer"):
        extractor(tone(1.0), sampling_rate=-1)


@pytest.mark.parametrize(
    ("audio", "message"),
    [
        (np.zeros(0, dtype=np.float32), "empty"),
        ([tone(0.5), np.zeros(0, dtype=np.float32)], "Audio 1 is empty"),
        ([np.zeros((2, 1600), dtype=np.float32)], "mono"),
    ],
)
def test_bad_audio_raises(audio, message):
    with pytest.raises(ValueError, match=message):
        SoraFeatureExtractor()(audio, sampling_rate=RATE)


def test_feature_extractor_round_trip_through_auto_feature_extractor(tmp_path):
    SoraFeatureExtractor(feature_size=40, do_resample=False).save_pretrained(tmp_path)
    reloaded = AutoFeatureExtractor.from_pretrained(tmp_path)
    assert type(reloaded) is SoraFeatureExtractor and reloaded.do_resample is False
    assert reloaded(tone(0.3), sampling_rate=RATE, return_tensors="pt")["input_features"].shape == (1, 40, 31)


# ---- the processor -------------------------------------------------------------------------------------------


def test_processor_prepares_all_three_for_a_model(processor):
    batch = processor(**sample_inputs(), return_tensors="pt")
    assert {"input_ids", "attention_mask", "pixel_values", "input_features", "feature_attention_mask"} <= set(
        batch
    )
    assert batch["pixel_values"].shape == (2, 3, 64, 64) and batch["input_features"].shape == (2, 64, 101)
    config = SoraConfig(
        vocab_size=len(processor.tokenizer),
        hidden_size=32,
        num_hidden_layers=1,
        num_attention_heads=4,
        intermediate_size=64,
        vision_config=dict(hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=32),
        audio_config=dict(hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=32),
    )
    logits = SoraForSequenceClassification(config).eval()(**batch).logits
    assert logits.shape == (2, 2)
    assert set(processor.model_input_names) >= {"input_ids", "pixel_values", "input_features"}


def test_processor_rejects_mismatched_batches_and_no_input(processor):
    with pytest.raises(ValueError, match="different sizes"):
        processor(text=["one", "two"], images=[Image.new("RGB", (64, 64))])
    with pytest.raises(ValueError, match="at least one"):
        processor()


def test_processor_save_and_auto_processor_round_trip(processor, tmp_path):
    processor.save_pretrained(tmp_path)
    reloaded = AutoProcessor.from_pretrained(tmp_path)
    assert type(reloaded) is SoraProcessor
    assert type(reloaded.image_processor) is SoraImageProcessor
    assert type(reloaded.feature_extractor) is SoraFeatureExtractor
    assert_same_batches(
        reloaded(**sample_inputs(), return_tensors="pt"), processor(**sample_inputs(), return_tensors="pt")
    )


def test_processor_push_to_hub_and_load_back(processor, hub):
    repo_id = "sora-tester/sora-processor"
    processor.push_to_hub(repo_id, token=WRITE_TOKEN)
    files = set(HfApi().list_repo_files(repo_id))
    assert {"processor_config.json", "tokenizer.json"} <= files
    reloaded = AutoProcessor.from_pretrained(repo_id)
    assert type(reloaded) is SoraProcessor
    assert_same_batches(
        reloaded(**sample_inputs(), return_tensors="pt"), processor(**sample_inputs(), return_tensors="pt")
    )
