#!/usr/bin/env bash
# Where the training-speed gap comes from: the `mlp` and `dcgan` layers at batch 128, one
# at a time, forward and forward + backward, Gantry (burn flex) vs TensorFlow, in one run.
#
#   bash scripts/bench-layers-vs-reference.sh
#
# Runs `cargo bench -p trainer --bench layers` twice — through Gantry's kernels
# (trainer/src/kernels) and through burn's own ops (GANTRY_KERNELS=burn) — and
# scripts/reference_layers.py (same layer names, warm-up and statistic), then prints a
# markdown table with the ratios TensorFlow time / Gantry time (> 1: Gantry is faster) and,
# for the matrix-product layers, Gantry's forward + backward GFLOP/s against the measured
# 2048² matrix-product rate of the same run. Installs TensorFlow into /tmp/tfref on first
# use, as scripts/bench-vs-reference.sh does.
set -euo pipefail
cd "$(dirname "$0")/.."
venv=/tmp/tfref
if [ ! -x "$venv/bin/python" ] || ! "$venv/bin/python" -c 'import tensorflow' 2>/dev/null; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q tensorflow-cpu==2.21.0 numpy
fi
cargo bench -p trainer --bench layers --no-run >/dev/null 2>&1
ours=$(mktemp) burns=$(mktemp) theirs=$(mktemp)
trap 'rm -f "$ours" "$burns" "$theirs"' EXIT
cargo bench -q -p trainer --bench layers 2>/dev/null | grep '^layer=' >"$ours"
GANTRY_KERNELS=burn cargo bench -q -p trainer --bench layers 2>/dev/null | grep '^layer=' >"$burns"
TF_CPP_MIN_LOG_LEVEL=3 "$venv/bin/python" scripts/reference_layers.py 2>/dev/null | grep '^layer=' >"$theirs"

field() { sed -n "s/.*$1=\([0-9.]*\).*/\1/p"; }
peak=$(grep '^layer=matmul_2048 ' "$ours" | field gflops)
printf 'matmul_2048 (gemm, flex): %s GFLOP/s\n\n' "$peak"
printf '| layer (batch 128) | burn ops fwd+bwd ms | Gantry fwd ms | TF fwd ms | ratio | Gantry fwd+bwd ms | TF fwd+bwd ms | ratio | Gantry fwd+bwd GFLOP/s (%% of matmul) |\n'
printf '|---|---|---|---|---|---|---|---|---|\n'
while read -r line; do
  name=$(sed -n 's/^layer=\([^ ]*\).*/\1/p' <<<"$line")
  [ "$name" = matmul_2048 ] && continue
  ref=$(grep "^layer=$name " "$theirs" || true)
  burn=$(grep "^layer=$name " "$burns" || true)
  of=$(field fwd_ms <<<"$line"); ob=$(field fwd_bwd_ms <<<"$line"); work=$(field gflop <<<"$line")
  tf=$(field fwd_ms <<<"$ref"); tb=$(field fwd_bwd_ms <<<"$ref"); bb=$(field fwd_bwd_ms <<<"$burn")
  ratio() { [ -n "$1" ] && [ -n "$2" ] && awk -v a="$1" -v b="$2" 'BEGIN {printf "%.2f×", b / a}' || printf '—'; }
  # The backward pass of a matrix-product layer does twice the forward's work.
  rate=$([ -n "$work" ] && awk -v w="$work" -v t="$ob" -v p="$peak" \
    'BEGIN {r = 3 * w / (t / 1000); printf "%.0f (%.0f %%)", r, 100 * r / p}' || printf '—')
  printf '| %s | %s | %s | %s | %s | %s | %s | %s | %s |\n' "$name" "${bb:-—}" "$of" "${tf:-—}" \
    "$(ratio "$of" "$tf")" "${ob:-—}" "${tb:-—}" "$(ratio "$ob" "$tb")" "$rate"
done <"$ours"
