//! Puts the memory map of the emulated board for this target on the linker's search path
//! as `memory.x`, for cortex-m-rt's link.x: the micro:bit for thumbv6m, the MPS2 AN386
//! for thumbv7em.

use std::env;
use std::fs;
use std::path::PathBuf;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let out = PathBuf::from(env::var_os("OUT_DIR").ok_or("OUT_DIR is not set")?);
    let target = env::var("TARGET")?;
    let memory: &[u8] = if target.starts_with("thumbv6m-") {
        include_bytes!("memory-microbit.x")
    } else if target.starts_with("thumbv7em-") {
        include_bytes!("memory-mps2-an386.x")
    } else {
        return Err(format!(
            "gantry-bench-mcu runs on thumbv6m-none-eabi or thumbv7em-none-eabihf, not {target}"
        )
        .into());
    };
    fs::write(out.join("memory.x"), memory)?;
    println!("cargo:rustc-link-search={}", out.display());
    println!("cargo:rerun-if-changed=memory-microbit.x");
    println!("cargo:rerun-if-changed=memory-mps2-an386.x");
    println!("cargo:rerun-if-changed=build.rs");
    Ok(())
}
