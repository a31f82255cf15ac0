//! Picks the dense-layer inner loop for the target being built (see `src/dense.rs`).
//!
//! Arm's target features (`dsp`, `thumb2`, …) are not visible to `cfg` on stable Rust, so
//! the choice is made from the target triple and passed on as `cfg(gantry_dense = "…")`:
//! `thumbv6m` for the Cortex-M0/M0+ (Thumb-1, single-cycle `MULS` assumed) and
//! `thumbv7em` for the Cortex-M4/M7 (DSP extension: `SXTB16`, `SMLAD`). Any other target
//! uses the portable Rust loop.

use std::env;

fn main() {
    println!("cargo::rustc-check-cfg=cfg(gantry_dense, values(\"thumbv6m\", \"thumbv7em\"))");
    println!("cargo::rerun-if-changed=build.rs");
    let target = env::var("TARGET").unwrap_or_default();
    if target.starts_with("thumbv6m-") {
        println!("cargo::rustc-cfg=gantry_dense=\"thumbv6m\"");
    } else if target.starts_with("thumbv7em-") {
        println!("cargo::rustc-cfg=gantry_dense=\"thumbv7em\"");
    }
}
