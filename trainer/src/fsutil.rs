//! File reads that cannot hang or exhaust memory, and writes that survive a crash: the
//! two halves of "no lost work" for user files, run folders and checkpoints.
//!
//! Reads refuse anything but a regular file of bounded size (a FIFO or /dev/zero given
//! as a config or checkpoint would otherwise block or grow without end). Writes go to a
//! temporary file, are synced, renamed over the target, and the folder entry is synced,
//! so after a power cut the target is the old file or the complete new one.

use std::io::{self, Read};
use std::path::Path;

/// The largest config, metrics log, card or JSON state file read (64 MiB).
pub const MAX_TEXT_BYTES: u64 = 64 << 20;
/// The largest model record read (4 GiB).
pub const MAX_RECORD_BYTES: u64 = 4 << 30;

/// Reads `path` whole, refusing anything that is not a regular file of at most
/// `max_bytes` (checked before reading and again while reading, for a growing file).
pub fn read_regular(path: &Path, max_bytes: u64) -> io::Result<Vec<u8>> {
    let meta = std::fs::metadata(path)?;
    if !meta.is_file() {
        let what = if meta.is_dir() {
            "a folder"
        } else {
            "not a regular file (a FIFO, socket or device)"
        };
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("is {what}"),
        ));
    }
    let too_large = |size: u64| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!(
                "is {size} bytes, more than the {max_bytes} bytes Gantry reads from such a file"
            ),
        )
    };
    if meta.len() > max_bytes {
        return Err(too_large(meta.len()));
    }
    let mut bytes = Vec::new();
    std::fs::File::open(path)?
        .take(max_bytes + 1)
        .read_to_end(&mut bytes)?;
    if bytes.len() as u64 > max_bytes {
        return Err(too_large(bytes.len() as u64));
    }
    Ok(bytes)
}

/// [`read_regular`] with [`MAX_TEXT_BYTES`], as UTF-8 text.
pub fn read_text(path: &Path) -> io::Result<String> {
    String::from_utf8(read_regular(path, MAX_TEXT_BYTES)?).map_err(|e| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("is not UTF-8 text: {e}"),
        )
    })
}

/// Writes `bytes` to `path` atomically and durably: temporary file, fsync, rename, fsync
/// of the folder.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> io::Result<()> {
    runtime::fsutil::write_atomic(path, bytes)?;
    sync_parent(path)
}

/// Makes the folder entries of `path`'s parent (a rename or a new file) durable.
pub fn sync_parent(path: &Path) -> io::Result<()> {
    match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => sync_dir(parent),
        _ => sync_dir(Path::new(".")),
    }
}

/// Syncs a folder, so that entries created, renamed or removed in it survive a crash.
pub fn sync_dir(dir: &Path) -> io::Result<()> {
    #[cfg(unix)]
    {
        std::fs::File::open(dir)?.sync_all()
    }
    #[cfg(not(unix))]
    {
        // Windows has no folder handles to sync; its renames are journaled by NTFS.
        let _ = dir;
        Ok(())
    }
}

/// Writes `bytes` to a new file `path` and syncs it (for files inside a folder that is
/// itself renamed into place once complete).
pub fn write_synced(path: &Path, bytes: &[u8]) -> io::Result<()> {
    use std::io::Write;
    let mut file = std::fs::File::create(path)?;
    file.write_all(bytes)?;
    file.sync_all()
}
