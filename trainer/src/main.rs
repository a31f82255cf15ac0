//! `trainer` — train a GAN on the desktop.
//!
//! Exit codes: 0 success (also after Ctrl-C, with a checkpoint saved), 1 error,
//! 2 bad command line, 3 training diverged.
//!
//! This file is the command list and its dispatch; each subcommand's arguments and the
//! code that runs it live in `cli/` (one module per subcommand).

mod cli;

use std::io::IsTerminal;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use trainer::run::TrainError;

use cli::augment::AugmentArgs;
use cli::classifier::ClassifierArgs;
use cli::classifier_onnx::ClassifierOnnxArgs;
use cli::eval::EvalArgs;
use cli::export::ExportArgs;
use cli::train::TrainArgs;

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
    Export(ExportArgs),
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
    ///
    /// The same network is written as ONNX beside the weights (`.onnx`) for the runtime
    /// (`runtime generate --filter`); `trainer classifier-onnx` converts older classifiers.
    #[command(verbatim_doc_comment)]
    Classifier(ClassifierArgs),
    /// Convert a trained evaluation classifier (.bpk + .json card) to ONNX for the runtime.
    ///
    /// The graph takes `image` float32 [N, C, H, W] with pixels in [-1, 1] (a generator's
    /// output as it is) and returns `probabilities` float32 [N, classes] (softmax of the
    /// logits); the file's metadata holds the class names, the image shape, the data set, the
    /// test accuracy and the card. The runtime runs it with tract beside a generator, to keep
    /// only the samples it recognises as their requested class (`runtime generate --filter`).
    /// The written file is loaded back and checked against burn on 64 images.
    /// `trainer classifier` already writes it for classifiers it trains.
    ///
    /// Examples:
    ///   trainer classifier-onnx --classifier models/classifier-mnist-10k.bpk   # → models/classifier-mnist-10k.onnx
    ///   trainer classifier-onnx --classifier my-classifier.bpk --out edge/classifier.onnx
    #[command(verbatim_doc_comment)]
    ClassifierOnnx(ClassifierOnnxArgs),
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

/// Runs the subcommand the command line names.
fn try_main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Command::Train(args) => cli::train::run(*args),
        Command::Export(args) => cli::export::run(args),
        Command::Classifier(args) => cli::classifier::run(args),
        Command::ClassifierOnnx(args) => cli::classifier_onnx::run(args),
        Command::Eval(args) => cli::eval::run(args),
        Command::AugmentEval(args) => cli::augment::run(args),
    }
}
