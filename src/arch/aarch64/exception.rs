//! EL2 exception entry (vectors.s) and the Rust handler. Until guests exist
//! every exception is unexpected: it is reported and the core parks.

use crate::exception::Snapshot;
use core::arch::global_asm;

global_asm!(include_str!("vectors.s"));

/// The registers vectors.s saves, in its layout (288 bytes).
#[repr(C)]
pub struct TrapFrame {
    /// x0-x30.
    pub regs: [u64; 31],
    /// ELR_EL2.
    pub elr: u64,
    /// SPSR_EL2.
    pub spsr: u64,
    /// ESR_EL2.
    pub esr: u64,
    /// FAR_EL2.
    pub far: u64,
    /// HPFAR_EL2.
    pub hpfar: u64,
}

const _: () = assert!(core::mem::size_of::<TrapFrame>() == 288);

/// Called by vectors.s with the saved frame and the vector slot (0-15).
#[no_mangle]
extern "C" fn handle_exception(frame: &mut TrapFrame, slot: u64) {
    let snap = Snapshot {
        regs: frame.regs,
        elr: frame.elr,
        spsr: frame.spsr,
        esr: frame.esr,
        far: frame.far,
        hpfar: frame.hpfar,
        slot,
        core: super::cpu::core_index(),
    };
    crate::kernel::unexpected_exception(&snap)
}
