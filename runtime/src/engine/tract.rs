//! Running a generator with tract: load and check an ONNX file, then turn seeds into images.
//!
//! tract optimises a graph for the shapes it knows; a plan compiled for a fixed batch size runs
//! faster than one compiled for a symbolic batch `N` (1.1-1.9x at batch 1, 1.03-1.2x at batch
//! 64 in `docs/BENCHMARKS.md`; rerun with `runtime bench --model M`). So [`Generator`] compiles
//! one plan per batch size it meets — batch 1 and its default batch at load, others (the tail
//! of a request) on first use, in milliseconds — and caches them. [`BatchMode::Symbolic`] keeps
//! a single plan for every batch instead.
//!
//! A generator runs in f32 or int8 ([`Precision`]): an int8 file (`runtime quantize`) runs in
//! int8, and [`Generator::load_with`] can quantize an f32 file in memory or time both
//! precisions on the machine at hand and keep the faster ([`Precision::Auto`]): int8 pays on
//! some CPUs and not on others (`docs/BENCHMARKS.md`). Weights stored in int8 behind
//! `DequantizeLinear` are dequantized once, at load.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use tract_linalg::multithread::{Executor, multithread_tract_scope};
use tract_onnx::prelude::*;
use tract_onnx::tract_core::ops::cnn::Deconv;
use tract_onnx::tract_core::ops::einsum::EinSum;

use crate::engine::choices::{ChoiceCache, ChoiceKey, file_digest};
use crate::error::{Error, Result};
use crate::int8::quantize::QuantizeOptions;
use crate::noise::NoiseStream;
use crate::onnx::adopt::Foreign;
use crate::onnx::decode::check_generator;
use crate::onnx::metadata::ModelInfo;
use crate::onnx::quantization::{QuantInfo, quant_info};
use crate::onnx::read::{Checked, read_checked};
use crate::onnx::{self, GraphSummary};
use crate::shape::ImageShape;

/// Kept at its earlier path: the limit on a model file (`runtime::generator::MAX_MODEL_BYTES`).
pub use crate::onnx::MAX_MODEL_BYTES;

/// The arithmetic a [`Generator`] computes with.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Precision {
    /// f32 throughout (also models with int8-stored, weight-only weights).
    F32,
    /// int8 matrix products with calibrated activations (`runtime quantize`).
    Int8,
    /// Load both, time them on this machine, keep the faster ([`Generator::auto_choice`]).
    Auto,
}

impl Precision {
    /// `f32`, `int8` or `auto`.
    pub fn name(self) -> &'static str {
        match self {
            Precision::F32 => "f32",
            Precision::Int8 => "int8",
            Precision::Auto => "auto",
        }
    }
}

impl std::fmt::Display for Precision {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// How [`Generator::load_with`] loads a model.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct LoadOptions {
    /// `None`: run the file as it is (f32 file: f32; int8 file: int8). `Some(Int8)` on an f32
    /// file quantizes it in memory with [`LoadOptions::quantize`] (the same bytes as
    /// `runtime quantize` with those options would write).
    pub precision: Option<Precision>,
    /// Settings of an in-memory quantization.
    pub quantize: QuantizeOptions,
    /// What to assume about a generator from another framework (a file without Gantry's
    /// metadata), for what its graph does not tell; see [`crate::onnx::adopt`].
    pub foreign: Foreign,
    /// Where [`Precision::Auto`] and [`Generator::with_auto_threads`] remember what they
    /// measured, per model file and machine; `None` measures at every load.
    pub choices: Option<ChoiceCache>,
}

/// What [`Precision::Auto`] measured and chose.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct AutoChoice {
    /// [`Precision::F32`] or [`Precision::Int8`].
    pub chosen: Precision,
    /// The batch size timed (the one `generate` runs).
    pub batch: usize,
    /// Median f32 time per sample, microseconds.
    pub f32_us_per_sample: f64,
    /// Median int8 time per sample, microseconds.
    pub int8_us_per_sample: f64,
    /// Whether it comes from an earlier load's measurement ([`ChoiceCache`]) rather than
    /// this one's.
    #[serde(default)]
    pub remembered: bool,
}

/// What [`Generator::with_auto_threads`] measured and chose.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ThreadChoice {
    /// The thread count kept: 1 or [`ThreadChoice::tried`].
    pub chosen: usize,
    /// The thread count timed against one.
    pub tried: usize,
    /// The batch size timed (the one `generate` runs).
    pub batch: usize,
    /// Median time per sample on one thread, microseconds.
    pub one_thread_us_per_sample: f64,
    /// Median time per sample on `tried` threads, microseconds.
    pub many_threads_us_per_sample: f64,
    /// Whether it comes from an earlier measurement ([`ChoiceCache`]).
    #[serde(default)]
    pub remembered: bool,
}

/// Wall time [`Precision::Auto`] spends timing the two precisions at load.
pub const AUTO_BUDGET: std::time::Duration = std::time::Duration::from_millis(300);

/// Largest batch [`Generator::generate`] picks by itself (see [`Generator::batch_size`]).
pub const DEFAULT_BATCH: usize = 64;

/// Bytes of intermediate tensors per run that the automatic batch size aims to stay under, so
/// a batch's working set stays in a small CPU's L2 cache (1 MiB on a Raspberry Pi 4). Measured
/// on a dcgan: per-sample time grows 1.3x from batch 2 to batch 64 as buffers leave the cache,
/// while an mlp keeps gaining up to batch 64 (docs/BENCHMARKS.md, `runtime bench --sweep`).
pub const BATCH_CACHE_BUDGET: u64 = 1 << 20;

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
        image_u8(self.image(i), self.shape)
    }
}

/// One `[C, H, W]` image in `[-1, 1]` as 8-bit pixels, channels last (`[H, W, C]`), ready for
/// PNG or IDX; see [`to_u8`].
pub fn image_u8(image: &[f32], shape: ImageShape) -> Vec<u8> {
    let ImageShape {
        channels,
        height,
        width,
    } = shape;
    let mut out = vec![0u8; image.len()];
    for c in 0..channels {
        for p in 0..height * width {
            out[p * channels + c] = to_u8(image[c * height * width + p]);
        }
    }
    out
}

/// Maps a pixel from `[-1, 1]` to `0..=255`: `round((clamp(v, -1, 1) + 1) * 127.5)` (NaN gives 0).
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
    peak_bytes: u64,
    precision: Precision,
    quantization: Option<QuantInfo>,
    auto: Option<AutoChoice>,
    /// Decluttered, batch still symbolic (`N`); each plan is specialised from it.
    model: TypedModel,
    mode: BatchMode,
    batch: usize,
    plans: Mutex<BTreeMap<usize, Plan>>,
    /// Where tract runs its matrix products: this thread, or a pool of `threads`.
    executor: Executor,
    threads: usize,
    thread_choice: Option<ThreadChoice>,
    /// Where automatic choices are remembered ([`LoadOptions::choices`]).
    choices: Option<ChoiceCache>,
    /// The model file's [`file_digest`], once a remembered choice needed it.
    digest: Option<String>,
}

impl std::fmt::Debug for Generator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Generator")
            .field("path", &self.path)
            .field("info", &self.info)
            .field("precision", &self.precision)
            .field("mode", &self.mode)
            .field("batch", &self.batch)
            .field("threads", &self.threads)
            .finish_non_exhaustive()
    }
}

impl Generator {
    /// Loads the ONNX generator at `path`, checks its signature and metadata, and compiles
    /// tract plans for batch 1 and its default batch. The model runs as stored: an f32 file in
    /// f32, an int8 file (`runtime quantize`) in int8.
    pub fn load(path: impl AsRef<Path>) -> Result<Generator> {
        Generator::load_with(path, &LoadOptions::default())
    }

    /// Loads the generator at `path` in the given precision (see [`LoadOptions`]).
    pub fn load_with_precision(path: impl AsRef<Path>, precision: Precision) -> Result<Generator> {
        Generator::load_with(
            path,
            &LoadOptions {
                precision: Some(precision),
                ..LoadOptions::default()
            },
        )
    }

    /// Loads the generator at `path` as `options` say.
    ///
    /// - `F32` on an int8 file is an error (its f32 weights are not in it).
    /// - `Int8` on an f32 file quantizes it in memory (calibration takes well under a second
    ///   for an mlp, a few seconds for a dcgan).
    /// - `Auto` on an f32 file builds both, times them on this machine for about
    ///   [`AUTO_BUDGET`] at the batch size `generate` runs, keeps the faster and logs the
    ///   choice (tracing `info`); on an int8 file it runs int8.
    pub fn load_with(path: impl AsRef<Path>, options: &LoadOptions) -> Result<Generator> {
        let path = path.as_ref();
        let Checked {
            proto,
            info,
            summary,
            ..
        } = read_checked(path, &options.foreign)?;
        let stored = quant_info(path, &info)?;
        let stored_int8 = stored.as_ref().is_some_and(QuantInfo::is_int8_compute);
        // The model file's digest, for the cache, where this load may quantize or choose.
        let quantizes = matches!(options.precision, Some(Precision::Int8 | Precision::Auto));
        let digest = match &options.choices {
            Some(_) if quantizes && !stored_int8 => Some(file_digest(path)?),
            _ => None,
        };
        let kept = options.choices.as_ref().zip(digest.as_deref());
        match options.precision {
            None => Generator::build(path, &proto, info, summary),
            Some(Precision::F32) if stored_int8 => Err(Error::Precision {
                path: path.to_path_buf(),
                problem: "the model is quantized to int8 and holds no f32 weights: load the f32 model it came from, or use precision int8".into(),
            }),
            Some(Precision::F32) => Generator::build(path, &proto, info, summary),
            Some(Precision::Int8) if stored_int8 => Generator::build(path, &proto, info, summary),
            Some(Precision::Int8) => {
                Generator::quantized(path, &proto, &info, &options.quantize, kept)
            }
            Some(Precision::Auto) if stored_int8 => {
                tracing::info!(path = %path.display(), "precision auto: the model is stored in int8 only, running int8");
                Generator::build(path, &proto, info, summary)
            }
            Some(Precision::Auto) => {
                let remembered =
                    kept.map(|(cache, digest)| (cache, precision_key(digest, &options.quantize)));
                let recorded = remembered
                    .as_ref()
                    .and_then(|(cache, key)| cache.precision(key));
                let g = match recorded {
                    Some(mut choice) => {
                        choice.remembered = true;
                        let mut g = match choice.chosen {
                            Precision::Int8 => {
                                Generator::quantized(path, &proto, &info, &options.quantize, kept)?
                            }
                            _ => Generator::build(path, &proto, info, summary)?,
                        };
                        tracing::info!(
                            path = %path.display(),
                            chosen = %choice.chosen,
                            "precision auto: {} as measured before ({:.2} us/sample int8 vs {:.2} us/sample f32 at batch {})",
                            choice.chosen,
                            choice.int8_us_per_sample,
                            choice.f32_us_per_sample,
                            choice.batch
                        );
                        g.auto = Some(choice);
                        g
                    }
                    None => {
                        let int8 =
                            Generator::quantized(path, &proto, &info, &options.quantize, kept)?;
                        let f32 = Generator::build(path, &proto, info, summary)?;
                        let g = Generator::choose(f32, int8)?;
                        if let (Some((cache, key)), Some(choice)) = (&remembered, g.auto) {
                            cache.record_precision(key, choice);
                        }
                        g
                    }
                };
                Ok(g)
            }
        }
        .map(|mut g| {
            g.choices = options.choices.clone();
            g.digest = digest;
            g
        })
    }

    /// Quantizes a decoded f32 model in memory and loads the result. With a cache (and the
    /// file's digest), an int8 model kept from an earlier load with the same settings is
    /// loaded instead, and a new one is kept.
    fn quantized(
        path: &Path,
        proto: &tract_onnx::pb::ModelProto,
        info: &ModelInfo,
        options: &QuantizeOptions,
        kept: Option<(&ChoiceCache, &str)>,
    ) -> Result<Generator> {
        let key = kept.map(|(cache, digest)| (cache, precision_key(digest, options)));
        if let Some((cache, key)) = &key
            && let Some(bytes) = cache.quantized_model(key)
        {
            match Generator::from_int8_proto(path, &bytes) {
                Ok(g) => {
                    tracing::debug!(path = %path.display(), "int8 model from the cache");
                    return Ok(g);
                }
                Err(e) => {
                    tracing::warn!(path = %path.display(), "the cached int8 model does not load ({e}); quantizing again");
                }
            }
        }
        let started = std::time::Instant::now();
        let q = crate::int8::quantize::quantize_model(path, proto, info, options)?;
        tracing::debug!(
            form = %q.info.form,
            elapsed_ms = started.elapsed().as_secs_f64() * 1e3,
            "quantized in memory"
        );
        if let Some((cache, key)) = &key {
            cache.store_quantized_model(key, &q.to_bytes());
        }
        Generator::from_proto(path, &q.proto)
    }

    /// Loads an int8 model kept in the cache (protobuf `bytes`); `path` names the f32 file.
    fn from_int8_proto(path: &Path, bytes: &[u8]) -> Result<Generator> {
        let proto: tract_onnx::pb::ModelProto =
            prost::Message::decode(bytes).map_err(|e| Error::Unsupported {
                path: path.to_path_buf(),
                reason: format!("the cached int8 model is not ONNX: {e}"),
            })?;
        let g = Generator::from_proto(path, &proto)?;
        if g.precision != Precision::Int8 {
            return Err(Error::Unsupported {
                path: path.to_path_buf(),
                reason: "the cached model is not int8".into(),
            });
        }
        Ok(g)
    }

    /// Checks a model built in memory and compiles it; `path` names its source.
    fn from_proto(path: &Path, proto: &tract_onnx::pb::ModelProto) -> Result<Generator> {
        let info =
            ModelInfo::from_props(&proto.metadata_props).map_err(|source| Error::Metadata {
                path: path.to_path_buf(),
                error: source,
            })?;
        let summary = check_generator(path, proto, &info)?;
        Generator::build(path, proto, info, summary)
    }

    /// Times `f32` and `int8` alternately and keeps the faster.
    fn choose(f32: Generator, int8: Generator) -> Result<Generator> {
        let batch = f32.batch;
        let [a, b] = f32.alternate(|way, z, labels| [&f32, &int8][way].run(z, labels))?;
        let chosen = if b < a {
            Precision::Int8
        } else {
            Precision::F32
        };
        let choice = AutoChoice {
            chosen,
            batch,
            f32_us_per_sample: a,
            int8_us_per_sample: b,
            remembered: false,
        };
        tracing::info!(
            path = %f32.path.display(),
            chosen = %chosen,
            batch,
            f32_us_per_sample = a,
            int8_us_per_sample = b,
            "precision auto: chose {chosen} ({b:.2} us/sample int8 vs {a:.2} us/sample f32 at batch {batch})"
        );
        let mut g = if chosen == Precision::Int8 { int8 } else { f32 };
        g.auto = Some(choice);
        Ok(g)
    }

    /// Median time per sample, in microseconds, of two ways to run this model — `run(0, …)`
    /// and `run(1, …)` on the same noise at `self`'s batch size — timed alternately for
    /// about [`AUTO_BUDGET`] (at least five runs each, after one untimed run).
    fn alternate(
        &self,
        run: impl Fn(usize, &[f32], Option<&[i64]>) -> Result<Vec<f32>>,
    ) -> Result<[f64; 2]> {
        let batch = self.batch;
        let z = crate::noise::noise(batch, self.info.z_dim, 0);
        let classes = self.info.classes.len();
        let labels: Option<Vec<i64>> =
            (classes > 0).then(|| (0..batch).map(|i| (i % classes) as i64).collect());
        for way in 0..2 {
            run(way, &z, labels.as_deref())?;
        }
        let started = std::time::Instant::now();
        let mut times = [Vec::new(), Vec::new()];
        while times[0].len() < 5 || (started.elapsed() < AUTO_BUDGET && times[0].len() < 1000) {
            for (way, t) in times.iter_mut().enumerate() {
                let t0 = std::time::Instant::now();
                std::hint::black_box(run(way, &z, labels.as_deref())?);
                t.push(t0.elapsed());
            }
        }
        Ok(times.map(|mut t| {
            t.sort();
            t[t.len() / 2].as_secs_f64() * 1e6 / batch as f64
        }))
    }

    /// Runs on one thread or on `threads`, whichever this machine runs faster at the batch
    /// `generate` uses: both are timed alternately for about [`AUTO_BUDGET`] (the output is
    /// the same either way). Small generators often run faster on one thread.
    ///
    /// With a [`ChoiceCache`] ([`LoadOptions::choices`]) the choice is measured once per
    /// model file, thread count, batch size and machine, and remembered.
    pub fn with_auto_threads(self, threads: usize) -> Result<Generator> {
        let many = self.with_threads(threads)?;
        if threads == 1 {
            return Ok(many);
        }
        let digest = match (&many.choices, &many.digest) {
            (Some(_), Some(digest)) => Some(digest.clone()),
            (Some(_), None) => Some(file_digest(&many.path)?),
            (None, _) => None,
        };
        let key = digest.map(|digest| {
            let question = format!(
                "threads {threads} batch {} precision {}",
                many.batch, many.precision
            );
            ChoiceKey::new(&digest, &question)
        });
        let recorded = many
            .choices
            .as_ref()
            .zip(key.as_ref())
            .and_then(|(cache, key)| cache.threads(key))
            .filter(|c| c.chosen == 1 || c.chosen == threads);
        let choice = match recorded {
            Some(mut choice) => {
                choice.remembered = true;
                choice
            }
            None => {
                let executors = [Executor::SingleThread, many.executor.clone()];
                let [one, all] =
                    many.alternate(|way, z, labels| many.run_on(&executors[way], z, labels))?;
                let choice = ThreadChoice {
                    chosen: if all < one { threads } else { 1 },
                    tried: threads,
                    batch: many.batch,
                    one_thread_us_per_sample: one,
                    many_threads_us_per_sample: all,
                    remembered: false,
                };
                if let (Some(cache), Some(key)) = (&many.choices, &key) {
                    cache.record_threads(key, choice);
                }
                choice
            }
        };
        let (one, all) = (
            choice.one_thread_us_per_sample,
            choice.many_threads_us_per_sample,
        );
        tracing::info!(
            path = %many.path.display(),
            chosen = choice.chosen,
            "threads auto: chose {} ({all:.2} us/sample on {threads} threads vs {one:.2} on 1 at batch {})",
            choice.chosen,
            choice.batch
        );
        let mut chosen = if choice.chosen == 1 {
            many.with_threads(1)?
        } else {
            many
        };
        chosen.thread_choice = Some(choice);
        Ok(chosen)
    }

    /// What [`Generator::with_auto_threads`] measured, when it chose.
    pub fn thread_choice(&self) -> Option<&ThreadChoice> {
        self.thread_choice.as_ref()
    }

    /// Where automatic choices are remembered ([`LoadOptions::choices`]).
    pub fn choice_cache(&self) -> Option<&ChoiceCache> {
        self.choices.as_ref()
    }

    /// Compiles a checked model.
    fn build(
        path: &Path,
        proto: &tract_onnx::pb::ModelProto,
        info: ModelInfo,
        summary: GraphSummary,
    ) -> Result<Generator> {
        let quantization = quant_info(path, &info)?;
        let precision = if quantization
            .as_ref()
            .is_some_and(QuantInfo::is_int8_compute)
        {
            Precision::Int8
        } else {
            Precision::F32
        };
        let proto = crate::onnx::import::fold_weight_dequantization(path, proto)?;
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
            peak_bytes: 0,
            precision,
            quantization,
            auto: None,
            model,
            mode: BatchMode::Fixed,
            batch: 1,
            plans: Mutex::new(BTreeMap::new()),
            executor: Executor::SingleThread,
            threads: 1,
            thread_choice: None,
            choices: None,
            digest: None,
        };
        generator.macs_per_sample = generator.count_macs()?;
        let one = generator.plan(1)?;
        generator.peak_bytes = peak_tensor_bytes(one.lock().expect("plan poisoned").model());
        generator.batch = auto_batch(generator.peak_bytes);
        generator.prepare()?;
        tracing::debug!(path = %path.display(), precision = %precision, "loaded generator");
        Ok(generator)
    }

    /// The arithmetic this generator runs: [`Precision::F32`] or [`Precision::Int8`].
    pub fn precision(&self) -> Precision {
        self.precision
    }

    /// The quantization record of an int8 or weight-only model.
    pub fn quantization(&self) -> Option<&QuantInfo> {
        self.quantization.as_ref()
    }

    /// What [`Precision::Auto`] measured, when it chose this generator.
    pub fn auto_choice(&self) -> Option<&AutoChoice> {
        self.auto.as_ref()
    }

    /// Largest intermediate tensor of one sample in the optimised batch-1 plan, in bytes.
    pub fn peak_tensor_bytes(&self) -> u64 {
        self.peak_bytes
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

    /// Runs tract's matrix products and large element-wise ops on `threads` threads (1: the
    /// calling thread only, the default). tract splits a product on panel boundaries and
    /// keeps every sum's order, so the output is bit-identical for any count; small
    /// products stay on one thread. On a 4-core Raspberry Pi, `generate --threads 4` is
    /// the way to use the other cores.
    pub fn with_threads(mut self, threads: usize) -> Result<Generator> {
        self.executor = match threads {
            0 => {
                return Err(Error::Input {
                    reason: "the thread count must be at least 1".into(),
                });
            }
            1 => Executor::SingleThread,
            n => {
                let pool = rayon::ThreadPoolBuilder::new()
                    .num_threads(n)
                    .thread_name(|i| format!("gantry-tract-{i}"))
                    .build()
                    .map_err(|e| Error::Input {
                        reason: format!("cannot start {n} threads for tract: {e}"),
                    })?;
                Executor::MultiThread(Arc::new(pool))
            }
        };
        self.threads = threads;
        Ok(self)
    }

    /// Threads tract runs on (see [`Generator::with_threads`]).
    pub fn threads(&self) -> usize {
        self.threads
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

    /// The batch size `generate` runs: by default the largest power of two up to
    /// [`DEFAULT_BATCH`] whose intermediate tensors fit [`BATCH_CACHE_BUDGET`].
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
                let (Some(input), Some(weight)) = (facts.first(), facts.get(1)) else {
                    continue;
                };
                let kernel = weight.shape.volume().to_i64().unwrap_or(0);
                let shape = deconv
                    .pool_spec
                    .data_format
                    .shape(input.shape.to_tvec())
                    .map_err(|e| {
                        Error::tract(&self.path, format!("read the shape of {}", node.name), e)
                    })?;
                let pixels: i64 = shape
                    .hw_dims()
                    .iter()
                    .map(|d| d.to_i64().unwrap_or(0))
                    .fold(1i64, i64::saturating_mul);
                macs = macs.saturating_add(kernel.saturating_mul(pixels));
            } else if node.op_is::<EinSum>()
                || node.op_is::<tract_onnx::tract_core::ops::cnn::Conv>()
            {
                let cost = node
                    .op
                    .cost(&facts)
                    .map_err(|e| Error::tract(&self.path, "count operations", e))?;
                for (kind, count) in cost {
                    if let tract_onnx::tract_core::ops::Cost::FMA(_) = kind {
                        macs = macs.saturating_add(count.to_i64().unwrap_or(0));
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
        self.run_on(&self.executor, z, labels)
    }

    /// [`Generator::run`] with tract's products on `executor`.
    fn run_on(&self, executor: &Executor, z: &[f32], labels: Option<&[i64]>) -> Result<Vec<f32>> {
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
        let outputs = multithread_tract_scope(executor.clone(), || {
            plan.lock().expect("plan poisoned").run(inputs)
        })
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
        let mut stream = NoiseStream::new(seed, z_dim);
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

/// Largest output (constants excluded) of any node, in bytes.
fn peak_tensor_bytes(model: &TypedModel) -> u64 {
    use tract_onnx::tract_core::ops::konst::Const;
    model
        .nodes()
        .iter()
        .filter(|n| !n.op_is::<Const>())
        .flat_map(|n| n.outputs.iter())
        .filter_map(|o| {
            let shape = o.fact.shape.as_concrete()?;
            Some(
                shape
                    .iter()
                    .fold(o.fact.datum_type.size_of() as u64, |n, d| {
                        n.saturating_mul(*d as u64)
                    }),
            )
        })
        .max()
        .unwrap_or(0)
}

/// The largest power of two up to [`DEFAULT_BATCH`] with `batch * peak <= BATCH_CACHE_BUDGET`.
/// The [`ChoiceKey`] of [`Precision::Auto`] for the model with `digest`, quantized with `q`.
fn precision_key(digest: &str, q: &QuantizeOptions) -> ChoiceKey {
    ChoiceKey::new(
        digest,
        &format!(
            "precision auto: samples {} seed {} method {:?} form {}",
            q.samples, q.seed, q.method, q.form
        ),
    )
}

fn auto_batch(peak: u64) -> usize {
    let mut batch = 1;
    while batch * 2 <= DEFAULT_BATCH && (batch as u64 * 2) * peak <= BATCH_CACHE_BUDGET {
        batch *= 2;
    }
    batch
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

// A generator can be shared between threads (each plan is locked while it runs).
const _: () = {
    const fn is_send_sync<T: Send + Sync>() {}
    is_send_sync::<Generator>();
};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auto_batch_keeps_a_batch_within_the_cache_budget() {
        assert_eq!(auto_batch(0), DEFAULT_BATCH);
        assert_eq!(auto_batch(3_136), DEFAULT_BATCH); // mlp: one 784-float row
        assert_eq!(auto_batch(451_584), 2); // dcgan: 64x9 deconv columns over 14x14 pixels
        assert_eq!(auto_batch(BATCH_CACHE_BUDGET / 8), 8);
        assert_eq!(auto_batch(BATCH_CACHE_BUDGET + 1), 1);
    }

    #[test]
    fn pixels_map_to_bytes_with_rounding_and_clamping() {
        assert_eq!(
            [to_u8(-1.0), to_u8(0.0), to_u8(1.0), to_u8(-3.0), to_u8(7.0)],
            [0, 128, 255, 0, 255]
        );
        assert_eq!(to_u8(f32::NAN), 0);
    }
}
