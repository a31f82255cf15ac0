//! Post-training static int8 quantization of an exported generator (`runtime quantize`).
//!
//! A Raspberry Pi has little memory and no GPU, so the runtime can run a generator in int8.
//! The scheme, recorded in the file's metadata ([`keys::QUANTIZATION`], [`QuantInfo`]):
//!
//! - **Weights** of Dense and ConvTranspose2d layers: int8 in `[-127, 127]`, symmetric, one
//!   scale per output channel, `scale[c] = max |W[.., c]| / 127`.
//! - **Activations** entering each Dense layer (and, in [`Form::Integer`], each transposed
//!   convolution of a [`ConvForm`], clipped at its [`CONV_PERCENTILE`]th percentile under
//!   min/max calibration): int8 in `[-128, 127]`, asymmetric, one scale
//!   and zero point per tensor, calibrated on the generator's own activations for
//!   [`QuantizeOptions::samples`] seeded `z` ([`crate::noise`], sample `i` of a conditional model
//!   gets label `i % classes`): [`CalibrationMethod::MinMax`], or
//!   [`CalibrationMethod::Percentile`] to ignore rare outliers. Each range is widened to
//!   include 0, as in `firmware::quantize`.
//! - **Biases**: int32 with scale `input_scale * weight_scale[c]`.
//!
//! The file is standard ONNX (opset 17) that tract and ONNX Runtime both load, in one of the
//! [`Form`]s. Which form is fastest depends on the engine and the CPU (`docs/BENCHMARKS.md`,
//! `runtime bench --form F`): in tract, [`Form::Integer`] (the default) ran 1.8-2.6x faster
//! than f32 on aarch64 (under qemu) while [`Form::Qdq`] ran at f32 speed and [`Form::Qlinear`]
//! in between; on x86 tract's f32 kernels beat all int8 forms, so `--precision auto` keeps f32
//! there. ONNX Runtime is fastest with [`Form::Qdq`], which it fuses into its int8 kernels.
//! ONNX has no integer transposed convolution, but the dcgan's 3x3 ones are convolutions in
//! disguise: one of stride 1 is a Conv with the kernel flipped and transposed, and one of
//! stride 2 (padding 1, output padding 1) is a 2x2 Conv that computes the four output phases
//! as `4 * c_out` channels, interleaved by `DepthToSpace` (16 taps where 9 are non-zero, but
//! no zero-stuffed input). In [`Form::Integer`] those layers become
//! `QuantizeLinear` (uint8, the same grid as the int8 codes) → `ConvInteger` → `Cast` →
//! `Mul` → `Add` (f32 bias) [→ `DepthToSpace`] ([`ConvForm`]): in tract under qemu-aarch64
//! 1.9x the f32 throughput of the shipped dcgans, and far slower than f32 on x86
//! (`docs/BENCHMARKS.md`), hence `--precision auto`. Other transposed convolutions, and every
//! one in the other forms, keep f32 compute with int8-stored weights that are dequantized at
//! load. [`Form::WeightOnly`] does that for every layer: a 4x smaller file for memory-poor
//! devices, f32 speed and nearly f32 output.

use std::collections::BTreeMap;
use std::path::Path;

use tract_onnx::pb::tensor_proto::DataType;
use tract_onnx::pb::{ModelProto, TensorProto};
use tract_onnx::prelude::*;

use crate::error::{Error, Result};
use crate::noise::{NOISE_ALGORITHM, noise};
use crate::onnx::metadata::{ModelInfo, keys};
use crate::onnx::spec::{ConvTranspose2d, Dense, GeneratorSpec, Layer};
use crate::onnx::write::{
    self, GraphParts, Lowering, attr_int, attr_ints, node, tensor_f32, tensor_i8, tensor_i32,
};
use crate::onnx::{self, read::read_checked};

/// The record `runtime quantize` writes into the file, at its earlier path.
pub use crate::onnx::quantization::{
    ActivationQuant, CalibrationMethod, CalibrationRecord, Form, LayerRecord, QuantInfo,
    SCHEME_VERSION,
};

/// Calibration samples used unless told otherwise.
pub const DEFAULT_SAMPLES: usize = 2000;
/// Percentile used by `--method percentile` unless told otherwise.
pub const DEFAULT_PERCENTILE: f64 = 99.99;
/// Percentile at which a transposed convolution's input is clipped under min/max calibration
/// ([`Form::Integer`]; see `conv_quant`).
pub const CONV_PERCENTILE: f64 = 99.9;
/// Values kept per tensor for percentiles; beyond it every k-th value is kept (deterministic).
const PERCENTILE_CAP: usize = 1 << 22;
/// Samples per calibration run.
const CALIBRATION_BATCH: usize = 32;

/// Settings of [`quantize_file`] / [`quantize_spec`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct QuantizeOptions {
    /// Calibration samples (at least 1; ignored by [`Form::WeightOnly`]).
    pub samples: usize,
    /// Noise seed of the calibration samples.
    pub seed: u64,
    /// Range selection.
    pub method: CalibrationMethod,
    /// ONNX form of the int8 layers.
    pub form: Form,
}

impl Default for QuantizeOptions {
    fn default() -> Self {
        QuantizeOptions {
            samples: DEFAULT_SAMPLES,
            seed: 0,
            method: CalibrationMethod::MinMax,
            form: Form::default(),
        }
    }
}

/// The int8 form of one Dense layer.
#[derive(Clone, Debug, PartialEq)]
pub struct DenseQuant {
    /// Layer index in the spec.
    pub layer: usize,
    /// Quantization of the layer's input.
    pub input: ActivationQuant,
    /// Quantization of `x W` (bias excluded), used by [`Form::Qlinear`] only.
    pub product: Option<ActivationQuant>,
    /// `[in, out]` row-major codes.
    pub weight: Vec<i8>,
    /// One scale per output.
    pub weight_scale: Vec<f32>,
    /// int32 biases, scale `input.scale * weight_scale[c]`.
    pub bias: Option<Vec<i32>>,
    /// The f32 biases (what [`Form::Qlinear`] adds after dequantizing).
    pub bias_f32: Option<Vec<f32>>,
}

/// A quantized generator, ready to be written or loaded.
#[derive(Clone, Debug)]
pub struct Quantized {
    /// The ONNX model.
    pub proto: ModelProto,
    /// What was done (also in the model's metadata).
    pub info: QuantInfo,
    /// The int8 parameters of each Dense layer (empty for [`Form::WeightOnly`]).
    pub dense: Vec<DenseQuant>,
    /// The int8 parameters of each transposed convolution computed in int8 ([`Form::Integer`]
    /// only).
    pub convs: Vec<ConvQuant>,
}

/// How a transposed convolution becomes a convolution that has an integer kernel.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConvForm {
    /// 3x3, stride 1, padding 1: a 3x3 Conv with the kernel flipped and transposed.
    Flipped,
    /// 3x3, stride 2, padding 1, output padding 1: a 2x2 Conv (padded after by 1) giving the
    /// four output phases as channels, then `DepthToSpace` (block 2, DCR).
    Subpixel,
}

impl ConvForm {
    /// The form of `conv`, if it has one.
    pub fn of(conv: &ConvTranspose2d) -> Option<ConvForm> {
        let plain = conv.kernel == [3, 3] && conv.padding == [1, 1];
        match (conv.stride, conv.output_padding) {
            ([1, 1], [0, 0]) if plain => Some(ConvForm::Flipped),
            ([2, 2], [1, 1]) if plain => Some(ConvForm::Subpixel),
            _ => None,
        }
    }

    /// The convolution's `[c_out', c_in, k, k]` f32 kernel, `k` and its `pads` for `conv`.
    fn kernel(self, conv: &ConvTranspose2d) -> (Vec<f32>, usize, [usize; 4]) {
        let (c_in, c_out) = (conv.c_in, conv.c_out);
        let w = |i: usize, o: usize, ky: usize, kx: usize| {
            conv.weight[((i * c_out + o) * 3 + ky) * 3 + kx]
        };
        match self {
            ConvForm::Flipped => {
                let mut k = vec![0f32; c_out * c_in * 9];
                for o in 0..c_out {
                    for i in 0..c_in {
                        for ky in 0..3 {
                            for kx in 0..3 {
                                k[((o * c_in + i) * 3 + ky) * 3 + kx] = w(i, o, 2 - ky, 2 - kx);
                            }
                        }
                    }
                }
                (k, 3, [1, 1, 1, 1])
            }
            ConvForm::Subpixel => {
                // Output row 2m + r reads kernel row ky at input row m + dy, for (ky, dy) in
                // TAPS[r] (padding 1): out[2m] = x[m] w[1], out[2m+1] = x[m] w[2] + x[m+1] w[0].
                const TAPS: [&[(usize, usize)]; 2] = [&[(1, 0)], &[(2, 0), (0, 1)]];
                let mut k = vec![0f32; 4 * c_out * c_in * 4];
                for (pr, rows) in TAPS.iter().enumerate() {
                    for (pc, cols) in TAPS.iter().enumerate() {
                        for &(ky, dy) in *rows {
                            for &(kx, dx) in *cols {
                                for o in 0..c_out {
                                    let channel = (pr * 2 + pc) * c_out + o;
                                    for i in 0..c_in {
                                        k[((channel * c_in + i) * 2 + dy) * 2 + dx] =
                                            w(i, o, ky, kx);
                                    }
                                }
                            }
                        }
                    }
                }
                (k, 2, [0, 0, 1, 1])
            }
        }
    }
}

/// A transposed convolution computed in int8 ([`Form::Integer`]), as the convolution of its
/// [`ConvForm`].
#[derive(Clone, Debug, PartialEq)]
pub struct ConvQuant {
    /// Layer index in the spec.
    pub layer: usize,
    /// The convolution it becomes.
    pub form: ConvForm,
    /// Quantization of the layer's input.
    pub input: ActivationQuant,
    /// The convolution's `[channels, c_in, kernel, kernel]` codes.
    pub weight: Vec<i8>,
    /// One scale per convolution output channel.
    pub weight_scale: Vec<f32>,
    /// Convolution output channels (`c_out`, or `4 * c_out` for [`ConvForm::Subpixel`]).
    pub channels: usize,
    /// Kernel size (3, or 2 for [`ConvForm::Subpixel`]).
    pub kernel: usize,
    /// ONNX `pads` (begin, begin, end, end).
    pub pads: [usize; 4],
    /// One f32 bias per convolution output channel.
    pub bias: Vec<f32>,
}

impl Quantized {
    /// The ONNX protobuf bytes.
    pub fn to_bytes(&self) -> Vec<u8> {
        prost::Message::encode_to_vec(&self.proto)
    }

    /// Writes the ONNX file atomically.
    pub fn write(&self, path: &Path) -> Result<()> {
        crate::fsutil::write_atomic(path, &self.to_bytes()).map_err(|source| Error::Write {
            path: path.to_path_buf(),
            error: source,
        })
    }
}

/// Quantizes the f32 generator at `path` (see the module docs). Files already quantized to int8
/// compute are refused; weight-only files are read back to f32 and quantized again.
pub fn quantize_file(path: &Path, options: &QuantizeOptions) -> Result<Quantized> {
    quantize_foreign_file(path, &crate::onnx::adopt::Foreign::default(), options)
}

/// [`quantize_file`] with what to assume about a generator from another framework (see
/// [`crate::onnx::adopt`]); the int8 file keeps the adoption record.
pub fn quantize_foreign_file(
    path: &Path,
    foreign: &crate::onnx::adopt::Foreign,
    options: &QuantizeOptions,
) -> Result<Quantized> {
    let checked = read_checked(path, foreign)?;
    quantize_model(path, &checked.proto, &checked.info, options)
}

/// [`quantize_file`] on a decoded model; `path` names it in errors.
pub(crate) fn quantize_model(
    path: &Path,
    proto: &ModelProto,
    info: &ModelInfo,
    options: &QuantizeOptions,
) -> Result<Quantized> {
    match QuantInfo::from_info(info) {
        Ok(Some(q)) if q.is_int8_compute() => {
            return Err(Error::Unsupported {
                path: path.to_path_buf(),
                reason: format!(
                    "the model is already quantized to int8 ({} form); its f32 weights are not in it: quantize the f32 model it came from",
                    q.form
                ),
            });
        }
        Err(problem) => {
            return Err(Error::Unsupported {
                path: path.to_path_buf(),
                reason: problem,
            });
        }
        _ => {}
    }
    let spec = crate::onnx::import::spec_from_model(path, proto, info)?;
    quantize_spec(&spec, path, options)
}

fn check_options(path: &Path, options: &QuantizeOptions) -> Result<()> {
    let bad = |problem: String| Error::Calibration {
        path: path.to_path_buf(),
        problem,
    };
    if options.form.is_int8_compute() && options.samples == 0 {
        return Err(bad(
            "0 samples: activation ranges need at least 1 (--calibration-samples, default 2000)"
                .into(),
        ));
    }
    if let CalibrationMethod::Percentile { percentile } = options.method
        && !(percentile > 50.0 && percentile <= 100.0)
    {
        return Err(bad(format!(
            "percentile {percentile} must be within (50, 100], e.g. 99.99"
        )));
    }
    Ok(())
}

/// Symmetric per-output-channel int8 codes of `weight`, where `channel(i)` is the output
/// channel of value `i`; returns the codes and one scale per channel.
fn quantize_weights(
    weight: &[f32],
    channels: usize,
    channel: impl Fn(usize) -> usize,
) -> (Vec<i8>, Vec<f32>) {
    let mut max = vec![0f32; channels];
    for (i, w) in weight.iter().enumerate() {
        let c = channel(i);
        max[c] = max[c].max(w.abs());
    }
    let scale: Vec<f32> = max
        .iter()
        .map(|m| if *m > 0.0 { m / 127.0 } else { 1.0 })
        .collect();
    let codes = weight
        .iter()
        .enumerate()
        .map(|(i, w)| (w / scale[channel(i)]).round().clamp(-127.0, 127.0) as i8)
        .collect();
    (codes, scale)
}

/// Running statistics of one calibrated tensor.
struct Stats {
    min: f32,
    max: f32,
    values: Vec<f32>,
    keep: bool,
    stride: usize,
    seen: usize,
    non_finite: bool,
}

impl Stats {
    fn new(keep: bool, total: usize) -> Stats {
        Stats {
            min: f32::INFINITY,
            max: f32::NEG_INFINITY,
            values: Vec::new(),
            keep,
            stride: total.div_ceil(PERCENTILE_CAP).max(1),
            seen: 0,
            non_finite: false,
        }
    }

    fn add(&mut self, v: f32) {
        if !v.is_finite() {
            self.non_finite = true;
            return;
        }
        self.min = self.min.min(v);
        self.max = self.max.max(v);
        if self.keep && self.seen.is_multiple_of(self.stride) {
            self.values.push(v);
        }
        self.seen += 1;
    }

    fn range(mut self, method: CalibrationMethod) -> [f32; 2] {
        match method {
            CalibrationMethod::MinMax => [self.min, self.max],
            CalibrationMethod::Percentile { percentile } => {
                let n = self.values.len();
                if n == 0 {
                    return [0.0, 0.0];
                }
                let q = percentile / 100.0;
                let lo = (((1.0 - q) * (n - 1) as f64).floor() as usize).min(n - 1);
                let hi = ((q * (n - 1) as f64).ceil() as usize).min(n - 1);
                let v = &mut self.values;
                let low = *v.select_nth_unstable_by(lo, f32::total_cmp).1;
                let high = *v.select_nth_unstable_by(hi, f32::total_cmp).1;
                [low, high]
            }
        }
    }
}

/// The codes and per-output scales of a Dense layer's `[in, out]` weight.
fn dense_weight_codes(dense: &Dense) -> (Vec<i8>, Vec<f32>) {
    let cols = dense.weight.cols;
    quantize_weights(&dense.weight.data, cols, |i| i % cols)
}

/// The codes and per-output-channel scales of a transposed convolution's
/// `[c_in, c_out, kh, kw]` weight.
fn conv_weight_codes(conv: &ConvTranspose2d) -> (Vec<i8>, Vec<f32>) {
    let (c_out, taps) = (conv.c_out, conv.kernel[0] * conv.kernel[1]);
    quantize_weights(&conv.weight, c_out, |k| (k / taps) % c_out)
}

/// The input tensor of layer `index`.
fn layer_input_name(spec: &GeneratorSpec, index: usize) -> String {
    if index == 0 {
        write::first_input_name(spec).to_string()
    } else {
        write::layer_output_name(spec, index - 1)
    }
}

/// A tensor that calibration observes, and the statistics of its values.
struct Observed {
    /// The tensor's name in the f32 graph.
    tensor: String,
    /// What was seen.
    stats: Stats,
}

/// The weights of a layer under calibration.
enum Weighted<'a> {
    /// A Dense layer.
    Dense(&'a Dense),
    /// A transposed convolution of a [`ConvForm`].
    Conv(&'a ConvTranspose2d, ConvForm),
}

/// One layer under calibration.
struct LayerCalibration<'a> {
    /// Layer index in the spec.
    layer: usize,
    /// The layer.
    weights: Weighted<'a>,
    /// Its input.
    input: Observed,
    /// Its output, recorded as `x W` without the bias ([`Form::Qlinear`] only).
    product: Option<Observed>,
}

/// Runs the f32 generator on the calibration noise and returns, for each Dense layer (and,
/// in [`Form::Integer`], each transposed convolution of a [`ConvForm`]), the statistics of
/// its input and (Dense in [`Form::Qlinear`]) of `x W` without the bias.
fn calibrate<'a>(
    path: &Path,
    spec: &'a GeneratorSpec,
    options: &QuantizeOptions,
) -> Result<Vec<LayerCalibration<'a>>> {
    let mut layers = calibrated_layers(spec, options)?;
    let CalibrationGraph { model, outputs } = calibration_graph(path, spec, &layers)?;
    let tract_err = |stage: &str, e: TractError| Error::tract(path, stage, e);
    let z_dim = spec.z_dim;
    let classes = spec.classes.len();
    let z_all = noise(options.samples, z_dim, options.seed);
    let mut first = 0;
    while first < options.samples {
        let n = CALIBRATION_BATCH.min(options.samples - first);
        let z = &z_all[first * z_dim..(first + n) * z_dim];
        let mut inputs: TVec<TValue> = tvec![
            Tensor::from_shape(&[n, z_dim], z)
                .map_err(|e| tract_err("build the z tensor", e))?
                .into()
        ];
        if classes > 0 {
            let labels: Vec<i64> = (first..first + n).map(|s| (s % classes) as i64).collect();
            inputs.push(
                Tensor::from_shape(&[n], &labels)
                    .map_err(|e| tract_err("build the label tensor", e))?
                    .into(),
            );
        }
        let results = model
            .run(inputs)
            .map_err(|e| tract_err("run the calibration batch", e))?;
        let batch = CalibrationBatch {
            path,
            z,
            outputs: &outputs,
            results: &results,
        };
        for layer in &mut layers {
            batch.observe(layer)?;
        }
        first += n;
    }
    for c in &layers {
        if c.input.stats.non_finite || c.product.as_ref().is_some_and(|o| o.stats.non_finite) {
            return Err(Error::Calibration {
                path: path.to_path_buf(),
                problem: format!(
                    "the f32 model produces NaN or infinite activations around layer {}; check the model with `runtime generate`",
                    c.layer
                ),
            });
        }
    }
    Ok(layers)
}

/// Step 1 of [`calibrate`]: the layers of `spec` computed in int8, each with empty
/// statistics for its input and (Dense in [`Form::Qlinear`]) its output.
fn calibrated_layers<'a>(
    spec: &'a GeneratorSpec,
    options: &QuantizeOptions,
) -> Result<Vec<LayerCalibration<'a>>> {
    let keep = matches!(options.method, CalibrationMethod::Percentile { .. });
    let shapes = spec.shapes()?;
    let layers = spec.layers.iter().enumerate().filter_map(|(i, l)| match l {
        Layer::Dense(dense) => Some((i, Weighted::Dense(dense))),
        Layer::ConvTranspose2d(conv) if options.form == Form::Integer => {
            ConvForm::of(conv).map(|form| (i, Weighted::Conv(conv, form)))
        }
        _ => None,
    });
    Ok(layers
        .map(|(i, weights)| {
            let qlinear = options.form == Form::Qlinear && matches!(weights, Weighted::Dense(_));
            // Convolution inputs keep a sample of their values for their percentile.
            let keep = keep || matches!(weights, Weighted::Conv(..));
            LayerCalibration {
                layer: i,
                weights,
                input: Observed {
                    tensor: layer_input_name(spec, i),
                    stats: Stats::new(keep, shapes[i].numel() * options.samples),
                },
                product: qlinear.then(|| Observed {
                    tensor: write::layer_output_name(spec, i),
                    stats: Stats::new(keep, shapes[i + 1].numel() * options.samples),
                }),
            }
        })
        .collect())
}

/// The f32 generator compiled for calibration.
struct CalibrationGraph {
    /// The compiled graph.
    model: Arc<TypedRunnableModel>,
    /// Its outputs: `image`, then every observed tensor but `z`.
    outputs: Vec<String>,
}

/// Step 2 of [`calibrate`]: the f32 graph with every observed tensor as an extra output
/// (after `image`), compiled by tract.
fn calibration_graph(
    path: &Path,
    spec: &GeneratorSpec,
    layers: &[LayerCalibration<'_>],
) -> Result<CalibrationGraph> {
    let mut proto = spec.to_model_proto()?;
    let graph = proto.graph.as_mut().expect("the writer builds a graph");
    let mut outputs: Vec<String> = vec![onnx::OUTPUT_IMAGE.to_string()];
    let observed = layers
        .iter()
        .flat_map(|c| std::iter::once(&c.input).chain(&c.product));
    for Observed { tensor: name, .. } in observed {
        if name == onnx::INPUT_Z || outputs.contains(name) {
            continue;
        }
        let vi = graph
            .value_info
            .iter()
            .find(|v| &v.name == name)
            .cloned()
            .expect("the writer declares every intermediate tensor");
        graph.output.push(vi);
        outputs.push(name.clone());
    }
    let tract_err = |stage: &str, e: TractError| Error::tract(path, stage, e);
    let model = tract_onnx::onnx()
        .model_for_proto_model(&proto)
        .map_err(|e| tract_err("import the calibration graph", e))?
        .into_typed()
        .and_then(|m| m.into_decluttered())
        .and_then(|m| m.into_optimized())
        .and_then(|m| m.into_runnable())
        .map_err(|e| tract_err("compile the calibration graph", e))?;
    Ok(CalibrationGraph { model, outputs })
}

/// One calibration run: its noise and the calibration graph's outputs.
struct CalibrationBatch<'a> {
    /// The model, for errors.
    path: &'a Path,
    /// The batch's `z`.
    z: &'a [f32],
    /// Names of the graph's outputs.
    outputs: &'a [String],
    /// Their values.
    results: &'a TVec<TValue>,
}

impl CalibrationBatch<'_> {
    /// The batch's values of tensor `name` (`z` itself or a graph output).
    fn values(&self, name: &str) -> Result<Vec<f32>> {
        if name == onnx::INPUT_Z {
            return Ok(self.z.to_vec());
        }
        let k = self
            .outputs
            .iter()
            .position(|o| o == name)
            .expect("watched");
        self.results[k]
            .try_as_plain_ram()
            .and_then(|v| v.as_slice::<f32>().map(|s| s.to_vec()))
            .map_err(|e| Error::tract(self.path, "read a calibration output", e))
    }

    /// Adds this batch's values of layer `c`'s input and (bias removed) product to its
    /// statistics.
    fn observe(&self, c: &mut LayerCalibration<'_>) -> Result<()> {
        for v in self.values(&c.input.tensor)? {
            c.input.stats.add(v);
        }
        if let (Some(product), Weighted::Dense(dense)) = (&mut c.product, &c.weights) {
            let (bias, cols) = (&dense.bias, dense.weight.cols);
            for (j, v) in self.values(&product.tensor)?.iter().enumerate() {
                let b = bias.as_ref().map_or(0.0, |b| b[j % cols]);
                product.stats.add(v - b);
            }
        }
        Ok(())
    }
}

/// Quantizes `spec` (see the module docs); `source` names the model in errors.
pub fn quantize_spec(
    spec: &GeneratorSpec,
    source: &Path,
    options: &QuantizeOptions,
) -> Result<Quantized> {
    check_options(source, options)?;
    let spec = spec.fold_batch_norm().map_err(|source_err| Error::Model {
        path: source.to_path_buf(),
        error: source_err,
    })?;
    let (mut dense, mut convs) = (Vec::new(), Vec::new());
    if options.form.is_int8_compute() {
        for c in calibrate(source, &spec, options)? {
            match c.weights {
                Weighted::Dense(d) => {
                    dense.push(dense_quant(c.layer, d, c.input, c.product, options.method))
                }
                Weighted::Conv(conv, form) => {
                    convs.push(conv_quant(c.layer, conv, form, c.input, options.method));
                }
            }
        }
    }
    let info = scheme_record(options, layer_records(&spec, &dense, &convs));
    let mut lowering = QuantLowering {
        form: options.form,
        dense: dense.iter().map(|d| (d.layer, d.clone())).collect(),
        convs: convs.iter().map(|c| (c.layer, c.clone())).collect(),
    };
    let mut spec = spec;
    spec.metadata.insert(
        keys::QUANTIZATION.to_string(),
        serde_json::to_string(&info).expect("plain data serialises"),
    );
    let mut proto = write::spec_to_model_with(&spec, &mut lowering).map_err(|e| Error::Model {
        path: source.to_path_buf(),
        error: e,
    })?;
    if let Some(g) = proto.graph.as_mut() {
        g.doc_string = format!(
            "Gantry generator, int8 ({} form): z ~ N(0, 1) (and a class label) to images in [-1, 1].",
            options.form
        );
    }
    Ok(Quantized {
        proto,
        info,
        dense,
        convs,
    })
}

/// The int8 form of a calibrated Dense layer: activation ranges chosen by `method`, weight
/// codes and int32 biases.
fn dense_quant(
    layer: usize,
    dense: &Dense,
    input: Observed,
    product: Option<Observed>,
    method: CalibrationMethod,
) -> DenseQuant {
    let [lo, hi] = input.stats.range(method);
    let input = ActivationQuant::from_range(lo, hi);
    let product = product.map(|p| {
        let [lo, hi] = p.stats.range(method);
        ActivationQuant::from_range(lo, hi)
    });
    let (codes, weight_scale) = dense_weight_codes(dense);
    let bias = &dense.bias;
    let bias_q = bias.as_ref().map(|b| {
        b.iter()
            .zip(&weight_scale)
            .map(|(b, s)| {
                let q = (f64::from(*b) / (f64::from(input.scale) * f64::from(*s))).round();
                q.clamp(f64::from(i32::MIN), f64::from(i32::MAX)) as i32
            })
            .collect()
    });
    DenseQuant {
        layer,
        input,
        product,
        weight: codes,
        weight_scale,
        bias: bias_q,
        bias_f32: bias.clone(),
    }
}

/// The int8 form of a calibrated transposed convolution: its input's range chosen by
/// `method`, and the codes and per-channel scales of the convolution it becomes.
fn conv_quant(
    layer: usize,
    conv: &ConvTranspose2d,
    form: ConvForm,
    input: Observed,
    method: CalibrationMethod,
) -> ConvQuant {
    // Under min/max calibration (the default) a convolution's input is clipped at its
    // 99.9th percentile: one grid spans every channel and pixel of the tensor, and min/max
    // let rare large values widen its steps until the Fashion-MNIST dcgan's int8 FID was
    // 57 % above f32's (6.7 % at the 99.9th percentile; a grid chosen for the least squared
    // error of the values was 34 % above). docs/BENCHMARKS.md has the measurements.
    let method = match method {
        CalibrationMethod::MinMax => CalibrationMethod::Percentile {
            percentile: CONV_PERCENTILE,
        },
        other => other,
    };
    let (min, max) = (input.stats.min, input.stats.max);
    let [lo, hi] = input.stats.range(method);
    tracing::debug!(layer, lo, hi, min, max, "convolution input range");
    let (kernel_f32, kernel, pads) = form.kernel(conv);
    let channels = kernel_f32.len() / (conv.c_in * kernel * kernel);
    let per_channel = conv.c_in * kernel * kernel;
    let (weight, weight_scale) = quantize_weights(&kernel_f32, channels, |i| i / per_channel);
    let bias = conv.bias.clone().unwrap_or_else(|| vec![0.0; conv.c_out]);
    ConvQuant {
        layer,
        form,
        input: ActivationQuant::from_range(lo, hi),
        weight,
        weight_scale,
        channels,
        kernel,
        pads,
        // Channel `phase * c_out + o` of the subpixel form is output channel `o`.
        bias: (0..channels).map(|c| bias[c % conv.c_out]).collect(),
    }
}

/// One [`LayerRecord`] per weighted layer of `spec`: int8 for the layers in `dense` and
/// `convs`, f32 with int8 weights for the others.
fn layer_records(
    spec: &GeneratorSpec,
    dense: &[DenseQuant],
    convs: &[ConvQuant],
) -> Vec<LayerRecord> {
    let mut records = Vec::new();
    for (i, layer) in spec.layers.iter().enumerate() {
        let scales = match layer {
            Layer::Dense(d) => dense_weight_codes(d).1,
            Layer::ConvTranspose2d(c) => conv_weight_codes(c).1,
            _ => continue,
        };
        let input = dense
            .iter()
            .find(|d| d.layer == i)
            .map(|d| d.input)
            .or_else(|| convs.iter().find(|c| c.layer == i).map(|c| c.input));
        records.push(LayerRecord {
            layer: i,
            kind: layer.kind().to_string(),
            compute: if input.is_some() {
                "int8"
            } else {
                "f32 (int8 weights)"
            }
            .to_string(),
            input,
            weight_scale_range: [
                scales.iter().cloned().fold(f32::INFINITY, f32::min),
                scales.iter().cloned().fold(0.0, f32::max),
            ],
        });
    }
    records
}

/// The [`QuantInfo`] written into the file's metadata: the scheme in words, the calibration
/// settings and the layer records.
fn scheme_record(options: &QuantizeOptions, records: Vec<LayerRecord>) -> QuantInfo {
    QuantInfo {
        version: SCHEME_VERSION,
        form: options.form,
        weights: "int8 symmetric per output channel, scale = max|w|/127, codes in [-127, 127]"
            .into(),
        activations: if options.form.is_int8_compute() {
            "int8 asymmetric per tensor at each Dense input and, in the integer form, each 3x3 transposed convolution's input (written as the same grid in uint8; under min/max calibration clipped at the 99.9th percentile; ranges widened to include 0); f32 elsewhere".into()
        } else {
            "f32".into()
        },
        bias: if options.form.is_int8_compute() {
            "int32, scale = input scale x weight scale (f32 for ConvTranspose2d, added after the int8 convolution is rescaled)".into()
        } else {
            "f32".into()
        },
        calibration: options.form.is_int8_compute().then(|| CalibrationRecord {
            method: options.method,
            samples: options.samples,
            seed: options.seed,
            noise: NOISE_ALGORITHM.into(),
            labels: "sample i gets class i % classes".into(),
        }),
        layers: records,
    }
}

/// Writes the int8 layers in the chosen [`Form`].
struct QuantLowering {
    form: Form,
    dense: BTreeMap<usize, DenseQuant>,
    convs: BTreeMap<usize, ConvQuant>,
}

fn scalar_f32(name: &str, v: f32) -> tract_onnx::pb::TensorProto {
    tensor_f32(name, &[], &[v])
}

fn scalar_i8(name: &str, v: i8) -> tract_onnx::pb::TensorProto {
    tensor_i8(name, &[], &[v])
}

fn cast_to_float(name: &str, input: &str, output: &str) -> tract_onnx::pb::NodeProto {
    node(
        name,
        "Cast",
        &[input],
        output,
        vec![attr_int("to", DataType::Float as i64)],
    )
}

impl QuantLowering {
    /// `QuantizeLinear(input)` into `{prefix}.input_q`; returns the names of the codes, the
    /// scale and the zero point.
    fn quantize_input(
        g: &mut GraphParts,
        prefix: &str,
        input: &str,
        q: &ActivationQuant,
    ) -> (String, String, String) {
        Self::quantize_input_as(
            g,
            prefix,
            input,
            q,
            scalar_i8(&format!("{prefix}.input_zero_point"), q.zero_point),
        )
    }

    /// [`QuantLowering::quantize_input`] with the zero point `zp` (int8, or the same grid
    /// in uint8), which names the codes' type.
    fn quantize_input_as(
        g: &mut GraphParts,
        prefix: &str,
        input: &str,
        q: &ActivationQuant,
        zp_tensor: TensorProto,
    ) -> (String, String, String) {
        let scale = format!("{prefix}.input_scale");
        let zp = zp_tensor.name.clone();
        let codes = format!("{prefix}.input_q");
        g.initializers.push(scalar_f32(&scale, q.scale));
        g.initializers.push(zp_tensor);
        g.nodes.push(node(
            &format!("{prefix}.quantize_input"),
            "QuantizeLinear",
            &[input, &scale, &zp],
            &codes,
            vec![],
        ));
        (codes, scale, zp)
    }

    /// `DequantizeLinear` of int8 weights along `axis` into `{prefix}.weight`.
    fn dequantized_weight(
        g: &mut GraphParts,
        prefix: &str,
        dims: &[usize],
        codes: &[i8],
        scale: &[f32],
        axis: i64,
    ) -> String {
        let q = format!("{prefix}.weight_q");
        let s = format!("{prefix}.weight_scale");
        let zp = format!("{prefix}.weight_zero_point");
        let w = format!("{prefix}.weight");
        g.initializers.push(tensor_i8(&q, dims, codes));
        g.initializers.push(tensor_f32(&s, &[scale.len()], scale));
        g.initializers
            .push(tensor_i8(&zp, &[scale.len()], &vec![0; scale.len()]));
        g.nodes.push(node(
            &format!("{prefix}.dequantize_weight"),
            "DequantizeLinear",
            &[&q, &s, &zp],
            &w,
            vec![attr_int("axis", axis)],
        ));
        w
    }
}

impl Lowering for QuantLowering {
    fn dense(
        &mut self,
        g: &mut GraphParts,
        index: usize,
        input: &str,
        output: &str,
        layer: &Dense,
    ) {
        let w = LayerIo {
            index,
            prefix: format!("layer{index}"),
            input,
            output,
        };
        match (self.form, self.dense.get(&index)) {
            (Form::Integer, Some(q)) => Self::integer_dense(g, &w, layer, q),
            (Form::Qlinear, Some(q)) => Self::qlinear_dense(g, &w, layer, q),
            (Form::Qdq, Some(q)) => Self::qdq_dense(g, &w, layer, q),
            // Weight-only, or a layer left out of calibration: int8 storage, f32 Gemm.
            (Form::WeightOnly, _) | (_, None) => Self::weight_only_dense(g, &w, layer),
        }
    }

    fn conv_transpose(
        &mut self,
        g: &mut GraphParts,
        index: usize,
        input: &str,
        output: &str,
        layer: &ConvTranspose2d,
    ) {
        let prefix = format!("layer{index}");
        if let (Form::Integer, Some(q)) = (self.form, self.convs.get(&index)) {
            Self::integer_conv(g, &prefix, input, output, q);
            return;
        }
        let (codes, scale) = conv_weight_codes(layer);
        let dims = [layer.c_in, layer.c_out, layer.kernel[0], layer.kernel[1]];
        let w = Self::dequantized_weight(g, &prefix, &dims, &codes, &scale, 1);
        write::conv_transpose_node(g, index, input, output, layer, w);
    }
}

/// Where one layer's nodes go: its index, name prefix, input and output tensors.
struct LayerIo<'a> {
    /// Layer index in the spec.
    index: usize,
    /// `layer{index}`.
    prefix: String,
    /// The tensor the layer reads.
    input: &'a str,
    /// The tensor the layer writes.
    output: &'a str,
}

impl QuantLowering {
    /// [`Form::Integer`] for a transposed convolution of a [`ConvForm`]: `QuantizeLinear`
    /// (uint8: the int8 grid shifted by 128, which ONNX Runtime's `ConvInteger` takes) →
    /// `ConvInteger` → `Cast` → `Mul` (input scale × weight scale per channel) → `Add` (f32
    /// bias), then `DepthToSpace` for [`ConvForm::Subpixel`]. `ConvInteger` subtracts the
    /// zero point itself, so the padding stays a real zero.
    fn integer_conv(g: &mut GraphParts, prefix: &str, input: &str, output: &str, q: &ConvQuant) {
        let zp_u8 = TensorProto {
            name: format!("{prefix}.input_zero_point"),
            data_type: DataType::Uint8 as i32,
            raw_data: vec![(i16::from(q.input.zero_point) + 128) as u8],
            ..Default::default()
        };
        let (codes, _, zp) = Self::quantize_input_as(g, prefix, input, &q.input, zp_u8);
        let (c, k) = (q.channels, q.kernel);
        let weight = format!("{prefix}.weight_q");
        let c_in = q.weight.len() / (c * k * k);
        g.initializers
            .push(tensor_i8(&weight, &[c, c_in, k, k], &q.weight));
        let acc = format!("{prefix}.accumulator");
        g.nodes.push(node(
            &format!("{prefix}.conv_integer"),
            "ConvInteger",
            &[&codes, &weight, &zp],
            &acc,
            vec![
                attr_ints("kernel_shape", &[k, k]),
                attr_ints("pads", &q.pads),
                attr_ints("strides", &[1, 1]),
            ],
        ));
        let scales: Vec<f32> = q.weight_scale.iter().map(|s| s * q.input.scale).collect();
        let scaled = format!("{prefix}.scaled");
        let node_name = format!("{prefix}.ConvTranspose2d");
        Self::rescaled(
            g,
            prefix,
            &acc,
            (&[1, c, 1, 1], &scales),
            &node_name,
            &scaled,
        );
        let bias = format!("{prefix}.bias");
        g.initializers
            .push(tensor_f32(&bias, &[1, c, 1, 1], &q.bias));
        let biased = match q.form {
            ConvForm::Flipped => output.to_string(),
            ConvForm::Subpixel => format!("{prefix}.phases"),
        };
        g.nodes.push(node(
            &format!("{prefix}.add_bias"),
            "Add",
            &[&scaled, &bias],
            &biased,
            vec![],
        ));
        if q.form == ConvForm::Subpixel {
            g.nodes.push(node(
                &format!("{prefix}.depth_to_space"),
                "DepthToSpace",
                &[&biased],
                output,
                vec![attr_int("blocksize", 2)],
            ));
        }
    }

    /// [`Form::WeightOnly`]: int8 weights behind a `DequantizeLinear`, an f32 `Gemm`.
    fn weight_only_dense(g: &mut GraphParts, w: &LayerIo<'_>, layer: &Dense) {
        let (codes, scale) = dense_weight_codes(layer);
        let dims = [layer.weight.rows, layer.weight.cols];
        let weight = Self::dequantized_weight(g, &w.prefix, &dims, &codes, &scale, 1);
        write::gemm_node(g, w.index, w.input, w.output, weight, layer.bias.as_deref());
    }

    /// [`Form::Integer`]: `QuantizeLinear` → `MatMulInteger` → int32 bias → `Cast` → `Mul`.
    fn integer_dense(g: &mut GraphParts, w: &LayerIo<'_>, layer: &Dense, q: &DenseQuant) {
        let prefix = &w.prefix;
        let (rows, cols) = (layer.weight.rows, layer.weight.cols);
        // Σ_k (x_q[k] - zp) W[k][c] = Σ_k x_q[k] W[k][c] - zp Σ_k W[k][c]: the zero-point
        // term is a constant, folded into the int32 bias here, so the engine runs a
        // plain int8 x int8 product instead of re-summing the weights on every run
        // (tract does not constant-fold that sum for large layers).
        let (codes, _, _) = Self::quantize_input(g, prefix, w.input, &q.input);
        let weight = format!("{prefix}.weight_q");
        g.initializers
            .push(tensor_i8(&weight, &[rows, cols], &q.weight));
        let acc = format!("{prefix}.accumulator");
        g.nodes.push(node(
            &format!("{prefix}.matmul_integer"),
            "MatMulInteger",
            &[&codes, &weight],
            &acc,
            vec![],
        ));
        let zp = i64::from(q.input.zero_point);
        let folded: Vec<i32> = (0..cols)
            .map(|c| {
                let column: i64 = (0..rows).map(|k| i64::from(q.weight[k * cols + c])).sum();
                let b = q.bias.as_ref().map_or(0, |b| i64::from(b[c]));
                (b - zp * column).clamp(i64::from(i32::MIN), i64::from(i32::MAX)) as i32
            })
            .collect();
        let name = format!("{prefix}.bias_q");
        g.initializers.push(tensor_i32(&name, &[cols], &folded));
        let current = format!("{prefix}.accumulator_bias");
        g.nodes.push(node(
            &format!("{prefix}.add_bias"),
            "Add",
            &[&acc, &name],
            &current,
            vec![],
        ));
        let scales = product_scales(q);
        let node_name = format!("{prefix}.Dense");
        Self::rescaled(
            g,
            prefix,
            &current,
            (&[cols], &scales),
            &node_name,
            w.output,
        );
    }

    /// `Cast` of the int32 `acc` to f32, then `Mul` (the node `node_name`, into `output`) by
    /// the per-channel `scales` (shaped `dims`) that turn it back into real values.
    fn rescaled(
        g: &mut GraphParts,
        prefix: &str,
        acc: &str,
        (dims, scales): (&[usize], &[f32]),
        node_name: &str,
        output: &str,
    ) {
        let float = format!("{prefix}.accumulator_f32");
        g.nodes
            .push(cast_to_float(&format!("{prefix}.cast"), acc, &float));
        let rescale = format!("{prefix}.rescale");
        g.initializers.push(tensor_f32(&rescale, dims, scales));
        g.nodes
            .push(node(node_name, "Mul", &[&float, &rescale], output, vec![]));
    }

    /// [`Form::Qlinear`]: `QuantizeLinear` → `QLinearMatMul` → `DequantizeLinear` → f32 bias.
    fn qlinear_dense(g: &mut GraphParts, w: &LayerIo<'_>, layer: &Dense, q: &DenseQuant) {
        let prefix = &w.prefix;
        let (rows, cols) = (layer.weight.rows, layer.weight.cols);
        let (codes, scale, zp) = Self::quantize_input(g, prefix, w.input, &q.input);
        let product = q.product.expect("qlinear calibrates the product");
        let weight = format!("{prefix}.weight_q");
        let ws = format!("{prefix}.weight_scale");
        let wzp = format!("{prefix}.weight_zero_point");
        let ys = format!("{prefix}.product_scale");
        let yzp = format!("{prefix}.product_zero_point");
        g.initializers
            .push(tensor_i8(&weight, &[rows, cols], &q.weight));
        g.initializers
            .push(tensor_f32(&ws, &[cols], &q.weight_scale));
        g.initializers
            .push(tensor_i8(&wzp, &[cols], &vec![0; cols]));
        g.initializers.push(scalar_f32(&ys, product.scale));
        g.initializers.push(scalar_i8(&yzp, product.zero_point));
        let yq = format!("{prefix}.product_q");
        g.nodes.push(node(
            &format!("{prefix}.qlinear_matmul"),
            "QLinearMatMul",
            &[&codes, &scale, &zp, &weight, &ws, &wzp, &ys, &yzp],
            &yq,
            vec![],
        ));
        let target = if q.bias_f32.is_some() {
            format!("{prefix}.product")
        } else {
            w.output.to_string()
        };
        g.nodes.push(node(
            &format!("{prefix}.dequantize_product"),
            "DequantizeLinear",
            &[&yq, &ys, &yzp],
            &target,
            vec![],
        ));
        if let Some(b) = &q.bias_f32 {
            let name = format!("{prefix}.bias");
            g.initializers.push(tensor_f32(&name, &[cols], b));
            g.nodes.push(node(
                &format!("{prefix}.Dense"),
                "Add",
                &[&target, &name],
                w.output,
                vec![],
            ));
        }
    }

    /// [`Form::Qdq`]: quantize-dequantize pairs around an f32 `Gemm`.
    fn qdq_dense(g: &mut GraphParts, w: &LayerIo<'_>, layer: &Dense, q: &DenseQuant) {
        let prefix = &w.prefix;
        let (rows, cols) = (layer.weight.rows, layer.weight.cols);
        let (codes, scale, zp) = Self::quantize_input(g, prefix, w.input, &q.input);
        let x = format!("{prefix}.input_dq");
        g.nodes.push(node(
            &format!("{prefix}.dequantize_input"),
            "DequantizeLinear",
            &[&codes, &scale, &zp],
            &x,
            vec![],
        ));
        let weight =
            Self::dequantized_weight(g, prefix, &[rows, cols], &q.weight, &q.weight_scale, 1);
        let mut ins = vec![x, weight];
        if let Some(b) = &q.bias {
            let bq = format!("{prefix}.bias_q");
            let bs = format!("{prefix}.bias_scale");
            let bias = format!("{prefix}.bias");
            g.initializers.push(tensor_i32(&bq, &[cols], b));
            g.initializers
                .push(tensor_f32(&bs, &[cols], &product_scales(q)));
            g.nodes.push(node(
                &format!("{prefix}.dequantize_bias"),
                "DequantizeLinear",
                &[&bq, &bs],
                &bias,
                vec![attr_int("axis", 0)],
            ));
            ins.push(bias);
        }
        let ins: Vec<&str> = ins.iter().map(String::as_str).collect();
        g.nodes.push(node(
            &format!("{prefix}.Dense"),
            "Gemm",
            &ins,
            w.output,
            vec![],
        ));
    }
}

/// The scale of `x W` per output: `input_scale * weight_scale[c]`, the int32 biases' scale.
fn product_scales(q: &DenseQuant) -> Vec<f32> {
    q.weight_scale
        .iter()
        .map(|s| (f64::from(q.input.scale) * f64::from(*s)) as f32)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn activation_ranges_include_zero_and_map_their_ends() {
        let q = ActivationQuant::from_range(-1.0, 3.0);
        assert_eq!(q.quantize(-1.0), -128);
        assert_eq!(q.quantize(3.0), 127);
        assert_eq!(q.quantize(0.0), q.zero_point);
        let positive = ActivationQuant::from_range(0.5, 2.0);
        assert_eq!(positive.range, [0.0, 2.0]);
        assert_eq!(positive.zero_point, -128);
        let flat = ActivationQuant::from_range(0.0, 0.0);
        assert!(flat.scale > 0.0);
    }

    #[test]
    fn weights_are_symmetric_per_output_channel() {
        // [in 2, out 3]: columns (1, -2), (0.5, 0.25), (0, 0).
        let w = [1.0, 0.5, 0.0, -2.0, 0.25, 0.0];
        let (codes, scale) = quantize_weights(&w, 3, |i| i % 3);
        assert_eq!(scale, vec![2.0 / 127.0, 0.5 / 127.0, 1.0]);
        assert_eq!(codes, vec![64, 127, 0, -127, 64, 0]);
    }

    #[test]
    fn percentiles_ignore_outliers_and_minmax_does_not() {
        let mut a = Stats::new(true, 10_001);
        let mut b = Stats::new(false, 10_001);
        for i in 0..10_000 {
            let v = (i % 100) as f32 / 100.0;
            a.add(v);
            b.add(v);
        }
        a.add(1000.0);
        b.add(1000.0);
        assert_eq!(b.range(CalibrationMethod::MinMax), [0.0, 1000.0]);
        let [lo, hi] = a.range(CalibrationMethod::Percentile { percentile: 99.9 });
        assert_eq!(lo, 0.0);
        assert!(hi < 1.0, "{hi}");
    }
}
