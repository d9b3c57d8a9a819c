"""Distil a frozen teacher (any architecture, any tokenizer) into a Sora sequence classifier.

The loss terms live in `losses/`; this module holds what a distillation run needs around them: the collator that
tokenizes the raw text once per model, teacher logits cached as a `datasets` column, a smaller Sora made by
keeping every k-th layer, the checks of a teacher, and the evaluation and inference benchmark that
`examples/run_distillation.py` compares teacher and students with (training goes through `run_task`).
"""

import json
import re
import statistics
import time
import uuid
from typing import Any

import numpy as np
import torch
from datasets import Dataset, Features, List, Value
from transformers import (
    PreTrainedModel,
    PreTrainedTokenizerBase,
)

from ..configuration_sora import SoraConfig
from ..metrics import load_metric
from .arguments import SoraTrainingArguments
from .losses.teacher import TEACHER_LOGITS_KEY, TEACHER_PREFIX, freeze_teacher, load_teacher
from .prediction import predict_statistics, progress

__all__ = [
    "DistillationCollator",
    "cache_teacher_logits",
    "check_distillation_setup",
    "evaluate_classifier",
    "inference_throughput",
    "keep_every_kth_layer",
    "load_teacher",
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


def cache_teacher_logits(
    dataset: Dataset,
    teacher: PreTrainedModel,
    teacher_tokenizer: PreTrainedTokenizerBase,
    text_column: str = "text",
    max_length: int | None = None,
    batch_size: int = 64,
) -> Dataset:
    """`dataset` plus a `teacher_logits` column: one teacher forward per example, now, instead of one per epoch
    (`Dataset.map` over batches of `batch_size` texts, on the teacher's device)."""
    if TEACHER_LOGITS_KEY in dataset.column_names:
        raise ValueError(f"The dataset already has a {TEACHER_LOGITS_KEY!r} column; drop it to recompute it.")
    teacher = freeze_teacher(teacher)
    device = next(teacher.parameters()).device
    feature = List(Value("float32"))

    def teacher_logits(texts: list[str]) -> dict[str, np.ndarray]:
        encoded = teacher_tokenizer(
            texts,
            truncation=max_length is not None,
            max_length=max_length,
            padding=True,
            return_tensors="pt",
        ).to(device)
        with torch.inference_mode():
            return {TEACHER_LOGITS_KEY: teacher(**encoded).logits.float().cpu().numpy()}

    logits = dataset.select_columns([text_column]).map(
        teacher_logits,
        batched=True,
        batch_size=batch_size,
        input_columns=text_column,
        remove_columns=[text_column],
        features=Features({TEACHER_LOGITS_KEY: feature}),
        keep_in_memory=True,  # a few numbers per example: no cache file beside the dataset's
        new_fingerprint=uuid.uuid4().hex,  # the teacher decides the result: never reuse a cached one
        desc="Teacher logits",
    )
    column = logits.with_format("numpy")[TEACHER_LOGITS_KEY]
    return dataset.add_column(TEACHER_LOGITS_KEY, list(column), feature=feature)


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


def _predicted_classes(model: PreTrainedModel, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    """The argmax class of each example of a tokenized batch."""
    return model(**batch).logits.argmax(-1)


def evaluate_classifier(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    dataset: Dataset,
    max_length: int | None = None,
    batch_size: int = 128,
) -> dict[str, float]:
    """Accuracy and macro-F1 of `model` on `dataset` (`text`, `label`), tokenized with its own tokenizer, through
    `Trainer.predict` (the model stays on its device)."""
    collator = DistillationCollator(tokenizer, max_length=max_length)  # tokenizes and pads each batch
    texts = dataset.select_columns(["text"])
    predictions = predict_statistics(model, texts, collator, _predicted_classes, batch_size)
    return load_metric("accuracy_f1").compute(
        predictions=predictions.tolist(), references=list(dataset["label"])
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
    for _ in progress(range(repeats), desc="Timing inference"):  # the bar moves between timed runs
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
