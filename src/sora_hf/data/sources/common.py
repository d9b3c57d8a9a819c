"""Helpers shared by the corpus source readers: sentence splitting and document packing."""

import re
from collections.abc import Iterable, Iterator

# A document longer than this is split at sentence boundaries (whitespace tokens).
MAX_WORDS = 200
# Consecutive units (paragraphs, senses) are packed into one document until it reaches this many words.
TARGET_WORDS = 60

_SENTENCE_END = re.compile(r"(?:(?<=[.!?])|(?<=[.!?][\"'”’)]))\s+(?=[\"'“‘(¿¡]*[A-ZÁÉÍÓÚÑ0-9])")


def word_count(text: str) -> int:
    """Number of whitespace-separated tokens."""
    return len(text.split())


def squash(text: str) -> str:
    """Collapse every run of whitespace (newlines included) into one space."""
    return " ".join(text.split())


def as_sentence(text: str) -> str:
    """Capitalise the first letter and end the text with sentence punctuation (a colon counts)."""
    text = squash(text).strip(" ;,")
    if not text:
        return ""
    text = text[0].upper() + text[1:]
    if text[-1] not in ".!?:\"'”’)":
        text += "."
    return text


def split_sentences(text: str) -> list[str]:
    """Split prose into sentences at `. ! ?` (and a closing quote) followed by a capital letter or digit (good enough for packing)."""
    return [part for part in _SENTENCE_END.split(squash(text)) if part]


def split_long(text: str, max_words: int = MAX_WORDS) -> list[str]:
    """Split `text` into pieces of at most `max_words` words, cutting at sentence boundaries when possible."""
    if word_count(text) <= max_words:
        return [text]
    pieces, current, size = [], [], 0
    for sentence in split_sentences(text):
        words = sentence.split()
        # A single sentence longer than the limit is cut by words.
        chunks = [" ".join(words[i : i + max_words]) for i in range(0, len(words), max_words)]
        for chunk in chunks:
            n = word_count(chunk)
            if current and size + n > max_words:
                pieces.append(" ".join(current))
                current, size = [], 0
            current.append(chunk)
            size += n
    if current:
        pieces.append(" ".join(current))
    return pieces


def pack_units(
    units: Iterable[str], target_words: int = TARGET_WORDS, max_words: int = MAX_WORDS
) -> Iterator[str]:
    """Join consecutive units (paragraphs, senses) into documents of about `target_words`, never over `max_words`."""
    current: list[str] = []
    size = 0
    for unit in units:
        for piece in split_long(squash(unit), max_words):
            n = word_count(piece)
            if current and (size >= target_words or size + n > max_words):
                yield " ".join(current)
                current, size = [], 0
            current.append(piece)
            size += n
    if current:
        yield " ".join(current)


def even_chunks(units: list[str], max_units: int, max_words: int = MAX_WORDS) -> Iterator[str]:
    """Cut `units` into runs of at most `max_units` of nearly equal length; a run over `max_words` is halved."""
    if not units:
        return
    n_chunks = -(-len(units) // max_units)
    bounds = [round(i * len(units) / n_chunks) for i in range(n_chunks + 1)]
    for start, end in zip(bounds, bounds[1:]):
        yield from _halve(units[start:end], max_words)


def _halve(units: list[str], max_words: int) -> Iterator[str]:
    text = " ".join(units)
    if len(units) > 1 and word_count(text) > max_words:
        middle = len(units) // 2
        yield from _halve(units[:middle], max_words)
        yield from _halve(units[middle:], max_words)
    else:
        yield from split_long(text, max_words)
