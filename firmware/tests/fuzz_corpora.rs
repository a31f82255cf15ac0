//! Replays every file of the blob fuzz corpus (firmware/fuzz/corpus/blob/) through the
//! entry point the fuzz target calls, on stable Rust.

use std::path::Path;

#[test]
fn blob_corpus() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus/blob");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    assert!(!files.is_empty(), "{}: empty corpus", dir.display());
    let mut parsed = 0;
    for file in &files {
        let bytes = std::fs::read(file).unwrap();
        let ok = std::panic::catch_unwind(|| firmware::fuzzing::blob(&bytes))
            .unwrap_or_else(|_| panic!("panicked on {}", file.display()));
        parsed += usize::from(ok);
    }
    assert!(
        parsed > 0,
        "no corpus file parsed: the seeds are valid blobs"
    );
}
