//! The entry point the blob fuzz target (`firmware/fuzz/`) and the corpus replay test
//! (`firmware/tests/fuzz_corpora.rs`) share: untrusted bytes through [`Model::parse`]
//! and, when they parse, through inference for every label.

extern crate std;

use std::vec;
use std::vec::Vec;

use crate::blob::{CRC_LEN, CRC32, Model};
use crate::infer::Noise;

/// A firmware blob. The first byte's low bit asks for the CRC to be fixed up first, so
/// that mutated blobs reach the checks behind it (dimensions, scales, multipliers) and
/// inference; the rest of the first byte seeds the noise. Returns whether it parsed.
pub fn blob(bytes: &[u8]) -> bool {
    let Some((&control, rest)) = bytes.split_first() else {
        return false;
    };
    let mut blob: Vec<u8> = rest.to_vec();
    if control & 1 == 1 && blob.len() >= CRC_LEN {
        let content_len = blob.len() - CRC_LEN;
        let crc = CRC32.checksum(&blob[..content_len]);
        blob[content_len..].copy_from_slice(&crc.to_le_bytes());
    }
    let Ok(model) = Model::parse(&blob) else {
        return false;
    };
    let mut pixels = vec![0u8; model.output_len()];
    let labels = if model.is_conditional() {
        model.dims().classes
    } else {
        1
    };
    // Every label up to 16, and one past the last (an error, not a panic).
    for label in 0..=labels.min(16) {
        let label = model.is_conditional().then_some(label);
        // Errors are fine (a wrong pixel buffer size, say); panics are not.
        let _ = model.generate(Noise::Seed(u64::from(control >> 1)), label, &mut pixels);
        let short = pixels.len().saturating_sub(1);
        let _ = model.generate(
            Noise::Seed(u64::from(control >> 1)),
            label,
            &mut pixels[..short],
        );
    }
    true
}

/// Replays every file of the corpus folder `dir` through `entry` (the function a fuzz
/// target calls), for the stable-Rust tests of each crate's corpus. Panics naming the file
/// when `entry` panics, when the folder is empty, or when no file is accepted (the seeds are
/// valid inputs: a parser that rejects everything must not pass). Returns how many files
/// were accepted.
pub fn replay(dir: &std::path::Path, entry: impl Fn(&[u8]) -> bool) -> usize {
    let mut files: Vec<std::path::PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    assert!(!files.is_empty(), "{}: empty corpus", dir.display());
    let mut accepted = 0;
    for file in &files {
        let bytes = std::fs::read(file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        let ok = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| entry(&bytes)))
            .unwrap_or_else(|_| {
                panic!("{} panicked its fuzz target's entry point", file.display())
            });
        accepted += usize::from(ok);
    }
    assert!(
        accepted > 0,
        "{}: no corpus file was accepted",
        dir.display()
    );
    accepted
}
