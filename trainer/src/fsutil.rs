//! File reads that cannot hang or exhaust memory, and writes that survive a crash: the
//! two halves of "no lost work" for user files, run folders and checkpoints.
//!
//! The mechanisms are the runtime's (`runtime::fsutil`): reads refuse anything but a
//! regular file of bounded size (a FIFO or /dev/zero given as a config or checkpoint would
//! otherwise block or grow without end); writes go to a temporary file, are synced, renamed
//! over the target, and the folder entry is synced. This module adds the trainer's size
//! limits and the pieces checkpoint folders need.

use std::io;
use std::path::Path;

pub use runtime::fsutil::{sync_dir, write_atomic};

/// The largest config, metrics log, card or JSON state file read (64 MiB).
pub const MAX_TEXT_BYTES: u64 = 64 << 20;
/// The largest model record read (4 GiB).
pub const MAX_RECORD_BYTES: u64 = 4 << 30;

/// Reads `path` whole, refusing anything that is not a regular file of at most
/// `max_bytes` (checked before reading and again while reading, for a growing file).
pub fn read_regular(path: &Path, max_bytes: u64) -> io::Result<Vec<u8>> {
    runtime::fsutil::read_regular_file(path, max_bytes)
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

/// Writes `bytes` to a new file `path` and syncs it (for files inside a folder that is
/// itself renamed into place once complete).
pub fn write_synced(path: &Path, bytes: &[u8]) -> io::Result<()> {
    use std::io::Write;
    let mut file = std::fs::File::create(path)?;
    file.write_all(bytes)?;
    file.sync_all()
}
