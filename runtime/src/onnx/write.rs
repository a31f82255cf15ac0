//! Writing a [`GeneratorSpec`] as an ONNX graph (the conventions are in [`crate::onnx`]'s
//! docs): the protobuf builders, the layer writers and [`GeneratorSpec::write_onnx`].
//!
//! The layers with weights go through a [`Lowering`]: [`FloatLowering`] writes f32 `Gemm` and
//! `ConvTranspose` nodes, the int8 quantizer (`crate::int8::quantize`) its own forms with the
//! same [`gemm_node`] and [`conv_transpose_node`].

use std::path::Path;

use tract_onnx::pb::{
    AttributeProto, GraphProto, ModelProto, NodeProto, OperatorSetIdProto, TensorProto,
    TensorShapeProto, TypeProto, ValueInfoProto, attribute_proto::AttributeType,
    tensor_proto::DataType, tensor_shape_proto::Dimension,
    tensor_shape_proto::dimension::Value as DimValue, type_proto,
};

use crate::error::SpecError;
use crate::fsutil;
use crate::onnx::metadata::ModelInfo;
use crate::onnx::spec::{ConvTranspose2d, Dense, GeneratorSpec, Layer, Matrix};
use crate::onnx::{BATCH_DIM, INPUT_LABEL, INPUT_Z, IR_VERSION, OPSET_VERSION, OUTPUT_IMAGE};

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

impl GeneratorSpec {
    /// Encodes the spec (BatchNorm folded) as an ONNX `ModelProto`; see [`crate::onnx`].
    pub fn to_model_proto(&self) -> Result<tract_onnx::pb::ModelProto, SpecError> {
        spec_to_model(&self.fold_batch_norm()?)
    }

    /// Encodes the spec (BatchNorm folded) as ONNX protobuf bytes.
    pub fn to_onnx(&self) -> Result<Vec<u8>, SpecError> {
        Ok(prost::Message::encode_to_vec(&self.to_model_proto()?))
    }

    /// Writes the ONNX file atomically (temporary file in the same folder, then rename).
    pub fn write_onnx(&self, path: impl AsRef<Path>) -> Result<(), SpecError> {
        write_model(path.as_ref(), &self.to_model_proto()?)
    }
}

/// Writes `model` to `path` atomically (a temporary file in the same folder, then a rename):
/// the one writer of the generator and classifier specs.
pub(crate) fn write_model(path: &Path, model: &ModelProto) -> Result<(), SpecError> {
    let bytes = prost::Message::encode_to_vec(model);
    fsutil::write_atomic(path, &bytes).map_err(|error| SpecError::Write {
        path: path.to_path_buf(),
        error,
    })
}
