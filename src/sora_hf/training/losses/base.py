"""The contract between `SoraTrainer` and its extra loss terms (adversarial, distillation, ...)."""

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn


@dataclass
class LossInputs:
    """What one micro-batch's clean forward produced, handed to every extra loss term."""

    model: nn.Module  # the model as the trainer calls it (possibly DDP- or PEFT-wrapped)
    inputs: dict[str, Any]  # the model inputs of the micro-batch, labels included
    outputs: Any  # the model outputs of the clean forward
    task_loss: torch.Tensor  # the model's own loss for the micro-batch
    embedding_output: torch.Tensor | None = None  # input-embedding output of the clean forward, if asked for
    batch_extras: dict[str, Any] = field(default_factory=dict)  # batch entries the terms took out before it
    num_items_in_batch: torch.Tensor | int | None = None
    # d(task loss)/d(embedding_output), for terms with `needs_embedding_grad`.
    embedding_grad: torch.Tensor | None = None
    # The trainer's own loss for other inputs (same model call, label handling and gradient-accumulation scaling as
    # `task_loss`): what a term calls for an extra forward, e.g. with perturbed embeddings.
    compute_loss: Callable[[dict[str, Any]], torch.Tensor] | None = None
    global_step: int = 0  # optimizer steps taken so far
    # Whether the parameters are plain leaves of this graph (one process, DDP), so a term may take their gradients in
    # its own `torch.autograd.grad` call and hand them over with `loss_with_gradients`. False under FSDP and
    # DeepSpeed, whose sharded parameters get gradients only in the engine's backward: a term then keeps the graph
    # of each loss it returns for that backward.
    precompute_gradients: bool = True


class TrainingLoss(nn.Module):
    """One extra loss term that `SoraTrainer` adds to the model's task loss: `total = scale * task + Σ weight * term`.

    A term is an `nn.Module` so it can own parameters (a projection, for instance); the trainer optimises them with
    the model's.
    """

    name: str = "extra"
    # Batch entries this term consumes; the trainer removes them before the model's forward.
    batch_keys: tuple[str, ...] = ()
    # Whether the trainer must keep the input-embedding output (with a gradient path) for this term.
    needs_embedding_output: bool = False
    # Whether the term needs `embedding_grad`. The trainer then takes it, together with the task loss's parameter
    # gradients, from one `torch.autograd.grad` call, and frees the clean graph unless another term needs it: such a
    # term must not backpropagate through `outputs` itself.
    needs_embedding_grad: bool = False

    def __init__(self, weight: float = 1.0):
        super().__init__()
        self.weight = weight

    @property
    def task_loss_scale(self) -> float:
        """Factor on the model's own loss (a distillation mix replaces part of it)."""
        return 1.0

    def is_active(self, global_step: int) -> bool:
        """Whether the term takes part at this optimizer step (an inactive term costs nothing and logs nothing)."""
        return True

    def model_kwargs(self) -> dict[str, Any]:
        """Extra keyword arguments for the clean forward (e.g. `output_hidden_states=True`)."""
        return {}

    def forward(self, loss_inputs: LossInputs) -> torch.Tensor:
        raise NotImplementedError


class _PrecomputedGradients(torch.autograd.Function):
    """A scalar whose backward hands precomputed gradients to parameters (see `loss_with_gradients`)."""

    @staticmethod
    def forward(ctx, value: torch.Tensor, gradients: tuple[torch.Tensor, ...], *parameters: torch.Tensor):
        ctx.gradients = gradients
        return value.clone()

    @staticmethod
    def backward(ctx, grad_output: torch.Tensor):
        return (None, None, *(gradient * grad_output for gradient in ctx.gradients))


def loss_with_gradients(
    value: torch.Tensor, parameters: Sequence[torch.Tensor], gradients: Sequence[torch.Tensor | None]
) -> torch.Tensor:
    """A loss equal to `value` whose gradient with respect to `parameters` is `gradients` (None: not used).

    For a loss whose parameter gradients already came out of a `torch.autograd.grad` call: adding this to the total
    delivers them in the trainer's single backward (so DDP hooks, gradient accumulation and loss scaling all apply)
    without walking its graph a second time.
    """
    pairs = [(p, g) for p, g in zip(parameters, gradients, strict=True) if g is not None]
    if not pairs:
        return value.detach()
    # `value` goes in detached: its own graph may be freed already and must not be walked again
    return _PrecomputedGradients.apply(value.detach(), tuple(g for _, g in pairs), *(p for p, _ in pairs))
