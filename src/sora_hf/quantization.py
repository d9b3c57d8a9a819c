# Copyright 2026 The sora_hf authors. Licensed under the Apache License, Version 2.0.
"""Dynamic int8 quantization of a Sora model's Linear layers for CPU inference, saved and loaded as safetensors.

Weights become int8 (symmetric, one scale per output channel); activations are quantized at run time, per call,
from their own range (dynamic quantization: no calibration data; 7-bit on x86, where fbgemm's int16 accumulation
needs the headroom). The matmuls run on PyTorch's quantized CPU kernel `quantized::linear_dynamic` (fbgemm on x86,
qnnpack on ARM): torchao's int8 path is no faster on CPU without torch.compile, and torch.ao's `quantize_dynamic`
modules pickle their packed weights. A quantized model is an ordinary transformers model with a
`quantization_config` in `config.json`: `save_pretrained` writes the int8 weights and their scales to
`model.safetensors` (nothing is pickled) and `from_pretrained` rebuilds the int8 layers from them.

>>> import sora_hf
>>> from sora_hf.quantization import SoraInt8Config, quantize_int8
>>> model = quantize_int8(sora_hf.SoraForSequenceClassification.from_pretrained("runs/sentiment"))
>>> model.save_pretrained("runs/sentiment-int8")  # int8 weights + scales, safetensors
>>> model = sora_hf.SoraForSequenceClassification.from_pretrained("runs/sentiment-int8")  # int8 again
>>> # or quantize while loading an fp32 checkpoint
>>> model = sora_hf.SoraForSequenceClassification.from_pretrained(
...     "runs/sentiment", quantization_config=SoraInt8Config()
... )
"""

from __future__ import annotations

import os
import warnings
from typing import Any

import torch
from torch import nn
from transformers import PreTrainedModel
from transformers.quantizers import HfQuantizer
from transformers.quantizers.auto import AUTO_QUANTIZATION_CONFIG_MAPPING, AUTO_QUANTIZER_MAPPING
from transformers.quantizers.base import get_keys_to_not_convert
from transformers.utils.quantization_config import QuantizationConfigMixin

QUANT_METHOD = "sora_int8"

__all__ = [
    "QUANT_METHOD",
    "SoraInt8Config",
    "SoraInt8HfQuantizer",
    "SoraInt8Linear",
    "is_int8_quantized",
    "quantize_int8",
    "register_int8_quantizer",
    "save_int8",
]


class SoraInt8Config(QuantizationConfigMixin):
    """`quantization_config` of a Sora model with int8 Linear layers (int8 weights, dynamic int8 activations).

    Args:
        modules_to_not_convert (`list[str]`, *optional*):
            Names of Linear layers (or of modules holding them) to keep in floating point. `None` keeps
            transformers' defaults: the output embeddings, the last layer, and any layer whose weight is tied to
            another parameter. Tied layers are always kept.
    """

    def __init__(self, modules_to_not_convert: list[str] | None = None, **kwargs: Any):
        self.quant_method = QUANT_METHOD
        self.weights = "int8"
        self.activations = "dynamic_int8"
        self.modules_to_not_convert = modules_to_not_convert
        self.post_init()

    def post_init(self) -> None:
        """Raise `ValueError` on a malformed `modules_to_not_convert`."""
        names = self.modules_to_not_convert
        if names is not None and (
            isinstance(names, str) or not all(isinstance(name, str) and name for name in names)
        ):
            raise ValueError(
                f"modules_to_not_convert must be a list of module names (e.g. ['classifier']), got {names!r}"
            )
        if names is not None:
            self.modules_to_not_convert = list(names)


def _quantized_engine_available() -> bool:
    return torch.backends.quantized.engine not in (None, "none")


class SoraInt8Linear(nn.Module):
    """`nn.Linear` with an int8 weight (one float32 scale per output row) and 8-bit dynamic activations.

    The state dict holds `weight` (int8), `weight_scale` (float32) and `bias` (float32), so it saves as
    safetensors. On CPU the matmul runs on PyTorch's quantized kernel (`quantized::linear_dynamic`, packed once and
    cached); elsewhere (another device, no quantized engine, or under torch.compile/export, which cannot trace the
    packed weight) it multiplies by the dequantized weight (weight-only int8 numerics). Any input
    shape `(..., in_features)` works: the padded `(batch, seq, hidden)` layout and the unpadded
    `(num_tokens, hidden)` one alike.
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        bias: bool = True,
        device: torch.device | str | None = None,
    ):
        super().__init__()
        self.in_features = in_features
        self.out_features = out_features
        self.weight = nn.Parameter(
            torch.zeros(out_features, in_features, dtype=torch.int8, device=device), requires_grad=False
        )
        self.weight_scale = nn.Parameter(
            torch.ones(out_features, dtype=torch.float32, device=device), requires_grad=False
        )
        if bias:
            self.bias = nn.Parameter(
                torch.zeros(out_features, dtype=torch.float32, device=device), requires_grad=False
            )
        else:
            self.register_parameter("bias", None)
        self._packed: tuple[tuple, Any] | None = None

    @classmethod
    @torch.no_grad()
    def from_linear(cls, linear: nn.Linear) -> SoraInt8Linear:
        """Quantize `linear`'s weight: round(w / s) with s = max|w_row| / 127 (symmetric, per output row)."""
        weight = linear.weight.detach().float()
        quantized = cls(linear.in_features, linear.out_features, linear.bias is not None, weight.device)
        scale = weight.abs().amax(dim=1).clamp(min=1e-12) / 127.0
        quantized.weight.copy_(torch.round(weight / scale[:, None]).clamp(-127, 127).to(torch.int8))
        quantized.weight_scale.copy_(scale)
        if linear.bias is not None:
            quantized.bias.copy_(linear.bias.detach().float())
        return quantized

    def dequantized_weight(self) -> torch.Tensor:
        """The float32 weight the int8 values stand for."""
        return self.weight.float() * self.weight_scale[:, None]

    def _packed_weight(self) -> Any:
        """The weight packed for `quantized::linear_dynamic`, rebuilt whenever a tensor was replaced or changed."""
        tensors = (self.weight, self.weight_scale, self.bias)
        key = tuple((id(t), t.data_ptr(), t._version) if t is not None else None for t in tensors)
        if self._packed is None or self._packed[0] != key:
            # the quantized-tensor constructors warn about their future deprecation (pytorch#184982)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                qweight = torch._make_per_channel_quantized_tensor(
                    self.weight.detach(),
                    self.weight_scale.detach().double(),
                    torch.zeros(self.out_features, dtype=torch.long),
                    0,
                )
                bias = self.bias.detach().float() if self.bias is not None else None
                self._packed = (key, torch.ops.quantized.linear_prepack(qweight, bias))
        return self._packed[1]

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        if (
            hidden_states.device.type == "cpu"
            and _quantized_engine_available()
            and not torch.compiler.is_compiling()  # packed weights are opaque to dynamo
        ):
            # reduce_range: 7-bit activations, so fbgemm's int16 accumulation of u8 x s8 pairs cannot saturate
            flat = hidden_states.reshape(-1, self.in_features).float().contiguous()
            output = torch.ops.quantized.linear_dynamic(flat, self._packed_weight(), True)
            return output.view(*hidden_states.shape[:-1], self.out_features).to(hidden_states.dtype)
        weight = self.dequantized_weight().to(hidden_states.dtype)
        bias = self.bias.to(hidden_states.dtype) if self.bias is not None else None
        return nn.functional.linear(hidden_states, weight, bias)

    def extra_repr(self) -> str:
        return (
            f"in_features={self.in_features}, out_features={self.out_features}, bias={self.bias is not None}"
        )

    def _apply(self, fn, recurse=True):
        self._packed = None  # `.to()` and friends move the tensors: pack again on the next call
        return super()._apply(fn, recurse)


def _matches(name: str, keys: list[str]) -> bool:
    """Whether module `name` is (or sits under) one of `keys`, matched by full name or by a trailing part."""
    return any(
        name == key or name.startswith(f"{key}.") or name.endswith(f".{key}") or f".{key}." in f".{name}."
        for key in keys
    )


def _tied_linear_names(model: PreTrainedModel) -> set[str]:
    """Linear layers whose weight is shared with another parameter (e.g. an LM head tied to the embeddings)."""
    owners: dict[int, list[str]] = {}
    for name, module in model.named_modules(remove_duplicate=False):
        weight = getattr(module, "weight", None)
        if isinstance(weight, torch.Tensor):
            owners.setdefault(id(weight), []).append(name)
    return {
        name
        for names in owners.values()
        if len(names) > 1
        for name in names
        if isinstance(model.get_submodule(name), nn.Linear)
    }


def resolve_modules_to_not_convert(model: PreTrainedModel, names: list[str] | None) -> list[str]:
    """The layers kept in floating point: `names` (or transformers' defaults when `None`) plus every tied layer."""
    if names is None:  # transformers' defaults name parameters ("classifier.bias"): keep their modules
        keys = [key.removesuffix(".weight").removesuffix(".bias") for key in get_keys_to_not_convert(model)]
    else:
        keys = list(names)
    linear_names = [name for name, module in model.named_modules() if isinstance(module, nn.Linear)]
    if names is not None:
        unknown = [key for key in names if not any(_matches(linear, [key]) for linear in linear_names)]
        if unknown:
            raise ValueError(
                f"modules_to_not_convert names {unknown}, which match no Linear layer of "
                f"{type(model).__name__}; Linear layers are e.g. {linear_names[:4]}"
            )
    keys += sorted(_tied_linear_names(model))
    # stored explicitly in the config, so that loading rebuilds exactly the same layers
    return sorted({name for name in linear_names if _matches(name, keys)})


def _replace_linears(model: nn.Module, skip: list[str], pre_quantized: bool) -> int:
    """Swap every `nn.Linear` outside `skip` for a `SoraInt8Linear` (empty when the weights come from a checkpoint)."""
    targets = [
        name
        for name, module in model.named_modules()
        if isinstance(module, nn.Linear) and not _matches(name, skip)
    ]
    for name in targets:
        linear = model.get_submodule(name)
        if pre_quantized:
            new = SoraInt8Linear(
                linear.in_features, linear.out_features, linear.bias is not None, linear.weight.device
            )
        else:
            new = SoraInt8Linear.from_linear(linear)
        parent_name, _, child = name.rpartition(".")
        setattr(model.get_submodule(parent_name) if parent_name else model, child, new)
    return len(targets)


class SoraInt8HfQuantizer(HfQuantizer):
    """transformers' quantizer for `SoraInt8Config`: `from_pretrained` builds int8 layers (before loading a saved
    int8 checkpoint, or after loading a float one) and `save_pretrained` writes them as safetensors."""

    requires_calibration = False
    quantization_config: SoraInt8Config

    def validate_environment(self, *args: Any, **kwargs: Any) -> None:
        device_map = kwargs.get("device_map")
        devices = set(device_map.values()) if isinstance(device_map, dict) else {device_map}
        if any(device not in (None, "cpu", torch.device("cpu")) for device in devices):
            raise ValueError(
                f"sora_int8 models run on CPU; load them without device_map (got device_map={device_map!r})"
            )

    def _process_model_before_weight_loading(self, model: PreTrainedModel, **kwargs: Any) -> None:
        config = self.quantization_config
        config.modules_to_not_convert = resolve_modules_to_not_convert(model, config.modules_to_not_convert)
        if self.pre_quantized:
            _replace_linears(model, config.modules_to_not_convert, pre_quantized=True)

    def _process_model_after_weight_loading(self, model: PreTrainedModel, **kwargs: Any) -> PreTrainedModel:
        if not self.pre_quantized:  # a float checkpoint: quantize the loaded weights
            _replace_linears(model, self.quantization_config.modules_to_not_convert, pre_quantized=False)
            self.pre_quantized = True
        return model.eval()

    def is_serializable(self) -> bool:
        return True

    @property
    def is_trainable(self) -> bool:
        return False


def register_int8_quantizer() -> None:
    """Make `quant_method: sora_int8` known to transformers' `from_pretrained`; safe to call more than once."""
    AUTO_QUANTIZATION_CONFIG_MAPPING.setdefault(QUANT_METHOD, SoraInt8Config)
    AUTO_QUANTIZER_MAPPING.setdefault(QUANT_METHOD, SoraInt8HfQuantizer)


register_int8_quantizer()


def is_int8_quantized(model: nn.Module) -> bool:
    """Whether `model` holds `SoraInt8Linear` layers."""
    return any(isinstance(module, SoraInt8Linear) for module in model.modules())


def quantize_int8(model: PreTrainedModel, modules_to_not_convert: list[str] | None = None) -> PreTrainedModel:
    """Replace `model`'s Linear layers by int8 ones in place, put it in eval mode and return it (CPU inference)."""
    if not isinstance(model, PreTrainedModel):
        raise ValueError(f"quantize_int8 expects a transformers PreTrainedModel, got {type(model).__name__}")
    if is_int8_quantized(model) or getattr(model, "hf_quantizer", None) is not None:
        raise ValueError(
            f"{type(model).__name__} is already quantized; quantize the floating-point model once"
        )
    devices = {parameter.device.type for parameter in model.parameters()}
    if devices != {"cpu"}:
        raise ValueError(
            f"int8 dynamic quantization runs on CPU; call model.to('cpu') first (found {devices})"
        )
    config = SoraInt8Config(modules_to_not_convert)
    config.modules_to_not_convert = resolve_modules_to_not_convert(model, config.modules_to_not_convert)
    if not _replace_linears(model, config.modules_to_not_convert, pre_quantized=False):
        raise ValueError(
            f"{type(model).__name__} has no Linear layer left to quantize outside {config.modules_to_not_convert}"
        )
    quantizer = SoraInt8HfQuantizer(config, pre_quantized=True)
    model.hf_quantizer = quantizer
    model.quantization_method = QUANT_METHOD
    quantizer.postprocess_model(model)  # config.quantization_config, config._is_quantized
    return model.eval()


def save_int8(model: PreTrainedModel, save_directory: str | os.PathLike, **kwargs: Any) -> None:
    """`model.save_pretrained` for an int8 model (`quantize_int8` or loaded int8); `ValueError` for a float one."""
    if not is_int8_quantized(model):
        raise ValueError(f"{type(model).__name__} is not int8-quantized: call quantize_int8(model) first")
    model.save_pretrained(save_directory, **kwargs)
