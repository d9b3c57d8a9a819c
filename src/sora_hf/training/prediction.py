"""Inference loops through `Trainer.predict`: batching, device placement, mixed precision, a progress bar and
distributed evaluation (sharded batches, gathered results) come from transformers; progress bars for the loops
that stay hand-written."""

import random
import tempfile
from collections.abc import Callable, Iterable, Mapping
from contextlib import contextmanager
from dataclasses import replace

import numpy as np
import torch
from transformers import Trainer, TrainingArguments
from transformers.utils.logging import tqdm

# What one prediction step returns: one row of numbers (or one number) per example of the batch.
Statistics = Callable[[torch.nn.Module, dict[str, torch.Tensor]], torch.Tensor]


def is_main_process() -> bool:
    """Whether this is the first (or only) process of a `torch.distributed` run."""
    distributed = torch.distributed.is_available() and torch.distributed.is_initialized()
    return not distributed or torch.distributed.get_rank() == 0


def progress(iterable: Iterable | None = None, **kwargs):
    """A transformers `tqdm` bar (off with `transformers.utils.logging.disable_progress_bar()`), shown only on the
    main process."""
    return tqdm(iterable, disable=not is_main_process(), **kwargs)


class StatisticsTrainer(Trainer):
    """A `Trainer` whose `predict` gathers `statistics(model, batch)` (one row per example) instead of logits."""

    def __init__(self, *args, statistics: Statistics, **kwargs):
        super().__init__(*args, **kwargs)
        self.statistics = statistics

    def prediction_step(self, model, inputs, prediction_loss_only, ignore_keys=None):
        inputs = self._prepare_inputs(inputs)
        with torch.no_grad(), self.compute_loss_context_manager():
            return None, self.statistics(model, inputs), None


@contextmanager
def preserved_random_state():
    """Give back Python's, NumPy's and torch's random state on exit (`Trainer()` reseeds them all)."""
    python_state, numpy_state = random.getstate(), np.random.get_state()
    try:
        with torch.random.fork_rng(devices=list(range(torch.cuda.device_count()))):
            yield
    finally:
        random.setstate(python_state)
        np.random.set_state(numpy_state)


def predict_statistics(
    model: torch.nn.Module,
    dataset,
    collator: Callable[[list[Mapping]], dict[str, torch.Tensor]],
    statistics: Statistics,
    batch_size: int,
    args: TrainingArguments | None = None,
) -> np.ndarray:
    """`statistics` of every example of `dataset`, in order, through `Trainer.predict` on batches of `batch_size`.

    `args` (a run's `TrainingArguments`) set device, precision and processes; without them the model stays where it
    is. Batches are collated in order in this process, as a plain loop would (a seeded collator draws the same masks).
    """
    with preserved_random_state(), tempfile.TemporaryDirectory() as scratch:
        if args is None:
            device = next(model.parameters()).device
            args = TrainingArguments(output_dir=scratch, use_cpu=device.type == "cpu")
        args = replace(
            args,
            per_device_eval_batch_size=batch_size,
            remove_unused_columns=False,
            dataloader_drop_last=False,
            dataloader_num_workers=0,
            eval_accumulation_steps=None,
            eval_do_concat_batches=True,
            report_to="none",
            push_to_hub=False,
        )
        trainer = StatisticsTrainer(model=model, args=args, data_collator=collator, statistics=statistics)
        return trainer.predict(dataset).predictions


__all__ = ["StatisticsTrainer", "is_main_process", "predict_statistics", "preserved_random_state", "progress"]
