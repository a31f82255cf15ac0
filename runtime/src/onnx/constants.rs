//! The constant tensors of an ONNX graph (initializers and `Constant` nodes) read as values:
//! what the spec reader takes weights from and what adoption reads facts from.

use std::collections::HashMap;

use tract_onnx::pb::{NodeProto, TensorProto, tensor_proto::DataType};

/// A constant tensor of the graph, as f32 or i64 values.
#[derive(Clone, Debug)]
pub(crate) enum Const {
    /// Float, int8 or int32 values (as f32) and their dimensions.
    F32 { dims: Vec<usize>, data: Vec<f32> },
    /// Int64 values (shapes, indices).
    I64(Vec<i64>),
}

/// Every constant of `graph` that reads (initializers and `Constant` nodes), by name; those
/// that do not read are left out. For looking at a foreign graph, where an unreadable constant
/// only means that a fact cannot be read from it.
pub(crate) fn readable_constants(graph: &tract_onnx::pb::GraphProto) -> HashMap<&str, Const> {
    let constants = graph.node.iter().filter(|n| n.op_type == "Constant");
    graph
        .initializer
        .iter()
        .map(|t| (t.name.as_str(), t))
        .chain(constants.filter_map(|n| Some((n.output.first()?.as_str(), attr_t(n, "value")?))))
        .filter_map(|(name, t)| Some((name, read_const(t).ok()?)))
        .collect()
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

pub(crate) fn read_const(t: &TensorProto) -> std::result::Result<Const, String> {
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

/// The tensor attribute `name` of `node` (a `Constant`'s `value`).
pub(crate) fn attr_t<'a>(node: &'a NodeProto, name: &str) -> Option<&'a TensorProto> {
    node.attribute
        .iter()
        .find(|a| a.name == name)
        .and_then(|a| a.t.as_ref())
}
