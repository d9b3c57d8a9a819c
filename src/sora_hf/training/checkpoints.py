"""Trainer checkpoints that are safe to resume, and one run at a time per output folder.

`Trainer` writes `checkpoint-N/` file by file (weights, optimizer, scheduler, RNG state, then `trainer_state.json`
last), so a run killed while saving leaves a partial folder that `get_last_checkpoint` would pick.
`newest_complete_checkpoint` skips such folders and says why; `output_dir_lock` keeps a second run from writing
checkpoints into the folder of a run still going.
"""

from __future__ import annotations

import json
import os
import socket
import struct
import sys
import time
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from filelock import FileLock, Timeout
from transformers.trainer_utils import PREFIX_CHECKPOINT_DIR

from ..atomic_files import StrPath, write_text_atomic
from ..errors import UserInputError

TRAINER_STATE = "trainer_state.json"
RUN_LOCK_FILE = ".sora_hf_run.lock"
RUN_INFO_FILE = ".sora_hf_run.json"
# files `torch.save` writes (zip archives: a cut-off one has no central directory at its end)
TORCH_FILES = ("*.pt", "*.pth", "*.bin")


def safetensors_problem(path: Path) -> str | None:
    """Why `path` is not a whole safetensors file (reading only its header), or None."""
    size = path.stat().st_size
    with open(path, "rb") as file:
        head = file.read(8)
        if len(head) < 8:
            return f"{path.name} is cut off ({size} bytes, no header)"
        (header_size,) = struct.unpack("<Q", head)
        if 8 + header_size > size:
            return f"{path.name} is cut off ({size:,} bytes, shorter than its {header_size:,}-byte header)"
        try:
            header = json.loads(file.read(header_size))
        except ValueError:
            return f"{path.name} has an unreadable header"
    ends = [entry["data_offsets"][1] for name, entry in header.items() if name != "__metadata__"]
    expected = 8 + header_size + max(ends, default=0)
    if size != expected:
        return f"{path.name} is cut off ({size:,} bytes where its header describes {expected:,})"
    return None


def checkpoint_problem(folder: StrPath) -> str | None:
    """Why the checkpoint `folder` cannot be resumed (a run killed while saving it), or None when it is complete:
    `trainer_state.json` readable, each safetensors file as long as its header says, each torch file whole."""
    folder = Path(folder)
    try:
        json.loads((folder / TRAINER_STATE).read_text(encoding="utf-8"))
    except FileNotFoundError:
        return f"no {TRAINER_STATE} (written last: the run stopped while saving)"
    except (OSError, ValueError):
        return f"{TRAINER_STATE} is unreadable (cut off while being written)"
    weights = sorted(folder.glob("*.safetensors"))
    torch_files = sorted(path for pattern in TORCH_FILES for path in folder.glob(pattern))
    # DeepSpeed (global_stepN/) and FSDP (pytorch_model_fsdp_0/) keep the weights in a sub-folder of their own
    engine_folders = any(path.is_dir() for path in folder.iterdir())
    if (
        not weights
        and not engine_folders
        and not any(path.name.endswith("model.bin") for path in torch_files)
    ):
        return "no weights file (model.safetensors, adapter_model.safetensors, ...)"
    for index in folder.glob("*.safetensors.index.json"):
        try:
            shards = set(json.loads(index.read_text(encoding="utf-8"))["weight_map"].values())
        except (OSError, ValueError, KeyError):
            return f"{index.name} is unreadable"
        if missing := sorted(shard for shard in shards if not (folder / shard).is_file()):
            return f"{index.name} names missing shard(s) {', '.join(missing)}"
    for path in weights:
        if problem := safetensors_problem(path):
            return problem
    for path in torch_files:
        if not zipfile.is_zipfile(path):
            return f"{path.name} is cut off (not a whole torch.save archive)"
    return None


def _step(folder: Path) -> int:
    suffix = folder.name[len(PREFIX_CHECKPOINT_DIR) + 1 :]
    return int(suffix) if suffix.isdigit() else -1


def newest_complete_checkpoint(output_dir: StrPath) -> str | None:
    """The newest `checkpoint-N` folder of `output_dir` that is complete (see `checkpoint_problem`), or None; each
    newer one it skips is named on stderr with the reason."""
    output_dir = Path(output_dir)
    if not output_dir.is_dir():
        return None
    folders = [
        path for path in output_dir.glob(f"{PREFIX_CHECKPOINT_DIR}-*") if path.is_dir() and _step(path) >= 0
    ]
    skipped = False
    for folder in sorted(folders, key=_step, reverse=True):
        problem = checkpoint_problem(folder)
        if problem is None:
            if skipped:
                print(f"Using {folder}, the newest complete checkpoint.", file=sys.stderr, flush=True)
            return str(folder)
        print(f"Skipping {folder}: {problem}.", file=sys.stderr, flush=True)
        skipped = True
    return None


def resolve_resume_checkpoint(output_dir: StrPath, requested: str | bool | None) -> str | None:
    """The checkpoint `--resume_from_checkpoint` asks for: for `true` the newest complete one of `output_dir`, for a
    path that folder once checked complete, for `false`/None None. A missing or incomplete one raises
    `UserInputError` naming what is wrong."""
    if isinstance(requested, str) and requested.lower() in ("true", "false"):
        requested = requested.lower() == "true"
    if requested is True:
        newest = newest_complete_checkpoint(output_dir)
        if newest is None:
            raise UserInputError(
                f"--resume_from_checkpoint true: {output_dir} holds no complete checkpoint-* folder to resume; pass "
                "a checkpoint path, or drop the flag to start a new run."
            )
        return newest
    if not requested:
        return None
    if not Path(requested).is_dir():
        raise UserInputError(
            f"--resume_from_checkpoint {requested}: no such folder; pass a checkpoint-N folder written by a run, or "
            "true for the newest complete one in output_dir."
        )
    if problem := checkpoint_problem(requested):
        raise UserInputError(
            f"--resume_from_checkpoint {requested}: not a complete checkpoint ({problem}); pass another checkpoint-N "
            "folder, or true for the newest complete one in output_dir."
        )
    return str(requested)


def _holder(output_dir: Path) -> str:
    try:
        info = json.loads((output_dir / RUN_INFO_FILE).read_text(encoding="utf-8"))
        return f"pid {info['pid']} on {info['host']}, started {info['started']}"
    except (OSError, ValueError, KeyError):
        return "its details are not written yet"


@contextmanager
def output_dir_lock(output_dir: StrPath, enabled: bool = True) -> Iterator[None]:
    """Hold `output_dir`'s run lock while the block runs (the main process of a run, from before it looks for
    checkpoints until it has written its last file). A second run into the same folder gets a `UserInputError`
    naming the run that holds it. The operating system frees the lock when the holder dies, even by SIGKILL."""
    if not enabled:
        yield
        return
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    lock = FileLock(str(output_dir / RUN_LOCK_FILE), timeout=0)
    try:
        lock.acquire()
    except Timeout:
        raise UserInputError(
            f"--output_dir {output_dir} is in use by another run ({_holder(output_dir)}): two runs in one folder "
            "would overwrite each other's checkpoints. Wait for that run to end (or stop it), then pass "
            "--resume_from_checkpoint true to continue it, or pass another --output_dir."
        ) from None
    try:
        started = time.strftime("%Y-%m-%d %H:%M:%S %z")
        info = {"pid": os.getpid(), "host": socket.gethostname(), "started": started}
        write_text_atomic(output_dir / RUN_INFO_FILE, json.dumps(info) + "\n")
        yield
    finally:
        (output_dir / RUN_INFO_FILE).unlink(missing_ok=True)
        lock.release()


__all__ = [
    "checkpoint_problem",
    "newest_complete_checkpoint",
    "output_dir_lock",
    "resolve_resume_checkpoint",
    "safetensors_problem",
]
