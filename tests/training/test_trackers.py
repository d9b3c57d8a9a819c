"""Experiment tracking: `report_to` tensorboard, trackio and wandb (offline) each get SoraTrainer's extra loss terms
and robustness metrics, read back from the tracker's own local files and compared with `trainer.state.log_history`.

The runs happen in one subprocess (tests/scripts/tracker_runs.py; one run per tracker) so that the trackers'
environment (offline wandb, trackio's folder, which trackio reads when imported) is set before they load, and
nothing reaches the network: wandb is offline, trackio has no Space, and any HTTP(S) call would hit a closed port.
"""

import json
import os
import sqlite3
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import pytest
from conftest import SCRIPTS_DIR

from sora_hf.argument_files import parse_dataclasses

SCRIPT = SCRIPTS_DIR / "tracker_runs.py"
TRACKERS = ("tensorboard", "trackio", "wandb")
# the keys checked in every tracker: the task loss, SoraTrainer's extra terms, the evaluation with its attacks
LOSS_TERMS = ("loss_fgm", "loss_kd")
ROBUSTNESS = (
    "eval_robust_clean_accuracy",
    "eval_robust_accuracy_embedding",
    "eval_attack_success_rate_embedding",
    "eval_robust_accuracy_word",
    "eval_attack_success_rate_word",
)
CHECKED = ("loss", *LOSS_TERMS, "eval_loss", *ROBUSTNESS)


def offline_environment(out: Path) -> dict[str, str]:
    """This process's environment without tracker settings, plus offline wandb and trackio folders under `out`."""
    dropped = ("SPACE_ID", "SYSTEM", "HF_TOKEN", "http_proxy", "https_proxy", "no_proxy")
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("WANDB_", "TRACKIO_")) and key not in dropped
    }
    for name in ("wandb", "wandb-config", "wandb-cache", "wandb-data", "trackio-store"):
        (out / name).mkdir(parents=True, exist_ok=True)
    env.update(
        OMP_NUM_THREADS="1",
        HF_HUB_OFFLINE="1",
        WANDB_MODE="offline",
        WANDB_SILENT="true",
        WANDB_CONSOLE="off",
        WANDB_DISABLE_GIT="true",
        WANDB_DISABLE_CODE="true",
        WANDB__DISABLE_STATS="true",  # no system-metrics sampler process
        WANDB__DISABLE_MACHINE_INFO="true",
        WANDB_PROJECT="sora-tracker-test",
        WANDB_DIR=str(out / "wandb"),
        WANDB_CONFIG_DIR=str(out / "wandb-config"),
        WANDB_CACHE_DIR=str(out / "wandb-cache"),
        WANDB_DATA_DIR=str(out / "wandb-data"),
        TRACKIO_DIR=str(out / "trackio-store"),
        HTTP_PROXY="http://127.0.0.1:9",  # a closed port: any web request fails at once
        HTTPS_PROXY="http://127.0.0.1:9",
        NO_PROXY="127.0.0.1,localhost",
    )
    return env


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("trackers")
    result = subprocess.run(
        [sys.executable, str(SCRIPT), str(out), *TRACKERS],
        env=offline_environment(out),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-4000:]
    return out


def expected_scalars(history: list[dict]) -> dict[tuple[str, int], float]:
    """(tracker tag, global step) -> value of the checked keys, named as transformers' callbacks name them."""
    expected = {}
    for entry in history:
        for key in CHECKED:
            if key in entry:
                tag = f"eval/{key[len('eval_') :]}" if key.startswith("eval_") else f"train/{key}"
                expected[(tag, entry["step"])] = entry[key]
    return expected


def tensorboard_scalars(folder: Path) -> dict[tuple[str, int], float]:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    (logdir,) = {path.parent for path in (folder / "run" / "runs").glob("*/events.out.tfevents.*")}
    accumulator = EventAccumulator(str(logdir), size_guidance={"scalars": 0})
    accumulator.Reload()
    return {
        (tag, event.step): event.value
        for tag in accumulator.Tags()["scalars"]
        for event in accumulator.Scalars(tag)
    }


def trackio_scalars(out: Path) -> dict[tuple[str, int], float]:
    """trackio's local store: one SQLite file per project, one JSON row of metrics per `log` call."""
    (database,) = (out / "trackio-store").glob("*.db")
    with sqlite3.connect(database) as connection:
        rows = connection.execute(
            "SELECT metrics FROM metrics WHERE run_name = ?", ("sora-trackio",)
        ).fetchall()
        queued = connection.execute("SELECT COUNT(*) FROM pending_uploads").fetchone()[0]
    assert queued == 0, "trackio queued uploads for a Space"
    scalars = {}
    for (blob,) in rows:
        metrics = json.loads(blob)
        step = metrics["train/global_step"]
        scalars.update({(key, step): value for key, value in metrics.items()})
    return scalars


def wandb_records(path: Path) -> list:
    """The protobuf records of an offline `.wandb` file: a LevelDB-style log (32 KiB blocks of CRC32-checked chunks,
    after a 7-byte `:W&B` header), which wandb 0.31 no longer ships a Python reader for."""
    from wandb.proto import wandb_internal_pb2

    data = path.read_bytes()
    identifier, magic, version = struct.unpack("<4sHB", data[:7])
    assert (identifier, magic, version) == (b":W&B", 0xBEE1, 0), "not a wandb transaction log"
    block, position, pending, records = 32768, 7, b"", []
    while position + 7 <= len(data):
        left = block - position % block
        if left < 7:  # a block's tail too short for a chunk header is padding
            position += left
            continue
        checksum, length, kind = struct.unpack("<IHB", data[position : position + 7])
        if kind == 0 and length == 0:  # zero padding up to the next block
            position += left
            continue
        chunk = data[position + 7 : position + 7 + length]
        assert zlib.crc32(chunk, zlib.crc32(bytes([kind]))) & 0xFFFFFFFF == checksum, (
            f"bad chunk at {position}"
        )
        position += 7 + length
        pending += chunk
        if kind in (1, 4):  # a full record, or the last chunk of one
            record = wandb_internal_pb2.Record()
            record.ParseFromString(pending)
            records.append(record)
            pending = b""
    return records


def wandb_scalars(out: Path) -> dict[tuple[str, int], float]:
    (path,) = (out / "wandb" / "wandb").glob("offline-run-*/run-*.wandb")  # offline: never synced
    scalars = {}
    for record in wandb_records(path):
        if record.WhichOneof("record_type") != "history":
            continue
        row = {
            item.key or "/".join(item.nested_key): json.loads(item.value_json) for item in record.history.item
        }
        step = row["train/global_step"]
        scalars.update({(key, step): value for key, value in row.items()})
    return scalars


@pytest.mark.parametrize("tracker", TRACKERS)
def test_tracker_gets_loss_terms_and_robustness_metrics(runs, tracker):
    folder = runs / tracker
    error = folder / "error.txt"
    assert not error.exists(), f"report_to={tracker} failed:\n{error.read_text() if error.exists() else ''}"
    history = json.loads((folder / "log_history.json").read_text())
    expected = expected_scalars(history)
    steps = {step for _, step in expected}
    assert {("train/loss_fgm", 1), ("train/loss_kd", 2), ("eval/robust_accuracy_word", 2)} <= set(expected)
    assert steps == {1, 2} and all(expected[(f"train/{term}", 1)] > 0 for term in LOSS_TERMS)

    if tracker == "tensorboard":
        logged = tensorboard_scalars(folder)
    elif tracker == "trackio":
        logged = trackio_scalars(runs)
    else:
        logged = wandb_scalars(runs)
    missing = sorted(set(expected) - set(logged))
    assert not missing, f"{tracker} lacks {missing}"
    for key, value in expected.items():
        if tracker == "tensorboard":  # event files store float32
            assert logged[key] == pytest.approx(value, rel=1e-6, abs=1e-9), key
        else:
            assert logged[key] == value, key


def test_command_lines_report_to_tensorboard_unless_told():
    """The examples and `sora-hf` document TensorBoard logs; transformers 5 defaults `report_to` to none."""
    from transformers import HfArgumentParser, TrainingArguments

    from sora_hf.training.pretraining import PretrainingArguments
    from sora_hf.training.runner import task_parser

    parser = task_parser("classification")
    _, training_args = parse_dataclasses(parser, ["--output_dir", "out"])
    assert training_args.report_to == ["tensorboard"]
    _, training_args = parse_dataclasses(parser, ["--output_dir", "out", "--report_to", "none"])
    assert training_args.report_to == []
    _, training_args = parse_dataclasses(parser, ["--output_dir", "out", "--report_to", "wandb"])
    assert training_args.report_to == ["wandb"]
    pretraining = HfArgumentParser((PretrainingArguments, TrainingArguments))
    assert parse_dataclasses(pretraining, ["--output_dir", "out"])[1].report_to == ["tensorboard"]
