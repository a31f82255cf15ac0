//! Reader for a folder of labelled images: one sub-folder per class, PNG or JPEG files
//! of any size, converted to the model's channel count and image size.
//!
//! This is how users bring their own small data sets to augment.

use std::path::{Path, PathBuf};

use image::imageops::FilterType;
use tracing::warn;

use super::{DataError, Dataset, ImageShape};

/// File extensions read as images (compared case-insensitively).
const IMAGE_EXTENSIONS: [&str; 3] = ["png", "jpg", "jpeg"];

/// The largest image file read (256 MiB) and the most memory its decoding may take.
pub const MAX_IMAGE_BYTES: u64 = 256 << 20;
/// The largest width or height of an image read.
pub const MAX_IMAGE_SIDE: u32 = 16_384;

/// Reads every image under `root/<class>/`, classes sorted by folder name.
///
/// Each image is converted to `shape.channels` (1 = grey, 3 = RGB), resized to
/// `shape.height × shape.width` and mapped to [-1, 1]. Hidden entries (`.name`, such as
/// Jupyter's `.ipynb_checkpoints/` or macOS's `.DS_Store`) and `__MACOSX/` are not data;
/// other files that are not PNG or JPEG are skipped and named in one warning.
pub fn load_folder(root: &Path, shape: ImageShape) -> Result<Dataset, DataError> {
    if !matches!(shape.channels, 1 | 3) {
        return Err(DataError::Invalid {
            path: root.to_path_buf(),
            problem: format!(
                "{} channels requested; image folders give 1 (grey) or 3 (RGB)",
                shape.channels
            ),
        });
    }
    check_size(root, shape)?;
    let mut skipped = Vec::new();
    let mut class_dirs = Vec::new();
    for entry in read_dir(root)? {
        if is_ignored(&entry) {
            continue;
        }
        if entry.is_dir() {
            class_dirs.push(entry);
        } else {
            skipped.push(entry);
        }
    }
    class_dirs.sort();
    if class_dirs.is_empty() {
        return Err(DataError::Invalid {
            path: root.to_path_buf(),
            problem: "no class sub-folders found (expected one folder of images per class)".into(),
        });
    }

    let mut pixels = Vec::new();
    let mut labels = Vec::new();
    let mut class_names = Vec::new();
    for (label, dir) in class_dirs.iter().enumerate() {
        let mut files = Vec::new();
        for entry in read_dir(dir)? {
            if is_ignored(&entry) {
                continue;
            }
            if entry.is_file() && has_image_extension(&entry) {
                files.push(entry);
            } else {
                skipped.push(entry);
            }
        }
        files.sort();
        if files.is_empty() {
            return Err(DataError::Invalid {
                path: dir.clone(),
                problem: "class folder holds no PNG or JPEG image".into(),
            });
        }
        for file in files {
            let bytes = crate::fsutil::read_regular(&file, MAX_IMAGE_BYTES).map_err(|cause| {
                DataError::Io {
                    path: file.clone(),
                    cause,
                }
            })?;
            pixels.extend(decode_image(&file, &bytes, shape)?);
            labels.push(label);
        }
        class_names.push(
            dir.file_name()
                .map_or_else(|| label.to_string(), |n| n.to_string_lossy().into_owned()),
        );
    }
    if !skipped.is_empty() {
        warn!("{}", skipped_message(root, &skipped));
    }
    Dataset::new(pixels, labels, shape, class_names)
}

/// One line naming the skipped entries relative to `root` (the first five, then a count).
fn skipped_message(root: &Path, skipped: &[PathBuf]) -> String {
    let mut names: Vec<String> = skipped
        .iter()
        .map(|p| p.strip_prefix(root).unwrap_or(p).display().to_string())
        .collect();
    names.sort();
    let shown = names.len().min(5);
    let more = names.len() - shown;
    format!(
        "{}: skipped {} {} not a PNG or JPEG image: {}{}",
        root.display(),
        names.len(),
        if names.len() == 1 {
            "entry that is"
        } else {
            "entries that are"
        },
        names[..shown].join(", "),
        if more > 0 {
            format!(" and {more} more")
        } else {
            String::new()
        }
    )
}

/// Hidden entries and macOS archive leftovers: never classes, never examples.
fn is_ignored(path: &Path) -> bool {
    path.file_name()
        .map(|n| n.to_string_lossy())
        .is_none_or(|n| n.starts_with('.') || n == "__MACOSX")
}

/// Refuses image shapes whose pixel buffers would not fit in memory.
fn check_size(root: &Path, shape: ImageShape) -> Result<(), DataError> {
    let side = MAX_IMAGE_SIDE as usize;
    if shape.height == 0 || shape.width == 0 || shape.height > side || shape.width > side {
        return Err(DataError::Invalid {
            path: root.to_path_buf(),
            problem: format!(
                "image size {}x{} is not between 1 and {side} pixels on each side",
                shape.height, shape.width
            ),
        });
    }
    Ok(())
}

fn read_dir(dir: &Path) -> Result<Vec<PathBuf>, DataError> {
    let io = |cause| DataError::Io {
        path: dir.to_path_buf(),
        cause,
    };
    std::fs::read_dir(dir)
        .map_err(io)?
        .map(|entry| entry.map(|e| e.path()).map_err(io))
        .collect()
}

fn has_image_extension(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| IMAGE_EXTENSIONS.iter().any(|x| e.eq_ignore_ascii_case(x)))
}

/// Decodes one PNG or JPEG file's `bytes` (read from `path`, named in errors) into
/// planar (channel-major) pixels in [-1, 1] of `shape`.
///
/// Decoding is bounded: images wider or taller than [`MAX_IMAGE_SIDE`] or needing more
/// than [`MAX_IMAGE_BYTES`] are refused before their pixels are allocated.
pub fn decode_image(path: &Path, bytes: &[u8], shape: ImageShape) -> Result<Vec<f32>, DataError> {
    let invalid = |problem: String| DataError::Invalid {
        path: path.to_path_buf(),
        problem,
    };
    if !matches!(shape.channels, 1 | 3) {
        return Err(invalid(format!(
            "{} channels requested; images give 1 (grey) or 3 (RGB)",
            shape.channels
        )));
    }
    check_size(path, shape)?;
    let mut limits = image::Limits::default();
    limits.max_image_width = Some(MAX_IMAGE_SIDE);
    limits.max_image_height = Some(MAX_IMAGE_SIDE);
    limits.max_alloc = Some(MAX_IMAGE_BYTES);
    let mut reader = image::ImageReader::new(std::io::Cursor::new(bytes))
        .with_guessed_format()
        .map_err(|e| invalid(format!("unreadable image: {e}")))?;
    reader.limits(limits);
    let decoded = reader
        .decode()
        .map_err(|e| invalid(format!("unreadable image: {e}")))?;
    let (w, h) = (shape.width as u32, shape.height as u32);
    let to_unit = |v: u8| f32::from(v) / 127.5 - 1.0;
    if shape.channels == 1 {
        let grey = image::imageops::resize(&decoded.to_luma8(), w, h, FilterType::Triangle);
        Ok(grey.into_raw().into_iter().map(to_unit).collect())
    } else {
        let rgb = image::imageops::resize(&decoded.to_rgb8(), w, h, FilterType::Triangle);
        let plane = (w * h) as usize;
        let mut out = vec![0.0; 3 * plane];
        for (i, px) in rgb.pixels().enumerate() {
            for c in 0..3 {
                out[c * plane + i] = to_unit(px[c]);
            }
        }
        Ok(out)
    }
}
