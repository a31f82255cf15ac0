//! Writing generated samples as a labelled data set: PNG folders, IDX files or one grid picture,
//! always with a `manifest.json` that records how to regenerate them.
//!
//! The whole output folder is built under a temporary name beside its destination and renamed
//! into place at the end, so a data set folder is either complete (with its manifest) or absent.

use std::fs::File;
use std::io::{BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use image::ImageEncoder;

use crate::engine::tract::{Generator, Labels, Samples};
use crate::error::{Error, Result};
use crate::fsutil::StagedDir;
use crate::noise;
use crate::onnx::metadata::ModelInfo;
use crate::onnx::spec::ImageShape;

/// Name of the manifest written beside the data.
pub const MANIFEST: &str = "manifest.json";
/// The largest `manifest.json` read back (64 MiB; a manifest is a few kilobytes).
pub const MAX_MANIFEST_BYTES: u64 = 64 << 20;
/// The most images `--format grid` puts in its one picture (a grid is held in memory whole).
pub const MAX_GRID_IMAGES: usize = 10_000;
/// The most images of one IDX data set: its header stores the count as a 32-bit number.
pub const MAX_IDX_IMAGES: usize = u32::MAX as usize;
/// Revision of the manifest layout.
pub const MANIFEST_VERSION: u32 = 1;
/// How float pixels become bytes, as recorded in manifests.
pub const PIXEL_MAPPING: &str = "u8 = round((clamp(v, -1, 1) + 1) * 127.5)";

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
}

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
}

/// Noise provenance in a manifest.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct NoiseRecord {
    /// [`noise::NOISE_ALGORITHM`].
    pub algorithm: String,
    /// [`noise::fingerprint`] of all `count * z_dim` noise values, as 16 hex digits.
    pub fingerprint: String,
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
    /// `unconditional`, `balanced` (sample `i` has class `i % classes`) or `class`.
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
    /// Noise algorithm and fingerprint.
    pub noise: NoiseRecord,
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

fn write_err(path: &Path) -> impl FnOnce(std::io::Error) -> Error + '_ {
    move |source| Error::Write {
        path: path.to_path_buf(),
        error: source,
    }
}

/// Writes a whole file and flushes it to the disk.
fn write_synced(path: &Path, bytes: &[u8]) -> Result<()> {
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

/// The format-specific part of writing.
enum Writer {
    Png {
        folders: Vec<PathBuf>,
        digits: usize,
    },
    Idx {
        images: Sink,
        images_path: PathBuf,
        labels: Option<(Box<Sink>, PathBuf)>,
    },
    Grid {
        tiles: Vec<u8>,
        labels: Vec<Option<usize>>,
        path: PathBuf,
    },
}

/// Generates `request.count` images with `generator` and writes them, with a manifest, to
/// `request.out`. `progress` is called with the number of images done after each batch.
pub fn write_dataset(
    generator: &Generator,
    model_label: &str,
    request: &DatasetRequest,
    mut progress: impl FnMut(usize),
) -> Result<Manifest> {
    if request.count == 0 {
        return Err(Error::ZeroCount);
    }
    let info = generator.info();
    let labels = generator.labels_for(request.class)?;
    let shape = info.image;
    match request.format {
        OutputFormat::Idx { .. } if request.count > MAX_IDX_IMAGES => {
            return Err(Error::Output {
                path: request.out.clone(),
                problem: format!(
                    "IDX files hold at most {MAX_IDX_IMAGES} images, not {}",
                    request.count
                ),
            });
        }
        OutputFormat::Grid if request.count > MAX_GRID_IMAGES => {
            return Err(Error::Output {
                path: request.out.clone(),
                problem: format!(
                    "a grid picture holds at most {MAX_GRID_IMAGES} images, not {}; use --format png or idx",
                    request.count
                ),
            });
        }
        _ => {}
    }
    if request.force {
        check_replaceable(&request.out)?;
    }
    let staged = StagedDir::new(&request.out, request.force).map_err(|e| Error::Output {
        path: request.out.clone(),
        problem: e.to_string(),
    })?;
    let root = staged.path().to_path_buf();
    let names: Vec<String> = if info.is_conditional() {
        info.classes
            .iter()
            .enumerate()
            .map(|(i, n)| class_folder(i, n, info.classes.len()))
            .collect()
    } else {
        vec!["samples".to_string()]
    };

    let mut files = Vec::new();
    let mut folders = Vec::new();
    let mut writer = match request.format {
        OutputFormat::Png => {
            png_color(&request.out, shape.channels)?;
            let used: Vec<bool> = match &labels {
                Labels::Fixed(c) => (0..names.len()).map(|i| i == *c).collect(),
                _ => vec![true; names.len()],
            };
            let mut dirs = Vec::new();
            for (name, used) in names.iter().zip(used) {
                let dir = root.join(name);
                if used {
                    std::fs::create_dir(&dir).map_err(write_err(&dir))?;
                }
                dirs.push(dir);
            }
            folders = names.clone();
            Writer::Png {
                folders: dirs,
                digits: (request.count - 1).to_string().len().max(6),
            }
        }
        OutputFormat::Idx { gzip } => {
            let gz = if gzip { ".gz" } else { "" };
            let dims: Vec<usize> = if shape.channels == 1 {
                vec![request.count, shape.height, shape.width]
            } else {
                vec![request.count, shape.height, shape.width, shape.channels]
            };
            let images_name = format!("images-idx{}-ubyte{gz}", dims.len());
            let images_path = root.join(&images_name);
            let mut images = Sink::create(&images_path, gzip)?;
            images.write(&images_path, &idx_header(&images_path, &dims)?)?;
            files.push(images_name);
            let labels = if info.is_conditional() {
                if info.classes.len() > 256 {
                    return Err(Error::Output {
                        path: request.out.clone(),
                        problem: format!(
                            "IDX labels are bytes; the model has {} classes",
                            info.classes.len()
                        ),
                    });
                }
                let name = format!("labels-idx1-ubyte{gz}");
                let path = root.join(&name);
                files.push(name);
                // Streamed like the images: the count is known, so the header comes first.
                let mut sink = Sink::create(&path, gzip)?;
                sink.write(&path, &idx_header(&path, &[request.count])?)?;
                Some((Box::new(sink), path))
            } else {
                None
            };
            Writer::Idx {
                images,
                images_path,
                labels,
            }
        }
        OutputFormat::Grid => {
            png_color(&request.out, shape.channels)?;
            files.push("grid.png".to_string());
            Writer::Grid {
                tiles: Vec::with_capacity(request.count.saturating_mul(shape.numel())),
                labels: Vec::with_capacity(request.count),
                path: root.join("grid.png"),
            }
        }
    };

    let mut counts = vec![0usize; info.classes.len()];
    // The noise fingerprint is hashed batch by batch from its own copy of the noise stream, so
    // memory stays one batch whatever the count.
    let mut noise_stream = noise::NoiseStream::new(request.seed, info.z_dim);
    let mut fingerprint = noise::Fingerprint::new();
    let mut z = Vec::new();
    generator.generate_batches(
        request.count,
        request.class,
        request.seed,
        |batch: Samples| {
            z.resize(batch.len() * info.z_dim, 0.0);
            noise_stream.fill(&mut z);
            fingerprint.update(&z);
            for i in 0..batch.len() {
                let label = batch.labels.as_ref().and_then(|l| l.get(i).copied());
                if let Some(count) = label.and_then(|l| counts.get_mut(l)) {
                    *count += 1;
                }
                let bytes = batch.image_u8(i);
                match &mut writer {
                    Writer::Png { folders, digits } => {
                        let Some(dir) = folders.get(label.unwrap_or(0)) else {
                            return Err(Error::Input {
                                reason: format!("label {label:?} has no folder"),
                            });
                        };
                        let path = dir.join(format!(
                            "{:0digits$}.png",
                            batch.first + i,
                            digits = *digits
                        ));
                        let png =
                            encode_png(&path, &bytes, shape.width, shape.height, shape.channels)?;
                        std::fs::write(&path, png).map_err(write_err(&path))?;
                    }
                    Writer::Idx {
                        images,
                        images_path,
                        labels,
                        ..
                    } => {
                        images.write(images_path, &bytes)?;
                        if let (Some((sink, path)), Some(label)) = (labels.as_mut(), label) {
                            // At most 256 classes (checked above).
                            sink.write(path, &[label as u8])?;
                        }
                    }
                    Writer::Grid { tiles, labels, .. } => {
                        tiles.extend_from_slice(&bytes);
                        labels.push(label);
                    }
                }
            }
            progress(batch.first + batch.len());
            Ok(())
        },
    )?;

    match writer {
        Writer::Png { .. } => {}
        Writer::Idx {
            images,
            images_path,
            labels,
        } => {
            images.finish(&images_path)?;
            if let Some((sink, path)) = labels {
                sink.finish(&path)?;
            }
        }
        Writer::Grid { tiles, path, .. } => {
            let cols = match labels {
                Labels::Balanced { classes } if classes <= 32 => classes.min(request.count),
                _ => (request.count as f64).sqrt().ceil() as usize,
            };
            let (w, h, bytes) = grid(&tiles, request.count, shape, cols);
            let png = encode_png(&path, &bytes, w, h, shape.channels)?;
            write_synced(&path, &png)?;
        }
    }

    let manifest = Manifest {
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
        counts,
        image_shape: shape,
        pixel_mapping: PIXEL_MAPPING.to_string(),
        noise: NoiseRecord {
            algorithm: noise::NOISE_ALGORITHM.to_string(),
            fingerprint: format!("{:016x}", fingerprint.finish()),
        },
        folders,
        files,
    };
    let manifest_path = root.join(MANIFEST);
    let json = serde_json::to_vec_pretty(&manifest).map_err(|e| Error::Output {
        path: manifest_path.clone(),
        problem: format!("cannot serialise the manifest: {e}"),
    })?;
    write_synced(&manifest_path, &json)?;
    staged.commit().map_err(|e| Error::Output {
        path: request.out.clone(),
        problem: format!("cannot move the finished data set into place: {e}"),
    })?;
    Ok(manifest)
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

/// An IDX array: its dimensions and unsigned-byte values.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IdxArray {
    /// Dimension sizes, outermost first.
    pub dims: Vec<usize>,
    /// Values, row-major.
    pub data: Vec<u8>,
}

/// The largest IDX file (and the largest data an IDX header may promise) [`read_idx`] reads:
/// 4 GiB.
pub const MAX_IDX_BYTES: u64 = 4 << 30;

/// Reads an unsigned-byte IDX file, gzipped or not (detected from its first bytes). The header
/// is checked before the data is read or decompressed, and a gzip stream is decompressed only as
/// far as the header promises, so a corrupt header or a gzip bomb cannot take unbounded memory.
pub fn read_idx(path: &Path) -> Result<IdxArray> {
    let raw = crate::fsutil::read_regular_file(path, MAX_IDX_BYTES).map_err(|e| Error::Read {
        path: path.to_path_buf(),
        error: e,
    })?;
    if raw.starts_with(&[0x1f, 0x8b]) {
        read_idx_from(path, flate2::read::GzDecoder::new(&raw[..]))
    } else {
        read_idx_from(path, &raw[..])
    }
}

fn read_idx_from(path: &Path, mut reader: impl Read) -> Result<IdxArray> {
    let bad = |problem: String| Error::Format {
        path: path.to_path_buf(),
        problem,
    };
    let read_err = |e: std::io::Error| Error::Read {
        path: path.to_path_buf(),
        error: e,
    };
    // Reads up to `buf.len()` bytes; returns how many there were.
    let mut fill = |buf: &mut [u8]| -> Result<usize> {
        let mut done = 0;
        while done < buf.len() {
            match reader.read(&mut buf[done..]) {
                Ok(0) => break,
                Ok(n) => done += n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(read_err(e)),
            }
        }
        Ok(done)
    };
    let mut magic = [0u8; 4];
    let got = fill(&mut magic)?;
    if got < 4 || magic[0] != 0 || magic[1] != 0 || magic[2] != 0x08 {
        return Err(bad(
            "not an unsigned-byte IDX file (bad magic number)".into()
        ));
    }
    let n = usize::from(magic[3]);
    let mut header = vec![0u8; 4 * n];
    if fill(&mut header)? < header.len() {
        return Err(bad("the IDX header is truncated".into()));
    }
    let dims: Vec<usize> = header
        .chunks_exact(4)
        .map(|c| u32::from_be_bytes([c[0], c[1], c[2], c[3]]) as usize)
        .collect();
    let expected = dims
        .iter()
        .try_fold(1u64, |n, d| n.checked_mul(*d as u64))
        .filter(|n| *n <= MAX_IDX_BYTES)
        .ok_or_else(|| {
            bad(format!(
                "dimensions {dims:?} need more than the limit of {MAX_IDX_BYTES} bytes"
            ))
        })?;
    // One byte more than promised, to notice trailing data.
    let mut data = Vec::new();
    reader
        .take(expected + 1)
        .read_to_end(&mut data)
        .map_err(read_err)?;
    if data.len() as u64 != expected {
        return Err(bad(format!(
            "dimensions {dims:?} need {expected} bytes of data, the file has {}",
            if data.len() as u64 > expected {
                "more".to_string()
            } else {
                data.len().to_string()
            }
        )));
    }
    Ok(IdxArray { dims, data })
}
