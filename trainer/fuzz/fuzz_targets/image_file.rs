//! One file of a user's image folder, as the scanner decodes it.
#![no_main]

libfuzzer_sys::fuzz_target!(|bytes: &[u8]| {
    trainer::fuzzing::image_file(bytes);
});
