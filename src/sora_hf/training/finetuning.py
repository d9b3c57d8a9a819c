"""Pieces every fine-tuning entry point shares: the user's data files, the task model, the training slice."""

import re
from dataclasses import dataclass, field
from pathlib import Path

from transformers import AutoConfig


@dataclass
class FinetuneArguments:
    """Which checkpoint and which files every fine-tuning run takes; `TrainingArguments` hold the rest."""

    model_name_or_path: str = field(
        default="sora", metadata={"help": "Checkpoint to start from ('sora' = packaged)."}
    )
    from_scratch: bool = field(
        default=False,
        metadata={"help": "Random initialisation with the checkpoint's config (the no-pretraining control)."},
    )
    train_file: str | None = field(default=None, metadata={"help": "Your own CSV/JSON training file."})
    validation_file: str | None = None
    test_file: str | None = None
    max_train_samples: int | None = None
    lora_r: int | None = field(
        default=None,
        metadata={"help": "Train a LoRA adapter of this rank (plus the head) instead of every weight."},
    )
    lora_target_modules: list[str] | None = field(
        default=None,
        metadata={
            "help": "Modules LoRA adapts: names (each matches a module name's end), or one regular expression "
            "matched against whole module names, e.g. '.*(word_embeddings|layers\\.[1-3]\\.self_attn\\.qkv_proj)' "
            "(peft's list / string semantics). Default: peft's defaults for the model type."
        },
    )
    train_top_layers: int | None = field(
        default=None, metadata={"help": "Train only the top k encoder layers and the head."}
    )


def user_data_files(train_file: str, validation_file: str | None, test_file: str | None) -> dict[str, str]:
    """`{split: path}` for `load_task_dataset(data_files=...)`; every split is required."""
    files = {"train": train_file, "validation": validation_file, "test": test_file}
    missing = [split for split, path in files.items() if not path]
    if missing:
        raise ValueError(
            f"With train_file, also pass {' and '.join(f'{split}_file' for split in missing)} "
            "(the same file is fine for a quick check)."
        )
    return files


def load_task_model(auto_class, checkpoint: str, labels: list[str], from_scratch: bool):
    """`auto_class` with the label names; random weights (same config) when `from_scratch`."""
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


def make_parameter_efficient(model, args: FinetuneArguments, task_type: str):
    """The model as `args` asks: LoRA (rank `lora_r`, peft's defaults for Sora), top-k layers, or unchanged."""
    from peft import LoraConfig, get_peft_model

    from ..adapters import train_only_top_layers

    lora = None
    if args.lora_r:
        lora = LoraConfig(
            task_type=task_type,
            r=args.lora_r,
            lora_alpha=2 * args.lora_r,
            target_modules=lora_target_modules(args.lora_target_modules),
        )
    if args.train_top_layers:
        return train_only_top_layers(model, args.train_top_layers, peft_config=lora)
    return get_peft_model(model, lora) if lora else model


def parameter_counts(model) -> dict[str, int]:
    """Trainable and total parameters (a `PeftModel` counts its frozen base too)."""
    return {
        "trainable_parameters": sum(p.numel() for p in model.parameters() if p.requires_grad),
        "total_parameters": sum(p.numel() for p in model.parameters()),
    }


def training_slice(train, max_samples: int | None, seed: int):
    """The first `max_samples` of a seeded shuffle of `train`, or all of it."""
    if not max_samples:
        return train
    return train.shuffle(seed=seed).select(range(min(max_samples, len(train))))


def card_dataset(args: FinetuneArguments, built_in: str, description: str) -> tuple[str, str]:
    """The dataset a run's model card names, and a parenthesised description for the built-in one."""
    if args.train_file is None:
        return built_in, f" ({description})"
    return Path(args.train_file).name, ""
