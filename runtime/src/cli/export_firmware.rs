//! `runtime export-firmware`: write an `mlp` generator as an int8 weight blob for the
//! `firmware` crate.
//!
//! The pipeline's last step, from a host model to a microcontroller; its own file so the
//! firmware path is visible next to the other subcommands.

use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::Args;

use runtime::onnx::adopt::Foreign;

use super::args::{ForceOpt, ForeignArgs};
use super::common::check_out;
use super::parse::parse_samples;

/// Options of `runtime export-firmware`.
#[derive(Args, Debug)]
pub struct ExportFirmwareArgs {
    /// The ONNX generator (f32 or weight-only).
    #[arg(long, short = 'm')]
    pub model: PathBuf,
    /// Output blob, e.g. gen.gtfw.
    #[arg(long, short = 'o')]
    pub out: PathBuf,
    /// Latents (the firmware's seeded noise) whose activations set the int8 ranges (1 to
    /// 100000).
    #[arg(long, default_value_t = runtime::firmware_export::DEFAULT_SAMPLES, value_parser = parse_samples)]
    pub calibration_samples: usize,
    /// First seed of the calibration latents (sample i uses seed + i).
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// `--force`: replace the output blob.
    #[command(flatten)]
    pub force: ForceOpt,
    /// What to assume about a generator from another framework.
    #[command(flatten)]
    pub foreign: ForeignArgs,
}

/// Runs `runtime export-firmware`.
pub fn run(args: ExportFirmwareArgs) -> anyhow::Result<()> {
    export_firmware(
        &args.model,
        &args.foreign.get()?,
        &args.out,
        args.calibration_samples,
        args.seed,
        args.force.force,
    )
}

/// Exports `model` to the blob `out`, calibrated on `samples` latents from `seed`.
fn export_firmware(
    model: &Path,
    foreign: &Foreign,
    out: &Path,
    samples: usize,
    seed: u64,
    force: bool,
) -> anyhow::Result<()> {
    check_out(model, out, force)?;
    let e = runtime::firmware_export::export_firmware_foreign(model, foreign, out, samples, seed)
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
