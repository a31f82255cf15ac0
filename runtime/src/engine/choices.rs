//! Remembered measurements: what `--precision auto` and `--threads auto` chose, per model
//! file and machine.
//!
//! This exists because the best way to run a generator depends on the CPU (int8 was 2x
//! faster than f32 on one machine and 35x slower on another; a second thread helps on some
//! and not on others) but not on the run: timing both ways costs about 0.3 s each time, and
//! for the precision it first quantizes the model in memory (seconds for a dcgan). So the
//! runtime measures on first use and records the choice in a small JSON file (by default
//! `~/.cache/gantry/choices.json`, or `$GANTRY_CACHE_DIR/choices.json`); a later load of
//! the same file, with the same options, on the same machine, takes the recorded choice
//! and says so. A choice never changes the output of a model beyond what the two
//! precisions already differ by; a missing, unreadable or corrupt cache only means
//! measuring again.
//!
//! The key is the SHA-256 of the model file, what was measured (precision with its
//! quantization settings, or threads with the count and batch), this machine (its CPU
//! description from `/proc/cpuinfo`, architecture and core count) and the runtime's version.
//!
//! Beside the choices, `int8/` keeps the int8 models that `--precision int8` and a remembered
//! `auto` choice of int8 quantized in memory (under the precision key's SHA-256), so that
//! they are calibrated once rather than at every load (2,000 samples of the f32 generator:
//! seconds for a dcgan on a Raspberry Pi). A cached model that does not load is quantized
//! again and replaced.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::engine::tract::{AutoChoice, ThreadChoice};
use crate::error::{Error, Result};
use crate::fsutil::{read_regular_file, write_atomic};

/// Environment variable naming the folder that holds `choices.json`.
pub const CACHE_DIR_VAR: &str = "GANTRY_CACHE_DIR";
/// The cache file's name inside its folder.
pub const FILE_NAME: &str = "choices.json";
/// Version of the file's layout; a file of another version is ignored and replaced.
const FORMAT_VERSION: u32 = 1;
/// Largest cache file read (a file of thousands of entries is far smaller).
const MAX_FILE_BYTES: u64 = 4 << 20;

/// Where remembered choices live, and whether to use what is there.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChoiceCache {
    path: PathBuf,
    remeasure: bool,
}

impl ChoiceCache {
    /// The cache file at `path`; recorded choices are used.
    pub fn at(path: impl Into<PathBuf>) -> ChoiceCache {
        ChoiceCache {
            path: path.into(),
            remeasure: false,
        }
    }

    /// The default file: `$GANTRY_CACHE_DIR/choices.json`, else `gantry/choices.json` in the
    /// user's cache folder (`~/.cache` on Linux); `None` when there is neither.
    pub fn default_location() -> Option<ChoiceCache> {
        let dir = match std::env::var_os(CACHE_DIR_VAR) {
            Some(dir) if !dir.is_empty() => PathBuf::from(dir),
            _ => dirs::cache_dir()?.join("gantry"),
        };
        Some(ChoiceCache::at(dir.join(FILE_NAME)))
    }

    /// The same file, but measure again instead of using what it holds (the new
    /// measurement replaces the old).
    pub fn remeasuring(mut self) -> ChoiceCache {
        self.remeasure = true;
        self
    }

    /// The cache file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The recorded precision choice for `key`, unless remeasuring or none is recorded.
    pub(crate) fn precision(&self, key: &ChoiceKey) -> Option<AutoChoice> {
        self.entry(key).and_then(|e| e.precision)
    }

    /// The recorded thread choice for `key`, unless remeasuring or none is recorded.
    pub(crate) fn threads(&self, key: &ChoiceKey) -> Option<ThreadChoice> {
        self.entry(key).and_then(|e| e.threads)
    }

    /// The int8 model quantized before under `key`, unless remeasuring or none is kept.
    pub(crate) fn quantized_model(&self, key: &ChoiceKey) -> Option<Vec<u8>> {
        if self.remeasure {
            return None;
        }
        read_regular_file(&self.model_path(key), crate::onnx::MAX_MODEL_BYTES).ok()
    }

    /// Keeps the int8 model quantized under `key` (failures are logged, not returned).
    pub(crate) fn store_quantized_model(&self, key: &ChoiceKey, bytes: &[u8]) {
        let path = self.model_path(key);
        let stored = path
            .parent()
            .map_or(Ok(()), std::fs::create_dir_all)
            .and_then(|()| write_atomic(&path, bytes));
        if let Err(e) = stored {
            tracing::warn!(path = %path.display(), "cannot keep the int8 model: {e}");
        }
    }

    /// Where the int8 model of `key` is kept: `int8/<SHA-256 of the key>.onnx` beside the
    /// cache file.
    fn model_path(&self, key: &ChoiceKey) -> PathBuf {
        let mut name = String::with_capacity(64 + 5);
        for byte in Sha256::digest(key.0.as_bytes()) {
            let _ = write!(name, "{byte:02x}");
        }
        name.push_str(".onnx");
        let dir = self.path.parent().unwrap_or(Path::new("."));
        dir.join("int8").join(name)
    }

    /// Records a precision choice (failures are logged, not returned: the choice was made).
    pub(crate) fn record_precision(&self, key: &ChoiceKey, choice: AutoChoice) {
        self.record(key, |e| e.precision = Some(choice));
    }

    /// Records a thread choice (failures are logged, not returned).
    pub(crate) fn record_threads(&self, key: &ChoiceKey, choice: ThreadChoice) {
        self.record(key, |e| e.threads = Some(choice));
    }

    fn entry(&self, key: &ChoiceKey) -> Option<Entry> {
        if self.remeasure {
            return None;
        }
        self.read().entries.remove(&key.0)
    }

    /// The file's entries; an absent, unreadable or foreign file reads as empty (logged).
    fn read(&self) -> CacheFile {
        let bytes = match read_regular_file(&self.path, MAX_FILE_BYTES) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return CacheFile::default(),
            Err(e) => {
                tracing::warn!(path = %self.path.display(), "cannot read the choice cache ({e}); measuring instead");
                return CacheFile::default();
            }
        };
        match serde_json::from_slice::<CacheFile>(&bytes) {
            Ok(file) if file.version == FORMAT_VERSION => file,
            Ok(file) => {
                tracing::warn!(path = %self.path.display(), version = file.version, "choice cache of another version; it will be replaced");
                CacheFile::default()
            }
            Err(e) => {
                tracing::warn!(path = %self.path.display(), "choice cache is not valid ({e}); it will be replaced");
                CacheFile::default()
            }
        }
    }

    fn record(&self, key: &ChoiceKey, update: impl FnOnce(&mut Entry)) {
        if let Err(e) = self.try_record(key, update) {
            tracing::warn!(path = %self.path.display(), "cannot record the choice: {e}");
        }
    }

    fn try_record(&self, key: &ChoiceKey, update: impl FnOnce(&mut Entry)) -> Result<()> {
        let mut file = self.read();
        file.version = FORMAT_VERSION;
        update(file.entries.entry(key.0.clone()).or_default());
        let io = |error| Error::Write {
            path: self.path.clone(),
            error,
        };
        if let Some(dir) = self.path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(io)?;
        }
        let json = serde_json::to_vec_pretty(&file).map_err(|e| io(e.into()))?;
        write_atomic(&self.path, &json).map_err(io)
    }
}

/// The cache file's contents.
#[derive(Debug, Default, serde::Serialize, serde::Deserialize)]
struct CacheFile {
    version: u32,
    entries: BTreeMap<String, Entry>,
}

/// What is remembered under one key.
#[derive(Clone, Debug, Default, serde::Serialize, serde::Deserialize)]
struct Entry {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    precision: Option<AutoChoice>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    threads: Option<ThreadChoice>,
}

/// What a choice is remembered under: model file, question, machine, runtime version.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct ChoiceKey(String);

impl ChoiceKey {
    /// The key of `question` (e.g. `precision int8 form …`) for the model file whose
    /// [`file_digest`] is `digest`.
    pub(crate) fn new(digest: &str, question: &str) -> ChoiceKey {
        ChoiceKey(format!(
            "{digest} | {question} | {} | runtime {}",
            machine(),
            env!("CARGO_PKG_VERSION")
        ))
    }
}

/// The SHA-256 of the file at `path`, in hex: which model a choice is for.
pub(crate) fn file_digest(path: &Path) -> Result<String> {
    let bytes =
        read_regular_file(path, crate::onnx::MAX_MODEL_BYTES).map_err(|error| Error::Read {
            path: path.to_path_buf(),
            error,
        })?;
    let mut hex = String::with_capacity(64);
    for byte in Sha256::digest(&bytes) {
        let _ = write!(hex, "{byte:02x}");
    }
    Ok(hex)
}

/// This machine as the timing sees it: architecture, cores, and the CPU description
/// `/proc/cpuinfo` gives (model name on x86; model, hardware and CPU part on ARM boards).
/// Read once per process: a load builds up to three keys.
fn machine() -> &'static str {
    static MACHINE: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    MACHINE.get_or_init(describe_machine)
}

/// [`machine`], read from the system.
fn describe_machine() -> String {
    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    let mut cpu: Vec<String> = Vec::new();
    if let Ok(info) = std::fs::read_to_string("/proc/cpuinfo") {
        for line in info.lines() {
            let Some((name, value)) = line.split_once(':') else {
                continue;
            };
            let name = name.trim();
            let keep = [
                "model name",
                "Model",
                "Hardware",
                "CPU implementer",
                "CPU part",
            ];
            let value = value.trim();
            if keep.contains(&name) && !value.is_empty() {
                let field = format!("{name}={value}");
                if !cpu.contains(&field) {
                    cpu.push(field);
                }
            }
        }
    }
    format!(
        "{} x{} {}",
        std::env::consts::ARCH,
        cores,
        if cpu.is_empty() {
            "cpu unknown".to_string()
        } else {
            cpu.join(", ")
        }
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::tract::Precision;

    fn choice(chosen: Precision) -> AutoChoice {
        AutoChoice {
            chosen,
            batch: 4,
            f32_us_per_sample: 2.0,
            int8_us_per_sample: 1.0,
            remembered: false,
        }
    }

    #[test]
    fn records_survive_and_remeasuring_ignores_them() {
        let dir = tempfile::tempdir().unwrap();
        let model = dir.path().join("m.onnx");
        std::fs::write(&model, b"model bytes").unwrap();
        let cache = ChoiceCache::at(dir.path().join("sub/choices.json"));
        let digest = file_digest(&model).unwrap();
        let key = ChoiceKey::new(&digest, "precision");
        assert_eq!(cache.precision(&key), None);
        cache.record_precision(&key, choice(Precision::Int8));
        assert_eq!(cache.precision(&key), Some(choice(Precision::Int8)));
        assert_eq!(cache.clone().remeasuring().precision(&key), None);
        // Another question, or other bytes, are other keys.
        assert_eq!(
            cache.precision(&ChoiceKey::new(&digest, "precision int8 other")),
            None
        );
        std::fs::write(&model, b"other bytes").unwrap();
        let other = file_digest(&model).unwrap();
        assert_ne!(other, digest);
        assert_eq!(cache.precision(&ChoiceKey::new(&other, "precision")), None);
    }

    #[test]
    fn a_corrupt_or_foreign_file_is_measured_over_and_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let model = dir.path().join("m.onnx");
        std::fs::write(&model, b"model").unwrap();
        let path = dir.path().join(FILE_NAME);
        let cache = ChoiceCache::at(&path);
        let key = ChoiceKey::new(&file_digest(&model).unwrap(), "precision");
        for junk in [
            &b"{not json"[..],
            b"{\"version\": 99, \"entries\": {}}",
            b"",
        ] {
            std::fs::write(&path, junk).unwrap();
            assert_eq!(cache.precision(&key), None);
            cache.record_precision(&key, choice(Precision::F32));
            assert_eq!(cache.precision(&key), Some(choice(Precision::F32)));
        }
    }

    #[test]
    fn an_unwritable_cache_does_not_fail() {
        let dir = tempfile::tempdir().unwrap();
        let model = dir.path().join("m.onnx");
        std::fs::write(&model, b"model").unwrap();
        // The cache's folder is a file: recording fails, quietly.
        let blocker = dir.path().join("blocker");
        std::fs::write(&blocker, b"").unwrap();
        let cache = ChoiceCache::at(blocker.join(FILE_NAME));
        let key = ChoiceKey::new(&file_digest(&model).unwrap(), "precision");
        cache.record_precision(&key, choice(Precision::F32));
        assert_eq!(cache.precision(&key), None);
    }

    #[test]
    fn a_missing_model_is_an_error_naming_it() {
        let err = file_digest(Path::new("/nonexistent/m.onnx")).unwrap_err();
        assert!(err.to_string().contains("/nonexistent/m.onnx"), "{err}");
    }
}
