//! The GIC-400 (GICv2) as the hypervisor drives it: the distributor, this
//! core's CPU interface, and the virtual interface control (GICH) that
//! feeds the guest's virtual CPU interface. Register layouts: ARM IHI
//! 0048B (GICv2 architecture specification) 4.1.2, 4.1.3 and 5.3.
//!
//! EOImode is split (GICC_CTLR bit 9: EOImodeNS in the Non-secure view a
//! Pi 4's hypervisor has, EOImode on QEMU's GIC without security
//! extensions): GICC_EOIR only drops the running priority and GICC_DIR
//! deactivates. Interrupts forwarded to a guest hardware-linked (the
//! timers) are only priority-dropped here; the guest's deactivation through
//! its list register deactivates them. Everything the hypervisor consumes
//! itself gets both EOIR and DIR.
//!
//! Security: on QEMU raspi4b the GIC has one security state and interrupts
//! reset to Group 0 (signalled as IRQ, since FIQEn stays 0); on a Pi 4 the
//! firmware's armstub makes every interrupt Non-secure Group 1 before the
//! hypervisor starts. Enabling both groups covers both.

use super::mmio::{barrier, Mmio};
use tock_registers::{
    interfaces::{Readable, Writeable},
    register_structs,
    registers::{ReadOnly, ReadWrite, WriteOnly},
};

register_structs! {
    /// Distributor (GICD).
    #[allow(missing_docs)]
    pub GicdRegs {
        /// Distributor control.
        (0x000 => pub ctlr: ReadWrite<u32>),
        /// Interrupt controller type.
        (0x004 => pub typer: ReadOnly<u32>),
        /// Implementer identification.
        (0x008 => pub iidr: ReadOnly<u32>),
        (0x00c => _r0),
        /// Interrupt group.
        (0x080 => pub igroupr: [ReadWrite<u32>; 32]),
        /// Set-enable.
        (0x100 => pub isenabler: [ReadWrite<u32>; 32]),
        /// Clear-enable.
        (0x180 => pub icenabler: [ReadWrite<u32>; 32]),
        /// Set-pending.
        (0x200 => pub ispendr: [ReadWrite<u32>; 32]),
        /// Clear-pending.
        (0x280 => pub icpendr: [ReadWrite<u32>; 32]),
        /// Set-active.
        (0x300 => pub isactiver: [ReadWrite<u32>; 32]),
        /// Clear-active.
        (0x380 => pub icactiver: [ReadWrite<u32>; 32]),
        /// Priority, one byte per interrupt.
        (0x400 => pub ipriorityr: [ReadWrite<u32>; 255]),
        (0x7fc => _r1),
        /// CPU targets, one byte per interrupt.
        (0x800 => pub itargetsr: [ReadWrite<u32>; 255]),
        (0xbfc => _r2),
        /// Configuration (level/edge).
        (0xc00 => pub icfgr: [ReadWrite<u32>; 64]),
        (0xd00 => _r3),
        /// Software-generated interrupts.
        (0xf00 => pub sgir: WriteOnly<u32>),
        (0xf04 => _r4),
        (0x1000 => @END),
    }
}

register_structs! {
    /// CPU interface (GICC).
    #[allow(missing_docs)]
    pub GiccRegs {
        /// CPU interface control.
        (0x000 => pub ctlr: ReadWrite<u32>),
        /// Priority mask.
        (0x004 => pub pmr: ReadWrite<u32>),
        /// Binary point.
        (0x008 => pub bpr: ReadWrite<u32>),
        /// Interrupt acknowledge.
        (0x00c => pub iar: ReadOnly<u32>),
        /// End of interrupt (priority drop, with EOImode split).
        (0x010 => pub eoir: WriteOnly<u32>),
        (0x014 => _r0),
        /// Deactivate (second page).
        (0x1000 => pub dir: WriteOnly<u32>),
        (0x1004 => _r1),
        (0x2000 => @END),
    }
}

register_structs! {
    /// Virtual interface control (GICH), this core's banked view.
    #[allow(missing_docs)]
    pub GichRegs {
        /// Hypervisor control: En (bit 0), UIE (bit 1).
        (0x000 => pub hcr: ReadWrite<u32>),
        /// VGIC type: ListRegs - 1 in bits 5:0.
        (0x004 => pub vtr: ReadOnly<u32>),
        /// The virtual CPU interface's state (GICV_CTLR, PMR, BPR).
        (0x008 => pub vmcr: ReadWrite<u32>),
        (0x00c => _r0),
        /// Maintenance interrupt status.
        (0x010 => pub misr: ReadOnly<u32>),
        (0x014 => _r1),
        /// End of interrupt status (list registers with EOI set, done).
        (0x020 => pub eisr: [ReadOnly<u32>; 2]),
        (0x028 => _r2),
        /// Empty list register status.
        (0x030 => pub elsr: [ReadOnly<u32>; 2]),
        (0x038 => _r3),
        /// Active priorities.
        (0x0f0 => pub apr: ReadWrite<u32>),
        (0x0f4 => _r4),
        /// List registers.
        (0x100 => pub lr: [ReadWrite<u32>; 64]),
        (0x200 => @END),
    }
}

/// The INTID GICC_IAR returns when nothing is pending.
pub const SPURIOUS: u32 = 1023;
/// The SGI the hypervisor uses to make a core look at its vCPU's state.
pub const SGI_KICK: u32 = 1;
/// The GIC-400's maintenance interrupt (PPI 9).
pub const MAINTENANCE: u32 = 25;
/// The EL2 physical timer (PPI 10): the hypervisor's own timeouts.
pub const EL2_TIMER: u32 = 26;
/// The EL1 virtual timer (PPI 11), forwarded to the guest.
pub const VIRT_TIMER: u32 = 27;
/// The EL1 physical timer (PPI 14), forwarded to the guest.
pub const PHYS_TIMER: u32 = 30;
/// Priority of what the hypervisor handles itself.
const PRIO_HYP: u8 = 0xa0;
/// Priority of interrupts forwarded to guests.
const PRIO_GUEST: u8 = 0xc0;
/// GICC_CTLR: EnableGrp0, EnableGrp1, EOImode(NS) split.
const GICC_CTLR: u32 = 0b11 | (1 << 9);
/// GICH_HCR bits.
const HCR_EN: u32 = 1;
const HCR_UIE: u32 = 1 << 1;

/// The GIC-400 as the hypervisor uses it.
pub struct Gic {
    dist: Mmio<GicdRegs>,
    cpu: Mmio<GiccRegs>,
    hyp: Option<Mmio<GichRegs>>,
    /// List registers (GICH_VTR.ListRegs + 1; 0 without GICH), read once.
    lrs: usize,
}

impl Gic {
    /// The GIC at `dist` and `cpu`.
    ///
    /// # Safety
    /// The addresses must be a GIC-400's distributor and CPU interface,
    /// mapped as device memory.
    /// `hyp` is the GICH frame if the GIC has the virtualization
    /// extensions.
    pub unsafe fn new(dist: usize, cpu: usize, hyp: Option<usize>) -> Self {
        // SAFETY: the caller's contract.
        let hyp = hyp.map(|h| unsafe { Mmio::<GichRegs>::new(h) });
        let lrs = hyp
            .as_ref()
            .map_or(0, |h| ((h.vtr.get() & 0x3f) + 1) as usize);
        // SAFETY: the caller's contract.
        unsafe {
            Self {
                dist: Mmio::new(dist),
                cpu: Mmio::new(cpu),
                hyp,
                lrs,
            }
        }
    }

    /// Enables the distributor (both groups) with every SPI disabled and
    /// inactive (whatever firmware left on stays off until a driver or VM
    /// owner asks for it). Once, on the boot core.
    pub fn init_distributor(&self) {
        self.dist.ctlr.set(0);
        for i in 1..32 {
            self.dist.icenabler[i].set(u32::MAX);
            self.dist.icpendr[i].set(u32::MAX);
            self.dist.icactiver[i].set(u32::MAX);
        }
        self.dist.ctlr.set(0b11);
    }

    /// Routes SPI `intid` to the CPU interfaces in `targets` (ITARGETSR),
    /// level-sensitive or edge-triggered, at the hypervisor's priority
    /// (`own`) or the forwarded-interrupt priority, and enables it.
    pub fn route_spi(&self, intid: u32, targets: u8, level: bool, own: bool) {
        if !(32..1020).contains(&intid) {
            return;
        }
        let (word, shift) = ((intid / 4) as usize, (intid % 4) * 8);
        let set_byte = |r: &ReadWrite<u32>, v: u8| {
            r.set((r.get() & !(0xff << shift)) | (u32::from(v) << shift));
        };
        set_byte(&self.dist.itargetsr[word], targets);
        set_byte(
            &self.dist.ipriorityr[word],
            if own { PRIO_HYP } else { PRIO_GUEST },
        );
        let cfg = &self.dist.icfgr[(intid / 16) as usize];
        let bit = 1 << ((intid % 16) * 2 + 1);
        cfg.set(if level {
            cfg.get() & !bit
        } else {
            cfg.get() | bit
        });
        self.dist.isenabler[(intid / 32) as usize].set(1 << (intid % 32));
    }

    /// Disables SPI `intid`.
    pub fn disable_spi(&self, intid: u32) {
        if let Some(r) = self.dist.icenabler.get((intid / 32) as usize) {
            r.set(1 << (intid % 32));
        }
    }

    /// Sets up this core's CPU interface, its SGIs and PPIs, and its
    /// virtual interface control; returns this core's CPU interface mask
    /// (for SGI target lists).
    pub fn init_cpu(&self) -> u8 {
        // SGIs and the hypervisor's PPIs at PRIO_HYP, the forwarded timers
        // at PRIO_GUEST, both above the mask of 0xf0.
        for i in 0..4 {
            self.dist.ipriorityr[i].set(u32::from_ne_bytes([PRIO_HYP; 4]));
        }
        for intid in [MAINTENANCE, EL2_TIMER] {
            self.set_priority(intid, PRIO_HYP);
        }
        let mut enable = 0xffff | (1 << MAINTENANCE) | (1 << EL2_TIMER);
        if self.hyp.is_some() {
            for intid in [VIRT_TIMER, PHYS_TIMER] {
                self.set_priority(intid, PRIO_GUEST);
            }
            enable |= (1 << VIRT_TIMER) | (1 << PHYS_TIMER);
        }
        // Nothing a previous owner left active may block them.
        self.dist.icactiver[0].set(u32::MAX);
        self.dist.isenabler[0].set(enable);
        self.cpu.pmr.set(0xf0);
        self.cpu.bpr.set(0);
        self.cpu.ctlr.set(GICC_CTLR);
        if let Some(h) = &self.hyp {
            self.reset_virtual_interface();
            h.hcr.set(HCR_EN);
        }
        // ITARGETSR0..7 are banked and read-only: this interface's bit.
        (self.dist.itargetsr[0].get() & 0xff) as u8
    }

    fn set_priority(&self, intid: u32, prio: u8) {
        let r = &self.dist.ipriorityr[(intid / 4) as usize];
        let shift = 8 * (intid % 4);
        r.set((r.get() & !(0xff << shift)) | ((prio as u32) << shift));
    }

    /// GICD_IIDR.
    pub fn iidr(&self) -> u32 {
        self.dist.iidr.get()
    }

    /// Whether this is an ARM GIC-400 (product 0x02, implementer ARM),
    /// which re-signals a physical interrupt that is still pending when a
    /// guest deactivates it through a hardware-linked list register.
    /// QEMU's model reports 0x43b and does not (it only notices at its next
    /// GIC event), so hardware-linked forwarding could stall there.
    pub fn is_gic400(&self) -> bool {
        self.iidr() & 0xff00_0fff == 0x0200_043b
    }

    /// How many list registers this core's virtual interface has.
    pub fn lr_count(&self) -> usize {
        self.lrs
    }

    /// Reads this core's list registers into `out` (up to lr_count()).
    pub fn read_lrs(&self, out: &mut [u32]) {
        if let Some(h) = &self.hyp {
            for (v, r) in out.iter_mut().zip(&h.lr[..self.lrs]) {
                *v = r.get();
            }
        }
    }

    /// Writes list register `i`.
    pub fn write_lr(&self, i: usize, value: u32) {
        if let Some(r) = self.hyp.as_ref().and_then(|h| h.lr[..self.lrs].get(i)) {
            r.set(value);
        }
    }

    /// Enables or disables the underflow maintenance interrupt.
    pub fn set_underflow(&self, on: bool) {
        if let Some(h) = &self.hyp {
            h.hcr.set(HCR_EN | if on { HCR_UIE } else { 0 });
        }
    }

    /// Resets this core's virtual CPU interface for a vCPU that starts:
    /// no list register entries, no active priorities, GICV_CTLR and
    /// GICV_PMR back to 0 (as a CPU interface comes out of reset).
    pub fn reset_virtual_interface(&self) {
        if let Some(h) = &self.hyp {
            for r in &h.lr[..self.lrs] {
                r.set(0);
            }
            h.apr.set(0);
            h.vmcr.set(0);
        }
    }

    /// Acknowledges the highest-priority pending interrupt (GICC_IAR);
    /// None when nothing is pending.
    ///
    /// For an SGI, `dmb ish` follows the read, as in Linux's
    /// gic_handle_irq: the sender wrote what the SGI announces (a core's
    /// DIRTY flag, a VM's state) before its GICD_SGIR write (see
    /// [`Gic::send_sgi`]), and this core must read it after the
    /// acknowledge, not from before it. Never inlined: `make test` finds
    /// the barrier in the disassembly by this function's name.
    #[inline(never)]
    pub fn ack(&self) -> Option<u32> {
        let iar = self.cpu.iar.get();
        if iar & 0x3ff < 16 {
            barrier::device_read_before_loads();
        }
        (iar & 0x3ff < SPURIOUS - 3).then_some(iar)
    }

    /// Drops the running priority of an acknowledged interrupt (GICC_EOIR).
    pub fn priority_drop(&self, iar: u32) {
        self.cpu.eoir.set(iar);
    }

    /// Deactivates an interrupt (GICC_DIR).
    pub fn deactivate(&self, iar: u32) {
        self.cpu.dir.set(iar);
    }

    /// Completes an interrupt the hypervisor consumed: EOIR and DIR.
    pub fn complete(&self, iar: u32) {
        self.priority_drop(iar);
        self.deactivate(iar);
    }

    /// Deactivates `intid` through the distributor (ICACTIVER; for SGIs
    /// and PPIs this core's banked copy).
    pub fn deactivate_physical(&self, intid: u32) {
        if let Some(r) = self.dist.icactiver.get((intid / 32) as usize) {
            r.set(1 << (intid % 32));
        }
    }

    /// Sends SGI `id` to the CPU interfaces in `targets`.
    ///
    /// `dmb ishst` first, as Linux's gic_ipi_send_mask does: GICD_SGIR is
    /// a device write, and without the barrier the SGI may reach the
    /// target before the stores it announces (a DIRTY flag, a VM's state
    /// before a restart scrubs its RAM) are visible there; nothing else
    /// orders them (a load-acquire in a caller is not a store barrier).
    /// Never inlined: `make test` checks the barrier in the disassembly.
    #[inline(never)]
    pub fn send_sgi(&self, targets: u8, id: u32) {
        barrier::stores_before_device_write();
        self.dist.sgir.set(((targets as u32) << 16) | (id & 0xf));
    }
}
