"""The teacher of a distilled fine-tuning run: loaded with the task's Auto class, fed its own inputs when it has
its own tokenizer, or replaced by cached logits."""

from __future__ import annotations

from typing import Any

import torch
from datasets import Dataset

from ..errors import UserInputError
from ..packaged import resolve_pretrained_name
from .distillation import cache_teacher_logits, tokenizers_match
from .distributed import whole_model_loading
from .losses.teacher import TEACHER_LOGITS_KEY, TEACHER_PREFIX
from .tasks.base import TaskRun, TaskSpec


def load_task_teacher(spec: TaskSpec, run: TaskRun):
    """(frozen teacher, its tokenizer when it differs from the student's) for `--teacher_name_or_path`."""
    import transformers
    from transformers import AutoTokenizer

    name = getattr(run.training_args, "teacher_name_or_path", None)
    if not name:
        return None, None
    path = resolve_pretrained_name(name)
    with whole_model_loading():  # every process keeps a whole frozen copy, even under ZeRO-3
        teacher = getattr(transformers, spec.auto_class).from_pretrained(path)  # SoraTrainer freezes it
    try:
        teacher_tokenizer = AutoTokenizer.from_pretrained(path)
    except (OSError, ValueError):
        teacher_tokenizer = None  # no tokenizer saved with it: it reads the student's inputs
    student_tokenizer = getattr(run.processor, "tokenizer", run.processor)
    if teacher_tokenizer is None or tokenizers_match(student_tokenizer, teacher_tokenizer):
        return teacher, None
    if spec.teacher_text_column is None:
        raise UserInputError(
            f"--teacher_name_or_path {name}: the teacher has its own tokenizer, and the {spec.name} task compares "
            "outputs position by position, so teacher and student must share a tokenizer. Pick a teacher "
            "fine-tuned from the student's checkpoint (or one with the same tokenizer)."
        )
    return teacher, teacher_tokenizer


class TeacherInputsCollator:
    """Wrap a task collator: `teacher_*` inputs are padded with the teacher's tokenizer, `teacher_logits` stacked,
    and every other feature goes to the task collator as before."""

    def __init__(self, collator, teacher_tokenizer=None):
        self.collator = collator
        self.teacher_tokenizer = teacher_tokenizer

    def __call__(self, features: list[dict[str, Any]]) -> dict[str, Any]:
        teacher = [
            {key[len(TEACHER_PREFIX) :]: f.pop(key) for key in list(f) if key.startswith(TEACHER_PREFIX)}
            for f in features
        ]
        # raw text kept for the teacher or the robustness attacks is no model input
        features = [{k: v for k, v in f.items() if not isinstance(v, str)} for f in features]
        batch = self.collator(features)
        if teacher and TEACHER_LOGITS_KEY[len(TEACHER_PREFIX) :] in teacher[0]:
            batch[TEACHER_LOGITS_KEY] = torch.tensor([t.pop("logits") for t in teacher], dtype=torch.float32)
        if teacher and teacher[0] and self.teacher_tokenizer is not None:
            padded = self.teacher_tokenizer.pad(teacher, return_tensors="pt")
            batch.update({f"{TEACHER_PREFIX}{key}": value for key, value in padded.items()})
        return batch


def add_teacher_columns(features: Dataset, run: TaskRun, teacher, teacher_tokenizer) -> Dataset:
    """Training `features` plus the teacher's cached logits, or its own encoding of the raw text."""
    column = run.spec.teacher_text_column
    max_length = getattr(run.args, "max_length", None)
    raw = run.train.select_columns([column])
    if getattr(run.training_args, "distill_use_cached_logits", False):
        tokenizer = teacher_tokenizer or getattr(run.processor, "tokenizer", run.processor)
        cached = cache_teacher_logits(raw, teacher, tokenizer, max_length=max_length)
        return features.add_column(TEACHER_LOGITS_KEY, list(cached[TEACHER_LOGITS_KEY]))
    with run.training_args.main_process_first(desc="teacher tokenization"):  # one process writes the cache
        encoded = raw.map(
            lambda batch: {
                f"{TEACHER_PREFIX}{key}": value
                for key, value in teacher_tokenizer(
                    batch[column], truncation=True, max_length=max_length
                ).items()
            },
            batched=True,
            remove_columns=[column],
            desc="teacher tokenization",
        )
    for name in encoded.column_names:
        features = features.add_column(name, encoded[name])
    return features
