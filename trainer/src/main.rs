//! `trainer` — train a GAN on the desktop.
//!
//! Exit codes: 0 success (also after Ctrl-C, with a checkpoint saved), 1 error,
//! 2 bad command line, 3 training diverged.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use trainer::config::{BackendKind, LossKind, TrainConfig};
use trainer::model::ModelKind;
use trainer::run::{self, RunOptions, TrainError};

/// Train GANs on the desktop and hand their generators to the edge.
///
/// A GAN pits a generator G(z) → x*, which turns noise z into fake examples, against a
/// discriminator D(x), which tells real examples from fakes. Training alternates a D step
/// (real batch + fake batch, D learns to tell them apart) and a G step (G learns to fool D).
#[derive(Parser, Debug)]
#[command(version, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Train a GAN (with no argument: the `mlp` model on the bundled MNIST-10k).
    ///
    /// Writes a run folder with config.json, metrics.jsonl, samples/*.png,
    /// checkpoints/ and loss-curve.png. Ctrl-C saves a checkpoint and stops;
    /// `--resume RUN_DIR` continues.
    ///
    /// Examples:
    ///   trainer train
    ///   trainer train --model dcgan --conditional --steps 5000
    ///   trainer train --config trainer/configs/dcgan.toml --dataset ../shared/data/fashion-mnist
    ///   trainer train --resume runs/mlp-2026-11-29T19-00-00Z --steps 40000
    Train(TrainArgs),
    /// Export a run's generator to ONNX for the runtime (EMA weights when the run has them).
    ///
    /// The graph takes `z` float32 [N, z_dim] (and `label` int64 [N] for conditional
    /// models) and returns `image` float32 [N, C, H, W] in [-1, 1]; batch norm is folded
    /// into the weights, and the run's metadata (classes, steps, config, last metrics) is
    /// stored in the file.
    ///
    /// Examples:
    ///   trainer export runs/mlp-2026-11-29T19-00-00Z
    ///   trainer export runs/dcgan-cond-2026-11-29T20-00-00Z --out models/mnist-dcgan-cond.onnx
    Export {
        /// The run folder (holds config.json and checkpoints/).
        run_dir: PathBuf,
        /// Output file [default: RUN_DIR/generator.onnx].
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
    },
}

#[derive(Args, Debug)]
struct TrainArgs {
    /// TOML run config (see trainer/configs/); flags below override it.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Continue the run in this folder from its latest checkpoint (only --steps/--epochs may change).
    #[arg(long, value_name = "RUN_DIR")]
    resume: Option<PathBuf>,
    /// Data set: a folder of MNIST-style IDX files, or one sub-folder of PNG/JPEG images per class.
    #[arg(long, value_name = "DIR")]
    dataset: Option<PathBuf>,
    /// Use at most this many training examples.
    #[arg(long, value_name = "N")]
    max_examples: Option<usize>,
    /// Architecture.
    #[arg(long, value_enum)]
    model: Option<ModelKind>,
    /// Condition G and D on the class label (lets G generate a chosen class).
    #[arg(long)]
    conditional: bool,
    /// Length of the noise vector z.
    #[arg(long, value_name = "N")]
    z_dim: Option<usize>,
    /// Examples per mini-batch.
    #[arg(long, value_name = "N")]
    batch_size: Option<usize>,
    /// Training steps (one D step + one G step each).
    #[arg(long, value_name = "N")]
    steps: Option<usize>,
    /// Train for this many passes over the data instead of --steps.
    #[arg(long, value_name = "N")]
    epochs: Option<usize>,
    /// Learning rate of G's Adam.
    #[arg(long, value_name = "LR")]
    lr_g: Option<f64>,
    /// Learning rate of D's Adam.
    #[arg(long, value_name = "LR")]
    lr_d: Option<f64>,
    /// Adam beta1 of both players.
    #[arg(long, value_name = "B")]
    beta1: Option<f32>,
    /// Adam beta2 of both players.
    #[arg(long, value_name = "B")]
    beta2: Option<f32>,
    /// Adversarial loss.
    #[arg(long, value_enum)]
    loss: Option<LossKind>,
    /// Keep an exponential moving average of G's weights with this decay (e.g. 0.999).
    #[arg(long, value_name = "DECAY")]
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
}

impl TrainArgs {
    fn into_config(self) -> anyhow::Result<(TrainConfig, Option<PathBuf>)> {
        let mut c = match &self.config {
            Some(path) => TrainConfig::from_toml_file(path)?,
            None => TrainConfig::default(),
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
        c.conditional |= self.conditional;
        Ok((c, self.resume))
    }
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
    match try_main() {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:#}");
            let diverged = err
                .downcast_ref::<TrainError>()
                .is_some_and(|e| matches!(e, TrainError::Diverged { .. }));
            ExitCode::from(if diverged { 3 } else { 1 })
        }
    }
}

fn try_main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Command::Export { run_dir, out } => {
            let out = out.unwrap_or_else(|| run_dir.join("generator.onnx"));
            let spec = trainer::export::export_run(&run_dir, &out)
                .with_context(|| format!("exporting the generator of {}", run_dir.display()))?;
            println!(
                "wrote {} (z_dim {}, image {}, {} classes)\ntry it: cargo run --release -p runtime -- generate --model {} --count 64 --format grid --out samples",
                out.display(),
                spec.z_dim,
                spec.image,
                spec.classes.len(),
                out.display()
            );
            Ok(())
        }
        Command::Train(args) => {
            let (config, resume) = args.into_config()?;
            let stop = Arc::new(AtomicBool::new(false));
            let flag = Arc::clone(&stop);
            ctrlc::set_handler(move || flag.store(true, Ordering::SeqCst))
                .context("installing the Ctrl-C handler")?;
            let options = RunOptions {
                resume,
                // A bar on a terminal; one log line per interval otherwise (CI, nohup, pipes).
                progress: std::io::stderr().is_terminal(),
                stop: Some(stop),
            };
            let summary = run::train(config, &options)?;
            let last = summary
                .last
                .as_ref()
                .map(|l| {
                    format!(
                        " — D loss {:.3}, G loss {:.3}, D(x) {:.2}, D(G(z)) {:.2}",
                        l.d_loss, l.g_loss, l.d_real, l.d_fake
                    )
                })
                .unwrap_or_default();
            println!(
                "{} after {} steps ({:.1} steps/s){last}\nrun folder: {}\n  samples:    {}\n  loss curve: {}",
                if summary.interrupted { "stopped" } else { "trained" },
                summary.steps,
                summary.steps_per_s,
                summary.run_dir.display(),
                summary.run_dir.join("samples/latest.png").display(),
                summary.run_dir.join("loss-curve.png").display(),
            );
            Ok(())
        }
    }
}
