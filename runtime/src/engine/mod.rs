//! A common face for the inference engines, so `runtime bench` and the parity tests can run the
//! same noise through each and compare.
//!
//! The engines: [`tract`] (the default, [`Generator`]) and `ort` (ONNX Runtime, with the `ort`
//! cargo feature).

pub mod choices;
pub mod classifier;
#[cfg(feature = "ort")]
pub mod ort;
pub mod tract;

use crate::engine::tract::Generator;
use crate::error::Result;
use crate::onnx::metadata::ModelInfo;

/// An engine that runs a loaded generator.
pub trait Backend {
    /// Short name shown in reports, e.g. `tract` or `ort`.
    fn name(&self) -> String;
    /// The model's metadata.
    fn info(&self) -> &ModelInfo;
    /// Runs `z` (`[batch, z_dim]`) and labels (conditional models) to `[batch, C, H, W]` values.
    fn run_batch(&self, z: &[f32], labels: Option<&[i64]>) -> Result<Vec<f32>>;
}

impl Backend for Generator {
    fn name(&self) -> String {
        let precision = match self.precision() {
            crate::engine::tract::Precision::Int8 => "-int8",
            _ => "",
        };
        let mode = match self.batch_mode() {
            crate::engine::tract::BatchMode::Fixed => "",
            crate::engine::tract::BatchMode::Symbolic => "-symbolic",
        };
        format!("tract{precision}{mode}")
    }

    fn info(&self) -> &ModelInfo {
        Generator::info(self)
    }

    fn run_batch(&self, z: &[f32], labels: Option<&[i64]>) -> Result<Vec<f32>> {
        self.run(z, labels)
    }
}

/// Largest absolute difference between two equally long outputs (`f32::INFINITY` when their
/// lengths differ, NaN-aware: a NaN on either side counts as infinite).
pub fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    if a.len() != b.len() {
        return f32::INFINITY;
    }
    a.iter()
        .zip(b)
        .map(|(x, y)| {
            let d = (x - y).abs();
            if d.is_nan() { f32::INFINITY } else { d }
        })
        .fold(0.0, f32::max)
}
