//! Checkpoints: G, D, both optimizers' Adam state, the EMA weights, the step, the
//! noise generator's state and the batch cursor — all a resumed run needs to continue
//! exactly where an uninterrupted one would be.
//!
//! A checkpoint is a folder whose files are written and synced under a temporary name,
//! then renamed into place; `latest` is then replaced atomically. A crash or `kill -9` at
//! any moment leaves every checkpoint folder either complete or absent, and a resume
//! that finds `latest` missing, dangling or unreadable falls back to the newest complete
//! checkpoint before it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use burn::module::Module;
use burn::optim::ModuleOptimizer;
use burn::store::ModuleRecord;
use burn::tensor::Bytes;
use serde::{Deserialize, Serialize};
use tracing::warn;

use crate::data::BatchCursor;
use crate::fsutil;
use crate::noise::NoiseSource;
use crate::training::Gan;

/// Version of the checkpoint layout, checked on resume.
pub const FORMAT_VERSION: u32 = 1;
/// Checkpoints kept in a run folder; older ones are removed after each save.
pub const KEEP: usize = 3;

const GENERATOR: &str = "generator.bpk";
const DISCRIMINATOR: &str = "discriminator.bpk";
const GENERATOR_OPTIM: &str = "generator-optim.bpk";
const DISCRIMINATOR_OPTIM: &str = "discriminator-optim.bpk";
const EMA: &str = "ema.bpk";
const STATE: &str = "state.json";
const LATEST: &str = "latest";
/// Folder of the checkpoint with the best FID so far (runs that evaluate quality).
pub const BEST: &str = "best";

/// Why a checkpoint could not be written or read.
#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    /// A file operation failed.
    #[error("{path}: {cause}")]
    Io {
        /// The file or folder.
        path: PathBuf,
        /// The operating system's error (in the message, so not also a `source`).
        cause: std::io::Error,
    },
    /// A file is not what the checkpoint needs.
    #[error("{path}: {problem}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        problem: String,
    },
}

/// The files of one checkpoint in memory: file name and content.
pub type CheckpointFiles = Vec<(&'static str, Vec<u8>)>;

/// The non-tensor part of a checkpoint.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct TrainingState {
    /// Layout version ([`FORMAT_VERSION`]).
    pub format_version: u32,
    /// Steps completed.
    pub step: usize,
    /// The noise generator, mid-stream.
    pub noise: NoiseSource,
    /// The batch stream's position.
    pub cursor: BatchCursor,
    /// Consecutive steps D had classified everything right.
    pub perfect_d_streak: usize,
    /// Size and CRC-32C of every other file of the checkpoint, checked before its bytes
    /// reach burn's decoders (absent in checkpoints written before Gantry 0.2).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub files: BTreeMap<String, FileCheck>,
}

/// What a checkpoint file must be: its length and CRC-32C.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileCheck {
    /// Length in bytes.
    pub bytes: u64,
    /// CRC-32C (Castagnoli) of the content.
    pub crc32c: u32,
}

impl FileCheck {
    /// The check of `content`.
    pub fn of(content: &[u8]) -> Self {
        Self {
            bytes: content.len() as u64,
            crc32c: crc32c::crc32c(content),
        }
    }
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> CheckpointError + '_ {
    move |cause| CheckpointError::Io {
        path: path.to_path_buf(),
        cause,
    }
}

/// Writes `bytes` to `path` atomically and durably (temporary file, fsync, rename).
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), CheckpointError> {
    fsutil::write_atomic(path, bytes).map_err(io(path))
}

/// Folder of the checkpoints of a run.
pub fn checkpoints_dir(run_dir: &Path) -> PathBuf {
    run_dir.join("checkpoints")
}

/// The folder name of the checkpoint after `step` steps.
pub fn step_name(step: usize) -> String {
    format!("step-{step:07}")
}

/// The step of a checkpoint folder named by [`step_name`] (any number of digits).
pub fn parse_step_name(name: &str) -> Option<usize> {
    let digits = name.strip_prefix("step-")?;
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

fn record_bytes<M: Module>(module: &M, file: &str) -> Result<Vec<u8>, CheckpointError> {
    // Batch norm keeps its newest running statistics pending until the next forward;
    // `valid` folds them into the shared state, so the record holds what a resumed
    // run's next forward would see.
    let _ = module.valid();
    module
        .clone()
        .into_record()
        .into_bytes()
        .map(|b| b.to_vec())
        .map_err(|e| CheckpointError::Invalid {
            path: PathBuf::from(file),
            problem: format!("cannot serialise: {e}"),
        })
}

/// The files of a checkpoint of `gan` at its current step, in memory: what
/// [`save`] writes and [`decode`] reads.
pub fn encode(
    gan: &Gan,
    cursor: BatchCursor,
    perfect_d_streak: usize,
) -> Result<CheckpointFiles, CheckpointError> {
    let mut files = vec![
        (GENERATOR, record_bytes(&gan.generator, GENERATOR)?),
        (
            DISCRIMINATOR,
            record_bytes(&gan.discriminator, DISCRIMINATOR)?,
        ),
    ];
    for (file, optim) in [
        (GENERATOR_OPTIM, &gan.generator_optim),
        (DISCRIMINATOR_OPTIM, &gan.discriminator_optim),
    ] {
        let bytes = optim.into_bytes().map_err(|e| CheckpointError::Invalid {
            path: PathBuf::from(file),
            problem: format!("cannot serialise optimizer state: {e}"),
        })?;
        files.push((file, bytes.to_vec()));
    }
    if let Some(ema) = &gan.ema {
        files.push((EMA, record_bytes(ema, EMA)?));
    }
    let state = TrainingState {
        format_version: FORMAT_VERSION,
        step: gan.step,
        noise: gan.noise.clone(),
        cursor,
        perfect_d_streak,
        files: files
            .iter()
            .map(|(name, bytes)| (name.to_string(), FileCheck::of(bytes)))
            .collect(),
    };
    let json = serde_json::to_vec_pretty(&state).map_err(|e| CheckpointError::Invalid {
        path: PathBuf::from(STATE),
        problem: e.to_string(),
    })?;
    // state.json last: a folder is recognised as a checkpoint by it.
    files.push((STATE, json));
    Ok(files)
}

/// Saves `gan` at its current step into `run_dir/checkpoints/step-NNNNNNN` and points
/// `latest` at it. Returns the checkpoint folder.
pub fn save(
    gan: &Gan,
    cursor: BatchCursor,
    perfect_d_streak: usize,
    run_dir: &Path,
) -> Result<PathBuf, CheckpointError> {
    let dir = checkpoints_dir(run_dir);
    let name = step_name(gan.step);
    let final_dir = write_folder(
        &encode(gan, cursor, perfect_d_streak)?,
        &dir,
        &name,
        gan.step,
    )?;
    crate::pause_point("checkpoint-latest", gan.step);
    write_atomic(&dir.join(LATEST), name.as_bytes())?;
    prune(&dir, KEEP)?;
    Ok(final_dir)
}

/// Saves `gan` as `run_dir/checkpoints/best` (replacing the previous best), for the
/// generator with the best quality so far. Returns the folder.
pub fn save_best(
    gan: &Gan,
    cursor: BatchCursor,
    perfect_d_streak: usize,
    run_dir: &Path,
) -> Result<PathBuf, CheckpointError> {
    write_folder(
        &encode(gan, cursor, perfect_d_streak)?,
        &checkpoints_dir(run_dir),
        BEST,
        gan.step,
    )
}

/// Writes one checkpoint folder `dir/name`: files written and synced in `.name.tmp`,
/// then renamed into place. An existing `dir/name` is moved aside to `.name.old` first
/// and removed only once the new folder is in place.
fn write_folder(
    files: &[(&'static str, Vec<u8>)],
    dir: &Path,
    name: &str,
    step: usize,
) -> Result<PathBuf, CheckpointError> {
    std::fs::create_dir_all(dir).map_err(io(dir))?;
    let final_dir = dir.join(name);
    let tmp_dir = dir.join(format!(".{name}.tmp"));
    let old_dir = dir.join(format!(".{name}.old"));
    for stale in [&tmp_dir, &old_dir] {
        if stale.exists() {
            std::fs::remove_dir_all(stale).map_err(io(stale))?;
        }
    }
    std::fs::create_dir_all(&tmp_dir).map_err(io(&tmp_dir))?;
    for (i, (file, bytes)) in files.iter().enumerate() {
        if i == 1 {
            crate::pause_point("checkpoint-files", step);
        }
        let path = tmp_dir.join(file);
        fsutil::write_synced(&path, bytes).map_err(io(&path))?;
    }
    fsutil::sync_dir(&tmp_dir).map_err(io(&tmp_dir))?;

    if final_dir.exists() {
        std::fs::rename(&final_dir, &old_dir).map_err(io(&final_dir))?;
    }
    std::fs::rename(&tmp_dir, &final_dir).map_err(io(&final_dir))?;
    fsutil::sync_dir(dir).map_err(io(dir))?;
    if old_dir.exists() {
        std::fs::remove_dir_all(&old_dir).map_err(io(&old_dir))?;
    }
    Ok(final_dir)
}

/// The `step-*` checkpoint folders in `dir`, oldest first (by step number, not name).
fn step_folders(dir: &Path) -> Result<Vec<(usize, PathBuf)>, CheckpointError> {
    let mut steps: Vec<(usize, PathBuf)> = std::fs::read_dir(dir)
        .map_err(io(dir))?
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let step = parse_step_name(e.file_name().to_str()?)?;
            e.path().is_dir().then(|| (step, e.path()))
        })
        .collect();
    steps.sort();
    Ok(steps)
}

/// Removes all but the newest `keep` checkpoints, and temporary folders that a crash
/// left behind.
fn prune(dir: &Path, keep: usize) -> Result<(), CheckpointError> {
    let steps = step_folders(dir)?;
    let excess = steps.len().saturating_sub(keep);
    for (_, old) in &steps[..excess] {
        std::fs::remove_dir_all(old).map_err(io(old))?;
    }
    for leftover in std::fs::read_dir(dir)
        .map_err(io(dir))?
        .filter_map(|e| e.ok())
    {
        let name = leftover.file_name();
        let name = name.to_string_lossy();
        if name.starts_with('.') && (name.ends_with(".tmp") || name.ends_with(".old")) {
            let path = leftover.path();
            if path.is_dir() {
                std::fs::remove_dir_all(&path).map_err(io(&path))?;
            } else {
                std::fs::remove_file(&path).map_err(io(&path))?;
            }
        }
    }
    Ok(())
}

/// The folder `latest` points at in `run_dir`.
pub fn latest(run_dir: &Path) -> Result<PathBuf, CheckpointError> {
    let dir = checkpoints_dir(run_dir);
    let pointer = dir.join(LATEST);
    let name = fsutil::read_text(&pointer).map_err(io(&pointer))?;
    let path = dir.join(name.trim());
    if parse_step_name(name.trim()).is_none() || !path.is_dir() {
        return Err(CheckpointError::Invalid {
            path: pointer,
            problem: format!(
                "points at {}, which is not a checkpoint folder",
                path.display()
            ),
        });
    }
    Ok(path)
}

/// The checkpoints a resume may start from, best first: the one `latest` names, then
/// every `step-*` folder from the newest down (the fallback when `latest` is missing,
/// dangling or unreadable after a crash).
pub fn resume_candidates(run_dir: &Path) -> Result<Vec<PathBuf>, CheckpointError> {
    let dir = checkpoints_dir(run_dir);
    if !dir.is_dir() {
        return Err(CheckpointError::Invalid {
            path: dir,
            problem: "no checkpoints folder: this is not a run folder, or the run saved no checkpoint yet".into(),
        });
    }
    let mut candidates = Vec::new();
    match latest(run_dir) {
        Ok(path) => candidates.push(path),
        Err(e) => warn!("{e}; looking for the newest complete checkpoint instead"),
    }
    for (_, path) in step_folders(&dir)?.into_iter().rev() {
        if !candidates.contains(&path) {
            candidates.push(path);
        }
    }
    if candidates.is_empty() {
        return Err(CheckpointError::Invalid {
            path: dir,
            problem: "holds no checkpoint to resume from".into(),
        });
    }
    Ok(candidates)
}

/// Loads the newest loadable checkpoint of `run_dir` into `gan` (see
/// [`resume_candidates`]); returns its folder and state. Each unreadable candidate is
/// reported with a warning before the next is tried.
pub fn load_latest(
    gan: &mut Gan,
    run_dir: &Path,
) -> Result<(PathBuf, TrainingState), CheckpointError> {
    let mut first_error = None;
    for dir in resume_candidates(run_dir)? {
        match load(gan, &dir) {
            Ok(state) => return Ok((dir, state)),
            Err(e) => {
                warn!("cannot resume from {}: {e}", dir.display());
                first_error.get_or_insert(e);
            }
        }
    }
    Err(first_error.unwrap_or_else(|| CheckpointError::Invalid {
        path: checkpoints_dir(run_dir),
        problem: "holds no checkpoint to resume from".into(),
    }))
}

/// Moves the checkpoints at `from_step` and later aside (renamed `diverged-step-*`, kept
/// for inspection) and points `latest` at the newest one before them. Returns that
/// checkpoint, if any. Called when step `from_step + 1` produced a non-finite loss: the
/// weights saved at `from_step` are the ones that diverged.
pub fn set_aside_from(
    run_dir: &Path,
    from_step: usize,
) -> Result<Option<PathBuf>, CheckpointError> {
    let dir = checkpoints_dir(run_dir);
    if !dir.is_dir() {
        return Ok(None);
    }
    let mut good = None;
    for (step, path) in step_folders(&dir)? {
        if step >= from_step {
            let aside = dir.join(format!("diverged-{}", step_name(step)));
            if aside.exists() {
                std::fs::remove_dir_all(&aside).map_err(io(&aside))?;
            }
            std::fs::rename(&path, &aside).map_err(io(&path))?;
        } else {
            good = Some((step, path));
        }
    }
    match good {
        Some((step, path)) => {
            write_atomic(&dir.join(LATEST), step_name(step).as_bytes())?;
            Ok(Some(path))
        }
        None => {
            let pointer = dir.join(LATEST);
            if pointer.exists() {
                std::fs::remove_file(&pointer).map_err(io(&pointer))?;
            }
            Ok(None)
        }
    }
}

fn read_file(dir: &Path, file: &str, max: u64) -> Result<Vec<u8>, CheckpointError> {
    let path = dir.join(file);
    fsutil::read_regular(&path, max).map_err(io(&path))
}

/// Runs one of burn's record decoders. They were written for files burn itself wrote and
/// `expect` on malformed ones (the checkpoint fuzz target found a panic in burn-optim
/// 0.22.1's optimizer records): the checksums in state.json keep damaged files away from
/// them, and a panic from a crafted file that passes the checksum becomes this error.
fn guarded<T>(
    path: &Path,
    what: &str,
    decode: impl FnOnce() -> Result<T, String>,
) -> Result<T, CheckpointError> {
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(decode));
    std::panic::set_hook(previous);
    let problem = match result {
        Ok(Ok(value)) => return Ok(value),
        Ok(Err(e)) => e,
        Err(_) => "malformed (its decoder failed on it)".to_string(),
    };
    Err(CheckpointError::Invalid {
        path: path.to_path_buf(),
        problem: format!("{what}: {problem}"),
    })
}

fn decode_module<M: Module>(module: M, path: &Path, bytes: Vec<u8>) -> Result<M, CheckpointError> {
    let record = guarded(path, "not a readable burnpack record", || {
        ModuleRecord::from_bytes(Bytes::from_bytes_vec(bytes)).map_err(|e| e.to_string())
    })?;
    guarded(path, "does not fit this run's model", || {
        module.try_load_record(record).map_err(|e| e.to_string())
    })
}

/// Reads `file` through `read` and checks it against the size and CRC-32C that state.json
/// recorded for it.
fn read_checked(
    state: &TrainingState,
    dir: &Path,
    file: &str,
    read: &mut impl FnMut(&str, u64) -> Result<Vec<u8>, CheckpointError>,
) -> Result<Vec<u8>, CheckpointError> {
    let bytes = read(file, fsutil::MAX_RECORD_BYTES)?;
    if state.files.is_empty() {
        return Ok(bytes);
    }
    let found = FileCheck::of(&bytes);
    match state.files.get(file) {
        Some(expected) if *expected == found => Ok(bytes),
        Some(expected) => Err(CheckpointError::Invalid {
            path: dir.join(file),
            problem: format!(
                "damaged (a torn write or a disk error): {} bytes with CRC-32C {:08x}, state.json recorded {} bytes with {:08x}",
                found.bytes, found.crc32c, expected.bytes, expected.crc32c
            ),
        }),
        None => Err(CheckpointError::Invalid {
            path: dir.join(STATE),
            problem: format!("records no checksum for {file}"),
        }),
    }
}

/// Parses a checkpoint's `state.json` (`path` is named in errors).
pub fn parse_state(path: &Path, bytes: &[u8]) -> Result<TrainingState, CheckpointError> {
    let state: TrainingState =
        serde_json::from_slice(bytes).map_err(|e| CheckpointError::Invalid {
            path: path.to_path_buf(),
            problem: e.to_string(),
        })?;
    if state.format_version != FORMAT_VERSION {
        return Err(CheckpointError::Invalid {
            path: path.to_path_buf(),
            problem: format!(
                "checkpoint format {} is not the supported {FORMAT_VERSION}",
                state.format_version
            ),
        });
    }
    Ok(state)
}

/// Loads the checkpoint files that `read` returns by file name into `gan` (built from
/// the run's config); `dir` names them in errors. Nothing in `gan` changes unless every
/// file loads.
pub fn decode(
    gan: &mut Gan,
    dir: &Path,
    mut read: impl FnMut(&str, u64) -> Result<Vec<u8>, CheckpointError>,
) -> Result<TrainingState, CheckpointError> {
    let state = parse_state(&dir.join(STATE), &read(STATE, fsutil::MAX_TEXT_BYTES)?)?;
    let mut load = |file: &str| read_checked(&state, dir, file, &mut read);
    let generator = decode_module(
        gan.generator.clone(),
        &dir.join(GENERATOR),
        load(GENERATOR)?,
    )?;
    let discriminator = decode_module(
        gan.discriminator.clone(),
        &dir.join(DISCRIMINATOR),
        load(DISCRIMINATOR)?,
    )?;
    let ema = match &gan.ema {
        Some(ema) => Some(decode_module(ema.clone(), &dir.join(EMA), load(EMA)?)?),
        None => None,
    };
    let generator_optim = decode_optim(
        &gan.generator_optim,
        dir,
        GENERATOR_OPTIM,
        load(GENERATOR_OPTIM)?,
    )?;
    let discriminator_optim = decode_optim(
        &gan.discriminator_optim,
        dir,
        DISCRIMINATOR_OPTIM,
        load(DISCRIMINATOR_OPTIM)?,
    )?;
    gan.generator = generator;
    gan.discriminator = discriminator;
    gan.ema = ema;
    gan.generator_optim = generator_optim;
    gan.discriminator_optim = discriminator_optim;
    gan.step = state.step;
    gan.noise = state.noise.clone();
    Ok(state)
}

fn decode_optim(
    optim: &ModuleOptimizer,
    dir: &Path,
    file: &str,
    bytes: Vec<u8>,
) -> Result<ModuleOptimizer, CheckpointError> {
    guarded(&dir.join(file), "not a readable optimizer state", || {
        optim
            .clone()
            .from_bytes(Bytes::from_bytes_vec(bytes))
            .map_err(|e| e.to_string())
    })
}

/// Loads the checkpoint in `dir` into `gan` (built from the run's config) and returns
/// the saved non-tensor state. Nothing in `gan` changes unless every file loads.
pub fn load(gan: &mut Gan, dir: &Path) -> Result<TrainingState, CheckpointError> {
    decode(gan, dir, |file, max| read_file(dir, file, max))
}
