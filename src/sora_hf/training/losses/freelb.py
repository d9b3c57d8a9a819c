"""FreeLB (Zhu et al., 2020) on the input embeddings: the loss averaged over the K points of the ascent."""

import torch

from ...embedding_perturbation import ascent_direction, project
from .adversarial_base import AdversarialLoss, perturbed_loss
from .base import LossInputs, loss_with_gradients


class FreeLBLoss(AdversarialLoss):
    """`mean_k L(x + delta_k)` over the K ascent points, so the parameters see the gradient of the whole trajectory.

    FreeLB with zero initialisation: `delta_0 = 0` is the clean forward (the trainer's task loss), `delta_k` takes a
    normalised step of `step_size` along the gradient at `delta_{k-1}`, projected into the `epsilon` ball. Every
    point but the last yields its parameter gradients and its `delta` gradient from one `torch.autograd.grad` call
    (handed to the trainer's single backward through `loss_with_gradients`), so each point costs one forward and one
    backward: about `K + 1` plain steps in all. Under FSDP and DeepSpeed each point keeps its graph for the engine's
    backward instead (more memory, a second backward per point).
    """

    name = "freelb"

    def forward(self, loss_inputs: LossInputs) -> torch.Tensor:
        mask, delta = self.first_step(loss_inputs, self.step_size)
        precompute = loss_inputs.precompute_gradients
        parameters = [p for p in loss_inputs.model.parameters() if p.requires_grad] if precompute else []
        points = []
        for _ in range(self.steps - 1):
            delta = delta.detach().requires_grad_(True)
            loss = perturbed_loss(loss_inputs, delta)
            if precompute:
                grad, *gradients = torch.autograd.grad(loss, [delta, *parameters], allow_unused=True)
                points.append(loss_with_gradients(loss, parameters, gradients))
            else:  # sharded parameters: the point's graph stays for the engine's backward
                (grad,) = torch.autograd.grad(loss, delta, retain_graph=True, allow_unused=True)
                points.append(loss)
            if grad is None:  # the loss does not depend on the embeddings (nothing labelled)
                grad = torch.zeros_like(delta)
            delta = project(
                delta + self.step_size * ascent_direction(grad, self.norm, mask), self.epsilon, self.norm
            )
        points.append(perturbed_loss(loss_inputs, delta.detach()))
        return torch.stack(points).mean()
