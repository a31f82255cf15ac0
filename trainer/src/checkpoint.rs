//! Checkpoints: G, D, both optimizers' Adam state, the EMA weights, the step, the
//! noise generator's state and the batch cursor — all a resumed run needs to continue
//! exactly where an uninterrupted one would be.
//!
//! A checkpoint is a folder written under a temporary name and renamed into place,
//! then `latest` is replaced the same way, so a crash or Ctrl-C mid-write never
//! leaves a half-written checkpoint where a resume would read it.

use std::path::{Path, PathBuf};

use burn::module::Module;
use burn::store::ModuleRecord;
use burn::tensor::Bytes;
use serde::{Deserialize, Serialize};

use crate::data::BatchCursor;
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
    #[error("{path}: {source}")]
    Io {
        /// The file or folder.
        path: PathBuf,
        /// The operating system's error.
        source: std::io::Error,
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
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> CheckpointError + '_ {
    move |source| CheckpointError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Writes `bytes` to `path` through a temporary file and a rename.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), CheckpointError> {
    let tmp = path.with_extension(format!(
        "{}tmp",
        path.extension()
            .map(|e| format!("{}.", e.to_string_lossy()))
            .unwrap_or_default()
    ));
    std::fs::write(&tmp, bytes).map_err(io(&tmp))?;
    std::fs::rename(&tmp, path).map_err(io(path))
}

/// Folder of the checkpoints of a run.
pub fn checkpoints_dir(run_dir: &Path) -> PathBuf {
    run_dir.join("checkpoints")
}

fn record_bytes<M: Module>(module: &M, path: &Path) -> Result<Vec<u8>, CheckpointError> {
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
            path: path.to_path_buf(),
            problem: format!("cannot serialise: {e}"),
        })
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
    let name = format!("step-{:07}", gan.step);
    let final_dir = write_folder(gan, cursor, perfect_d_streak, &dir, &name)?;
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
        gan,
        cursor,
        perfect_d_streak,
        &checkpoints_dir(run_dir),
        BEST,
    )
}

/// Writes one checkpoint folder `dir/name` through a temporary folder and a rename.
fn write_folder(
    gan: &Gan,
    cursor: BatchCursor,
    perfect_d_streak: usize,
    dir: &Path,
    name: &str,
) -> Result<PathBuf, CheckpointError> {
    std::fs::create_dir_all(dir).map_err(io(dir))?;
    let final_dir = dir.join(name);
    let tmp_dir = dir.join(format!(".{name}.tmp"));
    if tmp_dir.exists() {
        std::fs::remove_dir_all(&tmp_dir).map_err(io(&tmp_dir))?;
    }
    std::fs::create_dir_all(&tmp_dir).map_err(io(&tmp_dir))?;

    let write = |file: &str, bytes: Vec<u8>| {
        let path = tmp_dir.join(file);
        std::fs::write(&path, bytes).map_err(io(&path))
    };
    write(
        GENERATOR,
        record_bytes(&gan.generator, &tmp_dir.join(GENERATOR))?,
    )?;
    write(
        DISCRIMINATOR,
        record_bytes(&gan.discriminator, &tmp_dir.join(DISCRIMINATOR))?,
    )?;
    for (file, optim) in [
        (GENERATOR_OPTIM, &gan.generator_optim),
        (DISCRIMINATOR_OPTIM, &gan.discriminator_optim),
    ] {
        let bytes = optim.into_bytes().map_err(|e| CheckpointError::Invalid {
            path: tmp_dir.join(file),
            problem: format!("cannot serialise optimizer state: {e}"),
        })?;
        write(file, bytes.to_vec())?;
    }
    if let Some(ema) = &gan.ema {
        write(EMA, record_bytes(ema, &tmp_dir.join(EMA))?)?;
    }
    let state = TrainingState {
        format_version: FORMAT_VERSION,
        step: gan.step,
        noise: gan.noise.clone(),
        cursor,
        perfect_d_streak,
    };
    let json = serde_json::to_vec_pretty(&state).map_err(|e| CheckpointError::Invalid {
        path: tmp_dir.join(STATE),
        problem: e.to_string(),
    })?;
    write(STATE, json)?;

    if final_dir.exists() {
        std::fs::remove_dir_all(&final_dir).map_err(io(&final_dir))?;
    }
    std::fs::rename(&tmp_dir, &final_dir).map_err(io(&final_dir))?;
    Ok(final_dir)
}

/// Removes all but the newest `keep` checkpoints.
fn prune(dir: &Path, keep: usize) -> Result<(), CheckpointError> {
    let mut steps: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(io(dir))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.is_dir()
                && p.file_name()
                    .is_some_and(|n| n.to_string_lossy().starts_with("step-"))
        })
        .collect();
    steps.sort();
    let excess = steps.len().saturating_sub(keep);
    for old in &steps[..excess] {
        std::fs::remove_dir_all(old).map_err(io(old))?;
    }
    Ok(())
}

/// The folder `latest` points at in `run_dir`.
pub fn latest(run_dir: &Path) -> Result<PathBuf, CheckpointError> {
    let dir = checkpoints_dir(run_dir);
    let pointer = dir.join(LATEST);
    let name = std::fs::read_to_string(&pointer).map_err(io(&pointer))?;
    let path = dir.join(name.trim());
    if !path.is_dir() {
        return Err(CheckpointError::Invalid {
            path: pointer,
            problem: format!("points at {}, which does not exist", path.display()),
        });
    }
    Ok(path)
}

fn read_record(path: &Path) -> Result<ModuleRecord, CheckpointError> {
    let bytes = std::fs::read(path).map_err(io(path))?;
    ModuleRecord::from_bytes(Bytes::from_bytes_vec(bytes)).map_err(|e| CheckpointError::Invalid {
        path: path.to_path_buf(),
        problem: format!("not a readable burnpack record: {e}"),
    })
}

fn load_module<M: Module>(module: M, path: &Path) -> Result<M, CheckpointError> {
    module
        .try_load_record(read_record(path)?)
        .map_err(|e| CheckpointError::Invalid {
            path: path.to_path_buf(),
            problem: format!("does not fit this run's model: {e}"),
        })
}

/// Loads the checkpoint in `dir` into `gan` (built from the run's config) and returns
/// the saved non-tensor state.
pub fn load(gan: &mut Gan, dir: &Path) -> Result<TrainingState, CheckpointError> {
    let state_path = dir.join(STATE);
    let text = std::fs::read_to_string(&state_path).map_err(io(&state_path))?;
    let state: TrainingState =
        serde_json::from_str(&text).map_err(|e| CheckpointError::Invalid {
            path: state_path.clone(),
            problem: e.to_string(),
        })?;
    if state.format_version != FORMAT_VERSION {
        return Err(CheckpointError::Invalid {
            path: state_path,
            problem: format!(
                "checkpoint format {} is not the supported {FORMAT_VERSION}",
                state.format_version
            ),
        });
    }
    gan.generator = load_module(gan.generator.clone(), &dir.join(GENERATOR))?;
    gan.discriminator = load_module(gan.discriminator.clone(), &dir.join(DISCRIMINATOR))?;
    if let Some(ema) = gan.ema.take() {
        gan.ema = Some(load_module(ema, &dir.join(EMA))?);
    }
    for (file, optim) in [
        (GENERATOR_OPTIM, &mut gan.generator_optim),
        (DISCRIMINATOR_OPTIM, &mut gan.discriminator_optim),
    ] {
        let path = dir.join(file);
        let bytes = std::fs::read(&path).map_err(io(&path))?;
        let loaded = optim
            .clone()
            .from_bytes(Bytes::from_bytes_vec(bytes))
            .map_err(|e| CheckpointError::Invalid {
                path: path.clone(),
                problem: format!("not a readable optimizer state: {e}"),
            })?;
        *optim = loaded;
    }
    gan.step = state.step;
    gan.noise = state.noise.clone();
    Ok(state)
}
