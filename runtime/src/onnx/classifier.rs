//! The evaluation classifier as a framework-neutral description and as an ONNX graph, so the
//! runtime can run it with tract beside a generator (to keep only the samples the classifier
//! recognises as their requested class) without burn.
//!
//! The network is the trainer's LeNet-style CNN (`trainer/src/quality/classifier.rs`):
//!
//! ```text
//! image [N, C, H, W] in [-1, 1]
//!   → Conv k×k "same", stride 1 → ReLU → MaxPool 2×2 stride 2 (floor)   [N, c1, H/2, W/2]
//!   → Conv k×k "same", stride 1 → ReLU → MaxPool 2×2 stride 2 (floor)   [N, c2, H/4, W/4]
//!   → Flatten (NCHW order) → Gemm + ReLU (features) → Gemm (logits)
//!   → Softmax → probabilities [N, classes]
//! ```
//!
//! "Same" padding is burn's: `k - 1` zeros per axis, `(k - 1) / 2` before and the rest after
//! (so an even kernel pads one more at the end); it is written as explicit ONNX `pads`, not
//! `auto_pad`, so no reader has to agree on where the odd zero goes. Pooling drops an odd last
//! row or column, like burn's `MaxPool2d` (and ONNX's default `ceil_mode = 0`). The trainer
//! trains on pixels in `[-1, 1]`, the range generators produce, so the graph reads the
//! generator's output as it is.
//!
//! The file says what it is in its `metadata_props`: [`keys::KIND`] = `"classifier"`, the class
//! names, the image shape, the input pixel range and the layout version, plus free entries (data
//! set, test accuracy, the trainer's card). [`ClassifierSpec::forward_reference`] is a slow,
//! obviously-correct forward pass that the tests hold the ONNX graph (run by tract) against.

use std::collections::BTreeMap;
use std::path::Path;

use tract_onnx::pb::{
    GraphProto, ModelProto, OperatorSetIdProto, StringStringEntryProto, TensorShapeProto,
    TypeProto, ValueInfoProto, tensor_proto::DataType, tensor_shape_proto::Dimension,
    tensor_shape_proto::dimension::Value as DimValue, type_proto,
};

use crate::error::Error;
use crate::onnx::metadata::{self, MetadataError, PIXEL_RANGE, problem};
use crate::onnx::spec::{ImageShape, MAX_VALUES_PER_SAMPLE, Matrix, SpecError, check_len};
use crate::onnx::{
    BATCH_DIM, IR_VERSION, OPSET_VERSION, attr_int, attr_ints, node, tensor_f32, value_info,
};

/// Name of the classifier's image input.
pub const INPUT_IMAGE: &str = "image";
/// Name of the classifier's output: one probability per class.
pub const OUTPUT_PROBABILITIES: &str = "probabilities";
/// The value of [`keys::KIND`] in a classifier file.
pub const KIND_CLASSIFIER: &str = "classifier";
/// Revision of the classifier's metadata layout (and graph conventions) written and read.
pub const FORMAT_VERSION: u32 = 1;

/// Metadata key names of a classifier file. [`keys::RESERVED`] are written from the spec; a
/// spec's extra metadata may use any other key (the recommended ones are below). The shared
/// names mean what they mean in a generator, except that [`keys::PIXEL_RANGE`] is the range of
/// the input pixels here (always `"-1,1"`).
pub mod keys {
    pub use crate::onnx::metadata::keys::{
        CLASSES, DATASET, FORMAT_VERSION, IMAGE_SHAPE, KIND, NUM_CLASSES, PIXEL_RANGE, Z_DIM,
    };
    /// Keys written from the spec itself.
    pub const RESERVED: [&str; 6] = [
        FORMAT_VERSION,
        KIND,
        IMAGE_SHAPE,
        CLASSES,
        NUM_CLASSES,
        PIXEL_RANGE,
    ];

    /// Recommended: accuracy on the data set's test split, e.g. `"0.9799"`.
    pub const TEST_ACCURACY: &str = "gantry.test_accuracy";
    /// Recommended: the number of test images the accuracy was measured on.
    pub const TEST_EXAMPLES: &str = "gantry.test_examples";
    /// Recommended: the trainer's whole JSON card (layer sizes, training settings...).
    pub const CARD: &str = "gantry.card";

    /// Whether `key` is written from the spec itself.
    pub fn is_reserved(key: &str) -> bool {
        RESERVED.contains(&key)
    }
}

/// A 2-D convolution with "same" padding and stride 1 (see the module docs).
#[derive(Clone, Debug, PartialEq)]
pub struct Conv {
    /// `[c_out, c_in, kh, kw]` row-major, the layout of ONNX `Conv` and burn's `Conv2d`.
    pub weight: Vec<f32>,
    /// Input channels.
    pub c_in: usize,
    /// Output channels.
    pub c_out: usize,
    /// `[kh, kw]`.
    pub kernel: [usize; 2],
    /// `c_out` values.
    pub bias: Vec<f32>,
}

impl Conv {
    /// burn's "same" padding for stride 1 as `[top, left, bottom, right]`: `k - 1` zeros per
    /// axis, the odd one (even kernels) at the end.
    pub fn pads(&self) -> [usize; 4] {
        let [kh, kw] = self.kernel;
        let before = |k: usize| k.saturating_sub(1) / 2;
        let after = |k: usize| k.saturating_sub(1) - before(k);
        [before(kh), before(kw), after(kh), after(kw)]
    }
}

/// A dense layer `y = x W + b`.
#[derive(Clone, Debug, PartialEq)]
pub struct Dense {
    /// `[in, out]` row-major (burn's `Linear` layout; ONNX `Gemm` without `transB`).
    pub weight: Matrix,
    /// `out` values.
    pub bias: Vec<f32>,
}

/// The evaluation classifier in inference form, independent of any framework (see the module
/// docs for the network).
#[derive(Clone, Debug, PartialEq)]
pub struct ClassifierSpec {
    /// Shape of the images it reads.
    pub image: ImageShape,
    /// Class names, in label order (one probability each).
    pub classes: Vec<String>,
    /// First convolution: `image.channels` → `c1` channels.
    pub conv1: Conv,
    /// Second convolution: `c1` → `c2` channels.
    pub conv2: Conv,
    /// Penultimate dense layer, `[c2 · H/4 · W/4, features]`, followed by ReLU.
    pub hidden: Dense,
    /// Output layer, `[features, classes]`: the logits.
    pub output: Dense,
    /// Free metadata (data set, test accuracy, the trainer's card...); keys must not be
    /// [reserved](keys::RESERVED).
    pub metadata: BTreeMap<String, String>,
}

/// The classifier's graph as it is built: nodes, weights and the shapes of intermediate values.
#[derive(Default)]
struct GraphBuilder {
    nodes: Vec<tract_onnx::pb::NodeProto>,
    initializers: Vec<tract_onnx::pb::TensorProto>,
    value_infos: Vec<tract_onnx::pb::ValueInfoProto>,
}

impl GraphBuilder {
    /// Adds `n`, whose output has `dims` per image.
    fn push(&mut self, n: tract_onnx::pb::NodeProto, dims: &[usize]) {
        if let Some(out) = n.output.first() {
            self.value_infos
                .push(value_info(out, DataType::Float, dims));
        }
        self.nodes.push(n);
    }

    /// Conv ("same" padding) → ReLU → 2×2 max-pool on `input`; returns the pool's output.
    fn conv_block(
        &mut self,
        prefix: &str,
        conv: &Conv,
        input: &str,
        conv_shape: ImageShape,
        pool_shape: ImageShape,
    ) -> String {
        let dims = |s: ImageShape| [s.channels, s.height, s.width];
        let (w, b) = (format!("{prefix}.weight"), format!("{prefix}.bias"));
        self.initializers.push(tensor_f32(
            &w,
            &[conv.c_out, conv.c_in, conv.kernel[0], conv.kernel[1]],
            &conv.weight,
        ));
        self.initializers
            .push(tensor_f32(&b, &[conv.c_out], &conv.bias));
        let (conv_out, relu_out, pool_out) = (
            format!("{prefix}.output"),
            format!("{prefix}.relu"),
            format!("{prefix}.pool"),
        );
        let conv_attrs = vec![
            attr_ints("kernel_shape", &conv.kernel),
            attr_ints("strides", &[1, 1]),
            attr_ints("pads", &conv.pads()),
            attr_ints("dilations", &[1, 1]),
            attr_int("group", 1),
        ];
        let conv_node = node(
            &format!("{prefix}.Conv"),
            "Conv",
            &[input, &w, &b],
            &conv_out,
            conv_attrs,
        );
        self.push(conv_node, &dims(conv_shape));
        let relu = node(
            &format!("{prefix}.Relu"),
            "Relu",
            &[&conv_out],
            &relu_out,
            vec![],
        );
        self.push(relu, &dims(conv_shape));
        let pool_attrs = vec![
            attr_ints("kernel_shape", &[2, 2]),
            attr_ints("strides", &[2, 2]),
            attr_ints("pads", &[0, 0, 0, 0]),
            attr_int("ceil_mode", 0),
        ];
        let pool = node(
            &format!("{prefix}.MaxPool"),
            "MaxPool",
            &[&relu_out],
            &pool_out,
            pool_attrs,
        );
        self.push(pool, &dims(pool_shape));
        pool_out
    }

    /// `Gemm(input, W, b)` named `prefix`, output `out`; returns `out`.
    fn dense(&mut self, prefix: &str, dense: &Dense, input: &str, out: &str) -> String {
        let (w, b) = (format!("{prefix}.weight"), format!("{prefix}.bias"));
        self.initializers.push(tensor_f32(
            &w,
            &[dense.weight.rows, dense.weight.cols],
            &dense.weight.data,
        ));
        self.initializers
            .push(tensor_f32(&b, &[dense.bias.len()], &dense.bias));
        let gemm = node(
            &format!("{prefix}.Gemm"),
            "Gemm",
            &[input, &w, &b],
            out,
            vec![],
        );
        self.push(gemm, &[dense.weight.cols]);
        out.to_string()
    }
}

/// Activation shapes of a checked [`ClassifierSpec`] for one image.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ClassifierShapes {
    /// After the first convolution (before pooling): `[c1, H, W]`.
    pub conv1: ImageShape,
    /// After the first pooling: `[c1, H/2, W/2]`.
    pub pool1: ImageShape,
    /// After the second convolution: `[c2, H/2, W/2]`.
    pub conv2: ImageShape,
    /// After the second pooling: `[c2, H/4, W/4]`.
    pub pool2: ImageShape,
    /// Length of the flattened `pool2`: the hidden layer's input.
    pub flat: usize,
    /// Width of the hidden layer (the quality features).
    pub features: usize,
    /// Number of classes.
    pub classes: usize,
}

/// The product of `dims`, or `None` past [`MAX_VALUES_PER_SAMPLE`].
fn bounded(dims: &[usize]) -> Option<usize> {
    dims.iter()
        .try_fold(1usize, |n, d| n.checked_mul(*d))
        .filter(|n| *n <= MAX_VALUES_PER_SAMPLE)
}

fn too_large(location: &str) -> SpecError {
    SpecError::Parameter {
        location: location.to_string(),
        problem: format!("more than the limit of {MAX_VALUES_PER_SAMPLE} values per image"),
    }
}

fn check_conv(location: &str, conv: &Conv, c_in: usize) -> Result<(), SpecError> {
    if conv.c_in != c_in {
        return Err(SpecError::Parameter {
            location: location.to_string(),
            problem: format!("reads {} channels but receives {c_in}", conv.c_in),
        });
    }
    if conv.c_out == 0 || conv.kernel.contains(&0) {
        return Err(SpecError::Parameter {
            location: location.to_string(),
            problem: format!(
                "needs at least 1 output channel and a kernel of at least 1x1, got {} channels and {}x{}",
                conv.c_out, conv.kernel[0], conv.kernel[1]
            ),
        });
    }
    let weights = bounded(&[conv.c_out, conv.c_in, conv.kernel[0], conv.kernel[1]])
        .ok_or_else(|| too_large(location))?;
    check_len(location, "weight", &conv.weight, weights)?;
    check_len(location, "bias", &conv.bias, conv.c_out)
}

fn check_dense(location: &str, dense: &Dense, inputs: usize) -> Result<(), SpecError> {
    let Matrix { rows, cols, .. } = dense.weight;
    if rows != inputs {
        return Err(SpecError::Parameter {
            location: location.to_string(),
            problem: format!("reads {rows} values but receives {inputs}"),
        });
    }
    if cols == 0 {
        return Err(SpecError::ZeroSize {
            what: "dense layer width",
        });
    }
    let weights = bounded(&[rows, cols]).ok_or_else(|| too_large(location))?;
    check_len(location, "weight", &dense.weight.data, weights)?;
    check_len(location, "bias", &dense.bias, cols)
}

impl ClassifierSpec {
    /// Checks every buffer's length and finiteness, that the layers chain from the image to
    /// one logit per class, and that the metadata uses no reserved key; returns the shapes.
    pub fn shapes(&self) -> Result<ClassifierShapes, SpecError> {
        let ImageShape {
            channels,
            height,
            width,
        } = self.image;
        for (what, v) in [
            ("image channels", channels),
            ("image height", height),
            ("image width", width),
        ] {
            if v == 0 {
                return Err(SpecError::ZeroSize { what });
            }
        }
        if height < 4 || width < 4 {
            return Err(SpecError::Parameter {
                location: "image".into(),
                problem: format!(
                    "the classifier pools twice by 2 and needs images of at least 4x4, got {height}x{width}"
                ),
            });
        }
        if self.classes.len() < 2 {
            return Err(SpecError::Parameter {
                location: "classes".into(),
                problem: format!(
                    "a classifier needs at least 2 classes, got {}",
                    self.classes.len()
                ),
            });
        }
        bounded(&[channels, height, width]).ok_or_else(|| too_large("image"))?;
        check_conv("conv1", &self.conv1, channels)?;
        check_conv("conv2", &self.conv2, self.conv1.c_out)?;
        let map = |c: usize, h: usize, w: usize, location: &str| {
            bounded(&[c, h, w])
                .map(|_| ImageShape {
                    channels: c,
                    height: h,
                    width: w,
                })
                .ok_or_else(|| too_large(location))
        };
        let conv1 = map(self.conv1.c_out, height, width, "conv1")?;
        let pool1 = map(self.conv1.c_out, height / 2, width / 2, "pool1")?;
        let conv2 = map(self.conv2.c_out, pool1.height, pool1.width, "conv2")?;
        let pool2 = map(self.conv2.c_out, conv2.height / 2, conv2.width / 2, "pool2")?;
        let flat = pool2.numel();
        check_dense("hidden", &self.hidden, flat)?;
        let features = self.hidden.weight.cols;
        check_dense("output", &self.output, features)?;
        if self.output.weight.cols != self.classes.len() {
            return Err(SpecError::Parameter {
                location: "output".into(),
                problem: format!(
                    "produces {} logits but there are {} classes",
                    self.output.weight.cols,
                    self.classes.len()
                ),
            });
        }
        if let Some(key) = self.metadata.keys().find(|k| keys::is_reserved(k)) {
            return Err(SpecError::ReservedMetadataKey { key: key.clone() });
        }
        Ok(ClassifierShapes {
            conv1,
            pool1,
            conv2,
            pool2,
            flat,
            features,
            classes: self.classes.len(),
        })
    }

    /// Checks the spec (see [`ClassifierSpec::shapes`]).
    pub fn validate(&self) -> Result<(), SpecError> {
        self.shapes().map(|_| ())
    }

    /// The metadata the spec is written with.
    pub fn info(&self) -> ClassifierInfo {
        ClassifierInfo {
            format_version: FORMAT_VERSION,
            image: self.image,
            classes: self.classes.clone(),
            metadata: self.metadata.clone(),
        }
    }

    /// The ONNX model of the spec (checked first).
    pub fn to_model_proto(&self) -> Result<ModelProto, SpecError> {
        let shapes = self.shapes()?;
        let mut g = GraphBuilder::default();
        let mut current = INPUT_IMAGE.to_string();
        for (prefix, conv, conv_shape, pool_shape) in [
            ("conv1", &self.conv1, shapes.conv1, shapes.pool1),
            ("conv2", &self.conv2, shapes.conv2, shapes.pool2),
        ] {
            current = g.conv_block(prefix, conv, &current, conv_shape, pool_shape);
        }
        g.push(
            node(
                "flatten",
                "Flatten",
                &[&current],
                "flatten.output",
                vec![attr_int("axis", 1)],
            ),
            &[shapes.flat],
        );
        // The hidden layer's ReLU output is the feature vector of FID and precision/recall.
        let hidden = g.dense("hidden", &self.hidden, "flatten.output", "hidden.output");
        g.push(
            node("hidden.Relu", "Relu", &[&hidden], "features", vec![]),
            &[self.hidden.weight.cols],
        );
        let logits = g.dense("output", &self.output, "features", "logits");
        g.nodes.push(node(
            "softmax",
            "Softmax",
            &[&logits],
            OUTPUT_PROBABILITIES,
            vec![attr_int("axis", 1)],
        ));
        let image = self.image;
        let graph = GraphProto {
            name: "gantry_classifier".into(),
            node: g.nodes,
            initializer: g.initializers,
            input: vec![value_info(
                INPUT_IMAGE,
                DataType::Float,
                &[image.channels, image.height, image.width],
            )],
            output: vec![value_info(
                OUTPUT_PROBABILITIES,
                DataType::Float,
                &[shapes.classes],
            )],
            value_info: g.value_infos,
            doc_string: "Gantry evaluation classifier: images in [-1, 1] to class probabilities."
                .into(),
            ..Default::default()
        };
        Ok(ModelProto {
            ir_version: IR_VERSION,
            opset_import: vec![OperatorSetIdProto {
                domain: String::new(),
                version: OPSET_VERSION,
            }],
            producer_name: "gantry".into(),
            producer_version: env!("CARGO_PKG_VERSION").into(),
            graph: Some(graph),
            metadata_props: self.info().to_props(),
            ..Default::default()
        })
    }

    /// Encodes the spec as ONNX protobuf bytes.
    pub fn to_onnx(&self) -> Result<Vec<u8>, SpecError> {
        Ok(prost::Message::encode_to_vec(&self.to_model_proto()?))
    }

    /// Writes the ONNX file atomically (a temporary file in the same folder, then a rename).
    pub fn write_onnx(&self, path: impl AsRef<Path>) -> Result<(), SpecError> {
        crate::onnx::write::write_model(path.as_ref(), &self.to_model_proto()?)
    }

    /// A direct, unoptimised forward pass (f64 arithmetic) of the network as described:
    /// `images` holds `count` images `[C, H, W]` in `[-1, 1]`, planar; returns `[count,
    /// classes]` probabilities, row-major.
    pub fn forward_reference(&self, images: &[f32], count: usize) -> Result<Vec<f32>, SpecError> {
        let shapes = self.shapes()?;
        let numel = self.image.numel();
        if count.checked_mul(numel) != Some(images.len()) {
            return Err(SpecError::Input {
                problem: format!(
                    "{} pixel values are not {count} images of {}",
                    images.len(),
                    self.image
                ),
            });
        }
        let mut out = Vec::with_capacity(count * shapes.classes);
        for image in images.chunks(numel.max(1)).take(count) {
            let x: Vec<f64> = image.iter().map(|v| f64::from(*v)).collect();
            let x = max_pool(&relu(conv_same(&x, self.image, &self.conv1)), shapes.conv1);
            let x = max_pool(
                &relu(conv_same(&x, shapes.pool1, &self.conv2)),
                shapes.conv2,
            );
            let features = relu(dense(&x, &self.hidden));
            let logits = dense(&features, &self.output);
            let top = logits.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            let exp: Vec<f64> = logits.iter().map(|l| (l - top).exp()).collect();
            let sum: f64 = exp.iter().sum();
            out.extend(exp.iter().map(|e| (e / sum) as f32));
        }
        Ok(out)
    }
}

fn relu(mut x: Vec<f64>) -> Vec<f64> {
    x.iter_mut().for_each(|v| *v = v.max(0.0));
    x
}

/// Stride-1 convolution of one `[c_in, H, W]` map with burn's "same" zero padding.
fn conv_same(x: &[f64], input: ImageShape, conv: &Conv) -> Vec<f64> {
    let ImageShape {
        channels: c_in,
        height: h,
        width: w,
    } = input;
    let [kh, kw] = conv.kernel;
    let [top, left, _, _] = conv.pads();
    let mut y = vec![0.0; conv.c_out * h * w];
    for o in 0..conv.c_out {
        for r in 0..h {
            for c in 0..w {
                let mut acc = f64::from(conv.bias[o]);
                for i in 0..c_in {
                    for u in 0..kh {
                        // Input row r + u - top; outside the map it is a padding zero.
                        let Some(ir) = (r + u).checked_sub(top).filter(|ir| *ir < h) else {
                            continue;
                        };
                        for v in 0..kw {
                            let Some(ic) = (c + v).checked_sub(left).filter(|ic| *ic < w) else {
                                continue;
                            };
                            let weight = conv.weight[((o * c_in + i) * kh + u) * kw + v];
                            acc += f64::from(weight) * x[(i * h + ir) * w + ic];
                        }
                    }
                }
                y[(o * h + r) * w + c] = acc;
            }
        }
    }
    y
}

/// 2×2 max-pooling with stride 2 of one `[C, H, W]` map; an odd last row or column is dropped.
fn max_pool(x: &[f64], input: ImageShape) -> Vec<f64> {
    let ImageShape {
        channels,
        height: h,
        width: w,
    } = input;
    let (ho, wo) = (h / 2, w / 2);
    let mut y = Vec::with_capacity(channels * ho * wo);
    for ch in 0..channels {
        for r in 0..ho {
            for c in 0..wo {
                let at = |dr: usize, dc: usize| x[(ch * h + 2 * r + dr) * w + 2 * c + dc];
                y.push(at(0, 0).max(at(0, 1)).max(at(1, 0)).max(at(1, 1)));
            }
        }
    }
    y
}

/// `x W + b` for one row `x`.
fn dense(x: &[f64], layer: &Dense) -> Vec<f64> {
    let Matrix { rows, cols, data } = &layer.weight;
    (0..*cols)
        .map(|j| {
            (0..*rows).fold(f64::from(layer.bias[j]), |acc, i| {
                acc + x[i] * f64::from(data[i * cols + j])
            })
        })
        .collect()
}

/// A classifier's self-description, parsed from its ONNX `metadata_props`.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ClassifierInfo {
    /// Metadata layout revision ([`FORMAT_VERSION`]).
    pub format_version: u32,
    /// Shape of the images it reads.
    pub image: ImageShape,
    /// Class names, in label order.
    pub classes: Vec<String>,
    /// Every other metadata entry (data set, test accuracy, card...).
    pub metadata: BTreeMap<String, String>,
}

impl ClassifierInfo {
    /// The `metadata_props` entries, reserved keys first.
    pub fn to_props(&self) -> Vec<StringStringEntryProto> {
        let classes =
            serde_json::to_string(&self.classes).expect("a list of strings always serialises");
        let ImageShape {
            channels,
            height,
            width,
        } = self.image;
        let reserved = [
            (keys::FORMAT_VERSION, self.format_version.to_string()),
            (keys::KIND, KIND_CLASSIFIER.to_string()),
            (keys::IMAGE_SHAPE, format!("{channels},{height},{width}")),
            (keys::CLASSES, classes),
            (keys::NUM_CLASSES, self.classes.len().to_string()),
            (
                keys::PIXEL_RANGE,
                format!("{},{}", PIXEL_RANGE[0], PIXEL_RANGE[1]),
            ),
        ];
        reserved
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .chain(self.metadata.iter().map(|(k, v)| (k.clone(), v.clone())))
            .map(|(key, value)| StringStringEntryProto { key, value })
            .collect()
    }

    /// Parses `metadata_props`: every reserved key must be present and consistent, and the
    /// kind must be [`KIND_CLASSIFIER`].
    pub fn from_props(props: &[StringStringEntryProto]) -> Result<ClassifierInfo, MetadataError> {
        let mut map = metadata::entries(props)?;
        check_kind(&mut map)?;
        let version = metadata::take(&mut map, keys::FORMAT_VERSION)?;
        let format_version: u32 = version.trim().parse().map_err(|_| {
            problem(
                keys::FORMAT_VERSION,
                format!("is {version:?}, expected an integer"),
            )
        })?;
        if format_version != FORMAT_VERSION {
            return Err(problem(
                keys::FORMAT_VERSION,
                format!(
                    "is {format_version}, this runtime reads classifier version {FORMAT_VERSION}; upgrade the runtime or convert the classifier again"
                ),
            ));
        }
        let image = metadata::image_shape(&mut map)?;
        let classes = metadata::classes(&mut map)?;
        if classes.len() < 2 {
            return Err(problem(
                keys::CLASSES,
                format!(
                    "lists {} classes, a classifier has at least 2",
                    classes.len()
                ),
            ));
        }
        metadata::check_pixel_range(&mut map)?;
        Ok(ClassifierInfo {
            format_version,
            image,
            classes,
            metadata: map,
        })
    }
}

/// [`keys::KIND`] must say `classifier`; a generator's file is named as one.
fn check_kind(map: &mut BTreeMap<String, String>) -> Result<(), MetadataError> {
    match map.remove(keys::KIND).as_deref() {
        Some(KIND_CLASSIFIER) => Ok(()),
        Some(other) => Err(problem(
            keys::KIND,
            format!("is {other:?}: the file is not a classifier"),
        )),
        None if map.contains_key(keys::Z_DIM) => Err(problem(
            keys::KIND,
            "is missing and the file has a noise width: it is a Gantry generator, not a classifier; pass the .onnx that `trainer classifier` wrote beside its .bpk",
        )),
        None => Err(problem(
            keys::KIND,
            "is missing: the file is not a classifier written by `trainer classifier` (or `trainer classifier-onnx`)",
        )),
    }
}

fn fixed(d: &Dimension) -> Option<i64> {
    match d.value {
        Some(DimValue::DimValue(v)) => Some(v),
        _ => None,
    }
}

/// The element type and dimensions of a graph input or output, as written in the file.
fn float_dims(v: &ValueInfoProto) -> Result<&[Dimension], String> {
    let Some(TypeProto {
        value: Some(type_proto::Value::TensorType(t)),
        ..
    }) = &v.r#type
    else {
        return Err(format!("`{}` is not a tensor", v.name));
    };
    if t.elem_type != DataType::Float as i32 {
        let dtype = DataType::try_from(t.elem_type).map_or("UNDEFINED", |d| d.as_str_name());
        return Err(format!("`{}` is {dtype}, expected FLOAT", v.name));
    }
    match &t.shape {
        Some(TensorShapeProto { dim }) => Ok(dim),
        None => Err(format!("`{}` has no shape", v.name)),
    }
}

/// Checks `dims` against `[N, rest...]` with a symbolic (or unknown) batch.
fn check_signature(name: &str, dims: &[Dimension], rest: &[usize]) -> Result<(), String> {
    let want = || {
        let rest: Vec<String> = rest.iter().map(usize::to_string).collect();
        format!("[{BATCH_DIM}, {}]", rest.join(", "))
    };
    let got = || {
        let dims: Vec<String> = dims
            .iter()
            .map(|d| match &d.value {
                Some(DimValue::DimValue(v)) => v.to_string(),
                Some(DimValue::DimParam(p)) if !p.is_empty() => p.clone(),
                _ => "?".into(),
            })
            .collect();
        format!("[{}]", dims.join(", "))
    };
    if dims.len() != rest.len() + 1 {
        return Err(format!("`{name}` has shape {}, expected {}", got(), want()));
    }
    if let Some(b) = fixed(&dims[0]) {
        return Err(format!(
            "`{name}` has a fixed batch dimension ({b}); write it with a symbolic batch `{BATCH_DIM}`"
        ));
    }
    if dims[1..]
        .iter()
        .zip(rest)
        .any(|(d, w)| fixed(d).is_some_and(|v| v != *w as i64))
    {
        return Err(format!(
            "`{name}` has shape {}, but the metadata says {}",
            got(),
            want()
        ));
    }
    Ok(())
}

/// Decodes classifier bytes and checks that they are a Gantry classifier: metadata (kind,
/// classes, image shape) and the graph's signature (`image` → `probabilities`). `path` names
/// the file in errors.
pub(crate) fn check_classifier(
    path: &Path,
    bytes: &[u8],
) -> Result<(ModelProto, ClassifierInfo), Error> {
    let proto = crate::onnx::decode(path, bytes)?;
    let info =
        ClassifierInfo::from_props(&proto.metadata_props).map_err(|error| Error::Metadata {
            path: path.to_path_buf(),
            error,
        })?;
    let bad = |reason: String| Error::Format {
        path: path.to_path_buf(),
        problem: format!("not a Gantry classifier: {reason}"),
    };
    let Some(graph) = &proto.graph else {
        return Err(bad("it has no graph".into()));
    };
    let initializers: std::collections::HashSet<&str> =
        graph.initializer.iter().map(|t| t.name.as_str()).collect();
    let inputs: Vec<&ValueInfoProto> = graph
        .input
        .iter()
        .filter(|i| !initializers.contains(i.name.as_str()))
        .collect();
    let names = |v: &[&ValueInfoProto]| v.iter().map(|i| i.name.clone()).collect::<Vec<_>>();
    if names(&inputs) != [INPUT_IMAGE] {
        return Err(bad(format!(
            "its inputs are {:?}, expected [\"{INPUT_IMAGE}\"]",
            names(&inputs)
        )));
    }
    let outputs: Vec<&ValueInfoProto> = graph.output.iter().collect();
    if names(&outputs) != [OUTPUT_PROBABILITIES] {
        return Err(bad(format!(
            "its outputs are {:?}, expected [\"{OUTPUT_PROBABILITIES}\"]",
            names(&outputs)
        )));
    }
    let ImageShape {
        channels,
        height,
        width,
    } = info.image;
    check_signature(
        INPUT_IMAGE,
        float_dims(inputs[0]).map_err(bad)?,
        &[channels, height, width],
    )
    .map_err(bad)?;
    check_signature(
        OUTPUT_PROBABILITIES,
        float_dims(outputs[0]).map_err(bad)?,
        &[info.classes.len()],
    )
    .map_err(bad)?;
    Ok((proto, info))
}
