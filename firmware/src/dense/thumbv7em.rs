//! The Cortex-M4/M7 (ARMv7E-M with the DSP extension) kernel, in assembly: one sample,
//! four output channels per pass over the inputs.
//!
//! It exists because stable Rust has no `UXTB16`/`SMLABB` intrinsics. Per two inputs,
//! with weight words `W, W'` (four channels each, offset binary) and lanes `q, q'`:
//!
//! ```text
//! ldrd   r9, r10, [r3], #8      W, W'
//! ldrd   r11, r12, [r4], #8     q, q'
//! uxtb16 r0, r9                 (u0, u2)
//! smlabb r5, r0, r11, r5        S0 += u0 q
//! smlatb r7, r0, r11, r7        S2 += u2 q
//! uxtb16 r0, r9, ror #8         (u1, u3)
//! smlabb r6, r0, r11, r6        S1 += u1 q
//! smlatb r8, r0, r11, r8        S3 += u3 q
//! … the same for W' and q'
//! ```
//!
//! eight inputs per loop iteration. The products `u q <= 255 * 255` are exact in the
//! signed 16×16 multiplies (both halves are below `2^15`), and the accumulations wrap
//! modulo `2^32`.
#![allow(unsafe_code)]

/// Stores `S_k - correction` (`S_k = Σ q u_k`) for the four channels of each group of
/// `job`.
///
/// Registers: `r1` = lanes' start, `r2` = end of the lanes taken eight at a time, `lr` =
/// end of the lanes, `r3` = weights, `r4` = lanes, `r5`-`r8` = sums; the stack holds
/// the groups left, the output pointer and the correction.
#[unsafe(naked)]
#[unsafe(no_mangle)]
pub(super) unsafe extern "C" fn gantry_dense_groups_thumbv7em(job: *const super::Job) {
    core::arch::naked_asm!(
        ".macro GANTRY_INPUT w, q",
        "uxtb16 r0, \\w",
        "smlabb r5, r0, \\q, r5",
        "smlatb r7, r0, \\q, r7",
        "uxtb16 r0, \\w, ror #8",
        "smlabb r6, r0, \\q, r6",
        "smlatb r8, r0, \\q, r8",
        ".endm",
        ".macro GANTRY_TWO",
        "ldrd r9, r10, [r3], #8",
        "ldrd r11, r12, [r4], #8",
        "GANTRY_INPUT r9, r11",
        "GANTRY_INPUT r10, r12",
        ".endm",
        "push {{r4, r5, r6, r7, r8, r9, r10, r11, lr}}",
        "sub sp, #16",
        "ldr r1, [r0, #20]",
        "str r1, [sp, #8]",
        "ldr r1, [r0, #0]",
        "ldr r2, [r0, #4]",
        "ldr r3, [r0, #8]",
        "ldr r4, [r0, #12]",
        "str r4, [sp, #0]",
        "ldr r4, [r0, #16]",
        "str r4, [sp, #4]",
        "add lr, r1, r2, lsl #2",
        "bic r2, r2, #7",
        "add r2, r1, r2, lsl #2",
        "ldr r4, [sp, #0]",
        "cmp r4, #0",
        "beq 90f",
        "20:",
        "mov r4, r1",
        "movs r5, #0",
        "movs r6, #0",
        "movs r7, #0",
        "mov r8, #0",
        "cmp r4, r2",
        "beq 24f",
        "23:",
        "GANTRY_TWO",
        "GANTRY_TWO",
        "GANTRY_TWO",
        "GANTRY_TWO",
        "cmp r4, r2",
        "bne 23b",
        "24:",
        "cmp r4, lr",
        "beq 29f",
        "25:",
        "ldr r9, [r3], #4",
        "ldr r11, [r4], #4",
        "GANTRY_INPUT r9, r11",
        "cmp r4, lr",
        "bne 25b",
        "29:",
        "ldr r9, [sp, #8]",
        "sub r5, r5, r9",
        "sub r6, r6, r9",
        "sub r7, r7, r9",
        "sub r8, r8, r9",
        "ldr r0, [sp, #4]",
        "stm r0!, {{r5, r6, r7, r8}}",
        "str r0, [sp, #4]",
        "ldr r0, [sp, #0]",
        "subs r0, #1",
        "str r0, [sp, #0]",
        "bne 20b",
        "90:",
        "add sp, #16",
        "pop {{r4, r5, r6, r7, r8, r9, r10, r11, pc}}",
        ".purgem GANTRY_INPUT",
        ".purgem GANTRY_TWO",
    )
}
