//! `trainer export`: writes a run's generator as the ONNX file the runtime loads (a thin
//! wrapper over `trainer::export`).

use std::path::PathBuf;

use anyhow::Context;
use clap::Args;

#[derive(Args, Debug)]
pub struct ExportArgs {
    /// The run folder (holds config.json and checkpoints/).
    run_dir: PathBuf,
    /// Output file [default: RUN_DIR/generator.onnx].
    #[arg(long, value_name = "FILE")]
    out: Option<PathBuf>,
    /// Export the checkpoint with the best FID (checkpoints/best, kept by runs that
    /// evaluate quality) instead of the latest.
    #[arg(long)]
    best: bool,
}

/// Runs `trainer export`.
pub fn run(args: ExportArgs) -> anyhow::Result<()> {
    let ExportArgs { run_dir, out, best } = args;
    let out = out.unwrap_or_else(|| run_dir.join("generator.onnx"));
    let best_dir = trainer::checkpoint::checkpoints_dir(&run_dir).join(trainer::checkpoint::BEST);
    let checkpoint = best.then_some(best_dir.as_path());
    let spec = trainer::export::export_checkpoint(&run_dir, checkpoint, &out)
        .with_context(|| format!("exporting the generator of {}", run_dir.display()))?;
    println!(
        "wrote {} (z_dim {}, image {}, {} classes)\ntry it: cargo run --release -p runtime -- generate --model {} --count 64 --format grid --out samples",
        out.display(),
        spec.z_dim,
        spec.image,
        spec.classes.len(),
        out.display()
    );
    Ok(())
}
