//! Reading a Gantry ONNX generator back into a [`GeneratorSpec`].
//!
//! The quantizer and `export-firmware` work on the framework-neutral description, not on a
//! protobuf graph: from a spec they can calibrate, rewrite the weighted layers and reuse the
//! exporter's writer (`crate::onnx`). This module undoes that writer: it walks the graph the
//! exporter produces (`Gather` + `Concat` for the label embedding, then `Gemm`,
//! `ConvTranspose`, `Reshape`, `LeakyRelu`, `Relu`, `Tanh` in a chain) and reads the weights
//! from the initializers. Weights stored as int8 behind a `DequantizeLinear` (the weight-only
//! form of `runtime quantize`) are dequantized, so such files import too. Anything else is
//! refused with the node that does not fit, because guessing at a foreign graph would
//! quantize the wrong thing.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use tract_onnx::pb::{ModelProto, NodeProto, TensorProto, tensor_proto::DataType};

use crate::engine::tract::read_checked;
use crate::error::{Error, Result};
use crate::onnx::metadata::{ModelInfo, keys};
use crate::onnx::spec::{GeneratorSpec, Layer, Matrix};
use crate::onnx::{INPUT_LABEL, INPUT_Z, OUTPUT_IMAGE};

/// A constant tensor of the graph, as f32 or i64 values.
#[derive(Clone, Debug)]
enum Const {
    F32 { dims: Vec<usize>, data: Vec<f32> },
    I64(Vec<i64>),
}

fn dims_of(t: &TensorProto) -> std::result::Result<Vec<usize>, String> {
    t.dims
        .iter()
        .map(|d| {
            usize::try_from(*d).map_err(|_| format!("tensor `{}` has a negative dimension", t.name))
        })
        .collect()
}

/// Little-endian values of `width` bytes each from `raw_data`, or the typed repeated field.
fn raw_chunks<'a>(
    t: &'a TensorProto,
    width: usize,
    count: usize,
) -> std::result::Result<Option<std::slice::ChunksExact<'a, u8>>, String> {
    if t.raw_data.is_empty() {
        return Ok(None);
    }
    if Some(t.raw_data.len()) != width.checked_mul(count) {
        return Err(format!(
            "tensor `{}` has {} bytes of data, its shape needs {count} values of {width} bytes",
            t.name,
            t.raw_data.len(),
        ));
    }
    Ok(Some(t.raw_data.chunks_exact(width)))
}

fn read_const(t: &TensorProto) -> std::result::Result<Const, String> {
    if !t.external_data.is_empty() || t.data_location == Some(1) {
        return Err(format!(
            "tensor `{}` keeps its data in an external file, which Gantry does not write",
            t.name
        ));
    }
    let dims = dims_of(t)?;
    let count = dims
        .iter()
        .try_fold(1usize, |n, d| n.checked_mul(*d))
        .ok_or_else(|| format!("tensor `{}` has shape {dims:?}, too large", t.name))?;
    let bad_len = |n: usize| {
        format!(
            "tensor `{}` has {n} values, its shape {dims:?} needs {count}",
            t.name
        )
    };
    match DataType::try_from(t.data_type) {
        Ok(DataType::Float) => {
            let data: Vec<f32> = match raw_chunks(t, 4, count)? {
                Some(c) => c
                    .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                    .collect(),
                None => t.float_data.clone(),
            };
            if data.len() != count {
                return Err(bad_len(data.len()));
            }
            Ok(Const::F32 { dims, data })
        }
        Ok(DataType::Int64) => {
            let data: Vec<i64> = match raw_chunks(t, 8, count)? {
                Some(c) => c
                    .map(|b| i64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]))
                    .collect(),
                None => t.int64_data.clone(),
            };
            if data.len() != count {
                return Err(bad_len(data.len()));
            }
            Ok(Const::I64(data))
        }
        Ok(DataType::Int8) => {
            // Only as the input of a DequantizeLinear; kept as f32 codes until then.
            let data: Vec<f32> = match raw_chunks(t, 1, count)? {
                Some(c) => c.map(|b| f32::from(b[0] as i8)).collect(),
                None => t.int32_data.iter().map(|v| *v as f32).collect(),
            };
            if data.len() != count {
                return Err(bad_len(data.len()));
            }
            Ok(Const::F32 { dims, data })
        }
        Ok(DataType::Int32) => {
            let data: Vec<f32> = match raw_chunks(t, 4, count)? {
                Some(c) => c
                    .map(|b| i32::from_le_bytes([b[0], b[1], b[2], b[3]]) as f32)
                    .collect(),
                None => t.int32_data.iter().map(|v| *v as f32).collect(),
            };
            if data.len() != count {
                return Err(bad_len(data.len()));
            }
            Ok(Const::F32 { dims, data })
        }
        other => Err(format!(
            "tensor `{}` has element type {}, which a Gantry generator does not use",
            t.name,
            other.map_or("unknown".to_string(), |d| d.as_str_name().to_string())
        )),
    }
}

/// Checks the arity of every `DequantizeLinear` node (before tract, which would report a
/// malformed one by its own index and name, and before the folding reads its inputs).
fn check_dequantize_nodes(graph: &tract_onnx::pb::GraphProto) -> std::result::Result<(), String> {
    for (i, n) in graph.node.iter().enumerate() {
        if n.op_type == "DequantizeLinear"
            && (!(2..=3).contains(&n.input.len())
                || n.input.iter().take(2).any(String::is_empty)
                || n.output.len() != 1)
        {
            return Err(format!(
                "{} (DequantizeLinear) has {} inputs and {} outputs; it needs 2 or 3 inputs (value, scale, zero point) and 1 output",
                node_label(i, n),
                n.input.len(),
                n.output.len()
            ));
        }
    }
    Ok(())
}

/// `node `NAME``, or `node #INDEX` for a node without a name.
fn node_label(index: usize, node: &NodeProto) -> String {
    if node.name.is_empty() {
        format!("node #{index}")
    } else {
        format!("node `{}`", node.name)
    }
}

fn attr_i(node: &NodeProto, name: &str) -> Option<i64> {
    node.attribute.iter().find(|a| a.name == name).map(|a| a.i)
}

fn attr_f(node: &NodeProto, name: &str) -> Option<f32> {
    node.attribute.iter().find(|a| a.name == name).map(|a| a.f)
}

fn attr_is(node: &NodeProto, name: &str) -> Option<Vec<i64>> {
    node.attribute
        .iter()
        .find(|a| a.name == name)
        .map(|a| a.ints.clone())
}

/// Walks the graph; every error names the node or tensor.
struct Reader<'a> {
    consts: HashMap<&'a str, Const>,
}

impl<'a> Reader<'a> {
    fn f32(&self, name: &str, what: &str) -> std::result::Result<(Vec<usize>, Vec<f32>), String> {
        match self.consts.get(name) {
            Some(Const::F32 { dims, data }) => Ok((dims.clone(), data.clone())),
            Some(Const::I64(_)) => Err(format!("{what} `{name}` is an int64 tensor")),
            None => Err(format!(
                "{what} `{name}` is not a constant (an initializer or a dequantized initializer)"
            )),
        }
    }

    /// `DequantizeLinear(int8 constant, scale, [zero point], axis)` of constants, folded.
    fn fold_dequantize(&mut self, node: &'a NodeProto) -> std::result::Result<(), String> {
        let at = |what: &str| format!("node `{}` (DequantizeLinear): {what}", node.name);
        let (Some(input), Some(scale_name), Some(output)) =
            (node.input.first(), node.input.get(1), node.output.first())
        else {
            return Err(at(&format!(
                "has {} inputs and {} outputs, needs 2 or 3 inputs and 1 output",
                node.input.len(),
                node.output.len()
            )));
        };
        let (dims, codes) = self.f32(input, "DequantizeLinear input")?;
        let (_, scale) = self.f32(scale_name, "DequantizeLinear scale")?;
        let zero = match node.input.get(2).filter(|n| !n.is_empty()) {
            Some(n) => self.f32(n, "DequantizeLinear zero point")?.1,
            None => vec![0.0],
        };
        if scale.is_empty() || zero.is_empty() {
            return Err(at("its scale and zero point must hold at least one value"));
        }
        let rank = dims.len() as i64;
        let axis = attr_i(node, "axis").unwrap_or(1);
        let axis = if axis < 0 {
            axis.saturating_add(rank)
        } else {
            axis
        };
        let per_axis = scale.len() > 1 || zero.len() > 1;
        let (axis_len, inner) = if per_axis {
            if !(0..rank).contains(&axis) {
                return Err(at(&format!("axis {axis} is out of range")));
            }
            let a = axis as usize;
            (dims[a], dims[a + 1..].iter().product::<usize>())
        } else {
            (1, 1)
        };
        let pick = |v: &[f32], c: usize| if v.len() == 1 { v[0] } else { v[c] };
        if per_axis
            && (scale.len() > 1 && scale.len() != axis_len
                || zero.len() > 1 && zero.len() != axis_len)
        {
            return Err(at(&format!(
                "{} scales and {} zero points for an axis of {axis_len}",
                scale.len(),
                zero.len()
            )));
        }
        let data = codes
            .iter()
            .enumerate()
            .map(|(i, q)| {
                let c = if per_axis {
                    (i / inner.max(1)) % axis_len.max(1)
                } else {
                    0
                };
                (q - pick(&zero, c)) * pick(&scale, c)
            })
            .collect();
        self.consts
            .insert(output.as_str(), Const::F32 { dims, data });
        Ok(())
    }
}

/// Reads the generator at `path` as a spec (see the module docs). Files already quantized to
/// int8 compute (with quantized activations) are refused: their f32 weights are gone.
pub fn read_spec(path: &Path) -> Result<GeneratorSpec> {
    let (_, proto, info, _) = read_checked(path)?;
    spec_from_model(path, &proto, &info)
}

/// Everything the runtime checks in a generator file before tract sees it, from its bytes:
/// protobuf decoding, metadata, the generator signature, the quantization record, the weight
/// dequantization folding and the import of the graph as a spec. `path` only names the file in
/// errors. This is the entry point of the `onnx_generator` fuzz target (`runtime/fuzz`): it
/// returns an error, never panics, whatever the bytes.
pub fn spec_from_bytes(path: &Path, bytes: &[u8]) -> Result<GeneratorSpec> {
    let (proto, info, _) = crate::engine::tract::check_bytes(path, bytes)?;
    crate::engine::tract::quant_info(path, &info)?;
    fold_weight_dequantization(path, &proto)?;
    spec_from_model(path, &proto, &info)
}

/// Converts a decoded and checked generator graph into a spec; `path` names it in errors.
pub fn spec_from_model(path: &Path, model: &ModelProto, info: &ModelInfo) -> Result<GeneratorSpec> {
    let unsupported = |reason: String| Error::Unsupported {
        path: path.to_path_buf(),
        reason,
    };
    let Some(graph) = model.graph.as_ref() else {
        return Err(unsupported("the model has no graph".into()));
    };
    check_dequantize_nodes(graph).map_err(&unsupported)?;
    let mut reader = Reader {
        consts: HashMap::new(),
    };
    for t in &graph.initializer {
        let c = read_const(t).map_err(&unsupported)?;
        reader.consts.insert(t.name.as_str(), c);
    }
    // Constant folding of weight-only dequantization, wherever those nodes sit.
    let mut chain: Vec<&NodeProto> = Vec::new();
    for n in graph.node.iter() {
        if n.op_type == "DequantizeLinear"
            && n.input
                .first()
                .is_some_and(|i| reader.consts.contains_key(i.as_str()))
        {
            reader.fold_dequantize(n).map_err(&unsupported)?;
        } else {
            chain.push(n);
        }
    }

    let mut label_embedding = None;
    let mut current = INPUT_Z.to_string();
    let mut i = 0;
    if info.is_conditional() {
        let (gather, concat) = match (chain.first(), chain.get(1)) {
            (Some(g), Some(c)) if g.op_type == "Gather" && c.op_type == "Concat" => (*g, *c),
            _ => {
                return Err(unsupported(
                    "a conditional generator must start with Gather (label embedding) and Concat"
                        .into(),
                ));
            }
        };
        if gather.input.get(1).map(String::as_str) != Some(INPUT_LABEL)
            || attr_i(gather, "axis").unwrap_or(0) != 0
        {
            return Err(unsupported(format!(
                "node `{}` must gather rows of the embedding table by `{INPUT_LABEL}`",
                gather.name
            )));
        }
        let table = gather.input.first().map_or("", String::as_str);
        let (dims, data) = reader.f32(table, "embedding table").map_err(&unsupported)?;
        if dims.len() != 2 {
            return Err(unsupported(format!(
                "the embedding table `{table}` has shape {dims:?}, expected [classes, width]"
            )));
        }
        if concat.input.len() != 2
            || concat.input[0] != INPUT_Z
            || Some(&concat.input[1]) != gather.output.first()
            || attr_i(concat, "axis") != Some(1)
            || concat.output.len() != 1
        {
            return Err(unsupported(format!(
                "node `{}` must be Concat([z, embedding], axis 1)",
                concat.name
            )));
        }
        label_embedding = Some(Matrix {
            rows: dims[0],
            cols: dims[1],
            data,
        });
        current = concat.output.first().cloned().unwrap_or_default();
        i = 2;
    }

    let mut layers = Vec::new();
    for n in &chain[i..] {
        let input = n.input.first().map(String::as_str).unwrap_or("");
        if input != current {
            return Err(unsupported(format!(
                "node `{}` ({}) reads `{input}`, expected the previous layer's output `{current}`: only a chain of layers is supported",
                n.name, n.op_type
            )));
        }
        let at = |what: &str| format!("node `{}` ({}): {what}", n.name, n.op_type);
        if n.output.len() != 1 {
            return Err(unsupported(at(&format!(
                "has {} outputs, a layer has exactly 1",
                n.output.len()
            ))));
        }
        let weight_name = n.input.get(1).map_or("", String::as_str);
        let layer = match n.op_type.as_str() {
            "Gemm" => {
                if attr_i(n, "transA").unwrap_or(0) != 0
                    || attr_f(n, "alpha").unwrap_or(1.0) != 1.0
                    || attr_f(n, "beta").unwrap_or(1.0) != 1.0
                {
                    return Err(unsupported(at("transA, alpha and beta must be 0, 1 and 1")));
                }
                let (dims, data) = reader.f32(weight_name, "weight").map_err(&unsupported)?;
                if dims.len() != 2 {
                    return Err(unsupported(at(&format!(
                        "weight shape {dims:?} is not 2-D"
                    ))));
                }
                let weight = if attr_i(n, "transB").unwrap_or(0) != 0 {
                    let (out, inp) = (dims[0], dims[1]);
                    let mut t = vec![0.0; data.len()];
                    for o in 0..out {
                        for k in 0..inp {
                            t[k * out + o] = data[o * inp + k];
                        }
                    }
                    Matrix {
                        rows: inp,
                        cols: out,
                        data: t,
                    }
                } else {
                    Matrix {
                        rows: dims[0],
                        cols: dims[1],
                        data,
                    }
                };
                let bias = match n.input.get(2).filter(|b| !b.is_empty()) {
                    Some(b) => Some(reader.f32(b, "bias").map_err(&unsupported)?.1),
                    None => None,
                };
                Layer::Dense { weight, bias }
            }
            "ConvTranspose" => {
                let (dims, weight) = reader.f32(weight_name, "weight").map_err(&unsupported)?;
                if dims.len() != 4 {
                    return Err(unsupported(at(&format!(
                        "weight shape {dims:?} is not 4-D"
                    ))));
                }
                if attr_i(n, "group").unwrap_or(1) != 1
                    || attr_is(n, "dilations").is_some_and(|d| d.iter().any(|v| *v != 1))
                    || attr_is(n, "output_shape").is_some()
                    || n.attribute
                        .iter()
                        .any(|a| a.name == "auto_pad" && !a.s.is_empty() && a.s != b"NOTSET")
                {
                    return Err(unsupported(at(
                        "only group 1, dilation 1, explicit pads and no output_shape are supported",
                    )));
                }
                let pair = |name: &str,
                            default: usize|
                 -> std::result::Result<[usize; 2], String> {
                    match attr_is(n, name) {
                        None => Ok([default, default]),
                        Some(v) if v.len() == 2 && v.iter().all(|x| *x >= 0) => {
                            Ok([v[0] as usize, v[1] as usize])
                        }
                        Some(v) => Err(at(&format!("{name} {v:?} is not two non-negative values"))),
                    }
                };
                let pads = attr_is(n, "pads").unwrap_or_else(|| vec![0; 4]);
                if pads.len() != 4
                    || pads[0] != pads[2]
                    || pads[1] != pads[3]
                    || pads.iter().any(|p| *p < 0)
                {
                    return Err(unsupported(at(&format!(
                        "pads {pads:?} must be the same on both sides"
                    ))));
                }
                let kernel = [dims[2], dims[3]];
                if let Some(k) = attr_is(n, "kernel_shape")
                    && k != [dims[2] as i64, dims[3] as i64]
                {
                    return Err(unsupported(at(&format!(
                        "kernel_shape {k:?} disagrees with the weight shape {dims:?}"
                    ))));
                }
                let bias = match n.input.get(2).filter(|b| !b.is_empty()) {
                    Some(b) => Some(reader.f32(b, "bias").map_err(&unsupported)?.1),
                    None => None,
                };
                Layer::ConvTranspose2d {
                    weight,
                    c_in: dims[0],
                    c_out: dims[1],
                    kernel,
                    bias,
                    stride: pair("strides", 1).map_err(&unsupported)?,
                    padding: [pads[0] as usize, pads[1] as usize],
                    output_padding: pair("output_padding", 0).map_err(&unsupported)?,
                }
            }
            "Reshape" => {
                let shape = match n.input.get(1).and_then(|s| reader.consts.get(s.as_str())) {
                    Some(Const::I64(v)) => v.clone(),
                    _ => {
                        return Err(unsupported(at(
                            "the target shape must be an int64 initializer",
                        )));
                    }
                };
                match shape[..] {
                    [-1, c, h, w] if c > 0 && h > 0 && w > 0 => Layer::Reshape {
                        channels: c as usize,
                        height: h as usize,
                        width: w as usize,
                    },
                    _ => {
                        return Err(unsupported(at(&format!(
                            "target shape {shape:?} is not [-1, C, H, W]"
                        ))));
                    }
                }
            }
            "LeakyRelu" => Layer::LeakyRelu {
                alpha: attr_f(n, "alpha").unwrap_or(0.01),
            },
            "Relu" => Layer::Relu,
            "Tanh" => Layer::Tanh,
            other => {
                return Err(unsupported(format!(
                    "node `{}` is a {other}; a Gantry generator has only Gemm, ConvTranspose, Reshape, LeakyRelu, Relu and Tanh layers{}",
                    n.name,
                    if other.contains("Quant")
                        || other.contains("Integer")
                        || other.starts_with("QLinear")
                    {
                        " (this file looks quantized already: use the f32 model it came from)"
                    } else {
                        ""
                    }
                )));
            }
        };
        layers.push(layer);
        current = n.output.first().cloned().unwrap_or_default();
    }
    if current != OUTPUT_IMAGE {
        return Err(unsupported(format!(
            "the layer chain ends in `{current}`, not in the output `{OUTPUT_IMAGE}`"
        )));
    }
    let metadata: BTreeMap<String, String> = info
        .metadata
        .iter()
        .filter(|(k, _)| k.as_str() != keys::QUANTIZATION)
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let spec = GeneratorSpec {
        z_dim: info.z_dim,
        image: info.image,
        classes: info.classes.clone(),
        label_embedding,
        layers,
        metadata,
    };
    spec.validate().map_err(|source| Error::Model {
        path: path.to_path_buf(),
        error: source,
    })?;
    Ok(spec)
}

/// Replaces each `DequantizeLinear` whose inputs are all initializers (int8 weights, int32
/// biases) with the f32 initializer it computes, and drops the initializers nothing reads any
/// more. The runtime does this before handing a model to tract, so weights are dequantized once
/// at load: tract folds such nodes only below a size budget (4 MiB of output) and would
/// otherwise dequantize a large weight again on every run.
pub(crate) fn fold_weight_dequantization(path: &Path, model: &ModelProto) -> Result<ModelProto> {
    let unsupported = |reason: String| Error::Unsupported {
        path: path.to_path_buf(),
        reason,
    };
    let Some(graph) = model.graph.as_ref() else {
        return Err(unsupported("the model has no graph".into()));
    };
    check_dequantize_nodes(graph).map_err(unsupported)?;
    let initializers: HashMap<&str, &TensorProto> = graph
        .initializer
        .iter()
        .map(|t| (t.name.as_str(), t))
        .collect();
    let foldable = |n: &NodeProto| {
        n.op_type == "DequantizeLinear"
            && n.input
                .iter()
                .all(|i| i.is_empty() || initializers.contains_key(i.as_str()))
            && !n.input.is_empty()
    };
    if !graph.node.iter().any(foldable) {
        return Ok(model.clone());
    }
    let mut reader = Reader {
        consts: HashMap::new(),
    };
    for n in graph.node.iter().filter(|n| foldable(n)) {
        for i in n.input.iter().filter(|i| !i.is_empty()) {
            if !reader.consts.contains_key(i.as_str())
                && let Some(t) = initializers.get(i.as_str())
            {
                reader
                    .consts
                    .insert(i.as_str(), read_const(t).map_err(unsupported)?);
            }
        }
        reader.fold_dequantize(n).map_err(unsupported)?;
    }
    let mut out = model.clone();
    let Some(g) = out.graph.as_mut() else {
        return Err(unsupported("the model has no graph".into()));
    };
    let mut folded = Vec::new();
    g.node.retain(|n| {
        let fold = foldable(n);
        if fold && let Some(o) = n.output.first() {
            folded.push(o.clone());
        }
        !fold
    });
    for name in folded {
        let Some(Const::F32 { dims, data }) = reader.consts.get(name.as_str()) else {
            return Err(unsupported(format!(
                "the dequantized weight `{name}` is not an f32 tensor"
            )));
        };
        g.initializer
            .push(crate::onnx::tensor_f32(&name, dims, data));
    }
    let used: std::collections::HashSet<String> = g
        .node
        .iter()
        .flat_map(|n| n.input.iter().cloned())
        .chain(g.output.iter().map(|o| o.name.clone()))
        .collect();
    g.initializer.retain(|t| used.contains(&t.name));
    Ok(out)
}
