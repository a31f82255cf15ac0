#!/usr/bin/env bash
# Time to quality: how long each training recipe runs on this machine until the project's
# evaluation classifier calls its generator good — FID at most 4× and 2× the real-vs-real
# floor — and what FID and conditional accuracy it ends with.
#
#   bash scripts/time-to-quality.sh [NAME ...]     # default: every candidate below
#
# Each candidate trains on the bundled MNIST-10k with the in-training evaluation on
# (models/classifier-mnist-10k.bpk, $SAMPLES generated images every $EVERY steps) and stops
# at 2× the floor or at its step cap. The clock is `train_s` of metrics.jsonl: seconds spent
# in training steps (evaluations, sample grids and checkpoints not counted). The floor is
# measured at the same sample count (`trainer eval` prints it beside every FID). Prints a
# markdown table; the run folders stay in $OUT (default runs/time-to-quality).
set -euo pipefail
cd "$(dirname "$0")/.."
samples="${SAMPLES:-2000}"
every="${EVERY:-250}"
out="${OUT:-runs/time-to-quality}"
classifier=models/classifier-mnist-10k.bpk

# name | flags (each capped by its own --steps)
candidates=(
  "book-ch3|--config trainer/configs/book-ch3.toml --steps 20000"
  "mlp-cond|--config trainer/configs/book-ch3.toml --conditional --steps 20000"
  "conditional-dcgan|--config trainer/configs/conditional-dcgan.toml --steps 4000"
  "default|--steps 4800"
  "default-lr4e-4|--lr-g 4e-4 --lr-d 4e-4 --steps 4800"
)
if [ $# -gt 0 ]; then
  wanted=" $* "
  keep=()
  for c in "${candidates[@]}"; do
    [[ "$wanted" == *" ${c%%|*} "* ]] && keep+=("$c")
  done
  candidates=("${keep[@]}")
fi

cargo build --release -p trainer >/dev/null 2>&1 || cargo build --release -p trainer
bin=target/release/trainer
mkdir -p "$out"
"$bin" eval --model models/mnist-dcgan-cond.onnx --samples "$samples" --json "$out/floor.json" >/dev/null
floor=$(python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["report"]["floor"]["fid"])' "$out/floor.json")
target=$(awk -v f="$floor" 'BEGIN {printf "%.4f", 2 * f}')
echo "real-vs-real floor at $samples samples: FID $floor (2× = $target, 4× = $(awk -v f="$floor" 'BEGIN {print 4 * f}'))"
echo
echo "| recipe | steps/s | minutes to FID ≤ 4× floor | minutes to FID ≤ 2× floor | steps | last FID | conditional accuracy | flags |"
echo "|---|---|---|---|---|---|---|---|"
for c in "${candidates[@]}"; do
  name="${c%%|*}"
  flags="${c#*|}"
  run="$out/$name"
  rm -rf "$run"
  # shellcheck disable=SC2086 # flags are words by design
  "$bin" train $flags --eval-classifier "$classifier" --eval-every "$every" \
    --until-fid "$target" --checkpoint-every 1000000 --sample-every 1000000 --out "$run" \
    >"$out/$name.log" 2>&1 || { echo "| $name | failed: see $out/$name.log |"; continue; }
  python3 - "$run/metrics.jsonl" "$floor" "$name" "$flags" <<'EOF'
import json, sys
path, floor, name, flags = sys.argv[1], float(sys.argv[2]), sys.argv[3], sys.argv[4]
lines = [json.loads(l) for l in open(path) if l.strip()]
evaluated = [l for l in lines if l.get("quality")]
def minutes_to(limit):
    hit = next((l for l in evaluated if l["quality"]["fid"] <= limit), None)
    return f"{hit['train_s'] / 60:.1f} (step {hit['step']})" if hit else "not reached"
last = lines[-1]
q = evaluated[-1]["quality"] if evaluated else {}
steps_per_s = last["step"] / last["train_s"] if last.get("train_s") else float("nan")
acc = q.get("conditional_accuracy")
print(f"| {name} | {steps_per_s:.1f} | {minutes_to(4 * floor)} | {minutes_to(2 * floor)} | {last['step']} "
      f"| {q.get('fid', float('nan')):.2f} | {'—' if acc is None else f'{100 * acc:.1f} %'} | `{flags}` |")
EOF
done
