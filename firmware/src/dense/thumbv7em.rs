//! The Cortex-M4/M7 (ARMv7E-M with the DSP extension) dot product, in assembly.
//!
//! It exists because stable Rust has no `SXTB16`/`SMLAD` intrinsics. Lane `i` holds
//! `(offset[i], offset[i + 2])` as two `i16`; per weight word:
//!
//! ```text
//! ldrd   r8, r9, [r3], #16      (o0, o2), (o1, o3); the next word's lanes are 4 on
//! sxtb16 r10, rW                (w0, w2)
//! sxtb16 rW, rW, ror #8         (w1, w3)
//! smlad  r0, r10, r8, r0        acc += w0*o0 + w2*o2
//! smlad  r0, rW, r9, r0         acc += w1*o1 + w3*o3
//! ```
//!
//! with the words fetched four at a time by one `LDM`. Bytes before the first word
//! boundary and after the last whole word take `ldrsb`/`ldrsh`/`mla`.
#![allow(unsafe_code)]

/// `Σ offset[i] * weights[i]` for `i < n`, summed with wrapping, where lane `i` holds
/// `(offset[i], offset[i + 2])`.
///
/// # Safety
///
/// `weights` must point to `n` readable bytes (any alignment) and `lanes` to `n`
/// readable, 4-byte aligned `u32`.
#[unsafe(naked)]
#[unsafe(no_mangle)]
unsafe extern "C" fn gantry_dense_dot_thumbv7em(
    lanes: *const u32,
    weights: *const i8,
    n: usize,
) -> i32 {
    core::arch::naked_asm!(
        // The word in register \w: r3 = its lanes, r0 += the four products.
        ".macro GANTRY_GROUP w",
        "ldrd r8, r9, [r3], #16",
        "sxtb16 r10, \\w",
        "sxtb16 \\w, \\w, ror #8",
        "smlad r0, r10, r8, r0",
        "smlad r0, \\w, r9, r0",
        ".endm",
        // One weight byte: its lane's low half is its offset.
        ".macro GANTRY_BYTE",
        "ldrsb r4, [r1], #1",
        "ldrsh r5, [r3], #4",
        "mla r0, r4, r5, r0",
        ".endm",
        "push {{r4, r5, r6, r7, r8, r9, r10, lr}}",
        // r1 = weights, r3 = lanes, r2 = end of the row, r0 = accumulator.
        "mov r3, r0",
        "add r2, r1, r2",
        "movs r0, #0",
        // Head: bytes up to the first word boundary.
        "1:",
        "tst r1, #3",
        "beq 2f",
        "cmp r1, r2",
        "beq 9f",
        "GANTRY_BYTE",
        "b 1b",
        // Whole words: lr = their end, r12 = end of those taken four at a time.
        "2:",
        "sub r4, r2, r1",
        "bic r5, r4, #3",
        "add lr, r1, r5",
        "bic r5, r4, #15",
        "add r12, r1, r5",
        "cmp r1, r12",
        "beq 4f",
        "3:",
        "ldm r1!, {{r4, r5, r6, r7}}",
        "GANTRY_GROUP r4",
        "GANTRY_GROUP r5",
        "GANTRY_GROUP r6",
        "GANTRY_GROUP r7",
        "cmp r1, r12",
        "bne 3b",
        "4:",
        "cmp r1, lr",
        "beq 6f",
        "5:",
        "ldr r4, [r1], #4",
        "GANTRY_GROUP r4",
        "cmp r1, lr",
        "bne 5b",
        // Tail: the bytes after the last whole word.
        "6:",
        "cmp r1, r2",
        "beq 9f",
        "GANTRY_BYTE",
        "b 6b",
        "9:",
        "pop {{r4, r5, r6, r7, r8, r9, r10, pc}}",
        ".purgem GANTRY_GROUP",
        ".purgem GANTRY_BYTE",
    )
}

/// `Σ offset[i] * weights[i]` over the common length, from the pair lanes, summed with
/// wrapping.
#[inline]
fn dot(lanes: &[u32], weights: &[i8]) -> i32 {
    let n = weights.len().min(lanes.len());
    // SAFETY: `weights` has at least `n` bytes and `lanes` at least `n` aligned `u32`;
    // word k after the head reads lanes 4k and 4k + 1 of its own four, all below `n`.
    // The function reads nothing else, writes no memory, and restores r4-r10 and lr.
    unsafe { gantry_dense_dot_thumbv7em(lanes.as_ptr(), weights.as_ptr(), n) }
}

/// `out[r]` = the dot product of row `r` of `weights` (rows of `lanes.len()` bytes) with
/// the offsets, for as many whole rows as both `weights` and `out` hold (all zeros if
/// there are no lanes).
#[inline]
pub(super) fn rows(lanes: &[u32], weights: &[i8], out: &mut [i32]) {
    if lanes.is_empty() {
        out.fill(0);
    }
    for (o, row) in out.iter_mut().zip(weights.chunks_exact(lanes.len().max(1))) {
        *o = dot(lanes, row);
    }
}
