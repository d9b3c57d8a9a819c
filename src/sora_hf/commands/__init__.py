"""Sub-commands of `sora-hf`. Each module defines `register(subparsers)` and sets `func` on its parser.

Every module here is imported to build the parser, so it imports only argparse and light modules at the
top; torch, transformers and datasets are imported inside `run`. Multi-word flags take both spellings,
`--output-dir` and `--output_dir`, like transformers' HfArgumentParser.
"""

import argparse
import dataclasses
import json
from pathlib import Path

from ..errors import UserInputError


class HelpFormatter(argparse.HelpFormatter):
    """argparse's formatter naming a flag's value once, after all its spellings: `--output-dir, --output_dir DIR`."""

    def _format_action_invocation(self, action: argparse.Action) -> str:
        if not action.option_strings or action.nargs == 0:
            return super()._format_action_invocation(action)
        value = self._format_args(action, self._get_default_metavar_for_optional(action))
        return f"{', '.join(action.option_strings)} {value}"


def parse_dataclasses(parser, argv: list[str]) -> tuple:
    """An HfArgumentParser's dataclasses from a command line, or from one JSON file (`sora-hf pretrain args.json`).

    Unknown flags or JSON keys, a missing file and invalid JSON raise `UserInputError` (one line, exit code 2).
    """
    if len(argv) == 1 and argv[0].endswith(".json"):
        path = Path(argv[0])
        if not path.is_file():
            raise UserInputError(f"{path}: no such arguments file.")
        try:
            values = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as err:
            raise UserInputError(f"{path} is not valid JSON: {err}") from err
        if not isinstance(values, dict):
            raise UserInputError(f"{path} must hold one JSON object of argument names and values.")
        known = {
            field.name
            for dtype in parser.dataclass_types
            for field in dataclasses.fields(dtype)
            if field.init
        }
        unknown = sorted(set(values) - known)
        if unknown:
            raise UserInputError(f"{path}: unknown arguments {', '.join(unknown)}.")
        return parser.parse_dict(values)
    *outputs, remaining = parser.parse_args_into_dataclasses(args=argv, return_remaining_strings=True)
    if remaining:
        raise UserInputError(f"unrecognized arguments: {' '.join(remaining)}")
    return tuple(outputs)
