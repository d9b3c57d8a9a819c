"""Perturbations of the input embeddings' output, shared by adversarial training and the embedding attack.

A perturbation `delta` has the shape of the embedding output `(batch, sequence, hidden)`. Its size is measured per
example: `l2` over the whole sequence (Miyato et al.'s FGM), `linf` per coordinate. Padding positions are never
perturbed. Per-example sizes keep a micro-batch's perturbations independent of how the batch is split (gradient
accumulation, DDP).
"""

from contextlib import contextmanager
from typing import Any

import torch
from accelerate.utils import extract_model_from_parallel
from torch import nn

NORMS = ("l2", "linf")
_TINY = 1e-12


def input_embeddings(model: nn.Module) -> nn.Module:
    """The input-embedding module of a (DDP-, compile- or PEFT-wrapped) transformers model; `ValueError` if none."""
    unwrapped = extract_model_from_parallel(model)
    try:
        embeddings = unwrapped.get_input_embeddings()
    except (AttributeError, NotImplementedError):
        embeddings = None
    if not isinstance(embeddings, nn.Module):
        raise ValueError(
            f"model: {type(unwrapped).__name__} exposes no input embeddings (get_input_embeddings() gave "
            f"{type(embeddings).__name__}); adversarial training and the embedding attack perturb their output. "
            "Use a model with token embeddings, or implement get_input_embeddings()."
        )
    return embeddings


def check_adversarial_settings(
    epsilon: float, steps: int, norm: str, step_size: float | None = None, prefix: str = ""
) -> None:
    """`ValueError` naming the setting (with `prefix`, e.g. `adversarial_`) that is out of range."""
    if not epsilon > 0:
        raise ValueError(
            f"{prefix}epsilon must be > 0 (got {epsilon}): it is the radius of the perturbation."
        )
    if isinstance(steps, bool) or not isinstance(steps, int) or steps <= 0:
        raise ValueError(
            f"{prefix}steps must be a positive integer (got {steps!r}): the number of ascent steps."
        )
    if norm not in NORMS:
        raise ValueError(f"{prefix}norm must be one of {', '.join(NORMS)} (got {norm!r}).")
    if step_size is not None and not step_size > 0:
        raise ValueError(f"{prefix}step_size must be > 0 or None for the default (got {step_size}).")


def default_step_size(epsilon: float, steps: int) -> float:
    """Madry et al.'s 2.5 * epsilon / steps: enough to reach the boundary and move along it."""
    return 2.5 * epsilon / steps


def token_mask(inputs: dict[str, Any], reference: torch.Tensor) -> torch.Tensor:
    """`(batch, sequence, 1)` mask of the positions that may be perturbed (the attention mask, else all)."""
    mask = inputs.get("attention_mask")
    if mask is None or mask.shape != reference.shape[:2]:
        return torch.ones(*reference.shape[:2], 1, dtype=reference.dtype, device=reference.device)
    return mask.unsqueeze(-1).to(reference.dtype)


def per_example_norm(tensor: torch.Tensor) -> torch.Tensor:
    """L2 norm of each example over its sequence and hidden dimensions, shaped to broadcast: `(batch, 1, 1)`."""
    return tensor.flatten(1).norm(dim=1).view(-1, *([1] * (tensor.dim() - 1)))


def ascent_direction(grad: torch.Tensor, norm: str, mask: torch.Tensor) -> torch.Tensor:
    """The steepest-ascent step of unit size in `norm` for each example (zero where the gradient is zero)."""
    grad = grad.detach() * mask
    if norm == "linf":
        return grad.sign()
    return grad / per_example_norm(grad).clamp_min(_TINY)


def project(delta: torch.Tensor, epsilon: float, norm: str) -> torch.Tensor:
    """Bring each example's perturbation back into the `norm` ball of radius `epsilon`."""
    if norm == "linf":
        return delta.clamp(-epsilon, epsilon)
    return delta * (epsilon / per_example_norm(delta).clamp_min(_TINY)).clamp(max=1.0)


@contextmanager
def perturbed_embeddings(model: nn.Module, delta: torch.Tensor):
    """Add `delta` to the input embeddings' output in the forwards run inside the block.

    Only the first call of a forward is perturbed: an embedding shared with a decoder (BART) stays clean there.
    """
    embeddings = input_embeddings(model)
    state = {"calls": 0}  # forward calls of the embedding inside the block

    def hook(module, args, output):
        state["calls"] += 1
        return output + delta.to(output.dtype) if state["calls"] == 1 else output

    handle = embeddings.register_forward_hook(hook)
    try:
        yield
    finally:
        handle.remove()
