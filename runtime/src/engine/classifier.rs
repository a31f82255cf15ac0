//! Running the evaluation classifier with tract, so the runtime can judge generated images on
//! the device: `runtime generate --filter` keeps only the samples the classifier assigns to
//! the class they were asked for.
//!
//! The file is what `trainer classifier` (or `trainer classifier-onnx`) writes beside the
//! classifier's `.bpk`: images `[N, C, H, W]` in `[-1, 1]` → class probabilities `[N,
//! classes]` (see [`crate::onnx::classifier`]). Like the generator ([`super::tract`]), it runs
//! plans compiled for a fixed batch size, which tract optimises better than a symbolic one:
//! the batch size's plan is compiled at load, other sizes (the tail of a request) on first use
//! and cached.
//!
//! Unlike a generator's, the classifier's runs do not get cheaper per image with larger
//! batches in tract 0.23: on a shared 2-core x86 machine the MNIST classifier took 264-343 µs
//! per image at batch 1, 414-955 µs at batch 16 and 626-1298 µs at batch 64 (best of 6-12
//! rounds of 256-512 images; the convolutions' working set leaves the cache as the batch
//! grows). So [`DEFAULT_BATCH`] is 1 and [`Classifier::with_batch_size`] is there to measure
//! other machines.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use tract_onnx::prelude::*;

use crate::error::{Error, Result};
use crate::onnx::BATCH_DIM;
use crate::onnx::classifier::{ClassifierInfo, check_classifier};
use crate::onnx::spec::ImageShape;

/// Images per tract run unless [`Classifier::with_batch_size`] says otherwise: requests are cut
/// into runs of this many images (see the module docs for why it is 1).
pub const DEFAULT_BATCH: usize = 1;

/// Most plans kept besides the default batch's.
const EXTRA_PLANS: usize = 4;

type Plan = Arc<Mutex<TypedSimpleState>>;

/// The most likely class of one image and its probability.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Prediction {
    /// Index of the most probable class (the first one on a tie).
    pub class: usize,
    /// Its probability, in `[0, 1]`.
    pub confidence: f32,
}

/// The most likely class of one row of probabilities (`None` for an empty row, or when the
/// row holds a NaN).
pub fn top_class(row: &[f32]) -> Option<Prediction> {
    if row.iter().any(|p| p.is_nan()) {
        return None;
    }
    row.iter()
        .enumerate()
        .fold(None, |best: Option<Prediction>, (class, &p)| match best {
            Some(b) if b.confidence >= p => Some(b),
            _ => Some(Prediction {
                class,
                confidence: p,
            }),
        })
}

/// A loaded, checked classifier and its compiled tract plans. `Send + Sync`: one classifier can
/// serve several threads (their runs take turns on each plan).
pub struct Classifier {
    path: PathBuf,
    info: ClassifierInfo,
    /// Decluttered, batch still symbolic (`N`); each plan is specialised from it.
    model: TypedModel,
    batch: usize,
    plans: Mutex<BTreeMap<usize, Plan>>,
}

impl std::fmt::Debug for Classifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Classifier")
            .field("path", &self.path)
            .field("info", &self.info)
            .field("batch", &self.batch)
            .finish_non_exhaustive()
    }
}

impl Classifier {
    /// Loads the ONNX classifier at `path` (a regular file), checks its metadata
    /// (`gantry.kind` = `classifier`) and signature (`image` `[N, C, H, W]` → `probabilities`
    /// `[N, classes]`), and compiles the plan for [`DEFAULT_BATCH`]. Every error names the
    /// file.
    pub fn load(path: impl AsRef<Path>) -> Result<Classifier> {
        let path = path.as_ref();
        let bytes = crate::onnx::decode::read_model_bytes(path)?;
        let (proto, info) = check_classifier(path, &bytes)?;
        let model = tract_onnx::onnx()
            .model_for_proto_model(&proto)
            .map_err(|e| Error::tract(path, "import the ONNX graph", e))?
            .into_typed()
            .and_then(|m| m.into_decluttered())
            .map_err(|e| Error::tract(path, "analyse the graph", e))?;
        let classifier = Classifier {
            path: path.to_path_buf(),
            info,
            model,
            batch: DEFAULT_BATCH,
            plans: Mutex::new(BTreeMap::new()),
        };
        classifier.plan(classifier.batch)?;
        tracing::debug!(path = %path.display(), classes = classifier.info.classes.len(), "loaded classifier");
        Ok(classifier)
    }

    /// Sets the most images one tract run takes (at least 1; default [`DEFAULT_BATCH`]) and
    /// compiles its plan.
    pub fn with_batch_size(mut self, batch: usize) -> Result<Classifier> {
        if batch == 0 {
            return Err(Error::Input {
                reason: "the classifier's batch size must be at least 1".into(),
            });
        }
        self.batch = batch;
        self.plan(batch)?;
        Ok(self)
    }

    /// The most images one tract run takes.
    pub fn batch_size(&self) -> usize {
        self.batch
    }

    /// The model file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The file's metadata (classes, image shape, and free entries such as
    /// `gantry.test_accuracy` and `gantry.dataset`).
    pub fn info(&self) -> &ClassifierInfo {
        &self.info
    }

    /// Class names, in label order: column `k` of [`Classifier::probabilities`] is class `k`.
    pub fn classes(&self) -> &[String] {
        &self.info.classes
    }

    /// Shape of the images it reads.
    pub fn image(&self) -> ImageShape {
        self.info.image
    }

    /// Class probabilities of `count` images: `images` holds them planar, `[count, C, H, W]`,
    /// pixels in `[-1, 1]` (a generator's output as it is). Returns `[count, classes]`
    /// row-major; each row sums to 1. Any `count` works (0 gives an empty result): requests
    /// run in batches of at most [`Classifier::batch_size`].
    pub fn probabilities(&self, images: &[f32], count: usize) -> Result<Vec<f32>> {
        let numel = self.info.image.numel();
        if count.checked_mul(numel) != Some(images.len()) {
            return Err(Error::Input {
                reason: format!(
                    "{} pixel values are not {count} images of {}, the shape the classifier {} reads",
                    images.len(),
                    self.info.image,
                    self.path.display()
                ),
            });
        }
        let classes = self.info.classes.len();
        let mut out = Vec::with_capacity(count * classes);
        for chunk in images.chunks(self.batch * numel) {
            out.extend(self.run(chunk, chunk.len() / numel)?);
        }
        Ok(out)
    }

    /// The most likely class of each of `count` images and its probability; see
    /// [`Classifier::probabilities`].
    pub fn predict(&self, images: &[f32], count: usize) -> Result<Vec<Prediction>> {
        let classes = self.info.classes.len();
        let probabilities = self.probabilities(images, count)?;
        probabilities
            .chunks(classes)
            .enumerate()
            .map(|(i, row)| {
                top_class(row).ok_or_else(|| Error::Input {
                    reason: format!(
                        "image {i} has NaN class probabilities: does it hold a NaN pixel?"
                    ),
                })
            })
            .collect()
    }

    /// One tract run of `batch` images.
    fn run(&self, images: &[f32], batch: usize) -> Result<Vec<f32>> {
        let ImageShape {
            channels,
            height,
            width,
        } = self.info.image;
        let stage = || format!("classify a batch of {batch}");
        let input = Tensor::from_shape(&[batch, channels, height, width], images)
            .map_err(|e| Error::tract(&self.path, "build the image tensor", e))?;
        let plan = self.plan(batch)?;
        let outputs = plan
            .lock()
            .expect("plan poisoned")
            .run(tvec![input.into()])
            .map_err(|e| Error::tract(&self.path, stage(), e))?;
        let probabilities = outputs
            .first()
            .ok_or_else(|| Error::tract(&self.path, stage(), "the graph returned no output"))?;
        let expected = [batch, self.info.classes.len()];
        if probabilities.shape() != expected {
            return Err(Error::tract(
                &self.path,
                stage(),
                format!(
                    "the output has shape {:?}, expected {expected:?}",
                    probabilities.shape()
                ),
            ));
        }
        probabilities
            .try_as_plain_ram()
            .and_then(|v| v.as_slice::<f32>().map(<[f32]>::to_vec))
            .map_err(|e| Error::tract(&self.path, stage(), e))
    }

    /// The cached plan for `batch`, compiled on first use.
    fn plan(&self, batch: usize) -> Result<Plan> {
        if let Some(p) = self.plans.lock().expect("plan cache poisoned").get(&batch) {
            return Ok(p.clone());
        }
        let stage = format!("compile a plan for batch {batch}");
        let n = self.model.symbols.sym(BATCH_DIM);
        let state = self
            .model
            .set_symbols(&HashMap::from([(n, TDim::Val(batch as i64))]))
            .and_then(|m| m.into_optimized())
            .and_then(|m| m.into_runnable())
            .and_then(|p| p.spawn())
            .map_err(|e| Error::tract(&self.path, &stage, e))?;
        let plan = Arc::new(Mutex::new(state));
        let mut plans = self.plans.lock().expect("plan cache poisoned");
        let extra: Vec<usize> = plans.keys().copied().filter(|b| *b != self.batch).collect();
        if extra.len() >= EXTRA_PLANS {
            plans.remove(&extra[0]);
        }
        plans.insert(batch, plan.clone());
        Ok(plan)
    }
}
