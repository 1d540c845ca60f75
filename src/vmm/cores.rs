//! What each physical core runs: its VM and vCPU (assigned once, before
//! the VMs start), whether it is inside a guest right now, and the release
//! of the cores into their vCPU loops.

use super::vm::{vms, Vm};
use crate::arch::cpu;
use crate::platform::MAX_CORES;
use core::sync::atomic::{AtomicBool, AtomicPtr, AtomicUsize, Ordering};

/// Each core's VM (null: none) and vCPU index, set once before the VMs
/// start; read on every exit, so a pointer rather than a lookup.
static ASSIGN_VM: [AtomicPtr<Vm>; MAX_CORES] =
    [const { AtomicPtr::new(core::ptr::null_mut()) }; MAX_CORES];

static ASSIGN_VCPU: [AtomicUsize; MAX_CORES] = [const { AtomicUsize::new(0) }; MAX_CORES];

/// Whether each core is inside a guest right now.
static IN_GUEST: [AtomicBool; MAX_CORES] = [const { AtomicBool::new(false) }; MAX_CORES];

/// Set when the VMs may start.
static GO: AtomicBool = AtomicBool::new(false);

/// Lets every core leave boot: cores with a vCPU run it, the others park.
pub fn release_cores() {
    GO.store(true, Ordering::Release);
    cpu::sev();
}

/// This core's VM and vCPU index.
pub fn current(core: usize) -> Option<(&'static Vm, usize)> {
    let vm = ASSIGN_VM.get(core)?.load(Ordering::Acquire);
    // SAFETY: the pointer is null or points into VMS, which is built once
    // and never dropped or moved.
    let vm = unsafe { vm.as_ref() }?;
    Some((vm, ASSIGN_VCPU[core].load(Ordering::Relaxed)))
}

/// The VM a physical SPI is passed through to (hardware-linked), if any.
pub fn hw_spi_owner(intid: u32) -> Option<&'static Vm> {
    vms().iter().find(|vm| vm.hw_spis.contains(&intid))
}

/// Gives core `core` vCPU `v` of `vm` (before the cores are released).
pub fn assign(core: usize, vm: &'static Vm, v: usize) {
    ASSIGN_VCPU[core].store(v, Ordering::Relaxed);
    ASSIGN_VM[core].store(vm as *const Vm as *mut Vm, Ordering::Release);
}

/// Sleeps until the cores are released.
pub fn wait_for_release() {
    while !GO.load(Ordering::Acquire) {
        aarch64_cpu::asm::wfe();
    }
}

/// Records whether core `core` is inside its guest.
pub fn set_in_guest(core: usize, inside: bool) {
    IN_GUEST[core].store(inside, Ordering::Release);
}

/// Whether core `core` is inside its guest.
pub fn in_guest(core: usize) -> bool {
    IN_GUEST[core].load(Ordering::Acquire)
}
