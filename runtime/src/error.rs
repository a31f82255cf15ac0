//! The runtime's one error type: every failure names the file and says what is wrong with it.
//!
//! Each message says every fact once: the path once (callers add no second copy of it) and the
//! cause once. A variant that carries an underlying error (`error` fields) prints it in its own
//! message and does not return it again as [`std::error::Error::source`], so printing the chain
//! (`anyhow`'s `{:#}`) cannot repeat it. The underlying error stays available in the field.
//!
//! The two errors it wraps from the ONNX stage, [`SpecError`] (a generator description that
//! cannot be exported) and [`MetadataError`] (a metadata entry), are defined here too, so that
//! this module depends on nothing but [`crate::shape`] and every stage can return [`Error`];
//! `onnx::spec` and `onnx::metadata` re-export them at their earlier paths.

use std::path::PathBuf;

use crate::shape::{FeatureShape, ImageShape};

/// Result alias used across the crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong while loading a generator, generating, or writing a data set.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The model file cannot be read (missing, unreadable).
    #[error("{}: cannot read the model file: {error}", path.display())]
    ReadModel {
        /// The model path.
        path: PathBuf,
        /// Underlying error.
        error: std::io::Error,
    },
    /// The bytes are not an ONNX model (garbage, truncated, no graph).
    #[error("{}: not a valid ONNX model: {reason}", path.display())]
    NotOnnx {
        /// The model path.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// An ONNX model whose inputs or outputs are not a Gantry generator's.
    #[error("{}: not a Gantry generator: {reason}", path.display())]
    NotAGenerator {
        /// The model path.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// A generator from another framework that cannot be adopted as it is: what the graph
    /// does not tell, or tells inconsistently, and which flag to pass.
    #[error("{}: cannot adopt it as a generator: {reason}", path.display())]
    Adopt {
        /// The model path.
        path: PathBuf,
        /// What is missing or wrong, and what to pass.
        reason: String,
    },
    /// Metadata missing or invalid.
    #[error("{}: {error}", path.display())]
    Metadata {
        /// The model path.
        path: PathBuf,
        /// Which key and why.
        error: MetadataError,
    },
    /// tract failed to analyse, optimise or run the model.
    #[error("{}: tract cannot {stage}: {message}", path.display())]
    Tract {
        /// The model path.
        path: PathBuf,
        /// What tract was doing.
        stage: String,
        /// tract's error chain.
        message: String,
    },
    /// A second backend (ONNX Runtime) failed or is not available.
    #[error("{backend}: {message}")]
    Backend {
        /// Backend name.
        backend: &'static str,
        /// What went wrong and how to fix it.
        message: String,
    },
    /// Zero samples were requested.
    #[error("count must be at least 1")]
    ZeroCount,
    /// A class index past the model's classes.
    #[error("class {class} is out of range: the model has {classes} classes, numbered 0 to {}", classes.saturating_sub(1))]
    ClassOutOfRange {
        /// Requested class.
        class: usize,
        /// Number of classes of the model.
        classes: usize,
    },
    /// A class was requested from an unconditional model.
    #[error("the model is unconditional (it has no classes), so no class can be chosen")]
    NotConditional,
    /// Noise or labels passed to `run` do not fit the model.
    #[error("invalid input: {reason}")]
    Input {
        /// What is wrong.
        reason: String,
    },
    /// An output location cannot be used.
    #[error("{}: {problem}", path.display())]
    Output {
        /// The output path.
        path: PathBuf,
        /// What is wrong.
        problem: String,
    },
    /// Writing an output failed.
    #[error("{}: cannot write: {error}", path.display())]
    Write {
        /// The path being written.
        path: PathBuf,
        /// Underlying error.
        error: std::io::Error,
    },
    /// Reading a data file failed.
    #[error("{}: cannot read: {error}", path.display())]
    Read {
        /// The path being read.
        path: PathBuf,
        /// Underlying error.
        error: std::io::Error,
    },
    /// A data file is not what it should be.
    #[error("{}: {problem}", path.display())]
    Format {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        problem: String,
    },
    /// A generator spec is invalid.
    #[error(transparent)]
    Spec(#[from] SpecError),
    /// A model file whose weights are invalid (NaN, wrong sizes...).
    #[error("{}: {error}", path.display())]
    Model {
        /// The model path.
        path: PathBuf,
        /// What is wrong.
        error: SpecError,
    },
    /// A valid generator that this operation cannot handle (a graph the quantizer does not
    /// know, a dcgan given to the firmware exporter...).
    #[error("{}: {reason}", path.display())]
    Unsupported {
        /// The model path.
        path: PathBuf,
        /// What is not supported and what to do instead.
        reason: String,
    },
    /// Calibration for int8 quantization failed or was given bad settings.
    #[error("{}: calibration: {problem}", path.display())]
    Calibration {
        /// The model path.
        path: PathBuf,
        /// What is wrong.
        problem: String,
    },
    /// The requested precision cannot be run from this file.
    #[error("{}: {problem}", path.display())]
    Precision {
        /// The model path.
        path: PathBuf,
        /// What is wrong and what to do instead.
        problem: String,
    },
    /// The firmware quantizer or blob format refused the model or the blob.
    #[error("{}: {problem}", path.display())]
    Firmware {
        /// The model or blob path.
        path: PathBuf,
        /// What is wrong.
        problem: String,
    },
}

impl Error {
    pub(crate) fn tract(
        path: &std::path::Path,
        stage: impl Into<String>,
        err: impl std::fmt::Display,
    ) -> Error {
        Error::Tract {
            path: path.to_path_buf(),
            stage: stage.into(),
            message: format!("{err:#}"),
        }
    }
}

/// Why a generator spec (`onnx::spec::GeneratorSpec`) cannot be exported.
#[derive(Debug, thiserror::Error)]
pub enum SpecError {
    /// A size that must be positive is zero.
    #[error("{what} must be at least 1")]
    ZeroSize {
        /// What is zero.
        what: &'static str,
    },
    /// Classes and label embedding disagree.
    #[error("conditioning: {problem}")]
    Conditioning {
        /// What is wrong.
        problem: String,
    },
    /// A parameter buffer has the wrong number of values.
    #[error("{location}: {what} has {actual} values, expected {expected}")]
    Length {
        /// Layer or table.
        location: String,
        /// Which buffer.
        what: &'static str,
        /// Expected number of values.
        expected: usize,
        /// Actual number of values.
        actual: usize,
    },
    /// A layer cannot take the activations the previous layer produces.
    #[error("{location}: takes {expected} but receives {found}")]
    Shape {
        /// Layer.
        location: String,
        /// What the layer needs.
        expected: String,
        /// What it gets.
        found: FeatureShape,
    },
    /// A hyper-parameter is out of its valid range.
    #[error("{location}: {problem}")]
    Parameter {
        /// Layer.
        location: String,
        /// What is wrong.
        problem: String,
    },
    /// A weight is NaN or infinite (a diverged run?).
    #[error("{location}: {what} contains a NaN or infinite value (did training diverge?)")]
    NonFinite {
        /// Layer or table.
        location: String,
        /// Which buffer.
        what: &'static str,
    },
    /// The last layer does not produce the declared image shape.
    #[error("the layers produce {found}, but the image shape is {expected}")]
    Output {
        /// Declared image shape.
        expected: ImageShape,
        /// What the layers produce.
        found: FeatureShape,
    },
    /// A BatchNorm does not directly follow a Dense or ConvTranspose2d layer.
    #[error(
        "layer {layer} (BatchNorm) cannot be folded: it follows {previous}, not Dense or ConvTranspose2d"
    )]
    UnfoldableBatchNorm {
        /// Index of the BatchNorm.
        layer: usize,
        /// What precedes it.
        previous: String,
    },
    /// `metadata` uses a key the runtime writes itself.
    #[error("metadata key `{key}` is reserved for the runtime; choose another key")]
    ReservedMetadataKey {
        /// The offending key.
        key: String,
    },
    /// Inputs to `GeneratorSpec::forward_reference` do not fit the spec.
    #[error("reference forward: {problem}")]
    Input {
        /// What is wrong.
        problem: String,
    },
    /// Writing the ONNX file failed.
    #[error("{}: cannot write the ONNX file: {error}", path.display())]
    Write {
        /// Target path.
        path: PathBuf,
        /// Underlying error.
        error: std::io::Error,
    },
}

/// A metadata entry is missing or cannot be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("metadata `{key}` {problem}")]
pub struct MetadataError {
    /// The key concerned.
    pub key: String,
    /// What is wrong with it.
    pub problem: String,
}
