"""Topic classification: a Debian package's description → its archive section (games, sound, graphics, ...)."""

from __future__ import annotations

import glob
import subprocess

from datasets import ClassLabel, DatasetDict, Features, Value

from ..installed_packages import _FIELD, APT_HELPER, TRANSLATION_LISTS, description_stanzas, require_program
from ._common import hash_split, to_dataset_dict

VERSION = "1"
TRANSLATION_FILES = TRANSLATION_LISTS  # the apt lists read (tests point them at small files)
PACKAGE_FILES = "/var/lib/apt/lists/*_binary-amd64_Packages*"
# Frequent, distinct sections a person can name; library and language sections (libs, python, ...) say how a
# package is built, not what it is about.
LABEL_NAMES = ("games", "sound", "graphics", "science", "fonts", "math", "mail", "editors")
# Readable descriptions of the sections, for zero-shot prompts ("This text is about {}.").
LABEL_DESCRIPTIONS = {
    "games": "games",
    "sound": "audio and music",
    "graphics": "graphics and images",
    "science": "science",
    "fonts": "fonts",
    "math": "mathematics",
    "mail": "email",
    "editors": "text editors",
}
MAX_WORDS = 64  # the synopsis and the start of the description: about what a tweet-sized model reads
FEATURES = Features(
    {"package": Value("string"), "text": Value("string"), "label": ClassLabel(names=list(LABEL_NAMES))}
)


def read_sections(pattern: str = PACKAGE_FILES) -> dict[str, str]:
    """`Package` → `Section` from apt's `Packages` lists; the first list (sorted by path) naming a package wins."""
    require_program(APT_HELPER, "apt")
    sections: dict[str, str] = {}
    for path in sorted(p for p in glob.glob(pattern) if not p.endswith((".diff", "IndexDiff"))):
        text = subprocess.run(
            [APT_HELPER, "cat-file", path], check=True, capture_output=True, text=True
        ).stdout
        for stanza in text.split("\n\n"):
            fields = dict(_FIELD.findall(stanza))
            package, section = fields.get("Package", "").strip(), fields.get("Section", "").strip()
            if package and section:
                sections.setdefault(package, section.rsplit("/", 1)[-1])  # "contrib/games" → "games"
    return sections


def _text(description: str) -> str:
    """The synopsis as a sentence, then the long description's words, cut at `MAX_WORDS` words."""
    synopsis, _, long_description = description.partition("\n")
    words = [word for line in long_description.split("\n") if line.strip() != "." for word in line.split()]
    synopsis = synopsis.strip()
    return " ".join([synopsis + ("" if synopsis.endswith(".") else "."), *words][:MAX_WORDS])


def build() -> DatasetDict:
    """Packages of the `LABEL_NAMES` sections, one row per distinct text, sorted by package.

    Split 80/10/10 by the long description's first line, so packages built from one source (`foo`, `foo-data`, which
    share it) never sit in different splits.
    """
    sections = read_sections(PACKAGE_FILES)
    entries = {}
    for fields in description_stanzas(TRANSLATION_FILES):
        package = fields.get("Package", "").strip()
        if package and sections.get(package) in LABEL_NAMES and package not in entries:
            entries[package] = (sections[package], fields["Description-en"])
    seen_texts, rows = set(), []
    for package in sorted(entries):
        section, description = entries[package]
        text = _text(description)
        if len(text.split()) < 4 or text in seen_texts:
            continue
        seen_texts.add(text)
        split = hash_split(description.split("\n", 2)[1].strip() if "\n" in description else description)
        rows.append((split, {"package": package, "text": text, "label": LABEL_NAMES.index(section)}))
    return to_dataset_dict(rows, FEATURES)
