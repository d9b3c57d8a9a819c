"""SQuAD exact match and token F1 of extractive answers, with SQuAD's answer normalisation."""

import collections
import re
import string

import datasets
import evaluate

_DESCRIPTION = """
SQuAD v1.1 scores. Answers are normalised (lower case, punctuation and the articles a / an / the removed,
whitespace collapsed); exact match asks for equal normalised strings, F1 is the overlap of their tokens.
Each prediction takes its best score over its reference answers. Both are percentages in [0, 100].
"""

_KWARGS_DESCRIPTION = """
Args:
    predictions (`list[str]`): one predicted answer per question.
    references (`list[list[str]]` or `list[str]`): the gold answer(s) per question.
Returns:
    exact_match (`float`), f1 (`float`), in [0, 100].
Examples:
    >>> metric = sora_hf.metrics.load_metric("squad_qa")
    >>> metric.compute(predictions=["the Eiffel tower", "Paris"], references=[["Eiffel Tower"], ["in Paris, France"]])
    {'exact_match': 50.0, 'f1': 75.0}
"""


def normalize_answer(text):
    """Lower case, drop punctuation and articles, collapse whitespace (SQuAD's official evaluation script)."""
    text = "".join(ch for ch in text.lower() if ch not in set(string.punctuation))
    text = re.sub(r"\b(a|an|the)\b", " ", text)
    return " ".join(text.split())


def token_f1(prediction, reference):
    """F1 of the bags of normalised tokens."""
    prediction_tokens = normalize_answer(prediction).split()
    reference_tokens = normalize_answer(reference).split()
    if not prediction_tokens or not reference_tokens:
        return float(prediction_tokens == reference_tokens)
    common = sum((collections.Counter(prediction_tokens) & collections.Counter(reference_tokens)).values())
    if common == 0:
        return 0.0
    precision = common / len(prediction_tokens)
    recall = common / len(reference_tokens)
    return 2 * precision * recall / (precision + recall)


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class SquadQa(evaluate.Metric):
    """SQuAD exact match and F1."""

    def _info(self):
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation="",
            inputs_description=_KWARGS_DESCRIPTION,
            features=[
                datasets.Features(
                    {
                        "predictions": datasets.Value("string"),
                        "references": datasets.Sequence(datasets.Value("string")),
                    }
                ),
                datasets.Features(
                    {"predictions": datasets.Value("string"), "references": datasets.Value("string")}
                ),
            ],
            reference_urls=["https://rajpurkar.github.io/SQuAD-explorer/"],
        )

    def _compute(self, predictions, references):
        exact, f1 = 0.0, 0.0
        for index, (prediction, answers) in enumerate(zip(predictions, references)):
            answers = [answers] if isinstance(answers, str) else list(answers)
            if not answers:
                raise ValueError(f"Question {index} has no reference answer")
            exact += max(float(normalize_answer(prediction) == normalize_answer(a)) for a in answers)
            f1 += max(token_f1(prediction, a) for a in answers)
        count = max(len(predictions), 1)
        return {"exact_match": 100.0 * exact / count, "f1": 100.0 * f1 / count}
