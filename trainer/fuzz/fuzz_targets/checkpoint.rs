//! Checkpoint files as `--resume` reads them: state.json and the burnpack records.
#![no_main]

libfuzzer_sys::fuzz_target!(|bytes: &[u8]| {
    trainer::fuzzing::checkpoint(bytes);
});
