//! The ONNX side of a generator: writing a [`GeneratorSpec`](spec::GeneratorSpec) as an ONNX
//! graph, and reading an ONNX file back far enough to check that it is a Gantry generator.
//!
//! The graph uses standard `ai.onnx` operators only (opset [`OPSET_VERSION`]): `Gather` and
//! `Concat` for the label embedding, `Gemm` for dense layers, `ConvTranspose`, `Reshape`,
//! `LeakyRelu`, `Relu`, `Tanh`. Inputs are `z` (float32 `[N, z_dim]`) and, for conditional
//! models, `label` (int64 `[N]`); the output is `image` (float32 `[N, C, H, W]`, values in
//! `[-1, 1]`); `N` is the symbolic batch dimension. The protobuf types are tract-onnx's
//! prost-generated `pb` module, so the runtime needs no second copy of the ONNX schema.
//!
//! The stage's modules, bottom to top:
//!
//! 1. [`metadata`]: what the file says about itself.
//! 2. [`spec`]: the framework-neutral description written here; [`quantization`]: the int8
//!    record a file's metadata may hold.
//! 3. `write`: the writer; `decode`: a file's bytes, protobuf and signature (its public items
//!    are re-exported here); `constants`: a graph's constant tensors.
//! 4. [`adopt`]: rewriting a generator from another framework to these conventions.
//! 5. `read`: a generator file as the runtime runs it, adopted in memory when foreign.
//! 6. [`import`]: reading a generator back into a spec.
//!
//! A module uses only those below it; [`classifier`] (the evaluation classifier's graph, for
//! `generate --filter`) sits beside `write` and uses it. This file holds the conventions they
//! share and calls none of them.

pub mod adopt;
pub mod classifier;
pub(crate) mod constants;
pub(crate) mod decode;
pub mod import;
pub mod metadata;
pub mod quantization;
pub(crate) mod read;
pub mod spec;
pub(crate) mod write;

pub use decode::{Dim, GraphSummary, MAX_MODEL_BYTES, TensorDesc};
// The paths `onnx::adopt` names.
pub(crate) use decode::{check_generator, decode};
pub(crate) use write::{attr_int, attr_ints, node, tensor_f32, tensor_i64, value_info};

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
