//! The per-core vCPU loop and exit handling (trap-and-emulate): each exit
//! is decoded by [`crate::trap::decode`] and answered here: MMIO through
//! the VM's bus, PSCI/SMCCC, system registers, aborts injected back into
//! the guest. Nothing a guest does stops the hypervisor or another VM.

use super::{current, irq, kick, state, Vm, GO, IN_GUEST, VTCR};
use crate::arch::{boot, cpu, guest};
use crate::exception::{Frame, Snapshot};
use crate::trap::inject::{self, Fault, PSTATE_EL1H_MASKED};
use crate::trap::mmio::BusError;
use crate::trap::sysreg::{self, SysRegResult};
use crate::trap::{self, Exit, ExitKind};
use crate::vm::psci::{self, Outcome, Power};
use crate::vm::restart::{Action, End, RestartPolicy};
use core::cell::UnsafeCell;
use core::sync::atomic::Ordering;
use log::{info, warn};

/// Each core's entry frame (read by guest_enter, off the stack).
struct EntryFrames([UnsafeCell<Frame>; 4]);
// SAFETY: each core only touches its own slot.
unsafe impl Sync for EntryFrames {}
static ENTRY: EntryFrames = EntryFrames([const { UnsafeCell::new(Frame::ZERO) }; 4]);

/// How long SYSTEM_RESET waits for the other vCPUs to leave the guest.
const STOP_TIMEOUT_MS: u64 = 1000;

/// Logs a guest-caused event, rate-limited per VM.
macro_rules! guest_log {
    ($vm:expr, $($arg:tt)*) => {
        $vm.warn(format_args!($($arg)*))
    };
}

/// A core's life after boot: run its vCPU whenever it is on, sleep
/// otherwise. Never returns; also re-entered when a vCPU stops.
pub fn run_core(core: usize) -> ! {
    while !GO.load(Ordering::Acquire) {
        aarch64_cpu::asm::wfe();
    }
    let Some((vm, v)) = current(core) else {
        cpu::park();
    };
    IN_GUEST[core].store(false, Ordering::Release);
    loop {
        irq::handle_irqs(core);
        {
            let mut power = vm.power.lock();
            if vm.state.load(Ordering::Acquire) == state::RUNNING {
                if let Power::OnPending { entry, context } = power[v] {
                    power[v] = Power::On;
                    IN_GUEST[core].store(true, Ordering::Release);
                    drop(power);
                    start_vcpu(vm, v, core, entry, context);
                }
            }
        }
        // Off, stopped or resetting: sleep until kicked.
        aarch64_cpu::asm::wfi();
    }
}

/// Enters vCPU `v` at `entry` with x0 = `context`, from the defined
/// reset state.
fn start_vcpu(vm: &Vm, v: usize, core: usize, entry: u64, context: u64) -> ! {
    guest::configure_vcpu(
        *VTCR.get().unwrap_or(&0),
        vm.vttbr,
        psci::vmpidr(v),
        vm.cntvoff.load(Ordering::Relaxed),
    );
    guest::reset_el1();
    irq::start_vcpu(vm, v);
    *vm.vcpus[v].sysregs.lock() = crate::trap::sysreg::SysRegState::reset();
    let mut f = Frame::ZERO;
    f.regs[0] = context;
    f.elr = entry;
    f.spsr = PSTATE_EL1H_MASKED;
    // SAFETY: this core's own slot; nothing else reads or writes it.
    let slot = unsafe { &mut *ENTRY.0[core].get() };
    *slot = f;
    // SAFETY: the slot is static, the core is configured for the vCPU,
    // and the stack is this core's own.
    unsafe { guest::enter(slot, boot::core_stack_top(core)) }
}

/// Leaves the guest for good (vCPU off, VM stopped or resetting).
fn leave(core: usize) -> ! {
    if let Some((vm, v)) = current(core) {
        irq::park_vcpu(vm, v);
    }
    run_core(core)
}

/// The short path, tried first on every exit: an HVC whose answer is a
/// constant (SMCCC and PSCI versions and features). Returns whether it
/// handled the exit. Nothing else to do on the way back: a stop or a
/// list-register refill meanwhile comes with a kick, taken as an
/// interrupt exit the moment the guest resumes. Inlined into the vectors'
/// handler, ahead of the full path's larger stack frame.
#[inline(always)]
pub fn fast_exit(frame: &mut Frame, slot: u64) -> bool {
    if slot != 8 || frame.esr >> 26 != trap::ec::HVC64 {
        return false;
    }
    let Some(x) = psci::constant_answer(frame.regs[0], frame.regs[1]) else {
        return false;
    };
    let Some((vm, v)) = current(cpu::core_index()) else {
        return false;
    };
    vm.vcpus[v].exits.record(ExitKind::Call);
    frame.regs[0] = x;
    true
}

/// Called from the vectors for every other exception from EL1/EL0.
#[inline(never)]
pub fn handle_exit(frame: &mut Frame, slot: u64) {
    let core = cpu::core_index();
    let Some((vm, v)) = current(core) else {
        let snap = Snapshot {
            frame: *frame,
            slot,
            core,
        };
        crate::kernel::unexpected_exception(&snap);
    };
    match slot % 4 {
        0 => sync_exit(vm, v, core, frame),
        1 | 2 => {
            vm.vcpus[v].exits.record(ExitKind::Irq);
            irq::handle_irqs(core)
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
    if let Some(w) = &vm.watchdog {
        watchdog_check(vm, v, core, w);
    }
    if irq::dirty(core) {
        irq::flush_lrs(vm, v);
    }
}

/// A VM with a watchdog, on every exit: if it expired, the VM crashed;
/// otherwise this core's EL2 timer is set for the moment it would, so a
/// guest that hangs without ever exiting again is still caught (the timer
/// interrupt is an exit).
fn watchdog_check(
    vm: &Vm,
    v: usize,
    core: usize,
    w: &crate::sync::Mutex<crate::devices::sp805::Sp805>,
) {
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
        Some(t) => cpu::el2_timer_arm(super::watchdog_counter(t)),
        None => cpu::el2_timer_stop(),
    }
}

fn inject_fault(frame: &mut Frame, fault: Fault) {
    let inj = inject::inject(fault, frame.elr, frame.spsr, guest::vbar_el1());
    guest::apply_injection(frame, &inj);
}

fn sync_exit(vm: &Vm, v: usize, core: usize, frame: &mut Frame) {
    // Each arm counts its exit (one decode, one check per exit).
    match trap::decode(frame.esr, frame.far, frame.hpfar) {
        Exit::Hvc { .. } => {
            vm.vcpus[v].exits.record(ExitKind::Call);
            hypercall(vm, v, core, frame)
        }
        Exit::Smc { .. } => {
            vm.vcpus[v].exits.record(ExitKind::Call);
            frame.elr += 4; // a trapped SMC leaves ELR at the SMC itself
            hypercall(vm, v, core, frame)
        }
        Exit::Mmio(a) if irq::is_gicd(a.ipa) => {
            vm.vcpus[v].exits.record(ExitKind::Gicd);
            let store = a.store_value(&frame.regs);
            let raw = irq::gicd_access(vm, v, &a, store);
            if !a.write {
                a.complete_load(&mut frame.regs, raw);
            }
            frame.elr += 4;
        }
        Exit::Mmio(a) => {
            vm.vcpus[v].exits.record(ExitKind::Mmio);
            let store = a.store_value(&frame.regs);
            let r = vm.bus.lock().dispatch(&a, store);
            match r {
                Ok(raw) => {
                    if !a.write {
                        a.complete_load(&mut frame.regs, raw);
                    }
                    frame.elr += 4;
                }
                Err(e) => {
                    let dir = if a.write { "write to" } else { "read of" };
                    if e == BusError::Unmapped {
                        guest_log!(vm, "vCPU {v}: {dir} unmapped IPA {:#x} (PC {:#x}); injecting an external abort", a.ipa, frame.elr);
                    } else {
                        guest_log!(vm, "vCPU {v}: {}-byte {dir} IPA {:#x} refused: {e}; injecting an external abort", a.width, a.ipa);
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
        Exit::DataAbort(a) => {
            vm.vcpus[v].exits.record(ExitKind::Fault);
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
        Exit::InstrAbort(a) => {
            vm.vcpus[v].exits.record(ExitKind::Fault);
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
        Exit::SysReg(a) => {
            vm.vcpus[v].exits.record(ExitKind::SysReg);
            let value = frame.regs.get(a.rt as usize).copied().unwrap_or(0);
            let r = sysreg::emulate(&a, value, &mut vm.vcpus[v].sysregs.lock());
            match r {
                SysRegResult::Read(x) => {
                    if let Some(reg) = frame.regs.get_mut(a.rt as usize) {
                        *reg = x;
                    }
                    frame.elr += 4;
                }
                SysRegResult::Written => frame.elr += 4,
                SysRegResult::SetWay(op) => {
                    guest::dc_cisw(op);
                    frame.elr += 4;
                }
                SysRegResult::Undefined => {
                    guest_log!(vm, "vCPU {v}: {a} is not emulated; injecting UNDEFINED");
                    inject_fault(frame, Fault::Undefined);
                }
            }
        }
        Exit::Wfx { .. } => {
            vm.vcpus[v].exits.record(ExitKind::Wfx);
            frame.elr += 4
        }
        Exit::Other { ec } => {
            vm.vcpus[v].exits.record(ExitKind::Fault);
            guest_log!(
                vm,
                "vCPU {v}: exception class {ec:#x} ({}) at PC {:#x}; injecting UNDEFINED",
                crate::exception::class_name(ec),
                frame.elr
            );
            inject_fault(frame, Fault::Undefined);
        }
    }
}

/// PSCI and SMCCC over HVC or SMC.
fn hypercall(vm: &Vm, v: usize, core: usize, frame: &mut Frame) {
    let regs = [frame.regs[0], frame.regs[1], frame.regs[2], frame.regs[3]];
    let outcome = if psci::uses_power_state(regs[0]) {
        psci::call(regs, v, &mut vm.power.lock(), &vm.ram)
    } else {
        psci::call(regs, v, &mut [], &vm.ram)
    };
    match outcome {
        Outcome::Return(x) => frame.regs[0] = x,
        Outcome::Started(t) => {
            frame.regs[0] = 0;
            kick(vm.vcpus[t].core);
        }
        Outcome::Off => {
            IN_GUEST[core].store(false, Ordering::Release);
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

fn kick_siblings(vm: &Vm, v: usize) {
    for (i, c) in vm.vcpus.iter().enumerate() {
        if i != v {
            kick(c.core);
        }
    }
}

fn system_off(vm: &Vm, v: usize, core: usize) -> ! {
    end_vm(
        vm,
        v,
        core,
        End::PowerOff,
        format_args!("SYSTEM_OFF from vCPU {v}"),
    )
}

fn system_reset(vm: &Vm, v: usize, core: usize) -> ! {
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
    {
        let mut power = vm.power.lock();
        if vm.state.swap(state::OFF, Ordering::AcqRel) == state::RUNNING {
            power.iter_mut().for_each(|p| *p = Power::Off);
            if end == End::PowerOff && vm.policy == RestartPolicy::Default {
                info!("VM '{}': {why}: stopped; its cores are idle", vm.name);
            } else {
                info!(
                    "VM '{}': {why}: stopped after {} restarts (policy {}); its cores are idle",
                    vm.name,
                    vm.resets.load(Ordering::Relaxed),
                    vm.policy
                );
            }
            info!("VM '{}': exits since start: {}", vm.name, vm.exit_report());
        }
    }
    kick_siblings(vm, v);
    IN_GUEST[core].store(false, Ordering::Release);
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
        vm.state
            .compare_exchange(
                state::RUNNING,
                state::RESETTING,
                Ordering::AcqRel,
                Ordering::Acquire,
            )
            .is_ok()
    };
    IN_GUEST[core].store(false, Ordering::Release);
    if !won {
        leave(core); // another vCPU is already stopping or resetting the VM
    }
    kick_siblings(vm, v);
    for (i, c) in vm.vcpus.iter().enumerate() {
        if !irq::wait_until(STOP_TIMEOUT_MS, || {
            !IN_GUEST[c.core].load(Ordering::Acquire)
        }) {
            warn!(
                "VM '{}': vCPU {i} did not stop within {STOP_TIMEOUT_MS} ms; resetting anyway",
                vm.name
            );
        }
    }
    let n = vm.resets.fetch_add(1, Ordering::Relaxed) + 1;
    if vm.policy == RestartPolicy::Default {
        info!("VM '{}': {why}: reloading (reset {n})", vm.name);
    } else {
        info!(
            "VM '{}': {why}: reloading (reset {n}; policy {})",
            vm.name, vm.policy
        );
    }
    info!("VM '{}': exits since start: {}", vm.name, vm.exit_report());
    for c in &vm.vcpus {
        c.exits.reset();
    }
    vm.flush_ram();
    vm.zero_ram();
    vm.load();
    guest::publish_memory();
    // This core still has the VM's VTTBR loaded.
    guest::flush_vmid_everywhere();
    vm.reset_vgic();
    if let Some(w) = &vm.watchdog {
        w.lock().reset();
    }
    vm.cntvoff.store(cpu::counter(), Ordering::Relaxed);
    {
        let mut power = vm.power.lock();
        power.iter_mut().for_each(|p| *p = Power::Off);
        power[0] = vm.boot_power();
        vm.state.store(state::RUNNING, Ordering::Release);
    }
    kick(vm.vcpus[0].core);
    leave(core)
}
