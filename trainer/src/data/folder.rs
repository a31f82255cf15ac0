//! Reader for a folder of labelled images: one sub-folder per class, PNG or JPEG files
//! of any size, converted to the model's channel count and image size.
//!
//! This is how users bring their own small data sets to augment.

use std::path::{Path, PathBuf};

use image::imageops::FilterType;

use super::{DataError, Dataset, ImageShape};

/// File extensions read as images (compared case-insensitively).
const IMAGE_EXTENSIONS: [&str; 3] = ["png", "jpg", "jpeg"];

/// Reads every image under `root/<class>/`, classes sorted by folder name.
///
/// Each image is converted to `shape.channels` (1 = grey, 3 = RGB), resized to
/// `shape.height × shape.width` and mapped to [-1, 1].
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
    let mut class_dirs: Vec<PathBuf> = read_dir(root)?.into_iter().filter(|p| p.is_dir()).collect();
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
        let mut files: Vec<PathBuf> = read_dir(dir)?
            .into_iter()
            .filter(|p| p.is_file() && has_image_extension(p))
            .collect();
        files.sort();
        if files.is_empty() {
            return Err(DataError::Invalid {
                path: dir.clone(),
                problem: "class folder holds no PNG or JPEG image".into(),
            });
        }
        for file in files {
            pixels.extend(read_image(&file, shape)?);
            labels.push(label);
        }
        class_names.push(
            dir.file_name()
                .map_or_else(|| label.to_string(), |n| n.to_string_lossy().into_owned()),
        );
    }
    Dataset::new(pixels, labels, shape, class_names)
}

fn read_dir(dir: &Path) -> Result<Vec<PathBuf>, DataError> {
    let io = |source| DataError::Io {
        path: dir.to_path_buf(),
        source,
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

/// One image as planar (channel-major) pixels in [-1, 1].
fn read_image(path: &Path, shape: ImageShape) -> Result<Vec<f32>, DataError> {
    let decoded = image::ImageReader::open(path)
        .map_err(|source| DataError::Io {
            path: path.to_path_buf(),
            source,
        })?
        .with_guessed_format()
        .map_err(|source| DataError::Io {
            path: path.to_path_buf(),
            source,
        })?
        .decode()
        .map_err(|e| DataError::Invalid {
            path: path.to_path_buf(),
            problem: format!("unreadable image: {e}"),
        })?;
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
