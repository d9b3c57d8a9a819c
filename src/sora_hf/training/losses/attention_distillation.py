"""Attention distillation: match the student's attention maps to the teacher's, head by head."""

import torch
from transformers import PretrainedConfig, PreTrainedModel

from .base import LossInputs, TrainingLoss
from .layer_map import check_layer_map, default_layer_map
from .teacher import TEACHER_INPUT_KEYS, DistillationTeacher, as_teacher, has_teacher_inputs


class AttentionDistillationLoss(TrainingLoss):
    """Squared error between student and teacher attention probabilities over a layer map (1 = first layer).

    The maps must have the same shape: the same number of heads and, through a shared tokenizer, the same
    positions; otherwise a `ValueError` says which. Each attention row contributes its squared error summed over
    keys, averaged over real query tokens, heads and mapped layers. A squared error rather than a KL because the
    student's returned maps are taken after attention dropout, where a KL would meet zero probabilities.
    """

    name = "attention"
    batch_keys = TEACHER_INPUT_KEYS

    def __init__(
        self,
        teacher: DistillationTeacher | PreTrainedModel,
        student_config: PretrainedConfig,
        weight: float = 1.0,
        layer_map: list[tuple[int, int]] | None = None,
    ):
        super().__init__(weight=weight)
        if teacher is None:
            raise ValueError(
                "Attention distillation needs a teacher model (cached logits hold no attention maps)."
            )
        self.teacher = as_teacher(teacher)
        self.teacher.output_attentions = True
        teacher_config = self.teacher.config
        student_heads, teacher_heads = student_config.num_attention_heads, teacher_config.num_attention_heads
        if student_heads != teacher_heads:
            raise ValueError(
                f"Attention distillation matches heads one to one, but the student has {student_heads} heads and "
                f"the teacher {teacher_heads}: set distill_attention_weight=0, or pick models with equal heads."
            )
        student_layers, teacher_layers = student_config.num_hidden_layers, teacher_config.num_hidden_layers
        self.layer_map = list(layer_map) if layer_map else default_layer_map(student_layers, teacher_layers)
        check_layer_map(self.layer_map, student_layers, teacher_layers, first=1, what="attention")

    def model_kwargs(self) -> dict[str, bool]:
        return {"output_attentions": True}

    def forward(self, loss_inputs: LossInputs) -> torch.Tensor:
        if has_teacher_inputs(loss_inputs.batch_extras):
            raise ValueError(
                "Attention distillation is token-level and needs the teacher and the student to share a tokenizer; "
                "this batch carries the teacher's own tokenization. Set distill_attention_weight=0 for a teacher "
                "with another tokenizer."
            )
        student_maps = loss_inputs.outputs.get("attentions")
        teacher_maps = self.teacher(loss_inputs).get("attentions")
        if not student_maps or not teacher_maps:
            raise ValueError(
                "Attention distillation got no attention maps: sdpa/flash attention return none. Load both models "
                "with attn_implementation='eager' (SoraTrainer's arguments do this for you)."
            )
        mask = loss_inputs.inputs.get("attention_mask")
        losses = []
        for student_layer, teacher_layer in self.layer_map:
            student = student_maps[student_layer - 1]
            teacher = teacher_maps[teacher_layer - 1].to(student.dtype)
            if student.shape != teacher.shape:
                raise ValueError(
                    f"Student attention {tuple(student.shape)} (layer {student_layer}) and teacher attention "
                    f"{tuple(teacher.shape)} (layer {teacher_layer}) differ in shape: they need the same heads "
                    "and the same tokenization."
                )
            per_row = (student - teacher).pow(2).sum(-1)  # (batch, heads, queries)
            if mask is None:
                losses.append(per_row.mean())
            else:
                rows = mask[:, None, :].to(per_row.dtype).expand_as(per_row)
                losses.append((per_row * rows).sum() / rows.sum().clamp_min(1.0))
        return torch.stack(losses).mean()
