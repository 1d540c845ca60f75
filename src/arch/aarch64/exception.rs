//! EL2 exception entry (vectors.s) and the Rust handler: exits from guests
//! go to the exit handlers; an exception from EL2 itself is a hypervisor
//! fault: it is reported and the core parks.

use crate::exception::{Frame, Snapshot};
use core::arch::global_asm;

global_asm!(include_str!("vectors.s"));

/// Called by vectors.s with the saved frame (layout: [`Frame`]) and the
/// vector slot (0-15).
#[no_mangle]
extern "C" fn handle_exception(frame: &mut Frame, slot: u64) {
    if slot >= 8 {
        // From a guest (EL1/EL0): trap-and-emulate.
        if !crate::hyp::fast_exit(frame, slot) {
            crate::hyp::handle_exit(frame, slot);
        }
        return;
    }
    let snap = Snapshot {
        frame: *frame,
        slot,
        core: super::cpu::core_index(),
    };
    crate::kernel::unexpected_exception(&snap)
}
