//! Measures the firmware on an emulated microcontroller: instructions per MAC of the
//! dense kernels, instructions and stack per generated sample, and a checksum of the
//! pixels for the host to compare.
//!
//! It exists because cycle counts read off a disassembly are guesses; qemu-system-arm
//! with `-icount shift=0` advances its virtual clock by exactly one nanosecond per guest
//! instruction, so the SysTick timer, calibrated below on a loop of known length,
//! counts instructions. Converting them to cycles needs each core's timing table and the
//! instruction mix, which `scripts/bench-mcu.sh` takes from the disassembly.
//!
//! Runs (see `.cargo/config.toml`): `cargo run --release --target thumbv6m-none-eabi`
//! (Cortex-M0, `-M microbit`) and `--target thumbv7em-none-eabihf` (Cortex-M4,
//! `-M mps2-an386`). With `--features baseline` it uses only the API the firmware had
//! before `firmware::dense` (to measure an older checkout the same way).
//!
//! Output is one `key: value` per line. Exit status (through semihosting): 0 when the
//! on-target self-test of the kernel passed, 1 otherwise (or on a panic).
#![no_std]
#![no_main]
#![deny(missing_docs, unsafe_op_in_unsafe_fn)]

mod console;
mod measure;

use core::fmt::Write as _;
use core::hint::black_box;

use cortex_m_rt::entry;
#[cfg(not(feature = "baseline"))]
use firmware::dense::{LayerInput, PairInput};
use firmware::kernels::{dot_offsets, offset_codes};
#[cfg(not(feature = "baseline"))]
use firmware::noise::NormalSampler;
use firmware::{MAX_HIDDEN, MAX_INPUT, MNIST_PIXELS, Model, Noise};

use crate::console::{Console, exit};
use crate::measure::{Clock, stack_used_by};

/// Samples generated for the timing, stack and checksum: seed `i`, label `i % classes`.
/// `cargo run -p firmware --example mcu_reference` prints the host's checksum of the same.
const SAMPLES: u64 = 8;

/// A byte array placed at a 4-byte boundary, as a linker-placed `[u32]` would be.
#[repr(C, align(4))]
struct Aligned<const N: usize>([u8; N]);

/// Length of the shipped conditional MNIST generator's blob.
const BLOB_LEN: usize = include_bytes!("../../../models/mnist-mlp-cond.gtfw").len();

/// The shipped conditional MNIST generator, in flash.
static BLOB: Aligned<BLOB_LEN> = Aligned(*include_bytes!("../../../models/mnist-mlp-cond.gtfw"));

#[entry]
fn main() -> ! {
    let mut out = Console::new();
    let status = run(&mut out);
    exit(status.is_ok())
}

/// Everything, printed as it goes; `Err` when the self-test failed.
fn run(out: &mut Console) -> Result<(), ()> {
    let clock = Clock::calibrate();
    let _ = writeln!(out, "core: {}", measure::CORE);
    let _ = writeln!(
        out,
        "calibration: {} instructions in {} timer ticks",
        clock.instructions, clock.ticks
    );
    let model = match Model::parse(&BLOB.0) {
        Ok(model) => model,
        Err(e) => {
            let _ = writeln!(out, "error: blob rejected: {e}");
            return Err(());
        }
    };
    let d = model.dims();
    let label = |i: u64| (d.classes > 0).then(|| (i % d.classes as u64) as usize);
    let _ = writeln!(
        out,
        "model: {} + {} -> {} -> {}, {} MACs per sample",
        d.z_dim,
        d.embed_dim,
        d.hidden,
        d.output(),
        d.macs()
    );

    let self_test = self_test(out);

    // Realistic layer inputs: those of sample 0.
    let mut input = [0i8; MAX_INPUT];
    let n = checked(
        out,
        "input codes",
        model.input_codes(Noise::Seed(0), label(0), &mut input),
    )?;
    let input = &input[..n];
    let mut hidden = [0i8; MAX_HIDDEN];
    let hidden = &mut hidden[..d.hidden];
    checked(out, "hidden layer", model.hidden_layer(input, hidden))?;
    let layers = [
        (
            "hidden",
            input,
            model.input_quant().zero_point,
            model.hidden_weights(),
        ),
        (
            "output",
            &*hidden,
            model.hidden_quant().zero_point,
            model.output_weights(),
        ),
    ];
    let mut totals = [0u64; 3];
    for (name, codes, zp, weights) in layers {
        let macs = (codes.len() * weights.len() / codes.len().max(1)) as u64;
        let mut offsets = [0i16; MAX_INPUT];
        offset_codes(codes, zp, &mut offsets);
        let offsets = &offsets[..codes.len()];
        let (_, old) = clock.count(|| old_layer(black_box(offsets), black_box(weights)));
        totals[0] += old;
        let _ = writeln!(
            out,
            "kernel old {name}: {old} instructions, {} per MAC",
            per(old, macs)
        );
        #[cfg(not(feature = "baseline"))]
        {
            let mut x = LayerInput::new();
            x.load(codes, zp);
            let (_, new) = clock.count(|| new_layer(black_box(&x), black_box(weights)));
            totals[1] += new;
            let _ = writeln!(
                out,
                "kernel new {name}: {new} instructions, {} per MAC",
                per(new, macs)
            );
            if PAIR_KERNEL {
                let mut pair = PairInput::new();
                pair.load([codes, codes], zp);
                let (_, two) = clock.count(|| pair_layer(black_box(&pair), black_box(weights)));
                totals[2] += two;
                let _ = writeln!(
                    out,
                    "kernel pair {name}: {two} instructions for 2 samples, {} per MAC",
                    per(two, 2 * macs)
                );
            }
        }
    }
    let macs = d.macs() as u64;
    let _ = writeln!(out, "kernel old: {} per MAC", per(totals[0], macs));
    #[cfg(not(feature = "baseline"))]
    {
        let _ = writeln!(out, "kernel new: {} per MAC", per(totals[1], macs));
        if PAIR_KERNEL {
            let _ = writeln!(out, "kernel pair: {} per MAC", per(totals[2], 2 * macs));
        } else {
            let _ = writeln!(
                out,
                "kernel pair: none (generate_pair runs generate twice here)"
            );
        }
    }

    // Whole samples: time, stack high-water mark, and the checksum of every pixel.
    let mut crc = firmware::blob::CRC32.digest();
    let (mut generate, mut layers_only, mut stack) = (0u64, 0u64, 0usize);
    // Called through an opaque pointer so that no optimisation can merge its frame into
    // the caller's, above the stack pointer the painting measures from.
    let generate_fn: GenerateFn = black_box(Model::generate as GenerateFn);
    for i in 0..SAMPLES {
        let mut pixels = [0u8; MNIST_PIXELS];
        let mut ok = true;
        let (used, instructions) = stack_used_by(|| {
            clock.count(|| {
                ok = generate_fn(&model, Noise::Seed(i), label(i), &mut pixels).is_ok();
            })
        });
        if !ok {
            let _ = writeln!(out, "error: generate failed for seed {i}");
            return Err(());
        }
        generate += instructions.1;
        stack = stack.max(used);
        crc.update(&pixels);

        let mut codes = [0i8; MAX_INPUT];
        let n = checked(
            out,
            "input codes",
            model.input_codes(Noise::Seed(i), label(i), &mut codes),
        )?;
        let (done, layers) =
            clock.count(|| model.forward_codes(black_box(&codes[..n]), &mut pixels));
        checked(out, "forward_codes", done)?;
        layers_only += layers;
    }
    #[cfg(not(feature = "baseline"))]
    let pairs = {
        let pair_fn: GeneratePairFn = black_box(Model::generate_pair as GeneratePairFn);
        let mut crc = firmware::blob::CRC32.digest();
        let (mut instructions, mut stack) = (0u64, 0usize);
        for i in (0..SAMPLES).step_by(2) {
            let mut pixels = [[0u8; MNIST_PIXELS]; 2];
            let [a, b] = &mut pixels;
            let samples = [
                (Noise::Seed(i), label(i)),
                (Noise::Seed(i + 1), label(i + 1)),
            ];
            let mut ok = true;
            let (used, counted) =
                stack_used_by(|| clock.count(|| ok = pair_fn(&model, samples, [a, b]).is_ok()));
            if !ok {
                let _ = writeln!(out, "error: generate_pair failed for seeds {i}, {}", i + 1);
                return Err(());
            }
            instructions += counted.1;
            stack = stack.max(used);
            crc.update(&pixels[0]);
            crc.update(&pixels[1]);
        }
        (instructions, stack, crc.finalize())
    };
    let _ = writeln!(out, "samples: {SAMPLES} (seed i, label i % {})", d.classes);
    let _ = writeln!(
        out,
        "generate: {} instructions per sample",
        generate / SAMPLES
    );
    let _ = writeln!(
        out,
        "layers: {} instructions per sample (forward_codes)",
        layers_only / SAMPLES
    );
    let _ = writeln!(
        out,
        "generate stack: {stack} bytes (high-water mark, buffers included)"
    );
    let crc = crc.finalize();
    let _ = writeln!(out, "pixels crc32: {crc:#010x}");
    #[cfg(not(feature = "baseline"))]
    {
        let (instructions, stack, pair_crc) = pairs;
        let _ = writeln!(
            out,
            "generate_pair: {} instructions per sample",
            instructions / SAMPLES
        );
        let _ = writeln!(
            out,
            "generate_pair stack: {stack} bytes (high-water mark, buffers included)"
        );
        let _ = writeln!(out, "generate_pair pixels crc32: {pair_crc:#010x}");
        if pair_crc != crc {
            let _ = writeln!(out, "error: generate_pair's pixels differ from generate's");
            return Err(());
        }
    }
    self_test
}

/// The signature of `Model::generate`.
type GenerateFn = for<'n, 'p> fn(
    &Model<'static>,
    Noise<'n>,
    Option<usize>,
    &'p mut [u8],
) -> Result<(), firmware::GenerateError>;

/// The signature of `Model::generate_pair`.
#[cfg(not(feature = "baseline"))]
type GeneratePairFn = for<'n, 'p> fn(
    &Model<'static>,
    [(Noise<'n>, Option<usize>); 2],
    [&'p mut [u8]; 2],
) -> Result<(), firmware::GenerateError>;

/// Whether this core has a two-sample kernel (`generate_pair` runs `generate` twice on
/// the Cortex-M4, whose one-sample kernel already does two MACs per instruction).
#[cfg(not(feature = "baseline"))]
const PAIR_KERNEL: bool = !cfg!(target_abi = "eabihf");

/// Output channels per kernel call, as `firmware::infer` takes them.
#[cfg(not(feature = "baseline"))]
const BLOCK: usize = 16;

/// The value of `result`, or its error printed (naming `what`) and `Err`.
fn checked<T, E: core::fmt::Display>(
    out: &mut Console,
    what: &str,
    result: Result<T, E>,
) -> Result<T, ()> {
    result.map_err(|e| {
        let _ = writeln!(out, "error: {what}: {e}");
    })
}

/// `instructions / macs` with two decimals, as text.
fn per(instructions: u64, macs: u64) -> Fixed2 {
    Fixed2(instructions * 100 / macs.max(1))
}

/// A count of hundredths, printed as `x.yy`.
struct Fixed2(u64);

impl core::fmt::Display for Fixed2 {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "{}.{:02}", self.0 / 100, self.0 % 100)
    }
}

/// One layer with the portable kernel of `firmware::kernels` (the loop the firmware used
/// before `firmware::dense`): every row against the same `i16` offsets.
#[inline(never)]
#[unsafe(no_mangle)]
fn old_layer(offsets: &[i16], weights: &[i8]) -> i32 {
    let mut acc = 0i32;
    for row in weights.chunks_exact(offsets.len().max(1)) {
        acc = acc.wrapping_add(dot_offsets(offsets, row));
    }
    acc
}

/// One layer with `firmware::dense`: every row against the same loaded input, in blocks
/// of rows as `firmware::infer` takes them.
#[cfg(not(feature = "baseline"))]
#[inline(never)]
#[unsafe(no_mangle)]
fn new_layer(x: &LayerInput, weights: &[i8]) -> i32 {
    let mut acc = 0i32;
    let mut dots = [0i32; BLOCK];
    for rows in weights.chunks(x.len().max(1) * BLOCK) {
        x.dot_rows(rows, &mut dots);
        acc = acc.wrapping_add(black_box(&dots)[0]);
    }
    acc
}

/// One layer with `firmware::dense`'s two-sample kernel, in blocks as `generate_pair`.
#[cfg(not(feature = "baseline"))]
#[inline(never)]
#[unsafe(no_mangle)]
fn pair_layer(x: &PairInput, weights: &[i8]) -> i32 {
    let mut acc = 0i32;
    let mut dots = [[0i32; 2]; BLOCK];
    for rows in weights.chunks(x.len().max(1) * BLOCK) {
        x.dot_rows(rows, &mut dots);
        acc = acc.wrapping_add(black_box(&dots)[0][1]);
    }
    acc
}

/// The kernels of `firmware::dense` (one sample, and a pair) against `firmware::kernels`
/// on this core: random and extreme codes, zero points and weights, lengths 0 to 40 and
/// the generator's, at each of the four alignments of the weight row, one row and blocks
/// of three. Prints and returns the verdict.
fn self_test(out: &mut Console) -> Result<(), ()> {
    #[cfg(feature = "baseline")]
    {
        let _ = writeln!(
            out,
            "self-test: skipped (baseline build has no firmware::dense)"
        );
        Ok(())
    }
    #[cfg(not(feature = "baseline"))]
    {
        /// Weights at any offset from a word boundary.
        #[repr(C, align(4))]
        struct Row([i8; MAX_INPUT + 4]);
        let mut rng = NormalSampler::new(2024);
        let mut byte = |extreme: bool| {
            let r = rng.next_u32();
            match (extreme, r % 3) {
                (true, 0) => -128,
                (true, 1) => 127,
                _ => (r >> 8) as u8 as i8,
            }
        };
        let (mut cases, mut failures) = (0u32, 0u32);
        let lengths = (0..=40).chain([110, 128, 511, 512]);
        for n in lengths {
            for round in 0..4 {
                let extreme = round % 2 == 1;
                let mut codes = [0i8; MAX_INPUT];
                for c in &mut codes[..n] {
                    *c = byte(extreme);
                }
                let zp = byte(extreme);
                let mut row = Row([0; MAX_INPUT + 4]);
                let mut x = LayerInput::new();
                x.load(&codes[..n], zp);
                let mut offsets = [0i16; MAX_INPUT];
                offset_codes(&codes[..n], zp, &mut offsets);
                // The second sample of a pair: the first one's codes reversed.
                let mut reversed = [0i8; MAX_INPUT];
                for (r, &c) in reversed[..n].iter_mut().zip(codes[..n].iter().rev()) {
                    *r = c;
                }
                let mut pair = PairInput::new();
                pair.load([&codes[..n], &reversed[..n]], zp);
                let mut offsets_b = [0i16; MAX_INPUT];
                offset_codes(&reversed[..n], zp, &mut offsets_b);
                for shift in 0..4 {
                    for w in &mut row.0[shift..shift + n] {
                        *w = byte(extreme);
                    }
                    let weights = &row.0[shift..shift + n];
                    let want = [
                        dot_offsets(&offsets[..n], weights),
                        dot_offsets(&offsets_b[..n], weights),
                    ];
                    let got = [x.dot(weights), pair.dot(weights)[0], pair.dot(weights)[1]];
                    cases += 1;
                    if got != [want[0], want[0], want[1]] {
                        failures += 1;
                        let _ = writeln!(
                            out,
                            "self-test mismatch: {n} inputs, offset {shift}: {got:?} != {want:?}"
                        );
                    }
                }
            }
        }
        // Blocks of three rows (one kernel call), for both kernels, at each alignment.
        for n in 0..=40 {
            let mut codes = [0i8; 40];
            for c in &mut codes[..n] {
                *c = byte(n % 2 == 1);
            }
            let zp = byte(true);
            let mut x = LayerInput::new();
            x.load(&codes[..n], zp);
            let mut pair = PairInput::new();
            pair.load([&codes[..n], &codes[..n]], zp);
            let mut offsets = [0i16; 40];
            offset_codes(&codes[..n], zp, &mut offsets);
            let mut row = Row([0; MAX_INPUT + 4]);
            for shift in 0..4 {
                for w in &mut row.0[shift..shift + 3 * n] {
                    *w = byte(shift % 2 == 0);
                }
                let weights = &row.0[shift..shift + 3 * n];
                let (mut single, mut two) = ([0i32; 3], [[0i32; 2]; 3]);
                x.dot_rows(weights, &mut single);
                pair.dot_rows(weights, &mut two);
                for r in 0..3 {
                    let want = dot_offsets(&offsets[..n], &weights[r * n..(r + 1) * n]);
                    cases += 1;
                    if [single[r], two[r][0], two[r][1]] != [want; 3] {
                        failures += 1;
                        let _ = writeln!(
                            out,
                            "self-test mismatch: block row {r} of {n} inputs, offset {shift}"
                        );
                    }
                }
            }
        }
        let verdict = if failures == 0 { "passed" } else { "FAILED" };
        let _ = writeln!(
            out,
            "self-test: {verdict} ({failures} of {cases} cases differ)"
        );
        if failures == 0 { Ok(()) } else { Err(()) }
    }
}
