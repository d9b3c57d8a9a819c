"""Keep secrets out of everything a run records: commands in results JSON, model cards, logs."""

import re
import shlex
import sys
from collections.abc import Sequence

REDACTED = "<redacted>"
# Flags whose value is a secret, in either spelling (--hub_token / --hub-token), with or without a prefix
# (--wandb_api_key). Special-token flags (--pad_token, --mask_token) and --tokenizer_name are not secrets.
SECRET_FLAGS = ("token", "hub_token", "hf_token", "auth_token", "use_auth_token", "access_token", "api_token")
SECRET_SUFFIXES = (
    "hub_token",
    "hf_token",
    "auth_token",
    "access_token",
    "api_token",
    "api_key",
    "password",
    "secret",
)
# A Hugging Face token is `hf_` and 34 random letters and digits. Short or all-lowercase runs are identifiers
# (hf_transformers, hf_tokenizer, hf_home), not tokens: a file that mentions them must still be pushable.
TOKEN_PATTERN = re.compile(r"(?<![A-Za-z0-9])hf_(?:(?=[a-z]*[A-Z0-9])[A-Za-z0-9]{8,}|[A-Za-z0-9]{20,})")
_EXACT = "|".join(sorted(SECRET_FLAGS, key=len, reverse=True)).replace("_", "[_-]")
_SUFFIXES = "|".join(sorted(SECRET_SUFFIXES, key=len, reverse=True)).replace("_", "[_-]")
# `--hub_token VALUE` / `--hub-token=VALUE` inside free text (a command quoted in a model card, a log line)
_FLAG_IN_TEXT = re.compile(
    rf"(?<![\w-])(--?(?:(?:[A-Za-z0-9]+[_-])*(?:{_SUFFIXES})|{_EXACT}))(=|[ \t]+)('[^']*'|\"[^\"]*\"|[^\s'\"`-][^\s'\"`]*)",
    re.IGNORECASE,
)


def is_secret_flag(argument: str) -> bool:
    """Whether `argument` (`--hub_token`, `--hub-token=...`, `--token`) is a flag whose value is a secret."""
    if not argument.startswith("-"):
        return False
    name = argument.lstrip("-").split("=", 1)[0].replace("-", "_").lower()
    return (
        name in SECRET_FLAGS
        or name in SECRET_SUFFIXES
        or name.endswith(tuple("_" + s for s in SECRET_SUFFIXES))
    )


def redact_argv(argv: Sequence[str]) -> list[str]:
    """`argv` with the values of secret flags and every `hf_...` token replaced by `<redacted>`."""
    redacted: list[str] = []
    hide_next = False
    for argument in argv:
        if hide_next:
            redacted.append(REDACTED)
            hide_next = False
        elif is_secret_flag(argument):
            if "=" in argument:
                redacted.append(argument.split("=", 1)[0] + "=" + REDACTED)
            else:
                redacted.append(argument)
                hide_next = True
        else:
            redacted.append(redact_text(argument))
    return redacted


def redact_text(text: str) -> str:
    """`text` with every `hf_...` token and the value of every secret flag (`--token X`) replaced by `<redacted>`."""
    text = _FLAG_IN_TEXT.sub(lambda match: match[1] + match[2] + REDACTED, text)
    return TOKEN_PATTERN.sub(REDACTED, text)


def find_token(text: str) -> int | None:
    """The 1-based line of the first `hf_...` token in `text`, or None when there is none."""
    match = TOKEN_PATTERN.search(text)
    return None if match is None else text.count("\n", 0, match.start()) + 1


def redacted_command(argv: Sequence[str] | None = None) -> str:
    """The command line (default: this process's) as a shell string, secrets redacted."""
    return shlex.join(redact_argv(list(sys.argv if argv is None else argv)))
