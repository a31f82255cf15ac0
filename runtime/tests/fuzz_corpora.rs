//! Replays the fuzz corpus of `runtime/fuzz` on stable Rust: every file in
//! `runtime/fuzz/corpus/onnx_generator/` goes through the fuzz target's entry point,
//! [`runtime::import::spec_from_bytes`], which must return (`Ok` or `Err`) without panicking.
//! The fuzzer itself (`cargo +nightly fuzz run onnx_generator`) needs nightly; this test keeps
//! every input it found interesting in the normal test suite.

use std::path::Path;

#[test]
fn onnx_generator_corpus_replays_without_panics() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus/onnx_generator");
    // The seeds include valid generators; they must still load.
    firmware::fuzzing::replay(&dir, |bytes| {
        runtime::import::spec_from_bytes(Path::new("corpus.onnx"), bytes).is_ok()
    });
}
