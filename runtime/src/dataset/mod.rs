//! Writing generated samples as a labelled data set: PNG folders, IDX files or one grid picture,
//! always with a `manifest.json` that records how to regenerate them.
//!
//! The stage in files: [`draw`] decides which noise and label each sample gets and which are
//! kept (truncation, the classifier filter), [`writers`] stores them in a format, [`manifest`]
//! records what was written, and [`idx`] reads IDX files back. [`write_dataset`] ties them
//! together: the whole output folder is built under a temporary name beside its destination and
//! renamed into place at the end, so a data set folder is either complete (with its manifest)
//! or absent.

pub mod draw;
pub mod idx;
pub mod manifest;
pub mod writers;

use std::path::PathBuf;

pub use draw::{DEFAULT_MAX_DRAWS, Drawn, FilterRequest, Sampling, draw_samples};
pub use idx::{IdxArray, MAX_IDX_BYTES, read_idx};
pub use manifest::{
    FilterRecord, MANIFEST, MANIFEST_VERSION, MAX_MANIFEST_BYTES, Manifest, NoiseRecord,
    PIXEL_MAPPING, check_replaceable,
};
pub use writers::{MAX_GRID_IMAGES, MAX_IDX_IMAGES, OutputFormat, class_folder};

use crate::engine::tract::{Generator, Labels, image_u8};
use crate::error::{Error, Result};
use crate::fsutil::StagedDir;
use crate::noise;

/// What to generate and where.
#[derive(Clone, Debug)]
pub struct DatasetRequest {
    /// Number of images.
    pub count: usize,
    /// A single class, or `None` for all classes in turn (conditional) / no labels.
    pub class: Option<usize>,
    /// Noise seed.
    pub seed: u64,
    /// Storage format.
    pub format: OutputFormat,
    /// Output folder.
    pub out: PathBuf,
    /// Replace `out` if it exists and is not empty.
    pub force: bool,
    /// Noise truncation and the classifier filter (default: neither).
    pub sampling: Sampling,
}

/// Generates `request.count` images with `generator` and writes them, with a manifest, to
/// `request.out`. `progress` is called with the number of images done after each batch.
pub fn write_dataset(
    generator: &Generator,
    model_label: &str,
    request: &DatasetRequest,
    progress: impl FnMut(usize),
) -> Result<Manifest> {
    if request.count == 0 {
        return Err(Error::ZeroCount);
    }
    let info = generator.info();
    let labels = generator.labels_for(request.class)?;
    request.format.check_count(&request.out, request.count)?;
    if let Some(psi) = request.sampling.truncation
        && !(psi.is_finite() && psi >= noise::MIN_TRUNCATION)
    {
        return Err(Error::Input {
            reason: format!(
                "--truncation {psi} is out of range: use a number of at least {}",
                noise::MIN_TRUNCATION
            ),
        });
    }
    let filter = match &request.sampling.filter {
        Some(f) => Some(draw::Filter::load(f, generator)?),
        None => None,
    };
    if request.force {
        check_replaceable(&request.out)?;
    }
    let staged = StagedDir::new(&request.out, request.force).map_err(|e| Error::Output {
        path: request.out.clone(),
        problem: e.to_string(),
    })?;
    let root = staged.path().to_path_buf();
    let (mut writer, layout) = writers::Writer::open(
        request.format,
        &root,
        &request.out,
        info,
        &labels,
        request.count,
    )?;

    let mut counts = vec![0usize; info.classes.len()];
    let mut fingerprint = noise::Fingerprint::new();
    let shape = info.image;
    let plan = draw::Plan {
        labels: &labels,
        count: request.count,
        seed: request.seed,
        sampling: &request.sampling,
        filter: filter.as_ref(),
    };
    let filter_record = draw::draw(
        generator,
        &plan,
        |kept| {
            fingerprint.update(kept.z);
            if let Some(count) = kept.label.and_then(|l| counts.get_mut(l)) {
                *count += 1;
            }
            writer.write(kept.index, kept.label, &image_u8(kept.pixels, shape))
        },
        progress,
    )?;
    writer.finish(&labels)?;

    let manifest = Manifest {
        noise: NoiseRecord {
            algorithm: noise::NOISE_ALGORITHM.to_string(),
            fingerprint: format!("{:016x}", fingerprint.finish()),
            truncation: request.sampling.truncation,
        },
        filter: filter_record,
        folders: layout.folders,
        files: layout.files,
        counts,
        ..manifest_base(generator, model_label, request, &labels)
    };
    let manifest_path = root.join(MANIFEST);
    let json = serde_json::to_vec_pretty(&manifest).map_err(|e| Error::Output {
        path: manifest_path.clone(),
        problem: format!("cannot serialise the manifest: {e}"),
    })?;
    writers::write_synced(&manifest_path, &json)?;
    staged.commit().map_err(|e| Error::Output {
        path: request.out.clone(),
        problem: format!("cannot move the finished data set into place: {e}"),
    })?;
    Ok(manifest)
}

/// The manifest fields known before generating (the noise record, filter record, counts and
/// files are filled in after).
fn manifest_base(
    generator: &Generator,
    model_label: &str,
    request: &DatasetRequest,
    labels: &Labels,
) -> Manifest {
    let info = generator.info();
    Manifest {
        manifest_version: MANIFEST_VERSION,
        generator: format!("gantry-runtime {}", env!("CARGO_PKG_VERSION")),
        model: model_label.to_string(),
        model_info: info.clone(),
        precision: Some(generator.precision()),
        seed: request.seed,
        count: request.count,
        format: request.format.name().to_string(),
        gzip: matches!(request.format, OutputFormat::Idx { gzip: true }),
        selection: match labels {
            Labels::None => "unconditional",
            Labels::Balanced { .. } => "balanced",
            Labels::Fixed(_) => "class",
        }
        .to_string(),
        class: request.class,
        classes: info.classes.clone(),
        counts: Vec::new(),
        image_shape: info.image,
        pixel_mapping: PIXEL_MAPPING.to_string(),
        noise: NoiseRecord {
            algorithm: noise::NOISE_ALGORITHM.to_string(),
            fingerprint: String::new(),
            truncation: None,
        },
        filter: None,
        folders: Vec::new(),
        files: Vec::new(),
    }
}
