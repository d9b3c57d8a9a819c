"""WordNet 3.0 (Debian `wordnet-base`): one document per synset, its gloss followed by its example sentences."""

import re
from collections.abc import Iterator

from ..installed_packages import require_path
from .common import as_sentence

WORDNET_DIR = "/usr/share/wordnet"
PACKAGE = "wordnet-base"
_EXAMPLE = re.compile(r'"([^"]+)"')


def check_wordnet() -> None:
    """Raise `MissingDataError` naming the Debian package when WordNet is not installed."""
    for pos in ("noun", "verb", "adj", "adv"):
        require_path(f"{WORDNET_DIR}/data.{pos}", PACKAGE)


def gloss_to_document(gloss: str) -> str:
    """`'the feat of rallying; "he started a rally"'` -> `'The feat of rallying. He started a rally.'`"""
    quote = gloss.find('"')
    definition = gloss if quote < 0 else gloss[:quote]
    sentences = [as_sentence(definition)] + [as_sentence(example) for example in _EXAMPLE.findall(gloss)]
    return " ".join(sentence for sentence in sentences if sentence)


def read_wordnet() -> Iterator[str]:
    """Yield one document per synset of the noun, verb, adjective and adverb data files, in file order."""
    check_wordnet()
    for pos in ("noun", "verb", "adj", "adv"):
        with open(f"{WORDNET_DIR}/data.{pos}", encoding="utf-8") as handle:
            for line in handle:
                # The license header lines start with two spaces; synset lines carry the gloss after " | ".
                if line.startswith("  ") or " | " not in line:
                    continue
                yield gloss_to_document(line.split(" | ", 1)[1])
