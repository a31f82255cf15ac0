//! The storage formats of a data set: one PNG per image in class folders, MNIST-style IDX
//! files, or one grid picture. Each writer takes images one at a time, in order, as 8-bit
//! `[H, W, C]` bytes, so memory stays one batch whatever the count (the grid, a picture for
//! people, is held whole and capped at [`MAX_GRID_IMAGES`]).

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use image::ImageEncoder;

use crate::engine::tract::Labels;
use crate::error::{Error, Result};
use crate::onnx::metadata::ModelInfo;
use crate::onnx::spec::ImageShape;

/// The most images `--format grid` puts in its one picture (a grid is held in memory whole).
pub const MAX_GRID_IMAGES: usize = 10_000;
/// The most images of one IDX data set: its header stores the count as a 32-bit number.
pub const MAX_IDX_IMAGES: usize = u32::MAX as usize;

/// How a data set is stored.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OutputFormat {
    /// One PNG per image, in one folder per class (`samples/` for unconditional models).
    Png,
    /// `images-idx3-ubyte` (`idx4` for several channels, channels last) and
    /// `labels-idx1-ubyte`, gzipped (`.gz`) or not.
    Idx {
        /// Compress with gzip.
        gzip: bool,
    },
    /// One `grid.png` picture for people to look at.
    Grid,
}

impl OutputFormat {
    /// `png`, `idx` or `grid`.
    pub fn name(&self) -> &'static str {
        match self {
            OutputFormat::Png => "png",
            OutputFormat::Idx { .. } => "idx",
            OutputFormat::Grid => "grid",
        }
    }

    /// Refuses counts the format cannot store; `out` names the data set in the error.
    pub(crate) fn check_count(&self, out: &Path, count: usize) -> Result<()> {
        let problem = match self {
            OutputFormat::Idx { .. } if count > MAX_IDX_IMAGES => {
                format!("IDX files hold at most {MAX_IDX_IMAGES} images, not {count}")
            }
            OutputFormat::Grid if count > MAX_GRID_IMAGES => format!(
                "a grid picture holds at most {MAX_GRID_IMAGES} images, not {count}; use --format png or idx"
            ),
            _ => return Ok(()),
        };
        Err(Error::Output {
            path: out.to_path_buf(),
            problem,
        })
    }
}

/// Folder name for class `index`: the index, zero-padded so folders sort in label order, then
/// the name with anything but letters, digits, `-`, `.` replaced by `_` (e.g. `03_dress`,
/// `0_T-shirt_top`).
pub fn class_folder(index: usize, name: &str, classes: usize) -> String {
    let width = classes.saturating_sub(1).max(1).to_string().len();
    let clean: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '.' {
                c
            } else {
                '_'
            }
        })
        .collect();
    format!("{index:0width$}_{clean}")
}

pub(crate) fn write_err(path: &Path) -> impl FnOnce(std::io::Error) -> Error + '_ {
    move |source| Error::Write {
        path: path.to_path_buf(),
        error: source,
    }
}

/// Writes a whole file and flushes it to the disk.
pub(crate) fn write_synced(path: &Path, bytes: &[u8]) -> Result<()> {
    let mut file = File::create(path).map_err(write_err(path))?;
    file.write_all(bytes).map_err(write_err(path))?;
    file.sync_all().map_err(write_err(path))
}

fn png_color(path: &Path, channels: usize) -> Result<image::ExtendedColorType> {
    use image::ExtendedColorType::*;
    Ok(match channels {
        1 => L8,
        2 => La8,
        3 => Rgb8,
        4 => Rgba8,
        c => {
            return Err(Error::Output {
                path: path.to_path_buf(),
                problem: format!(
                    "PNG holds 1 to 4 channels, the model makes {c}; use --format idx"
                ),
            });
        }
    })
}

/// Encodes `[h, w, c]` bytes as PNG.
fn encode_png(
    path: &Path,
    bytes: &[u8],
    width: usize,
    height: usize,
    channels: usize,
) -> Result<Vec<u8>> {
    let color = png_color(path, channels)?;
    let mut out = Vec::new();
    image::codecs::png::PngEncoder::new(&mut out)
        .write_image(bytes, width as u32, height as u32, color)
        .map_err(|e| Error::Output {
            path: path.to_path_buf(),
            problem: format!("PNG encoding failed: {e}"),
        })?;
    Ok(out)
}

fn idx_header(path: &Path, dims: &[usize]) -> Result<Vec<u8>> {
    // IDX: two zero bytes, type 0x08 (unsigned byte), number of dimensions, then each size as a
    // big-endian u32.
    let mut h = vec![0, 0, 0x08, dims.len() as u8];
    for d in dims {
        let d = u32::try_from(*d).map_err(|_| Error::Output {
            path: path.to_path_buf(),
            problem: format!(
                "an IDX dimension holds at most {} entries, not {d}",
                u32::MAX
            ),
        })?;
        h.extend_from_slice(&d.to_be_bytes());
    }
    Ok(h)
}

/// A file written as a stream, gzipped or not.
enum Sink {
    Plain(BufWriter<File>),
    Gzip(flate2::write::GzEncoder<BufWriter<File>>),
}

impl Sink {
    fn create(path: &Path, gzip: bool) -> Result<Sink> {
        let file = BufWriter::new(File::create(path).map_err(write_err(path))?);
        Ok(if gzip {
            Sink::Gzip(flate2::write::GzEncoder::new(
                file,
                flate2::Compression::default(),
            ))
        } else {
            Sink::Plain(file)
        })
    }

    fn write(&mut self, path: &Path, bytes: &[u8]) -> Result<()> {
        match self {
            Sink::Plain(w) => w.write_all(bytes),
            Sink::Gzip(w) => w.write_all(bytes),
        }
        .map_err(write_err(path))
    }

    fn finish(self, path: &Path) -> Result<()> {
        let inner = match self {
            Sink::Plain(w) => w,
            Sink::Gzip(w) => w.finish().map_err(write_err(path))?,
        };
        let file = inner
            .into_inner()
            .map_err(|e| write_err(path)(e.into_error()))?;
        file.sync_all().map_err(write_err(path))
    }
}

/// A stream file and its path (for errors).
pub(crate) struct Stream {
    sink: Sink,
    path: PathBuf,
}

impl Stream {
    /// Creates `root/name` and writes the IDX header for `dims`.
    fn idx(root: &Path, name: &str, gzip: bool, dims: &[usize]) -> Result<Stream> {
        let path = root.join(name);
        let mut sink = Sink::create(&path, gzip)?;
        sink.write(&path, &idx_header(&path, dims)?)?;
        Ok(Stream { sink, path })
    }

    fn write(&mut self, bytes: &[u8]) -> Result<()> {
        self.sink.write(&self.path, bytes)
    }

    fn finish(self) -> Result<()> {
        self.sink.finish(&self.path)
    }
}

/// The format-specific part of writing a data set.
pub(crate) enum Writer {
    /// One PNG per image; `folders[label]` (or `folders[0]`), names zero-padded to `digits`.
    Png {
        folders: Vec<PathBuf>,
        digits: usize,
        shape: ImageShape,
    },
    /// The images file and, for conditional models, the labels file.
    Idx {
        images: Box<Stream>,
        labels: Option<Box<Stream>>,
    },
    /// Tiles kept for one picture.
    Grid {
        tiles: Vec<u8>,
        labels: Vec<Option<usize>>,
        path: PathBuf,
        shape: ImageShape,
    },
}

/// What a writer created, for the manifest.
#[derive(Default)]
pub(crate) struct Layout {
    /// PNG: class folders (index = label), or `["samples"]`.
    pub folders: Vec<String>,
    /// IDX and grid: the data files.
    pub files: Vec<String>,
}

impl Writer {
    /// Creates the folders or files of `format` in `root` for `count` images of `info`'s
    /// model, labelled as `labels` says; `out` names the data set in errors.
    pub(crate) fn open(
        format: OutputFormat,
        root: &Path,
        out: &Path,
        info: &ModelInfo,
        labels: &Labels,
        count: usize,
    ) -> Result<(Writer, Layout)> {
        let shape = info.image;
        match format {
            OutputFormat::Png => Writer::open_png(root, out, info, labels, count),
            OutputFormat::Idx { gzip } => Writer::open_idx(root, out, info, count, gzip),
            OutputFormat::Grid => {
                png_color(out, shape.channels)?;
                let writer = Writer::Grid {
                    tiles: Vec::with_capacity(count.saturating_mul(shape.numel())),
                    labels: Vec::with_capacity(count),
                    path: root.join("grid.png"),
                    shape,
                };
                Ok((
                    writer,
                    Layout {
                        files: vec!["grid.png".to_string()],
                        ..Layout::default()
                    },
                ))
            }
        }
    }

    fn open_png(
        root: &Path,
        out: &Path,
        info: &ModelInfo,
        labels: &Labels,
        count: usize,
    ) -> Result<(Writer, Layout)> {
        png_color(out, info.image.channels)?;
        let names: Vec<String> = if info.is_conditional() {
            info.classes
                .iter()
                .enumerate()
                .map(|(i, n)| class_folder(i, n, info.classes.len()))
                .collect()
        } else {
            vec!["samples".to_string()]
        };
        let mut dirs = Vec::new();
        for (i, name) in names.iter().enumerate() {
            let dir = root.join(name);
            if !matches!(labels, Labels::Fixed(c) if *c != i) {
                std::fs::create_dir(&dir).map_err(write_err(&dir))?;
            }
            dirs.push(dir);
        }
        let writer = Writer::Png {
            folders: dirs,
            digits: (count.saturating_sub(1)).to_string().len().max(6),
            shape: info.image,
        };
        Ok((
            writer,
            Layout {
                folders: names,
                ..Layout::default()
            },
        ))
    }

    fn open_idx(
        root: &Path,
        out: &Path,
        info: &ModelInfo,
        count: usize,
        gzip: bool,
    ) -> Result<(Writer, Layout)> {
        let shape = info.image;
        let gz = if gzip { ".gz" } else { "" };
        let dims: Vec<usize> = if shape.channels == 1 {
            vec![count, shape.height, shape.width]
        } else {
            vec![count, shape.height, shape.width, shape.channels]
        };
        let mut files = vec![format!("images-idx{}-ubyte{gz}", dims.len())];
        let images = Box::new(Stream::idx(root, &files[0], gzip, &dims)?);
        let labels = if info.is_conditional() {
            if info.classes.len() > 256 {
                return Err(Error::Output {
                    path: out.to_path_buf(),
                    problem: format!(
                        "IDX labels are bytes; the model has {} classes",
                        info.classes.len()
                    ),
                });
            }
            let name = format!("labels-idx1-ubyte{gz}");
            // Streamed like the images: the count is known, so the header comes first.
            let stream = Stream::idx(root, &name, gzip, &[count])?;
            files.push(name);
            Some(Box::new(stream))
        } else {
            None
        };
        Ok((
            Writer::Idx { images, labels },
            Layout {
                files,
                ..Layout::default()
            },
        ))
    }

    /// Writes image number `index` (`[H, W, C]` bytes) with its label.
    pub(crate) fn write(&mut self, index: usize, label: Option<usize>, bytes: &[u8]) -> Result<()> {
        match self {
            Writer::Png {
                folders,
                digits,
                shape,
            } => {
                let Some(dir) = folders.get(label.unwrap_or(0)) else {
                    return Err(Error::Input {
                        reason: format!("label {label:?} has no folder"),
                    });
                };
                let path = dir.join(format!("{index:0digits$}.png", digits = *digits));
                let png = encode_png(&path, bytes, shape.width, shape.height, shape.channels)?;
                std::fs::write(&path, png).map_err(write_err(&path))
            }
            Writer::Idx { images, labels } => {
                images.write(bytes)?;
                if let (Some(stream), Some(label)) = (labels.as_mut(), label) {
                    // At most 256 classes (checked when opened).
                    stream.write(&[label as u8])?;
                }
                Ok(())
            }
            Writer::Grid { tiles, labels, .. } => {
                tiles.extend_from_slice(bytes);
                labels.push(label);
                Ok(())
            }
        }
    }

    /// Flushes the files to the disk (the grid is drawn and written now).
    pub(crate) fn finish(self, labels: &Labels) -> Result<()> {
        match self {
            Writer::Png { .. } => Ok(()),
            Writer::Idx { images, labels } => {
                images.finish()?;
                labels.map_or(Ok(()), |l| l.finish())
            }
            Writer::Grid {
                tiles,
                labels: tile_labels,
                path,
                shape,
            } => {
                let count = tile_labels.len();
                let cols = match labels {
                    Labels::Balanced { classes } if *classes <= 32 => (*classes).min(count),
                    _ => (count as f64).sqrt().ceil() as usize,
                };
                let (w, h, bytes) = grid(&tiles, count, shape, cols);
                let png = encode_png(&path, &bytes, w, h, shape.channels)?;
                write_synced(&path, &png)
            }
        }
    }
}

/// Lays `count` `[h, w, c]` tiles out in `cols` columns with a 2-pixel gray border.
fn grid(tiles: &[u8], count: usize, shape: ImageShape, cols: usize) -> (usize, usize, Vec<u8>) {
    const PAD: usize = 2;
    let ImageShape {
        channels: c,
        height: th,
        width: tw,
    } = shape;
    let cols = cols.max(1);
    let rows = count.div_ceil(cols);
    let (w, h) = (cols * (tw + PAD) + PAD, rows * (th + PAD) + PAD);
    let mut out = vec![128u8; w * h * c];
    for i in 0..count {
        let (r, col) = (i / cols, i % cols);
        let (x0, y0) = (PAD + col * (tw + PAD), PAD + r * (th + PAD));
        let tile = &tiles[i * th * tw * c..(i + 1) * th * tw * c];
        for y in 0..th {
            let dst = ((y0 + y) * w + x0) * c;
            out[dst..dst + tw * c].copy_from_slice(&tile[y * tw * c..(y + 1) * tw * c]);
        }
    }
    (w, h, out)
}
