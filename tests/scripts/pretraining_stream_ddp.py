"""Streaming pretraining in every process of an `accelerate launch`: an uninterrupted run, a run stopped right after
its checkpoint, and that run resumed; then `run_pretraining --streaming` itself, tokenizer training included.

Run by tests/training/test_pretraining_scale.py under `accelerate launch --multi_gpu --num_processes 2` (two CPU processes,
gloo). The main process writes one JSON file: per run and process, a digest of every chunk of every batch training
consumed (in order), and the logged losses.

    python tests/scripts/pretraining_stream_ddp.py --corpus CORPUS --sources jargon --max-docs-per-source 200 \
        --tokenizer TOKENIZER --workdir DIR --output out.json
"""

import argparse
import hashlib
import json
from pathlib import Path

import torch
from accelerate.utils import gather_object
from datasets import load_from_disk
from transformers import TrainerCallback, TrainingArguments

from sora_hf import SoraConfig, SoraForPreTraining, SoraTokenizer
from sora_hf.training.collators import DataCollatorForSoraPretraining
from sora_hf.training.pretraining import PretrainingArguments, run_pretraining
from sora_hf.training.pretraining_stream import PretrainingStream
from sora_hf.training.pretraining_trainer import PretrainingTrainer

BATCH, ACCUMULATION, STEPS, CUT = 4, 2, 6, 3


class RecordingCollator(DataCollatorForSoraPretraining):
    """The pretraining collator, noting a digest of each chunk of each batch it collates, in order."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.batches: list[list[str]] = []

    def __call__(self, examples):
        self.batches.append(
            [hashlib.sha1(json.dumps(example["sentences"]).encode()).hexdigest()[:12] for example in examples]
        )
        return super().__call__(examples)


class StopAfterStep(TrainerCallback):
    def __init__(self, step: int):
        self.step = step

    def on_step_end(self, args, state, control, **kwargs):
        if state.global_step >= self.step:
            control.should_training_stop = True


def train(corpus, tokenizer, output_dir: Path, resume: str | None = None, stop: int | None = None) -> dict:
    """One streaming run; the chunks this process trained on (batches in order) and the logged losses."""
    args = TrainingArguments(
        output_dir=str(output_dir),
        per_device_train_batch_size=BATCH,
        gradient_accumulation_steps=ACCUMULATION,
        max_steps=STEPS,
        learning_rate=3e-3,
        logging_steps=1,
        save_strategy="steps",
        save_steps=CUT,
        report_to=[],
        use_cpu=True,
        seed=0,
        remove_unused_columns=False,
    )
    stream = PretrainingStream(
        corpus["train"],
        tokenizer,
        max_length=48,
        batch_size=BATCH,
        num_shards=4,
        rank=args.process_index,
        world_size=args.world_size,
        seed=0,
    )
    torch.manual_seed(0)
    config = SoraConfig(
        vocab_size=len(tokenizer),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=64,
        decoder_layers=1,
        is_encoder_decoder=True,
        max_position_embeddings=64,
    )
    collator = RecordingCollator(tokenizer)
    trainer = PretrainingTrainer(
        model=SoraForPreTraining(config), args=args, train_dataset=stream, data_collator=collator
    )
    if stop:
        trainer.add_callback(StopAfterStep(stop))
    trainer.train(resume_from_checkpoint=resume)
    trained = (trainer.state.global_step - (CUT if resume else 0)) * ACCUMULATION
    losses = {entry["step"]: entry["loss"] for entry in trainer.state.log_history if "loss" in entry}
    # the collator ran ahead of training (prefetch): keep only the batches that were trained on
    return {"batches": collator.batches[:trained], "losses": losses}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", required=True)
    parser.add_argument("--sources", nargs="+", required=True)
    parser.add_argument("--max-docs-per-source", type=int, required=True)
    parser.add_argument("--tokenizer", required=True)
    parser.add_argument("--workdir", required=True)
    parser.add_argument("--output", required=True)
    options = parser.parse_args()
    workdir = Path(options.workdir)
    corpus = load_from_disk(options.corpus)
    tokenizer = SoraTokenizer.from_pretrained(options.tokenizer)

    runs = {
        "full": train(corpus, tokenizer, workdir / "full"),
        "cut": train(corpus, tokenizer, workdir / "cut", stop=CUT),
    }
    runs["resumed"] = train(
        corpus, tokenizer, workdir / "cut", resume=str(workdir / "cut" / f"checkpoint-{CUT}")
    )
    gathered = {name: gather_object([run["batches"]]) for name, run in runs.items()}

    # run_pretraining itself, streaming in both processes: one corpus build, one tokenizer
    pretraining_args = PretrainingArguments(
        corpus_dir=options.corpus,
        sources=options.sources,
        max_docs_per_source=options.max_docs_per_source,
        vocab_size=400,
        model_size="small",
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=64,
        decoder_layers=1,
        max_length=48,
        max_eval_samples=8,
        streaming=True,
        streaming_num_shards=4,
        throughput_warmup_steps=1,
    )
    training_args = TrainingArguments(
        output_dir=str(workdir / "run_pretraining"),
        per_device_train_batch_size=BATCH,
        max_steps=3,
        save_strategy="steps",
        save_steps=2,
        logging_steps=1,
        report_to=[],
        use_cpu=True,
    )
    summary = run_pretraining(pretraining_args, training_args)
    if training_args.process_index == 0:
        result = {
            "world_size": training_args.world_size,
            "batches": gathered,
            "losses": {name: run["losses"] for name, run in runs.items()},
            "summary": summary,
        }
        Path(options.output).write_text(json.dumps(result, default=str))


if __name__ == "__main__":
    main()
