"""Turn a text corpus into pretraining examples: documents split into sentences, tokenized and packed into chunks.

Packing is always on: a document's consecutive sentences fill a chunk up to `max_length` tokens (a chunk never
mixes two documents, so next-sentence pairs and denoising targets stay one text). `prepare_pretraining_dataset`
packs a whole corpus ahead of training; `pretraining_stream.PretrainingStream` (`--streaming`) runs the same
`_tokenize_and_pack` on the fly.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import datasets
    from transformers import PreTrainedTokenizerBase

# A boundary is whitespace after `.`, `!` or `?` (optionally followed by a closing quote or bracket) when the next
# sentence starts with a capital letter, possibly behind an opening quote or bracket; or a line break.
_SENTENCE_BOUNDARY = re.compile(
    r"(?:(?<=[.!?])|(?<=[.!?][\"'\u201d\u2019)\]]))\s+(?=[\"'\u201c\u2018(\[\u00bf\u00a1]?[A-Z\u00c0-\u00d6\u00d8-\u00de])"
    r"|\s*\n\s*"
)
SPECIAL_TOKENS_PER_PAIR = 3  # <s> A </s> B </s>


def split_sentences(text: str) -> list[str]:
    """Split a document into sentences at `.!?` + whitespace + capital letter, and at line breaks."""
    return [sentence for sentence in (part.strip() for part in _SENTENCE_BOUNDARY.split(text)) if sentence]


def pack_sentences(sentences: list[list[int]], budget: int) -> list[list[list[int]]]:
    """Pack consecutive token-id sentences into chunks of at most `budget` tokens; too-long sentences are cut."""
    pieces = []
    for sentence in sentences:
        # A sentence longer than a whole chunk is cut into chunk-sized pieces rather than dropped.
        pieces.extend(sentence[start : start + budget] for start in range(0, len(sentence), budget))
    chunks: list[list[list[int]]] = []
    current: list[list[int]] = []
    current_length = 0
    for piece in pieces:
        if current and current_length + len(piece) > budget:
            chunks.append(current)
            current, current_length = [], 0
        current.append(piece)
        current_length += len(piece)
    if current:
        chunks.append(current)
    # Next-sentence prediction wants a split point: give a lone last sentence a neighbour from the chunk before.
    if len(chunks) >= 2 and len(chunks[-1]) == 1 and len(chunks[-2]) >= 3:
        moved = chunks[-2][-1]
        if len(moved) + len(chunks[-1][0]) <= budget:
            chunks[-1].insert(0, chunks[-2].pop())
    return chunks


def _tokenize_and_pack(batch: dict[str, list], tokenizer, text_column: str, budget: int) -> dict[str, list]:
    """`datasets.map` function: documents in, one row per packed chunk out."""
    flat_sentences: list[str] = []
    counts: list[int] = []
    for text in batch[text_column]:
        sentences = split_sentences(text or "")
        # Byte-level BPE without a prefix space: a sentence after the first keeps the space that preceded it in the
        # running text, so its first word is encoded as a word-initial ("Ġ") token, as inside the document.
        flat_sentences.extend(
            sentence if index == 0 else " " + sentence for index, sentence in enumerate(sentences)
        )
        counts.append(len(sentences))
    token_ids = tokenizer(flat_sentences, add_special_tokens=False)["input_ids"] if flat_sentences else []
    chunks_out: list[list[list[int]]] = []
    lengths: list[int] = []
    start = 0
    for count in counts:
        document = [ids for ids in token_ids[start : start + count] if ids]
        start += count
        for chunk in pack_sentences(document, budget):
            chunks_out.append(chunk)
            lengths.append(sum(len(sentence) for sentence in chunk) + SPECIAL_TOKENS_PER_PAIR)
    return {"sentences": chunks_out, "length": lengths}


def prepare_pretraining_dataset(
    dataset: datasets.Dataset | datasets.DatasetDict,
    tokenizer: PreTrainedTokenizerBase,
    max_length: int = 128,
    num_proc: int = 1,
    text_column: str = "text",
    batch_size: int = 1000,
) -> datasets.Dataset | datasets.DatasetDict:
    """Split documents into sentences, tokenize them and pack each document's sentences into chunks.

    Each output row has `sentences` (`list[list[int]]`, token ids without special tokens, consecutive sentences
    of one document, `sum(len) <= max_length - 3` so that `<s> A </s> B </s>` fits) and `length` (the chunk's
    length with those 3 special tokens, for `group_by_length`). The input columns are dropped. With `Trainer`, set
    `remove_unused_columns=False` so `sentences` reaches `DataCollatorForSoraPretraining`.
    """
    import datasets

    if not isinstance(dataset, datasets.Dataset | datasets.DatasetDict):
        raise ValueError(
            f"prepare_pretraining_dataset expects a datasets.Dataset or DatasetDict, got {type(dataset).__name__}: "
            "wrap texts with datasets.Dataset.from_dict({'text': texts})."
        )
    if (
        isinstance(max_length, bool)
        or not isinstance(max_length, int)
        or max_length <= SPECIAL_TOKENS_PER_PAIR
    ):
        raise ValueError(
            f"max_length must be an int above {SPECIAL_TOKENS_PER_PAIR} (room for <s> A </s> B </s>); got {max_length!r}."
        )
    if isinstance(num_proc, bool) or not isinstance(num_proc, int) or num_proc < 1:
        raise ValueError(f"num_proc must be an int >= 1; got {num_proc!r}.")
    splits = dataset.values() if isinstance(dataset, datasets.DatasetDict) else [dataset]
    for split in splits:
        if text_column not in split.column_names:
            raise ValueError(
                f"The dataset has no column {text_column!r} (columns: {split.column_names}): set text_column to "
                "the column holding the documents."
            )
    column_names = next(iter(splits)).column_names if splits else []
    features = datasets.Features(
        {
            "sentences": datasets.List(datasets.List(datasets.Value("int32"))),
            "length": datasets.Value("int32"),
        }
    )
    return dataset.map(
        _tokenize_and_pack,
        batched=True,
        batch_size=batch_size,
        num_proc=num_proc if num_proc > 1 else None,
        remove_columns=column_names,
        features=features,
        fn_kwargs={
            "tokenizer": tokenizer,
            "text_column": text_column,
            "budget": max_length - SPECIAL_TOKENS_PER_PAIR,
        },
        desc="Splitting, tokenizing and packing sentences",
    )


__all__ = ["pack_sentences", "prepare_pretraining_dataset", "split_sentences"]
