"""Knowledge distillation: a frozen teacher's soft labels (KL with temperature) mixed with the hard-label loss."""

import math

import torch
from torch import nn
from transformers import PreTrainedModel

from .base import LossInputs, TrainingLoss
from .teacher import (
    TEACHER_INPUT_KEYS,
    TEACHER_LOGITS_KEY,
    DistillationTeacher,
    as_teacher,
    has_teacher_inputs,
)


def soft_label_kl(
    student_logits: torch.Tensor,
    teacher_logits: torch.Tensor,
    temperature: float,
    mask: torch.Tensor | None = None,
) -> torch.Tensor:
    """T² · KL(softmax(teacher / T) ‖ softmax(student / T)), summed over classes, averaged over rows.

    The T² factor keeps the soft-label gradients at the scale of the hard-label ones (Hinton et al., 2015).
    """
    student_log_probs = nn.functional.log_softmax(student_logits.float() / temperature, dim=-1)
    teacher_log_probs = nn.functional.log_softmax(teacher_logits.float() / temperature, dim=-1)
    per_row = (teacher_log_probs.exp() * (teacher_log_probs - student_log_probs)).sum(-1)
    if mask is not None:
        per_row = per_row[mask.bool()]
    return per_row.mean() * temperature**2


def check_alpha_and_temperature(alpha: float, temperature: float) -> None:
    """`ValueError` naming `distill_alpha` or `distill_temperature` when it is out of range."""
    if isinstance(alpha, bool) or not isinstance(alpha, int | float) or not 0.0 <= alpha <= 1.0:
        raise ValueError(
            f"distill_alpha must be in [0, 1] (the soft-label weight; the hard-label loss gets 1 - alpha); "
            f"got {alpha!r}."
        )
    if (
        isinstance(temperature, bool)
        or not isinstance(temperature, int | float)
        or not math.isfinite(temperature)
        or temperature <= 0
    ):
        raise ValueError(
            f"distill_temperature must be a positive number (1 = plain softmax); got {temperature!r}."
        )


class KnowledgeDistillationLoss(TrainingLoss):
    """Soft-label KL to the teacher at temperature T (× T²), weighted `alpha`; the task loss gets `1 - alpha`.

    The teacher logits come from the batch (`teacher_logits`, cached once over the training set) or from a teacher
    forward on the teacher's own inputs (`teacher_input_ids`, ...) or, with a shared tokenizer, on the student's.
    """

    name = "kd"
    batch_keys = (TEACHER_LOGITS_KEY, *TEACHER_INPUT_KEYS)

    def __init__(
        self,
        teacher: DistillationTeacher | PreTrainedModel | None = None,
        alpha: float = 0.5,
        temperature: float = 2.0,
    ):
        check_alpha_and_temperature(alpha, temperature)
        super().__init__(weight=float(alpha))
        self.teacher = as_teacher(teacher)
        self.temperature = float(temperature)

    @property
    def task_loss_scale(self) -> float:
        return 1.0 - self.weight

    def forward(self, loss_inputs: LossInputs) -> torch.Tensor:
        outputs = loss_inputs.outputs
        # a classifier, tagger or generator has `logits`; extractive QA has a start and an end distribution
        names = [name for name in ("logits", "start_logits", "end_logits") if outputs.get(name) is not None]
        if not names:
            raise ValueError(
                f"Knowledge distillation compares logits, and {type(loss_inputs.model).__name__}'s output has none "
                f"(keys: {list(outputs.keys())}): distil a task head (classifier, tagger, QA or seq2seq)."
            )
        cached = loss_inputs.batch_extras.get(TEACHER_LOGITS_KEY)
        if cached is None and self.teacher is None:
            raise ValueError(
                "Knowledge distillation has neither a teacher model nor a 'teacher_logits' batch entry: pass "
                "teacher_model to SoraTrainer, or add the column with cache_teacher_logits() and collate it "
                "with DistillationCollator."
            )
        teacher_outputs = {"logits": cached} if cached is not None else self.teacher(loss_inputs)
        return sum(self._kl(outputs[name], teacher_outputs[name], loss_inputs) for name in names) / len(names)

    def _kl(self, student_logits: torch.Tensor, teacher_logits: torch.Tensor, loss_inputs: LossInputs):
        if teacher_logits.shape[-1] != student_logits.shape[-1]:
            raise ValueError(
                f"The teacher gives {teacher_logits.shape[-1]} logits per example but the student has "
                f"{student_logits.shape[-1]} labels: distil from a teacher fine-tuned on the same label set."
            )
        mask = None
        if student_logits.dim() == 3:  # token-level logits: positions must align one to one
            if has_teacher_inputs(loss_inputs.batch_extras):
                raise ValueError(
                    "Token-level distillation needs the teacher and the student to share a tokenizer; this batch "
                    "carries the teacher's own tokenization. Use a sequence-level head, or a teacher with the "
                    "student's tokenizer."
                )
            if teacher_logits.shape != student_logits.shape:
                raise ValueError(
                    f"Teacher logits {tuple(teacher_logits.shape)} and student logits "
                    f"{tuple(student_logits.shape)} do not align position by position."
                )
            mask = _position_mask(loss_inputs, student_logits)
        return soft_label_kl(student_logits, teacher_logits.to(student_logits.device), self.temperature, mask)


def _position_mask(loss_inputs: LossInputs, logits: torch.Tensor) -> torch.Tensor | None:
    """The positions token-level KD compares: target positions of a decoder, real tokens of an encoder."""
    inputs = loss_inputs.inputs
    labels = inputs.get("labels")
    is_decoder_output = loss_inputs.outputs.get("encoder_last_hidden_state") is not None
    if is_decoder_output and labels is not None and labels.shape == logits.shape[:2]:
        return labels != -100
    mask = inputs.get("attention_mask")
    return mask if mask is not None and mask.shape == logits.shape[:2] else None
