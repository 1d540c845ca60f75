//! Every exception from a guest (trap-and-emulate): the vectors call
//! [`handle_exception`]; an exit is decoded by [`crate::trap::decode`],
//! counted once by its kind, and answered by the handler for its class:
//! MMIO through the VM's bus or the vGIC's distributor, PSCI/SMCCC,
//! system registers, aborts and UNDEFINED injected back into the guest.
//! Nothing a guest does stops the hypervisor or another VM.

use super::cores::current;
use super::fault::unexpected_exception;
use super::lifecycle::{end_vm, system_off, system_reset};
use super::vcpu::leave;
use super::vm::Vm;
use super::{cores, irq, watchdog};
use crate::arch::{cpu, guest};
use crate::devices::bus::BusError;
use crate::exception::{class_name, Frame, Snapshot};
use crate::trap::decode::{decode, ec, Abort, Exit};
use crate::trap::inject::{self, Fault};
use crate::trap::mmio::Access;
use crate::trap::stats::ExitKind;
use crate::trap::sysreg::{self, SysRegAccess, SysRegResult};
use crate::vm::layout::{GICD_IPA, GICD_SIZE};
use crate::vm::psci::{self, Outcome};
use crate::vm::restart::state;
use crate::vm::restart::End;
use core::sync::atomic::Ordering;

/// Logs a guest-caused event, rate-limited per VM.
macro_rules! guest_log {
    ($vm:expr, $($arg:tt)*) => {
        $vm.warn(format_args!($($arg)*))
    };
}

/// Called by vectors.s with the saved frame (layout: [`Frame`]) and the
/// vector slot (0-15). From a guest (slots 8-15): an exit. From EL2
/// itself: a hypervisor fault, reported; the core parks.
#[no_mangle]
extern "C" fn handle_exception(frame: &mut Frame, slot: u64) {
    if slot >= 8 {
        if !fast_exit(frame, slot) {
            handle_exit(frame, slot);
        }
        return;
    }
    let snap = Snapshot {
        frame: *frame,
        slot,
        core: cpu::core_index(),
    };
    unexpected_exception(&snap)
}

/// The short path, tried first on every exit: an HVC whose answer is a
/// constant (SMCCC and PSCI versions and features). Returns whether it
/// handled the exit. Nothing else to do on the way back: a stop or a
/// list-register refill meanwhile comes with a kick, taken as an
/// interrupt exit the moment the guest resumes. Inlined into the vectors'
/// handler, ahead of the full path's larger stack frame.
#[inline(always)]
fn fast_exit(frame: &mut Frame, slot: u64) -> bool {
    if slot != 8 || frame.esr >> 26 != ec::HVC64 {
        return false;
    }
    let fw = super::firmware::el3_services();
    let x = match psci::constant_answer(frame.regs[0], frame.regs[1], fw) {
        Some(x) => x,
        None if psci::forwards(frame.regs[0], fw) => {
            // SMCCC_ARCH_WORKAROUND_1, implemented by EL3: its effect
            // (the branch predictor invalidated) is on this core, which
            // is the guest's. It takes no arguments and returns nothing.
            cpu::psci_call(false, frame.regs[0], 0, 0, 0);
            0
        }
        None => return false,
    };
    let Some((vm, v)) = current(cpu::core_index()) else {
        return false;
    };
    vm.vcpus[v].exits.record(ExitKind::Call);
    frame.regs[0] = x;
    true
}

/// Every other exception from EL1/EL0: by vector slot (synchronous, IRQ
/// or FIQ, SError), then what every exit does on the way back (leave a
/// stopped VM, check the watchdog, refill the list registers).
#[inline(never)]
fn handle_exit(frame: &mut Frame, slot: u64) {
    let core = cpu::core_index();
    let Some((vm, v)) = current(core) else {
        let snap = Snapshot {
            frame: *frame,
            slot,
            core,
        };
        unexpected_exception(&snap);
    };
    match slot % 4 {
        0 => sync_exit(vm, v, core, frame),
        1 | 2 => {
            // Only the VM's own interrupts are its exits; the others
            // (console input, another VM's line) are counted apart, or
            // the VM could time keystrokes typed into another VM.
            if irq::handle_irqs(core) {
                vm.vcpus[v].exits.record(ExitKind::Irq);
            } else {
                let c = &vm.vcpus[v].foreign_irqs;
                c.store(c.load(Ordering::Relaxed) + 1, Ordering::Relaxed);
            }
        }
        _ => {
            vm.vcpus[v].exits.record(ExitKind::SError);
            // An SError from the guest's own doing (the hypervisor keeps
            // running): the VM crashed; its policy decides.
            end_vm(
                vm,
                v,
                core,
                End::Crash,
                format_args!(
                    "crashed on vCPU {v}: an SError (ESR {:#x}) at PC {:#x}",
                    frame.esr, frame.elr
                ),
            )
        }
    }
    if vm.state.load(Ordering::Acquire) != state::RUNNING {
        leave(core);
    }
    // The monitor's stop, restart or reset (never returns if one is
    // carried out).
    if vm.request.load(Ordering::Relaxed) != 0 {
        super::lifecycle::take_request(vm, v, core);
    }
    if let Some(w) = &vm.watchdog {
        watchdog::check(vm, v, core, w);
    }
    // Disk work left by an earlier exit (bounded per exit).
    super::disk::poll(vm);
    if irq::dirty(core) {
        irq::flush_lrs(vm, v);
    }
}

/// A synchronous exit: decoded, counted once, handled by its class.
fn sync_exit(vm: &Vm, v: usize, core: usize, frame: &mut Frame) {
    let exit = decode(frame.esr, frame.far, frame.hpfar);
    let kind = exit.kind(GICD_IPA..GICD_IPA + GICD_SIZE);
    vm.vcpus[v].exits.record(kind);
    match exit {
        Exit::Hvc { .. } => hypercall(vm, v, core, frame),
        Exit::Smc { .. } => {
            frame.skip_instruction(); // a trapped SMC leaves ELR at itself
            hypercall(vm, v, core, frame)
        }
        Exit::Mmio(a) if kind == ExitKind::Gicd => gicd(vm, v, frame, &a),
        Exit::Mmio(a) => mmio(vm, v, frame, &a),
        Exit::DataAbort(a) => data_abort(vm, v, frame, &a),
        Exit::InstrAbort(a) => instr_abort(vm, v, core, frame, &a),
        Exit::SysReg(a) => system_register(vm, v, frame, &a),
        Exit::Wfx { .. } => frame.skip_instruction(),
        Exit::Other { ec } => {
            guest_log!(
                vm,
                "vCPU {v}: exception class {ec:#x} ({}) at PC {:#x}; injecting UNDEFINED",
                class_name(ec),
                frame.elr
            );
            inject_fault(frame, Fault::Undefined);
        }
    }
}

/// An access to the guest's GICD page: the VM's distributor model.
fn gicd(vm: &Vm, v: usize, frame: &mut Frame, a: &Access) {
    let store = a.store_value(&frame.regs);
    let raw = irq::gicd_access(vm, v, a, store);
    if !a.write {
        a.complete_load(&mut frame.regs, raw);
    }
    frame.skip_instruction();
}

/// An access to another trapped IPA: the VM's device bus, or an external
/// abort when nothing there takes it.
fn mmio(vm: &Vm, v: usize, frame: &mut Frame, a: &Access) {
    let store = a.write.then(|| a.store_value(&frame.regs));
    let r = vm.bus.lock().dispatch(a.ipa, a.width, store);
    // A console write may have made room for other VMs' UARTs.
    super::conswitch::wake_pending();
    match r {
        Ok(raw) => {
            if !a.write {
                a.complete_load(&mut frame.regs, raw);
            }
            frame.skip_instruction();
        }
        Err(e) => {
            let dir = if a.write { "write to" } else { "read of" };
            if e == BusError::Unmapped {
                guest_log!(
                    vm,
                    "vCPU {v}: {dir} unmapped IPA {:#x} (PC {:#x}); injecting an external abort",
                    a.ipa,
                    frame.elr
                );
            } else {
                guest_log!(
                    vm,
                    "vCPU {v}: {}-byte {dir} IPA {:#x} refused: {e}; injecting an external abort",
                    a.width,
                    a.ipa
                );
            }
            inject_fault(
                frame,
                Fault::DataAbort {
                    far: frame.far,
                    write: a.write,
                },
            );
        }
    }
}

/// A data abort that is not emulated MMIO: an external abort back.
fn data_abort(vm: &Vm, v: usize, frame: &mut Frame, a: &Abort) {
    let why = if a.s1ptw {
        "its own page-table walk touched"
    } else if !a.isv {
        "an access without a valid syndrome (cannot be emulated) to"
    } else {
        "a faulting access to"
    };
    guest_log!(
        vm,
        "vCPU {v}: {why} IPA {:#x} (FSC {:#x}, PC {:#x}); injecting an external abort",
        a.ipa,
        a.fsc,
        frame.elr
    );
    inject_fault(
        frame,
        Fault::DataAbort {
            far: a.far.unwrap_or(0),
            write: a.write,
        },
    );
}

/// An instruction fetch from outside the VM's RAM: an abort back, or a
/// crash when the guest's own vector cannot be fetched.
fn instr_abort(vm: &Vm, v: usize, core: usize, frame: &mut Frame, a: &Abort) {
    let vbar = guest::vbar_el1();
    if let Some(far) = a.far.filter(|f| f.wrapping_sub(vbar) < 0x800) {
        // Its own exception vector cannot be fetched: an abort
        // injected there would fault again, for ever.
        end_vm(
            vm,
            v,
            core,
            End::Crash,
            format_args!(
                "crashed on vCPU {v}: its exception vector at {far:#x} (VBAR_EL1 {vbar:#x}) cannot be fetched (IPA {:#x})",
                a.ipa
            ),
        )
    }
    guest_log!(
        vm,
        "vCPU {v}: instruction fetch from IPA {:#x} (FSC {:#x}); injecting an abort",
        a.ipa,
        a.fsc
    );
    inject_fault(
        frame,
        Fault::InstrAbort {
            far: a.far.unwrap_or(0),
        },
    );
}

/// A trapped system register or cache operation.
fn system_register(vm: &Vm, v: usize, frame: &mut Frame, a: &SysRegAccess) {
    let value = frame.regs.get(a.rt as usize).copied().unwrap_or(0);
    let r = sysreg::emulate(a, value, &mut vm.vcpus[v].sysregs.lock());
    match r {
        SysRegResult::Read(x) => {
            if let Some(reg) = frame.regs.get_mut(a.rt as usize) {
                *reg = x;
            }
            frame.skip_instruction();
        }
        SysRegResult::Written => frame.skip_instruction(),
        SysRegResult::SetWay(op) => {
            guest::dc_cisw(op);
            frame.skip_instruction();
        }
        SysRegResult::Undefined => {
            guest_log!(vm, "vCPU {v}: {a} is not emulated; injecting UNDEFINED");
            inject_fault(frame, Fault::Undefined);
        }
    }
}

fn inject_fault(frame: &mut Frame, fault: Fault) {
    let inj = inject::inject(fault, frame.elr, frame.spsr, guest::vbar_el1());
    guest::apply_injection(frame, &inj);
}

/// PSCI and SMCCC over HVC or SMC.
fn hypercall(vm: &Vm, v: usize, core: usize, frame: &mut Frame) {
    let regs = [frame.regs[0], frame.regs[1], frame.regs[2], frame.regs[3]];
    let fw = super::firmware::el3_services();
    if psci::forwards(regs[0], fw) {
        // SMCCC_ARCH_WORKAROUND_1 by SMC (the HVC form takes the fast
        // path): EL3 implements it.
        cpu::psci_call(false, regs[0], 0, 0, 0);
        frame.regs[0] = 0;
        return;
    }
    let outcome = if psci::uses_power_state(regs[0]) {
        psci::call(regs, v, &mut vm.power.lock(), &vm.ram)
    } else {
        psci::call(regs, v, &mut [], &vm.ram)
    };
    match outcome {
        Outcome::Return(x) => frame.regs[0] = x,
        Outcome::Started(t) => {
            frame.regs[0] = 0;
            irq::kick(vm.vcpus[t].core);
        }
        Outcome::Off => {
            cores::set_in_guest(core, false);
            leave(core);
        }
        Outcome::Suspend => {
            // Standby (a power-down request is downgraded to standby,
            // which PSCI allows): sleep until an interrupt for the vCPU,
            // then SUCCESS. Everything that makes one pending (its timers,
            // a kick from another core) is a physical interrupt here.
            frame.regs[0] = 0;
            if !irq::virq_pending() && !irq::dirty(core) {
                aarch64_cpu::asm::wfi();
            }
            irq::handle_irqs(core);
        }
        Outcome::SystemOff => system_off(vm, v, core),
        Outcome::SystemReset => system_reset(vm, v, core),
        Outcome::ExitCount(_) if !vm.counters => {
            frame.regs[0] = psci::ret::NOT_SUPPORTED as u64;
            guest_log!(
                vm,
                "vCPU {v}: the exit-count call needs `devices = counters`; returned NOT_SUPPORTED"
            );
        }
        Outcome::ExitCount(which) => {
            let counts = vm.vcpus[v].exits.snapshot();
            frame.regs[0] = counts
                .select(which)
                .unwrap_or(psci::ret::INVALID_PARAMETERS as u64);
        }
        Outcome::Absent => {
            frame.regs[0] = psci::ret::NOT_SUPPORTED as u64;
            log::debug!(
                "VM '{}': vCPU {v}: optional SMCCC service {:#x} probed; not offered",
                vm.name,
                regs[0]
            );
        }
        Outcome::Unknown => {
            frame.regs[0] = psci::ret::NOT_SUPPORTED as u64;
            guest_log!(
                vm,
                "vCPU {v}: unknown SMC/HVC function {:#x}; returned NOT_SUPPORTED",
                regs[0]
            );
        }
    }
}
