"""Sub-commands of `sora-hf`. Each module defines `register(subparsers)` and sets `func` on its parser.

Every module here is imported to build the parser, so it imports only argparse and light modules at the
top; torch, transformers and datasets are imported inside `run`. Multi-word flags take both spellings,
`--output-dir` and `--output_dir`, like transformers' HfArgumentParser.
"""

import argparse

from ..argument_files import parse_dataclasses

__all__ = ["HelpFormatter", "parse_dataclasses"]


class HelpFormatter(argparse.HelpFormatter):
    """argparse's formatter naming a flag's value once, after all its spellings: `--output-dir, --output_dir DIR`."""

    def _format_action_invocation(self, action: argparse.Action) -> str:
        if not action.option_strings or action.nargs == 0:
            return super()._format_action_invocation(action)
        value = self._format_args(action, self._get_default_metavar_for_optional(action))
        return f"{', '.join(action.option_strings)} {value}"
