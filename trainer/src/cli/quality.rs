//! Helpers of the quality subcommands (`classifier`, `eval`, `augment-eval`): their progress
//! bar, the data set splits they read and the JSON reports they write.

use std::io::IsTerminal;
use std::path::Path;

use anyhow::{Context, bail};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde::Serialize;
use trainer::checkpoint::write_atomic;
use trainer::data::{self, Dataset, ImageShape, Split};

/// The target of the quality commands' log lines: the module they had before the CLI was
/// split into one module per subcommand, so that they log exactly the lines they always have.
pub const LOG_TARGET: &str = "trainer::quality_cli";

/// A progress bar on a terminal, nothing otherwise (logs say what happens).
pub fn progress(len: u64, what: &str) -> ProgressBar {
    if !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::with_draw_target(Some(len), ProgressDrawTarget::stderr());
    bar.set_style(
        ProgressStyle::with_template(&format!(
            "{{elapsed_precise}} [{{bar:30}}] {{pos}}/{{len}} {what} ({{per_sec}}, eta {{eta}})"
        ))
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> "),
    );
    bar
}

/// Reads one split; quality needs a held-out test split, which only IDX folders have.
pub fn open_split(dataset: &Path, split: Split, image: ImageShape) -> anyhow::Result<Dataset> {
    if dataset.is_dir() && !data::is_idx_dir(dataset) {
        bail!(
            "{}: the quality commands need a held-out test split, and image-folder data sets have none; use an IDX data set (train-/t10k-images-idx3-ubyte[.gz])",
            dataset.display()
        );
    }
    data::open(dataset, split, image)
        .with_context(|| format!("reading the {split:?} split of {}", dataset.display()))
}

/// Writes `value` as pretty JSON to `path` (atomically) and says so.
pub fn write_json<T: Serialize>(path: &Path, value: &T) -> anyhow::Result<()> {
    let json = serde_json::to_vec_pretty(value).context("serialising the report")?;
    write_atomic(path, &json).with_context(|| format!("writing {}", path.display()))?;
    println!("wrote {}", path.display());
    Ok(())
}
