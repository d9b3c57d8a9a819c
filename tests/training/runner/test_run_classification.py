"""The classification entry point: a few real Trainer steps on a slice, outputs a pipeline can serve."""

import json

import pytest
import torch
from conftest import finetune_on_user_file, save_tiny_sora
from transformers import TrainingArguments, pipeline

from sora_hf import SoraForPreTraining
from sora_hf.data.tasks import load_task_dataset
from sora_hf.training.runner import run_task
from sora_hf.training.tasks.classification import (
    ClassificationArguments,
    load_classification_data,
)


@pytest.fixture(scope="module")
def tiny_checkpoint(tmp_path_factory):
    folder = tmp_path_factory.mktemp("tiny-sora")
    texts = load_task_dataset("sentiment")["train"].select(range(2000))["text"]
    return save_tiny_sora(folder, texts)  # a pretraining checkpoint, like `sora`


def test_run_classification_writes_a_servable_model_and_plots(tiny_checkpoint, tmp_path):
    args = ClassificationArguments(model_name_or_path=tiny_checkpoint, max_train_samples=64, max_length=32)
    training_args = TrainingArguments(
        output_dir=str(tmp_path),
        max_steps=4,
        per_device_train_batch_size=16,
        per_device_eval_batch_size=256,
        report_to=[],
        use_cpu=True,
        save_strategy="no",
        logging_steps=1,
    )
    results = run_task("classification", args, training_args)
    assert 0.0 <= results["test"]["test_accuracy"] <= 1.0 and results["steps"] == 4
    assert results["split_sizes"] == {"train": 64, "validation": 3666, "test": 3666}
    assert 0.3 < results["baseline_tfidf_logreg_accuracy"] < 1.0
    for name in (
        "confusion_matrix.png",
        "loss_curve.png",
        "model.safetensors",
        "classification_results.json",
    ):
        assert (tmp_path / name).is_file(), name
    card = (tmp_path / "README.md").read_text()
    assert f"accuracy {results['test']['test_accuracy']:.3f}" in card and "baseline accuracy" in card
    assert "![confusion matrix](confusion_matrix.png)" in card and "64 training examples" in card
    predictions = pipeline("text-classification", model=str(tmp_path))(["great day!", "awful service"])
    assert [p["label"] in {"negative", "neutral", "positive"} for p in predictions] == [True, True]


def test_finetune_command_and_user_csv(tiny_checkpoint, tmp_path):
    csv = tmp_path / "reviews.csv"
    rows = ["review,stars"] + [
        f"{'good' if i % 2 else 'bad'} product number {i},{'pos' if i % 2 else 'neg'}" for i in range(40)
    ]
    csv.write_text("\n".join(rows) + "\n")
    code = finetune_on_user_file(
        "sentiment",
        tiny_checkpoint,
        csv,
        tmp_path / "run",
        "--text_column",
        "review",
        "--label_column",
        "stars",
    )
    assert code == 0
    results = json.loads((tmp_path / "run" / "classification_results.json").read_text())
    assert results["split_sizes"]["test"] == 40


def test_user_csv_with_a_misnamed_column_names_it(tmp_path):
    csv = tmp_path / "reviews.csv"
    csv.write_text("review,stars\nnice,pos\nbad,neg\n")
    args = ClassificationArguments(
        train_file=str(csv),
        validation_file=str(csv),
        test_file=str(csv),
        text_column="text",
        label_column="stars",
    )
    with pytest.raises(ValueError, match="text"):
        load_classification_data(args)


@pytest.mark.parametrize(
    "flags", [{"lora_r": 4}, {"train_top_layers": 1}, {"lora_r": 4, "train_top_layers": 1}]
)
def test_parameter_efficient_runs_train_only_their_share(tiny_checkpoint, tmp_path, flags):
    from peft import AutoPeftModelForSequenceClassification

    base = SoraForPreTraining.from_pretrained(tiny_checkpoint)
    args = ClassificationArguments(
        model_name_or_path=tiny_checkpoint, max_train_samples=32, max_length=32, run_baseline=False, **flags
    )
    training_args = TrainingArguments(
        output_dir=str(tmp_path), max_steps=2, per_device_train_batch_size=16, report_to=[], use_cpu=True,
        save_strategy="no", learning_rate=1e-2,
    )  # fmt: skip
    results = run_task("classification", args, training_args)
    assert 0 < results["trainable_parameters"] < results["total_parameters"]
    assert results["peak_memory_mib"] >= results["peak_memory_before_training_mib"] > 0
    trained = pipeline("text-classification", model=str(tmp_path)).model
    # frozen body weights come back unchanged; the embeddings are never trained by any of these methods
    torch.testing.assert_close(trained.get_input_embeddings().weight, base.get_input_embeddings().weight)
    bottom = "model.encoder.layers.0.self_attn.qkv_proj.weight"
    changed = not torch.equal(trained.state_dict()[bottom], base.state_dict()[bottom])
    assert changed == ("lora_r" in flags)  # LoRA merged into layer 0; top-1 alone leaves it frozen
    if "lora_r" in flags:
        adapter = AutoPeftModelForSequenceClassification.from_pretrained(
            str(tmp_path / "adapter"), num_labels=3
        )
        ids = torch.tensor([[1, 20, 30, 40, 2]])
        torch.testing.assert_close(
            adapter(input_ids=ids).logits, trained(input_ids=ids).logits, atol=1e-5, rtol=0
        )
