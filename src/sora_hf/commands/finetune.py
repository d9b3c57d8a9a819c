"""`sora-hf finetune --task TASK ...`: the same runs as the examples/run_<task>.py scripts."""

import argparse
import hashlib
import importlib.metadata
import json
import sys
from pathlib import Path

from ..atomic_files import write_text_atomic
from ..training.task_names import TASKS
from . import HelpFormatter

HELP_CACHE_DIR = Path("~/.cache/sora_hf/help").expanduser()


def help_cache_file(task: str) -> Path:
    """Where a task's `--help` text is kept: keyed by the installed versions and the argument sources, so a
    changed flag never shows stale help. Building it needs TrainingArguments (torch: seconds); reading it does not."""
    stamp = hashlib.sha1(task.encode())
    for name in ("sora_hf", "transformers", "peft"):
        stamp.update(importlib.metadata.version(name).encode())
    for path in sorted((Path(__file__).resolve().parents[1] / "training").rglob("*.py")):
        status = path.stat()
        stamp.update(f"{path.name}:{status.st_mtime_ns}:{status.st_size}".encode())
    return HELP_CACHE_DIR / f"finetune-{task}-{stamp.hexdigest()[:16]}.txt"


class TaskListFormatter(argparse.RawDescriptionHelpFormatter, HelpFormatter):
    """Keeps the one-line-per-task list of the description as written."""


class TaskHelpAction(argparse.Action):
    """`--help`: the task list when no --task came before it, else that task's flags (printed by the runner)."""

    def __init__(self, option_strings: list[str], dest: str, help: str | None = None) -> None:
        super().__init__(option_strings, dest=dest, nargs=0, default=False, help=help)

    def __call__(self, parser, namespace, values, option_string=None) -> None:
        if namespace.task is None:
            parser.print_help()
            parser.exit()
        cached = help_cache_file(namespace.task)
        if cached.is_file():  # answered before: no torch import
            sys.stdout.write(cached.read_text())
            parser.exit()
        setattr(namespace, self.dest, True)


def register(subparsers: argparse._SubParsersAction) -> None:
    width = max(map(len, TASKS))
    tasks = "\n".join(f"  {name:<{width}}  {description}" for name, description in TASKS.items())
    parser = subparsers.add_parser(
        "finetune",
        help="Fine-tune Sora on a task with Trainer; every flag of examples/run_<task>.py is accepted.",
        usage="%(prog)s --task TASK [--help] [FLAG VALUE ... | ARGS.json]",
        description=f"Fine-tune Sora on a task with SoraTrainer, the runs of examples/run_<task>.py.\n\n"
        f"tasks:\n{tasks}\n\n"
        "`sora-hf finetune --task TASK --help` shows that task's flags (its arguments and every\n"
        "TrainingArguments flag); `sora-hf finetune --task TASK args.json` reads them from a JSON file.",
        formatter_class=TaskListFormatter,
        add_help=False,
        allow_abbrev=False,  # every other flag belongs to the task: never read one as an abbreviation of ours
    )
    parser.add_argument("--task", required=True, choices=list(TASKS), metavar="TASK", help="The task to run.")
    parser.add_argument(
        "-h",
        "--help",
        action=TaskHelpAction,
        dest="task_help",
        help="This list, or with --task, the task's flags.",
    )
    parser.set_defaults(func=run, forward_arguments=True)


def run(args: argparse.Namespace) -> int:
    from ..training.runner import finetune_main, printable_results, task_parser

    if args.task_help:
        text = task_parser(args.task).format_help()
        write_text_atomic(help_cache_file(args.task), text)  # whole or absent, whichever process wins
        sys.stdout.write(text)
        return 0
    results = finetune_main(args.task, args.arguments)
    print(json.dumps(printable_results(results), indent=2, default=str))  # as examples/run_<task>.py print it
    return 0
