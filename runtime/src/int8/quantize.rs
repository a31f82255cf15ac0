//! Post-training static int8 quantization of an exported generator (`runtime quantize`).
//!
//! A Raspberry Pi has little memory and no GPU, so the runtime can run a generator in int8.
//! The scheme, recorded in the file's metadata ([`keys::QUANTIZATION`], [`QuantInfo`]):
//!
//! - **Weights** of Dense and ConvTranspose2d layers: int8 in `[-127, 127]`, symmetric, one
//!   scale per output channel, `scale[c] = max |W[.., c]| / 127`.
//! - **Activations** entering each Dense layer: int8 in `[-128, 127]`, asymmetric, one scale
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
//! Transposed convolutions have no integer kernel in tract or ONNX Runtime, and lowering one
//! to a convolution over a zero-stuffed input costs stride² more multiply-accumulates than
//! int8 can win back, so ConvTranspose2d layers keep f32 compute with int8-stored weights that
//! are dequantized at load. [`Form::WeightOnly`] does that for every layer: a 4x smaller file
//! for memory-poor devices, f32 speed and nearly f32 output.

use std::collections::BTreeMap;
use std::path::Path;

use tract_onnx::pb::ModelProto;
use tract_onnx::pb::tensor_proto::DataType;
use tract_onnx::prelude::*;

use crate::error::{Error, Result};
use crate::noise::{NOISE_ALGORITHM, noise};
use crate::onnx::metadata::{ModelInfo, keys};
use crate::onnx::spec::{ConvTranspose2d, Dense, GeneratorSpec, Layer};
use crate::onnx::write::{
    self, GraphParts, Lowering, attr_int, node, tensor_f32, tensor_i8, tensor_i32,
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

/// One Dense layer under calibration.
struct DenseCalibration<'a> {
    /// Layer index in the spec.
    layer: usize,
    /// The layer.
    dense: &'a Dense,
    /// Its input.
    input: Observed,
    /// Its output, recorded as `x W` without the bias ([`Form::Qlinear`] only).
    product: Option<Observed>,
}

/// Runs the f32 generator on the calibration noise and returns, for each Dense layer, the
/// statistics of its input and (for [`Form::Qlinear`]) of `x W` without the bias.
fn calibrate<'a>(
    path: &Path,
    spec: &'a GeneratorSpec,
    options: &QuantizeOptions,
) -> Result<Vec<DenseCalibration<'a>>> {
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

/// Step 1 of [`calibrate`]: the Dense layers of `spec`, each with empty statistics for its
/// input and (for [`Form::Qlinear`]) its output.
fn calibrated_layers<'a>(
    spec: &'a GeneratorSpec,
    options: &QuantizeOptions,
) -> Result<Vec<DenseCalibration<'a>>> {
    let keep = matches!(options.method, CalibrationMethod::Percentile { .. });
    let shapes = spec.shapes()?;
    let layers = spec.layers.iter().enumerate().filter_map(|(i, l)| match l {
        Layer::Dense(dense) => Some((i, dense)),
        _ => None,
    });
    Ok(layers
        .map(|(i, dense)| DenseCalibration {
            layer: i,
            dense,
            input: Observed {
                tensor: layer_input_name(spec, i),
                stats: Stats::new(keep, shapes[i].numel() * options.samples),
            },
            product: (options.form == Form::Qlinear).then(|| Observed {
                tensor: write::layer_output_name(spec, i),
                stats: Stats::new(keep, shapes[i + 1].numel() * options.samples),
            }),
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
    layers: &[DenseCalibration<'_>],
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
    fn observe(&self, c: &mut DenseCalibration<'_>) -> Result<()> {
        for v in self.values(&c.input.tensor)? {
            c.input.stats.add(v);
        }
        if let Some(product) = &mut c.product {
            let (bias, cols) = (&c.dense.bias, c.dense.weight.cols);
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
    let dense = if options.form.is_int8_compute() {
        calibrate(source, &spec, options)?
            .into_iter()
            .map(|c| dense_quant(c, options.method))
            .collect()
    } else {
        Vec::new()
    };
    let info = scheme_record(options, layer_records(&spec, &dense));
    let mut lowering = QuantLowering {
        form: options.form,
        dense: dense.iter().map(|d| (d.layer, d.clone())).collect(),
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
    Ok(Quantized { proto, info, dense })
}

/// The int8 form of a calibrated Dense layer: activation ranges chosen by `method`, weight
/// codes and int32 biases.
fn dense_quant(c: DenseCalibration<'_>, method: CalibrationMethod) -> DenseQuant {
    let [lo, hi] = c.input.stats.range(method);
    let input = ActivationQuant::from_range(lo, hi);
    let product = c.product.map(|p| {
        let [lo, hi] = p.stats.range(method);
        ActivationQuant::from_range(lo, hi)
    });
    let (codes, weight_scale) = dense_weight_codes(c.dense);
    let bias = &c.dense.bias;
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
        layer: c.layer,
        input,
        product,
        weight: codes,
        weight_scale,
        bias: bias_q,
        bias_f32: bias.clone(),
    }
}

/// One [`LayerRecord`] per weighted layer of `spec`: int8 for the layers in `dense`, f32 with
/// int8 weights for the others.
fn layer_records(spec: &GeneratorSpec, dense: &[DenseQuant]) -> Vec<LayerRecord> {
    let mut records = Vec::new();
    for (i, layer) in spec.layers.iter().enumerate() {
        let scales = match layer {
            Layer::Dense(d) => dense_weight_codes(d).1,
            Layer::ConvTranspose2d(c) => conv_weight_codes(c).1,
            _ => continue,
        };
        let q = dense.iter().find(|d| d.layer == i);
        records.push(LayerRecord {
            layer: i,
            kind: layer.kind().to_string(),
            compute: if q.is_some() {
                "int8"
            } else {
                "f32 (int8 weights)"
            }
            .to_string(),
            input: q.map(|d| d.input),
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
            "int8 asymmetric per tensor at each Dense input (range widened to include 0); f32 elsewhere".into()
        } else {
            "f32".into()
        },
        bias: if options.form.is_int8_compute() {
            "int32, scale = input scale x weight scale (f32 for ConvTranspose2d)".into()
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
        let scale = format!("{prefix}.input_scale");
        let zp = format!("{prefix}.input_zero_point");
        let codes = format!("{prefix}.input_q");
        g.initializers.push(scalar_f32(&scale, q.scale));
        g.initializers.push(scalar_i8(&zp, q.zero_point));
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
        let (codes, scale) = conv_weight_codes(layer);
        let dims = [layer.c_in, layer.c_out, layer.kernel[0], layer.kernel[1]];
        let prefix = format!("layer{index}");
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
        let float = format!("{prefix}.accumulator_f32");
        g.nodes
            .push(cast_to_float(&format!("{prefix}.cast"), &current, &float));
        let rescale = format!("{prefix}.rescale");
        g.initializers
            .push(tensor_f32(&rescale, &[cols], &product_scales(q)));
        g.nodes.push(node(
            &format!("{prefix}.Dense"),
            "Mul",
            &[&float, &rescale],
            w.output,
            vec![],
        ));
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
