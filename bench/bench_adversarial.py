"""Step time of adversarial training (FGM, PGD, FreeLB) relative to a plain step, same model and batch, same run.

    python bench/bench_adversarial.py [--repeats 5] [--steps 3] [--ks 2 3] [--output-dir bench/results]

A step is what `SoraTrainer` does per optimizer step: `training_step` (forward, the adversarial forwards, one
backward) and the AdamW update. Model: the packaged `sora` with a sequence-classification head; batch: 32 real tweets
of the sentiment train split padded to the longest (max 64 tokens), dropout on. Methods are interleaved within each
repeat so machine noise hits them alike; the table shows medians. Floors (issue 5): FGM <= 2.2x, PGD and FreeLB with
K steps <= (K + 1) x 1.1. Writes `adversarial.json` and `adversarial.png` to the output directory.
"""

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402
from transformers import DataCollatorWithPadding  # noqa: E402

from sora_hf import SoraForSequenceClassification, SoraTokenizer  # noqa: E402
from sora_hf.data.tasks import load_task_dataset  # noqa: E402
from sora_hf.training.arguments import SoraTrainingArguments  # noqa: E402
from sora_hf.training.trainer import SoraTrainer  # noqa: E402

BATCH, MAX_LENGTH, EPSILON = 32, 64, 1.0


def make_batch(tokenizer) -> dict[str, torch.Tensor]:
    texts = load_task_dataset("sentiment")["train"].select(range(BATCH))
    features = [tokenizer(text, truncation=True, max_length=MAX_LENGTH) for text in texts["text"]]
    batch = DataCollatorWithPadding(tokenizer)(features)
    batch["labels"] = torch.tensor(texts["label"])
    return dict(batch)


def make_trainer(model, method: str, k: int, output_dir: str) -> SoraTrainer:
    args = SoraTrainingArguments(
        output_dir=output_dir,
        report_to=[],
        use_cpu=True,
        learning_rate=1e-5,
        adversarial_method=method,
        adversarial_epsilon=EPSILON,
        adversarial_steps=k,
    )
    trainer = SoraTrainer(model=model, args=args)
    trainer.create_optimizer()
    trainer.current_gradient_accumulation_steps = 1  # set by the training loop, which the benchmark skips
    return trainer


def time_steps(trainer: SoraTrainer, batch: dict, steps: int) -> float:
    """Seconds per step: training_step (forward(s) + one backward) and the optimizer update."""
    start = time.perf_counter()
    for _ in range(steps):
        trainer.training_step(trainer.model, dict(batch))
        trainer.optimizer.step()
        trainer.optimizer.zero_grad(set_to_none=True)
    return (time.perf_counter() - start) / steps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--ks", type=int, nargs="+", default=[2, 3], help="PGD/FreeLB ascent steps to time.")
    parser.add_argument("--output-dir", default="bench/results")
    args = parser.parse_args()

    torch.manual_seed(0)
    tokenizer = SoraTokenizer.from_pretrained("sora")
    model = SoraForSequenceClassification.from_pretrained("sora", num_labels=3)
    batch = make_batch(tokenizer)
    methods = [("plain", "none", 1), ("FGM", "fgm", 1)]
    methods += [
        (f"{name} K={k}", method, k)
        for k in args.ks
        for name, method in (("PGD", "pgd"), ("FreeLB", "freelb"))
    ]
    scratch = tempfile.mkdtemp()
    trainers = {label: make_trainer(model, method, k, scratch) for label, method, k in methods}
    for trainer in trainers.values():  # warm-up: allocator, kernels, optimizer state
        time_steps(trainer, batch, 1)

    samples: dict[str, list[float]] = {label: [] for label in trainers}
    for _ in range(args.repeats):
        for label, trainer in trainers.items():
            samples[label].append(time_steps(trainer, batch, args.steps))
    median = {label: statistics.median(values) for label, values in samples.items()}
    floors = {"plain": 1.0, "FGM": 2.2}
    floors.update({f"{name} K={k}": (k + 1) * 1.1 for k in args.ks for name in ("PGD", "FreeLB")})
    ratios = {label: median[label] / median["plain"] for label in median}

    print(f"| method | s/step | x plain | floor |   (batch {BATCH} tweets, <= {MAX_LENGTH} tokens, sora)")
    print("|---|---:|---:|---:|")
    for label in median:
        verdict = "" if ratios[label] <= floors[label] else " (over)"
        print(f"| {label} | {median[label]:.3f} | {ratios[label]:.2f} | {floors[label]:.2f}{verdict} |")

    results = {
        "setup": {
            "model": "sora + sequence-classification head",
            "batch": BATCH,
            "padded_length": int(batch["input_ids"].shape[1]),
            "epsilon": EPSILON,
            "threads": torch.get_num_threads(),
            "repeats": args.repeats,
            "steps_per_repeat": args.steps,
            "torch": torch.__version__,
        },
        "seconds_per_step": median,
        "ratio_to_plain": ratios,
        "floor": floors,
        "samples": samples,
    }
    output_dir = Path(args.output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    (output_dir / "adversarial.json").write_text(json.dumps(results, indent=2))
    figure, axis = plt.subplots(figsize=(7, 3.5))
    labels = list(median)
    axis.bar(range(len(labels)), [ratios[label] for label in labels], color="tab:blue", label="measured")
    axis.scatter(
        range(len(labels)),
        [floors[label] for label in labels],
        color="tab:red",
        marker="_",
        s=400,
        label="floor",
        zorder=3,
    )
    axis.set_xticks(range(len(labels)), labels, rotation=20)
    axis.set_ylabel("step time / plain step")
    axis.set_title(f"adversarial training overhead, sora, batch {BATCH} tweets")
    axis.legend()
    figure.tight_layout()
    figure.savefig(output_dir / "adversarial.png", dpi=120)
    print(f"wrote {output_dir / 'adversarial.json'} and {output_dir / 'adversarial.png'}")


if __name__ == "__main__":
    main()
