//! How good is a generator, in numbers: a small evaluation classifier trained on the real
//! data, and the metrics computed with it — FID on its penultimate features (beside the
//! real-vs-real floor that says what a perfect generator would score), class coverage,
//! precision and recall (k-NN manifolds), per-class accuracy of conditional samples — and
//! the augmentation experiment that measures what users want a generator for: whether its
//! synthetic data makes a classifier trained on little real data better.
//!
//! - [`classifier`]: the CNN, its training, its saved card; [`classifier_onnx`]: the same
//!   network as ONNX for the runtime (`runtime generate --filter`).
//! - [`fid`], [`coverage`], [`precision_recall`]: the metrics, on plain feature buffers.
//! - [`Evaluator`]: real features computed once, then [`Evaluator::evaluate`] on any batch of
//!   generated images (the training loop calls it every N steps on ~1,000 samples).
//! - [`source`]: samples from an ONNX file or a run folder; [`augment`]: the augmentation gain.

pub mod augment;
pub mod classifier;
pub mod classifier_onnx;
pub mod coverage;
mod evaluator;
pub mod fid;
pub mod precision_recall;
pub mod source;

use std::path::PathBuf;

pub use classifier::{Classifier, ClassifierCard, ClassifierConfig, EvalClassifier, Features};
pub use coverage::Coverage;
pub use evaluator::{
    ClassAccuracy, ConditionalAccuracy, EvalOptions, Evaluator, QualityReport, RealFloor,
};
pub use precision_recall::PrecisionRecall;
pub use source::{SampleSource, Samples};

/// Why a quality measurement could not be made.
#[derive(Debug, thiserror::Error)]
pub enum QualityError {
    /// A file could not be read or written.
    // The cause is part of the message rather than a `source`, so a chain printed with
    // `{:#}` (as the CLI does) does not say it twice.
    #[error("{path}: {error}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The operating system's error.
        error: std::io::Error,
    },
    /// A file exists but is not what was expected.
    #[error("{path}: {problem}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        problem: String,
    },
    /// The data set could not be read.
    #[error(transparent)]
    Data(#[from] crate::data::DataError),
    /// A weights or card file could not be written.
    #[error(transparent)]
    Checkpoint(#[from] crate::checkpoint::CheckpointError),
    /// The ONNX generator could not be loaded or run.
    // The runtime's messages already name the model file.
    #[error("{error}")]
    Generator {
        /// The model file.
        path: PathBuf,
        /// The runtime's error (boxed: it is large, and errors travel by value).
        error: Box<runtime::Error>,
    },
    /// The run folder could not be loaded.
    #[error("run folder {path}: {error}")]
    Run {
        /// The run folder.
        path: PathBuf,
        /// The loader's error.
        error: Box<crate::export::ExportError>,
    },
    /// In-memory input that does not fit (shapes, counts, classes).
    #[error("{0}")]
    Input(String),
}
