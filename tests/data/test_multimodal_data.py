"""The easy-vqa and spoken-commands task datasets: schema, splits without leakage, audio, determinism."""

import random

import pytest
from datasets import ClassLabel

from sora_hf.data.tasks import SPLITS, load_task_dataset
from sora_hf.data.tasks import spoken_commands as spoken


@pytest.fixture(scope="module")
def easy_vqa():
    return load_task_dataset("easy_vqa")


@pytest.fixture(scope="module")
def commands():
    return load_task_dataset("spoken_commands")


def test_easy_vqa_keeps_the_package_split_and_never_shares_an_image(easy_vqa):
    assert {split: len(easy_vqa[split]) for split in SPLITS} == {
        "train": 34773,
        "validation": 3802,
        "test": 9673,
    }
    answers = easy_vqa["train"].features["answer"]
    assert isinstance(answers, ClassLabel) and answers.num_classes == 13
    assert {"yes", "no", "circle", "red"} <= set(answers.names)
    train_images = set(easy_vqa["train"]["image_id"])
    assert not train_images & set(easy_vqa["validation"]["image_id"])
    assert len(set(easy_vqa["test"]["image_id"])) == 1000
    first = easy_vqa["train"][0]
    assert first["question"] == "what is the blue shape?" and answers.int2str(first["answer"]) == "rectangle"
    assert first["image"].size == (64, 64) and first["image"].mode == "RGB"


def test_spoken_commands_test_voices_are_never_heard_in_training(commands):
    variants = {split: set(commands[split]["variant"]) for split in SPLITS}
    assert not variants["train"] & variants["test"] and not variants["train"] & variants["validation"]
    assert len(variants["train"]) >= 60 and len(variants["test"]) >= 8
    assert commands["train"].features["command"].num_classes >= 20
    assert len(commands["test"]) >= 400 and len(commands["train"]) >= 3000
    # many voices: every accent, a spread of rates and pitches
    assert set(commands["train"]["accent"]) == set(spoken.ACCENTS)
    assert max(commands["train"]["rate"]) - min(commands["train"]["rate"]) >= 60


def test_spoken_commands_audio_is_16khz_speech_and_answers_follow_the_command(commands):
    rows = commands["test"].select(range(0, len(commands["test"]), 40))
    for row in rows:
        audio = spoken.read_audio(row["audio_path"])
        assert 0.2 * spoken.SAMPLING_RATE < audio.size < 4 * spoken.SAMPLING_RATE
        assert 0.01 < abs(audio).max() <= 1.0
        phrase, action, device = spoken.COMMANDS[row["command"]]
        answer = spoken.ANSWERS[row["answer"]]
        if row["question"].startswith("which device"):
            assert answer == device
        elif row["question"].startswith("what should"):
            assert answer == action
        else:
            assert answer == ("yes" if row["question"] == f"is it about the {device}?" else "no")


def test_synthesis_is_deterministic(tmp_path):
    first, second = tmp_path / "a.wav", tmp_path / "b.wav"
    for path in (first, second):
        spoken.synthesize("open the door", "en-us", "f2", 170, 50, path)
    assert first.read_bytes() == second.read_bytes()
    other_voice = tmp_path / "c.wav"
    spoken.synthesize("open the door", "en-us", "m3", 170, 50, other_voice)
    assert other_voice.read_bytes() != first.read_bytes()
    assert spoken.question_and_answer(6, random.Random(0)) == spoken.question_and_answer(6, random.Random(0))


def test_multimodal_tasks_take_no_user_files():
    with pytest.raises(ValueError, match="no user-file loader"):
        load_task_dataset("easy_vqa", data_files={"train": "x.csv"})
