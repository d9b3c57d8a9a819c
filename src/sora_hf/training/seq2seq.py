"""Fine-tune a Sora (or any transformers) seq2seq model: translation, summarization or dialogue responses.

One runner serves the three tasks; each has its arguments class (its column names and task), its metric and its
named baseline, scored on the same test examples as the model:

| task | metric (headline) | baseline |
| --- | --- | --- |
| translation (en→es Bible verses) | sacreBLEU chrF | copy the source sentence |
| summarization (Debian description → synopsis) | ROUGE-L | the first 7 words of the description |
| dialogue (chatterbot-corpus turn → next turn) | sacreBLEU chrF | the most frequent training response |

Dialogue is scored with chrF rather than ROUGE: responses are short (median 9 words), so word-level ROUGE is
zero for most pairs (86% of the test pairs for the baseline's answer) and swings on a shared "the" or "is",
while chrF's character n-grams give partial credit for near misses ("program" / "programming") and pool their
counts over the whole test set.
"""

import json
import shlex
import sys
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import ClassVar

import numpy as np
from datasets import DatasetDict
from transformers import (
    AutoConfig,
    AutoModelForSeq2SeqLM,
    AutoTokenizer,
    DataCollatorForSeq2Seq,
    Seq2SeqTrainer,
    Seq2SeqTrainingArguments,
)

from ..data.tasks import load_task_dataset
from ..hub import write_model_card
from ..metrics import load_metric
from ..pretrained import resolve_pretrained_name
from .finetuning import FinetuneArguments, card_dataset, training_slice, user_data_files
from .plots import LossCurveCallback

IGNORE_INDEX = -100
LEAD_WORDS = 7


class SoraSeq2SeqTrainer(Seq2SeqTrainer):
    """`Seq2SeqTrainer` (generation during evaluation) with `SoraTrainer`'s model card and loss-curve PNG."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if not any(isinstance(callback, LossCurveCallback) for callback in self.callback_handler.callbacks):
            self.add_callback(LossCurveCallback())

    def create_model_card(self, **kwargs) -> None:
        """Write README.md (with model-index results) to `output_dir`; `push_to_hub` uploads it."""
        if self.is_world_process_zero():
            write_model_card(self, self.args.output_dir, **kwargs)


@dataclass
class Seq2SeqArguments(FinetuneArguments):
    """What the three seq2seq tasks share; `Seq2SeqTrainingArguments` hold the rest (generation included)."""

    task: ClassVar[str]

    max_source_length: int = 128
    max_target_length: int = 64
    no_repeat_ngram_size: int = field(
        default=0, metadata={"help": "Generation never repeats an n-gram of this size (0: no constraint)."}
    )
    length_penalty: float = field(
        default=1.0,
        metadata={
            "help": "Beam search scores divide by length**length_penalty (> 1 favours longer outputs)."
        },
    )
    max_eval_samples: int | None = field(
        default=None, metadata={"help": "Generate for only the first N validation examples."}
    )
    max_test_samples: int | None = field(
        default=None, metadata={"help": "Score only the first N test examples (a fixed slice)."}
    )
    run_baseline: bool = field(default=True, metadata={"help": "Also score the task's named baseline."})

    def column_options(self) -> dict:
        """The column keywords `load_task_dataset(task, data_files=...)` takes for this task."""
        raise NotImplementedError


@dataclass
class TranslationArguments(Seq2SeqArguments):
    """English→Spanish Bible verses, or the user's files with a source and a target column."""

    task: ClassVar[str] = "translation"

    source_lang: str = "en"
    target_lang: str = "es"
    source_column: str | None = field(
        default=None, metadata={"help": "Column of source texts in your files (default: named source_lang)."}
    )
    target_column: str | None = field(
        default=None, metadata={"help": "Column of target texts in your files (default: named target_lang)."}
    )
    max_target_length: int = 96

    def column_options(self) -> dict:
        return dict(
            source_column=self.source_column,
            target_column=self.target_column,
            source_lang=self.source_lang,
            target_lang=self.target_lang,
        )


@dataclass
class SummarizationArguments(Seq2SeqArguments):
    """Debian long description → one-line synopsis, or the user's document / summary files."""

    task: ClassVar[str] = "summarization"

    document_column: str = "document"
    summary_column: str = "summary"
    max_target_length: int = 32

    def column_options(self) -> dict:
        return dict(document_column=self.document_column, summary_column=self.summary_column)


@dataclass
class DialogueArguments(Seq2SeqArguments):
    """chatterbot-corpus response generation (previous turn → turn), or the user's context / response files."""

    task: ClassVar[str] = "dialogue"

    context_column: str = "context"
    response_column: str = "response"
    max_source_length: int = 64

    def column_options(self) -> dict:
        return dict(context_column=self.context_column, response_column=self.response_column)


@dataclass(frozen=True)
class Seq2SeqTask:
    """How one task is served, scored and compared."""

    pipeline_task: str
    metric: str
    headline: str
    baseline: str
    description: str


TASKS = {
    "translation": Seq2SeqTask(
        "translation",
        "sacrebleu_chrf",
        "chrf",
        "copy_source",
        "World English Bible → Reina-Valera 1909 verses",
    ),
    "summarization": Seq2SeqTask(
        "summarization",
        "rouge",
        "rougeL",
        f"first_{LEAD_WORDS}_words",
        "Debian long package descriptions → synopsis",
    ),
    "dialogue": Seq2SeqTask(
        "text2text-generation",
        "sacrebleu_chrf",
        "chrf",
        "most_frequent_response",
        "chatterbot-corpus 1.3.3, English conversations: previous turn → turn",
    ),
}


def load_seq2seq_data(args: Seq2SeqArguments) -> DatasetDict:
    """Train / validation / test with a `source` and a `target` text column: built-in, or the user's files."""
    if args.train_file is None:
        dataset = load_task_dataset(args.task)
    else:
        files = user_data_files(args.train_file, args.validation_file, args.test_file)
        dataset = load_task_dataset(args.task, data_files=files, **args.column_options())

    if args.task == "translation":
        languages = dataset["train"].features["translation"].languages
        for flag in ("source_lang", "target_lang"):
            if getattr(args, flag) not in languages:
                raise ValueError(
                    f"{flag}={getattr(args, flag)!r} is not a language of the data ({languages}): pass one of "
                    "them, or your own files with --source_column/--target_column."
                )

        def to_pairs(batch):
            pairs = batch["translation"]
            return {
                "source": [p[args.source_lang] for p in pairs],
                "target": [p[args.target_lang] for p in pairs],
            }
    else:
        source, target = ("document", "summary") if args.task == "summarization" else ("context", "response")

        def to_pairs(batch):
            return {"source": batch[source], "target": batch[target]}

    return dataset.map(to_pairs, batched=True, remove_columns=dataset["train"].column_names)


def copy_source_baseline(train_targets: list[str], sources: list[str]) -> list[str]:
    """Named baseline for translation: the source sentence itself (names and cognates score in chrF)."""
    return list(sources)


def lead_words_baseline(train_targets: list[str], sources: list[str]) -> list[str]:
    """Named baseline for summarization: the first 7 words of the document."""
    return [" ".join(source.split()[:LEAD_WORDS]) for source in sources]


def most_frequent_response_baseline(train_targets: list[str], sources: list[str]) -> list[str]:
    """Named baseline for dialogue: the training response seen most often (the first seen wins a tie)."""
    response = Counter(train_targets).most_common(1)[0][0]
    return [response] * len(sources)


BASELINES = {
    "copy_source": copy_source_baseline,
    f"first_{LEAD_WORDS}_words": lead_words_baseline,
    "most_frequent_response": most_frequent_response_baseline,
}


def _first(split, count: int | None):
    return split.select(range(min(count, len(split)))) if count else split


def run_seq2seq(args: Seq2SeqArguments, training_args: Seq2SeqTrainingArguments) -> dict:
    """Fine-tune, generate for the test split, save a folder the task's pipeline serves."""
    if not training_args.predict_with_generate:
        raise ValueError(
            "The test split is scored on generated text: pass --predict_with_generate (the example scripts and "
            "`sora-hf finetune` turn it on by default)."
        )
    started, cpu_started = time.time(), time.process_time()
    task = TASKS[args.task]
    output_dir = Path(training_args.output_dir)
    dataset = load_seq2seq_data(args)
    train = training_slice(dataset["train"], args.max_train_samples, training_args.seed)
    validation = _first(dataset["validation"], args.max_eval_samples)
    test = _first(dataset["test"], args.max_test_samples)

    checkpoint = resolve_pretrained_name(args.model_name_or_path)
    tokenizer = AutoTokenizer.from_pretrained(checkpoint)
    if args.from_scratch:
        model = AutoModelForSeq2SeqLM.from_config(AutoConfig.from_pretrained(checkpoint))
    else:
        model = AutoModelForSeq2SeqLM.from_pretrained(checkpoint)
    # Saved with the model, so `pipeline(task, model=output_dir)` generates as the evaluation did.
    model.generation_config.max_length = training_args.generation_max_length or args.max_target_length
    model.generation_config.num_beams = training_args.generation_num_beams or 1
    model.generation_config.no_repeat_ngram_size = args.no_repeat_ngram_size
    model.generation_config.length_penalty = args.length_penalty

    def tokenize(batch):
        encoded = tokenizer(
            batch["source"],
            truncation=True,
            max_length=args.max_source_length,
            return_token_type_ids=False,
        )
        encoded["labels"] = tokenizer(
            text_target=batch["target"], truncation=True, max_length=args.max_target_length
        )["input_ids"]
        return encoded

    columns = ["source", "target"]
    train_features = train.map(tokenize, batched=True, remove_columns=columns)
    eval_features = validation.map(tokenize, batched=True, remove_columns=columns)
    test_features = test.map(tokenize, batched=True, remove_columns=columns)
    metric = load_metric(task.metric)

    def decode(ids: np.ndarray) -> list[str]:
        # Trainer pads predictions and labels across batches with -100, which is no token.
        ids = np.where(ids == IGNORE_INDEX, tokenizer.pad_token_id, ids)
        return [text.strip() for text in tokenizer.batch_decode(ids, skip_special_tokens=True)]

    def compute_metrics(prediction):
        return metric.compute(
            predictions=decode(prediction.predictions), references=decode(prediction.label_ids)
        )

    trainer = SoraSeq2SeqTrainer(
        model=model,
        args=training_args,
        train_dataset=train_features,
        eval_dataset=eval_features,
        data_collator=DataCollatorForSeq2Seq(tokenizer, model=model, pad_to_multiple_of=8),
        processing_class=tokenizer,
        compute_metrics=compute_metrics,
    )
    trainer.train()
    train_seconds = time.time() - started
    # The test split is scored against its raw target texts, not the decoded (possibly truncated) labels.
    trainer.compute_metrics = None
    test_output = trainer.predict(test_features, metric_key_prefix="test")
    predictions = decode(test_output.predictions)
    test_scores = metric.compute(predictions=predictions, references=list(test["target"]))
    test_metrics = {
        **{k: v for k, v in test_output.metrics.items() if k.startswith("test_")},
        **{f"test_{k}": v for k, v in test_scores.items()},
    }
    trainer.save_model(output_dir)

    results = {
        "task": args.task,
        "metric": task.headline,
        "test": test_metrics,
        "examples": [
            {"source": s, "target": t, "prediction": p}
            for s, t, p in zip(test["source"][:5], test["target"][:5], predictions)
        ],
        "split_sizes": {"train": len(train), "validation": len(validation), "test": len(test)},
        "full_test_size": len(dataset["test"]),
        "steps": trainer.state.global_step,
        "train_seconds": train_seconds,
    }
    baseline = None
    if args.run_baseline:
        baseline_predictions = BASELINES[task.baseline](list(train["target"]), list(test["source"]))
        baseline = metric.compute(predictions=baseline_predictions, references=list(test["target"]))
        results[f"baseline_{task.baseline}"] = baseline
        results[f"baseline_{task.baseline}_{task.headline}"] = baseline[task.headline]
    results["wall_seconds"] = time.time() - started
    # CPU seconds of all this process's threads: comparable across runs when other jobs share the machine.
    results["cpu_seconds"] = time.process_time() - cpu_started
    results["command"] = shlex.join(sys.argv)
    results["arguments"] = asdict(args)
    (output_dir / f"{args.task}_results.json").write_text(json.dumps(results, indent=2, default=str))

    dataset_name, source = card_dataset(args, f"sora_hf/{args.task}", task.description)
    test_size = f"{len(test):,} examples" + (
        f", the first of {len(dataset['test']):,}" if len(test) < len(dataset["test"]) else ""
    )
    summary = (
        f"{args.task.capitalize()}, fine-tuned from `{args.model_name_or_path}` on {dataset_name}{source}: "
        f"{len(train):,} training pairs, {trainer.state.global_step:,} steps, "
        f"{results['wall_seconds']:,.0f} s wall time. Test ({test_size}): "
        f"{task.headline} {test_scores[task.headline]:.3f}"
    )
    if baseline is not None:
        summary += f"; baseline ({task.baseline.replace('_', ' ')}) {baseline[task.headline]:.3f}"
    trainer.create_model_card(
        dataset=dataset_name,
        tasks=task.pipeline_task,
        metrics=test_metrics,
        dataset_split="test",
        model_description=f"{summary}.\n\nCommand: `{results['command']}`",
    )
    return results
