//! The int8 record a quantized generator file carries in its metadata
//! ([`keys::QUANTIZATION`], written by `runtime quantize`): the ONNX [`Form`] of its int8
//! layers, how activations were calibrated and the quantization of each weighted layer.
//!
//! It is part of the file format, so it lives with the other readers of the file: the spec
//! reader refuses int8-compute files by it and the engines choose the precision from it.
//! The quantizer that writes it is `crate::int8::quantize`, which re-exports these types.

use std::path::Path;

use crate::error::{Error, MetadataError, Result};
use crate::onnx::metadata::{ModelInfo, keys};

/// Revision of the [`QuantInfo`] layout.
pub const SCHEME_VERSION: u32 = 1;
/// How the int8 layers are written in ONNX.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, Hash, Default, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "kebab-case")]
pub enum Form {
    /// `QuantizeLinear` → `MatMulInteger` (int8 × int8 → int32) → int32 bias (the input
    /// zero point's term `-zp Σ_k W[k][c]` folded in) → `Cast` → `Mul` by
    /// `input_scale * weight_scale[c]`: integer matrix products, f32 activations.
    #[default]
    Integer,
    /// `QuantizeLinear` → `QLinearMatMul` (int8 in, int8 out, requantized by the engine) →
    /// `DequantizeLinear` → f32 bias.
    Qlinear,
    /// Quantize-dequantize pairs around f32 `Gemm`s (`QuantizeLinear` → `DequantizeLinear` on
    /// activations, `DequantizeLinear` on int8 weights and int32 biases): ONNX Runtime's
    /// preferred form, which it fuses into integer kernels.
    Qdq,
    /// Int8 weights behind `DequantizeLinear`, f32 compute: 4x smaller file, f32 speed.
    WeightOnly,
}

impl Form {
    /// All forms, for `--help` and benchmarks.
    pub const ALL: [Form; 4] = [Form::Integer, Form::Qlinear, Form::Qdq, Form::WeightOnly];

    /// The name used on the command line and in metadata.
    pub fn name(self) -> &'static str {
        match self {
            Form::Integer => "integer",
            Form::Qlinear => "qlinear",
            Form::Qdq => "qdq",
            Form::WeightOnly => "weight-only",
        }
    }

    /// Whether the form computes with int8 activations (all but [`Form::WeightOnly`]).
    pub fn is_int8_compute(self) -> bool {
        self != Form::WeightOnly
    }
}

impl std::fmt::Display for Form {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// How activation ranges are chosen from the calibration activations.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case", tag = "method")]
pub enum CalibrationMethod {
    /// The smallest and largest value seen.
    MinMax,
    /// The `(100 - p)`-th and `p`-th percentiles of the values seen, `p` in `(50, 100]`.
    Percentile {
        /// `p`, e.g. 99.99.
        percentile: f64,
    },
}

/// Quantization of one activation tensor: `real = scale * (code - zero_point)`.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ActivationQuant {
    /// Step between two codes.
    pub scale: f32,
    /// Code of real 0.
    pub zero_point: i8,
    /// The calibrated range `[low, high]` (0 included).
    pub range: [f32; 2],
}

impl ActivationQuant {
    /// Asymmetric int8 parameters for `[min(low, 0), max(high, 0)]`: the same rule as the
    /// firmware's quantizer.
    pub fn from_range(low: f32, high: f32) -> ActivationQuant {
        let lo = f64::from(low.min(0.0));
        let mut hi = f64::from(high.max(0.0));
        if hi - lo <= f64::from(f32::MIN_POSITIVE) {
            hi = lo + 1.0; // a constant-zero activation: any scale represents it
        }
        let scale = ((hi - lo) / 255.0) as f32;
        let zero_point = (-128.0 - lo / f64::from(scale))
            .round()
            .clamp(-128.0, 127.0) as i8;
        ActivationQuant {
            scale,
            zero_point,
            range: [lo as f32, hi as f32],
        }
    }

    /// The code of `x` (round half away from zero, saturated).
    pub fn quantize(&self, x: f32) -> i8 {
        ((x / self.scale).round() as i32 + i32::from(self.zero_point)).clamp(-128, 127) as i8
    }
}

/// One layer's entry in [`QuantInfo::layers`].
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct LayerRecord {
    /// Layer index in the generator.
    pub layer: usize,
    /// `Dense` or `ConvTranspose2d`.
    pub kind: String,
    /// How it runs: `int8` or `f32 (int8 weights)`.
    pub compute: String,
    /// Quantization of its input, for int8 layers.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub input: Option<ActivationQuant>,
    /// Smallest and largest per-channel weight scale.
    pub weight_scale_range: [f32; 2],
}

/// What `runtime quantize` records in [`keys::QUANTIZATION`].
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct QuantInfo {
    /// [`SCHEME_VERSION`].
    pub version: u32,
    /// The ONNX form.
    pub form: Form,
    /// Weight scheme, in words.
    pub weights: String,
    /// Activation scheme, in words.
    pub activations: String,
    /// Bias scheme, in words.
    pub bias: String,
    /// Calibration settings (absent for [`Form::WeightOnly`]).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub calibration: Option<CalibrationRecord>,
    /// Per weighted layer.
    pub layers: Vec<LayerRecord>,
}

impl QuantInfo {
    /// Whether the model computes with int8 activations.
    pub fn is_int8_compute(&self) -> bool {
        self.form.is_int8_compute()
    }

    /// Reads the record from a model's metadata, if it has one.
    pub fn from_info(info: &ModelInfo) -> std::result::Result<Option<QuantInfo>, String> {
        info.metadata
            .get(keys::QUANTIZATION)
            .map(|json| {
                serde_json::from_str(json)
                    .map_err(|e| format!("metadata `{}` is not valid ({e})", keys::QUANTIZATION))
            })
            .transpose()
    }
}

/// How the activations were calibrated.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct CalibrationRecord {
    /// Range selection.
    #[serde(flatten)]
    pub method: CalibrationMethod,
    /// Number of `z` samples.
    pub samples: usize,
    /// Their noise seed.
    pub seed: u64,
    /// The noise algorithm ([`NOISE_ALGORITHM`](crate::noise::NOISE_ALGORITHM)).
    pub noise: String,
    /// Labels of conditional models.
    pub labels: String,
}

/// The quantization record of the model at `path` (named in errors), if it has one.
pub(crate) fn quant_info(path: &Path, info: &ModelInfo) -> Result<Option<QuantInfo>> {
    QuantInfo::from_info(info).map_err(|problem| Error::Metadata {
        path: path.to_path_buf(),
        error: MetadataError {
            key: keys::QUANTIZATION.to_string(),
            problem,
        },
    })
}
