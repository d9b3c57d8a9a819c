"""Streaming pretraining data: the saved corpus read as a `datasets.IterableDataset`, split across processes, packed
on the fly, endless, and resumed at the exact sample after an interruption.

Each process reads its own shards (`datasets.distributed.split_dataset_by_node`) and tokenizes and collates only
them. accelerate's alternative for iterable datasets, dispatching (process 0 reads every batch and sends each
process its slice), is not used: one process would tokenize for all of them, and it concatenates the batches of all
processes, which fails on batches padded to different lengths, as dynamically padded pretraining batches are.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING

import torch
from transformers import TrainerCallback
from transformers.trainer_utils import PREFIX_CHECKPOINT_DIR

from ..errors import UserInputError
from .pretraining_data import SPECIAL_TOKENS_PER_PAIR, _tokenize_and_pack

if TYPE_CHECKING:
    import datasets
    from transformers import PreTrainedTokenizerBase, Trainer

STREAM_STATE_FILE = "stream_state.json"
STREAM_STATE_VERSION = 1


class PretrainingStream(torch.utils.data.IterableDataset):
    """One process's endless stream of packed pretraining chunks (`{"sentences", "length"}` rows, as made by
    `prepare_pretraining_dataset`) from a split of documents.

    Pass `p` over the data reads `documents.shuffle(seed + p)` as `to_iterable_dataset(num_shards)`, keeps this
    process's `num_shards / world_size` shards, and splits, tokenizes and packs each document's sentences into
    chunks of at most `max_length` tokens as it goes (sequence packing; a chunk never mixes two documents, so
    next-sentence pairs stay real). When a pass ends the next begins, so training stops at `max_steps`, never at
    the end of the data. After every `batch_size`-th chunk the stream notes where it stands (the pass and
    `IterableDataset.state_dict()`), so a checkpoint can record the position after exactly the batches training
    consumed, however far the data loader has read ahead.
    """

    def __init__(
        self,
        documents: datasets.Dataset,
        tokenizer: PreTrainedTokenizerBase,
        max_length: int,
        batch_size: int,
        num_shards: int = 64,
        rank: int = 0,
        world_size: int = 1,
        seed: int = 0,
        text_column: str = "text",
    ):
        if (
            isinstance(max_length, bool)
            or not isinstance(max_length, int)
            or max_length <= SPECIAL_TOKENS_PER_PAIR
        ):
            raise UserInputError(
                f"max_length must be an int above {SPECIAL_TOKENS_PER_PAIR} (room for <s> A </s> B </s>); got "
                f"{max_length!r}."
            )
        if text_column not in documents.column_names:
            raise UserInputError(
                f"The documents have no column {text_column!r} (columns: {documents.column_names}): set text_column "
                "to the column holding the text."
            )
        if num_shards % world_size:
            raise UserInputError(
                f"streaming_num_shards={num_shards} is not a multiple of the {world_size} processes: every process "
                f"would read and tokenize the whole corpus. Use a multiple of {world_size} (e.g. "
                f"{world_size * max(1, num_shards // world_size)})."
            )
        if num_shards > len(documents):
            raise UserInputError(
                f"streaming_num_shards={num_shards} is more than the {len(documents)} training documents: use at "
                f"most {len(documents)} (a multiple of the {world_size} processes)."
            )
        self.documents = documents
        self.tokenizer = tokenizer
        self.max_length = max_length
        self.batch_size = batch_size
        self.num_shards = num_shards
        self.rank = rank
        self.world_size = world_size
        self.seed = seed
        self.text_column = text_column
        self.batches_read = 0
        self._start = (0, {"pass": 0, "state": None})
        self._positions: dict[int, dict] = {}

    def pass_dataset(self, pass_index: int) -> datasets.IterableDataset:
        """This process's packed chunks for one pass over the documents."""
        import datasets
        from datasets.distributed import split_dataset_by_node

        # in memory: every process shuffles alike, and nothing is written next to the corpus
        shuffled = self.documents.shuffle(seed=self.seed + pass_index, keep_in_memory=True)
        stream = split_dataset_by_node(
            shuffled.to_iterable_dataset(num_shards=self.num_shards),
            rank=self.rank,
            world_size=self.world_size,
        )
        features = datasets.Features(
            {
                "sentences": datasets.List(datasets.List(datasets.Value("int32"))),
                "length": datasets.Value("int32"),
            }
        )
        return stream.map(
            _tokenize_and_pack,
            batched=True,
            batch_size=1000,
            remove_columns=self.documents.column_names,
            features=features,
            fn_kwargs={
                "tokenizer": self.tokenizer,
                "text_column": self.text_column,
                "budget": self.max_length - SPECIAL_TOKENS_PER_PAIR,
            },
        )

    def __iter__(self):
        self.batches_read, position = self._start
        self._positions = {self.batches_read: position}
        pass_index, state = position["pass"], position["state"]
        in_batch = 0
        while True:
            stream = self.pass_dataset(pass_index)
            resumed = state is not None
            if resumed:
                stream.load_state_dict(state)
                state = None
            read = 0
            for example in stream:
                read += 1
                in_batch += 1
                if in_batch == self.batch_size:
                    in_batch = 0
                    self.batches_read += 1
                    self._positions[self.batches_read] = {"pass": pass_index, "state": stream.state_dict()}
                yield example
            if not read and not resumed:
                raise ValueError(
                    f"Process {self.rank}'s shards of the corpus hold no text to pretrain on: use a larger corpus "
                    "or fewer --streaming_num_shards."
                )
            pass_index += 1

    def position_after(self, batches: int) -> dict:
        """Where the stream stood after its first `batches` batches (of this process)."""
        if batches not in self._positions:
            raise RuntimeError(
                f"The stream no longer knows its position after batch {batches} (it knows {sorted(self._positions)})."
            )
        return self._positions[batches]

    def forget_before(self, batches: int) -> None:
        """Drop the positions of batches before `batches` (training is past them)."""
        for key in [key for key in self._positions if key < batches]:
            del self._positions[key]

    def resume_at(self, batches: int, position: dict) -> None:
        """Start the next iteration right after batch `batches`, at `position` (from `position_after`)."""
        self._start = (batches, position)

    def description(self) -> dict:
        """What must match between the run that saved a position and the run that resumes from it."""
        return {
            "batch_size": self.batch_size,
            "world_size": self.world_size,
            "num_shards": self.num_shards,
            "seed": self.seed,
            "max_length": self.max_length,
            "documents": len(self.documents),
        }


def save_stream_position(trainer: Trainer, checkpoint_dir: str | os.PathLike, batches: int) -> None:
    """Gather every process's stream position after `batches` batches and write them (from the process that writes
    checkpoints) to `checkpoint_dir/stream_state.json`, whole or not at all."""
    from accelerate.utils import gather_object

    stream = trainer.train_dataset
    positions = [stream.position_after(batches)]
    if trainer.accelerator.num_processes > 1:
        positions = gather_object(positions)
    if (
        not trainer.args.should_save
    ):  # the process that writes the checkpoint (one per node with save_on_each_node)
        return
    record = {
        "version": STREAM_STATE_VERSION,
        **stream.description(),
        "batches": batches,
        "positions": positions,
    }
    path = Path(checkpoint_dir) / STREAM_STATE_FILE
    partial = path.with_name(f"{path.name}.partial")
    partial.write_text(json.dumps(record))
    os.replace(partial, path)


def resume_stream(stream: PretrainingStream, checkpoint_dir: str | os.PathLike, batches: int) -> None:
    """Point `stream` at the position saved in `checkpoint_dir` after `batches` batches, so the resumed run reads
    exactly the chunks the uninterrupted run would have read next."""
    path = Path(checkpoint_dir) / STREAM_STATE_FILE
    if not path.is_file():
        raise UserInputError(
            f"{checkpoint_dir} has no {STREAM_STATE_FILE}: it was not saved by a --streaming run, or the run stopped "
            "while saving it. Resume from another checkpoint, or pass --ignore_data_skip true to restart the "
            "stream from its beginning."
        )
    record = json.loads(path.read_text())
    expected = stream.description()
    changed = {key: (record.get(key), value) for key, value in expected.items() if record.get(key) != value}
    if changed:
        details = ", ".join(f"{key} {saved} -> {now}" for key, (saved, now) in changed.items())
        raise UserInputError(
            f"{path} was saved by a run with other data settings ({details}): resume with the same batch size, "
            "number of processes, --streaming_num_shards, seed, --max_length and corpus, or pass --ignore_data_skip "
            "true to restart the stream from its beginning."
        )
    if record["batches"] != batches:
        raise UserInputError(
            f"{path} holds the stream position after {record['batches']} batches, but the trainer resumes after "
            f"{batches}: keep --gradient_accumulation_steps as it was when the checkpoint was saved."
        )
    stream.resume_at(batches, record["positions"][stream.rank])


class StreamPositionCallback(TrainerCallback):
    """Save every process's stream position with each checkpoint, and forget positions training is past."""

    def __init__(self, trainer: Trainer):
        self.trainer = trainer

    def on_step_end(self, args, state, control, **kwargs):
        self.trainer.train_dataset.forget_before(state.global_step * args.gradient_accumulation_steps)

    def on_save(self, args, state, control, **kwargs):
        checkpoint = Path(args.output_dir) / f"{PREFIX_CHECKPOINT_DIR}-{state.global_step}"
        save_stream_position(self.trainer, checkpoint, state.global_step * args.gradient_accumulation_steps)


__all__ = [
    "PretrainingStream",
    "STREAM_STATE_FILE",
    "StreamPositionCallback",
    "resume_stream",
    "save_stream_position",
]
