//! Replays every file of the trainer's fuzz corpora (trainer/fuzz/corpus/<target>/)
//! through the entry points the fuzz targets call, on stable Rust: inputs that once found
//! a crash, and the coverage the fuzzer reached, stay tested in every CI run.

use std::path::Path;

fn replay(target: &str, entry: fn(&[u8]) -> bool) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/corpus")
        .join(target);
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    assert!(!files.is_empty(), "{}: empty corpus", dir.display());
    let mut accepted = 0;
    for file in &files {
        let bytes = std::fs::read(file).unwrap();
        // A panic here fails the test and names the file.
        let ok = std::panic::catch_unwind(|| entry(&bytes))
            .unwrap_or_else(|_| panic!("{} panicked on {}", target, file.display()));
        accepted += usize::from(ok);
    }
    // The seeds are valid files: a parser that rejects everything would pass otherwise.
    assert!(accepted > 0, "{target}: no corpus file was accepted");
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
