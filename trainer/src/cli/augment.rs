//! `trainer augment-eval`: measures how much a conditional generator's synthetic data
//! helps a classifier trained on few real examples (a thin wrapper over
//! `trainer::quality::augment`).

use std::path::PathBuf;

use anyhow::Context;
use clap::Args;
use tracing::info;
use trainer::data::Split;
use trainer::quality::SampleSource;
use trainer::quality::augment::{self, AugmentSettings};

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
    /// Also write the report as JSON to this file.
    #[arg(long, value_name = "FILE")]
    json: Option<PathBuf>,
}

/// Runs `trainer augment-eval`.
pub fn run(args: AugmentArgs) -> anyhow::Result<()> {
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
