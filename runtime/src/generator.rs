//! Running a generator with tract: load and check an ONNX file, then turn seeds into images.
//!
//! tract optimises a graph for the shapes it knows; a graph compiled for a fixed batch size runs
//! faster than one compiled for a symbolic batch `N` (measured in `docs/BENCHMARKS.md`; rerun
//! with `runtime bench --model M`). So [`Generator`] compiles one plan per batch size it meets —
//! 1 and [`DEFAULT_BATCH`] at load, others (the tail of a request) on first use — and caches
//! them. [`BatchMode::Symbolic`] keeps a single plan for any batch instead.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use tract_onnx::prelude::*;
use tract_onnx::tract_core::ops::cnn::Deconv;
use tract_onnx::tract_core::ops::einsum::EinSum;

use crate::error::{Error, Result};
use crate::info::ModelInfo;
use crate::noise::NoiseStream;
use crate::onnx::{self, GraphSummary};
use crate::spec::ImageShape;

/// Batch size used by [`Generator::generate`] unless changed with
/// [`Generator::with_batch_size`].
pub const DEFAULT_BATCH: usize = 64;

/// Most plans kept in the cache besides the batch-1 and default-batch ones.
const EXTRA_PLANS: usize = 4;

/// How tract plans are compiled for the batch dimension.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum BatchMode {
    /// One plan per batch size, compiled with the batch fixed (faster; the default).
    #[default]
    Fixed,
    /// One plan for every batch size, compiled with a symbolic batch.
    Symbolic,
}

/// Which classes the samples of a request get.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Labels {
    /// Unconditional model: no labels.
    None,
    /// Sample `i` gets class `i % classes`: every prefix is as balanced as possible.
    Balanced {
        /// Number of classes.
        classes: usize,
    },
    /// Every sample gets this class.
    Fixed(usize),
}

impl Labels {
    /// Label of sample `i`, if any.
    pub fn label(&self, i: usize) -> Option<usize> {
        match self {
            Labels::None => None,
            Labels::Balanced { classes } => Some(i % classes),
            Labels::Fixed(c) => Some(*c),
        }
    }
}

/// A batch of generated images.
#[derive(Clone, Debug, PartialEq)]
pub struct Samples {
    /// Shape of each image.
    pub shape: ImageShape,
    /// Index of the first sample within its request.
    pub first: usize,
    /// `[len, C, H, W]` values in `[-1, 1]`.
    pub pixels: Vec<f32>,
    /// One class index per image (conditional models).
    pub labels: Option<Vec<usize>>,
}

impl Samples {
    /// Number of images.
    pub fn len(&self) -> usize {
        self.pixels.len() / self.shape.numel().max(1)
    }

    /// Whether there are no images.
    pub fn is_empty(&self) -> bool {
        self.pixels.is_empty()
    }

    /// Image `i`, `[C, H, W]`.
    pub fn image(&self, i: usize) -> &[f32] {
        let n = self.shape.numel();
        &self.pixels[i * n..(i + 1) * n]
    }

    /// Image `i` as 8-bit pixels, channels last (`[H, W, C]`), ready for PNG or IDX; see
    /// [`to_u8`].
    pub fn image_u8(&self, i: usize) -> Vec<u8> {
        let ImageShape {
            channels,
            height,
            width,
        } = self.shape;
        let img = self.image(i);
        let mut out = vec![0u8; img.len()];
        for c in 0..channels {
            for p in 0..height * width {
                out[p * channels + c] = to_u8(img[c * height * width + p]);
            }
        }
        out
    }
}

/// Maps a pixel from `[-1, 1]` to `0..=255`: `round((clamp(v, -1, 1) + 1) * 127.5)`.
pub fn to_u8(v: f32) -> u8 {
    ((v.clamp(-1.0, 1.0) + 1.0) * 127.5).round() as u8
}

type Plan = Arc<Mutex<TypedSimpleState>>;

/// A loaded, checked generator and its compiled tract plans.
pub struct Generator {
    path: PathBuf,
    info: ModelInfo,
    summary: GraphSummary,
    macs_per_sample: u64,
    /// Decluttered, batch still symbolic (`N`); each plan is specialised from it.
    model: TypedModel,
    mode: BatchMode,
    batch: usize,
    plans: Mutex<BTreeMap<usize, Plan>>,
}

impl std::fmt::Debug for Generator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Generator")
            .field("path", &self.path)
            .field("info", &self.info)
            .field("mode", &self.mode)
            .field("batch", &self.batch)
            .finish_non_exhaustive()
    }
}

/// Reads and checks a generator file: bytes, protobuf, metadata, signature.
pub(crate) fn read_checked(
    path: &Path,
) -> Result<(Vec<u8>, tract_onnx::pb::ModelProto, ModelInfo, GraphSummary)> {
    let bytes = std::fs::read(path).map_err(|source| Error::ReadModel {
        path: path.to_path_buf(),
        source,
    })?;
    let proto = onnx::decode(path, &bytes)?;
    let info = ModelInfo::from_props(&proto.metadata_props).map_err(|source| Error::Metadata {
        path: path.to_path_buf(),
        source,
    })?;
    let summary = onnx::check_generator(path, &proto, &info)?;
    Ok((bytes, proto, info, summary))
}

impl Generator {
    /// Loads the ONNX generator at `path`, checks its signature and metadata, and compiles
    /// tract plans for batch 1 and [`DEFAULT_BATCH`].
    pub fn load(path: impl AsRef<Path>) -> Result<Generator> {
        let path = path.as_ref();
        let (_, proto, info, summary) = read_checked(path)?;
        let model = onnx()
            .model_for_proto_model(&proto)
            .map_err(|e| Error::tract(path, "import the ONNX graph", e))?
            .into_typed()
            .and_then(|m| m.into_decluttered())
            .map_err(|e| Error::tract(path, "analyse the graph", e))?;
        let mut generator = Generator {
            path: path.to_path_buf(),
            info,
            summary,
            macs_per_sample: 0,
            model,
            mode: BatchMode::Fixed,
            batch: DEFAULT_BATCH,
            plans: Mutex::new(BTreeMap::new()),
        };
        generator.macs_per_sample = generator.count_macs()?;
        generator.prepare()?;
        tracing::debug!(path = %path.display(), "loaded generator");
        Ok(generator)
    }

    /// Switches between fixed-batch and symbolic-batch plans (recompiles).
    pub fn with_batch_mode(mut self, mode: BatchMode) -> Result<Generator> {
        self.mode = mode;
        self.plans.lock().expect("plan cache poisoned").clear();
        self.prepare()?;
        Ok(self)
    }

    /// Sets the batch size [`Generator::generate`] runs (at least 1).
    pub fn with_batch_size(mut self, batch: usize) -> Result<Generator> {
        if batch == 0 {
            return Err(Error::Input {
                reason: "the batch size must be at least 1".into(),
            });
        }
        self.batch = batch;
        self.prepare()?;
        Ok(self)
    }

    fn prepare(&self) -> Result<()> {
        match self.mode {
            BatchMode::Fixed => {
                self.plan(1)?;
                self.plan(self.batch)?;
            }
            BatchMode::Symbolic => {
                self.plan(0)?;
            }
        }
        Ok(())
    }

    /// The model file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The model's metadata.
    pub fn info(&self) -> &ModelInfo {
        &self.info
    }

    /// Inputs, outputs, parameter count and operators of the graph.
    pub fn summary(&self) -> &GraphSummary {
        &self.summary
    }

    /// Multiply-accumulates per sample in matrix products and (transposed) convolutions.
    pub fn macs_per_sample(&self) -> u64 {
        self.macs_per_sample
    }

    /// The batch mode in use.
    pub fn batch_mode(&self) -> BatchMode {
        self.mode
    }

    /// The batch size `generate` runs.
    pub fn batch_size(&self) -> usize {
        self.batch
    }

    /// The model with the batch symbol bound to `batch`.
    fn with_batch(&self, batch: usize) -> Result<TypedModel> {
        let n = self.model.symbols.sym(onnx::BATCH_DIM);
        let subs = HashMap::from([(n, TDim::Val(batch as i64))]);
        self.model
            .set_symbols(&subs)
            .map_err(|e| Error::tract(&self.path, format!("fix the batch size to {batch}"), e))
    }

    fn count_macs(&self) -> Result<u64> {
        let typed = self
            .with_batch(1)?
            .into_decluttered()
            .map_err(|e| Error::tract(&self.path, "analyse the graph for batch 1", e))?;
        let mut macs = 0i64;
        for node in typed.nodes() {
            let facts = typed
                .node_input_facts(node.id)
                .map_err(|e| Error::tract(&self.path, "read shapes", e))?;
            if let Some(deconv) = node.op_as::<Deconv>() {
                // tract has no cost model for Deconv: each input pixel meets every kernel weight.
                let kernel = facts[1].shape.volume().to_i64().unwrap_or(0);
                let shape = deconv
                    .pool_spec
                    .data_format
                    .shape(facts[0].shape.to_tvec())
                    .map_err(|e| {
                        Error::tract(&self.path, format!("read the shape of {}", node.name), e)
                    })?;
                let pixels: i64 = shape
                    .hw_dims()
                    .iter()
                    .map(|d| d.to_i64().unwrap_or(0))
                    .product();
                macs += kernel * pixels;
            } else if node.op_is::<EinSum>()
                || node.op_is::<tract_onnx::tract_core::ops::cnn::Conv>()
            {
                let cost = node
                    .op
                    .cost(&facts)
                    .map_err(|e| Error::tract(&self.path, "count operations", e))?;
                for (kind, count) in cost {
                    if let tract_onnx::tract_core::ops::Cost::FMA(_) = kind {
                        macs += count.to_i64().unwrap_or(0);
                    }
                }
            }
        }
        Ok(macs.max(0) as u64)
    }

    /// The cached plan for `batch` (0 = the symbolic plan), compiled on first use.
    fn plan(&self, batch: usize) -> Result<Plan> {
        let key = if self.mode == BatchMode::Symbolic {
            0
        } else {
            batch
        };
        if let Some(p) = self.plans.lock().expect("plan cache poisoned").get(&key) {
            return Ok(p.clone());
        }
        let started = std::time::Instant::now();
        let model = if key == 0 {
            self.model.clone()
        } else {
            self.with_batch(key)?
        };
        let stage = if key == 0 {
            "compile a symbolic-batch plan".to_string()
        } else {
            format!("compile a plan for batch {key}")
        };
        let state = model
            .into_optimized()
            .and_then(|m| m.into_runnable())
            .and_then(|p| p.spawn())
            .map_err(|e| Error::tract(&self.path, &stage, e))?;
        tracing::debug!(
            batch = key,
            elapsed_ms = started.elapsed().as_secs_f64() * 1e3,
            "compiled tract plan"
        );
        let plan = Arc::new(Mutex::new(state));
        let mut plans = self.plans.lock().expect("plan cache poisoned");
        let extra: Vec<usize> = plans
            .keys()
            .copied()
            .filter(|b| *b != 1 && *b != self.batch && *b != 0)
            .collect();
        if extra.len() >= EXTRA_PLANS {
            plans.remove(&extra[0]);
        }
        plans.insert(key, plan.clone());
        Ok(plan)
    }

    /// Runs the generator on `z` (`[batch, z_dim]` row-major) and, for conditional models, one
    /// label per sample. Returns `[batch, C, H, W]` values in `[-1, 1]`.
    pub fn run(&self, z: &[f32], labels: Option<&[i64]>) -> Result<Vec<f32>> {
        let batch = check_inputs(&self.info, z, labels)?;
        let plan = self.plan(batch)?;
        let mut inputs: TVec<TValue> = tvec![
            Tensor::from_shape(&[batch, self.info.z_dim], z)
                .map_err(|e| Error::tract(&self.path, "build the z tensor", e))?
                .into()
        ];
        if let Some(labels) = labels {
            inputs.push(
                Tensor::from_shape(&[batch], labels)
                    .map_err(|e| Error::tract(&self.path, "build the label tensor", e))?
                    .into(),
            );
        }
        let stage = || format!("run a batch of {batch}");
        let outputs = plan
            .lock()
            .expect("plan poisoned")
            .run(inputs)
            .map_err(|e| Error::tract(&self.path, stage(), e))?;
        let image = outputs
            .first()
            .ok_or_else(|| Error::tract(&self.path, stage(), "the graph returned no output"))?;
        let shape = self.info.image;
        let expected = [batch, shape.channels, shape.height, shape.width];
        if image.shape() != expected {
            return Err(Error::tract(
                &self.path,
                stage(),
                format!(
                    "the output has shape {:?}, expected {expected:?}",
                    image.shape()
                ),
            ));
        }
        let values = image
            .try_as_plain_ram()
            .and_then(|v| v.as_slice::<f32>().map(|s| s.to_vec()))
            .map_err(|e| Error::tract(&self.path, stage(), e))?;
        Ok(values)
    }

    /// The label plan of a request: `class` for conditional models, balanced when `None`.
    pub fn labels_for(&self, class: Option<usize>) -> Result<Labels> {
        let classes = self.info.classes.len();
        match (classes, class) {
            (0, None) => Ok(Labels::None),
            (0, Some(_)) => Err(Error::NotConditional),
            (_, Some(c)) if c >= classes => Err(Error::ClassOutOfRange { class: c, classes }),
            (_, Some(c)) => Ok(Labels::Fixed(c)),
            (_, None) => Ok(Labels::Balanced { classes }),
        }
    }

    /// Generates `count` images from `seed` and hands them to `sink` batch by batch (so a large
    /// data set never sits in memory). Conditional models draw `class`, or all classes in turn
    /// (sample `i` gets class `i % classes`) when `class` is `None`. Noise: [`crate::noise`].
    pub fn generate_batches(
        &self,
        count: usize,
        class: Option<usize>,
        seed: u64,
        mut sink: impl FnMut(Samples) -> Result<()>,
    ) -> Result<()> {
        if count == 0 {
            return Err(Error::ZeroCount);
        }
        let labels = self.labels_for(class)?;
        let z_dim = self.info.z_dim;
        let mut stream = NoiseStream::new(seed);
        let mut first = 0;
        while first < count {
            let n = self.batch.min(count - first);
            let mut z = vec![0.0; n * z_dim];
            stream.fill(&mut z);
            let batch_labels: Option<Vec<usize>> = (0..n)
                .map(|i| labels.label(first + i))
                .collect::<Option<Vec<_>>>();
            let as_i64: Option<Vec<i64>> = batch_labels
                .as_ref()
                .map(|l| l.iter().map(|c| *c as i64).collect());
            let pixels = self.run(&z, as_i64.as_deref())?;
            sink(Samples {
                shape: self.info.image,
                first,
                pixels,
                labels: batch_labels,
            })?;
            first += n;
        }
        Ok(())
    }

    /// Generates `count` images from `seed` at once; see [`Generator::generate_batches`].
    pub fn generate(&self, count: usize, class: Option<usize>, seed: u64) -> Result<Samples> {
        let mut all = Samples {
            shape: self.info.image,
            first: 0,
            pixels: Vec::with_capacity(count * self.info.image.numel()),
            labels: self.info.is_conditional().then(Vec::new),
        };
        self.generate_batches(count, class, seed, |batch| {
            all.pixels.extend_from_slice(&batch.pixels);
            if let (Some(all), Some(b)) = (all.labels.as_mut(), batch.labels) {
                all.extend(b);
            }
            Ok(())
        })?;
        Ok(all)
    }
}

/// Checks `z` and `labels` against the model; returns the batch size.
pub(crate) fn check_inputs(info: &ModelInfo, z: &[f32], labels: Option<&[i64]>) -> Result<usize> {
    if z.is_empty() || !z.len().is_multiple_of(info.z_dim) {
        return Err(Error::Input {
            reason: format!(
                "z has {} values, not a positive multiple of z_dim {}",
                z.len(),
                info.z_dim
            ),
        });
    }
    let batch = z.len() / info.z_dim;
    match (info.is_conditional(), labels) {
        (false, None) => {}
        (false, Some(_)) => return Err(Error::NotConditional),
        (true, None) => {
            return Err(Error::Input {
                reason: "the model is conditional: give one label per sample".into(),
            });
        }
        (true, Some(l)) => {
            if l.len() != batch {
                return Err(Error::Input {
                    reason: format!("{} labels for a batch of {batch}", l.len()),
                });
            }
            let classes = info.classes.len();
            if let Some(bad) = l.iter().find(|c| **c < 0) {
                return Err(Error::Input {
                    reason: format!("label {bad} is negative"),
                });
            }
            if let Some(bad) = l.iter().find(|c| **c as usize >= classes) {
                return Err(Error::ClassOutOfRange {
                    class: *bad as usize,
                    classes,
                });
            }
        }
    }
    Ok(batch)
}
