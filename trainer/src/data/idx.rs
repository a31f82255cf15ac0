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

    let images = read_file(&images_path)?;
    let (dims, pixels) = decode(&images_path, &images, IdxKind::Images)?;
    let (count, height, width) = (dims[0], dims[1], dims[2]);
    let labels = read_file(&labels_path)?;
    let (label_dims, labels) = decode(&labels_path, &labels, IdxKind::Labels)?;
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

/// The largest IDX payload read (4 GiB of bytes; 16 GiB once converted to f32 pixels).
/// A header promising more is refused before anything is allocated.
pub const MAX_PAYLOAD_BYTES: u64 = 1 << 32;

/// What an IDX file holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IdxKind {
    /// Unsigned bytes in 3 dimensions: count × height × width.
    Images,
    /// Unsigned bytes in 1 dimension: count.
    Labels,
}

impl IdxKind {
    fn magic(self) -> u32 {
        match self {
            IdxKind::Images => IMAGES_MAGIC,
            IdxKind::Labels => LABELS_MAGIC,
        }
    }

    fn rank(self) -> usize {
        match self {
            IdxKind::Images => 3,
            IdxKind::Labels => 1,
        }
    }
}

/// Reads a regular file of at most [`MAX_PAYLOAD_BYTES`] plus a header (a FIFO or a
/// device such as /dev/zero is refused instead of read forever).
fn read_file(path: &Path) -> Result<Vec<u8>, DataError> {
    crate::fsutil::read_regular(path, MAX_PAYLOAD_BYTES + 64).map_err(|cause| DataError::Io {
        path: path.to_path_buf(),
        cause,
    })
}

/// Decodes an IDX buffer (gzipped or not) of `kind`, read from `path` (named in errors):
/// its dimensions and payload.
///
/// The header is checked before the payload is decompressed, and decompression stops at
/// the size the header promises, so a gzip bomb costs no more memory than an honest file
/// of the same dimensions.
pub fn decode(
    path: &Path,
    bytes: &[u8],
    kind: IdxKind,
) -> Result<(Vec<usize>, Vec<u8>), DataError> {
    let invalid = |problem: String| DataError::Invalid {
        path: path.to_path_buf(),
        problem,
    };
    if bytes.starts_with(&[0x1f, 0x8b]) {
        let mut stream = GzDecoder::new(bytes);
        let gz_error =
            |e: std::io::Error| invalid(format!("corrupt or truncated gzip stream: {e}"));
        let mut header = vec![0u8; header_len(kind)];
        let mut filled = 0;
        while filled < header.len() {
            match stream.read(&mut header[filled..]).map_err(gz_error)? {
                0 => break,
                n => filled += n,
            }
        }
        header.truncate(filled);
        let (dims, expected) = parse_header(path, &header, kind)?;
        let mut payload = Vec::new();
        // One byte more than promised tells a padded file from an exact one.
        (&mut stream)
            .take(expected + 1)
            .read_to_end(&mut payload)
            .map_err(gz_error)?;
        check_payload(path, &dims, expected, payload.len())?;
        Ok((dims, payload))
    } else {
        let (dims, expected) = parse_header(path, bytes, kind)?;
        let payload = &bytes[header_len(kind)..];
        check_payload(path, &dims, expected, payload.len())?;
        Ok((dims, payload.to_vec()))
    }
}

fn header_len(kind: IdxKind) -> usize {
    4 + 4 * kind.rank()
}

/// Checks the magic number and dimensions at the start of `bytes`; returns the
/// dimensions and the payload size they promise.
fn parse_header(path: &Path, bytes: &[u8], kind: IdxKind) -> Result<(Vec<usize>, u64), DataError> {
    let invalid = |problem: String| DataError::Invalid {
        path: path.to_path_buf(),
        problem,
    };
    let (magic, rank, header_len) = (kind.magic(), kind.rank(), header_len(kind));
    let Some(header) = bytes.get(..header_len) else {
        return Err(invalid(format!(
            "file is {} bytes, shorter than the {header_len}-byte IDX header",
            bytes.len()
        )));
    };
    let words: Vec<u32> = header
        .chunks_exact(4)
        .map(|w| u32::from_be_bytes([w[0], w[1], w[2], w[3]]))
        .collect();
    if words[0] != magic {
        return Err(invalid(format!(
            "wrong magic number {:#010x}, expected {magic:#010x} (an IDX file of {rank}-d unsigned bytes)",
            words[0]
        )));
    }
    let dims: Vec<usize> = words[1..].iter().map(|&d| d as usize).collect();
    let expected = words[1..]
        .iter()
        .try_fold(1u64, |acc, &d| acc.checked_mul(u64::from(d)))
        .filter(|&n| n <= MAX_PAYLOAD_BYTES)
        .ok_or_else(|| {
            invalid(format!(
                "header dimensions {dims:?} promise more than the {MAX_PAYLOAD_BYTES} bytes Gantry reads"
            ))
        })?;
    Ok((dims, expected))
}

fn check_payload(
    path: &Path,
    dims: &[usize],
    expected: u64,
    found: usize,
) -> Result<(), DataError> {
    if found as u64 == expected {
        return Ok(());
    }
    let held = if found as u64 > expected {
        "more".to_string()
    } else {
        found.to_string()
    };
    Err(DataError::Invalid {
        path: path.to_path_buf(),
        problem: format!(
            "header promises {expected} bytes of data for dimensions {dims:?}, the file holds {held} (truncated or padded)"
        ),
    })
}
