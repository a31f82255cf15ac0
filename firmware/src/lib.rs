//! Gantry's `no_std` generator: fixed-size int8 inference of our `mlp` GAN generator, read
//! straight from a weight blob in flash, and rendering of its samples on any
//! `embedded-graphics` display.
//!
//! The crate is `#![no_std]` and never allocates: buffers are fixed arrays sized by the
//! [`MAX_INPUT`], [`MAX_HIDDEN`] and [`MAX_OUTPUT`] limits, and a [`Model`] borrows its
//! weights from the blob bytes (`&'static [u8]` from `include_bytes!`, or any `&[u8]`).
//!
//! - [`kernels`]: the integer arithmetic, written down exactly, so that a host reference
//!   can reproduce the firmware bit for bit.
//! - [`dense`]: the same dot products, fast: word-at-a-time inner loops for the
//!   Cortex-M0+ (thumbv6m) and, with the DSP instructions, the Cortex-M4 (thumbv7em).
//! - [`blob`]: the versioned little-endian weight format and its never-panicking parser
//!   (with the `std` feature: the writer).
//! - [`noise`]: the seeded PCG32 + Box–Muller normal sampler for the latent `z`.
//! - [`infer`]: [`Model::generate`], one sample into a caller-owned pixel buffer.
//! - [`render`]: drawing samples and grids onto Gray8, BinaryColor (dithered) and Rgb565
//!   targets with integer scaling.
//! - `quantize` (feature `std`): f32 MLP weights + calibration → blob parameters.
//! - `testmodel` (feature `std`): the deterministic test generator behind the committed
//!   blob and the golden images.
//! - `preview` (feature `preview`): host rendering to `embedded-graphics-simulator`.
//!
//! ```
//! # fn main() -> Result<(), Box<dyn core::error::Error>> {
//! use firmware::{Model, Noise};
//! static BLOB: &[u8] = include_bytes!("../assets/test-mlp-cond.gtfw");
//! let model = Model::parse(BLOB)?;
//! let mut pixels = [0u8; 784];
//! model.generate(Noise::Seed(42), Some(3), &mut pixels)?;
//! # Ok(()) }
//! ```
#![no_std]
#![deny(
    missing_docs,
    unsafe_code,
    trivial_numeric_casts,
    unused_qualifications
)]

#[cfg(feature = "std")]
extern crate std;

pub mod blob;
pub mod dense;
#[cfg(feature = "std")]
pub mod fuzzing;
pub mod infer;
pub mod kernels;
pub mod noise;
#[cfg(feature = "preview")]
pub mod preview;
#[cfg(feature = "std")]
pub mod quantize;
pub mod render;
#[cfg(feature = "std")]
pub mod testmodel;

pub use blob::{BlobError, Model};
pub use infer::{GenerateError, Noise};
pub use kernels::QuantizedMultiplier;
pub use render::{FromGray, GrayImage, GridLayout};

/// Largest generator input (`z_dim + embed_dim`) this build accepts; sizes a stack buffer.
pub const MAX_INPUT: usize = 512;
/// Largest hidden layer this build accepts; sizes a stack buffer.
pub const MAX_HIDDEN: usize = 512;
/// Largest image (`width * height`) this build accepts.
pub const MAX_OUTPUT: usize = 4096;
/// Pixels of one 28×28 MNIST-shaped sample, the size our `mlp` generator produces.
pub const MNIST_PIXELS: usize = 28 * 28;
