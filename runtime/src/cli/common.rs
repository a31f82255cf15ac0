//! Helpers that more than one subcommand calls: loading a generator (optionally in another
//! precision) and refusing to overwrite `--out`.
//!
//! Context messages name no path: every runtime error already names its file (see
//! `runtime::error`), and the path should appear once.

use std::path::Path;

use anyhow::{Context, bail};
use runtime::engine::tract::{Generator, LoadOptions, Precision};
use runtime::onnx::adopt::Foreign;

/// Loads `model` as stored (adopted with `foreign` if it comes from another framework).
pub fn load(model: &Path, foreign: &Foreign) -> anyhow::Result<Generator> {
    load_precision(model, foreign, None)
}

/// Loads `model` in `precision` (`None`: as stored) and says what runs.
pub fn load_precision(
    model: &Path,
    foreign: &Foreign,
    precision: Option<Precision>,
) -> anyhow::Result<Generator> {
    let options = LoadOptions {
        precision,
        foreign: foreign.clone(),
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
pub fn check_out(model: &Path, out: &Path, force: bool) -> anyhow::Result<()> {
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
