//! CPU control at EL2: identity, counters, sleeping, cache maintenance,
//! EL2 configuration, SMC calls and deliberate faults.

use aarch64_cpu::asm::barrier;
use aarch64_cpu::registers::*;
use core::arch::asm;

/// Logical core index (kept in TPIDR_EL2).
pub fn core_index() -> usize {
    TPIDR_EL2.get() as usize
}

/// Sets the logical core index.
pub fn set_core_index(i: usize) {
    TPIDR_EL2.set(i as u64);
}

/// MPIDR affinity bits (Aff3..Aff0).
pub fn mpidr() -> u64 {
    MPIDR_EL1.get() & 0xff_00ff_ffff
}

/// ID_AA64MMFR0_EL1.PARange: the physical address size.
pub fn pa_range() -> u64 {
    ID_AA64MMFR0_EL1.read(ID_AA64MMFR0_EL1::PARange)
}

/// Physical counter.
pub fn counter() -> u64 {
    barrier::isb(barrier::SY);
    CNTPCT_EL0.get()
}

/// Counter frequency in Hz (62.5 MHz on QEMU, 54 MHz on a Pi 4).
pub fn counter_freq() -> u64 {
    CNTFRQ_EL0.get()
}

/// Arms the EL2 physical timer (INTID 26) to fire at counter value
/// `deadline`: a core waiting in wfi wakes then.
pub fn el2_timer_arm(deadline: u64) {
    // SAFETY: the EL2 timer's compare value; only this core's wfi cares.
    unsafe { asm!("msr cnthp_cval_el2, {}", in(reg) deadline, options(nostack)) };
    CNTHP_CTL_EL2.write(CNTHP_CTL_EL2::ENABLE::SET + CNTHP_CTL_EL2::IMASK::CLEAR);
    barrier::isb(barrier::SY);
}

/// Stops the EL2 physical timer (its level interrupt drops).
pub fn el2_timer_stop() {
    CNTHP_CTL_EL2.set(0);
    barrier::isb(barrier::SY);
}

/// Sleeps forever with interrupts masked (wfi: QEMU halts the vCPU).
pub fn park() -> ! {
    // SAFETY: masking interrupts and waiting has no memory effects.
    unsafe { asm!("msr daifset, #0xf", options(nomem, nostack)) };
    loop {
        aarch64_cpu::asm::wfi();
    }
}

/// Unmasks SError at EL2, so asynchronous aborts get reported.
pub fn unmask_serror() {
    // SAFETY: only changes PSTATE.A; the vectors are installed.
    unsafe { asm!("msr daifclr, #4", options(nomem, nostack)) };
}

/// Sends an event to all cores, after the stores a waiter will look for.
///
/// SEV is not a memory access, so no store-release or DMB orders it: a
/// core woken by it could still read the old value of the flag it waits
/// on, consume the event and sleep again. `dsb ish` first completes every
/// earlier store to the inner-shareable domain (ARM ARM D1.6.1, "the
/// Event Register"; Linux's arm64 `dsb(ishst); sev()` in smp_spin_table
/// and spin-unlock paths). Every `sev` in the image goes through here;
/// `make test` checks that each one in the disassembly follows a DSB.
#[inline(always)]
pub fn sev() {
    barrier::dsb(barrier::ISH);
    aarch64_cpu::asm::sev();
}

fn dcache_line() -> u64 {
    let ctr: u64;
    // SAFETY: reading CTR_EL0 has no side effects.
    unsafe { asm!("mrs {}, ctr_el0", out(reg) ctr, options(nomem, nostack)) };
    4 << ((ctr >> 16) & 0xf)
}

macro_rules! dcache_op {
    ($name:ident, $op:literal, $doc:literal) => {
        #[doc = $doc]
        pub fn $name(start: u64, len: u64) {
            let line = dcache_line();
            let mut a = start & !(line - 1);
            while a < start + len {
                // SAFETY: data cache maintenance by VA on mapped memory.
                unsafe { asm!(concat!("dc ", $op, ", {}"), in(reg) a, options(nostack)) };
                a += line;
            }
            barrier::dsb(barrier::SY);
        }
    };
}

dcache_op!(
    clean_dcache,
    "cvac",
    "Cleans `[start, start+len)` to the point of coherency."
);
dcache_op!(
    clean_inval_dcache,
    "civac",
    "Cleans and invalidates `[start, start+len)` to the point of coherency."
);
dcache_op!(
    inval_dcache,
    "ivac",
    "Invalidates `[start, start+len)` to the point of coherency (discards lines)."
);

/// Zeroes `[start, start+len)` (identity-mapped Normal memory, 64-byte
/// aligned) and cleans and invalidates it to the point of coherency, so a
/// guest reading it with its caches off sees zeroes and no dirty line can
/// later overwrite what the guest wrote. (Plain stores rather than DC ZVA:
/// the same on silicon, and QEMU runs DC ZVA about 20 times slower.)
pub fn zero_to_poc(start: u64, len: u64) {
    let line = dcache_line().max(64);
    let (start, end) = (start & !63, (start + len + 63) & !63);
    let mut a = start;
    while a < end {
        // SAFETY: zeroes one 64-byte block of the caller's range.
        unsafe {
            asm!(
                "stp xzr, xzr, [{a}]",
                "stp xzr, xzr, [{a}, #16]",
                "stp xzr, xzr, [{a}, #32]",
                "stp xzr, xzr, [{a}, #48]",
                a = in(reg) a,
                options(nostack)
            );
        }
        a += 64;
        if a.is_multiple_of(line) {
            // SAFETY: cleans the line just written.
            unsafe { asm!("dc civac, {0}", in(reg) a - line, options(nostack)) };
        }
    }
    barrier::dsb(barrier::SY);
}

/// EL2 register layouts aarch64-cpu 11.2 lacks (its CPTR_EL2 has only
/// TAM, its CNTHCTL_EL2 only EL1PCTEN/EL1PCEN): ARM ARM D17.2.28
/// (CPTR_EL2, non-VHE) and D17.11.2 (CNTHCTL_EL2, non-VHE).
#[allow(missing_docs)]
pub mod el2 {
    use tock_registers::register_bitfields;
    register_bitfields! {u64,
        pub CPTR [
            /// Trap CPACR_EL1 accesses.
            TCPAC OFFSET(31) NUMBITS(1) [],
            /// Trap activity-monitor accesses.
            TAM OFFSET(30) NUMBITS(1) [],
            /// Trap trace register accesses.
            TTA OFFSET(20) NUMBITS(1) [],
            /// RES1.
            RES1_13_12 OFFSET(12) NUMBITS(2) [],
            /// Trap FP/SIMD.
            TFP OFFSET(10) NUMBITS(1) [],
            /// RES1 (bit 8 is TZ with SVE, RES1 without).
            RES1_9_0 OFFSET(0) NUMBITS(10) []
        ],
        pub CNTHCTL [
            /// Event stream rate: bit EVNTI of the counter.
            EVNTI OFFSET(4) NUMBITS(4) [],
            /// Event on a 1-to-0 (1) or 0-to-1 (0) transition.
            EVNTDIR OFFSET(3) NUMBITS(1) [],
            /// Event stream enable.
            EVNTEN OFFSET(2) NUMBITS(1) [],
            /// EL1/EL0 may use the physical timer.
            EL1PCEN OFFSET(1) NUMBITS(1) [],
            /// EL1/EL0 may read the physical counter.
            EL1PCTEN OFFSET(0) NUMBITS(1) []
        ]
    }
}

/// EL2 settings every core needs: FP/SIMD not trapped for guests (CPTR_EL2
/// TFP=0, with its RES1 bits), EL1 may use the physical counter and timer
/// (CNTHCTL_EL2 EL1PCTEN/EL1PCEN; the EL1 physical timer's interrupt is
/// forwarded like the virtual one's), no virtual counter offset until a
/// vCPU is configured, the EL2 timer off.
pub fn configure_el2() {
    // CPTR_EL2 (non-VHE): its RES1 bits (TZ, bit 8, is RES1 without SVE);
    // TFP, TTA and TCPAC clear: nothing traps.
    let cptr = (el2::CPTR::RES1_13_12.val(0b11)
        + el2::CPTR::RES1_9_0.val(0x3ff)
        + el2::CPTR::TFP::CLEAR
        + el2::CPTR::TTA::CLEAR
        + el2::CPTR::TCPAC::CLEAR)
        .value;
    // SAFETY: writes EL2 configuration registers that only affect lower ELs.
    unsafe { asm!("msr cptr_el2, {}", in(reg) cptr, options(nostack)) };
    // CNTHCTL_EL2: EL1 may read the physical counter and use the physical
    // timer; no event stream (EVNTEN clear: see docs/hardware.md, SEV).
    let cnthctl =
        (el2::CNTHCTL::EL1PCTEN::SET + el2::CNTHCTL::EL1PCEN::SET + el2::CNTHCTL::EVNTEN::CLEAR)
            .value;
    // SAFETY: as above.
    unsafe { asm!("msr cnthctl_el2, {}", in(reg) cnthctl, options(nostack)) };
    CNTVOFF_EL2.set(0);
    CNTHP_CTL_EL2.set(0);
    barrier::isb(barrier::SY);
}

/// A PSCI call through SMC or HVC; returns x0.
pub fn psci_call(hvc: bool, fid: u64, a1: u64, a2: u64, a3: u64) -> i64 {
    let mut r0 = fid;
    // SAFETY: SMCCC call: x0-x3 in, x0 out, x4-x17 may be clobbered.
    unsafe {
        if hvc {
            asm!("hvc #0", inout("x0") r0, inout("x1") a1 => _, inout("x2") a2 => _, inout("x3") a3 => _,
                 out("x4") _, out("x5") _, out("x6") _, out("x7") _, out("x8") _, out("x9") _, out("x10") _,
                 out("x11") _, out("x12") _, out("x13") _, out("x14") _, out("x15") _, out("x16") _, out("x17") _);
        } else {
            asm!("smc #0", inout("x0") r0, inout("x1") a1 => _, inout("x2") a2 => _, inout("x3") a3 => _,
                 out("x4") _, out("x5") _, out("x6") _, out("x7") _, out("x8") _, out("x9") _, out("x10") _,
                 out("x11") _, out("x12") _, out("x13") _, out("x14") _, out("x15") _, out("x16") _, out("x17") _);
        }
    }
    r0 as i64
}

/// A deliberate data abort (a debug option): a read of 256 GiB, inside
/// the 39-bit input range and never mapped.
pub fn fault_data_abort() {
    // SAFETY: not safe at all, on purpose: the read faults and the
    // exception vector reports it.
    let v = unsafe { core::ptr::read_volatile(0x40_0000_0000 as *const u64) };
    core::hint::black_box(v);
}

/// A deliberate undefined instruction (a debug option).
pub fn fault_undefined() {
    // SAFETY: raises an exception that the vector reports.
    unsafe { asm!("udf #0xbad", options(nomem, nostack)) }
}

/// A deliberate breakpoint (a debug option).
pub fn fault_breakpoint() {
    // SAFETY: raises an exception that the vector reports.
    unsafe { asm!("brk #0x1", options(nomem, nostack)) }
}
