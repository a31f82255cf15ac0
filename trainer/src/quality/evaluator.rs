//! The evaluator: the real data's features computed once, then every quality figure of a
//! batch of generated images in one call — what `trainer eval` prints and what the training
//! loop logs every N steps.

use std::path::Path;

use burn::tensor::Device;
use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_pcg::Pcg64;
use serde::{Deserialize, Serialize};

use super::QualityError;
use super::classifier::{EvalClassifier, Features};
use super::coverage::Coverage;
use super::fid::{Frechet, Gaussian, frechet};
use super::precision_recall::{DEFAULT_K, PrecisionRecall, precision_recall};
use super::source::generate_burn;
use crate::data::{self, Dataset, ImageShape, Split};
use crate::training::Gan;

/// Settings of an [`Evaluator`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EvalOptions {
    /// Neighbourhood size of the precision/recall manifolds.
    pub k: usize,
    /// Seed of the order in which real examples are subsampled.
    pub seed: u64,
    /// Most training images embedded for the real-vs-real floor (a seeded random sample);
    /// the floor of `n` generated images uses `min(n, floor_samples)` of them.
    pub floor_samples: usize,
}

impl Default for EvalOptions {
    fn default() -> Self {
        Self {
            k: DEFAULT_K,
            seed: 0,
            floor_samples: 10_000,
        }
    }
}

/// What real data scores against real data: a training-split sample of the same size as the
/// generated set, against the test split. A perfect generator scores about this.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct RealFloor {
    /// Training examples used.
    pub samples: usize,
    /// FID of those examples against the test split.
    pub fid: f64,
    /// Their precision against the test split.
    pub precision: f64,
    /// Their recall against the test split.
    pub recall: f64,
}

/// How often the classifier recognises the class a conditional generator was asked for.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ConditionalAccuracy {
    /// Over all samples.
    pub accuracy: f64,
    /// Per requested class.
    pub per_class: Vec<ClassAccuracy>,
}

/// Accuracy on the samples generated for one class.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ClassAccuracy {
    /// Class name.
    pub class: String,
    /// Samples generated for it.
    pub samples: usize,
    /// Share the classifier assigned to it.
    pub accuracy: f64,
}

/// Every quality figure of one set of generated images.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct QualityReport {
    /// Generated images evaluated.
    pub samples: usize,
    /// Real (test-split) images the FID compares against.
    pub real_samples: usize,
    /// Fréchet distance on the classifier's features (lower is better).
    pub fid: f64,
    /// The FID's mean and covariance terms.
    pub fid_terms: Frechet,
    /// Share of generated images on the real manifold (higher is better).
    pub precision: f64,
    /// Share of real images on the generated manifold (higher is better).
    pub recall: f64,
    /// Neighbourhood size of precision and recall; real images they compared against.
    pub precision_recall: PrecisionRecall,
    /// Predicted-class histogram of the generated images.
    pub coverage: Coverage,
    /// Real-vs-real figures at the same sample count, when the evaluator has training data.
    pub floor: Option<RealFloor>,
    /// Per-class accuracy when the images came with requested labels.
    pub conditional: Option<ConditionalAccuracy>,
}

/// Real features computed once; evaluates any number of generated sets against them.
#[derive(Debug)]
pub struct Evaluator {
    classifier: EvalClassifier,
    /// Test-split features, in a seeded random order (prefixes are unbiased subsamples).
    real: Features,
    real_gaussian: Gaussian,
    /// Training-split features for the floor, in a seeded random order.
    train: Option<Features>,
    options: EvalOptions,
}

/// Pixels of at most `count` images of `data`, in a random order drawn from `seed`, so
/// every prefix is an unbiased subsample.
fn shuffled_pixels(data: &Dataset, count: usize, seed: u64) -> Vec<f32> {
    let mut order: Vec<usize> = (0..data.len()).collect();
    order.shuffle(&mut Pcg64::seed_from_u64(seed));
    order.truncate(count);
    let mut pixels = Vec::with_capacity(order.len() * data.shape().numel());
    for &i in &order {
        pixels.extend_from_slice(data.image(i));
    }
    pixels
}

impl Evaluator {
    /// Embeds `real_test` (the real reference: the test split) with `classifier`.
    pub fn new(
        classifier: EvalClassifier,
        real_test: &Dataset,
        options: EvalOptions,
    ) -> Result<Self, QualityError> {
        classifier.check_shape(real_test.shape(), "the test split")?;
        let real = classifier.embed(&shuffled_pixels(real_test, real_test.len(), options.seed))?;
        let real_gaussian = Gaussian::fit(&real.values, real.dim)?;
        Ok(Self {
            classifier,
            real,
            real_gaussian,
            train: None,
            options,
        })
    }

    /// Adds the training split (a random sample of `floor_samples` of it), so reports carry
    /// the real-vs-real floor.
    pub fn with_floor(mut self, real_train: &Dataset) -> Result<Self, QualityError> {
        self.classifier
            .check_shape(real_train.shape(), "the training split")?;
        let seed = self.options.seed.wrapping_add(1);
        let pixels = shuffled_pixels(real_train, self.options.floor_samples, seed);
        self.train = Some(self.classifier.embed(&pixels)?);
        Ok(self)
    }

    /// Loads the classifier at `classifier` (with its card) and the data set at `dataset`
    /// (test split as the reference, training split for the floor).
    pub fn open(
        classifier: &Path,
        dataset: &Path,
        options: EvalOptions,
    ) -> Result<Self, QualityError> {
        let classifier = EvalClassifier::load(classifier)?;
        let shape = classifier.card.image;
        let test = data::open(dataset, Split::Test, shape)?;
        let train = data::open(dataset, Split::Train, shape)?;
        Self::new(classifier, &test, options)?.with_floor(&train)
    }

    /// The classifier.
    pub fn classifier(&self) -> &EvalClassifier {
        &self.classifier
    }

    /// The shape of the images it evaluates.
    pub fn image(&self) -> ImageShape {
        self.classifier.card.image
    }

    /// Real (test-split) images in the reference.
    pub fn real_count(&self) -> usize {
        self.real.len()
    }

    /// Quality of `images` (planar `[n, C, H, W]` in [-1, 1]); `labels` are the classes a
    /// conditional generator was asked for, one per image.
    ///
    /// FID compares against every real test image. Precision and recall compare equal
    /// numbers of generated and real images (the smaller count of the two; equal set sizes
    /// keep the k-NN radii comparable). The floor uses `n` training images (at most all of
    /// them). Needs more than `k` images.
    pub fn evaluate(
        &self,
        images: &[f32],
        labels: Option<&[i64]>,
    ) -> Result<QualityReport, QualityError> {
        let generated = self.classifier.embed(images)?;
        let labels = match labels {
            None => None,
            Some(labels) => {
                if labels.len() != generated.len() {
                    return Err(QualityError::Input(format!(
                        "{} labels for {} images",
                        labels.len(),
                        generated.len()
                    )));
                }
                let k = self.classifier.card.class_names.len();
                let checked: Option<Vec<usize>> = labels
                    .iter()
                    .map(|&l| usize::try_from(l).ok().filter(|&l| l < k))
                    .collect();
                Some(checked.ok_or_else(|| {
                    QualityError::Input(format!("a label is not a class index in 0..{k}"))
                })?)
            }
        };
        self.evaluate_features(&generated, labels.as_deref())
    }

    /// Generates `count` images with `generator` (inference mode, on `device`) from noise
    /// drawn from `seed`, and evaluates them. With the same seed at every call the noise is
    /// the same, so successive reports during training differ only by the weights.
    /// `classes` > 0 marks a conditional generator: image `i` is asked for class `i % classes`
    /// and the report carries the conditional accuracy.
    pub fn evaluate_generator(
        &self,
        generator: &crate::model::Generator,
        z_dim: usize,
        classes: usize,
        count: usize,
        seed: u64,
        device: &Device,
    ) -> Result<QualityReport, QualityError> {
        let known = self.classifier.card.class_names.len();
        if classes > 0 && classes != known {
            return Err(QualityError::Input(format!(
                "the generator has {classes} classes but the classifier knows {known}"
            )));
        }
        let labels: Option<Vec<usize>> =
            (classes > 0).then(|| (0..count).map(|i| i % classes).collect());
        let pixels = generate_burn(generator, z_dim, labels.as_deref(), count, seed, device);
        let generated = self.classifier.embed(&pixels)?;
        self.evaluate_features(&generated, labels.as_deref())
    }

    /// [`Evaluator::evaluate_generator`] on the run's generator: its EMA copy when it keeps
    /// one, in inference mode, on the run's device.
    pub fn evaluate_gan(
        &self,
        gan: &Gan,
        count: usize,
        seed: u64,
    ) -> Result<QualityReport, QualityError> {
        self.evaluate_generator(
            &gan.inference_generator(),
            gan.config().z_dim,
            gan.classes(),
            count,
            seed,
            &gan.device().clone().without_autodiff(),
        )
    }

    /// [`Evaluator::evaluate`] on images the classifier has already embedded.
    pub fn evaluate_features(
        &self,
        generated: &Features,
        labels: Option<&[usize]>,
    ) -> Result<QualityReport, QualityError> {
        let n = generated.len();
        let k = self.options.k;
        if n <= k {
            return Err(QualityError::Input(format!(
                "evaluating needs more than k = {k} generated images, got {n}"
            )));
        }
        let dim = self.real.dim;
        let fid_terms = frechet(&Gaussian::fit(&generated.values, dim)?, &self.real_gaussian)?;
        // Equal set sizes: a k-NN radius shrinks as its set grows, so the larger set is cut
        // to the smaller one's size (prefixes of seeded random orders).
        let m = n.min(self.real.len());
        let pr = precision_recall(self.real.head(m), generated.head(m), dim, k)?;
        let classes = &self.classifier.card.class_names;
        let coverage = Coverage::new(&generated.predictions, classes);
        let floor = match &self.train {
            Some(train) => {
                let t = n.min(train.len());
                let fid =
                    frechet(&Gaussian::fit(train.head(t), dim)?, &self.real_gaussian)?.distance;
                let pm = m.min(train.len());
                let pr = precision_recall(self.real.head(pm), train.head(pm), dim, k)?;
                Some(RealFloor {
                    samples: t,
                    fid,
                    precision: pr.precision,
                    recall: pr.recall,
                })
            }
            None => None,
        };
        let conditional = labels.map(|labels| {
            let per_class = classes
                .iter()
                .enumerate()
                .filter_map(|(c, name)| {
                    let asked: Vec<usize> = (0..n).filter(|&i| labels[i] == c).collect();
                    (!asked.is_empty()).then(|| ClassAccuracy {
                        class: name.clone(),
                        samples: asked.len(),
                        accuracy: asked
                            .iter()
                            .filter(|&&i| generated.predictions[i] == c)
                            .count() as f64
                            / asked.len() as f64,
                    })
                })
                .collect();
            ConditionalAccuracy {
                accuracy: generated.accuracy(labels),
                per_class,
            }
        });
        Ok(QualityReport {
            samples: n,
            real_samples: self.real.len(),
            fid: fid_terms.distance,
            fid_terms,
            precision: pr.precision,
            recall: pr.recall,
            precision_recall: pr,
            coverage,
            floor,
            conditional,
        })
    }
}

impl QualityReport {
    /// One line for logs: FID (and floor), precision, recall, coverage, conditional accuracy.
    pub fn summary(&self) -> String {
        let mut line = format!("FID {:.2}", self.fid);
        if let Some(floor) = &self.floor {
            line.push_str(&format!(" (floor {:.2})", floor.fid));
        }
        line.push_str(&format!(
            ", precision {:.3}, recall {:.3}, class entropy {:.2} bits, largest class {:.1}%",
            self.precision,
            self.recall,
            self.coverage.entropy_bits,
            100.0 * self.coverage.largest_share
        ));
        if let Some(c) = &self.conditional {
            line.push_str(&format!(
                ", conditional accuracy {:.1}%",
                100.0 * c.accuracy
            ));
        }
        line
    }

    /// The report as a plain-text table (what `trainer eval` prints).
    pub fn table(&self) -> String {
        use std::fmt::Write;
        let mut out = String::new();
        let floor = self.floor.as_ref();
        let k = self.precision_recall.k;
        let _ = writeln!(
            out,
            "{:<22} {:>10} {:>11}   better",
            "metric", "generated", "real floor"
        );
        let row = |out: &mut String, name: &str, value: f64, floor: Option<f64>, better: &str| {
            let floor = floor.map_or("-".to_string(), |f| format!("{f:.3}"));
            let _ = writeln!(out, "{name:<22} {value:>10.3} {floor:>11}   {better}");
        };
        row(&mut out, "FID", self.fid, floor.map(|f| f.fid), "lower");
        row(
            &mut out,
            &format!("precision (k={k})"),
            self.precision,
            floor.map(|f| f.precision),
            "higher",
        );
        row(
            &mut out,
            &format!("recall (k={k})"),
            self.recall,
            floor.map(|f| f.recall),
            "higher",
        );
        let c = &self.coverage;
        let _ = writeln!(
            out,
            "{:<22} {:>10.3} {:>11}   higher (max {:.3})",
            "class entropy (bits)",
            c.entropy_bits,
            "-",
            (c.classes.len().max(1) as f64).log2()
        );
        let _ = writeln!(
            out,
            "{:<22} {:>9.1}% {:>11}   lower (uniform {:.1}%), class \"{}\"",
            "largest class share",
            100.0 * c.largest_share,
            "-",
            100.0 / c.classes.len().max(1) as f64,
            c.largest_class
        );
        let _ = writeln!(
            out,
            "\nFID terms: mean {:.3} + covariance {:.3}; {} generated vs {} real test images{}",
            self.fid_terms.mean_term,
            self.fid_terms.cov_term,
            self.samples,
            self.real_samples,
            floor.map_or(String::new(), |f| format!(
                " (floor: {} training images)",
                f.samples
            ))
        );
        let _ = writeln!(
            out,
            "\nclass coverage (classifier's prediction for each generated image):"
        );
        let accuracy: Option<&Vec<ClassAccuracy>> = self.conditional.as_ref().map(|c| &c.per_class);
        let width = c.classes.iter().map(|n| n.len()).max().unwrap_or(5).max(5);
        let _ = writeln!(
            out,
            "  {:<width$} {:>7}{}",
            "class",
            "share",
            if accuracy.is_some() {
                "  accuracy when asked"
            } else {
                ""
            }
        );
        for (i, name) in c.classes.iter().enumerate() {
            let share = c.share(i);
            let bar = "#".repeat((share * 100.0).round() as usize);
            let asked = accuracy
                .and_then(|a| a.iter().find(|a| &a.class == name))
                .map_or(String::new(), |a| {
                    format!("  {:>6.1}% of {:<5}", 100.0 * a.accuracy, a.samples)
                });
            let _ = writeln!(
                out,
                "  {name:<width$} {:>6.1}%{asked}  {bar}",
                100.0 * share
            );
        }
        if let Some(conditional) = &self.conditional {
            let _ = writeln!(
                out,
                "\nconditional accuracy: the classifier agrees with the requested class for {:.1}% of the samples",
                100.0 * conditional.accuracy
            );
        }
        if let Some(warning) = &c.warning {
            let _ = writeln!(out, "\nwarning: {warning}");
        }
        out
    }
}
