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
use runtime::generator::{BatchMode, Generator, LoadOptions, Precision};
use runtime::noise::noise;
use runtime::quantize::{CalibrationMethod, Form, QuantizeOptions};

/// Exit code when the command fails.
const EXIT_FAILURE: u8 = 1;

#[derive(Parser, Debug)]
#[command(
    name = "runtime",
    version,
    about = "Run a Gantry GAN generator (ONNX) with tract: generate labelled synthetic data, inspect, benchmark.",
    after_help = "Examples:\n  \
        runtime info --model models/mnist-dcgan-cond.onnx\n  \
        runtime generate --model models/mnist-dcgan-cond.onnx --count 1000 --balanced --seed 7 --out synth --format png\n  \
        runtime generate --model models/mnist-dcgan-cond.onnx --count 100 --class 3 --seed 1 --out threes --format idx --gzip\n  \
        runtime generate --model models/mnist-mlp.onnx --count 64 --seed 0 --out look --format grid\n  \
        runtime bench --model models/mnist-dcgan-cond.onnx\n  \
        runtime quantize --model models/mnist-mlp-cond.onnx --out mnist-mlp-cond-int8.onnx\n  \
        runtime generate --model models/mnist-mlp-cond.onnx --precision auto --count 1000 --out synth\n  \
        runtime export-firmware --model models/mnist-mlp-cond.onnx --out gen.gtfw\n\n\
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
        /// Number of images (1 to 4294967295).
        #[arg(long, short = 'n', value_parser = parse_count)]
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
        /// Images per tract run (default: chosen from the model's buffer sizes, at most 64; see
        /// `runtime info` and `runtime bench --sweep`). Results agree to float rounding.
        #[arg(long, value_parser = parse_batch)]
        batch: Option<usize>,
        /// Arithmetic: f32, int8 (an f32 model is quantized in memory with the `runtime quantize`
        /// defaults), or auto (time both here at load and keep the faster; -v shows the choice).
        /// Default: as the file is stored.
        #[arg(long, value_enum)]
        precision: Option<PrecisionArg>,
    },
    /// Show a model's metadata, inputs, outputs, parameter count and MACs per sample.
    Info {
        /// The ONNX generator.
        #[arg(long, short = 'm')]
        model: PathBuf,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
        /// Arithmetic: f32, int8 (an f32 model is quantized in memory with the `runtime quantize`
        /// defaults), or auto (time both here at load and keep the faster; -v shows the choice).
        /// Default: as the file is stored.
        #[arg(long, value_enum)]
        precision: Option<PrecisionArg>,
    },
    /// Measure latency at batch 1 and throughput at batch 64 for every available backend, side
    /// by side, and the largest output difference between backends on the same noise.
    ///
    /// Backends: tract with fixed-batch plans (what `generate` uses), tract with one
    /// symbolic-batch plan, tract in int8, and ONNX Runtime (f32 and int8) when built with
    /// `--features ort` and ORT_DYLIB_PATH points at libonnxruntime.so. The int8 rows quantize an
    /// f32 model in memory (--form); their "max |diff|" is the quantization error.
    Bench {
        /// The ONNX generator.
        #[arg(long, short = 'm')]
        model: PathBuf,
        /// Seconds of measurement per backend and batch size (more than 0, at most 3600).
        #[arg(long, default_value_t = 2.0, value_parser = parse_seconds)]
        seconds: f64,
        /// Noise seed of the benchmark inputs.
        #[arg(long, default_value_t = 0)]
        seed: u64,
        /// Intra-op threads for ONNX Runtime (tract runs on one thread; 1 to 1024).
        #[arg(long, default_value_t = 1, value_parser = parse_threads)]
        ort_threads: usize,
        /// Also time tract (fixed-batch plans) per sample at batch sizes 1, 2, 4, ..., 256, to
        /// choose `generate --batch` for this machine.
        #[arg(long)]
        sweep: bool,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
        /// Only this precision's rows (default: f32 and int8 when the file has f32 weights).
        #[arg(long, value_enum)]
        precision: Option<PrecisionArg>,
        /// ONNX form of the tract int8 row (see `runtime quantize --help`).
        #[arg(long, value_enum, default_value_t = FormArg::Integer)]
        form: FormArg,
        /// ONNX form of the ONNX Runtime int8 row (qdq: the form ONNX Runtime fuses into its
        /// integer kernels; the integer form runs several times slower there).
        #[arg(long, value_enum, default_value_t = FormArg::Qdq)]
        ort_form: FormArg,
    },
    /// Quantize a generator to int8 (post-training, static): weights int8 per output channel,
    /// activations int8 calibrated on the generator's own activations for seeded z, biases
    /// int32. Writes a standard ONNX file that tract and ONNX Runtime load, with the scheme and
    /// calibration in its metadata (`runtime info` shows them).
    ///
    /// Forms: integer (MatMulInteger + f32 rescale; the fastest int8 form in tract here),
    /// qlinear (QLinearMatMul), qdq (QuantizeLinear/DequantizeLinear around f32 Gemm: ONNX
    /// Runtime's preferred form). Transposed convolutions keep f32 compute with int8-stored
    /// weights. --weight-only stores every weight in int8 and computes in f32: a 4x smaller
    /// file at f32 speed, for devices short of memory or storage.
    ///
    /// Whether int8 is faster depends on the CPU: measure with `runtime bench`, or let
    /// `--precision auto` decide at load.
    Quantize {
        /// The f32 ONNX generator.
        #[arg(long, short = 'm')]
        model: PathBuf,
        /// Output file (written atomically).
        #[arg(long, short = 'o')]
        out: PathBuf,
        /// Noise samples whose activations set the int8 ranges (1 to 100000).
        #[arg(long, default_value_t = runtime::quantize::DEFAULT_SAMPLES, value_parser = parse_samples)]
        calibration_samples: usize,
        /// Noise seed of the calibration samples.
        #[arg(long, default_value_t = 0)]
        calibration_seed: u64,
        /// minmax: the full range seen; percentile: ignore the rarest values (--percentile).
        #[arg(long, value_enum, default_value_t = MethodArg::Minmax)]
        method: MethodArg,
        /// Percentile for --method percentile: ranges span the (100-p)th to the pth percentile
        /// (more than 50, at most 100).
        #[arg(long, default_value_t = runtime::quantize::DEFAULT_PERCENTILE, value_parser = parse_percentile)]
        percentile: f64,
        /// ONNX form of the int8 layers.
        #[arg(long, value_enum, default_value_t = FormArg::Integer, conflicts_with = "weight_only")]
        form: FormArg,
        /// Store weights in int8 and compute in f32 (no calibration).
        #[arg(long)]
        weight_only: bool,
        /// Replace --out if it exists.
        #[arg(long)]
        force: bool,
    },
    /// Write an `mlp` generator as a weight blob for the `firmware` crate (no_std, int8, runs on
    /// a microcontroller or a Pi driving a small display). Only Dense -> LeakyReLU -> Dense ->
    /// Tanh generators with one channel fit; the blob is written atomically. Preview it with
    /// `cargo run -p firmware --features preview --bin preview -- --blob FILE`.
    ExportFirmware {
        /// The ONNX generator (f32 or weight-only).
        #[arg(long, short = 'm')]
        model: PathBuf,
        /// Output blob, e.g. gen.gtfw.
        #[arg(long, short = 'o')]
        out: PathBuf,
        /// Latents (the firmware's seeded noise) whose activations set the int8 ranges (1 to
        /// 100000).
        #[arg(long, default_value_t = runtime::firmware_blob::DEFAULT_SAMPLES, value_parser = parse_samples)]
        calibration_samples: usize,
        /// First seed of the calibration latents (sample i uses seed + i).
        #[arg(long, default_value_t = 0)]
        seed: u64,
        /// Replace --out if it exists.
        #[arg(long)]
        force: bool,
    },
}

/// The most images one `generate` writes (IDX headers store the count in 32 bits).
const MAX_COUNT: u64 = u32::MAX as u64;
/// The largest `--batch`.
const MAX_BATCH: u64 = 4096;
/// The longest `bench --seconds`: an hour per backend and batch size.
const MAX_SECONDS: f64 = 3600.0;
/// The most `--ort-threads`.
const MAX_THREADS: u64 = 1024;
/// The most calibration samples (calibration keeps their activations in memory).
const MAX_SAMPLES: u64 = 100_000;

/// An integer in `min..=max`, for clap (which then reports an argument error, exit code 2).
fn parse_int(s: &str, min: u64, max: u64) -> Result<usize, String> {
    let v: u64 = s
        .trim()
        .parse()
        .map_err(|_| format!("`{s}` is not a whole number from {min} to {max}"))?;
    if !(min..=max).contains(&v) {
        return Err(format!("{v} is out of range: use {min} to {max}"));
    }
    usize::try_from(v).map_err(|_| format!("{v} is too large for this machine"))
}

fn parse_count(s: &str) -> Result<usize, String> {
    parse_int(s, 1, MAX_COUNT)
}

fn parse_batch(s: &str) -> Result<usize, String> {
    parse_int(s, 1, MAX_BATCH)
}

fn parse_threads(s: &str) -> Result<usize, String> {
    parse_int(s, 1, MAX_THREADS)
}

fn parse_samples(s: &str) -> Result<usize, String> {
    parse_int(s, 1, MAX_SAMPLES)
}

/// A finite number in `(low, high]`.
fn parse_float(s: &str, low: f64, high: f64) -> Result<f64, String> {
    let v: f64 = s
        .trim()
        .parse()
        .map_err(|_| format!("`{s}` is not a number"))?;
    if !v.is_finite() || v <= low || v > high {
        return Err(format!(
            "{s} is out of range: use a number more than {low} and at most {high}"
        ));
    }
    Ok(v)
}

fn parse_seconds(s: &str) -> Result<f64, String> {
    parse_float(s, 0.0, MAX_SECONDS)
}

fn parse_percentile(s: &str) -> Result<f64, String> {
    parse_float(s, 50.0, 100.0)
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum PrecisionArg {
    F32,
    Int8,
    Auto,
}

impl From<PrecisionArg> for Precision {
    fn from(p: PrecisionArg) -> Precision {
        match p {
            PrecisionArg::F32 => Precision::F32,
            PrecisionArg::Int8 => Precision::Int8,
            PrecisionArg::Auto => Precision::Auto,
        }
    }
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum FormArg {
    Integer,
    Qlinear,
    Qdq,
}

impl From<FormArg> for Form {
    fn from(f: FormArg) -> Form {
        match f {
            FormArg::Integer => Form::Integer,
            FormArg::Qlinear => Form::Qlinear,
            FormArg::Qdq => Form::Qdq,
        }
    }
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum MethodArg {
    Minmax,
    Percentile,
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
            precision,
        } => generate(
            &model,
            count,
            class,
            balanced,
            seed,
            &out,
            format,
            gzip,
            force,
            batch,
            precision.map(Into::into),
            cli.quiet,
        ),
        Command::Info {
            model,
            json,
            precision,
        } => info(&model, json, precision.map(Into::into)),
        Command::Bench {
            model,
            seconds,
            seed,
            ort_threads,
            sweep,
            json,
            precision,
            form,
            ort_form,
        } => {
            bench(
                &model,
                seconds,
                seed,
                ort_threads,
                json,
                precision.map(Into::into),
                [form.into(), ort_form.into()],
            )?;
            if sweep {
                batch_sweep(&model, seconds, seed, json)?;
            }
            Ok(())
        }
        Command::Quantize {
            model,
            out,
            calibration_samples,
            calibration_seed,
            method,
            percentile,
            form,
            weight_only,
            force,
        } => {
            let options = QuantizeOptions {
                samples: calibration_samples,
                seed: calibration_seed,
                method: match method {
                    MethodArg::Minmax => CalibrationMethod::MinMax,
                    MethodArg::Percentile => CalibrationMethod::Percentile { percentile },
                },
                form: if weight_only {
                    Form::WeightOnly
                } else {
                    form.into()
                },
            };
            quantize(&model, &out, &options, force)
        }
        Command::ExportFirmware {
            model,
            out,
            calibration_samples,
            seed,
            force,
        } => export_firmware(&model, &out, calibration_samples, seed, force),
    }
}

// Context messages name no path: every runtime error already names its file (see
// runtime::error), and the path should appear once.

fn load(model: &Path) -> anyhow::Result<Generator> {
    Generator::load(model).context("loading the generator")
}

/// Loads `model` in `precision` (`None`: as stored) and says what runs.
fn load_precision(model: &Path, precision: Option<Precision>) -> anyhow::Result<Generator> {
    let options = LoadOptions {
        precision,
        ..LoadOptions::default()
    };
    let generator = Generator::load_with(model, &options).context("loading the generator")?;
    if let Some(choice) = generator.auto_choice() {
        eprintln!(
            "precision auto: running {} ({:.2} us/sample int8, {:.2} us/sample f32 at batch {}, measured at load)",
            choice.chosen, choice.int8_us_per_sample, choice.f32_us_per_sample, choice.batch
        );
    }
    Ok(generator)
}

/// Refuses to replace `out` (or to write over the input) unless asked.
fn check_out(model: &Path, out: &Path, force: bool) -> anyhow::Result<()> {
    if out.exists() {
        let same = std::fs::canonicalize(out).ok() == std::fs::canonicalize(model).ok();
        if same {
            bail!(
                "--out {} is the input model; choose another file",
                out.display()
            );
        }
        if !force {
            bail!(
                "{} already exists; choose another --out or pass --force to replace it",
                out.display()
            );
        }
    }
    Ok(())
}

fn quantize(
    model: &Path,
    out: &Path,
    options: &QuantizeOptions,
    force: bool,
) -> anyhow::Result<()> {
    check_out(model, out, force)?;
    let started = Instant::now();
    let q = runtime::quantize::quantize_file(model, options).context("quantizing")?;
    q.write(out)?;
    let elapsed = started.elapsed().as_secs_f64();
    let before = std::fs::metadata(model).map(|m| m.len()).unwrap_or(0);
    let after = std::fs::metadata(out).map(|m| m.len()).unwrap_or(0);
    // Check what was written: it loads, and how far it is from f32 on fresh noise.
    let f32 = load(model)?;
    let int8 = load(out)?;
    let info = f32.info();
    let n = 256;
    let z = noise(n, info.z_dim, options.seed.wrapping_add(1_000_003));
    let labels: Option<Vec<i64>> = info
        .is_conditional()
        .then(|| (0..n).map(|i| (i % info.classes.len()) as i64).collect());
    let a = f32.run(&z, labels.as_deref())?;
    let b = int8.run(&z, labels.as_deref())?;
    let mean = a.iter().zip(&b).map(|(x, y)| (x - y).abs()).sum::<f32>() / a.len() as f32;
    let calibration = match (&q.info.calibration, options.method) {
        (None, _) => "none (weight-only)".to_string(),
        (Some(c), CalibrationMethod::MinMax) => {
            format!("min/max of {} samples, seed {}", c.samples, c.seed)
        }
        (Some(c), CalibrationMethod::Percentile { percentile }) => format!(
            "{percentile}th percentile of {} samples, seed {}",
            c.samples, c.seed
        ),
    };
    println!(
        "wrote {} ({} form, {after} bytes; {before} bytes f32, {:.2}x smaller) in {elapsed:.2} s\n\
         calibration: {calibration}\n\
         vs f32 on {n} fresh samples: max |diff| {:.4}, mean |diff| {:.5} (pixels in [-1, 1])",
        out.display(),
        q.info.form,
        before as f64 / after.max(1) as f64,
        max_abs_diff(&a, &b),
        mean,
    );
    Ok(())
}

fn export_firmware(
    model: &Path,
    out: &Path,
    samples: usize,
    seed: u64,
    force: bool,
) -> anyhow::Result<()> {
    check_out(model, out, force)?;
    let e = runtime::firmware_blob::export_firmware(model, out, samples, seed)
        .context("exporting for the firmware")?;
    let shape = if e.classes > 0 {
        format!(
            "z {} + label embedding {} ({} classes)",
            e.z_dim, e.embed_dim, e.classes
        )
    } else {
        format!("z {}", e.z_dim)
    };
    println!(
        "wrote {} ({} bytes): {shape} -> {} hidden -> {}x{} pixels, {} int8 MACs per sample; calibrated on {samples} latents from seed {seed}",
        out.display(),
        e.bytes,
        e.hidden,
        e.width,
        e.height,
        e.macs
    );
    Ok(())
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
    batch: Option<usize>,
    precision: Option<Precision>,
    quiet: bool,
) -> anyhow::Result<()> {
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
        Some(b) => load_precision(model, precision)?.with_batch_size(b)?,
        None => load_precision(model, precision)?,
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
    };
    tracing::info!(model = %model.display(), count, seed, out = %out.display(), precision = %generator.precision(), "generating");
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
    .context("writing the data set")?;
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

fn info(model: &Path, json: bool, precision: Option<Precision>) -> anyhow::Result<()> {
    let generator = load_precision(model, precision)?;
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
            "default_batch": generator.batch_size(),
            "peak_tensor_bytes_per_sample": generator.peak_tensor_bytes(),
            "precision": generator.precision(),
            "auto_choice": generator.auto_choice(),
            "quantization": generator.quantization(),
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
    let precision = match (generator.quantization(), generator.auto_choice()) {
        (_, Some(c)) => format!(
            "{} (auto: {:.2} us/sample int8 vs {:.2} us/sample f32 at batch {})",
            c.chosen, c.int8_us_per_sample, c.f32_us_per_sample, c.batch
        ),
        (Some(q), None) if q.is_int8_compute() => format!("int8 ({} form)", q.form),
        (Some(_), None) => "f32 compute, int8-stored weights (weight-only)".to_string(),
        (None, None) => "f32".to_string(),
    };
    println!("precision:    {precision}");
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
    println!(
        "batch:        {} per tract run by default (largest intermediate tensor {:.1} KiB per sample)",
        generator.batch_size(),
        generator.peak_tensor_bytes() as f64 / 1024.0
    );
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
    let mut all = measure_interleaved(&[backend], z, labels, seconds)?;
    Ok(all.remove(0))
}

/// Median run time of each backend over at least 5 rounds and `seconds` per backend of wall
/// time, after 3 warm-up runs. Backends take turns run by run, so a change in machine load
/// affects them alike and their ratios stay fair.
fn measure_interleaved(
    backends: &[&dyn Backend],
    z: &[f32],
    labels: Option<&[i64]>,
    seconds: f64,
) -> anyhow::Result<Vec<(Duration, usize)>> {
    for backend in backends {
        for _ in 0..3 {
            backend
                .run_batch(z, labels)
                .with_context(|| format!("running {}", backend.name()))?;
        }
    }
    let budget = Duration::from_secs_f64(seconds.max(0.0) * backends.len() as f64);
    let started = Instant::now();
    let mut times = vec![Vec::new(); backends.len()];
    let mut rounds = 0;
    while rounds < 5 || (started.elapsed() < budget && rounds < 1_000_000) {
        for (backend, times) in backends.iter().zip(&mut times) {
            let t = Instant::now();
            std::hint::black_box(backend.run_batch(z, labels)?);
            times.push(t.elapsed());
        }
        rounds += 1;
    }
    Ok(times
        .into_iter()
        .map(|mut t| {
            t.sort();
            (t[t.len() / 2], t.len())
        })
        .collect())
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
    precision: Option<Precision>,
    [form, ort_form]: [Form; 2],
) -> anyhow::Result<()> {
    const BIG: usize = 64;
    let stored = load(model)?;
    let info = stored.info().clone();
    let macs = stored.macs_per_sample();
    let stored_int8 = stored.precision() == Precision::Int8;
    let z = noise(BIG, info.z_dim, seed);
    let labels: Option<Vec<i64>> = info
        .is_conditional()
        .then(|| (0..BIG).map(|i| (i % info.classes.len()) as i64).collect());
    let z1 = &z[..info.z_dim];
    let l1 = labels.as_ref().map(|l| &l[..1]);

    let mut backends: Vec<Box<dyn Backend>> = Vec::new();
    let mut notes = Vec::new();
    let want_f32 = matches!(precision, None | Some(Precision::F32));
    let want_int8 = matches!(precision, None | Some(Precision::Int8));
    if precision == Some(Precision::Auto) {
        let chosen = load_precision(model, Some(Precision::Auto))?;
        if let Some(c) = chosen.auto_choice() {
            notes.push(format!(
                "precision auto chose {} ({:.2} us/sample int8 vs {:.2} us/sample f32 at batch {})",
                c.chosen, c.int8_us_per_sample, c.f32_us_per_sample, c.batch
            ));
        }
        backends.push(Box::new(chosen));
    }
    if want_f32 && stored_int8 {
        notes.push("f32 rows skipped: the file holds int8 weights only".into());
    }
    if want_f32 && !stored_int8 {
        let symbolic = load(model)?.with_batch_mode(BatchMode::Symbolic)?;
        backends.push(Box::new(stored));
        backends.push(Box::new(symbolic));
        add_ort(model, None, ort_threads, &mut backends, &mut notes);
    }
    if want_int8 {
        if stored_int8 {
            backends.push(Box::new(load(model)?));
            add_ort(model, None, ort_threads, &mut backends, &mut notes);
        } else {
            let options = |form| QuantizeOptions {
                form,
                ..QuantizeOptions::default()
            };
            let int8 = Generator::load_with(
                model,
                &LoadOptions {
                    precision: Some(Precision::Int8),
                    quantize: options(form),
                },
            )
            .context("quantizing in memory")?;
            backends.push(Box::new(int8));
            if cfg!(feature = "ort") {
                let bytes = runtime::quantize::quantize_file(model, &options(ort_form))?;
                add_ort(
                    model,
                    Some(bytes.to_bytes()),
                    ort_threads,
                    &mut backends,
                    &mut notes,
                );
            }
            notes.push(format!(
                "int8 rows quantized in memory with the `runtime quantize` defaults: tract-int8 in the {form} form{}",
                if cfg!(feature = "ort") {
                    format!(", ort-int8 in the {ort_form} form")
                } else {
                    String::new()
                }
            ));
        }
    }
    if backends.is_empty() {
        bail!("no backend to benchmark");
    }

    let reference_b1 = backends[0].run_batch(z1, l1)?;
    let reference_b64 = backends[0].run_batch(&z, labels.as_deref())?;
    let all: Vec<&dyn Backend> = backends.iter().map(|b| b.as_ref()).collect();
    let b1 = measure_interleaved(&all, z1, l1, seconds).context("benchmarking batch 1")?;
    let b64 = measure_interleaved(&all, &z, labels.as_deref(), seconds)
        .context("benchmarking batch 64")?;
    let mut rows = Vec::new();
    for (i, backend) in backends.iter().enumerate() {
        rows.push(Row {
            name: backend.name(),
            b1: b1[i].0,
            b64: b64[i].0,
            runs: (b1[i].1, b64[i].1),
            diff_b1: max_abs_diff(&reference_b1, &backend.run_batch(z1, l1)?),
            diff_b64: max_abs_diff(&reference_b64, &backend.run_batch(&z, labels.as_deref())?),
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
        "model: {} (z_dim {}, image {}, {} classes, {macs} MACs/sample); median of >= 5 interleaved runs, {seconds} s per backend and batch size; tract runs on 1 thread, ort on {ort_threads}",
        model.display(),
        info.z_dim,
        info.image,
        info.classes.len()
    );
    println!(
        "{:<20} {:>14} {:>14} {:>16} {:>17} {:>17} {:>22}",
        "backend",
        "batch 1 (us)",
        "b1 vs first",
        "batch 64 (img/s)",
        "per sample @64",
        "b64 vs first",
        "max |diff| b1 / b64"
    );
    for r in &rows {
        println!(
            "{:<20} {:>14.1} {:>13.2}x {:>16.0} {:>14.2} us {:>16.2}x {:>11.2e} / {:.2e}",
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
        "(\"vs {}\" = time and output relative to the first row: below 1.00x is faster)",
        rows[0].name
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
    bytes: Option<Vec<u8>>,
    threads: usize,
    backends: &mut Vec<Box<dyn Backend>>,
    notes: &mut Vec<String>,
) {
    let loaded = match bytes {
        Some(b) => runtime::ort_backend::OrtGenerator::from_bytes(model, &b, threads),
        None => runtime::ort_backend::OrtGenerator::load(model, threads),
    };
    match loaded {
        Ok(g) => backends.push(Box::new(g)),
        Err(e) => notes.push(format!("ort skipped: {e}")),
    }
}

#[cfg(not(feature = "ort"))]
fn add_ort(
    _: &Path,
    _: Option<Vec<u8>>,
    _: usize,
    _: &mut Vec<Box<dyn Backend>>,
    notes: &mut Vec<String>,
) {
    if !notes.iter().any(|n| n.starts_with("ort skipped")) {
        notes.push("ort skipped: this binary was built without ONNX Runtime support (cargo build --release -p runtime --features ort)".into());
    }
}
