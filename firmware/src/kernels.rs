//! The integer arithmetic of the int8 generator, written down exactly.
//!
//! This module exists so that the firmware and any host reference (the runtime's int8
//! path, a test, another language) compute the same bits. Every function here is plain,
//! allocation-free and usable from `std` code; [`crate::Model::generate`] is nothing but
//! these functions applied in order (its dot products run in [`crate::dense`]'s
//! per-target kernels, which compute the same integers and are tested against
//! [`dot_offsets`]).
//!
//! # The scheme
//!
//! Real values are represented as `real = scale * (code - zero_point)`:
//!
//! - **Activations** (generator input, hidden layer, pre-tanh): int8 codes in
//!   `[-128, 127]`, per-tensor `f32` scale and int8 zero point, calibrated from min/max.
//! - **Weights**: int8 codes in `[-127, 127]`, symmetric (zero point 0), one scale per
//!   output channel; row `c` holds the weights of output `c` (the blob stores them four
//!   rows to a word, [`crate::blob`]).
//! - **Biases**: int32, scale `input_scale * weight_scale[c]`, zero point 0.
//! - **Accumulation** ([`dot_i8`]): `acc = bias + Σ_i (x[i] - x_zp) * w[c][i]` in int32,
//!   two's-complement wrapping on overflow (each product fits in 17 bits; only a hostile
//!   bias can wrap). The blob stores the bias with `-(x_zp + 128) Σ_i w[c][i]` folded in
//!   ([`crate::blob`]), and the firmware's kernels ([`crate::dense`]) sum
//!   `Σ_i (x[i] + 128) * w[c][i]` onto it: the same integers ([`offset_codes`] with zero
//!   point -128 and [`dot_offsets`] are their test oracle).
//! - **Requantization** ([`requantize`]): the real multiplier
//!   `M = input_scale * weight_scale[c] / output_scale` is stored as a
//!   [`QuantizedMultiplier`] `(m, s)` meaning `m / 2^s`, with `0 <= m < 2^31` and
//!   `1 <= s <= 62`. The output code is
//!   `clamp(round_half_away_from_zero(acc * m / 2^s) + out_zp, -128, 127)`, where the
//!   product `acc * m` is exact in 64 bits and the rounding is one single step: add
//!   `2^(s-1)` to `|acc * m|`, shift right by `s`, restore the sign. (This is
//!   TFLite's single-rounding form with ties away from zero instead of ties up, so that
//!   the rule is symmetric.)
//! - **LeakyReLU** ([`leaky_relu_requantize`]) is fused into the hidden layer's
//!   requantization: the accumulator has the sign of the real pre-activation, so an
//!   accumulator `>= 0` is requantized with `M[c]` and a negative one with
//!   `M[c] * alpha` (a second per-channel multiplier). Doing it before the int8 rounding
//!   keeps the small negative values that a separate int8 LeakyReLU would flush to zero.
//! - **tanh** ([`tanh_lookup`]): a 256-entry table indexed by `pre_tanh_code + 128`,
//!   stored in the blob, whose entries are output codes.
//! - **Output codes** are `pixel - 128`: [`code_to_pixel`] maps them to `u8` gray levels
//!   `0..=255`, i.e. `pixel = round_half_away((tanh + 1) * 127.5)` as the quantizer
//!   fills the table.
//! - **Float input** ([`quantize_f32`]): `clamp(round_half_away(x / scale) + zp, -128, 127)`
//!   in `f32`, with `libm::roundf`.

use thiserror::Error;

/// A kernel was called with arguments that do not fit together.
#[derive(Debug, Clone, Copy, PartialEq, Error)]
pub enum KernelError {
    /// Two slices that must match in length do not.
    #[error("{what}: expected {expected} elements, found {found}")]
    LengthMismatch {
        /// Which argument is wrong.
        what: &'static str,
        /// The length the other arguments imply.
        expected: usize,
        /// The length given.
        found: usize,
    },
    /// A dense layer with no inputs has no meaning.
    #[error("a dense layer needs at least one input")]
    EmptyInput,
    /// A fixed-point multiplier outside `0 <= m < 2^31`, `1 <= shift <= 62`.
    #[error(
        "invalid fixed-point multiplier m={multiplier} shift={shift}: need m >= 0 and 1 <= shift <= 62"
    )]
    InvalidMultiplier {
        /// The raw multiplier.
        multiplier: i32,
        /// The raw right shift.
        shift: u8,
    },
    /// A real multiplier that is negative, not finite, or too large (`>= 2^30`) to encode.
    #[error("real multiplier {0} cannot be encoded: it must be finite, >= 0 and < 2^30")]
    UnencodableMultiplier(f64),
}

/// A non-negative real number `multiplier / 2^shift` in fixed point (Q31-style).
///
/// Invariants (checked by [`QuantizedMultiplier::new`]): `multiplier >= 0` and
/// `1 <= shift <= 62`, so `acc * multiplier` fits in an `i64` and the rounding term
/// `2^(shift-1)` never overflows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QuantizedMultiplier {
    multiplier: i32,
    shift: u8,
}

impl QuantizedMultiplier {
    /// The multiplier `0`: every accumulator requantizes to the zero point.
    pub const ZERO: Self = Self {
        multiplier: 0,
        shift: 31,
    };

    /// Validates a raw `(multiplier, shift)` pair, e.g. read from a blob.
    pub const fn new(multiplier: i32, shift: u8) -> Result<Self, KernelError> {
        if multiplier < 0 || shift < 1 || shift > 62 {
            return Err(KernelError::InvalidMultiplier { multiplier, shift });
        }
        Ok(Self { multiplier, shift })
    }

    /// The closest encoding of a real multiplier: `multiplier` normalised into
    /// `[2^30, 2^31)` where the shift allows, rounded half away from zero.
    ///
    /// Multipliers below `2^-32` lose precision (the shift is capped at 62); those of
    /// `2^30` or more are rejected.
    pub fn from_f64(real: f64) -> Result<Self, KernelError> {
        if !real.is_finite() || real < 0.0 {
            return Err(KernelError::UnencodableMultiplier(real));
        }
        if real == 0.0 {
            return Ok(Self::ZERO);
        }
        // real = frac * 2^exp with frac in [0.5, 1); scaling by 2 is exact.
        let mut frac = real;
        let mut exp: i32 = 0;
        while frac >= 1.0 {
            frac *= 0.5;
            exp += 1;
        }
        while frac < 0.5 {
            frac *= 2.0;
            exp -= 1;
        }
        // frac * 2^31 is exact (53-bit mantissa), so the only rounding is this one.
        let mut m = libm::round(frac * 2_147_483_648.0) as i64; // in [2^30, 2^31]
        let mut shift = 31 - exp;
        if m == 1 << 31 {
            m >>= 1;
            shift -= 1;
        }
        if shift < 1 {
            return Err(KernelError::UnencodableMultiplier(real));
        }
        if shift > 62 {
            let extra = shift - 62;
            m = if extra >= 32 {
                0
            } else {
                rounding_shift_right(m, extra as u32)
            };
            shift = 62;
        }
        // m <= 2^31 - 1 and 1 <= shift <= 62 hold here; `new` re-checks for free.
        Self::new(m as i32, shift as u8)
    }

    /// The raw multiplier `m` (in `[0, 2^31)`).
    pub const fn multiplier(self) -> i32 {
        self.multiplier
    }

    /// The raw right shift `s` (in `[1, 62]`).
    pub const fn shift(self) -> u8 {
        self.shift
    }

    /// The real value `m / 2^s` (exact in `f64`).
    pub fn to_f64(self) -> f64 {
        f64::from(self.multiplier) / libm::exp2(f64::from(self.shift))
    }
}

/// Activation quantization parameters: `real = scale * (code - zero_point)`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct QuantParams {
    /// Size of one code step; finite and `> 0`.
    pub scale: f32,
    /// The code that represents real 0.
    pub zero_point: i8,
}

impl QuantParams {
    /// The code for a real value ([`quantize_f32`]).
    pub fn quantize(self, x: f32) -> i8 {
        quantize_f32(x, self.scale, self.zero_point)
    }

    /// The real value of a code: `scale * (code - zero_point)`.
    pub fn dequantize(self, code: i8) -> f32 {
        self.scale * f32::from(i16::from(code) - i16::from(self.zero_point))
    }
}

/// `x >> shift` rounded half away from zero, for `1 <= shift <= 62` and `|x| < 2^62`.
const fn rounding_shift_right(x: i64, shift: u32) -> i64 {
    let half = 1i64 << (shift - 1);
    if x >= 0 {
        (x + half) >> shift
    } else {
        -((-x + half) >> shift)
    }
}

/// Requantizes an int32 accumulator to an int8 code:
/// `clamp(round_half_away_from_zero(acc * m / 2^s) + zero_point, -128, 127)`.
///
/// The product is exact in 64 bits and rounded once (see the module docs).
#[inline]
pub fn requantize(acc: i32, multiplier: QuantizedMultiplier, zero_point: i8) -> i8 {
    let product = i64::from(acc) * i64::from(multiplier.multiplier);
    let scaled = rounding_shift_right(product, u32::from(multiplier.shift));
    let code = scaled + i64::from(zero_point);
    code.clamp(-128, 127) as i8
}

/// Requantization fused with LeakyReLU: `positive` (`M[c]`) for `acc >= 0`,
/// `negative` (`M[c] * alpha`) for `acc < 0`, then as [`requantize`].
#[inline]
pub fn leaky_relu_requantize(
    acc: i32,
    positive: QuantizedMultiplier,
    negative: QuantizedMultiplier,
    zero_point: i8,
) -> i8 {
    let multiplier = if acc >= 0 { positive } else { negative };
    requantize(acc, multiplier, zero_point)
}

/// One output channel of a dense layer without its bias:
/// `Σ_i (input[i] - zero_point) * weights[i]`, summed with int32 wrapping.
///
/// `weights` is row `c` of an output-major weight matrix.
#[inline]
pub fn dot_i8(input: &[i8], zero_point: i8, weights: &[i8]) -> Result<i32, KernelError> {
    if weights.len() != input.len() {
        return Err(KernelError::LengthMismatch {
            what: "weight row",
            expected: input.len(),
            found: weights.len(),
        });
    }
    Ok(dot_unchecked_len(input, zero_point, weights))
}

/// The dot product over the common length of `input` and `weights`.
#[inline]
pub(crate) fn dot_unchecked_len(input: &[i8], zero_point: i8, weights: &[i8]) -> i32 {
    let zp = i32::from(zero_point);
    let mut acc = 0i32;
    for (&x, &w) in input.iter().zip(weights) {
        // |x - zp| <= 255 and |w| <= 128: the product always fits in i32.
        acc = acc.wrapping_add((i32::from(x) - zp) * i32::from(w));
    }
    acc
}

/// The same dot product on inputs whose zero point was subtracted once per layer
/// ([`offset_codes`]): `Σ_i offsets[i] * weights[i]` over the common length.
///
/// This is the firmware's inner loop. Taking the subtraction out of it leaves few enough
/// live values for Thumb-1's eight low registers, so nothing spills to the stack.
#[inline]
pub fn dot_offsets(offsets: &[i16], weights: &[i8]) -> i32 {
    let mut acc = 0i32;
    for (&x, &w) in offsets.iter().zip(weights) {
        acc = acc.wrapping_add(i32::from(x) * i32::from(w));
    }
    acc
}

/// Writes `codes[i] - zero_point` (in `-255..=255`) into `offsets`, over the common length.
#[inline]
pub fn offset_codes(codes: &[i8], zero_point: i8, offsets: &mut [i16]) {
    for (o, &c) in offsets.iter_mut().zip(codes) {
        *o = i16::from(c) - i16::from(zero_point);
    }
}

/// A whole dense layer: `out[c] = bias[c] + dot_i8(input, zero_point, weights[c])`
/// (int32, wrapping), with `weights` output-major (`out.len()` rows of `input.len()`).
pub fn dense_i8(
    input: &[i8],
    zero_point: i8,
    weights: &[i8],
    bias: &[i32],
    out: &mut [i32],
) -> Result<(), KernelError> {
    if input.is_empty() {
        return Err(KernelError::EmptyInput);
    }
    let expected = input.len().saturating_mul(out.len());
    if weights.len() != expected {
        return Err(KernelError::LengthMismatch {
            what: "weights",
            expected,
            found: weights.len(),
        });
    }
    if bias.len() != out.len() {
        return Err(KernelError::LengthMismatch {
            what: "bias",
            expected: out.len(),
            found: bias.len(),
        });
    }
    for ((row, &b), o) in weights.chunks_exact(input.len()).zip(bias).zip(out) {
        *o = b.wrapping_add(dot_unchecked_len(input, zero_point, row));
    }
    Ok(())
}

/// Looks a pre-tanh code up in the 256-entry tanh table (bytes are two's-complement
/// output codes, index `code + 128`).
#[inline]
pub fn tanh_lookup(lut: &[u8; 256], code: i8) -> i8 {
    lut[usize::from(code.cast_unsigned() ^ 0x80)].cast_signed()
}

/// An output code as a gray level: `code + 128` (`-128` is black, `127` white).
#[inline]
pub const fn code_to_pixel(code: i8) -> u8 {
    code.cast_unsigned() ^ 0x80
}

/// A gray level as an output code: `pixel - 128`, the inverse of [`code_to_pixel`].
#[inline]
pub const fn pixel_to_code(pixel: u8) -> i8 {
    (pixel ^ 0x80).cast_signed()
}

/// Quantizes a real value: `clamp(roundf(x / scale) + zero_point, -128, 127)` in `f32`,
/// rounding half away from zero. NaN maps to the zero point (Rust's saturating cast).
#[inline]
pub fn quantize_f32(x: f32, scale: f32, zero_point: i8) -> i8 {
    let steps = libm::roundf(x / scale) as i32;
    steps.saturating_add(i32::from(zero_point)).clamp(-128, 127) as i8
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The exact rule, in 128-bit arithmetic, written independently of the kernel.
    fn reference(acc: i32, m: i32, s: u8, zp: i8) -> i8 {
        let p = i128::from(acc) * i128::from(m);
        let d = 1i128 << s;
        let (q, r) = (p / d, p % d); // truncates toward zero
        let rounded = if 2 * r.abs() >= d { q + p.signum() } else { q };
        (rounded + i128::from(zp)).clamp(-128, 127) as i8
    }

    #[test]
    fn requantize_ties_round_away_from_zero() {
        let half = QuantizedMultiplier::new(1 << 30, 31).unwrap(); // 0.5
        assert_eq!(requantize(1, half, 0), 1); // 0.5 -> 1
        assert_eq!(requantize(-1, half, 0), -1); // -0.5 -> -1
        assert_eq!(requantize(3, half, 0), 2); // 1.5 -> 2
        assert_eq!(requantize(-3, half, 0), -2);
        assert_eq!(requantize(5, half, 0), 3); // 2.5 -> 3, not 2
        assert_eq!(requantize(2, half, 10), 11);
        assert_eq!(requantize(1000, half, 0), 127);
        assert_eq!(requantize(-1000, half, 0), -128);
    }

    #[test]
    fn requantize_matches_exact_reference_on_extremes() {
        for &acc in &[i32::MIN, i32::MIN + 1, -1, 0, 1, i32::MAX, 12345, -98765] {
            for &m in &[0, 1, 1 << 30, i32::MAX] {
                for &s in &[1u8, 2, 31, 40, 62] {
                    for &zp in &[-128i8, 0, 127] {
                        let qm = QuantizedMultiplier::new(m, s).unwrap();
                        assert_eq!(requantize(acc, qm, zp), reference(acc, m, s, zp));
                    }
                }
            }
        }
    }

    #[test]
    fn multiplier_encoding_is_close_and_normalised() {
        for &real in &[1e-9, 0.001, 0.0123, 0.5, 0.75, 1.0, 3.7, 1000.0, 1e8] {
            let qm = QuantizedMultiplier::from_f64(real).unwrap();
            assert!(qm.multiplier() >= 1 << 30, "{real}: {qm:?}");
            let rel = (qm.to_f64() - real).abs() / real;
            assert!(rel <= 1.0 / (1u64 << 30) as f64, "{real}: rel error {rel}");
        }
        assert_eq!(
            QuantizedMultiplier::from_f64(0.0).unwrap(),
            QuantizedMultiplier::ZERO
        );
        // Tiny multipliers lose normalisation but stay representable.
        let tiny = QuantizedMultiplier::from_f64(1e-15).unwrap();
        assert_eq!(tiny.shift(), 62);
        assert!(QuantizedMultiplier::from_f64(2f64.powi(30)).is_err());
        assert!(QuantizedMultiplier::from_f64(-1.0).is_err());
        assert!(QuantizedMultiplier::from_f64(f64::NAN).is_err());
        assert!(QuantizedMultiplier::new(-1, 5).is_err());
        assert!(QuantizedMultiplier::new(1, 0).is_err());
        assert!(QuantizedMultiplier::new(1, 63).is_err());
    }

    #[test]
    fn dense_checks_shapes_and_adds_bias() {
        let x = [1i8, -2, 3];
        let w = [1i8, 1, 1, -1, 0, 2];
        let mut out = [0i32; 2];
        dense_i8(&x, 1, &w, &[10, -10], &mut out).unwrap();
        // (0, -3, 2) . (1,1,1) = -1 ; (0,-3,2) . (-1,0,2) = 4
        assert_eq!(out, [9, -6]);
        assert!(dense_i8(&x, 0, &w[..5], &[0, 0], &mut out).is_err());
        assert!(dense_i8(&x, 0, &w, &[0], &mut out).is_err());
        assert!(dense_i8(&[], 0, &[], &[0, 0], &mut out).is_err());
        assert!(dot_i8(&x, 0, &w[..2]).is_err());
        assert_eq!(dot_i8(&x, 0, &w[..3]), Ok(2));
    }

    #[test]
    fn offset_dot_equals_dot_i8() {
        let x: [i8; 9] = [-128, -1, 0, 1, 127, 55, -77, 3, 100];
        let w: [i8; 9] = [127, -127, 5, -128, 127, -3, 64, 0, -100];
        for zp in [-128i8, -5, 0, 17, 127] {
            let mut off = [0i16; 9];
            offset_codes(&x, zp, &mut off);
            assert_eq!(Ok(dot_offsets(&off, &w)), dot_i8(&x, zp, &w));
        }
    }

    #[test]
    fn pixel_and_code_are_inverse() {
        for p in 0..=255u8 {
            assert_eq!(code_to_pixel(pixel_to_code(p)), p);
        }
        assert_eq!(code_to_pixel(-128), 0);
        assert_eq!(code_to_pixel(127), 255);
        assert_eq!(code_to_pixel(0), 128);
    }

    #[test]
    fn float_quantization_rounds_and_saturates() {
        assert_eq!(quantize_f32(0.25, 0.5, 0), 1); // 0.5 -> 1
        assert_eq!(quantize_f32(-0.25, 0.5, 0), -1);
        assert_eq!(quantize_f32(0.0, 0.1, -3), -3);
        assert_eq!(quantize_f32(1e9, 0.1, 0), 127);
        assert_eq!(quantize_f32(-1e9, 0.1, 0), -128);
        assert_eq!(quantize_f32(f32::NAN, 0.1, 7), 7);
        assert_eq!(quantize_f32(f32::INFINITY, 0.1, 7), 127);
    }

    #[test]
    fn tanh_table_is_indexed_by_code_plus_128() {
        let mut lut = [0u8; 256];
        for (i, e) in lut.iter_mut().enumerate() {
            *e = i as u8;
        }
        assert_eq!(tanh_lookup(&lut, -128), 0);
        assert_eq!(tanh_lookup(&lut, 0), -128); // entry 128 = 0x80
        assert_eq!(tanh_lookup(&lut, 127), -1); // entry 255 = 0xff
    }
}
