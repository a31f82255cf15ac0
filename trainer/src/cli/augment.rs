//! `trainer augment-eval`: measures how much a conditional generator's synthetic data
//! helps a classifier trained on few real examples (a thin wrapper over
//! `trainer::quality::augment`).

use std::path::PathBuf;

use anyhow::Context;
use clap::Args;
use tracing::info;
use trainer::data::Split;
use trainer::quality::SampleSource;
use trainer::quality::augment::{self, Arm, AugmentSettings};

use super::args::{DEFAULT_DATASET, count};
use super::quality::{LOG_TARGET, open_split, progress, write_json};

#[derive(Args, Debug)]
pub struct AugmentArgs {
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
    /// Synthetic examples per real one instead of --synthetic: a row with n real images per
    /// class adds ceil(RATIO * n) per class (e.g. 1 doubles every row's data).
    #[arg(long, value_name = "RATIO", value_parser = ratio)]
    ratio: Option<f64>,
    /// Classifier (ONNX, e.g. models/classifier-mnist-10k.onnx) for the filtered arms: one
    /// arm per --min-confidence keeps only samples it assigns to their class with that
    /// probability (needs an exported .onnx --generator).
    #[arg(long, value_name = "CLASSIFIER.onnx", requires = "min_confidence")]
    filter: Option<PathBuf>,
    /// Confidence thresholds of the filtered arms (comma-separated, 0 to 1).
    #[arg(long, value_name = "P,P,..", value_delimiter = ',', value_parser = probability, requires = "filter")]
    min_confidence: Vec<f32>,
    /// Truncation ψ of the truncated arms (comma-separated, at least 0.1).
    #[arg(long, value_name = "PSI,PSI,..", value_delimiter = ',', value_parser = truncation)]
    truncation: Vec<f32>,
    /// Also one arm per (threshold, ψ) pair: filter and truncation together.
    #[arg(long)]
    combine: bool,
    /// Leave out the plain arm (no filter, no truncation).
    #[arg(long)]
    no_plain: bool,
    /// Also write the report as JSON to this file.
    #[arg(long, value_name = "FILE")]
    json: Option<PathBuf>,
}

/// The augmented arms the flags ask for: plain, one per threshold, one per ψ, and with
/// `--combine` one per (threshold, ψ).
fn arms(args: &AugmentArgs) -> anyhow::Result<Vec<Arm>> {
    let mut arms = Vec::new();
    if !args.no_plain {
        arms.push(Arm::plain());
    }
    let filter = |p: f32| args.filter.clone().map(|c| (c, p));
    for &p in &args.min_confidence {
        arms.push(Arm {
            name: format!("filter {p}"),
            truncation: None,
            filter: filter(p),
        });
    }
    for &psi in &args.truncation {
        arms.push(Arm {
            name: format!("truncation {psi}"),
            truncation: Some(psi),
            filter: None,
        });
    }
    if args.combine {
        for &p in &args.min_confidence {
            for &psi in &args.truncation {
                arms.push(Arm {
                    name: format!("filter {p} + truncation {psi}"),
                    truncation: Some(psi),
                    filter: filter(p),
                });
            }
        }
    }
    if arms.is_empty() {
        anyhow::bail!("--no-plain leaves no arm: add --min-confidence or --truncation");
    }
    Ok(arms)
}

fn ratio(s: &str) -> Result<f64, String> {
    let v: f64 = s.parse().map_err(|_| format!("`{s}` is not a number"))?;
    if !(v > 0.0 && v <= 100.0) {
        return Err(format!(
            "{s} is out of range: use more than 0 and at most 100"
        ));
    }
    Ok(v)
}

fn probability(s: &str) -> Result<f32, String> {
    let v: f32 = s.parse().map_err(|_| format!("`{s}` is not a number"))?;
    if !(v > 0.0 && v <= 1.0) {
        return Err(format!(
            "{s} is not a probability: use more than 0 and at most 1"
        ));
    }
    Ok(v)
}

fn truncation(s: &str) -> Result<f32, String> {
    let v: f32 = s.parse().map_err(|_| format!("`{s}` is not a number"))?;
    if !(v.is_finite() && v >= runtime::noise::MIN_TRUNCATION) {
        return Err(format!(
            "{s} is out of range: use at least {}",
            runtime::noise::MIN_TRUNCATION
        ));
    }
    Ok(v)
}

/// Runs `trainer augment-eval`.
pub fn run(args: AugmentArgs) -> anyhow::Result<()> {
    let source = SampleSource::open(&args.generator).context("opening the generator")?;
    let train = open_split(&args.dataset, Split::Train, source.image())?;
    let test = open_split(&args.dataset, Split::Test, source.image())?;
    let arms = arms(&args)?;
    let settings = AugmentSettings {
        per_class: args.per_class,
        synthetic: args.synthetic,
        repeats: args.repeats,
        seed: args.seed,
        steps: args.steps,
        ratio: args.ratio,
        arms,
        ..AugmentSettings::default()
    };
    let runs = settings.per_class.len() * settings.repeats * (1 + settings.arms.len());
    info!(
        target: LOG_TARGET,
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
