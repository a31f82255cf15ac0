//! A training run from start to finish: the run folder, the data, the device, the
//! loop with its progress bar, logs, samples and checkpoints, and a clean stop on
//! Ctrl-C or divergence.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use image::RgbImage;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use tracing::{info, warn};

use crate::checkpoint::{self, CheckpointError};
use crate::config::{BackendKind, ConfigError, TrainConfig};
use crate::data::{self, Batcher, DataError, Dataset, Split};
use crate::metrics::{Accumulator, DivergenceWatch, MetricsLine, MetricsLog, QualityLine};
use crate::quality::{EvalClassifier, EvalOptions, Evaluator};
use crate::render;
use crate::report::{self, tensorboard::EventWriter};
use crate::training::{Gan, StepStats, generate};
use burn::tensor::Device;

/// Why a run stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    /// The config is unusable.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The data set is unreadable.
    #[error(transparent)]
    Data(#[from] DataError),
    /// A checkpoint, sample or config could not be written or read.
    #[error(transparent)]
    Checkpoint(#[from] CheckpointError),
    /// The run folder is unusable.
    #[error("{path}: {problem}")]
    RunDir {
        /// The folder.
        path: PathBuf,
        /// What is wrong.
        problem: String,
    },
    /// The requested backend is not available in this build or on this machine.
    #[error("{0}")]
    Backend(String),
    /// The quality evaluator could not be set up or run.
    #[error(transparent)]
    Quality(#[from] crate::quality::QualityError),
    /// The TensorBoard event file could not be written.
    #[error(transparent)]
    TensorBoard(#[from] report::tensorboard::TensorBoardError),
    /// Losses became NaN or infinite.
    #[error("training diverged at step {step} (NaN or infinite loss); {advice}")]
    Diverged {
        /// The step that produced the non-finite loss.
        step: usize,
        /// The newest checkpoint whose weights still trained a finite step, if any.
        last_good: Option<PathBuf>,
        /// What to do: the resume command with lower learning rates.
        advice: String,
    },
}

/// How a finished run went.
#[derive(Clone, Debug)]
pub struct RunSummary {
    /// The run folder.
    pub run_dir: PathBuf,
    /// Steps completed.
    pub steps: usize,
    /// Means over the last logging interval.
    pub last: Option<MetricsLine>,
    /// True when Ctrl-C stopped the run (a checkpoint was saved).
    pub interrupted: bool,
    /// Why the run stopped before its last step on its own (`--until-fid`, `--patience`).
    pub stopped_early: Option<String>,
    /// Mean training steps per second of this session.
    pub steps_per_s: f64,
}

/// What a resumed run may change; every other setting stays as the run was trained.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct ResumeChanges {
    /// A new step target (the run's own target when absent).
    pub steps: Option<usize>,
    /// A new epoch target.
    pub epochs: Option<usize>,
    /// G's new learning rate (recorded as a new segment in config.json).
    pub generator_learning_rate: Option<f64>,
    /// D's new learning rate.
    pub discriminator_learning_rate: Option<f64>,
}

/// What to do besides the config.
#[derive(Clone, Debug, Default)]
pub struct RunOptions {
    /// Continue the run in this folder from its latest checkpoint (the `config` given to
    /// [`train`] is then ignored: the run's own config.json is used, with `changes`).
    pub resume: Option<PathBuf>,
    /// What the resume changes.
    pub changes: ResumeChanges,
    /// Draw a progress bar on the terminal.
    pub progress: bool,
    /// Stop (with a checkpoint) when this flag turns true; Ctrl-C sets it in the CLI.
    pub stop: Option<Arc<AtomicBool>>,
}

/// Picks the compute device; falls back to the CPU with a message when no GPU is usable.
pub fn select_device(backend: BackendKind) -> Result<Device, TrainError> {
    match backend {
        BackendKind::Cpu => Ok(Device::flex()),
        BackendKind::Wgpu => wgpu_device(),
    }
}

#[cfg(feature = "wgpu")]
fn wgpu_device() -> Result<Device, TrainError> {
    use burn::tensor::{DeviceKind, Tensor};
    let device = Device::wgpu(DeviceKind::DefaultDevice);
    // Device creation is lazy and adapter discovery panics inside wgpu's runtime when
    // there is no adapter: probe with one tiny op and fall back instead of crashing.
    let probe = device.clone();
    // The runtime panics on its own device thread too: keep both panics off the terminal
    // while probing, and say what happened in one line instead.
    let previous_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    let ok = std::panic::catch_unwind(move || {
        let t = Tensor::<1>::from_floats([1.0, 2.0], &probe);
        t.sum().into_scalar::<f32>()
    });
    std::panic::set_hook(previous_hook);
    match ok {
        Ok(v) if (v - 3.0).abs() < 1e-6 => Ok(device),
        _ => {
            warn!(
                "no usable GPU adapter found through wgpu; falling back to the CPU (flex) backend"
            );
            Ok(Device::flex())
        }
    }
}

#[cfg(not(feature = "wgpu"))]
fn wgpu_device() -> Result<Device, TrainError> {
    Err(TrainError::Backend(
        "this trainer was built without GPU support: rebuild with `cargo run --release -p trainer --features wgpu -- train --backend wgpu`".into(),
    ))
}

/// Loads the training split named by `config` (at most `max_examples` of it).
pub fn load_training_set(config: &TrainConfig) -> Result<Dataset, TrainError> {
    let dataset = data::open(&config.dataset, Split::Train, config.image)?;
    Ok(match config.max_examples {
        Some(n) => dataset.truncated(n),
        None => dataset,
    })
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

/// The noise seed of a run's sample grids: the run's seed, offset so that the grid's z do
/// not repeat the first training batch's.
pub fn sample_grid_seed(seed: u64) -> u64 {
    seed.wrapping_add(0x5A3D)
}

/// The fixed noise (and labels) of the sample grids: a row per class for conditional
/// models, an 8×8 grid otherwise.
struct SampleSheet {
    noise: Vec<f32>,
    labels: Option<Vec<i64>>,
    rows: usize,
    cols: usize,
}

impl SampleSheet {
    fn new(config: &TrainConfig, classes: usize) -> Self {
        let (rows, cols) = if classes > 0 { (classes, 10) } else { (8, 8) };
        // Gantry's one noise stream (`runtime::noise`): sample i of the grid has the z that
        // `runtime generate --seed SEED` gives its sample i, on any machine.
        let noise = runtime::noise::noise(rows * cols, config.z_dim, sample_grid_seed(config.seed));
        let labels = (classes > 0).then(|| (0..rows * cols).map(|i| (i / cols) as i64).collect());
        Self {
            noise,
            labels,
            rows,
            cols,
        }
    }

    fn save(&self, gan: &Gan, path: &Path) -> Result<RgbImage, CheckpointError> {
        let device = gan.device().clone().without_autodiff();
        let images = generate(
            &gan.inference_generator(),
            self.noise.clone(),
            gan.config().z_dim,
            self.labels.clone(),
            &device,
        );
        let picture = render::grid(&images, gan.config().image, self.rows, self.cols, 2);
        render::save_png(&picture, path)?;
        Ok(picture)
    }
}

/// Trains a GAN as `config` says (or continues the run `options.resume` names).
pub fn train(config: TrainConfig, options: &RunOptions) -> Result<RunSummary, TrainError> {
    let (mut config, run_dir) = match &options.resume {
        Some(dir) => {
            let mut saved = TrainConfig::from_json_file(&dir.join("config.json"))?;
            // A resumed run may be extended; everything else stays as it was trained.
            let changes = options.changes;
            if let Some(steps) = changes.steps {
                saved.steps = steps;
                saved.epochs = None;
            }
            if changes.epochs.is_some() {
                saved.epochs = changes.epochs;
            }
            (saved, dir.clone())
        }
        None => {
            let dir = config
                .out_dir
                .clone()
                .unwrap_or_else(|| default_run_dir(&config));
            if dir.read_dir().is_ok_and(|mut d| d.next().is_some()) {
                return Err(TrainError::RunDir {
                    path: dir,
                    problem: "already exists and is not empty: pass --resume to continue it, or another --out".into(),
                });
            }
            (config, dir)
        }
    };

    let dataset = load_training_set(&config)?;
    config.image = dataset.shape();
    if config.eval.classifier.is_none() && config.eval.auto && options.resume.is_none() {
        config.eval.classifier = shipped_classifier(Path::new(""), &config.dataset);
        match &config.eval.classifier {
            Some(path) => info!(
                classifier = %path.display(),
                every = config.eval.every,
                "measuring FID while training with the shipped classifier for this data set"
            ),
            None => info!(
                "no evaluation classifier for this data set: `trainer classifier --dataset {}` trains one, then pass --eval-classifier to see FID while training",
                config.dataset.display()
            ),
        }
    }
    config.out_dir = Some(run_dir.clone());
    config.validate()?;
    let classes = dataset.class_names().len();
    let steps_per_epoch = (dataset.len() / config.batch_size.min(dataset.len())).max(1);
    let total_steps = match config.epochs {
        Some(epochs) if epochs > 0 => epochs * steps_per_epoch,
        _ => config.steps,
    };

    for sub in ["", "samples", "checkpoints"] {
        let path = run_dir.join(sub);
        std::fs::create_dir_all(&path).map_err(|e| TrainError::RunDir {
            path: path.clone(),
            problem: e.to_string(),
        })?;
    }
    let device = select_device(config.backend)?;
    let mut gan = Gan::new(&config, classes, dataset.shape(), &device);
    let mut cursor = data::BatchCursor::default();
    let mut watch = DivergenceWatch::new(config.divergence_patience, 0);
    let mut resume_step = None;
    if options.resume.is_some() {
        // The checkpoint is validated before anything in the run folder is rewritten.
        let (dir, state) = checkpoint::load_latest(&mut gan, &run_dir)?;
        let changes = options.changes;
        if changes.generator_learning_rate.is_some()
            || changes.discriminator_learning_rate.is_some()
        {
            config.change_learning_rates(
                state.step,
                changes.generator_learning_rate,
                changes.discriminator_learning_rate,
            );
            config.validate()?;
            gan.set_learning_rates(&config);
            info!(
                step = state.step,
                lr_g = config.generator_adam.learning_rate,
                lr_d = config.discriminator_adam.learning_rate,
                "new learning rates from this step on (recorded in config.json)"
            );
        }
        cursor = state.cursor;
        watch = DivergenceWatch::new(config.divergence_patience, state.perfect_d_streak);
        resume_step = Some(state.step);
        info!(step = state.step, checkpoint = %dir.display(), "resuming");
    }
    let config_json =
        serde_json::to_vec_pretty(&config).map_err(|e| ConfigError::Invalid(e.to_string()))?;
    checkpoint::write_atomic(&run_dir.join("config.json"), &config_json)?;
    let classes_json = serde_json::to_vec_pretty(dataset.class_names())
        .map_err(|e| ConfigError::Invalid(e.to_string()))?;
    checkpoint::write_atomic(&run_dir.join("classes.json"), &classes_json)?;

    let mut batcher = Batcher::new(&dataset, config.batch_size, config.seed, cursor);
    let log_path = run_dir.join("metrics.jsonl");
    let mut log = MetricsLog::open(&log_path, resume_step).map_err(|e| TrainError::RunDir {
        path: log_path.clone(),
        problem: e.to_string(),
    })?;
    let mut board = if config.tensorboard {
        let writer = EventWriter::create(&run_dir)?;
        info!(file = %writer.path().display(), "writing TensorBoard events: tensorboard --logdir {}", run_dir.display());
        Some(writer)
    } else {
        None
    };
    let sheet = SampleSheet::new(&config, gan.classes());
    let evaluator = quality_evaluator(&config, &dataset)?;
    // A resumed run's past: its best FID keeps "best" meaningful, its training seconds
    // continue the time-to-quality clock.
    let logged = resume_step.map_or_else(Vec::new, |step| logged_up_to(&log_path, step));
    let mut best_fid = logged
        .iter()
        .filter_map(|l| l.quality.as_ref().map(|q| q.fid))
        .min_by(f64::total_cmp)
        .unwrap_or(f64::INFINITY);

    info!(
        run = %run_dir.display(),
        model = %config.model.kind,
        conditional = config.conditional,
        examples = dataset.len(),
        classes,
        total_steps,
        "training"
    );
    let progress = if options.progress {
        ProgressBar::with_draw_target(Some(total_steps as u64), ProgressDrawTarget::stderr())
    } else {
        ProgressBar::hidden()
    };
    progress.set_style(
        ProgressStyle::with_template(
            "{elapsed_precise} [{bar:30}] {pos}/{len} steps ({per_sec}, eta {eta}) {msg}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> "),
    );
    progress.set_position(gan.step as u64);

    let mut acc = Accumulator::default();
    let mut last_line = None;
    let mut last_checkpoint = String::from("none (no checkpoint was written yet)");
    // The step of the newest checkpoint this session wrote (the last one is not written twice).
    let mut saved_at = resume_step;
    if resume_step.is_none() && config.every.checkpoint > 0 {
        // Step 0 too: a run that diverges in its first steps can still be resumed with
        // lower learning rates, as the divergence error advises.
        let dir = checkpoint::save(&gan, batcher.cursor(), watch.perfect_d_streak, &run_dir)?;
        last_checkpoint = dir.display().to_string();
        saved_at = Some(0);
    }
    let session_start = Instant::now();
    let first_step = gan.step;
    let mut interrupted = false;
    let mut stopped_early = None;
    let mut evaluations_without_best = 0;
    let mut last_quality: Option<QualityLine> = None;
    // Training seconds of earlier sessions of a resumed run, then of this one.
    let mut train_s = logged.iter().rev().find_map(|l| l.train_s).unwrap_or(0.0);
    let every = config.every;

    while gan.step < total_steps {
        let started = Instant::now();
        let real = batcher.next_batch(&dataset);
        let stats: StepStats = gan.train_step(&real);
        let seconds = started.elapsed().as_secs_f64();
        acc.add(&stats, seconds);
        train_s += seconds;
        progress.inc(1);

        if stats.is_diverged() {
            let mut line = acc
                .take(gan.step)
                .unwrap_or_else(|| unreachable_line(gan.step));
            line.event = Some("diverged: NaN or infinite loss".into());
            let _ = log.write(&line);
            progress.abandon();
            // D's figures of step n come from the weights saved after step n−1: when they
            // are not finite, those weights diverged; otherwise step n's own update did.
            let d_step_finite = [stats.d_loss, stats.d_real, stats.d_fake]
                .iter()
                .all(|v| v.is_finite());
            let first_bad = if d_step_finite {
                gan.step
            } else {
                gan.step.saturating_sub(1)
            };
            let last_good = checkpoint::set_aside_from(&run_dir, first_bad)?;
            let advice = match &last_good {
                Some(dir) => format!(
                    "the last good checkpoint is {}: continue from it with lower learning rates, e.g. `trainer train --resume {} --lr-g {} --lr-d {}`",
                    dir.display(),
                    run_dir.display(),
                    short_float(config.generator_adam.learning_rate / 10.0),
                    short_float(config.discriminator_adam.learning_rate / 10.0)
                ),
                None => format!(
                    "no checkpoint was written before it: start a new run with lower learning rates, e.g. --lr-g {} --lr-d {}",
                    short_float(config.generator_adam.learning_rate / 10.0),
                    short_float(config.discriminator_adam.learning_rate / 10.0)
                ),
            };
            return Err(TrainError::Diverged {
                step: gan.step,
                last_good,
                advice,
            });
        }
        let warning = watch.observe(&stats);
        if let Some(w) = &warning {
            progress.suspend(|| warn!(step = gan.step, "{w}"));
        }

        let step = gan.step;
        let stop = options
            .stop
            .as_ref()
            .is_some_and(|s| s.load(Ordering::SeqCst));
        let evaluate = evaluator.is_some()
            && ((config.eval.every > 0 && step.is_multiple_of(config.eval.every))
                || step == total_steps);
        let quality = match (&evaluator, evaluate) {
            (Some(evaluator), true) => Some(evaluate_quality(
                evaluator,
                &gan,
                config.eval.samples,
                config.seed,
            )?),
            _ => None,
        };
        let mut early = None;
        if let Some(q) = &quality {
            if q.fid < best_fid {
                best_fid = q.fid;
                evaluations_without_best = 0;
                checkpoint::save_best(&gan, batcher.cursor(), watch.perfect_d_streak, &run_dir)?;
                progress
                    .suspend(|| info!(step, fid = q.fid, "new best FID: checkpoints/best updated"));
            } else {
                evaluations_without_best += 1;
            }
            early = early_stop(&config, q.fid, evaluations_without_best);
            last_quality = Some(q.clone());
        }
        let stop = stop || early.is_some();
        let log_now = (every.log > 0 && step.is_multiple_of(every.log))
            || warning.is_some()
            || stop
            || quality.is_some()
            || step == total_steps;
        if log_now && let Some(mut line) = acc.take(step) {
            line.event = early.clone().or_else(|| warning.clone());
            line.quality = quality;
            line.train_s = Some(train_s);
            progress.set_message(progress_message(&line, last_quality.as_ref()));
            log.write(&line).map_err(|e| TrainError::RunDir {
                path: log.path().to_path_buf(),
                problem: e.to_string(),
            })?;
            if !options.progress {
                info!(
                    step,
                    d_loss = line.d_loss,
                    g_loss = line.g_loss,
                    d_real = line.d_real,
                    d_fake = line.d_fake,
                    acc_real = line.acc_real,
                    acc_fake = line.acc_fake,
                    step_ms = line.step_ms,
                    fid = line.quality.as_ref().map(|q| q.fid),
                    "progress"
                );
            }
            if let Some(board) = &mut board {
                board.scalars(step as u64, &report::scalars(&line))?;
                board.flush()?;
            }
            last_line = Some(line);
        }
        if every.sample > 0 && step.is_multiple_of(every.sample) {
            let path = run_dir.join("samples").join(format!("step-{step:07}.png"));
            let picture = sheet.save(&gan, &path)?;
            if let Some(board) = &mut board {
                board.image("samples", step as u64, &picture)?;
                board.flush()?;
            }
        }
        if (every.checkpoint > 0 && step.is_multiple_of(every.checkpoint)) || stop {
            let dir = checkpoint::save(&gan, batcher.cursor(), watch.perfect_d_streak, &run_dir)?;
            last_checkpoint = dir.display().to_string();
            saved_at = Some(step);
        }
        if let Some(reason) = early {
            progress.suspend(|| info!(step, checkpoint = %last_checkpoint, "{reason}"));
            stopped_early = Some(reason);
            break;
        }
        if stop {
            interrupted = true;
            progress.suspend(
                || warn!(step, checkpoint = %last_checkpoint, "interrupted: checkpoint saved"),
            );
            break;
        }
    }
    progress.finish_and_clear();

    if saved_at != Some(gan.step) {
        checkpoint::save(&gan, batcher.cursor(), watch.perfect_d_streak, &run_dir)?;
    }
    let latest = sheet.save(&gan, &run_dir.join("samples").join("latest.png"))?;
    if let Some(board) = &mut board {
        board.image("samples", gan.step as u64, &latest)?;
        board.flush()?;
    }
    save_report(&log_path, &latest, &run_dir.join("report.png"))?;

    let elapsed = session_start.elapsed().as_secs_f64();
    let steps_done = gan.step - first_step;
    Ok(RunSummary {
        run_dir,
        steps: gan.step,
        last: last_line,
        interrupted,
        stopped_early,
        steps_per_s: if elapsed > 0.0 {
            steps_done as f64 / elapsed
        } else {
            0.0
        },
    })
}

/// `x` with three significant digits and no trailing zeros (`2e-5`, `1.5e-4`).
fn short_float(x: f64) -> String {
    let text = format!("{x:.2e}");
    match text.split_once('e') {
        Some((mantissa, exponent)) => {
            let mantissa = mantissa.trim_end_matches('0').trim_end_matches('.');
            format!("{mantissa}e{exponent}")
        }
        None => text,
    }
}

/// A metrics line for a step whose statistics were not accumulated (cannot happen:
/// the step was just added).
fn unreachable_line(step: usize) -> MetricsLine {
    MetricsLine {
        step,
        d_loss: f32::NAN,
        g_loss: f32::NAN,
        d_real: f32::NAN,
        d_fake: f32::NAN,
        acc_real: f32::NAN,
        acc_fake: f32::NAN,
        step_ms: f32::NAN,
        train_s: None,
        quality: None,
        event: None,
    }
}

/// The evaluator of `config.eval`, when the run has a classifier: real reference = the
/// test split of an IDX data set, or the training images of an image folder (which has none).
fn quality_evaluator(
    config: &TrainConfig,
    dataset: &Dataset,
) -> Result<Option<Evaluator>, TrainError> {
    let Some(path) = &config.eval.classifier else {
        return Ok(None);
    };
    let classifier = EvalClassifier::load(path)?;
    let reference = if data::is_idx_dir(&config.dataset) {
        data::open(&config.dataset, Split::Test, config.image)?
    } else {
        info!("image folder without a test split: quality is measured against the training images");
        dataset.clone()
    };
    Ok(Some(Evaluator::new(
        classifier,
        &reference,
        EvalOptions::default(),
    )?))
}

/// Quality of the run's generator now (the same noise every time, so reports differ only
/// by the weights).
fn evaluate_quality(
    evaluator: &Evaluator,
    gan: &Gan,
    samples: usize,
    seed: u64,
) -> Result<QualityLine, TrainError> {
    let report = evaluator.evaluate_gan(gan, samples, seed.wrapping_add(0xE7A1))?;
    Ok(QualityLine {
        samples: report.samples,
        fid: report.fid,
        precision: report.precision,
        recall: report.recall,
        class_entropy: report.coverage.entropy_bits,
        largest_class_share: report.coverage.largest_share,
        conditional_accuracy: report.conditional.as_ref().map(|c| c.accuracy),
    })
}

/// The metrics lines logged up to `step` (a resumed run's past; empty for a new run or
/// an unreadable log).
fn logged_up_to(metrics: &Path, step: usize) -> Vec<MetricsLine> {
    let mut lines = crate::metrics::read(metrics).unwrap_or_default();
    lines.retain(|l| l.step <= step);
    lines
}

/// Draws the run report (losses, D's outputs and accuracy, FID; `samples` beside them)
/// from a `metrics.jsonl` into a PNG.
pub fn save_report(metrics: &Path, samples: &RgbImage, out: &Path) -> Result<(), TrainError> {
    let lines = crate::metrics::read(metrics).map_err(|e| TrainError::RunDir {
        path: metrics.to_path_buf(),
        problem: e.to_string(),
    })?;
    render::save_png(&report::figure::report(&lines, Some(samples)), out)?;
    Ok(())
}

/// The progress bar's message: the latest losses and D's outputs, and the latest
/// quality figures once the run has been evaluated.
fn progress_message(line: &MetricsLine, quality: Option<&QualityLine>) -> String {
    let mut message = format!(
        "D {:.3} G {:.3} D(x) {:.2} D(G(z)) {:.2}",
        line.d_loss, line.g_loss, line.d_real, line.d_fake
    );
    if let Some(q) = quality {
        message.push_str(&format!(" | FID {:.1}", q.fid));
        if let Some(acc) = q.conditional_accuracy {
            message.push_str(&format!(" class {:.1}%", 100.0 * acc));
        }
    }
    message
}

/// Why the run should stop now, after an evaluation that scored `fid` with
/// `evaluations_without_best` evaluations since the best one.
fn early_stop(config: &TrainConfig, fid: f64, evaluations_without_best: usize) -> Option<String> {
    if let Some(target) = config.eval.until_fid
        && fid <= target
    {
        return Some(format!(
            "stopped early: FID {fid:.2} reached --until-fid {target}"
        ));
    }
    match config.eval.patience {
        Some(patience) if evaluations_without_best >= patience => Some(format!(
            "stopped early: no better FID in the last {patience} evaluations (--patience)"
        )),
        _ => None,
    }
}

/// `models/classifier-<data set folder name>.bpk` under `root` (the working directory
/// for `trainer train`), when it exists: the evaluation classifiers Gantry ships are named
/// so.
pub fn shipped_classifier(root: &Path, dataset: &Path) -> Option<PathBuf> {
    let name = dataset.file_name()?.to_str()?;
    let path = root.join("models").join(format!("classifier-{name}.bpk"));
    path.is_file().then_some(path)
}
