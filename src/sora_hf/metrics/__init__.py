"""Offline `evaluate` metric modules: one folder per metric, each loadable with `evaluate.load(folder)`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

METRICS_DIR = Path(__file__).resolve().parent
METRICS = ("accuracy_f1", "seqeval_f1", "squad_qa", "sacrebleu_chrf", "rouge")

__all__ = ["METRICS", "METRICS_DIR", "load_metric", "metric_path"]


def metric_path(name: str) -> Path:
    """The folder of metric `name`, the path `evaluate.load` takes."""
    if name not in METRICS:
        raise ValueError(f"Unknown metric {name!r}; choose one of {list(METRICS)}")
    return METRICS_DIR / name


def load_metric(name: str, **kwargs: Any):
    """`evaluate.load` of the local metric module `name` (no network); `kwargs` go to `evaluate.load`."""
    import evaluate

    return evaluate.load(str(metric_path(name)), **kwargs)
