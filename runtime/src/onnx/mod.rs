//! The ONNX side of a generator: writing a [`GeneratorSpec`] as an ONNX graph, and reading an
//! ONNX file back far enough to check that it is a Gantry generator.
//!
//! The graph uses standard `ai.onnx` operators only (opset [`OPSET_VERSION`]): `Gather` and
//! `Concat` for the label embedding, `Gemm` for dense layers, `ConvTranspose`, `Reshape`,
//! `LeakyRelu`, `Relu`, `Tanh`. Inputs are `z` (float32 `[N, z_dim]`) and, for conditional
//! models, `label` (int64 `[N]`); the output is `image` (float32 `[N, C, H, W]`, values in
//! `[-1, 1]`); `N` is the symbolic batch dimension. The protobuf types are tract-onnx's
//! prost-generated `pb` module, so the runtime needs no second copy of the ONNX schema.
//!
//! The stage's other modules: [`spec`] (the framework-neutral description written here),
//! [`metadata`] (what the file says about itself), [`import`] (reading a Gantry generator
//! back into a spec) and [`adopt`] (rewriting a generator from another framework to these
//! conventions).

pub mod adopt;
pub mod import;
pub mod metadata;
pub mod spec;

use std::collections::BTreeMap;
use std::path::Path;

use tract_onnx::pb::{
    AttributeProto, GraphProto, ModelProto, NodeProto, OperatorSetIdProto, TensorProto,
    TensorShapeProto, TypeProto, ValueInfoProto, attribute_proto::AttributeType,
    tensor_proto::DataType, tensor_shape_proto::Dimension,
    tensor_shape_proto::dimension::Value as DimValue, type_proto,
};

use crate::error::Error;
use crate::onnx::metadata::ModelInfo;
use crate::onnx::spec::{ConvTranspose2d, Dense, GeneratorSpec, Layer, Matrix, SpecError};

/// The ONNX operator set the exporter targets.
pub const OPSET_VERSION: i64 = 17;
/// The ONNX IR version written (IR 8 is the one that goes with opset 17).
pub const IR_VERSION: i64 = 8;
/// Name of the noise input.
pub const INPUT_Z: &str = "z";
/// Name of the class-label input of conditional generators.
pub const INPUT_LABEL: &str = "label";
/// Name of the image output.
pub const OUTPUT_IMAGE: &str = "image";
/// Name of the symbolic batch dimension.
pub const BATCH_DIM: &str = "N";

fn dim_fixed(v: usize) -> Dimension {
    Dimension {
        denotation: String::new(),
        value: Some(DimValue::DimValue(v as i64)),
    }
}

fn dim_batch() -> Dimension {
    Dimension {
        denotation: String::new(),
        value: Some(DimValue::DimParam(BATCH_DIM.to_string())),
    }
}

pub(crate) fn value_info(name: &str, elem: DataType, dims: &[usize]) -> ValueInfoProto {
    let dim = std::iter::once(dim_batch())
        .chain(dims.iter().map(|d| dim_fixed(*d)))
        .collect();
    ValueInfoProto {
        name: name.to_string(),
        r#type: Some(TypeProto {
            denotation: String::new(),
            value: Some(type_proto::Value::TensorType(type_proto::Tensor {
                elem_type: elem as i32,
                shape: Some(TensorShapeProto { dim }),
            })),
        }),
        doc_string: String::new(),
    }
}

pub(crate) fn tensor_f32(name: &str, dims: &[usize], data: &[f32]) -> TensorProto {
    TensorProto {
        name: name.to_string(),
        dims: dims.iter().map(|d| *d as i64).collect(),
        data_type: DataType::Float as i32,
        raw_data: data.iter().flat_map(|v| v.to_le_bytes()).collect(),
        ..Default::default()
    }
}

pub(crate) fn tensor_i64(name: &str, data: &[i64]) -> TensorProto {
    TensorProto {
        name: name.to_string(),
        dims: vec![data.len() as i64],
        data_type: DataType::Int64 as i32,
        raw_data: data.iter().flat_map(|v| v.to_le_bytes()).collect(),
        ..Default::default()
    }
}

pub(crate) fn attr_int(name: &str, i: i64) -> AttributeProto {
    AttributeProto {
        name: name.into(),
        r#type: AttributeType::Int as i32,
        i,
        ..Default::default()
    }
}

pub(crate) fn attr_ints(name: &str, ints: &[usize]) -> AttributeProto {
    AttributeProto {
        name: name.into(),
        r#type: AttributeType::Ints as i32,
        ints: ints.iter().map(|v| *v as i64).collect(),
        ..Default::default()
    }
}

pub(crate) fn attr_float(name: &str, f: f32) -> AttributeProto {
    AttributeProto {
        name: name.into(),
        r#type: AttributeType::Float as i32,
        f,
        ..Default::default()
    }
}

pub(crate) fn node(
    name: &str,
    op: &str,
    inputs: &[&str],
    output: &str,
    attribute: Vec<AttributeProto>,
) -> NodeProto {
    NodeProto {
        name: name.to_string(),
        op_type: op.to_string(),
        input: inputs.iter().map(|s| s.to_string()).collect(),
        output: vec![output.to_string()],
        attribute,
        ..Default::default()
    }
}

pub(crate) fn tensor_i8(name: &str, dims: &[usize], data: &[i8]) -> TensorProto {
    TensorProto {
        name: name.to_string(),
        dims: dims.iter().map(|d| *d as i64).collect(),
        data_type: DataType::Int8 as i32,
        raw_data: data.iter().map(|v| *v as u8).collect(),
        ..Default::default()
    }
}

pub(crate) fn tensor_i32(name: &str, dims: &[usize], data: &[i32]) -> TensorProto {
    TensorProto {
        name: name.to_string(),
        dims: dims.iter().map(|d| *d as i64).collect(),
        data_type: DataType::Int32 as i32,
        raw_data: data.iter().flat_map(|v| v.to_le_bytes()).collect(),
        ..Default::default()
    }
}

/// The nodes, initializers and intermediate value infos of a graph under construction.
#[derive(Default)]
pub(crate) struct GraphParts {
    pub(crate) nodes: Vec<NodeProto>,
    pub(crate) initializers: Vec<TensorProto>,
    pub(crate) value_infos: Vec<ValueInfoProto>,
}

/// How the layers with weights become ONNX nodes. [`FloatLowering`] writes them as `Gemm` and
/// `ConvTranspose` on f32 weights; the int8 quantizer (`crate::int8::quantize`) substitutes its own.
pub(crate) trait Lowering {
    /// Emits layer `index`, a Dense layer, reading `input` and writing `output`.
    fn dense(&mut self, g: &mut GraphParts, index: usize, input: &str, output: &str, layer: &Dense);
    /// Emits layer `index`, a ConvTranspose2d layer, reading `input` and writing `output`.
    fn conv_transpose(
        &mut self,
        g: &mut GraphParts,
        index: usize,
        input: &str,
        output: &str,
        layer: &ConvTranspose2d,
    );
}

/// The attributes of an ONNX `ConvTranspose` for a [`ConvTranspose2d`] layer.
pub(crate) fn conv_transpose_attrs(layer: &ConvTranspose2d) -> Vec<AttributeProto> {
    let ConvTranspose2d {
        kernel,
        stride,
        padding,
        output_padding,
        ..
    } = layer;
    vec![
        attr_ints("kernel_shape", kernel),
        attr_ints("strides", stride),
        attr_ints("pads", &[padding[0], padding[1], padding[0], padding[1]]),
        attr_ints("output_padding", output_padding),
        attr_ints("dilations", &[1, 1]),
        attr_int("group", 1),
    ]
}

/// The inputs `[x, weight, bias]` of a layer node: the f32 `bias`, when there is one, becomes
/// the initializer `layer{index}.bias`.
fn inputs_with_bias(
    g: &mut GraphParts,
    index: usize,
    x: &str,
    weight: String,
    bias: Option<&[f32]>,
) -> Vec<String> {
    let mut ins = vec![x.to_string(), weight];
    if let Some(b) = bias {
        let name = format!("layer{index}.bias");
        g.initializers.push(tensor_f32(&name, &[b.len()], b));
        ins.push(name);
    }
    ins
}

/// The `Gemm` node `layer{index}.Dense` of a dense layer whose f32 (or dequantized) weight
/// tensor is `weight`, with its f32 bias.
pub(crate) fn gemm_node(
    g: &mut GraphParts,
    index: usize,
    input: &str,
    output: &str,
    weight: String,
    bias: Option<&[f32]>,
) {
    let ins = inputs_with_bias(g, index, input, weight, bias);
    let ins: Vec<&str> = ins.iter().map(String::as_str).collect();
    g.nodes.push(node(
        &format!("layer{index}.Dense"),
        "Gemm",
        &ins,
        output,
        vec![],
    ));
}

/// The `ConvTranspose` node `layer{index}.ConvTranspose2d` of `layer`, whose f32 (or
/// dequantized) weight tensor is `weight`, with its f32 bias.
pub(crate) fn conv_transpose_node(
    g: &mut GraphParts,
    index: usize,
    input: &str,
    output: &str,
    layer: &ConvTranspose2d,
    weight: String,
) {
    let ins = inputs_with_bias(g, index, input, weight, layer.bias.as_deref());
    let ins: Vec<&str> = ins.iter().map(String::as_str).collect();
    g.nodes.push(node(
        &format!("layer{index}.ConvTranspose2d"),
        "ConvTranspose",
        &ins,
        output,
        conv_transpose_attrs(layer),
    ));
}

/// f32 weights: `Gemm` and `ConvTranspose`, what `trainer export` writes.
pub(crate) struct FloatLowering;

impl Lowering for FloatLowering {
    fn dense(
        &mut self,
        g: &mut GraphParts,
        index: usize,
        input: &str,
        output: &str,
        layer: &Dense,
    ) {
        let weight = &layer.weight;
        let w = format!("layer{index}.weight");
        g.initializers
            .push(tensor_f32(&w, &[weight.rows, weight.cols], &weight.data));
        gemm_node(g, index, input, output, w, layer.bias.as_deref());
    }

    fn conv_transpose(
        &mut self,
        g: &mut GraphParts,
        index: usize,
        input: &str,
        output: &str,
        layer: &ConvTranspose2d,
    ) {
        let ConvTranspose2d {
            weight,
            c_in,
            c_out,
            kernel,
            ..
        } = layer;
        let w = format!("layer{index}.weight");
        g.initializers.push(tensor_f32(
            &w,
            &[*c_in, *c_out, kernel[0], kernel[1]],
            weight,
        ));
        conv_transpose_node(g, index, input, output, layer, w);
    }
}

/// Name of the tensor layer `index` of a spec writes (the last one writes [`OUTPUT_IMAGE`]).
pub(crate) fn layer_output_name(spec: &GeneratorSpec, index: usize) -> String {
    if index + 1 == spec.layers.len() {
        OUTPUT_IMAGE.to_string()
    } else {
        format!("layer{index}.output")
    }
}

/// Name of the tensor the first layer of a spec reads: `z`, or the concatenation of `z` and the
/// label embedding.
pub(crate) fn first_input_name(spec: &GeneratorSpec) -> &'static str {
    if spec.label_embedding.is_some() {
        "input.concat.output"
    } else {
        INPUT_Z
    }
}

/// Builds the ONNX model of a spec that has no BatchNorm left (see
/// [`GeneratorSpec::fold_batch_norm`]); use [`GeneratorSpec::to_model_proto`].
pub(crate) fn spec_to_model(spec: &GeneratorSpec) -> Result<ModelProto, SpecError> {
    spec_to_model_with(spec, &mut FloatLowering)
}

/// [`spec_to_model`] with the weighted layers emitted by `lowering`.
pub(crate) fn spec_to_model_with(
    spec: &GeneratorSpec,
    lowering: &mut dyn Lowering,
) -> Result<ModelProto, SpecError> {
    spec.validate()?;
    let shapes = spec.shapes()?;
    let mut g = GraphParts::default();
    let mut inputs = vec![value_info(INPUT_Z, DataType::Float, &[spec.z_dim])];
    if let Some(table) = &spec.label_embedding {
        inputs.push(value_info(INPUT_LABEL, DataType::Int64, &[]));
        write_label_embedding(&mut g, spec, table);
    }
    let mut current = first_input_name(spec).to_string();
    let last = spec.layers.len().saturating_sub(1);
    for (i, (layer, out_shape)) in spec.layers.iter().zip(&shapes[1..]).enumerate() {
        let output = layer_output_name(spec, i);
        write_layer(&mut g, lowering, i, layer, &current, &output)?;
        if i != last {
            g.value_infos
                .push(value_info(&output, DataType::Float, &out_shape.dims()));
        }
        current = output;
    }
    Ok(model_proto(spec, g, inputs))
}

/// The head of a conditional generator: `Gather` of the label's row of the embedding table,
/// `Concat` with `z` into the first layer's input ([`first_input_name`]).
fn write_label_embedding(g: &mut GraphParts, spec: &GeneratorSpec, table: &Matrix) {
    g.initializers.push(tensor_f32(
        "label_embedding.table",
        &[table.rows, table.cols],
        &table.data,
    ));
    g.nodes.push(node(
        "label_embedding.gather",
        "Gather",
        &["label_embedding.table", INPUT_LABEL],
        "label_embedding.output",
        vec![attr_int("axis", 0)],
    ));
    g.value_infos.push(value_info(
        "label_embedding.output",
        DataType::Float,
        &[table.cols],
    ));
    g.nodes.push(node(
        "input.concat",
        "Concat",
        &[INPUT_Z, "label_embedding.output"],
        "input.concat.output",
        vec![attr_int("axis", 1)],
    ));
    g.value_infos.push(value_info(
        "input.concat.output",
        DataType::Float,
        &[spec.input_features()],
    ));
}

/// The nodes of layer `i` reading `input` and writing `output`; the weighted layers go to
/// `lowering`. A BatchNorm left in the spec is an error: fold it first.
fn write_layer(
    g: &mut GraphParts,
    lowering: &mut dyn Lowering,
    i: usize,
    layer: &Layer,
    input: &str,
    output: &str,
) -> Result<(), SpecError> {
    let prefix = format!("layer{i}");
    let name = format!("{prefix}.{}", layer.kind());
    match layer {
        Layer::Dense(dense) => lowering.dense(g, i, input, output, dense),
        Layer::ConvTranspose2d(conv) => lowering.conv_transpose(g, i, input, output, conv),
        Layer::Reshape {
            channels,
            height,
            width,
        } => {
            let s = format!("{prefix}.shape");
            g.initializers.push(tensor_i64(
                &s,
                &[-1, *channels as i64, *height as i64, *width as i64],
            ));
            g.nodes
                .push(node(&name, "Reshape", &[input, &s], output, vec![]));
        }
        Layer::LeakyRelu { alpha } => g.nodes.push(node(
            &name,
            "LeakyRelu",
            &[input],
            output,
            vec![attr_float("alpha", *alpha)],
        )),
        Layer::Relu => g.nodes.push(node(&name, "Relu", &[input], output, vec![])),
        Layer::Tanh => g.nodes.push(node(&name, "Tanh", &[input], output, vec![])),
        Layer::BatchNorm(_) => {
            return Err(SpecError::UnfoldableBatchNorm {
                layer: i,
                previous: "an unfolded spec (call fold_batch_norm first)".into(),
            });
        }
    }
    Ok(())
}

/// The model around the graph parts of a checked spec: inputs, the `image` output (the
/// spec's image shape, which [`GeneratorSpec::shapes`] checked the last layer produces),
/// opset, producer and the metadata.
fn model_proto(spec: &GeneratorSpec, g: GraphParts, inputs: Vec<ValueInfoProto>) -> ModelProto {
    let image = spec.image;
    let graph = GraphProto {
        name: "gantry_generator".into(),
        node: g.nodes,
        initializer: g.initializers,
        input: inputs,
        output: vec![value_info(
            OUTPUT_IMAGE,
            DataType::Float,
            &[image.channels, image.height, image.width],
        )],
        value_info: g.value_infos,
        doc_string: "Gantry generator: z ~ N(0, 1) (and a class label) to images in [-1, 1]."
            .into(),
        ..Default::default()
    };
    ModelProto {
        ir_version: IR_VERSION,
        opset_import: vec![OperatorSetIdProto {
            domain: String::new(),
            version: OPSET_VERSION,
        }],
        producer_name: "gantry".into(),
        producer_version: env!("CARGO_PKG_VERSION").into(),
        graph: Some(graph),
        metadata_props: ModelInfo::from_spec(spec).to_props(),
        ..Default::default()
    }
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
) -> Result<GraphSummary, Error> {
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

    let expected_inputs: Vec<&str> = if info.is_conditional() {
        vec![INPUT_Z, INPUT_LABEL]
    } else {
        vec![INPUT_Z]
    };
    let names: Vec<&str> = inputs.iter().map(|i| i.name.as_str()).collect();
    if names != expected_inputs {
        return Err(bad(format!(
            "its inputs are {names:?}, expected {expected_inputs:?} for a{} model",
            if info.is_conditional() {
                " conditional"
            } else {
                "n unconditional"
            }
        )));
    }
    check_dims(&inputs[0], "FLOAT", &[Some(info.z_dim)], "input").map_err(bad)?;
    if info.is_conditional() {
        check_dims(&inputs[1], "INT64", &[], "input").map_err(bad)?;
    }
    let names: Vec<&str> = outputs.iter().map(|o| o.name.as_str()).collect();
    if names != [OUTPUT_IMAGE] {
        return Err(bad(format!(
            "its outputs are {names:?}, expected [\"{OUTPUT_IMAGE}\"]"
        )));
    }
    let img = info.image;
    check_dims(
        &outputs[0],
        "FLOAT",
        &[Some(img.channels), Some(img.height), Some(img.width)],
        "output",
    )
    .map_err(bad)?;

    // Learned values: f32 weights, or int8 weights and int32 biases of a quantized model;
    // quantization scales and zero points are not counted.
    let parameters = graph
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
        .fold(0u64, u64::saturating_add);
    let mut operators = BTreeMap::new();
    for n in &graph.node {
        let count: &mut usize = operators.entry(n.op_type.clone()).or_insert(0);
        *count = count.saturating_add(1);
    }
    let opset = model
        .opset_import
        .iter()
        .find(|o| o.domain.is_empty() || o.domain == "ai.onnx")
        .map_or(0, |o| o.version);
    Ok(GraphSummary {
        inputs,
        outputs,
        parameters,
        ir_version: model.ir_version,
        opset,
        producer: format!("{} {}", model.producer_name, model.producer_version)
            .trim()
            .to_string(),
        operators,
    })
}
