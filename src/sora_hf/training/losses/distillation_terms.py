"""The distillation terms `SoraTrainingArguments` asks for (KD, hidden states, attention), and their checks."""

import math

from .attention_distillation import AttentionDistillationLoss
from .base import TrainingLoss
from .distillation import KnowledgeDistillationLoss, check_alpha_and_temperature
from .hidden_state_distillation import HIDDEN_POOLINGS, HiddenStateDistillationLoss
from .layer_map import parse_layer_map
from .teacher import as_teacher


def check_distillation_arguments(args) -> None:
    """Validate the `distill_*` fields of `SoraTrainingArguments` (a bad value raises a `ValueError` naming it)."""
    check_alpha_and_temperature(args.distill_alpha, args.distill_temperature)
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
        # sdpa and flash attention return no weights; the caller chooses eager (run_task does for this flag)
        for role, module in (("student", model), ("teacher", teacher_model)):
            if module is not None and module.config._attn_implementation != "eager":
                raise ValueError(
                    f"distill_attention_weight compares attention weights, which only eager attention returns; the "
                    f"{role} uses {module.config._attn_implementation!r}: call "
                    "model.set_attn_implementation('eager') on student and teacher (run_task does) before training."
                )
        terms.append(
            AttentionDistillationLoss(
                teacher,
                student_config,
                weight=args.distill_attention_weight,
                layer_map=parse_layer_map(args.distill_attention_layer_map),
            )
        )
    return terms
