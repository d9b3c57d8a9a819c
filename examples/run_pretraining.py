"""Pretrain Sora (MLM + NSP encoder, denoising decoder) on the offline corpus with `Trainer`.

Example (the command that made the packaged `sora` checkpoint is in model_cards/sora.md):

    python examples/run_pretraining.py --output_dir runs/sora-pretrain --max_steps 2000 \
        --per_device_train_batch_size 64 --learning_rate 1e-3 --warmup_steps 100 --bf16
"""

import sys

from transformers import HfArgumentParser, TrainingArguments

from sora_hf.argument_files import parse_dataclasses
from sora_hf.training.pretraining import PretrainingArguments, run_pretraining


def main() -> None:
    parser = HfArgumentParser((PretrainingArguments, TrainingArguments))
    pretraining_args, training_args = parse_dataclasses(parser, sys.argv[1:])
    summary = run_pretraining(pretraining_args, training_args)
    print(summary["held_out"])


if __name__ == "__main__":
    main()
