"""Extra training losses, one small class per file, composed by `SoraTrainer` (as peft keeps one folder per tuner)."""

from .adversarial_terms import build_adversarial_terms
from .base import LossInputs, TrainingLoss
from .distillation_terms import build_distillation_terms

__all__ = ["LossInputs", "TrainingLoss", "build_loss_terms"]


def build_loss_terms(args, model=None, teacher_model=None) -> list[TrainingLoss]:
    """The extra loss terms a `SoraTrainingArguments` asks for (none for plain `TrainingArguments`)."""
    terms: list[TrainingLoss] = []
    terms += build_distillation_terms(args, model, teacher_model)
    terms += build_adversarial_terms(args, model)
    return terms
