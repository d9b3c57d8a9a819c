"""`PretrainingTrainer`: `SoraTrainer` that counts the real tokens it trains on, and reads a `PretrainingStream`
shard by shard, resuming it where the checkpoint left it."""

from __future__ import annotations

import time

import torch
from transformers import TrainerCallback
from transformers.trainer_utils import get_last_checkpoint

from .pretraining_stream import PretrainingStream, StreamPositionCallback, resume_stream
from .trainer import SoraTrainer


class PretrainingTrainer(SoraTrainer):
    """`SoraTrainer` for pretraining.

    It adds up the real (attention-mask) tokens of every micro-batch on the device, with no synchronisation per step,
    for `ThroughputCallback`. With a `PretrainingStream` as `train_dataset`, each process's data loader reads only
    that process's shards (accelerate neither dispatches the batches nor shards the stream again), every checkpoint
    records each process's stream position, and a resumed run continues the stream from there instead of re-reading
    and discarding the batches already trained on (Trainer's default for iterable data). `--ignore_data_skip`
    restarts the stream from its beginning.
    """

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.real_tokens = torch.zeros((), dtype=torch.int64, device=self.args.device)
        self._resume_checkpoint: str | None = None
        self.streaming = isinstance(self.train_dataset, PretrainingStream)
        if self.streaming:
            if self.train_dataset.batch_size != self._train_batch_size:
                raise ValueError(
                    f"The stream notes its position every {self.train_dataset.batch_size} chunks but the trainer's "
                    f"batch size is {self._train_batch_size}: build the PretrainingStream with batch_size="
                    f"{self._train_batch_size}."
                )
            self.add_callback(StreamPositionCallback(self))

    def training_step(self, model, inputs, num_items_in_batch=None):
        if "attention_mask" in inputs:
            self.real_tokens += inputs["attention_mask"].sum()
        return super().training_step(model, inputs, num_items_in_batch)

    def train(self, resume_from_checkpoint: str | bool | None = None, *args, **kwargs):
        """`Trainer.train`, remembering which checkpoint a stream position comes from."""
        if resume_from_checkpoint is True:
            resume_from_checkpoint = get_last_checkpoint(self.args.output_dir)
            if resume_from_checkpoint is None:
                raise ValueError(f"No valid checkpoint found in output directory ({self.args.output_dir})")
        self._resume_checkpoint = resume_from_checkpoint or None
        return super().train(resume_from_checkpoint, *args, **kwargs)

    def get_train_dataloader(self):
        """For a stream: this process's batches on its device, the stream being this process's share already."""
        if not self.streaming:
            return super().get_train_dataloader()
        from accelerate.data_loader import prepare_data_loader
        from torch.utils.data import DataLoader

        dataloader = DataLoader(
            self.train_dataset,
            batch_size=self._train_batch_size,
            collate_fn=self.data_collator,
            num_workers=0,  # the position is noted in this process; worker processes would each hold a copy
            pin_memory=self.args.dataloader_pin_memory,
        )
        return prepare_data_loader(
            dataloader,
            device=self.args.device,
            num_processes=1,
            process_index=0,
            put_on_device=True,
            dispatch_batches=False,
            non_blocking=self.args.dataloader_pin_memory and self.args.device.type == "cuda",
        )

    def get_resumed_dataloader(self, dataloader, num_batches: int):
        """For a stream: continue after the `num_batches` batches the checkpoint trained on (nothing is re-read)."""
        if not self.streaming:
            return super().get_resumed_dataloader(dataloader, num_batches)
        resume_stream(self.train_dataset, self._resume_checkpoint, num_batches)
        return dataloader


class ThroughputCallback(TrainerCallback):
    """Time the optimizer steps after the first `warmup_steps` of a `PretrainingTrainer` run and count the real
    tokens all processes trained on meanwhile (`measured`: steps, seconds, tokens, tokens_per_second)."""

    def __init__(self, trainer: PretrainingTrainer, warmup_steps: int):
        self.trainer = trainer
        self.warmup_steps = warmup_steps
        self.first_step = self.start = self.start_tokens = None
        self.measured: dict[str, float] = {}

    def _now(self) -> float:
        if torch.cuda.is_available() and torch.cuda.is_initialized():
            torch.cuda.synchronize()
        return time.perf_counter()

    def on_train_begin(self, args, state, control, **kwargs):
        self.first_step, self.start = state.global_step + self.warmup_steps, None

    def on_step_end(self, args, state, control, **kwargs):
        if state.global_step == self.first_step:
            self.start, self.start_tokens = self._now(), self.trainer.real_tokens.clone()

    def on_train_end(self, args, state, control, **kwargs):
        if self.start is None:
            return
        seconds = self._now() - self.start
        tokens = self.trainer.real_tokens - self.start_tokens
        if self.trainer.accelerator.num_processes > 1:
            tokens = self.trainer.accelerator.reduce(tokens, reduction="sum")
        steps = state.global_step - self.first_step
        if steps <= 0:
            return
        self.measured = {
            "steps": steps,
            "seconds": seconds,
            "steps_per_second": steps / seconds,
            "tokens": int(tokens),
            "tokens_per_second": int(tokens) / seconds,
        }


__all__ = ["PretrainingTrainer", "ThroughputCallback"]
