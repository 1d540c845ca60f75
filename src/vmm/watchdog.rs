//! A VM's SP805 watchdog on the hypervisor's side: its clock from the
//! counter, and the check on every exit of a VM that has one.

use super::lifecycle::end_vm;
use super::vm::Vm;
use crate::arch::cpu;
use crate::devices::sp805::{self, Sp805};
use crate::sync::Mutex;
use crate::vm::restart::End;

/// The watchdog clock (sp805::CLOCK_HZ) now, from the counter.
pub fn ticks() -> u64 {
    (u128::from(cpu::counter()) * u128::from(sp805::CLOCK_HZ)
        / u128::from(cpu::counter_freq().max(1))) as u64
}

/// The counter value at watchdog tick `t` (rounded up: never early).
pub fn counter_at(t: u64) -> u64 {
    let f = u128::from(cpu::counter_freq().max(1));
    (u128::from(t) * f).div_ceil(u128::from(sp805::CLOCK_HZ)) as u64
}

/// A VM with a watchdog, on every exit: if it expired, the VM crashed;
/// otherwise this core's EL2 timer is set for the moment it would, so a
/// guest that hangs without ever exiting again is still caught (the timer
/// interrupt is an exit).
pub fn check(vm: &Vm, v: usize, core: usize, w: &Mutex<Sp805>) {
    let mut d = w.lock();
    if d.expired() {
        drop(d);
        end_vm(
            vm,
            v,
            core,
            End::Crash,
            format_args!("crashed: its watchdog expired (seen on vCPU {v})"),
        )
    }
    match d.deadline() {
        Some(t) => cpu::el2_timer_arm(counter_at(t)),
        None => cpu::el2_timer_stop(),
    }
}
