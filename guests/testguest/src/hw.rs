//! The test guest's hardware access: SMCCC calls, exact load/store
//! instructions to the test device, system registers, the console and
//! the "expect an abort" mechanism used by the exception vector.

use core::arch::asm;

/// The pivisor test device (device tree "pivisor,test-device").
pub const TESTDEV: u64 = 0xfc00_0000;
/// Scratch words for the abort check: expecting flag, ESR, FAR.
const ABORT_BOX: u64 = 0x7d000;

pub const SMCCC_VERSION: u32 = 0x8000_0000;
pub const SMCCC_ARCH_FEATURES: u32 = 0x8000_0001;
pub const PSCI_VERSION: u32 = 0x8400_0000;
pub const CPU_OFF: u32 = 0x8400_0002;
pub const CPU_ON: u32 = 0xc400_0003;
pub const AFFINITY_INFO: u32 = 0xc400_0004;
pub const MIGRATE_INFO_TYPE: u32 = 0x8400_0006;
pub const SYSTEM_OFF: u32 = 0x8400_0008;
pub const SYSTEM_RESET: u32 = 0x8400_0009;
pub const PSCI_FEATURES: u32 = 0x8400_000a;
pub const NOT_SUPPORTED: i64 = -1;

pub struct Console;

impl core::fmt::Write for Console {
    fn write_str(&mut self, s: &str) -> core::fmt::Result {
        for b in s.bytes() {
            // SAFETY: the test device's PUTC register.
            unsafe {
                asm!("strb {0:w}, [{1}]", in(reg) b as u32, in(reg) TESTDEV + 8, options(nostack))
            };
        }
        Ok(())
    }
}

#[macro_export]
macro_rules! println {
    ($($arg:tt)*) => {{
        let _ = writeln!($crate::hw::Console, $($arg)*);
    }};
}

macro_rules! smccc {
    ($name:ident, $insn:literal, $doc:literal) => {
        #[doc = $doc]
        pub fn $name(f: u64, a: u64, b: u64, c: u64) -> i64 {
            let mut r = f;
            // SAFETY: SMCCC: x0-x3 in, x0 out; x4-x17 may be clobbered.
            unsafe {
                asm!($insn, inout("x0") r, inout("x1") a => _, inout("x2") b => _, inout("x3") c => _,
                     out("x4") _, out("x5") _, out("x6") _, out("x7") _, out("x8") _, out("x9") _, out("x10") _,
                     out("x11") _, out("x12") _, out("x13") _, out("x14") _, out("x15") _, out("x16") _, out("x17") _)
            };
            r as i64
        }
    };
}

smccc!(hvc, "hvc #0", "An SMCCC call over HVC.");
smccc!(smc, "smc #0", "An SMCCC call over SMC.");

/// A PSCI call (the device tree says method = "hvc").
pub fn psci(f: u32, a: u64, b: u64, c: u64) -> i64 {
    hvc(f as u64, a, b, c)
}

macro_rules! load {
    ($name:ident, $insn:literal, $t:ty) => {
        pub fn $name(off: u64) -> $t {
            let v: u64;
            // SAFETY: a load from the test device.
            unsafe { asm!($insn, out(reg) v, in(reg) TESTDEV + off, options(nostack)) };
            v as $t
        }
    };
}

load!(testdev_read32, "ldr {0:w}, [{1}]", u32);
load!(testdev_ldrsb, "ldrsb {0}, [{1}]", i64);
load!(testdev_ldrsh_w, "ldrsh {0:w}, [{1}]", u64);
load!(testdev_ldrb, "ldrb {0:w}, [{1}]", u64);

pub fn testdev_write32(off: u64, v: u32) {
    // SAFETY: a store to the test device.
    unsafe { asm!("str {0:w}, [{1}]", in(reg) v, in(reg) TESTDEV + off, options(nostack)) };
}

pub fn testdev_strb(off: u64, v: u8) {
    // SAFETY: a store to the test device.
    unsafe { asm!("strb {0:w}, [{1}]", in(reg) v as u32, in(reg) TESTDEV + off, options(nostack)) };
}

/// One 64-bit load (a single `ldr`, so MMIO gets a valid syndrome).
pub fn read64(a: u64) -> u64 {
    let v: u64;
    // SAFETY: the test decides what it reads.
    unsafe { asm!("ldr {0}, [{1}]", out(reg) v, in(reg) a, options(nostack)) };
    v
}

/// One 64-bit store.
pub fn write64(a: u64, v: u64) {
    // SAFETY: the test decides what it writes.
    unsafe { asm!("str {0}, [{1}]", in(reg) v, in(reg) a, options(nostack)) };
}

/// Accesses `addr` expecting a synchronous abort; returns (ESR, FAR).
pub fn expect_abort(addr: u64, write: bool) -> Option<(u64, u64)> {
    write64(ABORT_BOX, 1);
    write64(ABORT_BOX + 8, 0);
    write64(ABORT_BOX + 16, 0);
    if write {
        write64(addr, 0x5a5a);
    } else {
        let _ = read64(addr);
    }
    let still_expecting = read64(ABORT_BOX) == 1;
    write64(ABORT_BOX, 0);
    (!still_expecting).then(|| (read64(ABORT_BOX + 8), read64(ABORT_BOX + 16)))
}

/// Expects the next synchronous exception (an injected abort or
/// UNDEFINED): the handler records it and skips the instruction.
pub fn arm_abort_box() {
    write64(ABORT_BOX, 1);
}

/// Whether an exception came since [`arm_abort_box`] (and disarms).
pub fn abort_box_taken() -> bool {
    let taken = read64(ABORT_BOX) == 2;
    write64(ABORT_BOX, 0);
    taken
}

/// Branches to `addr` expecting an instruction abort; the handler
/// resumes after the branch. Returns (ESR, FAR) if one came.
pub fn expect_exec_abort(addr: u64) -> Option<(u64, u64)> {
    write64(ABORT_BOX, 3);
    write64(ABORT_BOX + 8, 0);
    write64(ABORT_BOX + 16, 0);
    // SAFETY: the branch target must abort (the caller expects it); the
    // handler returns to label 2 with every register the vector saved.
    unsafe {
        asm!(
            "adr {r}, 2f",
            "str {r}, [{slot}]",
            "blr {target}",
            "2:",
            r = out(reg) _,
            slot = in(reg) ABORT_BOX + 24,
            target = in(reg) addr,
            out("x30") _,
            options(nostack)
        )
    };
    let still_expecting = read64(ABORT_BOX) == 3;
    write64(ABORT_BOX, 0);
    (!still_expecting).then(|| (read64(ABORT_BOX + 8), read64(ABORT_BOX + 16)))
}

macro_rules! sysreg_read {
    ($name:ident, $reg:literal) => {
        pub fn $name() -> u64 {
            let v: u64;
            // SAFETY: a system register read (trapped and emulated).
            unsafe { asm!(concat!("mrs {}, ", $reg), out(reg) v, options(nostack)) };
            v
        }
    };
}

sysreg_read!(sysreg_oslsr, "oslsr_el1");
sysreg_read!(sysreg_pmcr, "pmcr_el0");
sysreg_read!(sysreg_cpuectlr, "s3_1_c15_c2_1");
sysreg_read!(mpidr, "mpidr_el1");

pub fn sysreg_oslar(v: u64) {
    // SAFETY: trapped and emulated.
    unsafe { asm!("msr oslar_el1, {}", in(reg) v, options(nostack)) };
}

pub fn sysreg_actlr_write(v: u64) {
    // SAFETY: trapped; the hypervisor ignores it.
    unsafe { asm!("msr actlr_el1, {}", in(reg) v, options(nostack)) };
}

/// Set/way maintenance (trapped by HCR_EL2.TSW).
pub fn dc_cisw_all() {
    // SAFETY: cache maintenance; the hypervisor makes each a clean+invalidate.
    unsafe {
        asm!("dc isw, {0}", "dc csw, {0}", "dc cisw, {1}", "dsb sy", in(reg) 0u64, in(reg) 2u64, options(nostack));
    }
}

pub fn secondary_entry_addr() -> u64 {
    let a: u64;
    // SAFETY: takes an address.
    unsafe { asm!("ldr {}, =secondary_entry", out(reg) a, options(nostack)) };
    a
}

/// Polls `f` for up to two seconds of counter time.
pub fn wait_for(mut f: impl FnMut() -> bool) -> bool {
    let (freq, start): (u64, u64);
    // SAFETY: counter reads (EL1 physical counter access is enabled).
    unsafe {
        asm!("mrs {}, cntfrq_el0", out(reg) freq, options(nostack));
        asm!("isb", "mrs {}, cntpct_el0", out(reg) start, options(nostack));
    }
    loop {
        if f() {
            return true;
        }
        let now: u64;
        // SAFETY: as above.
        unsafe { asm!("isb", "mrs {}, cntpct_el0", out(reg) now, options(nostack)) };
        if now - start > 2 * freq {
            return false;
        }
    }
}

/// The EL1 exception handler (from the vectors in start.s).
#[no_mangle]
extern "C" fn exception(kind: u64) {
    let (esr, far, elr): (u64, u64, u64);
    // SAFETY: reads the exception registers.
    unsafe {
        asm!("mrs {}, esr_el1", out(reg) esr, options(nostack));
        asm!("mrs {}, far_el1", out(reg) far, options(nostack));
        asm!("mrs {}, elr_el1", out(reg) elr, options(nostack));
    }
    if kind == 5 {
        crate::gic::irq();
        return;
    }
    if kind == 4 && read64(ABORT_BOX) == 3 {
        // An expected instruction abort: resume after the branch.
        write64(ABORT_BOX + 8, esr);
        write64(ABORT_BOX + 16, far);
        write64(ABORT_BOX, 2);
        // SAFETY: the recovery address expect_exec_abort stored.
        unsafe { asm!("msr elr_el1, {}", in(reg) read64(ABORT_BOX + 24), options(nostack)) };
        return;
    }
    if kind == 4 && read64(ABORT_BOX) == 1 {
        write64(ABORT_BOX + 8, esr);
        write64(ABORT_BOX + 16, far);
        write64(ABORT_BOX, 2);
        // SAFETY: skip the faulting instruction.
        unsafe { asm!("msr elr_el1, {}", in(reg) elr + 4, options(nostack)) };
        return;
    }
    use core::fmt::Write;
    println!("TEST exception FAIL: vector {kind}, ESR {esr:#x}, ELR {elr:#x}, FAR {far:#x}");
    psci(SYSTEM_OFF, 0, 0, 0);
}

/// Sleeps forever.
pub fn halt() -> ! {
    loop {
        aarch64_wfi();
    }
}

fn aarch64_wfi() {
    // SAFETY: waits for an interrupt.
    unsafe { asm!("wfi", options(nomem, nostack)) };
}

/// Lets EL1 and EL0 use FP/SIMD (CPACR_EL1.FPEN = 0b11; a reset leaves
/// it 0, which traps them).
fn fp_enable() {
    // SAFETY: an EL1 control register of this guest's own.
    unsafe {
        asm!(
            "mrs {t}, cpacr_el1",
            "orr {t}, {t}, #0x300000",
            "msr cpacr_el1, {t}",
            "isb",
            t = out(reg) _,
            options(nostack)
        )
    };
}

/// Leaves a pattern in the FP/SIMD state (d0, the top half of v31,
/// FPCR) for a restart to clear.
pub fn fp_leave_state() {
    fp_enable();
    // SAFETY: only FP/SIMD registers change; the code is soft-float.
    unsafe {
        asm!(
            ".arch_extension fp",
            ".arch_extension simd",
            "fmov d0, {p}",
            "mov v31.d[1], {p}",
            "msr fpcr, {f}",
            p = in(reg) 0x5a5a_5a5a_5a5a_5a5au64,
            f = in(reg) 0x0300_0000u64,
            options(nostack)
        )
    };
}

/// The FP/SIMD state now: (d0, the top half of v31, FPCR).
pub fn fp_state() -> (u64, u64, u64) {
    fp_enable();
    let (d0, hi, fpcr): (u64, u64, u64);
    // SAFETY: reads of FP/SIMD registers.
    unsafe {
        asm!(
            ".arch_extension fp",
            ".arch_extension simd",
            "fmov {d0}, d0",
            "mov {hi}, v31.d[1]",
            "mrs {fpcr}, fpcr",
            d0 = out(reg) d0,
            hi = out(reg) hi,
            fpcr = out(reg) fpcr,
            options(nostack)
        )
    };
    (d0, hi, fpcr)
}
