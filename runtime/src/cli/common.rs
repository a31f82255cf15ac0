//! Helpers that more than one subcommand calls: loading a generator (optionally in another
//! precision) and refusing to overwrite `--out`.
//!
//! Context messages name no path: every runtime error already names its file (see
//! `runtime::error`), and the path should appear once.

use std::path::Path;

use anyhow::{Context, bail};
use runtime::engine::choices::ChoiceCache;
use runtime::engine::tract::{Generator, LoadOptions, Precision};
use runtime::onnx::adopt::Foreign;

/// Loads `model` as stored (adopted with `foreign` if it comes from another framework).
pub fn load(model: &Path, foreign: &Foreign) -> anyhow::Result<Generator> {
    load_precision(model, foreign, None, false)
}

/// Loads `model` in `precision` (`None`: as stored) and says what runs. Automatic choices
/// are remembered in the user's cache ([`ChoiceCache::default_location`]); `remeasure`
/// times them again instead of using what is remembered.
pub fn load_precision(
    model: &Path,
    foreign: &Foreign,
    precision: Option<Precision>,
    remeasure: bool,
) -> anyhow::Result<Generator> {
    let choices =
        ChoiceCache::default_location().map(|c| if remeasure { c.remeasuring() } else { c });
    let options = LoadOptions {
        precision,
        foreign: foreign.clone(),
        choices: choices.clone(),
        ..LoadOptions::default()
    };
    let generator = Generator::load_with(model, &options).context("loading the generator")?;
    if let Some(choice) = generator.auto_choice() {
        eprintln!(
            "precision auto: running {} ({:.2} us/sample int8, {:.2} us/sample f32 at batch {}, {})",
            choice.chosen,
            choice.int8_us_per_sample,
            choice.f32_us_per_sample,
            choice.batch,
            measured(choice.remembered, choices.as_ref())
        );
    }
    Ok(generator)
}

/// Where a choice's timing comes from, for the messages.
pub fn measured(remembered: bool, choices: Option<&ChoiceCache>) -> String {
    match choices {
        Some(cache) if remembered => format!(
            "measured before on this machine, remembered in {}; --remeasure times it again",
            cache.path().display()
        ),
        _ => "measured at load".to_string(),
    }
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
