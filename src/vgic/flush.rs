//! Keeping a vCPU's list registers in step with its virtual distributor:
//! read back what the guest did with each list register (fold), then put
//! the highest-priority deliverable interrupts into the free ones (fill).
//! Pure logic over an array of GICH_LR values; the caller reads them from
//! and writes them back to the hardware on the vCPU's own core.
//!
//! Rules:
//! - An entry the guest has not acknowledged yet (Pending) is taken back
//!   at every flush and competes again, so a newly pending interrupt of
//!   higher priority is never stuck behind lower ones.
//! - Active entries stay until the guest deactivates them; an edge
//!   interrupt that fires again meanwhile becomes Pending+Active in place.
//! - When more is deliverable than fits, the caller enables the underflow
//!   maintenance interrupt (GICH_HCR.UIE) and flushes again when it fires.
//! - Level-sensitive interrupts of emulated devices go in with LR.EOI=1:
//!   their deactivation raises a maintenance interrupt, the next flush
//!   sees the line again (still high: pending again). Once the line is
//!   low while the entry is still active (a virtio driver acknowledged
//!   the device in its handler, an exit that flushes), the next flush
//!   drops LR.EOI: the guest's EOI then costs no exit, and the next
//!   flush folds the empty entry. A line that rises again while the
//!   entry is active puts LR.EOI back.
//! - Hardware-linked ones go in with HW=1 and the physical INTID, so the
//!   guest's deactivation deactivates the physical interrupt. If one is
//!   taken back and then cleared by the guest, it is handed to the caller
//!   to deactivate ([`VgicDist::take_released`]). With
//!   [`VgicDist::set_hw_via_eoi`] they go in with EOI maintenance instead
//!   and are handed to the caller when the guest is done.
//!
//! The guest's ICACTIVER/ISACTIVER writes do not reach an interrupt that
//! sits in a list register (the list register is the truth until the
//! guest deactivates it); Linux never does that.

use super::dist::{Slot, VgicDist, MAX_LRS};
use super::lr::{self, state, Virq};

impl VgicDist {
    /// Folds and refills `vcpu`'s list registers (`lrs`: the hardware
    /// values in, the values to write out). Returns true if interrupts
    /// are left waiting for a free list register (enable underflow).
    pub fn flush(&mut self, vcpu: usize, lrs: &mut [u32]) -> bool {
        if vcpu >= self.vcpus() {
            return false;
        }
        let n = lrs.len().min(MAX_LRS);
        if n == 0 {
            return false;
        }
        let lrs = &mut lrs[..n];
        self.fold(vcpu, lrs);
        self.retrigger(vcpu, lrs);
        self.fill(vcpu, lrs)
    }

    fn fold(&mut self, vcpu: usize, lrs: &mut [u32]) {
        for (i, lrv) in lrs.iter_mut().enumerate() {
            let Some(slot) = self.lrs[vcpu][i] else {
                *lrv = 0; // not ours: nothing may linger there
                continue;
            };
            let (_, st) = lr::decode(*lrv);
            match st {
                state::INVALID => {
                    *lrv = 0;
                    self.lrs[vcpu][i] = None;
                    let via_eoi = self.hw_via_eoi;
                    let mut release = false;
                    if let Some(irq) = self.irq_mut(vcpu, slot.intid) {
                        irq.in_lr = false;
                        irq.active = false;
                        irq.cleared = false;
                        release = irq.hw && via_eoi;
                    }
                    if release {
                        self.release(vcpu, slot.intid);
                    }
                }
                state::PENDING => {
                    *lrv = 0;
                    self.lrs[vcpu][i] = None;
                    self.take_back(vcpu, slot);
                }
                _ => {
                    if let Some(irq) = self.irq_mut(vcpu, slot.intid) {
                        irq.active = true;
                    }
                }
            }
        }
    }

    /// Puts a not-yet-acknowledged interrupt back into the distributor.
    fn take_back(&mut self, vcpu: usize, slot: Slot) {
        if slot.intid < 16 {
            if let Some(s) = self.sources_mut(vcpu, slot.intid) {
                *s |= 1 << (slot.source & 7);
            }
            if let Some(irq) = self.irq_mut(vcpu, slot.intid) {
                irq.in_lr = false;
                irq.active = false;
                irq.pending = true;
            }
            return;
        }
        let mut release = false;
        if let Some(irq) = self.irq_mut(vcpu, slot.intid) {
            irq.in_lr = false;
            irq.active = false;
            if slot.latched && !irq.cleared {
                irq.pending = true;
            }
            release = irq.hw && slot.latched && !irq.pending;
            irq.cleared = false;
        }
        if release {
            self.release(vcpu, slot.intid);
        }
    }

    /// Active edge-triggered entries whose interrupt fired again become
    /// Pending+Active (hardware-linked ones cannot: the physical interrupt
    /// stays active until the guest is done).
    fn retrigger(&mut self, vcpu: usize, lrs: &mut [u32]) {
        for (i, lrv) in lrs.iter_mut().enumerate() {
            let Some(slot) = self.lrs[vcpu][i] else {
                continue;
            };
            if lr::decode(*lrv).1 != state::ACTIVE {
                continue;
            }
            if slot.intid < 16 {
                let bit = 1u8 << (slot.source & 7);
                let Some(s) = self.sources_mut(vcpu, slot.intid) else {
                    continue;
                };
                if *s & bit != 0 {
                    *s &= !bit;
                    *lrv = lr::add_pending(*lrv);
                }
                let left = *s;
                if left != 0 {
                    *lrv = lr::add_eoi_maintenance(*lrv);
                }
                if let Some(irq) = self.irq_mut(vcpu, slot.intid) {
                    irq.pending = left != 0;
                }
                continue;
            }
            if let Some(irq) = self.irq_mut(vcpu, slot.intid) {
                if irq.edge && !irq.hw && irq.pending {
                    irq.pending = false;
                    *lrv = lr::add_pending(*lrv);
                }
                if !irq.edge && !irq.hw {
                    // Level: only a line still (or again) high needs to
                    // hear of the EOI.
                    *lrv = if irq.is_pending() {
                        lr::add_eoi_maintenance(*lrv)
                    } else {
                        lr::drop_eoi_maintenance(*lrv)
                    };
                }
            }
        }
    }

    /// The interrupt `intid` as a candidate for `vcpu`, if deliverable.
    fn candidate(&self, vcpu: usize, intid: u32) -> Option<Virq> {
        let source = if intid < 16 {
            let s = self.sgi_sources(vcpu, intid);
            if s == 0 {
                return None;
            }
            s.trailing_zeros() as u8
        } else {
            0
        };
        let irq = self.irq(vcpu, intid)?;
        let group_on = self.ctlr() & if irq.group1 { 2 } else { 1 } != 0;
        let targeted = intid < 32 || irq.targets & (1 << vcpu) != 0;
        if !(irq.ready() && group_on && targeted) {
            return None;
        }
        let linked = irq.hw && !self.hw_via_eoi;
        Some(Virq {
            intid,
            priority: irq.priority,
            group1: irq.group1,
            hw: linked.then_some(intid),
            source,
            eoi_maintenance: !irq.edge && !linked,
        })
    }

    fn fill(&mut self, vcpu: usize, lrs: &mut [u32]) -> bool {
        let mut free = [0usize; lr::CHOOSE_MAX];
        let mut nfree = 0;
        for i in 0..lrs.len() {
            if self.lrs[vcpu][i].is_none() && nfree < free.len() {
                free[nfree] = i;
                nfree += 1;
            }
        }
        let mut chooser = lr::Chooser::new(nfree);
        // Only interrupts that are ready at all are looked at closely
        // (this runs on most exits that changed something).
        let mut private = self.private_irqs(vcpu).map_or(0u32, |p| {
            p.iter()
                .enumerate()
                .fold(0, |m, (k, i)| m | ((i.ready() as u32) << k))
        });
        while private != 0 {
            let intid = private.trailing_zeros();
            private &= private - 1;
            if let Some(v) = self.candidate(vcpu, intid) {
                chooser.offer(v);
            }
        }
        for intid in self.owned_spis() {
            if self.irq(vcpu, intid).is_some_and(|i| i.ready()) {
                if let Some(v) = self.candidate(vcpu, intid) {
                    chooser.offer(v);
                }
            }
        }
        let (chosen, waiting) = chooser.chosen();
        for (&i, v) in free.iter().zip(chosen) {
            let latched = self.consume(vcpu, v);
            self.lrs[vcpu][i] = Some(Slot {
                intid: v.intid,
                source: v.source,
                latched,
            });
            // An SGI from several sources goes in one source at a time:
            // its EOI maintenance interrupt brings in the next.
            let more = v.intid < 16 && self.sgi_sources(vcpu, v.intid) != 0;
            let v = Virq {
                eoi_maintenance: v.eoi_maintenance || more,
                ..*v
            };
            lrs[i] = lr::encode(&v);
        }
        waiting
    }

    /// Moves the pending state of `v` into a list register; returns
    /// whether a latch was consumed.
    fn consume(&mut self, vcpu: usize, v: &Virq) -> bool {
        if v.intid < 16 {
            let left = self.sources_mut(vcpu, v.intid).map_or(0, |s| {
                *s &= !(1 << v.source);
                *s
            });
            if let Some(irq) = self.irq_mut(vcpu, v.intid) {
                irq.pending = left != 0;
                irq.in_lr = true;
            }
            return true;
        }
        let Some(irq) = self.irq_mut(vcpu, v.intid) else {
            return false;
        };
        let latched = irq.pending;
        irq.pending = false;
        irq.in_lr = true;
        irq.cleared = false;
        latched
    }

    /// Forgets `vcpu`'s list registers and the active and pending state
    /// of its hardware-linked interrupts (a vCPU start: the caller zeroes
    /// the list registers and deactivates those physical interrupts).
    pub fn reset_vcpu(&mut self, vcpu: usize, lrs: &[u32]) {
        if vcpu >= self.vcpus() {
            return;
        }
        // What the guest never acknowledged stays pending.
        let mut copy = [0u32; MAX_LRS];
        let n = lrs.len().min(MAX_LRS);
        copy[..n].copy_from_slice(&lrs[..n]);
        self.fold(vcpu, &mut copy[..n]);
        for i in 0..MAX_LRS {
            if let Some(slot) = self.lrs[vcpu][i].take() {
                if let Some(irq) = self.irq_mut(vcpu, slot.intid) {
                    irq.in_lr = false;
                    irq.active = false;
                }
            }
        }
        for intid in 16..32 {
            if let Some(irq) = self.irq_mut(vcpu, intid) {
                if irq.hw {
                    irq.pending = false;
                    irq.active = false;
                }
            }
        }
    }
}

#[cfg(test)]
#[path = "flush_tests.rs"]
mod tests;
