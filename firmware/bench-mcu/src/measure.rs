//! Instruction counts from the SysTick timer under `qemu -icount shift=0`, and the stack
//! high-water mark by painting.
//!
//! It exists because qemu has no cycle counter (DWT CYCCNT reads 0): with `-icount
//! shift=0` every guest instruction advances virtual time by 1 ns, and SysTick, clocked
//! by the core clock of the emulated board, counts that virtual time. The ratio of
//! instructions to ticks is measured here on a loop of known length rather than taken
//! from the board's clock frequency.

use core::ptr::{addr_of, read_volatile, write_volatile};

/// The core this build runs on, for the report.
#[cfg(target_arch = "arm")]
pub const CORE: &str = if cfg!(target_abi = "eabihf") {
    "Cortex-M4 (thumbv7em-none-eabihf, qemu -M mps2-an386)"
} else {
    "Cortex-M0 (thumbv6m-none-eabi, qemu -M microbit)"
};

/// SysTick control and status register.
const SYST_CSR: *mut u32 = 0xE000_E010 as *mut u32;
/// SysTick reload value register.
const SYST_RVR: *mut u32 = 0xE000_E014 as *mut u32;
/// SysTick current value register (counts down).
const SYST_CVR: *mut u32 = 0xE000_E018 as *mut u32;
/// The 24 bits SysTick counts in.
const MASK: u32 = 0x00FF_FFFF;

/// Iterations of the two-instruction calibration loop.
const CALIBRATION_LOOPS: u32 = 400_000;

/// SysTick, free-running on the core clock, with its measured instructions per tick.
pub struct Clock {
    /// Instructions executed during the calibration.
    pub instructions: u64,
    /// SysTick ticks they took.
    pub ticks: u64,
}

impl Clock {
    /// Starts SysTick (core clock, no interrupt) and times a loop of known length.
    pub fn calibrate() -> Self {
        // SAFETY: SysTick's registers exist on every Cortex-M; nothing else uses them.
        unsafe {
            write_volatile(SYST_RVR, MASK);
            write_volatile(SYST_CVR, 0);
            write_volatile(SYST_CSR, 0b101); // enable, core clock, no interrupt
        }
        let start = now();
        let mut n = CALIBRATION_LOOPS;
        // SAFETY: a register-only loop: `subs` and a taken `bne` per iteration, the last
        // `bne` not taken, so exactly 2 * CALIBRATION_LOOPS instructions.
        unsafe {
            core::arch::asm!(
                "2:",
                "subs {n}, #1",
                "bne 2b",
                n = inout(reg) n,
                options(nomem, nostack),
            );
        }
        let ticks = elapsed(start, now());
        core::hint::black_box(n);
        Self {
            instructions: 2 * u64::from(CALIBRATION_LOOPS),
            ticks: u64::from(ticks),
        }
    }

    /// Runs `f` and returns its result and the instructions it took (to within one tick,
    /// some tens of instructions; runs must stay under 2^24 ticks).
    pub fn count<R>(&self, f: impl FnOnce() -> R) -> (R, u64) {
        let start = now();
        let r = f();
        let ticks = u64::from(elapsed(start, now()));
        (r, ticks * self.instructions / self.ticks.max(1))
    }
}

/// The current SysTick value.
fn now() -> u32 {
    // SAFETY: reading SysTick's current value has no side effect.
    unsafe { read_volatile(SYST_CVR) & MASK }
}

/// Ticks from `start` to `end` of the down-counter.
fn elapsed(start: u32, end: u32) -> u32 {
    start.wrapping_sub(end) & MASK
}

unsafe extern "C" {
    /// cortex-m-rt: the lowest address the stack may grow to (end of `.bss`/`.uninit`).
    static _stack_end: u32;
}

/// A word no program writes by chance.
const PAINT: u32 = 0x5AC3_C35A;

/// Runs `f` with the free stack painted and returns its result's and the bytes below
/// this function's stack pointer that `f` wrote (its high-water mark, everything it and
/// its callees put on the stack).
#[inline(never)]
pub fn stack_used_by<R>(f: impl FnOnce() -> R) -> (usize, R) {
    let sp: usize;
    // SAFETY: reads the stack pointer.
    unsafe {
        core::arch::asm!("mov {}, sp", out(reg) sp, options(nomem, nostack, preserves_flags))
    };
    let bottom = addr_of!(_stack_end) as usize;
    // Leave this frame's own red zone alone: nothing is below `sp` now, and no interrupt
    // is enabled that could push onto it.
    let top = sp - 16;
    let mut p = bottom;
    while p < top {
        // SAFETY: [bottom, top) is free RAM between the statics and the stack.
        unsafe { write_volatile(p as *mut u32, PAINT) };
        p += 4;
    }
    let r = f();
    let mut lowest = bottom;
    // SAFETY: as above; reading back what was painted or written since.
    while lowest < top && unsafe { read_volatile(lowest as *const u32) } == PAINT {
        lowest += 4;
    }
    (sp - lowest, r)
}
