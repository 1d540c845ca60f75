//! A core's life after boot: run its vCPU whenever it is on, sleep
//! otherwise; entering a vCPU from its architectural reset state.

use super::cores::{self, current};
use super::irq;
use super::vm::{vtcr, Vm};
use crate::arch::{boot, cpu, guest};
use crate::exception::Frame;
use crate::platform::MAX_CORES;
use crate::sync::Once;
use crate::trap::inject::PSTATE_EL1H_MASKED;
use crate::vm::psci::{self, Power};
use crate::vm::restart::state;
use core::cell::UnsafeCell;
use core::sync::atomic::Ordering;

/// Each core's entry frame (read by guest_enter, off the stack).
struct EntryFrames([UnsafeCell<Frame>; MAX_CORES]);
// SAFETY: each core only touches its own slot.
unsafe impl Sync for EntryFrames {}

static ENTRY: EntryFrames = EntryFrames([const { UnsafeCell::new(Frame::ZERO) }; MAX_CORES]);

/// What a sleeping core does about the monitor's requests
/// (`lifecycle::take_request`, set by `build::start`: the lifecycle
/// calls into this module, not the other way round).
static REQUESTS: Once<fn(&Vm, usize, usize)> = Once::new();

/// Sets what a sleeping core does about the monitor's requests.
pub fn on_requests(f: fn(&Vm, usize, usize)) {
    REQUESTS.call_once(|| f);
}

/// A core's life after boot: run its vCPU whenever it is on, sleep
/// otherwise. Never returns; also re-entered when a vCPU stops.
pub fn run_core(core: usize) -> ! {
    cores::wait_for_release();
    let Some((vm, v)) = current(core) else {
        cpu::park();
    };
    cores::set_in_guest(core, false);
    loop {
        irq::handle_irqs(core);
        // The monitor's requests reach a sleeping core too (a start of
        // a halted VM: vCPU 0's core).
        if let Some(take) = REQUESTS.get() {
            take(vm, v, core);
        }
        {
            let mut power = vm.power.lock();
            if vm.state.load(Ordering::Acquire) == state::RUNNING {
                if let Power::OnPending { entry, context } = power[v] {
                    power[v] = Power::On;
                    cores::set_in_guest(core, true);
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
        vtcr(),
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
pub(super) fn leave(core: usize) -> ! {
    if let Some((vm, v)) = current(core) {
        irq::park_vcpu(vm, v);
    }
    run_core(core)
}
