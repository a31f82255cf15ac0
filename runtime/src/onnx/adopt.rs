//! Adopting generators made by other frameworks: PyTorch (`torch.onnx.export`), TensorFlow
//! (tf2onnx) or anything else that writes a plain ONNX graph from noise to an image.
//!
//! Gantry's own files carry their conventions in metadata (`crate::onnx::metadata`): inputs `z`
//! `[N, z_dim]` and `label` int64 `[N]`, output `image` `[N, C, H, W]` in `[-1, 1]`. A foreign
//! file has none of it, so this module reads what the graph tells — the noise input and its
//! size, an integer label input and its class count (the rows of the embedding table it indexes,
//! or a `OneHot` depth), the output's shape (by tract's shape inference) and layout, the pixel
//! range from a final `Tanh` or `Sigmoid` — and takes the rest from [`Foreign`] (the `--layout`,
//! `--pixel-range`, `--image`, `--classes`, `--z-dim` flags). It then writes the same graph with
//! Gantry's names, small adapter nodes where the conventions differ (a `Reshape` of `z`, a
//! `Cast` of the label, a final rescale, `Reshape` or `Transpose`) and Gantry's metadata, so
//! every later stage sees a Gantry generator. What was read and from where is kept in the
//! metadata key [`keys::ADOPTED`] and returned as an [`Adoption`].

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;
use std::path::Path;
use std::str::FromStr;

use tract_onnx::pb::{
    ModelProto, NodeProto, ValueInfoProto, tensor_proto::DataType,
    tensor_shape_proto::dimension::Value as DimValue, type_proto,
};
use tract_onnx::prelude::*;

use crate::error::{Error, Result};
use crate::onnx::constants::{Const, readable_constants};
use crate::onnx::metadata::{FORMAT_VERSION, ModelInfo, PIXEL_RANGE, keys};
use crate::onnx::spec::{ImageShape, MAX_VALUES_PER_SAMPLE};
use crate::onnx::{INPUT_LABEL, INPUT_Z, OUTPUT_IMAGE, attr_int, node, tensor_f32, tensor_i64};

/// How a foreign generator lays out its image values.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Layout {
    /// Channels first, `[N, C, H, W]` (PyTorch; Gantry's own).
    Nchw,
    /// Channels last, `[N, H, W, C]` (TensorFlow/Keras).
    Nhwc,
}

impl fmt::Display for Layout {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Layout::Nchw => "nchw",
            Layout::Nhwc => "nhwc",
        })
    }
}

impl FromStr for Layout {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Layout, String> {
        match s.to_ascii_lowercase().as_str() {
            "nchw" => Ok(Layout::Nchw),
            "nhwc" => Ok(Layout::Nhwc),
            _ => Err(format!("`{s}` is not a layout: use nchw or nhwc")),
        }
    }
}

/// The range of a foreign generator's output values.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum PixelRange {
    /// `[-1, 1]` (a final tanh; Gantry's own).
    #[serde(rename = "-1,1")]
    MinusOneToOne,
    /// `[0, 1]` (a final sigmoid).
    #[serde(rename = "0,1")]
    ZeroToOne,
    /// `[0, 255]`.
    #[serde(rename = "0,255")]
    ZeroTo255,
}

impl PixelRange {
    /// `[low, high]`.
    pub fn bounds(self) -> [f32; 2] {
        match self {
            PixelRange::MinusOneToOne => [-1.0, 1.0],
            PixelRange::ZeroToOne => [0.0, 1.0],
            PixelRange::ZeroTo255 => [0.0, 255.0],
        }
    }
}

impl fmt::Display for PixelRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let [lo, hi] = self.bounds();
        write!(f, "{lo},{hi}")
    }
}

impl FromStr for PixelRange {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<PixelRange, String> {
        let bounds: Vec<&str> = s.split(',').map(str::trim).collect();
        match bounds[..] {
            ["-1", "1"] => Ok(PixelRange::MinusOneToOne),
            ["0", "1"] => Ok(PixelRange::ZeroToOne),
            ["0", "255"] => Ok(PixelRange::ZeroTo255),
            _ => Err(format!(
                "`{s}` is not a pixel range: use -1,1 (tanh), 0,1 (sigmoid) or 0,255"
            )),
        }
    }
}

/// What the user says about a foreign generator, for what its graph does not tell. Every field
/// is optional; a given field overrides what the graph suggests (and must agree with what the
/// graph fixes, such as a fixed noise width).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Foreign {
    /// Layout of the output (`--layout`).
    pub layout: Option<Layout>,
    /// Range of the output values (`--pixel-range`).
    pub pixel_range: Option<PixelRange>,
    /// Shape of one image, channels first (`--image C,H,W`).
    pub image: Option<ImageShape>,
    /// Class names (`--classes`); their count is the label's range.
    pub classes: Option<Vec<String>>,
    /// Length of the noise vector (`--z-dim`).
    pub z_dim: Option<usize>,
}

impl Foreign {
    /// Whether no field is set.
    pub fn is_empty(&self) -> bool {
        *self == Foreign::default()
    }

    /// The flags set, as `--name`, for messages.
    fn flags(&self) -> Vec<&'static str> {
        [
            (self.layout.is_some(), "--layout"),
            (self.pixel_range.is_some(), "--pixel-range"),
            (self.image.is_some(), "--image"),
            (self.classes.is_some(), "--classes"),
            (self.z_dim.is_some(), "--z-dim"),
        ]
        .into_iter()
        .filter_map(|(set, name)| set.then_some(name))
        .collect()
    }
}

/// One fact about an adopted generator and where it came from.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Fact<T> {
    /// The value.
    pub value: T,
    /// `"flag"`, or how the graph told it.
    pub from: String,
}

fn fact<T>(value: T, from: impl Into<String>) -> Fact<T> {
    Fact {
        value,
        from: from.into(),
    }
}

/// What adoption read from a foreign graph and what it changed, recorded in the adopted file's
/// metadata ([`keys::ADOPTED`]) and printed by `runtime adopt`.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Adoption {
    /// The original file's producer, e.g. `"pytorch 2.15.0"`.
    pub producer: String,
    /// The original noise input's name and shape (`"N"` for the batch dimension).
    pub noise_input: (String, Vec<String>),
    /// The original label input's name, element type and shape, if any.
    pub label_input: Option<(String, String, Vec<String>)>,
    /// The original output's name and its shape per sample (batch left out).
    pub output: (String, Vec<usize>),
    /// Length of the noise vector.
    pub z_dim: Fact<usize>,
    /// Shape of one image.
    pub image: Fact<ImageShape>,
    /// Layout of the original output.
    pub layout: Fact<Layout>,
    /// Range of the original output.
    pub pixel_range: Fact<PixelRange>,
    /// Class names (empty: unconditional).
    pub classes: Fact<Vec<String>>,
    /// The adapter nodes added, in words.
    pub adapters: Vec<String>,
}

impl fmt::Display for Adoption {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "adopted from:  {}", self.producer)?;
        let (z, z_shape) = &self.noise_input;
        writeln!(
            f,
            "noise:         `{z}` [{}] -> z_dim {} ({})",
            z_shape.join(", "),
            self.z_dim.value,
            self.z_dim.from
        )?;
        match &self.label_input {
            Some((name, ty, shape)) => writeln!(
                f,
                "label:         `{name}` {ty} [{}], {} classes ({})",
                shape.join(", "),
                self.classes.value.len(),
                self.classes.from
            )?,
            None => writeln!(f, "label:         none (unconditional)")?,
        }
        let (out, shape) = &self.output;
        writeln!(f, "output:        `{out}` {shape:?} per sample")?;
        writeln!(
            f,
            "image:         {} ({})",
            self.image.value, self.image.from
        )?;
        writeln!(
            f,
            "layout:        {} ({})",
            self.layout.value, self.layout.from
        )?;
        writeln!(
            f,
            "pixel range:   {} ({})",
            self.pixel_range.value, self.pixel_range.from
        )?;
        if self.adapters.is_empty() {
            write!(f, "adapters:      none")
        } else {
            write!(f, "adapters:      {}", self.adapters.join("; "))
        }
    }
}

/// A foreign generator rewritten to Gantry's conventions.
#[derive(Clone, Debug)]
pub struct Adopted {
    /// The rewritten graph, with Gantry's metadata.
    pub proto: ModelProto,
    /// Its metadata, parsed.
    pub info: ModelInfo,
    /// What was read and changed.
    pub adoption: Adoption,
}

impl Adopted {
    /// The rewritten model as ONNX bytes.
    pub fn to_bytes(&self) -> Vec<u8> {
        prost::Message::encode_to_vec(&self.proto)
    }

    /// Writes the rewritten model atomically.
    pub fn write(&self, path: &Path) -> Result<()> {
        crate::fsutil::write_atomic(path, &self.to_bytes()).map_err(|source| Error::Write {
            path: path.to_path_buf(),
            error: source,
        })
    }
}

/// Whether `model` comes from another framework: it has no `gantry.*` metadata at all. (A file
/// with some Gantry keys but not others is a damaged Gantry file, and its metadata error is
/// the right message, not adoption.)
pub fn is_foreign(model: &ModelProto) -> bool {
    !model
        .metadata_props
        .iter()
        .any(|p| p.key.starts_with("gantry."))
}

/// Reads the ONNX file at `path` and adopts it (see the module docs).
pub fn adopt_file(path: &Path, foreign: &Foreign) -> Result<Adopted> {
    let bytes = crate::onnx::decode::read_model_bytes(path)?;
    let model = crate::onnx::decode(path, &bytes)?;
    adopt(path, &model, foreign)
}

/// Adopts a decoded foreign generator; `path` names it in errors. A file that already carries
/// Gantry's metadata is refused: it needs no adoption.
pub fn adopt(path: &Path, model: &ModelProto, foreign: &Foreign) -> Result<Adopted> {
    let fail = |reason: String| Error::Adopt {
        path: path.to_path_buf(),
        reason,
    };
    if !is_foreign(model) {
        return Err(fail(format!(
            "it is a Gantry generator already (it has `{}`); {} are only for generators from other frameworks",
            keys::FORMAT_VERSION,
            if foreign.is_empty() {
                "adoption is".to_string()
            } else {
                foreign.flags().join(", ")
            }
        )));
    }
    let graph = model
        .graph
        .as_ref()
        .ok_or_else(|| fail("the model has no graph".into()))?;
    let signature = Signature::read(graph).map_err(&fail)?;
    let z_dim = noise_width(&signature.noise, foreign).map_err(&fail)?;
    let classes = classes(graph, &signature, foreign).map_err(&fail)?;
    let output_shape = infer_output_shape(path, model, &signature, z_dim.value)?;
    let (image, layout) = image_and_layout(&output_shape, foreign).map_err(&fail)?;
    let pixel_range = pixel_range(graph, &signature.output.name, foreign).map_err(&fail)?;
    let adoption = Adoption {
        producer: format!("{} {}", model.producer_name, model.producer_version)
            .trim()
            .to_string(),
        noise_input: (
            signature.noise.name.clone(),
            dims_text(&signature.noise.dims),
        ),
        label_input: signature.label.as_ref().map(|l| {
            (
                l.name.clone(),
                elem_name(l.elem).to_string(),
                dims_text(&l.dims),
            )
        }),
        output: (signature.output.name.clone(), output_shape[1..].to_vec()),
        z_dim,
        image,
        layout,
        pixel_range,
        classes,
        adapters: Vec::new(),
    };
    rewrite(path, model, &signature, adoption)
}

/// A graph input or output: name, element type, dimensions (`None`: symbolic or unknown).
#[derive(Clone, Debug)]
struct Port {
    name: String,
    elem: i32,
    dims: Vec<Option<usize>>,
}

impl Port {
    fn read(v: &ValueInfoProto) -> Port {
        let tensor = match v.r#type.as_ref().and_then(|t| t.value.as_ref()) {
            Some(type_proto::Value::TensorType(t)) => Some(t),
            _ => None,
        };
        let dims = tensor
            .and_then(|t| t.shape.as_ref())
            .map(|s| {
                s.dim
                    .iter()
                    .map(|d| match d.value {
                        Some(DimValue::DimValue(v)) if v >= 0 => usize::try_from(v).ok(),
                        _ => None,
                    })
                    .collect()
            })
            .unwrap_or_default();
        Port {
            name: v.name.clone(),
            elem: tensor.map_or(0, |t| t.elem_type),
            dims,
        }
    }
}

fn elem_name(elem: i32) -> &'static str {
    DataType::try_from(elem).map_or("unknown", |d| d.as_str_name())
}

fn dims_text(dims: &[Option<usize>]) -> Vec<String> {
    dims.iter()
        .enumerate()
        .map(|(i, d)| match d {
            Some(v) => v.to_string(),
            None if i == 0 => "N".to_string(),
            None => "?".to_string(),
        })
        .collect()
}

/// The foreign graph's noise input, optional label input and image output.
struct Signature {
    noise: Port,
    label: Option<Port>,
    output: Port,
}

impl Signature {
    fn read(graph: &tract_onnx::pb::GraphProto) -> std::result::Result<Signature, String> {
        let initializers: HashSet<&str> =
            graph.initializer.iter().map(|t| t.name.as_str()).collect();
        let inputs: Vec<Port> = graph
            .input
            .iter()
            .filter(|i| !initializers.contains(i.name.as_str()))
            .map(Port::read)
            .collect();
        let described = |ports: &[Port]| {
            ports
                .iter()
                .map(|p| {
                    format!(
                        "`{}` {} [{}]",
                        p.name,
                        elem_name(p.elem),
                        dims_text(&p.dims).join(", ")
                    )
                })
                .collect::<Vec<_>>()
                .join(", ")
        };
        let float = DataType::Float as i32;
        let integer = [DataType::Int64 as i32, DataType::Int32 as i32];
        let floats: Vec<&Port> = inputs.iter().filter(|p| p.elem == float).collect();
        let ints: Vec<&Port> = inputs
            .iter()
            .filter(|p| integer.contains(&p.elem))
            .collect();
        if floats.len() != 1 || ints.len() > 1 || floats.len() + ints.len() != inputs.len() {
            return Err(format!(
                "its inputs are {}; a generator has one float32 noise input and at most one int64 or int32 label input",
                described(&inputs)
            ));
        }
        let outputs: Vec<Port> = graph.output.iter().map(Port::read).collect();
        let [output] = &outputs[..] else {
            return Err(format!(
                "its outputs are {}; a generator has exactly one image output",
                described(&outputs)
            ));
        };
        if output.elem != float {
            return Err(format!(
                "its output {} is not float32",
                described(std::slice::from_ref(output))
            ));
        }
        for port in floats.iter().chain(&ints) {
            if let Some(Some(batch)) = port.dims.first() {
                return Err(format!(
                    "input `{}` has a fixed batch size of {batch}; export it with a dynamic batch dimension (torch.onnx.export: dynamic_axes={{\"{0}\": {{0: \"batch\"}}}}; tf2onnx: a TensorSpec with shape (None, ...))",
                    port.name
                ));
            }
        }
        Ok(Signature {
            noise: floats[0].clone(),
            label: ints.first().map(|p| (*p).clone()),
            output: output.clone(),
        })
    }
}

/// The noise width: the product of the noise input's fixed dimensions after the batch.
fn noise_width(noise: &Port, foreign: &Foreign) -> std::result::Result<Fact<usize>, String> {
    let rest = noise.dims.get(1..).unwrap_or_default();
    let fixed: Option<usize> = rest
        .iter()
        .try_fold(1usize, |n, d| d.and_then(|d| n.checked_mul(d)));
    let shape = dims_text(&noise.dims).join(", ");
    let width = match (fixed, foreign.z_dim) {
        (Some(n), Some(flag)) if n != flag && !rest.is_empty() => {
            return Err(format!(
                "--z-dim {flag} disagrees with the noise input `{}` [{shape}], which holds {n} values per sample",
                noise.name
            ));
        }
        (_, Some(flag)) => fact(flag, "flag"),
        (Some(n), None) if !rest.is_empty() => {
            fact(n, format!("the shape of input `{}`", noise.name))
        }
        _ => {
            return Err(format!(
                "the noise input `{}` has shape [{shape}], which does not fix its width; pass --z-dim",
                noise.name
            ));
        }
    };
    if width.value == 0 || width.value > MAX_VALUES_PER_SAMPLE {
        return Err(format!(
            "a noise width of {} is out of range (1 to {MAX_VALUES_PER_SAMPLE})",
            width.value
        ));
    }
    if rest.iter().filter(|d| d.is_none()).count() > 1 {
        return Err(format!(
            "the noise input `{}` [{shape}] has more than one unknown dimension after the batch",
            noise.name
        ));
    }
    Ok(width)
}

/// Ops that pass a tensor's values through unchanged (only its shape or type changes).
const PASS_THROUGH: [&str; 7] = [
    "Cast",
    "Reshape",
    "Squeeze",
    "Unsqueeze",
    "Flatten",
    "Identity",
    "Transpose",
];

/// The class count: the rows of the embedding table the label indexes (`Gather`), or a
/// `OneHot` depth, found by following the label through shape-only nodes.
fn classes(
    graph: &tract_onnx::pb::GraphProto,
    signature: &Signature,
    foreign: &Foreign,
) -> std::result::Result<Fact<Vec<String>>, String> {
    let Some(label) = &signature.label else {
        if let Some(names) = &foreign.classes {
            return Err(format!(
                "--classes names {} classes but the graph has no integer label input",
                names.len()
            ));
        }
        return Ok(fact(Vec::new(), "no label input"));
    };
    let found = label_range(graph, &label.name);
    let names = match (&foreign.classes, found) {
        (Some(names), Some((n, _))) if names.len() != n => {
            return Err(format!(
                "--classes names {} classes, but the label `{}` indexes {n} rows",
                names.len(),
                label.name
            ));
        }
        (Some(names), _) => fact(names.clone(), "flag"),
        (None, Some((n, how))) => fact((0..n).map(|c| c.to_string()).collect(), how),
        (None, None) => {
            return Err(format!(
                "cannot tell how many classes the label input `{}` takes (it does not index an embedding table or feed a OneHot); pass --classes with the class names, or the count (e.g. --classes 10)",
                label.name
            ));
        }
    };
    if names.value.is_empty() {
        return Err(format!(
            "the label input `{}` needs at least one class",
            label.name
        ));
    }
    Ok(names)
}

fn label_range(graph: &tract_onnx::pb::GraphProto, label: &str) -> Option<(usize, String)> {
    let constants = readable_constants(graph);
    let mut frontier = vec![label.to_string()];
    let mut seen = HashSet::new();
    while let Some(tensor) = frontier.pop() {
        if !seen.insert(tensor.clone()) {
            continue;
        }
        for n in graph.node.iter() {
            let position = n.input.iter().position(|i| *i == tensor);
            match (n.op_type.as_str(), position) {
                ("Gather", Some(1)) => {
                    let table = n.input.first()?;
                    if let Some(Const::F32 { dims, .. }) = constants.get(table.as_str())
                        && let Some(rows) = dims.first()
                        && attr(n, "axis").is_none_or(|a| a.i == 0)
                    {
                        return Some((*rows, format!("the rows of embedding `{table}`")));
                    }
                }
                ("OneHot", Some(0)) => {
                    let depth = n.input.get(1)?;
                    let depth = match constants.get(depth.as_str()) {
                        Some(Const::I64(v)) => v.first().and_then(|d| usize::try_from(*d).ok()),
                        Some(Const::F32 { data, .. }) => data
                            .first()
                            .filter(|d| d.fract() == 0.0 && **d >= 1.0 && **d < 1e9)
                            .map(|d| *d as usize),
                        None => None,
                    };
                    if let Some(d) = depth {
                        return Some((d, format!("the depth of OneHot `{}`", n.name)));
                    }
                }
                (op, Some(0)) if PASS_THROUGH.contains(&op) => {
                    frontier.extend(n.output.iter().cloned());
                }
                _ => {}
            }
        }
    }
    None
}

fn attr<'a>(n: &'a NodeProto, name: &str) -> Option<&'a tract_onnx::pb::AttributeProto> {
    n.attribute.iter().find(|a| a.name == name)
}

/// The output's shape at batch 1, by tract's shape inference with concrete inputs. tract runs
/// under `catch_unwind`: a foreign graph is untrusted input, and a panic in its analysis must
/// become an error naming the file.
fn infer_output_shape(
    path: &Path,
    model: &ModelProto,
    signature: &Signature,
    z_dim: usize,
) -> Result<Vec<usize>> {
    let fail = |reason: String| Error::Adopt {
        path: path.to_path_buf(),
        reason,
    };
    let noise_dims: Vec<usize> = std::iter::once(1)
        .chain(signature.noise.dims[1..].iter().map(|d| d.unwrap_or(0)))
        .map(|d| if d == 0 { z_dim } else { d })
        .collect();
    let label = signature.label.as_ref().map(|l| {
        let dt = if l.elem == DataType::Int32 as i32 {
            i32::datum_type()
        } else {
            i64::datum_type()
        };
        let dims: Vec<usize> = std::iter::once(1)
            .chain(l.dims.iter().skip(1).map(|d| d.unwrap_or(1)))
            .collect();
        (l.name.clone(), dt, dims)
    });
    let noise_name = signature.noise.name.clone();
    // Without the shape hints and the output's declared shape: they name the batch with a
    // symbol that would not unify with the concrete batch of 1 given here.
    let mut model = model.clone();
    if let Some(g) = model.graph.as_mut() {
        g.value_info.clear();
        for o in &mut g.output {
            o.r#type = None;
        }
    }
    let run = move || -> TractResult<Vec<usize>> {
        let mut m = tract_onnx::onnx().model_for_proto_model(&model)?;
        for (i, outlet) in m.input_outlets()?.to_vec().into_iter().enumerate() {
            let name = m.node(outlet.node).name.clone();
            if name == noise_name {
                m.set_input_fact(
                    i,
                    InferenceFact::dt_shape(f32::datum_type(), noise_dims.clone()),
                )?;
            } else if let Some((label, dt, dims)) = &label
                && name == *label
            {
                m.set_input_fact(i, InferenceFact::dt_shape(*dt, dims.clone()))?;
            }
        }
        let typed = m.into_typed()?;
        let fact = typed.output_fact(0)?;
        fact.shape
            .as_concrete()
            .map(<[usize]>::to_vec)
            .ok_or_else(|| anyhow::anyhow!("the output shape {:?} is not concrete", fact.shape))
    };
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(run)) {
        Ok(Ok(shape)) if shape.first() == Some(&1) => Ok(shape),
        Ok(Ok(shape)) => Err(fail(format!(
            "at batch 1 its output has shape {shape:?}; the first dimension must be the batch"
        ))),
        Ok(Err(e)) => Err(Error::tract(
            path,
            "infer the output shape of the foreign graph",
            e,
        )),
        Err(_) => Err(fail(
            "tract panicked while analysing the graph; it uses an operator or form tract cannot run"
                .into(),
        )),
    }
}

fn is_channels(n: usize) -> bool {
    (1..=4).contains(&n)
}

/// The image shape and layout from the output's shape `[1, ...]` and the flags.
fn image_and_layout(
    shape: &[usize],
    foreign: &Foreign,
) -> std::result::Result<(Fact<ImageShape>, Fact<Layout>), String> {
    let values: usize = shape.iter().product();
    let per_sample = &shape[1..];
    let layout = match (foreign.layout, per_sample) {
        (Some(l), _) => fact(l, "flag"),
        (None, [a, _, c]) if is_channels(*a) && !is_channels(*c) => fact(
            Layout::Nchw,
            format!("output shape {per_sample:?}: channels first"),
        ),
        (None, [a, _, c]) if is_channels(*c) && !is_channels(*a) => fact(
            Layout::Nhwc,
            format!("output shape {per_sample:?}: channels last"),
        ),
        (None, [_, _, _]) => {
            return Err(format!(
                "the output shape {per_sample:?} could be channels first or last; pass --layout nchw or --layout nhwc"
            ));
        }
        (None, _) => fact(Layout::Nchw, "the default for one channel or a flat output"),
    };
    let from_shape = match per_sample {
        [a, b, c] => Some(match layout.value {
            Layout::Nchw => (*a, *b, *c),
            Layout::Nhwc => (*c, *a, *b),
        }),
        [h, w] => Some((1, *h, *w)),
        _ => None,
    }
    .map(|(channels, height, width)| ImageShape {
        channels,
        height,
        width,
    });
    let image = match (foreign.image, from_shape) {
        (Some(flag), _) if flag.checked_numel() != Some(values) => {
            return Err(format!(
                "--image {},{},{} has {} values, the output {per_sample:?} has {values} per sample",
                flag.channels,
                flag.height,
                flag.width,
                flag.numel()
            ));
        }
        (Some(flag), Some(s)) if flag != s => {
            return Err(format!(
                "--image {},{},{} disagrees with the output shape {per_sample:?} read as {} ({})",
                flag.channels, flag.height, flag.width, layout.value, layout.from
            ));
        }
        (Some(flag), _) => fact(flag, "flag"),
        (None, Some(s)) => fact(s, format!("output shape {per_sample:?}")),
        (None, None) => {
            let side = (values as f64).sqrt().round() as usize;
            let hint = if side * side == values {
                format!(" (for one grey {side}x{side} image: --image 1,{side},{side})")
            } else {
                String::new()
            };
            return Err(format!(
                "the output {per_sample:?} is flat: pass --image C,H,W{hint}, and --layout nhwc if its values are channels last"
            ));
        }
    };
    if image.value.channels == 0 || image.value.height == 0 || image.value.width == 0 {
        return Err(format!("the image shape {} has an empty side", image.value));
    }
    Ok((image, layout))
}

/// The pixel range: the flag, or the activation the output comes from through shape-only
/// nodes (`Tanh`: -1,1; `Sigmoid`: 0,1).
fn pixel_range(
    graph: &tract_onnx::pb::GraphProto,
    output: &str,
    foreign: &Foreign,
) -> std::result::Result<Fact<PixelRange>, String> {
    if let Some(flag) = foreign.pixel_range {
        return Ok(fact(flag, "flag"));
    }
    let producers: HashMap<&str, &NodeProto> = graph
        .node
        .iter()
        .flat_map(|n| n.output.iter().map(move |o| (o.as_str(), n)))
        .collect();
    let mut tensor = output;
    for _ in 0..=graph.node.len() {
        let Some(n) = producers.get(tensor) else {
            break;
        };
        match n.op_type.as_str() {
            "Tanh" => {
                return Ok(fact(
                    PixelRange::MinusOneToOne,
                    format!("the output comes from Tanh `{}`", n.name),
                ));
            }
            "Sigmoid" => {
                return Ok(fact(
                    PixelRange::ZeroToOne,
                    format!("the output comes from Sigmoid `{}`", n.name),
                ));
            }
            op if PASS_THROUGH.contains(&op) && op != "Cast" => match n.input.first() {
                Some(i) => tensor = i,
                None => break,
            },
            op => {
                return Err(format!(
                    "cannot tell the output's pixel range: it comes from {op} `{}`, not from Tanh or Sigmoid; pass --pixel-range -1,1, 0,1 or 0,255",
                    n.name
                ));
            }
        }
    }
    Err("cannot tell the output's pixel range; pass --pixel-range -1,1, 0,1 or 0,255".into())
}

/// Renames tensor `from` to `to` everywhere in the graph.
fn rename(graph: &mut tract_onnx::pb::GraphProto, from: &str, to: &str) {
    for n in &mut graph.node {
        for name in n.input.iter_mut().chain(n.output.iter_mut()) {
            if name == from {
                *name = to.to_string();
            }
        }
    }
    for v in graph
        .input
        .iter_mut()
        .chain(graph.output.iter_mut())
        .chain(graph.value_info.iter_mut())
    {
        if v.name == from {
            v.name = to.to_string();
        }
    }
    for t in &mut graph.initializer {
        if t.name == from {
            t.name = to.to_string();
        }
    }
}

/// A name not used by any tensor or node of the graph, starting from `base`.
fn fresh(graph: &tract_onnx::pb::GraphProto, base: &str) -> String {
    let used: HashSet<&str> = graph
        .node
        .iter()
        .flat_map(|n| n.input.iter().chain(&n.output).map(String::as_str))
        .chain(graph.initializer.iter().map(|t| t.name.as_str()))
        .chain(graph.input.iter().map(|v| v.name.as_str()))
        .chain(graph.output.iter().map(|v| v.name.as_str()))
        .chain(graph.node.iter().map(|n| n.name.as_str()))
        .collect();
    (0..)
        .map(|i| {
            if i == 0 {
                base.to_string()
            } else {
                format!("{base}_{i}")
            }
        })
        .find(|n| !used.contains(n.as_str()))
        .expect("an unbounded range always yields a free name")
}

/// Rewrites the graph to Gantry's names and conventions and attaches the metadata.
fn rewrite(
    path: &Path,
    model: &ModelProto,
    signature: &Signature,
    mut adoption: Adoption,
) -> Result<Adopted> {
    let mut out = model.clone();
    let graph = out.graph.as_mut().expect("checked by Signature::read");
    // Free Gantry's names: foreign tensors called `z`, `label` or `image` are renamed first.
    let mut noise = signature.noise.name.clone();
    let mut label = signature.label.as_ref().map(|l| l.name.clone());
    let mut output = signature.output.name.clone();
    for gantry in [INPUT_Z, INPUT_LABEL, OUTPUT_IMAGE] {
        let new = fresh(graph, &format!("foreign/{gantry}"));
        let mut moved = false;
        for name in [&mut noise, &mut output].into_iter().chain(label.as_mut()) {
            if name == gantry {
                *name = new.clone();
                moved = true;
            }
        }
        let used = graph
            .node
            .iter()
            .any(|n| n.input.iter().chain(&n.output).any(|t| t == gantry))
            || graph.initializer.iter().any(|t| t.name == gantry);
        if moved || used {
            rename(graph, gantry, &new);
        }
    }
    let mut front = Vec::new();
    let mut back = Vec::new();
    adapt_noise(graph, signature, &noise, &adoption, &mut front);
    if let (Some(l), Some(port)) = (&label, &signature.label) {
        adapt_label(graph, port, l, &mut front);
    }
    adapt_output(graph, &output, &adoption, &mut back);
    adoption.adapters = front
        .iter()
        .chain(&back)
        .filter_map(|(what, _)| what.clone())
        .collect();
    let adapters_front: Vec<NodeProto> = front.into_iter().map(|(_, n)| n).collect();
    graph.node.splice(0..0, adapters_front);
    graph.node.extend(back.into_iter().map(|(_, n)| n));

    // The signature: Gantry's inputs and output replace the foreign ones.
    let foreign_ports: HashSet<String> = [noise.clone(), output.clone()]
        .into_iter()
        .chain(label.clone())
        .collect();
    graph
        .input
        .retain(|v| !foreign_ports.contains(&v.name) && v.name != INPUT_Z && v.name != INPUT_LABEL);
    let mut inputs = vec![crate::onnx::value_info(
        INPUT_Z,
        DataType::Float,
        &[adoption.z_dim.value],
    )];
    if label.is_some() {
        inputs.push(crate::onnx::value_info(INPUT_LABEL, DataType::Int64, &[]));
    }
    graph.input.splice(0..0, inputs);
    let img = adoption.image.value;
    graph.output = vec![crate::onnx::value_info(
        OUTPUT_IMAGE,
        DataType::Float,
        &[img.channels, img.height, img.width],
    )];
    // Shape hints name the foreign batch symbol (`batch`, `unk__26`...), which would not
    // unify with Gantry's `N`; they are optional, so they go.
    graph.value_info.clear();

    let mut metadata: BTreeMap<String, String> = model
        .metadata_props
        .iter()
        .filter(|p| !p.key.starts_with("gantry."))
        .map(|p| (p.key.clone(), p.value.clone()))
        .collect();
    metadata.insert(
        keys::ADOPTED.to_string(),
        serde_json::to_string(&adoption).expect("an adoption record always serialises"),
    );
    let info = ModelInfo {
        format_version: FORMAT_VERSION,
        z_dim: adoption.z_dim.value,
        image: img,
        classes: adoption.classes.value.clone(),
        pixel_range: PIXEL_RANGE,
        metadata,
    };
    out.metadata_props = info.to_props();
    crate::onnx::check_generator(path, &out, &info)?;
    Ok(Adopted {
        proto: out,
        info,
        adoption,
    })
}

/// An adapter node and its description for the report (`None`: described with the previous).
type Adapter = (Option<String>, NodeProto);

fn adapt_noise(
    graph: &mut tract_onnx::pb::GraphProto,
    signature: &Signature,
    noise: &str,
    adoption: &Adoption,
    front: &mut Vec<Adapter>,
) {
    let rest = &signature.noise.dims[1..];
    if rest == [Some(adoption.z_dim.value)] || rest == [None] {
        rename(graph, noise, INPUT_Z);
        return;
    }
    let shape: Vec<i64> = std::iter::once(-1)
        .chain(
            rest.iter()
                .map(|d| d.map_or(adoption.z_dim.value as i64, |d| d as i64)),
        )
        .collect();
    let shape_name = fresh(graph, "adopt/z_shape");
    graph.initializer.push(tensor_i64(&shape_name, &shape));
    front.push((
        Some(format!(
            "Reshape z [N, {}] to {shape:?}",
            adoption.z_dim.value
        )),
        node(
            "adopt/z_reshape",
            "Reshape",
            &[INPUT_Z, &shape_name],
            noise,
            vec![],
        ),
    ));
}

fn adapt_label(
    graph: &mut tract_onnx::pb::GraphProto,
    port: &Port,
    label: &str,
    front: &mut Vec<Adapter>,
) {
    let int32 = port.elem == DataType::Int32 as i32;
    let reshape = port.dims.len() != 1;
    if !int32 && !reshape {
        rename(graph, label, INPUT_LABEL);
        return;
    }
    let mut current = INPUT_LABEL.to_string();
    if int32 {
        let to = if reshape {
            fresh(graph, "adopt/label_int32")
        } else {
            label.to_string()
        };
        front.push((
            Some("Cast label int64 to int32".into()),
            node(
                "adopt/label_cast",
                "Cast",
                &[&current],
                &to,
                vec![attr_int("to", DataType::Int32 as i64)],
            ),
        ));
        current = to;
    }
    if reshape {
        let shape: Vec<i64> = std::iter::once(-1)
            .chain(port.dims[1..].iter().map(|_| 1))
            .collect();
        let shape_name = fresh(graph, "adopt/label_shape");
        graph.initializer.push(tensor_i64(&shape_name, &shape));
        front.push((
            Some(format!("Reshape label [N] to {shape:?}")),
            node(
                "adopt/label_reshape",
                "Reshape",
                &[&current, &shape_name],
                label,
                vec![],
            ),
        ));
    }
}

/// One adapter step on the output: operator, its constant second input (empty: none), its
/// attributes, and its description for the report (`None` for the second node of a pair).
type OutputStep = (
    &'static str,
    String,
    Vec<tract_onnx::pb::AttributeProto>,
    Option<String>,
);

fn adapt_output(
    graph: &mut tract_onnx::pb::GraphProto,
    output: &str,
    adoption: &Adoption,
    back: &mut Vec<Adapter>,
) {
    let img = adoption.image.value;
    let per_sample = &adoption.output.1;
    let nchw = [img.channels, img.height, img.width];
    let hwc = [img.height, img.width, img.channels];
    let shape_const = |graph: &mut tract_onnx::pb::GraphProto, base: &str, dims: &[usize]| {
        let shape: Vec<i64> = std::iter::once(-1)
            .chain(dims.iter().map(|d| *d as i64))
            .collect();
        let name = fresh(graph, base);
        graph.initializer.push(tensor_i64(&name, &shape));
        (name, format!("{shape:?}"))
    };
    let mut steps: Vec<OutputStep> = Vec::new();
    // Element-wise first, so that a pure reshape comes last (the spec reader folds it).
    let range = adoption.pixel_range.value;
    if range != PixelRange::MinusOneToOne {
        let factor = if range == PixelRange::ZeroToOne {
            2.0
        } else {
            1.0 / 127.5
        };
        let scale = fresh(graph, "adopt/pixel_scale");
        graph.initializer.push(tensor_f32(&scale, &[], &[factor]));
        let one = fresh(graph, "adopt/one");
        graph.initializer.push(tensor_f32(&one, &[], &[1.0]));
        steps.push((
            "Mul",
            scale,
            vec![],
            Some(format!("rescale {range} to -1,1 (x * {factor} - 1)")),
        ));
        steps.push(("Sub", one, vec![], None));
    }
    if adoption.layout.value == Layout::Nhwc && img.channels > 1 {
        if per_sample[..] != hwc {
            let (name, text) = shape_const(graph, "adopt/hwc_shape", &hwc);
            steps.push(("Reshape", name, vec![], Some(format!("Reshape to {text}"))));
        }
        steps.push((
            "Transpose",
            String::new(),
            vec![crate::onnx::attr_ints("perm", &[0, 3, 1, 2])],
            Some("Transpose NHWC to NCHW".into()),
        ));
    } else if per_sample[..] != nchw {
        // Channels-last with one channel has the same value order as channels-first.
        let (name, text) = shape_const(graph, "adopt/image_shape", &nchw);
        steps.push(("Reshape", name, vec![], Some(format!("Reshape to {text}"))));
    }
    if steps.is_empty() {
        rename(graph, output, OUTPUT_IMAGE);
        return;
    }
    let mut current = output.to_string();
    let count = steps.len();
    for (i, (op, constant, attrs, description)) in steps.into_iter().enumerate() {
        let to = if i + 1 == count {
            OUTPUT_IMAGE.to_string()
        } else {
            fresh(graph, &format!("adopt/out_{i}"))
        };
        let inputs: Vec<&str> = if constant.is_empty() {
            vec![&current]
        } else {
            vec![&current, &constant]
        };
        let name = fresh(graph, &format!("adopt/{}", op.to_lowercase()));
        back.push((description, node(&name, op, &inputs, &to, attrs)));
        current = to;
    }
}
