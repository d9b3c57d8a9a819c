"""What both attacks share: their result, padded batches of raw texts, progress bars and class probabilities."""

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import distributed as dist
from torch import nn
from torch.utils.data import DataLoader
from tqdm.auto import tqdm
from transformers import DataCollatorWithPadding
from transformers.utils.logging import is_progress_bar_enabled


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
    """The device of the model's parameters (where its inputs go)."""
    return next(model.parameters()).device


def length_sorted_batches(texts: Sequence[str], batch_size: int) -> list[list[int]]:
    """Index batches of texts of similar length (less padding), in a fixed order."""
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
    return [order[start : start + batch_size] for start in range(0, len(order), batch_size)]


def padded_batches(
    tokenizer, texts: Sequence[str], batch_size: int, max_length: int, labels: Sequence[int] | None = None
) -> DataLoader:
    """Batches of `texts` tokenized once, padded per batch by `DataCollatorWithPadding`, similar lengths together.

    Each batch carries `index` (the texts' positions) and, with `labels`, `labels`.
    """
    encoded = tokenizer(list(texts), truncation=True, max_length=max_length) if len(texts) else {}
    features = [{key: values[i] for key, values in encoded.items()} | {"index": i} for i in range(len(texts))]
    if labels is not None:
        for feature, label in zip(features, labels, strict=True):
            feature["labels"] = int(label)
    return DataLoader(
        features,
        batch_sampler=length_sorted_batches(texts, batch_size),
        collate_fn=DataCollatorWithPadding(tokenizer, return_tensors="pt"),
    )


def progress_bar(iterable: Iterable | None = None, show: bool = True, **kwargs: Any) -> tqdm:
    """A `tqdm` bar for an attack's loop: shown on a terminal, in the main process, while transformers shows bars."""
    other_process = dist.is_available() and dist.is_initialized() and dist.get_rank() != 0
    shown = show and is_progress_bar_enabled() and not other_process
    return tqdm(
        iterable, leave=False, disable=None if shown else True, **kwargs
    )  # None: off when not a terminal


@torch.inference_mode()
def predict_probabilities(
    model: nn.Module,
    tokenizer,
    texts: Sequence[str],
    batch_size: int = 128,
    max_length: int = 128,
    show_progress: bool = True,
) -> np.ndarray:
    """Softmax class probabilities `(len(texts), num_labels)` of a sequence classifier, in eval mode."""
    was_training = model.training
    model.eval()
    device = model_device(model)
    probabilities = np.zeros((len(texts), model.config.num_labels), dtype=np.float32)
    batches = padded_batches(tokenizer, texts, batch_size, max_length)
    try:
        for batch in progress_bar(batches, show=show_progress, desc="predict"):
            index = batch.pop("index").tolist()
            logits = model(**batch.to(device)).logits
            probabilities[index] = torch.softmax(logits.float(), dim=-1).cpu().numpy()
    finally:
        model.train(was_training)
    return probabilities
