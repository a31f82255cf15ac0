//! The evaluation classifier: a small LeNet-style CNN trained on the real training split.
//!
//! Every quality figure is computed in its feature space, so it is trained once per data
//! set, saved beside a JSON card (config, data set, classes, test accuracy) and reloaded by
//! `trainer eval` and the training loop. Its penultimate layer (after ReLU) is the feature
//! vector of FID and precision/recall; its argmax is the predicted class of coverage.
//!
//! conv 5×5 → ReLU → max-pool 2 → conv 5×5 → ReLU → max-pool 2 → dense → ReLU (features)
//! → dense (logits).

use std::path::{Path, PathBuf};

use burn::module::Module;
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::loss::CrossEntropyLossConfig;
use burn::nn::pool::{MaxPool2d, MaxPool2dConfig};
use burn::nn::{Linear, LinearConfig, PaddingConfig2d};
use burn::optim::{AdamConfig, GradientsParams};
use burn::store::ModuleRecord;
use burn::tensor::activation::relu;
use burn::tensor::{Bytes, Device, Int, Tensor, TensorData};
use indicatif::ProgressBar;
use serde::{Deserialize, Serialize};

use super::QualityError;
use crate::checkpoint::write_atomic;
use crate::data::{BatchCursor, Batcher, Dataset, ImageShape};
use crate::training::initialize;

/// Version of the classifier card layout, checked on load.
pub const CARD_VERSION: u32 = 1;

/// Images per forward pass when the classifier only infers.
const INFER_BATCH: usize = 500;

/// Layer sizes of the classifier.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ClassifierConfig {
    /// Feature maps of the first convolution.
    pub conv1: usize,
    /// Feature maps of the second convolution.
    pub conv2: usize,
    /// Side of both (square) convolution kernels.
    pub kernel: usize,
    /// Width of the penultimate dense layer: the dimension of the quality features.
    pub features: usize,
}

impl Default for ClassifierConfig {
    fn default() -> Self {
        Self {
            conv1: 16,
            conv2: 32,
            kernel: 5,
            features: 64,
        }
    }
}

impl ClassifierConfig {
    /// Checks that the classifier can be built for `image` and `classes`.
    pub fn validate(&self, image: ImageShape, classes: usize) -> Result<(), QualityError> {
        if self.conv1 == 0 || self.conv2 == 0 || self.kernel == 0 || self.features == 0 {
            return Err(QualityError::Input(format!(
                "classifier layer sizes must be at least 1, got {self:?}"
            )));
        }
        if image.height < 4 || image.width < 4 {
            return Err(QualityError::Input(format!(
                "the classifier pools twice by 2 and needs images of at least 4x4, got {}x{}",
                image.height, image.width
            )));
        }
        if classes < 2 {
            return Err(QualityError::Input(format!(
                "a classifier needs at least 2 classes, the data set has {classes}"
            )));
        }
        Ok(())
    }
}

/// How the classifier is trained.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TrainSettings {
    /// Optimizer steps.
    pub steps: usize,
    /// Examples per mini-batch.
    pub batch_size: usize,
    /// Adam's learning rate.
    pub learning_rate: f64,
    /// Seed of the weights and of the batch order.
    pub seed: u64,
}

impl Default for TrainSettings {
    fn default() -> Self {
        Self {
            steps: 1000,
            batch_size: 64,
            learning_rate: 1e-3,
            seed: 7,
        }
    }
}

impl TrainSettings {
    /// Steps that make `epochs` passes over `examples` at this batch size (at least 1).
    pub fn steps_for_epochs(&self, epochs: usize, examples: usize) -> usize {
        (epochs * (examples / self.batch_size.clamp(1, examples.max(1)))).max(1)
    }
}

/// The LeNet-style CNN.
#[derive(Module, Debug)]
pub struct Classifier {
    /// First convolution ("same" padding).
    pub conv1: Conv2d,
    /// Second convolution ("same" padding).
    pub conv2: Conv2d,
    /// 2×2 max-pooling after each convolution.
    pub pool: MaxPool2d,
    /// Penultimate dense layer; its ReLU output is the feature vector.
    pub hidden: Linear,
    /// Output layer: one logit per class.
    pub output: Linear,
}

impl Classifier {
    /// A fresh classifier for `image` and `classes`, on `device`.
    pub fn new(
        config: &ClassifierConfig,
        image: ImageShape,
        classes: usize,
        device: &Device,
    ) -> Self {
        let k = [config.kernel, config.kernel];
        let conv = |c_in: usize, c_out: usize| {
            Conv2dConfig::new([c_in, c_out], k)
                .with_padding(PaddingConfig2d::Same)
                .init(device)
        };
        let (h, w) = (image.height / 4, image.width / 4);
        Self {
            conv1: conv(image.channels, config.conv1),
            conv2: conv(config.conv1, config.conv2),
            pool: MaxPool2dConfig::new([2, 2]).init(),
            hidden: LinearConfig::new(config.conv2 * h * w, config.features).init(device),
            output: LinearConfig::new(config.features, classes).init(device),
        }
    }

    /// Features `[batch, features]` and logits `[batch, classes]` of images `[batch, C, H, W]`.
    pub fn forward_features(&self, images: Tensor<4>) -> (Tensor<2>, Tensor<2>) {
        let [batch, _, _, _] = images.dims();
        let x = self.pool.forward(relu(self.conv1.forward(images))); // [batch, c1, H/2, W/2]
        let x = self.pool.forward(relu(self.conv2.forward(x))); // [batch, c2, H/4, W/4]
        let [_, c, h, w] = x.dims();
        let features = relu(self.hidden.forward(x.reshape([batch, c * h * w]))); // [batch, features]
        let logits = self.output.forward(features.clone()); // [batch, classes]
        (features, logits)
    }

    /// Logits `[batch, classes]` of images `[batch, C, H, W]`.
    pub fn forward(&self, images: Tensor<4>) -> Tensor<2> {
        self.forward_features(images).1
    }
}

fn images_tensor(pixels: Vec<f32>, image: ImageShape, device: &Device) -> Tensor<4> {
    let count = pixels.len() / image.numel();
    Tensor::from_data(
        TensorData::new(pixels, [count, image.channels, image.height, image.width]),
        device,
    )
}

/// Trains a fresh classifier on `data` and returns it ready for inference.
///
/// `progress` advances by one per step (pass `ProgressBar::hidden()` for none).
pub fn train(
    config: &ClassifierConfig,
    data: &Dataset,
    settings: &TrainSettings,
    device: &Device,
    progress: &ProgressBar,
) -> Result<Classifier, QualityError> {
    let classes = data.class_names().len();
    config.validate(data.shape(), classes)?;
    if settings.batch_size == 0 || settings.steps == 0 {
        return Err(QualityError::Input(
            "classifier training needs a batch size and a step count of at least 1".into(),
        ));
    }
    let device = device.clone().autodiff();
    let mut model = crate::training::seeded(&device, settings.seed, || {
        let model = Classifier::new(config, data.shape(), classes, &device);
        initialize(&model);
        model
    });
    let mut optim = AdamConfig::new().init();
    let loss_fn = CrossEntropyLossConfig::new().init(&device);
    let mut batcher = Batcher::new(
        data,
        settings.batch_size,
        settings.seed,
        BatchCursor::default(),
    );
    for _ in 0..settings.steps {
        let batch = batcher.next_batch(data);
        let n = batch.labels.len();
        let images = images_tensor(batch.pixels, data.shape(), &device); // [n, C, H, W]
        let targets = Tensor::<1, Int>::from_data(TensorData::new(batch.labels, [n]), &device);
        let loss = loss_fn.forward(model.forward(images), targets); // [1]
        let grads = GradientsParams::from_grads(loss.backward(), &model);
        model = optim.step(settings.learning_rate, model, grads);
        progress.inc(1);
    }
    Ok(model.valid())
}

/// What the classifier says about a set of images.
#[derive(Clone, Debug, PartialEq)]
pub struct Features {
    /// `[count, dim]` penultimate features, row-major.
    pub values: Vec<f32>,
    /// Feature dimension.
    pub dim: usize,
    /// Predicted class of each image.
    pub predictions: Vec<usize>,
}

impl Features {
    /// Number of images embedded.
    pub fn len(&self) -> usize {
        self.predictions.len()
    }

    /// True when no image was embedded.
    pub fn is_empty(&self) -> bool {
        self.predictions.is_empty()
    }

    /// Features of the first `count` images.
    pub fn head(&self, count: usize) -> &[f32] {
        &self.values[..count.min(self.len()) * self.dim]
    }

    /// Share of images whose prediction equals their label.
    pub fn accuracy(&self, labels: &[usize]) -> f64 {
        let right = self
            .predictions
            .iter()
            .zip(labels)
            .filter(|(p, l)| p == l)
            .count();
        right as f64 / self.predictions.len().max(1) as f64
    }
}

/// Runs `model` over planar images `[count, C, H, W]` in batches.
pub fn embed(
    model: &Classifier,
    pixels: &[f32],
    image: ImageShape,
    device: &Device,
) -> Result<Features, QualityError> {
    if image.numel() == 0 || !pixels.len().is_multiple_of(image.numel()) {
        return Err(QualityError::Input(format!(
            "{} pixel values do not make whole images of {}x{}x{}",
            pixels.len(),
            image.channels,
            image.height,
            image.width
        )));
    }
    let mut features = Vec::new();
    let mut predictions = Vec::new();
    let mut dim = 0;
    for chunk in pixels.chunks(INFER_BATCH * image.numel()) {
        let images = images_tensor(chunk.to_vec(), image, device); // [b, C, H, W]
        let (f, logits) = model.forward_features(images); // [b, dim], [b, classes]
        dim = f.dims()[1];
        let values = f.into_data().try_to_vec::<f32>().map_err(|e| {
            QualityError::Input(format!("cannot read the classifier's features: {e:?}"))
        })?;
        features.extend(values);
        predictions.extend(
            logits
                .argmax(1)
                .into_data()
                .iter::<i64>()
                .map(|c| c as usize),
        );
    }
    Ok(Features {
        values: features,
        dim,
        predictions,
    })
}

/// The JSON card saved beside a classifier's weights.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ClassifierCard {
    /// Layout version ([`CARD_VERSION`]).
    pub format_version: u32,
    /// Layer sizes.
    pub config: ClassifierConfig,
    /// Shape of the images it reads.
    pub image: ImageShape,
    /// Class names, in label order.
    pub class_names: Vec<String>,
    /// Name of the data set it was trained on (its folder name).
    pub dataset: String,
    /// Training examples used.
    pub train_examples: usize,
    /// How it was trained.
    pub training: TrainSettings,
    /// Accuracy on the data set's test split.
    pub test_accuracy: f64,
    /// Test examples the accuracy was measured on.
    pub test_examples: usize,
}

/// A trained classifier with its card, ready to embed images on the CPU.
#[derive(Debug)]
pub struct EvalClassifier {
    /// The network, in inference mode.
    pub model: Classifier,
    /// What it is and how well it does.
    pub card: ClassifierCard,
    device: Device,
}

/// The card file of the weights file `weights`: the same name with `.json`.
pub fn card_path(weights: &Path) -> PathBuf {
    weights.with_extension("json")
}

impl EvalClassifier {
    /// Wraps a trained model and its card.
    pub fn new(model: Classifier, card: ClassifierCard) -> Self {
        Self {
            model,
            card,
            device: Device::flex(),
        }
    }

    /// Embeds planar images `[count, C, H, W]` in [-1, 1]; checks they have the card's shape.
    pub fn embed(&self, pixels: &[f32]) -> Result<Features, QualityError> {
        let image = self.card.image;
        if !pixels.len().is_multiple_of(image.numel()) {
            return Err(QualityError::Input(format!(
                "{} pixel values are not whole {}x{}x{} images, the shape the classifier was trained on",
                pixels.len(),
                image.channels,
                image.height,
                image.width
            )));
        }
        embed(&self.model, pixels, image, &self.device)
    }

    /// Accuracy on a labelled data set.
    pub fn accuracy(&self, data: &Dataset) -> Result<f64, QualityError> {
        self.check_shape(data.shape(), "the data set")?;
        let embedding = self.embed(&pixels_of(data))?;
        Ok(embedding.accuracy(data.labels()))
    }

    /// Errors unless `shape` is the shape the classifier reads.
    pub fn check_shape(&self, shape: ImageShape, what: &str) -> Result<(), QualityError> {
        if shape != self.card.image {
            let s = |i: ImageShape| format!("{}x{}x{}", i.channels, i.height, i.width);
            return Err(QualityError::Input(format!(
                "{what} holds {} images but the classifier (trained on {}) reads {} images",
                s(shape),
                self.card.dataset,
                s(self.card.image)
            )));
        }
        Ok(())
    }

    /// Writes the weights to `path` (burnpack) and the card beside it, both atomically.
    pub fn save(&self, path: &Path) -> Result<(), QualityError> {
        let bytes =
            self.model
                .clone()
                .into_record()
                .into_bytes()
                .map_err(|e| QualityError::Invalid {
                    path: path.to_path_buf(),
                    problem: format!("cannot serialise the classifier: {e}"),
                })?;
        let card = card_path(path);
        let json = serde_json::to_vec_pretty(&self.card).map_err(|e| QualityError::Invalid {
            path: card.clone(),
            problem: e.to_string(),
        })?;
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|error| QualityError::Io {
                path: dir.to_path_buf(),
                error,
            })?;
        }
        write_atomic(path, &bytes)?;
        write_atomic(&card, &json)?;
        Ok(())
    }

    /// Loads the weights at `path` and the card beside it (`path` with `.json`).
    pub fn load(path: &Path) -> Result<Self, QualityError> {
        let card_file = card_path(path);
        let text = crate::fsutil::read_text(&card_file).map_err(|error| QualityError::Io {
            path: card_file.clone(),
            error,
        })?;
        let invalid = |problem: String| QualityError::Invalid {
            path: card_file.clone(),
            problem,
        };
        let card: ClassifierCard = serde_json::from_str(&text)
            .map_err(|e| invalid(format!("not a classifier card: {e}")))?;
        if card.format_version != CARD_VERSION {
            return Err(invalid(format!(
                "card format {} is not the supported {CARD_VERSION}",
                card.format_version
            )));
        }
        card.config
            .validate(card.image, card.class_names.len())
            .map_err(|e| invalid(e.to_string()))?;
        let bytes = crate::fsutil::read_regular(path, crate::fsutil::MAX_RECORD_BYTES).map_err(
            |error| QualityError::Io {
                path: path.to_path_buf(),
                error,
            },
        )?;
        let record = ModuleRecord::from_bytes(Bytes::from_bytes_vec(bytes)).map_err(|e| {
            QualityError::Invalid {
                path: path.to_path_buf(),
                problem: format!("not a readable burnpack record: {e}"),
            }
        })?;
        let device = Device::flex();
        let fresh = Classifier::new(&card.config, card.image, card.class_names.len(), &device);
        let model = fresh
            .try_load_record(record)
            .map_err(|e| QualityError::Invalid {
                path: path.to_path_buf(),
                problem: format!("does not fit the classifier its card describes: {e}"),
            })?
            .valid();
        Ok(Self {
            model,
            card,
            device,
        })
    }
}

/// All pixels of `data`, planar `[len, C, H, W]`.
pub fn pixels_of(data: &Dataset) -> Vec<f32> {
    let mut out = Vec::with_capacity(data.len() * data.shape().numel());
    for i in 0..data.len() {
        out.extend_from_slice(data.image(i));
    }
    out
}
