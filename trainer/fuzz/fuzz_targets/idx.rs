//! IDX files as the data loader reads them: raw or gzipped, images or labels.
#![no_main]

libfuzzer_sys::fuzz_target!(|bytes: &[u8]| {
    trainer::fuzzing::idx(bytes);
});
