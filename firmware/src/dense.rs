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
//! A layer's input is loaded once into a [`LayerInput`]: lane `i` is the input code plus
//! 128, `q[i]` in `0..=255`, as a `u32`, and the loader keeps `Σ q[i]`. The blob stores
//! each layer's weights four output channels at a time, input by input, offset binary
//! (`u = w + 128`, one little-endian word per input holds `u` for four channels; see
//! [`crate::blob`]), and has folded the input zero point into the biases, so a channel
//! needs `Σ_i q[i] w[i] = Σ_i q[i] u[i] - 128 Σ_i q[i]`. [`LayerInput::dot_rows`] runs
//! the target's kernel over whole groups of four channels:
//!
//! - **thumbv6m** (Cortex-M0/M0+): the mask `0x00ff00ff` splits a weight word into
//!   `u0 + (u2 << 16)` and `u1 + (u3 << 16)`, and one `MULS` by `q` forms both products
//!   of each pair, exactly (below): 14 cycles per 4 MACs on an M0+ with the
//!   single-cycle multiplier (RP2040), 3.6 per MAC with the loop.
//! - **thumbv7em** (Cortex-M4/M7, DSP extension): `UXTB16` splits the word into the
//!   halves `(u0, u2)` and `(u1, u3)`, and `SMLABB`/`SMLATB` multiply-accumulate each by
//!   `q`: one instruction per MAC, two `LDRD`s per 8 MACs.
//! - **other targets** (the host), or weights that are not 4-byte aligned: the thumbv6m
//!   arithmetic written in Rust, so host tests run the same splitting and sums.
//!
//! # Why the sums are exact
//!
//! `q` and `u` are in `0..=255`, so `q u <= 65,025 < 2^16`: the product of `q` and
//! `u0 + (u2 << 16)` is `q u0 + (q u2 << 16) < 2^32`, its high half is `q u2` and its
//! low half `q u0`, with no carry between them. Summing the full products modulo `2^32`
//! gives `Σ q u0 + (Σ q u2 << 16)`, summing the high halves gives `Σ q u2`; their
//! difference (the second shifted) is `Σ q u0` modulo `2^32`. All other sums are
//! additions modulo `2^32`, exactly the specification's `wrapping_add`, and the true
//! value `|Σ (x - zp) w| <= 512 * 255 * 128 < 2^31` is what the bias completes.
//!
//! # Why not one row at a time
//!
//! Within one row no two products share a factor, so a `MULS` cannot serve two of them;
//! four rows share each input, and the blob's layout puts their weights in one word.
//! Row at a time the Cortex-M0+ needed 21 cycles per 4 MACs (sign-extending each byte,
//! one `MULS` and one `ADD` per product).

#[cfg(gantry_dense = "thumbv6m")]
mod thumbv6m;
#[cfg(gantry_dense = "thumbv7em")]
mod thumbv7em;

use crate::blob::Weights;
use crate::{MAX_HIDDEN, MAX_INPUT};

/// Inputs a [`LayerInput`] holds: the wider of the two layers this build accepts.
pub const CAPACITY: usize = if MAX_INPUT > MAX_HIDDEN {
    MAX_INPUT
} else {
    MAX_HIDDEN
};

/// The input of one dense layer as the kernels read it: lane `i` is `code[i] + 128` as a
/// `u32` (4 bytes per input, [`CAPACITY`] inputs, 2 KB), and the sum of the lanes.
///
/// Load it once per layer with [`LayerInput::load`], then take the dot products of the
/// output channels with [`LayerInput::dot_rows`].
#[derive(Clone)]
pub struct LayerInput {
    lanes: [u32; CAPACITY],
    len: usize,
    sum: u32,
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
            sum: 0,
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

    /// Loads the first [`CAPACITY`] codes, replacing what was there.
    pub fn load(&mut self, codes: &[i8]) {
        let codes = codes.get(..CAPACITY).unwrap_or(codes);
        if let Some(front) = self.bytes_mut().get_mut(..codes.len()) {
            front.copy_from_slice(codes);
        }
        self.expand(codes.len());
    }

    /// Loads `n` codes (at most [`CAPACITY`]) that `fill` writes into the slice it is
    /// given, which is this buffer's own storage: no second buffer is needed. An error
    /// from `fill` is returned and leaves the input empty.
    pub fn load_with<E>(
        &mut self,
        n: usize,
        fill: impl FnOnce(&mut [i8]) -> Result<(), E>,
    ) -> Result<(), E> {
        let n = n.min(CAPACITY);
        self.len = 0;
        self.sum = 0;
        fill(self.bytes_mut().get_mut(..n).unwrap_or(&mut []))?;
        self.expand(n);
        Ok(())
    }

    /// `out[k] = Σ_i (code[i] + 128) * w[first + k][i]`, summed with `i32` wrapping, for
    /// the output channels `first..` that `weights` has and `out` holds (the rest of
    /// `out` is left as it is). With the bias the blob stores (input zero point folded
    /// in) that is the channel's accumulator; see the module docs. Fastest when `first`
    /// is a multiple of 4 and the weights are 4-byte aligned.
    #[inline]
    pub fn dot_rows(&self, weights: Weights<'_>, first: usize, out: &mut [i32]) {
        self.loaded().dot_rows(weights, first, out);
    }

    /// The loaded input, for dot products.
    #[inline]
    pub(crate) fn loaded(&self) -> Loaded<'_> {
        Loaded {
            lanes: self.lanes.get(..self.len).unwrap_or(&[]),
            sum: self.sum,
        }
    }

    /// The loaded input and, beside it, the bytes it does not use (`4 * (CAPACITY -
    /// len)` of them), where the next layer's codes can be written while this one is
    /// read; [`LayerInput::load_spare`] then loads them.
    pub(crate) fn split_spare(&mut self) -> (Loaded<'_>, &mut [i8]) {
        let (used, spare) = self.lanes.split_at_mut(self.len.min(CAPACITY));
        let loaded = Loaded {
            lanes: used,
            sum: self.sum,
        };
        (loaded, bytemuck::cast_slice_mut(spare))
    }

    /// Loads the first `n` codes written to the spare bytes of [`LayerInput::split_spare`].
    pub(crate) fn load_spare(&mut self, n: usize) {
        let start = 4 * self.len;
        let bytes = self.bytes_mut();
        let n = n.min(bytes.len().saturating_sub(start));
        bytes.copy_within(start..start + n, 0);
        self.expand(n);
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
    fn expand(&mut self, n: usize) {
        let mut sum = 0u32;
        for i in (0..n).rev() {
            let code = self.bytes().get(i).copied().unwrap_or(0);
            let q = u32::from(code.cast_unsigned() ^ 0x80);
            sum += q; // at most 512 * 255
            if let Some(lane) = self.lanes.get_mut(i) {
                *lane = q;
            }
        }
        self.len = n;
        self.sum = sum;
    }
}

/// A loaded [`LayerInput`], borrowed for its dot products.
#[derive(Clone, Copy)]
pub(crate) struct Loaded<'a> {
    lanes: &'a [u32],
    sum: u32,
}

impl Loaded<'_> {
    /// As [`LayerInput::dot_rows`].
    #[inline]
    pub(crate) fn dot_rows(&self, weights: Weights<'_>, first: usize, out: &mut [i32]) {
        let rows = weights.rows().saturating_sub(first).min(out.len());
        let out = out.get_mut(..rows).unwrap_or(&mut []);
        let n = self.lanes.len();
        if !first.is_multiple_of(4) || n == 0 || n != weights.inputs() {
            self.dot_rows_plain(weights, first, out);
            return;
        }
        let correction = self.sum.wrapping_mul(128);
        let groups = weights.groups_from(first);
        let (whole, rest) = out.split_at_mut(rows / 4 * 4);
        group_dots(self.lanes, groups, correction, whole);
        if !rest.is_empty() {
            // The last group's missing rows are stored as zero weights: compute all
            // four, keep those asked for.
            let mut last = [0i32; 4];
            let done = groups.get(whole.len() * n..).unwrap_or(&[]);
            group_dots(self.lanes, done, correction, &mut last);
            rest.copy_from_slice(last.get(..rest.len()).unwrap_or(&[]));
        }
    }

    /// [`Loaded::dot_rows`] weight by weight, for any first row and lengths.
    fn dot_rows_plain(&self, weights: Weights<'_>, first: usize, out: &mut [i32]) {
        for (k, o) in out.iter_mut().enumerate() {
            let row = weights.row(first + k);
            *o = self.lanes.iter().zip(row).fold(0i32, |acc, (&q, w)| {
                acc.wrapping_add(q.cast_signed() * i32::from(w))
            });
        }
    }
}

/// `out[4g + k] = Σ_i lanes[i] * u_k - correction` (modulo `2^32`) for channel `k` of
/// group `g` of `groups` (`4 * lanes.len()` bytes each, `u` the offset-binary weight
/// fields), for the whole groups both hold.
#[inline]
fn group_dots(lanes: &[u32], groups: &[u8], correction: u32, out: &mut [i32]) {
    #[cfg(gantry_dense = "thumbv6m")]
    let kernel = thumbv6m::gantry_dense_groups_thumbv6m;
    #[cfg(gantry_dense = "thumbv7em")]
    let kernel = thumbv7em::gantry_dense_groups_thumbv7em;
    #[cfg(any(gantry_dense = "thumbv6m", gantry_dense = "thumbv7em"))]
    if let Ok(words) = bytemuck::try_cast_slice::<u8, u32>(groups) {
        run_kernel(kernel, lanes, words, correction, out);
        return;
    }
    group_dots_model(lanes, groups, correction, out);
}

/// A run of groups for the assembly kernels (one layout for both cores).
#[cfg(any(gantry_dense = "thumbv6m", gantry_dense = "thumbv7em"))]
#[repr(C)]
struct Job {
    /// The lanes, 4-byte aligned, `n` of them.
    lanes: *const u32,
    /// Inputs per row.
    n: usize,
    /// The first weight word of the first group, 4-byte aligned; groups follow each
    /// other, `n` words each.
    weights: *const u32,
    /// Groups to run.
    groups: usize,
    /// Where the first group's four dot products go; `4 * groups` aligned `i32`.
    out: *mut i32,
    /// `128 * Σ lanes`, subtracted from each channel's `Σ q u`.
    correction: u32,
}

/// [`group_dots`] through an assembly `kernel`, on word-aligned weights (`lanes.len()`
/// words per group), for as many whole groups as both `weights` and `out` hold.
#[cfg(any(gantry_dense = "thumbv6m", gantry_dense = "thumbv7em"))]
#[allow(unsafe_code)]
#[inline]
fn run_kernel(
    kernel: unsafe extern "C" fn(*const Job),
    lanes: &[u32],
    weights: &[u32],
    correction: u32,
    out: &mut [i32],
) {
    let n = lanes.len();
    let whole = out.len() / 4;
    // A multiplication, not a division (Thumb-1 divides in software), that cannot
    // overflow: `n <= CAPACITY`, and no `out` holds 2^16 groups.
    let groups = if whole.min(1 << 16) * n <= weights.len() {
        whole
    } else {
        weights.len() / n
    };
    let job = Job {
        lanes: lanes.as_ptr(),
        n,
        weights: weights.as_ptr(),
        groups,
        out: out.as_mut_ptr(),
        correction,
    };
    // SAFETY: `lanes` holds `n` aligned `u32`, `weights` at least `groups * n` aligned
    // `u32` (LDRD needs only word alignment on ARMv7-M) and `out` at least `4 * groups`
    // aligned `i32` (`groups` is bounded by both; with no lanes nothing is read and each
    // group stores `-correction`); the kernels read and write nothing else and restore
    // r4-r11, lr and sp.
    unsafe { kernel(&job) };
}

/// The thumbv6m kernel's arithmetic in Rust, operation for operation.
fn group_dots_model(lanes: &[u32], groups: &[u8], correction: u32, out: &mut [i32]) {
    const MASK: u32 = 0x00ff_00ff;
    let n = lanes.len().max(1);
    for (o, group) in out.chunks_exact_mut(4).zip(groups.chunks_exact(4 * n)) {
        let (mut a02, mut a13, mut h2, mut h3) = (0u32, 0u32, 0u32, 0u32);
        for (&q, word) in lanes.iter().zip(group.chunks_exact(4)) {
            let w = match *word {
                [a, b, c, d] => u32::from_le_bytes([a, b, c, d]),
                _ => 0,
            };
            let p02 = (w & MASK).wrapping_mul(q); // ands; muls
            let p13 = ((w >> 8) & MASK).wrapping_mul(q); // lsrs; ands; muls
            a02 = a02.wrapping_add(p02);
            a13 = a13.wrapping_add(p13);
            h2 = h2.wrapping_add(p02 >> 16);
            h3 = h3.wrapping_add(p13 >> 16);
        }
        let sums = [
            a02.wrapping_sub(h2 << 16),
            a13.wrapping_sub(h3 << 16),
            h2,
            h3,
        ];
        for (o, s) in o.iter_mut().zip(sums) {
            *o = s.wrapping_sub(correction).cast_signed();
        }
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::kernels::{dot_offsets, offset_codes};

    /// `rows` of `inputs` row-major weights in the blob's grouped, offset-binary layout,
    /// starting `shift` bytes into a word-aligned buffer.
    fn grouped(weights: &[i8], rows: usize, inputs: usize, shift: usize) -> ([u32; 4096], usize) {
        let mut storage = [0u32; 4096];
        let bytes: &mut [u8] = bytemuck::cast_slice_mut(&mut storage);
        let mut at = shift;
        for g in 0..rows.div_ceil(4) {
            for i in 0..inputs {
                for k in 0..4 {
                    let r = 4 * g + k;
                    let w = if r < rows { weights[r * inputs + i] } else { 0 };
                    bytes[at] = w.cast_unsigned() ^ 0x80;
                    at += 1;
                }
            }
        }
        (storage, at - shift)
    }

    /// The specification's `Σ (code + 128) * w`: offsets with zero point -128.
    fn oracle(codes: &[i8], row: &[i8]) -> i32 {
        let mut off = [0i16; CAPACITY];
        offset_codes(codes, -128, &mut off);
        dot_offsets(off.get(..codes.len()).unwrap_or(&[]), row)
    }

    /// Every row from every first row, at every alignment of the weights.
    fn check(codes: &[i8], weights: &[i8], rows: usize) {
        let n = codes.len();
        let mut x = LayerInput::new();
        x.load(codes);
        assert_eq!(x.len(), n);
        for shift in 0..4 {
            let (storage, len) = grouped(weights, rows, n, shift);
            let bytes: &[u8] = bytemuck::cast_slice(&storage[..]);
            let w = Weights::new(&bytes[shift..shift + len], rows, n).unwrap();
            for first in [0, 1, 4, 5, 8].into_iter().filter(|&f| f <= rows) {
                let mut out = [7i32; 21];
                x.dot_rows(w, first, &mut out);
                let written = rows - first;
                for (k, &got) in out[..written.min(21)].iter().enumerate() {
                    let r = first + k;
                    let want = oracle(codes, &weights[r * n..(r + 1) * n]);
                    assert_eq!(got, want, "row {r} of {rows}, {n} inputs, shift {shift}");
                }
                assert!(
                    out[written.min(21)..].iter().all(|&o| o == 7),
                    "only rows that exist"
                );
            }
        }
    }

    #[test]
    fn extremes_at_every_length_rows_and_alignment() {
        for n in [0, 1, 2, 3, 7, 8, 9, 15, 16, 17, 41] {
            for rows in [1, 3, 4, 5, 8, 17] {
                for (c, w) in [(-128i8, -128i8), (127, 127), (-128, 127), (127, -128)] {
                    check(&[c; 41][..n], &[w; 41 * 17][..n * rows], rows);
                }
            }
        }
    }

    #[test]
    fn full_capacity_of_extremes() {
        // 512 products of 255 * -128 and of 255 * 127, the longest rows allowed.
        let n = CAPACITY;
        let mut weights = [0i8; 5 * CAPACITY];
        for (r, row) in weights.chunks_mut(n).enumerate() {
            row.fill(if r % 2 == 0 { -128 } else { 127 });
        }
        check(&[127; CAPACITY], &weights, 5);
        check(&[-128; CAPACITY], &weights, 5);
    }

    #[test]
    fn split_sums_are_the_channel_sums() {
        // q = 255 against u = 255 in all four fields: the largest products.
        let lanes = [255u32; 3];
        let mut out = [0i32; 4];
        group_dots_model(&lanes, &[0xff; 12], 5, &mut out);
        assert_eq!(out, [3 * 65025 - 5; 4]);
    }

    #[test]
    fn codes_written_in_place_or_beside_load_like_a_copy() {
        let codes: [i8; 37] = core::array::from_fn(|i| (i as i8).wrapping_mul(37));
        let mut want = LayerInput::new();
        want.load(&codes);
        let mut x = LayerInput::new();
        x.load_with(codes.len(), |dst| {
            dst.copy_from_slice(&codes);
            Ok::<(), ()>(())
        })
        .unwrap();
        assert_eq!(&x.lanes[..x.len], &want.lanes[..want.len]);
        assert_eq!(x.sum, want.sum);
        // The next layer's codes, longer and shorter than this one's, via the spare bytes.
        for next in [&codes[..], &codes[..3], &[0i8; 120][..]] {
            let mut y = want.clone();
            let (_, spare) = y.split_spare();
            spare[..next.len()].copy_from_slice(next);
            y.load_spare(next.len());
            let mut z = LayerInput::new();
            z.load(next);
            assert_eq!(&y.lanes[..y.len], &z.lanes[..z.len]);
            assert_eq!(y.sum, z.sum);
        }
        assert_eq!(x.load_with(3, |_| Err("no")), Err("no"));
        assert!(x.is_empty());
    }

    #[test]
    fn loading_replaces_the_previous_input() {
        let mut x = LayerInput::new();
        x.load(&[5; 100]);
        x.load(&[-128, -127, -126]);
        assert_eq!(x.len(), 3);
        assert_eq!(x.sum, 3);
        let (storage, len) = grouped(&[1, 1, 1], 1, 3, 0);
        let bytes: &[u8] = bytemuck::cast_slice(&storage[..]);
        let mut out = [0];
        x.dot_rows(Weights::new(&bytes[..len], 1, 3).unwrap(), 0, &mut out);
        assert_eq!(out, [3]); // q = 0, 1, 2
        x.load(&[]);
        assert!(x.is_empty());
    }

    proptest! {
        #[test]
        fn random_rows_match_the_spec(
            codes in proptest::collection::vec(any::<i8>(), 0..140),
            weights in proptest::collection::vec(any::<i8>(), 140 * 9),
            rows in 1usize..10,
        ) {
            let n = codes.len();
            check(&codes, &weights[..n * rows], rows);
        }
    }
}
