#!/usr/bin/env bash
# Measures the firmware's int8 generator on two emulated microcontrollers and checks
# that their pixels equal the host's:
#   Cortex-M0 (thumbv6m-none-eabi, qemu-system-arm -M microbit)
#   Cortex-M4 (thumbv7em-none-eabihf, qemu-system-arm -M mps2-an386)
#
# qemu runs with -icount shift=0 (one instruction per virtual nanosecond), so the
# benchmark in firmware/bench-mcu counts instructions with SysTick: per MAC for the dense
# kernels (firmware::dense: four output channels per pass, two per MULS on the M0), per
# generated sample (Model::generate and Model::generate_pair), and their stack
# high-water marks by painting. Instructions become cycles with each core's timing
# table applied to the hot loop of the kernel, read from the disassembly (see
# docs/BENCHMARKS.md for the tables and what this does not model).
#
# Usage: scripts/bench-mcu.sh [--no-install]
#   --no-install  fail instead of installing what is missing (rustup targets,
#                 qemu-system-arm and llvm-objdump through apt-get, python3).
# Honours CARGO_TARGET_DIR. Exit status: 0 when both emulators ran, their on-target
# kernel self-tests passed and their pixel checksums equal the host's; 1 otherwise;
# 2 for a usage error.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
install=1
for arg in "$@"; do
  case "$arg" in
    --no-install) install=0 ;;
    -h | --help)
      awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"
      exit 0
      ;;
    *)
      echo "bench-mcu: unknown argument '$arg' (try --help)" >&2
      exit 2
      ;;
  esac
done

fail() {
  echo "bench-mcu: FAILED: $*" >&2
  exit 1
}

apt_install() {
  [[ $install -eq 1 ]] || fail "$1 is missing (run without --no-install, or apt-get install $2)"
  local sudo=""
  [[ $(id -u) -eq 0 ]] || sudo="sudo"
  echo "bench-mcu: installing $2" >&2
  $sudo apt-get update -qq && $sudo apt-get install -y -qq "$2" >/dev/null ||
    fail "could not install $2"
}

targets=(thumbv6m-none-eabi thumbv7em-none-eabihf)
for t in "${targets[@]}"; do
  if ! rustup target list --installed | grep -qx "$t"; then
    [[ $install -eq 1 ]] || fail "rust target $t is missing (rustup target add $t)"
    rustup target add "$t" >/dev/null || fail "rustup target add $t"
  fi
done
command -v qemu-system-arm >/dev/null || apt_install qemu-system-arm qemu-system-arm
command -v llvm-objdump >/dev/null || apt_install llvm-objdump llvm
command -v python3 >/dev/null || apt_install python3 python3
qemu_version="$(qemu-system-arm --version | head -n1)"

out="$(mktemp -d)"
trap 'rm -rf "$out"' EXIT

# The host's checksum: Model::generate, cross-checked against the specification.
cargo run --quiet --release -p firmware --example mcu_reference >"$out/host.txt" ||
  fail "host reference (cargo run -p firmware --example mcu_reference)"
host_crc="$(sed -n 's/^pixels crc32: //p' "$out/host.txt")"

bench_dir="firmware/bench-mcu"
target_dir="${CARGO_TARGET_DIR:-$root/$bench_dir/target}"
for t in "${targets[@]}"; do
  (cd "$bench_dir" && cargo build --quiet --release --target "$t") || fail "building the benchmark for $t"
  elf="$target_dir/$t/release/gantry-bench-mcu"
  # The runner in firmware/bench-mcu/.cargo/config.toml holds the qemu command line;
  # qemu writes the guest's semihosting output to its standard error.
  (cd "$bench_dir" && timeout 300 cargo run --quiet --release --target "$t") >"$out/$t.txt" 2>&1 ||
    {
      cat "$out/$t.txt" >&2
      fail "the benchmark for $t exited with an error (qemu status above)"
    }
  llvm-objdump -d --no-show-raw-insn "$elf" >"$out/$t.dis"
done

python3 - "$out" "$host_crc" "$qemu_version" <<'PY'
"""Reads the emulator reports and the disassemblies, prints the figures, exits 1 on a
pixel mismatch or a failed self-test."""
import re
import sys

out, host_crc, qemu_version = sys.argv[1], sys.argv[2], sys.argv[3]

# Cycles per instruction class. Cortex-M0+: Arm DDI 0484C, table "Cortex-M0+ instruction
# timings", with the single-cycle multiplier (as on the RP2040). Cortex-M4: Arm DDI
# 0439B, "Processor instruction timings", with no credit for pipelined neighbouring
# loads and a taken branch at 1 + P with P = 2.
M0PLUS = dict(load=2, ldrd=None, mul=1, taken=2, alu=1)
M4 = dict(load=2, ldrd=3, mul=1, taken=3, alu=1)
# Per target: the core whose timing applies, its table, the function holding the
# kernel's hot loop, and the MACs each multiply instruction of that kernel does (the
# M0's MULS forms the products of two output channels at once).
CORES = {
    "thumbv6m-none-eabi": (
        "Cortex-M0+ (timing; qemu runs a Cortex-M0)",
        M0PLUS,
        "gantry_dense_groups_thumbv6m",
        {"muls": 2},
    ),
    "thumbv7em-none-eabihf": (
        "Cortex-M4",
        M4,
        "gantry_dense_groups_thumbv7em",
        {"smlabb": 1, "smlatb": 1},
    ),
}
BRANCH = re.compile(r"b(eq|ne|cs|hs|cc|lo|mi|pl|vs|vc|hi|ls|ge|lt|gt|le)?(\.w|\.n)?")


def registers(operands):
    """How many registers a register list such as {r4, r5-r7} names."""
    body = operands[operands.index("{") + 1 : operands.index("}")]
    count = 0
    for part in body.split(","):
        part = part.strip()
        if "-" in part:
            lo, hi = (int(p.strip().lstrip("r")) for p in part.split("-"))
            count += hi - lo + 1
        elif part:
            count += 1
    return count


def cycles(mnemonic, operands, table, taken):
    m = mnemonic.split(".")[0]
    if m in ("ldm", "ldmia", "stm", "stmia", "push", "pop"):
        return 1 + registers(operands) + (table["taken"] if "pc" in operands else 0)
    if m in ("ldrd", "strd"):
        return table["ldrd"]
    if re.fullmatch(r"(ldr|str)(b|h|sb|sh)?", m):
        return table["load"]
    if m in ("muls", "mul", "mla") or m.startswith("smul") or m.startswith("smla"):
        return table["mul"]
    if re.fullmatch(r"b(l|lx|x)?(eq|ne|cs|hs|cc|lo|mi|pl|vs|vc|hi|ls|ge|lt|gt|le)?", m):
        return table["taken"] if taken else 1
    return table["alu"]


def function(dis, name):
    """(address, mnemonic, operands) of each instruction of `name`."""
    lines, inside = [], False
    for line in dis.splitlines():
        if re.match(r"^[0-9a-f]+ <", line):
            inside = line.rstrip().endswith(f"<{name}>:")
            continue
        m = re.match(r"^\s*([0-9a-f]+):\s+(\S+)\s*(.*)$", line)
        if inside and m:
            ops = m.group(3).split("@")[0].strip()
            lines.append((int(m.group(1), 16), m.group(2), ops))
    if not lines:
        sys.exit(f"bench-mcu: FAILED: no function {name} in the disassembly")
    return lines


def hot_loop(insns, table, macs_per):
    """The innermost loop (a backward branch with no other backward branch inside) that
    holds the most MACs: (instructions, cycles, MACs) per iteration, its closing branch
    taken and any other branch in it not taken."""
    loops = []
    for addr, mn, ops in insns:
        target = re.match(r"^(0x)?([0-9a-f]+)", ops)
        if BRANCH.fullmatch(mn) and target and int(target.group(2), 16) < addr:
            loops.append((int(target.group(2), 16), addr))
    best = None
    for dest, end in loops:
        if any(dest <= d and e < end for d, e in loops if (d, e) != (dest, end)):
            continue  # an inner loop exists: this one is not innermost
        body = [x for x in insns if dest <= x[0] <= end]
        macs = sum(macs_per.get(x[1].split(".")[0], 0) for x in body)
        cyc = sum(cycles(x[1], x[2], table, taken=(x[0] == end)) for x in body)
        if macs and (best is None or macs > best[2]):
            best = (len(body), cyc, macs)
    if best is None:
        sys.exit("bench-mcu: FAILED: no multiply loop found")
    return best


failed = False
print(f"emulator: {qemu_version}, -icount shift=0 (1 instruction = 1 virtual ns)")
print(f"host pixels crc32: {host_crc}")
for target, (core, table, kernel, macs_per) in CORES.items():
    report = open(f"{out}/{target}.txt").read()
    dis = open(f"{out}/{target}.dis").read()
    get = lambda key: re.search(rf"^{re.escape(key)}: (.*)$", report, re.M).group(1)
    print(f"\n== {target}: {get('core')}; cycles for a {core} ==")
    print(f"calibration: {get('calibration')}")
    print(f"self-test of the kernel against firmware::kernels: {get('self-test')}")
    failed |= not get("self-test").startswith("passed")
    for layer in ("hidden", "output"):
        print(f"kernel {layer} layer: {get(f'kernel {layer}')}")
    per_mac = float(get("kernel").split()[0])
    n, cyc, macs = hot_loop(function(dis, kernel), table, macs_per)
    cpi = cyc / n
    print(
        f"kernel: {per_mac:.2f} instructions/MAC measured (both layers); hot loop "
        f"{n} instructions = {cyc} cycles for {macs} MACs ({cyc / macs:.2f} cycles/MAC, "
        f"{cpi:.2f} cycles/instruction) => about {per_mac * cpi:.2f} cycles/MAC"
    )
    print(f"generate: {get('generate')}")
    print(f"layers: {get('layers')}")
    print(f"generate stack: {get('generate stack')}")
    print(f"generate_pair: {get('generate_pair')}")
    print(f"generate_pair stack: {get('generate_pair stack')}")
    crc = get("pixels crc32")
    same = crc == host_crc and get("generate_pair pixels crc32") == host_crc
    failed |= not same
    print(
        f"pixels crc32: {crc}, generate_pair's {get('generate_pair pixels crc32')} "
        f"({'equal to' if same else 'NOT BOTH EQUAL to'} the host's)"
    )
if failed:
    sys.exit("bench-mcu: FAILED (self-test or pixels differ)")
print("\nbench-mcu: PASSED")
PY
