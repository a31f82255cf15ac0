//! A freestanding `#![no_std] #![no_main]` host program around the firmware crate, the
//! fallback of `scripts/check-no-std.sh` when the thumbv6m target cannot be installed.
//!
//! If any dependency linked `std`, this would not link: `std` brings its own panic
//! handler, which collides with the one below. It links only against the C runtime
//! (for `_start` and `memcpy`), defines the C `main`, and runs one generation so the
//! check also proves the code works without std: exit code 0 on success, 1 if the
//! blob is rejected, 2 if generation fails, 3 if the image is blank.
#![no_std]
#![no_main]

use core::panic::PanicInfo;

use firmware::{MNIST_PIXELS, Model, Noise};

static BLOB: &[u8] = include_bytes!("../../assets/test-mlp-cond.gtfw");

// The C runtime provides `_start` (which calls `main`) and `memcpy`/`memset`; a no_std
// binary gets no default libraries, so ask for libc by name.
#[link(name = "c")]
unsafe extern "C" {}

#[panic_handler]
fn panic(_: &PanicInfo) -> ! {
    loop {}
}

/// The precompiled `core` of a host target is built with unwinding and references this
/// symbol; with `panic = "abort"` nothing ever calls it.
#[unsafe(no_mangle)]
pub extern "C" fn rust_eh_personality() {}

/// The C entry point called by the platform's crt0.
#[unsafe(no_mangle)]
pub extern "C" fn main(_argc: i32, _argv: *const *const u8) -> i32 {
    let Ok(model) = Model::parse(BLOB) else {
        return 1;
    };
    let mut pixels = [0u8; MNIST_PIXELS];
    if model
        .generate(Noise::Seed(0), Some(0), &mut pixels)
        .is_err()
    {
        return 2;
    }
    let lit = pixels.iter().filter(|&&p| p > 128).count();
    if lit == 0 || lit == MNIST_PIXELS {
        3
    } else {
        0
    }
}
