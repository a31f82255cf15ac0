//! `trainer train`: the flags of a run, how they override the TOML config (or, with
//! `--resume`, which of them a resumed run may change), and the summary printed at the end;
//! the run itself is `trainer::run`.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::Context;
use clap::Args;
use trainer::config::{BackendKind, LossKind, TrainConfig};
use trainer::model::ModelKind;
use trainer::run::{self, ResumeChanges, RunOptions, RunSummary};

use super::args::{beta, count, fid_target, learning_rate, unit_fraction};

#[derive(Args, Debug)]
pub struct TrainArgs {
    /// TOML run config (see trainer/configs/); flags below override it.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Continue the run in this folder from its latest checkpoint. Only --steps, --epochs,
    /// --lr-g and --lr-d may change (new rates are recorded in the run's config.json).
    #[arg(long, value_name = "RUN_DIR")]
    resume: Option<PathBuf>,
    /// Data set: a folder of MNIST-style IDX files, or one sub-folder of PNG/JPEG images per class.
    #[arg(long, value_name = "DIR")]
    dataset: Option<PathBuf>,
    /// Use at most this many training examples.
    #[arg(long, value_name = "N", value_parser = count)]
    max_examples: Option<usize>,
    /// Architecture.
    #[arg(long, value_enum)]
    model: Option<ModelKind>,
    /// Condition G and D on the class label (lets G generate a chosen class).
    #[arg(long, conflicts_with = "unconditional")]
    conditional: bool,
    /// Do not condition on the label (the default run is conditional).
    #[arg(long)]
    unconditional: bool,
    /// Length of the noise vector z.
    #[arg(long, value_name = "N", value_parser = count)]
    z_dim: Option<usize>,
    /// Examples per mini-batch.
    #[arg(long, value_name = "N", value_parser = count)]
    batch_size: Option<usize>,
    /// Training steps (one D step + one G step each).
    #[arg(long, value_name = "N", value_parser = count)]
    steps: Option<usize>,
    /// Train for this many passes over the data instead of --steps.
    #[arg(long, value_name = "N", value_parser = count)]
    epochs: Option<usize>,
    /// Learning rate of G's Adam.
    #[arg(long, value_name = "LR", value_parser = learning_rate)]
    lr_g: Option<f64>,
    /// Learning rate of D's Adam.
    #[arg(long, value_name = "LR", value_parser = learning_rate)]
    lr_d: Option<f64>,
    /// Adam beta1 of both players.
    #[arg(long, value_name = "B", value_parser = beta)]
    beta1: Option<f32>,
    /// Adam beta2 of both players.
    #[arg(long, value_name = "B", value_parser = beta)]
    beta2: Option<f32>,
    /// Adversarial loss.
    #[arg(long, value_enum)]
    loss: Option<LossKind>,
    /// Keep an exponential moving average of G's weights with this decay (e.g. 0.999).
    #[arg(long, value_name = "DECAY", value_parser = unit_fraction)]
    ema: Option<f64>,
    /// Seed of weights, noise and batch order.
    #[arg(long)]
    seed: Option<u64>,
    /// Compute backend (wgpu needs a build with `--features wgpu`).
    #[arg(long, value_enum)]
    backend: Option<BackendKind>,
    /// Run folder (default: runs/<model>-<UTC time>).
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
    /// Log metrics every N steps.
    #[arg(long, value_name = "N")]
    log_every: Option<usize>,
    /// Save a sample grid every N steps.
    #[arg(long, value_name = "N")]
    sample_every: Option<usize>,
    /// Save a checkpoint every N steps.
    #[arg(long, value_name = "N")]
    checkpoint_every: Option<usize>,
    /// Measure FID, precision/recall and coverage during training with this evaluation
    /// classifier (e.g. models/classifier-mnist-10k.bpk); keeps checkpoints/best by FID.
    #[arg(long, value_name = "FILE")]
    eval_classifier: Option<PathBuf>,
    /// Evaluate quality every N steps (with --eval-classifier, or the shipped classifier
    /// for the data set, which is used when there is one: models/classifier-<folder>.bpk).
    #[arg(long, value_name = "N")]
    eval_every: Option<usize>,
    /// Do not evaluate quality while training, not even with the shipped classifier.
    #[arg(long, conflicts_with = "eval_classifier")]
    no_eval: bool,
    /// Stop once an evaluation's FID is at or below X (the checkpoint is saved).
    #[arg(long, value_name = "X", value_parser = fid_target)]
    until_fid: Option<f64>,
    /// Stop after N evaluations in a row without a new best FID.
    #[arg(long, value_name = "N", value_parser = count)]
    patience: Option<usize>,
    /// Also write TensorBoard event files into the run folder: `tensorboard --logdir runs/`.
    #[arg(long)]
    tensorboard: bool,
}

impl TrainArgs {
    /// The flags a resumed run may not change, by name, when given.
    fn fixed_on_resume(&self) -> Vec<&'static str> {
        let given = [
            ("--config", self.config.is_some()),
            ("--dataset", self.dataset.is_some()),
            ("--max-examples", self.max_examples.is_some()),
            ("--model", self.model.is_some()),
            ("--conditional", self.conditional),
            ("--unconditional", self.unconditional),
            ("--z-dim", self.z_dim.is_some()),
            ("--batch-size", self.batch_size.is_some()),
            ("--beta1", self.beta1.is_some()),
            ("--beta2", self.beta2.is_some()),
            ("--loss", self.loss.is_some()),
            ("--ema", self.ema.is_some()),
            ("--seed", self.seed.is_some()),
            ("--backend", self.backend.is_some()),
            ("--out", self.out.is_some()),
            ("--log-every", self.log_every.is_some()),
            ("--sample-every", self.sample_every.is_some()),
            ("--checkpoint-every", self.checkpoint_every.is_some()),
            ("--eval-classifier", self.eval_classifier.is_some()),
            ("--eval-every", self.eval_every.is_some()),
            ("--no-eval", self.no_eval),
            ("--until-fid", self.until_fid.is_some()),
            ("--patience", self.patience.is_some()),
            ("--tensorboard", self.tensorboard),
        ];
        given
            .into_iter()
            .filter(|(_, g)| *g)
            .map(|(f, _)| f)
            .collect()
    }

    /// What a `--resume` run changes; an error naming the flags it cannot change.
    fn resume_changes(&self) -> anyhow::Result<ResumeChanges> {
        let fixed = self.fixed_on_resume();
        if !fixed.is_empty() {
            anyhow::bail!(
                "{} cannot change when resuming: a resumed run keeps the settings it was trained with (only --steps, --epochs, --lr-g and --lr-d may change)",
                fixed.join(", ")
            );
        }
        Ok(ResumeChanges {
            steps: self.steps,
            epochs: self.epochs,
            generator_learning_rate: self.lr_g,
            discriminator_learning_rate: self.lr_d,
        })
    }

    fn into_config(self) -> anyhow::Result<(TrainConfig, Option<PathBuf>)> {
        let mut c = match &self.config {
            Some(path) => TrainConfig::from_toml_file(path)?,
            None => TrainConfig::default_run()?,
        };
        macro_rules! set {
            ($($flag:ident => $field:expr),* $(,)?) => {
                $(if let Some(v) = self.$flag { $field = v; })*
            };
        }
        set!(
            dataset => c.dataset,
            model => c.model.kind,
            z_dim => c.z_dim,
            batch_size => c.batch_size,
            steps => c.steps,
            seed => c.seed,
            loss => c.loss,
            backend => c.backend,
            log_every => c.every.log,
            sample_every => c.every.sample,
            checkpoint_every => c.every.checkpoint,
        );
        if let Some(lr) = self.lr_g {
            c.generator_adam.learning_rate = lr;
        }
        if let Some(lr) = self.lr_d {
            c.discriminator_adam.learning_rate = lr;
        }
        if let Some(b) = self.beta1 {
            c.generator_adam.beta1 = b;
            c.discriminator_adam.beta1 = b;
        }
        if let Some(b) = self.beta2 {
            c.generator_adam.beta2 = b;
            c.discriminator_adam.beta2 = b;
        }
        if self.epochs.is_some() {
            c.epochs = self.epochs;
        }
        if self.max_examples.is_some() {
            c.max_examples = self.max_examples;
        }
        if self.ema.is_some() {
            c.ema_decay = self.ema;
        }
        if self.out.is_some() {
            c.out_dir = self.out;
        }
        if self.eval_classifier.is_some() {
            c.eval.classifier = self.eval_classifier;
        }
        if let Some(n) = self.eval_every {
            c.eval.every = n;
        }
        if self.no_eval {
            c.eval.classifier = None;
            c.eval.auto = false;
        }
        if self.until_fid.is_some() {
            c.eval.until_fid = self.until_fid;
        }
        if self.patience.is_some() {
            c.eval.patience = self.patience;
        }
        c.tensorboard |= self.tensorboard;
        c.conditional = (c.conditional || self.conditional) && !self.unconditional;
        Ok((c, self.resume))
    }
}

/// Runs `trainer train`: Ctrl-C stops the run with a checkpoint saved.
pub fn run(args: TrainArgs) -> anyhow::Result<()> {
    let changes = match args.resume {
        Some(_) => args.resume_changes()?,
        None => ResumeChanges::default(),
    };
    let (config, resume) = args.into_config()?;
    let stop = Arc::new(AtomicBool::new(false));
    let flag = Arc::clone(&stop);
    ctrlc::set_handler(move || flag.store(true, Ordering::SeqCst))
        .context("installing the Ctrl-C handler")?;
    let options = RunOptions {
        resume,
        changes,
        // A bar on a terminal; one log line per interval otherwise (CI, nohup, pipes).
        progress: std::io::stderr().is_terminal(),
        stop: Some(stop),
    };
    let summary = run::train(config, &options)?;
    println!("{}", summary_text(&summary));
    Ok(())
}

/// What `trainer train` prints when the run ends: how it stopped, the last losses and where
/// its files are.
fn summary_text(summary: &RunSummary) -> String {
    let last = summary
        .last
        .as_ref()
        .map(|l| {
            let quality = l
                .quality
                .as_ref()
                .map(|q| format!(", FID {:.1}", q.fid))
                .unwrap_or_default();
            format!(
                " — D loss {:.3}, G loss {:.3}, D(x) {:.2}, D(G(z)) {:.2}{quality}",
                l.d_loss, l.g_loss, l.d_real, l.d_fake
            )
        })
        .unwrap_or_default();
    let how = match (&summary.stopped_early, summary.interrupted) {
        (Some(reason), _) => format!("{reason}:"),
        (None, true) => "stopped".into(),
        (None, false) => "trained".into(),
    };
    format!(
        "{how} after {} steps ({:.1} steps/s){last}\nrun folder: {}\n  samples: {}\n  report:  {}",
        summary.steps,
        summary.steps_per_s,
        summary.run_dir.display(),
        summary.run_dir.join("samples/latest.png").display(),
        summary.run_dir.join("report.png").display(),
    )
}
