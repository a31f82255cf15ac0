//! Replays every file of the trainer's fuzz corpora (trainer/fuzz/corpus/<target>/)
//! through the entry points the fuzz targets call, on stable Rust: inputs that once found
//! a crash, and the coverage the fuzzer reached, stay tested in every CI run.

use std::path::Path;

fn replay(target: &str, entry: fn(&[u8]) -> bool) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/corpus")
        .join(target);
    firmware::fuzzing::replay(&dir, entry);
}

#[test]
fn idx_corpus() {
    replay("idx", trainer::fuzzing::idx);
}

#[test]
fn config_toml_corpus() {
    replay("config_toml", trainer::fuzzing::config_toml);
}

#[test]
fn checkpoint_corpus() {
    replay("checkpoint", trainer::fuzzing::checkpoint);
}

#[test]
fn image_file_corpus() {
    replay("image_file", trainer::fuzzing::image_file);
}
