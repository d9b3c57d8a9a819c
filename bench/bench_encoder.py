"""Sora vs BERT of identical size, same process, same inputs: training and inference tokens/s.

    python bench/bench_encoder.py [--repeats 5] [--steps 5] [--output-dir bench/results]

Prints a markdown table (median over repeats, interleaved so machine noise hits both models alike) and
writes `encoder.json` and `encoder.png` to the output directory. Ratios are Sora/BERT: > 1 means Sora is
faster. Only ratios measured in one run mean anything on a shared machine.
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
from common import cpu_capability, describe  # noqa: E402
from transformers import BertConfig, BertForPreTraining  # noqa: E402

from sora_hf import SoraConfig, SoraForPreTraining  # noqa: E402

SIZE = dict(
    hidden_size=256,
    num_hidden_layers=4,
    num_attention_heads=4,
    intermediate_size=1024,
    vocab_size=16000,
    max_position_embeddings=512,
)
BATCH, SEQ, MASK_RATE = 16, 128, 0.15


def make_models() -> dict[str, torch.nn.Module]:
    torch.manual_seed(0)
    bert = BertForPreTraining(BertConfig(**SIZE, hidden_act="gelu"))
    sora = SoraForPreTraining(SoraConfig(**SIZE, hidden_act="gelu"))
    return {"BERT": bert, "Sora": sora}


def make_batch(padded: bool = False) -> dict[str, torch.Tensor]:
    """A full batch of `BATCH x SEQ` tokens; with `padded`, rows of random length in [SEQ/4, SEQ] padded to SEQ."""
    generator = torch.Generator().manual_seed(0)
    input_ids = torch.randint(5, SIZE["vocab_size"], (BATCH, SEQ), generator=generator)
    lengths = (
        torch.randint(SEQ // 4, SEQ + 1, (BATCH,), generator=generator)
        if padded
        else torch.full((BATCH,), SEQ)
    )
    attention_mask = (torch.arange(SEQ)[None, :] < lengths[:, None]).long()
    labels = torch.full_like(input_ids, -100)
    masked = (torch.rand(BATCH, SEQ, generator=generator) < MASK_RATE) & attention_mask.bool()
    labels[masked] = input_ids[masked]
    input_ids = input_ids.masked_fill(masked, 4).masked_fill(attention_mask == 0, 0)
    token_type_ids = torch.zeros_like(input_ids)
    token_type_ids[:, SEQ // 2 :] = 1
    return {
        "input_ids": input_ids,
        "token_type_ids": token_type_ids,
        "attention_mask": attention_mask,
        "labels": labels,
        "next_sentence_label": torch.randint(0, 2, (BATCH,), generator=generator),
    }


def time_training(model: torch.nn.Module, optimizer: torch.optim.Optimizer, batch: dict, steps: int) -> float:
    model.train()
    start = time.perf_counter()
    for _ in range(steps):
        loss = model(**batch).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
    return steps * BATCH * SEQ / (time.perf_counter() - start)


@torch.inference_mode()
def time_inference(model: torch.nn.Module, batch: dict, steps: int) -> float:
    model.eval()
    inputs = {k: batch[k] for k in ("input_ids", "token_type_ids", "attention_mask")}
    start = time.perf_counter()
    for _ in range(steps):
        model(**inputs)
    return steps * BATCH * SEQ / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--output-dir", default="bench/results")
    args = parser.parse_args()
    capability = cpu_capability()
    print(describe(capability))
    print(
        "Both models run in fp32 here (no bf16 rows: bench_pretraining.py measures bf16 where it is native)."
    )

    models, batch = make_models(), make_batch()
    optimizers = {name: torch.optim.AdamW(model.parameters(), lr=1e-4) for name, model in models.items()}
    for name, model in models.items():  # warm-up: allocator, kernels, optimizer state
        time_training(model, optimizers[name], batch, 1)
        time_inference(model, batch, 1)

    samples = {(name, mode): [] for name in models for mode in ("train", "infer")}
    for _ in range(args.repeats):
        for name, model in models.items():
            samples[(name, "train")].append(time_training(model, optimizers[name], batch, args.steps))
            samples[(name, "infer")].append(time_inference(model, batch, args.steps))
    median = {key: statistics.median(values) for key, values in samples.items()}
    results = {
        "setup": {
            **SIZE,
            **capability,
            "batch": BATCH,
            "sequence": SEQ,
            "threads": torch.get_num_threads(),
            "repeats": args.repeats,
            "steps_per_repeat": args.steps,
            "torch": torch.__version__,
        },
        "tokens_per_second": {f"{name}/{mode}": value for (name, mode), value in median.items()},
        "ratio_sora_over_bert": {
            mode: median[("Sora", mode)] / median[("BERT", mode)] for mode in ("train", "infer")
        },
    }

    print("| | BERT tokens/s | Sora tokens/s | Sora/BERT |")
    print("|---|---:|---:|---:|")
    for mode, label in (("train", "training step (MLM + NSP)"), ("infer", "inference (forward)")):
        bert, sora = median[("BERT", mode)], median[("Sora", mode)]
        print(f"| {label} | {bert:,.0f} | {sora:,.0f} | {sora / bert:.2f} |")

    output_dir = Path(args.output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    (output_dir / "encoder.json").write_text(json.dumps(results, indent=2))
    figure, axis = plt.subplots(figsize=(6, 3.5))
    modes = ["train", "infer"]
    for offset, name in ((-0.2, "BERT"), (0.2, "Sora")):
        axis.bar([i + offset for i in range(2)], [median[(name, m)] for m in modes], width=0.4, label=name)
    axis.set_xticks(range(2), ["training", "inference"])
    axis.set_ylabel("tokens / s (median)")
    axis.set_title(f"Sora vs BERT, hidden 256 x 4 layers, batch {BATCH}x{SEQ}")
    axis.legend()
    figure.tight_layout()
    figure.savefig(output_dir / "encoder.png", dpi=120)
    print(f"wrote {output_dir / 'encoder.json'} and {output_dir / 'encoder.png'}")


if __name__ == "__main__":
    main()
