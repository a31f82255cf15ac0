//! The int8 stage: post-training quantization of an exported generator ([`quantize`]) and the
//! host reference for the firmware's integer arithmetic ([`firmware_reference`]).
//!
//! The reference's items are also re-exported here, because `runtime::int8::FirmwareReference`
//! (and [`BlobFormatError`]) was their path before the module moved.

pub mod firmware_reference;
pub mod quantize;

pub use firmware_reference::*;
