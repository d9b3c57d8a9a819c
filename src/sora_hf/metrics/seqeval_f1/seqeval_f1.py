"""Entity-level precision, recall and F1 of BIO tag sequences, computed with seqeval."""

import datasets
import evaluate
from seqeval.metrics import accuracy_score, classification_report, f1_score, precision_score, recall_score

_DESCRIPTION = """
Entity-level scores in the CoNLL way: an entity counts as found only when its type and its whole span match a
reference entity. `precision`, `recall` and `f1` are micro-averaged over entities; `accuracy` is per token.
All lie in [0, 1].
"""

_KWARGS_DESCRIPTION = """
Args:
    predictions (`list[list[str]]`): predicted tags per sentence, e.g. `[["B-PER", "I-PER", "O"]]`.
    references (`list[list[str]]`): reference tags per sentence, aligned with `predictions`.
    per_type (`bool`, *optional*, defaults to `False`): also return `<type>_precision`, `<type>_recall`,
        `<type>_f1` and `<type>_number` (the count of reference entities) for each entity type.
    scheme (`str`, *optional*): `"IOB2"`, `"IOBES"`, ... for seqeval's strict mode; default is CoNLL's lenient
        mode.
Returns:
    precision, recall, f1, accuracy (`float`), and the per-type entries when `per_type=True`.
Examples:
    >>> metric = sora_hf.metrics.load_metric("seqeval_f1")
    >>> metric.compute(predictions=[["B-PER", "I-PER", "O", "B-LOC"]], references=[["B-PER", "I-PER", "O", "B-ORG"]])
    {'precision': 0.5, 'recall': 0.5, 'f1': 0.5, 'accuracy': 0.75}
"""


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class SeqevalF1(evaluate.Metric):
    """Entity precision / recall / F1 (seqeval)."""

    def _info(self):
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation="",
            inputs_description=_KWARGS_DESCRIPTION,
            features=datasets.Features(
                {
                    "predictions": datasets.Sequence(datasets.Value("string")),
                    "references": datasets.Sequence(datasets.Value("string")),
                }
            ),
            reference_urls=["https://github.com/chakki-works/seqeval"],
        )

    def _compute(self, predictions, references, per_type=False, scheme=None):
        for index, (prediction, reference) in enumerate(zip(predictions, references)):
            if len(prediction) != len(reference):
                raise ValueError(
                    f"Sentence {index} has {len(prediction)} predicted tags but {len(reference)} reference tags"
                )
        options = {"mode": "strict", "scheme": _scheme(scheme)} if scheme else {}
        scores = {
            "precision": float(precision_score(references, predictions, zero_division=0, **options)),
            "recall": float(recall_score(references, predictions, zero_division=0, **options)),
            "f1": float(f1_score(references, predictions, zero_division=0, **options)),
            "accuracy": float(accuracy_score(references, predictions)),
        }
        if per_type:
            report = classification_report(
                references, predictions, output_dict=True, zero_division=0, **options
            )
            for kind, values in report.items():
                if kind.endswith(" avg"):
                    continue
                scores[f"{kind}_precision"] = float(values["precision"])
                scores[f"{kind}_recall"] = float(values["recall"])
                scores[f"{kind}_f1"] = float(values["f1-score"])
                scores[f"{kind}_number"] = int(values["support"])
        return scores


def _scheme(name):
    """seqeval's scheme class for a name such as "IOB2"."""
    from seqeval import scheme as schemes

    if not hasattr(schemes, name.upper()):
        raise ValueError(f"Unknown tagging scheme {name!r}; use one of IOB1, IOB2, IOE1, IOE2, IOBES, BILOU")
    return getattr(schemes, name.upper())
