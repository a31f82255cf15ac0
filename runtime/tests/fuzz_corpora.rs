//! Replays the fuzz corpus of `runtime/fuzz` on stable Rust: every file in
//! `runtime/fuzz/corpus/onnx_generator/` goes through the fuzz target's entry point,
//! [`runtime::import::spec_from_bytes`], which must return (`Ok` or `Err`) without panicking.
//! The fuzzer itself (`cargo +nightly fuzz run onnx_generator`) needs nightly; this test keeps
//! every input it found interesting in the normal test suite.

use std::path::{Path, PathBuf};

fn corpus(target: &str) -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/corpus")
        .join(target);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    files
}

#[test]
fn onnx_generator_corpus_replays_without_panics() {
    let files = corpus("onnx_generator");
    assert!(
        files.len() >= 10,
        "the corpus has {} files; it is seeded with at least 10",
        files.len()
    );
    let mut ok = 0;
    for file in &files {
        let bytes = std::fs::read(file).unwrap();
        let result = std::panic::catch_unwind(|| {
            runtime::import::spec_from_bytes(Path::new("corpus.onnx"), &bytes).is_ok()
        });
        match result {
            Ok(true) => ok += 1,
            Ok(false) => {}
            Err(_) => panic!("{} panicked the ONNX generator loader", file.display()),
        }
    }
    // The seeds include valid generators; they must still load.
    assert!(ok >= 1, "no corpus file loads as a generator");
}
