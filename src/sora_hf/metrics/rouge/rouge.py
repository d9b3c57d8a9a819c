"""ROUGE-1, ROUGE-2, ROUGE-L and ROUGE-Lsum F-measures of summaries, computed with rouge-score."""

import datasets
import evaluate
from rouge_score import rouge_scorer  # From: rouge-score

_DESCRIPTION = """
Mean F-measure over the examples of ROUGE-1 (unigram overlap), ROUGE-2 (bigram overlap), ROUGE-L (longest
common subsequence) and ROUGE-Lsum (ROUGE-L over newline-separated sentences), in [0, 1]. rouge-score's
tokeniser keeps only lower-cased ASCII letters and digits, so it suits English.
"""

_KWARGS_DESCRIPTION = """
Args:
    predictions (`list[str]`): one summary per example.
    references (`list[str]` or `list[list[str]]`): the reference summary (or several: the best one counts).
    use_stemmer (`bool`, *optional*, defaults to `False`): Porter-stem tokens before matching.
Returns:
    rouge1, rouge2, rougeL, rougeLsum (`float`), in [0, 1].
Examples:
    >>> metric = sora_hf.metrics.load_metric("rouge")
    >>> metric.compute(predictions=["the cat sat"], references=["the cat sat down"])
    {'rouge1': 0.8571428571428571, 'rouge2': 0.8, 'rougeL': 0.8571428571428571, 'rougeLsum': 0.8571428571428571}
"""

ROUGE_TYPES = ("rouge1", "rouge2", "rougeL", "rougeLsum")


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class Rouge(evaluate.Metric):
    """ROUGE-1/2/L/Lsum (rouge-score)."""

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
            reference_urls=["https://github.com/google-research/google-research/tree/master/rouge"],
        )

    def _compute(self, predictions, references, use_stemmer=False):
        scorer = rouge_scorer.RougeScorer(list(ROUGE_TYPES), use_stemmer=use_stemmer)
        totals = dict.fromkeys(ROUGE_TYPES, 0.0)
        for prediction, reference in zip(predictions, references):
            if isinstance(reference, str):
                scores = scorer.score(reference, prediction)
            else:
                scores = scorer.score_multi(list(reference), prediction)
            for kind in ROUGE_TYPES:
                totals[kind] += scores[kind].fmeasure
        count = max(len(predictions), 1)
        return {kind: total / count for kind, total in totals.items()}
