//! Regenerates the committed deterministic test blob, `firmware/assets/test-mlp-cond.gtfw`
//! (the conditional stand-in generator of `firmware::testmodel`).
//!
//! `cargo run --release -p firmware --example make_test_blob [-- OUT]`

use std::fs;
use std::path::PathBuf;

use anyhow::{Context, Result};

fn main() -> Result<()> {
    let out = std::env::args_os().nth(1).map_or_else(
        || PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("assets/test-mlp-cond.gtfw"),
        PathBuf::from,
    );
    let blob = firmware::testmodel::conditional_blob().context("quantizing the test model")?;
    let tmp = out.with_extension("gtfw.tmp");
    fs::write(&tmp, &blob).with_context(|| format!("writing {}", tmp.display()))?;
    fs::rename(&tmp, &out).with_context(|| format!("renaming to {}", out.display()))?;
    println!("wrote {} ({} bytes)", out.display(), blob.len());
    Ok(())
}
