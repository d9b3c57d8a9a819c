"""GCIDE, Webster 1913 + WordNet (Debian `dict-gcide`): each entry's senses and quotations without headword markup."""

import gzip
import re
import unicodedata
from collections.abc import Iterator

from ..installed_packages import require_path
from .common import as_sentence, pack_units, squash

DICT_PATH = "/usr/share/dictd/gcide.dict.dz"
INDEX_PATH = "/usr/share/dictd/gcide.index"
PACKAGE = "dict-gcide"
_BASE64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"

# GCIDE spells accented letters as "[mark letter]" (caf['e]) or "[letter^]" (breve); other symbols by name.
_ACCENTS = {"'": "\u0301", "`": "\u0300", "^": "\u0302", '"': "\u0308", "~": "\u0303", ",": "\u0327"}
_ACCENT_CODE = re.compile(r"\[([`'^\"~,=.\-*])([A-Za-z])\]|\[([A-Za-z]{1,2})\^\]")
_NAMED = {
    "ae": "æ", "AE": "Æ", "oe": "œ", "OE": "Œ", "eth": "ð", "thorn": "þ", "imac": "ī", "aum": "ä", "ng": "ŋ",
    "=oo": "oo", "=ae": "ǣ", "th": "θ", "deg": "°", "sect": "§", "para": "¶", "yogh": "ȝ", "root": "√",
    "times": "×", "divby": "÷", "div": "÷", "middot": "·", "nbsp": " ", "pounds": "£", "ldqo": "“", "rdqo": "”",
    "rarr": "→", "sharp": "♯", "flat": "♭", "hand": "☞", "dagger": "†", "dag": "†", "min": "′", "sec": "″",
}  # fmt: skip
# GCIDE's names of Greek letters; Unicode spells lambda "LAMDA".
_GREEK = {name: name.replace("lambda", "lamda").upper() for name in (
    "alpha beta gamma delta epsilon zeta eta theta iota kappa lambda mu nu xi omicron pi rho sigma tau upsilon phi "
    "chi psi omega"
).split()}  # fmt: skip
_NAMED.update({name: unicodedata.lookup(f"GREEK SMALL LETTER {upper}") for name, upper in _GREEK.items()})
_NAMED.update(
    {name.title(): unicodedata.lookup(f"GREEK CAPITAL LETTER {upper}") for name, upper in _GREEK.items()}
)
_NAMED_CODE = re.compile(
    r"\[(" + "|".join(re.escape(name) for name in sorted(_NAMED, key=len, reverse=True)) + r")\]"
)
_INNER_BRACKETS = re.compile(r"\s*\[[^\[\]]*\]")
_PRONUNCIATION = re.compile(r"\\[^\\\n]*\\,?")
_CROSS_REFERENCE = re.compile(r"\{([^{}]*)\}")
_ATTRIBUTION = re.compile(r"\s*--\s*[A-Z][^\n]*$", re.MULTILINE)
_SYNONYMS = re.compile(r"\bSyn[.:]\s")
_SPACE_BEFORE_COMMA = re.compile(r"\s+([,;])")
_LABELS = re.compile(r"\((?:[A-Z][A-Za-z]*\.(?:\s*(?:&|and|or|,)?\s*)?)+\)")
_SENSE_NUMBER = re.compile(r"^(?:\d+\.|\([a-z]\))\s+")
# A pronunciation in parentheses, "(r[=e]`k[.a]*p[i^]t)", and a derived form, "-- {Te`le*o*log"ic*al*ly}, adv.".
_PAREN_PRONUNCIATION = re.compile(r"\s*\([^()\n]*[*`?][^()\n]*\),?")
_DERIVED_FORM = re.compile(r"\s*(?:--\s*)?\{[^{}]*[*`][^{}]*\},?(?:\s*[a-z]{1,5}\.)*")
# Markup that survived cleaning means a malformed entry: such a unit is dropped.
_LEFTOVER_MARKUP = re.compile(r"[\[\]{}\\<>|*`]")


def check_gcide() -> None:
    """Raise `MissingDataError` naming the Debian package when GCIDE is not installed."""
    require_path(DICT_PATH, PACKAGE)
    require_path(INDEX_PATH, PACKAGE)


def _decode_base64(value: str) -> int:
    number = 0
    for char in value:
        number = number * 64 + _BASE64.index(char)
    return number


def _replace_accent(match: re.Match) -> str:
    if match.group(3):
        return match.group(3)
    mark, letter = match.group(1), match.group(2)
    return unicodedata.normalize("NFC", letter + _ACCENTS.get(mark, ""))


def clean_markup(text: str) -> str:
    """Spell out character codes, then drop bracketed tags, etymologies and pronunciations; keep cross-references."""
    text = _DERIVED_FORM.sub("", text)
    text = _ACCENT_CODE.sub(_replace_accent, text)
    text = _NAMED_CODE.sub(lambda match: _NAMED[match.group(1)], text)
    previous = None
    while previous != text:  # nested brackets: remove the innermost first
        previous, text = text, _INNER_BRACKETS.sub("", text)
    text = _PAREN_PRONUNCIATION.sub("", _PRONUNCIATION.sub("", text))
    text = _CROSS_REFERENCE.sub(r"\1", text)
    text = _LABELS.sub("", text)
    return _SPACE_BEFORE_COMMA.sub(r"\1", squash(text.replace("--", "—")))


def strip_headword(entry: str) -> str:
    """Drop the headword lines: headword, pronunciation(s), part of speech and the bracketed etymology."""
    first_newline = entry.find("\n")
    pronunciation = entry.find("\\")
    position = entry.find("\\", pronunciation + 1) + 1 if 0 <= pronunciation < first_newline else 0
    depth = 0
    for index in range(position, len(entry)):
        char = entry[index]
        if char == "[":
            depth += 1
        elif char == "]":
            depth = max(depth - 1, 0)
        elif char == "\n" and depth == 0:
            # Body lines are indented; a line at column 0 or a parenthesised pronunciation continues the header.
            if entry[index + 1 : index + 2] in (" ", "\t") and not _PAREN_PRONUNCIATION.match(entry, index):
                return entry[index + 1 :]
    return ""


def entry_units(entry: str) -> list[str]:
    """The cleaned senses, notes and quotations of one entry; synonym lists are dropped."""
    units = []
    for block in re.split(r"\n[ \t]*\n", _ATTRIBUTION.sub("", strip_headword(entry))):
        text = _SYNONYMS.split(squash(block), 1)[0]
        text = _SENSE_NUMBER.sub("", clean_markup(text.removeprefix("Note:")))
        text = as_sentence(text)
        if len(text.split()) >= 3 and not _LEFTOVER_MARKUP.search(text):
            units.append(text)
    return units


def read_gcide() -> Iterator[str]:
    """Yield documents of consecutive senses of one entry, entries in dictionary order."""
    check_gcide()
    spans = set()
    with open(INDEX_PATH, encoding="utf-8") as handle:
        for line in handle:
            headword, offset, length = line.rstrip("\n").split("\t")
            if not headword.startswith("00-database"):
                spans.add((_decode_base64(offset), _decode_base64(length)))
    with gzip.open(DICT_PATH) as handle:  # dictzip files are gzip files
        data = handle.read()
    for offset, length in sorted(spans):
        # Three bytes in the file are stray cp1252 apostrophes.
        entry = data[offset : offset + length].decode("utf-8", errors="replace").replace("\ufffd", "'")
        yield from pack_units(entry_units(entry))
