//! A VM's life: SYSTEM_OFF, SYSTEM_RESET and crashes end it, and its
//! restart policy (vm::restart) halts or restarts it; the monitor's
//! requests (stop, start, restart, reset) are taken by the VM's own cores
//! into the same functions. The one path every state change of a VM goes
//! through.

use super::vcpu::leave;
use super::vm::{vtcr, Vm};
use super::{cores, irq};
use crate::arch::{cpu, guest};
use crate::monitor::Life;
use crate::vm::psci::{self, Power};
use crate::vm::restart::state;
use crate::vm::restart::{claim_end, Action, Backoff, End, RestartPolicy};
use core::sync::atomic::Ordering;
use log::warn;

/// How long SYSTEM_RESET waits for the other vCPUs to leave the guest.
const STOP_TIMEOUT_MS: u64 = 1000;

/// The monitor's requests (`Vm::request`).
pub mod request {
    /// None pending.
    pub const NONE: u8 = 0;
    /// Halt the VM.
    pub const STOP: u8 = 1;
    /// Boot the halted VM.
    pub const START: u8 = 2;
    /// Reload and boot the running VM.
    pub const RESTART: u8 = 3;
    /// SYSTEM_RESET on its behalf.
    pub const RESET: u8 = 4;
}

/// Asks for `what` to be done to `vm` by its own cores (the monitor,
/// on whichever core): false if another request is still pending. Never
/// waits: the VM's cores are kicked and take it on their next exit (or,
/// sleeping, on waking).
pub fn ask(vm: &Vm, what: Life) -> bool {
    let r = match what {
        Life::Stop => request::STOP,
        Life::Start => request::START,
        Life::Restart => request::RESTART,
        Life::Reset => request::RESET,
    };
    if vm
        .request
        .compare_exchange(request::NONE, r, Ordering::AcqRel, Ordering::Acquire)
        .is_err()
    {
        return false;
    }
    for c in &vm.vcpus {
        irq::kick(c.core);
    }
    true
}

/// On vCPU `v`'s core (`core`), out of the guest or sleeping: carries
/// out a pending request of the monitor, if any, through the same paths
/// the VM's own SYSTEM_OFF and SYSTEM_RESET take. Returns when there is
/// none (or it does not apply any more).
pub fn take_request(vm: &Vm, v: usize, core: usize) {
    let r = vm.request.load(Ordering::Acquire);
    if r == request::NONE {
        return;
    }
    // A start is for a halted VM, the others for a running one. One that
    // no longer applies (the VM ended or started meanwhile) is dropped;
    // while the VM resets it waits.
    let st = vm.state.load(Ordering::Acquire);
    let wanted = if r == request::START {
        state::OFF
    } else {
        state::RUNNING
    };
    if st != wanted {
        if st != state::RESETTING {
            let _ =
                vm.request
                    .compare_exchange(r, request::NONE, Ordering::AcqRel, Ordering::Acquire);
        }
        return;
    }
    if r == request::START && v != 0 {
        return; // vCPU 0's core boots it
    }
    if vm
        .request
        .compare_exchange(r, request::NONE, Ordering::AcqRel, Ordering::Acquire)
        .is_err()
    {
        return;
    }
    match r {
        request::STOP => halt_vm(
            vm,
            v,
            core,
            End::PowerOff,
            format_args!("stop from the monitor"),
        ),
        request::RESTART => restart_vm(vm, v, core, format_args!("restart from the monitor")),
        request::RESET => end_vm(
            vm,
            v,
            core,
            End::Reset,
            format_args!("reset from the monitor"),
        ),
        request::START => start_vm(vm, core),
        _ => {}
    }
}

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
            *vm.last_end.lock() = Some(alloc::format!("{why}"));
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
        // Its devices of the board quiet, their lines off, until it starts.
        super::passthrough::rest(vm);
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
    *vm.last_end.lock() = Some(alloc::format!("{why}"));
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
    let (wait_ms, quick) = vm
        .backoff
        .lock()
        .restart(cpu::counter(), cpu::counter_freq());
    if wait_ms > 0 {
        warn!(
            "VM '{}': restart loop ({quick} restarts in a row, each within {} ms of its start): next start in {wait_ms} ms",
            vm.name,
            Backoff::SHORT_LIFE_MS
        );
    }
    reload(vm, wait_ms);
    leave(core)
}

/// Boots a halted VM again (the monitor's `start`), on vCPU 0's core:
/// the same cleaning as a restart.
fn start_vm(vm: &Vm, core: usize) -> ! {
    let won = {
        let _power = vm.power.lock();
        vm.state
            .compare_exchange(
                state::OFF,
                state::RESETTING,
                Ordering::AcqRel,
                Ordering::Acquire,
            )
            .is_ok()
    };
    if !won {
        leave(core);
    }
    vm.note(format_args!("start from the monitor: reloading"));
    // The operator's start: its restart policy counts afresh (a VM halted
    // after its last allowed restart gets them all again), and no
    // restart loop is going on.
    vm.resets.store(0, Ordering::Relaxed);
    vm.backoff.lock().forget_loop();
    // The TLB maintenance in reload acts on the VMID loaded here: this
    // VM's (a core serves one vCPU of one VM; load it in case it never ran).
    guest::configure_vcpu(
        vtcr(),
        vm.vttbr,
        psci::vmpidr(0),
        vm.cntvoff.load(Ordering::Relaxed),
    );
    reload(vm, 0);
    leave(core)
}

/// Scrubs and reloads a stopped VM (every vCPU out of the guest, state
/// RESETTING) and starts its vCPU 0, after `wait_ms` (a restart loop's
/// backoff; this core waits, handling interrupts, the other VMs run on).
fn reload(vm: &Vm, wait_ms: u64) {
    // Before the RAM is scrubbed: no other VM's frame lands in it after,
    // and no device it owns writes into it by DMA.
    vm.stop_net();
    super::passthrough::rest(vm);
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
    // Its devices' lines on again, to vCPU 0's core.
    irq::route_spis(&vm.pt_spis, vm.vcpus[0].core);
    if wait_ms > 0 {
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
}
