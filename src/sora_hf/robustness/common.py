"""What both attacks share: their result, and batched class probabilities for raw texts."""

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn


@dataclass
class AttackResult:
    """Accuracy of a classifier on `num_examples` texts before and under one attack.

    `robust_accuracy` counts an example as correct only when it is classified correctly clean and under the attack;
    `attack_success_rate` is the share of the clean-correct examples the attack flips.
    """

    attack: str
    num_examples: int
    clean_accuracy: float
    robust_accuracy: float
    attack_success_rate: float
    examples: list[dict[str, Any]] = field(default_factory=list)  # word attack: the successful edits

    def metrics(self) -> dict[str, float]:
        """`{robust_accuracy_<attack>: ..., attack_success_rate_<attack>: ...}` for a Trainer metrics dict."""
        return {
            f"robust_accuracy_{self.attack}": self.robust_accuracy,
            f"attack_success_rate_{self.attack}": self.attack_success_rate,
        }


def summarize(
    attack: str, clean_correct: np.ndarray, robust_correct: np.ndarray, **kwargs: Any
) -> AttackResult:
    """An `AttackResult` from per-example booleans (robust implies clean)."""
    clean_count = int(clean_correct.sum())
    robust_correct = robust_correct & clean_correct
    return AttackResult(
        attack=attack,
        num_examples=len(clean_correct),
        clean_accuracy=float(clean_correct.mean()) if len(clean_correct) else 0.0,
        robust_accuracy=float(robust_correct.mean()) if len(clean_correct) else 0.0,
        attack_success_rate=(clean_count - int(robust_correct.sum())) / clean_count if clean_count else 0.0,
        **kwargs,
    )


def check_texts_and_labels(texts: Sequence[str], labels: Sequence[int]) -> None:
    """`ValueError` when texts and labels do not pair up."""
    if isinstance(texts, str):
        raise ValueError("texts must be a list of strings, not one string: wrap it in a list.")
    if len(texts) != len(labels):
        raise ValueError(
            f"texts and labels differ in length ({len(texts)} vs {len(labels)}): pass one label per text."
        )


def model_device(model: nn.Module) -> torch.device:
    return next(model.parameters()).device


def encode(tokenizer, texts: Sequence[str], max_length: int, device: torch.device) -> dict[str, torch.Tensor]:
    """Padded tensors of `texts` on `device`."""
    encoded = tokenizer(
        list(texts), padding=True, truncation=True, max_length=max_length, return_tensors="pt"
    )
    return {key: value.to(device) for key, value in encoded.items()}


def length_sorted_batches(texts: Sequence[str], batch_size: int) -> Iterator[list[int]]:
    """Index batches of texts of similar length (less padding), in a fixed order."""
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
    for start in range(0, len(order), batch_size):
        yield order[start : start + batch_size]


@torch.inference_mode()
def predict_probabilities(
    model: nn.Module, tokenizer, texts: Sequence[str], batch_size: int = 128, max_length: int = 128
) -> np.ndarray:
    """Softmax class probabilities `(len(texts), num_labels)` of a sequence classifier, in eval mode."""
    was_training = model.training
    model.eval()
    device = model_device(model)
    probabilities = np.zeros((len(texts), model.config.num_labels), dtype=np.float32)
    try:
        for batch in length_sorted_batches(texts, batch_size):
            logits = model(**encode(tokenizer, [texts[i] for i in batch], max_length, device)).logits
            probabilities[batch] = torch.softmax(logits.float(), dim=-1).cpu().numpy()
    finally:
        model.train(was_training)
    return probabilities
