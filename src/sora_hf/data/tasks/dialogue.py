"""Dialogue as response generation: consecutive turns of chatterbot-corpus's English conversations."""

from __future__ import annotations

import yaml
from datasets import DatasetDict, Features, Value

from ._common import hash_split, pypi_data_path, to_dataset_dict

VERSION = "1"
FEATURES = Features(
    {
        "id": Value("string"),
        "conversation_id": Value("string"),
        "context": Value("string"),
        "response": Value("string"),
    }
)


def build() -> DatasetDict:
    """(previous turn, turn) pairs from the English files, in file order.

    Split 80/10/10 by the opening turn, so a conversation never crosses splits and conversations that open
    alike (the same question with different answers) stay together.
    """
    folder = pypi_data_path("chatterbot_corpus", "data/english", "chatterbot-corpus==1.3.3")
    rows = []
    for path in sorted(folder.glob("*.yml")):
        corpus = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        for index, turns in enumerate(corpus.get("conversations") or []):
            turns = [text for text in (str(turn).strip() for turn in turns) if text]
            if len(turns) < 2:
                continue
            conversation_id = f"{path.stem}-{index}"
            split = hash_split(turns[0].lower())
            for turn in range(1, len(turns)):
                row = {
                    "id": f"{conversation_id}-{turn}",
                    "conversation_id": conversation_id,
                    "context": turns[turn - 1],
                    "response": turns[turn],
                }
                rows.append((split, row))
    return to_dataset_dict(rows, FEATURES)
