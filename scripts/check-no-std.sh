#!/usr/bin/env bash
# Proves that the `firmware` crate builds without std (no features), as it must to run
# on a microcontroller.
#
# Primary check: build it for thumbv6m-none-eabi (the RP2040's Cortex-M0+), a target
# that has no std at all, so any dependency that links std fails the build.
# Fallback, when that target cannot be installed: build and run
# firmware/no-std-check, a freestanding `#![no_std] #![no_main]` host binary with
# panic=abort, which fails to link if any dependency brings std (duplicate panic_impl).
#
# Usage: scripts/check-no-std.sh [--boards] [--fallback]
#   --boards    also build the board examples: firmware/boards/rp2040 (thumbv6m) and
#               firmware/boards/pi-ssd1306 (host; aarch64 too if aarch64-linux-gnu-gcc
#               is installed). Slower: it compiles rp2040-hal and linux-embedded-hal.
#   --fallback  run the freestanding host check even if the target is available.
# Honours CARGO_TARGET_DIR. Exit status: 0 when every check ran and passed.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
target=thumbv6m-none-eabi
boards=0
force_fallback=0
for arg in "$@"; do
  case "$arg" in
    --boards) boards=1 ;;
    --fallback) force_fallback=1 ;;
    -h | --help)
      sed -n '2,17p' "$0" | sed 's/^# \{0,1\}//'
      exit 0
      ;;
    *)
      echo "check-no-std: unknown argument '$arg' (try --help)" >&2
      exit 2
      ;;
  esac
done

target_installed() {
  rustup target list --installed 2>/dev/null | grep -qx "$target"
}

have_target=0
if [[ $force_fallback -eq 0 ]]; then
  if target_installed || rustup target add "$target"; then
    have_target=1
  else
    echo "check-no-std: could not install $target; using the freestanding host fallback" >&2
  fi
fi

if [[ $have_target -eq 1 ]]; then
  cargo build --release -p firmware --lib --target "$target"
  echo "no_std check: PASSED (firmware built for $target, a target without std)"
else
  cargo build --release --manifest-path firmware/no-std-check/Cargo.toml
  bin="${CARGO_TARGET_DIR:-firmware/no-std-check/target}/release/gantry-no-std-check"
  "$bin" || {
    echo "no_std check: FAILED (freestanding binary exited with $?)" >&2
    exit 1
  }
  echo "no_std check: PASSED (fallback: freestanding #![no_std] #![no_main] host binary, panic=abort, linked and ran)"
fi

if [[ $boards -eq 1 ]]; then
  if [[ $have_target -eq 0 ]]; then
    echo "board check: FAILED ($target is needed for the RP2040 example)" >&2
    exit 1
  fi
  # .cargo/config.toml in each board folder (target, linker flags) only applies from there.
  (cd firmware/boards/rp2040 && cargo build --release)
  echo "board check: RP2040 example built for $target"
  (cd firmware/boards/pi-ssd1306 && cargo build --release)
  echo "board check: Raspberry Pi example built for the host"
  if command -v aarch64-linux-gnu-gcc >/dev/null && rustup target add aarch64-unknown-linux-gnu; then
    (cd firmware/boards/pi-ssd1306 && cargo build --release --target aarch64-unknown-linux-gnu)
    echo "board check: Raspberry Pi example built for aarch64-unknown-linux-gnu"
  else
    echo "board check: aarch64 cross build skipped (apt-get install gcc-aarch64-linux-gnu to enable)"
  fi
fi
