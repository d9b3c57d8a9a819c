"""`sora-hf distill ...`: the same run as examples/run_distillation.py (a teacher into a Sora classifier)."""

import argparse
import json

from . import parse_dataclasses


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "distill",
        help="Distil a fine-tuned teacher into a Sora classifier; every flag of examples/run_distillation.py works.",
        add_help=False,
    )
    parser.set_defaults(func=run, forward_arguments=True)


def run(args: argparse.Namespace) -> int:
    from transformers import HfArgumentParser

    from ..training.arguments import SoraTrainingArguments
    from ..training.distillation import DistillationArguments, run_distillation

    parser = HfArgumentParser((DistillationArguments, SoraTrainingArguments), prog="sora-hf distill")
    distill_args, training_args = parse_dataclasses(parser, args.arguments)
    results = run_distillation(distill_args, training_args)
    print(json.dumps({k: v for k, v in results.items() if k != "arguments"}, indent=2, default=str))
    return 0
