//! Replays every file of the blob fuzz corpus (firmware/fuzz/corpus/blob/) through the
//! entry point the fuzz target calls, on stable Rust.

use std::path::Path;

#[test]
fn blob_corpus() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus/blob");
    firmware::fuzzing::replay(&dir, firmware::fuzzing::blob);
}
