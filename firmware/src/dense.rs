//! The dense layers' dot products, fast on each microcontroller and bit-exact with
//! [`crate::kernels::dot_offsets`].
//!
//! This exists because the dot products are nearly all of a sample's work (114,432
//! multiply-accumulates for the MNIST generator), and the portable loop costs about ten
//! Cortex-M0+ cycles per MAC. [`crate::kernels`] stays the specification and the test
//! oracle; this module only computes the same integers faster.
//!
//! # How
//!
//! A layer's input is loaded once into a [`LayerInput`]: the zero point is subtracted
//! (the offsets `code - zero_point`, in `-255..=255`, as [`crate::kernels::offset_codes`])
//! and stored as 32-bit lanes in the layout of this target's kernel. Blocks of output
//! channels are then [`LayerInput::dot_rows`] over their weight rows, read in place from
//! the blob. Each row is split into up to 3 bytes before its first 4-byte boundary,
//! whole aligned words, and up to 3 bytes after, so the blob needs no alignment:
//!
//! - **thumbv6m** (Cortex-M0/M0+): lane `i` holds `offset[i]` as an `i32`. Per weight
//!   word one `LDM` fetches the 4 weights, one `LDM` the 4 lanes, `SXTB` /
//!   `LSLS`+`ASRS` / `ASRS #24` sign-extend the weights, 4 `MULS` and 4 `ADD`s into an
//!   accumulator in a high register: 16 instructions, 21 cycles per 4 MACs on an M0+ with
//!   the single-cycle multiplier (RP2040), a block of rows per call.
//! - **thumbv7em** (Cortex-M4/M7, DSP extension): lane `i` holds the pair
//!   `(offset[i], offset[i + 2])` as two `i16`. Per weight word `SXTB16` gives
//!   `(w0, w2)`, `SXTB16 …, ROR #8` gives `(w1, w3)`, and two `SMLAD` add all four
//!   products: two MACs per instruction.
//! - **other targets** (the host): the thumbv6m layout with the loops written in Rust,
//!   so host tests run the same splitting, decoding and lane arithmetic.
//!
//! A [`PairInput`] holds the inputs of two samples, `o_a + (o_b << 16)` per lane, for
//! [`crate::Model::generate_pair`]: on thumbv6m one `MULS` of a lane by a weight forms
//! both samples' products (below), 30 cycles per 8 MACs.
//!
//! # Why the sums are exact
//!
//! Offsets are in `-255..=255` and weights in `-128..=127`, so every product has
//! `|o * w| <= 255 * 128 = 32,640 < 2^15`:
//!
//! - thumbv6m: each `MULS` of a sign-extended weight by an `i32` offset is exact; the
//!   32-bit additions wrap modulo `2^32` exactly as the specification's `wrapping_add`,
//!   and wrapping addition is associative and commutative, so summing in another order
//!   (head, words, tail) gives the same bits.
//! - thumbv7em: both halves of a lane are exact `i16` (`|o| <= 255`), as are the
//!   `SXTB16` halves; `SMLAD` forms both 16×16 products exactly and adds them and the
//!   accumulator, keeping the low 32 bits (it only sets the sticky Q flag on signed
//!   overflow): again addition modulo `2^32`.
//! - two samples: the lane is the integer `L = o_a + 65536 * o_b` and `t = L * w =
//!   o_a w + 65536 o_b w` fits an `i32` (`65536 * 32,640 + 32,640 < 2^31`). With
//!   `lo = o_a w` in `[-2^15, 2^15)`, `floor((t + 2^15) / 2^16) = o_b w` exactly
//!   (`lo + 2^15` is in `[0, 2^16)`), which Thumb-1 computes as `asrs #16` plus the
//!   carry it leaves (bit 15 of `t`). Summing those gives `Σ o_b w`, summing `t` gives
//!   `Σ o_a w + 65536 Σ o_b w`, both modulo `2^32`; their difference is `Σ o_a w`.
//!   A field never holds more than one product, so no sum can spill into the other.
//!
//! # Why one sample gets no such trick
//!
//! Within one dot product no two products share a factor, so a `MULS` can only pair two
//! weights of one row (`(x_p + x_q << 16) * (w_q + w_p << 16)` has `x_p w_p + x_q w_q`
//! in its high half, modulo `2^16`): that needs both operands centred to 8 bits (codes
//! instead of offsets, then a row sum for the zero point), sign-extended weight fields
//! and the same per-product extraction. Counted on Thumb-1's eight low registers it
//! costs 21 cycles per 4 MACs, no fewer than the plain loop (docs/BENCHMARKS.md).

#[cfg(gantry_dense = "thumbv6m")]
mod thumbv6m;
#[cfg(gantry_dense = "thumbv7em")]
mod thumbv7em;

use crate::{MAX_HIDDEN, MAX_INPUT};

/// Inputs a [`LayerInput`] holds: the wider of the two layers this build accepts.
pub const CAPACITY: usize = if MAX_INPUT > MAX_HIDDEN {
    MAX_INPUT
} else {
    MAX_HIDDEN
};

/// How the 32-bit lanes of a [`LayerInput`] hold the offsets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Layout {
    /// Lane `i` is `offset[i]` as an `i32` (thumbv6m and portable).
    #[cfg_attr(gantry_dense = "thumbv7em", allow(dead_code))]
    Lanes,
    /// Lane `i` is `offset[i]` in its low half and `offset[i + 2]` (0 past the end) in
    /// its high half, both `i16` (thumbv7em's `SMLAD`).
    Pairs,
}

/// The layout this target's kernel reads.
#[cfg(gantry_dense = "thumbv7em")]
const NATIVE: Layout = Layout::Pairs;
/// The layout this target's kernel reads.
#[cfg(not(gantry_dense = "thumbv7em"))]
const NATIVE: Layout = Layout::Lanes;

/// The input of one dense layer with its zero point subtracted, laid out for this
/// target's dot-product kernel: 4 bytes per input, [`CAPACITY`] inputs (2 KB).
///
/// Load it once per layer with [`LayerInput::load`], then take the dot products of the
/// output channels' weight rows with [`LayerInput::dot_rows`] (or [`LayerInput::dot`]).
#[derive(Clone)]
pub struct LayerInput {
    lanes: [u32; CAPACITY],
    len: usize,
}

impl Default for LayerInput {
    fn default() -> Self {
        Self::new()
    }
}

impl core::fmt::Debug for LayerInput {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("LayerInput")
            .field("len", &self.len)
            .finish_non_exhaustive()
    }
}

impl LayerInput {
    /// An empty input.
    pub const fn new() -> Self {
        Self {
            lanes: [0; CAPACITY],
            len: 0,
        }
    }

    /// Number of inputs loaded.
    pub const fn len(&self) -> usize {
        self.len
    }

    /// Whether no input is loaded.
    pub const fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Loads `codes[i] - zero_point` for the first [`CAPACITY`] codes, replacing what was
    /// there (the same offsets as [`crate::kernels::offset_codes`]).
    pub fn load(&mut self, codes: &[i8], zero_point: i8) {
        self.load_as(NATIVE, codes, zero_point);
    }

    /// Loads `n` codes (at most [`CAPACITY`]) that `fill` writes into the slice it is
    /// given, which is this buffer's own storage: no second buffer is needed. An error
    /// from `fill` is returned and leaves the input empty.
    pub fn load_with<E>(
        &mut self,
        n: usize,
        zero_point: i8,
        fill: impl FnOnce(&mut [i8]) -> Result<(), E>,
    ) -> Result<(), E> {
        let n = n.min(CAPACITY);
        self.len = 0;
        fill(self.bytes_mut().get_mut(..n).unwrap_or(&mut []))?;
        self.expand(NATIVE, n, zero_point);
        Ok(())
    }

    /// `Σ_i offset[i] * weights[i]` over the common length of the loaded input and
    /// `weights`, summed with `i32` wrapping: [`crate::kernels::dot_offsets`] exactly.
    #[inline]
    pub fn dot(&self, weights: &[i8]) -> i32 {
        self.loaded().dot(weights)
    }

    /// `out[r] = self.dot(row r)` for the consecutive rows of `len()` weights in
    /// `weights`, as many as both `weights` and `out` hold (`out` all zeros if nothing
    /// is loaded). On thumbv6m one call runs them all, which saves the per-row call.
    #[inline]
    pub fn dot_rows(&self, weights: &[i8], out: &mut [i32]) {
        self.loaded().dot_rows(weights, out);
    }

    /// The loaded input, for dot products.
    #[inline]
    pub(crate) fn loaded(&self) -> Loaded<'_> {
        Loaded {
            lanes: self.lanes.get(..self.len).unwrap_or(&[]),
            layout: NATIVE,
        }
    }

    /// The loaded input and, beside it, the bytes it does not use (`4 * (CAPACITY -
    /// len)` of them), where the next layer's codes can be written while this one is
    /// read; [`LayerInput::load_spare`] then loads them.
    pub(crate) fn split_spare(&mut self) -> (Loaded<'_>, &mut [i8]) {
        let (used, spare) = self.lanes.split_at_mut(self.len.min(CAPACITY));
        let loaded = Loaded {
            lanes: used,
            layout: NATIVE,
        };
        (loaded, bytemuck::cast_slice_mut(spare))
    }

    /// Loads the first `n` codes written to the spare bytes of [`LayerInput::split_spare`].
    pub(crate) fn load_spare(&mut self, n: usize, zero_point: i8) {
        self.load_spare_as(NATIVE, n, zero_point);
    }

    fn load_spare_as(&mut self, layout: Layout, n: usize, zero_point: i8) {
        let start = 4 * self.len;
        let bytes = self.bytes_mut();
        let n = n.min(bytes.len().saturating_sub(start));
        bytes.copy_within(start..start + n, 0);
        self.expand(layout, n, zero_point);
    }

    fn load_as(&mut self, layout: Layout, codes: &[i8], zero_point: i8) {
        let codes = codes.get(..CAPACITY).unwrap_or(codes);
        if let Some(front) = self.bytes_mut().get_mut(..codes.len()) {
            front.copy_from_slice(codes);
        }
        self.expand(layout, codes.len(), zero_point);
    }

    fn bytes(&self) -> &[i8] {
        bytemuck::cast_slice(&self.lanes[..])
    }

    fn bytes_mut(&mut self) -> &mut [i8] {
        bytemuck::cast_slice_mut(&mut self.lanes[..])
    }

    /// Turns the `n` codes in the first `n` bytes into lanes, in place: lane `i`
    /// overwrites bytes `4i..4i + 4`, whose codes (all `>= i`) were read already when
    /// going from the last lane down.
    fn expand(&mut self, layout: Layout, n: usize, zero_point: i8) {
        let zp = i32::from(zero_point);
        for i in (0..n).rev() {
            let code = self.bytes().get(i).copied().unwrap_or(zero_point);
            if let Some(lane) = self.lanes.get_mut(i) {
                // In -255..=255: exact in i32, and in i16 for the pair layout.
                *lane = (i32::from(code) - zp).cast_unsigned();
            }
        }
        self.len = n;
        if layout == Layout::Pairs {
            // Lane i takes offset[i + 2] into its high half; reading the low halves of
            // later lanes before they are rewritten keeps this in place.
            for i in 0..n {
                let ahead = self.lanes.get(i + 2).filter(|_| i + 2 < n);
                let high = ahead.map_or(0, |&l| l & 0xffff);
                if let Some(lane) = self.lanes.get_mut(i) {
                    *lane = (*lane & 0xffff) | (high << 16);
                }
            }
        }
    }
}

/// A loaded [`LayerInput`], borrowed for its dot products.
#[derive(Clone, Copy)]
pub(crate) struct Loaded<'a> {
    lanes: &'a [u32],
    layout: Layout,
}

impl Loaded<'_> {
    /// Number of inputs.
    pub(crate) fn len(&self) -> usize {
        self.lanes.len()
    }

    /// As [`LayerInput::dot`].
    #[inline]
    pub(crate) fn dot(&self, weights: &[i8]) -> i32 {
        let n = weights.len().min(self.lanes.len());
        let input = Loaded {
            lanes: self.lanes.get(..n).unwrap_or(&[]),
            layout: self.layout,
        };
        let mut out = [0];
        input.dot_rows(weights.get(..n).unwrap_or(&[]), &mut out);
        out[0]
    }

    /// As [`LayerInput::dot_rows`].
    #[inline]
    pub(crate) fn dot_rows(&self, weights: &[i8], out: &mut [i32]) {
        match self.layout {
            #[cfg(gantry_dense = "thumbv6m")]
            Layout::Lanes => thumbv6m::rows(self.lanes, weights, out),
            #[cfg(gantry_dense = "thumbv7em")]
            Layout::Pairs => thumbv7em::rows(self.lanes, weights, out),
            #[allow(unreachable_patterns)]
            _ => {
                let n = self.lanes.len();
                if n == 0 {
                    out.fill(0);
                }
                for (o, row) in out.iter_mut().zip(weights.chunks_exact(n.max(1))) {
                    *o = dot_model(self.layout, self.lanes, row);
                }
            }
        }
    }
}

/// The inputs of one dense layer for two samples at once, zero point subtracted: lane
/// `i` is `offset_a[i] + (offset_b[i] << 16)` (4 bytes per input, [`CAPACITY`] inputs,
/// 2 KB). [`PairInput::dot_rows`] gives each row's dot products with both.
#[derive(Clone)]
pub struct PairInput {
    lanes: [u32; CAPACITY],
    len: usize,
}

impl Default for PairInput {
    fn default() -> Self {
        Self::new()
    }
}

impl core::fmt::Debug for PairInput {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("PairInput")
            .field("len", &self.len)
            .finish_non_exhaustive()
    }
}

impl PairInput {
    /// An empty input.
    pub const fn new() -> Self {
        Self {
            lanes: [0; CAPACITY],
            len: 0,
        }
    }

    /// Number of inputs loaded (per sample).
    pub const fn len(&self) -> usize {
        self.len
    }

    /// Whether no input is loaded.
    pub const fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Loads the codes of sample a and of sample b, over their common length (at most
    /// [`CAPACITY`]), with the zero point subtracted from both.
    pub fn load(&mut self, codes: [&[i8]; 2], zero_point: i8) {
        let [a, b] = codes;
        let zp = i32::from(zero_point);
        let mut len = 0;
        for ((lane, &a), &b) in self.lanes.iter_mut().zip(a).zip(b) {
            let (oa, ob) = (i32::from(a) - zp, i32::from(b) - zp);
            // The integer oa + 65536 * ob: |ob| <= 255, so it cannot overflow.
            *lane = oa.wrapping_add(ob << 16).cast_unsigned();
            len += 1;
        }
        self.len = len;
    }

    /// `[Σ_i offset_a[i] * weights[i], Σ_i offset_b[i] * weights[i]]` over the common
    /// length, each summed with `i32` wrapping: [`crate::kernels::dot_offsets`] for each
    /// sample, exactly.
    pub fn dot(&self, weights: &[i8]) -> [i32; 2] {
        let n = weights.len().min(self.len);
        let mut out = [[0; 2]];
        rows_pair(
            self.lanes.get(..n).unwrap_or(&[]),
            weights.get(..n).unwrap_or(&[]),
            &mut out,
        );
        out[0]
    }

    /// `out[r] = self.dot(row r)` for the consecutive rows of `len()` weights in
    /// `weights`, as many as both `weights` and `out` hold (`out` all zeros if nothing
    /// is loaded).
    pub fn dot_rows(&self, weights: &[i8], out: &mut [[i32; 2]]) {
        rows_pair(self.lanes.get(..self.len).unwrap_or(&[]), weights, out);
    }
}

/// [`PairInput::dot_rows`] on its lanes: the target's kernel on thumbv6m, else the Rust
/// model of it.
#[inline]
fn rows_pair(lanes: &[u32], weights: &[i8], out: &mut [[i32; 2]]) {
    #[cfg(gantry_dense = "thumbv6m")]
    thumbv6m::rows_pair(lanes, weights, out);
    #[cfg(not(gantry_dense = "thumbv6m"))]
    {
        let n = lanes.len();
        if n == 0 {
            out.fill([0; 2]);
        }
        for (o, row) in out.iter_mut().zip(weights.chunks_exact(n.max(1))) {
            *o = dot_pair_model(lanes, row);
        }
    }
}

/// The two-sample lane arithmetic of the thumbv6m kernel, operation for operation
/// (see the module docs).
#[cfg_attr(gantry_dense = "thumbv6m", allow(dead_code))]
fn dot_pair_model(lanes: &[u32], weights: &[i8]) -> [i32; 2] {
    let (mut sum_t, mut sum_hi) = (0i32, 0i32);
    for (&lane, &w) in lanes.iter().zip(weights) {
        let t = lane.cast_signed().wrapping_mul(i32::from(w)); // muls
        sum_t = sum_t.wrapping_add(t); // add r8, t
        let carry = (t >> 15) & 1; // the bit asrs #16 shifts out last
        sum_hi = sum_hi.wrapping_add(t >> 16).wrapping_add(carry); // asrs; adcs
    }
    [sum_t.wrapping_sub(sum_hi << 16), sum_hi]
}

/// The kernels in Rust: the head, word and tail split the assembly makes, with its word
/// loop for `layout`.
fn dot_model(layout: Layout, lanes: &[u32], weights: &[i8]) -> i32 {
    let n = weights.len().min(lanes.len());
    let lanes = lanes.get(..n).unwrap_or(&[]);
    let bytes: &[u8] = bytemuck::cast_slice(weights.get(..n).unwrap_or(&[]));
    let (head, words, tail) = bytemuck::pod_align_to::<u8, u32>(bytes);
    let (lanes_head, rest) = lanes.split_at_checked(head.len()).unwrap_or((&[], &[]));
    let (lanes_words, lanes_tail) = rest.split_at_checked(4 * words.len()).unwrap_or((&[], &[]));
    let words_dot = match layout {
        Layout::Lanes => words_dot_lanes(lanes_words, words),
        Layout::Pairs => words_dot_pairs(lanes_words, words),
    };
    bytes_dot(layout, lanes_head, head)
        .wrapping_add(words_dot)
        .wrapping_add(bytes_dot(layout, lanes_tail, tail))
}

/// The offset a lane holds for its own input.
#[inline]
fn lane_offset(layout: Layout, lane: u32) -> i32 {
    match layout {
        Layout::Lanes => lane.cast_signed(),
        Layout::Pairs => i32::from((lane as u16).cast_signed()),
    }
}

/// The per-byte path (row head and tail).
#[inline]
fn bytes_dot(layout: Layout, lanes: &[u32], bytes: &[u8]) -> i32 {
    let mut acc = 0i32;
    for (&lane, &b) in lanes.iter().zip(bytes) {
        acc = acc.wrapping_add(lane_offset(layout, lane) * i32::from(b.cast_signed()));
    }
    acc
}

/// The four weights of a little-endian word, sign-extended (`SXTB`, `LSLS`+`ASRS`,
/// `ASRS #24` on Thumb-1).
#[inline]
fn weights_of(word: u32) -> [i32; 4] {
    let w = word.cast_signed();
    [(w << 24) >> 24, (w << 16) >> 24, (w << 8) >> 24, w >> 24]
}

/// The thumbv6m word loop in Rust: lanes are `i32` offsets.
fn words_dot_lanes(lanes: &[u32], words: &[u32]) -> i32 {
    let mut acc = 0i32;
    for (x, &word) in lanes.chunks_exact(4).zip(words) {
        for (&lane, w) in x.iter().zip(weights_of(word)) {
            acc = acc.wrapping_add(lane.cast_signed() * w);
        }
    }
    acc
}

/// `SXTB16`: bytes 0 and 2 of `x`, sign-extended into the two halves.
fn sxtb16(x: u32) -> u32 {
    let lo = u32::from((x as u8).cast_signed() as u16);
    let hi = u32::from(((x >> 16) as u8).cast_signed() as u16);
    lo | (hi << 16)
}

/// `SMLAD`: `acc + lo(a) * lo(b) + hi(a) * hi(b)` on signed halves, modulo `2^32`.
fn smlad(a: u32, b: u32, acc: i32) -> i32 {
    let half = |x: u32, shift: u32| i32::from(((x >> shift) as u16).cast_signed());
    acc.wrapping_add(half(a, 0) * half(b, 0))
        .wrapping_add(half(a, 16) * half(b, 16))
}

/// The thumbv7em word loop in Rust, instruction for instruction: lanes are
/// `(offset[i], offset[i + 2])` pairs and only lanes `4k` and `4k + 1` are read.
fn words_dot_pairs(lanes: &[u32], words: &[u32]) -> i32 {
    let mut acc = 0i32;
    for (x, &word) in lanes.chunks_exact(4).zip(words) {
        if let [even, odd, ..] = *x {
            acc = smlad(sxtb16(word), even, acc); // w0 * o0 + w2 * o2
            acc = smlad(sxtb16(word.rotate_right(8)), odd, acc); // w1 * o1 + w3 * o3
        }
    }
    acc
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::kernels::{dot_offsets, offset_codes};

    /// The specification's result for codes, zero point and weights.
    fn oracle(codes: &[i8], zp: i8, weights: &[i8]) -> i32 {
        let mut off = [0i16; CAPACITY];
        offset_codes(codes, zp, &mut off);
        dot_offsets(off.get(..codes.len()).unwrap_or(&[]), weights)
    }

    /// `dot` at every alignment of the weight row (the blob has none), in both layouts.
    fn check_all(codes: &[i8], zp: i8, weights: &[i8]) {
        // Room to shift the row to each of the four alignments of a word.
        let mut storage = [0u32; CAPACITY / 4 + 2];
        let bytes: &mut [u8] = bytemuck::cast_slice_mut(&mut storage);
        for layout in [Layout::Lanes, Layout::Pairs] {
            let mut x = LayerInput::new();
            x.load_as(layout, codes, zp);
            for shift in 0..4 {
                let row = &mut bytes[shift..shift + weights.len()];
                for (dst, &w) in row.iter_mut().zip(weights) {
                    *dst = w.cast_unsigned();
                }
                let row: &[i8] = bytemuck::cast_slice(row);
                let loaded = Loaded {
                    lanes: &x.lanes[..x.len],
                    layout,
                };
                assert_eq!(
                    loaded.dot(row),
                    oracle(codes, zp, weights),
                    "{layout:?}, row offset {shift}, {} inputs, zp {zp}",
                    codes.len()
                );
            }
        }
    }

    #[test]
    fn extremes_at_every_length_and_alignment() {
        for n in 0..=41 {
            for (c, w) in [(-128i8, -128i8), (127, 127), (-128, 127), (127, -128)] {
                for zp in [-128i8, 0, 127] {
                    check_all(&[c; 41][..n], zp, &[w; 41][..n]);
                }
            }
        }
    }

    #[test]
    fn full_capacity_of_extremes_wraps_like_the_spec() {
        // 512 products of 255 * -128: far from wrapping, but the longest rows allowed.
        check_all(&[127; CAPACITY], -128, &[-128; CAPACITY]);
        check_all(&[-128; CAPACITY], 127, &[-128; CAPACITY]);
    }

    #[test]
    fn pair_lanes_hold_offset_and_offset_two_ahead() {
        let mut x = LayerInput::new();
        x.load_as(Layout::Pairs, &[1, -2, 3, -4, 5], 0);
        let lanes = &x.lanes[..5];
        assert_eq!(lanes[0], 1 | (3 << 16));
        assert_eq!(lanes[1], 0xfffe | (0xfffc << 16));
        assert_eq!(lanes[2], 3 | (5 << 16));
        assert_eq!(lanes[3], 0xfffc); // offset[5] is past the end: 0
        assert_eq!(lanes[4], 5);
    }

    #[test]
    fn weights_of_sign_extends_each_byte() {
        assert_eq!(weights_of(0x807f_ff01), [1, -1, 127, -128]);
        assert_eq!(sxtb16(0x0080_00ff), 0xff80_ffff);
        assert_eq!(smlad(0xffff_0002, 0x0003_0004, 10), 10 + 8 - 3);
    }

    #[test]
    fn codes_written_in_place_or_beside_load_like_a_copy() {
        let codes: [i8; 37] = core::array::from_fn(|i| (i as i8).wrapping_mul(37));
        for layout in [Layout::Lanes, Layout::Pairs] {
            let mut want = LayerInput::new();
            want.load_as(layout, &codes, -5);
            let mut x = LayerInput::new();
            x.load_with(codes.len(), -5, |dst| {
                dst.copy_from_slice(&codes);
                Ok::<(), ()>(())
            })
            .unwrap();
            if layout == Layout::Pairs {
                // load_with always uses the native layout: redo it in this one.
                x.load_as(layout, &codes, -5);
            }
            assert_eq!(&x.lanes[..x.len], &want.lanes[..want.len]);
            // The next layer's codes, longer and shorter than this one's, via the spare bytes.
            for next in [&codes[..], &codes[..3], &[0i8; 120][..]] {
                let mut y = want.clone();
                let (_, spare) = y.split_spare();
                spare[..next.len()].copy_from_slice(next);
                y.load_spare_as(layout, next.len(), 7);
                let mut z = LayerInput::new();
                z.load_as(layout, next, 7);
                assert_eq!(&y.lanes[..y.len], &z.lanes[..z.len], "{layout:?}");
            }
        }
        let mut x = LayerInput::new();
        x.load(&codes, 0);
        assert_eq!(x.load_with(3, 0, |_| Err("no")), Err("no"));
        assert!(x.is_empty());
    }

    #[test]
    fn loading_replaces_the_previous_input() {
        let mut x = LayerInput::new();
        x.load(&[5; 100], 0);
        x.load(&[1, 2, 3], 1);
        assert_eq!(x.len(), 3);
        assert_eq!(x.dot(&[1; 100]), 3); // offsets 0, 1, 2
        assert!(!x.is_empty());
        x.load(&[], 0);
        assert!(x.is_empty());
        assert_eq!(x.dot(&[1; 10]), 0);
    }

    /// Both samples of a pair against the specification, for every row of a block.
    fn check_pair(a: &[i8], b: &[i8], zp: i8, weights: &[i8], rows: usize) {
        let n = a.len().min(b.len());
        let mut x = PairInput::new();
        x.load([a, b], zp);
        assert_eq!(x.len(), n);
        let mut out = [[7; 2]; 5];
        x.dot_rows(weights, &mut out[..rows]);
        let whole = weights
            .len()
            .checked_div(n)
            .map_or(rows, |fit| rows.min(fit));
        for (r, got) in out[..whole].iter().enumerate() {
            let row = &weights[r * n..(r + 1) * n];
            let want = [oracle(&a[..n], zp, row), oracle(&b[..n], zp, row)];
            assert_eq!(*got, want, "row {r} of {n} inputs, zp {zp}");
        }
        assert!(
            out[whole..rows].iter().all(|o| *o == [7; 2]),
            "only whole rows are written"
        );
        let first = weights.get(..n).unwrap_or(weights);
        assert_eq!(
            x.dot(first),
            [oracle(&a[..n], zp, first), oracle(&b[..n], zp, first)]
        );
    }

    #[test]
    fn pairs_at_the_extremes_split_exactly() {
        // Every sign and size of product in both fields, where a wrong carry shows.
        for n in 0..=13 {
            for (ca, cb) in [
                (-128i8, 127i8),
                (127, -128),
                (-128, -128),
                (127, 127),
                (0, -1),
            ] {
                for w in [-128i8, -1, 0, 1, 127] {
                    for zp in [-128i8, -1, 0, 127] {
                        let weights = [w; 13 * 4];
                        check_pair(&[ca; 13][..n], &[cb; 13][..n], zp, &weights[..4 * n], 4);
                    }
                }
            }
        }
    }

    #[test]
    fn rows_of_a_block_equal_single_dots() {
        let codes: [i8; 23] = core::array::from_fn(|i| (i as i8).wrapping_mul(-29));
        let weights: [i8; 23 * 4 + 5] = core::array::from_fn(|i| (i as i8).wrapping_mul(53));
        let mut x = LayerInput::new();
        x.load(&codes, 3);
        let mut out = [99i32; 6];
        x.dot_rows(&weights, &mut out);
        for (r, &got) in out[..4].iter().enumerate() {
            assert_eq!(
                got,
                oracle(&codes, 3, &weights[r * 23..(r + 1) * 23]),
                "row {r}"
            );
        }
        assert_eq!(out[4..], [99, 99], "only whole rows are written");
        let mut empty = [5i32; 2];
        LayerInput::new().dot_rows(&weights, &mut empty);
        assert_eq!(empty, [0, 0]);
    }

    proptest! {
        #[test]
        fn random_pairs_match_the_spec(
            a in proptest::collection::vec(any::<i8>(), 0..150),
            b in proptest::collection::vec(any::<i8>(), 0..150),
            weights in proptest::collection::vec(any::<i8>(), 0..600),
            zp in any::<i8>(),
            rows in 0usize..5,
        ) {
            check_pair(&a, &b, zp, &weights, rows);
        }

        #[test]
        fn random_rows_match_the_spec(
            codes in proptest::collection::vec(any::<i8>(), 0..200),
            weights in proptest::collection::vec(any::<i8>(), 0..200),
            zp in any::<i8>(),
        ) {
            check_all(&codes, zp, &weights);
        }
    }
}
