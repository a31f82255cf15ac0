//! `runtime quantize`: write an int8 copy of a generator (post-training, static) and check it
//! against the f32 original on fresh noise.
//!
//! Its own file because it is the pipeline step between training and deployment: the options
//! that choose the calibration and the ONNX form, their translation into
//! [`QuantizeOptions`], and the report of size and error.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::Context;
use clap::{Args, ValueEnum};
use runtime::engine::max_abs_diff;
use runtime::int8::quantize::{CalibrationMethod, Form, QuantizeOptions};
use runtime::noise::noise;

use runtime::onnx::adopt::Foreign;

use super::args::{ForceOpt, ForeignArgs, FormArg};
use super::common::{check_out, load};
use super::parse::{parse_percentile, parse_samples};

/// Options of `runtime quantize`.
#[derive(Args, Debug)]
pub struct QuantizeArgs {
    /// The f32 ONNX generator.
    #[arg(long, short = 'm')]
    pub model: PathBuf,
    /// Output file (written atomically).
    #[arg(long, short = 'o')]
    pub out: PathBuf,
    /// Noise samples whose activations set the int8 ranges (1 to 100000).
    #[arg(long, default_value_t = runtime::int8::quantize::DEFAULT_SAMPLES, value_parser = parse_samples)]
    pub calibration_samples: usize,
    /// Noise seed of the calibration samples.
    #[arg(long, default_value_t = 0)]
    pub calibration_seed: u64,
    /// minmax: the full range seen; percentile: ignore the rarest values (--percentile).
    #[arg(long, value_enum, default_value_t = MethodArg::Minmax)]
    pub method: MethodArg,
    /// Percentile for --method percentile: ranges span the (100-p)th to the pth percentile
    /// (more than 50, at most 100).
    #[arg(long, default_value_t = runtime::int8::quantize::DEFAULT_PERCENTILE, value_parser = parse_percentile)]
    pub percentile: f64,
    /// ONNX form of the int8 layers.
    #[arg(long, value_enum, default_value_t = FormArg::Integer, conflicts_with = "weight_only")]
    pub form: FormArg,
    /// Store weights in int8 and compute in f32 (no calibration).
    #[arg(long)]
    pub weight_only: bool,
    /// `--force`: replace the output file.
    #[command(flatten)]
    pub force: ForceOpt,
    /// What to assume about a generator from another framework.
    #[command(flatten)]
    pub foreign: ForeignArgs,
}

/// The values of `quantize --method`.
#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum MethodArg {
    // No doc comments on the variants: clap would show them in `--help` as value descriptions.
    Minmax,
    Percentile,
}

impl QuantizeArgs {
    /// The library's options for these arguments (`--weight-only` overrides `--form`).
    fn options(&self) -> QuantizeOptions {
        QuantizeOptions {
            samples: self.calibration_samples,
            seed: self.calibration_seed,
            method: match self.method {
                MethodArg::Minmax => CalibrationMethod::MinMax,
                MethodArg::Percentile => CalibrationMethod::Percentile {
                    percentile: self.percentile,
                },
            },
            form: if self.weight_only {
                Form::WeightOnly
            } else {
                self.form.into()
            },
        }
    }
}

/// Runs `runtime quantize`.
pub fn run(args: QuantizeArgs) -> anyhow::Result<()> {
    quantize(
        &args.model,
        &args.foreign.get()?,
        &args.out,
        &args.options(),
        args.force.force,
    )
}

/// Quantizes `model` into `out`, then reloads both and prints how far int8 is from f32.
fn quantize(
    model: &Path,
    foreign: &Foreign,
    out: &Path,
    options: &QuantizeOptions,
    force: bool,
) -> anyhow::Result<()> {
    check_out(model, out, force)?;
    let started = Instant::now();
    let q = runtime::int8::quantize::quantize_foreign_file(model, foreign, options)
        .context("quantizing")?;
    q.write(out)?;
    let elapsed = started.elapsed().as_secs_f64();
    let before = std::fs::metadata(model).map(|m| m.len()).unwrap_or(0);
    let after = std::fs::metadata(out).map(|m| m.len()).unwrap_or(0);
    // Check what was written: it loads, and how far it is from f32 on fresh noise.
    let f32 = load(model, foreign)?;
    let int8 = load(out, &Foreign::default())?;
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
