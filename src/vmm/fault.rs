//! Faults of the hypervisor itself: an exception nothing handles, or a
//! panic, is reported on the console and parks the core (the other cores
//! and their VMs carry on). Also runs with the MMU off (a fault during
//! early boot): no exclusives on this path (checked with the boot path).

use super::console;
use crate::arch::cpu;
use crate::exception::{self, Snapshot};
use log::error;

/// Reports an exception nothing handles and parks this core. Also runs
/// with the MMU off (a fault during early boot): no exclusives on this
/// path either (checked with the boot path).
#[inline(never)]
pub fn unexpected_exception(s: &Snapshot) -> ! {
    console::ensure();
    exception::report(s, &mut |line| error!("{line}"));
    error!("core {} parked", s.core);
    cpu::park()
}

#[panic_handler]
fn panic(info: &core::panic::PanicInfo<'_>) -> ! {
    console::ensure();
    error!("PANIC on core {}: {info}", cpu::core_index());
    error!("core {} parked", cpu::core_index());
    cpu::park()
}
