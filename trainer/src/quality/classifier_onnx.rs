//! The evaluation classifier as ONNX, for the runtime: `runtime generate --filter` runs it with
//! tract on the device to keep only the generated samples it recognises as their requested
//! class.
//!
//! burn's weights are read into the runtime's framework-neutral
//! [`runtime::onnx::classifier::ClassifierSpec`], which writes a standard
//! opset-17 graph (`image` `[N, C, H, W]` in `[-1, 1]` → `probabilities` `[N, classes]`), the
//! way [`crate::export`] does for generators. Both layouts match burn's: `Conv2d` weights are
//! `[c_out, c_in, kh, kw]` like ONNX `Conv`, `Linear` weights `[in, out]` like `Gemm` without
//! `transB`. After writing, the file is loaded back with the runtime and run against burn on
//! a fixed set of images, so a conversion that computes something else is never left behind.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use burn::module::Param;
use burn::nn::Linear;
use burn::nn::conv::Conv2d;
use burn::tensor::{Tensor, TensorData};
use runtime::onnx::classifier::{ClassifierSpec, Conv, Dense, keys};
use runtime::onnx::spec::{ImageShape, Matrix, SpecError};

use super::QualityError;
use super::classifier::EvalClassifier;

/// Largest difference between burn's and the ONNX file's probabilities that
/// [`write_onnx`] accepts (measured: below 1e-6 on the shipped classifiers).
pub const PARITY_TOLERANCE: f32 = 1e-4;

/// Images the parity check of [`write_onnx`] runs through both.
const PARITY_IMAGES: usize = 64;

/// The ONNX file of the weights file `weights`: the same name with `.onnx`.
pub fn onnx_path(weights: &Path) -> PathBuf {
    weights.with_extension("onnx")
}

fn values<const D: usize>(what: &str, param: &Param<Tensor<D>>) -> Result<Vec<f32>, QualityError> {
    param
        .val()
        .into_data()
        .try_to_vec::<f32>()
        .map_err(|e| QualityError::Input(format!("cannot read the classifier's {what}: {e:?}")))
}

fn conv(name: &str, layer: &Conv2d) -> Result<Conv, QualityError> {
    let [c_out, c_in, kh, kw] = layer.weight.val().dims();
    let bias = layer
        .bias
        .as_ref()
        .map(|b| values(&format!("{name} bias"), b))
        .transpose()?
        .unwrap_or_else(|| vec![0.0; c_out]);
    Ok(Conv {
        weight: values(&format!("{name} weight"), &layer.weight)?,
        c_in,
        c_out,
        kernel: [kh, kw],
        bias,
    })
}

fn dense(name: &str, layer: &Linear) -> Result<Dense, QualityError> {
    let [rows, cols] = layer.weight.val().dims();
    let bias = layer
        .bias
        .as_ref()
        .map(|b| values(&format!("{name} bias"), b))
        .transpose()?
        .unwrap_or_else(|| vec![0.0; cols]);
    Ok(Dense {
        weight: Matrix {
            rows,
            cols,
            data: values(&format!("{name} weight"), &layer.weight)?,
        },
        bias,
    })
}

/// The classifier as the runtime's spec, with its card's data set, test accuracy and the whole
/// card in the metadata.
pub fn to_spec(classifier: &EvalClassifier) -> Result<ClassifierSpec, QualityError> {
    let model = &classifier.model;
    let card = &classifier.card;
    let card_json = serde_json::to_string(card)
        .map_err(|e| QualityError::Input(format!("cannot write the card as JSON: {e}")))?;
    let spec = ClassifierSpec {
        image: ImageShape {
            channels: card.image.channels,
            height: card.image.height,
            width: card.image.width,
        },
        classes: card.class_names.clone(),
        conv1: conv("conv1", &model.conv1)?,
        conv2: conv("conv2", &model.conv2)?,
        hidden: dense("hidden", &model.hidden)?,
        output: dense("output", &model.output)?,
        metadata: BTreeMap::from([
            (keys::DATASET.to_string(), card.dataset.clone()),
            (
                keys::TEST_ACCURACY.to_string(),
                card.test_accuracy.to_string(),
            ),
            (
                keys::TEST_EXAMPLES.to_string(),
                card.test_examples.to_string(),
            ),
            (keys::CARD.to_string(), card_json),
        ]),
    };
    spec.validate().map_err(|e| {
        QualityError::Input(format!("the classifier does not convert to ONNX: {e}"))
    })?;
    Ok(spec)
}

/// burn's class probabilities (softmax of the logits) of planar images `[count, C, H, W]`.
pub fn burn_probabilities(
    classifier: &EvalClassifier,
    pixels: &[f32],
) -> Result<Vec<f32>, QualityError> {
    let image = classifier.card.image;
    let count = pixels.len() / image.numel().max(1);
    if count * image.numel() != pixels.len() {
        return Err(QualityError::Input(format!(
            "{} pixel values are not whole images of {}x{}x{}",
            pixels.len(),
            image.channels,
            image.height,
            image.width
        )));
    }
    let device = burn::tensor::Device::flex();
    let images = Tensor::<4>::from_data(
        TensorData::new(
            pixels.to_vec(),
            [count, image.channels, image.height, image.width],
        ),
        &device,
    ); // [count, C, H, W]
    let logits = classifier.model.forward(images); // [count, classes]
    burn::tensor::activation::softmax(logits, 1) // [count, classes]
        .into_data()
        .try_to_vec::<f32>()
        .map_err(|e| QualityError::Input(format!("cannot read burn's probabilities: {e:?}")))
}

/// What [`write_onnx`] wrote and checked.
#[derive(Clone, Debug, PartialEq)]
pub struct OnnxExport {
    /// The ONNX file.
    pub path: PathBuf,
    /// Images run through burn and the written file (tract) to compare them.
    pub checked_images: usize,
    /// Largest difference between their probabilities.
    pub max_probability_diff: f32,
}

/// Writes `classifier` as ONNX to `path` (atomically, creating its folder), loads the file back
/// with the runtime and checks that tract's probabilities match burn's within
/// [`PARITY_TOLERANCE`] on a fixed set of images in `[-1, 1]`.
pub fn write_onnx(classifier: &EvalClassifier, path: &Path) -> Result<OnnxExport, QualityError> {
    let spec = to_spec(classifier)?;
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|error| QualityError::Io {
            path: dir.to_path_buf(),
            error,
        })?;
    }
    spec.write_onnx(path).map_err(|e| match e {
        SpecError::Write { path, error } => QualityError::Io { path, error },
        other => QualityError::Invalid {
            path: path.to_path_buf(),
            problem: format!("cannot write the classifier as ONNX: {other}"),
        },
    })?;
    let onnx = runtime::engine::classifier::Classifier::load(path).map_err(|e| {
        QualityError::Generator {
            path: path.to_path_buf(),
            error: Box::new(e),
        }
    })?;
    // Fixed images that use the whole pixel range: the runtime's seeded noise, squashed.
    let pixels: Vec<f32> = runtime::noise::noise(PARITY_IMAGES, classifier.card.image.numel(), 1)
        .into_iter()
        .map(|v| (v * 0.8).tanh())
        .collect();
    let want = burn_probabilities(classifier, &pixels)?;
    let got = onnx
        .probabilities(&pixels, PARITY_IMAGES)
        .map_err(|e| QualityError::Generator {
            path: path.to_path_buf(),
            error: Box::new(e),
        })?;
    let diff = runtime::engine::max_abs_diff(&want, &got);
    if diff > PARITY_TOLERANCE {
        return Err(QualityError::Invalid {
            path: path.to_path_buf(),
            problem: format!(
                "the written classifier computes other probabilities than burn (max difference {diff:e}, tolerance {PARITY_TOLERANCE:e}); please report this"
            ),
        });
    }
    Ok(OnnxExport {
        path: path.to_path_buf(),
        checked_images: PARITY_IMAGES,
        max_probability_diff: diff,
    })
}
