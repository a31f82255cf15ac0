#!/usr/bin/env bash
# Training speed on a real GPU through burn's wgpu backend: the book's `mlp` and `dcgan`,
# 300 steps each at batch 128 on the bundled MNIST-10k, steps/s per model.
#
#   bash scripts/bench-gpu.sh [TRAINER_BINARY]
#
# Without an argument it builds `trainer --features wgpu` into target/wgpu (about an hour
# from clean on two cores). The GPU machine needs no network and no Rust: build the binary
# elsewhere, copy it with this repository's data/ and scripts/, and pass its path.
# Prints `gpu=NAME`, then one `model=… steps=300 seconds=… steps_per_s=… steady_steps_per_s=…`
# line per model (steady: after the first 50 steps, which include shader compilation).
# Fails if the trainer falls back to the CPU.
set -euo pipefail
cd "$(dirname "$0")/.."
bin="${1:-}"
if [ -z "$bin" ]; then
  CARGO_TARGET_DIR=target/wgpu cargo build --release -p trainer --features wgpu
  bin=target/wgpu/release/trainer
fi
[ -x "$bin" ] || { echo "error: $bin is not an executable trainer binary" >&2; exit 1; }

gpu=$(nvidia-smi --query-gpu=name --format=csv,noheader 2>/dev/null | head -1 || true)
[ -n "$gpu" ] || gpu=$(vulkaninfo --summary 2>/dev/null | sed -n 's/.*deviceName *= *//p' | head -1 || true)
echo "gpu=${gpu:-unknown (no nvidia-smi or vulkaninfo)}"

out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
for model in mlp dcgan; do
  log="$out/$model.log"
  start=$(date +%s.%N)
  "$bin" train --backend wgpu --model "$model" --batch-size 128 --steps 300 \
    --dataset data/mnist-10k --log-every 50 --sample-every 100000 --checkpoint-every 100000 \
    --out "$out/$model" >"$log" 2>&1 || { cat "$log" >&2; exit 1; }
  end=$(date +%s.%N)
  if grep -q "falling back to the CPU" "$log"; then
    echo "error: no usable GPU adapter; the run fell back to the CPU (log: see above)" >&2
    cat "$log" >&2
    exit 1
  fi
  # metrics.jsonl: one line per 50 steps with the mean step time; skip the first line.
  steady=$(sed -n 's/.*"step_ms":\([0-9.e+-]*\).*/\1/p' "$out/$model/metrics.jsonl" |
    awk 'NR > 1 {sum += $1; n++} END {if (n) printf "%.1f", 1000 * n / sum; else print "n/a"}')
  awk -v m="$model" -v s="$start" -v e="$end" -v st="$steady" \
    'BEGIN {printf "model=%s steps=300 seconds=%.1f steps_per_s=%.1f steady_steps_per_s=%s\n", m, e - s, 300 / (e - s), st}'
done
