"""`sora-hf finetune --task TASK ...`: the same runs as the examples/run_<task>.py scripts."""

import argparse
import json

TASKS = ("sentiment", "ner", "qa", "translation", "summarization", "dialogue")


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "finetune",
        help="Fine-tune Sora on a task with Trainer; every flag of examples/run_<task>.py is accepted.",
        add_help=False,
    )
    parser.add_argument("--task", required=True, choices=TASKS)
    parser.set_defaults(func=run, forward_arguments=True)


def run(args: argparse.Namespace) -> int:
    from transformers import HfArgumentParser, Seq2SeqTrainingArguments, TrainingArguments

    from ..training.classification import ClassificationArguments, run_classification
    from ..training.question_answering import QuestionAnsweringArguments, run_question_answering
    from ..training.seq2seq import (
        DialogueArguments,
        SummarizationArguments,
        TranslationArguments,
        run_seq2seq,
    )
    from ..training.token_classification import TokenClassificationArguments, run_token_classification

    arguments_class, training_arguments_class, runner = {
        "sentiment": (ClassificationArguments, TrainingArguments, run_classification),
        "ner": (TokenClassificationArguments, TrainingArguments, run_token_classification),
        "qa": (QuestionAnsweringArguments, TrainingArguments, run_question_answering),
        "translation": (TranslationArguments, Seq2SeqTrainingArguments, run_seq2seq),
        "summarization": (SummarizationArguments, Seq2SeqTrainingArguments, run_seq2seq),
        "dialogue": (DialogueArguments, Seq2SeqTrainingArguments, run_seq2seq),
    }[args.task]
    parser = HfArgumentParser(
        (arguments_class, training_arguments_class), prog=f"sora-hf finetune --task {args.task}"
    )
    if training_arguments_class is Seq2SeqTrainingArguments:
        parser.set_defaults(predict_with_generate=True)  # the test split is scored on generated text
    task_args, training_args = parser.parse_args_into_dataclasses(args=args.arguments)
    results = runner(task_args, training_args)
    print(json.dumps({k: v for k, v in results.items() if k != "arguments"}, indent=2, default=str))
    return 0
