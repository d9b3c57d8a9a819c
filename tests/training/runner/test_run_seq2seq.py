"""The translation / summarization / dialogue entry points: baselines, and a few real steps a pipeline serves."""

import json

import pytest
from conftest import finetune_on_user_file, save_tiny_sora
from transformers import Seq2SeqTrainingArguments, pipeline

from sora_hf.data.tasks import load_task_dataset
from sora_hf.metrics import load_metric
from sora_hf.training.runner import run_task
from sora_hf.training.tasks.seq2seq import (
    DialogueArguments,
    SummarizationArguments,
    TranslationArguments,
    copy_source_baseline,
    lead_words_baseline,
    load_seq2seq_data,
    most_frequent_response_baseline,
)


@pytest.fixture(scope="module")
def tiny_checkpoint(tmp_path_factory):
    folder = tmp_path_factory.mktemp("tiny-sora-seq2seq")
    pairs = load_task_dataset("translation")["train"].select(range(1000))["translation"]
    documents = load_task_dataset("summarization")["train"].select(range(500))["document"]
    texts = [p["en"] for p in pairs] + [p["es"] for p in pairs] + list(documents)
    # a pretraining checkpoint with a decoder, like `sora`
    return save_tiny_sora(folder, texts, is_encoder_decoder=True, decoder_layers=1)


def _training_args(output_dir, **overrides) -> Seq2SeqTrainingArguments:
    options = dict(
        output_dir=str(output_dir),
        max_steps=3,
        per_device_train_batch_size=8,
        per_device_eval_batch_size=8,
        learning_rate=1e-3,
        report_to=[],
        use_cpu=True,
        save_strategy="no",
        logging_steps=1,
        predict_with_generate=True,
        generation_max_length=8,
    )
    return Seq2SeqTrainingArguments(**{**options, **overrides})


def test_baselines_on_hand_computed_examples():
    sources = ["Adam knew Eve.", "one two three four five six seven eight nine"]
    assert copy_source_baseline([], sources) == sources
    assert lead_words_baseline([], sources) == ["Adam knew Eve.", "one two three four five six seven"]
    responses = ["hi", "ok", "bye", "ok", "hi"]  # "hi" and "ok" tie at 2: the first seen wins
    assert most_frequent_response_baseline(responses, ["a", "b", "c"]) == ["hi", "hi", "hi"]
    # Scored like the runner does: a copy that matches its reference gets full chrF; lead-7 gets ROUGE-1 7/9.
    assert load_metric("sacrebleu_chrf").compute(predictions=["hola"], references=["hola"])["chrf"] == 100.0
    rouge = load_metric("rouge").compute(
        predictions=lead_words_baseline([], sources[1:]), references=sources[1:]
    )
    assert rouge["rouge1"] == pytest.approx(2 * 1.0 * (7 / 9) / (1.0 + 7 / 9))


def test_run_translation_writes_a_servable_model_card_and_logs(tiny_checkpoint, tmp_path):
    args = TranslationArguments(
        model_name_or_path=tiny_checkpoint,
        max_train_samples=32,
        max_eval_samples=8,
        max_test_samples=8,
        max_source_length=48,
        max_target_length=48,
        no_repeat_ngram_size=3,
        length_penalty=2.0,
    )
    training_args = _training_args(
        tmp_path, eval_strategy="steps", eval_steps=3, report_to=["tensorboard"], generation_num_beams=2
    )
    results = run_task(args.task, args, training_args)
    assert results["task"] == "translation" and results["metric"] == "chrf" and results["steps"] == 3
    assert results["split_sizes"] == {"train": 32, "validation": 8, "test": 8}
    assert results["full_test_size"] == 3265
    assert 0.0 <= results["test"]["test_chrf"] <= 100.0 and "test_bleu" in results["test"]
    # Copying English into Spanish shares names and punctuation: some chrF, far from all of it.
    assert 5.0 < results["baseline_copy_source_chrf"] < 40.0
    assert results["wall_seconds"] >= results["train_seconds"] > 0 and results["command"]
    training_table = (tmp_path / "README.md").read_text().split("### Training results")[1]
    assert "Validation Loss" in training_table and "chrf" in training_table  # evaluation generated text
    for name in ("loss_curve.png", "model.safetensors", "generation_config.json", "README.md"):
        assert (tmp_path / name).is_file(), name
    assert list(tmp_path.glob("runs/*/events.out.tfevents.*"))
    generation = json.loads((tmp_path / "generation_config.json").read_text())
    assert generation["num_beams"] == 2 and generation["max_length"] == 8
    assert generation["no_repeat_ngram_size"] == 3 and generation["length_penalty"] == 2.0
    assert "pipeline_tag: translation" in (tmp_path / "README.md").read_text()

    translated = pipeline("translation", model=str(tmp_path))(["In the beginning", "God said"])
    assert [set(r) for r in translated] == [{"translation_text"}] * 2
    assert all(isinstance(r["translation_text"], str) for r in translated)


def test_run_summarization_on_the_built_in_slice(tiny_checkpoint, tmp_path):
    args = SummarizationArguments(
        model_name_or_path=tiny_checkpoint,
        max_train_samples=16,
        max_test_samples=8,
        max_source_length=64,
        max_target_length=16,
    )
    results = run_task(args.task, args, _training_args(tmp_path, max_steps=2))
    assert results["metric"] == "rougeL" and results["split_sizes"]["test"] == 8
    assert 0.0 < results["baseline_first_7_words_rougeL"] < 1.0
    assert {"test_rouge1", "test_rouge2", "test_rougeL"} <= set(results["test"])
    summary = pipeline("summarization", model=str(tmp_path))("A tool to convert images between formats.")
    assert len(summary) == 1 and isinstance(summary[0]["summary_text"], str)


def test_finetune_command_dialogue_on_a_user_csv(tiny_checkpoint, tmp_path):
    csv = tmp_path / "chats.csv"
    rows = ["message,reply"] + [f"hello {i},hi there" for i in range(12)] + ["how are you,fine thanks"] * 4
    csv.write_text("\n".join(rows) + "\n")
    code = finetune_on_user_file(
        "dialogue",
        tiny_checkpoint,
        csv,
        tmp_path / "run",
        "--context_column",
        "message",
        "--response_column",
        "reply",
        "--generation_max_length",
        "6",
    )
    assert code == 0  # predict_with_generate is on without the flag
    results = json.loads((tmp_path / "run" / "dialogue_results.json").read_text())
    assert results["split_sizes"] == {"train": 16, "validation": 16, "test": 16}
    # "hi there" (12 of 16 replies) is the most frequent: chrF pools the 12 exact and 4 wrong replies.
    assert 60.0 < results["baseline_most_frequent_response_chrf"] < 100.0
    reply = pipeline("text2text-generation", model=str(tmp_path / "run"))("hello 3")
    assert len(reply) == 1 and isinstance(reply[0]["generated_text"], str)


def test_user_csv_with_a_missing_or_misnamed_column_names_it(tmp_path):
    csv = tmp_path / "pairs.csv"
    csv.write_text("article,title\nsome long text,short\n")
    files = dict(train_file=str(csv), validation_file=str(csv), test_file=str(csv))
    with pytest.raises(ValueError, match="'document'"):
        load_seq2seq_data(SummarizationArguments(**files, summary_column="title"))
    with pytest.raises(ValueError, match="'headline'"):
        load_seq2seq_data(
            SummarizationArguments(**files, document_column="article", summary_column="headline")
        )
    with pytest.raises(ValueError, match="'en'"):
        load_seq2seq_data(TranslationArguments(**files))  # columns default to the language codes


def test_built_in_translation_rejects_an_unknown_language_and_generation_must_be_on(tmp_path):
    with pytest.raises(ValueError, match="target_lang='fr'"):
        load_seq2seq_data(TranslationArguments(target_lang="fr"))
    with pytest.raises(ValueError, match="predict_with_generate"):
        run_task("dialogue", DialogueArguments(), _training_args(tmp_path, predict_with_generate=False))
