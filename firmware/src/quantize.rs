//! Host-side post-training quantization of an f32 `mlp` generator into blob parameters.
//!
//! This exists so that the runtime's `export-firmware` (and our tests) turn trained f32
//! weights into exactly the integers the firmware runs, with one implementation of the
//! scheme described in [`crate::kernels`]:
//!
//! - weights: symmetric int8 per output channel, `scale[c] = max_i |W[i][c]| / 127`;
//! - activations: asymmetric int8 from the min/max seen while running the f32 model on
//!   a [`Calibration`] set (each range widened to include 0); the pre-tanh range is
//!   additionally clipped to `±`[`PRETANH_CLIP`], where tanh is within half a gray level
//!   of ±1, so the table spends its 256 entries where the output changes;
//! - biases: `round(b / (input_scale * weight_scale[c]))`, saturated to int32;
//! - multipliers: `input_scale * weight_scale[c] / output_scale` (and times alpha for
//!   the LeakyReLU's negative side), computed in f64 from the f32 scales as stored;
//! - the tanh table: `pixel = round((tanh(x) + 1) * 127.5)` for each pre-tanh code's
//!   real value `x`, stored as `pixel - 128`.
//!
//! Every rounding is half away from zero, and transcendental functions come from the
//! pure-Rust `libm`, so a blob is the same bytes on every host.

use std::vec;
use std::vec::Vec;

use thiserror::Error;

use crate::blob::{BlobError, Dims, LUT_LEN, LayerParams, ModelParams, WriteError, write};
use crate::kernels::{KernelError, QuantParams, QuantizedMultiplier, quantize_f32};
use crate::noise::NormalSampler;

/// Pre-tanh values are clipped to `[-PRETANH_CLIP, PRETANH_CLIP]` before quantization:
/// `tanh(3.2)` is already within half a gray level of 1.
pub const PRETANH_CLIP: f32 = 4.0;

/// Why a model could not be quantized.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum QuantizeError {
    /// A tensor's length does not match the dimensions.
    #[error("{what} has {found} values, the dimensions imply {expected}")]
    Shape {
        /// Which tensor.
        what: &'static str,
        /// Implied length.
        expected: usize,
        /// Given length.
        found: usize,
    },
    /// A weight, bias, embedding or calibration value is NaN or infinite.
    #[error("{what} contains a non-finite value at index {index}")]
    NonFinite {
        /// Which tensor.
        what: &'static str,
        /// First bad index.
        index: usize,
    },
    /// The calibration set is empty.
    #[error("the calibration set is empty: give at least one z sample")]
    EmptyCalibration,
    /// A calibration label is missing, out of range, or given to an unconditional model.
    #[error("calibration sample {sample}: {problem}")]
    Label {
        /// Sample index.
        sample: usize,
        /// What is wrong.
        problem: &'static str,
    },
    /// The LeakyReLU slope is outside `[0, 1]`.
    #[error("LeakyReLU alpha {0} must be within [0, 1]")]
    Alpha(f32),
    /// The dimensions do not fit the format or this firmware build.
    #[error(transparent)]
    Dims(#[from] BlobError),
    /// A requantization multiplier cannot be encoded (scales differ by 2^30 or more).
    #[error("requantization multiplier of {layer} channel {channel}: {source}")]
    Multiplier {
        /// Which layer.
        layer: &'static str,
        /// Channel.
        channel: usize,
        /// The encoding error.
        source: KernelError,
    },
    /// The blob writer refused the result (a bug if it happens: report it).
    #[error(transparent)]
    Write(#[from] WriteError),
}

/// A label embedding table: `classes` rows of `dim` values, concatenated after `z`.
#[derive(Debug, Clone, PartialEq)]
pub struct Embedding {
    /// Number of labels.
    pub classes: usize,
    /// Values per label.
    pub dim: usize,
    /// `[classes, dim]`, row-major.
    pub table: Vec<f32>,
}

/// An f32 `mlp` generator: `z (+ embedding[label]) -> Dense(hidden) -> LeakyReLU(alpha)
/// -> Dense(width*height) -> tanh`, with ONNX-style `[in, out]` row-major matrices
/// (`y = x · W + b`).
#[derive(Debug, Clone, PartialEq)]
pub struct FloatMlp {
    /// Latent size.
    pub z_dim: usize,
    /// Hidden units.
    pub hidden: usize,
    /// Image width.
    pub width: usize,
    /// Image height.
    pub height: usize,
    /// First layer, `[z_dim + embed_dim, hidden]` row-major.
    pub w1: Vec<f32>,
    /// First bias, `[hidden]`.
    pub b1: Vec<f32>,
    /// Second layer, `[hidden, width * height]` row-major.
    pub w2: Vec<f32>,
    /// Second bias, `[width * height]`.
    pub b2: Vec<f32>,
    /// LeakyReLU negative slope (0.01 for our `mlp`).
    pub leaky_alpha: f32,
    /// Label embedding for a conditional generator.
    pub embedding: Option<Embedding>,
}

fn shape(what: &'static str, expected: usize, found: usize) -> Result<(), QuantizeError> {
    if expected == found {
        Ok(())
    } else {
        Err(QuantizeError::Shape {
            what,
            expected,
            found,
        })
    }
}

fn finite(what: &'static str, values: &[f32]) -> Result<(), QuantizeError> {
    match values.iter().position(|v| !v.is_finite()) {
        Some(index) => Err(QuantizeError::NonFinite { what, index }),
        None => Ok(()),
    }
}

/// Intermediate values of one f32 forward pass.
struct Trace {
    hidden: Vec<f32>,
    pretanh: Vec<f32>,
}

impl FloatMlp {
    /// The dimensions as the blob will store them.
    pub fn dims(&self) -> Dims {
        let (classes, embed_dim) = self
            .embedding
            .as_ref()
            .map_or((0, 0), |e| (e.classes, e.dim));
        Dims {
            z_dim: self.z_dim,
            embed_dim,
            classes,
            hidden: self.hidden,
            width: self.width,
            height: self.height,
        }
    }

    /// Checks shapes, finiteness, alpha, and that the dimensions fit the firmware.
    pub fn validate(&self) -> Result<(), QuantizeError> {
        let d = self.dims();
        d.validate()?;
        shape("w1", d.input() * d.hidden, self.w1.len())?;
        shape("b1", d.hidden, self.b1.len())?;
        shape("w2", d.hidden * d.output(), self.w2.len())?;
        shape("b2", d.output(), self.b2.len())?;
        finite("w1", &self.w1)?;
        finite("b1", &self.b1)?;
        finite("w2", &self.w2)?;
        finite("b2", &self.b2)?;
        if let Some(e) = &self.embedding {
            shape("embedding table", e.classes * e.dim, e.table.len())?;
            finite("embedding table", &e.table)?;
        }
        if !(0.0..=1.0).contains(&self.leaky_alpha) {
            return Err(QuantizeError::Alpha(self.leaky_alpha));
        }
        Ok(())
    }

    /// The generator input `concat(z, embedding[label])`.
    fn input(&self, z: &[f32], label: Option<usize>) -> Vec<f32> {
        let mut x = z.to_vec();
        if let (Some(e), Some(l)) = (&self.embedding, label) {
            x.extend_from_slice(&e.table[l * e.dim..(l + 1) * e.dim]);
        }
        x
    }

    fn check_sample(
        &self,
        z: &[f32],
        label: Option<usize>,
        sample: usize,
    ) -> Result<(), QuantizeError> {
        shape("z", self.z_dim, z.len())?;
        finite("z", z)?;
        let problem = match (&self.embedding, label) {
            (None, None) => return Ok(()),
            (None, Some(_)) => "the generator is unconditional but a label was given",
            (Some(_), None) => "the generator is conditional: a label is required",
            (Some(e), Some(l)) if l >= e.classes => "label is out of range",
            (Some(_), Some(_)) => return Ok(()),
        };
        Err(QuantizeError::Label { sample, problem })
    }

    fn trace(&self, x: &[f32]) -> Trace {
        let (h, o) = (self.hidden, self.width * self.height);
        let mut hidden = self.b1.clone();
        for (i, &xi) in x.iter().enumerate() {
            for (acc, &w) in hidden.iter_mut().zip(&self.w1[i * h..(i + 1) * h]) {
                *acc += xi * w;
            }
        }
        for v in &mut hidden {
            if *v < 0.0 {
                *v *= self.leaky_alpha;
            }
        }
        let mut pretanh = self.b2.clone();
        for (j, &hj) in hidden.iter().enumerate() {
            for (acc, &w) in pretanh.iter_mut().zip(&self.w2[j * o..(j + 1) * o]) {
                *acc += hj * w;
            }
        }
        Trace { hidden, pretanh }
    }

    /// The f32 forward pass: `width * height` values in `[-1, 1]` (the reference the
    /// int8 path approximates).
    pub fn forward(&self, z: &[f32], label: Option<usize>) -> Result<Vec<f32>, QuantizeError> {
        self.validate()?;
        self.check_sample(z, label, 0)?;
        let t = self.trace(&self.input(z, label));
        Ok(t.pretanh.iter().map(|&v| libm::tanhf(v)).collect())
    }
}

/// Calibration inputs: `z` samples (and labels, for a conditional generator).
#[derive(Debug, Clone, PartialEq)]
pub struct Calibration {
    z_dim: usize,
    z: Vec<f32>,
    labels: Vec<Option<usize>>,
}

impl Calibration {
    /// `count` samples drawn as the firmware draws them: sample `i` is the latent of
    /// seed `seed + i` ([`crate::noise::latent`]) with label `i % classes`.
    pub fn seeded(model: &FloatMlp, count: usize, seed: u64) -> Self {
        let mut z = vec![0f32; count * model.z_dim];
        let classes = model.embedding.as_ref().map(|e| e.classes);
        let mut labels = Vec::with_capacity(count);
        for (i, chunk) in z.chunks_exact_mut(model.z_dim.max(1)).enumerate() {
            NormalSampler::new(seed.wrapping_add(i as u64)).fill(chunk);
            labels.push(classes.map(|c| i % c.max(1)));
        }
        Self {
            z_dim: model.z_dim,
            z,
            labels,
        }
    }

    /// Caller-supplied samples: `z` holds `labels.len()` rows of `z_dim` values; labels
    /// are `None` for an unconditional generator.
    pub fn from_samples(
        z_dim: usize,
        z: Vec<f32>,
        labels: Vec<Option<usize>>,
    ) -> Result<Self, QuantizeError> {
        if labels.is_empty() {
            return Err(QuantizeError::EmptyCalibration);
        }
        shape("calibration z", labels.len() * z_dim, z.len())?;
        finite("calibration z", &z)?;
        Ok(Self { z_dim, z, labels })
    }

    /// Number of samples.
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    /// Whether there are no samples.
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }
}

/// Running min/max of an activation.
#[derive(Clone, Copy)]
struct Range {
    min: f32,
    max: f32,
}

impl Range {
    const ZERO: Self = Self { min: 0.0, max: 0.0 };

    fn add(&mut self, values: &[f32]) {
        for &v in values {
            self.min = self.min.min(v);
            self.max = self.max.max(v);
        }
    }

    /// Asymmetric int8 parameters for `[min(min, 0), max(max, 0)]`.
    fn params(self) -> QuantParams {
        let min = f64::from(self.min.min(0.0));
        let mut max = f64::from(self.max.max(0.0));
        if max - min <= f64::from(f32::MIN_POSITIVE) {
            max = min + 1.0; // a constant-zero activation: any scale represents it
        }
        let scale = ((max - min) / 255.0) as f32;
        let zp = libm::round(-128.0 - min / f64::from(scale)).clamp(-128.0, 127.0) as i8;
        QuantParams {
            scale,
            zero_point: zp,
        }
    }
}

/// Quantizes one `[in, out]` row-major layer into output-major int8 + int32 bias; also
/// returns the exact real multipliers.
fn quantize_layer(
    layer: &'static str,
    w: &[f32],
    b: &[f32],
    inputs: usize,
    input_scale: f32,
    output_scale: f32,
) -> Result<(LayerParams, Vec<f64>), QuantizeError> {
    let outputs = b.len();
    let mut weights = vec![0i8; inputs * outputs];
    let mut bias = Vec::with_capacity(outputs);
    let mut weight_scales = Vec::with_capacity(outputs);
    let mut multipliers = Vec::with_capacity(outputs);
    let mut reals = Vec::with_capacity(outputs);
    for c in 0..outputs {
        let column = (0..inputs).map(|i| w[i * outputs + c]);
        let max_abs = column.clone().fold(0f32, |m, v| m.max(v.abs()));
        let scale = if max_abs > 0.0 { max_abs / 127.0 } else { 1.0 };
        for (i, v) in column.enumerate() {
            let q = libm::round(f64::from(v) / f64::from(scale)).clamp(-127.0, 127.0);
            weights[c * inputs + i] = q as i8;
        }
        let bias_scale = f64::from(input_scale) * f64::from(scale);
        let q = libm::round(f64::from(b[c]) / bias_scale);
        bias.push(q.clamp(f64::from(i32::MIN), f64::from(i32::MAX)) as i32);
        let real = bias_scale / f64::from(output_scale);
        let m =
            QuantizedMultiplier::from_f64(real).map_err(|source| QuantizeError::Multiplier {
                layer,
                channel: c,
                source,
            })?;
        weight_scales.push(scale);
        multipliers.push(m);
        reals.push(real);
    }
    let params = LayerParams {
        weights,
        bias,
        weight_scales,
        multipliers,
    };
    Ok((params, reals))
}

/// The tanh table for a pre-tanh quantization (see the module docs).
pub fn tanh_table(pretanh: QuantParams) -> [i8; LUT_LEN] {
    let mut lut = [0i8; LUT_LEN];
    for (i, entry) in lut.iter_mut().enumerate() {
        let code = i as i32 - 128;
        let x = f64::from(pretanh.scale) * f64::from(code - i32::from(pretanh.zero_point));
        let pixel = libm::round((libm::tanh(x) + 1.0) * 127.5).clamp(0.0, 255.0);
        *entry = (pixel as i32 - 128) as i8;
    }
    lut
}

/// Quantizes `model` with activation ranges calibrated on `calibration`.
pub fn quantize(model: &FloatMlp, calibration: &Calibration) -> Result<ModelParams, QuantizeError> {
    model.validate()?;
    if calibration.is_empty() {
        return Err(QuantizeError::EmptyCalibration);
    }
    shape("calibration z_dim", model.z_dim, calibration.z_dim)?;
    let dims = model.dims();

    let mut input = Range::ZERO;
    let mut hidden = Range::ZERO;
    let mut pretanh = Range::ZERO;
    if let Some(e) = &model.embedding {
        input.add(&e.table);
    }
    let rows = calibration.z.chunks_exact(model.z_dim);
    for (sample, (z, &label)) in rows.zip(&calibration.labels).enumerate() {
        model.check_sample(z, label, sample)?;
        input.add(z);
        let t = model.trace(&model.input(z, label));
        hidden.add(&t.hidden);
        pretanh.add(&t.pretanh);
    }
    pretanh.min = pretanh.min.max(-PRETANH_CLIP);
    pretanh.max = pretanh.max.min(PRETANH_CLIP);
    let (input, hidden_quant, pretanh_quant) = (input.params(), hidden.params(), pretanh.params());

    let (hidden_layer, hidden_reals) = quantize_layer(
        "hidden",
        &model.w1,
        &model.b1,
        dims.input(),
        input.scale,
        hidden_quant.scale,
    )?;
    let hidden_negative = hidden_reals
        .iter()
        .enumerate()
        .map(|(channel, &real)| {
            QuantizedMultiplier::from_f64(real * f64::from(model.leaky_alpha)).map_err(|source| {
                QuantizeError::Multiplier {
                    layer: "hidden (negative side)",
                    channel,
                    source,
                }
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    let (output, _) = quantize_layer(
        "output",
        &model.w2,
        &model.b2,
        dims.hidden,
        hidden_quant.scale,
        pretanh_quant.scale,
    )?;
    let embedding = model.embedding.as_ref().map_or_else(Vec::new, |e| {
        e.table
            .iter()
            .map(|&v| quantize_f32(v, input.scale, input.zero_point))
            .collect()
    });
    Ok(ModelParams {
        dims,
        input,
        hidden_quant,
        pretanh_quant,
        leaky_alpha: model.leaky_alpha,
        tanh_lut: tanh_table(pretanh_quant),
        embedding,
        hidden: hidden_layer,
        hidden_negative,
        output,
    })
}

/// Quantizes and serialises in one step: the bytes `runtime export-firmware` writes.
pub fn export(model: &FloatMlp, calibration: &Calibration) -> Result<Vec<u8>, QuantizeError> {
    Ok(write(&quantize(model, calibration)?)?)
}
