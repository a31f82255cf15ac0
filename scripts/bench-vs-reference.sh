#!/usr/bin/env bash
# Training speed, Gantry vs the book's TensorFlow reference, side by side in one run.
#
#   bash scripts/bench-vs-reference.sh [ROUNDS]          (MODELS=mlp for one model)
#
# Alternates our bench (`cargo bench -p trainer --bench train_step`) and
# ../shared/reference/keras_ch3_gan.py ROUNDS times (default 3) for the `mlp` (ch3) and
# `dcgan` (ch4) models at batch 128 on MNIST-10k, then prints a markdown table of
# steps/s and ratios (medians). Installs TensorFlow into /tmp/tfref on first use.
set -euo pipefail
cd "$(dirname "$0")/.."
rounds="${1:-3}"
reference="${REFERENCE_DIR:-../shared/reference}"
data="$PWD/data/mnist-10k"
venv=/tmp/tfref
if [ ! -x "$venv/bin/python" ] || ! "$venv/bin/python" -c 'import tensorflow' 2>/dev/null; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q tensorflow-cpu==2.21.0 numpy
fi
cargo bench -p trainer --bench train_step --no-run >/dev/null 2>&1

ours() { cargo bench -q -p trainer --bench train_step -- "$1" "$2" 2>/dev/null | sed -n 's/.*steps_per_s=\([0-9.]*\).*/\1/p'; }
theirs() {
  local flag=""; [ "$1" = dcgan ] && flag="--dcgan"
  (cd "$reference" && TF_CPP_MIN_LOG_LEVEL=3 "$venv/bin/python" keras_ch3_gan.py "$data" "$2" /tmp/ref_bench $flag 2>/dev/null) |
    sed -n 's/.*steps_per_s=\([0-9.]*\).*/\1/p'
}
median() { sort -g | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }

printf '| model | Gantry steps/s (flex CPU) | TensorFlow reference steps/s | ratio |\n|---|---|---|---|\n'
for model in ${MODELS:-mlp dcgan}; do
  if [ "$model" = mlp ]; then ours_steps=3000; ref_steps=3020; else ours_steps=100; ref_steps=120; fi
  o=(); t=()
  for _ in $(seq "$rounds"); do
    o+=("$(ours "$model" "$ours_steps")")
    t+=("$(theirs "$model" "$ref_steps")")
  done
  om=$(printf '%s\n' "${o[@]}" | median); tm=$(printf '%s\n' "${t[@]}" | median)
  ratio=$(awk -v a="$om" -v b="$tm" 'BEGIN {printf "%.2f", a / b}')
  printf '| %s | %s (runs: %s) | %s (runs: %s) | %s× |\n' "$model" "$om" "${o[*]}" "$tm" "${t[*]}" "$ratio"
done
