//! The EL2 stage-1 MMU: register values and the enable sequence
//! (ARM ARM D8.2 "Translation process", D8.2.4 TCR_EL2 for non-VHE EL2).

use crate::mm::pagetable::MAIR_EL2_VALUE;
use aarch64_cpu::registers::*;

/// The values written to the EL2 translation registers.
#[derive(Debug, Clone, Copy)]
pub struct MmuConfig {
    /// TTBR0_EL2: root table.
    pub ttbr: u64,
    /// TCR_EL2.
    pub tcr: u64,
    /// MAIR_EL2.
    pub mair: u64,
    /// SCTLR_EL2.
    pub sctlr: u64,
}

/// SCTLR_EL2 RES1 bits (ARMv8.0, EL2 without VHE).
const SCTLR_EL2_RES1: u64 = (1 << 4)
    | (1 << 5)
    | (1 << 11)
    | (1 << 16)
    | (1 << 18)
    | (1 << 22)
    | (1 << 23)
    | (1 << 28)
    | (1 << 29);

/// The configuration for a 39-bit identity map rooted at `root`.
pub fn config_for(root: u64) -> MmuConfig {
    // PS: the CPU's PA range, capped at 40 bits (all a Pi 4 has).
    let parange = ID_AA64MMFR0_EL1.read(ID_AA64MMFR0_EL1::PARange).min(0b010);
    let tcr = 25                   // T0SZ: 39-bit input addresses, walk starts at level 1
        | (0b01 << 8)              // IRGN0: write-back, write-allocate
        | (0b01 << 10)             // ORGN0: write-back, write-allocate
        | (0b11 << 12)             // SH0: inner shareable
        | (parange << 16)          // PS
        | (1 << 23) | (1 << 31); // RES1
    let sctlr = SCTLR_EL2_RES1
        | 1                        // M: MMU on
        | (1 << 2)                 // C: data caches
        | (1 << 3)                 // SA: stack alignment check
        | (1 << 12)                // I: instruction cache
        | (1 << 19); // WXN: writable implies execute-never
    MmuConfig {
        ttbr: root,
        tcr,
        mair: MAIR_EL2_VALUE,
        sctlr,
    }
}

extern "C" {
    /// boot.s: the enable sequence, shared with the secondary entry.
    fn el2_mmu_enable(ttbr: u64, tcr: u64, mair: u64, sctlr: u64);
}

/// Turns the MMU and caches on with `cfg`.
///
/// # Safety
/// The tables must map the running code, its stack and everything it will
/// touch, identity; stale cache lines for memory written with the MMU off
/// must already be invalidated.
pub unsafe fn enable(cfg: &MmuConfig) {
    // SAFETY: the caller guarantees the map; the routine follows the
    // ARM ARM sequence and clobbers nothing but its arguments.
    unsafe { el2_mmu_enable(cfg.ttbr, cfg.tcr, cfg.mair, cfg.sctlr) }
}
