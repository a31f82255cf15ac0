//! Reader for the IDX format of MNIST and Fashion-MNIST (`*-idx3-ubyte` images,
//! `*-idx1-ubyte` labels), gzipped or not.
//!
//! Hand-written because the format is 20 lines of spec and the crates that read it
//! either download data at run time or stop at MNIST's fixed file names.

use std::io::Read;
use std::path::{Path, PathBuf};

use flate2::read::GzDecoder;

use super::{DataError, Dataset, ImageShape};

/// Magic number of an IDX file holding unsigned bytes in 3 dimensions (images).
const IMAGES_MAGIC: u32 = 0x0000_0803;
/// Magic number of an IDX file holding unsigned bytes in 1 dimension (labels).
const LABELS_MAGIC: u32 = 0x0000_0801;

/// The split of an IDX data set to read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Split {
    /// `train-images-idx3-ubyte[.gz]` and `train-labels-idx1-ubyte[.gz]`.
    Train,
    /// `t10k-images-idx3-ubyte[.gz]` and `t10k-labels-idx1-ubyte[.gz]`.
    Test,
}

impl Split {
    fn prefix(self) -> &'static str {
        match self {
            Split::Train => "train",
            Split::Test => "t10k",
        }
    }
}

/// True when `dir` holds the IDX image file of the training split.
pub fn is_idx_dir(dir: &Path) -> bool {
    find_file(dir, "train-images-idx3-ubyte").is_some()
}

/// Reads one split of an IDX data set from `dir`, pixels mapped to [-1, 1].
pub fn load_idx(dir: &Path, split: Split, class_names: Vec<String>) -> Result<Dataset, DataError> {
    let images_name = format!("{}-images-idx3-ubyte", split.prefix());
    let labels_name = format!("{}-labels-idx1-ubyte", split.prefix());
    let images_path = find_file(dir, &images_name).ok_or_else(|| DataError::Missing {
        path: dir.join(&images_name),
        what: "IDX image file (also looked for a .gz)",
    })?;
    let labels_path = find_file(dir, &labels_name).ok_or_else(|| DataError::Missing {
        path: dir.join(&labels_name),
        what: "IDX label file (also looked for a .gz)",
    })?;

    let images = read_maybe_gz(&images_path)?;
    let (dims, pixels) = parse_idx(&images_path, &images, IMAGES_MAGIC, 3)?;
    let (count, height, width) = (dims[0], dims[1], dims[2]);
    let labels = read_maybe_gz(&labels_path)?;
    let (label_dims, labels) = parse_idx(&labels_path, &labels, LABELS_MAGIC, 1)?;
    if label_dims[0] != count {
        return Err(DataError::CountMismatch {
            images: images_path,
            image_count: count,
            labels: labels_path,
            label_count: label_dims[0],
        });
    }
    let class_count = class_names.len();
    if let Some((index, &label)) = labels
        .iter()
        .enumerate()
        .find(|(_, l)| usize::from(**l) >= class_count)
    {
        return Err(DataError::Invalid {
            path: labels_path,
            problem: format!(
                "label {label} at index {index} is not below the class count {class_count}"
            ),
        });
    }
    let shape = ImageShape {
        channels: 1,
        height,
        width,
    };
    let pixels = pixels.iter().map(|&p| f32::from(p) / 127.5 - 1.0).collect();
    Dataset::new(
        pixels,
        labels.iter().map(|&l| usize::from(l)).collect(),
        shape,
        class_names,
    )
}

/// `name` or `name.gz` inside `dir`.
fn find_file(dir: &Path, name: &str) -> Option<PathBuf> {
    [dir.join(name), dir.join(format!("{name}.gz"))]
        .into_iter()
        .find(|p| p.is_file())
}

fn read_maybe_gz(path: &Path) -> Result<Vec<u8>, DataError> {
    let raw = std::fs::read(path).map_err(|source| DataError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    if raw.starts_with(&[0x1f, 0x8b]) {
        let mut out = Vec::new();
        GzDecoder::new(raw.as_slice())
            .read_to_end(&mut out)
            .map_err(|e| DataError::Invalid {
                path: path.to_path_buf(),
                problem: format!("corrupt or truncated gzip stream: {e}"),
            })?;
        Ok(out)
    } else {
        Ok(raw)
    }
}

/// Checks the header of an IDX buffer and returns its dimensions and payload.
fn parse_idx<'a>(
    path: &Path,
    bytes: &'a [u8],
    magic: u32,
    rank: usize,
) -> Result<(Vec<usize>, &'a [u8]), DataError> {
    let invalid = |problem: String| DataError::Invalid {
        path: path.to_path_buf(),
        problem,
    };
    let header_len = 4 + 4 * rank;
    if bytes.len() < header_len {
        return Err(invalid(format!(
            "file is {} bytes, shorter than the {header_len}-byte IDX header",
            bytes.len()
        )));
    }
    let word = |i: usize| u32::from_be_bytes([bytes[i], bytes[i + 1], bytes[i + 2], bytes[i + 3]]);
    let found = word(0);
    if found != magic {
        return Err(invalid(format!(
            "wrong magic number {found:#010x}, expected {magic:#010x} (an IDX file of {rank}-d unsigned bytes)"
        )));
    }
    let dims: Vec<usize> = (0..rank).map(|d| word(4 + 4 * d) as usize).collect();
    let expected = dims.iter().product::<usize>();
    let payload = &bytes[header_len..];
    if payload.len() != expected {
        return Err(invalid(format!(
            "header promises {expected} bytes of data for dimensions {dims:?}, the file holds {} (truncated or padded)",
            payload.len()
        )));
    }
    Ok((dims, payload))
}
