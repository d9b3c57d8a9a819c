"""The QA entry point: features, post-processing, the baseline, and a few real Trainer steps a pipeline serves."""

import json

import numpy as np
import pytest
from conftest import finetune_on_user_file, save_tiny_sora
from transformers import AutoTokenizer, TrainingArguments, pipeline

from sora_hf.data.tasks import load_task_dataset
from sora_hf.training.runner import run_task
from sora_hf.training.tasks.question_answering import (
    QuestionAnsweringArguments,
    load_question_answering_data,
    postprocess_predictions,
    prepare_features,
    word_overlap_baseline,
)


@pytest.fixture(scope="module")
def tiny_checkpoint(tmp_path_factory):
    folder = tmp_path_factory.mktemp("tiny-sora")
    train = load_task_dataset("qa")["train"].select(range(3000))
    texts = list(train["question"]) + list(train["context"])
    return save_tiny_sora(folder, texts)  # a pretraining checkpoint, like `sora`


def _example(context: str, answer: str) -> dict:
    return {
        "id": ["q0"],
        "question": ["  which animal? "],
        "context": [context],
        "answers": [{"text": [answer], "answer_start": [context.index(answer)]}],
    }


def test_features_mark_the_answer_tokens_and_windows_without_it(tiny_checkpoint):
    tokenizer = AutoTokenizer.from_pretrained(tiny_checkpoint, add_prefix_space=True)
    context = "the quick brown fox jumps over the lazy dog near the old river bank today"
    batch = _example(context, "lazy dog")
    features = prepare_features(batch, tokenizer, max_length=128, doc_stride=8)
    assert features["example_id"] == ["q0"]
    start, end = features["start_positions"][0], features["end_positions"][0]
    offsets = features["offset_mapping"][0]
    assert context[offsets[start][0] : offsets[end][1]] == "lazy dog"
    question_tokens = [i for i, s in enumerate(tokenizer("which animal?", context).sequence_ids()) if s != 1]
    assert all(offsets[i] is None for i in question_tokens)  # only context tokens keep their offsets

    # Short windows: the answer lies in some windows only; the others point at the cls token.
    windows = prepare_features(batch, tokenizer, max_length=16, doc_stride=4)
    assert len(windows["input_ids"]) > 1 and set(windows["example_id"]) == {"q0"}
    spans = list(zip(windows["start_positions"], windows["end_positions"]))
    assert (0, 0) in spans and any(span != (0, 0) for span in spans)
    for (start, end), offsets in zip(spans, windows["offset_mapping"]):
        if start:
            assert context[offsets[start][0] : offsets[end][1]] == "lazy dog"


def test_postprocess_takes_the_best_valid_span_over_windows_and_widens_it():
    context = "red cats sleep"
    examples = {"id": ["a"], "context": [context]}
    # Two windows of one example; None marks question/special tokens. Token 2 is "ats" of "cats".
    features = {
        "example_id": ["a", "a"],
        "offset_mapping": [[None, (0, 3), (5, 8), None], [None, (9, 14), None, None]],
    }
    start_logits = np.array([[9.0, 1.0, 3.0, 0.0], [0.0, 2.0, -100.0, -100.0]])
    end_logits = np.array([[9.0, 0.0, 3.0, 0.0], [0.0, 2.5, -100.0, -100.0]])
    # The question token 0 scores highest but is not context; "ats" (6.0) beats "sleep" (4.5) and widens.
    assert postprocess_predictions(examples, features, start_logits, end_logits) == ["cats"]
    # "red ... ats" scores 10 but spans two tokens; the one-token spans of window 0 score 0 here.
    start_logits[0] = [0.0, 5.0, -5.0, 0.0]
    end_logits[0] = [0.0, -5.0, 5.0, 0.0]
    assert postprocess_predictions(examples, features, start_logits, end_logits, max_answer_length=1) == [
        "sleep"
    ]
    assert postprocess_predictions(examples, features, start_logits, end_logits) == ["red cats"]


def test_word_overlap_baseline_on_hand_computed_examples():
    questions = ["an animal that lives in water", "the red one", "a tool"]
    contexts = ["Fish live in water, and swim.", "Red hats and red shoes", "she slept"]
    # 1: "in water" and "live in water" both share 2 words: the shorter wins. 2: "Red" (1 word, earliest).
    # 3: no word in common: the first word.
    assert word_overlap_baseline(questions, contexts, max_words=3) == ["in water", "Red", "she"]
    assert word_overlap_baseline(questions[:1], contexts[:1], max_words=1) == ["in"]


def test_run_qa_writes_a_servable_model_card_and_logs(tiny_checkpoint, tmp_path):
    args = QuestionAnsweringArguments(
        model_name_or_path=tiny_checkpoint, max_train_samples=64, max_eval_samples=32, max_test_samples=100
    )
    training_args = TrainingArguments(
        output_dir=str(tmp_path),
        max_steps=4,
        per_device_train_batch_size=16,
        per_device_eval_batch_size=128,
        learning_rate=1e-3,
        report_to=["tensorboard"],
        use_cpu=True,
        save_strategy="no",
        eval_strategy="steps",
        eval_steps=4,
        logging_steps=1,
    )
    results = run_task("qa", args, training_args)
    assert results["steps"] == 4
    assert results["split_sizes"] == {"train": 64, "validation": 32, "test": 100}
    assert 0.0 <= results["test"]["test_exact_match"] <= results["test"]["test_f1"] <= 100.0
    assert 0.0 <= results["baseline_word_overlap_f1"] <= 100.0
    assert results["wall_seconds"] >= results["train_seconds"] > 0 and results["command"]
    for example in results["examples"]:
        assert example["prediction"] in example["context"]
    for name in ("loss_curve.png", "model.safetensors", "README.md", "qa_results.json"):
        assert (tmp_path / name).is_file(), name
    assert list(tmp_path.glob("runs/*/events.out.tfevents.*"))
    saved = json.loads((tmp_path / "qa_results.json").read_text())
    assert saved["baseline_word_overlap"]["f1"] == results["baseline_word_overlap_f1"]
    card = (tmp_path / "README.md").read_text()
    assert "pipeline_tag: question-answering" in card and "exact_match" in card and "baseline" in card

    context = "there was too much for one person to do"
    answer = pipeline("question-answering", model=str(tmp_path))(question="a human being", context=context)
    assert set(answer) == {"score", "start", "end", "answer"} and 0.0 <= answer["score"] <= 1.0
    assert answer["answer"] and context[answer["start"] : answer["end"]] == answer["answer"]


def test_finetune_command_and_user_csv_with_plain_answers(tiny_checkpoint, tmp_path):
    csv = tmp_path / "trivia.csv"
    rows = ["q,passage,answer"] + [f"who left?,Ann left the room {i},Ann" for i in range(20)]
    csv.write_text("\n".join(rows) + "\n")
    code = finetune_on_user_file(
        "qa",
        tiny_checkpoint,
        csv,
        tmp_path / "run",
        "--question_column",
        "q",
        "--context_column",
        "passage",
        "--answers_column",
        "answer",
    )
    assert code == 0
    results = json.loads((tmp_path / "run" / "qa_results.json").read_text())
    assert results["split_sizes"] == {"train": 20, "validation": 20, "test": 20}
    # "Ann" shares no word with "who left?"; "left" does, and is the only one-word span that scores 1.
    assert results["baseline_word_overlap_f1"] == 0.0


def test_user_csv_with_a_missing_answers_column_names_it(tmp_path):
    csv = tmp_path / "trivia.csv"
    csv.write_text("question,context,answer\nwho?,Ann left,Ann\n")
    args = QuestionAnsweringArguments(train_file=str(csv), validation_file=str(csv), test_file=str(csv))
    with pytest.raises(ValueError, match="'answers'"):
        load_question_answering_data(args)
