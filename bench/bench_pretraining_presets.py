"""Per `sora-hf pretrain --model_size` preset: parameters, model FLOPs per token, measured training tokens/s and model
FLOP utilisation here, and the PROJECTED wall time of 1 B and 10 B tokens on 8 GPUs.

    python bench/bench_pretraining_presets.py [--presets small,base,large] [--batch-size 4] [--max-length 128] \
        [--warmup 1] [--steps 3] [--device cpu] [--gpu-mfu 0.4] [--gpu-results bench/results/gpu/...json] \
        [--output-dir bench/results]

One training step = forward + backward + AdamW step of `SoraForPreTraining` (encoder + decoder, the preset's
sizes, vocabulary 12,000 from the packaged tokenizer) on a batch made by the real `DataCollatorForSoraPretraining`
(MLM 15% + NSP + denoising) from packed rows: every row is a chunk of `--max-length` tokens (4 sentences of
random regular tokens), as sequence packing makes them. fp32, and bf16 autocast where the device runs bf16 natively
(`bench/common.py`). Tokens are the real input tokens of the MLM encoder pass.

Model FLOPs per token (`sora_hf.training.model_sizes.pretraining_step_flops` on the benchmark's batches, divided by
their input tokens; checked against `torch.utils.flop_counter` in tests/test_pretraining_scale.py):

    3 x [ encoder on the masked text   L_e (2 t (4 d^2 + 2 d f) + 4 t^2 d) per sequence of t tokens
        + MLM head at masked tokens    2 m (d^2 + d V)
        + encoder on the noised text   (as above, t_n tokens)
        + decoder                      L_d (2 t_d (6 d^2 + 2 d f) + 4 t_n d^2 + 4 t_d^2 d + 4 t_d t_n d) + 2 t_d d V ]

i.e. 6 x (the weights each token passes through) + 12 x layers x d x context (attention, not halved for causal
masks), counting matrix products only and no recomputation. `6N` (N = non-embedding parameters, Kaplan et al.) is
reported beside it: Sora's encoder reads each text twice (masked and noised) and the denoising head is dense, so the
model FLOPs are well above 6N.

MFU here = achieved model FLOP/s / the best rate of a large matrix product of the same dtype measured in the same
run. PROJECTED GPU time = tokens x FLOPs/token / (gpus x peak x MFU), with peak = 989 TFLOP/s (H100 SXM dense
bf16) and MFU = `--gpu-mfu` (an assumption, 0.40 by default) unless `--gpu-results` holds a preset's MFU measured
on a GPU by bench/gpu_pretrain.sh (then that, marked measured). Writes pretraining_presets.json/.md/.png.
"""

import argparse
import contextlib
import json
import sys
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402
from common import cpu_capability, describe, matmul_flops, skip_emulated_bf16  # noqa: E402

from sora_hf import SoraTokenizer  # noqa: E402
from sora_hf.packaged import packaged_checkpoint_path  # noqa: E402
from sora_hf.training.collators import DataCollatorForSoraPretraining  # noqa: E402
from sora_hf.training.model_sizes import (  # noqa: E402
    MODEL_SIZES,
    batch_lengths,
    non_embedding_parameters,
    pretraining_step_flops,
    resolve_model_size,
)
from sora_hf.training.pretraining import PretrainingArguments, build_model  # noqa: E402

H100_BF16_DENSE_PEAK = 989e12  # FLOP/s, NVIDIA H100 SXM, dense (no sparsity)
PROJECTED_TOKENS = (1e9, 1e10)
SENTENCES_PER_ROW = 4


def packed_rows(tokenizer, rows: int, max_length: int, generator: torch.Generator) -> list[dict]:
    """Rows as packing makes them: `max_length - 3` tokens in `SENTENCES_PER_ROW` sentences, random regular ids."""
    first_regular = max(tokenizer.all_special_ids) + 1
    budget = max_length - 3
    cuts = [round(budget * index / SENTENCES_PER_ROW) for index in range(SENTENCES_PER_ROW + 1)]
    examples = []
    for _ in range(rows):
        ids = torch.randint(first_regular, len(tokenizer), (budget,), generator=generator).tolist()
        examples.append({"sentences": [ids[start:end] for start, end in zip(cuts, cuts[1:])]})
    return examples


def train_steps(model, optimizer, batches, bf16: bool, device: str) -> float:
    """Seconds for one forward + backward + AdamW step per batch."""
    autocast = (
        torch.autocast(device.split(":")[0], dtype=torch.bfloat16) if bf16 else contextlib.nullcontext()
    )
    synchronize = torch.cuda.synchronize if device.startswith("cuda") else lambda: None
    synchronize()
    start = time.perf_counter()
    for batch in batches:
        with autocast:
            loss = model(**batch).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
    synchronize()
    return time.perf_counter() - start


def measure_preset(name: str, tokenizer, args, dtypes: list[str], generator: torch.Generator) -> dict:
    """Parameters, FLOPs per token and, per dtype, the measured tokens/s of one preset."""
    torch.manual_seed(0)
    # the model `sora-hf pretrain --model_size NAME` builds (with its decoder)
    model = build_model(PretrainingArguments(model_size=name, max_length=args.max_length), tokenizer)
    model = model.to(args.device).train()
    config = model.config
    collator = DataCollatorForSoraPretraining(tokenizer, seed=0)
    batches = [
        collator(packed_rows(tokenizer, args.batch_size, args.max_length, generator))
        for _ in range(args.warmup + args.steps)
    ]
    lengths = [batch_lengths(batch) for batch in batches]
    flops = sum(pretraining_step_flops(config, **entry) for entry in lengths[args.warmup :])
    tokens = sum(sum(entry["encoder_lengths"]) for entry in lengths[args.warmup :])
    batches = [{key: value.to(args.device) for key, value in batch.items()} for batch in batches]
    result = {
        "sizes": resolve_model_size(name),
        "vocab_size": config.vocab_size,
        "parameters": model.num_parameters(),
        "non_embedding_parameters": non_embedding_parameters(config),
        "flops_per_token": flops / tokens,
        "six_n_per_token": 6 * non_embedding_parameters(config),
        "tokens_per_step": tokens / args.steps,
        "runs": {},
    }
    for dtype in dtypes:
        optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
        if args.warmup:
            train_steps(model, optimizer, batches[: args.warmup], dtype == "bf16", args.device)
        seconds = train_steps(model, optimizer, batches[args.warmup :], dtype == "bf16", args.device)
        result["runs"][dtype] = {"seconds": seconds, "tokens_per_second": tokens / seconds}
        del optimizer
    del model
    return result


def projected_mfu(name: str, args, gpu_results: dict | None) -> tuple[float, str]:
    """The MFU a projection uses for a preset: measured on a GPU (bench/gpu_pretrain.sh) or assumed."""
    measured = (gpu_results or {}).get("presets", {}).get(name, {}).get("runs", {}).get("bf16", {})
    if measured.get("mfu"):
        device = gpu_results.get("setup", {}).get("device_name", "a GPU")
        return measured["mfu"], f"measured on {device} (bf16, batch {gpu_results['setup']['batch_size']})"
    return args.gpu_mfu, "assumed"


def hours_text(hours: float) -> str:
    """Hours with two significant digits below 10 (a small preset's projection is minutes)."""
    return f"{hours:.2g}" if hours < 10 else f"{hours:,.0f}"


def write_markdown(results: dict, path: Path) -> None:
    setup = results["setup"]
    lines = [
        f"Pretraining presets, `bench/bench_pretraining_presets.py` on {setup['device_description']}: batch "
        f"{setup['batch_size']} x {setup['max_length']} packed tokens, {setup['steps']} timed steps after "
        f"{setup['warmup']} warm-up steps. MFU against the measured matmul peak ({setup['peak_note']}).",
        "",
        "| preset | shape (d / layers / heads / ff / decoder layers) | parameters | 6N per token | model FLOPs per "
        "token | " + " | ".join(f"{dtype} tokens/s (MFU)" for dtype in setup["dtypes"]) + " |",
        "|---|---|---:|---:|---:|" + "---:|" * len(setup["dtypes"]),
    ]
    for name, preset in results["presets"].items():
        sizes = preset["sizes"]
        shape = " / ".join(str(sizes[key]) for key in sizes)
        cells = [
            f"{run['tokens_per_second']:,.0f} ({run['mfu']:.1%})"
            for run in (preset["runs"][dtype] for dtype in setup["dtypes"])
        ]
        lines.append(
            f"| {name} | {shape} | {preset['parameters'] / 1e6:,.1f} M | {preset['six_n_per_token'] / 1e9:.2f} G | "
            f"{preset['flops_per_token'] / 1e9:.2f} G | " + " | ".join(cells) + " |"
        )
    projection = results["projection"]
    lines += [
        "",
        f"PROJECTED (not measured): {projection['gpus']} GPUs at {projection['peak_flops'] / 1e12:,.0f} TFLOP/s "
        "each (H100 SXM dense bf16), time = tokens x model FLOPs per token / (GPUs x peak x MFU).",
        "",
        "| preset | MFU used | source of the MFU | projected hours, 1 B tokens | projected hours, 10 B tokens |",
        "|---|---:|---|---:|---:|",
    ]
    for name, row in projection["presets"].items():
        hours = [hours_text(row["hours"][f"{tokens:.0e}"]) for tokens in PROJECTED_TOKENS]
        lines.append(f"| {name} | {row['mfu']:.0%} | {row['mfu_source']} | {hours[0]} | {hours[1]} |")
    path.write_text("\n".join(lines) + "\n")


def write_figure(results: dict, path: Path) -> None:
    presets = list(results["presets"])
    dtypes = results["setup"]["dtypes"]
    figure, (speed, hours) = plt.subplots(1, 2, figsize=(10, 3.8))
    width = 0.8 / len(dtypes)
    for index, dtype in enumerate(dtypes):
        values = [results["presets"][name]["runs"][dtype]["tokens_per_second"] for name in presets]
        positions = [position + index * width for position in range(len(presets))]
        bars = speed.bar(positions, values, width, label=dtype)
        for bar, name in zip(bars, presets):
            mfu = results["presets"][name]["runs"][dtype]["mfu"]
            speed.annotate(
                f"{mfu:.0%}", (bar.get_x() + bar.get_width() / 2, bar.get_height()), ha="center", size=7
            )
    speed.set_xticks([position + width * (len(dtypes) - 1) / 2 for position in range(len(presets))], presets)
    speed.set_yscale("log")
    speed.set_ylabel("training tokens / s (measured)")
    speed.set_title(f"measured on {results['setup']['device']} (labels: MFU vs the matmul peak)", size=9)
    speed.legend(fontsize=8)
    projection = results["projection"]
    for index, tokens in enumerate(PROJECTED_TOKENS):
        values = [projection["presets"][name]["hours"][f"{tokens:.0e}"] for name in presets]
        hours.bar(
            [position + index * 0.4 for position in range(len(presets))], values, 0.4, label=f"{tokens:.0e}"
        )
    hours.set_xticks([position + 0.2 for position in range(len(presets))], presets)
    hours.set_yscale("log")
    hours.set_ylabel("hours")
    hours.set_title(f"PROJECTED on {projection['gpus']} H100 (bf16, MFU as in the .md)", size=9)
    hours.legend(title="tokens", fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=120)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--presets", default=",".join(MODEL_SIZES))
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--max-length", type=int, default=128)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--device", default="cpu", help="cpu or cuda (bench/gpu_pretrain.sh)")
    parser.add_argument("--gpus", type=int, default=8)
    parser.add_argument("--gpu-peak-tflops", type=float, default=H100_BF16_DENSE_PEAK / 1e12)
    parser.add_argument("--gpu-mfu", type=float, default=0.40, help="assumed GPU MFU for the projection")
    parser.add_argument("--gpu-results", default="bench/results/gpu/pretraining_presets_cuda.json")
    parser.add_argument("--output-dir", default="bench/results")
    args = parser.parse_args()
    presets = [name for name in args.presets.split(",") if name]
    unknown = [name for name in presets if name not in MODEL_SIZES]
    if unknown or not presets:
        sys.exit(f"--presets: unknown {unknown or 'none given'}; choose among {', '.join(MODEL_SIZES)}.")
    if not 0 < args.gpu_mfu <= 1:
        sys.exit(f"--gpu-mfu must be in (0, 1], got {args.gpu_mfu}.")
    if args.steps < 1:
        sys.exit(f"--steps must be at least 1, got {args.steps}.")

    on_gpu = args.device.startswith("cuda")
    capability = cpu_capability()
    if on_gpu:
        device_description = torch.cuda.get_device_name(args.device)
    else:
        device_description = f"{capability['cpu']}, {torch.get_num_threads()} threads"
        print(describe(capability))
    dtypes = ["fp32"]
    if on_gpu or not skip_emulated_bf16(capability, "the bf16 rows"):
        dtypes.append("bf16")
    size = 8192 if on_gpu else 2048
    peaks = {
        dtype: matmul_flops(torch.float32 if dtype == "fp32" else torch.bfloat16, size, device=args.device)
        for dtype in dtypes
    }
    tokenizer = SoraTokenizer.from_pretrained(packaged_checkpoint_path("sora"))
    generator = torch.Generator().manual_seed(0)

    results = {
        "setup": {
            "device": args.device,
            "device_name": device_description,
            "device_description": device_description,
            **({} if on_gpu else capability),
            "batch_size": args.batch_size,
            "max_length": args.max_length,
            "warmup": args.warmup,
            "steps": args.steps,
            "dtypes": dtypes,
            "matmul_peak_flops": peaks,
            "peak_note": ", ".join(
                f"{dtype} {peak / 1e9:,.0f} GFLOP/s at {size}^3" for dtype, peak in peaks.items()
            ),
        },
        "presets": {},
    }
    for name in presets:
        preset = measure_preset(name, tokenizer, args, dtypes, generator)
        for dtype, run in preset["runs"].items():
            run["model_flops_per_second"] = run["tokens_per_second"] * preset["flops_per_token"]
            run["mfu"] = run["model_flops_per_second"] / peaks[dtype]
        results["presets"][name] = preset
        print(
            f"{name}: {preset['parameters'] / 1e6:,.1f} M parameters, {preset['flops_per_token'] / 1e9:.2f} GFLOP "
            f"per token (6N = {preset['six_n_per_token'] / 1e9:.2f} G); "
            + "; ".join(
                f"{dtype} {run['tokens_per_second']:,.0f} tokens/s, MFU {run['mfu']:.1%}"
                for dtype, run in preset["runs"].items()
            )
        )

    gpu_results_path = Path(args.gpu_results)
    gpu_results = None
    if not on_gpu and gpu_results_path.is_file():
        gpu_results = json.loads(gpu_results_path.read_text())
    peak = args.gpu_peak_tflops * 1e12
    projection = {"gpus": args.gpus, "peak_flops": peak, "projected": True, "presets": {}}
    for name, preset in results["presets"].items():
        mfu, source = projected_mfu(name, args, gpu_results)
        rate = args.gpus * peak * mfu / preset["flops_per_token"]  # tokens per second, all GPUs
        projection["presets"][name] = {
            "mfu": mfu,
            "mfu_source": source,
            "tokens_per_second": rate,
            "hours": {f"{tokens:.0e}": tokens / rate / 3600 for tokens in PROJECTED_TOKENS},
        }
    results["projection"] = projection

    output_dir = Path(args.output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    name = "pretraining_presets" if not on_gpu else "pretraining_presets_cuda"
    (output_dir / f"{name}.json").write_text(json.dumps(results, indent=2))
    write_markdown(results, output_dir / f"{name}.md")
    write_figure(results, output_dir / f"{name}.png")
    print((output_dir / f"{name}.md").read_text())
    print(f"wrote {output_dir / name}.json, .md and .png")


if __name__ == "__main__":
    main()
