//! What a run reports while it trains: one JSON line per logging interval in
//! `metrics.jsonl`, and the watch for divergence.

use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::training::StepStats;

/// One line of `metrics.jsonl`: means over the steps since the previous line.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MetricsLine {
    /// Steps completed.
    pub step: usize,
    /// D's loss.
    #[serde(deserialize_with = "nan_if_null")]
    pub d_loss: f32,
    /// G's loss.
    #[serde(deserialize_with = "nan_if_null")]
    pub g_loss: f32,
    /// Mean D(x) on real examples.
    #[serde(deserialize_with = "nan_if_null")]
    pub d_real: f32,
    /// Mean D(G(z)) on fake examples.
    #[serde(deserialize_with = "nan_if_null")]
    pub d_fake: f32,
    /// Share of real examples D called real.
    #[serde(deserialize_with = "nan_if_null")]
    pub acc_real: f32,
    /// Share of fake examples D called fake.
    #[serde(deserialize_with = "nan_if_null")]
    pub acc_fake: f32,
    /// Mean wall time of one step (D step + G step), milliseconds.
    #[serde(deserialize_with = "nan_if_null")]
    pub step_ms: f32,
    /// Seconds spent in training steps since the run began (evaluations, samples and
    /// checkpoints not counted): the time-to-quality clock.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub train_s: Option<f64>,
    /// Quality of the generator at this step, when the run evaluates it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quality: Option<QualityLine>,
    /// Something the run noticed at this step (divergence warning, interruption).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event: Option<String>,
}

/// serde_json writes a NaN or infinite float as `null` (JSON has no such numbers): read
/// it back as NaN, so the log of a run that diverged stays readable.
fn nan_if_null<'de, D: serde::Deserializer<'de>>(d: D) -> Result<f32, D::Error> {
    Ok(Option::<f32>::deserialize(d)?.unwrap_or(f32::NAN))
}

/// The quality figures logged with the losses (see `trainer::quality`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct QualityLine {
    /// Generated images evaluated.
    pub samples: usize,
    /// FID on the evaluation classifier's features against the real test split.
    pub fid: f64,
    /// Share of generated images on the real manifold.
    pub precision: f64,
    /// Share of real images on the generated manifold.
    pub recall: f64,
    /// Entropy of the predicted-class histogram, in bits.
    pub class_entropy: f64,
    /// Largest predicted-class share.
    pub largest_class_share: f64,
    /// Classifier accuracy on the requested classes (conditional models).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conditional_accuracy: Option<f64>,
}

/// Accumulates step statistics between two log lines.
#[derive(Debug, Default)]
pub struct Accumulator {
    sum: StepStats,
    seconds: f64,
    steps: usize,
}

impl Accumulator {
    /// Adds one step that took `seconds`.
    pub fn add(&mut self, stats: &StepStats, seconds: f64) {
        self.sum.d_loss += stats.d_loss;
        self.sum.g_loss += stats.g_loss;
        self.sum.d_real += stats.d_real;
        self.sum.d_fake += stats.d_fake;
        self.sum.acc_real += stats.acc_real;
        self.sum.acc_fake += stats.acc_fake;
        self.seconds += seconds;
        self.steps += 1;
    }

    /// The means since the last call, as the line for `step`; `None` if no step was added.
    pub fn take(&mut self, step: usize) -> Option<MetricsLine> {
        if self.steps == 0 {
            return None;
        }
        let n = self.steps as f32;
        let line = MetricsLine {
            step,
            d_loss: self.sum.d_loss / n,
            g_loss: self.sum.g_loss / n,
            d_real: self.sum.d_real / n,
            d_fake: self.sum.d_fake / n,
            acc_real: self.sum.acc_real / n,
            acc_fake: self.sum.acc_fake / n,
            step_ms: (self.seconds * 1000.0 / self.steps as f64) as f32,
            train_s: None,
            quality: None,
            event: None,
        };
        *self = Self::default();
        Some(line)
    }
}

/// Appends metrics lines to a run's `metrics.jsonl`.
pub struct MetricsLog {
    path: PathBuf,
    file: std::fs::File,
}

impl MetricsLog {
    /// Opens `path` for appending, first dropping lines past `resume_step` (written after
    /// the checkpoint a resumed run starts from).
    pub fn open(path: &Path, resume_step: Option<usize>) -> std::io::Result<Self> {
        if let Some(step) = resume_step
            && path.exists()
        {
            let kept: Vec<MetricsLine> =
                read(path)?.into_iter().filter(|l| l.step <= step).collect();
            let mut text = String::new();
            for line in &kept {
                text.push_str(&serde_json::to_string(line).map_err(std::io::Error::other)?);
                text.push('\n');
            }
            crate::fsutil::write_atomic(path, text.as_bytes())?;
        }
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)?;
        Ok(Self {
            path: path.to_path_buf(),
            file,
        })
    }

    /// Appends one line and flushes it.
    pub fn write(&mut self, line: &MetricsLine) -> std::io::Result<()> {
        let json = serde_json::to_string(line).map_err(std::io::Error::other)?;
        writeln!(self.file, "{json}")?;
        self.file.flush()
    }

    /// The log file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// Reads every line of a `metrics.jsonl`.
pub fn read(path: &Path) -> std::io::Result<Vec<MetricsLine>> {
    let text = crate::fsutil::read_text(path)?;
    // Lines are appended whole and flushed; a process killed mid-write leaves a last line
    // without its newline, which is dropped rather than failing every later read.
    let complete = match text.rfind('\n') {
        Some(end) if !text.ends_with('\n') => &text[..=end],
        Some(_) => text.as_str(),
        None => "",
    };
    complete
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| {
            serde_json::from_str(l).map_err(|e| {
                std::io::Error::new(
                    std::io::ErrorKind::InvalidData,
                    format!("{} line {}: {e}", path.display(), i + 1),
                )
            })
        })
        .collect()
}

/// Watches for a D that has won: every real and fake example classified right, step
/// after step, which leaves G without a useful gradient.
#[derive(Clone, Copy, Debug, Default)]
pub struct DivergenceWatch {
    /// Consecutive steps with perfect D accuracy.
    pub perfect_d_streak: usize,
    patience: usize,
}

impl DivergenceWatch {
    /// A watch that fires after `patience` perfect steps in a row (0 disables it).
    pub fn new(patience: usize, perfect_d_streak: usize) -> Self {
        Self {
            perfect_d_streak,
            patience,
        }
    }

    /// Records a step; returns a warning the first time the streak reaches the patience.
    pub fn observe(&mut self, stats: &StepStats) -> Option<String> {
        if stats.acc_real >= 1.0 && stats.acc_fake >= 1.0 {
            self.perfect_d_streak += 1;
        } else {
            self.perfect_d_streak = 0;
        }
        (self.patience > 0 && self.perfect_d_streak == self.patience).then(|| {
            format!(
                "D has classified every real and fake example right for {} steps: G is likely stuck (try a lower D learning rate, the hinge loss, or a wider G)",
                self.patience
            )
        })
    }
}
