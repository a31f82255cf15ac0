//! ONNX Runtime as a second backend and a reference for tract (cargo feature `ort`).
//!
//! ONNX Runtime is loaded at run time (ort's `load-dynamic`), so building downloads nothing and
//! binaries without the library still run tract. Point [`ORT_DYLIB_ENV`] at a
//! `libonnxruntime.so` >= 1.17; the PyPI wheel carries one:
//!
//! ```sh
//! pip install 'onnxruntime>=1.31'
//! export ORT_DYLIB_PATH=$(python3 -c 'import onnxruntime, glob, os; print(glob.glob(os.path.join(os.path.dirname(onnxruntime.__file__), "capi", "libonnxruntime.so*"))[0])')
//! ```

use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};

use ort::environment::Environment;
use ort::session::Session;
use ort::value::Tensor;

use crate::engine::Backend;
use crate::engine::tract::check_inputs;
use crate::error::{Error, Result};
use crate::onnx::adopt::Foreign;
use crate::onnx::decode::read_model_bytes;
use crate::onnx::metadata::ModelInfo;
use crate::onnx::quantization::QuantInfo;
use crate::onnx::read::check_bytes;

/// Environment variable naming the ONNX Runtime shared library.
pub const ORT_DYLIB_ENV: &str = "ORT_DYLIB_PATH";

const HINT: &str = "install it with `pip install 'onnxruntime>=1.31'` and set ORT_DYLIB_PATH to the \
                    libonnxruntime.so* file in site-packages/onnxruntime/capi/ (see the README)";

fn unavailable(message: String) -> Error {
    Error::Backend {
        backend: "ort",
        message,
    }
}

/// The library named by [`ORT_DYLIB_ENV`], checked to exist.
pub fn library_path() -> Result<PathBuf> {
    resolve_library(std::env::var_os(ORT_DYLIB_ENV).as_deref())
}

/// Checks a value of [`ORT_DYLIB_ENV`] (`None`: unset) and returns the library path.
pub fn resolve_library(value: Option<&std::ffi::OsStr>) -> Result<PathBuf> {
    let path = value
        .filter(|p| !p.is_empty())
        .map(PathBuf::from)
        .ok_or_else(|| {
            unavailable(format!(
                "ONNX Runtime not found: {ORT_DYLIB_ENV} is not set; {HINT}"
            ))
        })?;
    if !path.is_file() {
        return Err(unavailable(format!(
            "ONNX Runtime not found: {ORT_DYLIB_ENV}={} is not a file; {HINT}",
            path.display()
        )));
    }
    Ok(path)
}

/// The process-wide ONNX Runtime environment (ort allows one per process).
fn environment() -> Result<&'static Environment> {
    static ENV: OnceLock<std::result::Result<Environment, String>> = OnceLock::new();
    ENV.get_or_init(|| {
        let path = library_path().map_err(|e| e.to_string())?;
        let builder =
            ort::init_from(&path).map_err(|e| format!("cannot load ONNX Runtime: {e}; {HINT}"))?;
        builder
            .with_name("gantry")
            .build()
            .map_err(|e| format!("cannot create the ONNX Runtime environment: {e}"))
    })
    .as_ref()
    .map_err(|e| unavailable(e.clone()))
}

/// A generator run by ONNX Runtime (CPU execution provider).
pub struct OrtGenerator {
    path: PathBuf,
    name: String,
    info: ModelInfo,
    threads: usize,
    session: Mutex<Session>,
}

impl std::fmt::Debug for OrtGenerator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OrtGenerator")
            .field("path", &self.path)
            .field("threads", &self.threads)
            .finish_non_exhaustive()
    }
}

impl OrtGenerator {
    /// Loads and checks the generator at `path` (same checks as [`crate::engine::tract::Generator::load`]) and
    /// opens an ONNX Runtime session using `threads` intra-op threads.
    pub fn load(path: impl AsRef<Path>, threads: usize) -> Result<OrtGenerator> {
        OrtGenerator::load_foreign(path, threads, &Foreign::default())
    }

    /// [`OrtGenerator::load`] with what to assume about a generator from another framework
    /// (see [`crate::onnx::adopt`]): such a file runs adopted, exactly as tract runs it.
    pub fn load_foreign(
        path: impl AsRef<Path>,
        threads: usize,
        foreign: &Foreign,
    ) -> Result<OrtGenerator> {
        let path = path.as_ref();
        let bytes = read_model_bytes(path)?;
        OrtGenerator::from_bytes_foreign(path, &bytes, threads, foreign)
    }

    /// [`OrtGenerator::load`] from ONNX bytes already in memory (e.g. a model quantized by
    /// [`crate::int8::quantize::quantize_file`]); `path` names them in errors.
    pub fn from_bytes(path: &Path, bytes: &[u8], threads: usize) -> Result<OrtGenerator> {
        OrtGenerator::from_bytes_foreign(path, bytes, threads, &Foreign::default())
    }

    /// [`OrtGenerator::from_bytes`] with what to assume about a foreign generator.
    pub fn from_bytes_foreign(
        path: &Path,
        bytes: &[u8],
        threads: usize,
        foreign: &Foreign,
    ) -> Result<OrtGenerator> {
        let checked = check_bytes(path, bytes, foreign)?;
        let adopted_bytes;
        let bytes = if checked.adopted {
            adopted_bytes = prost::Message::encode_to_vec(&checked.proto);
            &adopted_bytes[..]
        } else {
            bytes
        };
        let info = checked.info;
        let int8 = QuantInfo::from_info(&info)
            .ok()
            .flatten()
            .is_some_and(|q| q.is_int8_compute());
        let env = environment()?;
        let fail = |stage: &str, e: &dyn std::fmt::Display| {
            unavailable(format!("{}: cannot {stage}: {e}", path.display()))
        };
        let session = Session::builder(env)
            .map_err(|e| fail("create a session", &e))?
            .with_intra_threads(threads.max(1))
            .map_err(|e| fail("set the thread count", &e))?
            .commit_from_memory(bytes)
            .map_err(|e| fail("load the model", &e))?;
        Ok(OrtGenerator {
            path: path.to_path_buf(),
            name: if int8 { "ort-int8" } else { "ort" }.into(),
            info,
            threads: threads.max(1),
            session: Mutex::new(session),
        })
    }

    /// The model's metadata.
    pub fn info(&self) -> &ModelInfo {
        &self.info
    }

    /// Runs `z` (`[batch, z_dim]`) and labels to `[batch, C, H, W]` values.
    pub fn run(&self, z: &[f32], labels: Option<&[i64]>) -> Result<Vec<f32>> {
        let batch = check_inputs(&self.info, z, labels)?;
        let fail = |e: ort::Error| {
            unavailable(format!(
                "{}: cannot run a batch of {batch}: {e}",
                self.path.display()
            ))
        };
        let z_tensor = Tensor::from_array(([batch, self.info.z_dim], z.to_vec())).map_err(fail)?;
        let mut session = self.session.lock().expect("ort session poisoned");
        let outputs = match labels {
            Some(labels) => {
                let l = Tensor::from_array(([batch], labels.to_vec())).map_err(fail)?;
                session.run(
                    ort::inputs![crate::onnx::INPUT_Z => z_tensor, crate::onnx::INPUT_LABEL => l],
                )
            }
            None => session.run(ort::inputs![crate::onnx::INPUT_Z => z_tensor]),
        }
        .map_err(fail)?;
        let (shape, values) = outputs[crate::onnx::OUTPUT_IMAGE]
            .try_extract_tensor::<f32>()
            .map_err(fail)?;
        let img = self.info.image;
        let expected = [
            batch as i64,
            img.channels as i64,
            img.height as i64,
            img.width as i64,
        ];
        if shape[..] != expected {
            return Err(unavailable(format!(
                "{}: the output has shape {shape:?}, expected {expected:?}",
                self.path.display()
            )));
        }
        Ok(values.to_vec())
    }
}

impl Backend for OrtGenerator {
    fn name(&self) -> String {
        self.name.clone()
    }

    fn info(&self) -> &ModelInfo {
        &self.info
    }

    fn run_batch(&self, z: &[f32], labels: Option<&[i64]>) -> Result<Vec<f32>> {
        self.run(z, labels)
    }
}
