//! What a Gantry ONNX file says about itself, stored in the model's `metadata_props`.
//!
//! A generator is only usable if the runtime knows its noise width, image shape and class names;
//! ONNX's `metadata_props` (string key/value pairs) carries them inside the `.onnx` file so a
//! model never travels without them. The key names are part of the file format
//! ([`keys::FORMAT_VERSION`] says which revision).

use std::collections::BTreeMap;

use tract_onnx::pb::StringStringEntryProto;

use crate::shape::{ImageShape, MAX_VALUES_PER_SAMPLE};

/// At its earlier path.
pub use crate::error::MetadataError;

/// Metadata key names. The [`RESERVED`](keys::RESERVED) ones are written by the runtime from the
/// spec; the others are recommended names for the trainer's extra metadata.
pub mod keys {
    /// Revision of this metadata layout; currently `"1"`.
    pub const FORMAT_VERSION: &str = "gantry.format_version";
    /// Length of the noise vector `z`, e.g. `"64"`.
    pub const Z_DIM: &str = "gantry.z_dim";
    /// Image shape as `"C,H,W"`, e.g. `"1,28,28"`.
    pub const IMAGE_SHAPE: &str = "gantry.image_shape";
    /// Class names as a JSON array of strings (`"[]"` for an unconditional model).
    pub const CLASSES: &str = "gantry.classes";
    /// Number of classes, e.g. `"10"` (`"0"` for an unconditional model).
    pub const NUM_CLASSES: &str = "gantry.num_classes";
    /// Range of the output pixels as `"low,high"`; always `"-1,1"` (tanh output).
    pub const PIXEL_RANGE: &str = "gantry.pixel_range";
    /// Keys the runtime writes itself; a spec's extra metadata may not use them.
    pub const RESERVED: [&str; 6] = [
        FORMAT_VERSION,
        Z_DIM,
        IMAGE_SHAPE,
        CLASSES,
        NUM_CLASSES,
        PIXEL_RANGE,
    ];

    /// What the model is, for models that are not generators: `"classifier"`
    /// (`crate::onnx::classifier`). Generators do not write it; a file with [`Z_DIM`] and no
    /// kind is a generator.
    pub const KIND: &str = "gantry.kind";

    /// Recommended: the training data set, e.g. `"mnist-10k"`.
    pub const DATASET: &str = "gantry.dataset";
    /// Recommended: the number of training steps.
    pub const STEPS: &str = "gantry.steps";
    /// Recommended: the run's training configuration as JSON.
    pub const CONFIG: &str = "gantry.config";
    /// Recommended: the run's last quality figures as JSON.
    pub const QUALITY: &str = "gantry.quality";
    /// Written by `runtime adopt` (and by in-memory adoption) on a generator from another
    /// framework: what was read from its graph, what the flags said and which adapter nodes
    /// were added, as JSON (`crate::onnx::adopt::Adoption`).
    pub const ADOPTED: &str = "gantry.adopted";
    /// Written by `runtime quantize`: the int8 scheme and its calibration, as JSON
    /// (`crate::onnx::quantization::QuantInfo`). Absent from f32 models.
    pub const QUANTIZATION: &str = "gantry.quantization";

    /// Whether `key` is written by the runtime itself.
    pub fn is_reserved(key: &str) -> bool {
        RESERVED.contains(&key)
    }
}

/// The metadata layout this runtime writes and reads.
pub const FORMAT_VERSION: u32 = 1;

/// The pixel range every Gantry generator produces.
pub const PIXEL_RANGE: [f32; 2] = [-1.0, 1.0];

/// A generator's self-description, parsed from its ONNX `metadata_props`.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ModelInfo {
    /// Metadata layout revision ([`FORMAT_VERSION`]).
    pub format_version: u32,
    /// Length of the noise vector `z`.
    pub z_dim: usize,
    /// Shape of one image.
    pub image: ImageShape,
    /// Class names; empty for an unconditional model.
    pub classes: Vec<String>,
    /// Output pixel range, `[low, high]`.
    pub pixel_range: [f32; 2],
    /// Every other metadata entry (dataset, steps, config, quality...).
    pub metadata: BTreeMap<String, String>,
}

pub(crate) fn problem(key: &str, problem: impl Into<String>) -> MetadataError {
    MetadataError {
        key: key.to_string(),
        problem: problem.into(),
    }
}

impl ModelInfo {
    /// Whether the model takes a class label.
    pub fn is_conditional(&self) -> bool {
        !self.classes.is_empty()
    }

    /// The `metadata_props` entries, reserved keys first.
    pub fn to_props(&self) -> Vec<StringStringEntryProto> {
        let classes =
            serde_json::to_string(&self.classes).expect("a list of strings always serialises");
        let reserved = [
            (keys::FORMAT_VERSION, self.format_version.to_string()),
            (keys::Z_DIM, self.z_dim.to_string()),
            (
                keys::IMAGE_SHAPE,
                format!(
                    "{},{},{}",
                    self.image.channels, self.image.height, self.image.width
                ),
            ),
            (keys::CLASSES, classes),
            (keys::NUM_CLASSES, self.classes.len().to_string()),
            (
                keys::PIXEL_RANGE,
                format!("{},{}", self.pixel_range[0], self.pixel_range[1]),
            ),
        ];
        reserved
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .chain(self.metadata.iter().map(|(k, v)| (k.clone(), v.clone())))
            .map(|(key, value)| StringStringEntryProto { key, value })
            .collect()
    }

    /// Parses `metadata_props`; every reserved key must be present and consistent.
    pub fn from_props(props: &[StringStringEntryProto]) -> Result<ModelInfo, MetadataError> {
        let mut map = entries(props)?;
        let format_version = format_version(&mut map)?;
        let (z_dim, image) = z_dim_and_image(&mut map)?;
        let classes = classes(&mut map)?;
        check_pixel_range(&mut map)?;
        Ok(ModelInfo {
            format_version,
            z_dim,
            image,
            classes,
            pixel_range: PIXEL_RANGE,
            metadata: map,
        })
    }
}

/// The entries of `metadata_props` by key; a key given twice is an error.
pub(crate) fn entries(
    props: &[StringStringEntryProto],
) -> Result<BTreeMap<String, String>, MetadataError> {
    let mut map = BTreeMap::new();
    for entry in props {
        if map.insert(entry.key.clone(), entry.value.clone()).is_some() {
            return Err(problem(&entry.key, "appears twice"));
        }
    }
    Ok(map)
}

/// Removes reserved `key` from `map` and returns its value; missing is an error.
pub(crate) fn take(map: &mut BTreeMap<String, String>, key: &str) -> Result<String, MetadataError> {
    map.remove(key).ok_or_else(|| {
        problem(
            key,
            "is missing: this ONNX file was not written by Gantry (`trainer export`)",
        )
    })
}

/// `v`, the value of `key`, as a positive integer.
fn positive(key: &str, v: &str) -> Result<usize, MetadataError> {
    v.trim()
        .parse::<usize>()
        .ok()
        .filter(|n| *n > 0)
        .ok_or_else(|| problem(key, format!("is {v:?}, expected a positive integer")))
}

/// [`keys::FORMAT_VERSION`], which must be the one this runtime reads.
fn format_version(map: &mut BTreeMap<String, String>) -> Result<u32, MetadataError> {
    let version = take(map, keys::FORMAT_VERSION)?;
    let format_version: u32 = version.trim().parse().map_err(|_| {
        problem(
            keys::FORMAT_VERSION,
            format!("is {version:?}, expected an integer"),
        )
    })?;
    if format_version != FORMAT_VERSION {
        return Err(problem(
            keys::FORMAT_VERSION,
            format!(
                "is {format_version}, this runtime reads version {FORMAT_VERSION}; upgrade the runtime or re-export the model"
            ),
        ));
    }
    Ok(format_version)
}

/// The noise width ([`keys::Z_DIM`]) and the image shape ([`keys::IMAGE_SHAPE`]), both within
/// [`MAX_VALUES_PER_SAMPLE`].
fn z_dim_and_image(
    map: &mut BTreeMap<String, String>,
) -> Result<(usize, ImageShape), MetadataError> {
    let z_dim = positive(keys::Z_DIM, &take(map, keys::Z_DIM)?)?;
    let image = image_shape(map)?;
    if z_dim > MAX_VALUES_PER_SAMPLE {
        return Err(problem(
            keys::Z_DIM,
            format!("is {z_dim}, more than the limit of {MAX_VALUES_PER_SAMPLE}"),
        ));
    }
    Ok((z_dim, image))
}

/// The image shape ([`keys::IMAGE_SHAPE`], `"C,H,W"`), within [`MAX_VALUES_PER_SAMPLE`].
pub(crate) fn image_shape(map: &mut BTreeMap<String, String>) -> Result<ImageShape, MetadataError> {
    let shape = take(map, keys::IMAGE_SHAPE)?;
    let dims: Vec<usize> = shape
        .split(',')
        .map(|d| positive(keys::IMAGE_SHAPE, d))
        .collect::<Result<_, _>>()
        .map_err(|_| {
            problem(
                keys::IMAGE_SHAPE,
                format!("is {shape:?}, expected \"C,H,W\" like \"1,28,28\""),
            )
        })?;
    let [channels, height, width] = dims[..] else {
        return Err(problem(
            keys::IMAGE_SHAPE,
            format!("is {shape:?}, expected three numbers \"C,H,W\""),
        ));
    };
    let image = ImageShape {
        channels,
        height,
        width,
    };
    let limit = MAX_VALUES_PER_SAMPLE;
    if image.checked_numel().is_none_or(|n| n > limit) {
        return Err(problem(
            keys::IMAGE_SHAPE,
            format!("is {shape:?}: more than the limit of {limit} values per image"),
        ));
    }
    Ok(image)
}

/// The class names ([`keys::CLASSES`], a JSON array), as many as [`keys::NUM_CLASSES`] says.
pub(crate) fn classes(map: &mut BTreeMap<String, String>) -> Result<Vec<String>, MetadataError> {
    let classes_json = take(map, keys::CLASSES)?;
    let classes: Vec<String> = serde_json::from_str(&classes_json).map_err(|e| {
        problem(
            keys::CLASSES,
            format!("is not a JSON array of strings ({e})"),
        )
    })?;
    let num_classes = take(map, keys::NUM_CLASSES)?;
    if num_classes.trim() != classes.len().to_string() {
        return Err(problem(
            keys::NUM_CLASSES,
            format!(
                "is {num_classes:?} but `{}` lists {} names",
                keys::CLASSES,
                classes.len()
            ),
        ));
    }
    Ok(classes)
}

/// [`keys::PIXEL_RANGE`], which must be [`PIXEL_RANGE`].
pub(crate) fn check_pixel_range(map: &mut BTreeMap<String, String>) -> Result<(), MetadataError> {
    let range = take(map, keys::PIXEL_RANGE)?;
    let bounds: Vec<f32> = range
        .split(',')
        .filter_map(|v| v.trim().parse().ok())
        .collect();
    if bounds != PIXEL_RANGE {
        return Err(problem(
            keys::PIXEL_RANGE,
            format!("is {range:?}, expected \"-1,1\""),
        ));
    }
    Ok(())
}
