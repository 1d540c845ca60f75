//! Interrupts at EL2 and the vGIC glue: what the hypervisor does with each
//! physical interrupt, the list registers of the vCPU pinned to this core,
//! the trapped GICD page, and sleeping with the EL2 timer.
//!
//! Each core owns its GICH (banked) and only ever touches its own list
//! registers. Another core that makes an interrupt pending for this core's
//! vCPU (an SGI, an emulated device line) updates the VM's distributor
//! model, marks this core dirty and kicks it with SGI 1; the kick exits
//! the guest (or wakes the idle loop) and the list registers are refilled
//! before the guest runs again.
//!
//! | INTID | what                  | handled                                   |
//! |-------|-----------------------|-------------------------------------------|
//! | 0-15  | hypervisor SGIs       | EOIR + DIR (kicks)                        |
//! | 25    | GICH maintenance      | list registers folded/refilled, EOIR+DIR  |
//! | 26    | EL2 physical timer    | timer stopped, EOIR + DIR                 |
//! | 27    | EL1 virtual timer     | EOIR only; injected hardware-linked       |
//! | 30    | EL1 physical timer    | EOIR only; injected hardware-linked       |
//! | SPI   | passed through to a VM| EOIR only; injected hardware-linked       |
//! | SPI   | console input (mux)   | bytes to the focused VM, EOIR + DIR       |
//! | other | unexpected            | EOIR + DIR                                |

use super::cores::{current, hw_spi_owner};
use super::vm::Vm;
use crate::arch::cpu;
use crate::board::gic400::{Gic, EL2_TIMER, MAINTENANCE, PHYS_TIMER, SGI_KICK, VIRT_TIMER};
use crate::dt::host::HostInfo;
use crate::platform::MAX_CORES;
use crate::sync::Once;
use crate::trap::mmio::Access;
use crate::vgic::dist::{Dirty, VgicDist, MAX_LRS};
use crate::vgic::lr;
use crate::vm::layout::{GICD_IPA, GICD_SIZE};
use core::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use log::info;

/// Per core: its vCPU's list registers must be refilled before it runs.
static DIRTY: [AtomicBool; MAX_CORES] = [const { AtomicBool::new(false) }; MAX_CORES];

/// After a distributor change: the vCPUs in `mask` get their list
/// registers refilled (this core's before it returns to its guest, the
/// others' after a kick).
pub fn mark(vm: &Vm, mask: Dirty) {
    if mask == 0 {
        return;
    }
    let me = cpu::core_index();
    for (i, vc) in vm.vcpus.iter().enumerate() {
        if mask & (1 << i) != 0 {
            DIRTY[vc.core].store(true, Ordering::Release);
            if vc.core != me {
                kick(vc.core);
            }
        }
    }
}

/// Whether this core's list registers need a refill.
pub fn dirty(core: usize) -> bool {
    DIRTY.get(core).is_some_and(|d| d.load(Ordering::Acquire))
}

/// This core's list registers: their values and how many there are.
fn read_lrs(gic: &Gic) -> ([u32; MAX_LRS], usize) {
    let n = gic.lr_count().min(MAX_LRS);
    let mut lrs = [0u32; MAX_LRS];
    gic.read_lrs(&mut lrs[..n]);
    (lrs, n)
}

/// Folds and refills this core's list registers from vCPU `v`'s
/// distributor state; deactivates physical interrupts the guest gave up.
pub fn flush_lrs(vm: &Vm, v: usize) {
    let Some(gic) = GIC.get() else {
        return;
    };
    DIRTY[cpu::core_index()].store(false, Ordering::Release);
    let (before, n) = read_lrs(gic);
    let mut lrs = before;
    let (underflow, released) = {
        let mut d = vm.vgic.lock();
        (d.flush(v, &mut lrs[..n]), d.take_released(v))
    };
    let mut injected = 0;
    for i in 0..n {
        if lrs[i] != before[i] {
            gic.write_lr(i, lrs[i]);
            let ((new, st), (old, was)) = (lr::decode(lrs[i]), lr::decode(before[i]));
            // A newly pending interrupt (not one taken back or acked).
            if st & 1 != 0 && (was == 0 || old != new) {
                injected += 1;
            }
        }
    }
    if injected > 0 {
        let c = &vm.vcpus[v].injected;
        c.store(c.load(Ordering::Relaxed) + injected, Ordering::Relaxed);
    }
    gic.set_underflow(underflow);
    for intid in released {
        gic.deactivate_physical(intid);
    }
}

/// Whether this core's vCPU has a virtual interrupt waiting in a list
/// register.
pub fn virq_pending() -> bool {
    GIC.get().is_some_and(|gic| {
        let (lrs, n) = read_lrs(gic);
        lrs[..n].iter().any(|&l| lr::decode(l).1 & 1 != 0)
    })
}

/// Takes everything of vCPU `v` out of this core's virtual interface (it
/// stops running): unacknowledged interrupts go back to the distributor
/// model, the list registers are cleared, no maintenance interrupt.
pub fn park_vcpu(vm: &Vm, v: usize) {
    let Some(gic) = GIC.get() else {
        return;
    };
    let (lrs, n) = read_lrs(gic);
    vm.vgic.lock().reset_vcpu(v, &lrs[..n]);
    gic.reset_virtual_interface();
    gic.set_underflow(false);
}

/// Gives vCPU `v` a fresh virtual interface as it starts: empty list
/// registers, virtual CPU interface reset, its timers' physical
/// interrupts deactivated (reset_el1 has stopped the timers), then
/// whatever is already pending for it.
pub fn start_vcpu(vm: &Vm, v: usize) {
    let Some(gic) = GIC.get() else {
        return;
    };
    park_vcpu(vm, v);
    let _ = vm.vgic.lock().take_released(v);
    gic.deactivate_physical(VIRT_TIMER);
    gic.deactivate_physical(PHYS_TIMER);
    if v == 0 {
        // A passed-through SPI left active by the VM's previous life
        // (SYSTEM_RESET) would never fire again.
        for &i in &vm.hw_spis {
            gic.deactivate_physical(i);
        }
    }
    flush_lrs(vm, v);
}

/// Handles every pending physical interrupt on this core. Returns false
/// when every one it took belonged to the hypervisor or another VM
/// (console input, another VM's passed-through line): an exit the VM on
/// this core must not see counted as its own.
pub fn handle_irqs(core: usize) -> bool {
    let Some(gic) = GIC.get() else {
        return true;
    };
    let cur = current(core);
    let (mut own, mut foreign) = (false, false);
    while let Some(iar) = gic.ack() {
        let intid = iar & 0x3ff;
        if intid >= 32 {
            if let Some(vm) = hw_spi_owner(intid) {
                // A passed-through SPI (the PL011's): it stays active
                // until the owner deactivates the virtual one
                // (hardware-linked).
                gic.priority_drop(iar);
                let d = vm.vgic.lock().hw_fired(0, intid);
                mark(vm, d);
                if cur.is_some_and(|(c, _)| core::ptr::eq(c, vm)) {
                    own = true;
                } else {
                    foreign = true;
                }
                continue;
            }
        }
        match (intid, cur) {
            (VIRT_TIMER | PHYS_TIMER, Some((vm, v))) => {
                // Stays active until the guest deactivates the virtual
                // one through its hardware-linked list register.
                gic.priority_drop(iar);
                let d = vm.vgic.lock().hw_fired(v, intid);
                mark(vm, d);
                own = true;
            }
            (MAINTENANCE, Some((vm, v))) => {
                flush_lrs(vm, v);
                gic.complete(iar);
                own = true;
            }
            (i, _) if super::conswitch::is_input(i) => {
                let to = super::conswitch::interrupt();
                gic.complete(iar);
                // Keys for the VM on this core are its own; keys for
                // another VM it must not see.
                if cur.is_some_and(|(vm, _)| to & (1 << (vm.index % 64)) != 0) {
                    own = true;
                } else {
                    foreign = true;
                }
            }
            (EL2_TIMER, _) => {
                // This core's VM's watchdog deadline, or a wait of the
                // hypervisor's own outside any guest.
                cpu::el2_timer_stop();
                gic.complete(iar);
                own = true;
            }
            // SGIs: kicks for this core's vCPU.
            _ => {
                gic.complete(iar);
                own = true;
            }
        }
    }
    own || !foreign
}

/// A guest access to its GICD page (`a.ipa` inside it): emulated by the
/// VM's distributor model. Returns the loaded value for a read.
pub fn gicd_access(vm: &Vm, v: usize, a: &Access, store: u64) -> u64 {
    let off = a.ipa - GICD_IPA;
    if a.write {
        let d = vm.vgic.lock().write(v, off, a.width, store as u32);
        mark(vm, d);
        0
    } else {
        vm.vgic.lock().read(v, off, a.width) as u64
    }
}

/// Whether `ipa` is in the guest's GICD page.
pub fn is_gicd(ipa: u64) -> bool {
    (GICD_IPA..GICD_IPA + GICD_SIZE).contains(&ipa)
}

/// Waits until `done` holds or `timeout_ms` pass, sleeping in wfi between
/// checks (woken by interrupts, at the latest by the EL2 timer each
/// millisecond) and handling interrupts meanwhile. Returns whether `done`
/// held.
pub fn wait_until(timeout_ms: u64, done: impl FnMut() -> bool) -> bool {
    let f = cpu::counter_freq();
    wait_ticks(f * timeout_ms / 1000, f / 1000, done)
}

/// [`wait_ticks`] without handling any interrupt: for a wait made while
/// holding a lock (the hypervisor's mailbox), which must never take a
/// lock a guest's interrupt path holds (a VM's distributor: a core that
/// panicked holding it would then wedge every VM's firmware requests).
/// Interrupts stay pending until the caller is done; `wfi` returns at
/// once while one is, so the wait may poll rather than sleep, for at most
/// `timeout`.
pub fn wait_ticks_quiet(timeout: u64, poll: u64, done: impl FnMut() -> bool) -> bool {
    wait(timeout, poll, done, false)
}

/// [`wait_until`] in counter ticks: gives up after `timeout`, looks at
/// `done` at least every `poll` ticks.
pub fn wait_ticks(timeout: u64, poll: u64, done: impl FnMut() -> bool) -> bool {
    wait(timeout, poll, done, true)
}

/// The wait both share: `handle` says whether interrupts are handled
/// between looks, or left pending (the EL2 timer's line dropped by
/// stopping it, nothing acknowledged).
fn wait(timeout: u64, poll: u64, mut done: impl FnMut() -> bool, handle: bool) -> bool {
    let core = cpu::core_index();
    let deadline = cpu::counter() + timeout;
    let poll = poll.max(1);
    loop {
        if done() {
            cpu::el2_timer_stop();
            return true;
        }
        let now = cpu::counter();
        if now > deadline {
            cpu::el2_timer_stop();
            return false;
        }
        cpu::el2_timer_arm(deadline.min(now + poll));
        aarch64_cpu::asm::wfi();
        if handle {
            handle_irqs(core);
        } else {
            cpu::el2_timer_stop();
        }
    }
}

/// The GIC, once initialized.
static GIC: Once<Gic> = Once::new();

/// Each core's GIC CPU interface mask.
static CPU_IF: [AtomicU8; MAX_CORES] = [const { AtomicU8::new(0) }; MAX_CORES];

/// Forward the timers with EOI maintenance instead of hardware-linked
/// (a GIC model that is not a GIC-400: QEMU's).
static HW_VIA_EOI: AtomicBool = AtomicBool::new(false);

/// Sets up the GIC distributor (boot core, once) and this core's CPU
/// interface.
pub fn gic_init_core(info: Option<&HostInfo<'_>>, core: usize) {
    let gic = GIC.call_once(|| {
        let a = info.and_then(|i| i.gic).unwrap_or_default();
        let (d, c, h) = if a.dist != 0 {
            (a.dist, a.cpu, a.hyp)
        } else {
            (0xff84_1000, 0xff84_2000, None)
        };
        // SAFETY: the GIC-400 from the device tree (or the BCM2711
        // default), inside a /soc window the EL2 map has as Device.
        let g = unsafe { Gic::new(d as usize, c as usize, h.map(|h| h as usize)) };
        g.init_distributor();
        if !g.is_gic400() {
            HW_VIA_EOI.store(true, Ordering::Relaxed);
            info!(
                "GIC: GICD_IIDR {:#x} is not an ARM GIC-400 (QEMU's model): timer interrupts are forwarded with EOI maintenance, not hardware-linked",
                g.iidr()
            );
        }
        g
    });
    let mask = gic.init_cpu();
    if let Some(s) = CPU_IF.get(core) {
        s.store(mask, Ordering::Relaxed);
    }
}

/// Routes the passed-through (hardware-linked) SPIs `intids` to core
/// `core`: their owner's vCPU 0's (the guest's GICD_ITARGETSR decides
/// which vCPU gets the virtual one).
pub fn route_spis(intids: &[u32], core: usize) {
    if let Some(g) = GIC.get() {
        let mask = CPU_IF[core].load(Ordering::Relaxed);
        for &intid in intids {
            g.route_spi(intid, mask, true, false);
        }
    }
}

/// Disables the SPIs `intids` at the distributor (a passed-through
/// device's lines while its VM is down: given back to no one).
pub fn disable_spis(intids: &[u32]) {
    if let Some(g) = GIC.get() {
        for &intid in intids {
            g.disable_spi(intid);
            g.deactivate_physical(intid);
        }
    }
}

/// Routes the console's input SPI `intid` to core 0 with the
/// hypervisor's priority.
pub fn route_console_input(intid: u32) {
    if let Some(g) = GIC.get() {
        g.route_spi(intid, CPU_IF[0].load(Ordering::Relaxed), true, true);
    }
}

/// Wakes core `core` (an SGI; it exits its guest or leaves wfi).
pub fn kick(core: usize) {
    if let (Some(g), Some(m)) = (GIC.get(), CPU_IF.get(core)) {
        g.send_sgi(m.load(Ordering::Relaxed), SGI_KICK);
    }
}

/// A VM's virtual distributor as at power-on: its SPIs, the timers'
/// PPIs hardware-linked.
/// Puts VM `vm`'s interrupt state back to power-on (at start, once the
/// GIC model is known, and at SYSTEM_RESET).
pub fn reset_vgic(vm: &Vm) {
    *vm.vgic.lock() = new_vgic(vm.vcpus.len(), &vm.spis, &vm.hw_spis);
}

pub(super) fn new_vgic(vcpus: usize, spis: &[u32], hw_spis: &[u32]) -> VgicDist {
    let mut d = VgicDist::new(vcpus, spis);
    for &i in hw_spis {
        d.set_hw(i);
    }
    d.set_hw(VIRT_TIMER);
    d.set_hw(PHYS_TIMER);
    d.set_hw_via_eoi(HW_VIA_EOI.load(Ordering::Relaxed));
    d
}
