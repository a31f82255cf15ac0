//! `runtime adopt`: rewrite a generator from another framework (PyTorch, TensorFlow via
//! tf2onnx) as a Gantry generator, so that every other subcommand, the int8 quantizer and the
//! firmware exporter take it like a model from `trainer export`.
//!
//! The first step for a user who brings their own generator; its own file because its report
//! (what was read from the graph, what came from flags, which adapters were added, and the
//! pixel range the adopted file really produces) is what the user checks before trusting it.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use clap::Args;
use runtime::engine::tract::{Generator, LoadOptions};
use runtime::noise::noise;
use runtime::onnx::adopt::{Foreign, adopt_file};

use super::args::{ForceOpt, ForeignArgs};
use super::common::check_out;

/// Options of `runtime adopt`.
#[derive(Args, Debug)]
pub struct AdoptArgs {
    /// The foreign ONNX generator (one float noise input, optionally one integer label input,
    /// one image output).
    pub input: PathBuf,
    /// The adopted generator to write (atomically).
    #[arg(long, short = 'o')]
    pub out: PathBuf,
    /// `--force`: replace --out.
    #[command(flatten)]
    pub force: ForceOpt,
    /// What the graph does not tell.
    #[command(flatten)]
    pub foreign: ForeignArgs,
}

/// Samples generated from the adopted file to check its pixel range.
const CHECK_SAMPLES: usize = 64;

/// Runs `runtime adopt`.
pub fn run(args: AdoptArgs) -> anyhow::Result<()> {
    adopt(
        &args.input,
        &args.foreign.get()?,
        &args.out,
        args.force.force,
    )
}

/// Adopts `input` into `out`, then loads `out` and checks the range of its pixels.
fn adopt(input: &Path, foreign: &Foreign, out: &Path, force: bool) -> anyhow::Result<()> {
    check_out(input, out, force)?;
    let adopted = adopt_file(input, foreign).context("adopting")?;
    // Load and run the rewritten graph before writing it (the same adoption, in memory): a
    // graph tract cannot run is refused here, naming the file, not at the first `generate`.
    let generator = Generator::load_with(
        input,
        &LoadOptions {
            foreign: foreign.clone(),
            ..LoadOptions::default()
        },
    )
    .context("loading the adopted graph")?;
    let info = generator.info();
    let z = noise(CHECK_SAMPLES, info.z_dim, 0);
    let labels: Option<Vec<i64>> = info.is_conditional().then(|| {
        (0..CHECK_SAMPLES)
            .map(|i| (i % info.classes.len()) as i64)
            .collect()
    });
    let pixels = generator.run(&z, labels.as_deref())?;
    let (lo, hi) = pixels
        .iter()
        .fold((f32::INFINITY, f32::NEG_INFINITY), |(lo, hi), v| {
            (lo.min(*v), hi.max(*v))
        });
    if !lo.is_finite() || !hi.is_finite() {
        bail!(
            "{}: the adopted generator produces non-finite pixels on seeded noise; its weights or graph are broken",
            input.display()
        );
    }
    adopted.write(out)?;
    println!("wrote {}\n{}", out.display(), adopted.adoption);
    println!(
        "check:         {CHECK_SAMPLES} samples (seed 0) give pixels in [{lo:.3}, {hi:.3}] after adoption (expected within [-1, 1])"
    );
    if lo < -1.05 || hi > 1.05 {
        println!(
            "warning:       pixels fall outside [-1, 1]: the pixel range ({}) is probably wrong; pass --pixel-range",
            adopted.adoption.pixel_range.value
        );
    }
    Ok(())
}
