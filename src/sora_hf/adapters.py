"""Parameter-efficient fine-tuning of Sora: peft defaults for model_type "sora", and top-layer fine-tuning.

`peft` picks default target modules by `config.model_type` from one table per tuner; `register_peft_defaults`
adds a "sora" row to each, so `get_peft_model(model, LoraConfig(task_type=...))` needs no `target_modules`.

Sora module names: self-attention `qkv_proj` (fused query/key/value) and `o_proj`; decoder cross-attention
`q_proj`, `kv_proj` (fused key/value) and `o_proj`; MLP `fc1`, `fc2`; LayerNorms `self_attn_layer_norm`,
`encoder_attn_layer_norm`, `final_layer_norm` (BART's names). Heads are named as peft expects: `classifier`
(sequence and token classification) and `qa_outputs` (question answering) land in `modules_to_save`.

The sequence-classification `pooler` is not in `modules_to_save` by default, like BERT's pooler under peft: it
is pretrained (next-sentence prediction, in `SoraForPreTraining`) and loads with the checkpoint, so it stays
frozen with the rest of the body. Pass `modules_to_save=["pooler"]` to train and save it too.
"""

from __future__ import annotations

import copy
import numbers
from typing import TYPE_CHECKING

from torch import nn

if TYPE_CHECKING:
    from peft import PeftConfig, PeftModel
    from transformers import PreTrainedModel

# Projections that carry queries, keys and values: fused in self-attention, split in cross-attention.
SORA_ATTENTION_MODULES = ["qkv_proj", "q_proj", "kv_proj"]
# Every linear layer of every block (what peft's BART rows list for AdaLoRA and VB-LoRA).
SORA_BLOCK_LINEAR_MODULES = ["qkv_proj", "q_proj", "kv_proj", "o_proj", "fc1", "fc2"]

# Per tuner (peft's PeftType value), when its BART/BERT row is not "the attention projections".
SORA_PEFT_TARGET_MODULES: dict[str, list[str]] = {
    "ADALORA": SORA_BLOCK_LINEAR_MODULES,
    "VBLORA": SORA_BLOCK_LINEAR_MODULES,
    # (IA)^3 rescales keys, values and the feed-forward input (the paper's three places).
    "IA3": ["qkv_proj", "kv_proj", "fc2"],
    "BEFT": ["qkv_proj", "kv_proj"],
    "LN_TUNING": ["self_attn_layer_norm", "encoder_attn_layer_norm", "final_layer_norm"],
}
SORA_IA3_FEEDFORWARD_MODULES = ["fc2"]


def register_peft_defaults() -> None:
    """Add model_type "sora" to the default-target table of every peft tuner that has rows for BART or BERT."""
    try:
        from peft.mapping import PEFT_TYPE_TO_TUNER_MAPPING
        from peft.utils import (
            TRANSFORMERS_MODELS_TO_IA3_FEEDFORWARD_MODULES_MAPPING,
            TRANSFORMERS_MODELS_TO_IA3_TARGET_MODULES_MAPPING,
        )
    except ImportError:
        return
    for peft_type, tuner_class in PEFT_TYPE_TO_TUNER_MAPPING.items():
        # Tuners read their own table (`target_module_mapping`); many tables are copies of LoRA's.
        table = getattr(tuner_class, "target_module_mapping", None)
        if isinstance(table, dict) and ("bart" in table or "bert" in table):
            table.setdefault(
                "sora", list(SORA_PEFT_TARGET_MODULES.get(peft_type.value, SORA_ATTENTION_MODULES))
            )
    # (IA)^3 reads the module-level tables instead of a class attribute.
    TRANSFORMERS_MODELS_TO_IA3_TARGET_MODULES_MAPPING.setdefault(
        "sora", list(SORA_PEFT_TARGET_MODULES["IA3"])
    )
    TRANSFORMERS_MODELS_TO_IA3_FEEDFORWARD_MODULES_MAPPING.setdefault(
        "sora", list(SORA_IA3_FEEDFORWARD_MODULES)
    )


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
