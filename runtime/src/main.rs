//! `runtime`: generate labelled synthetic data sets from a Gantry ONNX generator, inspect a
//! model, and benchmark the inference backends.
//!
//! Exit codes: 0 success; 1 the command failed (bad model, bad argument value, I/O error);
//! 2 the command line could not be parsed.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::{Parser, Subcommand, ValueEnum};
use indicatif::{ProgressBar, ProgressStyle};
use runtime::backend::{Backend, max_abs_diff};
use runtime::dataset::{DatasetRequest, OutputFormat, write_dataset};
use runtime::generator::{BatchMode, Generator};
use runtime::noise::noise;

/// Exit code when the command fails.
const EXIT_FAILURE: u8 = 1;

#[derive(Parser, Debug)]
#[command(
    name = "runtime",
    version,
    about = "Run a Gantry GAN generator (ONNX) with tract: generate labelled synthetic data, inspect, benchmark.",
    after_help = "Examples:\n  \
        runtime info --model models/mnist-cond.onnx\n  \
        runtime generate --model models/mnist-cond.onnx --count 1000 --balanced --seed 7 --out synth --format png\n  \
        runtime generate --model models/mnist-cond.onnx --count 100 --class 3 --seed 1 --out threes --format idx --gzip\n  \
        runtime generate --model models/mnist-mlp.onnx --count 64 --seed 0 --out look --format grid\n  \
        runtime bench --model models/mnist-cond.onnx\n\n\
        Exit codes: 0 success, 1 failure (bad model, bad value, I/O), 2 invalid command line.\n\
        Set RUST_LOG=debug (or pass -v) to see what the runtime is doing."
)]
struct Cli {
    /// More logging (-v: debug, -vv: trace). RUST_LOG overrides.
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    verbose: u8,
    /// No progress bar.
    #[arg(short, long, global = true)]
    quiet: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Generate a labelled data set: PNG folders per class, IDX files, or one grid picture,
    /// plus manifest.json (model, seed, counts, class names, noise fingerprint).
    ///
    /// The same model, seed and count give the same images on every machine. Conditional models
    /// cycle through all classes (sample i gets class i % classes) unless --class is given.
    /// The output folder is written under a temporary name and moved into place when complete.
    Generate {
        /// The ONNX generator (written by `trainer export`).
        #[arg(long, short = 'm')]
        model: PathBuf,
        /// Number of images.
        #[arg(long, short = 'n')]
        count: usize,
        /// Generate only this class (index, see `runtime info`). Conditional models only.
        #[arg(long, conflicts_with = "balanced")]
        class: Option<usize>,
        /// Cycle through all classes so each gets count/classes images (the default for
        /// conditional models; refused for unconditional ones).
        #[arg(long)]
        balanced: bool,
        /// Noise seed: same seed, same images.
        #[arg(long, short = 's', default_value_t = 0)]
        seed: u64,
        /// Output folder (must not exist or be empty, unless --force).
        #[arg(long, short = 'o')]
        out: PathBuf,
        /// png: one PNG per image in one folder per class; idx: MNIST-style IDX files;
        /// grid: one grid.png to look at.
        #[arg(long, short = 'f', value_enum, default_value_t = Format::Png)]
        format: Format,
        /// Gzip the IDX files (`.gz`), like the MNIST distribution.
        #[arg(long)]
        gzip: bool,
        /// Replace --out if it already exists.
        #[arg(long)]
        force: bool,
        /// Images per tract run.
        #[arg(long, default_value_t = runtime::generator::DEFAULT_BATCH)]
        batch: usize,
    },
    /// Show a model's metadata, inputs, outputs, parameter count and MACs per sample.
    Info {
        /// The ONNX generator.
        #[arg(long, short = 'm')]
        model: PathBuf,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Measure latency at batch 1 and throughput at batch 64 for every available backend, side
    /// by side, and the largest output difference between backends on the same noise.
    ///
    /// Backends: tract with fixed-batch plans (what `generate` uses), tract with one
    /// symbolic-batch plan, and ONNX Runtime when built with `--features ort` and
    /// ORT_DYLIB_PATH points at libonnxruntime.so.
    Bench {
        /// The ONNX generator.
        #[arg(long, short = 'm')]
        model: PathBuf,
        /// Seconds of measurement per backend and batch size.
        #[arg(long, default_value_t = 2.0)]
        seconds: f64,
        /// Noise seed of the benchmark inputs.
        #[arg(long, default_value_t = 0)]
        seed: u64,
        /// Intra-op threads for ONNX Runtime (tract runs on one thread).
        #[arg(long, default_value_t = 1)]
        ort_threads: usize,
        /// Also time tract (fixed-batch plans) per sample at batch sizes 1, 2, 4, ..., 256, to
        /// choose `generate --batch` for this machine.
        #[arg(long)]
        sweep: bool,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum Format {
    Png,
    Idx,
    Grid,
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(e.exit_code().clamp(0, 255) as u8);
        }
    };
    match try_main(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(EXIT_FAILURE)
        }
    }
}

fn try_main(cli: Cli) -> anyhow::Result<()> {
    let default_level = match cli.verbose {
        0 => "warn",
        1 => "runtime=debug,info",
        _ => "trace",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_level));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();

    match cli.command {
        Command::Generate {
            model,
            count,
            class,
            balanced,
            seed,
            out,
            format,
            gzip,
            force,
            batch,
        } => generate(
            &model, count, class, balanced, seed, &out, format, gzip, force, batch, cli.quiet,
        ),
        Command::Info { model, json } => info(&model, json),
        Command::Bench {
            model,
            seconds,
            seed,
            ort_threads,
            sweep,
            json,
        } => {
            bench(&model, seconds, seed, ort_threads, json)?;
            if sweep {
                batch_sweep(&model, seconds, seed, json)?;
            }
            Ok(())
        }
    }
}

fn load(model: &Path) -> anyhow::Result<Generator> {
    Generator::load(model).with_context(|| format!("loading the generator {}", model.display()))
}

#[allow(clippy::too_many_arguments)]
fn generate(
    model: &Path,
    count: usize,
    class: Option<usize>,
    balanced: bool,
    seed: u64,
    out: &Path,
    format: Format,
    gzip: bool,
    force: bool,
    batch: usize,
    quiet: bool,
) -> anyhow::Result<()> {
    if count == 0 {
        bail!("--count must be at least 1");
    }
    if gzip && !matches!(format, Format::Idx) {
        bail!("--gzip applies to --format idx only");
    }
    let generator = load(model)?.with_batch_size(batch)?;
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
    };
    tracing::info!(model = %model.display(), count, seed, out = %out.display(), "generating");
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
    let started = Instant::now();
    let manifest = write_dataset(&generator, &model.display().to_string(), &request, |done| {
        bar.set_position(done as u64)
    })
    .with_context(|| format!("writing the data set to {}", out.display()))?;
    bar.finish_and_clear();
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
    println!(
        "wrote {count} images{per_class} as {} to {} in {:.2} s; manifest: {}",
        manifest.format,
        out.display(),
        started.elapsed().as_secs_f64(),
        out.join(runtime::dataset::MANIFEST).display()
    );
    Ok(())
}

fn info(model: &Path, json: bool) -> anyhow::Result<()> {
    let generator = load(model)?;
    let info = generator.info();
    let summary = generator.summary();
    let size = std::fs::metadata(model).map(|m| m.len()).unwrap_or(0);
    if json {
        let value = serde_json::json!({
            "model": model.display().to_string(),
            "file_bytes": size,
            "metadata": info,
            "graph": summary,
            "parameters": summary.parameters,
            "macs_per_sample": generator.macs_per_sample(),
        });
        println!("{}", serde_json::to_string_pretty(&value)?);
        return Ok(());
    }
    println!(
        "model:        {} ({size} bytes, {})",
        model.display(),
        summary.producer
    );
    println!(
        "format:       ONNX IR {}, opset {}, gantry metadata v{}",
        summary.ir_version, summary.opset, info.format_version
    );
    println!("z_dim:        {}", info.z_dim);
    println!(
        "image:        {} (C x H x W), pixels in [{}, {}]",
        info.image, info.pixel_range[0], info.pixel_range[1]
    );
    if info.classes.is_empty() {
        println!("classes:      none (unconditional)");
    } else {
        let list: Vec<String> = info
            .classes
            .iter()
            .enumerate()
            .map(|(i, c)| format!("{i}={c}"))
            .collect();
        println!("classes:      {} ({})", info.classes.len(), list.join(", "));
    }
    for i in &summary.inputs {
        println!("input:        {i}");
    }
    for o in &summary.outputs {
        println!("output:       {o}");
    }
    println!("parameters:   {}", summary.parameters);
    println!("MACs/sample:  {}", generator.macs_per_sample());
    let ops: Vec<String> = summary
        .operators
        .iter()
        .map(|(k, v)| format!("{k} x{v}"))
        .collect();
    println!("operators:    {}", ops.join(", "));
    for (k, v) in &info.metadata {
        let shown = if v.len() > 200 {
            format!(
                "{}... ({} bytes)",
                &v[..v.floor_char_boundary(200)],
                v.len()
            )
        } else {
            v.clone()
        };
        println!("metadata:     {k} = {shown}");
    }
    Ok(())
}

/// Median run time over at least 5 runs and `seconds` of wall time (after 3 warm-up runs).
fn measure(
    backend: &dyn Backend,
    z: &[f32],
    labels: Option<&[i64]>,
    seconds: f64,
) -> anyhow::Result<(Duration, usize)> {
    for _ in 0..3 {
        backend.run_batch(z, labels)?;
    }
    let budget = Duration::from_secs_f64(seconds.max(0.0));
    let started = Instant::now();
    let mut times = Vec::new();
    while times.len() < 5 || (started.elapsed() < budget && times.len() < 1_000_000) {
        let t = Instant::now();
        std::hint::black_box(backend.run_batch(z, labels)?);
        times.push(t.elapsed());
    }
    times.sort();
    Ok((times[times.len() / 2], times.len()))
}

struct Row {
    name: String,
    b1: Duration,
    b64: Duration,
    runs: (usize, usize),
    diff_b1: f32,
    diff_b64: f32,
}

fn bench(
    model: &Path,
    seconds: f64,
    seed: u64,
    ort_threads: usize,
    json: bool,
) -> anyhow::Result<()> {
    const BIG: usize = 64;
    let tract = load(model)?;
    let symbolic = load(model)?.with_batch_mode(BatchMode::Symbolic)?;
    let info = tract.info().clone();
    let macs = tract.macs_per_sample();
    let z = noise(BIG, info.z_dim, seed);
    let labels: Option<Vec<i64>> = info
        .is_conditional()
        .then(|| (0..BIG).map(|i| (i % info.classes.len()) as i64).collect());
    let z1 = &z[..info.z_dim];
    let l1 = labels.as_ref().map(|l| &l[..1]);

    let mut backends: Vec<Box<dyn Backend>> = vec![Box::new(tract), Box::new(symbolic)];
    let mut notes = Vec::new();
    add_ort(model, ort_threads, &mut backends, &mut notes);

    let reference_b1 = backends[0].run_batch(z1, l1)?;
    let reference_b64 = backends[0].run_batch(&z, labels.as_deref())?;
    let mut rows = Vec::new();
    for backend in &backends {
        let name = backend.name();
        let diff_b1 = max_abs_diff(&reference_b1, &backend.run_batch(z1, l1)?);
        let diff_b64 = max_abs_diff(&reference_b64, &backend.run_batch(&z, labels.as_deref())?);
        let (b1, n1) = measure(backend.as_ref(), z1, l1, seconds)
            .with_context(|| format!("benchmarking {name}"))?;
        let (b64, n64) = measure(backend.as_ref(), &z, labels.as_deref(), seconds)
            .with_context(|| format!("benchmarking {name}"))?;
        rows.push(Row {
            name,
            b1,
            b64,
            runs: (n1, n64),
            diff_b1,
            diff_b64,
        });
    }

    let base = (rows[0].b1.as_secs_f64(), rows[0].b64.as_secs_f64());
    if json {
        let rows: Vec<_> = rows
            .iter()
            .map(|r| {
                serde_json::json!({
                    "backend": r.name,
                    "batch1_latency_us": r.b1.as_secs_f64() * 1e6,
                    "batch64_throughput_per_s": BIG as f64 / r.b64.as_secs_f64(),
                    "batch64_per_sample_us": r.b64.as_secs_f64() * 1e6 / BIG as f64,
                    "batch1_time_vs_tract": r.b1.as_secs_f64() / base.0,
                    "batch64_time_vs_tract": r.b64.as_secs_f64() / base.1,
                    "max_abs_diff_vs_tract_batch1": r.diff_b1,
                    "max_abs_diff_vs_tract_batch64": r.diff_b64,
                    "runs": [r.runs.0, r.runs.1],
                })
            })
            .collect();
        let value = serde_json::json!({
            "model": model.display().to_string(),
            "macs_per_sample": macs,
            "seconds_per_cell": seconds,
            "ort_threads": ort_threads,
            "rows": rows,
            "notes": notes,
        });
        println!("{}", serde_json::to_string_pretty(&value)?);
        return Ok(());
    }
    println!(
        "model: {} (z_dim {}, image {}, {} classes, {macs} MACs/sample); median of >= 5 runs over {seconds} s per cell; tract runs on 1 thread, ort on {ort_threads}",
        model.display(),
        info.z_dim,
        info.image,
        info.classes.len()
    );
    println!(
        "{:<16} {:>14} {:>14} {:>16} {:>17} {:>17} {:>22}",
        "backend",
        "batch 1 (us)",
        "b1 vs tract",
        "batch 64 (img/s)",
        "per sample @64",
        "b64 vs tract",
        "max |diff| b1 / b64"
    );
    for r in &rows {
        println!(
            "{:<16} {:>14.1} {:>13.2}x {:>16.0} {:>14.2} us {:>16.2}x {:>11.2e} / {:.2e}",
            r.name,
            r.b1.as_secs_f64() * 1e6,
            r.b1.as_secs_f64() / base.0,
            BIG as f64 / r.b64.as_secs_f64(),
            r.b64.as_secs_f64() * 1e6 / BIG as f64,
            r.b64.as_secs_f64() / base.1,
            r.diff_b1,
            r.diff_b64
        );
    }
    println!(
        "(\"vs tract\" = time relative to tract with fixed-batch plans: below 1.00x is faster)"
    );
    for n in notes {
        println!("note: {n}");
    }
    Ok(())
}

/// tract's time per sample for batch sizes 1 to 256.
fn batch_sweep(model: &Path, seconds: f64, seed: u64, json: bool) -> anyhow::Result<()> {
    let generator = load(model)?;
    let info = generator.info().clone();
    let mut rows = Vec::new();
    for batch in [1usize, 2, 4, 8, 16, 32, 64, 128, 256] {
        let z = noise(batch, info.z_dim, seed);
        let labels: Option<Vec<i64>> = info.is_conditional().then(|| {
            (0..batch)
                .map(|i| (i % info.classes.len()) as i64)
                .collect()
        });
        let (t, _) = measure(&generator, &z, labels.as_deref(), seconds)?;
        rows.push((batch, t.as_secs_f64() * 1e6 / batch as f64));
    }
    let best = rows
        .iter()
        .cloned()
        .fold((0, f64::INFINITY), |a, b| if b.1 < a.1 { b } else { a });
    if json {
        let rows: Vec<_> = rows
            .iter()
            .map(|(b, us)| serde_json::json!({"batch": b, "per_sample_us": us}))
            .collect();
        println!(
            "{}",
            serde_json::to_string_pretty(
                &serde_json::json!({"sweep": rows, "best_batch": best.0})
            )?
        );
        return Ok(());
    }
    println!("\ntract per-sample time by batch size (fixed-batch plans):");
    for (batch, us) in &rows {
        println!(
            "  batch {batch:>3}: {us:>10.2} us/sample ({:.2}x of the best)",
            us / best.1
        );
    }
    println!("fastest here: --batch {}", best.0);
    Ok(())
}

#[cfg(feature = "ort")]
fn add_ort(
    model: &Path,
    threads: usize,
    backends: &mut Vec<Box<dyn Backend>>,
    notes: &mut Vec<String>,
) {
    match runtime::ort_backend::OrtGenerator::load(model, threads) {
        Ok(g) => backends.push(Box::new(g)),
        Err(e) => notes.push(format!("ort skipped: {e}")),
    }
}

#[cfg(not(feature = "ort"))]
fn add_ort(_: &Path, _: usize, _: &mut Vec<Box<dyn Backend>>, notes: &mut Vec<String>) {
    notes.push("ort skipped: this binary was built without ONNX Runtime support (cargo build --release -p runtime --features ort)".into());
}
