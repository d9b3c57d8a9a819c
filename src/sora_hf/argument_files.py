"""Command lines and JSON files of arguments into HfArgumentParser dataclasses, with one-line errors."""

import dataclasses
import json
import sys
from pathlib import Path

from .errors import UserInputError
from .redaction import redact_argv

# Command lines (`sora-hf finetune`/`pretrain`, the examples) write TensorBoard logs unless `--report_to` says
# otherwise; code that builds `TrainingArguments` itself keeps transformers' default (none).
COMMAND_LINE_DEFAULTS = {"report_to": ["tensorboard"]}


def parse_dataclasses(parser, argv: list[str]) -> tuple:
    """An HfArgumentParser's dataclasses from a command line, or from one JSON file (`sora-hf pretrain args.json`).

    Unknown flags or JSON keys, a missing file and invalid JSON raise `UserInputError` (one line, exit code 2).
    `COMMAND_LINE_DEFAULTS` replace the dataclasses' defaults. Once parsed, secrets in the process's own `sys.argv`
    are redacted: trackers record it (wandb's run metadata keeps `sys.argv[1:]`).
    """
    outputs = _parse(parser, argv)
    sys.argv[:] = redact_argv(sys.argv)
    return outputs


def _parse(parser, argv: list[str]) -> tuple:
    fields = {
        field.name for dtype in parser.dataclass_types for field in dataclasses.fields(dtype) if field.init
    }
    defaults = {name: value for name, value in COMMAND_LINE_DEFAULTS.items() if name in fields}
    parser.set_defaults(**defaults)
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
        return parser.parse_dict({**defaults, **values})
    *outputs, remaining = parser.parse_args_into_dataclasses(args=argv, return_remaining_strings=True)
    if remaining:
        raise UserInputError(f"unrecognized arguments: {' '.join(remaining)}")
    return tuple(outputs)
