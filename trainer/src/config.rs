//! Everything that defines a training run, read from a TOML file and overridden by
//! command-line flags. The resolved config is saved as `config.json` in the run folder,
//! so a run can be resumed, exported and reproduced from its folder alone.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::data::ImageShape;
use crate::model::ModelConfig;

/// Why a config could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read config {path}: {cause}")]
    Io {
        /// The config file.
        path: PathBuf,
        /// The operating system's error.
        cause: std::io::Error,
    },
    /// The file is not valid TOML for a run config.
    #[error("config {path} is not a valid run config: {message}")]
    Parse {
        /// The config file.
        path: PathBuf,
        /// The parser's message, with line and column.
        message: String,
    },
    /// A value is out of range.
    #[error("invalid config: {0}")]
    Invalid(String),
}

/// The adversarial loss.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum LossKind {
    /// Binary cross-entropy for D; the non-saturating −log D(G(z)) for G.
    NonSaturating,
    /// Hinge loss: D minimises relu(1 − D(x)) + relu(1 + D(G(z))); G minimises −D(G(z)).
    Hinge,
}

/// Where tensors live.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum BackendKind {
    /// burn's pure-Rust `flex` CPU backend (SIMD + threads).
    Cpu,
    /// A GPU through wgpu (Vulkan/Metal/DX12); needs the `wgpu` cargo feature.
    Wgpu,
}

/// Adam settings of one player.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AdamSettings {
    /// Learning rate.
    pub learning_rate: f64,
    /// First-moment decay.
    pub beta1: f32,
    /// Second-moment decay.
    pub beta2: f32,
    /// Numerical-stability term.
    pub epsilon: f32,
}

impl Default for AdamSettings {
    /// Keras' defaults, which the book uses.
    fn default() -> Self {
        Self {
            learning_rate: 1e-3,
            beta1: 0.9,
            beta2: 0.999,
            epsilon: 1e-7,
        }
    }
}

/// How often the loop reports, samples and saves (in steps; 0 turns one off).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Intervals {
    /// Metrics line in `metrics.jsonl` and the terminal.
    pub log: usize,
    /// Fixed-noise sample grid PNG.
    pub sample: usize,
    /// Checkpoint of G, D, optimizers, EMA, RNG and step.
    pub checkpoint: usize,
}

impl Default for Intervals {
    fn default() -> Self {
        Self {
            log: 100,
            sample: 1000,
            checkpoint: 1000,
        }
    }
}

/// Quality measured while training (FID and friends on an evaluation classifier's
/// features; see `trainer classifier` and `trainer eval`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EvalSettings {
    /// Evaluation classifier (`models/classifier-*.bpk`); evaluation is off without one.
    pub classifier: Option<PathBuf>,
    /// Evaluate every this many steps (0: only at the end).
    pub every: usize,
    /// Generated images per evaluation (fewer than `trainer eval`'s 10,000: cheap).
    pub samples: usize,
    /// Without `classifier`, use the shipped `models/classifier-<data set folder>.bpk`
    /// when the working directory has one.
    pub auto: bool,
    /// Stop the run once an evaluation's FID is at or below this.
    pub until_fid: Option<f64>,
    /// Stop the run after this many evaluations in a row without a new best FID.
    pub patience: Option<usize>,
}

impl Default for EvalSettings {
    fn default() -> Self {
        Self {
            classifier: None,
            every: 2_000,
            samples: 1_000,
            auto: true,
            until_fid: None,
            patience: None,
        }
    }
}

/// A whole training run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TrainConfig {
    /// Data set folder: IDX files (MNIST-style) or one sub-folder of images per class.
    pub dataset: PathBuf,
    /// Image shape for image folders (IDX files carry their own).
    pub image: ImageShape,
    /// Use at most this many training examples (all when absent).
    pub max_examples: Option<usize>,
    /// Architecture.
    pub model: ModelConfig,
    /// Feed the class label to G and D, so G can be asked for a chosen class.
    pub conditional: bool,
    /// Length of the noise vector z.
    pub z_dim: usize,
    /// Examples per mini-batch (real and fake alike).
    pub batch_size: usize,
    /// Training steps (one D step + one G step each).
    pub steps: usize,
    /// Train for this many passes over the data instead of `steps`, when set.
    pub epochs: Option<usize>,
    /// Generator optimizer.
    pub generator_adam: AdamSettings,
    /// Discriminator optimizer.
    pub discriminator_adam: AdamSettings,
    /// Adversarial loss.
    pub loss: LossKind,
    /// Decay of an exponential moving average of G's weights, used for samples and
    /// export when set (e.g. 0.999).
    pub ema_decay: Option<f64>,
    /// Seed of weights, noise and batch order.
    pub seed: u64,
    /// Compute backend.
    pub backend: BackendKind,
    /// Run folder (default: `runs/<model>-<UTC time>`).
    pub out_dir: Option<PathBuf>,
    /// Reporting, sampling and checkpoint intervals.
    pub every: Intervals,
    /// Quality evaluation during training; keeps the best checkpoint by FID.
    pub eval: EvalSettings,
    /// Warn when D classifies every real and fake example right for this many
    /// consecutive steps (D has won; G gets no gradient).
    pub divergence_patience: usize,
    /// Also write TensorBoard event files (scalars and sample grids) into the run folder.
    pub tensorboard: bool,
    /// The learning rates' history when a resume changed them (`--resume RUN --lr-g …`):
    /// one segment per setting in the order they were set, the first from step 0; a later
    /// segment overrides an earlier one from its `from_step` on. Empty for a run that kept
    /// its rates.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub segments: Vec<Segment>,
}

/// Learning rates in force from a step on (see [`TrainConfig::segments`]).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Segment {
    /// The first step trained with these rates is `from_step + 1`.
    pub from_step: usize,
    /// G's learning rate.
    pub generator_learning_rate: f64,
    /// D's learning rate.
    pub discriminator_learning_rate: f64,
}

impl Default for TrainConfig {
    /// The book's chapter-3 settings (trainer/configs/book-ch3.toml): what every field
    /// absent from a config file takes. The default *run* is [`TrainConfig::default_run`].
    fn default() -> Self {
        Self {
            dataset: PathBuf::from("data/mnist-10k"),
            image: ImageShape {
                channels: 1,
                height: 28,
                width: 28,
            },
            max_examples: None,
            model: ModelConfig::default(),
            conditional: false,
            z_dim: 100,
            batch_size: 128,
            steps: 20_000,
            epochs: None,
            generator_adam: AdamSettings::default(),
            discriminator_adam: AdamSettings::default(),
            loss: LossKind::NonSaturating,
            ema_decay: None,
            seed: 42,
            backend: BackendKind::Cpu,
            out_dir: None,
            every: Intervals::default(),
            eval: EvalSettings::default(),
            divergence_patience: 2_000,
            tensorboard: false,
            segments: Vec::new(),
        }
    }
}

/// The longest noise vector accepted.
pub const MAX_Z_DIM: usize = 65_536;
/// The largest mini-batch accepted.
pub const MAX_BATCH_SIZE: usize = 65_536;
/// The most generated images one evaluation may ask for.
pub const MAX_EVAL_SAMPLES: usize = 1_000_000;

/// The recipe `trainer train` uses without `--config` (trainer/configs/default.toml).
pub const DEFAULT_RUN: &str = include_str!("../configs/default.toml");

impl TrainConfig {
    /// The default run: a class-conditional DCGAN that reaches good quality within
    /// minutes ([`DEFAULT_RUN`]).
    pub fn default_run() -> Result<Self, ConfigError> {
        toml::from_str(DEFAULT_RUN).map_err(|e| ConfigError::Parse {
            path: PathBuf::from("trainer/configs/default.toml (built in)"),
            message: e.to_string(),
        })
    }

    /// Reads a TOML config; absent fields take their defaults.
    pub fn from_toml_file(path: &Path) -> Result<Self, ConfigError> {
        let text = crate::fsutil::read_text(path).map_err(|cause| ConfigError::Io {
            path: path.to_path_buf(),
            cause,
        })?;
        Self::from_toml_str(&text, path)
    }

    /// Parses a TOML config read from `path` (named in errors); absent fields take
    /// their defaults. Ranges are checked by [`TrainConfig::validate`].
    pub fn from_toml_str(text: &str, path: &Path) -> Result<Self, ConfigError> {
        toml::from_str(text).map_err(|e| ConfigError::Parse {
            path: path.to_path_buf(),
            message: e.to_string(),
        })
    }

    /// Reads the `config.json` a run folder holds.
    pub fn from_json_file(path: &Path) -> Result<Self, ConfigError> {
        let text = crate::fsutil::read_text(path).map_err(|cause| ConfigError::Io {
            path: path.to_path_buf(),
            cause,
        })?;
        serde_json::from_str(&text).map_err(|e| ConfigError::Parse {
            path: path.to_path_buf(),
            message: e.to_string(),
        })
    }

    /// Changes the learning rates of a run resumed at `step` and records the change in
    /// [`TrainConfig::segments`] (the first change also records the rates it replaces).
    pub fn change_learning_rates(
        &mut self,
        step: usize,
        generator: Option<f64>,
        discriminator: Option<f64>,
    ) {
        let (g, d) = (
            generator.unwrap_or(self.generator_adam.learning_rate),
            discriminator.unwrap_or(self.discriminator_adam.learning_rate),
        );
        if g == self.generator_adam.learning_rate && d == self.discriminator_adam.learning_rate {
            return;
        }
        if self.segments.is_empty() {
            self.segments.push(Segment {
                from_step: 0,
                generator_learning_rate: self.generator_adam.learning_rate,
                discriminator_learning_rate: self.discriminator_adam.learning_rate,
            });
        }
        // Kept in order even when a later segment starts at the same step (a run resumed
        // from an earlier checkpoint): the history shows what was tried.
        self.segments.push(Segment {
            from_step: step,
            generator_learning_rate: g,
            discriminator_learning_rate: d,
        });
        self.generator_adam.learning_rate = g;
        self.discriminator_adam.learning_rate = d;
    }

    /// Checks ranges that would otherwise fail deep inside the loop.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |m: String| Err(ConfigError::Invalid(m));
        if self.z_dim == 0 {
            return invalid("z_dim must be at least 1".into());
        }
        if self.z_dim > MAX_Z_DIM {
            return invalid(format!(
                "z_dim {} is above the supported {MAX_Z_DIM}",
                self.z_dim
            ));
        }
        if self.batch_size == 0 || self.batch_size > MAX_BATCH_SIZE {
            return invalid(format!(
                "batch_size {} is not between 1 and {MAX_BATCH_SIZE}",
                self.batch_size
            ));
        }
        if self.max_examples == Some(0) {
            return invalid(
                "max_examples must be at least 1 (leave it out to use every example)".into(),
            );
        }
        let side = crate::data::folder::MAX_IMAGE_SIDE as usize;
        let ImageShape {
            channels,
            height,
            width,
        } = self.image;
        if !matches!(channels, 1 | 3)
            || !(1..=side).contains(&height)
            || !(1..=side).contains(&width)
        {
            return invalid(format!(
                "image {channels}x{height}x{width} (channels x height x width) needs 1 or 3 channels and sides from 1 to {side}"
            ));
        }
        if self.steps == 0 && self.epochs.is_none_or(|e| e == 0) {
            return invalid("train for at least one step (steps or epochs)".into());
        }
        if let Some(fid) = self.eval.until_fid
            && !(fid.is_finite() && fid > 0.0)
        {
            return invalid(format!("eval.until_fid must be a positive FID, got {fid}"));
        }
        if self.eval.patience == Some(0) {
            return invalid("eval.patience must be at least 1 evaluation".into());
        }
        for (name, adam) in [
            ("generator_adam", &self.generator_adam),
            ("discriminator_adam", &self.discriminator_adam),
        ] {
            if !(adam.learning_rate > 0.0 && adam.learning_rate.is_finite()) {
                return invalid(format!(
                    "{name}.learning_rate must be a positive finite number, got {}",
                    adam.learning_rate
                ));
            }
            if !(0.0..1.0).contains(&adam.beta1) || !(0.0..1.0).contains(&adam.beta2) {
                return invalid(format!("{name} betas must be in [0, 1)"));
            }
            if !(adam.epsilon > 0.0 && adam.epsilon.is_finite()) {
                return invalid(format!(
                    "{name}.epsilon must be a small positive number, got {}",
                    adam.epsilon
                ));
            }
        }
        if self.eval.samples > MAX_EVAL_SAMPLES {
            return invalid(format!(
                "eval.samples {} is above the supported {MAX_EVAL_SAMPLES}",
                self.eval.samples
            ));
        }
        if self.eval.classifier.is_some() && self.eval.samples < 10 {
            return invalid(format!(
                "eval.samples {} is too few for FID (at least 10)",
                self.eval.samples
            ));
        }
        if let Some(decay) = self.ema_decay
            && !(0.0..1.0).contains(&decay)
        {
            return invalid(format!("ema_decay {decay} is not in [0, 1)"));
        }
        self.model
            .validate(self.image)
            .map_err(ConfigError::Invalid)
    }
}
