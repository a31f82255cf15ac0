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

use tract_onnx::pb::{ModelProto, NodeProto, TensorProto};

use crate::error::{Error, Result};
use crate::onnx::adopt::Foreign;
use crate::onnx::constants::{attr_t, read_const};
use crate::onnx::metadata::{ModelInfo, keys};
use crate::onnx::quantization::quant_info;
use crate::onnx::read::{check_bytes, read_checked};
use crate::onnx::spec::{BatchNorm, ConvTranspose2d, Dense, GeneratorSpec, Layer, Matrix};
use crate::onnx::write::tensor_f32;
use crate::onnx::{INPUT_LABEL, INPUT_Z, OUTPUT_IMAGE};

/// At its earlier path, which `onnx::adopt` names.
use crate::onnx::constants::Const;

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
    read_spec_foreign(path, &Foreign::default())
}

/// [`read_spec`] with what to assume about a generator from another framework (see
/// [`crate::onnx::adopt`]): an mlp-shaped foreign generator imports through its adopted graph.
pub fn read_spec_foreign(path: &Path, foreign: &Foreign) -> Result<GeneratorSpec> {
    let checked = read_checked(path, foreign)?;
    spec_from_model(path, &checked.proto, &checked.info)
}

/// Everything the runtime checks in a generator file before tract sees it, from its bytes:
/// protobuf decoding, metadata, the generator signature, the quantization record, the weight
/// dequantization folding and the import of the graph as a spec. `path` only names the file in
/// errors. This is the entry point of the `onnx_generator` fuzz target (`runtime/fuzz`): it
/// returns an error, never panics, whatever the bytes.
pub fn spec_from_bytes(path: &Path, bytes: &[u8]) -> Result<GeneratorSpec> {
    let checked = check_bytes(path, bytes, &Foreign::default())?;
    quant_info(path, &checked.info)?;
    fold_weight_dequantization(path, &checked.proto)?;
    spec_from_model(path, &checked.proto, &checked.info)
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
    let (reader, chain) = constants_and_chain(graph).map_err(&unsupported)?;
    let (label_embedding, rest, current) = if info.is_conditional() {
        let (table, current) = label_embedding(&reader, &chain).map_err(&unsupported)?;
        (Some(table), &chain[2..], current)
    } else {
        (None, &chain[..], INPUT_Z.to_string())
    };
    let (layers, current) = read_layers(&reader, rest, current).map_err(&unsupported)?;
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

/// The graph's constants (initializers, `Constant` nodes, weight-only dequantization folded)
/// and the nodes that compute, in order.
fn constants_and_chain(
    graph: &tract_onnx::pb::GraphProto,
) -> std::result::Result<(Reader<'_>, Vec<&NodeProto>), String> {
    check_dequantize_nodes(graph)?;
    let mut reader = Reader {
        consts: HashMap::new(),
    };
    for t in &graph.initializer {
        reader.consts.insert(t.name.as_str(), read_const(t)?);
    }
    let mut chain: Vec<&NodeProto> = Vec::new();
    for n in graph.node.iter() {
        let constant = attr_t(n, "value").filter(|_| n.op_type == "Constant");
        if let (Some(t), Some(out)) = (constant, n.output.first()) {
            reader.consts.insert(out.as_str(), read_const(t)?);
        } else if n.op_type == "DequantizeLinear"
            && n.input
                .first()
                .is_some_and(|i| reader.consts.contains_key(i.as_str()))
        {
            reader.fold_dequantize(n)?;
        } else {
            chain.push(n);
        }
    }
    Ok((reader, chain))
}

/// The label embedding of a conditional generator: `Gather(table, label)` then
/// `Concat([z, embedding], axis 1)` at the head of the chain. Returns the table and the name
/// of the concatenation.
fn label_embedding(
    reader: &Reader<'_>,
    chain: &[&NodeProto],
) -> std::result::Result<(Matrix, String), String> {
    let (gather, concat) = match (chain.first(), chain.get(1)) {
        (Some(g), Some(c)) if g.op_type == "Gather" && c.op_type == "Concat" => (*g, *c),
        _ => {
            return Err(
                "a conditional generator must start with Gather (label embedding) and Concat"
                    .into(),
            );
        }
    };
    if gather.input.get(1).map(String::as_str) != Some(INPUT_LABEL)
        || attr_i(gather, "axis").unwrap_or(0) != 0
    {
        return Err(format!(
            "node `{}` must gather rows of the embedding table by `{INPUT_LABEL}`",
            gather.name
        ));
    }
    let table = gather.input.first().map_or("", String::as_str);
    let (dims, data) = reader.f32(table, "embedding table")?;
    if dims.len() != 2 {
        return Err(format!(
            "the embedding table `{table}` has shape {dims:?}, expected [classes, width]"
        ));
    }
    if concat.input.len() != 2
        || concat.input[0] != INPUT_Z
        || Some(&concat.input[1]) != gather.output.first()
        || attr_i(concat, "axis") != Some(1)
        || concat.output.len() != 1
    {
        return Err(format!(
            "node `{}` must be Concat([z, embedding], axis 1)",
            concat.name
        ));
    }
    let table = Matrix {
        rows: dims[0],
        cols: dims[1],
        data,
    };
    Ok((table, concat.output.first().cloned().unwrap_or_default()))
}

/// The layers of the chain that starts at tensor `current`, and the chain's last tensor.
///
/// Besides the exporter's own nodes this reads the forms other exporters write for the same
/// layers (see `crate::onnx::adopt`): `MatMul` + `Add` (tf2onnx's dense layer),
/// `BatchNormalization`, `Identity`, consecutive `Reshape`s (only the last one counts: a
/// reshape moves no values) and `Sigmoid` followed by adoption's rescale `x * 2 - 1`, which is
/// `tanh(x / 2)`: the previous layer is halved and a `Tanh` follows.
fn read_layers(
    reader: &Reader<'_>,
    chain: &[&NodeProto],
    mut current: String,
) -> std::result::Result<(Vec<Layer>, String), String> {
    let mut layers: Vec<Layer> = Vec::new();
    let mut i = 0;
    while i < chain.len() {
        let n = chain[i];
        let input = layer_input(reader, n);
        if input != current {
            return Err(format!(
                "node `{}` ({}) reads `{input}`, expected the previous layer's output `{current}`: only a chain of layers is supported",
                n.name, n.op_type
            ));
        }
        if n.output.len() != 1 {
            return Err(format!(
                "node `{}` ({}): has {} outputs, a layer has exactly 1",
                n.name,
                n.op_type,
                n.output.len()
            ));
        }
        let mut last = n;
        match n.op_type.as_str() {
            "Identity" => {}
            "Add" => add_bias(reader, n, layers.last_mut())?,
            "Reshape" => {
                let reshape = read_reshape(reader, n)?;
                if let Some(Layer::Reshape { .. }) = layers.last() {
                    layers.pop();
                }
                layers.push(reshape);
            }
            "Sigmoid" => {
                last = sigmoid_rescaled(reader, &chain[i..], layers.last_mut())?;
                i += 2;
                layers.push(Layer::Tanh);
            }
            _ => layers.push(read_layer(reader, n)?),
        }
        current = last.output.first().cloned().unwrap_or_default();
        i += 1;
    }
    Ok((layers, current))
}

/// The input of `n` that carries the activations: the first one, or for `Add`/`Mul`/`Sub`
/// the one that is not a constant.
fn layer_input<'n>(reader: &Reader<'_>, n: &'n NodeProto) -> &'n str {
    let first = n.input.first().map(String::as_str).unwrap_or("");
    if ["Add", "Mul"].contains(&n.op_type.as_str())
        && reader.consts.contains_key(first)
        && let Some(second) = n.input.get(1)
    {
        return second;
    }
    first
}

/// `Add(x, b)` after a dense or transposed-convolution layer without a bias: `b` becomes its
/// bias.
fn add_bias(
    reader: &Reader<'_>,
    n: &NodeProto,
    last: Option<&mut Layer>,
) -> std::result::Result<(), String> {
    let at = |what: &str| format!("node `{}` (Add): {what}", n.name);
    let input = layer_input(reader, n);
    let constant = n
        .input
        .iter()
        .find(|i| i.as_str() != input)
        .ok_or_else(|| at("has no constant operand"))?;
    let (dims, data) = reader.f32(constant, "added tensor")?;
    let (outputs, bias, channel_dims) = match last {
        Some(Layer::Dense(Dense { weight, bias })) => (
            weight.cols,
            bias,
            vec![vec![weight.cols], vec![1, weight.cols]],
        ),
        Some(Layer::ConvTranspose2d(ConvTranspose2d { c_out, bias, .. })) => (
            *c_out,
            bias,
            vec![vec![*c_out, 1, 1], vec![1, *c_out, 1, 1]],
        ),
        _ => {
            return Err(at(
                "only a bias after a Gemm, MatMul or ConvTranspose is supported",
            ));
        }
    };
    if bias.is_some() || !channel_dims.contains(&dims) || data.len() != outputs {
        return Err(at(&format!(
            "adds a tensor of shape {dims:?}; only a bias of {outputs} values per output, on a layer without one, is supported"
        )));
    }
    *bias = Some(data);
    Ok(())
}

/// `Sigmoid`, `Mul(2)`, `Sub(1)` (adoption's rescale of a `[0, 1]` output): halves the
/// previous layer (`sigmoid(x) * 2 - 1 = tanh(x / 2)`) and returns the `Sub` node.
fn sigmoid_rescaled<'n>(
    reader: &Reader<'_>,
    chain: &[&'n NodeProto],
    last: Option<&mut Layer>,
) -> std::result::Result<&'n NodeProto, String> {
    let sigmoid = chain[0];
    let scalar = |n: &NodeProto, op: &str, value: f32| {
        n.op_type == op
            && layer_input(reader, n) == sigmoid_or(n, chain)
            && n.input
                .iter()
                .any(|i| reader.f32(i, "constant").is_ok_and(|(_, v)| v == [value]))
    };
    let (Some(mul), Some(sub)) = (chain.get(1), chain.get(2)) else {
        return Err(sigmoid_error(sigmoid));
    };
    if !scalar(mul, "Mul", 2.0)
        || !scalar(sub, "Sub", 1.0)
        || sub.input.first() != mul.output.first()
    {
        return Err(sigmoid_error(sigmoid));
    }
    match last {
        Some(Layer::Dense(Dense { weight, bias })) => {
            weight.data.iter_mut().for_each(|w| *w *= 0.5);
            bias.iter_mut().flatten().for_each(|b| *b *= 0.5);
        }
        Some(Layer::ConvTranspose2d(ConvTranspose2d { weight, bias, .. })) => {
            weight.iter_mut().for_each(|w| *w *= 0.5);
            bias.iter_mut().flatten().for_each(|b| *b *= 0.5);
        }
        Some(Layer::BatchNorm(BatchNorm { gamma, beta, .. })) => {
            gamma.iter_mut().for_each(|g| *g *= 0.5);
            beta.iter_mut().for_each(|b| *b *= 0.5);
        }
        _ => {
            return Err(format!(
                "node `{}` (Sigmoid) must follow a Gemm, MatMul, ConvTranspose or BatchNormalization",
                sigmoid.name
            ));
        }
    }
    Ok(sub)
}

/// The tensor node `n` of the Sigmoid rescale should read: the previous node's output.
fn sigmoid_or<'n>(n: &NodeProto, chain: &[&'n NodeProto]) -> &'n str {
    let index = chain.iter().position(|c| std::ptr::eq(*c, n)).unwrap_or(0);
    chain
        .get(index.wrapping_sub(1))
        .and_then(|p| p.output.first())
        .map_or("", String::as_str)
}

fn sigmoid_error(sigmoid: &NodeProto) -> String {
    format!(
        "node `{}` (Sigmoid) is not followed by the rescale x * 2 - 1 that adoption writes; a Gantry generator ends in Tanh",
        sigmoid.name
    )
}

/// `Reshape(x, [-1, C, H, W])` with an int64 constant target shape.
fn read_reshape(reader: &Reader<'_>, n: &NodeProto) -> std::result::Result<Layer, String> {
    let at = |what: &str| format!("node `{}` (Reshape): {what}", n.name);
    let shape = match n.input.get(1).and_then(|s| reader.consts.get(s.as_str())) {
        Some(Const::I64(v)) => v.clone(),
        _ => return Err(at("the target shape must be an int64 constant")),
    };
    match shape[..] {
        [-1, c, h, w] if c > 0 && h > 0 && w > 0 => Ok(Layer::Reshape {
            channels: c as usize,
            height: h as usize,
            width: w as usize,
        }),
        _ => Err(at(&format!("target shape {shape:?} is not [-1, C, H, W]"))),
    }
}

/// One node that is one layer on its own.
fn read_layer(reader: &Reader<'_>, n: &NodeProto) -> std::result::Result<Layer, String> {
    match n.op_type.as_str() {
        "Gemm" => read_gemm(reader, n),
        "MatMul" => read_matmul(reader, n),
        "ConvTranspose" => read_conv_transpose(reader, n),
        "BatchNormalization" => read_batch_norm(reader, n),
        "LeakyRelu" => Ok(Layer::LeakyRelu {
            alpha: attr_f(n, "alpha").unwrap_or(0.01),
        }),
        "Relu" => Ok(Layer::Relu),
        "Tanh" => Ok(Layer::Tanh),
        other => Err(format!(
            "node `{}` is a {other}; the int8 quantizer and the firmware exporter read chains of Gemm or MatMul (+ Add), ConvTranspose, BatchNormalization, Reshape, LeakyRelu, Relu and Tanh{}",
            n.name,
            if other.contains("Quant") || other.contains("Integer") || other.starts_with("QLinear")
            {
                " (this file looks quantized already: use the f32 model it came from)"
            } else {
                " (tract still runs this model in f32: `runtime generate` takes it)"
            }
        )),
    }
}

fn bias_of(reader: &Reader<'_>, n: &NodeProto) -> std::result::Result<Option<Vec<f32>>, String> {
    match n.input.get(2).filter(|b| !b.is_empty()) {
        Some(b) => Ok(Some(reader.f32(b, "bias")?.1)),
        None => Ok(None),
    }
}

fn read_gemm(reader: &Reader<'_>, n: &NodeProto) -> std::result::Result<Layer, String> {
    let at = |what: &str| format!("node `{}` (Gemm): {what}", n.name);
    if attr_i(n, "transA").unwrap_or(0) != 0
        || attr_f(n, "alpha").unwrap_or(1.0) != 1.0
        || attr_f(n, "beta").unwrap_or(1.0) != 1.0
    {
        return Err(at("transA, alpha and beta must be 0, 1 and 1"));
    }
    let weight_name = n.input.get(1).map_or("", String::as_str);
    let (dims, data) = reader.f32(weight_name, "weight")?;
    let [rows, cols] = dims[..] else {
        return Err(at(&format!("weight shape {dims:?} is not 2-D")));
    };
    let weight = if attr_i(n, "transB").unwrap_or(0) != 0 {
        let (out, inp) = (rows, cols);
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
        Matrix { rows, cols, data }
    };
    Ok(Layer::Dense(Dense {
        weight,
        bias: bias_of(reader, n)?,
    }))
}

/// `MatMul(x, W)` with a constant `[in, out]` weight: a dense layer without bias (an `Add`
/// may follow).
fn read_matmul(reader: &Reader<'_>, n: &NodeProto) -> std::result::Result<Layer, String> {
    let weight_name = n.input.get(1).map_or("", String::as_str);
    let (dims, data) = reader.f32(weight_name, "weight")?;
    let [rows, cols] = dims[..] else {
        return Err(format!(
            "node `{}` (MatMul): weight shape {dims:?} is not 2-D",
            n.name
        ));
    };
    Ok(Layer::Dense(Dense {
        weight: Matrix { rows, cols, data },
        bias: None,
    }))
}

/// `BatchNormalization(x, scale, bias, mean, var)` in inference form.
fn read_batch_norm(reader: &Reader<'_>, n: &NodeProto) -> std::result::Result<Layer, String> {
    let input = |k: usize, what: &str| {
        n.input
            .get(k)
            .filter(|i| !i.is_empty())
            .ok_or_else(|| format!("node `{}` (BatchNormalization) has no {what}", n.name))
            .and_then(|name| reader.f32(name, what).map(|(_, v)| v))
    };
    if attr_i(n, "training_mode").unwrap_or(0) != 0 {
        return Err(format!(
            "node `{}` (BatchNormalization) is in training mode; export the model in eval mode",
            n.name
        ));
    }
    Ok(Layer::BatchNorm(BatchNorm {
        gamma: input(1, "scale")?,
        beta: input(2, "bias")?,
        mean: input(3, "mean")?,
        var: input(4, "variance")?,
        epsilon: attr_f(n, "epsilon").unwrap_or(1e-5),
    }))
}

fn read_conv_transpose(reader: &Reader<'_>, n: &NodeProto) -> std::result::Result<Layer, String> {
    let at = |what: &str| format!("node `{}` (ConvTranspose): {what}", n.name);
    let weight_name = n.input.get(1).map_or("", String::as_str);
    let (dims, weight) = reader.f32(weight_name, "weight")?;
    let [c_in, c_out, kh, kw] = dims[..] else {
        return Err(at(&format!("weight shape {dims:?} is not 4-D")));
    };
    if attr_i(n, "group").unwrap_or(1) != 1
        || attr_is(n, "dilations").is_some_and(|d| d.iter().any(|v| *v != 1))
        || attr_is(n, "output_shape").is_some()
        || n.attribute
            .iter()
            .any(|a| a.name == "auto_pad" && !a.s.is_empty() && a.s != b"NOTSET")
    {
        return Err(at(
            "only group 1, dilation 1, explicit pads and no output_shape are supported",
        ));
    }
    let pair = |name: &str, default: usize| -> std::result::Result<[usize; 2], String> {
        match attr_is(n, name) {
            None => Ok([default, default]),
            Some(v) if v.len() == 2 && v.iter().all(|x| *x >= 0) => {
                Ok([v[0] as usize, v[1] as usize])
            }
            Some(v) => Err(at(&format!("{name} {v:?} is not two non-negative values"))),
        }
    };
    let pads = attr_is(n, "pads").unwrap_or_else(|| vec![0; 4]);
    if pads.len() != 4 || pads[0] != pads[2] || pads[1] != pads[3] || pads.iter().any(|p| *p < 0) {
        return Err(at(&format!("pads {pads:?} must be the same on both sides")));
    }
    if let Some(k) = attr_is(n, "kernel_shape")
        && k != [kh as i64, kw as i64]
    {
        return Err(at(&format!(
            "kernel_shape {k:?} disagrees with the weight shape {dims:?}"
        )));
    }
    Ok(Layer::ConvTranspose2d(ConvTranspose2d {
        weight,
        c_in,
        c_out,
        kernel: [kh, kw],
        bias: bias_of(reader, n)?,
        stride: pair("strides", 1)?,
        padding: [pads[0] as usize, pads[1] as usize],
        output_padding: pair("output_padding", 0)?,
    }))
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
        g.initializer.push(tensor_f32(&name, dims, data));
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
