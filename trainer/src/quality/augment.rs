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
    /// Synthetic examples per real one (per class): when set, a row with n real examples per
    /// class adds `ceil(ratio * n)` synthetic ones per class instead of [`Self::synthetic`].
    #[serde(default)]
    pub ratio: Option<f64>,
    /// How the synthetic data is drawn, one augmented arm each (all paired with the same
    /// real-only arm); default one plain arm.
    #[serde(default = "plain_arms")]
    pub arms: Vec<Arm>,
}

/// One way of drawing the synthetic data: a name for the table and the runtime's sampling
/// settings (truncation, classifier filter).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Arm {
    /// Shown in the table, e.g. `filter 0.9`.
    pub name: String,
    /// `--truncation ψ`.
    pub truncation: Option<f32>,
    /// The classifier filter: the classifier ONNX file and the confidence it asks for.
    pub filter: Option<(std::path::PathBuf, f32)>,
}

impl Arm {
    /// Plain sampling: no truncation, no filter.
    pub fn plain() -> Arm {
        Arm {
            name: "plain".into(),
            truncation: None,
            filter: None,
        }
    }

    fn sampling(&self) -> runtime::dataset::Sampling {
        runtime::dataset::Sampling {
            truncation: self.truncation,
            filter: self
                .filter
                .as_ref()
                .map(|(path, p)| runtime::dataset::FilterRequest {
                    classifier: path.clone(),
                    min_confidence: *p,
                    max_draws_per_image: runtime::dataset::DEFAULT_MAX_DRAWS,
                }),
        }
    }
}

fn plain_arms() -> Vec<Arm> {
    vec![Arm::plain()]
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
            ratio: None,
            arms: plain_arms(),
        }
    }
}

impl AugmentSettings {
    /// Synthetic examples per class added to `n` real ones per class.
    pub fn synthetic_for(&self, n: usize) -> usize {
        match self.ratio {
            Some(r) => (r * n as f64).ceil().max(1.0) as usize,
            None => self.synthetic,
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
    /// Synthetic examples per class added in each augmented arm.
    pub synthetic: usize,
    /// Test accuracy trained on the real subset alone.
    pub real_only: Spread,
    /// One result per arm of the settings, in order.
    pub arms: Vec<ArmResult>,
}

/// An augmented arm's result at one subset size.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ArmResult {
    /// The arm's name.
    pub name: String,
    /// Test accuracy trained on the real subset plus the synthetic examples.
    pub augmented: Spread,
    /// Paired difference augmented − real-only.
    pub gain: Spread,
    /// The filter's acceptance rate over all classes and repeats (filtered arms only).
    pub acceptance: Option<f64>,
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

/// The first `k` images of each class's synthetic set, with their labels.
fn first_per_class(per_class: &[Vec<f32>], k: usize, image: usize) -> (Vec<f32>, Vec<usize>) {
    let mut pixels = Vec::with_capacity(per_class.len() * k * image);
    let mut labels = Vec::with_capacity(per_class.len() * k);
    for (c, set) in per_class.iter().enumerate() {
        let take = (k * image).min(set.len());
        pixels.extend_from_slice(&set[..take]);
        labels.extend(std::iter::repeat_n(c, take / image.max(1)));
    }
    (pixels, labels)
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

    if settings.arms.is_empty() {
        return Err(QualityError::Input(
            "the experiment needs at least one augmented arm".into(),
        ));
    }
    let arms = settings.arms.len();
    let rows = settings.per_class.len();
    // real[row][repeat], augmented[row][arm][repeat], drawn/accepted per arm.
    let mut real = vec![Vec::new(); rows];
    let mut augmented = vec![vec![Vec::new(); arms]; rows];
    let mut acceptance = vec![(0usize, 0usize); arms];
    let most = settings
        .per_class
        .iter()
        .map(|&n| settings.synthetic_for(n))
        .max()
        .unwrap_or(0);
    for r in 0..settings.repeats {
        let seed = settings.seed.wrapping_add(r as u64);
        let mut rng = Pcg64::seed_from_u64(seed);
        // One noise seed per class and repeat, shared by every arm (paired arms) and every
        // subset size (a smaller size takes the first images: a filtered class keeps its
        // candidates in order, so its first k are what a request for k keeps).
        let class_seeds: Vec<u64> = (0..classes).map(|_| rng.random()).collect();
        let mut synthetic = Vec::with_capacity(arms);
        for (a, arm) in settings.arms.iter().enumerate() {
            let sampling = arm.sampling();
            let mut per_class = Vec::with_capacity(classes);
            for (c, class_seed) in class_seeds.iter().enumerate() {
                let samples = if sampling.filter.is_some() {
                    let g = source.onnx().ok_or_else(|| {
                        QualityError::Input(format!(
                            "{}: the classifier filter needs an exported .onnx generator",
                            source.describe()
                        ))
                    })?;
                    let drawn =
                        runtime::dataset::draw_samples(g, most, Some(c), *class_seed, &sampling)
                            .map_err(|error| QualityError::Generator {
                                path: g.path().to_path_buf(),
                                error: Box::new(error),
                            })?;
                    if let Some(f) = &drawn.filter {
                        acceptance[a].0 += f.drawn.iter().sum::<usize>();
                        acceptance[a].1 += f.accepted.iter().sum::<usize>();
                    }
                    drawn.pixels
                } else {
                    source
                        .generate_with(most, Some(c), *class_seed, &sampling)?
                        .pixels
                };
                per_class.push(samples);
            }
            synthetic.push(per_class);
        }
        for (row, &n) in settings.per_class.iter().enumerate() {
            let real_set = per_class_subset(train_split, n, &mut rng)?;
            let init_seed: u64 = rng.random();
            let a = accuracy(&real_set, init_seed)?;
            real[row].push(a);
            let k = settings.synthetic_for(n);
            for (arm, per_class) in synthetic.iter().enumerate() {
                let (pixels, labels) = first_per_class(per_class, k, test.shape().numel());
                let b = accuracy(&joined(&real_set, &pixels, &labels)?, init_seed)?;
                info!(
                    repeat = r,
                    per_class = n,
                    arm = %settings.arms[arm].name,
                    real_only = a,
                    augmented = b,
                    "augmentation run"
                );
                augmented[row][arm].push(b);
            }
        }
    }
    let rows = settings
        .per_class
        .iter()
        .zip(real.into_iter().zip(augmented))
        .map(|(&per_class, (a, arms))| AugmentRow {
            per_class,
            synthetic: settings.synthetic_for(per_class),
            arms: arms
                .into_iter()
                .zip(&settings.arms)
                .zip(&acceptance)
                .map(|((b, arm), (drawn, kept))| ArmResult {
                    name: arm.name.clone(),
                    gain: Spread::new(a.iter().zip(&b).map(|(x, y)| y - x).collect()),
                    augmented: Spread::new(b),
                    acceptance: (*drawn > 0).then(|| *kept as f64 / *drawn as f64),
                })
                .collect(),
            real_only: Spread::new(a),
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
    /// The report as a plain-text table (what `trainer augment-eval` prints): per subset size,
    /// the real-only accuracy and each arm's accuracy, paired gain and filter acceptance.
    pub fn table(&self) -> String {
        use std::fmt::Write;
        let s = &self.settings;
        let mut out = String::new();
        let synthetic = match s.ratio {
            Some(r) => format!("{r} synthetic per real example"),
            None => format!("{} synthetic per class", s.synthetic),
        };
        let _ = writeln!(
            out,
            "test accuracy (%) on {} test images, mean ± std over {} repeat(s); {synthetic}; {} steps of batch {} per classifier",
            self.test_examples, s.repeats, s.steps, s.batch_size
        );
        let _ = writeln!(
            out,
            "{:>10}  {:<24}  {:>11}  {:>15}  {:>15}  {:>10}",
            "real/class", "arm", "synth/class", "accuracy", "gain (paired)", "acceptance"
        );
        let pm = |x: &Spread| format!("{:.2} ± {:.2}", 100.0 * x.mean, 100.0 * x.std);
        for row in &self.rows {
            let _ = writeln!(
                out,
                "{:>10}  {:<24}  {:>11}  {:>15}",
                row.per_class,
                "real only",
                0,
                pm(&row.real_only)
            );
            for arm in &row.arms {
                let _ = writeln!(
                    out,
                    "{:>10}  {:<24}  {:>11}  {:>15}  {:>15}  {:>10}",
                    row.per_class,
                    arm.name,
                    row.synthetic,
                    pm(&arm.augmented),
                    format!(
                        "{:+.2} ± {:.2}",
                        100.0 * arm.gain.mean,
                        100.0 * arm.gain.std
                    ),
                    arm.acceptance
                        .map_or(String::new(), |a| format!("{:.1} %", 100.0 * a))
                );
            }
        }
        out
    }
}
