//! The Cortex-M0/M0+ (ARMv6-M, Thumb-1) dot products, in assembly: one sample
//! ([`rows`]) and two samples at once ([`rows_pair`]).
//!
//! It exists because LLVM's loop for the same Rust reloads each offset with its own `LDR`
//! (2 cycles each), spills loop state to the stack and spends about 100 instructions per
//! row on splitting it; these fetch four lanes with one `LDM`, keep an accumulator in a
//! high register (`ADD r8, rN` needs no low register), so the eight low registers hold
//! the operands, and run a whole block of rows per call. Cycles per weight word on an
//! M0+ with the single-cycle multiplier (RP2040):
//!
//! ```text
//! one sample (lanes: i32 offsets)              two samples (lanes: o_a + o_b << 16)
//! ldm  r0!, {r2}              2  4 weights     ldm  r0!, {r2}              2
//! ldm  r1!, {r4-r7}           5  4 lanes       ldm  r1!, {r5-r7}           4  3 lanes
//! sxtb r3, r2                 1                sxtb r3, r2                 1
//! muls r3, r4, r3             1                muls r3, r5, r3             1  t = lo + hi << 16
//! add  r8, r3                 1                add  r8, r3                 1  Σ t
//!                                              asrs r3, r3, #16            1  C = bit 15
//!                                              adcs r4, r3                 1  Σ hi
//! w1, w2: lsls, asrs #24, muls, add      8     w1, w2: lsls, asrs, muls, add, asrs, adcs  12
//! w3:     asrs #24, muls, add            3     ldm r1!, {r5} + w3: asrs, muls, add, asrs, adcs  7
//!                             21 cycles, 4 MACs                            30 cycles, 8 MACs
//! ```
//!
//! four words per loop iteration, then `cmp` + taken `bne` (3 cycles). Bytes before the
//! first word boundary of a row and after its last whole word take
//! `ldrb`/`sxtb`/`ldm`/`muls`/`add` (and `asrs`/`adcs`).
//!
//! # Two samples per `MULS`, exactly
//!
//! Lane `i` holds `L = o_a + 65536 * o_b` (offsets of samples a and b, `|o| <= 255`) and
//! `t = L * w = o_a w + 65536 o_b w` is exact in `i32`: `|o_a w| <= 32,640` and
//! `65536 * 32,640 + 32,640 < 2^31`. With `lo = o_a w` in `[-2^15, 2^15)`,
//! `asrs #16` gives `o_b w + floor(lo / 2^16)`, which is `o_b w - 1` exactly when
//! `lo < 0`, that is when bit 15 of `t` (the carry `asrs` leaves) is set: `adcs` adds it
//! back, so `Σ hi` is `Σ o_b w` modulo `2^32`. `Σ t` is `Σ o_a w + 65536 Σ o_b w` modulo
//! `2^32`, so `Σ t - (Σ hi << 16)` is `Σ o_a w` modulo `2^32`: both dot products with
//! the specification's wrapping.
//!
//! Thumb-1 conditional branches reach ±256 bytes, so the long jumps around the unrolled
//! loop are an inverted condition over an unconditional `b`.
#![allow(unsafe_code)]

/// A block of rows for the assembly: read, and `out` and `rows` advanced, by it.
#[repr(C)]
struct Block {
    /// The lanes, 4-byte aligned, at least `n` of them.
    lanes: *const u32,
    /// The first weight of the first row; rows follow each other, `n` bytes each.
    weights: *const i8,
    /// Weights per row (and lanes read).
    n: usize,
    /// Where the next row's result goes (one `i32`, or two for a pair).
    out: *mut i32,
    /// Rows left.
    rows: usize,
}

/// Defines a block kernel from its four parts, as `.macro`s of the assembler: one weight
/// word (`r0` = weights, `r1` = lanes, accumulators in `r8` and `r4`, `r2`/`r3` and the
/// lane registers free), one weight byte, zeroing the accumulators, and storing a row's
/// result through the block's `out` (then decrementing `rows`, leaving Z set at 0).
///
/// Registers: `r10` = the block, `r9` = `n`, `r11` = `n` rounded down to 16 (bytes
/// taken four words at a time), `r12`/`lr` = loop ends. When the weights start on a word
/// boundary and `n` is a multiple of 4, every row is whole aligned words and the rows
/// take the short path at `20:`; otherwise each row checks its head and tail bytes.
macro_rules! block_kernel {
    (
        $(#[$attr:meta])*
        $name:ident,
        word: [$($word:literal),* $(,)?],
        byte: [$($byte:literal),* $(,)?],
        start_row: [$($start:literal),* $(,)?],
        end_row: [$($end:literal),* $(,)?] $(,)?
    ) => {
        $(#[$attr])*
        #[unsafe(naked)]
        #[unsafe(no_mangle)]
        unsafe extern "C" fn $name(block: *mut Block) {
            core::arch::naked_asm!(
                ".macro GANTRY_WORD", $($word,)* ".endm",
                ".macro GANTRY_BYTE", $($byte,)* ".endm",
                ".macro GANTRY_START_ROW", $($start,)* ".endm",
                ".macro GANTRY_END_ROW", $($end,)* ".endm",
                "push {{r4, r5, r6, r7, lr}}",
                "mov r4, r8",
                "mov r5, r9",
                "mov r6, r10",
                "mov r7, r11",
                "push {{r4, r5, r6, r7}}",
                "mov r10, r0",
                "ldr r1, [r0, #16]",
                "cmp r1, #0",
                "bne 11f",
                "b 10f",
                "11:",
                "ldr r2, [r0, #8]",
                "mov r9, r2",
                "lsrs r3, r2, #4",
                "lsls r3, r3, #4",
                "mov r11, r3",
                "ldr r0, [r0, #4]",
                "mov r3, r0",
                "orrs r3, r2",
                "lsls r3, r3, #30",
                "bne 0f",
                "b 20f",
                // Any alignment: r11 = end of the row.
                "0:",
                "mov r3, r10",
                "ldr r1, [r3, #0]",
                "mov r2, r9",
                "adds r2, r0, r2",
                "mov r11, r2",
                "GANTRY_START_ROW",
                // Head: bytes up to the first word boundary.
                "1:",
                "lsls r3, r0, #30",
                "beq 2f",
                "cmp r0, r11",
                "bne 12f",
                "b 9f",
                "12:",
                "GANTRY_BYTE",
                "b 1b",
                // Whole words: lr = their end, r12 = end of those taken four at a time.
                "2:",
                "mov r2, r11",
                "subs r2, r2, r0",
                "lsrs r3, r2, #2",
                "lsls r3, r3, #2",
                "adds r3, r0, r3",
                "mov lr, r3",
                "lsrs r3, r2, #4",
                "lsls r3, r3, #4",
                "adds r3, r0, r3",
                "mov r12, r3",
                "cmp r0, r12",
                "beq 4f",
                "3:",
                "GANTRY_WORD",
                "GANTRY_WORD",
                "GANTRY_WORD",
                "GANTRY_WORD",
                "cmp r0, r12",
                "bne 3b",
                "4:",
                "cmp r0, lr",
                "beq 6f",
                "5:",
                "GANTRY_WORD",
                "cmp r0, lr",
                "bne 5b",
                // Tail: the bytes after the last whole word.
                "6:",
                "cmp r0, r11",
                "beq 9f",
                "GANTRY_BYTE",
                "b 6b",
                "9:",
                "GANTRY_END_ROW",
                "beq 13f",
                "b 0b",
                "13:",
                "b 10f",
                // Aligned rows of whole words: r12 and lr move on by n per row.
                "20:",
                "mov r2, r11",
                "adds r2, r0, r2",
                "mov r12, r2",
                "mov r2, r9",
                "adds r2, r0, r2",
                "mov lr, r2",
                "21:",
                "mov r3, r10",
                "ldr r1, [r3, #0]",
                "GANTRY_START_ROW",
                "cmp r0, r12",
                "beq 24f",
                "23:",
                "GANTRY_WORD",
                "GANTRY_WORD",
                "GANTRY_WORD",
                "GANTRY_WORD",
                "cmp r0, r12",
                "bne 23b",
                "24:",
                "cmp r0, lr",
                "beq 29f",
                "25:",
                "GANTRY_WORD",
                "cmp r0, lr",
                "bne 25b",
                "29:",
                "add r12, r9",
                "add lr, r9",
                "GANTRY_END_ROW",
                "beq 10f",
                "b 21b",
                "10:",
                "pop {{r4, r5, r6, r7}}",
                "mov r8, r4",
                "mov r9, r5",
                "mov r10, r6",
                "mov r11, r7",
                "pop {{r4, r5, r6, r7, pc}}",
                ".purgem GANTRY_WORD",
                ".purgem GANTRY_BYTE",
                ".purgem GANTRY_START_ROW",
                ".purgem GANTRY_END_ROW",
            )
        }
    };
}

block_kernel!(
    /// `out[r] = Σ_{i<n} lanes[i] * weights[r * n + i]` for each row of the block, summed
    /// with wrapping, with `i32` offsets as lanes.
    ///
    /// # Safety
    ///
    /// `block` must be valid for reads and writes; `lanes` must point to `n` readable,
    /// 4-byte aligned `u32`, `weights` to `rows * n` readable bytes (any alignment),
    /// `out` to `rows` writable, 4-byte aligned `i32`.
    gantry_dense_rows_thumbv6m,
    word: [
        "ldm r0!, {{r2}}",
        "ldm r1!, {{r4, r5, r6, r7}}",
        "sxtb r3, r2",
        "muls r3, r4, r3",
        "add r8, r3",
        "lsls r3, r2, #16",
        "asrs r3, r3, #24",
        "muls r3, r5, r3",
        "add r8, r3",
        "lsls r3, r2, #8",
        "asrs r3, r3, #24",
        "muls r3, r6, r3",
        "add r8, r3",
        "asrs r2, r2, #24",
        "muls r2, r7, r2",
        "add r8, r2",
    ],
    byte: [
        "ldrb r2, [r0]",
        "sxtb r2, r2",
        "adds r0, #1",
        "ldm r1!, {{r4}}",
        "muls r2, r4, r2",
        "add r8, r2",
    ],
    start_row: ["movs r3, #0", "mov r8, r3"],
    end_row: [
        "mov r3, r10",
        "ldr r2, [r3, #12]",
        "mov r4, r8",
        "stm r2!, {{r4}}",
        "str r2, [r3, #12]",
        "ldr r2, [r3, #16]",
        "subs r2, #1",
        "str r2, [r3, #16]",
    ],
);

block_kernel!(
    /// `out[2r] = Σ_{i<n} o_a[i] * weights[r * n + i]` and `out[2r + 1]` the same for
    /// `o_b`, for each row of the block, with lanes `o_a + (o_b << 16)` (see the module
    /// docs for why this is exact): `r8` sums `t`, `r4` sums the high fields.
    ///
    /// # Safety
    ///
    /// As [`gantry_dense_rows_thumbv6m`], with `out` pointing to `2 * rows` writable
    /// `i32`.
    gantry_dense_rows2_thumbv6m,
    word: [
        "ldm r0!, {{r2}}",
        "ldm r1!, {{r5, r6, r7}}",
        "sxtb r3, r2",
        "muls r3, r5, r3",
        "add r8, r3",
        "asrs r3, r3, #16",
        "adcs r4, r3",
        "lsls r3, r2, #16",
        "asrs r3, r3, #24",
        "muls r3, r6, r3",
        "add r8, r3",
        "asrs r3, r3, #16",
        "adcs r4, r3",
        "lsls r3, r2, #8",
        "asrs r3, r3, #24",
        "muls r3, r7, r3",
        "add r8, r3",
        "asrs r3, r3, #16",
        "adcs r4, r3",
        "ldm r1!, {{r5}}",
        "asrs r2, r2, #24",
        "muls r2, r5, r2",
        "add r8, r2",
        "asrs r2, r2, #16",
        "adcs r4, r2",
    ],
    byte: [
        "ldrb r2, [r0]",
        "sxtb r2, r2",
        "adds r0, #1",
        "ldm r1!, {{r5}}",
        "muls r2, r5, r2",
        "add r8, r2",
        "asrs r2, r2, #16",
        "adcs r4, r2",
    ],
    start_row: ["movs r4, #0", "mov r8, r4"],
    // Σ o_a w = Σ t - (Σ hi << 16) into r4, Σ o_b w = Σ hi into r5.
    end_row: [
        "mov r5, r4",
        "mov r4, r8",
        "lsls r6, r5, #16",
        "subs r4, r4, r6",
        "mov r3, r10",
        "ldr r2, [r3, #12]",
        "stm r2!, {{r4, r5}}",
        "str r2, [r3, #12]",
        "ldr r2, [r3, #16]",
        "subs r2, #1",
        "str r2, [r3, #16]",
    ],
);

/// `out[r] = Σ_i lanes[i] * weights[r * n + i]` (lanes as `i32` offsets, `n =
/// lanes.len()`), summed with wrapping, for as many whole rows as both `weights` and
/// `out` hold.
#[inline]
pub(super) fn rows(lanes: &[u32], weights: &[i8], out: &mut [i32]) {
    run(gantry_dense_rows_thumbv6m, lanes, weights, out, 1);
}

/// For two samples: `out[r] = [Σ_i o_a[i] w[i], Σ_i o_b[i] w[i]]` for row `r`, with
/// lanes `o_a + (o_b << 16)`, as [`rows`] otherwise.
#[inline]
pub(super) fn rows_pair(lanes: &[u32], weights: &[i8], out: &mut [[i32; 2]]) {
    let out: &mut [i32] = bytemuck::cast_slice_mut(out);
    run(gantry_dense_rows2_thumbv6m, lanes, weights, out, 2);
}

/// Runs one of the block kernels over the rows that fit.
#[inline]
fn run(
    kernel: unsafe extern "C" fn(*mut Block),
    lanes: &[u32],
    weights: &[i8],
    out: &mut [i32],
    per_row: usize,
) {
    let n = lanes.len();
    if n == 0 {
        out.fill(0);
        return;
    }
    let rows = (weights.len() / n).min(out.len() / per_row);
    let mut block = Block {
        lanes: lanes.as_ptr(),
        weights: weights.as_ptr(),
        n,
        out: out.as_mut_ptr(),
        rows,
    };
    // SAFETY: `lanes` holds `n` aligned `u32`, `weights` at least `rows * n` bytes and
    // `out` at least `per_row * rows` aligned `i32` (`rows` is bounded by both); the
    // kernel reads and writes nothing else, and restores r4-r11 and lr.
    unsafe { kernel(&mut block) };
}
