//! `manifest.json`: what a data set is and how to regenerate it, and the check that makes
//! `--force` replace only folders that hold one.

use std::path::Path;

use crate::error::{Error, Result};
use crate::onnx::metadata::ModelInfo;
use crate::onnx::spec::ImageShape;

/// Name of the manifest written beside the data.
pub const MANIFEST: &str = "manifest.json";
/// The largest `manifest.json` read back (64 MiB; a manifest is a few kilobytes).
pub const MAX_MANIFEST_BYTES: u64 = 64 << 20;
/// Revision of the manifest layout.
pub const MANIFEST_VERSION: u32 = 1;
/// How float pixels become bytes, as recorded in manifests.
pub const PIXEL_MAPPING: &str = "u8 = round((clamp(v, -1, 1) + 1) * 127.5)";

/// Noise provenance in a manifest.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct NoiseRecord {
    /// [`crate::noise::NOISE_ALGORITHM`].
    pub algorithm: String,
    /// [`crate::noise::fingerprint`] of the `z` of the written images, in their order, as 16
    /// hex digits.
    pub fingerprint: String,
    /// `--truncation ψ`: every `|z_i| <= ψ`, values beyond drawn again from the same sample's
    /// stream (absent: no truncation).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub truncation: Option<f32>,
}

/// What the classifier filter did, per class (index = label).
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct FilterRecord {
    /// The classifier path as given.
    pub classifier: String,
    /// A sample is kept when the classifier gives its requested class at least this
    /// probability.
    pub min_confidence: f32,
    /// The most candidates drawn per requested image of a class before giving up.
    pub max_draws_per_image: usize,
    /// Candidates generated per class.
    pub drawn: Vec<usize>,
    /// Candidates kept per class.
    pub accepted: Vec<usize>,
    /// `accepted / drawn` per class (0 where nothing was drawn).
    pub acceptance_rate: Vec<f64>,
}

/// `manifest.json`: everything needed to know what a data set is and to regenerate it.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Manifest {
    /// [`MANIFEST_VERSION`].
    pub manifest_version: u32,
    /// The program that wrote it, e.g. `gantry-runtime 0.1.0`.
    pub generator: String,
    /// The model path as given.
    pub model: String,
    /// The model's metadata.
    pub model_info: ModelInfo,
    /// The arithmetic the images were generated with: `f32` or `int8` (absent in manifests
    /// written before int8 existed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub precision: Option<crate::engine::tract::Precision>,
    /// Noise seed.
    pub seed: u64,
    /// Number of images.
    pub count: usize,
    /// `png`, `idx` or `grid`.
    pub format: String,
    /// Whether IDX files are gzipped.
    pub gzip: bool,
    /// `unconditional`, `balanced` (sample `i` has class `i % classes`; with a filter, each
    /// class gets its share in the order samples were accepted) or `class`.
    pub selection: String,
    /// The class when `selection` is `class`.
    pub class: Option<usize>,
    /// Class names, index = label.
    pub classes: Vec<String>,
    /// Images per class, index = label (empty for unconditional models).
    pub counts: Vec<usize>,
    /// Shape of each image (channels first).
    pub image_shape: ImageShape,
    /// [`PIXEL_MAPPING`].
    pub pixel_mapping: String,
    /// Noise algorithm, fingerprint and truncation.
    pub noise: NoiseRecord,
    /// `--filter`: the classifier, threshold and acceptance per class (absent: no filter).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filter: Option<FilterRecord>,
    /// PNG: one folder per class (index = label), or `["samples"]`.
    pub folders: Vec<String>,
    /// IDX and grid: the data files.
    pub files: Vec<String>,
}

impl Manifest {
    /// Reads a manifest file.
    pub fn read(path: &Path) -> Result<Manifest> {
        let bytes =
            crate::fsutil::read_regular_file(path, MAX_MANIFEST_BYTES).map_err(|source| {
                Error::Read {
                    path: path.to_path_buf(),
                    error: source,
                }
            })?;
        serde_json::from_slice(&bytes).map_err(|e| Error::Format {
            path: path.to_path_buf(),
            problem: format!("invalid manifest: {e}"),
        })
    }
}

/// Whether `out` may be replaced with `--force`: only a data set folder Gantry wrote (it holds
/// a `manifest.json` that reads as a Gantry [`Manifest`]), or an empty folder. Anything else
/// (a user's folder, a file) is refused, so `--force` can never delete someone's work.
pub fn check_replaceable(out: &Path) -> Result<()> {
    let refuse = |why: &str| Error::Output {
        path: out.to_path_buf(),
        problem: format!(
            "{why}; --force replaces only a data set folder written by `runtime generate` (one with its manifest.json): choose another --out, or remove it yourself"
        ),
    };
    let meta = match std::fs::symlink_metadata(out) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => {
            return Err(Error::Read {
                path: out.to_path_buf(),
                error: e,
            });
        }
    };
    if !meta.is_dir() {
        return Err(refuse("is not a folder"));
    }
    let empty = std::fs::read_dir(out)
        .map_err(|e| Error::Read {
            path: out.to_path_buf(),
            error: e,
        })?
        .next()
        .is_none();
    if empty {
        return Ok(());
    }
    let manifest = out.join(MANIFEST);
    match Manifest::read(&manifest) {
        Ok(m) if m.manifest_version == MANIFEST_VERSION && m.generator.starts_with("gantry-") => {
            Ok(())
        }
        Ok(_) => Err(refuse("holds a manifest.json that Gantry did not write")),
        Err(_) if !manifest.exists() => Err(refuse("holds no manifest.json")),
        Err(_) => Err(refuse(
            "holds a manifest.json that is not a Gantry manifest",
        )),
    }
}
