"""PGD (Madry et al., 2018) on the input embeddings: K projected ascent steps, then the loss at the last point."""

import torch

from ...embedding_perturbation import ascent_direction, project
from .adversarial_base import AdversarialLoss, perturbed_loss
from .base import LossInputs


class PGDLoss(AdversarialLoss):
    """`L(x + delta_K)`: the first step starts from the clean gradient, each later one needs a forward and a gradient
    with respect to `delta` only (no parameter gradients), then one forward whose loss joins the trainer's backward.

    Cost: about `K + 1` plain steps, less since the inner gradients skip the parameters.
    """

    name = "pgd"

    def forward(self, loss_inputs: LossInputs) -> torch.Tensor:
        mask, delta = self.first_step(loss_inputs, self.step_size)
        for _ in range(self.steps - 1):
            delta = delta.detach().requires_grad_(True)
            (grad,) = torch.autograd.grad(perturbed_loss(loss_inputs, delta), delta)
            delta = project(
                delta + self.step_size * ascent_direction(grad, self.norm, mask), self.epsilon, self.norm
            )
        return perturbed_loss(loss_inputs, delta.detach())
