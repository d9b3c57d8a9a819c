"""The fine-tuning tasks as specs for `run_task`: one module per kind of head."""

from ..task_names import TASKS
from .base import RunArguments, TaskRun, TaskSpec


def task_specs() -> dict[str, TaskSpec]:
    """Every task by name (imported on first use: each module pulls in its own libraries)."""
    from .classification import ClassificationTask, SentimentTask
    from .multimodal import EasyVQATask, SpokenCommandsTask
    from .question_answering import QuestionAnsweringTask
    from .seq2seq import DialogueTask, SummarizationTask, TranslationTask
    from .token_classification import TokenClassificationTask

    specs = [
        ClassificationTask(),
        SentimentTask(),
        TokenClassificationTask(),
        QuestionAnsweringTask(),
        TranslationTask(),
        SummarizationTask(),
        DialogueTask(),
        EasyVQATask(),
        SpokenCommandsTask(),
    ]
    return {spec.name: spec for spec in specs}


def get_task(name: str) -> TaskSpec:
    """The spec of task `name`; a `ValueError` listing the tasks for an unknown one."""
    specs = task_specs()
    if name not in specs:
        raise ValueError(f"Unknown task {name!r}; choose one of {', '.join(TASKS)}.")
    return specs[name]


__all__ = ["RunArguments", "TaskRun", "TaskSpec", "get_task", "task_specs"]
