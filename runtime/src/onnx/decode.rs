//! Reading a model file's bytes, decoding them as ONNX and checking that the graph has a
//! Gantry generator's signature (inputs `z` and `label`, output `image`, their shapes against
//! the metadata), with a [`GraphSummary`] of what it holds.

use std::collections::BTreeMap;
use std::path::Path;

use tract_onnx::pb::{
    GraphProto, ModelProto, ValueInfoProto, tensor_proto::DataType,
    tensor_shape_proto::dimension::Value as DimValue, type_proto,
};

use crate::error::{Error, Result};
use crate::onnx::metadata::ModelInfo;
use crate::onnx::{BATCH_DIM, INPUT_LABEL, INPUT_Z, OUTPUT_IMAGE};

/// The largest model file the runtime reads: 2 GiB, protobuf's own limit for one message.
/// Larger files (and anything that is not a regular file, like `/dev/zero` or a FIFO) are
/// refused before reading.
pub const MAX_MODEL_BYTES: u64 = 2 << 30;

/// The bytes of the model file at `path`: a regular file of at most [`MAX_MODEL_BYTES`].
pub(crate) fn read_model_bytes(path: &Path) -> Result<Vec<u8>> {
    crate::fsutil::read_regular_file(path, MAX_MODEL_BYTES).map_err(|source| Error::ReadModel {
        path: path.to_path_buf(),
        error: source,
    })
}

/// One dimension of an ONNX tensor type.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(untagged)]
pub enum Dim {
    /// A fixed size.
    Fixed(i64),
    /// A named symbolic size, like the batch `N`.
    Symbolic(String),
    /// Not specified.
    Unknown,
}

impl std::fmt::Display for Dim {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Dim::Fixed(v) => write!(f, "{v}"),
            Dim::Symbolic(s) => write!(f, "{s}"),
            Dim::Unknown => write!(f, "?"),
        }
    }
}

/// Name, element type and shape of a graph input or output.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct TensorDesc {
    /// Tensor name.
    pub name: String,
    /// Element type, ONNX spelling (`FLOAT`, `INT64`...).
    pub dtype: String,
    /// Dimensions, or `None` when the rank is not given.
    pub shape: Option<Vec<Dim>>,
}

impl std::fmt::Display for TensorDesc {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.shape {
            Some(s) => {
                let dims: Vec<String> = s.iter().map(Dim::to_string).collect();
                write!(f, "{} {} [{}]", self.name, self.dtype, dims.join(", "))
            }
            None => write!(f, "{} {} (rank unknown)", self.name, self.dtype),
        }
    }
}

/// What a checked generator file contains, beyond its metadata.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct GraphSummary {
    /// Graph inputs (initializers excluded).
    pub inputs: Vec<TensorDesc>,
    /// Graph outputs.
    pub outputs: Vec<TensorDesc>,
    /// Number of learned values in the initializers (weights, biases, embedding table; f32, or
    /// int8/int32 in a quantized model; quantization scales and zero points excluded).
    pub parameters: u64,
    /// ONNX IR version.
    pub ir_version: i64,
    /// `ai.onnx` operator set version.
    pub opset: i64,
    /// `producer_name producer_version`.
    pub producer: String,
    /// Number of nodes per operator type.
    pub operators: BTreeMap<String, usize>,
}

fn desc(v: &ValueInfoProto) -> TensorDesc {
    let tensor = v
        .r#type
        .as_ref()
        .and_then(|t| t.value.as_ref())
        .map(|type_proto::Value::TensorType(t)| t);
    let dtype = tensor
        .and_then(|t| DataType::try_from(t.elem_type).ok())
        .map_or("UNDEFINED".to_string(), |d| d.as_str_name().to_string());
    let shape = tensor.and_then(|t| t.shape.as_ref()).map(|s| {
        s.dim
            .iter()
            .map(|d| match &d.value {
                Some(DimValue::DimValue(v)) => Dim::Fixed(*v),
                Some(DimValue::DimParam(p)) if !p.is_empty() => Dim::Symbolic(p.clone()),
                _ => Dim::Unknown,
            })
            .collect()
    });
    TensorDesc {
        name: v.name.clone(),
        dtype,
        shape,
    }
}

/// Decodes ONNX protobuf bytes.
pub(crate) fn decode(path: &Path, bytes: &[u8]) -> Result<ModelProto, Error> {
    let not_onnx = |reason: String| Error::NotOnnx {
        path: path.to_path_buf(),
        reason,
    };
    if bytes.is_empty() {
        return Err(not_onnx("the file is empty".into()));
    }
    let model = <ModelProto as prost::Message>::decode(bytes).map_err(|e| {
        not_onnx(format!(
            "protobuf decoding failed ({e}); the file is truncated or is not an .onnx file"
        ))
    })?;
    let Some(graph) = &model.graph else {
        return Err(not_onnx(
            "it has no graph; the file is truncated or is not an .onnx file".into(),
        ));
    };
    if graph.node.is_empty() || graph.output.is_empty() {
        return Err(not_onnx("its graph has no nodes or no outputs".into()));
    }
    Ok(model)
}

fn check_dims(
    t: &TensorDesc,
    dtype: &str,
    rest: &[Option<usize>],
    what: &str,
) -> Result<(), String> {
    if t.dtype != dtype {
        return Err(format!(
            "{what} `{}` is {}, expected {dtype}",
            t.name, t.dtype
        ));
    }
    let shape = t
        .shape
        .as_ref()
        .ok_or_else(|| format!("{what} `{}` has no shape", t.name))?;
    if shape.len() != rest.len() + 1 {
        return Err(format!(
            "{what} `{}` has rank {}, expected {}",
            t.name,
            shape.len(),
            rest.len() + 1
        ));
    }
    if let Dim::Fixed(b) = shape[0] {
        return Err(format!(
            "{what} `{}` has a fixed batch dimension ({b}); export it with a symbolic batch `{BATCH_DIM}`",
            t.name
        ));
    }
    for (i, (got, want)) in shape[1..].iter().zip(rest).enumerate() {
        if let (Dim::Fixed(g), Some(w)) = (got, want)
            && *g != *w as i64
        {
            return Err(format!(
                "{what} `{}` has dimension {} = {g}, the metadata says {w}",
                t.name,
                i + 1
            ));
        }
    }
    Ok(())
}

/// Checks that `model` has a generator's signature, consistent with its metadata, and
/// summarises it.
pub(crate) fn check_generator(
    path: &Path,
    model: &ModelProto,
    info: &ModelInfo,
) -> Result<GraphSummary> {
    let bad = |reason: String| Error::NotAGenerator {
        path: path.to_path_buf(),
        reason,
    };
    let Some(graph) = model.graph.as_ref() else {
        return Err(bad("it has no graph".into()));
    };
    let initializer_names: std::collections::HashSet<&str> =
        graph.initializer.iter().map(|t| t.name.as_str()).collect();
    let inputs: Vec<TensorDesc> = graph
        .input
        .iter()
        .filter(|i| !initializer_names.contains(i.name.as_str()))
        .map(desc)
        .collect();
    let outputs: Vec<TensorDesc> = graph.output.iter().map(desc).collect();
    check_signature(info, &inputs, &outputs).map_err(bad)?;
    let opset = model
        .opset_import
        .iter()
        .find(|o| o.domain.is_empty() || o.domain == "ai.onnx")
        .map_or(0, |o| o.version);
    Ok(GraphSummary {
        inputs,
        outputs,
        parameters: parameter_count(graph),
        ir_version: model.ir_version,
        opset,
        producer: format!("{} {}", model.producer_name, model.producer_version)
            .trim()
            .to_string(),
        operators: operator_counts(graph),
    })
}

/// The inputs (initializers excluded) and outputs of a generator: `z` and, for a conditional
/// model, `label`; `image`; with the sizes the metadata gives.
fn check_signature(
    info: &ModelInfo,
    inputs: &[TensorDesc],
    outputs: &[TensorDesc],
) -> std::result::Result<(), String> {
    let expected_inputs: Vec<&str> = if info.is_conditional() {
        vec![INPUT_Z, INPUT_LABEL]
    } else {
        vec![INPUT_Z]
    };
    let names: Vec<&str> = inputs.iter().map(|i| i.name.as_str()).collect();
    if names != expected_inputs {
        return Err(format!(
            "its inputs are {names:?}, expected {expected_inputs:?} for a{} model",
            if info.is_conditional() {
                " conditional"
            } else {
                "n unconditional"
            }
        ));
    }
    check_dims(&inputs[0], "FLOAT", &[Some(info.z_dim)], "input")?;
    if info.is_conditional() {
        check_dims(&inputs[1], "INT64", &[], "input")?;
    }
    let names: Vec<&str> = outputs.iter().map(|o| o.name.as_str()).collect();
    if names != [OUTPUT_IMAGE] {
        return Err(format!(
            "its outputs are {names:?}, expected [\"{OUTPUT_IMAGE}\"]"
        ));
    }
    let img = info.image;
    check_dims(
        &outputs[0],
        "FLOAT",
        &[Some(img.channels), Some(img.height), Some(img.width)],
        "output",
    )
}

/// Learned values: f32 weights, or int8 weights and int32 biases of a quantized model;
/// quantization scales and zero points are not counted.
fn parameter_count(graph: &GraphProto) -> u64 {
    graph
        .initializer
        .iter()
        .filter(|t| {
            [
                DataType::Float,
                DataType::Float16,
                DataType::Double,
                DataType::Bfloat16,
                DataType::Int8,
                DataType::Int32,
            ]
            .iter()
            .any(|d| *d as i32 == t.data_type)
                && !t.name.contains("scale")
                && !t.name.contains("zero_point")
        })
        .map(|t| {
            t.dims
                .iter()
                .try_fold(1u64, |n, d| n.checked_mul(u64::try_from(*d).ok()?))
                .unwrap_or(0)
        })
        .fold(0u64, u64::saturating_add)
}

/// Number of nodes per operator type.
fn operator_counts(graph: &GraphProto) -> BTreeMap<String, usize> {
    let mut operators = BTreeMap::new();
    for n in &graph.node {
        let count: &mut usize = operators.entry(n.op_type.clone()).or_insert(0);
        *count = count.saturating_add(1);
    }
    operators
}
