"""Summarization: a Debian package's long description → its one-line synopsis."""

from __future__ import annotations

from datasets import DatasetDict, Features, Value

from ..installed_packages import TRANSLATION_LISTS, description_stanzas
from ._common import hash_split, to_dataset_dict

VERSION = "1"
TRANSLATION_FILES = TRANSLATION_LISTS  # the apt lists read (tests point it at an empty folder)
MIN_WORDS = 40
FEATURES = Features({"package": Value("string"), "document": Value("string"), "summary": Value("string")})


def read_descriptions() -> list[tuple[str, str, str]]:
    """(package, synopsis, long description) per stanza; paragraphs of the description joined by newlines."""
    entries = []
    for fields in description_stanzas(TRANSLATION_FILES):
        synopsis, _, long_description = fields["Description-en"].partition("\n")
        paragraphs, lines = [], []
        for line in long_description.split("\n"):
            if line.strip() == ".":  # paragraph separator
                paragraphs.append(" ".join(lines))
                lines = []
            else:
                lines.append(line.strip())
        paragraphs.append(" ".join(lines))
        document = "\n".join(paragraph for paragraph in paragraphs if paragraph)
        package, synopsis = fields.get("Package", "").strip(), synopsis.strip()
        if package and synopsis and document:
            entries.append((package, synopsis, document))
    return entries


def build() -> DatasetDict:
    """Descriptions of ≥ 40 words, one per package and per text, sorted by package.

    Split 80/10/10 by the first paragraph, which packages built from one source usually share, so
    `foo` and `foo-data` never sit in different splits.
    """
    entries = sorted(set(read_descriptions()))
    seen_packages, seen_documents, rows = set(), set(), []
    for package, synopsis, document in entries:
        if package in seen_packages or document in seen_documents or len(document.split()) < MIN_WORDS:
            continue
        seen_packages.add(package)
        seen_documents.add(document)
        split = hash_split(document.split("\n", 1)[0])
        rows.append((split, {"package": package, "document": document, "summary": synopsis}))
    return to_dataset_dict(rows, FEATURES)
