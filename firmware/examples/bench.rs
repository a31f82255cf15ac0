//! Host benchmark of the firmware's int8 generator on the committed test blob (same
//! shape as our `mlp`: 100+10 → 128 → 784).
//!
//! `cargo run --release -p firmware --example bench [-- SAMPLES]`
//!
//! Prints MACs per sample and the mean wall time per sample, with and without drawing
//! the noise (PCG32 + Box–Muller + quantization). Timing is informative only; no test
//! depends on it.

use std::hint::black_box;
use std::time::Instant;

use anyhow::{Context, Result};
use firmware::{MAX_INPUT, Model, Noise};

static BLOB: &[u8] = include_bytes!("../assets/test-mlp-cond.gtfw");

fn main() -> Result<()> {
    let samples: u64 = match std::env::args().nth(1) {
        Some(s) => s
            .parse()
            .with_context(|| format!("SAMPLES must be a number, got {s:?}"))?,
        None => 5000,
    };
    let model = Model::parse(BLOB).context("parsing the committed test blob")?;
    let d = model.dims();
    let mut pixels = vec![0u8; model.output_len()];
    let label = |i: u64| Some(i as usize % d.classes);

    for i in 0..200 {
        model.generate(Noise::Seed(i), label(i), &mut pixels)?;
    }
    let start = Instant::now();
    for i in 0..samples {
        model.generate(Noise::Seed(black_box(i)), label(i), &mut pixels)?;
        black_box(&pixels);
    }
    let full = start.elapsed().as_secs_f64() / samples as f64;

    let mut codes = [0i8; MAX_INPUT];
    let n = model.input_codes(Noise::Seed(1), label(1), &mut codes)?;
    let start = Instant::now();
    for _ in 0..samples {
        model.forward_codes(black_box(&codes[..n]), &mut pixels)?;
        black_box(&pixels);
    }
    let layers = start.elapsed().as_secs_f64() / samples as f64;

    println!(
        "model: z {} + embedding {} -> hidden {} -> {}x{}",
        d.z_dim, d.embed_dim, d.hidden, d.width, d.height
    );
    println!("int8 MACs per sample: {}", d.macs());
    println!("samples timed: {samples}");
    println!("time per sample (noise + layers): {:.1} us", full * 1e6);
    println!("time per sample (layers only):    {:.1} us", layers * 1e6);
    println!(
        "throughput (layers only): {:.2} GMAC/s",
        d.macs() as f64 / layers / 1e9
    );
    Ok(())
}
