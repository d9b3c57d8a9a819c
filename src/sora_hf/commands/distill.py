"""`sora-hf distill ...`: fine-tune a Sora classifier with a frozen teacher (`sora-hf finetune --task
classification` with `--teacher_name_or_path` required); examples/run_distillation.py adds the comparison."""

import argparse

from ..errors import UserInputError


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "distill",
        help="Distil a fine-tuned teacher into a Sora classifier (finetune --task classification + a teacher).",
        add_help=False,
    )
    parser.set_defaults(func=run, forward_arguments=True)


def run(args: argparse.Namespace) -> int:
    import json

    from ..training.runner import finetune_main, printable_results

    argv = list(args.arguments)
    is_file = len(argv) == 1 and argv[0].endswith(".json")
    if (
        not is_file
        and "--help" not in argv
        and "-h" not in argv
        and not any(a.split("=")[0] in ("--teacher_name_or_path", "--teacher-name-or-path") for a in argv)
    ):
        raise UserInputError(
            "sora-hf distill needs --teacher_name_or_path (a fine-tuned classifier with the task's labels)."
        )
    results = finetune_main("classification", argv, prog="sora-hf distill")
    print(json.dumps(printable_results(results), indent=2, default=str))
    return 0
