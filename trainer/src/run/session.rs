//! The training loop of one session of a run (a new run, or one resume of it): the state it
//! carries from step to step (G and D, the batch stream, the metrics log, TensorBoard, the
//! progress bar, the interval means, the best FID) and what it does at a step, in order:
//! train, check for divergence, evaluate, log, sample, checkpoint, stop.

use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use tracing::{info, warn};

use super::LOG_TARGET;
use super::divergence::{self, unreachable_line};
use super::folder::PreparedRun;
use super::quality::{early_stop, evaluate_quality, quality_evaluator};
use super::schedule::{Events, Schedule};
use super::sheet::SampleSheet;
use super::{RunOptions, RunSummary, TrainError, save_report};
use crate::checkpoint;
use crate::config::TrainConfig;
use crate::data::{Batcher, Dataset};
use crate::metrics::{Accumulator, DivergenceWatch, MetricsLine, MetricsLog, QualityLine};
use crate::quality::Evaluator;
use crate::report::{self, tensorboard::EventWriter};
use crate::training::{Gan, StepStats};

/// A run's loop and everything it carries from step to step.
pub(super) struct Session {
    config: TrainConfig,
    run_dir: PathBuf,
    dataset: Dataset,
    gan: Gan,
    batcher: Batcher,
    watch: DivergenceWatch,
    schedule: Schedule,
    /// `metrics.jsonl`.
    log: MetricsLog,
    /// TensorBoard events, with `--tensorboard`.
    board: Option<EventWriter>,
    sheet: SampleSheet,
    evaluator: Option<Evaluator>,
    progress: ProgressBar,
    /// Whether a progress bar is drawn (otherwise each metrics line is also logged).
    draws_progress: bool,
    /// Ctrl-C.
    stop: Option<Arc<AtomicBool>>,
    /// Means over the current logging interval.
    acc: Accumulator,
    last_line: Option<MetricsLine>,
    last_quality: Option<QualityLine>,
    best_fid: f64,
    evaluations_without_best: usize,
    /// The newest checkpoint, for the log lines of a stop.
    last_checkpoint: String,
    /// The step of the newest checkpoint (the last one is not written twice).
    saved_at: Option<usize>,
    /// Training seconds of earlier sessions of a resumed run, then of this one.
    train_s: f64,
    started: Instant,
    first_step: usize,
    interrupted: bool,
    stopped_early: Option<String>,
}

impl Session {
    /// Opens the run's outputs (metrics log, TensorBoard, sample grid, quality evaluator)
    /// and, for a new run, saves the step-0 checkpoint.
    pub(super) fn open(run: PreparedRun, options: &RunOptions) -> Result<Self, TrainError> {
        let PreparedRun {
            config,
            run_dir,
            dataset,
            total_steps,
            gan,
            cursor,
            watch,
            resume_step,
        } = run;
        let batcher = Batcher::new(&dataset, config.batch_size, config.seed, cursor);
        let log_path = run_dir.join("metrics.jsonl");
        let log =
            MetricsLog::open(&log_path, resume_step).map_err(|e| run_dir_error(&log_path, e))?;
        let board = open_board(&config, &run_dir)?;
        let sheet = SampleSheet::new(&config, gan.classes());
        let evaluator = quality_evaluator(&config, &dataset)?;
        // A resumed run's past: its best FID keeps "best" meaningful, its training seconds
        // continue the time-to-quality clock.
        let logged = resume_step.map_or_else(Vec::new, |step| logged_up_to(&log_path, step));
        let best_fid = logged
            .iter()
            .filter_map(|l| l.quality.as_ref().map(|q| q.fid))
            .min_by(f64::total_cmp)
            .unwrap_or(f64::INFINITY);
        info!(
            target: LOG_TARGET,
            run = %run_dir.display(),
            model = %config.model.kind,
            conditional = config.conditional,
            examples = dataset.len(),
            classes = dataset.class_names().len(),
            total_steps,
            "training"
        );
        let progress = progress_bar(options.progress, total_steps, gan.step);
        let eval_every = evaluator.is_some().then_some(config.eval.every);
        let schedule = Schedule::new(config.every, eval_every, total_steps);
        let first_step = gan.step;
        let mut session = Self {
            config,
            run_dir,
            dataset,
            gan,
            batcher,
            watch,
            schedule,
            log,
            board,
            sheet,
            evaluator,
            progress,
            draws_progress: options.progress,
            stop: options.stop.clone(),
            acc: Accumulator::default(),
            last_line: None,
            last_quality: None,
            best_fid,
            evaluations_without_best: 0,
            last_checkpoint: String::from("none (no checkpoint was written yet)"),
            saved_at: resume_step,
            train_s: logged.iter().rev().find_map(|l| l.train_s).unwrap_or(0.0),
            started: Instant::now(),
            first_step,
            interrupted: false,
            stopped_early: None,
        };
        if resume_step.is_none() && session.schedule.checkpoint_at_start() {
            session.save_checkpoint(0)?;
        }
        session.started = Instant::now();
        Ok(session)
    }

    /// Trains up to the last step, or until a stop (Ctrl-C, `--until-fid`, `--patience`).
    pub(super) fn run(&mut self) -> Result<(), TrainError> {
        while self.gan.step < self.schedule.total_steps() {
            if self.step()?.is_break() {
                break;
            }
        }
        Ok(())
    }

    /// Ends the session: the last checkpoint (unless the loop just saved it), the latest
    /// sample grid and the run report.
    pub(super) fn finish(mut self) -> Result<RunSummary, TrainError> {
        self.progress.finish_and_clear();
        if Schedule::final_checkpoint(self.saved_at, self.gan.step) {
            checkpoint::save(
                &self.gan,
                self.batcher.cursor(),
                self.watch.perfect_d_streak,
                &self.run_dir,
            )?;
        }
        let latest = self
            .sheet
            .save(&self.gan, &self.run_dir.join("samples").join("latest.png"))?;
        if let Some(board) = &mut self.board {
            board.image("samples", self.gan.step as u64, &latest)?;
            board.flush()?;
        }
        save_report(self.log.path(), &latest, &self.run_dir.join("report.png"))?;

        let elapsed = self.started.elapsed().as_secs_f64();
        let steps_done = self.gan.step - self.first_step;
        Ok(RunSummary {
            run_dir: self.run_dir,
            steps: self.gan.step,
            last: self.last_line,
            interrupted: self.interrupted,
            stopped_early: self.stopped_early,
            steps_per_s: if elapsed > 0.0 {
                steps_done as f64 / elapsed
            } else {
                0.0
            },
        })
    }

    /// One training step and the work that falls due after it; `Break` when the run stops.
    fn step(&mut self) -> Result<ControlFlow<()>, TrainError> {
        let stats = self.train_step();
        if stats.is_diverged() {
            return Err(self.diverged(&stats));
        }
        let warning = self.watch.observe(&stats);
        if let Some(w) = &warning {
            self.progress
                .suspend(|| warn!(target: LOG_TARGET, step = self.gan.step, "{w}"));
        }

        let step = self.gan.step;
        let interrupted = self.stop.as_ref().is_some_and(|s| s.load(Ordering::SeqCst));
        let quality = match &self.evaluator {
            Some(evaluator) if self.schedule.evaluate(step) => Some(evaluate_quality(
                evaluator,
                &self.gan,
                self.config.eval.samples,
                self.config.seed,
            )?),
            _ => None,
        };
        let early = match &quality {
            Some(q) => self.judge(step, q)?,
            None => None,
        };
        let events = Events {
            warning: warning.is_some(),
            evaluated: quality.is_some(),
            stopping: interrupted || early.is_some(),
        };
        let due = self.schedule.due(step, events);
        if due.log {
            self.log_interval(step, early.clone().or(warning), quality)?;
        }
        if due.sample {
            self.save_sample(step)?;
        }
        if due.checkpoint {
            self.save_checkpoint(step)?;
        }
        if let Some(reason) = early {
            self.progress.suspend(
                || info!(target: LOG_TARGET, step, checkpoint = %self.last_checkpoint, "{reason}"),
            );
            self.stopped_early = Some(reason);
            return Ok(ControlFlow::Break(()));
        }
        if interrupted {
            self.interrupted = true;
            self.progress.suspend(|| {
                warn!(
                    target: LOG_TARGET,
                    step,
                    checkpoint = %self.last_checkpoint,
                    "interrupted: checkpoint saved"
                )
            });
            return Ok(ControlFlow::Break(()));
        }
        Ok(ControlFlow::Continue(()))
    }

    /// A D step and a G step on the next batch, added to the interval's means.
    fn train_step(&mut self) -> StepStats {
        let started = Instant::now();
        let real = self.batcher.next_batch(&self.dataset);
        let stats: StepStats = self.gan.train_step(&real);
        let seconds = started.elapsed().as_secs_f64();
        self.acc.add(&stats, seconds);
        self.train_s += seconds;
        self.progress.inc(1);
        stats
    }

    /// Logs the diverged step and returns the run's error (see [`divergence::diverged`]).
    fn diverged(&mut self, stats: &StepStats) -> TrainError {
        let step = self.gan.step;
        let mut line = self
            .acc
            .take(step)
            .unwrap_or_else(|| unreachable_line(step));
        line.event = Some("diverged: NaN or infinite loss".into());
        let _ = self.log.write(&line);
        self.progress.abandon();
        divergence::diverged(&self.run_dir, &self.config, step, stats)
    }

    /// Keeps the best generator by FID (checkpoints/best) and says why the run should stop
    /// after this evaluation, if it should.
    fn judge(&mut self, step: usize, q: &QualityLine) -> Result<Option<String>, TrainError> {
        if q.fid < self.best_fid {
            self.best_fid = q.fid;
            self.evaluations_without_best = 0;
            checkpoint::save_best(
                &self.gan,
                self.batcher.cursor(),
                self.watch.perfect_d_streak,
                &self.run_dir,
            )?;
            self.progress.suspend(|| {
                info!(
                    target: LOG_TARGET,
                    step,
                    fid = q.fid,
                    "new best FID: checkpoints/best updated"
                )
            });
        } else {
            self.evaluations_without_best += 1;
        }
        let early = early_stop(&self.config, q.fid, self.evaluations_without_best);
        self.last_quality = Some(q.clone());
        Ok(early)
    }

    /// Writes the interval's means (with `event` and `quality`) to metrics.jsonl, the
    /// progress bar or the log, and TensorBoard.
    fn log_interval(
        &mut self,
        step: usize,
        event: Option<String>,
        quality: Option<QualityLine>,
    ) -> Result<(), TrainError> {
        let Some(mut line) = self.acc.take(step) else {
            return Ok(());
        };
        line.event = event;
        line.quality = quality;
        line.train_s = Some(self.train_s);
        self.progress
            .set_message(progress_message(&line, self.last_quality.as_ref()));
        self.log
            .write(&line)
            .map_err(|e| run_dir_error(self.log.path(), e))?;
        if !self.draws_progress {
            info!(
                target: LOG_TARGET,
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
        if let Some(board) = &mut self.board {
            board.scalars(step as u64, &report::scalars(&line))?;
            board.flush()?;
        }
        self.last_line = Some(line);
        Ok(())
    }

    /// Saves the sample grid of `step` (and shows it in TensorBoard).
    fn save_sample(&mut self, step: usize) -> Result<(), TrainError> {
        let path = self
            .run_dir
            .join("samples")
            .join(format!("step-{step:07}.png"));
        let picture = self.sheet.save(&self.gan, &path)?;
        if let Some(board) = &mut self.board {
            board.image("samples", step as u64, &picture)?;
            board.flush()?;
        }
        Ok(())
    }

    /// Saves a checkpoint of the run at `step`.
    fn save_checkpoint(&mut self, step: usize) -> Result<(), TrainError> {
        let dir = checkpoint::save(
            &self.gan,
            self.batcher.cursor(),
            self.watch.perfect_d_streak,
            &self.run_dir,
        )?;
        self.last_checkpoint = dir.display().to_string();
        self.saved_at = Some(step);
        Ok(())
    }
}

/// The TensorBoard event writer of a run with `--tensorboard`.
fn open_board(config: &TrainConfig, run_dir: &Path) -> Result<Option<EventWriter>, TrainError> {
    if !config.tensorboard {
        return Ok(None);
    }
    let writer = EventWriter::create(run_dir)?;
    info!(
        target: LOG_TARGET,
        file = %writer.path().display(),
        "writing TensorBoard events: tensorboard --logdir {}",
        run_dir.display()
    );
    Ok(Some(writer))
}

/// The run's progress bar, at `position` of `total_steps` (hidden unless `draw`).
fn progress_bar(draw: bool, total_steps: usize, position: usize) -> ProgressBar {
    let progress = if draw {
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
    progress.set_position(position as u64);
    progress
}

/// A run-folder error about the file at `path`.
fn run_dir_error(path: &Path, e: std::io::Error) -> TrainError {
    TrainError::RunDir {
        path: path.to_path_buf(),
        problem: e.to_string(),
    }
}

/// The metrics lines logged up to `step` (a resumed run's past; empty for a new run or
/// an unreadable log).
fn logged_up_to(metrics: &Path, step: usize) -> Vec<MetricsLine> {
    let mut lines = crate::metrics::read(metrics).unwrap_or_default();
    lines.retain(|l| l.step <= step);
    lines
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
