//! `preview`: render a firmware blob's samples as the three supported displays would show
//! them, and save one PNG per display.
//!
//! Exit codes: 0 success, 1 any error (bad blob, unwritable output folder), 2 bad
//! arguments.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::Parser;
use firmware::Model;
use firmware::preview::render_scenes;

/// Render a Gantry firmware blob on simulated displays (Gray8 128×128, SSD1306 128×64
/// BinaryColor with ordered dithering, ST7789 240×240 Rgb565) and save PNGs.
///
/// With the defaults it renders the committed test blob exactly as the golden images
/// under firmware/tests/golden/ were made: to regenerate them, run
/// `cargo run --release -p firmware --features preview --bin preview -- --out firmware/tests/golden`.
#[derive(Parser, Debug)]
#[command(version, about, long_about)]
struct Args {
    /// Blob to render, as written by `runtime export-firmware` (default: the committed
    /// deterministic test blob).
    #[arg(long)]
    blob: Option<PathBuf>,
    /// Seed of the first sample; sample i uses seed + i.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Enlarge each display pixel to N×N image pixels (1 = exact display size, as the
    /// golden images).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=16))]
    zoom: u32,
    /// Folder to write `<scene>.png` files into (created if missing).
    #[arg(long, default_value = "preview")]
    out: PathBuf,
}

static TEST_BLOB: &[u8] = include_bytes!("../../assets/test-mlp-cond.gtfw");

fn main() -> ExitCode {
    match try_main() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("preview: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Writes `bytes` to `path` through a temporary file and a rename.
fn write_atomic(path: &Path, image: &image::RgbImage) -> Result<()> {
    let tmp = path.with_extension("png.tmp");
    image
        .save_with_format(&tmp, image::ImageFormat::Png)
        .with_context(|| format!("writing {}", tmp.display()))?;
    fs::rename(&tmp, path)
        .with_context(|| format!("renaming {} to {}", tmp.display(), path.display()))
}

fn try_main() -> Result<()> {
    let args = Args::parse();
    let bytes = match &args.blob {
        Some(path) => fs::read(path).with_context(|| format!("reading blob {}", path.display()))?,
        None => TEST_BLOB.to_vec(),
    };
    let source = args.blob.as_ref().map_or_else(
        || "the committed test blob".to_owned(),
        |p| p.display().to_string(),
    );
    let model = Model::parse(&bytes).with_context(|| format!("parsing {source}"))?;
    let scenes = render_scenes(&model, args.seed, args.zoom)
        .with_context(|| format!("rendering {source}"))?;
    fs::create_dir_all(&args.out).with_context(|| format!("creating {}", args.out.display()))?;
    for scene in scenes {
        let path = args.out.join(format!("{}.png", scene.name));
        write_atomic(&path, &scene.image)?;
        println!("wrote {}", path.display());
    }
    Ok(())
}
