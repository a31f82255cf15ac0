//! A plain-Rust description of a feed-forward generator, independent of any training framework.
//!
//! The trainer converts its trained weights into a [`GeneratorSpec`]; this crate checks it
//! ([`GeneratorSpec::validate`]), folds BatchNorm away ([`GeneratorSpec::fold_batch_norm`]) and
//! writes it as a standard ONNX file ([`GeneratorSpec::write_onnx`]). Keeping the description here,
//! and not in the trainer, lets the runtime (and the int8 quantizer) own the ONNX format without
//! depending on burn. [`GeneratorSpec::forward_reference`] is a slow, obviously-correct forward pass
//! used to prove that the exported graph computes what the description says.

use std::collections::BTreeMap;

use crate::onnx::metadata::{self, ModelInfo, keys};

/// At their earlier paths: the shapes live at the bottom of the crate, the error with the
/// crate's others.
pub use crate::error::SpecError;
pub use crate::shape::{FeatureShape, ImageShape, MAX_VALUES_PER_SAMPLE};

/// A dense row-major matrix.
#[derive(Clone, Debug, PartialEq)]
pub struct Matrix {
    /// Number of rows.
    pub rows: usize,
    /// Number of columns.
    pub cols: usize,
    /// `rows * cols` values, row after row.
    pub data: Vec<f32>,
}

impl Matrix {
    /// Value at (`row`, `col`).
    pub fn at(&self, row: usize, col: usize) -> f32 {
        self.data[row * self.cols + col]
    }
}

/// `y = x W + b` on `[N, in]`.
#[derive(Clone, Debug, PartialEq)]
pub struct Dense {
    /// `[in, out]` row-major (burn's `Linear` layout).
    pub weight: Matrix,
    /// `out` values, or none.
    pub bias: Option<Vec<f32>>,
}

/// `y = gamma (x - mean) / sqrt(var + epsilon) + beta` over dimension 1 (features or channels).
#[derive(Clone, Debug, PartialEq)]
pub struct BatchNorm {
    /// Scale per feature/channel.
    pub gamma: Vec<f32>,
    /// Shift per feature/channel.
    pub beta: Vec<f32>,
    /// Running mean per feature/channel.
    pub mean: Vec<f32>,
    /// Running variance per feature/channel.
    pub var: Vec<f32>,
    /// Added to the variance before the square root.
    pub epsilon: f32,
}

/// Transposed 2-D convolution on `[N, c_in, H, W]`, ONNX/PyTorch/burn semantics:
/// `H_out = (H - 1) * stride - 2 * padding + kernel + output_padding`.
#[derive(Clone, Debug, PartialEq)]
pub struct ConvTranspose2d {
    /// `[c_in, c_out, kh, kw]` row-major, as in ONNX and burn.
    pub weight: Vec<f32>,
    /// Input channels.
    pub c_in: usize,
    /// Output channels.
    pub c_out: usize,
    /// `[kh, kw]`.
    pub kernel: [usize; 2],
    /// `c_out` values, or none.
    pub bias: Option<Vec<f32>>,
    /// `[sh, sw]`.
    pub stride: [usize; 2],
    /// `[ph, pw]`, applied on both sides.
    pub padding: [usize; 2],
    /// `[oph, opw]`, each smaller than its stride.
    pub output_padding: [usize; 2],
}

/// One layer of a feed-forward generator, in inference form. The layers with parameter
/// buffers carry them in their own struct, so code that handles one kind takes that struct.
#[derive(Clone, Debug, PartialEq)]
pub enum Layer {
    /// A fully connected layer ([`Dense`]).
    Dense(Dense),
    /// Batch normalisation with running statistics ([`BatchNorm`]).
    BatchNorm(BatchNorm),
    /// `y = x` for `x >= 0`, `alpha * x` otherwise.
    LeakyRelu {
        /// Slope for negative inputs.
        alpha: f32,
    },
    /// `y = max(x, 0)`.
    Relu,
    /// `y = tanh(x)`.
    Tanh,
    /// `[N, C*H*W] -> [N, C, H, W]`.
    Reshape {
        /// C.
        channels: usize,
        /// H.
        height: usize,
        /// W.
        width: usize,
    },
    /// A transposed 2-D convolution ([`ConvTranspose2d`]).
    ConvTranspose2d(ConvTranspose2d),
}

impl Layer {
    /// The layer's kind, as used in error messages and node names.
    pub fn kind(&self) -> &'static str {
        match self {
            Layer::Dense(_) => "Dense",
            Layer::BatchNorm(_) => "BatchNorm",
            Layer::LeakyRelu { .. } => "LeakyRelu",
            Layer::Relu => "Relu",
            Layer::Tanh => "Tanh",
            Layer::Reshape { .. } => "Reshape",
            Layer::ConvTranspose2d(_) => "ConvTranspose2d",
        }
    }
}

/// A feed-forward generator: `z` (and a class label) in, images in `[-1, 1]` out.
#[derive(Clone, Debug, PartialEq)]
pub struct GeneratorSpec {
    /// Length of the noise vector `z`.
    pub z_dim: usize,
    /// Shape of one output image.
    pub image: ImageShape,
    /// Class names; empty for an unconditional generator.
    pub classes: Vec<String>,
    /// For conditional generators, a `[classes, embedding]` table: the network's input is
    /// `concat([z, table[label]], axis 1)`.
    pub label_embedding: Option<Matrix>,
    /// The layers, applied in order.
    pub layers: Vec<Layer>,
    /// Extra metadata written verbatim into the ONNX `metadata_props` (dataset, steps, config
    /// JSON, quality JSON...); see [`metadata::keys`] for the recommended names. The keys the
    /// runtime writes itself ([`keys::RESERVED`]) are refused.
    pub metadata: BTreeMap<String, String>,
}

fn location(index: usize, layer: &Layer) -> String {
    format!("layer {index} ({})", layer.kind())
}

/// The product of `dims`, saturating at `usize::MAX` (which no buffer length equals).
fn product(dims: &[usize]) -> usize {
    dims.iter()
        .try_fold(1usize, |n, d| n.checked_mul(*d))
        .unwrap_or(usize::MAX)
}

/// `v` has `expected` values, all finite; `location` and `what` name it in the error.
pub(crate) fn check_len(
    location: &str,
    what: &'static str,
    v: &[f32],
    expected: usize,
) -> Result<(), SpecError> {
    if v.len() != expected {
        return Err(SpecError::Length {
            location: location.to_string(),
            what,
            expected,
            actual: v.len(),
        });
    }
    if v.iter().any(|x| !x.is_finite()) {
        return Err(SpecError::NonFinite {
            location: location.to_string(),
            what,
        });
    }
    Ok(())
}

/// Output size of a transposed convolution along one axis, or `None` when not positive.
fn deconv_out(
    input: usize,
    kernel: usize,
    stride: usize,
    padding: usize,
    output_padding: usize,
) -> Option<usize> {
    // i128: the terms come from model files and may be as large as usize allows.
    let out = (input as i128 - 1) * stride as i128 - 2 * padding as i128
        + kernel as i128
        + output_padding as i128;
    (out > 0).then(|| usize::try_from(out).ok()).flatten()
}

impl GeneratorSpec {
    /// Whether the generator takes a class label.
    pub fn is_conditional(&self) -> bool {
        !self.classes.is_empty()
    }

    /// Width of the first layer's input: `z_dim`, plus the embedding width when conditional.
    pub fn input_features(&self) -> usize {
        self.z_dim
            .saturating_add(self.label_embedding.as_ref().map_or(0, |m| m.cols))
    }

    /// Checks that every buffer has the right length and the shapes chain from the input to
    /// the image; returns the activation shape after each layer (`shapes[0]` is the input).
    pub fn shapes(&self) -> Result<Vec<FeatureShape>, SpecError> {
        self.check_sizes()?;
        self.check_conditioning()?;
        let mut current = self.checked_input()?;
        let mut shapes = vec![current];
        for (index, layer) in self.layers.iter().enumerate() {
            current = layer_output(index, layer, current)?;
            shapes.push(current);
        }
        if current != FeatureShape::Map(self.image) {
            return Err(SpecError::Output {
                expected: self.image,
                found: current,
            });
        }
        Ok(shapes)
    }

    /// Step 1 of [`GeneratorSpec::shapes`]: `z_dim` and the image dimensions are positive.
    fn check_sizes(&self) -> Result<(), SpecError> {
        if self.z_dim == 0 {
            return Err(SpecError::ZeroSize { what: "z_dim" });
        }
        for (what, v) in [
            ("image channels", self.image.channels),
            ("image height", self.image.height),
            ("image width", self.image.width),
        ] {
            if v == 0 {
                return Err(SpecError::ZeroSize { what });
            }
        }
        Ok(())
    }

    /// Step 2 of [`GeneratorSpec::shapes`]: classes and label embedding agree (both absent, or
    /// one table row per class, with finite values).
    fn check_conditioning(&self) -> Result<(), SpecError> {
        match (&self.label_embedding, self.classes.is_empty()) {
            (None, true) => Ok(()),
            (Some(_), true) => Err(SpecError::Conditioning {
                problem: "a label embedding is given but the class list is empty".into(),
            }),
            (None, false) => Err(SpecError::Conditioning {
                problem: format!(
                    "{} classes are listed but there is no label embedding",
                    self.classes.len()
                ),
            }),
            (Some(table), false) => {
                if table.rows != self.classes.len() {
                    return Err(SpecError::Conditioning {
                        problem: format!(
                            "the label embedding has {} rows but there are {} classes",
                            table.rows,
                            self.classes.len()
                        ),
                    });
                }
                if table.cols == 0 {
                    return Err(SpecError::ZeroSize {
                        what: "label embedding width",
                    });
                }
                check_len(
                    "label embedding",
                    "table",
                    &table.data,
                    product(&[table.rows, table.cols]),
                )
            }
        }
    }

    /// Step 3 of [`GeneratorSpec::shapes`]: the first layer's input, with the input and the
    /// image within [`MAX_VALUES_PER_SAMPLE`].
    fn checked_input(&self) -> Result<FeatureShape, SpecError> {
        let input = FeatureShape::Flat(self.input_features());
        if input.numel() > MAX_VALUES_PER_SAMPLE || self.image.numel() > MAX_VALUES_PER_SAMPLE {
            return Err(SpecError::Parameter {
                location: "input and image".into(),
                problem: format!(
                    "the input {input} or the image {} has more than {MAX_VALUES_PER_SAMPLE} values per sample",
                    self.image
                ),
            });
        }
        Ok(input)
    }

    /// Checks the spec (see [`GeneratorSpec::shapes`]) and its metadata keys.
    pub fn validate(&self) -> Result<(), SpecError> {
        self.shapes()?;
        if let Some(key) = self.metadata.keys().find(|k| keys::is_reserved(k)) {
            return Err(SpecError::ReservedMetadataKey { key: key.clone() });
        }
        Ok(())
    }

    /// Returns a copy where each BatchNorm is folded into the Dense or ConvTranspose2d layer
    /// right before it, so the graph only has inference operations. Folding is done in f64:
    /// `W' = W * s`, `b' = (b - mean) * s + beta` with `s = gamma / sqrt(var + epsilon)` per
    /// output feature/channel.
    pub fn fold_batch_norm(&self) -> Result<GeneratorSpec, SpecError> {
        self.validate()?;
        let mut layers: Vec<Layer> = Vec::with_capacity(self.layers.len());
        for (index, layer) in self.layers.iter().enumerate() {
            let Layer::BatchNorm(bn) = layer else {
                layers.push(layer.clone());
                continue;
            };
            let scale: Vec<f64> = bn
                .gamma
                .iter()
                .zip(&bn.var)
                .map(|(g, v)| *g as f64 / (*v as f64 + bn.epsilon as f64).sqrt())
                .collect();
            let shift =
                |c: usize, b: f64| ((b - bn.mean[c] as f64) * scale[c] + bn.beta[c] as f64) as f32;
            match layers.last_mut() {
                Some(Layer::Dense(Dense { weight, bias })) => {
                    let cols = weight.cols;
                    for (i, w) in weight.data.iter_mut().enumerate() {
                        *w = (*w as f64 * scale[i % cols]) as f32;
                    }
                    let old = bias.take().unwrap_or_else(|| vec![0.0; cols]);
                    *bias = Some((0..cols).map(|c| shift(c, old[c] as f64)).collect());
                }
                Some(Layer::ConvTranspose2d(ConvTranspose2d {
                    weight,
                    c_out,
                    kernel,
                    bias,
                    ..
                })) => {
                    let (c_out, taps) = (*c_out, kernel[0] * kernel[1]);
                    for (i, w) in weight.iter_mut().enumerate() {
                        *w = (*w as f64 * scale[(i / taps) % c_out]) as f32;
                    }
                    let old = bias.take().unwrap_or_else(|| vec![0.0; c_out]);
                    *bias = Some((0..c_out).map(|c| shift(c, old[c] as f64)).collect());
                }
                previous => {
                    return Err(SpecError::UnfoldableBatchNorm {
                        layer: index,
                        previous: previous
                            .map_or("the input".to_string(), |p| p.kind().to_string()),
                    });
                }
            }
        }
        Ok(GeneratorSpec {
            layers,
            ..self.clone()
        })
    }

    /// Number of learned values in the exported (BatchNorm-folded) graph.
    pub fn parameter_count(&self) -> Result<u64, SpecError> {
        let folded = self.fold_batch_norm()?;
        let table = folded.label_embedding.as_ref().map_or(0, |t| t.data.len());
        let layers: usize = folded
            .layers
            .iter()
            .map(|l| match l {
                Layer::Dense(Dense { weight, bias }) => {
                    weight.data.len() + bias.as_ref().map_or(0, Vec::len)
                }
                Layer::ConvTranspose2d(ConvTranspose2d { weight, bias, .. }) => {
                    weight.len() + bias.as_ref().map_or(0, Vec::len)
                }
                _ => 0,
            })
            .sum();
        Ok((table + layers) as u64)
    }

    /// Multiply-accumulates per generated sample in the Dense and ConvTranspose2d layers.
    pub fn macs_per_sample(&self) -> Result<u64, SpecError> {
        let shapes = self.shapes()?;
        let mut macs = 0u64;
        for (layer, input) in self.layers.iter().zip(&shapes) {
            macs = macs.saturating_add(match (layer, input) {
                (Layer::Dense(Dense { weight, .. }), _) => {
                    (weight.rows as u64).saturating_mul(weight.cols as u64)
                }
                (
                    Layer::ConvTranspose2d(ConvTranspose2d {
                        c_in,
                        c_out,
                        kernel,
                        ..
                    }),
                    FeatureShape::Map(m),
                ) => [*c_in, *c_out, kernel[0], kernel[1], m.height, m.width]
                    .iter()
                    .fold(1u64, |n, d| n.saturating_mul(*d as u64)),
                _ => 0,
            });
        }
        Ok(macs)
    }

    /// A direct, unoptimised forward pass (f64 accumulation) of the spec as written, BatchNorm
    /// included. `z` is `[batch, z_dim]` row-major; `labels` (conditional models only) has one
    /// class index per sample. Returns `[batch, C, H, W]`.
    pub fn forward_reference(
        &self,
        z: &[f32],
        labels: Option<&[i64]>,
    ) -> Result<Vec<f32>, SpecError> {
        let shapes = self.shapes()?;
        if z.is_empty() || !z.len().is_multiple_of(self.z_dim) {
            return Err(SpecError::Input {
                problem: format!(
                    "z has {} values, not a positive multiple of z_dim {}",
                    z.len(),
                    self.z_dim
                ),
            });
        }
        let batch = z.len() / self.z_dim;
        let mut x: Vec<f64> = match (&self.label_embedding, labels) {
            (None, None) => z.iter().map(|v| *v as f64).collect(),
            (Some(table), Some(labels)) => {
                if labels.len() != batch {
                    return Err(SpecError::Input {
                        problem: format!("{} labels for a batch of {batch}", labels.len()),
                    });
                }
                let mut x = Vec::with_capacity(batch * (self.z_dim + table.cols));
                for (n, label) in labels.iter().enumerate() {
                    let row = usize::try_from(*label)
                        .ok()
                        .filter(|r| *r < table.rows)
                        .ok_or_else(|| SpecError::Input {
                            problem: format!("label {label} is not a class index"),
                        })?;
                    x.extend(
                        z[n * self.z_dim..(n + 1) * self.z_dim]
                            .iter()
                            .map(|v| *v as f64),
                    );
                    x.extend(
                        table.data[row * table.cols..(row + 1) * table.cols]
                            .iter()
                            .map(|v| *v as f64),
                    );
                }
                x
            }
            (None, Some(_)) => {
                return Err(SpecError::Input {
                    problem: "labels given to an unconditional generator".into(),
                });
            }
            (Some(_), None) => {
                return Err(SpecError::Input {
                    problem: "a conditional generator needs labels".into(),
                });
            }
        };
        for (index, (layer, input)) in self.layers.iter().zip(&shapes).enumerate() {
            x = forward_layer(index, layer, *input, batch, &x)?;
        }
        Ok(x.into_iter().map(|v| v as f32).collect())
    }
}

impl ModelInfo {
    /// The metadata a spec exports with.
    pub fn from_spec(spec: &GeneratorSpec) -> ModelInfo {
        ModelInfo {
            format_version: metadata::FORMAT_VERSION,
            z_dim: spec.z_dim,
            image: spec.image,
            classes: spec.classes.clone(),
            pixel_range: metadata::PIXEL_RANGE,
            metadata: spec.metadata.clone(),
        }
    }
}

/// Checks layer `index` against the activations it receives and returns the shape it produces
/// (at most [`MAX_VALUES_PER_SAMPLE`] values per sample): one step of
/// [`GeneratorSpec::shapes`].
fn layer_output(
    index: usize,
    layer: &Layer,
    input: FeatureShape,
) -> Result<FeatureShape, SpecError> {
    let at = location(index, layer);
    let output = match layer {
        Layer::Dense(dense) => dense.output_shape(&at, input)?,
        Layer::BatchNorm(bn) => {
            bn.check(&at, input.dim1())?;
            input
        }
        Layer::LeakyRelu { alpha } => {
            if !alpha.is_finite() {
                return Err(SpecError::Parameter {
                    location: at,
                    problem: format!("alpha {alpha} is not finite"),
                });
            }
            input
        }
        Layer::Relu | Layer::Tanh => input,
        Layer::Reshape {
            channels,
            height,
            width,
        } => reshape_output(
            &at,
            ImageShape {
                channels: *channels,
                height: *height,
                width: *width,
            },
            input,
        )?,
        Layer::ConvTranspose2d(conv) => FeatureShape::Map(conv.geometry(&at, input)?.output),
    };
    if output.numel() > MAX_VALUES_PER_SAMPLE {
        return Err(SpecError::Parameter {
            location: at,
            problem: format!(
                "its output {output} has more than {MAX_VALUES_PER_SAMPLE} values per sample"
            ),
        });
    }
    Ok(output)
}

/// A `Reshape` to `target` of `input` (located `at`): `[N, C*H*W]` becomes `[N, C, H, W]`.
fn reshape_output(
    at: &str,
    target: ImageShape,
    input: FeatureShape,
) -> Result<FeatureShape, SpecError> {
    if target.checked_numel() == Some(0) {
        return Err(SpecError::ZeroSize {
            what: "Reshape dimensions",
        });
    }
    match input {
        FeatureShape::Flat(f) if f == target.numel() => Ok(FeatureShape::Map(target)),
        _ => Err(SpecError::Shape {
            location: at.to_string(),
            expected: format!("[N, {}]", target.numel()),
            found: input,
        }),
    }
}

/// One layer of [`GeneratorSpec::forward_reference`] on `x` (`[batch, input]`, f64).
fn forward_layer(
    index: usize,
    layer: &Layer,
    input: FeatureShape,
    batch: usize,
    x: &[f64],
) -> Result<Vec<f64>, SpecError> {
    Ok(match layer {
        Layer::Dense(dense) => dense.forward(batch, x),
        Layer::BatchNorm(bn) => bn.forward(input, x),
        Layer::LeakyRelu { alpha } => x
            .iter()
            .map(|v| if *v >= 0.0 { *v } else { *alpha as f64 * v })
            .collect(),
        Layer::Relu => x.iter().map(|v| v.max(0.0)).collect(),
        Layer::Tanh => x.iter().map(|v| v.tanh()).collect(),
        Layer::Reshape { .. } => x.to_vec(),
        Layer::ConvTranspose2d(conv) => {
            let geometry = conv.geometry(&location(index, layer), input)?;
            conv.forward(geometry, batch, x)
        }
    })
}

impl Dense {
    /// Checks the weights and bias against the input (`[N, features]`, located `at`) and
    /// returns the output shape `[N, out]`.
    fn output_shape(&self, at: &str, input: FeatureShape) -> Result<FeatureShape, SpecError> {
        let weight = &self.weight;
        let FeatureShape::Flat(features) = input else {
            return Err(SpecError::Shape {
                location: at.to_string(),
                expected: "[N, features]".into(),
                found: input,
            });
        };
        if weight.rows != features {
            return Err(SpecError::Shape {
                location: at.to_string(),
                expected: format!("[N, {}]", weight.rows),
                found: input,
            });
        }
        if weight.cols == 0 {
            return Err(SpecError::ZeroSize {
                what: "Dense output width",
            });
        }
        check_len(
            at,
            "weight",
            &weight.data,
            product(&[weight.rows, weight.cols]),
        )?;
        if let Some(b) = &self.bias {
            check_len(at, "bias", b, weight.cols)?;
        }
        Ok(FeatureShape::Flat(weight.cols))
    }

    /// The reference product `x W + b` on `[batch, in]`, accumulated in f64.
    fn forward(&self, batch: usize, x: &[f64]) -> Vec<f64> {
        let (k, m) = (self.weight.rows, self.weight.cols);
        let mut y = vec![0.0; batch * m];
        for n in 0..batch {
            for j in 0..m {
                let mut acc = self.bias.as_ref().map_or(0.0, |b| b[j] as f64);
                for i in 0..k {
                    acc += x[n * k + i] * self.weight.data[i * m + j] as f64;
                }
                y[n * m + j] = acc;
            }
        }
        y
    }
}

impl BatchNorm {
    /// Checks the four buffers (`features` values each, finite) and the epsilon of the layer
    /// located `at`.
    fn check(&self, at: &str, features: usize) -> Result<(), SpecError> {
        check_len(at, "gamma", &self.gamma, features)?;
        check_len(at, "beta", &self.beta, features)?;
        check_len(at, "mean", &self.mean, features)?;
        check_len(at, "var", &self.var, features)?;
        let epsilon = self.epsilon;
        if !(epsilon.is_finite() && epsilon >= 0.0) {
            return Err(SpecError::Parameter {
                location: at.to_string(),
                problem: format!("epsilon {epsilon} must be finite and non-negative"),
            });
        }
        if let Some(v) = self.var.iter().find(|v| **v + epsilon <= 0.0) {
            return Err(SpecError::Parameter {
                location: at.to_string(),
                problem: format!("var + epsilon must be positive, found var {v}"),
            });
        }
        Ok(())
    }

    /// The reference normalisation of `x` along dimension 1 of `input`.
    fn forward(&self, input: FeatureShape, x: &[f64]) -> Vec<f64> {
        let c = input.dim1();
        let inner = input.numel() / c;
        x.iter()
            .enumerate()
            .map(|(i, v)| {
                let ch = (i / inner) % c;
                (v - self.mean[ch] as f64) / (self.var[ch] as f64 + self.epsilon as f64).sqrt()
                    * self.gamma[ch] as f64
                    + self.beta[ch] as f64
            })
            .collect()
    }
}

/// The input and output maps of a [`ConvTranspose2d`], as checked by
/// [`ConvTranspose2d::geometry`].
#[derive(Clone, Copy, Debug)]
struct ConvGeometry {
    /// `[c_in, H, W]`.
    input: ImageShape,
    /// `[c_out, H_out, W_out]`.
    output: ImageShape,
}

impl ConvTranspose2d {
    /// Checks the layer (located `at`) against its input, which must be a `[N, c_in, H, W]`
    /// map, and returns the input and output maps.
    fn geometry(&self, at: &str, input: FeatureShape) -> Result<ConvGeometry, SpecError> {
        let Self {
            weight,
            c_in,
            c_out,
            kernel,
            bias,
            stride,
            padding,
            output_padding,
        } = self;
        let wrong_input = || SpecError::Shape {
            location: at.to_string(),
            expected: format!("[N, {c_in}, H, W]"),
            found: input,
        };
        let FeatureShape::Map(map) = input else {
            return Err(wrong_input());
        };
        if map.channels != *c_in {
            return Err(wrong_input());
        }
        if *c_out == 0 || kernel.contains(&0) {
            return Err(SpecError::ZeroSize {
                what: "ConvTranspose2d c_out and kernel",
            });
        }
        if stride.contains(&0) {
            return Err(SpecError::Parameter {
                location: at.to_string(),
                problem: "stride must be at least 1".into(),
            });
        }
        if output_padding[0] >= stride[0] || output_padding[1] >= stride[1] {
            return Err(SpecError::Parameter {
                location: at.to_string(),
                problem: format!(
                    "output_padding {output_padding:?} must be smaller than stride {stride:?}"
                ),
            });
        }
        check_len(
            at,
            "weight",
            weight,
            product(&[*c_in, *c_out, kernel[0], kernel[1]]),
        )?;
        if let Some(b) = bias {
            check_len(at, "bias", b, *c_out)?;
        }
        let h = deconv_out(
            map.height,
            kernel[0],
            stride[0],
            padding[0],
            output_padding[0],
        );
        let w = deconv_out(
            map.width,
            kernel[1],
            stride[1],
            padding[1],
            output_padding[1],
        );
        let (Some(height), Some(width)) = (h, w) else {
            return Err(SpecError::Parameter {
                location: at.to_string(),
                problem: format!(
                    "padding {padding:?} leaves no output for a {}x{} input",
                    map.height, map.width
                ),
            });
        };
        Ok(ConvGeometry {
            input: map,
            output: ImageShape {
                channels: *c_out,
                height,
                width,
            },
        })
    }

    /// The reference transposed convolution of `x` (`[batch, c_in, H, W]`, f64) over the
    /// checked `geometry`: each input value scatters its products into the output.
    fn forward(&self, geometry: ConvGeometry, batch: usize, x: &[f64]) -> Vec<f64> {
        let Self {
            weight,
            c_in,
            c_out,
            kernel,
            bias,
            stride,
            padding,
            ..
        } = self;
        let (hi, wi) = (geometry.input.height, geometry.input.width);
        let (ho, wo) = (geometry.output.height, geometry.output.width);
        let mut y = vec![0.0; batch * c_out * ho * wo];
        for n in 0..batch {
            for co in 0..*c_out {
                let b = bias.as_ref().map_or(0.0, |b| b[co] as f64);
                y[(n * c_out + co) * ho * wo..(n * c_out + co + 1) * ho * wo].fill(b);
            }
            for ci in 0..*c_in {
                for iy in 0..hi {
                    for ix in 0..wi {
                        let v = x[((n * c_in + ci) * hi + iy) * wi + ix];
                        for co in 0..*c_out {
                            for ky in 0..kernel[0] {
                                let oy = (iy * stride[0] + ky) as i64 - padding[0] as i64;
                                if oy < 0 || oy >= ho as i64 {
                                    continue;
                                }
                                for kx in 0..kernel[1] {
                                    let ox = (ix * stride[1] + kx) as i64 - padding[1] as i64;
                                    if ox < 0 || ox >= wo as i64 {
                                        continue;
                                    }
                                    let w = weight
                                        [((ci * c_out + co) * kernel[0] + ky) * kernel[1] + kx]
                                        as f64;
                                    y[((n * c_out + co) * ho + oy as usize) * wo + ox as usize] +=
                                        v * w;
                                }
                            }
                        }
                    }
                }
            }
        }
        y
    }
}
