"""Extractive QA derived from WordNet: the gloss asks, an example sentence answers with the lemma's span."""

from __future__ import annotations

import re
from pathlib import Path

from datasets import DatasetDict, Features, List, Value

from ..installed_packages import require_path
from ._common import hash_split, to_dataset_dict

VERSION = "1"
WORDNET_DIR = Path("/usr/share/wordnet")
PARTS_OF_SPEECH = ("noun", "verb", "adj", "adv")
FEATURES = Features(
    {
        "id": Value("string"),
        "title": Value("string"),
        "question": Value("string"),
        "context": Value("string"),
        "answers": {"text": List(Value("string")), "answer_start": List(Value("int32"))},
    }
)


def find_word(phrase: str, text: str) -> re.Match | None:
    """Case-insensitive match of `phrase` in `text` on word boundaries."""
    return re.search(rf"(?<!\w){re.escape(phrase)}(?!\w)", text, flags=re.IGNORECASE)


def parse_synset(line: str) -> tuple[str, list[str], str, list[str]]:
    """One `data.<pos>` line → (synset id, lemmas with spaces, definition, example sentences)."""
    head, _, gloss = line.partition(" | ")
    fields = head.split()
    offset, synset_type, word_count = fields[0], fields[2], int(fields[3], 16)
    # Adjective lemmas may carry a syntactic marker such as "(p)" or "(ip)".
    lemmas = [re.sub(r"\(\w+\)$", "", fields[4 + 2 * i]).replace("_", " ") for i in range(word_count)]
    examples = [example.strip() for example in re.findall(r'"([^"]+)"', gloss)]
    definition = gloss.split('"', 1)[0].strip().rstrip(";").strip()
    return f"{synset_type}{offset}", lemmas, definition, examples


def build() -> DatasetDict:
    """One question per (synset, example) whose example holds a lemma and whose gloss does not; split by lemma."""
    rows = []
    for pos in PARTS_OF_SPEECH:
        path = require_path(WORDNET_DIR / f"data.{pos}", "wordnet-base")
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.startswith("  "):  # license header
                continue
            synset_id, lemmas, definition, examples = parse_synset(line)
            for index, example in enumerate(examples):
                # The first lemma of the synset (WordNet's most frequent) that occurs in the example.
                found = next(((lemma, m) for lemma in lemmas if (m := find_word(lemma, example))), None)
                if found is None or not definition:
                    continue
                lemma, match = found
                if find_word(lemma, definition):
                    continue
                row = {
                    "id": f"{synset_id}-{index}",
                    "title": lemma.lower(),
                    "question": definition,
                    "context": example,
                    "answers": {"text": [match.group(0)], "answer_start": [match.start()]},
                }
                rows.append((hash_split(lemma.lower()), row))
    return to_dataset_dict(rows, FEATURES)
