"""Fine-tune a Sora (or any transformers) extractive QA model on the WordNet-derived task or the user's files."""

import json
import re
import shlex
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
from transformers import (
    AutoConfig,
    AutoModelForQuestionAnswering,
    AutoTokenizer,
    DataCollatorWithPadding,
    TrainingArguments,
)

from ..data.tasks import load_task_dataset
from ..metrics import load_metric
from ..pretrained import resolve_pretrained_name
from .finetuning import FinetuneArguments, card_dataset, training_slice, user_data_files
from .trainer import SoraTrainer

BUILT_IN_DATASET = "sora_hf/qa"
BUILT_IN_DESCRIPTION = "WordNet 3.0: gloss = question, example sentence = context, lemma = answer"
WORD = re.compile(r"\w+")


@dataclass
class QuestionAnsweringArguments(FinetuneArguments):
    """WordNet-derived extractive QA or the user's files (question, context and answer columns)."""

    question_column: str = "question"
    context_column: str = "context"
    answers_column: str = field(
        default="answers",
        metadata={
            "help": "SQuAD-style {'text', 'answer_start'} dicts, or plain answer strings in the context."
        },
    )
    answer_start_column: str | None = field(
        default=None,
        metadata={"help": "Character offset of a plain-string answer (default: its first match)."},
    )
    max_length: int = field(default=128, metadata={"help": "Tokens per window (question + context)."})
    doc_stride: int = field(default=32, metadata={"help": "Overlap of the windows of a long context."})
    max_answer_length: int = field(default=16, metadata={"help": "Longest answer span, in tokens."})
    n_best_size: int = field(default=20, metadata={"help": "Start and end candidates kept per window."})
    max_eval_samples: int | None = None
    max_test_samples: int | None = field(
        default=None, metadata={"help": "Score only the first N test questions (a fixed slice)."}
    )
    run_baseline: bool = field(
        default=True, metadata={"help": "Also score the span with the most word overlap with the question."}
    )


def load_question_answering_data(args: QuestionAnsweringArguments):
    """The built-in WordNet QA split, or the user's files with named columns."""
    if args.train_file is None:
        return load_task_dataset("qa")
    files = user_data_files(args.train_file, args.validation_file, args.test_file)
    return load_task_dataset(
        "qa",
        data_files=files,
        question_column=args.question_column,
        context_column=args.context_column,
        answers_column=args.answers_column,
        answer_start_column=args.answer_start_column,
    )


def prepare_features(batch: dict, tokenizer, max_length: int, doc_stride: int) -> dict:
    """Question + context windows with the answer's token span (the cls token 0 when a window misses it).

    Also keeps, per window, the id of its example and the character offsets of its context tokens (None
    elsewhere), which `postprocess_predictions` needs to turn logits back into text.
    """
    # Right padding puts the question first and truncates only the context, as the QA pipeline does.
    encoded = tokenizer(
        [question.strip() for question in batch["question"]],
        batch["context"],
        truncation="only_second",
        max_length=max_length,
        stride=doc_stride,
        return_overflowing_tokens=True,
        return_offsets_mapping=True,
    )
    sample_map = encoded.pop("overflow_to_sample_mapping")
    features = {**encoded, "start_positions": [], "end_positions": [], "example_id": []}
    for index, offsets in enumerate(encoded["offset_mapping"]):
        sequence_ids = encoded.sequence_ids(index)
        example = sample_map[index]
        answers = batch["answers"][example]
        start_char = answers["answer_start"][0]
        end_char = start_char + len(answers["text"][0])
        context_tokens = [i for i, sequence_id in enumerate(sequence_ids) if sequence_id == 1]
        first, last = context_tokens[0], context_tokens[-1]
        if offsets[first][0] > start_char or offsets[last][1] < end_char:
            start_token = end_token = 0  # the answer is not (wholly) in this window
        else:
            start_token = next(i for i in context_tokens if offsets[i][1] > start_char)
            end_token = next(i for i in reversed(context_tokens) if offsets[i][0] < end_char)
        features["start_positions"].append(start_token)
        features["end_positions"].append(end_token)
        features["example_id"].append(batch["id"][example])
        features["offset_mapping"][index] = [
            offset if sequence_id == 1 else None for offset, sequence_id in zip(offsets, sequence_ids)
        ]
    return features


def postprocess_predictions(
    examples,
    features,
    start_logits: np.ndarray,
    end_logits: np.ndarray,
    n_best_size: int = 20,
    max_answer_length: int = 16,
) -> list[str]:
    """The best-scoring span (start + end logit) over all windows of each example, widened to whole words."""
    windows: dict[str, list[int]] = {}
    for index, example_id in enumerate(features["example_id"]):
        windows.setdefault(example_id, []).append(index)
    offset_mappings = features["offset_mapping"]
    answers = []
    for example_id, context in zip(examples["id"], examples["context"]):
        best_score, best_span = -np.inf, (0, 0)
        for index in windows.get(example_id, []):
            offsets = offset_mappings[index]
            starts = np.argsort(start_logits[index])[::-1][:n_best_size]
            ends = np.argsort(end_logits[index])[::-1][:n_best_size]
            for start in starts:
                for end in ends:
                    # Trainer pads logits of short windows with -100: indices past the window are not tokens.
                    if start >= len(offsets) or end >= len(offsets) or offsets[start] is None:
                        continue
                    if offsets[end] is None or end < start or end - start + 1 > max_answer_length:
                        continue
                    score = start_logits[index][start] + end_logits[index][end]
                    if score > best_score:
                        best_score, best_span = score, (offsets[start][0], offsets[end][1])
        answers.append(context[slice(*widen_to_words(context, *best_span))])
    return answers


def widen_to_words(context: str, start: int, end: int) -> tuple[int, int]:
    """Grow a character span to whole words, as the question-answering pipeline does by default."""
    while start > 0 and context[start - 1].isalnum():
        start -= 1
    while end < len(context) and context[end].isalnum():
        end += 1
    return start, end


def word_overlap_baseline(questions: list[str], contexts: list[str], max_words: int) -> list[str]:
    """Named baseline: the context span (1 to `max_words` words) sharing the most words with the question.

    Candidates are every run of 1..`max_words` consecutive words of the context (words = `\\w+`, compared
    lower-cased); a span scores the number of its distinct words that occur in the question. Ties go to
    the shorter span, then the earlier one; a context without any question word answers with its first word.
    """
    predictions = []
    for question, context in zip(questions, contexts):
        question_words = {word.lower() for word in WORD.findall(question)}
        words = list(WORD.finditer(context))
        best, best_key = "", None
        for start in range(len(words)):
            for end in range(start, min(start + max_words, len(words))):
                overlap = len({w.group(0).lower() for w in words[start : end + 1]} & question_words)
                key = (-overlap, end - start, start)
                if best_key is None or key < best_key:
                    best_key, best = key, context[words[start].start() : words[end].end()]
        predictions.append(best)
    return predictions


def run_question_answering(args: QuestionAnsweringArguments, training_args: TrainingArguments) -> dict:
    """Fine-tune, evaluate on the test split, save a folder `pipeline('question-answering')` serves."""
    started, cpu_started = time.time(), time.process_time()
    output_dir = Path(training_args.output_dir)
    dataset = load_question_answering_data(args)
    train = training_slice(dataset["train"], args.max_train_samples, training_args.seed)
    validation = dataset["validation"]
    if args.max_eval_samples:
        validation = validation.select(range(min(args.max_eval_samples, len(validation))))
    test = dataset["test"]
    if args.max_test_samples:
        test = test.select(range(min(args.max_test_samples, len(test))))

    checkpoint = resolve_pretrained_name(args.model_name_or_path)
    # Byte-level BPE: a leading space makes a context's first word encode as it does mid-sentence.
    tokenizer = AutoTokenizer.from_pretrained(checkpoint, add_prefix_space=True)
    if args.from_scratch:
        model = AutoModelForQuestionAnswering.from_config(AutoConfig.from_pretrained(checkpoint))
    else:
        model = AutoModelForQuestionAnswering.from_pretrained(checkpoint)

    def featurize(split):
        return split.map(
            prepare_features,
            batched=True,
            remove_columns=split.column_names,
            fn_kwargs=dict(tokenizer=tokenizer, max_length=args.max_length, doc_stride=args.doc_stride),
        )

    bookkeeping = ["example_id", "offset_mapping"]
    train_features = featurize(train).remove_columns(bookkeeping)
    eval_features, test_features = featurize(validation), featurize(test)
    squad_qa = load_metric("squad_qa")

    def score(examples, features, start_logits, end_logits) -> tuple[list[str], dict]:
        predictions = postprocess_predictions(
            examples, features, start_logits, end_logits, args.n_best_size, args.max_answer_length
        )
        references = [answers["text"] for answers in examples["answers"]]
        return predictions, squad_qa.compute(predictions=predictions, references=references)

    def compute_metrics(prediction):
        start_logits, end_logits = prediction.predictions
        return score(validation, eval_features, start_logits, end_logits)[1]

    trainer = SoraTrainer(
        model=model,
        args=training_args,
        train_dataset=train_features,
        eval_dataset=eval_features.remove_columns(bookkeeping),
        data_collator=DataCollatorWithPadding(tokenizer, pad_to_multiple_of=8),
        processing_class=tokenizer,
        compute_metrics=compute_metrics,
    )
    trainer.train()
    train_seconds = time.time() - started
    # compute_metrics knows the validation windows only: predict the test windows, then score them here.
    trainer.compute_metrics = None
    test_output = trainer.predict(test_features.remove_columns(bookkeeping), metric_key_prefix="test")
    predictions, test_scores = score(test, test_features, *test_output.predictions)
    test_metrics = {
        **{key: value for key, value in test_output.metrics.items() if key.startswith("test_")},
        **{f"test_{key}": value for key, value in test_scores.items()},
    }
    trainer.save_model(output_dir)

    results = {
        "task": "qa",
        "metric": "f1",
        "test": test_metrics,
        "examples": [
            {"question": q, "context": c, "answer": a["text"][0], "prediction": p}
            for q, c, a, p in zip(test["question"][:5], test["context"][:5], test["answers"][:5], predictions)
        ],
        "split_sizes": {"train": len(train), "validation": len(validation), "test": len(test)},
        "windows": {"train": len(train_features), "test": len(test_features)},
        "steps": trainer.state.global_step,
        "train_seconds": train_seconds,
    }
    baseline = None
    if args.run_baseline:
        max_words = max(len(WORD.findall(answers["text"][0])) for answers in train["answers"])
        baseline_predictions = word_overlap_baseline(list(test["question"]), list(test["context"]), max_words)
        references = [answers["text"] for answers in test["answers"]]
        baseline = squad_qa.compute(predictions=baseline_predictions, references=references)
        results["baseline_word_overlap"] = {**baseline, "max_words": max_words}
        results["baseline_word_overlap_f1"] = baseline["f1"]
    results["wall_seconds"] = time.time() - started
    # CPU seconds of all this process's threads: comparable across runs when other jobs share the machine.
    results["cpu_seconds"] = time.process_time() - cpu_started
    results["command"] = shlex.join(sys.argv)
    results["arguments"] = asdict(args)
    (output_dir / "qa_results.json").write_text(json.dumps(results, indent=2, default=str))

    dataset_name, source = card_dataset(args, BUILT_IN_DATASET, BUILT_IN_DESCRIPTION)
    summary = (
        f"Extractive question answering, fine-tuned from `{args.model_name_or_path}` on {dataset_name}"
        f"{source}: {len(train):,} training questions, {trainer.state.global_step:,} steps, "
        f"{results['wall_seconds']:,.0f} s wall time. Test ({len(test):,} questions): "
        f"exact match {test_scores['exact_match']:.1f}, F1 {test_scores['f1']:.1f}"
    )
    if baseline is not None:
        summary += (
            f"; word-overlap baseline (the span of at most {max_words} words sharing the most words with the "
            f"question) exact match {baseline['exact_match']:.1f}, F1 {baseline['f1']:.1f}"
        )
    trainer.create_model_card(
        dataset=dataset_name,
        tasks="question-answering",
        metrics=test_metrics,
        dataset_split="test",
        model_description=f"{summary}.\n\nCommand: `{results['command']}`",
    )
    return results
