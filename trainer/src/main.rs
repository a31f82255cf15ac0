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
use trainer::run::{self, ResumeChanges, RunOptions, TrainError};

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
    /// Train a GAN (with no argument: a class-conditional DCGAN on the bundled MNIST-10k,
    /// trainer/configs/default.toml).
    ///
    /// Writes a run folder with config.json, metrics.jsonl, samples/*.png,
    /// checkpoints/ and report.png (and TensorBoard events with --tensorboard). When the
    /// data set has a shipped classifier (models/classifier-<data set>.bpk), FID and
    /// conditional accuracy are measured while training and the best checkpoint is kept.
    /// Ctrl-C saves a checkpoint and stops; `--resume RUN_DIR` continues.
    ///
    /// Examples:
    ///   trainer train
    ///   trainer train --until-fid 12 --patience 4 --tensorboard
    ///   trainer train --config trainer/configs/book-ch3.toml      # the book's chapter-3 GAN
    ///   trainer train --config trainer/configs/dcgan.toml --dataset ../shared/data/fashion-mnist  # chapter 4
    ///   trainer train --resume runs/mlp-2026-11-29T19-00-00Z --steps 40000
    #[command(verbatim_doc_comment)]
    Train(Box<TrainArgs>),
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
    #[command(verbatim_doc_comment)]
    Export {
        /// The run folder (holds config.json and checkpoints/).
        run_dir: PathBuf,
        /// Output file [default: RUN_DIR/generator.onnx].
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
        /// Export the checkpoint with the best FID (checkpoints/best, kept by runs that
        /// evaluate quality) instead of the latest.
        #[arg(long)]
        best: bool,
    },
    /// Train the evaluation classifier that `eval` and `augment-eval` measure with.
    ///
    /// A small LeNet-style CNN (conv-pool-conv-pool-dense-dense) trained on the data set's
    /// training split. Its penultimate layer is the feature space of FID and precision/recall,
    /// its prediction the class of coverage. Writes the weights (burnpack) and a JSON card
    /// beside them (layer sizes, data set, class names, test accuracy) and prints the accuracy
    /// on the test split.
    ///
    /// Examples:
    ///   trainer classifier
    ///   trainer classifier --dataset ../shared/data/fashion-mnist --epochs 3
    ///   trainer classifier --dataset data/mnist-10k --out models/classifier-mnist-10k.bpk
    #[command(verbatim_doc_comment)]
    Classifier(ClassifierArgs),
    /// Measure a generator: FID, precision/recall, class coverage, conditional accuracy.
    ///
    /// Generates --samples images (every class in turn for a conditional model) and compares
    /// them with the real test split in the evaluation classifier's feature space. Beside each
    /// figure it prints the real-vs-real floor (the same number of training images against the
    /// test split): what a perfect generator would score. FID: lower is better; precision (share
    /// of samples that look real) and recall (share of the real variety covered), k-NN
    /// manifolds with k=3 (Kynkäänniemi et al. 2019): higher is better. Coverage: the predicted
    /// class histogram, with a warning when classes go missing (mode collapse).
    ///
    /// Examples:
    ///   trainer eval --model models/mnist-mlp.onnx
    ///   trainer eval --model runs/mlp-cond --dataset data/mnist-10k --samples 2000 --json eval.json
    ///   trainer eval --model runs/fashion-mlp --dataset ../shared/data/fashion-mnist
    #[command(verbatim_doc_comment)]
    Eval(EvalArgs),
    /// Measure the augmentation gain of a conditional generator's synthetic data.
    ///
    /// For each subset size n: trains the evaluation classifier on n real training examples
    /// per class, and on the same examples plus --synthetic generated ones per class (same
    /// initial weights, same step budget), --repeats times with fresh subsets, and reports test
    /// accuracy as mean ± std and the paired gain.
    ///
    /// Examples:
    ///   trainer augment-eval --generator models/mnist-mlp-cond.onnx
    ///   trainer augment-eval --generator models/mnist-mlp-cond.onnx --per-class 10,50,100 --synthetic 100 --repeats 5 --seed 1
    #[command(verbatim_doc_comment)]
    AugmentEval(AugmentArgs),
}

/// The default data set of the quality commands (as `train`'s).
const DEFAULT_DATASET: &str = "data/mnist-10k";

/// `models/classifier-<data set folder name>.bpk`.
fn default_classifier_path(dataset: &std::path::Path) -> PathBuf {
    let name = dataset
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "dataset".into());
    PathBuf::from("models").join(format!("classifier-{name}.bpk"))
}

#[derive(Args, Debug)]
struct ClassifierArgs {
    /// Data set: a folder of MNIST-style IDX files, or one sub-folder of images per class.
    #[arg(long, value_name = "DIR", default_value = DEFAULT_DATASET)]
    dataset: PathBuf,
    /// Weights file; the card goes beside it with `.json` [default: models/classifier-<DATASET name>.bpk].
    #[arg(long, value_name = "FILE")]
    out: Option<PathBuf>,
    /// Passes over the training split.
    #[arg(long, value_name = "N", default_value_t = 5, value_parser = count)]
    epochs: usize,
    /// Use at most this many training examples.
    #[arg(long, value_name = "N", value_parser = count)]
    max_examples: Option<usize>,
    /// Examples per mini-batch.
    #[arg(long, value_name = "N", default_value_t = 64, value_parser = count)]
    batch_size: usize,
    /// Adam's learning rate.
    #[arg(long, value_name = "LR", default_value_t = 1e-3, value_parser = learning_rate)]
    lr: f64,
    /// Seed of the weights and the batch order.
    #[arg(long, default_value_t = 7)]
    seed: u64,
    /// Width of the penultimate layer (the dimension of the quality features).
    #[arg(long, value_name = "N", default_value_t = 64, value_parser = count)]
    features: usize,
    /// Image shape for image-folder data sets, as C,H,W (IDX files carry their own).
    #[arg(long, value_name = "C,H,W", default_value = "1,28,28", value_parser = parse_shape)]
    image: trainer::data::ImageShape,
}

#[derive(Args, Debug)]
struct EvalArgs {
    /// The generator: an exported .onnx file or a run folder (its latest checkpoint).
    #[arg(long, value_name = "G.onnx|RUN_DIR")]
    model: PathBuf,
    /// Data set the generator imitates (its test split is the reference).
    #[arg(long, value_name = "DIR", default_value = DEFAULT_DATASET)]
    dataset: PathBuf,
    /// Evaluation classifier (from `trainer classifier`) [default: models/classifier-<DATASET name>.bpk].
    #[arg(long, value_name = "FILE")]
    classifier: Option<PathBuf>,
    /// Generated images to evaluate.
    #[arg(long, value_name = "N", default_value_t = 10_000, value_parser = count)]
    samples: usize,
    /// Seed of the generated noise.
    #[arg(long, default_value_t = 2024)]
    seed: u64,
    /// Neighbourhood size of precision and recall.
    #[arg(long, value_name = "K", default_value_t = 3, value_parser = count)]
    k: usize,
    /// Also write the report as JSON to this file.
    #[arg(long, value_name = "FILE")]
    json: Option<PathBuf>,
}

#[derive(Args, Debug)]
struct AugmentArgs {
    /// A conditional generator: an exported .onnx file or a run folder.
    #[arg(long, value_name = "G.onnx|RUN_DIR")]
    generator: PathBuf,
    /// Data set the generator imitates.
    #[arg(long, value_name = "DIR", default_value = DEFAULT_DATASET)]
    dataset: PathBuf,
    /// Real training examples per class, one table row each (comma-separated).
    #[arg(
        long,
        value_name = "N,N,..",
        value_delimiter = ',',
        default_value = "10,50,100",
        value_parser = count
    )]
    per_class: Vec<usize>,
    /// Synthetic examples per class added to the real ones.
    #[arg(long, value_name = "K", default_value_t = 100, value_parser = count)]
    synthetic: usize,
    /// Repeats per subset size (fresh subset, weights and synthetic samples each).
    #[arg(long, value_name = "R", default_value_t = 3, value_parser = count)]
    repeats: usize,
    /// Base seed (repeat r uses SEED + r).
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Optimizer steps per trained classifier (the same with and without synthetic data).
    #[arg(long, value_name = "N", default_value_t = 300, value_parser = count)]
    steps: usize,
    /// Also write the report as JSON to this file.
    #[arg(long, value_name = "FILE")]
    json: Option<PathBuf>,
}

/// Parses a count of at least 1.
fn count(text: &str) -> Result<usize, String> {
    match text.trim().parse::<usize>() {
        Ok(n) if n >= 1 => Ok(n),
        Ok(_) => Err("must be at least 1".into()),
        Err(e) => Err(format!("{text:?} is not a whole number: {e}")),
    }
}

/// Parses a learning rate: a positive finite number.
fn learning_rate(text: &str) -> Result<f64, String> {
    match text.trim().parse::<f64>() {
        Ok(x) if x > 0.0 && x.is_finite() => Ok(x),
        Ok(x) => Err(format!("{x} is not a positive finite learning rate")),
        Err(e) => Err(format!("{text:?} is not a number: {e}")),
    }
}

/// Parses a decay or Adam beta: a number in [0, 1).
fn unit_fraction(text: &str) -> Result<f64, String> {
    match text.trim().parse::<f64>() {
        Ok(x) if (0.0..1.0).contains(&x) => Ok(x),
        Ok(x) => Err(format!("{x} is not in [0, 1)")),
        Err(e) => Err(format!("{text:?} is not a number: {e}")),
    }
}

/// Parses an Adam beta: a number in [0, 1).
fn beta(text: &str) -> Result<f32, String> {
    unit_fraction(text).map(|x| x as f32)
}

/// Parses an FID target: a positive finite number.
fn fid_target(text: &str) -> Result<f64, String> {
    match text.trim().parse::<f64>() {
        Ok(x) if x > 0.0 && x.is_finite() => Ok(x),
        Ok(x) => Err(format!("{x} is not a positive finite FID")),
        Err(e) => Err(format!("{text:?} is not a number: {e}")),
    }
}

/// Parses `C,H,W`.
fn parse_shape(text: &str) -> Result<trainer::data::ImageShape, String> {
    let parts: Vec<usize> = text
        .split(',')
        .map(|p| p.trim().parse::<usize>())
        .collect::<Result<_, _>>()
        .map_err(|e| format!("{text:?} is not C,H,W: {e}"))?;
    match parts[..] {
        [channels, height, width] if channels > 0 && height > 0 && width > 0 => {
            Ok(trainer::data::ImageShape {
                channels,
                height,
                width,
            })
        }
        _ => Err(format!("{text:?} is not C,H,W with three positive numbers")),
    }
}

#[derive(Args, Debug)]
struct TrainArgs {
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

// burn's CPU backend allocates a fresh buffer for every tensor op; glibc's allocator hands
// large ones back to the OS on free, so each step paid page faults to get them again
// (LeakyReLU's forward + backward on a [128, 128, 14, 14] map: 30 ms with glibc, 5 ms with
// mimalloc, which keeps and reuses freed memory).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

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
        Command::Export { run_dir, out, best } => {
            let out = out.unwrap_or_else(|| run_dir.join("generator.onnx"));
            let best_dir =
                trainer::checkpoint::checkpoints_dir(&run_dir).join(trainer::checkpoint::BEST);
            let checkpoint = best.then_some(best_dir.as_path());
            let spec = trainer::export::export_checkpoint(&run_dir, checkpoint, &out)
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
        Command::Classifier(args) => quality_cli::classifier(args),
        Command::Eval(args) => quality_cli::eval(args),
        Command::AugmentEval(args) => quality_cli::augment_eval(args),
        Command::Train(args) => {
            let changes = match args.resume {
                Some(_) => args.resume_changes()?,
                None => ResumeChanges::default(),
            };
            let (config, resume) = (*args).into_config()?;
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
            println!(
                "{how} after {} steps ({:.1} steps/s){last}\nrun folder: {}\n  samples: {}\n  report:  {}",
                summary.steps,
                summary.steps_per_s,
                summary.run_dir.display(),
                summary.run_dir.join("samples/latest.png").display(),
                summary.run_dir.join("report.png").display(),
            );
            Ok(())
        }
    }
}

/// The quality subcommands: thin wrappers over `trainer::quality`.
mod quality_cli {
    use std::io::IsTerminal;
    use std::path::Path;

    use anyhow::{Context, bail};
    use burn::tensor::Device;
    use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
    use serde::Serialize;
    use tracing::info;
    use trainer::checkpoint::write_atomic;
    use trainer::data::{self, Dataset, ImageShape, Split};
    use trainer::quality::augment::{self, AugmentSettings};
    use trainer::quality::classifier::{self, ClassifierCard, TrainSettings, card_path};
    use trainer::quality::{
        ClassifierConfig, EvalClassifier, EvalOptions, Evaluator, QualityReport, SampleSource,
    };

    use super::{AugmentArgs, ClassifierArgs, EvalArgs, default_classifier_path};

    /// A progress bar on a terminal, nothing otherwise (logs say what happens).
    fn progress(len: u64, what: &str) -> ProgressBar {
        if !std::io::stderr().is_terminal() {
            return ProgressBar::hidden();
        }
        let bar = ProgressBar::with_draw_target(Some(len), ProgressDrawTarget::stderr());
        bar.set_style(
            ProgressStyle::with_template(&format!(
                "{{elapsed_precise}} [{{bar:30}}] {{pos}}/{{len}} {what} ({{per_sec}}, eta {{eta}})"
            ))
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
        );
        bar
    }

    /// Reads one split; quality needs a held-out test split, which only IDX folders have.
    fn open_split(dataset: &Path, split: Split, image: ImageShape) -> anyhow::Result<Dataset> {
        if dataset.is_dir() && !data::is_idx_dir(dataset) {
            bail!(
                "{}: the quality commands need a held-out test split, and image-folder data sets have none; use an IDX data set (train-/t10k-images-idx3-ubyte[.gz])",
                dataset.display()
            );
        }
        data::open(dataset, split, image)
            .with_context(|| format!("reading the {split:?} split of {}", dataset.display()))
    }

    fn dataset_name(dataset: &Path) -> String {
        dataset
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| dataset.display().to_string())
    }

    fn write_json<T: Serialize>(path: &Path, value: &T) -> anyhow::Result<()> {
        let json = serde_json::to_vec_pretty(value).context("serialising the report")?;
        write_atomic(path, &json).with_context(|| format!("writing {}", path.display()))?;
        println!("wrote {}", path.display());
        Ok(())
    }

    pub fn classifier(args: ClassifierArgs) -> anyhow::Result<()> {
        let mut train = open_split(&args.dataset, Split::Train, args.image)?;
        if let Some(n) = args.max_examples {
            train = train.truncated(n);
        }
        let test = open_split(&args.dataset, Split::Test, train.shape())?;
        let config = ClassifierConfig {
            features: args.features,
            ..ClassifierConfig::default()
        };
        let mut settings = TrainSettings {
            steps: 0,
            batch_size: args.batch_size,
            learning_rate: args.lr,
            seed: args.seed,
        };
        settings.steps = settings.steps_for_epochs(args.epochs, train.len());
        let out = args
            .out
            .unwrap_or_else(|| default_classifier_path(&args.dataset));
        info!(
            dataset = %args.dataset.display(),
            examples = train.len(),
            steps = settings.steps,
            "training the evaluation classifier"
        );
        let bar = progress(settings.steps as u64, "steps");
        let started = std::time::Instant::now();
        let model = classifier::train(&config, &train, &settings, &Device::flex(), &bar)
            .context("training the classifier")?;
        bar.finish_and_clear();
        let seconds = started.elapsed().as_secs_f64();
        let card = ClassifierCard {
            format_version: classifier::CARD_VERSION,
            config,
            image: train.shape(),
            class_names: train.class_names().to_vec(),
            dataset: dataset_name(&args.dataset),
            train_examples: train.len(),
            training: settings,
            test_accuracy: 0.0,
            test_examples: test.len(),
        };
        let mut trained = EvalClassifier::new(model, card);
        trained.card.test_accuracy = trained
            .accuracy(&test)
            .context("measuring the test accuracy")?;
        trained
            .save(&out)
            .with_context(|| format!("saving the classifier to {}", out.display()))?;
        println!(
            "test accuracy {:.2}% on {} test images ({} training examples, {} steps, {seconds:.0} s)\nwrote {} and {}\nuse it: trainer eval --model G.onnx --dataset {} --classifier {}",
            100.0 * trained.card.test_accuracy,
            test.len(),
            train.len(),
            trained.card.training.steps,
            out.display(),
            card_path(&out).display(),
            args.dataset.display(),
            out.display()
        );
        Ok(())
    }

    /// What `eval --json` writes.
    #[derive(Serialize)]
    struct EvalRecord<'a> {
        generator: String,
        dataset: String,
        classifier: String,
        classifier_test_accuracy: f64,
        seed: u64,
        report: &'a QualityReport,
    }

    pub fn eval(args: EvalArgs) -> anyhow::Result<()> {
        let classifier_path = args
            .classifier
            .clone()
            .unwrap_or_else(|| default_classifier_path(&args.dataset));
        let classifier = EvalClassifier::load(&classifier_path).with_context(|| {
            format!(
                "loading the evaluation classifier (train one with `trainer classifier --dataset {}`)",
                args.dataset.display()
            )
        })?;
        let source = SampleSource::open(&args.model).context("opening the generator")?;
        classifier
            .check_shape(
                source.image(),
                &format!("the generator {}", args.model.display()),
            )
            .context("the generator and the classifier disagree")?;
        let classes = classifier.card.class_names.len();
        if source.is_conditional() && source.classes().len() != classes {
            bail!(
                "{} generates {} classes but the classifier {} knows {classes}",
                args.model.display(),
                source.classes().len(),
                classifier_path.display()
            );
        }
        let image = classifier.card.image;
        let test = open_split(&args.dataset, Split::Test, image)?;
        let train = open_split(&args.dataset, Split::Train, image)?;
        info!(
            test = test.len(),
            train = train.len(),
            "embedding the real images"
        );
        let options = EvalOptions {
            k: args.k,
            floor_samples: args.samples,
            ..EvalOptions::default()
        };
        let accuracy = classifier.card.test_accuracy;
        let evaluator = Evaluator::new(classifier, &test, options)
            .and_then(|e| e.with_floor(&train))
            .context("embedding the real images")?;
        info!(samples = args.samples, generator = %source.describe(), "generating");
        let samples = source
            .generate(args.samples, None, args.seed)
            .with_context(|| format!("generating {} samples", args.samples))?;
        let labels: Option<Vec<i64>> = samples
            .labels
            .as_ref()
            .map(|l| l.iter().map(|&c| c as i64).collect());
        info!("measuring");
        let report = evaluator
            .evaluate(&samples.pixels, labels.as_deref())
            .context("measuring the samples")?;
        println!(
            "generator   {}\ndata set    {} ({} test images as the reference)\nclassifier  {} (test accuracy {:.2}%)\n",
            source.describe(),
            args.dataset.display(),
            test.len(),
            classifier_path.display(),
            100.0 * accuracy
        );
        print!("{}", report.table());
        if let Some(path) = &args.json {
            write_json(
                path,
                &EvalRecord {
                    generator: source.describe(),
                    dataset: args.dataset.display().to_string(),
                    classifier: classifier_path.display().to_string(),
                    classifier_test_accuracy: accuracy,
                    seed: args.seed,
                    report: &report,
                },
            )?;
        }
        Ok(())
    }

    pub fn augment_eval(args: AugmentArgs) -> anyhow::Result<()> {
        let source = SampleSource::open(&args.generator).context("opening the generator")?;
        let train = open_split(&args.dataset, Split::Train, source.image())?;
        let test = open_split(&args.dataset, Split::Test, source.image())?;
        let settings = AugmentSettings {
            per_class: args.per_class,
            synthetic: args.synthetic,
            repeats: args.repeats,
            seed: args.seed,
            steps: args.steps,
            ..AugmentSettings::default()
        };
        let runs = settings.per_class.len() * settings.repeats * 2;
        info!(
            generator = %source.describe(),
            classifiers = runs,
            steps = settings.steps,
            "augmentation experiment"
        );
        let bar = progress((runs * settings.steps) as u64, "classifier steps");
        let report = augment::run(&train, &test, &source, &settings, &bar)
            .context("running the augmentation experiment")?;
        bar.finish_and_clear();
        println!(
            "generator  {}\ndata set   {}\n",
            report.generator,
            args.dataset.display()
        );
        print!("{}", report.table());
        if let Some(path) = &args.json {
            write_json(path, &report)?;
        }
        Ok(())
    }
}
