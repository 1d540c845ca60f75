//! Trapped system register accesses and what the hypervisor answers.
//!
//! Policy (MDCR_EL2 TDA/TDOSA/TDRA/TPM/TPMCR, HCR_EL2 TACR/TIDCP/TSW):
//! - Debug is hidden: the OS lock is emulated (OSLAR_EL1 / OSLSR_EL1, as
//!   Linux unlocks it at boot), MDSCR_EL1 is a per-vCPU shadow that never
//!   reaches the hardware, every other debug register reads as zero and
//!   ignores writes (no breakpoints or watchpoints for guests).
//! - The PMU is hidden: every PMU register reads as zero (PMCR_EL0.N = 0:
//!   no counters) and ignores writes.
//! - ACTLR_EL1 and the Cortex-A72's IMPLEMENTATION DEFINED registers
//!   (CPUACTLR, CPUECTLR with SMPEN, L2CTLR, ...) read as zero and ignore
//!   writes: a guest must not take its core out of coherency.
//! - DC ISW/CSW/CISW (set/way) become DC CISW on the same set/way: a
//!   clean-and-invalidate never loses another VM's dirty lines in the
//!   shared L2, where an invalidate-only would.
//! - Anything else is UNDEFINED for the guest.

/// One trapped MSR/MRS/SYS access.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SysRegAccess {
    /// op0.
    pub op0: u8,
    /// op1.
    pub op1: u8,
    /// CRn.
    pub crn: u8,
    /// CRm.
    pub crm: u8,
    /// op2.
    pub op2: u8,
    /// Transfer register (31 = XZR).
    pub rt: u8,
    /// MRS (true) or MSR/SYS (false).
    pub read: bool,
}

impl SysRegAccess {
    /// The encoding as (op0, op1, CRn, CRm, op2).
    pub fn key(&self) -> (u8, u8, u8, u8, u8) {
        (self.op0, self.op1, self.crn, self.crm, self.op2)
    }
}

impl core::fmt::Display for SysRegAccess {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(
            f,
            "{} S{}_{}_C{}_C{}_{} (x{})",
            if self.read { "MRS" } else { "MSR" },
            self.op0,
            self.op1,
            self.crn,
            self.crm,
            self.op2,
            self.rt
        )
    }
}

/// Per-vCPU state behind the emulated registers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SysRegState {
    /// OSLSR_EL1.OSLK: the OS lock (set at reset, as on hardware).
    pub os_lock: bool,
    /// MDSCR_EL1 as the guest last wrote it.
    pub mdscr: u64,
}

impl SysRegState {
    /// Reset values: OS lock set.
    pub fn reset() -> Self {
        Self {
            os_lock: true,
            mdscr: 0,
        }
    }
}

/// What to do for a trapped access.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SysRegResult {
    /// Put this value in Rt (for MRS) and advance.
    Read(u64),
    /// The write was absorbed; advance.
    Written,
    /// Perform DC CISW with this operand, then advance.
    SetWay(u64),
    /// Inject an UNDEFINED exception.
    Undefined,
}

/// Which policy class an encoding falls into (for log lines and tests).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    /// OSLAR_EL1.
    OsLockAccess,
    /// OSLSR_EL1.
    OsLockStatus,
    /// MDSCR_EL1.
    Mdscr,
    /// Any other debug register (op0 = 2).
    Debug,
    /// A PMU register.
    Pmu,
    /// ACTLR_EL1.
    Actlr,
    /// IMPLEMENTATION DEFINED (CRn 11 or 15, op0 = 3).
    ImpDef,
    /// DC ISW, DC CSW or DC CISW.
    SetWay,
    /// Nothing the hypervisor emulates.
    Unknown,
}

/// Classifies an encoding.
pub fn classify(a: &SysRegAccess) -> Class {
    match a.key() {
        (2, 0, 1, 0, 4) => Class::OsLockAccess,
        (2, 0, 1, 1, 4) => Class::OsLockStatus,
        (2, 0, 0, 2, 2) => Class::Mdscr,
        (2, ..) => Class::Debug,
        (3, 0, 1, 0, 1) => Class::Actlr,
        // PMCR_EL0 .. PMOVSSET_EL0 (CRn 9), PMEVCNTRn/PMEVTYPERn (CRn 14,
        // CRm 8-15), PMINTENSET/CLR_EL1.
        (3, 3, 9, 12..=14, _) | (3, 3, 14, 8..=15, _) | (3, 0, 9, 14, 1 | 2) => Class::Pmu,
        (3, _, 11 | 15, _, _) => Class::ImpDef,
        (1, 0, 7, 6 | 10 | 14, 2) => Class::SetWay,
        _ => Class::Unknown,
    }
}

/// Emulates `a`; `value` is Rt's value for a write.
pub fn emulate(a: &SysRegAccess, value: u64, st: &mut SysRegState) -> SysRegResult {
    match (classify(a), a.read) {
        (Class::OsLockAccess, false) => {
            st.os_lock = value & 1 == 1;
            SysRegResult::Written
        }
        // OSLM = 0b10 (bit 3): the OS lock is implemented; OSLK is bit 1.
        (Class::OsLockStatus, true) => SysRegResult::Read(0b1000 | ((st.os_lock as u64) << 1)),
        (Class::Mdscr, true) => SysRegResult::Read(st.mdscr),
        (Class::Mdscr, false) => {
            st.mdscr = value;
            SysRegResult::Written
        }
        (Class::Debug | Class::Pmu | Class::Actlr | Class::ImpDef, true) => SysRegResult::Read(0),
        (Class::Debug | Class::Pmu | Class::Actlr | Class::ImpDef, false) => SysRegResult::Written,
        (Class::SetWay, false) => SysRegResult::SetWay(value),
        _ => SysRegResult::Undefined,
    }
}

#[cfg(test)]
#[path = "sysreg_tests.rs"]
mod tests;
