//! TensorBoard event files, so `tensorboard --logdir runs/` shows a Gantry run the way
//! PyTorch and Keras users expect: its scalars (losses, D(x), FID…) as curves and its
//! sample grids as images.
//!
//! The format is TensorFlow's: a file whose name contains `tfevents`, holding TFRecord
//! frames (`u64` little-endian length, masked CRC32C of those 8 bytes, the data, masked
//! CRC32C of the data), each frame one serialized `tensorflow.Event` protobuf. The first
//! event carries only `file_version = "brain.Event:2"`; the rest carry a `Summary`.
//!
//! Why hand-written: the `tensorboard-rs` crate is unmaintained and pulls old dependencies,
//! while the part we need is small. The four messages below are declared by hand with
//! `prost`'s derive (field numbers from TensorFlow's `core/util/event.proto` and
//! `core/framework/summary.proto`, no build script, no `protoc`), the CRC comes from
//! `crc32c`, and images are PNG-encoded with `image`.

use std::fs::{self, File, OpenOptions};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use image::codecs::png::PngEncoder;
use prost::Message;

/// The version string of the event file's first record, as TensorFlow writes it.
pub const FILE_VERSION: &str = "brain.Event:2";

/// The colorspace value of an RGB image in `Summary.Image`.
const COLORSPACE_RGB: i32 = 3;

/// Bytes of a record's header: the `u64` length and its masked CRC.
const HEADER_LEN: usize = 12;

/// Bytes of a record's footer: the data's masked CRC.
const FOOTER_LEN: usize = 4;

/// `tensorflow.Event`: one record of an event file.
#[derive(Clone, PartialEq, Message)]
pub struct Event {
    /// Seconds since the Unix epoch when the event was written.
    #[prost(double, tag = "1")]
    pub wall_time: f64,
    /// The training step the event belongs to.
    #[prost(int64, tag = "2")]
    pub step: i64,
    /// What the event carries (`oneof what`).
    #[prost(oneof = "EventWhat", tags = "3, 5")]
    pub what: Option<EventWhat>,
}

/// `tensorflow.Event.what`: the payload of an [`Event`].
#[derive(Clone, PartialEq, prost::Oneof)]
pub enum EventWhat {
    /// The file's format version, in its first event (`file_version = 3`).
    #[prost(string, tag = "3")]
    FileVersion(String),
    /// Named values logged at the event's step (`summary = 5`).
    #[prost(message, tag = "5")]
    Summary(Summary),
}

/// `tensorflow.Summary`: the named values of one [`Event`].
#[derive(Clone, PartialEq, Message)]
pub struct Summary {
    /// The values, one per tag.
    #[prost(message, repeated, tag = "1")]
    pub value: Vec<SummaryValue>,
}

/// `tensorflow.Summary.Value`: one tagged scalar or image.
#[derive(Clone, PartialEq, Message)]
pub struct SummaryValue {
    /// The series name, e.g. `loss/d`; TensorBoard groups tags by their first `/`.
    #[prost(string, tag = "1")]
    pub tag: String,
    /// The value itself (`oneof value`).
    #[prost(oneof = "SummaryValueKind", tags = "2, 4")]
    pub value: Option<SummaryValueKind>,
}

/// `tensorflow.Summary.Value.value`: the payload of a [`SummaryValue`].
#[derive(Clone, PartialEq, prost::Oneof)]
pub enum SummaryValueKind {
    /// A scalar (`simple_value = 2`).
    #[prost(float, tag = "2")]
    SimpleValue(f32),
    /// An encoded image (`image = 4`).
    #[prost(message, tag = "4")]
    Image(SummaryImage),
}

/// `tensorflow.Summary.Image`: an encoded image with its size.
#[derive(Clone, PartialEq, Message)]
pub struct SummaryImage {
    /// Height in pixels.
    #[prost(int32, tag = "1")]
    pub height: i32,
    /// Width in pixels.
    #[prost(int32, tag = "2")]
    pub width: i32,
    /// Channels: 1 grey, 2 grey+alpha, 3 RGB, 4 RGBA.
    #[prost(int32, tag = "3")]
    pub colorspace: i32,
    /// The PNG (or JPEG) file's bytes.
    #[prost(bytes = "vec", tag = "4")]
    pub encoded_image_string: Vec<u8>,
}

/// What can go wrong writing or reading an event file.
#[derive(Debug, thiserror::Error)]
pub enum TensorBoardError {
    /// The log directory could not be created.
    #[error("creating directory {}: {cause}", path.display())]
    CreateDir {
        /// The directory.
        path: PathBuf,
        /// The underlying error.
        cause: io::Error,
    },
    /// The event file could not be created.
    #[error("creating {}: {cause}", path.display())]
    Create {
        /// The event file.
        path: PathBuf,
        /// The underlying error.
        cause: io::Error,
    },
    /// Writing or flushing the event file failed.
    #[error("writing {}: {cause}", path.display())]
    Write {
        /// The event file.
        path: PathBuf,
        /// The underlying error.
        cause: io::Error,
    },
    /// Reading an event file failed.
    #[error("reading {}: {cause}", path.display())]
    Read {
        /// The event file.
        path: PathBuf,
        /// The underlying error.
        cause: io::Error,
    },
    /// The file ends inside a record (a run killed mid-write leaves one).
    #[error("{}: truncated record at byte {offset}: {detail}", path.display())]
    Truncated {
        /// The event file.
        path: PathBuf,
        /// Offset of the record's first byte.
        offset: u64,
        /// What is missing.
        detail: String,
    },
    /// A record's CRC does not match its bytes.
    #[error("{}: corrupt record at byte {offset}: {detail}", path.display())]
    Corrupt {
        /// The event file.
        path: PathBuf,
        /// Offset of the record's first byte.
        offset: u64,
        /// Which check failed.
        detail: String,
    },
    /// A record is not a valid `Event` protobuf.
    #[error("decoding event: {0}")]
    Decode(prost::DecodeError),
    /// PNG encoding of an image failed.
    #[error("encoding image {tag:?} as PNG: {cause}")]
    Image {
        /// The image's tag.
        tag: String,
        /// The underlying error.
        cause: image::ImageError,
    },
    /// A step beyond `i64::MAX`, which the format cannot hold.
    #[error("step {0} does not fit the event format's int64 step")]
    StepOutOfRange(u64),
    /// An image side beyond `i32::MAX`, which the format cannot hold.
    #[error("image {tag:?} is {width}x{height}, beyond the event format's int32 sides")]
    ImageTooLarge {
        /// The image's tag.
        tag: String,
        /// Width in pixels.
        width: u32,
        /// Height in pixels.
        height: u32,
    },
}

/// Writes one TensorBoard event file; see the module doc for the format.
pub struct EventWriter {
    path: PathBuf,
    out: BufWriter<File>,
}

impl EventWriter {
    /// Creates `dir` if needed and a new event file in it named
    /// `events.out.tfevents.{unix_seconds}.{hostname or "gantry"}.{pid}.gantry`
    /// (TensorBoard only reads files whose name contains `tfevents`); writes the first
    /// record, an [`Event`] with file_version `"brain.Event:2"`. An existing file is never
    /// overwritten: if the name is taken, `.{n}` is appended, which sorts after it so
    /// TensorBoard, reading a folder's files in name order, reads them in creation order.
    pub fn create(dir: &Path) -> Result<Self, TensorBoardError> {
        fs::create_dir_all(dir).map_err(|cause| TensorBoardError::CreateDir {
            path: dir.to_path_buf(),
            cause,
        })?;
        let secs = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let stem = format!(
            "events.out.tfevents.{secs}.{}.{}",
            hostname(),
            std::process::id()
        );
        let mut n = 0u32;
        let (path, file) = loop {
            let name = if n == 0 {
                format!("{stem}.gantry")
            } else {
                format!("{stem}.gantry.{n}")
            };
            let path = dir.join(name);
            match OpenOptions::new().write(true).create_new(true).open(&path) {
                Ok(file) => break (path, file),
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists && n < 1000 => n += 1,
                Err(cause) => return Err(TensorBoardError::Create { path, cause }),
            }
        };
        let mut writer = Self {
            path,
            out: BufWriter::new(file),
        };
        writer.write_event(0, EventWhat::FileVersion(FILE_VERSION.to_owned()))?;
        writer.flush()?;
        Ok(writer)
    }

    /// The event file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// One scalar `tag` at `step`.
    pub fn scalar(&mut self, tag: &str, step: u64, value: f32) -> Result<(), TensorBoardError> {
        self.scalars(step, &[(tag, value)])
    }

    /// Several scalars at one step, in one Event; writes nothing if `values` is empty.
    pub fn scalars(&mut self, step: u64, values: &[(&str, f32)]) -> Result<(), TensorBoardError> {
        if values.is_empty() {
            return Ok(());
        }
        let value = values
            .iter()
            .map(|&(tag, v)| SummaryValue {
                tag: tag.to_owned(),
                value: Some(SummaryValueKind::SimpleValue(v)),
            })
            .collect();
        self.write_summary(step, Summary { value })
    }

    /// An RGB image (PNG-encoded) at `step`.
    pub fn image(
        &mut self,
        tag: &str,
        step: u64,
        image: &image::RgbImage,
    ) -> Result<(), TensorBoardError> {
        let (width, height) = image.dimensions();
        let too_large = || TensorBoardError::ImageTooLarge {
            tag: tag.to_owned(),
            width,
            height,
        };
        let w = i32::try_from(width).map_err(|_| too_large())?;
        let h = i32::try_from(height).map_err(|_| too_large())?;
        let mut png = Vec::new();
        image
            .write_with_encoder(PngEncoder::new(&mut png))
            .map_err(|cause| TensorBoardError::Image {
                tag: tag.to_owned(),
                cause,
            })?;
        let value = SummaryValue {
            tag: tag.to_owned(),
            value: Some(SummaryValueKind::Image(SummaryImage {
                height: h,
                width: w,
                colorspace: COLORSPACE_RGB,
                encoded_image_string: png,
            })),
        };
        self.write_summary(step, Summary { value: vec![value] })
    }

    /// Flushes buffered records to the file (call after each logging interval, so a
    /// killed run keeps what it logged).
    pub fn flush(&mut self) -> Result<(), TensorBoardError> {
        self.out.flush().map_err(|cause| TensorBoardError::Write {
            path: self.path.clone(),
            cause,
        })
    }

    fn write_summary(&mut self, step: u64, summary: Summary) -> Result<(), TensorBoardError> {
        let step = i64::try_from(step).map_err(|_| TensorBoardError::StepOutOfRange(step))?;
        self.write_event(step, EventWhat::Summary(summary))
    }

    fn write_event(&mut self, step: i64, what: EventWhat) -> Result<(), TensorBoardError> {
        let event = Event {
            wall_time: wall_time(),
            step,
            what: Some(what),
        };
        let record = encode_record(&event.encode_to_vec());
        self.out
            .write_all(&record)
            .map_err(|cause| TensorBoardError::Write {
                path: self.path.clone(),
                cause,
            })
    }
}

/// TFRecord's masked CRC32C of `data`: the CRC rotated right by 15 bits plus `0xa282ead8`.
pub fn masked_crc32c(data: &[u8]) -> u32 {
    crc32c::crc32c(data)
        .rotate_right(15)
        .wrapping_add(0xa282_ead8)
}

/// Reads every record of the event file at `path`, checking both CRCs of each; a
/// truncated or corrupt record is an error naming its byte offset.
pub fn read_records(path: &Path) -> Result<Vec<Vec<u8>>, TensorBoardError> {
    let bytes = fs::read(path).map_err(|cause| TensorBoardError::Read {
        path: path.to_path_buf(),
        cause,
    })?;
    let truncated = |offset: usize, detail: String| TensorBoardError::Truncated {
        path: path.to_path_buf(),
        offset: offset as u64,
        detail,
    };
    let corrupt = |offset: usize, detail: &str| TensorBoardError::Corrupt {
        path: path.to_path_buf(),
        offset: offset as u64,
        detail: detail.to_owned(),
    };
    let mut records = Vec::new();
    let mut offset = 0usize;
    while offset < bytes.len() {
        let rest = bytes.get(offset..).unwrap_or_default();
        let (Some(len_bytes), Some(len_crc)) = (rest.get(..8), read_u32(rest, 8)) else {
            return Err(truncated(
                offset,
                format!("{} of {HEADER_LEN} header bytes", rest.len()),
            ));
        };
        if masked_crc32c(len_bytes) != len_crc {
            return Err(corrupt(offset, "length CRC mismatch"));
        }
        let mut len = [0u8; 8];
        len.copy_from_slice(len_bytes);
        let len = u64::from_le_bytes(len);
        let available = rest.len() - HEADER_LEN;
        let data = usize::try_from(len)
            .ok()
            .filter(|&n| n <= available)
            .and_then(|n| rest.get(HEADER_LEN..HEADER_LEN + n));
        let Some(data) = data else {
            return Err(truncated(
                offset,
                format!("{len} data bytes declared, {available} left"),
            ));
        };
        let data_end = HEADER_LEN + data.len();
        let Some(data_crc) = read_u32(rest, data_end) else {
            return Err(truncated(offset, "data CRC missing".to_owned()));
        };
        if masked_crc32c(data) != data_crc {
            return Err(corrupt(offset, "data CRC mismatch"));
        }
        records.push(data.to_vec());
        offset += data_end + FOOTER_LEN;
    }
    Ok(records)
}

/// Decodes one record's bytes as an [`Event`].
pub fn decode_event(bytes: &[u8]) -> Result<Event, TensorBoardError> {
    Event::decode(bytes).map_err(TensorBoardError::Decode)
}

/// Frames `data` as one TFRecord.
fn encode_record(data: &[u8]) -> Vec<u8> {
    let len = (data.len() as u64).to_le_bytes();
    let mut record = Vec::with_capacity(HEADER_LEN + data.len() + FOOTER_LEN);
    record.extend_from_slice(&len);
    record.extend_from_slice(&masked_crc32c(&len).to_le_bytes());
    record.extend_from_slice(data);
    record.extend_from_slice(&masked_crc32c(data).to_le_bytes());
    record
}

/// The little-endian `u32` at `at` in `bytes`, if all four bytes are there.
fn read_u32(bytes: &[u8], at: usize) -> Option<u32> {
    let b: [u8; 4] = bytes.get(at..at.checked_add(4)?)?.try_into().ok()?;
    Some(u32::from_le_bytes(b))
}

/// Seconds since the Unix epoch, 0 if the clock is before it.
fn wall_time() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// The host's name for the file name, restricted to safe characters; `gantry` if unknown.
fn hostname() -> String {
    let raw = fs::read_to_string("/proc/sys/kernel/hostname")
        .or_else(|_| fs::read_to_string("/etc/hostname"))
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .or_else(|| std::env::var("COMPUTERNAME").ok())
        .unwrap_or_default();
    let name: String = raw
        .trim()
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        .collect();
    if name.is_empty() {
        "gantry".to_owned()
    } else {
        name
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch_dir(name: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("gantry-tensorboard-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        dir
    }

    fn summary_of(event: &Event) -> &Summary {
        match &event.what {
            Some(EventWhat::Summary(s)) => s,
            other => panic!("expected a summary, got {:?}", other.is_some()),
        }
    }

    #[test]
    fn crc32c_check_value_and_masked_vectors() {
        // The CRC-32C check value of "123456789".
        assert_eq!(crc32c::crc32c(b"123456789"), 0xe306_9283);
        // Masked values computed with TensorBoard's Python reader
        // (tensorboard.compat.tensorflow_stub.pywrap_tensorflow.masked_crc32c).
        assert_eq!(masked_crc32c(b""), MASKED_EMPTY);
        assert_eq!(masked_crc32c(b"123456789"), MASKED_CHECK);
    }

    #[test]
    fn records_match_tensorboard_python_bytes() {
        // Event(wall_time=1.5, step=10, summary=[Value(tag="loss/d", simple_value=0.25)])
        // framed by tensorboard.summary.writer.record_writer.RecordWriter.
        let event = Event {
            wall_time: 1.5,
            step: 10,
            what: Some(EventWhat::Summary(Summary {
                value: vec![SummaryValue {
                    tag: "loss/d".to_owned(),
                    value: Some(SummaryValueKind::SimpleValue(0.25)),
                }],
            })),
        };
        assert_eq!(encode_record(&event.encode_to_vec()), PYTHON_SCALAR_RECORD);
        // Event(wall_time=1.5, file_version="brain.Event:2"), framed the same way.
        let first = Event {
            wall_time: 1.5,
            step: 0,
            what: Some(EventWhat::FileVersion(FILE_VERSION.to_owned())),
        };
        assert_eq!(encode_record(&first.encode_to_vec()), PYTHON_VERSION_RECORD);
    }

    #[test]
    fn written_file_reads_back() -> Result<(), TensorBoardError> {
        let dir = scratch_dir("roundtrip");
        let mut w = EventWriter::create(&dir)?;
        let name = w
            .path()
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default()
            .to_owned();
        assert!(name.starts_with("events.out.tfevents."), "{name}");
        assert!(name.ends_with(".gantry"), "{name}");
        w.scalar("loss/d", 0, 0.5)?;
        w.scalars(10, &[("loss/d", 0.25), ("loss/g", 1.75)])?;
        w.scalars(11, &[])?;
        let img =
            image::RgbImage::from_fn(5, 3, |x, y| image::Rgb([x as u8 * 40, y as u8 * 80, 7]));
        w.image("samples", 20, &img)?;
        w.flush()?;

        let records = read_records(w.path())?;
        assert_eq!(records.len(), 4);
        let events = records
            .iter()
            .map(|r| decode_event(r))
            .collect::<Result<Vec<_>, _>>()?;
        assert_eq!(
            events[0].what,
            Some(EventWhat::FileVersion(FILE_VERSION.into()))
        );
        assert!(events[0].wall_time > 1.0e9);

        let s = summary_of(&events[1]);
        assert_eq!(events[1].step, 0);
        assert_eq!(s.value.len(), 1);
        assert_eq!(s.value[0].tag, "loss/d");
        assert_eq!(s.value[0].value, Some(SummaryValueKind::SimpleValue(0.5)));

        let s = summary_of(&events[2]);
        assert_eq!(events[2].step, 10);
        let got: Vec<_> = s
            .value
            .iter()
            .map(|v| (v.tag.as_str(), v.value.clone()))
            .collect();
        assert_eq!(
            got,
            [
                ("loss/d", Some(SummaryValueKind::SimpleValue(0.25))),
                ("loss/g", Some(SummaryValueKind::SimpleValue(1.75))),
            ]
        );

        let s = summary_of(&events[3]);
        assert_eq!(events[3].step, 20);
        assert_eq!(s.value[0].tag, "samples");
        let Some(SummaryValueKind::Image(im)) = &s.value[0].value else {
            panic!("expected an image");
        };
        assert_eq!((im.width, im.height, im.colorspace), (5, 3, 3));
        let decoded =
            image::load_from_memory_with_format(&im.encoded_image_string, image::ImageFormat::Png)
                .map_err(|cause| TensorBoardError::Image {
                    tag: "samples".into(),
                    cause,
                })?
                .to_rgb8();
        assert_eq!(decoded, img);

        // A second writer in the same second gets its own file.
        let w2 = EventWriter::create(&dir)?;
        assert_ne!(w2.path(), w.path());
        let _ = fs::remove_dir_all(&dir);
        Ok(())
    }

    #[test]
    fn corrupt_and_truncated_files_are_errors() -> Result<(), TensorBoardError> {
        let dir = scratch_dir("corrupt");
        let mut w = EventWriter::create(&dir)?;
        w.scalars(3, &[("a", 1.0), ("b", 2.0)])?;
        w.flush()?;
        let good = fs::read(w.path()).map_err(|cause| TensorBoardError::Read {
            path: w.path().to_path_buf(),
            cause,
        })?;
        let first_len = HEADER_LEN + read_records(w.path())?[0].len() + FOOTER_LEN;
        let bad = dir.join("bad.tfevents");
        let write = |bytes: &[u8]| {
            fs::write(&bad, bytes).map_err(|cause| TensorBoardError::Write {
                path: bad.clone(),
                cause,
            })
        };

        // Every single flipped byte is caught, with the offset of its record.
        for i in 0..good.len() {
            let mut b = good.clone();
            b[i] ^= 0x20;
            write(&b)?;
            match read_records(&bad) {
                Err(TensorBoardError::Corrupt { offset, .. }) => {
                    let want = if i < first_len { 0 } else { first_len as u64 };
                    assert_eq!(offset, want, "byte {i}");
                }
                other => panic!("byte {i}: expected Corrupt, got {other:?}"),
            }
        }
        // Every truncation inside a record is caught; cutting between records is not an error.
        for cut in 1..good.len() {
            write(&good[..cut])?;
            match read_records(&bad) {
                Ok(records) => assert_eq!(
                    cut,
                    first_len,
                    "cut at {cut} read {} records",
                    records.len()
                ),
                Err(TensorBoardError::Truncated { offset, .. }) => {
                    let want = if cut < first_len { 0 } else { first_len as u64 };
                    assert_eq!(offset, want, "cut at {cut}");
                }
                Err(e) => panic!("cut at {cut}: expected Truncated, got {e}"),
            }
        }
        // A huge declared length with a valid length CRC is reported, not allocated.
        let len = u64::MAX.to_le_bytes();
        let mut huge = len.to_vec();
        huge.extend_from_slice(&masked_crc32c(&len).to_le_bytes());
        huge.extend_from_slice(b"xyz");
        write(&huge)?;
        let err = read_records(&bad)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(err.contains("truncated record at byte 0"), "{err}");
        // Garbage is a decode error.
        assert!(matches!(
            decode_event(&[0xff, 0xff, 0xff]),
            Err(TensorBoardError::Decode(_))
        ));
        // Missing file names the path once.
        let missing = dir.join("missing");
        let err = read_records(&missing)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert_eq!(err.matches("missing").count(), 1, "{err}");
        let _ = fs::remove_dir_all(&dir);
        Ok(())
    }

    #[test]
    fn step_beyond_int64_is_an_error() -> Result<(), TensorBoardError> {
        let dir = scratch_dir("step");
        let mut w = EventWriter::create(&dir)?;
        assert!(matches!(
            w.scalar("x", u64::MAX, 1.0),
            Err(TensorBoardError::StepOutOfRange(_))
        ));
        let _ = fs::remove_dir_all(&dir);
        Ok(())
    }

    const MASKED_EMPTY: u32 = 0xa282_ead8;
    const MASKED_CHECK: u32 = 0xc78a_b0e5;
    const PYTHON_SCALAR_RECORD: &[u8] = &[
        0x1c, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0xc8, 0xc1, 0x95, 0x1d, 0x09, 0x00, 0x00,
        0x00, 0x00, 0x00, 0x00, 0xf8, 0x3f, 0x10, 0x0a, 0x2a, 0x0f, 0x0a, 0x0d, 0x0a, 0x06, 0x6c,
        0x6f, 0x73, 0x73, 0x2f, 0x64, 0x15, 0x00, 0x00, 0x80, 0x3e, 0xbd, 0xcc, 0x5d, 0x29,
    ];
    const PYTHON_VERSION_RECORD: &[u8] = &[
        0x18, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0xa3, 0x7f, 0x4b, 0x22, 0x09, 0x00, 0x00,
        0x00, 0x00, 0x00, 0x00, 0xf8, 0x3f, 0x1a, 0x0d, 0x62, 0x72, 0x61, 0x69, 0x6e, 0x2e, 0x45,
        0x76, 0x65, 0x6e, 0x74, 0x3a, 0x32, 0x2a, 0x28, 0x64, 0x6c,
    ];
}
