"""ONNX export of Sora through Optimum (`optimum-onnx`), served by `optimum.onnxruntime`.

Import this module before `optimum.onnxruntime`: it first adds the transformers-4 names `optimum-onnx` 0.1.0
imports (see `_optimum_compat`), then registers `model_type="sora"` with `optimum.exporters.tasks.TasksManager`, so
`optimum.exporters.onnx.main_export` and the `ORTModelFor*` classes handle Sora checkpoints:

- encoder heads (BERT-like inputs `input_ids`, `attention_mask`, `token_type_ids`): `feature-extraction`,
  `text-classification`, `token-classification`, `question-answering`, `fill-mask`;
- the encoder-decoder (`SoraForConditionalGeneration`, BART-like): `text2text-generation` and
  `text2text-generation-with-past` (encoder, decoder and decoder-with-past graphs, merged by default).

The export graph is the padded path: `RealTokens` (the encoder's unpadding) is off while tracing, and padding is
handled by the attention mask as in BERT. `optimum-cli` runs in a fresh process that does not import `sora_hf`;
`python -m sora_hf.exporters.onnx ARGS` is `optimum-cli export onnx ARGS` with Sora registered.
"""

import inspect
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from transformers import PreTrainedModel
from transformers.cache_utils import EncoderDecoderCache
from transformers.modeling_outputs import BaseModelOutput

from ..configuration_sora import SoraConfig
from ._optimum_compat import patch_ort_generation, patch_transformers_for_optimum

patch_transformers_for_optimum()  # before any optimum.exporters.onnx / optimum.onnxruntime module loads

# isort: split
from optimum.exporters.onnx import main_export, onnx_export_from_model  # noqa: E402
from optimum.exporters.onnx.config import TextEncoderOnnxConfig, TextSeq2SeqOnnxConfig  # noqa: E402
from optimum.exporters.onnx.model_patcher import UNSUPPORTED_OPS_PATCHING_SPEC, ModelPatcher  # noqa: E402
from optimum.exporters.tasks import TasksManager  # noqa: E402
from optimum.utils import NormalizedSeq2SeqConfig, NormalizedTextConfig  # noqa: E402
from optimum.utils.input_generators import (  # noqa: E402
    DummySeq2SeqDecoderTextInputGenerator,
    DummySeq2SeqPastKeyValuesGenerator,
    DummyTextInputGenerator,
)

ENCODER_TASKS = (
    "feature-extraction",
    "text-classification",
    "token-classification",
    "question-answering",
    "fill-mask",
)
SEQ2SEQ_TASKS = ("text2text-generation", "text2text-generation-with-past")
SUPPORTED_TASKS = ENCODER_TASKS + SEQ2SEQ_TASKS


def _legacy_cache(
    cache: EncoderDecoderCache, with_cross_attention: bool
) -> tuple[tuple[torch.Tensor, ...], ...]:
    """Per layer `(self_key, self_value[, cross_key, cross_value])`: the order of optimum's `present.*` outputs."""
    layers = []
    for index, self_layer in enumerate(cache.self_attention_cache.layers):
        layer = (self_layer.keys, self_layer.values)
        if with_cross_attention:
            cross_layer = cache.cross_attention_cache.layers[index]
            layer += (cross_layer.keys, cross_layer.values)
        layers.append(layer)
    return tuple(layers)


class SoraModelPatcher(ModelPatcher):
    """Optimum's model patcher for Sora: its `cache` argument and outputs, none of the transformers-4 patches.

    Optimum's base patcher rewrites `check_model_inputs`-decorated forwards, registers its own (transformers 4.5x
    signature) mask functions and replaces `DynamicLayer.update`; all three break on transformers 5, whose masks
    and caches trace as they are. This patcher keeps only the op patches (`UNSUPPORTED_OPS_PATCHING_SPEC`),
    turns optimum's legacy `past_key_values` tuples into an `EncoderDecoderCache` passed as `cache`, and returns
    the outputs named in the ONNX config, the cache flattened back into `past_key_values` tuples.
    """

    def __init__(
        self,
        config: TextEncoderOnnxConfig | TextSeq2SeqOnnxConfig,
        model: PreTrainedModel,
        model_kwargs: dict[str, Any] | None = None,
    ):
        self._model = model
        self.real_config = config
        self.model_kwargs = model_kwargs or {}
        self._patching_specs = list(UNSUPPORTED_OPS_PATCHING_SPEC)
        self.orig_forward_name = "forward"
        self.orig_forward = model.forward
        self.patched_forward = self._make_patched_forward()

    def _make_patched_forward(self) -> Callable[..., dict[str, Any]]:
        """The forward traced by the exporter: inputs in signature order (or by name), the config's outputs out."""
        use_cache = bool(getattr(self.real_config, "use_past", False))
        output_names = list(self.real_config.outputs)
        with_cross_attention = any(".encoder.key" in name for name in output_names)

        signature = inspect.signature(self.orig_forward)
        parameters = [
            p.replace(name="past_key_values") if p.name == "cache" else p
            for p in signature.parameters.values()
        ]
        names = [p.name for p in parameters if p.kind is inspect.Parameter.POSITIONAL_OR_KEYWORD]

        def patched_forward(*args: Any, **kwargs: Any) -> dict[str, Any]:
            # the exporter passes its inputs positionally, in signature order
            kwargs = {**dict(zip(names, args)), **kwargs, **self.model_kwargs}
            past_key_values = kwargs.pop("past_key_values", None)
            if past_key_values is not None:
                # optimum passes (self k, self v, cross k, cross v) per layer: transformers' DDP-style init
                kwargs["cache"] = EncoderDecoderCache([tuple(layer) for layer in past_key_values])
            if isinstance(kwargs.get("encoder_outputs"), list | tuple):
                kwargs["encoder_outputs"] = BaseModelOutput(last_hidden_state=kwargs["encoder_outputs"][0])
            if "decoder_input_ids" in kwargs:
                kwargs["use_cache"] = use_cache
            outputs = self.orig_forward(**kwargs)
            filtered = {name: outputs[name] for name in output_names if name in outputs}
            cache = outputs.get("cache")
            if use_cache and isinstance(cache, EncoderDecoderCache):
                filtered["past_key_values"] = _legacy_cache(cache, with_cross_attention)
            return filtered

        # optimum matches its input names against the signature: Sora's `cache` travels as `past_key_values`
        patched_forward.__signature__ = signature.replace(parameters=parameters)
        return patched_forward

    def __enter__(self):
        self.patch_ops()
        setattr(self._model, self.orig_forward_name, self.patched_forward)

    def __exit__(self, exc_type, exc_value, traceback):
        self.restore_ops()
        setattr(self._model, self.orig_forward_name, self.orig_forward)


class FullMaskDummyInputsMixin:
    """Dummy inputs whose attention masks mark every token real.

    The same dummy inputs feed the trace and optimum's PyTorch-vs-ONNX validation. The trace does not depend on
    mask values (Sora skips the unpadding and transformers never drops a mask while tracing), but the validation
    compares every position: PyTorch's unpadded encoder passes padding positions through unchanged, the padded
    ONNX graph computes them, so with random padding the meaningless padding rows would fail the check. Padded
    batches are compared on their real tokens in tests/test_onnx_export.py.
    """

    def generate_dummy_inputs(self, framework: str = "pt", **input_shapes: Any) -> dict[str, Any]:
        """optimum's dummy inputs with `attention_mask` set to ones."""
        dummy_inputs = super().generate_dummy_inputs(framework=framework, **input_shapes)
        if isinstance(dummy_inputs.get("attention_mask"), torch.Tensor):
            dummy_inputs["attention_mask"] = torch.ones_like(dummy_inputs["attention_mask"])
        return dummy_inputs


class SoraOnnxConfig(FullMaskDummyInputsMixin, TextEncoderOnnxConfig):
    """ONNX config of the Sora encoder heads (BERT's inputs)."""

    NORMALIZED_CONFIG_CLASS = NormalizedTextConfig
    _MODEL_PATCHER = SoraModelPatcher

    @property
    def inputs(self) -> dict[str, dict[int, str]]:
        """`input_ids`, `attention_mask` and `token_type_ids`, all `(batch_size, sequence_length)`."""
        dynamic_axes = {0: "batch_size", 1: "sequence_length"}
        return {name: dict(dynamic_axes) for name in ("input_ids", "attention_mask", "token_type_ids")}


class SoraSeq2SeqOnnxConfig(FullMaskDummyInputsMixin, TextSeq2SeqOnnxConfig):
    """ONNX config of `SoraForConditionalGeneration` (BART's encoder / decoder / decoder-with-past split)."""

    NORMALIZED_CONFIG_CLASS = NormalizedSeq2SeqConfig.with_args(
        encoder_num_layers="num_hidden_layers",
        decoder_num_layers="decoder_layers",
        num_layers="decoder_layers",
        # optimum's "encoder/decoder heads" are the cross/self-attention heads: both are the decoder's in Sora
        encoder_num_attention_heads="decoder_attention_heads",
        decoder_num_attention_heads="decoder_attention_heads",
        eos_token_id="eos_token_id",
        allow_new=True,
    )
    DUMMY_INPUT_GENERATOR_CLASSES = (
        DummyTextInputGenerator,
        DummySeq2SeqDecoderTextInputGenerator,
        DummySeq2SeqPastKeyValuesGenerator,
    )
    _MODEL_PATCHER = SoraModelPatcher


def _infer_library_with_sora(infer: Callable[..., str]) -> classmethod:
    """Wrap `TasksManager._infer_library_from_model_or_model_class`: Sora classes are a transformers library."""

    def infer_library(cls, model: Any = None, model_class: type | None = None) -> str:
        target = model_class if model_class is not None else type(model)
        if target is not None and target.__module__.startswith(f"{__package__.split('.')[0]}."):
            return "transformers"
        return infer.__func__(cls, model=model, model_class=model_class)

    infer_library._sora_wrapped = True
    return classmethod(infer_library)


def register_sora_onnx_configs() -> None:
    """Register the Sora ONNX configs with optimum's `TasksManager` (idempotent).

    Optimum infers a model's library from its class's module (`transformers.*`); Sora's classes live in
    `sora_hf`, so the inference is taught that they are transformers models.
    """
    register = TasksManager.create_register("onnx", overwrite_existing=True)
    register("sora", *ENCODER_TASKS)(SoraOnnxConfig)
    register("sora", *SEQ2SEQ_TASKS)(SoraSeq2SeqOnnxConfig)
    infer = TasksManager.__dict__["_infer_library_from_model_or_model_class"]
    if not getattr(infer.__func__, "_sora_wrapped", False):
        TasksManager._infer_library_from_model_or_model_class = _infer_library_with_sora(infer)


def _normalized_task(task: str) -> str:
    """The optimum task name of `task` (synonyms such as `sequence-classification` accepted)."""
    with_past = task.endswith("-with-past")
    name = TasksManager.map_from_synonym(task.removesuffix("-with-past"))
    name = f"{name}-with-past" if with_past else name
    if name not in SUPPORTED_TASKS:
        raise ValueError(
            f"Unsupported ONNX export task {task!r} for Sora; choose one of {', '.join(SUPPORTED_TASKS)}."
        )
    return name


def _check_task_matches_config(task: str, config: SoraConfig) -> None:
    """Raise `ValueError` when an encoder task meets an encoder-decoder config or the reverse."""
    if task in SEQ2SEQ_TASKS and not config.is_encoder_decoder:
        raise ValueError(
            f"Task {task!r} needs an encoder-decoder Sora (config.is_encoder_decoder=True, a "
            "SoraForConditionalGeneration checkpoint); this one is encoder-only."
        )
    if task == "feature-extraction" and config.is_encoder_decoder:
        raise ValueError(
            "Task 'feature-extraction' exports the encoder-only SoraModel; this checkpoint is an encoder-decoder: "
            "export it with 'text2text-generation-with-past'."
        )


def export_onnx(
    model_or_folder: PreTrainedModel | str | Path,
    output_dir: str | Path,
    task: str,
    *,
    opset: int | None = None,
    validate: bool = True,
    atol: float | None = None,
) -> Path:
    """Export a Sora model (or a saved folder) to ONNX in `output_dir` for `task`; returns `output_dir`.

    Load the result with `optimum.onnxruntime`: `ORTModelForSequenceClassification.from_pretrained(output_dir)`
    (text-classification), `ORTModelForTokenClassification`, `ORTModelForQuestionAnswering`,
    `ORTModelForMaskedLM`, `ORTModelForFeatureExtraction`, or `ORTModelForSeq2SeqLM` (text2text-generation
    [-with-past]). A folder export also copies its tokenizer. `validate` compares ONNX Runtime with PyTorch on
    dummy inputs within `atol` (the config's default, 1e-5 for Sora, when None).
    """
    task = _normalized_task(task)
    output_dir = Path(output_dir)
    if isinstance(model_or_folder, PreTrainedModel):
        if not isinstance(model_or_folder.config, SoraConfig):
            raise ValueError(
                f"export_onnx exports Sora models; got a {type(model_or_folder.config).__name__}."
            )
        _check_task_matches_config(task, model_or_folder.config)
        onnx_export_from_model(
            model_or_folder.eval(), output_dir, task=task, opset=opset, do_validation=validate, atol=atol
        )
        return output_dir
    folder = Path(model_or_folder)
    if not (folder / "config.json").is_file():
        raise ValueError(
            f"{str(folder)!r} is not a saved model folder (no config.json); pass a folder or a model."
        )
    _check_task_matches_config(task, SoraConfig.from_pretrained(folder))
    main_export(
        str(folder),
        output_dir,
        task=task,
        opset=opset,
        do_validation=validate,
        atol=atol,
        library_name="transformers",
    )
    return output_dir


def main(argv: list[str] | None = None) -> None:
    """`optimum-cli export onnx ARGV` with Sora registered (`python -m sora_hf.exporters.onnx --help`)."""
    from optimum.commands.optimum_cli import main as optimum_cli_main

    sys.argv = [
        "python -m sora_hf.exporters.onnx",
        "export",
        "onnx",
        *(sys.argv[1:] if argv is None else argv),
    ]
    optimum_cli_main()


register_sora_onnx_configs()
patch_ort_generation()

if __name__ == "__main__":
    main()
