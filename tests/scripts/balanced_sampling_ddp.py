"""A few steps of `LabelBalancedTrainer` (power 1) on 90 class-0 rows and 10 class-1 rows.

Run alone, or through `accelerate launch --multi_gpu --num_processes 2` (two CPU processes, gloo). Every process writes the example ids its
collator received, in order, to `<output>.<rank>.json`.
"""

import argparse
import json
import os

import torch
from datasets import Dataset
from transformers import TrainingArguments

from sora_hf import SoraConfig, SoraForSequenceClassification
from sora_hf.training.tasks.multimodal import LabelBalancedTrainer

GLOBAL_BATCH, STEPS = 8, 12


class RecordingCollator:
    """Batches the rows' token ids and labels, and remembers which example ids it saw."""

    def __init__(self):
        self.seen: list[int] = []

    def __call__(self, rows):
        self.seen += [row["id"] for row in rows]
        return {
            "input_ids": torch.tensor([row["input_ids"] for row in rows]),
            "labels": torch.tensor([row["label"] for row in rows]),
        }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--output", required=True)
    options = parser.parse_args()
    world_size = int(os.environ.get("WORLD_SIZE", "1"))

    labels = [0] * 90 + [1] * 10
    dataset = Dataset.from_dict(
        {"id": list(range(100)), "label": labels, "input_ids": [[1, 5 + label, 2] for label in labels]}
    )
    torch.manual_seed(0)
    model = SoraForSequenceClassification(
        SoraConfig(
            vocab_size=16, hidden_size=8, num_hidden_layers=1, num_attention_heads=2, intermediate_size=16
        )
    )
    collator = RecordingCollator()
    trainer = LabelBalancedTrainer(
        model=model,
        args=TrainingArguments(
            output_dir=options.output + ".run",
            per_device_train_batch_size=GLOBAL_BATCH // world_size,
            max_steps=STEPS,
            seed=7,
            report_to=[],
            save_strategy="no",
            use_cpu=True,
            disable_tqdm=True,
            remove_unused_columns=False,  # the collator reads the ids
            ddp_backend="gloo" if world_size > 1 else None,
        ),
        train_dataset=dataset,
        data_collator=collator,
        label_column="label",
        label_sampling_power=1.0,
    )
    trainer.train()
    with open(f"{options.output}.{trainer.args.process_index}.json", "w") as handle:
        json.dump(collator.seen, handle)


if __name__ == "__main__":
    main()
