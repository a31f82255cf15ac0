//! `trainer eval`: measures a generator (FID, precision/recall, coverage, conditional
//! accuracy) against a data set's test split (a thin wrapper over `trainer::quality`).

use std::path::PathBuf;

use anyhow::{Context, bail};
use clap::Args;
use serde::Serialize;
use tracing::info;
use trainer::data::Split;
use trainer::quality::{EvalClassifier, EvalOptions, Evaluator, QualityReport, SampleSource};

use super::args::{DEFAULT_DATASET, count, default_classifier_path};
use super::quality::{LOG_TARGET, open_split, write_json};

#[derive(Args, Debug)]
pub struct EvalArgs {
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

/// Runs `trainer eval`.
pub fn run(args: EvalArgs) -> anyhow::Result<()> {
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
        target: LOG_TARGET,
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
    info!(
        target: LOG_TARGET,
        samples = args.samples,
        generator = %source.describe(),
        "generating"
    );
    let samples = source
        .generate(args.samples, None, args.seed)
        .with_context(|| format!("generating {} samples", args.samples))?;
    let labels: Option<Vec<i64>> = samples
        .labels
        .as_ref()
        .map(|l| l.iter().map(|&c| c as i64).collect());
    info!(target: LOG_TARGET, "measuring");
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
