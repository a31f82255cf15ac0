//! A deterministic stand-in generator for tests, golden images and the board examples,
//! until `runtime export-firmware` ships a trained one.
//!
//! Its weights come from a fixed seed: the hidden layer is random, and each hidden unit
//! paints a soft round blob into the image, so samples look like smooth shapes rather
//! than noise and a rendering bug shows. The committed blob
//! `firmware/assets/test-mlp-cond.gtfw` is [`conditional_blob`]'s output; a test checks
//! that they stay equal. Regenerate it with
//! `cargo run --release -p firmware --example make_test_blob`.

use std::vec::Vec;

use crate::noise::NormalSampler;
use crate::quantize::{Calibration, Embedding, FloatMlp, QuantizeError, export};

/// Seed of the weights.
pub const WEIGHT_SEED: u64 = 0x6761_6e74_7279; // "gantry"
/// Seed of the calibration set.
pub const CALIBRATION_SEED: u64 = 1_000_000;
/// Calibration samples.
pub const CALIBRATION_SAMPLES: usize = 256;
/// Latent size (as our `mlp`).
pub const Z_DIM: usize = 100;
/// Hidden units (as our `mlp`).
pub const HIDDEN: usize = 128;
/// Labels of the conditional variant.
pub const CLASSES: usize = 10;
/// Embedding size of the conditional variant.
pub const EMBED_DIM: usize = 10;
/// Image side.
pub const SIDE: usize = 28;
/// LeakyReLU slope (as our `mlp`).
pub const ALPHA: f32 = 0.01;

fn uniform(s: &mut NormalSampler) -> f32 {
    (s.next_u32() >> 8) as f32 / 16_777_216.0
}

/// The f32 test generator; `conditional` adds a 10-class, 10-wide label embedding.
pub fn float_model(conditional: bool) -> FloatMlp {
    let mut s = NormalSampler::new(WEIGHT_SEED);
    let embed_dim = if conditional { EMBED_DIM } else { 0 };
    let inputs = Z_DIM + embed_dim;
    let out = SIDE * SIDE;
    let mut w1 = Vec::with_capacity(inputs * HIDDEN);
    for i in 0..inputs {
        // Label inputs weigh more, so a label visibly changes the sample.
        let gain = if i < Z_DIM { 0.1 } else { 0.5 };
        w1.extend((0..HIDDEN).map(|_| s.next_normal() * gain));
    }
    let b1 = (0..HIDDEN).map(|_| s.next_normal() * 0.1).collect();
    let mut w2 = Vec::with_capacity(HIDDEN * out);
    for _ in 0..HIDDEN {
        let cx = 5.0 + 18.0 * uniform(&mut s);
        let cy = 5.0 + 18.0 * uniform(&mut s);
        let sigma = 1.2 + 1.8 * uniform(&mut s);
        let amp = if uniform(&mut s) < 0.7 { 0.8 } else { -0.8 };
        for p in 0..out {
            let dx = (p % SIDE) as f32 - cx;
            let dy = (p / SIDE) as f32 - cy;
            w2.push(amp * libm::expf(-(dx * dx + dy * dy) / (2.0 * sigma * sigma)));
        }
    }
    let b2 = vec_of(out, -1.6);
    let embedding = conditional.then(|| Embedding {
        classes: CLASSES,
        dim: EMBED_DIM,
        table: (0..CLASSES * EMBED_DIM).map(|_| s.next_normal()).collect(),
    });
    FloatMlp {
        z_dim: Z_DIM,
        hidden: HIDDEN,
        width: SIDE,
        height: SIDE,
        w1,
        b1,
        w2,
        b2,
        leaky_alpha: ALPHA,
        embedding,
    }
}

fn vec_of(n: usize, v: f32) -> Vec<f32> {
    (0..n).map(|_| v).collect()
}

/// The calibration set the test blobs are made with.
pub fn calibration(model: &FloatMlp) -> Calibration {
    Calibration::seeded(model, CALIBRATION_SAMPLES, CALIBRATION_SEED)
}

/// The unconditional test blob.
pub fn unconditional_blob() -> Result<Vec<u8>, QuantizeError> {
    let m = float_model(false);
    export(&m, &calibration(&m))
}

/// The conditional test blob (committed as `firmware/assets/test-mlp-cond.gtfw`).
pub fn conditional_blob() -> Result<Vec<u8>, QuantizeError> {
    let m = float_model(true);
    export(&m, &calibration(&m))
}
