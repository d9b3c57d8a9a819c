"""Corpus BLEU and chrF of translations, computed with sacreBLEU."""

import datasets
import evaluate
import sacrebleu

_DESCRIPTION = """
Corpus-level BLEU (sacreBLEU's standard 13a tokenisation) and chrF (character n-gram F-score, beta 2), both
in [0, 100]. chrF is the more telling of the two for small models and short segments.
"""

_KWARGS_DESCRIPTION = """
Args:
    predictions (`list[str]`): one hypothesis per segment.
    references (`list[list[str]]` or `list[str]`): the reference translation(s) per segment; every segment
        needs the same number of references.
    tokenize (`str`, *optional*, defaults to `"13a"`): sacreBLEU's BLEU tokeniser.
    lowercase (`bool`, *optional*, defaults to `False`).
Returns:
    bleu (`float`), chrf (`float`), in [0, 100].
Examples:
    >>> metric = sora_hf.metrics.load_metric("sacrebleu_chrf")
    >>> metric.compute(predictions=["the cat sat on the mat"], references=[["the cat sat on the mat"]])
    {'bleu': 100.00000000000004, 'chrf': 100.0}
"""


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class SacrebleuChrf(evaluate.Metric):
    """sacreBLEU BLEU and chrF."""

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
            reference_urls=["https://github.com/mjpost/sacrebleu"],
        )

    def _compute(self, predictions, references, tokenize="13a", lowercase=False):
        references = [[r] if isinstance(r, str) else list(r) for r in references]
        counts = {len(r) for r in references}
        if len(counts) > 1:
            raise ValueError(
                f"Every prediction needs the same number of references; got counts {sorted(counts)}"
            )
        # sacreBLEU wants one stream per reference position: transpose.
        streams = [list(stream) for stream in zip(*references)]
        bleu = sacrebleu.corpus_bleu(predictions, streams, tokenize=tokenize, lowercase=lowercase)
        chrf = sacrebleu.corpus_chrf(predictions, streams)
        return {"bleu": float(bleu.score), "chrf": float(chrf.score)}
