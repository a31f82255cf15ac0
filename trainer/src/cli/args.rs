//! Argument parsing shared by several subcommands: the value parsers that reject bad
//! numbers at the command line (exit code 2, clap's message) and the quality commands'
//! defaults.

use std::path::{Path, PathBuf};

use trainer::data::ImageShape;

/// The default data set of the quality commands (as `train`'s).
pub const DEFAULT_DATASET: &str = "data/mnist-10k";

/// `models/classifier-<data set folder name>.bpk`.
pub fn default_classifier_path(dataset: &Path) -> PathBuf {
    let name = dataset
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "dataset".into());
    PathBuf::from("models").join(format!("classifier-{name}.bpk"))
}

/// Parses a count of at least 1.
pub fn count(text: &str) -> Result<usize, String> {
    match text.trim().parse::<usize>() {
        Ok(n) if n >= 1 => Ok(n),
        Ok(_) => Err("must be at least 1".into()),
        Err(e) => Err(format!("{text:?} is not a whole number: {e}")),
    }
}

/// Parses a learning rate: a positive finite number.
pub fn learning_rate(text: &str) -> Result<f64, String> {
    match text.trim().parse::<f64>() {
        Ok(x) if x > 0.0 && x.is_finite() => Ok(x),
        Ok(x) => Err(format!("{x} is not a positive finite learning rate")),
        Err(e) => Err(format!("{text:?} is not a number: {e}")),
    }
}

/// Parses a decay or Adam beta: a number in [0, 1).
pub fn unit_fraction(text: &str) -> Result<f64, String> {
    match text.trim().parse::<f64>() {
        Ok(x) if (0.0..1.0).contains(&x) => Ok(x),
        Ok(x) => Err(format!("{x} is not in [0, 1)")),
        Err(e) => Err(format!("{text:?} is not a number: {e}")),
    }
}

/// Parses an Adam beta: a number in [0, 1).
pub fn beta(text: &str) -> Result<f32, String> {
    unit_fraction(text).map(|x| x as f32)
}

/// Parses an FID target: a positive finite number.
pub fn fid_target(text: &str) -> Result<f64, String> {
    match text.trim().parse::<f64>() {
        Ok(x) if x > 0.0 && x.is_finite() => Ok(x),
        Ok(x) => Err(format!("{x} is not a positive finite FID")),
        Err(e) => Err(format!("{text:?} is not a number: {e}")),
    }
}

/// Parses `C,H,W`.
pub fn parse_shape(text: &str) -> Result<ImageShape, String> {
    let parts: Vec<usize> = text
        .split(',')
        .map(|p| p.trim().parse::<usize>())
        .collect::<Result<_, _>>()
        .map_err(|e| format!("{text:?} is not C,H,W: {e}"))?;
    match parts[..] {
        [channels, height, width] if channels > 0 && height > 0 && width > 0 => Ok(ImageShape {
            channels,
            height,
            width,
        }),
        _ => Err(format!("{text:?} is not C,H,W with three positive numbers")),
    }
}
