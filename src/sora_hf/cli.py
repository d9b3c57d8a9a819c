"""The `sora-hf` command: one sub-command per module in `sora_hf.commands`."""

import argparse
import importlib
import pkgutil

from . import commands


def build_parser() -> argparse.ArgumentParser:
    """Collect every `sora_hf.commands.<name>.register(subparsers)` into one parser."""
    parser = argparse.ArgumentParser(prog="sora-hf", description="Train, evaluate and share Sora models.")
    subparsers = parser.add_subparsers(dest="command", required=True)
    for module_info in sorted(pkgutil.iter_modules(commands.__path__), key=lambda m: m.name):
        module = importlib.import_module(f"{commands.__name__}.{module_info.name}")
        module.register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `sora-hf` console script."""
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if getattr(args, "forward_arguments", False):
        # pretrain/finetune hand their flags to an HfArgumentParser of the run's dataclasses
        args.arguments = extra
    elif extra:
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    return int(args.func(args) or 0)


if __name__ == "__main__":
    raise SystemExit(main())
