//! Printing and exiting through Arm semihosting (`BKPT 0xAB`), which qemu serves with
//! `-semihosting-config enable=on,target=native`.
//!
//! It exists so that the benchmark needs no UART driver for either emulated board.

/// `SYS_WRITE0`: print a NUL-terminated string.
const SYS_WRITE0: usize = 0x04;
/// `SYS_EXIT`: stop, with a reason code.
const SYS_EXIT: usize = 0x18;
/// Reason `ADP_Stopped_ApplicationExit`: qemu exits with status 0.
const ADP_STOPPED_APPLICATION_EXIT: usize = 0x2_0026;
/// Reason `ADP_Stopped_RunTimeErrorUnknown`: qemu exits with status 1.
const ADP_STOPPED_RUN_TIME_ERROR: usize = 0x2_0023;

/// One semihosting call.
///
/// # Safety
///
/// `arg` must be what operation `op` expects (for `SYS_WRITE0`, a pointer to a
/// NUL-terminated string).
unsafe fn call(op: usize, arg: usize) -> usize {
    let mut r0 = op;
    // SAFETY: the debugger (qemu) handles the breakpoint and reads only what `op`
    // defines; the caller guarantees `arg`.
    unsafe {
        core::arch::asm!(
            "bkpt #0xab",
            inout("r0") r0,
            in("r1") arg,
            options(nostack, preserves_flags),
        );
    }
    r0
}

/// Ends the emulation: status 0 if `success`, else 1.
pub fn exit(success: bool) -> ! {
    let reason = if success {
        ADP_STOPPED_APPLICATION_EXIT
    } else {
        ADP_STOPPED_RUN_TIME_ERROR
    };
    // SAFETY: SYS_EXIT takes the reason code itself on 32-bit targets.
    unsafe { call(SYS_EXIT, reason) };
    loop {
        core::hint::spin_loop();
    }
}

/// A line-buffered writer to the host's standard output.
pub struct Console {
    buf: [u8; 120],
    len: usize,
}

impl Console {
    /// An empty line.
    pub const fn new() -> Self {
        Self {
            buf: [0; 120],
            len: 0,
        }
    }

    fn flush(&mut self) {
        if self.len == 0 {
            return;
        }
        self.buf[self.len] = 0;
        // SAFETY: `buf[..=len]` is a NUL-terminated string that outlives the call.
        unsafe { call(SYS_WRITE0, self.buf.as_ptr() as usize) };
        self.len = 0;
    }
}

impl core::fmt::Write for Console {
    fn write_str(&mut self, s: &str) -> core::fmt::Result {
        for &b in s.as_bytes() {
            // Keep the last byte for the terminating NUL.
            if self.len == self.buf.len() - 1 {
                self.flush();
            }
            self.buf[self.len] = b;
            self.len += 1;
            if b == b'\n' {
                self.flush();
            }
        }
        Ok(())
    }
}

/// Prints the panic and exits with status 1.
#[panic_handler]
fn panic(info: &core::panic::PanicInfo) -> ! {
    use core::fmt::Write as _;
    let mut out = Console::new();
    let _ = writeln!(out, "panic: {info}");
    exit(false)
}
