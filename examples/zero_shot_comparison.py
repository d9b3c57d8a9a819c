"""Zero-shot accuracy in the sentence space: the packaged `sora` vs all-MiniLM-L6-v2 vs the majority class.

Each text is scored against "This text is about {label}." for every label, by cosine similarity of sentence
embeddings (`sora_hf.zero_shot.classify_embeddings`, the scoring of `pipeline("zero-shot-classification")`); both
encoders are used the same way, through sentence-transformers. Tasks: the sentiment test split (negative /
neutral / positive) and package_topics (Debian package description → section).

    OMP_NUM_THREADS=1 python examples/zero_shot_comparison.py --output model_cards/sora-zero-shot

writes <output>.json, <output>.md (the table) and <output>.png (a bar chart).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

import sora_hf
from sora_hf.data.tasks import load_task_dataset, package_topics
from sora_hf.training.sentence_distillation import resolve_sentence_teacher
from sora_hf.zero_shot import DEFAULT_HYPOTHESIS_TEMPLATE, classify_embeddings

# The words a label is written as in the hypothesis; sentiment's names are already words.
LABEL_WORDS = {"sentiment": None, "package_topics": package_topics.LABEL_DESCRIPTIONS}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--tasks", nargs="+", default=["sentiment", "package_topics"])
    parser.add_argument("--hypothesis_template", default=DEFAULT_HYPOTHESIS_TEMPLATE)
    parser.add_argument(
        "--max_test_samples", type=int, default=None, help="score N test texts drawn at random (seed 0)"
    )
    parser.add_argument("--output", default="model_cards/sora-zero-shot")
    args = parser.parse_args()

    from sentence_transformers import SentenceTransformer

    encoders = {
        "sora": SentenceTransformer(str(sora_hf.packaged_checkpoint_path("sora"))),
        "all-MiniLM-L6-v2": SentenceTransformer(resolve_sentence_teacher("all-MiniLM-L6-v2")),
    }
    results = []
    for task in args.tasks:
        test = load_task_dataset(task)["test"]
        if args.max_test_samples is not None and args.max_test_samples < len(test):
            # a seeded random subset: the splits keep the source files' order (sentiment's is sorted by label)
            test = test.shuffle(seed=0).select(range(args.max_test_samples))
        names = test.features["label"].names
        words = LABEL_WORDS.get(task) or {name: name for name in names}
        gold = np.array(test["label"])
        majority = float(np.mean(gold == np.bincount(gold, minlength=len(names)).argmax()))
        results.append({"task": task, "model": "majority class", "accuracy": majority, "seconds": 0.0})
        for model_name, encoder in encoders.items():
            started = time.time()
            scores = classify_embeddings(
                lambda texts, encoder=encoder: encoder.encode(
                    texts, batch_size=64, normalize_embeddings=True
                ),
                test["text"],
                [words[name] for name in names],
                args.hypothesis_template,
            )
            accuracy = float(np.mean(scores.argmax(-1) == gold))
            results.append(
                {
                    "task": task,
                    "model": model_name,
                    "accuracy": accuracy,
                    "seconds": round(time.time() - started, 1),
                }
            )
            print(json.dumps(results[-1]), flush=True)
        for result in results[-3:]:
            result.update(test_texts=len(test), labels=[words[name] for name in names])

    output = Path(args.output)
    output.parent.mkdir(parents=True, exist_ok=True)
    output.with_suffix(".json").write_text(json.dumps({"settings": vars(args), "results": results}, indent=2))
    tasks = list(dict.fromkeys(r["task"] for r in results))
    models = list(dict.fromkeys(r["model"] for r in results))
    cell = {(r["task"], r["model"]): r["accuracy"] for r in results}
    lines = [
        "| task (test texts) | " + " | ".join(models) + " |",
        "| --- | " + " | ".join("---" for _ in models) + " |",
    ]
    for task in tasks:
        size = next(r["test_texts"] for r in results if r["task"] == task)
        lines.append(f"| {task} ({size}) | " + " | ".join(f"{cell[(task, m)]:.3f}" for m in models) + " |")
    lines += ["", f"Hypothesis template: {args.hypothesis_template!r}; accuracy of the top-scored label."]
    output.with_suffix(".md").write_text("\n".join(lines) + "\n")

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(6, 4))
    width = 0.8 / len(models)
    for index, model in enumerate(models):
        axis.bar(
            np.arange(len(tasks)) + index * width, [cell[(t, model)] for t in tasks], width=width, label=model
        )
    axis.set_xticks(np.arange(len(tasks)) + width * (len(models) - 1) / 2, tasks)
    axis.set_ylabel("zero-shot test accuracy")
    axis.legend()
    figure.tight_layout()
    figure.savefig(output.with_suffix(".png"), dpi=120)
    print("\n".join(lines))


if __name__ == "__main__":
    main()
