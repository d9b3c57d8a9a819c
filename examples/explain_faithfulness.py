"""Faithfulness of word attributions: delete the top-k words and see how much the predicted class's probability drops.

For each of --num_texts sentiment test tweets, the words ranked by integrated gradients, by attention rollout and
--random_draws random picks of k words are deleted (k = 1 .. --max_k); the drop in the probability of the class
predicted on the full tweet is averaged. A faithful attribution drops it much more than random deletion.

    python examples/explain_faithfulness.py --model runs/r20-sentiment \
        --output model_cards/sora-sentiment-faithfulness.json

Writes the JSON and a deletion-curve PNG beside it (same name, .png).
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from pathlib import Path

import torch


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True, help="Folder of a fine-tuned sentiment classifier.")
    parser.add_argument("--output", type=Path, default=Path("model_cards/sora-sentiment-faithfulness.json"))
    parser.add_argument("--num_texts", "--num-texts", type=int, default=500)
    parser.add_argument("--max_k", "--max-k", type=int, default=5)
    parser.add_argument("--random_draws", "--random-draws", type=int, default=5)
    parser.add_argument("--n_steps", "--n-steps", type=int, default=50, help="Integrated-gradients steps.")
    parser.add_argument("--baseline", choices=("pad", "mask"), default="pad")
    parser.add_argument("--seed", type=int, default=0)
    return parser.parse_args(argv)


def class_probabilities(model, tokenizer, texts: list[str], label: int) -> list[float]:
    """The probability of class `label` for each text (one padded batch)."""
    encoding = tokenizer(
        texts,
        return_tensors="pt",
        padding=True,
        truncation=True,
        max_length=model.config.max_position_embeddings,
    )
    with torch.no_grad():
        return model(**encoding).logits.float().softmax(-1)[:, label].tolist()


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    import sora_hf  # noqa: F401  (registers Sora with the Auto classes)
    from sora_hf.atomic_files import write_text_atomic
    from sora_hf.data.tasks import load_task_dataset
    from sora_hf.interpret import delete_words, explain

    torch.manual_seed(args.seed)
    rng = random.Random(args.seed)
    model = AutoModelForSequenceClassification.from_pretrained(args.model).eval()
    tokenizer = AutoTokenizer.from_pretrained(args.model)
    test = load_task_dataset("sentiment")["test"].shuffle(seed=args.seed).select(range(args.num_texts))

    methods = ("ig", "rollout", "random")
    ks = list(range(1, args.max_k + 1))
    drops = {method: {k: [] for k in ks} for method in methods}
    deltas, relative_deltas, correct = [], [], 0
    start = time.perf_counter()
    for index, row in enumerate(test):
        text = row["text"]
        by_ig = explain(model, tokenizer, text, method="ig", n_steps=args.n_steps, baseline=args.baseline)
        by_rollout = explain(model, tokenizer, text, method="rollout")
        label, probability = by_ig.label_id, by_ig.probability
        correct += int(label == row["label"])
        deltas.append(abs(by_ig.delta))
        logit_change = by_ig.extra["logits"][label] - by_ig.extra["baseline_logits"][label]
        relative_deltas.append(abs(by_ig.delta) / max(abs(logit_change), 1e-6))
        spans = by_ig.word_spans
        variants, owners = [], []
        for k in ks:
            variants.append(delete_words(text, [spans[i] for i in by_ig.top_word_indices(k)]))
            owners.append(("ig", k))
            variants.append(
                delete_words(text, [by_rollout.word_spans[i] for i in by_rollout.top_word_indices(k)])
            )
            owners.append(("rollout", k))
            for _ in range(args.random_draws):
                picked = rng.sample(range(len(spans)), min(k, len(spans)))
                variants.append(delete_words(text, [spans[i] for i in picked]))
                owners.append(("random", k))
        new_probabilities = class_probabilities(model, tokenizer, variants, label)
        random_sums = {k: [] for k in ks}
        for (method, k), new in zip(owners, new_probabilities):
            if method == "random":
                random_sums[k].append(probability - new)
            else:
                drops[method][k].append(probability - new)
        for k in ks:
            drops["random"][k].append(sum(random_sums[k]) / len(random_sums[k]))
        if (index + 1) % 50 == 0:
            print(
                f"{index + 1}/{len(test)} texts, {time.perf_counter() - start:.0f} s",
                file=sys.stderr,
                flush=True,
            )

    def mean(values: list[float]) -> float:
        return sum(values) / len(values)

    def standard_error(values: list[float]) -> float:
        m = mean(values)
        return (sum((v - m) ** 2 for v in values) / (len(values) - 1) / len(values)) ** 0.5

    table = {
        method: {
            str(k): {"mean_drop": mean(drops[method][k]), "stderr": standard_error(drops[method][k])}
            for k in ks
        }
        for method in methods
    }
    ratio_at_3 = table["ig"]["3"]["mean_drop"] / table["random"]["3"]["mean_drop"] if 3 in ks else None
    result = {
        "command": "python examples/explain_faithfulness.py "
        + " ".join(sys.argv[1:] if argv is None else argv),
        "model": str(args.model),
        "data": f"sentiment test split, {args.num_texts} tweets (shuffle seed {args.seed})",
        "measure": "mean drop of the predicted class's probability after deleting k words (higher = more faithful)",
        "num_texts": args.num_texts,
        "random_draws_per_text": args.random_draws,
        "ig_steps": args.n_steps,
        "ig_baseline": args.baseline,
        "accuracy_on_these_texts": correct / len(test),
        "ig_mean_abs_delta": mean(deltas),
        "ig_mean_relative_delta": mean(relative_deltas),
        "drops": table,
        "ig_over_random_at_k3": ratio_at_3,
        "floor_ig_k3_at_least_2x_random": ratio_at_3 is not None and ratio_at_3 >= 2.0,
        "seconds": time.perf_counter() - start,
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    write_text_atomic(args.output, json.dumps(result, indent=2) + "\n")
    plot(table, ks, args.output.with_suffix(".png"), len(test))
    print(f"{'k':>3} {'IG':>8} {'rollout':>8} {'random':>8}")
    for k in ks:
        row = [table[m][str(k)]["mean_drop"] for m in methods]
        print(f"{k:>3} " + " ".join(f"{v:8.4f}" for v in row))
    print(f"IG / random at k=3: {ratio_at_3:.2f}x; wrote {args.output} and {args.output.with_suffix('.png')}")
    return 0


def plot(table: dict, ks: list[int], path: Path, num_texts: int) -> None:
    """The deletion curves: mean probability drop against k, one line per method, with standard-error bars."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from sora_hf.atomic_files import atomic_file

    figure, axes = plt.subplots(figsize=(6, 4))
    names = {"ig": "integrated gradients", "rollout": "attention rollout", "random": "random words"}
    for method, name in names.items():
        means = [table[method][str(k)]["mean_drop"] for k in ks]
        errors = [table[method][str(k)]["stderr"] for k in ks]
        axes.errorbar(ks, means, yerr=errors, marker="o", capsize=3, label=name)
    axes.set_xlabel("words deleted (k)")
    axes.set_ylabel("drop in predicted-class probability")
    axes.set_title(f"Deletion curve, Sora sentiment, {num_texts} test tweets")
    axes.set_xticks(ks)
    axes.grid(alpha=0.3)
    axes.legend()
    figure.tight_layout()
    with atomic_file(path) as temporary:
        figure.savefig(temporary, format="png", dpi=100)
    plt.close(figure)


if __name__ == "__main__":
    raise SystemExit(main())
