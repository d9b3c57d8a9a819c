"""`sora-hf finetune --task TASK ...`: the same runs as the examples/run_<task>.py scripts."""

import argparse
import json

TASKS = ("sentiment", "ner")


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "finetune",
        help="Fine-tune Sora on a task with Trainer; every flag of examples/run_<task>.py is accepted.",
        add_help=False,
    )
    parser.add_argument("--task", required=True, choices=TASKS)
    parser.set_defaults(func=run, forward_arguments=True)


def run(args: argparse.Namespace) -> int:
    from transformers import HfArgumentParser, TrainingArguments

    from ..training.classification import ClassificationArguments, run_classification
    from ..training.token_classification import TokenClassificationArguments, run_token_classification

    arguments_class, runner = {
        "sentiment": (ClassificationArguments, run_classification),
        "ner": (TokenClassificationArguments, run_token_classification),
    }[args.task]
    parser = HfArgumentParser(
        (arguments_class, TrainingArguments), prog=f"sora-hf finetune --task {args.task}"
    )
    task_args, training_args = parser.parse_args_into_dataclasses(args=args.arguments)
    results = runner(task_args, training_args)
    print(json.dumps({k: v for k, v in results.items() if k != "arguments"}, indent=2, default=str))
    return 0
