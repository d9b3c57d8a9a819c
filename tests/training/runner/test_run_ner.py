"""The NER entry point: a few real Trainer steps on a slice, outputs a token-classification pipeline serves."""

import json

import pytest
import torch
from conftest import finetune_on_user_file, save_tiny_sora
from transformers import AutoModelForTokenClassification, AutoTokenizer, TrainingArguments, pipeline

from sora_hf.data.tasks import load_task_dataset
from sora_hf.training.finetuning import load_task_model
from sora_hf.training.pseudo_labels import pseudo_labelled_tweets, split_tweet_words
from sora_hf.training.runner import run_task
from sora_hf.training.tasks.token_classification import (
    IGNORE_INDEX,
    TokenClassificationArguments,
    align_labels,
    continuation_tag_ids,
    load_token_classification_data,
    majority_tag_baseline,
)


@pytest.fixture(scope="module")
def tiny_checkpoint(tmp_path_factory):
    folder = tmp_path_factory.mktemp("tiny-sora")
    texts = [" ".join(tokens) for tokens in load_task_dataset("ner")["train"]["tokens"]]
    return save_tiny_sora(folder, texts)  # a pretraining checkpoint, like `sora`


def test_align_labels_tags_first_sub_token_only(tiny_checkpoint):
    tokenizer = AutoTokenizer.from_pretrained(tiny_checkpoint, add_prefix_space=True)
    words = ["Empire", "Statebuildingxyz", "rocks"]
    encoded = tokenizer(words, is_split_into_words=True)
    labels = align_labels(encoded.word_ids(), [3, 4, 0])
    word_ids = encoded.word_ids()
    assert len(labels) == len(word_ids) and word_ids.count(1) > 1  # the odd word splits into sub-tokens
    first = [i for i, w in enumerate(word_ids) if w is not None and (i == 0 or word_ids[i - 1] != w)]
    assert [labels[i] for i in first] == [3, 4, 0]
    assert all(label == IGNORE_INDEX for i, label in enumerate(labels) if i not in first)


def test_label_all_tokens_gives_later_pieces_the_inside_tag(tiny_checkpoint):
    tokenizer = AutoTokenizer.from_pretrained(tiny_checkpoint, add_prefix_space=True)
    labels = ["O", "B-LOC", "I-LOC", "B-MISC"]  # MISC has no I- tag: its pieces keep B-MISC
    continuation = continuation_tag_ids(labels)
    assert continuation == {0: 0, 1: 2, 2: 2, 3: 3}
    words = ["Statebuildingxyz", "Statebuildingxyz", "Statebuildingxyz", "rocks"]
    encoded = tokenizer(words, is_split_into_words=True)
    word_ids = encoded.word_ids()
    tagged = align_labels(word_ids, [1, 2, 3, 0], continuation)
    by_word = {}
    for word_id, label in zip(word_ids, tagged):
        by_word.setdefault(word_id, []).append(label)
    assert by_word[None] == [IGNORE_INDEX] * word_ids.count(None)
    assert by_word[0][0] == 1 and set(by_word[0][1:]) == {2} and len(by_word[0]) > 1
    assert set(by_word[1]) == {2} and set(by_word[2]) == {3} and set(by_word[3]) == {0}


def test_majority_tag_baseline_is_lower_cased_and_unseen_is_o():
    labels = ["O", "B-PER", "I-PER"]
    train = {"tokens": [["Ann", "met", "ann"], ["ANN", "left"]], "ner_tags": [[1, 0, 1], [0, 0]]}
    test = {"tokens": [["ann", "Bob", "met"]], "ner_tags": [[1, 1, 0]]}
    scores = majority_tag_baseline(train, test, labels)  # predicts B-PER, O, O: one of two entities
    assert scores["precision"] == 1.0 and scores["recall"] == 0.5
    assert scores["f1"] == pytest.approx(2 / 3)


def test_run_ner_writes_a_servable_model(tiny_checkpoint, tmp_path):
    args = TokenClassificationArguments(
        model_name_or_path=tiny_checkpoint, max_train_samples=64, max_length=64, label_all_tokens=True
    )
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
    results = run_task("ner", args, training_args)
    assert results["steps"] == 4
    assert results["split_sizes"] == {"train": 64, "validation": 234, "test": 244}
    for key in ("test_precision", "test_recall", "test_f1", "test_accuracy"):
        assert 0.0 <= results["test"][key] <= 1.0, key
    assert 0.0 < results["baseline_majority_tag_f1"] <= 1.0
    for name in ("loss_curve.png", "model.safetensors", "config.json", "ner_results.json"):
        assert (tmp_path / name).is_file(), name
    card = (tmp_path / "README.md").read_text()
    assert f"entity F1 {results['test']['test_f1']:.3f}" in card
    assert f"baseline F1 {results['baseline_majority_tag_f1']:.3f}" in card
    saved = json.loads((tmp_path / "ner_results.json").read_text())
    assert saved["baseline_majority_tag_f1"] == results["baseline_majority_tag_f1"]
    assert json.loads((tmp_path / "config.json").read_text())["id2label"]["3"] == "B-facility"

    text = "Empire State Building in New York"
    # "first" (the tag of a word's first sub-token, the one trained) groups whole words, "O" included here.
    grouped = pipeline(
        "token-classification", model=str(tmp_path), aggregation_strategy="first", ignore_labels=[]
    )(text)
    assert grouped and " ".join(entity["word"].strip() for entity in grouped) == text
    for entity in grouped:
        assert {"entity_group", "word", "score", "start", "end"} <= set(entity)
        assert 0 <= entity["start"] < entity["end"] <= len(text) and 0.0 <= entity["score"] <= 1.0
        assert entity["start"] == 0 or text[entity["start"] - 1] == " "
        assert entity["end"] == len(text) or text[entity["end"]] == " "
    tokens = pipeline("token-classification", model=str(tmp_path), ignore_labels=[])(text)
    assert tokens and all(t["entity"] in saved["labels"] for t in tokens)
    assert all(text[t["start"] : t["end"]].strip() for t in tokens)


def test_finetune_command_and_user_jsonl(tiny_checkpoint, tmp_path):
    jsonl = tmp_path / "tweets.jsonl"
    rows = [
        {"words": ["Ann", "visited", "Paris", str(i)], "tags": ["B-PER", "O", "B-LOC", "O"]}
        for i in range(24)
    ]
    jsonl.write_text("".join(json.dumps(row) + "\n" for row in rows))
    code = finetune_on_user_file(
        "ner", tiny_checkpoint, jsonl, tmp_path / "run", "--tokens_column", "words", "--tags_column", "tags"
    )
    assert code == 0
    results = json.loads((tmp_path / "run" / "ner_results.json").read_text())
    assert results["split_sizes"]["test"] == 24
    assert results["labels"] == ["O", "B-LOC", "B-PER"]
    assert results["baseline_majority_tag_f1"] == 1.0  # every test token was seen in train


def test_user_jsonl_with_a_misnamed_tags_column_names_it(tmp_path):
    jsonl = tmp_path / "tweets.jsonl"
    jsonl.write_text(json.dumps({"tokens": ["Ann", "left"], "labels": ["B-PER", "O"]}) + "\n")
    args = TokenClassificationArguments(
        train_file=str(jsonl), validation_file=str(jsonl), test_file=str(jsonl), tags_column="ner_tags"
    )
    with pytest.raises(ValueError, match="ner_tags"):
        load_token_classification_data(args)


def test_user_train_file_without_test_file_says_which_is_missing(tmp_path):
    jsonl = tmp_path / "tweets.jsonl"
    jsonl.write_text(json.dumps({"tokens": ["Ann"], "ner_tags": ["B-PER"]}) + "\n")
    with pytest.raises(ValueError, match="test_file"):
        load_token_classification_data(
            TokenClassificationArguments(train_file=str(jsonl), validation_file=str(jsonl))
        )


def test_split_tweet_words_splits_like_the_ner_tweets():
    text = (
        "@paulwalk It's Empire State's view, can't wait!! http://bit.ly/bgCyZ0 #photography U.S. self-driving"
    )
    assert split_tweet_words(text) == [
        "@paulwalk", "It", "'s", "Empire", "State", "'s", "view", ",", "ca", "n't", "wait", "!!",
        "http://bit.ly/bgCyZ0", "#photography", "U.S", ".", "self-driving",
    ]  # fmt: skip


@pytest.fixture(scope="module")
def tiny_teacher(tiny_checkpoint, tmp_path_factory):
    """A token classifier with the NER tags (random head): what run_ner.py saves, as far as tagging goes."""
    folder = tmp_path_factory.mktemp("tiny-teacher")
    labels = load_task_dataset("ner")["train"].features["ner_tags"].feature.names
    torch.manual_seed(1)
    load_task_model(
        AutoModelForTokenClassification, tiny_checkpoint, labels, from_scratch=True
    ).save_pretrained(folder)
    AutoTokenizer.from_pretrained(tiny_checkpoint, add_prefix_space=True).save_pretrained(folder)
    return str(folder)


def test_pseudo_labels_are_the_teachers_word_tags(tiny_teacher):
    features = load_task_dataset("ner")["train"].features
    pseudo = pseudo_labelled_tweets(tiny_teacher, 40, features, exclude=[])
    assert len(pseudo) == 40 and pseudo.features == features
    teacher = AutoModelForTokenClassification.from_pretrained(tiny_teacher).eval()
    tokenizer = AutoTokenizer.from_pretrained(tiny_teacher)
    for row in pseudo.select(range(5)):
        assert len(row["ner_tags"]) == len(row["tokens"])
        encoded = tokenizer(row["tokens"], is_split_into_words=True, return_tensors="pt")  # alone: no padding
        with torch.no_grad():
            predicted = teacher(**encoded).logits[0].argmax(-1).tolist()
        word_ids = encoded.word_ids()
        first = [predicted[word_ids.index(w)] for w in range(len(row["tokens"]))]
        assert row["ner_tags"] == first
    # A tweet that is also an NER evaluation tweet is never tagged for training.
    kept = pseudo_labelled_tweets(tiny_teacher, 40, features, exclude=[pseudo[0]["tokens"]])
    assert pseudo[0]["tokens"] not in kept["tokens"] and len(kept) == 40


def test_pseudo_label_teacher_with_other_tags_is_refused(tiny_checkpoint, tmp_path):
    load_task_model(AutoModelForTokenClassification, tiny_checkpoint, ["O", "B-PER"], True).save_pretrained(
        tmp_path
    )
    features = load_task_dataset("ner")["train"].features
    with pytest.raises(ValueError, match="fine-tune the teacher on this task"):
        pseudo_labelled_tweets(str(tmp_path), 4, features, exclude=[])


def test_run_ner_trains_on_pseudo_labelled_tweets(tiny_checkpoint, tiny_teacher, tmp_path):
    args = TokenClassificationArguments(
        model_name_or_path=tiny_checkpoint,
        max_train_samples=16,
        max_length=64,
        pseudo_label_teacher=tiny_teacher,
        pseudo_label_samples=48,
        run_baseline=False,
    )
    training_args = TrainingArguments(
        output_dir=str(tmp_path), max_steps=2, per_device_train_batch_size=8, report_to=[], use_cpu=True,
        save_strategy="no",
    )  # fmt: skip
    results = run_task("ner", args, training_args)
    assert results["pseudo_labelled"] == 48 and results["split_sizes"]["train"] == 16
    assert "+ 48 unlabelled tweets" in (tmp_path / "README.md").read_text()
