"""One pretraining step (MLM + NSP) of Sora vs BertForPreTraining of identical size, same run.

    python bench/bench_pretraining.py [--repeats 5] [--steps 3] [--device cpu] [--output-dir bench/results]

Rows: BERT fp32, Sora fp32, Sora with bf16 autocast (both CPU; the bf16 row only where `sora_hf.precision` finds
native bf16, else skipped with the reason). Ratios are against BERT fp32 in the same
run. A second table runs both fp32 models on a padded batch (rows of random length, about 44% padding) and
counts only real tokens: Sora computes projections and MLPs on real tokens only, so its padded rate should stay
near its dense rate, while BERT's falls with the padding. Also prints Sora's achieved model FLOP/s as a fraction of the bf16 matmul rate torch reaches on a large
product (4096^3) measured in the same run. Writes `pretraining.json` and `pretraining.png`.
"""

import argparse
import contextlib
import json
import statistics
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402
from bench_encoder import BATCH, SEQ, SIZE, make_batch, make_models  # noqa: E402
from common import cpu_capability, describe, matmul_flops, skip_emulated_bf16  # noqa: E402


def step_tokens_per_second(model, optimizer, batch, steps: int, bf16: bool) -> float:
    """Real (non-padding) tokens per second of forward + backward + AdamW step."""
    model.train()
    device = next(model.parameters()).device
    autocast = torch.autocast(device.type, dtype=torch.bfloat16) if bf16 else contextlib.nullcontext()
    synchronize = torch.cuda.synchronize if device.type == "cuda" else lambda: None
    synchronize()
    start = time.perf_counter()
    for _ in range(steps):
        with autocast:
            loss = model(**batch).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
    synchronize()
    return steps * int(batch["attention_mask"].sum()) / (time.perf_counter() - start)


def sora_training_flops_per_token(masked_fraction: float) -> float:
    """Model FLOPs of one training token (forward + backward = 3x forward), counting only matmuls."""
    hidden, layers, inner, vocab = (
        SIZE["hidden_size"],
        SIZE["num_hidden_layers"],
        SIZE["intermediate_size"],
        SIZE["vocab_size"],
    )
    per_layer = (
        2 * (4 * hidden * hidden + 2 * hidden * inner) + 2 * 2 * SEQ * hidden
    )  # projections + attention
    lm_head = (
        masked_fraction * 2 * (hidden * hidden + hidden * vocab)
    )  # sparse prediction: masked tokens only
    return 3 * (layers * per_layer + lm_head)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--device", default="cpu", help="cpu or cuda (bench/gpu_check.sh)")
    parser.add_argument("--output-dir", default="bench/results")
    args = parser.parse_args()
    capability = cpu_capability()
    print(describe(capability))

    models = {name: model.to(args.device) for name, model in make_models().items()}
    batch, padded = ({k: v.to(args.device) for k, v in make_batch(p).items()} for p in (False, True))
    masked_fraction = float((batch["labels"] != -100).float().mean())
    padding_fraction = 1 - float(padded["attention_mask"].float().mean())
    with_bf16 = args.device != "cpu" or not skip_emulated_bf16(capability, "the 'Sora bf16 autocast' row")
    runs = {
        "BERT fp32": ("BERT", False, batch),
        "Sora fp32": ("Sora", False, batch),
        **({"Sora bf16 autocast": ("Sora", True, batch)} if with_bf16 else {}),
        "BERT fp32, padded batch": ("BERT", False, padded),
        "Sora fp32, padded batch": ("Sora", False, padded),
    }
    optimizers = {name: torch.optim.AdamW(model.parameters(), lr=1e-4) for name, model in models.items()}
    for name, bf16, inputs in runs.values():  # warm-up
        step_tokens_per_second(models[name], optimizers[name], inputs, 1, bf16)

    samples = {run: [] for run in runs}
    for _ in range(args.repeats):
        for run, (name, bf16, inputs) in runs.items():
            samples[run].append(
                step_tokens_per_second(models[name], optimizers[name], inputs, args.steps, bf16)
            )
    median = {run: statistics.median(values) for run, values in samples.items()}
    peak = matmul_flops(torch.bfloat16, device=args.device) if with_bf16 else None
    sora_flops = (
        median["Sora bf16 autocast"] * sora_training_flops_per_token(masked_fraction) if with_bf16 else None
    )

    print("| pretraining step | tokens/s | vs BERT fp32 |")
    print("|---|---:|---:|")
    for run, value in median.items():
        if "padded" not in run:
            print(f"| {run} | {value:,.0f} | {value / median['BERT fp32']:.2f} |")
    print(
        f"\n| padded batch ({padding_fraction:.0%} padding), real tokens only | tokens/s | vs the same model dense |"
    )
    print("|---|---:|---:|")
    for run in ("BERT fp32", "Sora fp32"):
        value = median[f"{run}, padded batch"]
        print(f"| {run} | {value:,.0f} | {value / median[run]:.2f} |")
    if with_bf16:
        print(
            f"\nbf16 matmul rate (4096^3): {peak / 1e9:,.0f} GFLOP/s; Sora bf16 achieved {sora_flops / 1e9:,.0f} "
            f"GFLOP/s of model FLOPs = {sora_flops / peak:.1%} of it"
        )

    results = {
        "setup": {
            **SIZE,
            **capability,
            "device": args.device,
            "batch": BATCH,
            "sequence": SEQ,
            "masked_fraction": masked_fraction,
            "padded_batch_padding_fraction": padding_fraction,
            "threads": torch.get_num_threads(),
            "repeats": args.repeats,
            "steps_per_repeat": args.steps,
        },
        "tokens_per_second": median,
        "ratio_vs_bert_fp32": {run: value / median["BERT fp32"] for run, value in median.items()},
        "padded_vs_dense": {
            run: median[f"{run}, padded batch"] / median[run] for run in ("BERT fp32", "Sora fp32")
        },
        "bf16_matmul_flops": peak,
        "sora_bf16_model_flops": sora_flops,
        "sora_bf16_fraction_of_matmul_rate": sora_flops / peak if with_bf16 else None,
    }
    output_dir = Path(args.output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    name = "pretraining" if args.device == "cpu" else f"pretraining_{args.device.split(':')[0]}"
    (output_dir / f"{name}.json").write_text(json.dumps(results, indent=2))
    figure, axis = plt.subplots(figsize=(6, 3.5))
    labels = [run.replace(", ", "\n") for run in median]
    colors = {"BERT fp32": "tab:gray", "Sora fp32": "tab:blue", "Sora bf16 autocast": "tab:green"}
    colors["Sora fp32, padded batch"] = "lightblue"
    axis.bar(labels, list(median.values()), color=[colors.get(run, "silver") for run in median])
    axis.tick_params(axis="x", labelsize=7)
    axis.set_ylabel("training tokens / s (median)")
    axis.set_title("one MLM + NSP pretraining step, hidden 256 x 4 layers")
    figure.tight_layout()
    figure.savefig(output_dir / f"{name}.png", dpi=120)
    print(f"wrote {output_dir / name}.json and .png")


if __name__ == "__main__":
    main()
