#!/usr/bin/env bash
# Where the training-speed gap comes from: the `mlp` and `dcgan` layers at batch 128, one
# at a time, forward and forward + backward, Gantry (burn flex) vs TensorFlow, in one run.
#
#   bash scripts/bench-layers-vs-reference.sh
#
# Runs `cargo bench -p trainer --bench layers` and scripts/reference_layers.py (same layer
# names, warm-up and statistic), then prints a markdown table with the ratios
# TensorFlow time / Gantry time (> 1: Gantry is faster). Installs TensorFlow into
# /tmp/tfref on first use, as scripts/bench-vs-reference.sh does.
set -euo pipefail
cd "$(dirname "$0")/.."
venv=/tmp/tfref
if [ ! -x "$venv/bin/python" ] || ! "$venv/bin/python" -c 'import tensorflow' 2>/dev/null; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q tensorflow-cpu==2.21.0 numpy
fi
cargo bench -p trainer --bench layers --no-run >/dev/null 2>&1
ours=$(mktemp) theirs=$(mktemp)
trap 'rm -f "$ours" "$theirs"' EXIT
cargo bench -q -p trainer --bench layers 2>/dev/null | grep '^layer=' >"$ours"
TF_CPP_MIN_LOG_LEVEL=3 "$venv/bin/python" scripts/reference_layers.py 2>/dev/null | grep '^layer=' >"$theirs"

field() { sed -n "s/.*$1=\([0-9.]*\).*/\1/p"; }
printf '| layer (batch 128) | Gantry fwd ms | TF fwd ms | ratio | Gantry fwd+bwd ms | TF fwd+bwd ms | ratio |\n'
printf '|---|---|---|---|---|---|---|\n'
while read -r line; do
  name=$(sed -n 's/^layer=\([^ ]*\).*/\1/p' <<<"$line")
  ref=$(grep "^layer=$name " "$theirs" || true)
  of=$(field fwd_ms <<<"$line"); ob=$(field fwd_bwd_ms <<<"$line")
  tf=$(field fwd_ms <<<"$ref"); tb=$(field fwd_bwd_ms <<<"$ref")
  ratio() { [ -n "$1" ] && [ -n "$2" ] && awk -v a="$1" -v b="$2" 'BEGIN {printf "%.2f×", b / a}' || printf '—'; }
  printf '| %s | %s | %s | %s | %s | %s | %s |\n' "$name" "$of" "${tf:-—}" "$(ratio "$of" "$tf")" \
    "${ob:-—}" "${tb:-—}" "$(ratio "$ob" "$tb")"
done <"$ours"
