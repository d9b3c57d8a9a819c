"""Secrets stay out of recorded commands and texts: token flags and `hf_...` tokens become `<redacted>`."""

import shlex
import sys

import pytest

from sora_hf.redaction import REDACTED, find_token, redact_argv, redact_text, redacted_command

# built at run time so that no token-shaped literal sits in the source
TOKEN = "hf_" + "QwErTyUiOp" * 3 + "1234"
LOWERCASE_TOKEN = "hf_" + "abcdefghij" * 3 + "kmnp"


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["--hub_token", TOKEN], ["--hub_token", REDACTED]),
        (["--hub-token=" + TOKEN], ["--hub-token=" + REDACTED]),
        (["--hub_token=" + TOKEN], ["--hub_token=" + REDACTED]),
        (["--token", "X"], ["--token", REDACTED]),  # any value of a token flag, token-shaped or not
        (["--token=hf_sora_test_write_token"], ["--token=" + REDACTED]),
        (["--HUB_TOKEN", "secret"], ["--HUB_TOKEN", REDACTED]),
        (
            ["--wandb_api_key", "k", "--db-password", "p"],
            ["--wandb_api_key", REDACTED, "--db-password", REDACTED],
        ),
        ([TOKEN], [REDACTED]),  # a bare token anywhere
        (["--note", f"pushed with {TOKEN} today"], ["--note", f"pushed with {REDACTED} today"]),
        ([f"HF_TOKEN={TOKEN}"], [f"HF_TOKEN={REDACTED}"]),
        ([LOWERCASE_TOKEN], [REDACTED]),
        (["--hub_token"], ["--hub_token"]),  # a flag without value (argparse will complain, not us)
    ],
)
def test_secrets_are_redacted(argv, expected):
    assert redact_argv(argv) == expected


def test_ordinary_arguments_are_untouched():
    argv = [
        "examples/run_classification.py",
        "--model_name_or_path",
        "sora",
        "--output_dir",
        "runs/hf_transformers_cache",
        "--pad_token",
        "<pad>",
        "--mask_token=<mask>",
        "--tokenizer_name",
        "my-tokenizer",
        "--token_distillation",
        "true",
        "--max_tokens",
        "512",
        "--hub_model_id",
        "me/sora-sentiment",
        "--push_to_hub",
        "--learning_rate",
        "-1e-5",
        "hf_home",
        "hf_tokenizer",
        "hf_model1",  # too short to be a token
    ]
    assert redact_argv(argv) == argv


def test_redacted_command_is_a_shell_string_without_secrets(monkeypatch):
    argv = ["sora-hf", "finetune", "--task", "sentiment", "--hub_token", TOKEN, "--output_dir", "runs/a b"]
    command = redacted_command(argv)
    assert TOKEN not in command
    assert shlex.split(command) == [*argv[:5], REDACTED, "--output_dir", "runs/a b"]
    monkeypatch.setattr(sys, "argv", ["run.py", "--hub-token=" + TOKEN])
    assert redacted_command() == shlex.join(["run.py", "--hub-token=" + REDACTED])


def test_redact_text():
    text = (
        f"Command: `python run.py --hub_token {TOKEN} --lr 5e-5 --token 'a b' --hub-token=abc`\n"
        f"token: {TOKEN}.\n"
        "See hf_hub_download and hf_transformers; --pad_token <pad> --token_distillation true\n"
    )
    assert redact_text(text) == (
        f"Command: `python run.py --hub_token {REDACTED} --lr 5e-5 --token {REDACTED} --hub-token={REDACTED}`\n"
        f"token: {REDACTED}.\n"
        "See hf_hub_download and hf_transformers; --pad_token <pad> --token_distillation true\n"
    )


def test_find_token_gives_the_line():
    assert find_token(f"# card\n\nexport HF_TOKEN={TOKEN}\n") == 3
    assert find_token("hf_hub_download(repo_id, 'config.json')\nhf_tokenizer\n") is None


WANDB_AFTER_PARSING = """
import sys, wandb
from transformers import HfArgumentParser, TrainingArguments
from sora_hf.argument_files import parse_dataclasses
parse_dataclasses(HfArgumentParser(TrainingArguments), sys.argv[1:])
run = wandb.init(dir=sys.argv[sys.argv.index("--output_dir") + 1], project="redaction")
run.log({"loss": 1.0})
run.finish()
"""


def test_a_token_on_the_command_line_reaches_no_tracker_file(tmp_path):
    """wandb keeps `sys.argv[1:]` in its run files: once parsed, the process's own argv holds no token."""
    import os
    import subprocess

    pytest.importorskip("wandb")
    env = {**os.environ, "WANDB_MODE": "offline", "WANDB_SILENT": "true", "HF_HUB_OFFLINE": "1"}
    argv = ["--output_dir", str(tmp_path), "--hub_token", TOKEN, "--report_to", "wandb"]
    subprocess.run([sys.executable, "-c", WANDB_AFTER_PARSING, *argv], env=env, check=True, timeout=300)
    written = [path for path in tmp_path.rglob("*") if path.is_file()]
    assert any(path.suffix == ".wandb" for path in written)  # the run's records were written
    assert not [path for path in written if TOKEN.encode() in path.read_bytes()]
