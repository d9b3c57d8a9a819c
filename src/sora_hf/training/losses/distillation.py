"""Knowledge distillation: a frozen teacher's soft labels (KL with temperature) mixed with the hard-label loss."""

import math
import weakref
from typing import Any

import torch
from torch import nn
from transformers import AutoModelForSequenceClassification, PreTrainedModel

from .base import LossInputs, TrainingLoss

# Batch entries the teacher reads when it has its own tokenizer (written by `DistillationCollator`).
TEACHER_PREFIX = "teacher_"
TEACHER_INPUT_KEYS = ("teacher_input_ids", "teacher_attention_mask", "teacher_token_type_ids")
TEACHER_LOGITS_KEY = "teacher_logits"
_STUDENT_INPUT_KEYS = ("input_ids", "attention_mask", "token_type_ids")
# How hidden states are compared: position by position (shared tokenizer), or one pooled vector per sequence.
HIDDEN_POOLINGS = ("token", "mean", "first")


def freeze_teacher(model: PreTrainedModel) -> PreTrainedModel:
    """Eval mode and no gradients: the teacher is read, never trained."""
    model.eval()
    model.requires_grad_(False)
    return model


def load_teacher(name_or_path: str, **kwargs: Any) -> PreTrainedModel:
    """A frozen sequence-classification teacher from a folder or Hub name (any architecture)."""
    return freeze_teacher(AutoModelForSequenceClassification.from_pretrained(name_or_path, **kwargs))


def prepare_teacher(accelerator, args, teacher_model: PreTrainedModel | None) -> PreTrainedModel | None:
    """Load the teacher named in `args` if none is given, freeze it and place it through accelerate.

    `evaluation_mode=True` moves it to the device and applies mixed precision, but does not wrap it for DDP: the
    teacher has no gradients to synchronise. It never reaches the optimizer, which only sees the student and the
    loss terms' own parameters.
    """
    if teacher_model is None and getattr(args, "teacher_name_or_path", None):
        if getattr(args, "distill_use_cached_logits", False):
            return None  # cached logits: no teacher forward during training
        teacher_model = load_teacher(args.teacher_name_or_path)
    if teacher_model is None:
        return None
    return accelerator.prepare_model(freeze_teacher(teacher_model), evaluation_mode=True)


def has_teacher_inputs(batch_extras: dict[str, Any]) -> bool:
    """Whether the batch carries the teacher's own tokenization (its tokenizer differs from the student's)."""
    return any(key in batch_extras for key in TEACHER_INPUT_KEYS)


class DistillationTeacher:
    """A frozen teacher shared by the distillation terms: at most one forward per micro-batch.

    Deliberately not an `nn.Module`, so its parameters never join the loss terms' (and so the optimizer's).
    """

    def __init__(self, model: PreTrainedModel):
        self.model = freeze_teacher(model)
        self.output_hidden_states = False
        self.output_attentions = False
        self._last_inputs = None
        self._last_outputs = None

    @property
    def config(self):
        return self.model.config

    def __call__(self, loss_inputs: LossInputs):
        """The teacher's outputs for this micro-batch (computed once, whichever term asks first)."""
        if self._last_inputs is not None and self._last_inputs() is loss_inputs:
            return self._last_outputs
        extras = loss_inputs.batch_extras
        if has_teacher_inputs(extras):
            inputs = {key[len(TEACHER_PREFIX) :]: extras[key] for key in TEACHER_INPUT_KEYS if key in extras}
        else:
            inputs = {
                key: loss_inputs.inputs[key] for key in _STUDENT_INPUT_KEYS if key in loss_inputs.inputs
            }
        self.model.eval()  # a caller's model.train() must not switch dropout on in the teacher
        with torch.no_grad():
            outputs = self.model(
                **inputs,
                output_hidden_states=self.output_hidden_states,
                output_attentions=self.output_attentions,
            )
        self._last_inputs = weakref.ref(loss_inputs)
        self._last_outputs = outputs
        return outputs


def as_teacher(teacher: "DistillationTeacher | PreTrainedModel | None") -> DistillationTeacher | None:
    """Wrap a bare model so that a term never registers the teacher as its submodule."""
    if teacher is None or isinstance(teacher, DistillationTeacher):
        return teacher
    return DistillationTeacher(teacher)


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


def _check_alpha_and_temperature(alpha: float, temperature: float) -> None:
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
        _check_alpha_and_temperature(alpha, temperature)
        super().__init__(weight=float(alpha))
        self.teacher = as_teacher(teacher)
        self.temperature = float(temperature)

    @property
    def task_loss_scale(self) -> float:
        return 1.0 - self.weight

    def forward(self, loss_inputs: LossInputs) -> torch.Tensor:
        student_logits = loss_inputs.outputs["logits"]
        teacher_logits = loss_inputs.batch_extras.get(TEACHER_LOGITS_KEY)
        if teacher_logits is None:
            if self.teacher is None:
                raise ValueError(
                    "Knowledge distillation has neither a teacher model nor a 'teacher_logits' batch entry: pass "
                    "teacher_model to SoraTrainer, or add the column with cache_teacher_logits() and collate it "
                    "with DistillationCollator."
                )
            teacher_logits = self.teacher(loss_inputs)["logits"]
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
            mask = loss_inputs.inputs.get("attention_mask")
        return soft_label_kl(student_logits, teacher_logits.to(student_logits.device), self.temperature, mask)


def parse_layer_map(layer_map: "str | list[tuple[int, int]] | None") -> list[tuple[int, int]] | None:
    """`"2:3,4:6"` (student:teacher pairs) → `[(2, 3), (4, 6)]`; `None` stays `None` (the default map)."""
    if layer_map is None or isinstance(layer_map, list | tuple):
        return None if layer_map is None else [(int(s), int(t)) for s, t in layer_map]
    pairs = []
    for item in str(layer_map).split(","):
        student, sep, teacher = item.strip().partition(":")
        if not sep or not student.strip().isdigit() or not teacher.strip().isdigit():
            raise ValueError(
                f"Layer map {layer_map!r}: write comma-separated student:teacher layer pairs such as '2:3,4:6'."
            )
        pairs.append((int(student), int(teacher)))
    return pairs


def default_layer_map(student_layers: int, teacher_layers: int) -> list[tuple[int, int]]:
    """Student layer i (1-based) ↦ teacher layer round(i · T / S): the student's layers spread over the teacher's."""
    return [
        (i, (i * teacher_layers + student_layers // 2) // student_layers)
        for i in range(1, student_layers + 1)
    ]


def check_layer_map(
    layer_map: list[tuple[int, int]], student_layers: int, teacher_layers: int, first: int, what: str
) -> None:
    """Every pair must name an existing layer (`first` = 0 when the embeddings count as layer 0)."""
    if not layer_map:
        raise ValueError(f"The {what} layer map is empty: give at least one student:teacher pair.")
    for student, teacher in layer_map:
        if not first <= student <= student_layers or not first <= teacher <= teacher_layers:
            raise ValueError(
                f"The {what} layer map pair {student}:{teacher} is out of range: the student has layers "
                f"{first}..{student_layers}, the teacher {first}..{teacher_layers}."
            )


def check_distillation_arguments(args) -> None:
    """Validate the `distill_*` fields of `SoraTrainingArguments` (a bad value raises a `ValueError` naming it)."""
    _check_alpha_and_temperature(args.distill_alpha, args.distill_temperature)
    for name in ("distill_hidden_weight", "distill_attention_weight"):
        value = getattr(args, name)
        if (
            isinstance(value, bool)
            or not isinstance(value, int | float)
            or not math.isfinite(value)
            or value < 0
        ):
            raise ValueError(f"{name} must be a number >= 0 (0 switches the term off); got {value!r}.")
    if args.distill_hidden_pooling not in HIDDEN_POOLINGS:
        raise ValueError(
            f"distill_hidden_pooling must be one of {HIDDEN_POOLINGS}; got {args.distill_hidden_pooling!r}."
        )
    parse_layer_map(args.distill_hidden_layer_map)
    parse_layer_map(args.distill_attention_layer_map)
    if args.distill_use_cached_logits and (
        args.distill_hidden_weight > 0 or args.distill_attention_weight > 0
    ):
        raise ValueError(
            "distill_use_cached_logits skips the teacher forward, but the hidden-state and attention terms need it: "
            "set distill_hidden_weight and distill_attention_weight to 0, or distill_use_cached_logits=False."
        )


def build_distillation_terms(args, model=None, teacher_model=None) -> list[TrainingLoss]:
    """The distillation terms `SoraTrainingArguments` asks for: KD, plus hidden-state and attention matching."""
    # imported here: both modules build on this one's helpers
    from .attention_distillation import AttentionDistillationLoss
    from .hidden_state_distillation import HiddenStateDistillationLoss

    cached = getattr(args, "distill_use_cached_logits", False)
    if teacher_model is None and not cached:
        if getattr(args, "teacher_name_or_path", None):
            raise ValueError(
                "teacher_name_or_path is set but no teacher was loaded: build SoraTrainer (it loads the teacher), "
                "or pass teacher_model=load_teacher(...)."
            )
        return []
    if not hasattr(args, "distill_alpha"):
        raise ValueError("A teacher needs SoraTrainingArguments (distill_alpha, distill_temperature, ...).")
    student_config = model.config if model is not None else None
    teacher_config = teacher_model.config if teacher_model is not None else None
    if (
        student_config is not None
        and teacher_config is not None
        and getattr(teacher_config, "num_labels", None) != getattr(student_config, "num_labels", None)
    ):
        raise ValueError(
            f"The teacher has {teacher_config.num_labels} labels but the student has {student_config.num_labels}: "
            "distil from a teacher fine-tuned on the same label set (same num_labels and label order)."
        )
    teacher = as_teacher(teacher_model)
    terms: list[TrainingLoss] = []
    if args.distill_alpha > 0:
        terms.append(KnowledgeDistillationLoss(teacher, args.distill_alpha, args.distill_temperature))
    if args.distill_hidden_weight > 0:
        terms.append(
            HiddenStateDistillationLoss(
                teacher,
                student_config,
                weight=args.distill_hidden_weight,
                layer_map=parse_layer_map(args.distill_hidden_layer_map),
                pooling=args.distill_hidden_pooling,
            )
        )
    if args.distill_attention_weight > 0:
        # sdpa and flash attention return no weights; eager does, on both sides
        for module in (model, teacher_model):
            module.set_attn_implementation("eager")
        terms.append(
            AttentionDistillationLoss(
                teacher,
                student_config,
                weight=args.distill_attention_weight,
                layer_map=parse_layer_map(args.distill_attention_layer_map),
            )
        )
    return terms
