//! A training run from start to finish: the run folder, the data, the device, the
//! loop with its progress bar, logs, samples and checkpoints, and a clean stop on
//! Ctrl-C or divergence.
//!
//! This module is the run's public face (its options, summary and errors, and the pieces
//! tests and benches reuse); [`train`] puts the parts together, each in its own module:
//! `folder` sets up the run folder (new or resumed), `session` runs the loop, `schedule`
//! says what falls due at a step, and `sheet`, `quality` and `divergence` hold the loop's
//! sample grids, quality measurements and divergence report.

mod divergence;
mod folder;
mod quality;
mod schedule;
mod session;
mod sheet;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use image::RgbImage;

use crate::checkpoint::CheckpointError;
use crate::config::{BackendKind, ConfigError, TrainConfig};
use crate::data::{self, DataError, Dataset, Split};
use crate::metrics::MetricsLine;
use crate::render;
use crate::report;
use burn::tensor::Device;

/// The target of the run's log lines, also in its submodules: `trainer::run`, as before the
/// module was split up, so that the run logs exactly the lines it always has.
const LOG_TARGET: &str = "trainer::run";

/// Why a run stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    /// The config is unusable.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The data set is unreadable.
    #[error(transparent)]
    Data(#[from] DataError),
    /// A checkpoint, sample or config could not be written or read.
    #[error(transparent)]
    Checkpoint(#[from] CheckpointError),
    /// The run folder is unusable.
    #[error("{path}: {problem}")]
    RunDir {
        /// The folder.
        path: PathBuf,
        /// What is wrong.
        problem: String,
    },
    /// The requested backend is not available in this build or on this machine.
    #[error("{0}")]
    Backend(String),
    /// The quality evaluator could not be set up or run.
    #[error(transparent)]
    Quality(#[from] crate::quality::QualityError),
    /// The TensorBoard event file could not be written.
    #[error(transparent)]
    TensorBoard(#[from] report::tensorboard::TensorBoardError),
    /// Losses became NaN or infinite.
    #[error("training diverged at step {step} (NaN or infinite loss); {advice}")]
    Diverged {
        /// The step that produced the non-finite loss.
        step: usize,
        /// The newest checkpoint whose weights still trained a finite step, if any.
        last_good: Option<PathBuf>,
        /// What to do: the resume command with lower learning rates.
        advice: String,
    },
}

/// How a finished run went.
#[derive(Clone, Debug)]
pub struct RunSummary {
    /// The run folder.
    pub run_dir: PathBuf,
    /// Steps completed.
    pub steps: usize,
    /// Means over the last logging interval.
    pub last: Option<MetricsLine>,
    /// True when Ctrl-C stopped the run (a checkpoint was saved).
    pub interrupted: bool,
    /// Why the run stopped before its last step on its own (`--until-fid`, `--patience`).
    pub stopped_early: Option<String>,
    /// Mean training steps per second of this session.
    pub steps_per_s: f64,
}

/// What a resumed run may change; every other setting stays as the run was trained.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct ResumeChanges {
    /// A new step target (the run's own target when absent).
    pub steps: Option<usize>,
    /// A new epoch target.
    pub epochs: Option<usize>,
    /// G's new learning rate (recorded as a new segment in config.json).
    pub generator_learning_rate: Option<f64>,
    /// D's new learning rate.
    pub discriminator_learning_rate: Option<f64>,
}

/// What to do besides the config.
#[derive(Clone, Debug, Default)]
pub struct RunOptions {
    /// Continue the run in this folder from its latest checkpoint (the `config` given to
    /// [`train`] is then ignored: the run's own config.json is used, with `changes`).
    pub resume: Option<PathBuf>,
    /// What the resume changes.
    pub changes: ResumeChanges,
    /// Draw a progress bar on the terminal.
    pub progress: bool,
    /// Stop (with a checkpoint) when this flag turns true; Ctrl-C sets it in the CLI.
    pub stop: Option<Arc<AtomicBool>>,
}

/// Picks the compute device; falls back to the CPU with a message when no GPU is usable.
pub fn select_device(backend: BackendKind) -> Result<Device, TrainError> {
    match backend {
        BackendKind::Cpu => Ok(Device::flex()),
        BackendKind::Wgpu => wgpu_device(),
    }
}

#[cfg(feature = "wgpu")]
fn wgpu_device() -> Result<Device, TrainError> {
    use burn::tensor::{DeviceKind, Tensor};
    use tracing::warn;
    let device = Device::wgpu(DeviceKind::DefaultDevice);
    // Device creation is lazy and adapter discovery panics inside wgpu's runtime when
    // there is no adapter: probe with one tiny op and fall back instead of crashing.
    let probe = device.clone();
    // The runtime panics on its own device thread too: keep both panics off the terminal
    // while probing, and say what happened in one line instead.
    let previous_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    let ok = std::panic::catch_unwind(move || {
        let t = Tensor::<1>::from_floats([1.0, 2.0], &probe);
        t.sum().into_scalar::<f32>()
    });
    std::panic::set_hook(previous_hook);
    match ok {
        Ok(v) if (v - 3.0).abs() < 1e-6 => Ok(device),
        _ => {
            warn!(
                "no usable GPU adapter found through wgpu; falling back to the CPU (flex) backend"
            );
            Ok(Device::flex())
        }
    }
}

#[cfg(not(feature = "wgpu"))]
fn wgpu_device() -> Result<Device, TrainError> {
    Err(TrainError::Backend(
        "this trainer was built without GPU support: rebuild with `cargo run --release -p trainer --features wgpu -- train --backend wgpu`".into(),
    ))
}

/// Loads the training split named by `config` (at most `max_examples` of it).
pub fn load_training_set(config: &TrainConfig) -> Result<Dataset, TrainError> {
    let dataset = data::open(&config.dataset, Split::Train, config.image)?;
    Ok(match config.max_examples {
        Some(n) => dataset.truncated(n),
        None => dataset,
    })
}

/// The noise seed of a run's sample grids: the run's seed, offset so that the grid's z do
/// not repeat the first training batch's.
pub fn sample_grid_seed(seed: u64) -> u64 {
    seed.wrapping_add(0x5A3D)
}

/// Trains a GAN as `config` says (or continues the run `options.resume` names).
pub fn train(config: TrainConfig, options: &RunOptions) -> Result<RunSummary, TrainError> {
    let run = folder::prepare(config, options)?;
    let mut session = session::Session::open(run, options)?;
    session.run()?;
    session.finish()
}

/// Draws the run report (losses, D's outputs and accuracy, FID; `samples` beside them)
/// from a `metrics.jsonl` into a PNG.
pub fn save_report(metrics: &Path, samples: &RgbImage, out: &Path) -> Result<(), TrainError> {
    let lines = crate::metrics::read(metrics).map_err(|e| TrainError::RunDir {
        path: metrics.to_path_buf(),
        problem: e.to_string(),
    })?;
    render::save_png(&report::figure::report(&lines, Some(samples)), out)?;
    Ok(())
}

/// `models/classifier-<data set folder name>.bpk` under `root` (the working directory
/// for `trainer train`), when it exists: the evaluation classifiers Gantry ships are named
/// so.
pub fn shipped_classifier(root: &Path, dataset: &Path) -> Option<PathBuf> {
    let name = dataset.file_name()?.to_str()?;
    let path = root.join("models").join(format!("classifier-{name}.bpk"));
    path.is_file().then_some(path)
}
