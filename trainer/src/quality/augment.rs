//! The augmentation gain: does a conditional generator's synthetic data make a classifier
//! trained on little real data better? What users train a generator for, measured directly.
//!
//! For each subset size n and each repeat r: draw n real training examples per class (seeded
//! by r), train the classifier on them alone and on them plus K synthetic examples per class
//! (same initial weights, same step budget), and measure both on the whole test split. The
//! gain is the paired difference, so its spread over repeats shows whether it is real.

use indicatif::ProgressBar;
use rand::seq::SliceRandom;
use rand::{RngExt, SeedableRng};
use rand_pcg::Pcg64;
use serde::{Deserialize, Serialize};
use tracing::info;

use super::QualityError;
use super::classifier::{ClassifierConfig, TrainSettings, embed, pixels_of, train};
use super::source::SampleSource;
use crate::data::Dataset;
use burn::tensor::Device;

/// Settings of the experiment.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AugmentSettings {
    /// Real training examples per class, one row of the table each.
    pub per_class: Vec<usize>,
    /// Synthetic examples per class added in the augmented arm.
    pub synthetic: usize,
    /// Repeats per subset size (fresh subset, weights and synthetic data each).
    pub repeats: usize,
    /// Base seed; repeat r uses seed + r.
    pub seed: u64,
    /// Classifier layer sizes.
    pub classifier: ClassifierConfig,
    /// Optimizer steps per trained classifier (the same in both arms).
    pub steps: usize,
    /// Mini-batch size.
    pub batch_size: usize,
    /// Adam's learning rate.
    pub learning_rate: f64,
}

impl Default for AugmentSettings {
    fn default() -> Self {
        Self {
            per_class: vec![10, 50, 100],
            synthetic: 100,
            repeats: 3,
            seed: 1,
            classifier: ClassifierConfig::default(),
            steps: 300,
            batch_size: 64,
            learning_rate: 1e-3,
        }
    }
}

/// Test accuracies of one arm over the repeats.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Spread {
    /// Mean over repeats.
    pub mean: f64,
    /// Sample standard deviation over repeats (0 for one repeat).
    pub std: f64,
    /// One value per repeat.
    pub runs: Vec<f64>,
}

impl Spread {
    /// Mean and sample standard deviation of `runs`.
    pub fn new(runs: Vec<f64>) -> Self {
        let n = runs.len().max(1) as f64;
        let mean = runs.iter().sum::<f64>() / n;
        let std = if runs.len() > 1 {
            (runs.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1.0)).sqrt()
        } else {
            0.0
        };
        Self { mean, std, runs }
    }
}

/// One row of the table: a subset size.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AugmentRow {
    /// Real examples per class.
    pub per_class: usize,
    /// Test accuracy trained on the real subset alone.
    pub real_only: Spread,
    /// Test accuracy trained on the real subset plus the synthetic examples.
    pub augmented: Spread,
    /// Paired difference augmented − real-only.
    pub gain: Spread,
}

/// The whole experiment.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AugmentReport {
    /// The generator, described.
    pub generator: String,
    /// How the experiment ran.
    pub settings: AugmentSettings,
    /// Test examples every accuracy is measured on.
    pub test_examples: usize,
    /// One row per subset size.
    pub rows: Vec<AugmentRow>,
}

/// `n` examples of each class of `data`, drawn with `rng`, as a new data set.
fn per_class_subset(data: &Dataset, n: usize, rng: &mut Pcg64) -> Result<Dataset, QualityError> {
    let classes = data.class_names().len();
    let mut pixels = Vec::with_capacity(classes * n * data.shape().numel());
    let mut labels = Vec::with_capacity(classes * n);
    for c in 0..classes {
        let mut members: Vec<usize> = (0..data.len()).filter(|&i| data.labels()[i] == c).collect();
        if members.len() < n {
            return Err(QualityError::Input(format!(
                "class \"{}\" has {} training examples, fewer than the {n} per class asked for",
                data.class_names()[c],
                members.len()
            )));
        }
        members.shuffle(rng);
        for &i in &members[..n] {
            pixels.extend_from_slice(data.image(i));
            labels.push(c);
        }
    }
    Ok(Dataset::new(
        pixels,
        labels,
        data.shape(),
        data.class_names().to_vec(),
    )?)
}

/// `base` plus `extra` images (planar) with `extra_labels`.
fn joined(base: &Dataset, extra: &[f32], extra_labels: &[usize]) -> Result<Dataset, QualityError> {
    let mut pixels = pixels_of(base);
    pixels.extend_from_slice(extra);
    let mut labels = base.labels().to_vec();
    labels.extend_from_slice(extra_labels);
    Ok(Dataset::new(
        pixels,
        labels,
        base.shape(),
        base.class_names().to_vec(),
    )?)
}

/// Runs the experiment: `train` is the real training split, `test` the test split,
/// `source` a conditional generator of the same classes and image shape. `progress`
/// advances by one per training step.
pub fn run(
    train_split: &Dataset,
    test: &Dataset,
    source: &SampleSource,
    settings: &AugmentSettings,
    progress: &ProgressBar,
) -> Result<AugmentReport, QualityError> {
    let classes = train_split.class_names().len();
    if !source.is_conditional() {
        return Err(QualityError::Input(format!(
            "{} is unconditional: the augmentation experiment needs a conditional generator (train with --conditional)",
            source.describe()
        )));
    }
    if source.classes().len() != classes {
        return Err(QualityError::Input(format!(
            "{} generates {} classes but the data set has {classes}",
            source.describe(),
            source.classes().len()
        )));
    }
    if source.image() != train_split.shape() || test.shape() != train_split.shape() {
        return Err(QualityError::Input(format!(
            "image shapes differ: generator {:?}, training split {:?}, test split {:?}",
            source.image(),
            train_split.shape(),
            test.shape()
        )));
    }
    if settings.per_class.is_empty() || settings.repeats == 0 || settings.synthetic == 0 {
        return Err(QualityError::Input(
            "the experiment needs at least one subset size, one repeat and one synthetic example per class".into(),
        ));
    }
    let device = Device::flex();
    let test_pixels = pixels_of(test);
    let accuracy = |data: &Dataset, seed: u64| -> Result<f64, QualityError> {
        let training = TrainSettings {
            steps: settings.steps,
            batch_size: settings.batch_size,
            learning_rate: settings.learning_rate,
            seed,
        };
        let model = train(&settings.classifier, data, &training, &device, progress)?;
        Ok(embed(&model, &test_pixels, test.shape(), &device)?.accuracy(test.labels()))
    };

    let mut results = vec![(Vec::new(), Vec::new()); settings.per_class.len()];
    for r in 0..settings.repeats {
        let seed = settings.seed.wrapping_add(r as u64);
        let mut rng = Pcg64::seed_from_u64(seed);
        // One synthetic set per repeat, shared by every subset size.
        let mut synthetic = Vec::new();
        let mut synthetic_labels = Vec::new();
        for c in 0..classes {
            let samples = source.generate(settings.synthetic, Some(c), rng.random())?;
            synthetic.extend(samples.pixels);
            synthetic_labels.extend(std::iter::repeat_n(c, settings.synthetic));
        }
        for (row, &n) in settings.per_class.iter().enumerate() {
            let real = per_class_subset(train_split, n, &mut rng)?;
            let augmented = joined(&real, &synthetic, &synthetic_labels)?;
            let init_seed: u64 = rng.random();
            let a = accuracy(&real, init_seed)?;
            let b = accuracy(&augmented, init_seed)?;
            info!(
                repeat = r,
                per_class = n,
                real_only = a,
                augmented = b,
                "augmentation run"
            );
            results[row].0.push(a);
            results[row].1.push(b);
        }
    }
    let rows = settings
        .per_class
        .iter()
        .zip(results)
        .map(|(&per_class, (a, b))| {
            let gain = a.iter().zip(&b).map(|(x, y)| y - x).collect();
            AugmentRow {
                per_class,
                real_only: Spread::new(a),
                augmented: Spread::new(b),
                gain: Spread::new(gain),
            }
        })
        .collect();
    Ok(AugmentReport {
        generator: source.describe(),
        settings: settings.clone(),
        test_examples: test.len(),
        rows,
    })
}

impl AugmentReport {
    /// The report as a plain-text table (what `trainer augment-eval` prints).
    pub fn table(&self) -> String {
        use std::fmt::Write;
        let s = &self.settings;
        let mut out = String::new();
        let _ = writeln!(
            out,
            "test accuracy (%) on {} test images, mean ± std over {} repeat(s); {} synthetic per class; {} steps of batch {} per classifier",
            self.test_examples, s.repeats, s.synthetic, s.steps, s.batch_size
        );
        let _ = writeln!(
            out,
            "{:>10}  {:>15}  {:>17}  {:>15}",
            "real/class",
            "real only",
            format!("+{} synth/class", s.synthetic),
            "gain (paired)"
        );
        let pm = |x: &Spread| format!("{:.2} ± {:.2}", 100.0 * x.mean, 100.0 * x.std);
        for row in &self.rows {
            let _ = writeln!(
                out,
                "{:>10}  {:>15}  {:>17}  {:>15}",
                row.per_class,
                pm(&row.real_only),
                pm(&row.augmented),
                format!(
                    "{:+.2} ± {:.2}",
                    100.0 * row.gain.mean,
                    100.0 * row.gain.std
                )
            );
        }
        out
    }
}
