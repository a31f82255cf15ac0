//! The Cortex-M0/M0+ (ARMv6-M, Thumb-1) kernel, in assembly: one sample, four output
//! channels per pass over the inputs, two of them per `MULS`.
//!
//! It exists because LLVM's loop for the same Rust spills the four accumulators and the
//! mask to the stack and reloads each lane with its own `LDR`; this keeps the
//! accumulators in the four high registers (`ADD r8, rN` needs no low register), so the
//! eight low registers hold the pointers, the mask and the operands. Per input, with its
//! weight word `W = (u0, u1, u2, u3)` (four channels, offset binary) and lane `q`:
//!
//! ```text
//! ldm  r1!, {r5, r6}        3 / 2 inputs    q, q'
//! ldm  r0!, {r3, r4}        3 / 2 inputs    W, W'
//! lsrs r7, r3, #8           1               (u1, _, u3, _)
//! ands r3, r2               1               P02 = u0 + u2 << 16   (r2 = 0x00ff00ff)
//! ands r7, r2               1               P13 = u1 + u3 << 16
//! muls r3, r5, r3           1               q u0 + (q u2 << 16)
//! muls r7, r5, r7           1               q u1 + (q u3 << 16)
//! add  r8, r3               1               A02 += both
//! add  r9, r7               1               A13 += both
//! lsrs r3, r3, #16          1               q u2
//! lsrs r7, r7, #16          1               q u3
//! add  r10, r3              1               H2 += q u2
//! add  r11, r7              1               H3 += q u3
//!                          14 cycles per 4 MACs
//! ```
//!
//! eight inputs per loop iteration, then `cmp` + taken `bne` (3 cycles): 115 cycles per
//! 32 MACs, 3.59 per MAC. Inputs past the last multiple of eight take the same steps one
//! at a time.
//!
//! # Why it is exact
//!
//! Lanes `q` and weight fields `u` are in `0..=255`, so `q u <= 65,025 < 2^16` and
//! `q * P02 = q u0 + 2^16 q u2 < 2^32`: the `MULS` is exact, its low half is `q u0` and
//! its high half `q u2`, with no carry between them. `H2` sums the high halves exactly
//! (modulo `2^32`), `A02` sums `q u0 + 2^16 q u2` modulo `2^32`, so `A02 - (H2 << 16)` is
//! `Σ q u0` modulo `2^32`. The kernel then subtracts `128 Σ q` from each channel's sum
//! ([`super`]) and stores the four dot products.
//!
//! Thumb-1 conditional branches reach ±256 bytes, so the long jumps around the unrolled
//! loop are an inverted condition over an unconditional `b`.
#![allow(unsafe_code)]

/// Stores the four dot products of each group of `job`: `A02 - (H2 << 16)`,
/// `A13 - (H3 << 16)`, `H2`, `H3` (see the module docs), each minus the correction.
///
/// Registers: `r0` = weights, `r1` = lanes, `r2` = mask, `r12` = end of the lanes taken
/// eight at a time, `lr` = end of the lanes; the stack holds the lanes' start, the
/// groups left, the output pointer and the correction.
#[unsafe(naked)]
#[unsafe(no_mangle)]
pub(super) unsafe extern "C" fn gantry_dense_groups_thumbv6m(job: *const super::Job) {
    core::arch::naked_asm!(
        // One input's four products from the weight word in \w and the lane in \q
        // (r2 = mask, r7 scratch).
        ".macro GANTRY_INPUT w, q",
        "lsrs r7, \\w, #8",
        "ands \\w, r2",
        "ands r7, r2",
        "muls \\w, \\q, \\w",
        "muls r7, \\q, r7",
        "add r8, \\w",
        "add r9, r7",
        "lsrs \\w, \\w, #16",
        "lsrs r7, r7, #16",
        "add r10, \\w",
        "add r11, r7",
        ".endm",
        ".macro GANTRY_TWO",
        "ldm r1!, {{r5, r6}}",
        "ldm r0!, {{r3, r4}}",
        "GANTRY_INPUT r3, r5",
        "GANTRY_INPUT r4, r6",
        ".endm",
        "push {{r4, r5, r6, r7, lr}}",
        "mov r4, r8",
        "mov r5, r9",
        "mov r6, r10",
        "mov r7, r11",
        "push {{r4, r5, r6, r7}}",
        "sub sp, #16",
        "ldr r1, [r0, #0]",
        "str r1, [sp, #0]",
        "ldr r3, [r0, #12]",
        "str r3, [sp, #4]",
        "ldr r4, [r0, #16]",
        "str r4, [sp, #8]",
        "ldr r4, [r0, #20]",
        "str r4, [sp, #12]",
        "ldr r2, [r0, #4]",
        "lsls r2, r2, #2",
        "adds r4, r1, r2",
        "mov lr, r4",
        "lsrs r2, r2, #5",
        "lsls r2, r2, #5",
        "adds r4, r1, r2",
        "mov r12, r4",
        "ldr r0, [r0, #8]",
        "movs r2, #255",
        "lsls r4, r2, #16",
        "orrs r2, r4",
        "cmp r3, #0",
        "bne 20f",
        "b 90f",
        // One group: the accumulators start at zero, the lanes at their start.
        "20:",
        "ldr r1, [sp, #0]",
        "movs r3, #0",
        "mov r8, r3",
        "mov r9, r3",
        "mov r10, r3",
        "mov r11, r3",
        "cmp r1, r12",
        "beq 24f",
        "23:",
        "GANTRY_TWO",
        "GANTRY_TWO",
        "GANTRY_TWO",
        "GANTRY_TWO",
        "cmp r1, r12",
        "bne 23b",
        "24:",
        "cmp r1, lr",
        "beq 29f",
        "25:",
        "ldm r1!, {{r5}}",
        "ldm r0!, {{r3}}",
        "GANTRY_INPUT r3, r5",
        "cmp r1, lr",
        "bne 25b",
        // The four dot products: A02 - (H2 << 16), A13 - (H3 << 16), H2, H3, each
        // minus the correction.
        "29:",
        "mov r6, r10",
        "mov r7, r11",
        "lsls r3, r6, #16",
        "mov r4, r8",
        "subs r4, r4, r3",
        "lsls r3, r7, #16",
        "mov r5, r9",
        "subs r5, r5, r3",
        "ldr r3, [sp, #12]",
        "subs r4, r4, r3",
        "subs r5, r5, r3",
        "subs r6, r6, r3",
        "subs r7, r7, r3",
        "ldr r3, [sp, #8]",
        "stm r3!, {{r4, r5, r6, r7}}",
        "str r3, [sp, #8]",
        "ldr r3, [sp, #4]",
        "subs r3, #1",
        "str r3, [sp, #4]",
        "beq 90f",
        "b 20b",
        "90:",
        "add sp, #16",
        "pop {{r4, r5, r6, r7}}",
        "mov r8, r4",
        "mov r9, r5",
        "mov r10, r6",
        "mov r11, r7",
        "pop {{r4, r5, r6, r7, pc}}",
        ".purgem GANTRY_INPUT",
        ".purgem GANTRY_TWO",
    )
}
