"""Few-shot accuracy vs k labelled examples per class: Sora SetFit-style vs TF-IDF + LR vs plain fine-tuning.

For each task (sentiment, package_topics), k and seed, the same k examples per class (drawn from the train split
with that seed) train three classifiers, all scored on the same test texts:
  - sora-setfit: `sora_hf.fewshot.train_few_shot` on the packaged `sora` (contrastive pairs + logistic regression)
  - tfidf-lr: TF-IDF word 1-2-grams + char 2-5-grams, logistic regression (scikit-learn)
  - sora-finetune: `SoraForSequenceClassification` from the packaged `sora`, `SoraTrainer`, cross-entropy

    OMP_NUM_THREADS=1 python examples/few_shot_comparison.py --k 8 16 32 64 --seeds 0 1 2 \
        --output model_cards/sora-few-shot

writes <output>.json (every run, rewritten after each), <output>.md (mean ± std per task, method, k) and
<output>.png (accuracy vs k, one panel per task).
"""

from __future__ import annotations

import argparse
import json
import random
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

import sora_hf
from sora_hf.data.tasks import load_task_dataset
from sora_hf.fewshot import train_few_shot

METHODS = ("sora-setfit", "tfidf-lr", "sora-finetune")


def sample_k(dataset, k: int, seed: int) -> tuple[list[str], list[int]]:
    """k examples per class from `dataset` (text, label), drawn with `seed`."""
    rng = random.Random(seed)
    by_label: dict[int, list[int]] = {}
    for index, label in enumerate(dataset["label"]):
        by_label.setdefault(label, []).append(index)
    chosen = sorted(i for label in sorted(by_label) for i in rng.sample(by_label[label], k))
    return [dataset["text"][i] for i in chosen], [dataset["label"][i] for i in chosen]


def tfidf_lr(texts, labels, test_texts, seed: int) -> np.ndarray:
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline, make_union

    features = make_union(
        TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True),
        TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 5), sublinear_tf=True),
    )
    model = make_pipeline(features, LogisticRegression(max_iter=2000, C=10.0, random_state=seed))
    return model.fit(texts, labels).predict(test_texts)


def sora_finetune(texts, labels, test_texts, seed: int, num_labels: int, epochs: int) -> np.ndarray:
    from datasets import Dataset
    from transformers import AutoTokenizer, DataCollatorWithPadding, TrainingArguments, set_seed

    from sora_hf import SoraForSequenceClassification
    from sora_hf.training.trainer import SoraTrainer

    path = str(sora_hf.packaged_checkpoint_path("sora"))
    tokenizer = AutoTokenizer.from_pretrained(path)
    set_seed(seed)
    model = SoraForSequenceClassification.from_pretrained(path, num_labels=num_labels)

    def tokenize(batch):
        return tokenizer(batch["text"], truncation=True, max_length=128)

    train = Dataset.from_dict({"text": texts, "label": labels}).map(
        tokenize, batched=True, remove_columns=["text"]
    )
    with tempfile.TemporaryDirectory() as output_dir:
        args = TrainingArguments(
            output_dir=output_dir,
            num_train_epochs=epochs,
            per_device_train_batch_size=16,
            learning_rate=5e-5,
            warmup_steps=0.1,
            seed=seed,
            save_strategy="no",
            report_to="none",
            logging_strategy="no",
            disable_tqdm=True,
        )
        trainer = SoraTrainer(
            model=model, args=args, train_dataset=train, data_collator=DataCollatorWithPadding(tokenizer)
        )
        trainer.train()
    model.eval()
    predictions = []
    with torch.inference_mode():
        for start in range(0, len(test_texts), 64):
            batch = tokenizer(
                test_texts[start : start + 64],
                truncation=True,
                max_length=128,
                padding=True,
                return_tensors="pt",
            )
            predictions.append(model(**batch).logits.argmax(-1).numpy())
    return np.concatenate(predictions)


def summarize(runs: list[dict]) -> list[dict]:
    rows = {}
    for run in runs:
        rows.setdefault((run["task"], run["method"], run["k"]), []).append(run["accuracy"])
    return [
        {"task": t, "method": m, "k": k, "mean": float(np.mean(a)), "std": float(np.std(a)), "seeds": len(a)}
        for (t, m, k), a in sorted(rows.items())
    ]


def write_outputs(output: Path, runs: list[dict], settings: dict) -> None:
    summary = summarize(runs)
    output.with_suffix(".json").write_text(
        json.dumps({"settings": settings, "summary": summary, "runs": runs}, indent=2)
    )
    lines = [
        "| task | k / class | " + " | ".join(METHODS) + " |",
        "| --- | --- | " + " | ".join("---" for _ in METHODS) + " |",
    ]
    cells = {(row["task"], row["method"], row["k"]): row for row in summary}
    for task, k in sorted({(row["task"], row["k"]) for row in summary}):
        values = []
        for method in METHODS:
            row = cells.get((task, method, k))
            values.append(f"{row['mean']:.3f} ± {row['std']:.3f} (n={row['seeds']})" if row else "—")
        lines.append(f"| {task} | {k} | " + " | ".join(values) + " |")
    majority = ", ".join(f"{task}: {value:.3f}" for task, value in settings["majority"].items())
    lines += ["", f"Majority class (test): {majority}. Test texts: {settings['test_sizes']}."]
    output.with_suffix(".md").write_text("\n".join(lines) + "\n")

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    tasks = sorted({row["task"] for row in summary})
    figure, axes = plt.subplots(1, len(tasks), figsize=(5 * len(tasks), 4), squeeze=False)
    for axis, task in zip(axes[0], tasks):
        for method in METHODS:
            points = [row for row in summary if row["task"] == task and row["method"] == method]
            if points:
                axis.errorbar(
                    [p["k"] for p in points],
                    [p["mean"] for p in points],
                    yerr=[p["std"] for p in points],
                    marker="o",
                    capsize=3,
                    label=method,
                )
        axis.axhline(settings["majority"][task], color="gray", linestyle=":", label="majority class")
        axis.set_xscale("log", base=2)
        ks = sorted({row["k"] for row in summary if row["task"] == task})
        axis.set_xticks(ks, [str(k) for k in ks])
        axis.set_xlabel("labelled examples per class (k)")
        axis.set_ylabel("test accuracy")
        axis.set_title(task)
        axis.legend()
    figure.tight_layout()
    figure.savefig(output.with_suffix(".png"), dpi=120)
    plt.close(figure)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--tasks", nargs="+", default=["sentiment", "package_topics"])
    parser.add_argument("--k", nargs="+", type=int, default=[8, 16, 32, 64])
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--methods", nargs="+", default=list(METHODS), choices=METHODS)
    parser.add_argument(
        "--max_test_samples", type=int, default=None, help="score N test texts drawn at random (seed 0)"
    )
    parser.add_argument("--num_iterations", type=int, default=20)
    parser.add_argument("--max_pairs", type=int, default=1280)
    parser.add_argument("--finetune_epochs", type=int, default=10)
    parser.add_argument("--output", default="model_cards/sora-few-shot")
    parser.add_argument(
        "--merge",
        nargs="+",
        default=None,
        help="only re-render <output>.* from the runs of these result JSONs",
    )
    args = parser.parse_args()
    output = Path(args.output)
    if args.merge:
        results = [json.loads(Path(path).read_text()) for path in args.merge]
        unique = {}
        for run in (run for result in results for run in result["runs"]):  # the first run of a setting wins
            unique.setdefault((run["task"], run["method"], run["k"], run["seed"]), run)
        runs = list(unique.values())
        settings = {**results[0]["settings"], "merged_from": args.merge}
        for key in ("majority", "test_sizes"):  # per task, from the first file that has it
            settings[key] = {t: v for result in reversed(results) for t, v in result["settings"][key].items()}
        write_outputs(output, runs, settings)
        return
    model_path = sora_hf.packaged_checkpoint_path("sora")
    data = {}
    for task in args.tasks:
        dataset = load_task_dataset(task)
        test = dataset["test"]
        if args.max_test_samples is not None and args.max_test_samples < len(test):
            # a seeded random subset: the splits keep the source files' order (sentiment's is sorted by label)
            test = test.shuffle(seed=0).select(range(args.max_test_samples))
        data[task] = (
            dataset["train"],
            test["text"],
            np.array(test["label"]),
            dataset["train"].features["label"].names,
        )
    settings = {
        **vars(args),
        "majority": {t: float(np.mean(d[2] == np.bincount(d[2]).argmax())) for t, d in data.items()},
        "test_sizes": {t: len(d[1]) for t, d in data.items()},
    }
    runs = []
    for k in args.k:
        for task, (train, test_texts, test_labels, names) in data.items():
            for seed in args.seeds:
                texts, labels = sample_k(train, k, seed)
                for method in args.methods:
                    started = time.time()
                    if method == "sora-setfit":
                        classifier = train_few_shot(
                            model_path,
                            texts,
                            labels,
                            num_iterations=args.num_iterations,
                            max_pairs=args.max_pairs,
                            seed=seed,
                        )
                        predictions = np.array(classifier.predict(test_texts))
                    elif method == "tfidf-lr":
                        predictions = tfidf_lr(texts, labels, test_texts, seed)
                    else:
                        predictions = sora_finetune(
                            texts, labels, test_texts, seed, len(names), args.finetune_epochs
                        )
                    accuracy = float(np.mean(predictions == test_labels))
                    runs.append(
                        {
                            "task": task,
                            "method": method,
                            "k": k,
                            "seed": seed,
                            "accuracy": accuracy,
                            "seconds": round(time.time() - started, 1),
                        }
                    )
                    print(json.dumps(runs[-1]), flush=True)
                    write_outputs(output, runs, settings)


if __name__ == "__main__":
    main()
