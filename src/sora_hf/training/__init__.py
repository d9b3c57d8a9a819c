"""Training Sora: `SoraTrainer` (extra loss terms, cards, shared push), its arguments, and `run_task`, the one
fine-tuning runner over the task specs in `training/tasks/`."""

from .arguments import SoraSeq2SeqTrainingArguments, SoraTrainingArguments
from .runner import finetune_main, run_task
from .tasks import RunArguments, TaskSpec, get_task
from .trainer import SoraSeq2SeqTrainer, SoraTrainer

__all__ = [
    "RunArguments",
    "SoraSeq2SeqTrainer",
    "SoraSeq2SeqTrainingArguments",
    "SoraTrainer",
    "SoraTrainingArguments",
    "TaskSpec",
    "finetune_main",
    "get_task",
    "run_task",
]
