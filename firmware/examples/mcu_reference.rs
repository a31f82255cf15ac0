//! The host's pixels for the samples `firmware/bench-mcu` generates under qemu, as a
//! CRC-32 for `scripts/bench-mcu.sh` to compare with the emulator's.
//!
//! `cargo run --release -p firmware --example mcu_reference [-- SAMPLES]` (default 8):
//! samples `i < SAMPLES` of `models/mnist-mlp-cond.gtfw` with seed `i` and label
//! `i % classes`, as the benchmark draws them. Each sample is computed twice, by
//! `Model::generate` and by the specification's functions of `firmware::kernels` alone
//! (`dot_i8`, the requantizations, the tanh table), and the program fails if they differ.
//! Prints `pixels crc32: 0x…` (CRC-32/ISO-HDLC of all pixels in order).

use anyhow::{Context, Result, bail};
use firmware::blob::CRC32;
use firmware::kernels::{code_to_pixel, dot_i8, leaky_relu_requantize, requantize, tanh_lookup};
use firmware::{MAX_INPUT, Model, Noise};

static BLOB: &[u8] = include_bytes!("../../models/mnist-mlp-cond.gtfw");

fn main() -> Result<()> {
    let samples: u64 = match std::env::args().nth(1) {
        Some(s) => s
            .parse()
            .with_context(|| format!("SAMPLES must be a number, got {s:?}"))?,
        None => 8,
    };
    let model = Model::parse(BLOB).context("parsing models/mnist-mlp-cond.gtfw")?;
    let classes = model.dims().classes as u64;
    let mut crc = CRC32.digest();
    for i in 0..samples {
        let label = (classes > 0).then(|| (i % classes) as usize);
        let mut pixels = vec![0u8; model.output_len()];
        model
            .generate(Noise::Seed(i), label, &mut pixels)
            .with_context(|| format!("generating sample {i}"))?;
        let spec = by_the_spec(&model, Noise::Seed(i), label)?;
        if pixels != spec {
            bail!("sample {i}: Model::generate and the specification's kernels disagree");
        }
        crc.update(&pixels);
    }
    println!("samples: {samples} (seed i, label i % {classes})");
    println!("pixels crc32: {:#010x}", crc.finalize());
    Ok(())
}

/// One sample with only the specification's per-channel functions.
fn by_the_spec(model: &Model, noise: Noise, label: Option<usize>) -> Result<Vec<u8>> {
    let d = model.dims();
    let mut codes = [0i8; MAX_INPUT];
    let n = model.input_codes(noise, label, &mut codes)?;
    let x = &codes[..n];
    // The blob's biases have each layer's input zero point folded in (`firmware::blob`),
    // so the specification's dot product runs with zero point -128: `Σ (x + 128) * w`.
    let (w1, w2) = (model.hidden_weights(), model.output_weights());
    let hidden: Vec<i8> = (0..d.hidden)
        .map(|c| {
            let row: Vec<i8> = w1.row(c).collect();
            let acc = dot_i8(x, -128, &row)?;
            let (pos, neg) = model.hidden_multipliers(c);
            let acc = acc.wrapping_add(model.hidden_bias(c));
            Ok(leaky_relu_requantize(
                acc,
                pos,
                neg,
                model.hidden_quant().zero_point,
            ))
        })
        .collect::<Result<_>>()?;
    (0..d.output())
        .map(|c| {
            let row: Vec<i8> = w2.row(c).collect();
            let acc = dot_i8(&hidden, -128, &row)?;
            let acc = acc.wrapping_add(model.output_bias(c));
            let t = requantize(
                acc,
                model.output_multiplier(c),
                model.pretanh_quant().zero_point,
            );
            Ok(code_to_pixel(tanh_lookup(model.tanh_table(), t)))
        })
        .collect()
}
