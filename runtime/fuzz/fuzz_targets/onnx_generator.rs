//! Gantry's ONNX generator loader (protobuf decoding, metadata, signature, quantization record,
//! weight dequantization folding, spec import: everything before tract runs) on arbitrary bytes.
//! It must return `Ok` or `Err`, never panic. `runtime/tests/fuzz_corpora.rs` replays the corpus
//! through the same entry point on stable Rust.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = runtime::import::spec_from_bytes(std::path::Path::new("fuzz.onnx"), data);
});
