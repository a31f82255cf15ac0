//! The run folder a session trains in, set up before the first step: a new run gets a
//! fresh, empty folder; a resumed run its own config.json (with the changes a resume may
//! make) and its newest loadable checkpoint. Nothing in an existing folder is rewritten
//! before that checkpoint has loaded, so a resume that fails leaves the run as it was.

use std::path::{Path, PathBuf};

use tracing::info;

use super::LOG_TARGET;
use super::{
    ResumeChanges, RunOptions, TrainError, load_training_set, select_device, shipped_classifier,
};
use crate::checkpoint::{self, TrainingState};
use crate::config::{ConfigError, TrainConfig};
use crate::data::{BatchCursor, Dataset};
use crate::metrics::DivergenceWatch;
use crate::training::Gan;

/// A run ready for its loop: the settled config, the folder, the data and the GAN at the
/// step it starts from.
pub(super) struct PreparedRun {
    /// The config as config.json now records it.
    pub(super) config: TrainConfig,
    /// The run folder (with `samples/` and `checkpoints/`).
    pub(super) run_dir: PathBuf,
    /// The training set.
    pub(super) dataset: Dataset,
    /// The step the run trains up to.
    pub(super) total_steps: usize,
    /// G and D, fresh or loaded from the checkpoint.
    pub(super) gan: Gan,
    /// Where the batch stream continues.
    pub(super) cursor: BatchCursor,
    /// The perfect-D watch, with a resumed run's streak.
    pub(super) watch: DivergenceWatch,
    /// The step of the checkpoint a resumed run continues from; `None` for a new run.
    pub(super) resume_step: Option<usize>,
}

/// Sets up the run folder of `config` (or of the run `options.resume` names) and the GAN
/// that trains in it.
pub(super) fn prepare(
    config: TrainConfig,
    options: &RunOptions,
) -> Result<PreparedRun, TrainError> {
    let (mut config, run_dir) = match &options.resume {
        Some(dir) => (resumed_config(dir, options.changes)?, dir.clone()),
        None => {
            let dir = new_run_dir(&config)?;
            (config, dir)
        }
    };

    let dataset = load_training_set(&config)?;
    config.image = dataset.shape();
    if config.eval.classifier.is_none() && config.eval.auto && options.resume.is_none() {
        use_shipped_classifier(&mut config);
    }
    config.out_dir = Some(run_dir.clone());
    config.validate()?;
    let classes = dataset.class_names().len();
    let total_steps = total_steps(&config, &dataset);

    create_folders(&run_dir)?;
    let device = select_device(config.backend)?;
    let mut gan = Gan::new(&config, classes, dataset.shape(), &device);
    let mut cursor = BatchCursor::default();
    let mut watch = DivergenceWatch::new(config.divergence_patience, 0);
    let mut resume_step = None;
    if options.resume.is_some() {
        // The checkpoint is validated before anything in the run folder is rewritten.
        let state = resume_checkpoint(&mut config, &mut gan, &run_dir, options.changes)?;
        cursor = state.cursor;
        watch = DivergenceWatch::new(config.divergence_patience, state.perfect_d_streak);
        resume_step = Some(state.step);
    }
    write_run_files(&config, &dataset, &run_dir)?;
    Ok(PreparedRun {
        config,
        run_dir,
        dataset,
        total_steps,
        gan,
        cursor,
        watch,
        resume_step,
    })
}

/// A resumed run's config.json with `changes` to its length (learning rates change only
/// once the checkpoint has loaded: see [`resume_checkpoint`]).
fn resumed_config(dir: &Path, changes: ResumeChanges) -> Result<TrainConfig, TrainError> {
    let mut saved = TrainConfig::from_json_file(&dir.join("config.json"))?;
    // A resumed run may be extended; everything else stays as it was trained.
    if let Some(steps) = changes.steps {
        saved.steps = steps;
        saved.epochs = None;
    }
    if changes.epochs.is_some() {
        saved.epochs = changes.epochs;
    }
    Ok(saved)
}

/// A new run's folder: `config.out_dir` or `runs/<model>-<UTC time>`, which must not hold
/// anything yet.
fn new_run_dir(config: &TrainConfig) -> Result<PathBuf, TrainError> {
    let dir = config
        .out_dir
        .clone()
        .unwrap_or_else(|| default_run_dir(config));
    if dir.read_dir().is_ok_and(|mut d| d.next().is_some()) {
        return Err(TrainError::RunDir {
            path: dir,
            problem:
                "already exists and is not empty: pass --resume to continue it, or another --out"
                    .into(),
        });
    }
    Ok(dir)
}

fn default_run_dir(config: &TrainConfig) -> PathBuf {
    let stamp = humantime::format_rfc3339_seconds(std::time::SystemTime::now())
        .to_string()
        .replace(':', "-");
    PathBuf::from("runs").join(format!(
        "{}{}-{stamp}",
        config.model.kind,
        if config.conditional { "-cond" } else { "" }
    ))
}

/// Measures quality with the shipped classifier of the data set, when there is one, and
/// says which way it went.
fn use_shipped_classifier(config: &mut TrainConfig) {
    config.eval.classifier = shipped_classifier(Path::new(""), &config.dataset);
    match &config.eval.classifier {
        Some(path) => info!(
            target: LOG_TARGET,
            classifier = %path.display(),
            every = config.eval.every,
            "measuring FID while training with the shipped classifier for this data set"
        ),
        None => info!(
            target: LOG_TARGET,
            "no evaluation classifier for this data set: `trainer classifier --dataset {}` trains one, then pass --eval-classifier to see FID while training",
            config.dataset.display()
        ),
    }
}

/// The step the run trains up to: `epochs` passes over the data, or `steps`.
fn total_steps(config: &TrainConfig, dataset: &Dataset) -> usize {
    let steps_per_epoch = (dataset.len() / config.batch_size.min(dataset.len())).max(1);
    match config.epochs {
        Some(epochs) if epochs > 0 => epochs * steps_per_epoch,
        _ => config.steps,
    }
}

/// The run folder and its `samples/` and `checkpoints/`.
fn create_folders(run_dir: &Path) -> Result<(), TrainError> {
    for sub in ["", "samples", "checkpoints"] {
        let path = run_dir.join(sub);
        std::fs::create_dir_all(&path).map_err(|e| TrainError::RunDir {
            path: path.clone(),
            problem: e.to_string(),
        })?;
    }
    Ok(())
}

/// Loads the newest loadable checkpoint of a resumed run into `gan` and applies the new
/// learning rates of `changes` from its step on (recorded in `config`).
fn resume_checkpoint(
    config: &mut TrainConfig,
    gan: &mut Gan,
    run_dir: &Path,
    changes: ResumeChanges,
) -> Result<TrainingState, TrainError> {
    let (dir, state) = checkpoint::load_latest(gan, run_dir)?;
    if changes.generator_learning_rate.is_some() || changes.discriminator_learning_rate.is_some() {
        config.change_learning_rates(
            state.step,
            changes.generator_learning_rate,
            changes.discriminator_learning_rate,
        );
        config.validate()?;
        gan.set_learning_rates(config);
        info!(
            target: LOG_TARGET,
            step = state.step,
            lr_g = config.generator_adam.learning_rate,
            lr_d = config.discriminator_adam.learning_rate,
            "new learning rates from this step on (recorded in config.json)"
        );
    }
    info!(target: LOG_TARGET, step = state.step, checkpoint = %dir.display(), "resuming");
    Ok(state)
}

/// Writes the run's config.json and classes.json.
fn write_run_files(
    config: &TrainConfig,
    dataset: &Dataset,
    run_dir: &Path,
) -> Result<(), TrainError> {
    let config_json =
        serde_json::to_vec_pretty(config).map_err(|e| ConfigError::Invalid(e.to_string()))?;
    checkpoint::write_atomic(&run_dir.join("config.json"), &config_json)?;
    let classes_json = serde_json::to_vec_pretty(dataset.class_names())
        .map_err(|e| ConfigError::Invalid(e.to_string()))?;
    checkpoint::write_atomic(&run_dir.join("classes.json"), &classes_json)?;
    Ok(())
}
