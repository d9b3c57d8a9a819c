"""What a fine-tuning task is: a small spec of hooks that `run_task` (training/runner.py) composes.

A spec says only what differs between tasks: how its data is read, featurized and collated, which Auto class
and peft task type it uses, how its test split is scored, its named baseline and the sentence its card opens
with. Everything the tasks share (slicing, PEFT, extra loss terms, training, resuming, saving, results JSON,
plots, card and push) lives once in the runner.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

if TYPE_CHECKING:
    from datasets import Dataset, DatasetDict
    from transformers import PreTrainedModel


@dataclass
class RunArguments:
    """Which checkpoint, which data and which parameters train; `SoraTrainingArguments` hold the rest."""

    model_name_or_path: str = field(
        default="sora", metadata={"help": "Checkpoint to start from ('sora' = packaged)."}
    )
    from_scratch: bool = field(
        default=False,
        metadata={"help": "Random initialisation with the checkpoint's config (the no-pretraining control)."},
    )
    train_file: str | None = field(
        default=None,
        metadata={
            "help": "Your own CSV/TSV/JSON/JSONL/Parquet file; alone, validation and test are split off it "
            "(seeded, printed)."
        },
    )
    validation_file: str | None = None
    test_file: str | None = None
    max_train_samples: int | None = field(
        default=None, metadata={"help": "Train on the first N of a seeded shuffle of the training split."}
    )
    max_eval_samples: int | None = field(
        default=None, metadata={"help": "Evaluate on only the first N validation examples."}
    )
    max_test_samples: int | None = field(
        default=None, metadata={"help": "Score only the first N test examples (a fixed slice)."}
    )
    lora_r: int | None = field(
        default=None,
        metadata={"help": "Train a LoRA adapter of this rank (plus the head) instead of every weight."},
    )
    lora_target_modules: list[str] | None = field(
        default=None,
        metadata={
            "help": "Modules LoRA adapts: names (each matches a module name's end), or one regular expression "
            "matched against whole module names, e.g. '.*(word_embeddings|layers\\.[1-3]\\.self_attn\\.qkv_proj)' "
            "(peft's list / string semantics). Default: peft's defaults for the model type."
        },
    )
    peft_config: str | None = field(
        default=None,
        metadata={
            "help": "A peft config (folder or JSON file saved by peft, any method: LoRA, IA3, prefix tuning, ...) "
            "to wrap the model with; its task_type is set to the task's."
        },
    )
    train_top_layers: int | None = field(
        default=None, metadata={"help": "Train only the top k encoder layers and the head."}
    )
    keep_every_kth_layer: int | None = field(
        default=None,
        metadata={
            "help": "Shrink a Sora model to its encoder layers k, 2k, ... before training (a smaller student)."
        },
    )
    merge_adapter: bool = field(
        default=True,
        metadata={
            "help": "Save the merged full model (served by pipeline()) with the adapter alone in adapter/; "
            "False saves the adapter only."
        },
    )
    run_baseline: bool = field(default=True, metadata={"help": "Also score the task's named baseline."})
    overwrite_output_dir: bool = field(
        default=False,
        metadata={
            "help": "Start a new run in an output_dir that holds another run's checkpoints (they are replaced); "
            "without it such a run refuses to start (use --resume_from_checkpoint to continue it)."
        },
    )


@dataclass
class TaskRun:
    """One run's state, filled in by `run_task` and read by the spec's hooks."""

    spec: TaskSpec
    args: Any
    training_args: Any
    dataset: DatasetDict
    train: Dataset
    validation: Dataset
    test: Dataset
    labels: list[str] | None = None
    processor: Any = None
    model: PreTrainedModel | None = None
    trainer: Any = None
    features: dict[str, Dataset] = field(default_factory=dict)
    extras: dict[str, Any] = field(default_factory=dict)  # what a spec's hooks pass on to its later hooks

    @property
    def output_dir(self) -> Path:
        return Path(self.training_args.output_dir)


def card_dataset(run: TaskRun) -> tuple[str, str]:
    """The dataset a card names, and a parenthesised description for a built-in one."""
    if run.args.train_file is None:
        description = run.spec.dataset_description
        return run.spec.dataset_name, f" ({description})" if description else ""
    return Path(run.args.train_file).name, ""


class TaskSpec:
    """A task's hooks; subclasses set the class attributes and override what their task does differently."""

    name: ClassVar[str]
    arguments_class: ClassVar[type]
    auto_class: ClassVar[str]  # a transformers Auto class name, e.g. "AutoModelForSequenceClassification"
    peft_task_type: ClassVar[str]  # peft's TaskType value
    pipeline_task: ClassVar[str]  # the card's task tag, and what pipeline() serves the saved folder with
    results_file: ClassVar[str]
    dataset_name: ClassVar[str]  # the built-in dataset, as the card names it
    dataset_description: ClassVar[str] = ""
    headline_metric: ClassVar[str]  # key of the test metrics the card leads with (without "test_")
    seq2seq: ClassVar[bool] = False
    robustness: ClassVar[bool] = False  # a text classifier: the robustness attacks apply
    passes_raw_columns: ClassVar[bool] = (
        False  # the collator reads raw columns the model's forward does not name
    )
    trainer_class: ClassVar[type | None] = None  # default: SoraTrainer, or SoraSeq2SeqTrainer when seq2seq
    # the raw-text column a teacher with its own tokenizer reads (None: the teacher must share the tokenizer)
    teacher_text_column: ClassVar[str | None] = None

    def load_data(self, args) -> DatasetDict:
        """Train / validation / test: the built-in data, or the user's files."""
        raise NotImplementedError

    def label_names(self, dataset: DatasetDict, args) -> list[str] | None:
        """The class names a classifier head is built for (None: no label head)."""
        return None

    def load_processor(self, checkpoint: str, args):
        """The tokenizer (or processor) the model reads with."""
        from transformers import AutoTokenizer

        return AutoTokenizer.from_pretrained(checkpoint)

    def load_model(self, checkpoint: str, args, labels: list[str] | None, processor) -> PreTrainedModel:
        """The task model: pretrained weights, or the checkpoint's config with random weights (`from_scratch`)."""
        import transformers

        from ..finetuning import load_task_model

        return load_task_model(getattr(transformers, self.auto_class), checkpoint, labels, args.from_scratch)

    def configure_model(self, run: TaskRun) -> None:
        """Settings saved with the model (generation settings, say)."""

    def featurize(self, run: TaskRun, split: str, data: Dataset) -> Dataset:
        """Model inputs (and labels) for one split."""
        raise NotImplementedError

    def model_columns(self, run: TaskRun, split: str, features: Dataset) -> Dataset:
        """The features the trainer sees (bookkeeping columns the scoring needs are dropped here)."""
        return features

    def collator(self, run: TaskRun):
        """The data collator of every split."""
        raise NotImplementedError

    def trainer_kwargs(self, run: TaskRun) -> dict[str, Any]:
        """Extra keywords of `trainer_class`."""
        return {}

    def compute_metrics(self, run: TaskRun):
        """`compute_metrics` for evaluation during training (None: loss only)."""
        return None

    def score_test(self, run: TaskRun, output) -> tuple[dict[str, float], list]:
        """Test metrics (keys `test_*`) and the per-example predictions, from `trainer.predict` output."""
        return dict(output.metrics), []

    def write_plots(self, run: TaskRun, output, predictions: list, test_metrics: dict) -> list[str]:
        """PNG plots beside the results (file names), besides the loss curve every run gets."""
        return []

    def baseline(self, run: TaskRun) -> dict[str, Any] | None:
        """The named baseline's scores on the same test examples (`name`, `description`, metric keys)."""
        return None

    def summary(self, run: TaskRun, results: dict) -> str:
        """The card's opening sentence: what the model does and on which data."""
        raise NotImplementedError

    def extra_results(self, run: TaskRun, output, predictions: list) -> dict[str, Any]:
        """Task-specific entries of the results JSON (examples, label lists, ...)."""
        return {}

    def check_teacher(self, run: TaskRun, teacher, teacher_tokenizer) -> None:
        """Refuse a teacher this task cannot read (other labels, another tokenizer where positions must align)."""
