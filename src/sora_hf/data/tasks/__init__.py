"""Labeled task datasets from installed packages (see DATA.md), as `datasets.DatasetDict`s cached in Arrow.

>>> from sora_hf.data.tasks import load_task_dataset
>>> load_task_dataset("sentiment")  # train / validation / test: 29,911 / 3,666 / 3,666
>>> load_task_dataset("sentiment", data_files={"train": "a.csv"}, text_column="review", label_column="stars")
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from datasets import DatasetDict, load_from_disk

from ..installed_packages import MissingDataError
from . import dialogue, easy_vqa, ner, qa, sentiment, spoken_commands, summarization, translation
from ._common import SPLITS, hash_split
from .user_files import COLUMN_ARGUMENTS, DataFiles, load_user_files

BUILDERS = {
    "sentiment": sentiment,
    "ner": ner,
    "qa": qa,
    "translation": translation,
    "summarization": summarization,
    "dialogue": dialogue,
    "easy_vqa": easy_vqa,
    "spoken_commands": spoken_commands,
}
TASKS = tuple(BUILDERS)
DEFAULT_CACHE_DIR = Path("~/.cache/sora_hf/tasks").expanduser()
_MARKER = "sora_hf_task.json"

__all__ = [
    "BUILDERS",
    "COLUMN_ARGUMENTS",
    "DEFAULT_CACHE_DIR",
    "SPLITS",
    "TASKS",
    "MissingDataError",
    "build_task_dataset",
    "hash_split",
    "load_task_dataset",
]


def _check_task(task: str) -> None:
    if task not in BUILDERS:
        raise ValueError(f"Unknown task {task!r}; choose one of {list(TASKS)}")


def build_task_dataset(task: str) -> DatasetDict:
    """Build the built-in dataset of `task` from its source, without the cache."""
    _check_task(task)
    return BUILDERS[task].build()


def _cached(path: Path, task: str) -> DatasetDict | None:
    """The dataset saved at `path` if it was written by the current builder version of `task`."""
    try:
        marker = json.loads((path / _MARKER).read_text())
    except (OSError, ValueError):
        return None
    if marker != {"task": task, "version": BUILDERS[task].VERSION}:
        return None
    return load_from_disk(str(path))


def load_task_dataset(
    task: str,
    data_files: DataFiles | None = None,
    *,
    cache_dir: str | os.PathLike | None = None,
    rebuild: bool = False,
    **options: Any,
) -> DatasetDict:
    """The train / validation / test `DatasetDict` of `task`: built-in, or from the user's `data_files`.

    Built-in datasets are built once and cached under `cache_dir/<task>` (default `~/.cache/sora_hf/tasks`);
    `rebuild=True` builds again. With `data_files` (CSV, TSV, JSON lines or Parquet; a path, a list, or a
    `{split: path}` dict), `options` name the columns (`text_column="review"`, ...; see `COLUMN_ARGUMENTS`).
    """
    _check_task(task)
    if data_files is not None:
        if task not in COLUMN_ARGUMENTS:
            raise ValueError(
                f"The {task!r} task has no user-file loader; choose one of {sorted(COLUMN_ARGUMENTS)}"
            )
        return load_user_files(task, data_files, **options)
    if options:
        raise ValueError(
            f"{sorted(options)} only apply to data_files; the built-in {task!r} dataset takes none of them"
        )
    root = Path(cache_dir).expanduser() if cache_dir is not None else DEFAULT_CACHE_DIR
    path = root / task
    if not rebuild and (dataset := _cached(path, task)) is not None:
        return dataset

    dataset = build_task_dataset(task)
    root.mkdir(parents=True, exist_ok=True)
    # Save beside the target, then rename: concurrent builders (test workers) never see a half-written folder.
    tmp = Path(tempfile.mkdtemp(prefix=f".{task}-", dir=root))
    try:
        dataset.save_to_disk(str(tmp))
        (tmp / _MARKER).write_text(json.dumps({"task": task, "version": BUILDERS[task].VERSION}))
        if path.exists() and (rebuild or _cached(path, task) is None):
            shutil.rmtree(path, ignore_errors=True)
        if not path.exists():
            os.replace(tmp, path)
    except OSError:
        if (
            _cached(path, task) is None
        ):  # lost a race to a writer that left a valid copy? use it; else re-raise
            raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return load_from_disk(str(path))
