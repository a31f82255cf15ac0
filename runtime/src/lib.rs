//! Gantry's edge runtime: runs GAN generators exported to ONNX with `tract`, and turns seeds into
//! labelled synthetic data sets.
//!
//! The folders follow the pipeline:
//!
//! - [`onnx`]: the ONNX format: [`onnx::spec`], the framework-neutral generator description the
//!   trainer exports through, and the writer that turns it into an ONNX graph;
//!   [`onnx::metadata`]: the metadata inside that file; [`onnx::import`]: reading an ONNX
//!   generator back into a spec; [`onnx::adopt`]: generators from other frameworks.
//! - [`engine`]: the [`Backend`](engine::Backend) trait and the engines: [`engine::tract`]
//!   loads a model with tract and generates images (and `engine::ort`, with the `ort` feature).
//! - [`int8`]: post-training int8 quantization ([`int8::quantize`], `runtime quantize`) and
//!   [`int8::firmware_reference`], an independent host implementation of the firmware's integer
//!   arithmetic.
//! - [`dataset`]: write PNG / IDX / grid data sets with a manifest.
//! - [`firmware_export`]: the `firmware` crate's weight blob (`runtime export-firmware`).
//! - [`noise`]: the documented, seeded noise; [`shape`]: image and activation shapes;
//!   [`error`], [`fsutil`]: shared plumbing.
//!
//! Layers, bottom to top; a module uses only modules on its own layer's left or below it,
//! never one above:
//!
//! 1. [`fsutil`], [`noise`], [`shape`]: use nothing else in the crate.
//! 2. [`error`]: the [`Error`] type and the errors it wraps ([`error::SpecError`],
//!    [`error::MetadataError`]).
//! 3. [`onnx`]: the file format. Its modules, bottom to top: `metadata`; `spec` and
//!    `quantization` (the int8 record a file's metadata may hold); `write`, `decode` (file
//!    bytes, protobuf, signature) and `constants` (a graph's constant tensors); `adopt`;
//!    `read` (a generator file as the runtime runs it, adopted in memory when foreign);
//!    `import`; and `classifier` (the evaluation classifier's graph) beside `write`.
//! 4. [`int8`]: the quantizer and the firmware reference; reads files through `onnx::read`.
//! 5. [`engine`]: tract (which quantizes in memory through [`int8`]) and ONNX Runtime.
//! 6. [`dataset`], [`firmware_export`]: what the subcommands write.
//! 7. the `runtime` binary: `cli/`, one file per subcommand.
//!
//! The flat module paths of earlier versions ([`generator`], [`spec`], [`quantize`], ...) still
//! work: they are compatibility modules that re-export the moved ones.
//!
//! ```no_run
//! use runtime::prelude::*;
//! let generator = Generator::load("models/mnist-dcgan-cond.onnx")?;
//! let samples = generator.generate(16, Some(3), 42)?; // 16 images of class 3
//! assert_eq!(samples.len(), 16);
//! # Ok::<(), runtime::Error>(())
//! ```

pub mod dataset;
pub mod engine;
pub mod error;
pub mod firmware_export;
pub mod fsutil;
pub mod int8;
pub mod noise;
pub mod onnx;
pub mod shape;

/// Compatibility path; the module lives in [`engine`] (the [`Backend`](engine::Backend) trait).
pub mod backend {
    pub use crate::engine::{Backend, max_abs_diff};
}

/// Compatibility path; the module lives in [`firmware_export`].
pub mod firmware_blob {
    pub use crate::firmware_export::*;
}

/// Compatibility path; the module lives in [`engine::tract`].
pub mod generator {
    pub use crate::engine::tract::*;
}

/// Compatibility path; the module lives in [`onnx::import`].
pub mod import {
    pub use crate::onnx::import::*;
}

/// Compatibility path; the module lives in [`onnx::metadata`].
pub mod info {
    pub use crate::onnx::metadata::*;
}

/// Compatibility path; the module lives in `engine::ort`.
#[cfg(feature = "ort")]
pub mod ort_backend {
    pub use crate::engine::ort::*;
}

/// Compatibility path; the module lives in [`int8::quantize`].
pub mod quantize {
    pub use crate::int8::quantize::*;
}

/// Compatibility path; the module lives in [`onnx::spec`].
pub mod spec {
    pub use crate::onnx::spec::*;
}

pub use error::{Error, Result};

/// The types most programs need.
pub mod prelude {
    pub use crate::dataset::{DatasetRequest, Manifest, OutputFormat, write_dataset};
    #[cfg(feature = "ort")]
    pub use crate::engine::ort::OrtGenerator;
    pub use crate::engine::tract::{BatchMode, Generator, LoadOptions, Precision, Samples};
    pub use crate::engine::{Backend, max_abs_diff};
    pub use crate::error::{Error, Result};
    pub use crate::int8::quantize::{CalibrationMethod, Form, QuantizeOptions, quantize_file};
    pub use crate::noise::noise;
    pub use crate::onnx::metadata::ModelInfo;
    pub use crate::onnx::spec::{
        BatchNorm, ConvTranspose2d, Dense, GeneratorSpec, ImageShape, Layer, Matrix, SpecError,
    };
}
