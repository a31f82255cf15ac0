//! `runtime bench`: time every available backend side by side (latency at batch 1, throughput
//! at batch 64) and compare their outputs; `--sweep` adds tract's time per sample by batch size.
//!
//! Its own file because it owns the measuring loop and the backend line-up (tract fixed and
//! symbolic batch, tract int8, ONNX Runtime when built with `--features ort`), which no other
//! subcommand needs.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::Args;
use runtime::engine::tract::{BatchMode, Generator, LoadOptions, Precision};
use runtime::engine::{Backend, max_abs_diff};
use runtime::int8::quantize::{Form, QuantizeOptions};
use runtime::noise::noise;
use runtime::onnx::metadata::ModelInfo;

use super::args::ForeignArgs;
use super::args::{FormArg, PrecisionArg};
use super::common::{load, load_precision};
use super::parse::{parse_seconds, parse_threads};
use runtime::onnx::adopt::Foreign;

/// Options of `runtime bench`.
#[derive(Args, Debug)]
pub struct BenchArgs {
    /// The ONNX generator.
    #[arg(long, short = 'm')]
    pub model: PathBuf,
    /// Seconds of measurement per backend and batch size (more than 0, at most 3600).
    #[arg(long, default_value_t = 2.0, value_parser = parse_seconds)]
    pub seconds: f64,
    /// Noise seed of the benchmark inputs.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Threads tract runs its matrix products on (1 to 1024; see `generate --threads`).
    #[arg(long, default_value_t = 1, value_parser = parse_threads)]
    pub threads: usize,
    /// Intra-op threads for ONNX Runtime (1 to 1024). Give it --threads' count for a
    /// like-for-like comparison.
    #[arg(long, default_value_t = 1, value_parser = parse_threads)]
    pub ort_threads: usize,
    /// Also time tract (fixed-batch plans) per sample at batch sizes 1, 2, 4, ..., 256, to
    /// choose `generate --batch` for this machine.
    #[arg(long)]
    pub sweep: bool,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
    // Not the shared `PrecisionOpt`: here the option picks which rows to time, and its default
    // (both f32 and int8) differs from "as the file is stored".
    /// Only this precision's rows (default: f32 and int8 when the file has f32 weights).
    #[arg(long, value_enum)]
    pub precision: Option<PrecisionArg>,
    /// ONNX form of the tract int8 row (see `runtime quantize --help`).
    #[arg(long, value_enum, default_value_t = FormArg::Integer)]
    pub form: FormArg,
    /// ONNX form of the ONNX Runtime int8 row (qdq: the form ONNX Runtime fuses into its
    /// integer kernels; the integer form runs several times slower there).
    #[arg(long, value_enum, default_value_t = FormArg::Qdq)]
    pub ort_form: FormArg,
    /// What to assume about a generator from another framework.
    #[command(flatten)]
    pub foreign: ForeignArgs,
}

/// Runs `runtime bench`, then the batch sweep if `--sweep`.
pub fn run(args: BenchArgs) -> anyhow::Result<()> {
    let foreign = args.foreign.get()?;
    bench(&args, &foreign)?;
    if args.sweep {
        batch_sweep(&args.model, &foreign, args.seconds, args.seed, args.json)?;
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

/// One backend's line of the table.
struct Row {
    /// The backend's name.
    name: String,
    /// Median time of one batch-1 run.
    b1: Duration,
    /// Median time of one batch-64 run.
    b64: Duration,
    /// How many runs each median is of (batch 1, batch 64).
    runs: (usize, usize),
    /// Largest output difference from the first row at batch 1.
    diff_b1: f32,
    /// Largest output difference from the first row at batch 64.
    diff_b64: f32,
}

/// Batch size of the throughput column.
const BIG: usize = 64;

/// Times each backend that `precision` selects at batch 1 and 64 and prints the table (or JSON).
/// `forms` are the ONNX forms of the tract and ONNX Runtime int8 rows quantized in memory.
fn bench(args: &BenchArgs, foreign: &Foreign) -> anyhow::Result<()> {
    let (model, seconds, seed, json) = (args.model.as_path(), args.seconds, args.seed, args.json);
    let threads = Threads {
        tract: args.threads,
        ort: args.ort_threads,
    };
    let precision: Option<Precision> = args.precision.map(Into::into);
    let forms: [Form; 2] = [args.form.into(), args.ort_form.into()];
    let stored = load(model, foreign)?;
    let info = stored.info().clone();
    let macs = stored.macs_per_sample();
    let z = noise(BIG, info.z_dim, seed);
    let labels: Option<Vec<i64>> = info
        .is_conditional()
        .then(|| (0..BIG).map(|i| (i % info.classes.len()) as i64).collect());
    let (backends, notes) = line_up(model, foreign, stored, precision, threads, forms)?;
    let rows = measure_rows(&backends, &z, labels.as_deref(), info.z_dim, seconds)?;
    let setup = Setup {
        model,
        info: &info,
        macs,
        seconds,
        threads,
    };
    if json {
        print_json(&setup, &rows, &notes)
    } else {
        print_table(&setup, &rows, &notes);
        Ok(())
    }
}

/// Threads of each engine.
#[derive(Clone, Copy, Debug)]
struct Threads {
    /// `--threads`.
    tract: usize,
    /// `--ort-threads`.
    ort: usize,
}

/// Backends in table order.
type Backends = Vec<Box<dyn Backend>>;

/// The backends to time, in table order, and notes on those left out. `stored` is `model` as
/// loaded (the first f32 row, when there is one).
fn line_up(
    model: &Path,
    foreign: &Foreign,
    stored: Generator,
    precision: Option<Precision>,
    threads: Threads,
    [form, ort_form]: [Form; 2],
) -> anyhow::Result<(Backends, Vec<String>)> {
    let ort_threads = threads.ort;
    let stored_int8 = stored.precision() == Precision::Int8;
    let mut backends: Backends = Vec::new();
    let mut notes = Vec::new();
    let want_f32 = matches!(precision, None | Some(Precision::F32));
    let want_int8 = matches!(precision, None | Some(Precision::Int8));
    if precision == Some(Precision::Auto) {
        let chosen = load_precision(model, foreign, Some(Precision::Auto), true)?;
        if let Some(c) = chosen.auto_choice() {
            notes.push(format!(
                "precision auto chose {} ({:.2} us/sample int8 vs {:.2} us/sample f32 at batch {})",
                c.chosen, c.int8_us_per_sample, c.f32_us_per_sample, c.batch
            ));
        }
        backends.push(Box::new(chosen.with_threads(threads.tract)?));
    }
    if want_f32 && stored_int8 {
        notes.push("f32 rows skipped: the file holds int8 weights only".into());
    }
    if want_f32 && !stored_int8 {
        let symbolic = load(model, foreign)?
            .with_batch_mode(BatchMode::Symbolic)?
            .with_threads(threads.tract)?;
        backends.push(Box::new(stored.with_threads(threads.tract)?));
        backends.push(Box::new(symbolic));
        add_ort(model, foreign, None, ort_threads, &mut backends, &mut notes);
    }
    if want_int8 {
        if stored_int8 {
            backends.push(Box::new(load(model, foreign)?.with_threads(threads.tract)?));
            add_ort(model, foreign, None, ort_threads, &mut backends, &mut notes);
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
                    foreign: foreign.clone(),
                    choices: None,
                },
            )
            .context("quantizing in memory")?;
            backends.push(Box::new(int8.with_threads(threads.tract)?));
            if cfg!(feature = "ort") {
                let bytes = runtime::int8::quantize::quantize_foreign_file(
                    model,
                    foreign,
                    &options(ort_form),
                )?;
                add_ort(
                    model,
                    foreign,
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
    Ok((backends, notes))
}

/// Times `backends` interleaved at batch 1 (the first sample of `z`) and batch 64, and compares
/// each one's outputs with the first backend's.
fn measure_rows(
    backends: &[Box<dyn Backend>],
    z: &[f32],
    labels: Option<&[i64]>,
    z_dim: usize,
    seconds: f64,
) -> anyhow::Result<Vec<Row>> {
    let z1 = &z[..z_dim];
    let l1 = labels.map(|l| &l[..1]);
    let reference_b1 = backends[0].run_batch(z1, l1)?;
    let reference_b64 = backends[0].run_batch(z, labels)?;
    let all: Vec<&dyn Backend> = backends.iter().map(|b| b.as_ref()).collect();
    let b1 = measure_interleaved(&all, z1, l1, seconds).context("benchmarking batch 1")?;
    let b64 = measure_interleaved(&all, z, labels, seconds).context("benchmarking batch 64")?;
    let mut rows = Vec::new();
    for (i, backend) in backends.iter().enumerate() {
        rows.push(Row {
            name: backend.name(),
            b1: b1[i].0,
            b64: b64[i].0,
            runs: (b1[i].1, b64[i].1),
            diff_b1: max_abs_diff(&reference_b1, &backend.run_batch(z1, l1)?),
            diff_b64: max_abs_diff(&reference_b64, &backend.run_batch(z, labels)?),
        });
    }
    Ok(rows)
}

/// What a bench measured, besides its rows.
struct Setup<'a> {
    /// The model file.
    model: &'a Path,
    /// Its metadata.
    info: &'a ModelInfo,
    /// Its MACs per sample.
    macs: u64,
    /// `--seconds`.
    seconds: f64,
    /// `--threads` and `--ort-threads`.
    threads: Threads,
}

/// Prints the bench as JSON.
fn print_json(setup: &Setup, rows: &[Row], notes: &[String]) -> anyhow::Result<()> {
    let Setup {
        model,
        macs,
        seconds,
        threads,
        ..
    } = *setup;
    let base = (rows[0].b1.as_secs_f64(), rows[0].b64.as_secs_f64());
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
        "tract_threads": threads.tract,
        "ort_threads": threads.ort,
        "rows": rows,
        "notes": notes,
    });
    println!("{}", serde_json::to_string_pretty(&value)?);
    Ok(())
}

/// Prints the bench as a table, then the notes.
fn print_table(setup: &Setup, rows: &[Row], notes: &[String]) {
    let Setup {
        model,
        info,
        macs,
        seconds,
        threads,
    } = *setup;
    let base = (rows[0].b1.as_secs_f64(), rows[0].b64.as_secs_f64());
    println!(
        "model: {} (z_dim {}, image {}, {} classes, {macs} MACs/sample); median of >= 5 interleaved runs, {seconds} s per backend and batch size; tract runs on {} thread(s), ort on {}",
        model.display(),
        info.z_dim,
        info.image,
        info.classes.len(),
        threads.tract,
        threads.ort
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
    for r in rows {
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
}

/// tract's time per sample for batch sizes 1 to 256.
fn batch_sweep(
    model: &Path,
    foreign: &Foreign,
    seconds: f64,
    seed: u64,
    json: bool,
) -> anyhow::Result<()> {
    let generator = load(model, foreign)?;
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

/// Adds ONNX Runtime on `model` (or on `bytes`, a quantized copy) to `backends`, or a note
/// saying why not.
#[cfg(feature = "ort")]
fn add_ort(
    model: &Path,
    foreign: &Foreign,
    bytes: Option<Vec<u8>>,
    threads: usize,
    backends: &mut Vec<Box<dyn Backend>>,
    notes: &mut Vec<String>,
) {
    let loaded = match bytes {
        Some(b) => runtime::engine::ort::OrtGenerator::from_bytes(model, &b, threads),
        None => runtime::engine::ort::OrtGenerator::load_foreign(model, threads, foreign),
    };
    match loaded {
        Ok(g) => backends.push(Box::new(g)),
        Err(e) => notes.push(format!("ort skipped: {e}")),
    }
}

/// Without the `ort` feature: notes once that ONNX Runtime was skipped.
#[cfg(not(feature = "ort"))]
fn add_ort(
    _: &Path,
    _: &Foreign,
    _: Option<Vec<u8>>,
    _: usize,
    _: &mut Vec<Box<dyn Backend>>,
    notes: &mut Vec<String>,
) {
    if !notes.iter().any(|n| n.starts_with("ort skipped")) {
        notes.push("ort skipped: this binary was built without ONNX Runtime support (cargo build --release -p runtime --features ort)".into());
    }
}
