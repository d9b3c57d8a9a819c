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

from collections import Counter
from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np
from datasets import DatasetDict
from transformers import DataCollatorForSeq2Seq

from ...data.tasks import load_task_dataset
from ...metrics import load_metric
from .base import RunArguments, TaskRun, TaskSpec, card_dataset
from .user_data import user_data_files

IGNORE_INDEX = -100
LEAD_WORDS = 7


@dataclass
class Seq2SeqArguments(RunArguments):
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


def load_seq2seq_data(args: Seq2SeqArguments) -> DatasetDict:
    """Train / validation / test with a `source` and a `target` text column: built-in, or the user's files."""
    if args.train_file is None:
        dataset = load_task_dataset(args.task)
    else:
        dataset = load_task_dataset(args.task, data_files=user_data_files(args), **args.column_options())

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


class Seq2SeqTask(TaskSpec):
    """A generating task: source text → target text, scored on generated test outputs beside its baseline."""

    arguments_class: ClassVar[type]
    auto_class = "AutoModelForSeq2SeqLM"
    peft_task_type = "SEQ_2_SEQ_LM"
    seq2seq = True

    metric: ClassVar[str]  # the sora_hf metric module scoring generated text
    baseline_name: ClassVar[str]  # key of BASELINES

    def load_data(self, args):
        return load_seq2seq_data(args)

    def configure_model(self, run: TaskRun) -> None:
        # Saved with the model, so `pipeline(task, model=output_dir)` generates as the evaluation did.
        config, args, training_args = run.model.generation_config, run.args, run.training_args
        config.max_length = training_args.generation_max_length or args.max_target_length
        config.num_beams = training_args.generation_num_beams or 1
        config.no_repeat_ngram_size = args.no_repeat_ngram_size
        config.length_penalty = args.length_penalty

    def featurize(self, run: TaskRun, split, data):
        tokenizer, args = run.processor, run.args

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

        return data.map(tokenize, batched=True, remove_columns=["source", "target"])

    def collator(self, run: TaskRun):
        return DataCollatorForSeq2Seq(run.processor, model=run.model, pad_to_multiple_of=8)

    def _decode(self, run: TaskRun, ids: np.ndarray) -> list[str]:
        # Trainer pads predictions and labels across batches with -100, which is no token.
        ids = np.where(ids == IGNORE_INDEX, run.processor.pad_token_id, ids)
        return [text.strip() for text in run.processor.batch_decode(ids, skip_special_tokens=True)]

    def compute_metrics(self, run: TaskRun):
        metric = load_metric(self.metric)

        def compute_metrics(prediction):
            return metric.compute(
                predictions=self._decode(run, prediction.predictions),
                references=self._decode(run, prediction.label_ids),
            )

        return compute_metrics

    def score_test(self, run: TaskRun):
        # The test split is scored against its raw target texts, not the decoded (possibly truncated) labels.
        run.trainer.compute_metrics = None
        output = run.trainer.predict(run.features["test"], metric_key_prefix="test")
        predictions = self._decode(run, output.predictions)
        scores = load_metric(self.metric).compute(
            predictions=predictions, references=list(run.test["target"])
        )
        metrics = {
            **{k: v for k, v in output.metrics.items() if k.startswith("test_")},
            **{f"test_{k}": v for k, v in scores.items()},
        }
        return metrics, predictions, output

    def baseline(self, run: TaskRun):
        predictions = BASELINES[self.baseline_name](list(run.train["target"]), list(run.test["source"]))
        baseline = load_metric(self.metric).compute(
            predictions=predictions, references=list(run.test["target"])
        )
        return {
            f"baseline_{self.baseline_name}": baseline,
            f"baseline_{self.baseline_name}_{self.headline_metric}": baseline[self.headline_metric],
        }

    def extra_results(self, run: TaskRun, output, predictions):
        test = run.test
        return {
            "examples": [
                {"source": s, "target": t, "prediction": p}
                for s, t, p in zip(test["source"][:5], test["target"][:5], predictions)
            ]
        }

    def summary(self, run: TaskRun, results: dict) -> str:
        dataset_name, source = card_dataset(run)
        full = results["full_test_size"]
        test_size = f"{len(run.test):,} examples" + (
            f", the first of {full:,}" if len(run.test) < full else ""
        )
        summary = (
            f"{self.name.capitalize()}, fine-tuned from `{run.args.model_name_or_path}` on {dataset_name}{source}: "
            f"{len(run.train):,} training pairs. Test ({test_size}): "
            f"{self.headline_metric} {results['test'][f'test_{self.headline_metric}']:.3f}"
        )
        baseline = results.get(f"baseline_{self.baseline_name}")
        if baseline is not None:
            summary += (
                f"; baseline ({self.baseline_name.replace('_', ' ')}) {baseline[self.headline_metric]:.3f}"
            )
        return summary


class TranslationTask(Seq2SeqTask):
    """English→Spanish Bible verses (or the user's pairs), chrF beside copying the source."""

    name = "translation"
    arguments_class = TranslationArguments
    pipeline_task = "translation"
    results_file = "translation_results.json"
    dataset_name = "sora_hf/translation"
    dataset_description = "World English Bible → Reina-Valera 1909 verses"
    metric = "sacrebleu_chrf"
    headline_metric = "chrf"
    baseline_name = "copy_source"


class SummarizationTask(Seq2SeqTask):
    """Debian description → synopsis (or the user's pairs), ROUGE-L beside the first 7 words."""

    name = "summarization"
    arguments_class = SummarizationArguments
    pipeline_task = "summarization"
    results_file = "summarization_results.json"
    dataset_name = "sora_hf/summarization"
    dataset_description = "Debian long package descriptions → synopsis"
    metric = "rouge"
    headline_metric = "rougeL"
    baseline_name = f"first_{LEAD_WORDS}_words"


class DialogueTask(Seq2SeqTask):
    """chatterbot-corpus turn → next turn (or the user's pairs), chrF beside the most frequent response."""

    name = "dialogue"
    arguments_class = DialogueArguments
    pipeline_task = "text2text-generation"
    results_file = "dialogue_results.json"
    dataset_name = "sora_hf/dialogue"
    dataset_description = "chatterbot-corpus 1.3.3, English conversations: previous turn → turn"
    metric = "sacrebleu_chrf"
    headline_metric = "chrf"
    baseline_name = "most_frequent_response"
