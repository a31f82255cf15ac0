//! Reading IDX files back (MNIST's format, and what `--format idx` writes), for tests and for
//! tools that check a data set; bounded so that a corrupt header or a gzip bomb cannot take
//! unbounded memory.

use std::io::Read;
use std::path::Path;

use crate::error::{Error, Result};

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
