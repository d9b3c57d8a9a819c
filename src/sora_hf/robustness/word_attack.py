"""Accuracy under a discrete attack on the raw text: WordNet-synonym substitutions and character edits.

Greedy, like TextFooler: rank a text's words by how much deleting each lowers the true label's probability, then
walk down the ranking and put in each word's most damaging candidate while that lowers the probability, until the
prediction flips or the per-sentence budget of edited words is spent. Every example advances one word per round,
so each round is one batched forward over all candidates of all texts.

Label preservation is only as good as a simple check allows (`is_label_preserving`): stop words and negations are
never touched or introduced, a synonym must share its most frequent WordNet sense with the word (both ways) and not
be an antonym, a character edit swaps or deletes one inner letter of a word of four letters or more (first and last
letters stay, so the word stays readable), and at most `max_edit_ratio` of the words (at least one) change.
"""

import random
import re
from collections.abc import Sequence
from typing import Any

import numpy as np
from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS
from torch import nn

from .common import check_texts_and_labels, predict_probabilities, progress_bar, summarize
from .synonyms import WordNetSynonyms

WORD = re.compile(r"([A-Za-z]+(?:'[A-Za-z]+)?)")  # capturing: re.split keeps the words at odd positions
NEGATIONS = frozenset(
    "no not nor never none nobody nothing nowhere neither without cannot cant dont doesnt didnt isnt wasnt arent "
    "werent wont wouldnt shouldnt couldnt hasnt havent hadnt aint".split()
)
PROTECTED_WORDS = frozenset(ENGLISH_STOP_WORDS) | NEGATIONS
MIN_CHAR_EDIT_LENGTH = 4


def is_protected(word: str) -> bool:
    """Stop words and negations (`don't`, `never`, ...) carry too much of the label to be edited."""
    lower = word.lower()
    return lower in PROTECTED_WORDS or lower.endswith("n't")


def char_edits(word: str) -> list[str]:
    """Swaps of two adjacent inner letters and deletions of one inner letter; none for words under four letters."""
    if len(word) < MIN_CHAR_EDIT_LENGTH or not word.isalpha():
        return []
    swaps = [word[:i] + word[i + 1] + word[i] + word[i + 2 :] for i in range(1, len(word) - 2)]
    deletions = [word[:i] + word[i + 1 :] for i in range(1, len(word) - 1)]
    return list(dict.fromkeys(edit for edit in swaps + deletions if edit != word))


def match_case(candidate: str, original: str) -> str:
    if original.isupper() and len(original) > 1:
        return candidate.upper()
    if original[:1].isupper():
        return candidate[:1].upper() + candidate[1:]
    return candidate


def is_label_preserving(original: str, candidate: str, synonyms: WordNetSynonyms) -> bool:
    """The simple check every substitution passes (see the module docstring)."""
    word, new = original.lower(), candidate.lower()
    if new == word or is_protected(word) or is_protected(new) or new in synonyms.antonyms(word):
        return False
    return new in char_edits(word) or new in synonyms.synonyms(word)


def edit_budget(num_words: int, max_edit_ratio: float) -> int:
    """Words a sentence of `num_words` words may have edited: `max_edit_ratio` of them, at least one."""
    return max(1, round(max_edit_ratio * num_words))


class WordAttack:
    """The greedy synonym + character-edit attack; `__call__` runs it on a classifier (see `word_attack`)."""

    def __init__(
        self,
        synonyms: WordNetSynonyms | None = None,
        max_edit_ratio: float = 0.2,
        max_synonyms: int = 8,
        max_char_edits: int = 6,
        seed: int = 0,
    ):
        if not 0 < max_edit_ratio <= 1:
            raise ValueError(
                f"max_edit_ratio must be in (0, 1] (got {max_edit_ratio}): the share of words edited."
            )
        self.synonyms = synonyms if synonyms is not None else WordNetSynonyms()
        self.max_edit_ratio = max_edit_ratio
        self.max_synonyms = max_synonyms
        self.max_char_edits = max_char_edits
        self.seed = seed

    def candidates(self, word: str, rng: random.Random) -> list[str]:
        """Label-preserving replacements of `word`, in its case: synonyms first, then sampled character edits."""
        if is_protected(word):
            return []
        lower = word.lower()
        edits = char_edits(lower)
        found = self.synonyms.synonyms(lower)[: self.max_synonyms]
        found += rng.sample(edits, min(self.max_char_edits, len(edits)))
        return [
            match_case(c, word) for c in dict.fromkeys(found) if is_label_preserving(lower, c, self.synonyms)
        ]

    def __call__(
        self, model: nn.Module, tokenizer, texts: Sequence[str], labels: Sequence[int], **predict_kwargs: Any
    ):
        check_texts_and_labels(texts, labels)
        labels = np.asarray(labels)
        probabilities = predict_probabilities(model, tokenizer, texts, **predict_kwargs)
        clean_correct = probabilities.argmax(-1) == labels
        pieces = [WORD.split(text) for text in texts]
        true_probability = probabilities[np.arange(len(texts)), labels]
        attacked = [i for i in range(len(texts)) if clean_correct[i]]

        # word importance: how much deleting each editable word lowers the true label's probability
        candidates: dict[tuple[int, int], list[str]] = {}
        variants, owners = [], []
        for i in attacked:
            for position in range(1, len(pieces[i]), 2):
                rng = random.Random(f"{self.seed}-{i}-{position}")
                found = self.candidates(pieces[i][position], rng)
                if found:
                    candidates[(i, position)] = found
                    variants.append("".join(pieces[i][:position] + pieces[i][position + 1 :]))
                    owners.append((i, position))
        drop = true_probability[[i for i, _ in owners]] - self._true_probability(
            model, tokenizer, variants, labels[[i for i, _ in owners]], predict_kwargs
        )
        order: dict[int, list[int]] = {i: [] for i in attacked}
        for (i, position), _ in sorted(zip(owners, drop, strict=True), key=lambda item: -item[1]):
            order[i].append(position)

        current = {i: list(pieces[i]) for i in attacked}
        budget = {i: edit_budget(len(pieces[i]) // 2, self.max_edit_ratio) for i in attacked}
        edits: dict[int, list[tuple[str, str]]] = {i: [] for i in attacked}
        flipped = np.zeros(len(texts), dtype=bool)
        active = [i for i in attacked if order[i]]
        round_kwargs = {**predict_kwargs, "show_progress": False}  # one bar for the rounds, none per round
        settled = progress_bar(desc="word attack", total=len(attacked), initial=len(attacked) - len(active))
        while active:
            variants, owners = [], []
            for i in active:
                position = order[i].pop(0)
                for candidate in candidates[(i, position)]:
                    variant = list(current[i])
                    variant[position] = candidate
                    variants.append("".join(variant))
                    owners.append((i, position, candidate))
            variant_probabilities = predict_probabilities(model, tokenizer, variants, **round_kwargs)
            best: dict[int, tuple[float, int]] = {}
            for row, (i, _, _) in enumerate(owners):
                probability = float(variant_probabilities[row, labels[i]])
                if probability < best.get(i, (true_probability[i], -1))[0]:
                    best[i] = (probability, row)
            for i, (probability, row) in best.items():
                _, position, candidate = owners[row]
                edits[i].append((current[i][position], candidate))
                current[i][position] = candidate
                true_probability[i] = probability
                flipped[i] = variant_probabilities[row].argmax() != labels[i]
            still_active = [i for i in active if not flipped[i] and order[i] and len(edits[i]) < budget[i]]
            settled.update(len(active) - len(still_active))
            active = still_active
        settled.close()

        examples = [
            {
                "text": texts[i],
                "adversarial_text": "".join(current[i]),
                "label": int(labels[i]),
                "edits": edits[i],
            }
            for i in attacked
            if flipped[i]
        ]
        return summarize("word", clean_correct, ~flipped, examples=examples)

    @staticmethod
    def _true_probability(model, tokenizer, texts, labels, predict_kwargs) -> np.ndarray:
        if not texts:
            return np.zeros(0, dtype=np.float32)
        probabilities = predict_probabilities(model, tokenizer, texts, **predict_kwargs)
        return probabilities[np.arange(len(texts)), labels]


def word_attack(
    model: nn.Module,
    tokenizer,
    texts: Sequence[str],
    labels: Sequence[int],
    max_edit_ratio: float = 0.2,
    synonyms: WordNetSynonyms | None = None,
    seed: int = 0,
    batch_size: int = 128,
    max_length: int = 128,
):
    """Robust accuracy of any transformers sequence classifier under `WordAttack` (see the module docstring)."""
    attack = WordAttack(synonyms=synonyms, max_edit_ratio=max_edit_ratio, seed=seed)
    return attack(model, tokenizer, texts, labels, batch_size=batch_size, max_length=max_length)
