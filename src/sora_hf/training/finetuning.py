"""Pieces every fine-tuning run shares: the task model, PEFT (LoRA, any peft config, top-k layers), the slice."""

import json
import re
from pathlib import Path

from transformers import AutoConfig

from ..errors import UserInputError


def load_task_model(auto_class, checkpoint: str, labels: list[str] | None, from_scratch: bool):
    """`auto_class` with the label names (if any); random weights (same config) when `from_scratch`."""
    label_maps = {}
    if labels is not None:
        label_maps = dict(
            num_labels=len(labels),
            id2label=dict(enumerate(labels)),
            label2id={n: i for i, n in enumerate(labels)},
        )
    if from_scratch:
        return auto_class.from_config(AutoConfig.from_pretrained(checkpoint, **label_maps))
    return auto_class.from_pretrained(checkpoint, **label_maps)


def lora_target_modules(names: list[str] | None) -> list[str] | str | None:
    """peft's `target_modules`: a lone entry with regex syntax becomes a regex string, anything else a name list."""
    if names and len(names) == 1 and re.search(r"[\\*()\[\]|+?^$]", names[0]):
        return names[0]
    return names


def load_peft_config(path: str, task_type: str):
    """A saved peft config (a folder with adapter_config.json, or the JSON file itself) for `task_type`."""
    from peft import PEFT_TYPE_TO_CONFIG_MAPPING

    file = Path(path) / "adapter_config.json" if Path(path).is_dir() else Path(path)
    if not file.is_file():
        raise UserInputError(
            f"--peft_config {path}: no adapter_config.json there; pass a folder or JSON file saved by peft "
            "(e.g. LoraConfig(...).save_pretrained(folder))."
        )
    values = json.loads(file.read_text())
    if values.get("peft_type") not in PEFT_TYPE_TO_CONFIG_MAPPING:
        raise UserInputError(
            f"--peft_config {path}: peft_type {values.get('peft_type')!r} is not a peft method."
        )
    values["task_type"] = task_type
    return PEFT_TYPE_TO_CONFIG_MAPPING[values["peft_type"]](**values)


def make_parameter_efficient(model, args, task_type: str):
    """The model as `args` asks: LoRA (rank `lora_r`, peft's defaults for Sora), a saved peft config, top-k
    layers (with either), or unchanged."""
    from peft import LoraConfig, get_peft_model

    from ..layer_freezing import train_only_top_layers

    peft_config = None
    if args.lora_r:
        peft_config = LoraConfig(
            task_type=task_type,
            r=args.lora_r,
            lora_alpha=2 * args.lora_r,
            target_modules=lora_target_modules(args.lora_target_modules),
        )
    elif getattr(args, "peft_config", None):
        peft_config = load_peft_config(args.peft_config, task_type)
    if args.train_top_layers:
        return train_only_top_layers(model, args.train_top_layers, peft_config=peft_config)
    return get_peft_model(model, peft_config) if peft_config else model


def parameter_counts(model) -> dict[str, int]:
    """Trainable and total parameters (a `PeftModel` counts its frozen base too)."""
    # a ZeRO-3-partitioned parameter holds its whole size in ds_numel (numel() is this process's part, or 0)
    numel = {id(p): getattr(p, "ds_numel", p.numel()) for p in model.parameters()}
    return {
        "trainable_parameters": sum(numel[id(p)] for p in model.parameters() if p.requires_grad),
        "total_parameters": sum(numel.values()),
    }


def training_slice(train, max_samples: int | None, seed: int):
    """The first `max_samples` of a seeded shuffle of `train`, or all of it."""
    if not max_samples:
        return train
    return train.shuffle(seed=seed).select(range(min(max_samples, len(train))))
