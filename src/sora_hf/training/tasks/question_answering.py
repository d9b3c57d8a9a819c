"""Fine-tune a Sora (or any transformers) extractive QA model on the WordNet-derived task or the user's files."""

import re
from dataclasses import dataclass, field

import numpy as np
from transformers import AutoTokenizer, DataCollatorWithPadding

from ...data.tasks import load_task_dataset
from ...errors import UserInputError
from ...metrics import load_metric
from .base import RunArguments, TaskRun, TaskSpec, card_dataset
from .user_data import user_data_files

BUILT_IN_DATASET = "sora_hf/qa"
BUILT_IN_DESCRIPTION = "WordNet 3.0: gloss = question, example sentence = context, lemma = answer"
WORD = re.compile(r"\w+")


@dataclass
class QuestionAnsweringArguments(RunArguments):
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
    run_baseline: bool = field(
        default=True, metadata={"help": "Also score the span with the most word overlap with the question."}
    )


def load_question_answering_data(args: QuestionAnsweringArguments):
    """The built-in WordNet QA split, or the user's files with named columns."""
    if args.train_file is None:
        return load_task_dataset("qa")
    return load_task_dataset(
        "qa",
        data_files=user_data_files(args),
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


BOOKKEEPING = ["example_id", "offset_mapping"]


def check_window(data, tokenizer, max_length: int, doc_stride: int) -> None:
    """Every question must leave more than `doc_stride` tokens of context in a window (the tokenizer panics else)."""
    lengths = [
        len(ids)
        for ids in tokenizer([q.strip() for q in data["question"]], add_special_tokens=False)["input_ids"]
    ]
    room = max_length - max(lengths, default=0) - tokenizer.num_special_tokens_to_add(pair=True)
    if room <= doc_stride:
        raise UserInputError(
            f"--max_length {max_length} leaves {max(room, 0)} context tokens beside the longest question "
            f"({max(lengths)} tokens), not more than --doc_stride {doc_stride}: raise --max_length or lower --doc_stride."
        )


class QuestionAnsweringTask(TaskSpec):
    """Extractive QA: answer spans over question + context windows, SQuAD exact match and F1."""

    name = "qa"
    arguments_class = QuestionAnsweringArguments
    auto_class = "AutoModelForQuestionAnswering"
    peft_task_type = "QUESTION_ANS"
    pipeline_task = "question-answering"
    results_file = "qa_results.json"
    dataset_name = BUILT_IN_DATASET
    dataset_description = BUILT_IN_DESCRIPTION
    headline_metric = "f1"

    def load_data(self, args):
        return load_question_answering_data(args)

    def load_processor(self, checkpoint, args):
        # Byte-level BPE: a leading space makes a context's first word encode as it does mid-sentence.
        return AutoTokenizer.from_pretrained(checkpoint, add_prefix_space=True)

    def featurize(self, run: TaskRun, split, data):
        check_window(data, run.processor, run.args.max_length, run.args.doc_stride)
        features = data.map(
            prepare_features,
            batched=True,
            remove_columns=data.column_names,
            fn_kwargs=dict(
                tokenizer=run.processor, max_length=run.args.max_length, doc_stride=run.args.doc_stride
            ),
        )
        return features.remove_columns(BOOKKEEPING) if split == "train" else features

    def model_columns(self, run: TaskRun, split, features):
        return features if split == "train" else features.remove_columns(BOOKKEEPING)

    def collator(self, run: TaskRun):
        return DataCollatorWithPadding(run.processor, pad_to_multiple_of=8)

    def _score(self, run: TaskRun, examples, features, start_logits, end_logits):
        predictions = postprocess_predictions(
            examples, features, start_logits, end_logits, run.args.n_best_size, run.args.max_answer_length
        )
        references = [answers["text"] for answers in examples["answers"]]
        return predictions, load_metric("squad_qa").compute(predictions=predictions, references=references)

    def compute_metrics(self, run: TaskRun):
        def compute_metrics(prediction):
            start_logits, end_logits = prediction.predictions
            return self._score(run, run.validation, run.features["validation"], start_logits, end_logits)[1]

        return compute_metrics

    def score_test(self, run: TaskRun):
        # compute_metrics knows the validation windows only: predict the test windows, then score them here.
        run.trainer.compute_metrics = None
        output = run.trainer.predict(
            self.model_columns(run, "test", run.features["test"]), metric_key_prefix="test"
        )
        predictions, scores = self._score(run, run.test, run.features["test"], *output.predictions)
        metrics = {
            **{key: value for key, value in output.metrics.items() if key.startswith("test_")},
            **{f"test_{key}": value for key, value in scores.items()},
        }
        return metrics, predictions, output

    def baseline(self, run: TaskRun):
        max_words = max(len(WORD.findall(answers["text"][0])) for answers in run.train["answers"])
        predictions = word_overlap_baseline(list(run.test["question"]), list(run.test["context"]), max_words)
        references = [answers["text"] for answers in run.test["answers"]]
        baseline = load_metric("squad_qa").compute(predictions=predictions, references=references)
        return {
            "baseline_word_overlap": {**baseline, "max_words": max_words},
            "baseline_word_overlap_f1": baseline["f1"],
        }

    def extra_results(self, run: TaskRun, output, predictions):
        test = run.test
        return {
            "examples": [
                {"question": q, "context": c, "answer": a["text"][0], "prediction": p}
                for q, c, a, p in zip(
                    test["question"][:5], test["context"][:5], test["answers"][:5], predictions
                )
            ],
            "windows": {"train": len(run.features["train"]), "test": len(run.features["test"])},
        }

    def summary(self, run: TaskRun, results: dict) -> str:
        dataset_name, source = card_dataset(run)
        test = results["test"]
        summary = (
            f"Extractive question answering, fine-tuned from `{run.args.model_name_or_path}` on {dataset_name}"
            f"{source}: {len(run.train):,} training questions. Test ({len(run.test):,} questions): "
            f"exact match {test['test_exact_match']:.1f}, F1 {test['test_f1']:.1f}"
        )
        if "baseline_word_overlap" in results:
            baseline = results["baseline_word_overlap"]
            summary += (
                f"; word-overlap baseline (the span of at most {baseline['max_words']} words sharing the most words "
                f"with the question) exact match {baseline['exact_match']:.1f}, F1 {baseline['f1']:.1f}"
            )
        return summary
