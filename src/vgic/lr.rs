//! GICv2 list registers (GICH_LRn, ARM IHI 0048B 5.3.11): encoding and
//! choosing which pending virtual interrupts occupy the few list registers
//! (4 on the GIC-400), highest priority first. Pure logic: the hardware
//! save/restore of GICH comes with the injection path.

use tock_registers::{
    interfaces::{ReadWriteable, Readable},
    registers::InMemoryRegister,
};

use crate::board::gic400::GICH_LR;

/// One virtual interrupt to put in a list register.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Virq {
    /// Virtual INTID.
    pub intid: u32,
    /// Priority (0 highest; the low 3 bits are dropped).
    pub priority: u8,
    /// Group 1.
    pub group1: bool,
    /// Physical INTID for a hardware-linked interrupt.
    pub hw: Option<u32>,
    /// Source vCPU for an SGI.
    pub source: u8,
    /// Ask for a maintenance interrupt when the guest EOIs it (level
    /// interrupts of emulated devices: the line is re-sampled then).
    pub eoi_maintenance: bool,
}

/// The GICH_LR value that makes `v` pending.
pub fn encode(v: &Virq) -> u32 {
    let r: InMemoryRegister<u32, GICH_LR::Register> = InMemoryRegister::new(0);
    r.modify(
        GICH_LR::VIRTUAL_ID.val(v.intid & 0x3ff)
            + GICH_LR::PRIORITY.val((v.priority >> 3) as u32)
            + GICH_LR::STATE::Pending
            + GICH_LR::GRP1.val(v.group1 as u32),
    );
    match v.hw {
        Some(p) => r.modify(GICH_LR::HW::SET + GICH_LR::PHYSICAL_ID.val(p & 0x3ff)),
        None => {
            let cpu = if v.intid < 16 {
                (v.source & 7) as u32
            } else {
                0
            };
            r.modify(GICH_LR::EOI.val(v.eoi_maintenance as u32) + GICH_LR::CPUID.val(cpu));
        }
    }
    r.get()
}

/// GICH_LR.State values, as [`decode`] returns them.
pub mod state {
    /// Empty.
    pub const INVALID: u32 = 0;
    /// Pending.
    pub const PENDING: u32 = 1;
    /// Active (acknowledged, not yet deactivated).
    pub const ACTIVE: u32 = 2;
}

/// `lr` made pending as well (Active becomes Pending+Active).
#[inline(always)]
pub fn add_pending(lr: u32) -> u32 {
    lr | GICH_LR::STATE::Pending.value
}

/// `lr` (a HW=0 entry) asking for a maintenance interrupt on EOI.
#[inline(always)]
pub fn add_eoi_maintenance(lr: u32) -> u32 {
    lr | GICH_LR::EOI::SET.value
}

/// `lr` (a HW=0 entry) without the maintenance interrupt on EOI.
#[inline(always)]
pub fn drop_eoi_maintenance(lr: u32) -> u32 {
    lr & !GICH_LR::EOI::SET.value
}

/// The virtual INTID and state (0-3) of a list register value.
pub fn decode(lr: u32) -> (u32, u32) {
    let r: InMemoryRegister<u32, GICH_LR::Register> = InMemoryRegister::new(lr);
    (r.read(GICH_LR::VIRTUAL_ID), r.read(GICH_LR::STATE))
}

/// The most list registers filled in one go (a GIC-400 has 4; with more,
/// the rest fill on the next refill).
pub const CHOOSE_MAX: usize = 8;

/// Chooses what goes into `slots` list registers as candidates are
/// offered: the highest-priority ones (lower value first, then lower
/// INTID, then source, for a stable order), kept inline so that the exit
/// path allocates nothing. Reports whether some had to wait, in which case
/// the caller enables the underflow maintenance interrupt to refill when
/// list registers free up.
pub struct Chooser {
    best: [Virq; CHOOSE_MAX],
    len: usize,
    slots: usize,
    waiting: bool,
}

impl Chooser {
    /// Room for `slots` (at most [`CHOOSE_MAX`]).
    pub fn new(slots: usize) -> Self {
        const NONE: Virq = Virq {
            intid: 0,
            priority: 0,
            group1: false,
            hw: None,
            source: 0,
            eoi_maintenance: false,
        };
        Self {
            best: [NONE; CHOOSE_MAX],
            len: 0,
            slots: slots.min(CHOOSE_MAX),
            waiting: false,
        }
    }

    /// Offers one candidate.
    pub fn offer(&mut self, v: Virq) {
        let key = |v: &Virq| (v.priority, v.intid, v.source);
        let pos = self.best[..self.len]
            .iter()
            .position(|b| key(&v) < key(b))
            .unwrap_or(self.len);
        if self.len == self.slots {
            self.waiting = true;
            if pos == self.len {
                return; // worse than everything kept (or no room at all)
            }
            self.len -= 1; // the worst makes way
        }
        self.best.copy_within(pos..self.len, pos + 1);
        self.best[pos] = v;
        self.len += 1;
    }

    /// The chosen ones, best first, and whether some had to wait.
    pub fn chosen(&self) -> (&[Virq], bool) {
        (&self.best[..self.len], self.waiting)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::vec::Vec;

    fn virq(intid: u32, priority: u8) -> Virq {
        Virq {
            intid,
            priority,
            group1: false,
            hw: None,
            source: 0,
            eoi_maintenance: false,
        }
    }

    #[test]
    fn encodings() {
        // A Group 0 SPI at priority 0xa0, pending.
        assert_eq!(encode(&virq(40, 0xa7)), (1 << 28) | (0x14 << 23) | 40);
        // The virtual timer, hardware-linked to physical 27.
        let t = Virq {
            hw: Some(27),
            ..virq(27, 0)
        };
        assert_eq!(encode(&t), (1 << 31) | (1 << 28) | (27 << 10) | 27);
        // An SGI from vCPU 3, Group 1.
        let s = Virq {
            source: 3,
            group1: true,
            ..virq(1, 0x80)
        };
        assert_eq!(
            encode(&s),
            (1 << 30) | (1 << 28) | (0x10 << 23) | (3 << 10) | 1
        );
        // A level interrupt of an emulated device: EOI maintenance.
        let l = Virq {
            eoi_maintenance: true,
            ..virq(153, 0)
        };
        assert_eq!(encode(&l), (1 << 28) | (1 << 19) | 153);
        // The source field is only for SGIs; hostile values are cut.
        let h = Virq {
            source: 0xff,
            ..virq(0xffff, 0xff)
        };
        assert_eq!(decode(encode(&h)), (0x3ff, 1));
        assert_eq!(encode(&h) & (0x3ff << 10), 0);
    }

    #[test]
    fn highest_priority_first_and_overflow_is_reported() {
        let offer = |ids: &[(u32, u8)], slots| {
            let mut c = Chooser::new(slots);
            for &(i, p) in ids {
                c.offer(virq(i, p));
            }
            let (chosen, waiting) = c.chosen();
            (chosen.iter().map(|v| v.intid).collect::<Vec<_>>(), waiting)
        };
        let all = [
            (50, 0xa0),
            (27, 0x00),
            (33, 0xa0),
            (1, 0x80),
            (153, 0xf0),
            (40, 0x10),
        ];
        assert_eq!(
            offer(&all, 4),
            (vec![27, 40, 1, 33], true),
            "two wait for a refill"
        );
        assert_eq!(offer(&[(50, 0xa0), (153, 0xf0)], 4), (vec![50, 153], false));
        assert_eq!(offer(&[], 4), (vec![], false));
        // No free list register: everything waits.
        assert_eq!(offer(&all, 0), (vec![], true));
        // More list registers than one refill fills: CHOOSE_MAX at a time.
        let many: Vec<(u32, u8)> = (32..32 + 2 * CHOOSE_MAX as u32)
            .rev()
            .map(|i| (i, 0xa0))
            .collect();
        let (ids, waiting) = offer(&many, 64);
        assert_eq!(ids, (32..32 + CHOOSE_MAX as u32).collect::<Vec<_>>());
        assert!(waiting);
        // The same order as sorting the whole set, whatever the offer order.
        let mut sorted = all.to_vec();
        sorted.sort_by_key(|&(i, p)| (p, i));
        for k in 0..=all.len() {
            let mut rev = all.to_vec();
            rev.reverse();
            let want: Vec<u32> = sorted.iter().take(k).map(|&(i, _)| i).collect();
            assert_eq!(offer(&rev, k).0, want);
            assert_eq!(offer(&all, k).0, want);
        }
    }
}
