//! Reading a generator file as the runtime runs it: its bytes decoded, its metadata parsed (or,
//! for a file from another framework, adopted in memory) and its signature checked. The engines,
//! the quantizer and the spec reader all start here.

use std::path::Path;

use crate::error::{Error, Result};
use crate::onnx::adopt::{self, Foreign};
use crate::onnx::decode::{GraphSummary, check_generator, decode, read_model_bytes};
use crate::onnx::metadata::{ModelInfo, keys};

/// A generator file decoded and checked: the graph (adopted in memory when it came from another
/// framework), its metadata and its summary.
pub(crate) struct Checked {
    /// The graph the runtime runs.
    pub proto: tract_onnx::pb::ModelProto,
    /// Its metadata.
    pub info: ModelInfo,
    /// Its signature and size.
    pub summary: GraphSummary,
    /// Whether `proto` was adopted in memory (it differs from the file's bytes).
    #[cfg_attr(not(feature = "ort"), allow(dead_code))]
    pub adopted: bool,
}

/// Reads and checks a generator file: bytes, protobuf, metadata, signature. A file from another
/// framework is adopted in memory with `foreign` (see `crate::onnx::adopt`).
pub(crate) fn read_checked(path: &Path, foreign: &Foreign) -> Result<Checked> {
    let bytes = read_model_bytes(path)?;
    check_bytes(path, &bytes, foreign)
}

/// Decodes and checks generator bytes; `path` names them in errors. Bytes without Gantry's
/// metadata, or any `foreign` flag, go through adoption.
pub(crate) fn check_bytes(path: &Path, bytes: &[u8], foreign: &Foreign) -> Result<Checked> {
    let proto = decode(path, bytes)?;
    if adopt::is_foreign(&proto) || !foreign.is_empty() {
        let adopted = adopt::adopt(path, &proto, foreign)?;
        tracing::info!(path = %path.display(), "adopted in memory:\n{}", adopted.adoption);
        let summary = check_generator(path, &adopted.proto, &adopted.info)?;
        return Ok(Checked {
            proto: adopted.proto,
            info: adopted.info,
            summary,
            adopted: true,
        });
    }
    if let Some(kind) = proto.metadata_props.iter().find(|p| p.key == keys::KIND) {
        return Err(Error::NotAGenerator {
            path: path.to_path_buf(),
            reason: format!(
                "it is a Gantry {} (`{}`), not a generator; a classifier is used with `generate --filter`",
                kind.value, kind.key
            ),
        });
    }
    let info = ModelInfo::from_props(&proto.metadata_props).map_err(|source| Error::Metadata {
        path: path.to_path_buf(),
        error: source,
    })?;
    let summary = check_generator(path, &proto, &info)?;
    Ok(Checked {
        proto,
        info,
        summary,
        adopted: false,
    })
}
