"""Top-layer fine-tuning: freeze all but the top `k` encoder layers (optionally with a peft adapter below them)."""

from __future__ import annotations

import copy
import numbers
from typing import TYPE_CHECKING

from torch import nn

if TYPE_CHECKING:
    from peft import PeftConfig, PeftModel
    from transformers import PreTrainedModel


def _body_and_layers(model: nn.Module) -> tuple[nn.Module, nn.ModuleList]:
    """The Sora body (`SoraModel`) of a head model, and its encoder layers."""
    body = getattr(model, "base_model", None)
    encoder = getattr(body, "encoder", None)
    layers = getattr(encoder, "layers", None)
    if not isinstance(layers, nn.ModuleList):
        raise ValueError(
            f"{type(model).__name__} has no Sora encoder (`model.encoder.layers`); pass a Sora model "
            "such as SoraForSequenceClassification, not a wrapped or foreign one."
        )
    return body, layers


def _check_k(k: int, num_layers: int) -> None:
    if not isinstance(k, numbers.Integral) or isinstance(k, bool) or not 1 <= k <= num_layers:
        raise ValueError(
            f"k={k!r} is out of range: this encoder has {num_layers} layers; use an integer 1 <= k <= {num_layers}."
        )


def _head_module_names(model: nn.Module, body: nn.Module) -> list[str]:
    """Largest modules outside the body whose parameters are not tied to it (a tied LM decoder is left out)."""
    body_params = {id(p) for p in body.parameters()}

    def collect(module: nn.Module, prefix: str) -> list[str]:
        names = []
        for name, child in module.named_children():
            params = list(child.parameters())
            if child is body or not params:
                continue
            if not any(id(p) in body_params for p in params):
                names.append(prefix + name)
            else:
                names.extend(collect(child, f"{prefix}{name}."))
        return names

    return collect(model, "")


def train_only_top_layers(
    model: PreTrainedModel, k: int, train_head: bool = True, peft_config: PeftConfig | None = None
) -> PreTrainedModel | PeftModel:
    """Train only the top `k` encoder layers, the final encoder LayerNorm and (if `train_head`) the task head.

    Without `peft_config`, every other parameter of `model` is frozen in place and `model` is returned; train it
    with `Trainer` and save it with `save_pretrained` as usual.

    With `peft_config` (LoRA, AdaLoRA, LoHa, LoKr, ...: a tuner with `layers_to_transform`), the adapter goes on
    the encoder layers below the top `k`, while the top `k` layers, the final LayerNorm and the head go to
    `modules_to_save`; the `PeftModel` from `get_peft_model` is returned, and its `save_pretrained` writes all
    of it into the adapter folder. This is the order that works: pass the base model, not a `PeftModel`, since
    base weights unfrozen after `get_peft_model` would train but would not be saved with the adapter. With a
    `task_type`, peft itself also trains and saves `classifier`/`qa_outputs`, whatever `train_head` says.

    Either way, the embeddings and a seq2seq decoder stay frozen, and so do head weights tied to the embeddings
    (an LM decoder).
    """
    from peft import PeftModel, get_peft_model

    if isinstance(model, PeftModel):
        raise ValueError(
            "train_only_top_layers got a PeftModel; peft saves only adapters and `modules_to_save`, so layers "
            "unfrozen afterwards would be lost. Pass the base model and the config instead: "
            "train_only_top_layers(base_model, k, peft_config=LoraConfig(...))."
        )
    body, layers = _body_and_layers(model)
    num_layers = len(layers)
    _check_k(k, num_layers)
    if peft_config is None:
        model.requires_grad_(False)
        for layer in layers[num_layers - k :]:
            layer.requires_grad_(True)
        body.encoder.final_layer_norm.requires_grad_(True)
        if train_head:
            body_params = {id(p) for p in body.parameters()}
            for param in model.parameters():
                if id(param) not in body_params:
                    param.requires_grad_(True)
        return model

    if not hasattr(peft_config, "layers_to_transform") or not hasattr(peft_config, "modules_to_save"):
        raise ValueError(
            f"{type(peft_config).__name__} cannot be limited to some layers; use a tuner with "
            "`layers_to_transform` and `modules_to_save` (LoraConfig, AdaLoraConfig, LoHaConfig, LoKrConfig, ...)."
        )
    if k == num_layers:
        raise ValueError(
            f"k={k} leaves no encoder layer for the adapter; with a peft_config use 1 <= k <= {num_layers - 1}, "
            "or call train_only_top_layers without peft_config to train all layers."
        )
    config = copy.deepcopy(peft_config)
    config.layers_to_transform = list(range(num_layers - k))
    config.layers_pattern = r"encoder\.layers"  # not the decoder's layers
    top = [f"encoder.layers.{i}" for i in range(num_layers - k, num_layers)] + ["encoder.final_layer_norm"]
    head = _head_module_names(model, body) if train_head and body is not model else []
    config.modules_to_save = list(dict.fromkeys([*(config.modules_to_save or []), *top, *head]))
    return get_peft_model(model, config)
