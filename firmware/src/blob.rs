//! The firmware weight blob: a compact, versioned, little-endian file that the firmware
//! reads in place, without copying, from flash or RAM.
//!
//! It exists so that a generator trained and quantized on the desktop
//! (`runtime export-firmware`) can be flashed as plain bytes and checked before use: a
//! corrupt, truncated or wrong-version blob is a [`BlobError`], never a panic.
//!
//! # Format, version 2
//!
//! All integers and floats are little-endian. `in = z_dim + embed_dim`,
//! `out = width * height`, and `groups(rows) = ceil(rows / 4)`.
//!
//! | offset | type | field |
//! |---|---|---|
//! | 0 | `[u8; 4]` | magic `b"GTFW"` |
//! | 4 | `u16` | version, `2` |
//! | 6 | `u16` | header length, `64` |
//! | 8 | `u16` | `z_dim` (1..) |
//! | 10 | `u16` | `embed_dim` (0 for an unconditional generator) |
//! | 12 | `u16` | `classes` (0 iff `embed_dim` is 0) |
//! | 14 | `u16` | `hidden` (1..=[`MAX_HIDDEN`]) |
//! | 16 | `u16` | `width` |
//! | 18 | `u16` | `height` (`width * height` in 1..=[`MAX_OUTPUT`]) |
//! | 20 | `f32` | input scale |
//! | 24 | `f32` | hidden scale (informational: the integer path needs only multipliers) |
//! | 28 | `f32` | pre-tanh scale (informational) |
//! | 32 | `f32` | LeakyReLU slope alpha (informational: folded into the negative multipliers) |
//! | 36 | `i8` | input zero point |
//! | 37 | `i8` | hidden zero point |
//! | 38 | `i8` | pre-tanh zero point |
//! | 39..64 | | reserved, all zero |
//!
//! Then the sections, back to back, in this order:
//!
//! | section | type × count |
//! |---|---|
//! | tanh table (index `pre_tanh_code + 128`, entry = output code) | `i8` × 256 |
//! | embedding table, already in the input's quantization, row per class | `i8` × `classes * embed_dim` |
//! | hidden bias, input zero point folded in (below) | `i32` × `hidden` |
//! | hidden multipliers for `acc >= 0` (`m`) | `i32` × `hidden` |
//! | their shifts (`s`) | `u8` × `hidden` |
//! | hidden multipliers for `acc < 0` (LeakyReLU folded in) | `i32` × `hidden` |
//! | their shifts | `u8` × `hidden` |
//! | output bias, hidden zero point folded in | `i32` × `out` |
//! | output multipliers | `i32` × `out` |
//! | their shifts | `u8` × `out` |
//! | zero bytes up to the next offset that is a multiple of 4 | `u8` × 0..=3 |
//! | hidden weights, in groups of 4 rows (below) | `u8` × `4 * groups(hidden) * in` |
//! | output weights, in groups of 4 rows | `u8` × `4 * groups(out) * hidden` |
//! | CRC-32 (ISO-HDLC, as zlib) of every byte before it | `u32` |
//!
//! **Weights.** Row `r` of a layer holds the int8 weights `w[r][i]` of output channel `r`.
//! The rows are stored four at a time, input by input: byte `4 * (g * inputs + i) + k`
//! is `w[4g + k][i] ^ 0x80` (offset binary, `w + 128` as a `u8`), and the missing rows
//! of a last group that is not full are zero weights (`0x80`). So one little-endian
//! word holds one input's weights for four output channels, which is what the
//! microcontroller kernels multiply (see [`crate::dense`]); the sections start at
//! offsets that are multiples of 4, so a blob placed on a 4-byte boundary has them
//! word-aligned.
//!
//! **Biases.** With input codes `x[i]` and input zero point `zp`, a layer computes
//! `b[r] + Σ_i (x[i] - zp) w[r][i]` ([`crate::kernels`]). The blob stores
//! `bias[r] = b[r] - (zp + 128) Σ_i w[r][i]` (wrapping `i32`), so that the same sum is
//! `bias[r] + Σ_i (x[i] + 128) w[r][i]`: a dot product of non-negative input values,
//! with no zero point left to subtract. [`Model::hidden_bias`] and
//! [`Model::output_bias`] return these folded values.
//!
//! See [`crate::kernels`] for what the numbers mean.

use crc::{CRC_32_ISO_HDLC, Crc};
use thiserror::Error;

use crate::kernels::{QuantParams, QuantizedMultiplier};
use crate::{MAX_HIDDEN, MAX_INPUT, MAX_OUTPUT};

/// The first four bytes of every blob.
pub const MAGIC: [u8; 4] = *b"GTFW";
/// The format version this build reads and writes (version 1, with row-major weights and
/// unfolded biases, is refused: re-export it).
pub const VERSION: u16 = 2;
/// Length of the header.
pub const HEADER_LEN: usize = 64;
/// Entries in the tanh lookup table.
pub const LUT_LEN: usize = 256;
/// Length of the trailing checksum.
pub const CRC_LEN: usize = 4;

/// The checksum that closes a blob: CRC-32/ISO-HDLC (the zlib/PNG CRC).
pub const CRC32: Crc<u32> = Crc::<u32>::new(&CRC_32_ISO_HDLC);

/// Why a blob was rejected.
#[derive(Debug, Clone, Copy, PartialEq, Error)]
pub enum BlobError {
    /// Fewer bytes than a header and a checksum.
    #[error(
        "blob is {len} bytes, too short for a {HEADER_LEN}-byte header and checksum: truncated or not a Gantry firmware blob"
    )]
    TooShort {
        /// The blob's length.
        len: usize,
    },
    /// The magic bytes are wrong.
    #[error("bad magic {found:02x?} (expected \"GTFW\"): not a Gantry firmware blob")]
    BadMagic {
        /// The first four bytes found.
        found: [u8; 4],
    },
    /// A version this build does not read.
    #[error(
        "blob format version {found} is not supported (this firmware reads version {VERSION}): re-export it with a matching `runtime export-firmware`"
    )]
    UnsupportedVersion {
        /// The version in the blob.
        found: u16,
    },
    /// The header length does not match the version.
    #[error("header length {found} does not match version {VERSION} ({HEADER_LEN})")]
    BadHeaderLength {
        /// The header length in the blob.
        found: u16,
    },
    /// A reserved header byte is not zero.
    #[error("reserved header byte at offset {offset} is {value:#04x}, must be 0")]
    ReservedNotZero {
        /// Offset of the byte.
        offset: usize,
        /// Its value.
        value: u8,
    },
    /// A dimension is zero, too large for this build, or inconsistent with another.
    #[error("{field} = {value} is invalid: {reason}")]
    BadDimension {
        /// The header field.
        field: &'static str,
        /// Its value.
        value: usize,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The blob ends before the sections its header declares.
    #[error("blob is truncated: header declares {expected} bytes, found {found}")]
    Truncated {
        /// Length implied by the header.
        expected: usize,
        /// Actual length.
        found: usize,
    },
    /// Bytes after the checksum.
    #[error("blob has {extra} unexpected trailing bytes after its {expected} declared bytes")]
    TrailingBytes {
        /// Length implied by the header.
        expected: usize,
        /// How many bytes follow it.
        extra: usize,
    },
    /// The stored CRC-32 does not match the content.
    #[error(
        "checksum mismatch (stored {stored:#010x}, computed {computed:#010x}): the blob is corrupt"
    )]
    ChecksumMismatch {
        /// CRC stored in the blob.
        stored: u32,
        /// CRC of the content.
        computed: u32,
    },
    /// A scale is not a finite positive number.
    #[error("{field} scale {value} must be finite and > 0")]
    BadScale {
        /// Which scale.
        field: &'static str,
        /// Its value.
        value: f32,
    },
    /// The LeakyReLU slope is outside `[0, 1]`.
    #[error("LeakyReLU alpha {0} must be within [0, 1]")]
    BadAlpha(f32),
    /// A fixed-point multiplier violates `m >= 0`, `1 <= shift <= 62`.
    #[error("{section} multiplier of channel {channel} is invalid (m={multiplier}, shift={shift})")]
    BadMultiplier {
        /// Which multiplier section.
        section: &'static str,
        /// Output channel.
        channel: usize,
        /// Raw multiplier.
        multiplier: i32,
        /// Raw shift.
        shift: u8,
    },
}

/// Little-endian readers that cannot panic: they return 0 past the end, and every caller
/// reads inside a range it has already checked.
fn le_u16(bytes: &[u8], at: usize) -> u16 {
    match bytes.get(at..at.saturating_add(2)) {
        Some(&[a, b]) => u16::from_le_bytes([a, b]),
        _ => 0,
    }
}

fn le_u32(bytes: &[u8], at: usize) -> u32 {
    match bytes.get(at..at.saturating_add(4)) {
        Some(&[a, b, c, d]) => u32::from_le_bytes([a, b, c, d]),
        _ => 0,
    }
}

fn le_f32(bytes: &[u8], at: usize) -> f32 {
    f32::from_bits(le_u32(bytes, at))
}

fn byte_i8(bytes: &[u8], at: usize) -> i8 {
    bytes.get(at).copied().unwrap_or(0).cast_signed()
}

/// An `i32` from a 4-byte chunk (0 for any other length, which callers never pass).
#[inline]
pub(crate) fn chunk_i32(chunk: &[u8]) -> i32 {
    match *chunk {
        [a, b, c, d] => i32::from_le_bytes([a, b, c, d]),
        _ => 0,
    }
}

/// The dimensions of a generator, as stored in the header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Dims {
    /// Latent size.
    pub z_dim: usize,
    /// Label-embedding size (0 = unconditional).
    pub embed_dim: usize,
    /// Number of labels (0 = unconditional).
    pub classes: usize,
    /// Hidden units.
    pub hidden: usize,
    /// Image width in pixels.
    pub width: usize,
    /// Image height in pixels.
    pub height: usize,
}

impl Dims {
    /// Generator input length: `z_dim + embed_dim`.
    pub const fn input(&self) -> usize {
        self.z_dim.saturating_add(self.embed_dim)
    }

    /// Pixels per sample: `width * height`.
    pub const fn output(&self) -> usize {
        self.width.saturating_mul(self.height)
    }

    /// Multiply-accumulates per sample: `input * hidden + hidden * output`.
    pub const fn macs(&self) -> usize {
        let first = self.input().saturating_mul(self.hidden);
        first.saturating_add(self.hidden.saturating_mul(self.output()))
    }

    /// Checks every dimension against the format and this build's limits.
    pub fn validate(&self) -> Result<(), BlobError> {
        let bad = |field, value, reason| {
            Err(BlobError::BadDimension {
                field,
                value,
                reason,
            })
        };
        if self.z_dim == 0 {
            return bad("z_dim", self.z_dim, "must be at least 1");
        }
        if (self.embed_dim == 0) != (self.classes == 0) {
            return bad(
                "classes",
                self.classes,
                "classes and embed_dim must both be 0 (unconditional) or both be > 0",
            );
        }
        if self.input() > MAX_INPUT {
            return bad(
                "z_dim + embed_dim",
                self.input(),
                "exceeds MAX_INPUT (512) of this firmware build",
            );
        }
        if self.hidden == 0 || self.hidden > MAX_HIDDEN {
            return bad("hidden", self.hidden, "must be within 1..=MAX_HIDDEN (512)");
        }
        if self.width == 0 || self.height == 0 {
            return bad(
                "width * height",
                self.output(),
                "width and height must be >= 1",
            );
        }
        if self.output() > MAX_OUTPUT {
            return bad(
                "width * height",
                self.output(),
                "exceeds MAX_OUTPUT (4096) of this firmware build",
            );
        }
        if self.classes > usize::from(u16::MAX) {
            return bad("classes", self.classes, "must fit in 16 bits");
        }
        Ok(())
    }

    /// Total blob length these dimensions imply (header, sections, checksum); saturates
    /// instead of overflowing for dimensions that [`Dims::validate`] would reject.
    pub const fn blob_len(&self) -> usize {
        let weights = self.weights_offset();
        let (h, o) = (self.hidden, self.output());
        let hidden = group_bytes(h, self.input());
        let output = group_bytes(o, h);
        weights
            .saturating_add(hidden)
            .saturating_add(output)
            .saturating_add(CRC_LEN)
    }

    /// Offset of the hidden weights from the start of the blob: the sections before
    /// them, rounded up to a multiple of 4.
    pub const fn weights_offset(&self) -> usize {
        let (h, o) = (self.hidden, self.output());
        let parts = [
            HEADER_LEN + LUT_LEN,
            self.classes.saturating_mul(self.embed_dim),
            h.saturating_mul(4 + 4 + 1 + 4 + 1),
            o.saturating_mul(4 + 4 + 1),
        ];
        let mut total = 0usize;
        let mut i = 0;
        while i < parts.len() {
            total = total.saturating_add(parts[i]);
            i += 1;
        }
        total.saturating_add(3) / 4 * 4
    }
}

/// Bytes of a weight section of `rows` rows of `inputs`: whole groups of 4 rows.
const fn group_bytes(rows: usize, inputs: usize) -> usize {
    rows.div_ceil(4).saturating_mul(4).saturating_mul(inputs)
}

/// A dense layer's int8 weights as the blob stores them: in groups of four rows,
/// interleaved input by input, offset binary (see the module docs). Borrowed from the
/// blob; [`Weights::get`] reads one weight, [`crate::dense::LayerInput::dot_rows`] runs
/// the kernels on whole groups.
#[derive(Clone, Copy)]
pub struct Weights<'a> {
    bytes: &'a [u8],
    rows: usize,
    inputs: usize,
}

impl core::fmt::Debug for Weights<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Weights")
            .field("rows", &self.rows)
            .field("inputs", &self.inputs)
            .finish_non_exhaustive()
    }
}

impl<'a> Weights<'a> {
    /// Views `bytes` (at least `4 * ceil(rows / 4) * inputs` of them) as the weights of
    /// `rows` output channels of `inputs` inputs; `None` when they are too few.
    pub fn new(bytes: &'a [u8], rows: usize, inputs: usize) -> Option<Self> {
        let bytes = bytes.get(..group_bytes(rows, inputs))?;
        Some(Self {
            bytes,
            rows,
            inputs,
        })
    }

    /// Output channels (rows).
    pub const fn rows(&self) -> usize {
        self.rows
    }

    /// Inputs per row.
    pub const fn inputs(&self) -> usize {
        self.inputs
    }

    /// The weight of output channel `row` for input `input` (0 out of range).
    pub fn get(&self, row: usize, input: usize) -> i8 {
        if row >= self.rows || input >= self.inputs {
            return 0;
        }
        let at = 4 * ((row / 4) * self.inputs + input) + row % 4;
        (self.bytes.get(at).copied().unwrap_or(0x80) ^ 0x80).cast_signed()
    }

    /// Row `row`'s weights in input order (empty out of range).
    pub fn row(&self, row: usize) -> impl Iterator<Item = i8> + '_ {
        let n = if row < self.rows { self.inputs } else { 0 };
        (0..n).map(move |i| self.get(row, i))
    }

    /// The stored bytes of the groups that hold rows `first..` (whole groups, `4 *
    /// inputs` bytes each; `first` is rounded down to a multiple of 4).
    pub fn groups_from(&self, first: usize) -> &'a [u8] {
        // At most the section's length (`first` is clamped to the rows), so it cannot
        // overflow; a plain product, since Thumb-1 has no 64-bit multiply to saturate.
        let start = (first.min(self.rows) / 4) * (4 * self.inputs);
        self.bytes.get(start..).unwrap_or(&[])
    }

    /// All the stored bytes.
    pub const fn bytes(&self) -> &'a [u8] {
        self.bytes
    }
}

/// A per-channel requantization section: multipliers (`i32` LE) and shifts (`u8`).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Multipliers<'a> {
    pub(crate) m: &'a [u8],
    pub(crate) shift: &'a [u8],
}

impl Multipliers<'_> {
    /// Channel `c`'s multiplier; validated at parse time, [`QuantizedMultiplier::ZERO`]
    /// past the end.
    pub(crate) fn get(&self, c: usize) -> QuantizedMultiplier {
        let m = chunk_i32(self.m.get(4 * c..4 * c + 4).unwrap_or(&[]));
        let s = self.shift.get(c).copied().unwrap_or(0);
        QuantizedMultiplier::new(m, s).unwrap_or(QuantizedMultiplier::ZERO)
    }

    fn validate(&self, section: &'static str) -> Result<(), BlobError> {
        for (channel, (chunk, &shift)) in self.m.chunks_exact(4).zip(self.shift).enumerate() {
            let multiplier = chunk_i32(chunk);
            if QuantizedMultiplier::new(multiplier, shift).is_err() {
                return Err(BlobError::BadMultiplier {
                    section,
                    channel,
                    multiplier,
                    shift,
                });
            }
        }
        Ok(())
    }
}

/// A parsed, validated generator that borrows every weight from the blob bytes.
///
/// Parsing checks the whole blob once (structure, checksum, every multiplier), so
/// inference afterwards cannot meet a malformed value.
#[derive(Clone, Copy)]
pub struct Model<'a> {
    pub(crate) dims: Dims,
    pub(crate) input: QuantParams,
    pub(crate) hidden_q: QuantParams,
    pub(crate) pretanh_q: QuantParams,
    pub(crate) alpha: f32,
    pub(crate) lut: &'a [u8; LUT_LEN],
    pub(crate) embedding: &'a [u8],
    pub(crate) hidden_bias: &'a [u8],
    pub(crate) hidden_pos: Multipliers<'a>,
    pub(crate) hidden_neg: Multipliers<'a>,
    pub(crate) out_bias: &'a [u8],
    pub(crate) out_mult: Multipliers<'a>,
    pub(crate) hidden_weights: &'a [u8],
    pub(crate) out_weights: &'a [u8],
}

impl core::fmt::Debug for Model<'_> {
    /// The header only: the weights would be 100 KB of numbers.
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Model")
            .field("dims", &self.dims)
            .field("input", &self.input)
            .field("hidden", &self.hidden_q)
            .field("pretanh", &self.pretanh_q)
            .field("leaky_alpha", &self.alpha)
            .finish_non_exhaustive()
    }
}

/// Splits `n` bytes off the front of `rest`; the caller checked the total length, so the
/// fallback (an empty slice) is never taken.
fn take<'a>(rest: &mut &'a [u8], n: usize) -> &'a [u8] {
    let (head, tail) = rest.split_at_checked(n).unwrap_or((&[], &[]));
    *rest = tail;
    head
}

impl<'a> Model<'a> {
    /// Parses and validates a blob without copying it.
    ///
    /// Checks, in order: length, magic, version, header length, reserved bytes,
    /// dimensions, exact total length, CRC-32, scales, and every multiplier.
    pub fn parse(blob: &'a [u8]) -> Result<Self, BlobError> {
        if blob.len() < HEADER_LEN + CRC_LEN {
            // Still report a wrong magic or version first: it is the more useful message.
            if let Some(&[a, b, c, d]) = blob.get(..4)
                && [a, b, c, d] != MAGIC
            {
                return Err(BlobError::BadMagic {
                    found: [a, b, c, d],
                });
            }
            return Err(BlobError::TooShort { len: blob.len() });
        }
        let magic = [blob[0], blob[1], blob[2], blob[3]];
        if magic != MAGIC {
            return Err(BlobError::BadMagic { found: magic });
        }
        let version = le_u16(blob, 4);
        if version != VERSION {
            return Err(BlobError::UnsupportedVersion { found: version });
        }
        let header_len = le_u16(blob, 6);
        if usize::from(header_len) != HEADER_LEN {
            return Err(BlobError::BadHeaderLength { found: header_len });
        }
        let mut reserved = blob.iter().enumerate().take(HEADER_LEN).skip(39);
        if let Some((offset, &value)) = reserved.find(|(_, v)| **v != 0) {
            return Err(BlobError::ReservedNotZero { offset, value });
        }
        let dims = Dims {
            z_dim: usize::from(le_u16(blob, 8)),
            embed_dim: usize::from(le_u16(blob, 10)),
            classes: usize::from(le_u16(blob, 12)),
            hidden: usize::from(le_u16(blob, 14)),
            width: usize::from(le_u16(blob, 16)),
            height: usize::from(le_u16(blob, 18)),
        };
        dims.validate()?;
        let expected = dims.blob_len();
        if blob.len() < expected {
            return Err(BlobError::Truncated {
                expected,
                found: blob.len(),
            });
        }
        if blob.len() > expected {
            return Err(BlobError::TrailingBytes {
                expected,
                extra: blob.len() - expected,
            });
        }
        let (content, crc) = blob.split_at(expected - CRC_LEN);
        let stored = le_u32(crc, 0);
        let computed = CRC32.checksum(content);
        if stored != computed {
            return Err(BlobError::ChecksumMismatch { stored, computed });
        }

        let scale = |field, at| {
            let value = le_f32(blob, at);
            if value.is_finite() && value > 0.0 {
                Ok(value)
            } else {
                Err(BlobError::BadScale { field, value })
            }
        };
        let input = QuantParams {
            scale: scale("input", 20)?,
            zero_point: byte_i8(blob, 36),
        };
        let hidden_q = QuantParams {
            scale: scale("hidden", 24)?,
            zero_point: byte_i8(blob, 37),
        };
        let pretanh_q = QuantParams {
            scale: scale("pre-tanh", 28)?,
            zero_point: byte_i8(blob, 38),
        };
        let alpha = le_f32(blob, 32);
        if !(0.0..=1.0).contains(&alpha) {
            return Err(BlobError::BadAlpha(alpha));
        }

        let (h, o) = (dims.hidden, dims.output());
        let mut rest = &content[HEADER_LEN..];
        let lut_bytes = take(&mut rest, LUT_LEN);
        let lut: &[u8; LUT_LEN] = lut_bytes.try_into().unwrap_or(&[0; LUT_LEN]);
        let embedding = take(&mut rest, dims.classes * dims.embed_dim);
        let hidden_bias = take(&mut rest, 4 * h);
        let hidden_pos = Multipliers {
            m: take(&mut rest, 4 * h),
            shift: take(&mut rest, h),
        };
        let hidden_neg = Multipliers {
            m: take(&mut rest, 4 * h),
            shift: take(&mut rest, h),
        };
        let out_bias = take(&mut rest, 4 * o);
        let out_mult = Multipliers {
            m: take(&mut rest, 4 * o),
            shift: take(&mut rest, o),
        };
        let before = content.len() - rest.len();
        let padding = take(&mut rest, dims.weights_offset() - before);
        if let Some(i) = padding.iter().position(|&b| b != 0) {
            return Err(BlobError::ReservedNotZero {
                offset: before + i,
                value: padding[i],
            });
        }
        let hidden_weights = take(&mut rest, group_bytes(h, dims.input()));
        let out_weights = take(&mut rest, group_bytes(o, h));
        hidden_pos.validate("hidden (acc >= 0)")?;
        hidden_neg.validate("hidden (acc < 0)")?;
        out_mult.validate("output")?;

        Ok(Self {
            dims,
            input,
            hidden_q,
            pretanh_q,
            alpha,
            lut,
            embedding,
            hidden_bias,
            hidden_pos,
            hidden_neg,
            out_bias,
            out_mult,
            hidden_weights,
            out_weights,
        })
    }

    /// The generator's dimensions.
    pub const fn dims(&self) -> Dims {
        self.dims
    }

    /// Pixels per sample (`width * height`): the length [`Model::generate`] fills.
    pub const fn output_len(&self) -> usize {
        self.dims.output()
    }

    /// Whether the generator takes a label.
    pub const fn is_conditional(&self) -> bool {
        self.dims.classes > 0
    }

    /// Quantization of the generator input (`z`, and the embedding table).
    pub const fn input_quant(&self) -> QuantParams {
        self.input
    }

    /// Quantization of the hidden activations (after LeakyReLU).
    pub const fn hidden_quant(&self) -> QuantParams {
        self.hidden_q
    }

    /// Quantization of the pre-tanh activations.
    pub const fn pretanh_quant(&self) -> QuantParams {
        self.pretanh_q
    }

    /// The LeakyReLU slope the blob was quantized with.
    pub const fn leaky_alpha(&self) -> f32 {
        self.alpha
    }

    /// The tanh table (bytes are two's-complement output codes).
    pub const fn tanh_table(&self) -> &'a [u8; LUT_LEN] {
        self.lut
    }

    /// The embedding row of `label` as int8 input codes, if the label exists.
    pub fn embedding_row(&self, label: usize) -> Option<&'a [i8]> {
        if label >= self.dims.classes {
            return None;
        }
        let d = self.dims.embed_dim;
        let start = label.checked_mul(d)?;
        let row = self.embedding.get(start..start.checked_add(d)?)?;
        Some(bytes_as_i8(row))
    }

    /// Hidden-layer weights: `hidden` rows of `z_dim + embed_dim`.
    pub fn hidden_weights(&self) -> Weights<'a> {
        Weights {
            bytes: self.hidden_weights,
            rows: self.dims.hidden,
            inputs: self.dims.input(),
        }
    }

    /// Output-layer weights: `width * height` rows of `hidden`.
    pub fn output_weights(&self) -> Weights<'a> {
        Weights {
            bytes: self.out_weights,
            rows: self.dims.output(),
            inputs: self.dims.hidden,
        }
    }

    /// Hidden bias of channel `c` with the input zero point folded in (see the module
    /// docs; 0 past the end).
    pub fn hidden_bias(&self, c: usize) -> i32 {
        chunk_i32(self.hidden_bias.get(4 * c..4 * c + 4).unwrap_or(&[]))
    }

    /// Output bias of channel `c` with the hidden zero point folded in (0 past the end).
    pub fn output_bias(&self, c: usize) -> i32 {
        chunk_i32(self.out_bias.get(4 * c..4 * c + 4).unwrap_or(&[]))
    }

    /// Hidden multipliers of channel `c`: `(acc >= 0, acc < 0)`.
    pub fn hidden_multipliers(&self, c: usize) -> (QuantizedMultiplier, QuantizedMultiplier) {
        (self.hidden_pos.get(c), self.hidden_neg.get(c))
    }

    /// Output multiplier of channel `c`.
    pub fn output_multiplier(&self, c: usize) -> QuantizedMultiplier {
        self.out_mult.get(c)
    }
}

/// Views bytes as int8 codes without copying (same size and alignment).
fn bytes_as_i8(bytes: &[u8]) -> &[i8] {
    // Slices have no stable safe `cast_signed`; `bytemuck` does the reinterpretation
    // without `unsafe` in this crate.
    bytemuck::cast_slice(bytes)
}

#[cfg(feature = "std")]
pub use writer::{LayerParams, ModelParams, WriteError, write};

#[cfg(feature = "std")]
mod writer {
    use std::vec::Vec;

    use thiserror::Error;

    use super::{CRC32, Dims, HEADER_LEN, LUT_LEN, MAGIC, VERSION};
    use crate::blob::BlobError;
    use crate::kernels::{QuantParams, QuantizedMultiplier};

    /// One quantized dense layer, output-major.
    #[derive(Debug, Clone, PartialEq)]
    pub struct LayerParams {
        /// `outputs` rows of `inputs` int8 weights (row `c` = output channel `c`).
        pub weights: Vec<i8>,
        /// int32 bias per output channel (scale `input_scale * weight_scale[c]`).
        pub bias: Vec<i32>,
        /// Per-channel weight scales (not stored in the blob; kept for reports and checks).
        pub weight_scales: Vec<f32>,
        /// Requantization multiplier per output channel.
        pub multipliers: Vec<QuantizedMultiplier>,
    }

    /// Everything a blob holds, in host-friendly form (row-major weights, biases without
    /// the zero points folded in): the input to [`write()`].
    #[derive(Debug, Clone, PartialEq)]
    pub struct ModelParams {
        /// Dimensions.
        pub dims: Dims,
        /// Input (z and embedding) quantization.
        pub input: QuantParams,
        /// Hidden activation quantization (after LeakyReLU).
        pub hidden_quant: QuantParams,
        /// Pre-tanh activation quantization.
        pub pretanh_quant: QuantParams,
        /// LeakyReLU slope (informational; the negative multipliers carry it).
        pub leaky_alpha: f32,
        /// tanh table: entry `i` is the output code for pre-tanh code `i - 128`.
        pub tanh_lut: [i8; LUT_LEN],
        /// `classes` rows of `embed_dim` int8 codes in the input quantization.
        pub embedding: Vec<i8>,
        /// Hidden layer; its `multipliers` apply to accumulators `>= 0`.
        pub hidden: LayerParams,
        /// Hidden multipliers for accumulators `< 0` (`M[c] * alpha`).
        pub hidden_negative: Vec<QuantizedMultiplier>,
        /// Output layer (to pre-tanh codes).
        pub output: LayerParams,
    }

    /// Why [`write()`] refused its parameters.
    #[derive(Debug, Clone, PartialEq, Error)]
    pub enum WriteError {
        /// The dimensions or a header value are invalid.
        #[error("invalid model parameters: {0}")]
        Invalid(#[from] BlobError),
        /// A section's length does not match the dimensions.
        #[error("{section} has {found} entries, dimensions imply {expected}")]
        Length {
            /// Which section.
            section: &'static str,
            /// Length implied by the dimensions.
            expected: usize,
            /// Length given.
            found: usize,
        },
        /// A dimension does not fit the format's 16-bit field.
        #[error("{field} = {value} does not fit in 16 bits")]
        TooLarge {
            /// Which field.
            field: &'static str,
            /// Its value.
            value: usize,
        },
    }

    /// `b[r] - (zp + 128) Σ_i w[r][i]` per row, wrapping (see the module docs).
    fn folded_bias(layer: &LayerParams, inputs: usize, zero_point: i8) -> Vec<i32> {
        let z = i32::from(zero_point) + 128;
        let rows = layer.weights.chunks_exact(inputs.max(1));
        layer
            .bias
            .iter()
            .zip(rows)
            .map(|(&b, row)| {
                let sum = row.iter().map(|&w| i32::from(w)).sum::<i32>();
                b.wrapping_sub(z.wrapping_mul(sum))
            })
            .collect()
    }

    /// Appends row-major `weights` (`rows` of `inputs`) in groups of 4 rows, input by
    /// input, offset binary; missing rows of the last group are zero weights.
    fn grouped(b: &mut Vec<u8>, weights: &[i8], rows: usize, inputs: usize) {
        for g in 0..rows.div_ceil(4) {
            for i in 0..inputs {
                for k in 0..4 {
                    let w = weights.get((4 * g + k) * inputs + i).copied();
                    let w = if 4 * g + k < rows { w.unwrap_or(0) } else { 0 };
                    b.push(w.cast_unsigned() ^ 0x80);
                }
            }
        }
    }

    fn check(section: &'static str, expected: usize, found: usize) -> Result<(), WriteError> {
        if expected == found {
            Ok(())
        } else {
            Err(WriteError::Length {
                section,
                expected,
                found,
            })
        }
    }

    fn u16_field(field: &'static str, value: usize) -> Result<[u8; 2], WriteError> {
        u16::try_from(value)
            .map(u16::to_le_bytes)
            .map_err(|_| WriteError::TooLarge { field, value })
    }

    /// Serialises parameters into a blob (see the module docs for the layout): folds each
    /// layer's input zero point into its biases and stores its weights in groups of 4
    /// rows.
    ///
    /// The result always parses with [`super::Model::parse`]: the same checks run
    /// before anything is written.
    pub fn write(p: &ModelParams) -> Result<Vec<u8>, WriteError> {
        let d = p.dims;
        d.validate()?;
        let (h, o) = (d.hidden, d.output());
        check("embedding", d.classes * d.embed_dim, p.embedding.len())?;
        check("hidden weights", h * d.input(), p.hidden.weights.len())?;
        check("hidden bias", h, p.hidden.bias.len())?;
        check("hidden multipliers", h, p.hidden.multipliers.len())?;
        check("hidden negative multipliers", h, p.hidden_negative.len())?;
        check("output weights", o * h, p.output.weights.len())?;
        check("output bias", o, p.output.bias.len())?;
        check("output multipliers", o, p.output.multipliers.len())?;
        for (field, q) in [
            ("input", p.input),
            ("hidden", p.hidden_quant),
            ("pre-tanh", p.pretanh_quant),
        ] {
            if !(q.scale.is_finite() && q.scale > 0.0) {
                return Err(BlobError::BadScale {
                    field,
                    value: q.scale,
                }
                .into());
            }
        }
        if !(0.0..=1.0).contains(&p.leaky_alpha) {
            return Err(BlobError::BadAlpha(p.leaky_alpha).into());
        }

        let mut b = Vec::with_capacity(d.blob_len());
        b.extend_from_slice(&MAGIC);
        b.extend_from_slice(&VERSION.to_le_bytes());
        b.extend_from_slice(&(HEADER_LEN as u16).to_le_bytes());
        for (field, value) in [
            ("z_dim", d.z_dim),
            ("embed_dim", d.embed_dim),
            ("classes", d.classes),
            ("hidden", d.hidden),
            ("width", d.width),
            ("height", d.height),
        ] {
            b.extend_from_slice(&u16_field(field, value)?);
        }
        for f in [
            p.input.scale,
            p.hidden_quant.scale,
            p.pretanh_quant.scale,
            p.leaky_alpha,
        ] {
            b.extend_from_slice(&f.to_le_bytes());
        }
        for zp in [
            p.input.zero_point,
            p.hidden_quant.zero_point,
            p.pretanh_quant.zero_point,
        ] {
            b.push(zp.cast_unsigned());
        }
        b.resize(HEADER_LEN, 0);

        let codes = |b: &mut Vec<u8>, v: &[i8]| b.extend(v.iter().map(|c| c.cast_unsigned()));
        let words = |b: &mut Vec<u8>, v: &[i32]| {
            for x in v {
                b.extend_from_slice(&x.to_le_bytes());
            }
        };
        let mults = |b: &mut Vec<u8>, v: &[QuantizedMultiplier]| {
            for m in v {
                b.extend_from_slice(&m.multiplier().to_le_bytes());
            }
            b.extend(v.iter().map(|m| m.shift()));
        };
        codes(&mut b, &p.tanh_lut);
        codes(&mut b, &p.embedding);
        let hidden_bias = folded_bias(&p.hidden, d.input(), p.input.zero_point);
        words(&mut b, &hidden_bias);
        mults(&mut b, &p.hidden.multipliers);
        mults(&mut b, &p.hidden_negative);
        let output_bias = folded_bias(&p.output, h, p.hidden_quant.zero_point);
        words(&mut b, &output_bias);
        mults(&mut b, &p.output.multipliers);
        b.resize(d.weights_offset(), 0);
        grouped(&mut b, &p.hidden.weights, h, d.input());
        grouped(&mut b, &p.output.weights, o, h);
        let crc = CRC32.checksum(&b);
        b.extend_from_slice(&crc.to_le_bytes());
        debug_assert_eq!(b.len(), d.blob_len());
        Ok(b)
    }
}
