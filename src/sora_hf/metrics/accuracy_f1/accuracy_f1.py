"""Accuracy and macro-F1 of class predictions, computed with scikit-learn."""

import datasets
import evaluate
from sklearn.metrics import accuracy_score, f1_score  # From: scikit-learn

_DESCRIPTION = """
Accuracy (the fraction of predictions equal to their reference) and macro-F1 (the unweighted mean of the
per-class F1 scores, so rare classes count as much as frequent ones). Both lie in [0, 1].
"""

_KWARGS_DESCRIPTION = """
Args:
    predictions (`list[int]` or `list[str]`): predicted labels.
    references (`list[int]` or `list[str]`): reference labels.
    labels (`list`, *optional*): the classes that macro-F1 averages over; by default every class that occurs
        in `predictions` or `references`.
Returns:
    accuracy (`float`), macro_f1 (`float`).
Examples:
    >>> metric = sora_hf.metrics.load_metric("accuracy_f1")
    >>> metric.compute(predictions=[0, 1, 1, 2], references=[0, 1, 2, 2])
    {'accuracy': 0.75, 'macro_f1': 0.7777777777777777}
"""


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class AccuracyF1(evaluate.Metric):
    """Accuracy and macro-F1 (scikit-learn)."""

    def _info(self):
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation="",
            inputs_description=_KWARGS_DESCRIPTION,
            features=[
                datasets.Features(
                    {"predictions": datasets.Value("int64"), "references": datasets.Value("int64")}
                ),
                datasets.Features(
                    {"predictions": datasets.Value("string"), "references": datasets.Value("string")}
                ),
            ],
            reference_urls=["https://scikit-learn.org/stable/modules/model_evaluation.html"],
        )

    def _compute(self, predictions, references, labels=None):
        return {
            "accuracy": float(accuracy_score(references, predictions)),
            "macro_f1": float(
                f1_score(references, predictions, labels=labels, average="macro", zero_division=0)
            ),
        }
