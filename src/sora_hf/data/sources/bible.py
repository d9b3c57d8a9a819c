"""The World English Bible and the Reina-Valera 1909 through SWORD's `diatheke`: runs of 3-5 consecutive verses."""

import re
from collections.abc import Iterator
from dataclasses import dataclass

from ..installed_packages import require_path, require_program, run_diatheke
from .common import even_chunks, squash

MODULES_DIR = "/usr/share/sword/mods.d"


@dataclass(frozen=True)
class BibleModule:
    """A SWORD Bible module, the Debian package that ships it, and whether chapters open with a drop capital."""

    module: str
    package: str
    drop_capitals: bool


ENGLISH = BibleModule("engWEB2015eb", "sword-text-web", drop_capitals=False)
SPANISH = BibleModule("spaRV1909eb", "sword-text-sparv", drop_capitals=True)
# Genesis first, on its own, so a small `max_docs_per_source` never waits for the whole Bible.
KEYS = ("Genesis 1:1-Genesis 50:26", "Exodus 1:1-Revelation 22:21")
VERSES_PER_DOCUMENT = 5

# `diatheke -f plain` prints "Book c:v: text"; a section heading sits on the line before an indented marker.
_MARKER = re.compile(
    r"^([ \t]*)((?:I{1,3} |IV )?[A-Z][a-z]+(?: (?:of|and|the|[A-Z][a-z]+))*(?: \(Greek\))?) (\d+):(\d+): ",
    re.MULTILINE,
)
_STRONGS = re.compile(r"\s*<[GH]\d+>")
# Some deuterocanonical verses come with raw OSIS markup: a stale <title> and empty line-group tags.
_TITLE = re.compile(r"<title\b[^>]*>.*?</title>", re.DOTALL)
_TAG = re.compile(r"<[^<>\n]*>")
# Printed Bibles set a chapter's first word in capitals ("EN el principio", "Y EN el año"); undo that.
_SHOUTED_WORD = re.compile(r"^((?:\S+ ){0,2}?)([¿¡“‘\"(]*)([A-ZÁÉÍÓÚÑ]{2,})(?=[\s,;:.!?])")
_WEB_GLOSSARY = "The following words used in the World English Bible"


def check_bible(spec: BibleModule) -> None:
    """Raise `MissingDataError` naming the Debian package when `diatheke` or the module is missing."""
    require_program("diatheke", "diatheke")
    require_path(f"{MODULES_DIR}/{spec.module}.conf", spec.package)


def read_verses(module: str, key: str) -> list[tuple[str, int, int, str]]:
    """Run `diatheke` on a key range and parse `(book, chapter, verse, text)` with headings and notes removed."""
    output = run_diatheke(module, key).rsplit(f"({module})", 1)[0]
    output = _TAG.sub("\n", _TITLE.sub("", _STRONGS.sub("", output)))
    markers = list(_MARKER.finditer(output))
    verses = []
    for index, marker in enumerate(markers):
        end = markers[index + 1].start() if index + 1 < len(markers) else len(output)
        text = output[marker.end() : end]
        if index + 1 < len(markers) and markers[index + 1].group(1):
            # The next verse is indented: the last line of this span is that verse's section heading.
            text = text.rstrip().rpartition("\n")[0]
        text = text.split(_WEB_GLOSSARY, 1)[0]
        text = squash(text)
        if text:
            verses.append((marker.group(2), int(marker.group(3)), int(marker.group(4)), text))
    return verses


def _unshout(match: re.Match) -> str:
    prefix, quote, word = match.groups()
    if not prefix:
        return quote + word.capitalize()
    # Later in the sentence only a shouted word before a lowercase one is a drop capital ("Y EN el año").
    following = match.string[match.end() + 1 : match.end() + 2]
    return prefix + quote + (word.lower() if following.islower() else word)


def _read_bible(spec: BibleModule) -> Iterator[str]:
    check_bible(spec)
    for key in KEYS:
        chapter: list[str] = []
        current = None
        for book, chapter_number, verse_number, text in read_verses(spec.module, key):
            if (book, chapter_number) != current:
                yield from even_chunks(chapter, VERSES_PER_DOCUMENT)
                chapter, current = [], (book, chapter_number)
            if verse_number == 1 and spec.drop_capitals:
                text = _SHOUTED_WORD.sub(_unshout, text)
            chapter.append(text)
        yield from even_chunks(chapter, VERSES_PER_DOCUMENT)


def check_bible_en() -> None:
    """Raise `MissingDataError` naming the Debian package when the World English Bible cannot be read."""
    check_bible(ENGLISH)


def check_bible_es() -> None:
    """Raise `MissingDataError` naming the Debian package when the Reina-Valera 1909 cannot be read."""
    check_bible(SPANISH)


def read_bible_en() -> Iterator[str]:
    """Yield World English Bible passages (deuterocanon included), 3-5 verses of one chapter each."""
    yield from _read_bible(ENGLISH)


def read_bible_es() -> Iterator[str]:
    """Yield Reina-Valera 1909 passages without Strong's numbers, 3-5 verses of one chapter each."""
    yield from _read_bible(SPANISH)
