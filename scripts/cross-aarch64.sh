#!/usr/bin/env bash
# Cross-builds the `runtime` CLI for a 64-bit Raspberry Pi (aarch64-unknown-linux-gnu), runs
# `runtime info` and `runtime generate` on a model under qemu-aarch64-static, and checks the
# output against the same command run natively: same image count, labels and IDX layout, and
# the same noise fingerprint (the seeded noise is bit-identical across architectures).
# Pixels may differ by a rounding step, since tract uses other SIMD kernels on each CPU; the
# script prints how many differ and by how much (at most 2 of 255 allowed).
#
# Usage: scripts/cross-aarch64.sh [MODEL.onnx]
#   MODEL  generator to run (default: models/mnist-mlp-cond.onnx, else the first models/*.onnx; if there is none, a
#          random-weight conditional dcgan written by the runtime's random_generator example).
# Installs what it needs: the rustup target, and with apt-get (as root or through sudo)
# gcc-aarch64-linux-gnu, libc6-dev-arm64-cross and qemu-user-static.
# Builds into target/aarch64 (override with AARCH64_TARGET_DIR) so the host build is left alone.
# The binary to copy to the Pi: target/aarch64/aarch64-unknown-linux-gnu/release/runtime
# Exit status: 0 when the cross build ran under qemu and its output checked out.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
target=aarch64-unknown-linux-gnu
target_dir="${AARCH64_TARGET_DIR:-$root/target/aarch64}"
sysroot=/usr/aarch64-linux-gnu

case "${1:-}" in
  -h | --help)
    sed -n '2,17p' "$0" | sed 's/^# \{0,1\}//'
    exit 0
    ;;
esac

step() { printf '\n==> %s\n' "$*"; }

step "installing the toolchain pieces"
if ! rustup target list --installed | grep -qx "$target"; then
  rustup target add "$target"
fi
missing=()
command -v aarch64-linux-gnu-gcc >/dev/null || missing+=(gcc-aarch64-linux-gnu)
[ -f "$sysroot/include/stdio.h" ] || missing+=(libc6-dev-arm64-cross)
command -v qemu-aarch64-static >/dev/null || missing+=(qemu-user-static)
if [ "${#missing[@]}" -gt 0 ]; then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}"
fi
echo "rustup target $target, $(aarch64-linux-gnu-gcc --version | head -1), $(qemu-aarch64-static --version | head -1)"

step "cross-building runtime for $target (into $target_dir)"
export CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_LINKER=aarch64-linux-gnu-gcc
export CC_aarch64_unknown_linux_gnu=aarch64-linux-gnu-gcc
export AR_aarch64_unknown_linux_gnu=aarch64-linux-gnu-ar
cargo build --release -p runtime --bin runtime --target "$target" --target-dir "$target_dir"
cross_bin="$target_dir/$target/release/runtime"
file "$cross_bin" 2>/dev/null || true

step "building the host runtime for comparison"
cargo build --release -p runtime --bin runtime --example random_generator
host_bin="$root/target/release/runtime"

work="$(mktemp -d "${TMPDIR:-/tmp}/gantry-aarch64.XXXXXX")"
trap 'rm -rf "$work"' EXIT
model="${1:-}"
if [ -z "$model" ]; then
  # The small conditional mlp when shipped (fast under emulation), else any shipped model.
  if [ -f models/mnist-mlp-cond.onnx ]; then
    model=models/mnist-mlp-cond.onnx
  else
    model="$(ls models/*.onnx 2>/dev/null | head -1 || true)"
  fi
fi
if [ -z "$model" ]; then
  model="$work/random-dcgan-cond.onnx"
  "$root/target/release/examples/random_generator" --arch dcgan --conditional --out "$model"
fi
[ -f "$model" ] || { echo "cross-aarch64: model $model not found" >&2; exit 1; }

# Under qemu, tract warns that /proc/cpuinfo lacks the "Features" line (it is the host's): expected.
qemu() { qemu-aarch64-static -L "$sysroot" "$cross_bin" "$@"; }

step "runtime info under qemu-aarch64"
qemu info --model "$model"

count=64
seed=7
step "runtime generate under qemu-aarch64 ($count images, seed $seed, IDX)"
start=$(date +%s.%N)
qemu generate --model "$model" --count "$count" --seed "$seed" --out "$work/aarch64" --format idx --quiet
end=$(date +%s.%N)
echo "took $(awk "BEGIN { printf \"%.1f\", $end - $start }") s under emulation"
qemu generate --model "$model" --count 16 --seed "$seed" --out "$work/aarch64-png" --format png --quiet
"$host_bin" generate --model "$model" --count "$count" --seed "$seed" --out "$work/host" --format idx --quiet

step "checking the aarch64 output against the host's"
fail=0
fingerprint() { grep -o '"fingerprint": "[0-9a-f]*"' "$1/manifest.json"; }
counts() { tr -d ' \n' <"$1/manifest.json" | grep -o '"counts":\[[0-9,]*\]'; }
if [ "$(fingerprint "$work/aarch64")" = "$(fingerprint "$work/host")" ]; then
  echo "ok: same noise fingerprint on both architectures: $(fingerprint "$work/host")"
else
  echo "FAIL: noise fingerprints differ: aarch64 $(fingerprint "$work/aarch64"), host $(fingerprint "$work/host")"
  fail=1
fi
if [ "$(counts "$work/aarch64")" = "$(counts "$work/host")" ]; then
  echo "ok: same class counts: $(counts "$work/host")"
else
  echo "FAIL: class counts differ: $(counts "$work/aarch64") vs $(counts "$work/host")"
  fail=1
fi
images=images-idx3-ubyte
[ -f "$work/host/$images" ] || images=images-idx4-ubyte
for f in "$images" labels-idx1-ubyte; do
  [ -f "$work/host/$f" ] || continue
  a="$work/aarch64/$f"
  h="$work/host/$f"
  if [ ! -f "$a" ] || [ "$(stat -c %s "$a")" != "$(stat -c %s "$h")" ]; then
    echo "FAIL: $f missing or of another size on aarch64"
    fail=1
    continue
  fi
  # Bytes that differ, and the largest difference (cmp -l prints offsets and octal values).
  read -r ndiff maxdiff < <(cmp -l "$a" "$h" | awk '
    function oct(s,  v, i) { v = 0; for (i = 1; i <= length(s); i++) v = v * 8 + substr(s, i, 1); return v }
    { d = oct($2) - oct($3); if (d < 0) d = -d; if (d > m) m = d; n++ }
    END { print n + 0, m + 0 }')
  total=$(stat -c %s "$h")
  echo "$f: $ndiff of $total bytes differ, largest difference $maxdiff"
  if [ "$f" = labels-idx1-ubyte ] && [ "$ndiff" -ne 0 ]; then fail=1; fi
  if [ "$maxdiff" -gt 2 ]; then fail=1; fi
done
pngs=$(find "$work/aarch64-png" -name '*.png' | wc -l)
if [ "$pngs" -eq 16 ]; then echo "ok: 16 PNG files written under qemu"; else echo "FAIL: $pngs PNG files"; fail=1; fi

# Filtered augmentation on the Pi: images/s with `--filter` (the shipped classifier) against
# plain sampling, in one run under the same emulator; the ratio is what a Pi user pays.
classifier="${FILTER_CLASSIFIER:-models/classifier-mnist-10k.onnx}"
if [ -f "$classifier" ] && ! "$host_bin" info --model "$model" | grep -q "^classes: *none"; then
  step "generate with --filter under qemu-aarch64 (images/s, filtered vs plain)"
  rate() {
    local start end
    start=$(date +%s.%N)
    qemu generate --model "$model" --count 200 --seed "$seed" --out "$work/$1" --format idx --quiet "${@:2}" >/dev/null
    end=$(date +%s.%N)
    awk "BEGIN { printf \"%.1f\", 200 / ($end - $start) }"
  }
  plain=$(rate rate-plain)
  filtered=$(rate rate-filtered --filter "$classifier" --min-confidence 0.9)
  accepted=$(tr -d ' \n' <"$work/rate-filtered/manifest.json" | grep -o '"accepted":\[[0-9,]*\]' || true)
  echo "plain: $plain images/s; --filter $classifier --min-confidence 0.9: $filtered images/s ($(awk "BEGIN { printf \"%.2f\", $filtered / $plain }")x); $accepted"
  counts "$work/rate-filtered" >/dev/null || { echo "FAIL: the filtered data set has no counts"; fail=1; }
fi

if [ "$fail" -ne 0 ]; then
  echo "cross-aarch64: FAILED" >&2
  exit 1
fi
echo
echo "cross-aarch64: OK — copy $cross_bin to the Pi (it needs only glibc)."
