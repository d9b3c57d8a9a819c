"""Robustness of text classifiers: accuracy under an embedding-space PGD attack and under a discrete attack on the
raw text (WordNet synonyms and character edits within a per-sentence budget), with the attack success rate.

Every function takes any transformers sequence classifier and its tokenizer; `SoraTrainer.evaluate` reports
`robustness_metrics` when `SoraTrainingArguments.robustness_attacks` asks for them.
"""

from .common import AttackResult, predict_probabilities
from .embedding_attack import embedding_attack
from .evaluation import ROBUSTNESS_ATTACKS, check_robustness_arguments, robustness_metrics
from .synonyms import WordNetSynonyms
from .word_attack import WordAttack, char_edits, edit_budget, is_label_preserving, word_attack

__all__ = [
    "ROBUSTNESS_ATTACKS",
    "AttackResult",
    "WordAttack",
    "WordNetSynonyms",
    "char_edits",
    "check_robustness_arguments",
    "edit_budget",
    "embedding_attack",
    "is_label_preserving",
    "predict_probabilities",
    "robustness_metrics",
    "word_attack",
]
