"""The Jargon File 4.4.7 (Debian `jargon-text`): the prose paragraphs of each entry and chapter, packed."""

import gzip
import re
from collections.abc import Iterator

from ..installed_packages import require_path
from .common import pack_units, squash

JARGON_PATH = "/usr/share/doc/jargon-text/jargon.txt.gz"
PACKAGE = "jargon-text"
_HEADWORD = re.compile(r"^:[^:]+:")
_HEADING = re.compile(r"^(Chapter|Appendix) \d*|^[A-Z]\.? ")
# A sense number or a part of speech opening a paragraph: "1. ", "n. ", "vt. ".
_SENSE_NUMBER = re.compile(r"^(?:(?:\d+\.|(?:n|v|vt|vi|adj|adv|interj|excl|prep|pron|conj|pl)\.)\s+)+")
_CROSS_REFERENCE = re.compile(r"\{([^{}]*)\}")


def check_jargon() -> None:
    """Raise `MissingDataError` naming the Debian package when the Jargon File is not installed."""
    require_path(JARGON_PATH, PACKAGE)


def is_prose(paragraph: str) -> bool:
    """A paragraph of at least four words with sentence punctuation (drops tables of contents and titles)."""
    return len(paragraph.split()) >= 4 and any(mark in paragraph for mark in ".!?")


def read_jargon() -> Iterator[str]:
    """Yield documents of consecutive prose paragraphs of one entry (or chapter), in file order."""
    check_jargon()
    with gzip.open(JARGON_PATH, "rt", encoding="utf-8") as handle:
        paragraphs = [squash(block) for block in re.split(r"\n\s*\n", handle.read())]
    group: list[str] = []
    for paragraph in paragraphs:
        if _HEADWORD.match(paragraph) or (_HEADING.match(paragraph) and not is_prose(paragraph)):
            yield from pack_units(group)
            group = []
            continue
        paragraph = _CROSS_REFERENCE.sub(r"\1", _SENSE_NUMBER.sub("", paragraph))
        if is_prose(paragraph):
            group.append(paragraph)
    yield from pack_units(group)
