"""Pretrain Sora (MLM + NSP encoder, denoising decoder) on the offline corpus with `Trainer`.

Example (the command that made the packaged `sora` checkpoint is in model_cards/sora.md):

    python examples/run_pretraining.py --output_dir runs/sora-pretrain --max_steps 2000 \
        --per_device_train_batch_size 64 --learning_rate 1e-3 --warmup_steps 100 --bf16

`--bf16` pays only on CPUs with native bf16 (e.g. avx512_bf16/AMX, as `sora_hf.precision` measures); elsewhere the
run falls back to fp32 with a warning (`SORA_FORCE_BF16=1` keeps bf16). Logs go to TensorBoard unless `--report_to`
says otherwise (`trackio`, `wandb`, `none`).

Larger: a size preset (`--model_size small|base|large`; size flags override single fields), a streaming corpus
that every process reads its own shards of and that resumes at the exact chunk, gradient checkpointing, on every
GPU of the machine:

    accelerate launch --config_file examples/accelerate/ddp.yaml examples/run_pretraining.py \
        --output_dir runs/sora-base --model_size base --streaming true --max_steps 100000 \
        --per_device_train_batch_size 64 --learning_rate 3e-4 --warmup_steps 2000 --bf16 \
        --activation_checkpointing --save_steps 2000
"""

import sys

from transformers import HfArgumentParser, TrainingArguments

from sora_hf.argument_files import parse_dataclasses
from sora_hf.training.pretraining import PretrainingArguments, run_pretraining


def main() -> None:
    parser = HfArgumentParser((PretrainingArguments, TrainingArguments))
    pretraining_args, training_args = parse_dataclasses(parser, sys.argv[1:])
    summary = run_pretraining(pretraining_args, training_args)
    if training_args.process_index == 0:
        print(summary["held_out"])


if __name__ == "__main__":
    main()
