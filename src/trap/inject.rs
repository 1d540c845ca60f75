//! Delivering an exception to a guest's EL1, as the hardware would have:
//! ELR_EL1/SPSR_EL1 take the interrupted PC and PSTATE, ESR_EL1/FAR_EL1 the
//! syndrome, and the vCPU resumes at VBAR_EL1 plus the offset for where it
//! was (ARM ARM D1.10.2) in EL1h with D, A, I and F masked.

/// PSTATE for EL1h with DAIF masked (also the booting.rst entry state).
pub const PSTATE_EL1H_MASKED: u64 = 0x3c5;

/// What to inject.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// A synchronous external abort on a data access at `far`.
    DataAbort {
        /// Faulting virtual address.
        far: u64,
        /// The access was a write.
        write: bool,
    },
    /// A synchronous external abort on an instruction fetch at `far`.
    InstrAbort {
        /// Faulting virtual address.
        far: u64,
    },
    /// An UNDEFINED instruction.
    Undefined,
}

/// The register updates that deliver a fault.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Injection {
    /// New ELR_EL1: where the guest was.
    pub elr_el1: u64,
    /// New SPSR_EL1: the guest's PSTATE.
    pub spsr_el1: u64,
    /// New ESR_EL1.
    pub esr_el1: u64,
    /// New FAR_EL1, if the fault has one.
    pub far_el1: Option<u64>,
    /// Where the guest resumes (ELR_EL2).
    pub pc: u64,
    /// The guest's new PSTATE (SPSR_EL2).
    pub pstate: u64,
}

/// Vector offset from VBAR_EL1 for a synchronous exception taken from a
/// guest whose PSTATE was `spsr` (SPSR_EL2 at the exit).
pub fn sync_vector_offset(spsr: u64) -> u64 {
    if spsr & (1 << 4) != 0 {
        return 0x600; // lower EL, AArch32
    }
    match spsr & 0xf {
        0b0100 => 0x000, // EL1t: current EL with SP_EL0
        0b0101 => 0x200, // EL1h: current EL with SP_ELx
        _ => 0x400,      // EL0: lower EL, AArch64
    }
}

/// True if the guest was at EL1 (so the abort is "same EL").
fn at_el1(spsr: u64) -> bool {
    spsr & (1 << 4) == 0 && (spsr >> 2) & 3 == 1
}

/// Computes the injection of `fault` into a guest at `pc` with PSTATE
/// `spsr` and vectors at `vbar`.
pub fn inject(fault: Fault, pc: u64, spsr: u64, vbar: u64) -> Injection {
    const IL: u64 = 1 << 25;
    let same = at_el1(spsr);
    let (ec, iss, far) = match fault {
        Fault::DataAbort { far, write } => (
            if same { 0x25 } else { 0x24 },
            0x10 | ((write as u64) << 6),
            Some(far),
        ),
        Fault::InstrAbort { far } => (if same { 0x21 } else { 0x20 }, 0x10, Some(far)),
        Fault::Undefined => (0x00, 0, None),
    };
    Injection {
        elr_el1: pc,
        spsr_el1: spsr,
        esr_el1: (ec << 26) | IL | iss,
        far_el1: far,
        pc: (vbar & !0x7ff) + sync_vector_offset(spsr),
        pstate: PSTATE_EL1H_MASKED,
    }
}

#[cfg(test)]
#[path = "inject_tests.rs"]
mod tests;
