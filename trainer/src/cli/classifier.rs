//! `trainer classifier`: trains the evaluation classifier that `eval`, `augment-eval` and
//! the quality measurements of `train` use (a thin wrapper over `trainer::quality::classifier`).

use std::path::{Path, PathBuf};

use anyhow::Context;
use burn::tensor::Device;
use clap::Args;
use tracing::info;
use trainer::data::Split;
use trainer::quality::classifier::{self, ClassifierCard, TrainSettings, card_path};
use trainer::quality::classifier_onnx;
use trainer::quality::{ClassifierConfig, EvalClassifier};

use super::args::{DEFAULT_DATASET, count, default_classifier_path, learning_rate, parse_shape};
use super::quality::{LOG_TARGET, open_split, progress};

#[derive(Args, Debug)]
pub struct ClassifierArgs {
    /// Data set: a folder of MNIST-style IDX files, or one sub-folder of images per class.
    #[arg(long, value_name = "DIR", default_value = DEFAULT_DATASET)]
    dataset: PathBuf,
    /// Weights file; the card goes beside it with `.json` and the ONNX form (for the runtime)
    /// with `.onnx` [default: models/classifier-<DATASET name>.bpk].
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

fn dataset_name(dataset: &Path) -> String {
    dataset
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| dataset.display().to_string())
}

/// Runs `trainer classifier`.
pub fn run(args: ClassifierArgs) -> anyhow::Result<()> {
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
        target: LOG_TARGET,
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
    let onnx = classifier_onnx::write_onnx(&trained, &classifier_onnx::onnx_path(&out))
        .context("writing the classifier as ONNX")?;
    println!(
        "test accuracy {:.2}% on {} test images ({} training examples, {} steps, {seconds:.0} s)\nwrote {}, {} and {} (the ONNX form for the runtime; its probabilities match burn's within {:.1e} on {} images)\nuse it: trainer eval --model G.onnx --dataset {} --classifier {}",
        100.0 * trained.card.test_accuracy,
        test.len(),
        train.len(),
        trained.card.training.steps,
        out.display(),
        card_path(&out).display(),
        onnx.path.display(),
        onnx.max_probability_diff,
        onnx.checked_images,
        args.dataset.display(),
        out.display()
    );
    Ok(())
}
