//! The runtime's int8 reference for firmware blobs: an independent host implementation of the
//! integer arithmetic documented in `firmware/src/kernels.rs`, `firmware/src/noise.rs` and the
//! blob format in `firmware/src/blob.rs`.
//!
//! Why a second implementation: tract and ONNX Runtime requantize with f32 multipliers and
//! round half to even, so no ONNX int8 graph reproduces the firmware's fixed-point rule bit for
//! bit. To prove that the firmware computes exactly what its documentation says, the runtime
//! re-derives every pixel from the same blob with code written from that text alone — its own
//! blob reader, PCG32, Box–Muller, accumulation and requantization — and the test
//! `runtime/tests/firmware.rs` asserts equality with `firmware::Model::generate`. Where the
//! firmware uses a shift-and-add rounding, this module divides exactly in 128-bit integers; the
//! two must agree on every input.
//!
//! The rule, restated (`real = scale * (code - zero_point)`):
//!
//! 1. `x = concat(quantize(z), embedding[label])`, `quantize(v) = clamp(roundf(v / s) + zp,
//!    -128, 127)` in f32, ties away from zero.
//! 2. `acc[c] = b[c] + Σ_i (x[i] - x_zp) * W[c][i]`, int32 with wrap-around. The blob (format
//!    version 2) stores `bias[c] = b[c] - (x_zp + 128) * Σ_i W[c][i]`, so this reference sums
//!    `bias[c] + Σ_i (x[i] + 128) * W[c][i]`: the same integer.
//! 3. `h[c] = requantize(acc[c], acc >= 0 ? M+[c] : M-[c], h_zp)` with
//!    `requantize(a, (m, s), zp) = clamp(round_half_away(a * m / 2^s) + zp, -128, 127)`.
//! 4. `t[c] = requantize(bias2[c] + Σ_j (h[j] + 128) * W2[c][j], M2[c], t_zp)` (the hidden zero
//!    point folded into `bias2` the same way).
//! 5. `pixel[c] = lut[t[c] + 128] + 128`.

use std::path::Path;

use crate::error::{Error, Result};

/// A firmware blob that does not follow the documented format.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct BlobFormatError(pub String);

/// A fixed-point multiplier `m / 2^shift`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Fixed {
    m: i32,
    shift: u8,
}

/// One dense layer: output-major int8 weights, int32 biases, per-output multipliers.
#[derive(Debug, Clone)]
struct DenseI8 {
    inputs: usize,
    weights: Vec<i8>,
    bias: Vec<i32>,
    positive: Vec<Fixed>,
    /// Multipliers for a negative accumulator (LeakyReLU folded in); `None`: same as positive.
    negative: Option<Vec<Fixed>>,
}

/// A firmware blob, read and run by the documented rule (see the module docs).
#[derive(Debug, Clone)]
pub struct FirmwareReference {
    z_dim: usize,
    embed_dim: usize,
    classes: usize,
    hidden: usize,
    width: usize,
    height: usize,
    input_scale: f32,
    input_zero_point: i8,
    hidden_zero_point: i8,
    pretanh_zero_point: i8,
    lut: [i8; 256],
    embedding: Vec<i8>,
    layer1: DenseI8,
    layer2: DenseI8,
}

/// A little-endian cursor over the blob; every read is bounds-checked.
struct Cursor<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize, what: &str) -> std::result::Result<&'a [u8], BlobFormatError> {
        let end = self.at.checked_add(n).filter(|e| *e <= self.bytes.len());
        let Some(end) = end else {
            return Err(BlobFormatError(format!(
                "truncated: {what} needs {n} bytes at offset {}, the blob has {}",
                self.at,
                self.bytes.len()
            )));
        };
        let s = &self.bytes[self.at..end];
        self.at = end;
        Ok(s)
    }

    fn i8s(&mut self, n: usize, what: &str) -> std::result::Result<Vec<i8>, BlobFormatError> {
        Ok(self.take(n, what)?.iter().map(|b| *b as i8).collect())
    }

    /// Row-major weights from their stored form: groups of 4 rows, input by input, each
    /// byte `w ^ 0x80`.
    fn grouped(
        &mut self,
        rows: usize,
        inputs: usize,
        what: &str,
    ) -> std::result::Result<Vec<i8>, BlobFormatError> {
        let stored = self.take(rows.div_ceil(4) * 4 * inputs, what)?;
        let mut weights = vec![0i8; rows * inputs];
        for (r, row) in weights.chunks_exact_mut(inputs.max(1)).enumerate() {
            for (i, w) in row.iter_mut().enumerate() {
                *w = (stored[4 * ((r / 4) * inputs + i) + r % 4] ^ 0x80) as i8;
            }
        }
        Ok(weights)
    }

    fn i32s(&mut self, n: usize, what: &str) -> std::result::Result<Vec<i32>, BlobFormatError> {
        Ok(self
            .take(4 * n, what)?
            .chunks_exact(4)
            .map(|c| i32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect())
    }

    fn multipliers(
        &mut self,
        n: usize,
        what: &str,
    ) -> std::result::Result<Vec<Fixed>, BlobFormatError> {
        let m = self.i32s(n, what)?;
        let shifts = self.take(n, what)?;
        m.iter()
            .zip(shifts)
            .enumerate()
            .map(|(c, (&m, &shift))| {
                if m < 0 || !(1..=62).contains(&shift) {
                    Err(BlobFormatError(format!(
                        "{what}: channel {c} has m = {m}, shift = {shift}; need m >= 0 and 1 <= shift <= 62"
                    )))
                } else {
                    Ok(Fixed { m, shift })
                }
            })
            .collect()
    }
}

fn u16_at(b: &[u8], at: usize) -> usize {
    usize::from(u16::from_le_bytes([b[at], b[at + 1]]))
}

fn f32_at(b: &[u8], at: usize) -> f32 {
    f32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

/// Length of the blob's header.
const HEADER: usize = 64;

/// The sizes and input scale the header declares, checked.
struct Header {
    z_dim: usize,
    embed_dim: usize,
    classes: usize,
    hidden: usize,
    width: usize,
    height: usize,
    input_scale: f32,
}

/// Checks what surrounds the sections (length, magic, version, header length, reserved bytes,
/// the trailing CRC-32) and returns the blob without its CRC.
fn check_envelope(blob: &[u8]) -> std::result::Result<&[u8], BlobFormatError> {
    let err = |m: String| Err(BlobFormatError(m));
    if blob.len() < HEADER + 4 {
        return err(format!(
            "{} bytes is shorter than a header and a checksum",
            blob.len()
        ));
    }
    if &blob[..4] != b"GTFW" {
        return err("the magic is not \"GTFW\": not a firmware blob".into());
    }
    let version = u16_at(blob, 4);
    if version != 2 {
        return err(format!(
            "format version {version}; this reference reads version 2"
        ));
    }
    if u16_at(blob, 6) != HEADER {
        return err(format!("header length {}, expected 64", u16_at(blob, 6)));
    }
    if blob[39..HEADER].iter().any(|b| *b != 0) {
        return err("reserved header bytes are not zero".into());
    }
    let (content, crc) = blob.split_at(blob.len() - 4);
    let mut hasher = flate2::Crc::new();
    hasher.update(content);
    let stored = u32::from_le_bytes([crc[0], crc[1], crc[2], crc[3]]);
    if hasher.sum() != stored {
        return err(format!(
            "CRC-32 mismatch (stored {stored:#010x}, computed {:#010x}): corrupt or truncated",
            hasher.sum()
        ));
    }
    Ok(content)
}

/// The header's sizes and input scale (the blob's envelope already checked).
fn read_header(blob: &[u8]) -> std::result::Result<Header, BlobFormatError> {
    let z_dim = u16_at(blob, 8);
    let embed_dim = u16_at(blob, 10);
    let classes = u16_at(blob, 12);
    let hidden = u16_at(blob, 14);
    let width = u16_at(blob, 16);
    let height = u16_at(blob, 18);
    if z_dim == 0 || hidden == 0 || width * height == 0 || (embed_dim == 0) != (classes == 0) {
        return Err(BlobFormatError(format!(
            "invalid dimensions z_dim {z_dim}, embed_dim {embed_dim}, classes {classes}, hidden {hidden}, {width}x{height}"
        )));
    }
    let input_scale = f32_at(blob, 20);
    if !(input_scale.is_finite() && input_scale > 0.0) {
        return Err(BlobFormatError(format!(
            "input scale {input_scale} is not finite and positive"
        )));
    }
    Ok(Header {
        z_dim,
        embed_dim,
        classes,
        hidden,
        width,
        height,
        input_scale,
    })
}

impl FirmwareReference {
    /// Reads a version-2 blob (header, sections, CRC-32 as documented in `firmware::blob`).
    pub fn from_bytes(blob: &[u8]) -> std::result::Result<Self, BlobFormatError> {
        let content = check_envelope(blob)?;
        let Header {
            z_dim,
            embed_dim,
            classes,
            hidden,
            width,
            height,
            input_scale,
        } = read_header(blob)?;
        let (inputs, outputs) = (z_dim + embed_dim, width * height);
        let mut c = Cursor {
            bytes: content,
            at: HEADER,
        };
        let lut_codes = c.i8s(256, "tanh table")?;
        let mut lut = [0i8; 256];
        lut.copy_from_slice(&lut_codes);
        let embedding = c.i8s(classes * embed_dim, "embedding")?;
        let bias1 = c.i32s(hidden, "hidden bias")?;
        let pos1 = c.multipliers(hidden, "hidden multipliers (acc >= 0)")?;
        let neg1 = c.multipliers(hidden, "hidden multipliers (acc < 0)")?;
        let bias2 = c.i32s(outputs, "output bias")?;
        let mult2 = c.multipliers(outputs, "output multipliers")?;
        let padding = c.take((4 - c.at % 4) % 4, "padding")?;
        if padding.iter().any(|b| *b != 0) {
            return Err(BlobFormatError(
                "the padding before the weights is not zero".into(),
            ));
        }
        let w1 = c.grouped(hidden, inputs, "hidden weights")?;
        let w2 = c.grouped(outputs, hidden, "output weights")?;
        if c.at != content.len() {
            return Err(BlobFormatError(format!(
                "{} bytes between the last section and the checksum",
                content.len() - c.at
            )));
        }
        Ok(FirmwareReference {
            z_dim,
            embed_dim,
            classes,
            hidden,
            width,
            height,
            input_scale,
            input_zero_point: blob[36] as i8,
            hidden_zero_point: blob[37] as i8,
            pretanh_zero_point: blob[38] as i8,
            lut,
            embedding,
            layer1: DenseI8 {
                inputs,
                weights: w1,
                bias: bias1,
                positive: pos1,
                negative: Some(neg1),
            },
            layer2: DenseI8 {
                inputs: hidden,
                weights: w2,
                bias: bias2,
                positive: mult2,
                negative: None,
            },
        })
    }

    /// Reads the blob at `path`.
    pub fn read(path: &Path) -> Result<Self> {
        let bytes = crate::fsutil::read_regular_file(path, crate::onnx::MAX_MODEL_BYTES).map_err(
            |source| Error::Read {
                path: path.to_path_buf(),
                error: source,
            },
        )?;
        FirmwareReference::from_bytes(&bytes).map_err(|e| Error::Firmware {
            path: path.to_path_buf(),
            problem: format!("not a valid firmware blob: {e}"),
        })
    }

    /// Length of `z`.
    pub fn z_dim(&self) -> usize {
        self.z_dim
    }

    /// Number of labels (0: unconditional).
    pub fn classes(&self) -> usize {
        self.classes
    }

    /// Image width.
    pub fn width(&self) -> usize {
        self.width
    }

    /// Image height.
    pub fn height(&self) -> usize {
        self.height
    }

    /// Hidden units.
    pub fn hidden(&self) -> usize {
        self.hidden
    }

    /// The int8 input codes `concat(quantize(z), embedding[label])` (step 1).
    pub fn input_codes(&self, z: &[f32], label: Option<usize>) -> Result<Vec<i8>> {
        if z.len() != self.z_dim {
            return Err(Error::Input {
                reason: format!("z has {} values, the blob takes {}", z.len(), self.z_dim),
            });
        }
        let row = match (label, self.classes) {
            (None, 0) => None,
            (Some(l), c) if c > 0 && l < c => Some(l),
            (Some(l), c) if c > 0 => {
                return Err(Error::ClassOutOfRange {
                    class: l,
                    classes: c,
                });
            }
            (Some(_), _) => return Err(Error::NotConditional),
            (None, _) => {
                return Err(Error::Input {
                    reason: "the blob is conditional: give a label".into(),
                });
            }
        };
        let mut codes: Vec<i8> = z
            .iter()
            .map(|v| {
                let steps = (v / self.input_scale).round() as i32; // NaN -> 0, saturating
                steps
                    .saturating_add(i32::from(self.input_zero_point))
                    .clamp(-128, 127) as i8
            })
            .collect();
        if let Some(l) = row {
            codes.extend_from_slice(&self.embedding[l * self.embed_dim..(l + 1) * self.embed_dim]);
        }
        Ok(codes)
    }

    /// Hidden-layer codes from input codes (steps 2–3).
    pub fn hidden_codes(&self, input: &[i8]) -> Vec<i8> {
        self.layer1.run(input, self.hidden_zero_point)
    }

    /// Gray levels from hidden codes (steps 4–5).
    pub fn pixels(&self, hidden: &[i8]) -> Vec<u8> {
        self.layer2
            .run(hidden, self.pretanh_zero_point)
            .into_iter()
            .map(|t| (i16::from(self.lut[(i16::from(t) + 128) as usize]) + 128) as u8)
            .collect()
    }

    /// One sample's `width * height` gray levels from a real `z`.
    pub fn generate(&self, z: &[f32], label: Option<usize>) -> Result<Vec<u8>> {
        let x = self.input_codes(z, label)?;
        Ok(self.pixels(&self.hidden_codes(&x)))
    }

    /// One sample from a seed, with Gantry's noise stream ([`crate::noise`], which the
    /// firmware shares).
    pub fn generate_seed(&self, seed: u64, label: Option<usize>) -> Result<Vec<u8>> {
        self.generate(&crate::noise::noise(1, self.z_dim, seed), label)
    }
}

impl DenseI8 {
    /// The layer on input codes, with the input zero point already folded into `bias`.
    fn run(&self, input: &[i8], output_zp: i8) -> Vec<i8> {
        assert_eq!(input.len(), self.inputs, "input length");
        self.weights
            .chunks_exact(self.inputs)
            .enumerate()
            .map(|(c, row)| {
                let dot: i64 = input
                    .iter()
                    .zip(row)
                    .map(|(x, w)| (i64::from(*x) + 128) * i64::from(*w))
                    .sum();
                // int32 with wrap-around: the sum modulo 2^32.
                let acc = (i64::from(self.bias[c]) + dot) as i32;
                let m = match &self.negative {
                    Some(neg) if acc < 0 => neg[c],
                    _ => self.positive[c],
                };
                requantize(acc, m, output_zp)
            })
            .collect()
    }
}

/// `clamp(round_half_away_from_zero(acc * m / 2^shift) + zp, -128, 127)`, by exact division.
fn requantize(acc: i32, m: Fixed, zp: i8) -> i8 {
    let p = i128::from(acc) * i128::from(m.m);
    let d = 1i128 << m.shift;
    let (q, r) = (p / d, p % d); // truncation toward zero
    let rounded = if 2 * r.abs() >= d { q + p.signum() } else { q };
    (rounded + i128::from(zp)).clamp(-128, 127) as i8
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requantize_rounds_ties_away_from_zero_and_saturates() {
        let half = Fixed {
            m: 1 << 30,
            shift: 31,
        }; // 0.5
        let r = |acc| requantize(acc, half, 0);
        assert_eq!(
            [r(1), r(-1), r(3), r(-3), r(5), r(-5)],
            [1, -1, 2, -2, 3, -3]
        );
        assert_eq!(requantize(2, half, 10), 11);
        assert_eq!(r(1000), 127);
        assert_eq!(r(-1000), -128);
        let big = Fixed {
            m: i32::MAX,
            shift: 1,
        };
        assert_eq!(requantize(i32::MIN, big, 0), -128);
    }
}
