//! The training set of real examples x: loading (IDX files or an image folder),
//! pixel scaling to [-1, 1] and seeded, shuffled mini-batches.

pub mod folder;
pub mod idx;

use std::path::{Path, PathBuf};

use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_pcg::Pcg64;
use serde::{Deserialize, Serialize};

pub use folder::load_folder;
pub use idx::{Split, is_idx_dir, load_idx};

/// The class names of Fashion-MNIST, in label order.
pub const FASHION_MNIST_CLASSES: [&str; 10] = [
    "t-shirt",
    "trouser",
    "pullover",
    "dress",
    "coat",
    "sandal",
    "shirt",
    "sneaker",
    "bag",
    "ankle-boot",
];

/// Why a data set could not be read. Every variant names the file.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    /// The file or folder could not be read.
    #[error("cannot read {path}: {cause}")]
    Io {
        /// The file or folder.
        path: PathBuf,
        /// The operating system's error.
        cause: std::io::Error,
    },
    /// A required file is absent.
    #[error("{path}: missing {what}")]
    Missing {
        /// Where the file was expected.
        path: PathBuf,
        /// What the file should hold.
        what: &'static str,
    },
    /// The file exists but its content is wrong.
    #[error("{path}: {problem}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        problem: String,
    },
    /// Image and label files disagree on the number of examples.
    #[error("{images} holds {image_count} images but {labels} holds {label_count} labels")]
    CountMismatch {
        /// The image file.
        images: PathBuf,
        /// Images it holds.
        image_count: usize,
        /// The label file.
        labels: PathBuf,
        /// Labels it holds.
        label_count: usize,
    },
}

/// Channels, height and width of one image: the runtime's type, so a shape passes between
/// the trainer, its exported generators and the runtime as it is (`{channels, height, width}`
/// in JSON and TOML, as before). Its size is [`ImageShape::numel`].
pub use runtime::shape::ImageShape;

/// Real examples in memory: planar pixels in [-1, 1] and their class labels.
#[derive(Clone, Debug)]
pub struct Dataset {
    pixels: Vec<f32>,
    labels: Vec<usize>,
    shape: ImageShape,
    class_names: Vec<String>,
}

impl Dataset {
    /// Builds a data set, checking that pixels, labels and classes agree.
    pub fn new(
        pixels: Vec<f32>,
        labels: Vec<usize>,
        shape: ImageShape,
        class_names: Vec<String>,
    ) -> Result<Self, DataError> {
        let invalid = |problem: String| DataError::Invalid {
            path: PathBuf::from("<in memory>"),
            problem,
        };
        if shape.numel() == 0 {
            return Err(invalid(format!("image shape {shape:?} holds no pixel")));
        }
        if pixels.len() != labels.len() * shape.numel() {
            return Err(invalid(format!(
                "{} pixel values do not make {} images of {shape:?}",
                pixels.len(),
                labels.len()
            )));
        }
        if labels.is_empty() {
            return Err(invalid("the data set holds no example".into()));
        }
        if labels.iter().any(|&l| l >= class_names.len()) {
            return Err(invalid(format!(
                "a label is not below the class count {}",
                class_names.len()
            )));
        }
        Ok(Self {
            pixels,
            labels,
            shape,
            class_names,
        })
    }

    /// Number of examples.
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    /// True when the data set holds no example (never, once built).
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// Shape of every image.
    pub fn shape(&self) -> ImageShape {
        self.shape
    }

    /// Class names in label order.
    pub fn class_names(&self) -> &[String] {
        &self.class_names
    }

    /// All labels, in example order.
    pub fn labels(&self) -> &[usize] {
        &self.labels
    }

    /// Pixels of example `index`, planar, in [-1, 1].
    pub fn image(&self, index: usize) -> &[f32] {
        let n = self.shape.numel();
        &self.pixels[index * n..(index + 1) * n]
    }

    /// The first `count` examples (all of them when `count` is larger).
    pub fn truncated(mut self, count: usize) -> Self {
        let count = count.min(self.len());
        self.labels.truncate(count);
        self.pixels.truncate(count * self.shape.numel());
        self
    }
}

/// Opens the data set at `path`: an IDX folder (`train-images-idx3-ubyte[.gz]` …) or a
/// folder with one sub-folder of images per class.
///
/// `shape` is used for image folders (IDX files carry their own).
pub fn open(path: &Path, split: Split, shape: ImageShape) -> Result<Dataset, DataError> {
    if !path.is_dir() {
        return Err(DataError::Missing {
            path: path.to_path_buf(),
            what: "data set folder (IDX files or one sub-folder of images per class)",
        });
    }
    if is_idx_dir(path) {
        let names = idx_class_names(path);
        load_idx(path, split, names)
    } else {
        load_folder(path, shape)
    }
}

/// Class names for an IDX folder: Fashion-MNIST's when the folder says so, digits otherwise.
fn idx_class_names(path: &Path) -> Vec<String> {
    let is_fashion = path.components().any(|c| {
        c.as_os_str()
            .to_string_lossy()
            .to_lowercase()
            .contains("fashion")
    });
    if is_fashion {
        FASHION_MNIST_CLASSES
            .iter()
            .map(|s| s.to_string())
            .collect()
    } else {
        (0..10).map(|d| d.to_string()).collect()
    }
}

/// Where the batch stream stands: enough to resume the same sequence of batches.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BatchCursor {
    /// Full passes over the data set so far.
    pub epoch: u64,
    /// Position in the current epoch's permutation.
    pub position: usize,
}

/// A mini-batch of real examples ready for a tensor.
#[derive(Clone, Debug)]
pub struct RealBatch {
    /// `[batch, channels * height * width]`, row-major.
    pub pixels: Vec<f32>,
    /// `[batch]` class labels.
    pub labels: Vec<i64>,
}

/// Shuffled mini-batches: each epoch is a fresh permutation drawn from (seed, epoch),
/// so the stream depends only on the seed and the cursor, and resumes exactly.
#[derive(Clone, Debug)]
pub struct Batcher {
    batch_size: usize,
    seed: u64,
    cursor: BatchCursor,
    order: Vec<usize>,
}

impl Batcher {
    /// A batcher over `dataset` at `cursor`. Epochs drop their last partial batch.
    pub fn new(dataset: &Dataset, batch_size: usize, seed: u64, cursor: BatchCursor) -> Self {
        let mut batcher = Self {
            batch_size: batch_size.clamp(1, dataset.len()),
            seed,
            cursor,
            order: Vec::new(),
        };
        batcher.order = batcher.permutation(dataset.len(), cursor.epoch);
        batcher
    }

    /// The position of the next batch.
    pub fn cursor(&self) -> BatchCursor {
        self.cursor
    }

    fn permutation(&self, len: usize, epoch: u64) -> Vec<usize> {
        let mut order: Vec<usize> = (0..len).collect();
        // Distinct stream per epoch; the multiplier only spreads nearby epochs apart.
        let mut rng = Pcg64::seed_from_u64(self.seed ^ epoch.wrapping_mul(0x9E37_79B9_7F4A_7C15));
        order.shuffle(&mut rng);
        order
    }

    /// The next mini-batch of real examples.
    pub fn next_batch(&mut self, dataset: &Dataset) -> RealBatch {
        if self.cursor.position + self.batch_size > self.order.len() {
            self.cursor.epoch += 1;
            self.cursor.position = 0;
            self.order = self.permutation(dataset.len(), self.cursor.epoch);
        }
        let indices = &self.order[self.cursor.position..self.cursor.position + self.batch_size];
        self.cursor.position += self.batch_size;
        let mut pixels = Vec::with_capacity(self.batch_size * dataset.shape().numel());
        let mut labels = Vec::with_capacity(self.batch_size);
        for &i in indices {
            pixels.extend_from_slice(dataset.image(i));
            labels.push(dataset.labels()[i] as i64);
        }
        RealBatch { pixels, labels }
    }
}
