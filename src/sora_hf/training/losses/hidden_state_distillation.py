"""Hidden-state distillation: match the student's layers to the teacher's through a learned projection."""

import torch
from torch import nn
from transformers import PretrainedConfig, PreTrainedModel

from .base import LossInputs, TrainingLoss
from .layer_map import check_layer_map, default_layer_map
from .teacher import TEACHER_INPUT_KEYS, DistillationTeacher, as_teacher, has_teacher_inputs

# How hidden states are compared: position by position (shared tokenizer), or one pooled vector per sequence.
HIDDEN_POOLINGS = ("token", "mean", "first")


def _pool(hidden: torch.Tensor, mask: torch.Tensor | None, pooling: str) -> torch.Tensor:
    """One vector per sequence: the mean over real tokens, or the first token."""
    if pooling == "first":
        return hidden[:, 0]
    if mask is None:
        return hidden.mean(1)
    weights = mask.to(hidden.dtype).unsqueeze(-1)
    return (hidden * weights).sum(1) / weights.sum(1).clamp_min(1.0)


class HiddenStateDistillationLoss(TrainingLoss):
    """Mean squared error between projected student hidden states and the teacher's, over a layer map.

    `layer_map` pairs student and teacher layers (0 = embedding output, L = last layer); by default the student's
    layers spread over the teacher's. When the widths differ each pair gets a learned `nn.Linear` projection,
    trained with the student. `pooling="token"` compares every position and so needs a shared tokenizer;
    `"mean"` (mean over real tokens) and `"first"` compare one vector per sequence and work across tokenizers.
    """

    name = "hidden"
    batch_keys = TEACHER_INPUT_KEYS

    def __init__(
        self,
        teacher: DistillationTeacher | PreTrainedModel,
        student_config: PretrainedConfig,
        weight: float = 1.0,
        layer_map: list[tuple[int, int]] | None = None,
        pooling: str = "token",
    ):
        super().__init__(weight=weight)
        if teacher is None:
            raise ValueError(
                "Hidden-state distillation needs a teacher model (cached logits hold no hidden states)."
            )
        if pooling not in HIDDEN_POOLINGS:
            raise ValueError(f"distill_hidden_pooling must be one of {HIDDEN_POOLINGS}; got {pooling!r}.")
        self.teacher = as_teacher(teacher)
        self.teacher.output_hidden_states = True
        teacher_config = self.teacher.config
        student_layers, teacher_layers = student_config.num_hidden_layers, teacher_config.num_hidden_layers
        self.layer_map = list(layer_map) if layer_map else default_layer_map(student_layers, teacher_layers)
        check_layer_map(self.layer_map, student_layers, teacher_layers, first=0, what="hidden-state")
        self.pooling = pooling
        student_width, teacher_width = student_config.hidden_size, teacher_config.hidden_size
        self.projections = nn.ModuleList(
            nn.Linear(student_width, teacher_width) if student_width != teacher_width else nn.Identity()
            for _ in self.layer_map
        )

    def model_kwargs(self) -> dict[str, bool]:
        return {"output_hidden_states": True}

    def forward(self, loss_inputs: LossInputs) -> torch.Tensor:
        cross_tokenizer = has_teacher_inputs(loss_inputs.batch_extras)
        if self.pooling == "token" and cross_tokenizer:
            raise ValueError(
                "Token-level hidden-state distillation needs the teacher and the student to share a tokenizer "
                "(positions must align); this batch carries the teacher's own tokenization. Set "
                "distill_hidden_pooling='mean' or 'first' for a sequence-level match across tokenizers."
            )
        student_hidden = loss_inputs.outputs.get("hidden_states")
        teacher_hidden = self.teacher(loss_inputs).get("hidden_states")
        if not student_hidden or not teacher_hidden:
            raise ValueError(
                "Hidden-state distillation got no hidden_states: the student and the teacher must return them "
                "for output_hidden_states=True."
            )
        student_mask = loss_inputs.inputs.get("attention_mask")
        teacher_mask = (
            loss_inputs.batch_extras.get("teacher_attention_mask") if cross_tokenizer else student_mask
        )
        losses = []
        for (student_layer, teacher_layer), projection in zip(self.layer_map, self.projections, strict=True):
            student = projection(student_hidden[student_layer])
            teacher = teacher_hidden[teacher_layer].to(student.dtype)
            if self.pooling == "token":
                squared = (student - teacher).pow(2).mean(-1)
                if student_mask is None:
                    losses.append(squared.mean())
                else:
                    mask = student_mask.to(squared.dtype)
                    losses.append((squared * mask).sum() / mask.sum().clamp_min(1.0))
            else:
                student_pooled = _pool(student, student_mask, self.pooling)
                teacher_pooled = _pool(teacher, teacher_mask, self.pooling)
                losses.append((student_pooled - teacher_pooled).pow(2).mean())
        return torch.stack(losses).mean()
