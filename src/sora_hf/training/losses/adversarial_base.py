"""The base of the adversarial terms (FGM, PGD, FreeLB): their settings and the task loss under a perturbation."""

import torch

from ...embedding_perturbation import (
    ascent_direction,
    check_adversarial_settings,
    default_step_size,
    perturbed_embeddings,
    project,
    token_mask,
)
from .base import LossInputs, TrainingLoss


def perturbed_loss(loss_inputs: LossInputs, delta: torch.Tensor) -> torch.Tensor:
    """The trainer's task loss for the micro-batch with `delta` added to the input embeddings."""
    with perturbed_embeddings(loss_inputs.model, delta):
        return loss_inputs.compute_loss(loss_inputs.inputs)


class AdversarialLoss(TrainingLoss):
    """Base of FGM, PGD and FreeLB: the loss of the micro-batch under a perturbation of its input embeddings.

    The trainer adds `weight * term` to the task loss and does one backward. The clean gradient with respect to the
    embedding output comes from the trainer (`LossInputs.embedding_grad`), the perturbed forwards from
    `LossInputs.compute_loss`, so the adversarial loss is normalised exactly like the task loss (a mean, or a sum over
    Trainer's `num_items_in_batch` for token-level heads).
    """

    needs_embedding_grad = True

    def __init__(
        self,
        epsilon: float = 1.0,
        steps: int = 1,
        step_size: float | None = None,
        norm: str = "l2",
        weight: float = 1.0,
        start_step: int = 0,
    ):
        super().__init__(weight)
        check_adversarial_settings(epsilon, steps, norm, step_size)
        if not weight >= 0:
            raise ValueError(f"weight must be >= 0 (got {weight}).")
        if isinstance(start_step, bool) or not isinstance(start_step, int) or start_step < 0:
            raise ValueError(f"start_step must be an integer >= 0 (got {start_step!r}).")
        self.epsilon = float(epsilon)
        self.steps = steps
        self.step_size = float(step_size) if step_size is not None else default_step_size(epsilon, steps)
        self.norm = norm
        self.start_step = start_step

    def is_active(self, global_step: int) -> bool:
        return global_step >= self.start_step

    def first_step(self, loss_inputs: LossInputs, size: float) -> tuple[torch.Tensor, torch.Tensor]:
        """The perturbable-position mask and the first ascent step from the clean gradient, projected."""
        mask = token_mask(loss_inputs.inputs, loss_inputs.embedding_grad)
        delta = size * ascent_direction(loss_inputs.embedding_grad, self.norm, mask)
        return mask, project(delta, self.epsilon, self.norm)

    def extra_repr(self) -> str:
        return (
            f"epsilon={self.epsilon}, steps={self.steps}, step_size={self.step_size:.4g}, norm={self.norm}, "
            f"weight={self.weight}, start_step={self.start_step}"
        )
