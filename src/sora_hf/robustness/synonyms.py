"""WordNet 3.0 synonyms and antonyms, read from the Debian `wordnet-base` files (index.* and data.*).

A word's synonyms are the single-word lemmas sharing a synset with it in its `max_senses` most frequent senses of each
part of speech (WordNet lists senses by frequency), kept only when the relation holds both ways (the word is also in
one of the lemma's own most frequent senses: "awesome" -> "awful" is dropped, "awful" means "terrible" first) and
the lemma is not an antonym. Synset offsets in the index are byte offsets into the data file, so each synset is one
seek; the sorted index is read whole but parsed per word.
"""

from functools import lru_cache

from ..data.sources.wordnet import WORDNET_DIR, check_wordnet

PARTS_OF_SPEECH = ("noun", "verb", "adj", "adv")
_POS_FILES = {"n": "noun", "v": "verb", "a": "adj", "s": "adj", "r": "adv"}


def _clean_lemma(lemma: str) -> str:
    """`good(a)` -> `good`: drop WordNet's adjective position markers."""
    return lemma.split("(", 1)[0].lower()


class WordNetSynonyms:
    """Synonym and antonym look-ups over the installed WordNet (`ValueError`-free: unknown words have none)."""

    def __init__(self, wordnet_dir: str = WORDNET_DIR, max_senses: int = 1):
        if wordnet_dir == WORDNET_DIR:
            check_wordnet()
        self.wordnet_dir = wordnet_dir
        self.max_senses = max_senses
        self._index_lines: dict[str, list[tuple[str, str]]] = {}
        for pos in PARTS_OF_SPEECH:
            with open(f"{wordnet_dir}/index.{pos}", encoding="utf-8") as handle:
                for line in handle:
                    if not line.startswith("  "):  # the license header lines start with two spaces
                        self._index_lines.setdefault(line[: line.index(" ")], []).append((pos, line))
        self._files = {pos: open(f"{wordnet_dir}/data.{pos}", encoding="utf-8") for pos in PARTS_OF_SPEECH}

    def __del__(self):
        for handle in getattr(self, "_files", {}).values():
            handle.close()

    @lru_cache(maxsize=65536)  # noqa: B019 - one instance per attack, the cache dies with it
    def _senses(self, word: str) -> tuple[tuple[str, int], ...]:
        """(pos file, synset offset) of the `max_senses` most frequent senses of `word` in each part of speech."""
        senses = []
        for pos, line in self._index_lines.get(word, []):
            fields = line.split()
            synset_count, pointer_count = int(fields[2]), int(fields[3])
            offsets = fields[6 + pointer_count : 6 + pointer_count + synset_count]
            senses += [(pos, int(offset)) for offset in offsets[: self.max_senses]]
        return tuple(senses)

    @lru_cache(maxsize=65536)  # noqa: B019
    def _synset(self, pos: str, offset: int) -> tuple[tuple[str, ...], tuple[tuple[str, int, int], ...]]:
        """(lemmas, antonym pointers as (pos file, offset, target word number)) of one synset."""
        handle = self._files[pos]
        handle.seek(offset)
        fields = handle.readline().split(" | ", 1)[0].split()
        word_count = int(fields[3], 16)
        lemmas = tuple(_clean_lemma(fields[4 + 2 * i]) for i in range(word_count))
        position = 4 + 2 * word_count
        pointer_count = int(fields[position])
        antonyms = []
        for i in range(pointer_count):
            symbol, target, target_pos, source_target = fields[position + 1 + 4 * i : position + 5 + 4 * i]
            if symbol == "!":
                antonyms.append((_POS_FILES[target_pos], int(target), int(source_target[2:], 16)))
        return lemmas, tuple(antonyms)

    def synonyms(self, word: str) -> list[str]:
        """Single-word synonyms of `word` (lower-cased) from its most frequent senses, antonyms removed."""
        word = word.lower()
        found: dict[str, None] = {}
        for pos, offset in self._senses(word):
            for lemma in self._synset(pos, offset)[0]:
                if lemma != word and lemma.isalpha():
                    found[lemma] = None
        antonyms = self.antonyms(word)
        return [lemma for lemma in found if lemma not in antonyms and word in self._sense_lemmas(lemma)]

    def _sense_lemmas(self, word: str) -> set[str]:
        """Every lemma of the most frequent senses of `word`."""
        return {lemma for pos, offset in self._senses(word) for lemma in self._synset(pos, offset)[0]}

    def antonyms(self, word: str) -> set[str]:
        """Every lemma a synset of `word` (in any listed sense) points to as its antonym."""
        result = set()
        for pos, offset in self._senses(word.lower()):
            for target_pos, target, word_number in self._synset(pos, offset)[1]:
                lemmas, _ = self._synset(target_pos, target)
                result.update(lemmas if word_number == 0 else lemmas[word_number - 1 : word_number])
        return result
