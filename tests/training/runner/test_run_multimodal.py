"""The multimodal entry point: a few real Trainer steps per modality, outputs that reload, the comparison card."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import SCRIPTS_DIR
from multimodal_comparison import write_comparison_card
from PIL import Image
from transformers import AutoModelForSequenceClassification, AutoProcessor, TrainingArguments

from sora_hf.data.tasks import load_task_dataset
from sora_hf.data.tasks.spoken_commands import read_audio
from sora_hf.training.runner import run_task
from sora_hf.training.tasks.multimodal import (
    MultimodalArguments,
    accuracy_by_question_kind,
    label_balanced_sampler,
)


def run_multimodal(arguments: MultimodalArguments, training_args) -> dict:
    return run_task(arguments.task, arguments, training_args)


TINY = dict(
    hidden_size=32,
    num_hidden_layers=1,
    num_attention_heads=2,
    intermediate_size=64,
    tower_hidden_size=16,
    tower_layers=1,
    image_size=32,
    num_mel_bins=16,
    max_train_samples=32,
    max_eval_samples=16,
    max_test_samples=16,
)


def training_arguments(output_dir) -> TrainingArguments:
    return TrainingArguments(
        output_dir=str(output_dir),
        max_steps=2,
        per_device_train_batch_size=8,
        per_device_eval_batch_size=16,
        report_to=[],
        use_cpu=True,
        save_strategy="no",
        logging_steps=1,
    )


@pytest.mark.parametrize("modalities", ["text", "image", "fused"])
def test_easy_vqa_runs_for_each_modality_and_the_folder_serves_it(modalities, tmp_path):
    # the fused run also takes the convolutional patch stem, as the reported easy-vqa runs do
    stem = "convolutional" if modalities == "fused" else "linear"
    arguments = MultimodalArguments(task="easy_vqa", modalities=modalities, patch_embedding_type=stem, **TINY)
    results = run_multimodal(arguments, training_arguments(tmp_path))
    assert results["steps"] == 2 and 0.0 <= results["test"]["test_accuracy"] <= 1.0
    assert results["split_sizes"] == {"train": 32, "validation": 16, "test": 16}
    by_kind = results["test_accuracy_by_question_kind"]
    assert by_kind and set(by_kind) <= {
        "colour",
        "shape",
        "yes/no colour",
        "yes/no colour negated",
        "yes/no shape",
        "yes/no shape negated",
    }
    assert all(0.0 <= accuracy <= 1.0 for accuracy in by_kind.values())
    for name in (
        "model.safetensors",
        "processor_config.json",
        "multimodal_results.json",
        "confusion_matrix.png",
    ):
        assert (tmp_path / name).is_file(), name
    processor = AutoProcessor.from_pretrained(tmp_path)
    model = AutoModelForSequenceClassification.from_pretrained(tmp_path).eval()
    assert model.config.vision_config.patch_embedding_type == stem
    assert model.config.fusion_pooling == "bilinear"
    batch = processor(
        text=["what color is the shape?"], images=[Image.new("RGB", (64, 64))], return_tensors="pt"
    )
    if modalities == "text":
        batch.pop("pixel_values")
    if modalities == "image":
        batch = {"pixel_values": batch["pixel_values"]}
    prediction = model.config.id2label[int(model(**batch).logits.argmax(-1))]
    assert prediction in {"yes", "no", "circle", "rectangle", "triangle"} | set(model.config.label2id)


def test_spoken_commands_audio_and_fused_runs_and_the_comparison_card(tmp_path):
    runs = []
    for modalities, label_column in (("audio", "answer"), ("fused", "answer")):
        folder = tmp_path / modalities
        results = run_multimodal(
            MultimodalArguments(
                task="spoken_commands", modalities=modalities, label_column=label_column, **TINY
            ),
            training_arguments(folder),
        )
        assert results["label_column"] == "answer" and results["steps"] == 2
        runs.append(folder)
    processor = AutoProcessor.from_pretrained(runs[-1])
    model = AutoModelForSequenceClassification.from_pretrained(runs[-1]).eval()
    saved = json.loads((runs[-1] / "multimodal_results.json").read_text())
    assert saved["modalities"] == "fused" and saved["split_sizes"]["test"] == 16
    clip = read_audio(load_task_dataset("spoken_commands")["test"][0]["audio_path"])
    batch = processor(
        text=["which device is it for?"], audio=[clip], sampling_rate=16000, return_tensors="pt"
    )
    assert model(**batch).logits.shape == (1, model.config.num_labels)

    card = tmp_path / "sora-spoken-commands.md"
    table = write_comparison_card(runs, card, "A test card.")
    assert "| audio |" in table and "| fused |" in table
    text = card.read_text()
    assert "A test card." in text and "model-index" in text and "| fused |" in text


def test_a_modality_the_task_lacks_is_refused(tmp_path):
    with pytest.raises(ValueError, match="does not fit spoken_commands"):
        run_multimodal(
            MultimodalArguments(task="spoken_commands", modalities="image", **TINY),
            training_arguments(tmp_path),
        )
    with pytest.raises(ValueError, match="Unknown task"):
        run_multimodal(MultimodalArguments(task="cifar", **TINY), training_arguments(tmp_path))


def test_label_balanced_sampler_flattens_the_label_distribution():
    labels = [0] * 90 + [1] * 10
    balanced = list(label_balanced_sampler(labels, power=1.0, seed=0))
    draws = [labels[i] for _ in range(20) for i in label_balanced_sampler(labels, power=1.0, seed=_)]
    assert len(balanced) == 100 and 0.4 < sum(draws) / len(draws) < 0.6  # label 1 is drawn half the time
    half = [labels[i] for s in range(20) for i in label_balanced_sampler(labels, power=0.5, seed=s)]
    assert 0.15 < sum(half) / len(half) < 0.35  # sqrt weights: 10*sqrt(1/10) / (90*sqrt(1/90) + that) = 0.25
    assert list(label_balanced_sampler(labels, 1.0, seed=3)) == list(
        label_balanced_sampler(labels, 1.0, seed=3)
    )


def test_label_sampling_power_reaches_the_trainer_and_the_card(tmp_path):
    results = run_multimodal(
        MultimodalArguments(task="easy_vqa", modalities="fused", label_sampling_power=1.0, **TINY),
        training_arguments(tmp_path / "fused"),
    )
    assert results["arguments"]["label_sampling_power"] == 1.0 and results["steps"] == 2
    table = write_comparison_card([tmp_path / "fused"], tmp_path / "card.md", "A test card.")
    assert "| fused | answer | 1 |" in table
    with pytest.raises(ValueError, match="label_sampling_power must be >= 0"):
        run_multimodal(
            MultimodalArguments(task="easy_vqa", label_sampling_power=-1.0, **TINY),
            training_arguments(tmp_path),
        )


def test_accuracy_by_question_kind_splits_open_and_yes_no_questions():
    questions = [
        "what color is the shape?",
        "what is the blue shape?",
        "is there a red shape?",
        "is there not a red shape?",
        "does the image contain a circle?",
        "is no triangle present?",
    ]
    answers = ["blue", "circle", "no", "yes", "yes", "no"]
    predictions = ["blue", "triangle", "no", "no", "yes", "no"]
    assert accuracy_by_question_kind("easy_vqa", questions, answers, predictions) == {
        "colour": 1.0,
        "shape": 0.0,
        "yes/no colour": 1.0,
        "yes/no colour negated": 0.0,
        "yes/no shape": 1.0,
        "yes/no shape negated": 1.0,
    }
    spoken = [
        "which device is it for?",
        "what should the device do?",
        "is it about the fan?",
        "is it about the door?",
    ]
    assert accuracy_by_question_kind(
        "spoken_commands", spoken, ["fan", "on", "yes", "no"], ["fan", "off", "yes", "yes"]
    ) == {"action": 0.0, "device": 1.0, "yes/no": 0.5}


def test_label_balanced_sampling_is_sharded_across_two_processes(tmp_path):
    """Under `accelerate launch` the two processes split the balanced draw: together they see the batches one
    process sees alone, with no batch twice and the minority label about half the time."""
    script = SCRIPTS_DIR / "balanced_sampling_ddp.py"
    environment = {**os.environ, "OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false"}
    accelerate = Path(sys.executable).with_name("accelerate")
    # `--multi_gpu` is what starts two processes (torchrun, gloo on CPU); `--cpu` alone starts one
    launch = [str(accelerate), "launch", "--multi_gpu", "--num_processes", "2", "--num_machines", "1"]
    launch += ["--mixed_precision", "no", "--dynamo_backend", "no", "--main_process_port", "29519"]
    for command, output in (
        ([*launch, str(script)], tmp_path / "ddp"),
        ([sys.executable, str(script)], tmp_path / "single"),
    ):
        result = subprocess.run(
            [*command, "--output", str(output)],
            cwd=tmp_path,
            env=environment,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    # the data loaders fetch one batch past the last step: keep the 12 steps' worth
    single = json.loads((tmp_path / "single.0.json").read_text())[: 8 * 12]
    first, second = (json.loads((tmp_path / f"ddp.{rank}.json").read_text())[: 4 * 12] for rank in (0, 1))
    halves = [single[i : i + 4] for i in range(0, len(single), 4)]  # the global batches, split in two
    assert [first[i : i + 4] for i in range(0, len(first), 4)] == halves[0::2]
    assert [second[i : i + 4] for i in range(0, len(second), 4)] == halves[1::2]
    minority = sum(example_id >= 90 for example_id in first + second) / len(single)
    assert 0.3 < minority < 0.7  # 10% of the rows, about half of the draws
