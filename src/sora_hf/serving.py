"""CPU serving: Linear layers whose weights are packed once for oneDNN's matmul (the kernel inductor's freezing
uses). For the few rows of serving traffic (one text, a decoding step) MKL's product behind `nn.Linear` is 1.2-8x
slower on some CPUs (AMD EPYC here). Packing freezes the weights, like `torch.compile` freezing or quantization:
pack a model you serve, not one you still train or edit."""

import torch
from torch import nn


def can_pack(linear: nn.Linear) -> bool:
    """Whether oneDNN can serve this layer: a CPU fp32 weight and a torch built with oneDNN."""
    weight = linear.weight
    return (
        weight.device.type == "cpu" and weight.dtype == torch.float32 and torch.backends.mkldnn.is_available()
    )


class PackedLinear(nn.Module):
    """A frozen `nn.Linear` for inference: the same weight and bias parameters (ties kept), plus a copy of the
    weight packed once for oneDNN. Runs only without autograd, on CPU fp32 inputs."""

    def __init__(self, linear: nn.Linear):
        super().__init__()
        if not can_pack(linear):
            raise ValueError(
                f"PackedLinear serves CPU fp32 weights with a oneDNN build of torch; this layer's weight is "
                f"{linear.weight.dtype} on {linear.weight.device}. Keep it an nn.Linear (or move it to the CPU "
                "in float32 first)."
            )
        self.in_features, self.out_features = linear.in_features, linear.out_features
        self.weight, self.bias = linear.weight, linear.bias
        self.packed_weight = PackedWeight(torch.ops.mkldnn._reorder_linear_weight(linear.weight.detach()))
        self.packed_version = linear.weight._version

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        if torch.compiler.is_compiling() or torch.jit.is_tracing():  # graphs take the plain product
            return nn.functional.linear(hidden_states, self.weight, self.bias)
        if (
            torch.is_grad_enabled()
            or hidden_states.dtype != torch.float32
            or hidden_states.device.type != "cpu"
        ):
            raise ValueError(
                "PackedLinear is for inference: call it under torch.no_grad() / torch.inference_mode() with CPU "
                f"float32 inputs (got {hidden_states.dtype} on {hidden_states.device}, grad "
                f"{'enabled' if torch.is_grad_enabled() else 'disabled'}). To train, reload the model unpacked."
            )
        if self.weight._version != self.packed_version:
            raise ValueError(
                "The weight of a PackedLinear changed after it was packed: its packed copy would be stale. Pack the "
                "model again (sora_hf.serving.pack_linear_weights) after changing its weights."
            )
        return torch.ops.mkldnn._linear_pointwise(
            hidden_states, self.packed_weight.tensor, self.bias, "none", [None], ""
        )

    def extra_repr(self) -> str:
        return (
            f"in_features={self.in_features}, out_features={self.out_features}, bias={self.bias is not None}"
        )


class PackedWeight:
    """Holds the opaque oneDNN tensor outside the module's parameters and buffers (it has no storage to save,
    copy or pickle); a copy of the model holds none and must be packed again."""

    def __init__(self, tensor: torch.Tensor | None):
        self.tensor = tensor

    def __deepcopy__(self, memo: dict) -> "PackedWeight":
        return PackedWeight(None)

    def __getstate__(self) -> dict:
        return {"tensor": None}


def pack_linear_weights(model: nn.Module) -> nn.Module:
    """Replace every `nn.Linear` of `model` (any transformers model) by a `PackedLinear`, in place, and switch it to
    eval mode: faster CPU fp32 inference; the weights are frozen from then on. Returns `model`."""
    if not isinstance(model, nn.Module):
        raise ValueError(f"pack_linear_weights takes a torch model, got {type(model).__name__}.")
    replaced = 0
    for parent in list(model.modules()):
        for name, child in list(parent.named_children()):
            if type(child) is nn.Linear:
                setattr(parent, name, PackedLinear(child))
                replaced += 1
    if not replaced:
        raise ValueError(
            f"{type(model).__name__} has no nn.Linear layer to pack (already packed or quantized?)."
        )
    return model.eval()
