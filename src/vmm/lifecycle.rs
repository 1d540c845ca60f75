//! A VM's life: SYSTEM_OFF, SYSTEM_RESET and crashes end it, and its
//! restart policy (vm::restart) halts or restarts it. The one path every
//! state change of a VM goes through.

use super::vcpu::leave;
use super::vm::Vm;
use super::{cores, irq};
use crate::arch::{cpu, guest};
use crate::vm::psci::Power;
use crate::vm::restart::state;
use crate::vm::restart::{claim_end, Action, Backoff, End, RestartPolicy};
use core::sync::atomic::Ordering;
use log::warn;

/// How long SYSTEM_RESET waits for the other vCPUs to leave the guest.
const STOP_TIMEOUT_MS: u64 = 1000;

fn kick_siblings(vm: &Vm, v: usize) {
    for (i, c) in vm.vcpus.iter().enumerate() {
        if i != v {
            irq::kick(c.core);
        }
    }
}

pub(super) fn system_off(vm: &Vm, v: usize, core: usize) -> ! {
    end_vm(
        vm,
        v,
        core,
        End::PowerOff,
        format_args!("SYSTEM_OFF from vCPU {v}"),
    )
}

pub(super) fn system_reset(vm: &Vm, v: usize, core: usize) -> ! {
    end_vm(
        vm,
        v,
        core,
        End::Reset,
        format_args!("SYSTEM_RESET from vCPU {v}"),
    )
}

/// The VM ended (`end`, described by `why`): halt or restart it as its
/// policy says (vm::restart). Never returns to the guest.
pub(super) fn end_vm(vm: &Vm, v: usize, core: usize, end: End, why: core::fmt::Arguments<'_>) -> ! {
    match vm.policy.decide(end, vm.resets.load(Ordering::Relaxed)) {
        Action::Halt => halt_vm(vm, v, core, end, why),
        Action::Restart => restart_vm(vm, v, core, why),
    }
}

/// Stops the VM: every vCPU off, its cores idle.
fn halt_vm(vm: &Vm, v: usize, core: usize, end: End, why: core::fmt::Arguments<'_>) -> ! {
    let won = {
        let mut power = vm.power.lock();
        let won = claim_end(&vm.state, state::OFF);
        if won {
            power.iter_mut().for_each(|p| *p = Power::Off);
            if end == End::PowerOff && vm.policy == RestartPolicy::Default {
                vm.note(format_args!("{why}: stopped; its cores are idle"));
            } else {
                vm.note(format_args!(
                    "{why}: stopped after {} restarts (policy {}); its cores are idle",
                    vm.resets.load(Ordering::Relaxed),
                    vm.policy
                ));
            }
            vm.note(format_args!("exits since start: {}", vm.exit_report()));
            if let Some(n) = vm.net_report() {
                vm.note(format_args!("network: {n}"));
            }
        }
        won
    };
    if won {
        // Frames to a stopped VM are dropped (counted), never written.
        vm.stop_net();
    }
    kick_siblings(vm, v);
    cores::set_in_guest(core, false);
    leave(core)
}

/// Cleans the VM completely and boots it again: its other vCPUs pulled
/// out of the guest, its RAM scrubbed, the images reloaded and cleaned to
/// the point of coherency, every TLB entry of its VMID invalidated on
/// every core, a fresh virtual distributor and virtual counter. Each
/// vCPU's start then resets its list registers and GICH_APR, deactivates
/// the timers' and passed-through physical interrupts, stops its timers
/// (CNTV_CTL 0), resets its EL1, debug and PMU state and invalidates the
/// I-cache (irq::start_vcpu, guest::reset_el1, guest::configure_vcpu).
fn restart_vm(vm: &Vm, v: usize, core: usize, why: core::fmt::Arguments<'_>) -> ! {
    // Under the power lock, so no vCPU can start between this and the wait.
    let won = {
        let _power = vm.power.lock();
        claim_end(&vm.state, state::RESETTING)
    };
    cores::set_in_guest(core, false);
    if !won {
        leave(core); // another vCPU is already stopping or resetting the VM
    }
    kick_siblings(vm, v);
    for (i, c) in vm.vcpus.iter().enumerate() {
        if !irq::wait_until(STOP_TIMEOUT_MS, || !cores::in_guest(c.core)) {
            warn!(
                "VM '{}': vCPU {i} did not stop within {STOP_TIMEOUT_MS} ms; resetting anyway",
                vm.name
            );
        }
    }
    let n = vm.resets.fetch_add(1, Ordering::Relaxed) + 1;
    if vm.policy == RestartPolicy::Default {
        vm.note(format_args!("{why}: reloading (reset {n})"));
    } else {
        vm.note(format_args!(
            "{why}: reloading (reset {n}; policy {})",
            vm.policy
        ));
    }
    vm.note(format_args!("exits since start: {}", vm.exit_report()));
    if let Some(n) = vm.net_report() {
        vm.note(format_args!("network: {n}"));
    }
    // Before the RAM is scrubbed: no other VM's frame lands in it after.
    vm.stop_net();
    let (wait_ms, quick) = vm
        .backoff
        .lock()
        .restart(cpu::counter(), cpu::counter_freq());
    for c in &vm.vcpus {
        c.exits.reset();
    }
    vm.flush_ram();
    vm.zero_ram();
    vm.load();
    guest::publish_memory();
    // This core still has the VM's VTTBR loaded.
    guest::flush_vmid_everywhere();
    // Every device back to its power-on state (mailbox FIFO and CNF, the
    // UART's FIFOs, registers and line, the test device, the watchdog),
    // then a fresh distributor, so no line is left high.
    vm.bus.lock().reset_all();
    if let Some(pa) = vm.pl011_pa {
        // SAFETY: the VM's own passed-through PL011 (its page in the EL2
        // map as Device); every vCPU of the VM is stopped, so nothing
        // else touches it until the VM runs again.
        let mut u = unsafe { crate::board::rpi4::pl011::Pl011::new(pa as usize) };
        u.init(crate::platform::UART_CLOCK_HZ, crate::platform::BAUD);
    }
    irq::reset_vgic(vm);
    if wait_ms > 0 {
        // A restart loop: this core (the VM's own) waits, handling
        // interrupts; the other VMs run on.
        warn!(
            "VM '{}': restart loop ({quick} restarts in a row, each within {} ms of its start): next start in {wait_ms} ms",
            vm.name,
            Backoff::SHORT_LIFE_MS
        );
        irq::wait_until(wait_ms, || false);
    }
    vm.cntvoff.store(cpu::counter(), Ordering::Relaxed);
    vm.backoff.lock().started(cpu::counter());
    {
        let mut power = vm.power.lock();
        power.iter_mut().for_each(|p| *p = Power::Off);
        power[0] = vm.boot_power();
        vm.state.store(state::RUNNING, Ordering::Release);
    }
    irq::kick(vm.vcpus[0].core);
    leave(core)
}
