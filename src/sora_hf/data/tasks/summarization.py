"""Summarization: a Debian package's long description → its one-line synopsis."""

from __future__ import annotations

import glob
import subprocess

from datasets import DatasetDict, Features, Value

from ._common import MissingDataError, debian_program, hash_split, to_dataset_dict

VERSION = "1"
TRANSLATION_FILES = "/var/lib/apt/lists/*_i18n_Translation-en*"
APT_HELPER = "/usr/lib/apt/apt-helper"
MIN_WORDS = 40
FEATURES = Features({"package": Value("string"), "document": Value("string"), "summary": Value("string")})


def read_translation_files() -> str:
    """The text of every English Translation index apt has downloaded (any compression)."""
    paths = sorted(glob.glob(TRANSLATION_FILES))
    if not paths:
        raise MissingDataError(
            f"No Debian description index matches {TRANSLATION_FILES}. Download it with: "
            "sudo apt-get update -o Acquire::Languages=en"
        )
    helper = debian_program(APT_HELPER, "apt")
    return "\n\n".join(
        subprocess.run([helper, "cat-file", path], capture_output=True, check=True, text=True).stdout
        for path in paths
    )


def parse_descriptions(text: str) -> list[tuple[str, str, str]]:
    """(package, synopsis, long description) per stanza; paragraphs of the description joined by newlines."""
    entries = []
    for stanza in text.split("\n\n"):
        package, synopsis, paragraphs, lines = None, None, [], []
        for line in stanza.splitlines():
            if line.startswith("Package: "):
                package = line[len("Package: ") :].strip()
            elif line.startswith("Description-en: "):
                synopsis = line[len("Description-en: ") :].strip()
            elif line.startswith(" ") and synopsis is not None:
                if line.strip() == ".":  # paragraph separator
                    paragraphs.append(" ".join(lines))
                    lines = []
                else:
                    lines.append(line.strip())
        paragraphs.append(" ".join(lines))
        document = "\n".join(paragraph for paragraph in paragraphs if paragraph)
        if package and synopsis and document:
            entries.append((package, synopsis, document))
    return entries


def build() -> DatasetDict:
    """Descriptions of ≥ 40 words, one per package and per text, sorted by package.

    Split 80/10/10 by the first paragraph, which packages built from one source usually share, so
    `foo` and `foo-data` never sit in different splits.
    """
    entries = sorted(set(parse_descriptions(read_translation_files())))
    seen_packages, seen_documents, rows = set(), set(), []
    for package, synopsis, document in entries:
        if package in seen_packages or document in seen_documents or len(document.split()) < MIN_WORDS:
            continue
        seen_packages.add(package)
        seen_documents.add(document)
        split = hash_split(document.split("\n", 1)[0])
        rows.append((split, {"package": package, "document": document, "summary": synopsis}))
    return to_dataset_dict(rows, FEATURES)
