//! `runtime export-firmware`: an `mlp` generator as a weight blob for the `firmware` crate.
//!
//! The firmware runs one architecture with no heap: `z (+ embedding[label]) → Dense →
//! LeakyReLU → Dense → tanh`, one gray channel. This module reads an exported ONNX generator
//! back into a spec ([`crate::onnx::import`]), checks that it is that architecture, hands the f32
//! weights to the firmware's own quantizer (`firmware::quantize`, so that there is a single
//! implementation of the blob's quantization) calibrated on the firmware's seeded noise, and
//! writes the blob atomically. [`crate::int8::firmware_reference::FirmwareReference`] runs a blob independently.

use crate::onnx::adopt::Foreign;
use std::path::Path;

use firmware::quantize::{Calibration, Embedding, FloatMlp};

use crate::error::{Error, Result};
use crate::onnx::spec::{Dense, GeneratorSpec, Layer};

/// Calibration samples used unless told otherwise (the firmware quantizer's own default).
pub const DEFAULT_SAMPLES: usize = 1000;

/// What [`export_firmware`] wrote.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct FirmwareExport {
    /// Blob size in bytes.
    pub bytes: usize,
    /// Latent size.
    pub z_dim: usize,
    /// Label-embedding width (0: unconditional).
    pub embed_dim: usize,
    /// Number of labels (0: unconditional).
    pub classes: usize,
    /// Hidden units.
    pub hidden: usize,
    /// Image width.
    pub width: usize,
    /// Image height.
    pub height: usize,
    /// int8 multiply-accumulates per sample.
    pub macs: usize,
}

fn layer_list(spec: &GeneratorSpec) -> String {
    let kinds: Vec<&str> = spec.layers.iter().map(Layer::kind).collect();
    kinds.join(" → ")
}

/// The spec's weights in the firmware's layout, or a clear refusal naming what does not fit.
pub fn float_mlp(spec: &GeneratorSpec, path: &Path) -> Result<FloatMlp> {
    let refuse = |why: String| Error::Unsupported {
        path: path.to_path_buf(),
        reason: format!(
            "the firmware runs only the mlp generator (Dense → LeakyReLU → Dense → Tanh, one gray channel); {why}. Run this model with `runtime generate` instead"
        ),
    };
    let spec = spec.fold_batch_norm().map_err(|source| Error::Model {
        path: path.to_path_buf(),
        error: source,
    })?;
    if spec.image.channels != 1 {
        return Err(refuse(format!(
            "this model makes {}-channel images",
            spec.image.channels
        )));
    }
    let layers: Vec<&Layer> = spec
        .layers
        .iter()
        .filter(|l| !matches!(l, Layer::Reshape { .. }))
        .collect();
    let (w1, b1, alpha, w2, b2) = match layers[..] {
        [
            Layer::Dense(Dense {
                weight: w1,
                bias: b1,
            }),
            Layer::LeakyRelu { alpha },
            Layer::Dense(Dense {
                weight: w2,
                bias: b2,
            }),
            Layer::Tanh,
        ] => (w1, b1, *alpha, w2, b2),
        [
            Layer::Dense(Dense {
                weight: w1,
                bias: b1,
            }),
            Layer::Relu,
            Layer::Dense(Dense {
                weight: w2,
                bias: b2,
            }),
            Layer::Tanh,
        ] => (w1, b1, 0.0, w2, b2),
        _ => {
            let what = if spec
                .layers
                .iter()
                .any(|l| matches!(l, Layer::ConvTranspose2d { .. }))
            {
                " (a dcgan)"
            } else {
                ""
            };
            return Err(refuse(format!(
                "this model's layers are {}{what}",
                layer_list(&spec)
            )));
        }
    };
    let zeros = |n: usize| vec![0.0; n];
    Ok(FloatMlp {
        z_dim: spec.z_dim,
        hidden: w1.cols,
        width: spec.image.width,
        height: spec.image.height,
        w1: w1.data.clone(),
        b1: b1.clone().unwrap_or_else(|| zeros(w1.cols)),
        w2: w2.data.clone(),
        b2: b2.clone().unwrap_or_else(|| zeros(w2.cols)),
        leaky_alpha: alpha,
        embedding: spec.label_embedding.as_ref().map(|t| Embedding {
            classes: t.rows,
            dim: t.cols,
            table: t.data.clone(),
        }),
    })
}

/// Quantizes the `mlp` generator at `model` for the firmware, calibrated on `samples` latents
/// of the firmware's noise (seeds `seed`, `seed + 1`, …; labels `i % classes`), and returns the
/// blob.
pub fn firmware_blob(model: &Path, samples: usize, seed: u64) -> Result<Vec<u8>> {
    firmware_blob_foreign(model, &Foreign::default(), samples, seed)
}

/// [`firmware_blob`] with what to assume about a generator from another framework (see
/// [`crate::onnx::adopt`]).
pub fn firmware_blob_foreign(
    model: &Path,
    foreign: &Foreign,
    samples: usize,
    seed: u64,
) -> Result<Vec<u8>> {
    let spec = crate::onnx::import::read_spec_foreign(model, foreign)?;
    blob_from_spec(&spec, model, samples, seed)
}

/// [`firmware_blob`] from a spec; `path` names it in errors.
pub fn blob_from_spec(
    spec: &GeneratorSpec,
    path: &Path,
    samples: usize,
    seed: u64,
) -> Result<Vec<u8>> {
    if samples == 0 {
        return Err(Error::Calibration {
            path: path.to_path_buf(),
            problem: "0 samples: activation ranges need at least 1 (--calibration-samples)".into(),
        });
    }
    let mlp = float_mlp(spec, path)?;
    let fail = |e: firmware::quantize::QuantizeError| Error::Firmware {
        path: path.to_path_buf(),
        problem: format!("the firmware cannot run this model: {e}"),
    };
    mlp.validate().map_err(fail)?;
    let calibration = Calibration::seeded(&mlp, samples, seed);
    firmware::quantize::export(&mlp, &calibration).map_err(fail)
}

/// [`firmware_blob`], written atomically to `out`.
pub fn export_firmware(
    model: &Path,
    out: &Path,
    samples: usize,
    seed: u64,
) -> Result<FirmwareExport> {
    export_firmware_foreign(model, &Foreign::default(), out, samples, seed)
}

/// [`export_firmware`] with what to assume about a generator from another framework.
pub fn export_firmware_foreign(
    model: &Path,
    foreign: &Foreign,
    out: &Path,
    samples: usize,
    seed: u64,
) -> Result<FirmwareExport> {
    let bytes = firmware_blob_foreign(model, foreign, samples, seed)?;
    let parsed = firmware::Model::parse(&bytes).map_err(|e| Error::Firmware {
        path: out.to_path_buf(),
        problem: format!("the written blob does not parse (a bug, please report it): {e}"),
    })?;
    let d = parsed.dims();
    crate::fsutil::write_atomic(out, &bytes).map_err(|source| Error::Write {
        path: out.to_path_buf(),
        error: source,
    })?;
    Ok(FirmwareExport {
        bytes: bytes.len(),
        z_dim: d.z_dim,
        embed_dim: d.embed_dim,
        classes: d.classes,
        hidden: d.hidden,
        width: d.width,
        height: d.height,
        macs: d.macs(),
    })
}
