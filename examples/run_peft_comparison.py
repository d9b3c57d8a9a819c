"""Full fine-tune vs LoRA vs top-2 layers on sentiment from `sora`: accuracy, trainable parameters, memory, step time.

    python examples/run_peft_comparison.py --output-dir runs/peft-comparison

Each method is a separate `examples/run_classification.py` process (so peak memory is its own), with the same
data, epochs, batch and seed; LoRA takes its usual higher learning rate. Writes `comparison.json`, `comparison.md`
and `comparison.png` to the output folder. `--reuse-finished-runs` reads the methods already finished there (with
the command each was run with) and trains only the others, e.g. a second LoRA setting.
"""

import argparse
import json
import subprocess
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from sora_hf.hub import markdown_table  # noqa: E402

METHODS = {
    "full fine-tune": [],
    "LoRA r=8 (+ head)": ["--lora_r", "8"],
    "top-2 layers (+ head)": ["--train_top_layers", "2"],
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output-dir", default="runs/peft-comparison")
    parser.add_argument("--learning-rate", default="3e-4")
    parser.add_argument("--lora-learning-rate", default="1e-3")
    parser.add_argument("--epochs", default="1")
    parser.add_argument("--max-train-samples", default=None)
    parser.add_argument("--seed", default="0")
    parser.add_argument("--warmup-steps", default="100", help="A count, or a fraction of the steps (< 1).")
    parser.add_argument(
        "--lora-target-modules", nargs="+", default=None, help="Default: peft's Sora defaults (qkv_proj)."
    )
    parser.add_argument("--methods", nargs="+", default=list(METHODS), choices=list(METHODS))
    parser.add_argument(
        "--reuse-finished-runs",
        action="store_true",
        help="Read a method's results from its folder when it already holds them instead of training it again.",
    )
    args = parser.parse_args()
    output_dir = Path(args.output_dir)
    rows = {}
    for name in args.methods:
        flags = METHODS[name]
        if "--lora_r" in flags and args.lora_target_modules:
            flags = [*flags, "--lora_target_modules", *args.lora_target_modules]
        run_dir = output_dir / name.split()[0].lower().replace("-", "")
        learning_rate = args.lora_learning_rate if "--lora_r" in flags else args.learning_rate
        command = [
            sys.executable, "examples/run_classification.py", "--model_name_or_path", "sora",
            "--output_dir", str(run_dir), "--num_train_epochs", args.epochs, "--learning_rate", learning_rate,
            "--per_device_train_batch_size", "32", "--per_device_eval_batch_size", "256", "--warmup_steps", args.warmup_steps,
            "--weight_decay", "0.01", "--max_length", "64", "--logging_steps", "50", "--eval_strategy", "no",
            "--save_strategy", "no", "--report_to", "tensorboard", "--use_cpu", "--seed", args.seed,
            "--run_baseline", "false", *flags,
        ]  # fmt: skip
        if args.max_train_samples:
            command += ["--max_train_samples", args.max_train_samples]
        results_file, command_file = run_dir / "classification_results.json", run_dir / "command.json"
        if args.reuse_finished_runs and results_file.is_file() and command_file.is_file():
            print(f"== {name}: reusing {run_dir}", flush=True)
            command = json.loads(command_file.read_text())  # the command that run was made with
        else:
            print(f"== {name}: {' '.join(command)}", flush=True)
            subprocess.run(command, check=True)
            command_file.write_text(json.dumps(command))
        result = json.loads(results_file.read_text())
        rows[name] = {
            "test_accuracy": result["test"]["test_accuracy"],
            "trainable_parameters": result["trainable_parameters"],
            "trainable_percent": 100 * result["trainable_parameters"] / result["total_parameters"],
            "peak_memory_mib": result["peak_memory_mib"],
            "seconds_per_step": result["seconds_per_step"],
            "learning_rate": float(learning_rate),
            "command": " ".join(command[1:]),
        }
    (output_dir / "comparison.json").write_text(json.dumps(rows, indent=2))
    table = markdown_table(
        ["method", "test accuracy", "trainable parameters", "peak memory (MiB)", "s / step"],
        [
            [
                f"{name}, lr {row['learning_rate']:g}",
                f"{row['test_accuracy']:.3f}",
                f"{row['trainable_parameters']:,} ({row['trainable_percent']:.2f}%)",
                f"{row['peak_memory_mib']:,.0f}",
                f"{row['seconds_per_step']:.3f}",
            ]
            for name, row in rows.items()
        ],
        align="lrrrr",
    )
    (output_dir / "comparison.md").write_text(table + "\n")
    print(table)

    figure, axes = plt.subplots(1, 4, figsize=(14, 3.2))
    for axis, (key, title) in zip(
        axes,
        [
            ("test_accuracy", "test accuracy"),
            ("trainable_percent", "trainable parameters (%)"),
            ("peak_memory_mib", "peak memory (MiB)"),
            ("seconds_per_step", "seconds per step"),
        ],
    ):
        axis.bar(
            range(len(rows)), [row[key] for row in rows.values()], color=["#4c72b0", "#dd8452", "#55a868"]
        )
        axis.set_xticks(range(len(rows)), [name.split(" (")[0] for name in rows], rotation=15, fontsize=8)
        axis.set_title(title, fontsize=10)
    figure.tight_layout()
    figure.savefig(output_dir / "comparison.png", dpi=120)


if __name__ == "__main__":
    main()
