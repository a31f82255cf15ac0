//! Run configs as `trainer train --config` reads them: TOML, then validation.
#![no_main]

libfuzzer_sys::fuzz_target!(|bytes: &[u8]| {
    trainer::fuzzing::config_toml(bytes);
});
