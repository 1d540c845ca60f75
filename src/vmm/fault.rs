//! Faults of the hypervisor itself: an exception nothing handles, or a
//! panic, is reported on the console and parks the core (the other cores
//! and their VMs carry on). Once its report is out the core is marked
//! dead, so every lock it still holds (a VM's device or distributor, the
//! console switch, the heap, the mailbox) goes to the next core that asks
//! ([`crate::sync::Mutex`]): a panic is never a deadlock for the other
//! cores. (Not before: the report takes the console's line lock, which
//! the core may hold already, and others must not write into it.) Also runs with the MMU off (a
//! fault during early boot): no exclusives on this path (checked with the
//! boot path).

use super::{console, firmware};
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
    console::flush();
    die(s.core);
    cpu::park()
}

#[panic_handler]
fn panic(info: &core::panic::PanicInfo<'_>) -> ! {
    console::ensure();
    error!("PANIC on core {}: {info}", cpu::core_index());
    error!("core {} parked", cpu::core_index());
    console::flush();
    die(cpu::core_index());
    cpu::park()
}

/// Marks this core dead so the locks it holds are taken over.
fn die(core: usize) {
    if console::exclusives_ok() {
        crate::sync::mark_dead(core);
    } else {
        crate::sync::mark_dead_early(core);
    }
}

/// The fault-injection page's PANIC (`devices = fault-injection`, test
/// bundles only): panics this core while it holds the console's line lock
/// and the firmware mailbox's lock, the two every VM's exits can need.
pub fn inject(vm: &str) -> ! {
    firmware::holding_lock(|| {
        console::with_console(|_| {
            panic!(
                "fault injected by VM '{vm}' (devices = fault-injection), holding the console's line lock and the firmware mailbox's lock"
            )
        })
    });
    cpu::park()
}
