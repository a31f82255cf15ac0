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
//! `-M mps2-an386`).
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
use firmware::blob::Weights;
use firmware::dense::LayerInput;
use firmware::kernels::{dot_offsets, offset_codes};
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
        ("hidden", input, model.hidden_weights()),
        ("output", &*hidden, model.output_weights()),
    ];
    let mut total = 0u64;
    for (name, codes, weights) in layers {
        let macs = (codes.len() * weights.rows()) as u64;
        let mut x = LayerInput::new();
        x.load(codes);
        let (_, counted) = clock.count(|| layer(black_box(&x), black_box(weights)));
        total += counted;
        let _ = writeln!(
            out,
            "kernel {name}: {counted} instructions, {} per MAC",
            per(counted, macs)
        );
    }
    let _ = writeln!(out, "kernel: {} per MAC", per(total, d.macs() as u64));

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
type GeneratePairFn = for<'n, 'p> fn(
    &Model<'static>,
    [(Noise<'n>, Option<usize>); 2],
    [&'p mut [u8]; 2],
) -> Result<(), firmware::GenerateError>;

/// Output channels per kernel call, as `firmware::infer` takes them.
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

/// One layer with `firmware::dense`: every output channel against the same loaded
/// input, in blocks of channels as `firmware::infer` takes them.
#[inline(never)]
#[unsafe(no_mangle)]
fn layer(x: &LayerInput, weights: Weights<'_>) -> i32 {
    let mut acc = 0i32;
    let mut dots = [0i32; BLOCK];
    for first in (0..weights.rows()).step_by(BLOCK) {
        x.dot_rows(weights, first, &mut dots);
        acc = acc.wrapping_add(black_box(&dots)[0]);
    }
    acc
}

/// The kernel of `firmware::dense` against `firmware::kernels` on this core: random and
/// extreme codes and weights, lengths 0 to 40 and the generator's, 1 to 8 output
/// channels from the first and from the fifth, with the weights on a word boundary
/// (the assembly) and off it (the portable path). Prints and returns the verdict.
fn self_test(out: &mut Console) -> Result<(), ()> {
    /// Stored weights of up to 8 channels of 512 inputs, at any offset from a word
    /// boundary.
    #[repr(C, align(4))]
    struct Stored([u8; 8 * MAX_INPUT + 4]);
    let mut rng = NormalSampler::new(2024);
    let mut byte = |extreme: bool| {
        let r = rng.next_u32();
        match (extreme, r % 3) {
            (true, 0) => 0x00, // weight or code -128
            (true, 1) => 0xff, // weight 127 (stored offset binary) or code -1
            _ => (r >> 8) as u8,
        }
    };
    let mut stored = Stored([0; 8 * MAX_INPUT + 4]);
    let (mut cases, mut failures) = (0u32, 0u32);
    let lengths = (0..=40).chain([110, 128, 511, 512]);
    for n in lengths {
        for round in 0..4usize {
            let extreme = round % 2 == 1;
            let rows = 1 + 2 * round + n % 2;
            let shift = if round == 3 { 1 + n % 3 } else { 0 };
            let mut codes = [0i8; MAX_INPUT];
            for c in &mut codes[..n] {
                *c = byte(extreme) as i8;
            }
            let mut x = LayerInput::new();
            x.load(&codes[..n]);
            // The specification's sum with zero point -128: `Σ (code + 128) * w`.
            let mut offsets = [0i16; MAX_INPUT];
            offset_codes(&codes[..n], -128, &mut offsets);
            let len = rows.div_ceil(4) * 4 * n;
            for b in &mut stored.0[shift..shift + len] {
                *b = byte(extreme);
            }
            let Some(weights) = Weights::new(&stored.0[shift..], rows, n) else {
                let _ = writeln!(out, "self-test: weights view refused");
                return Err(());
            };
            for first in [0, 4].into_iter().filter(|&f| f < rows) {
                let mut got = [0i32; 8];
                x.dot_rows(weights, first, &mut got[..rows - first]);
                for (k, &got) in got[..rows - first].iter().enumerate() {
                    let mut row = [0i8; MAX_INPUT];
                    for (dst, w) in row.iter_mut().zip(weights.row(first + k)) {
                        *dst = w;
                    }
                    let want = dot_offsets(&offsets[..n], &row[..n]);
                    cases += 1;
                    if got != want {
                        failures += 1;
                        let _ = writeln!(
                            out,
                            "self-test mismatch: channel {} of {rows}, {n} inputs, offset {shift}: {got} != {want}",
                            first + k
                        );
                    }
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
