#!/usr/bin/env bash
# A short `base` pretraining on CUDA: training tokens/s and model FLOP utilisation (MFU), twice.
#   1. bench/bench_pretraining_presets.py --device cuda --presets base: the training step alone (packed synthetic
#      rows, fp32 and bf16 autocast), MFU against the bf16 matmul peak measured in the same run and against the
#      H100's 989 TFLOP/s. Its JSON is what bench_pretraining_presets.py on the CPU reads for a measured projection.
#   2. examples/run_pretraining.py --model_size base --streaming true --bf16: the real command (streaming corpus,
#      collator, Trainer) for STEPS steps on every visible GPU, tokens/s after its warm-up steps. Needs the offline
#      corpus sources (DATA.md); without them this part says so and is skipped.
# On a machine without CUDA it says so and exits 0.
#
#     bash bench/gpu_pretrain.sh     # PY=python OUT=folder BATCH=64 MAX_LENGTH=128 STEPS=60 MAX_DOCS=20000
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
OUT=${OUT:-bench/results/gpu}
BATCH=${BATCH:-64}
MAX_LENGTH=${MAX_LENGTH:-128}
STEPS=${STEPS:-60}
MAX_DOCS=${MAX_DOCS:-20000}
H100_PEAK=989e12

if ! "$PY" -c 'import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)'; then
  torch_version=$("$PY" -c 'import torch; print(torch.__version__)')
  if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then
    echo "gpu_pretrain: a GPU is present but torch $torch_version cannot use it (a CPU build?): install a CUDA build of torch."
  else
    echo "gpu_pretrain: no CUDA device on this machine (torch $torch_version): nothing to run."
  fi
  exit 0
fi

mkdir -p "$OUT"
GPUS=$("$PY" -c 'import torch; print(torch.cuda.device_count())')
"$PY" -c 'import torch; print("gpu_pretrain:", torch.cuda.get_device_name(), "x", torch.cuda.device_count(), "| torch", torch.__version__)'

# 1. the training step alone
"$PY" bench/bench_pretraining_presets.py --device cuda --presets base --batch-size "$BATCH" \
  --max-length "$MAX_LENGTH" --warmup 5 --steps 20 --output-dir "$OUT"

# 2. the real command, streaming, bf16, on every GPU
run="$OUT/pretrain_base"
if "$PY" -c "from sora_hf.data.corpus import build_corpus; build_corpus(max_docs_per_source=$MAX_DOCS, verbose=False)"; then
  launch=("$PY")
  if [ "$GPUS" -gt 1 ]; then
    launch=("$PY" -m accelerate.commands.launch --multi_gpu --num_processes "$GPUS" --mixed_precision bf16)
  fi
  "${launch[@]}" examples/run_pretraining.py --output_dir "$run" --model_size base --streaming true \
    --max_docs_per_source "$MAX_DOCS" --tokenizer_name_or_path src/sora_hf/checkpoints/sora \
    --max_length "$MAX_LENGTH" --per_device_train_batch_size "$BATCH" --max_steps "$STEPS" \
    --throughput_warmup_steps 10 --learning_rate 3e-4 --warmup_steps 10 --bf16 --save_strategy no \
    --eval_strategy no --max_eval_samples 256 --logging_steps 10 --report_to none --streaming_num_shards 64
else
  echo "gpu_pretrain: the offline corpus cannot be built here (see the error above and DATA.md): the" \
    "run_pretraining part is skipped."
fi

"$PY" - "$OUT" "$run" "$H100_PEAK" <<'EOF'
import json, sys
from pathlib import Path

out, run, h100 = Path(sys.argv[1]), Path(sys.argv[2]), float(sys.argv[3])
bench = json.loads((out / "pretraining_presets_cuda.json").read_text())
peak = bench["setup"]["matmul_peak_flops"]["bf16"]
print(f"\n{bench['setup']['device_name']}: bf16 matmul peak measured {peak / 1e12:,.0f} TFLOP/s (H100 SXM spec: "
      f"{h100 / 1e12:,.0f})")
print("| run | tokens/s | model TFLOP/s | MFU vs measured peak | MFU vs 989 TFLOP/s |\n|---|---:|---:|---:|---:|")
base = bench["presets"]["base"]
for dtype, row in base["runs"].items():  # each dtype against its own measured matmul peak
    achieved, own_peak = row["model_flops_per_second"], bench["setup"]["matmul_peak_flops"][dtype]
    print(f"| base training step, {dtype}, batch {bench['setup']['batch_size']} x {bench['setup']['max_length']} | "
          f"{row['tokens_per_second']:,.0f} | {achieved / 1e12:,.1f} | {achieved / own_peak:.1%} | "
          f"{achieved / h100:.1%} |")
results = run / "pretraining_results.json"
if results.exists():
    summary = json.loads(results.read_text())
    throughput = summary["throughput"]
    if "model_flops_per_second" in throughput:
        achieved = throughput["model_flops_per_second"]
        gpus = summary["processes"]
        print(f"| run_pretraining --model_size base --streaming --bf16, {gpus} GPU(s), {throughput['steps']} steps | "
              f"{throughput['tokens_per_second']:,.0f} | {achieved / 1e12:,.1f} | {achieved / (gpus * peak):.1%} | "
              f"{achieved / (gpus * h100):.1%} |")
EOF
