"""English→Spanish Bible verses: World English Bible and Reina-Valera 1909 (SWORD modules), aligned by verse."""

from __future__ import annotations

import re

from datasets import DatasetDict, Features, Translation, Value

from ..installed_packages import MissingDataError, install_hint, run_diatheke
from ._common import hash_split, to_dataset_dict

VERSION = "1"
MODULES = {"en": ("engWEB2015eb", "sword-text-web"), "es": ("spaRV1909eb", "sword-text-sparv")}
VERSE_RANGE = "Genesis 1:1-Revelation 22:21"
FEATURES = Features({"id": Value("string"), "translation": Translation(languages=["en", "es"])})

# "Book c:v: " where a verse starts; books look like "Genesis", "II Kings", "Song of Solomon", "Esther (Greek)".
VERSE_REF = re.compile(
    r"((?:I{1,3} |IV )?[A-Z][A-Za-z]*(?: (?:of|and|the|\(Greek\)|[A-Z][a-z]+))*) (\d+):(\d+): "
)
MARKUP = re.compile(
    r"<title[^>]*>.*?</title>"  # stray OSIS headings
    r"|<note[^>]*>.*?</note>"
    r"|\[\s*\d+:\d+(?:[^\[\]]|\[[^\[\]]*\])*\]"  # footnotes "[c:v …]", which may hold one bracketed aside
    r"|\[\s*\]"
    r"|‹[^>]*>"
    r"|<[^>]+>",  # any other tag, Strong's numbers <G1234> / <H1234> included
    flags=re.DOTALL,
)


def clean(text: str) -> str:
    """Drop markup and footnotes; collapse whitespace."""
    return " ".join(MARKUP.sub(" ", text).split())


def render_module(module: str, apt_package: str) -> str:
    """The whole module as diatheke's plain text, one "Book c:v: text" entry per verse."""
    text = run_diatheke(module, VERSE_RANGE, options="f")
    if VERSE_REF.search(text) is None:
        raise MissingDataError(
            f"diatheke returned no verses for the SWORD module {module!r}: the Debian package {apt_package!r} "
            f"is not installed. Install it with `{install_hint(apt_package)}`."
        )
    return text


def parse_verses(text: str) -> dict[str, str]:
    """Verse reference → clean verse text.

    diatheke repeats the last section heading (a psalm title, say) after every following verse, separated by
    a blank line or as a line of its own. Text after a verse's first blank line is such a heading; lines equal
    to a known heading are dropped everywhere, and a psalm's own title is kept at the start of its verse 1
    (where Reina-Valera has it too).
    """
    matches = list(VERSE_REF.finditer(text))
    raw = []
    for match, following in zip(matches, matches[1:] + [None]):
        body, _, heading = text[match.end() : following.start() if following else len(text)].partition("\n\n")
        raw.append((match.group(1), match.group(2), match.group(3), body, clean(heading)))
    headings = {heading for *_, heading in raw if heading}
    verses, pending_heading = {}, ""
    for book, chapter, verse, body, heading in raw:
        lines = (clean(line) for line in body.split("\n"))
        verse_text = " ".join(line for line in lines if line and line not in headings)
        if book == "Psalms" and verse == "1" and pending_heading:
            verse_text = f"{pending_heading} {verse_text}"
        verses[f"{book} {chapter}:{verse}"] = verse_text
        pending_heading = heading
    return verses


def build() -> DatasetDict:
    """Verses present and non-empty in both Bibles, in canonical order; split by chapter so neighbours stay together."""
    english = parse_verses(render_module(*MODULES["en"]))
    spanish = parse_verses(render_module(*MODULES["es"]))
    rows = []
    for ref, es in spanish.items():
        en = english.get(ref)
        if not en or not es:
            continue
        chapter = ref.rsplit(":", 1)[0]
        rows.append((hash_split(chapter), {"id": ref, "translation": {"en": en, "es": es}}))
    return to_dataset_dict(rows, FEATURES)
