"""`sora-hf pretrain`: the same run as examples/run_pretraining.py (every PretrainingArguments and
TrainingArguments flag is accepted after `pretrain`, or one JSON file of them): a size preset (`--model_size`),
`--streaming true` for a sharded, resumable streaming corpus, and any Trainer flag (`--bf16`,
`--activation_checkpointing`, ...); under `accelerate launch` in every process."""

import argparse

from . import parse_dataclasses


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "pretrain",
        help="Pretrain Sora (MLM + NSP + denoising) with Trainer, --model_size small|base|large, --streaming "
        "true; pass --help after `pretrain` for all flags.",
        add_help=False,
    )
    parser.set_defaults(func=run, forward_arguments=True)


def run(args: argparse.Namespace) -> int:
    from transformers import HfArgumentParser, TrainingArguments

    from ..training.pretraining import PretrainingArguments, run_pretraining

    parser = HfArgumentParser((PretrainingArguments, TrainingArguments), prog="sora-hf pretrain")
    pretraining_args, training_args = parse_dataclasses(parser, args.arguments)
    summary = run_pretraining(pretraining_args, training_args)
    if training_args.process_index == 0:
        print(summary["held_out"])
    return 0
