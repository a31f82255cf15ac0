//! Export of a trained generator to ONNX: burn's weights are read into the runtime's
//! framework-free [`GeneratorSpec`], whose writer folds batch norm away and emits a
//! standard ONNX graph (`z` [N, z_dim], `label` [N] → `image` [N, C, H, W]).
//!
//! burn's own ONNX exporter rejects LeakyRelu and ConvTranspose2d and cannot name the
//! graph's inputs, so the graph is written from the weights instead.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use burn::module::Param;
use burn::nn::BatchNorm;
use burn::nn::Linear;
use burn::nn::conv::ConvTranspose2d;
use burn::tensor::{Device, Tensor};
use runtime::info::keys;
use runtime::spec::{Dense, GeneratorSpec, Layer, Matrix};

use crate::checkpoint::{self, CheckpointError};
use crate::config::{ConfigError, TrainConfig};
use crate::model::Generator;
use crate::training::Gan;

/// Why a generator could not be exported.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    /// The run's config is unreadable.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The run's checkpoint is unreadable.
    #[error(transparent)]
    Checkpoint(#[from] CheckpointError),
    /// The ONNX graph could not be built or written.
    #[error("{}", onnx_message(path, cause))]
    Onnx {
        /// The output file.
        path: PathBuf,
        /// The writer's error.
        cause: runtime::spec::SpecError,
    },
}

/// The message of [`ExportError::Onnx`]: a write error names the file itself.
fn onnx_message(path: &Path, cause: &runtime::spec::SpecError) -> String {
    match cause {
        runtime::spec::SpecError::Write { .. } => cause.to_string(),
        _ => format!("{}: {cause}", path.display()),
    }
}

fn values<const D: usize>(tensor: Tensor<D>) -> Vec<f32> {
    tensor
        .without_autodiff()
        .into_data()
        .try_to_vec::<f32>()
        .unwrap_or_default()
}

fn param_values<const D: usize>(param: &Param<Tensor<D>>) -> Vec<f32> {
    values(param.val())
}

fn dense(linear: &Linear) -> Layer {
    let [rows, cols] = linear.weight.val().dims();
    Layer::Dense(Dense {
        weight: Matrix {
            rows,
            cols,
            data: param_values(&linear.weight),
        },
        bias: linear.bias.as_ref().map(param_values),
    })
}

fn deconv(d: &ConvTranspose2d) -> Layer {
    let [c_in, c_out, kh, kw] = d.weight.val().dims();
    Layer::ConvTranspose2d(runtime::spec::ConvTranspose2d {
        weight: param_values(&d.weight),
        c_in,
        c_out,
        kernel: [kh, kw],
        bias: d.bias.as_ref().map(param_values),
        stride: d.stride,
        padding: d.padding,
        output_padding: d.padding_out,
    })
}

fn batch_norm(bn: &BatchNorm) -> Layer {
    Layer::BatchNorm(runtime::spec::BatchNorm {
        gamma: param_values(&bn.gamma),
        beta: param_values(&bn.beta),
        mean: values(bn.running_mean.value()),
        var: values(bn.running_var.value()),
        epsilon: bn.epsilon as f32,
    })
}

fn embedding(e: Option<&burn::nn::Embedding>) -> Option<Matrix> {
    e.map(|e| {
        let [rows, cols] = e.weight.val().dims();
        Matrix {
            rows,
            cols,
            data: param_values(&e.weight),
        }
    })
}

/// Describes `generator` (in inference mode) as a [`GeneratorSpec`].
pub fn spec(generator: &Generator, config: &TrainConfig, classes: Vec<String>) -> GeneratorSpec {
    let image = config.image;
    let (label_embedding, layers) = match generator {
        Generator::Mlp(g) => {
            let mut layers = Vec::new();
            for hidden in &g.hidden {
                layers.push(dense(hidden));
                layers.push(Layer::LeakyRelu {
                    alpha: g.slope as f32,
                });
            }
            layers.push(dense(&g.output));
            layers.push(Layer::Tanh);
            let [channels, height, width] = g.image;
            layers.push(Layer::Reshape {
                channels,
                height,
                width,
            });
            (embedding(g.label_embedding.as_ref()), layers)
        }
        Generator::Dcgan(g) => {
            let [channels, height, width] = g.start;
            let mut layers = vec![
                dense(&g.project),
                Layer::Reshape {
                    channels,
                    height,
                    width,
                },
            ];
            for (i, d) in g.deconvs.iter().enumerate() {
                layers.push(deconv(d));
                if let Some(bn) = g.norms.get(i) {
                    layers.push(batch_norm(bn));
                    layers.push(Layer::LeakyRelu {
                        alpha: g.slope as f32,
                    });
                }
            }
            layers.push(Layer::Tanh);
            (embedding(g.label_embedding.as_ref()), layers)
        }
    };
    GeneratorSpec {
        z_dim: config.z_dim,
        image,
        classes: if label_embedding.is_some() {
            classes
        } else {
            Vec::new()
        },
        label_embedding,
        layers,
        metadata: BTreeMap::new(),
    }
}

/// Rebuilds the run in `run_dir` from its config and latest checkpoint.
pub fn load_run(run_dir: &Path) -> Result<(Gan, Vec<String>), ExportError> {
    load_run_checkpoint(run_dir, None)
}

/// Rebuilds the run in `run_dir` from its config and the checkpoint folder `checkpoint`
/// (the latest one when `None`).
pub fn load_run_checkpoint(
    run_dir: &Path,
    checkpoint: Option<&Path>,
) -> Result<(Gan, Vec<String>), ExportError> {
    // The config first: a folder without one is not a run, whatever else it holds.
    let config = TrainConfig::from_json_file(&run_dir.join("config.json"))?;
    let classes_path = run_dir.join("classes.json");
    let classes: Vec<String> = crate::fsutil::read_text(&classes_path)
        .map_err(|cause| CheckpointError::Io {
            path: classes_path.clone(),
            cause,
        })
        .and_then(|text| {
            serde_json::from_str(&text).map_err(|e| CheckpointError::Invalid {
                path: classes_path.clone(),
                problem: e.to_string(),
            })
        })?;
    let mut gan = Gan::new(&config, classes.len(), config.image, &Device::flex());
    match checkpoint {
        Some(dir) => {
            checkpoint::load(&mut gan, dir)?;
        }
        // The newest checkpoint that loads, as a resume would pick it.
        None => {
            checkpoint::load_latest(&mut gan, run_dir)?;
        }
    }
    Ok((gan, classes))
}

/// Writes the generator of the run in `run_dir` (its EMA weights when it has them) to
/// `out` as ONNX, with the run's metadata. Returns the spec that was written.
pub fn export_run(run_dir: &Path, out: &Path) -> Result<GeneratorSpec, ExportError> {
    export_checkpoint(run_dir, None, out)
}

/// Like [`export_run`], from a chosen checkpoint folder of the run (e.g. `checkpoints/best`;
/// the latest when `None`).
pub fn export_checkpoint(
    run_dir: &Path,
    checkpoint: Option<&Path>,
    out: &Path,
) -> Result<GeneratorSpec, ExportError> {
    let (gan, classes) = load_run_checkpoint(run_dir, checkpoint)?;
    let config = gan.config().clone();
    let mut spec = spec(&gan.inference_generator(), &config, classes);
    let dataset = config
        .dataset
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| config.dataset.display().to_string());
    spec.metadata.insert(keys::DATASET.into(), dataset);
    spec.metadata
        .insert(keys::STEPS.into(), gan.step.to_string());
    spec.metadata.insert(
        keys::CONFIG.into(),
        serde_json::to_string(&config).unwrap_or_default(),
    );
    if let Ok(lines) = crate::metrics::read(&run_dir.join("metrics.jsonl"))
        && let Some(last) = lines.last()
    {
        spec.metadata.insert(
            keys::QUALITY.into(),
            serde_json::to_string(last).unwrap_or_default(),
        );
    }
    spec.metadata
        .insert("gantry.ema".into(), gan.ema.is_some().to_string());
    let onnx = spec
        .fold_batch_norm()
        .and_then(|folded| folded.write_onnx(out).map(|_| folded));
    onnx.map_err(|cause| ExportError::Onnx {
        path: out.to_path_buf(),
        cause,
    })?;
    Ok(spec)
}
