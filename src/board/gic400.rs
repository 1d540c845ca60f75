//! The GIC-400 (GICv2) distributor and CPU interface, for the hypervisor's
//! own use: kick SGIs between cores. Register layouts: ARM IHI 0048B
//! (GICv2 architecture specification) 4.1.2 and 4.1.3.
//!
//! Partial on purpose: guest interrupts (routing, EOImode split, list
//! registers) come with the vGIC. Security: on QEMU raspi4b the GIC has one
//! security state and interrupts reset to Group 0 (signalled as IRQ, since
//! FIQEn stays 0); on a Pi 4 the firmware's armstub makes every interrupt
//! Non-secure Group 1 before the hypervisor starts. Enabling both groups
//! covers both.

use super::mmio::Mmio;
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
        /// End of interrupt.
        (0x010 => pub eoir: WriteOnly<u32>),
        (0x014 => _r0),
        (0x1000 => @END),
    }
}

/// The INTID GICC_IAR returns when nothing is pending.
pub const SPURIOUS: u32 = 1023;
/// The SGI the hypervisor uses to make a core look at its vCPU's state.
pub const SGI_KICK: u32 = 1;

/// The GIC-400 as the hypervisor uses it.
pub struct Gic {
    dist: Mmio<GicdRegs>,
    cpu: Mmio<GiccRegs>,
}

impl Gic {
    /// The GIC at `dist` and `cpu`.
    ///
    /// # Safety
    /// The addresses must be a GIC-400's distributor and CPU interface,
    /// mapped as device memory.
    pub const unsafe fn new(dist: usize, cpu: usize) -> Self {
        // SAFETY: the caller's contract.
        unsafe {
            Self {
                dist: Mmio::new(dist),
                cpu: Mmio::new(cpu),
            }
        }
    }

    /// Enables the distributor (both groups). Once, on the boot core.
    pub fn init_distributor(&self) {
        self.dist.ctlr.set(0b11);
    }

    /// Sets up this core's CPU interface and its SGIs; returns this core's
    /// CPU interface mask (for SGI target lists).
    pub fn init_cpu(&self) -> u8 {
        // SGIs at priority 0xa0, above the mask of 0xf0.
        for i in 0..4 {
            self.dist.ipriorityr[i].set(0xa0a0_a0a0);
        }
        self.dist.isenabler[0].set(0xffff);
        self.cpu.pmr.set(0xf0);
        self.cpu.bpr.set(0);
        self.cpu.ctlr.set(0b11);
        // ITARGETSR0..7 are banked and read-only: this interface's bit.
        (self.dist.itargetsr[0].get() & 0xff) as u8
    }

    /// Sends SGI `id` to the CPU interfaces in `targets`.
    pub fn send_sgi(&self, targets: u8, id: u32) {
        self.dist.sgir.set(((targets as u32) << 16) | (id & 0xf));
    }

    /// Acknowledges and completes every pending interrupt; returns how
    /// many there were. Only SGIs are enabled, so nothing else arrives.
    pub fn drain(&self) -> u32 {
        let mut n = 0;
        loop {
            let iar = self.cpu.iar.get();
            if iar & 0x3ff >= SPURIOUS - 3 {
                return n;
            }
            self.cpu.eoir.set(iar);
            n += 1;
        }
    }
}
