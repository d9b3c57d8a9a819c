"""Labeled task datasets from installed packages (see DATA.md), as `datasets.DatasetDict`s cached in Arrow.

>>> from sora_hf.data.tasks import load_task_dataset
>>> load_task_dataset("sentiment")  # train / validation / test: 29,911 / 3,666 / 3,666
>>> load_task_dataset("classification", data_files={"train": "a.csv"}, text_column="review", label_column="stars")
Split a.csv (1,000 rows) into train 800 / validation 100 / test 100 (seed 42)
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from datasets import DatasetDict, load_from_disk

from ...atomic_files import is_complete, write_folder
from ...errors import DataFileError, UserInputError
from ..installed_packages import MissingDataError
from . import (
    dialogue,
    easy_vqa,
    ner,
    package_topics,
    qa,
    sentiment,
    spoken_commands,
    summarization,
    translation,
)
from ._common import SPLITS, hash_split
from .user_files import COLUMN_ARGUMENTS, SPLIT_SEED, DataFiles, load_user_files, split_user_train

BUILDERS = {
    "sentiment": sentiment,
    "ner": ner,
    "qa": qa,
    "translation": translation,
    "summarization": summarization,
    "dialogue": dialogue,
    "easy_vqa": easy_vqa,
    "spoken_commands": spoken_commands,
    "package_topics": package_topics,
}
TASKS = tuple(BUILDERS)  # the built-in datasets
# the tasks that read a user's own files; "classification" reads only those
USER_FILE_TASKS = tuple(COLUMN_ARGUMENTS)
DEFAULT_CACHE_DIR = Path("~/.cache/sora_hf/tasks").expanduser()
_MARKER = "sora_hf_task.json"

__all__ = [
    "BUILDERS",
    "COLUMN_ARGUMENTS",
    "DEFAULT_CACHE_DIR",
    "SPLITS",
    "SPLIT_SEED",
    "TASKS",
    "USER_FILE_TASKS",
    "DataFileError",
    "MissingDataError",
    "UserInputError",
    "build_task_dataset",
    "hash_split",
    "load_task_dataset",
    "split_user_train",
]


def _check_task(task: str) -> None:
    if task not in BUILDERS and task not in COLUMN_ARGUMENTS:
        raise UserInputError(
            f"Unknown task {task!r}; choose one of {list(dict.fromkeys(USER_FILE_TASKS + TASKS))}"
        )


def _check_built_in(task: str) -> None:
    if task not in BUILDERS:
        raise UserInputError(
            f"The {task!r} task has no built-in dataset: it needs your own file; pass --train_file my.csv "
            f"(load_task_dataset({task!r}, data_files='my.csv', ...)) with --text_column and --label_column, "
            f"or use --task sentiment for the built-in tweets"
        )


def build_task_dataset(task: str) -> DatasetDict:
    """Build the built-in dataset of `task` from its source, without the cache."""
    _check_task(task)
    _check_built_in(task)
    return BUILDERS[task].build()


def load_task_dataset(
    task: str,
    data_files: DataFiles | None = None,
    *,
    cache_dir: str | os.PathLike | None = None,
    rebuild: bool = False,
    split_seed: int = SPLIT_SEED,
    **options: Any,
) -> DatasetDict:
    """The train / validation / test `DatasetDict` of `task`: built-in, or from the user's `data_files`.

    Built-in datasets are built once and cached under `cache_dir/<task>` (default `~/.cache/sora_hf/tasks`);
    `rebuild=True` builds again. "classification" has no built-in dataset (it needs `data_files`; "sentiment"
    is the built-in tweets, and reads user files the same way).

    With `data_files` (CSV, TSV, JSON, JSON lines or Parquet; a path or a list of paths for the train split, or
    a `{"train": ..., "validation": ..., "test": ...}` dict), `options` name the columns (`text_column="review"`,
    ...; see `COLUMN_ARGUMENTS`). A train file alone is enough: each missing split gets ceil(10%) of the train
    rows by a shuffle seeded with `split_seed` (default 42; 1,000 rows → 800 / 100 / 100), and one line saying
    so is printed to stderr (see `user_files.split_user_train`). A bad file raises `DataFileError` naming the
    file, the column and the fix (see `user_files.load_user_files`).
    """
    _check_task(task)
    if data_files is not None:
        if task not in COLUMN_ARGUMENTS:
            raise UserInputError(
                f"The {task!r} task has no user-file loader; choose one of {sorted(COLUMN_ARGUMENTS)}"
            )
        return load_user_files(task, data_files, split_seed=split_seed, **options)
    _check_built_in(task)
    if options:
        raise UserInputError(
            f"{sorted(options)} only apply to data_files; the built-in {task!r} dataset takes none of them"
        )
    root = Path(cache_dir).expanduser() if cache_dir is not None else DEFAULT_CACHE_DIR
    path = root / task
    # the cache is whole and of the current builder version when this marker (written last) says so
    marker = {"task": task, "version": BUILDERS[task].VERSION}
    if rebuild or not is_complete(path, marker, _MARKER):
        dataset = build_task_dataset(task)
        # of concurrent builders (test workers), the first to publish wins and the others read its copy
        write_folder(
            path,
            lambda staging: dataset.save_to_disk(str(staging)),
            marker,
            replace=rebuild,
            marker_file=_MARKER,
        )
    return load_from_disk(str(path))
