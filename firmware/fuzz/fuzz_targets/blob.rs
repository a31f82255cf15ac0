//! Firmware blobs as a microcontroller reads them from flash: parse, then generate.
#![no_main]

libfuzzer_sys::fuzz_target!(|bytes: &[u8]| {
    firmware::fuzzing::blob(bytes);
});
