"""Debian long package descriptions (apt's `Translation-en` lists), paragraphs deduplicated across packages."""

import re
from collections.abc import Iterator

from ..installed_packages import description_stanzas, translation_files
from .common import as_sentence, pack_units, squash

_BULLET = re.compile(r"^\s*(?:[*+•o-]|\d+[.)])\s+")


def check_debian() -> None:
    """Raise `MissingDataError` when the `Translation-en` lists are missing."""
    translation_files()


def read_records() -> dict[str, tuple[str, str]]:
    """`{description md5: (package, long description)}` over every list, the smallest package name per md5."""
    records: dict[str, tuple[str, str]] = {}
    for fields in description_stanzas():
        key = fields.get("Description-md5", fields["Description-en"])
        package = fields.get("Package", "")
        long_description = fields["Description-en"].partition("\n")[2]
        if key not in records or package < records[key][0]:
            records[key] = (package, long_description)
    return records


def description_paragraphs(long_description: str) -> list[str]:
    """Paragraphs of a long description (" ." separates them); each list item becomes a sentence."""
    paragraphs: list[str] = []
    current: list[str] = []  # the lines of the current sentence-like piece
    pieces: list[str] = []
    for line in long_description.split("\n") + [" ."]:
        line = line[1:] if line.startswith(" ") else line
        if line.strip() == "." or _BULLET.match(line):
            if current:
                pieces.append(" ".join(current))
            current = []
            if line.strip() == ".":
                if pieces:
                    paragraphs.append(" ".join(as_sentence(piece) for piece in pieces))
                pieces = []
                continue
            line = _BULLET.sub("", line)
        current.append(line.strip())
    return [squash(paragraph) for paragraph in paragraphs if paragraph.strip()]


def read_debian() -> Iterator[str]:
    """Yield descriptions in package order, each paragraph kept only the first time it appears in any package."""
    seen: set[str] = set()
    for _package, long_description in sorted(read_records().values()):
        fresh = []
        for paragraph in description_paragraphs(long_description):
            if paragraph not in seen:
                seen.add(paragraph)
                fresh.append(paragraph)
        yield from pack_units(fresh)
