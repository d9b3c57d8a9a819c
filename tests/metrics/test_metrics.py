"""Local `evaluate` metric modules against hand-computed examples."""

import math

import evaluate
import pytest

from sora_hf.metrics import METRICS, load_metric, metric_path


@pytest.mark.parametrize("name", METRICS)
def test_metric_folders_load_with_evaluate(name):
    folder = metric_path(name)
    assert (folder / f"{name}.py").is_file()
    metric = evaluate.load(str(folder))
    assert isinstance(metric, evaluate.Metric)
    assert metric.name == name


def test_unknown_metric():
    with pytest.raises(ValueError, match="Unknown metric 'bleu'.*sacrebleu_chrf"):
        load_metric("bleu")


def test_accuracy_f1():
    metric = load_metric("accuracy_f1")
    # 3 of 4 right. Per-class F1: class 0 → 1; class 1 → P 1/2, R 1 → 2/3; class 2 → P 1, R 1/2 → 2/3.
    scores = metric.compute(predictions=[0, 1, 1, 2], references=[0, 1, 2, 2])
    assert scores == pytest.approx({"accuracy": 0.75, "macro_f1": (1 + 2 / 3 + 2 / 3) / 3})
    # String labels. "pos": P 2/3, R 1 → F1 0.8; "neg" is never predicted → F1 0.
    scores = metric.compute(predictions=["pos", "pos", "pos"], references=["pos", "pos", "neg"])
    assert scores == pytest.approx({"accuracy": 2 / 3, "macro_f1": (0.8 + 0.0) / 2})
    # Batches accumulate like any evaluate metric.
    metric.add_batch(predictions=[1, 1], references=[1, 0])
    metric.add_batch(predictions=[0], references=[0])
    assert metric.compute()["accuracy"] == pytest.approx(2 / 3)


def test_seqeval_f1():
    metric = load_metric("seqeval_f1")
    # PER found exactly; LOC predicted where ORG is: 1 of 2 predicted entities right, 1 of 2 gold found.
    predictions = [["B-PER", "I-PER", "O", "B-LOC"], ["O", "B-ORG"]]
    references = [["B-PER", "I-PER", "O", "B-ORG"], ["O", "O"]]
    scores = metric.compute(predictions=predictions, references=references)
    # predicted entities: PER, LOC, ORG (3), gold: PER, ORG (2), correct: PER (1); tokens right: 4 of 6.
    assert scores == pytest.approx({"precision": 1 / 3, "recall": 1 / 2, "f1": 0.4, "accuracy": 4 / 6})
    # A span cut short is not a match.
    scores = metric.compute(predictions=[["B-PER", "O"]], references=[["B-PER", "I-PER"]])
    assert scores["f1"] == 0.0 and scores["accuracy"] == 0.5
    per_type = metric.compute(predictions=predictions, references=references, per_type=True, scheme="IOB2")
    assert per_type["PER_f1"] == 1.0 and per_type["ORG_number"] == 1 and per_type["ORG_recall"] == 0.0
    with pytest.raises(ValueError, match="Sentence 0 has 2 predicted tags but 3 reference tags"):
        metric.compute(predictions=[["O", "O"]], references=[["O", "O", "O"]])


def test_squad_qa():
    metric = load_metric("squad_qa")
    # "the Eiffel tower" normalises to "eiffel tower": exact. "Paris" vs "in Paris, France": 1 common token,
    # P 1, R 1/3 → F1 1/2. Means: EM 50, F1 75.
    scores = metric.compute(
        predictions=["the Eiffel tower", "Paris"], references=[["Eiffel Tower"], ["in Paris, France"]]
    )
    assert scores == pytest.approx({"exact_match": 50.0, "f1": 75.0})
    # The best of several references counts; plain strings work as single references.
    scores = metric.compute(predictions=["Paris"], references=[["in Paris, France", "Paris!"]])
    assert scores == pytest.approx({"exact_match": 100.0, "f1": 100.0})
    scores = metric.compute(predictions=["a big dog"], references=["the dog"])
    # "big dog" vs "dog": P 1/2, R 1 → F1 2/3.
    assert scores == pytest.approx({"exact_match": 0.0, "f1": 200 / 3})


def test_sacrebleu_chrf():
    metric = load_metric("sacrebleu_chrf")
    same = metric.compute(predictions=["the cat sat on the mat"], references=[["the cat sat on the mat"]])
    assert same == pytest.approx({"bleu": 100.0, "chrf": 100.0})
    # n-gram precisions 5/6, 3/5, 2/4, 1/3; equal lengths, so no brevity penalty: BLEU = (1/12) ** (1/4).
    scores = metric.compute(predictions=["the cat sat on the mat"], references=["the cat sat on a mat"])
    assert scores["bleu"] == pytest.approx(100 * (5 / 6 * 3 / 5 * 2 / 4 * 1 / 3) ** 0.25)
    assert 0 < scores["chrf"] < 100
    disjoint = metric.compute(predictions=["xyz"], references=["abc"])
    assert disjoint["chrf"] == 0.0 and disjoint["bleu"] == 0.0
    with pytest.raises(ValueError, match="same number of references"):
        metric.compute(predictions=["a", "b"], references=[["a"], ["b", "c"]])


def test_rouge():
    metric = load_metric("rouge")
    # "the cat sat" vs "the cat sat down": unigrams P 1, R 3/4 → 6/7; bigrams P 1, R 2/3 → 4/5; LCS 3 → 6/7.
    scores = metric.compute(predictions=["the cat sat"], references=["the cat sat down"])
    assert scores == pytest.approx({"rouge1": 6 / 7, "rouge2": 0.8, "rougeL": 6 / 7, "rougeLsum": 6 / 7})
    # Mean over examples; with several references the best counts.
    scores = metric.compute(
        predictions=["the cat sat", "dogs bark"], references=[["a dog", "the cat sat"], "cats"]
    )
    assert scores["rouge1"] == pytest.approx(0.5) and scores["rouge2"] == pytest.approx(0.5)
    assert not math.isnan(scores["rougeL"])
