//! Gantry's edge runtime: runs GAN generators exported to ONNX with `tract`, and turns seeds into
//! labelled synthetic data sets.
//!
//! - [`spec`]: the framework-neutral generator description the trainer exports through, and
//!   [`onnx`]: how it becomes an ONNX file; [`info`]: the metadata inside that file.
//! - [`generator`]: load a model with tract and generate images; [`noise`]: the documented,
//!   seeded noise.
//! - [`dataset`]: write PNG / IDX / grid data sets with a manifest.
//! - [`backend`] (and `ort_backend` with the `ort` feature): engines side by side.
//! - [`quantize`]: post-training int8 quantization (`runtime quantize`); [`import`]: reading an
//!   ONNX generator back into a spec.
//! - [`firmware_blob`]: the `firmware` crate's weight blob (`runtime export-firmware`);
//!   [`int8`]: an independent host implementation of the firmware's integer arithmetic.
//!
//! ```no_run
//! use runtime::prelude::*;
//! let generator = Generator::load("models/mnist-dcgan-cond.onnx")?;
//! let samples = generator.generate(16, Some(3), 42)?; // 16 images of class 3
//! assert_eq!(samples.len(), 16);
//! # Ok::<(), runtime::Error>(())
//! ```

pub mod backend;
pub mod dataset;
pub mod error;
pub mod firmware_blob;
pub mod fsutil;
pub mod generator;
pub mod import;
pub mod info;
pub mod int8;
pub mod noise;
pub mod onnx;
#[cfg(feature = "ort")]
pub mod ort_backend;
pub mod quantize;
pub mod spec;

pub use error::{Error, Result};

/// The types most programs need.
pub mod prelude {
    pub use crate::backend::{Backend, max_abs_diff};
    pub use crate::dataset::{DatasetRequest, Manifest, OutputFormat, write_dataset};
    pub use crate::error::{Error, Result};
    pub use crate::generator::{BatchMode, Generator, LoadOptions, Precision, Samples};
    pub use crate::info::ModelInfo;
    pub use crate::noise::noise;
    #[cfg(feature = "ort")]
    pub use crate::ort_backend::OrtGenerator;
    pub use crate::quantize::{CalibrationMethod, Form, QuantizeOptions, quantize_file};
    pub use crate::spec::{GeneratorSpec, ImageShape, Layer, Matrix, SpecError};
}
