"""Accuracy under an embedding-space PGD attack: each text's input embeddings may move within an `epsilon` ball."""

from collections.abc import Sequence

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from ..embedding_perturbation import (
    ascent_direction,
    check_adversarial_settings,
    default_step_size,
    input_embeddings,
    perturbed_embeddings,
    project,
    token_mask,
)
from .common import (
    AttackResult,
    check_texts_and_labels,
    model_device,
    padded_batches,
    progress_bar,
    summarize,
)


def embedding_attack(
    model: nn.Module,
    tokenizer,
    texts: Sequence[str],
    labels: Sequence[int],
    epsilon: float = 1.0,
    steps: int = 10,
    step_size: float | None = None,
    norm: str = "l2",
    batch_size: int = 64,
    max_length: int = 128,
) -> AttackResult:
    """PGD on the input-embedding output of any transformers sequence classifier, maximising the cross-entropy of
    the true label (zero start, `steps` projected ascent steps; the norms of `sora_hf.embedding_perturbation`).

    An example is broken when any step's perturbation makes the model predict another label. Runs in eval mode
    (no dropout); the model's parameters get no gradients.
    """
    check_texts_and_labels(texts, labels)
    check_adversarial_settings(epsilon, steps, norm, step_size)
    hidden_size = input_embeddings(model).weight.shape[-1]  # `ValueError` naming the model when it has none
    step_size = step_size if step_size is not None else default_step_size(epsilon, steps)
    clean_correct = np.zeros(len(texts), dtype=bool)
    robust_correct = np.zeros(len(texts), dtype=bool)
    device = model_device(model)
    was_training = model.training
    model.eval()
    batches = padded_batches(tokenizer, texts, batch_size, max_length, labels=labels)
    try:
        for inputs in progress_bar(batches, desc="embedding attack"):
            batch = inputs.pop("index").tolist()
            target = inputs.pop("labels").to(device)
            inputs = inputs.to(device)
            with torch.no_grad():
                logits = model(**inputs).logits
            correct = logits.argmax(-1) == target
            clean = correct.clone()
            delta = torch.zeros(*inputs["input_ids"].shape, hidden_size, device=device)
            mask = token_mask(inputs, delta)
            for _ in range(steps):
                delta.requires_grad_(True)
                with torch.enable_grad(), perturbed_embeddings(model, delta):
                    logits = model(**inputs).logits
                    # a sum, so each example's gradient is its own (normalised per example below)
                    loss = F.cross_entropy(logits.float(), target, reduction="sum")
                    (grad,) = torch.autograd.grad(loss, delta)
                correct &= logits.detach().argmax(-1) == target
                delta = project(
                    delta.detach() + step_size * ascent_direction(grad, norm, mask), epsilon, norm
                )
            with torch.no_grad(), perturbed_embeddings(model, delta):
                correct &= model(**inputs).logits.argmax(-1) == target
            clean_correct[batch] = clean.cpu().numpy()
            robust_correct[batch] = correct.cpu().numpy()
    finally:
        model.train(was_training)
    return summarize("embedding", clean_correct, robust_correct)
