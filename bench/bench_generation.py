"""Sora vs BART of identical size, same process, same inputs: generation new tokens/s, and the translation check.

    python bench/bench_generation.py [--repeats 5] [--translation-samples 200] [--output-dir bench/results]

Part 1 times `generate` (exactly `--new-tokens` new tokens: max_new_tokens with end-of-sequence disabled, with
cache, fp32, SDPA) for greedy and beam 4 at batch 1 and 8, through three paths of each model:

- `default`: `model.generate(**inputs)` (dynamic cache, eager);
- `static`: `cache_implementation="static"` (no compilation);
- `compiled`: `cache_implementation="static", compile_config=CompileConfig(...)`: generate compiles the decoding
  step with `torch.compile` (Sora compiles on CPU when given a `compile_config`; BART needs transformers' private
  `_compile_all_devices` flag on CPU, set here so that it takes the same path). transformers 5.25 compiles greedy
  and sampling only: for beam search this path is the static cache, uncompiled.

Repeats are interleaved (every model and path once per round) and the median is kept; the first call of a
compiled path (compilation) is reported apart. Ratios: Sora's best path over BART's default, and same path
over same path. Part 2 (`--translation-samples 0` skips it) generates the first test verses of the fine-tuned
translation model with every path (plus bf16 where `sora_hf.precision` finds native bf16) and scores chrF: the faster paths
must give the default's outputs. Prints markdown tables and writes `generation.json` and `generation.png`.
Only ratios measured in one run mean anything on a shared machine.
"""

import argparse
import json
import statistics
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402
import transformers  # noqa: E402
from common import cpu_capability, describe, skip_emulated_bf16  # noqa: E402
from transformers import (  # noqa: E402
    AutoTokenizer,
    BartConfig,
    BartForConditionalGeneration,
    CompileConfig,
)

from sora_hf import SoraConfig, SoraForConditionalGeneration  # noqa: E402

SIZE = dict(hidden=256, encoder_layers=4, decoder_layers=2, heads=4, ffn=1024, vocab=12000, positions=512)
SOURCE_LENGTHS = (24, 48)  # source lengths drawn uniformly in this range, padded to the longest
PATHS = ("default", "static", "compiled")
SETTINGS = ((1, 1), (1, 4), (8, 1), (8, 4))  # (batch, beams)
TRANSLATION_MODEL = "runs/r20-translation"


def make_models() -> dict[str, torch.nn.Module]:
    """Sora and BART with the same hidden size, layers, heads, FFN and vocabulary; random weights, fp32, SDPA."""
    torch.manual_seed(0)
    special = dict(pad_token_id=0, bos_token_id=1, eos_token_id=2, decoder_start_token_id=2)
    sora = SoraForConditionalGeneration(
        SoraConfig(
            hidden_size=SIZE["hidden"],
            num_hidden_layers=SIZE["encoder_layers"],
            num_attention_heads=SIZE["heads"],
            intermediate_size=SIZE["ffn"],
            decoder_layers=SIZE["decoder_layers"],
            decoder_attention_heads=SIZE["heads"],
            decoder_intermediate_size=SIZE["ffn"],
            vocab_size=SIZE["vocab"],
            max_position_embeddings=SIZE["positions"],
            hidden_act="gelu",
            is_encoder_decoder=True,
            attn_implementation="sdpa",
            **special,
        )
    )
    bart = BartForConditionalGeneration(
        BartConfig(
            d_model=SIZE["hidden"],
            encoder_layers=SIZE["encoder_layers"],
            decoder_layers=SIZE["decoder_layers"],
            encoder_attention_heads=SIZE["heads"],
            decoder_attention_heads=SIZE["heads"],
            encoder_ffn_dim=SIZE["ffn"],
            decoder_ffn_dim=SIZE["ffn"],
            vocab_size=SIZE["vocab"],
            max_position_embeddings=SIZE["positions"],
            activation_function="gelu",
            attn_implementation="sdpa",
            forced_eos_token_id=None,
            **special,
        )
    )
    models = {"BART": bart.eval(), "Sora": sora.eval()}
    for model in models.values():  # no end of sequence: every call generates exactly `--new-tokens` tokens
        model.generation_config.eos_token_id = None
    return models


def compile_config(model_name: str) -> CompileConfig:
    """One `CompileConfig` per model (generate recompiles when the object changes): whole graph, fixed shapes."""
    config = CompileConfig(fullgraph=True, dynamic=False, mode="default")
    if model_name == "BART":
        config._compile_all_devices = True  # transformers compiles only on accelerators unless told
    return config


def path_kwargs(path: str, compile_configs: dict, model_name: str) -> dict:
    """The `generate` keywords of one path."""
    if path == "default":
        return {}
    if path == "static":
        return {"cache_implementation": "static", "disable_compile": True}
    return {"cache_implementation": "static", "compile_config": compile_configs[model_name]}


def make_inputs(batch: int) -> dict[str, torch.Tensor]:
    """`batch` random sources of lengths in SOURCE_LENGTHS, right-padded to the longest."""
    generator = torch.Generator().manual_seed(batch)
    low, high = SOURCE_LENGTHS
    lengths = torch.randint(low, high + 1, (batch,), generator=generator)
    lengths[0] = high
    input_ids = torch.randint(5, SIZE["vocab"], (batch, high), generator=generator)
    attention_mask = (torch.arange(high)[None, :] < lengths[:, None]).long()
    return {"input_ids": input_ids.masked_fill(attention_mask == 0, 0), "attention_mask": attention_mask}


@torch.inference_mode()
def timed_generate(model: torch.nn.Module, inputs: dict, **kwargs) -> tuple[torch.Tensor, float]:
    synchronize = torch.cuda.synchronize if inputs["input_ids"].is_cuda else lambda: None
    start = time.perf_counter()
    output = model.generate(**inputs, **kwargs)
    synchronize()
    return output, time.perf_counter() - start


def bench_generation(args: argparse.Namespace) -> dict:
    """New tokens/s of every (model, path) at every (batch, beams) setting; interleaved repeats, median."""
    models = {name: model.to(args.device) for name, model in make_models().items()}
    compile_configs = {name: compile_config(name) for name in models}
    rows = []
    for batch, beams in SETTINGS:
        inputs = {key: value.to(args.device) for key, value in make_inputs(batch).items()}
        generation = dict(max_new_tokens=args.new_tokens, num_beams=beams, do_sample=False)
        warmup = {}
        for name, model in models.items():  # warm-up; a compiled path compiles here
            for path in PATHS:
                _, seconds = timed_generate(
                    model, inputs, **generation, **path_kwargs(path, compile_configs, name)
                )
                warmup[(name, path)] = seconds
        samples = {key: [] for key in warmup}
        for _ in range(args.repeats):
            for name, model in models.items():
                for path in PATHS:
                    output, seconds = timed_generate(
                        model, inputs, **generation, **path_kwargs(path, compile_configs, name)
                    )
                    assert output.shape[1] - 1 == args.new_tokens, output.shape  # decoder start + new tokens
                    samples[(name, path)].append(seconds)
        for (name, path), seconds in samples.items():
            median = statistics.median(seconds)
            rows.append(
                {
                    "batch": batch,
                    "beams": beams,
                    "model": name,
                    "path": path,
                    "new_tokens_per_second": batch * args.new_tokens / median,
                    "median_seconds": median,
                    "seconds": seconds,
                    # first call minus a timed call: the compilation (and allocator warm-up) of this setting
                    "warmup_extra_seconds": max(0.0, warmup[(name, path)] - median),
                }
            )
        print(f"  batch {batch}, beams {beams}: done", flush=True)
    return {"rows": rows, "ratios": generation_ratios(rows)}


def generation_ratios(rows: list[dict]) -> list[dict]:
    """Per setting: Sora's paths over BART's default, and each path over BART's same path."""
    speed = {(r["batch"], r["beams"], r["model"], r["path"]): r["new_tokens_per_second"] for r in rows}
    ratios = []
    for batch, beams in SETTINGS:
        entry = {"batch": batch, "beams": beams}
        for path in PATHS:
            sora = speed[(batch, beams, "Sora", path)]
            entry[f"sora_{path}_over_bart_default"] = sora / speed[(batch, beams, "BART", "default")]
            entry[f"sora_{path}_over_bart_{path}"] = sora / speed[(batch, beams, "BART", path)]
        ratios.append(entry)
    return ratios


def load_translation_test(samples: int) -> tuple[list[str], list[str]]:
    """The first `samples` test verses (English source, Spanish reference), as the card scores them."""
    from sora_hf.data.tasks import load_task_dataset

    test = load_task_dataset("translation")["test"].select(range(samples))
    pairs = test["translation"]
    return [pair["en"] for pair in pairs], [pair["es"] for pair in pairs]


def bench_translation(args: argparse.Namespace, cpu: dict) -> dict:
    """Tokens/s and chrF of the fine-tuned translation model through every path; outputs compared with default."""
    from sora_hf.metrics import load_metric

    sources, references = load_translation_test(args.translation_samples)
    tokenizer = AutoTokenizer.from_pretrained(args.translation_model)
    fp32 = SoraForConditionalGeneration.from_pretrained(
        args.translation_model, attn_implementation="sdpa"
    ).eval()
    variants = [("fp32", "default", fp32), ("fp32", "static", fp32), ("fp32", "compiled", fp32)]
    if not skip_emulated_bf16(cpu, "the bf16 translation rows"):
        bf16 = SoraForConditionalGeneration.from_pretrained(
            args.translation_model, attn_implementation="sdpa", dtype=torch.bfloat16
        ).eval()
        variants += [("bf16", "default", bf16), ("bf16", "compiled", bf16)]
    batches = [
        tokenizer(
            sources[start : start + args.translation_batch_size],
            truncation=True,
            max_length=128,
            padding=True,
            pad_to_multiple_of=8,
            return_token_type_ids=False,
            return_tensors="pt",
        )
        for start in range(0, len(sources), args.translation_batch_size)
    ]
    # Automatic dynamic shapes: source lengths vary, so the step recompiles once with symbolic sizes.
    configs = {dtype: CompileConfig(fullgraph=True, mode="default") for dtype in ("fp32", "bf16")}
    chrf = load_metric("sacrebleu_chrf")

    def generate_batch(dtype: str, path: str, model: torch.nn.Module, batch) -> tuple[list[str], int, float]:
        kwargs = {} if path == "default" else path_kwargs(path, configs, dtype)
        output, seconds = timed_generate(model, batch, **kwargs)
        generated = output[:, 1:]  # after the decoder start token; padding after the end is no new token
        texts = [text.strip() for text in tokenizer.batch_decode(generated, skip_special_tokens=True)]
        return texts, int((generated != tokenizer.pad_token_id).sum()), seconds

    # Warm-up pass per variant (a compiled path compiles here), then timed passes interleaved batch by batch.
    warmup = {}
    for dtype, path, model in variants:
        warmup[(dtype, path)] = [generate_batch(dtype, path, model, batch) for batch in batches]
        print(f"  translation warm-up {dtype}/{path}: done", flush=True)
    timed = {(dtype, path): [] for dtype, path, _ in variants}
    for batch in batches:
        for dtype, path, model in variants:
            timed[(dtype, path)].append(generate_batch(dtype, path, model, batch))

    results, reference_texts = [], None
    for dtype, path, _ in variants:
        texts = [text for batch_texts, _, _ in timed[(dtype, path)] for text in batch_texts]
        assert texts == [t for batch_texts, _, _ in warmup[(dtype, path)] for t in batch_texts], (
            f"{dtype}/{path} is not deterministic"
        )
        reference_texts = reference_texts or texts
        new_tokens = sum(count for _, count, _ in timed[(dtype, path)])
        seconds = sum(elapsed for _, _, elapsed in timed[(dtype, path)])
        first_seconds = sum(elapsed for _, _, elapsed in warmup[(dtype, path)])
        score = chrf.compute(predictions=texts, references=references)
        results.append(
            {
                "dtype": dtype,
                "path": path,
                "new_tokens": new_tokens,
                "seconds": seconds,
                "new_tokens_per_second": new_tokens / seconds,
                "warmup_extra_seconds": max(0.0, first_seconds - seconds),
                "chrf": score["chrf"],
                "bleu": score["bleu"],
                "identical_to_fp32_default": sum(a == b for a, b in zip(texts, reference_texts)),
            }
        )
    base = results[0]["new_tokens_per_second"]
    for row in results:
        row["speedup_over_fp32_default"] = row["new_tokens_per_second"] / base
    return {
        "model": args.translation_model,
        "samples": len(sources),
        "batch_size": args.translation_batch_size,
        "generation_config": {
            k: v
            for k, v in fp32.generation_config.to_diff_dict().items()
            if k in ("max_length", "num_beams", "no_repeat_ngram_size", "length_penalty")
        },
        "rows": results,
    }


def print_tables(results: dict) -> None:
    setup = results["setup"]
    print(f"\n{describe(setup['cpu'])}; transformers {setup['transformers']}")
    generation = results["generation"]
    print(
        f"\n### Generation: {setup['new_tokens']} new tokens, new tokens/s (median of {setup['repeats']})\n"
    )
    print("| batch | beams | " + " | ".join(f"{m} {p}" for m in ("BART", "Sora") for p in PATHS) + " |")
    print("|---:|---:|" + "---:|" * 2 * len(PATHS))
    speed = {(r["batch"], r["beams"], r["model"], r["path"]): r for r in generation["rows"]}
    for ratio in generation["ratios"]:
        key = (ratio["batch"], ratio["beams"])
        cells = [
            f"{speed[(*key, m, p)]['new_tokens_per_second']:,.0f}" for m in ("BART", "Sora") for p in PATHS
        ]
        print(f"| {key[0]} | {key[1]} | {' | '.join(cells)} |")
    print("\nRatios (> 1: Sora faster). Sora's path over BART's default, and over BART's same path:\n")
    print(
        "| batch | beams | "
        + " | ".join(f"Sora {p} / BART default" for p in PATHS)
        + " | "
        + " | ".join(f"Sora {p} / BART {p}" for p in PATHS[1:])
        + " |"
    )
    print("|---:|---:|" + "---:|" * (2 * len(PATHS) - 1))
    for ratio in generation["ratios"]:
        cells = [f"{ratio[f'sora_{p}_over_bart_default']:.2f}x" for p in PATHS]
        cells += [f"{ratio[f'sora_{p}_over_bart_{p}']:.2f}x" for p in PATHS[1:]]
        print(f"| {ratio['batch']} | {ratio['beams']} | {' | '.join(cells)} |")
    print(
        "\nCompilation (first call minus a timed call), seconds; inductor's on-disk cache "
        "(/tmp/torchinductor_$USER) shortens it on later runs:\n"
    )
    print("| batch | beams | BART compiled | Sora compiled |")
    print("|---:|---:|---:|---:|")
    for ratio in generation["ratios"]:
        key = (ratio["batch"], ratio["beams"])
        bart, sora = (speed[(*key, m, "compiled")]["warmup_extra_seconds"] for m in ("BART", "Sora"))
        print(f"| {key[0]} | {key[1]} | {bart:.1f} | {sora:.1f} |")
    translation = results.get("translation")
    if translation:
        print(
            f"\n### Translation: {translation['model']}, {translation['samples']} test verses, batch "
            f"{translation['batch_size']}, {translation['generation_config']}\n"
        )
        print(
            "| dtype | path | new tokens/s | vs fp32 default | chrF | BLEU | outputs identical to fp32 default "
            "| compilation s |"
        )
        print("|---|---|---:|---:|---:|---:|---:|---:|")
        for row in translation["rows"]:
            print(
                f"| {row['dtype']} | {row['path']} | {row['new_tokens_per_second']:,.0f} | "
                f"{row['speedup_over_fp32_default']:.2f}x | {row['chrf']:.3f} | {row['bleu']:.3f} | "
                f"{row['identical_to_fp32_default']}/{translation['samples']} | {row['warmup_extra_seconds']:.1f} |"
            )


def plot(results: dict, path: Path) -> None:
    rows = results["generation"]["rows"]
    figure, axis = plt.subplots(figsize=(8, 4))
    labels = [f"b{b} {'greedy' if k == 1 else f'beam {k}'}" for b, k in SETTINGS]
    bars = [(m, p) for m in ("BART", "Sora") for p in PATHS]
    width = 0.8 / len(bars)
    speed = {(r["batch"], r["beams"], r["model"], r["path"]): r["new_tokens_per_second"] for r in rows}
    for i, (model, generation_path) in enumerate(bars):
        axis.bar(
            [s + (i - (len(bars) - 1) / 2) * width for s in range(len(SETTINGS))],
            [speed[(b, k, model, generation_path)] for b, k in SETTINGS],
            width=width,
            label=f"{model} {generation_path}",
            hatch="//" if model == "Sora" else None,
        )
    axis.set_xticks(range(len(SETTINGS)), labels)
    axis.set_ylabel("new tokens / s (median)")
    axis.set_title(
        f"Sora vs BART generation, hidden {SIZE['hidden']}, {results['setup']['new_tokens']} new tokens"
    )
    axis.legend(fontsize=7, ncol=2)
    figure.tight_layout()
    figure.savefig(path, dpi=120)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--new-tokens", type=int, default=64)
    parser.add_argument("--translation-samples", type=int, default=200, help="0 skips the translation check")
    parser.add_argument("--translation-batch-size", type=int, default=8)
    parser.add_argument("--translation-model", default=TRANSLATION_MODEL)
    parser.add_argument("--device", default="cpu", help="cpu or cuda (bench/gpu_check.sh)")
    parser.add_argument("--output-dir", default="bench/results")
    args = parser.parse_args()

    cpu = cpu_capability()
    print(describe(cpu))
    started = time.perf_counter()
    results = {
        "setup": {
            **SIZE,
            "new_tokens": args.new_tokens,
            "source_lengths": SOURCE_LENGTHS,
            "repeats": args.repeats,
            "dtype": "float32",
            "attention": "sdpa",
            "threads": torch.get_num_threads(),
            "cpu": cpu,
            "torch": torch.__version__,
            "transformers": transformers.__version__,
        },
        "generation": bench_generation(args),
    }
    if args.translation_samples and args.device == "cpu":  # the translation check measures the CPU paths
        results["translation"] = bench_translation(args, cpu)
    results["setup"]["wall_seconds"] = time.perf_counter() - started
    print_tables(results)

    output_dir = Path(args.output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    name = "generation" if args.device == "cpu" else f"generation_{args.device.split(':')[0]}"
    (output_dir / f"{name}.json").write_text(json.dumps(results, indent=2))
    plot(results, output_dir / f"{name}.png")
    print(f"\nwrote {output_dir / name}.json and .png")


if __name__ == "__main__":
    main()
