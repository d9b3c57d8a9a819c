"""FGM (Miyato et al., 2017): one step of size epsilon along the clean loss's gradient on the input embeddings."""

import torch

from .adversarial_base import AdversarialLoss, perturbed_loss
from .base import LossInputs


class FGMLoss(AdversarialLoss):
    """`L(x + epsilon * g / ||g||)` (`sign(g)` for linf), with `g` the clean gradient the trainer already has.

    Cost: one extra forward and its backward, i.e. about two plain steps.
    """

    name = "fgm"

    def __init__(self, epsilon: float = 1.0, norm: str = "l2", weight: float = 1.0, start_step: int = 0):
        super().__init__(
            epsilon=epsilon, steps=1, step_size=epsilon, norm=norm, weight=weight, start_step=start_step
        )

    def forward(self, loss_inputs: LossInputs) -> torch.Tensor:
        _, delta = self.first_step(loss_inputs, self.epsilon)
        return perturbed_loss(loss_inputs, delta)
