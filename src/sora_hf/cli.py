"""The `sora-hf` command: one sub-command per module in `sora_hf.commands`.

Building the parser imports neither torch nor transformers (each sub-command imports its heavy modules inside
`run`), so `--help` answers at once when the console script starts here through `sora_hf_cli`, which runs
the package's `__init__` (registration with the Auto classes) only once a command is about to run.
"""

import argparse
import importlib
import pkgutil
import sys
from collections.abc import Callable

from . import commands
from .commands import HelpFormatter
from .errors import UserInputError


def build_parser() -> argparse.ArgumentParser:
    """Collect every `sora_hf.commands.<name>.register(subparsers)` into one parser."""
    parser = argparse.ArgumentParser(
        prog="sora-hf",
        description="Train, evaluate and share Sora models.",
        epilog="`sora-hf COMMAND --help` shows the flags of a command.",
        formatter_class=HelpFormatter,
    )
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module_info in sorted(pkgutil.iter_modules(commands.__path__), key=lambda m: m.name):
        module = importlib.import_module(f"{commands.__name__}.{module_info.name}")
        module.register(subparsers)
    for subparser in subparsers.choices.values():
        if subparser.formatter_class is argparse.HelpFormatter:  # a command may pick its own
            subparser.formatter_class = HelpFormatter
    return parser


def main(argv: list[str] | None = None, *, before_run: Callable[[], None] | None = None) -> int:
    """Entry point of `sora-hf`: parse, call `before_run` (if given), run the command; its exit code.

    A `UserInputError` (a bad flag value or data file) is printed on one line, `sora-hf CMD: error: ...`, with
    exit code 2 like argparse's own errors; any other exception keeps its traceback.
    """
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if getattr(args, "forward_arguments", False):
        # pretrain/finetune/distill hand their flags to an HfArgumentParser of the run's dataclasses
        args.arguments = extra
    elif extra:
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    if before_run is not None:
        before_run()
    try:
        return int(args.func(args) or 0)
    except UserInputError as err:
        message = " ".join(line.strip() for line in str(err).splitlines() if line.strip())
        print(f"sora-hf {args.command}: error: {message}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
