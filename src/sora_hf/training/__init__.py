"""Training Sora: `SoraTrainer` (extra loss terms, cards, shared push), its arguments, and `run_task`, the one
fine-tuning runner over the task specs in `training/tasks/`.

The names load on first use, so that light modules of this package (`task_names`) import without torch.
"""

import importlib

_EXPORTS = {
    "RunArguments": ".tasks",
    "SoraSeq2SeqTrainer": ".trainer",
    "SoraSeq2SeqTrainingArguments": ".arguments",
    "SoraTrainer": ".trainer",
    "SoraTrainingArguments": ".arguments",
    "TaskSpec": ".tasks",
    "finetune_main": ".runner",
    "get_task": ".tasks",
    "run_task": ".runner",
}


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name], __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = sorted(_EXPORTS)
