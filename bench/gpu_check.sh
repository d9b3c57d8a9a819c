#!/usr/bin/env bash
# GPU readiness: run the inference, generation and pretraining benchmarks on CUDA (bf16, SDPA, and flash attention
# where flash_attn is installed) and print one table. On a machine without CUDA it says so and exits 0.
#
#     bash bench/gpu_check.sh            # PY=/path/to/python to use another interpreter; OUT=folder for results
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
OUT=${OUT:-bench/results/gpu}

if ! "$PY" -c 'import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)'; then
  torch_version=$("$PY" -c 'import torch; print(torch.__version__)')
  if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then
    echo "gpu_check: a GPU is present but torch $torch_version cannot use it (a CPU build?): install a CUDA build of torch."
  else
    echo "gpu_check: no CUDA device on this machine (torch $torch_version): nothing to run."
  fi
  exit 0
fi

mkdir -p "$OUT"
"$PY" -c 'import torch; print("gpu_check:", torch.cuda.get_device_name(), "| torch", torch.__version__)'
"$PY" bench/bench_inference.py --device cuda --paths fp32,bf16,compile --output-dir "$OUT"
if "$PY" -c 'import flash_attn' >/dev/null 2>&1; then
  "$PY" bench/bench_inference.py --device cuda --paths bf16 --attn-implementation flash_attention_2 \
    --output-dir "$OUT/flash_attention_2"
else
  echo "gpu_check: flash_attn is not installed: flash-attention rows skipped (pip install flash-attn)"
fi
"$PY" bench/bench_generation.py --device cuda --output-dir "$OUT"
"$PY" bench/bench_pretraining.py --device cuda --output-dir "$OUT"

# One table from the three result files.
"$PY" - "$OUT" <<'EOF'
import json, sys
from pathlib import Path

out = Path(sys.argv[1])
print("\n| benchmark | setting | Sora | baseline | Sora / baseline |\n|---|---|---:|---:|---:|")
for folder in [out, out / "flash_attention_2"]:
    path = folder / "inference_cuda.json"
    if not path.exists():
        continue
    rows = json.loads(path.read_text())["rows"]
    speed = {(r["pair"], r["model"], r["path"], r["batch_size"], r["order"]): r["real_tokens_per_s"]
             for r in rows if "real_tokens_per_s" in r}
    for (pair, model, path_name, batch, order), value in speed.items():
        if model != "Sora":
            continue
        other = "BERT" if pair == "size" else "MiniLM"
        base = speed.get((pair, other, path_name, batch, order))
        if base:
            label = f"inference {pair} {path_name} ({folder.name})"
            print(f"| {label} | batch {batch} {order} | {value:,.0f} tok/s | {base:,.0f} tok/s | {value / base:.2f} |")
generation = out / "generation_cuda.json"
if generation.exists():
    rows = json.loads(generation.read_text())["generation"]["rows"]
    speed = {(r["batch"], r["beams"], r["model"], r["path"]): r["new_tokens_per_second"] for r in rows}
    for (batch, beams, model, path_name), value in speed.items():
        base = speed.get((batch, beams, "BART", "default"))
        if model == "Sora" and base:
            print(f"| generation {path_name} | batch {batch} beams {beams} | {value:,.0f} tok/s | {base:,.0f} tok/s "
                  f"(BART default) | {value / base:.2f} |")
pretraining = out / "pretraining_cuda.json"
if pretraining.exists():
    result = json.loads(pretraining.read_text())
    for run, ratio in result["ratio_vs_bert_fp32"].items():
        print(f"| pretraining step | {run} | {result['tokens_per_second'][run]:,.0f} tok/s | - | {ratio:.2f} |")
EOF
