"""What `optimum-onnx` 0.1.0 needs from transformers 4.5x that transformers 5 renamed or removed.

`optimum-onnx` 0.1.0 (the release that holds `optimum.exporters.onnx` and `optimum.onnxruntime`) declares
`transformers<4.58`. Against transformers 5:

- its modules fail at import on six names: `patch_transformers_for_optimum` restores each as an alias of its
  transformers 5 equivalent (nothing that exists is replaced); it must run before `optimum.exporters.onnx` /
  `optimum.onnxruntime` load;
- `ORTModelForSeq2SeqLM.generate` runs transformers 5's `GenerationMixin`, which calls three model methods
  ORT models lack and hands the cache back as `cache=` where ORT reads `past_key_values=` (without the rename
  every step after the first would run the decoder without its past): `patch_ort_generation` adds them.
"""

import huggingface_hub
import torch
import transformers
import transformers.modeling_utils
import transformers.utils
import transformers.utils.generic
import transformers.utils.output_capturing
from transformers import PreTrainedConfig


def _get_parameter_dtype(module: torch.nn.Module) -> torch.dtype:
    """The dtype of a module's first floating-point parameter (float32 when it has none)."""
    for parameter in module.parameters():
        if parameter.is_floating_point():
            return parameter.dtype
    return torch.float32


def _is_offline_mode() -> bool:
    """Whether `HF_HUB_OFFLINE` is set (transformers 4's `transformers.utils.is_offline_mode`)."""
    return bool(huggingface_hub.constants.HF_HUB_OFFLINE)


# (owner, name, value): optimum-onnx 0.1.0's import or call site in the comment of each.
_ALIASES = (
    # optimum/exporters/onnx/convert.py: `from transformers.modeling_utils import get_parameter_dtype`
    (transformers.modeling_utils, "get_parameter_dtype", _get_parameter_dtype),
    # optimum/exporters/onnx/_traceable_decorator.py: moved to transformers.utils.output_capturing
    (
        transformers.utils.generic,
        "_CAN_RECORD_REGISTRY",
        transformers.utils.output_capturing._CAN_RECORD_REGISTRY,
    ),
    (transformers.utils.generic, "OutputRecorder", transformers.utils.output_capturing.OutputRecorder),
    # optimum/onnxruntime/modeling.py: `from transformers.utils import cached_file, is_offline_mode`
    (transformers.utils, "is_offline_mode", _is_offline_mode),
    # optimum/onnxruntime/modeling_seq2seq.py: AutoModelForVision2Seq became AutoModelForImageTextToText
    (transformers, "AutoModelForVision2Seq", transformers.AutoModelForImageTextToText),
    # optimum/exporters/onnx/convert.py calls config._get_non_default_generation_parameters()
    (PreTrainedConfig, "_get_non_default_generation_parameters", PreTrainedConfig._get_generation_parameters),
)


def patch_transformers_for_optimum() -> None:
    """Add the missing names to transformers (idempotent; existing attributes are left untouched)."""
    for owner, name, value in _ALIASES:
        if not hasattr(owner, name):
            setattr(owner, name, value)


def patch_ort_generation() -> None:
    """Make optimum's ORT encoder-decoder models generate under transformers 5's `GenerationMixin` (idempotent)."""
    from optimum.onnxruntime.modeling_seq2seq import ORTModelForConditionalGeneration

    model_class = ORTModelForConditionalGeneration
    if getattr(model_class, "_patched_for_transformers5", False):
        return
    prepare_inputs = model_class.prepare_inputs_for_generation

    def prepare_inputs_for_generation(self, *args, **kwargs):
        inputs = prepare_inputs(self, *args, **kwargs)
        if inputs.get("past_key_values") is None and "cache" in inputs:
            inputs["past_key_values"] = inputs.pop("cache")
        return inputs

    model_class.prepare_inputs_for_generation = prepare_inputs_for_generation
    model_class.is_remote_code = lambda self: False
    model_class.get_experts_implementation = lambda self: {}
    model_class.set_experts_implementation = lambda self, implementation: None
    model_class._patched_for_transformers5 = True
