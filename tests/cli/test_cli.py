"""`sora-hf` as one tool: light `--help`, both flag spellings, one-line user errors, JSON argument files."""

import argparse
import json
import os
import subprocess
import sys
import time
from importlib.metadata import entry_points
from pathlib import Path

import pytest

from sora_hf.cli import build_parser
from sora_hf.cli import main as cli_main
from sora_hf.commands import parse_dataclasses
from sora_hf.errors import DataFileError, UserInputError
from sora_hf.training.task_names import TASKS

SCRIPT = Path(sys.executable).with_name("sora-hf")
COMMANDS = ["build-corpus", "distill", "finetune", "merge-fsdp-checkpoint", "pretrain", "pull", "push"]
COMMANDS = sorted([*COMMANDS, "explain", "train-tokenizer"])
# commands whose --help argparse prints without importing torch or transformers
LIGHT_HELP = [[], ["build-corpus"], ["finetune"], ["pull"], ["push"], ["train-tokenizer"]]


def run_sora_hf(*argv: str, timeout: int = 600) -> tuple[subprocess.CompletedProcess, float]:
    """The installed console script in a fresh process (or its module when the script is not installed)."""
    command = [str(SCRIPT)] if SCRIPT.exists() else [sys.executable, "-m", "sora_hf_cli"]
    start = time.perf_counter()
    done = subprocess.run([*command, *argv], capture_output=True, text=True, timeout=timeout)
    return done, time.perf_counter() - start


def subparsers() -> dict[str, argparse.ArgumentParser]:
    [action] = [a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction)]
    return dict(action.choices)


def test_console_script_starts_at_the_light_entry_point():
    [script] = [ep for ep in entry_points(group="console_scripts") if ep.name == "sora-hf"]
    assert script.value == "sora_hf_cli:main"


def test_every_command_module_is_registered():
    assert sorted(subparsers()) == COMMANDS


# runs `sora-hf ARGS`, then prints which of torch / transformers the process imported
HELP_PROBE = (
    "import sys\n"
    "from sora_hf_cli import main\n"
    "try:\n"
    "    main(sys.argv[1:])\n"
    "except SystemExit as exit:\n"
    "    assert not exit.code, exit.code\n"
    "print(sorted(m for m in ('torch', 'transformers') if m in sys.modules))\n"
)


@pytest.mark.parametrize("command", LIGHT_HELP, ids=lambda c: " ".join(c) or "sora-hf")
def test_help_imports_neither_torch_nor_transformers(command):
    done = subprocess.run(
        [sys.executable, "-c", HELP_PROBE, *command, "--help"], capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.splitlines()[-1] == "[]"


HELP_TEXT = {
    "": ["usage: sora-hf", *COMMANDS, "sora-hf COMMAND --help"],
    "build-corpus": ["--output-dir, --output_dir", "--max-docs-per-source, --max_docs_per_source", "wordnet"],
    "finetune": ["--task TASK", "sora-hf finetune --task TASK --help", "args.json"],
    "pull": ["--repo-id, --repo_id REPO_ID", "--local-dir, --local_dir LOCAL_DIR"],
    "push": ["--repo-id, --repo_id REPO_ID", "--commit-message, --commit_message"],
    "train-tokenizer": ["--vocab-size, --vocab_size VOCAB_SIZE", "--output-dir, --output_dir OUTPUT_DIR"],
    # HfArgumentParser's help (imports the run's dataclasses, so torch: seconds, not instant)
    "pretrain": [
        "usage: sora-hf pretrain",
        "--output_dir OUTPUT_DIR, --output-dir OUTPUT_DIR",
        "--corpus_dir",
    ],
    "distill": ["usage: sora-hf distill", "--output_dir OUTPUT_DIR, --output-dir OUTPUT_DIR", "--teacher"],
    "finetune --task sentiment": [
        "usage: sora-hf finetune --task sentiment",
        "--output_dir",
        "--text_column",
    ],
}


@pytest.mark.parametrize("command", list(HELP_TEXT), ids=lambda c: c or "sora-hf")
def test_help_in_a_fresh_process(command, record_property):
    done, seconds = run_sora_hf(*command.split(), "--help")
    record_property("seconds", round(seconds, 2))  # recorded, never asserted: timings are for benchmarks
    print(f"sora-hf {command} --help: {seconds:.2f} s")
    assert done.returncode == 0, done.stderr[-3000:]
    for text in HELP_TEXT[command]:
        assert text in done.stdout, text


def test_finetune_help_lists_every_task_on_its_own_line():
    done, _ = run_sora_hf("finetune", "--help")
    assert done.returncode == 0, done.stderr[-3000:]
    lines = [line.split(None, 1) for line in done.stdout.splitlines() if line.startswith("  ")]
    listed = {words[0]: words[1] for words in lines if len(words) == 2}
    assert {name: listed.get(name) for name in TASKS} == TASKS


def test_finetune_needs_a_known_task(capsys):
    with pytest.raises(SystemExit) as exit:
        cli_main(["finetune", "--output_dir", "x"])
    assert exit.value.code == 2 and "--task" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit:
        cli_main(["finetune", "--task", "poetry"])
    assert exit.value.code == 2 and "invalid choice: 'poetry'" in capsys.readouterr().err


def test_a_task_help_is_the_runners_parser_and_is_cached(monkeypatch, capsys, tmp_path):
    """(The rest of a finetune command line reaching the runner: tests/training/runner/test_runner.py runs `sora-hf finetune`.)"""
    from sora_hf.commands import finetune

    monkeypatch.setattr(finetune, "HELP_CACHE_DIR", tmp_path)
    assert cli_main(["finetune", "--task", "qa", "--help"]) == 0
    built = capsys.readouterr().out
    with pytest.raises(SystemExit) as exit:
        cli_main(["finetune", "--task", "qa", "--help"])
    assert exit.value.code == 0 and capsys.readouterr().out == built and "--doc_stride" in built


def spellings(argv: list[str]) -> list[str]:
    """The same command line with `--multi_word` flags instead of `--multi-word`."""
    return [arg[:2] + arg[2:].replace("-", "_") if arg.startswith("--") else arg for arg in argv]


def test_every_multiword_flag_has_both_spellings():
    for name, parser in subparsers().items():
        for action in parser._actions:
            flags = [flag for flag in action.option_strings if flag.startswith("--")]
            for flag in flags:
                other = flag[:2] + (
                    flag[2:].replace("-", "_") if "-" in flag[2:] else flag[2:].replace("_", "-")
                )
                assert other in flags, f"sora-hf {name} {flag} has no {other}"


@pytest.mark.parametrize(
    "argv",
    [
        ["build-corpus", "--output-dir", "out", "--max-docs-per-source", "5", "--sources", "wordnet"],
        ["pull", "--repo-id", "me/sora", "--local-dir", "here"],
        [
            "push",
            "--folder",
            "run",
            "--repo-id",
            "me/sora",
            "--commit-message",
            "m",
            "--no-create",
            "--dry-run",
        ],
        ["train-tokenizer", "--dataset-dir", "d", "--text-column", "t", "--vocab-size", "300"]
        + ["--min-frequency", "1", "--model-max-length", "64", "--output-dir", "tok"],
    ],
    ids=lambda argv: argv[0],
)
def test_both_spellings_parse_to_the_same_values(argv):
    parser = build_parser()
    dashed, underscored = vars(parser.parse_args(argv)), vars(parser.parse_args(spellings(argv)))
    assert spellings(argv) != argv and dashed == underscored
    assert all(
        value not in (None, False) for key, value in dashed.items() if key in ("output_dir", "repo_id")
    )


def hf_parser(command: str):
    """The HfArgumentParser `sora-hf pretrain` builds."""
    from transformers import HfArgumentParser, TrainingArguments

    from sora_hf.training.pretraining import PretrainingArguments

    return HfArgumentParser((PretrainingArguments, TrainingArguments))


@pytest.mark.parametrize("command", ["pretrain", "distill", "finetune"])
def test_hf_argument_commands_take_both_spellings(command):
    from sora_hf.training.runner import parse_task_arguments

    name, value = ("max_docs_per_source", 7) if command == "pretrain" else ("max_length", 32)
    argv = [
        "--output-dir",
        "out",
        "--per-device-train-batch-size",
        "3",
        f"--{name.replace('_', '-')}",
        str(value),
    ]
    if command in ("finetune", "distill"):  # distill is the classification task with a teacher
        parsed = [parse_task_arguments("classification", a) for a in (argv, spellings(argv))]
    else:
        parsed = [parse_dataclasses(hf_parser(command), a) for a in (argv, spellings(argv))]
    for args, training_args in parsed:
        assert (getattr(args, name), training_args.output_dir, training_args.per_device_train_batch_size) == (
            value,
            "out",
            3,
        )


JSON_ARGUMENTS = {"pretrain": ("max_docs_per_source", 9)}


@pytest.mark.parametrize("command", list(JSON_ARGUMENTS))
def test_a_json_file_of_arguments(command, tmp_path, capsys):
    name, value = JSON_ARGUMENTS[command]
    values = {"output_dir": str(tmp_path / "run"), "max_steps": 3, name: value}
    path = tmp_path / "args.json"
    path.write_text(json.dumps(values))
    args, training_args = parse_dataclasses(hf_parser(command), [str(path)])
    assert (training_args.output_dir, training_args.max_steps, getattr(args, name)) == (
        str(tmp_path / "run"),
        3,
        value,
    )

    path.write_text(json.dumps({**values, "max_stepz": 3}))
    assert cli_main([command, str(path)]) == 2
    assert capsys.readouterr().err == f"sora-hf {command}: error: {path}: unknown arguments max_stepz.\n"
    path.write_text("{output_dir: run}")
    assert cli_main([command, str(path)]) == 2
    assert "is not valid JSON" in capsys.readouterr().err
    assert cli_main([command, "--output_dir", "run", "--max_stepz", "3"]) == 2
    assert capsys.readouterr().err == f"sora-hf {command}: error: unrecognized arguments: --max_stepz 3\n"


def test_user_input_error_is_one_line_with_exit_code_2(monkeypatch, capsys):
    from sora_hf.commands import train_tokenizer

    def bad_file(args):
        raise DataFileError("reviews.csv: no column 'text'.\n  Columns: review, stars.")

    monkeypatch.setattr(train_tokenizer, "run", bad_file)
    assert cli_main(["train-tokenizer", "--files", "reviews.csv", "--output-dir", "tok"]) == 2
    captured = capsys.readouterr()
    assert (
        captured.err
        == "sora-hf train-tokenizer: error: reviews.csv: no column 'text'. Columns: review, stars.\n"
    )
    assert issubclass(DataFileError, UserInputError) and issubclass(UserInputError, ValueError)

    def bug(args):
        raise RuntimeError("a bug, not the user's input")

    monkeypatch.setattr(train_tokenizer, "run", bug)
    with pytest.raises(RuntimeError, match="a bug"):
        cli_main(["train-tokenizer", "--files", "reviews.csv", "--output-dir", "tok"])


def test_user_input_error_from_the_console_script(tmp_path):
    done, _ = run_sora_hf("pretrain", str(tmp_path / "missing.json"))
    assert done.returncode == 2
    assert done.stderr.splitlines() == [
        f"sora-hf pretrain: error: {tmp_path / 'missing.json'}: no such arguments file."
    ]


def test_a_command_sees_the_registered_package(tmp_path):
    """The console script runs `sora_hf/__init__` (the Auto registration) before the command runs."""
    texts = tmp_path / "texts.txt"
    texts.write_text("a lighthouse on the rock\nthe keeper climbs the tower\n" * 5, encoding="utf-8")
    code = (
        "import sys\n"
        "from sora_hf_cli import main\n"
        "assert main(sys.argv[1:]) == 0\n"
        "import sora_hf\n"
        "from transformers import AutoConfig, AutoTokenizer\n"
        "print(type(AutoTokenizer.from_pretrained(sys.argv[-1])).__name__, type(AutoConfig.for_model('sora')).__name__,"
        " sora_hf.SoraConfig.__name__)\n"
    )
    argv = ["train-tokenizer", "--files", str(texts), "--vocab_size", "300", "--min_frequency", "1"]
    done = subprocess.run(
        [sys.executable, "-c", code, *argv, "--output_dir", str(tmp_path / "tok")],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.splitlines()[-1] == "SoraTokenizer SoraConfig SoraConfig"


def test_distill_without_a_teacher_is_refused_on_one_line(capsys):
    assert cli_main(["distill", "--output_dir", "run"]) == 2
    assert capsys.readouterr().err == (
        "sora-hf distill: error: sora-hf distill needs --teacher_name_or_path (a fine-tuned classifier with the "
        "task's labels).\n"
    )


def test_finetune_refuses_an_unknown_flag_on_one_line(capsys):
    assert cli_main(["finetune", "--task", "ner", "--output_dir", "run", "--lora_rank", "4"]) == 2
    assert capsys.readouterr().err == "sora-hf finetune: error: unrecognized arguments: --lora_rank 4\n"


def test_a_task_help_is_built_once_then_answers_without_torch(tmp_path):
    """`finetune --task T --help` needs TrainingArguments (torch) the first time; then its cached text answers."""
    command = [sys.executable, "-c", HELP_PROBE, "finetune", "--task", "qa", "--help"]
    environment = {**os.environ, "HOME": str(tmp_path)}  # a cache of the test's own (~/.cache/sora_hf/help)
    first = subprocess.run(command, capture_output=True, text=True, timeout=300, env=environment)
    second = subprocess.run(command, capture_output=True, text=True, timeout=300, env=environment)
    assert first.returncode == 0 and second.returncode == 0, first.stderr[-2000:] + second.stderr[-2000:]
    assert first.stdout.splitlines()[-1] != "[]" and second.stdout.splitlines()[-1] == "[]"
    help_text = first.stdout.rsplit("\n", 2)[0]
    assert "--doc_stride" in help_text and "--adversarial_method" in help_text
    assert second.stdout.rsplit("\n", 2)[0] == help_text


def test_a_bad_data_file_is_one_line_naming_file_and_column(tmp_path, capsys):
    file = tmp_path / "reviews.csv"
    file.write_text("review,stars\ngreat phone,5\nawful,1\nfine,3\n")
    argv = [
        "finetune",
        "--task",
        "classification",
        "--train_file",
        str(file),
        "--output_dir",
        str(tmp_path / "run"),
    ]
    assert cli_main(argv) == 2
    error = capsys.readouterr().err.splitlines()[-1]  # (after datasets' progress bars)
    assert error.startswith("sora-hf finetune: error: ") and "reviews.csv: no column 'text'" in error
    assert "--text_column" in error
