//! `runtime generate`: write a labelled synthetic data set (PNG folders, IDX files or one grid
//! picture, plus manifest.json) from a generator.
//!
//! The pipeline's main product, so it gets its own file: the options, their checks that clap
//! cannot express (`--gzip` only with IDX, `--balanced` only for conditional models), the
//! progress bar and the one-line summary.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, bail};
use clap::{Args, ValueEnum};
use indicatif::{ProgressBar, ProgressStyle};
use runtime::dataset::{DatasetRequest, FilterRequest, OutputFormat, Sampling, write_dataset};

use super::args::{ForceOpt, ForeignArgs, PrecisionOpt};
use super::common::{load_precision, measured};
use super::parse::{
    ThreadsArg, parse_batch, parse_count, parse_max_draws, parse_probability,
    parse_threads_or_auto, parse_truncation,
};

/// Options of `runtime generate`.
#[derive(Args, Debug)]
pub struct GenerateArgs {
    /// The ONNX generator (written by `trainer export`).
    #[arg(long, short = 'm')]
    pub model: PathBuf,
    /// Number of images (1 to 4294967295).
    #[arg(long, short = 'n', value_parser = parse_count)]
    pub count: usize,
    /// Generate only this class (index, see `runtime info`). Conditional models only.
    #[arg(long, conflicts_with = "balanced")]
    pub class: Option<usize>,
    /// Cycle through all classes so each gets count/classes images (the default for
    /// conditional models; refused for unconditional ones).
    #[arg(long)]
    pub balanced: bool,
    /// Noise seed: same seed, same images.
    #[arg(long, short = 's', default_value_t = 0)]
    pub seed: u64,
    /// Output folder (must not exist or be empty, unless --force).
    #[arg(long, short = 'o')]
    pub out: PathBuf,
    /// png: one PNG per image in one folder per class; idx: MNIST-style IDX files;
    /// grid: one grid.png to look at.
    #[arg(long, short = 'f', value_enum, default_value_t = Format::Png)]
    pub format: Format,
    /// Gzip the IDX files (`.gz`), like the MNIST distribution.
    #[arg(long)]
    pub gzip: bool,
    /// `--force`: replace the output folder (only a Gantry data set folder is replaced).
    #[command(flatten)]
    pub force: ForceOpt,
    /// Images per tract run (default: chosen from the model's buffer sizes, at most 64; see
    /// `runtime info` and `runtime bench --sweep`). Results agree to float rounding.
    #[arg(long, value_parser = parse_batch)]
    pub batch: Option<usize>,
    /// Threads tract runs its matrix products on: a count (1 to 1024; default 1) or
    /// `auto`, which times one thread against all the cores at load (about 0.3 s) and keeps
    /// the faster. The images are the same bit for bit whatever the count; the cores pay
    /// on convolutional generators, less or not at all on small mlps.
    #[arg(long, default_value = "1", value_parser = parse_threads_or_auto)]
    pub threads: ThreadsArg,
    /// Time `--precision auto` and `--threads auto` again instead of using the choice
    /// measured on an earlier run. Choices are remembered per model file and machine in
    /// ~/.cache/gantry/choices.json (or $GANTRY_CACHE_DIR/choices.json); delete it to
    /// forget them all.
    #[arg(long)]
    pub remeasure: bool,
    /// `--precision`: the arithmetic to generate in.
    #[command(flatten)]
    pub precision: PrecisionOpt,
    /// Truncated noise: draw each z value again until |z_i| <= PSI (at least 0.1). Smaller
    /// PSI gives more typical, less varied images; recorded in manifest.json.
    #[arg(long, value_name = "PSI", value_parser = parse_truncation)]
    pub truncation: Option<f32>,
    /// Keep only samples that this classifier (ONNX, e.g. models/classifier-mnist-10k.onnx,
    /// written by `trainer classifier`) assigns to their requested class with at least the
    /// probability --min-confidence, drawing more until every class has its count.
    /// Conditional models only; the acceptance rate per class goes into manifest.json.
    #[arg(long, value_name = "CLASSIFIER.onnx")]
    pub filter: Option<PathBuf>,
    /// The probability --filter asks of the requested class (0 to 1).
    #[arg(long, value_name = "P", default_value_t = 0.9, value_parser = parse_probability, requires = "filter")]
    pub min_confidence: f32,
    /// With --filter: give up (nothing is written) when a class needs more than this many
    /// candidates per image it keeps (50: an acceptance rate under 2 %).
    #[arg(long, value_name = "N", default_value_t = runtime::dataset::DEFAULT_MAX_DRAWS, value_parser = parse_max_draws, requires = "filter")]
    pub max_draws: usize,
    /// What to assume about a generator from another framework.
    #[command(flatten)]
    pub foreign: ForeignArgs,
}

/// The values of `generate --format`.
#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum Format {
    // No doc comments on the variants: clap would show them in `--help` as value descriptions.
    Png,
    Idx,
    Grid,
}

/// Runs `runtime generate`; `quiet` hides the progress bar.
pub fn run(args: GenerateArgs, quiet: bool) -> anyhow::Result<()> {
    let GenerateArgs {
        model,
        count,
        class,
        balanced,
        seed,
        out,
        format,
        gzip,
        force: ForceOpt { force },
        batch,
        threads,
        remeasure,
        precision,
        truncation,
        filter,
        min_confidence,
        max_draws,
        foreign,
    } = args;
    let (model, out, precision) = (model.as_path(), out.as_path(), precision.get());
    let foreign = foreign.get()?;
    if count == 0 {
        bail!("--count must be at least 1");
    }
    if gzip && !matches!(format, Format::Idx) {
        bail!("--gzip applies to --format idx only");
    }
    if force {
        // Before the (possibly slow) load: --force replaces only a Gantry data set folder.
        runtime::dataset::check_replaceable(out)?;
    }
    let generator = match batch {
        Some(b) => load_precision(model, &foreign, precision, remeasure)?.with_batch_size(b)?,
        None => load_precision(model, &foreign, precision, remeasure)?,
    };
    let generator = match threads {
        ThreadsArg::Count(n) => generator.with_threads(n)?,
        ThreadsArg::Auto => {
            let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
            let generator = generator.with_auto_threads(cores)?;
            if let Some(c) = generator.thread_choice() {
                eprintln!(
                    "threads auto: running on {} ({:.2} us/sample on {} threads, {:.2} on 1 at batch {}, {})",
                    c.chosen,
                    c.many_threads_us_per_sample,
                    c.tried,
                    c.one_thread_us_per_sample,
                    c.batch,
                    measured(c.remembered, generator.choice_cache())
                );
            }
            generator
        }
    };
    if balanced && !generator.info().is_conditional() {
        bail!(
            "--balanced needs a conditional model; {} is unconditional (it has no classes)",
            model.display()
        );
    }
    let format = match format {
        Format::Png => OutputFormat::Png,
        Format::Idx => OutputFormat::Idx { gzip },
        Format::Grid => OutputFormat::Grid,
    };
    let request = DatasetRequest {
        count,
        class,
        seed,
        format,
        out: out.to_path_buf(),
        force,
        sampling: Sampling {
            truncation,
            filter: filter.map(|classifier| FilterRequest {
                classifier,
                min_confidence,
                max_draws_per_image: max_draws,
            }),
        },
    };
    tracing::info!(model = %model.display(), count, seed, out = %out.display(), precision = %generator.precision(), "generating");
    let bar = progress_bar(count, quiet);
    let started = Instant::now();
    let manifest = write_dataset(&generator, &model.display().to_string(), &request, |done| {
        bar.set_position(done as u64)
    })
    .context("writing the data set")?;
    bar.finish_and_clear();
    println!(
        "{}",
        summary(&manifest, out, started.elapsed().as_secs_f64())
    );
    Ok(())
}

/// The progress bar of `count` images (hidden when `quiet`).
fn progress_bar(count: usize, quiet: bool) -> ProgressBar {
    let bar = if quiet {
        ProgressBar::hidden()
    } else {
        ProgressBar::new(count as u64)
    };
    bar.set_style(
        ProgressStyle::with_template(
            "{spinner} generating [{bar:40}] {pos}/{len} images ({per_sec}, eta {eta})",
        )
        .expect("valid template")
        .progress_chars("=> "),
    );
    bar
}

/// The one-line summary: images per class, format, folder, time, and the filter's acceptance.
fn summary(manifest: &runtime::dataset::Manifest, out: &std::path::Path, seconds: f64) -> String {
    let per_class = if manifest.counts.is_empty() {
        String::new()
    } else {
        let parts: Vec<String> = manifest
            .classes
            .iter()
            .zip(&manifest.counts)
            .filter(|(_, n)| **n > 0)
            .map(|(c, n)| format!("{c}: {n}"))
            .collect();
        format!(" ({})", parts.join(", "))
    };
    let filter = manifest.filter.as_ref().map_or(String::new(), |f| {
        let (drawn, kept) = (
            f.drawn.iter().sum::<usize>(),
            f.accepted.iter().sum::<usize>(),
        );
        format!(
            "; the filter kept {kept} of {drawn} candidates ({:.1} %)",
            100.0 * kept as f64 / drawn.max(1) as f64
        )
    });
    format!(
        "wrote {} images{per_class} as {} to {} in {seconds:.2} s{filter}; manifest: {}",
        manifest.count,
        manifest.format,
        out.display(),
        out.join(runtime::dataset::MANIFEST).display()
    )
}
