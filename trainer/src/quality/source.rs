//! Where generated samples come from: an exported ONNX generator (run by the edge runtime's
//! tract engine, exactly what users deploy) or a run folder (its latest checkpoint, run by
//! burn), behind one interface so every metric treats them alike.

use std::path::{Path, PathBuf};

use burn::tensor::Device;

use super::QualityError;
use crate::data::ImageShape;
use crate::model::Generator as BurnGenerator;
use crate::noise::NoiseSource;

/// Images per generator call when sampling from a run folder.
const RUN_BATCH: usize = 256;

/// Generated images and the classes they were generated for.
#[derive(Clone, Debug, PartialEq)]
pub struct Samples {
    /// `[count, C, H, W]` in [-1, 1].
    pub pixels: Vec<f32>,
    /// Requested class of each image (conditional generators only).
    pub labels: Option<Vec<usize>>,
}

/// A generator to draw samples from.
pub enum SampleSource {
    /// An exported `.onnx` generator, run with tract.
    Onnx(Box<runtime::generator::Generator>),
    /// The latest checkpoint of a run folder, run with burn.
    Run {
        /// The run folder.
        path: PathBuf,
        /// G (its EMA copy when the run keeps one), in inference mode.
        generator: Box<BurnGenerator>,
        /// Noise length.
        z_dim: usize,
        /// Class names when G is conditional, empty otherwise.
        classes: Vec<String>,
        /// Image shape.
        image: ImageShape,
        /// Steps the checkpoint was trained for.
        steps: usize,
    },
}

impl std::fmt::Debug for SampleSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.describe())
    }
}

impl SampleSource {
    /// Opens `path`: a run folder (holds `config.json`) or an ONNX generator file.
    pub fn open(path: &Path) -> Result<Self, QualityError> {
        if path.is_dir() {
            let (gan, classes) =
                crate::export::load_run(path).map_err(|error| QualityError::Run {
                    path: path.to_path_buf(),
                    error: Box::new(error),
                })?;
            let conditional = gan.classes() > 0;
            Ok(Self::Run {
                path: path.to_path_buf(),
                generator: Box::new(gan.inference_generator()),
                z_dim: gan.config().z_dim,
                classes: if conditional { classes } else { Vec::new() },
                image: gan.config().image,
                steps: gan.step,
            })
        } else {
            let generator = runtime::generator::Generator::load(path).map_err(|error| {
                QualityError::Generator {
                    path: path.to_path_buf(),
                    error: Box::new(error),
                }
            })?;
            Ok(Self::Onnx(Box::new(generator)))
        }
    }

    /// The tract generator of an exported ONNX source.
    pub fn onnx(&self) -> Option<&runtime::generator::Generator> {
        match self {
            Self::Onnx(g) => Some(g),
            Self::Run { .. } => None,
        }
    }

    /// Shape of the generated images.
    pub fn image(&self) -> ImageShape {
        match self {
            Self::Onnx(g) => g.info().image,
            Self::Run { image, .. } => *image,
        }
    }

    /// Class names of a conditional generator; empty for an unconditional one.
    pub fn classes(&self) -> &[String] {
        match self {
            Self::Onnx(g) => &g.info().classes,
            Self::Run { classes, .. } => classes,
        }
    }

    /// True when the generator takes a class label.
    pub fn is_conditional(&self) -> bool {
        !self.classes().is_empty()
    }

    /// One line naming the generator.
    pub fn describe(&self) -> String {
        match self {
            Self::Onnx(g) => format!("{} (ONNX, tract)", g.path().display()),
            Self::Run { path, steps, .. } => {
                format!(
                    "{} (run folder, checkpoint at step {steps})",
                    path.display()
                )
            }
        }
    }

    /// [`SampleSource::generate`] with truncated noise and/or a classifier filter, exactly as
    /// `runtime generate` draws them (`runtime::dataset::draw_samples`). Only exported ONNX
    /// generators run there: a run folder with any setting is refused (export it first).
    pub fn generate_with(
        &self,
        count: usize,
        class: Option<usize>,
        seed: u64,
        sampling: &runtime::dataset::Sampling,
    ) -> Result<Samples, QualityError> {
        match self {
            Self::Onnx(g) => {
                let drawn = runtime::dataset::draw_samples(g, count, class, seed, sampling)
                    .map_err(|error| QualityError::Generator {
                        path: g.path().to_path_buf(),
                        error: Box::new(error),
                    })?;
                Ok(Samples {
                    pixels: drawn.pixels,
                    labels: drawn.labels,
                })
            }
            Self::Run { path, .. } if *sampling != runtime::dataset::Sampling::default() => {
                Err(QualityError::Input(format!(
                    "{}: truncation and the classifier filter run on exported generators; export the run (`trainer export`) and pass the .onnx file",
                    path.display()
                )))
            }
            Self::Run { .. } => self.generate(count, class, seed),
        }
    }

    /// Generates `count` images from `seed`. Conditional generators draw `class`, or every
    /// class in turn (image `i` gets class `i % K`) when `class` is `None`.
    pub fn generate(
        &self,
        count: usize,
        class: Option<usize>,
        seed: u64,
    ) -> Result<Samples, QualityError> {
        match self {
            Self::Onnx(g) => {
                let samples =
                    g.generate(count, class, seed)
                        .map_err(|error| QualityError::Generator {
                            path: g.path().to_path_buf(),
                            error: Box::new(error),
                        })?;
                Ok(Samples {
                    pixels: samples.pixels,
                    labels: samples.labels,
                })
            }
            Self::Run {
                path,
                generator,
                z_dim,
                classes,
                ..
            } => {
                if count == 0 {
                    return Err(QualityError::Input("asked for 0 samples".into()));
                }
                let k = classes.len();
                let labels: Option<Vec<usize>> = match (k, class) {
                    (0, None) => None,
                    (0, Some(_)) => {
                        return Err(QualityError::Input(format!(
                            "{} is unconditional: it cannot generate a chosen class",
                            path.display()
                        )));
                    }
                    (_, Some(c)) if c >= k => {
                        return Err(QualityError::Input(format!(
                            "class {c} is out of range: {} has {k} classes",
                            path.display()
                        )));
                    }
                    (_, Some(c)) => Some(vec![c; count]),
                    (_, None) => Some((0..count).map(|i| i % k).collect()),
                };
                let pixels = generate_burn(
                    generator,
                    *z_dim,
                    labels.as_deref(),
                    count,
                    seed,
                    &Device::flex(),
                );
                Ok(Samples { pixels, labels })
            }
        }
    }
}

/// Runs a burn generator (inference mode, on `device`) on `count` noise vectors drawn from
/// `seed`, with `labels` (one per image) for a conditional one, in batches; returns planar
/// pixels `[count, C, H, W]`.
pub fn generate_burn(
    generator: &BurnGenerator,
    z_dim: usize,
    labels: Option<&[usize]>,
    count: usize,
    seed: u64,
    device: &Device,
) -> Vec<f32> {
    let mut noise = NoiseSource::new(seed);
    let mut pixels = Vec::new();
    let mut first = 0;
    while first < count {
        let n = RUN_BATCH.min(count - first);
        let z = noise.noise(n, z_dim);
        let batch_labels = labels.map(|l| l[first..first + n].iter().map(|&c| c as i64).collect());
        pixels.extend(crate::training::generate(
            generator,
            z,
            z_dim,
            batch_labels,
            device,
        ));
        first += n;
    }
    pixels
}
