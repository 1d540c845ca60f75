//! The virtual GICv2 distributor: a VM's GICD page, emulated by
//! trap-and-emulate (ARM IHI 0048B, 4.3 "Distributor register
//! descriptions"). Pure logic: the state of every interrupt the VM can
//! see, per-vCPU banked SGIs and PPIs, and the register semantics.
//!
//! A VM sees its own SGIs and PPIs and the SPIs it owns; every other SPI
//! reads as zero and ignores writes. The registers themselves (offsets,
//! widths, what a read or a write does) are one table in `dist_regs.rs`.

use alloc::vec;
use alloc::vec::Vec;

/// GIC-400 implements 32 priority levels: the low 3 bits read as zero.
pub const PRIORITY_MASK: u8 = 0xf8;
/// GICD_IIDR of a GIC-400.
pub const IIDR: u32 = 0x0200_143b;

/// One interrupt's distributor state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Irq {
    /// Enabled (ISENABLER).
    pub enabled: bool,
    /// Pending latch (ISPENDR, an edge, a hardware-linked firing; for
    /// SGIs, any source bit).
    pub pending: bool,
    /// The input line of a level-sensitive interrupt (emulated devices).
    pub line: bool,
    /// Active (ISACTIVER).
    pub active: bool,
    /// Group 1 (IGROUPR).
    pub group1: bool,
    /// Priority (IPRIORITYR, low bits masked).
    pub priority: u8,
    /// CPU targets (ITARGETSR; SPIs only).
    pub targets: u8,
    /// Edge-triggered (ICFGR bit 1).
    pub edge: bool,
    /// Hardware-linked: the physical interrupt of the same INTID is
    /// deactivated when the guest deactivates this one.
    pub hw: bool,
    /// ICPENDR cleared the latch while the interrupt sat in a list
    /// register: taking it back out must not restore the latch.
    pub cleared: bool,
    /// Sitting in one of a vCPU's list registers.
    pub in_lr: bool,
}

impl Irq {
    /// Pending as the GIC defines it: the latch, or a level-sensitive
    /// line held high.
    pub fn is_pending(&self) -> bool {
        self.pending || (!self.edge && self.line)
    }

    /// Enabled, pending and neither in a list register nor active: could
    /// go into a list register (group, targets and SGI sources aside).
    pub fn ready(&self) -> bool {
        self.enabled && self.is_pending() && !self.in_lr && !self.active
    }
}

/// What a register write changed: the vCPUs whose deliverable interrupts
/// may have changed (bit per vCPU), so their list registers are refreshed.
pub type Dirty = u8;

/// A VM's virtual distributor.
#[derive(Debug, Clone)]
pub struct VgicDist {
    vcpus: usize,
    lines: u32,
    ctlr: u32,
    /// Per vCPU: INTIDs 0-31.
    private: Vec<[Irq; 32]>,
    /// Per vCPU, per SGI: source vCPU bits.
    sgi_sources: Vec<[u8; 16]>,
    /// INTIDs 32..lines.
    shared: Vec<Irq>,
    /// Per SPI: owned by this VM.
    owned: Vec<bool>,
    /// The owned SPIs' INTIDs, ascending (the refill walks only these).
    owned_ids: Vec<u32>,
    /// (vCPU, INTID) of physical interrupts to deactivate.
    released: Vec<(u8, u32)>,
    /// Per vCPU: what each list register holds.
    pub(super) lrs: Vec<[Option<Slot>; MAX_LRS]>,
    /// Hardware-linked interrupts go in as software ones with EOI
    /// maintenance and are deactivated by the hypervisor (for GIC models
    /// that do not re-signal a still-pending physical interrupt when the
    /// guest deactivates it through a list register).
    pub(super) hw_via_eoi: bool,
}

/// The most list registers GICv2 defines (GICH_VTR.ListRegs is 6 bits).
pub const MAX_LRS: usize = 64;

/// What the hypervisor put in one list register.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Slot {
    pub intid: u32,
    /// SGI source vCPU.
    pub source: u8,
    /// Insertion consumed the pending latch (restored if taken back).
    pub latched: bool,
}

impl VgicDist {
    /// A distributor for `vcpus` vCPUs (1-8) owning the SPIs in `owned`
    /// (INTIDs 32-1019; others are ignored).
    pub fn new(vcpus: usize, owned: &[u32]) -> Self {
        let vcpus = vcpus.clamp(1, 8);
        let max = owned
            .iter()
            .copied()
            .filter(|&i| (32..1020).contains(&i))
            .max()
            .unwrap_or(31);
        let lines = (max + 1).next_multiple_of(32).min(1024);
        let mut priv_irqs = [Irq::default(); 32];
        for (i, irq) in priv_irqs.iter_mut().enumerate() {
            irq.edge = i < 16; // SGIs are edge-triggered
        }
        let mut own = vec![false; (lines - 32) as usize];
        for &i in owned {
            if (32..lines).contains(&i) {
                own[(i - 32) as usize] = true;
            }
        }
        Self {
            vcpus,
            lines,
            ctlr: 0,
            private: vec![priv_irqs; vcpus],
            sgi_sources: vec![[0; 16]; vcpus],
            shared: vec![Irq::default(); (lines - 32) as usize],
            owned_ids: (32..lines).filter(|&i| own[(i - 32) as usize]).collect(),
            owned: own,
            released: Vec::new(),
            lrs: vec![[None; MAX_LRS]; vcpus],
            hw_via_eoi: false,
        }
    }

    /// Number of interrupt lines the VM sees (TYPER).
    pub fn lines(&self) -> u32 {
        self.lines
    }

    /// GICD_CTLR.EnableGrp0/1 as the guest set them.
    pub fn enabled(&self) -> bool {
        self.ctlr & 0b11 != 0
    }

    /// All vCPUs' bits.
    fn all(&self) -> Dirty {
        ((1u16 << self.vcpus) - 1) as u8
    }

    /// The state of `intid` as vCPU `vcpu` sees it; None if not visible.
    pub fn irq(&self, vcpu: usize, intid: u32) -> Option<&Irq> {
        match intid {
            0..=31 => self.private.get(vcpu).map(|p| &p[intid as usize]),
            _ if intid < self.lines && self.owned[(intid - 32) as usize] => {
                Some(&self.shared[(intid - 32) as usize])
            }
            _ => None,
        }
    }

    pub(super) fn irq_mut(&mut self, vcpu: usize, intid: u32) -> Option<&mut Irq> {
        match intid {
            0..=31 => self.private.get_mut(vcpu).map(|p| &mut p[intid as usize]),
            _ if intid < self.lines && self.owned[(intid - 32) as usize] => {
                Some(&mut self.shared[(intid - 32) as usize])
            }
            _ => None,
        }
    }

    /// Which vCPUs an interrupt can be delivered to.
    fn reach(&self, vcpu: usize, intid: u32) -> Dirty {
        if intid < 32 {
            // A vCPU the distributor does not have reaches nobody (found
            // by the vgic fuzz target: 1 << 8 overflowed).
            if vcpu < self.vcpus {
                1 << vcpu
            } else {
                0
            }
        } else {
            self.irq(vcpu, intid).map_or(0, |i| i.targets) & self.all()
        }
    }

    /// Source vCPU bits of SGI `sgi` pending on `vcpu`.
    pub fn sgi_sources(&self, vcpu: usize, sgi: u32) -> u8 {
        self.sgi_sources
            .get(vcpu)
            .map_or(0, |s| s[(sgi & 15) as usize])
    }

    /// Marks SGI `sgi` from `source` pending on the vCPUs in `targets`.
    pub fn send_sgi(&mut self, source: usize, targets: u8, sgi: u32) -> Dirty {
        let sgi = (sgi & 15) as usize;
        let mut dirty = 0;
        for v in 0..self.vcpus {
            if targets & (1 << v) != 0 {
                self.sgi_sources[v][sgi] |= 1 << source;
                self.private[v][sgi].pending = true;
                dirty |= 1 << v;
            }
        }
        dirty
    }

    /// An emulated device drives a line: a rising edge latches an
    /// edge-triggered interrupt; a level-sensitive one is pending while
    /// the line is high. SGIs have no line.
    pub fn set_line(&mut self, vcpu: usize, intid: u32, level: bool) -> Dirty {
        let reach = self.reach(vcpu, intid);
        match self.irq_mut(vcpu, intid) {
            Some(i) if intid >= 16 && !i.hw => {
                if i.edge && level && !i.line {
                    i.pending = true;
                }
                i.line = level;
                reach
            }
            _ => 0,
        }
    }

    /// The hardware-linked physical interrupt `intid` fired (and was
    /// priority-dropped, not deactivated): latch it for injection.
    pub fn hw_fired(&mut self, vcpu: usize, intid: u32) -> Dirty {
        let reach = self.reach(vcpu, intid);
        match self.irq_mut(vcpu, intid) {
            Some(i) if i.hw => {
                i.pending = true;
                reach
            }
            _ => 0,
        }
    }

    /// Marks `intid` hardware-linked (for every vCPU if private).
    pub fn set_hw(&mut self, intid: u32) {
        for v in 0..self.vcpus {
            if let Some(i) = self.irq_mut(v, intid) {
                if intid >= 16 {
                    i.hw = true;
                    i.edge = false;
                }
            }
        }
    }

    /// Forward hardware-linked interrupts with EOI maintenance (the
    /// hypervisor deactivates the physical one when the guest is done)
    /// instead of HW=1 list registers.
    pub fn set_hw_via_eoi(&mut self, on: bool) {
        self.hw_via_eoi = on;
    }

    /// Physical interrupts the guest gave up (cleared pending without
    /// taking them) or finished (with [`Self::set_hw_via_eoi`]) that must
    /// be deactivated on the GIC so they can fire again: `vcpu`'s PPIs and
    /// any SPI. Called on `vcpu`'s own core.
    pub fn take_released(&mut self, vcpu: usize) -> Vec<u32> {
        let mut out = Vec::new();
        self.released.retain(|&(v, intid)| {
            if intid >= 32 || v as usize == vcpu {
                out.push(intid);
                false
            } else {
                true
            }
        });
        out
    }

    /// ICPENDR on one interrupt.
    fn clear_pending(&mut self, vcpu: usize, intid: u32) -> Dirty {
        let reach = self.reach(vcpu, intid);
        let Some(i) = self.irq_mut(vcpu, intid) else {
            return 0;
        };
        if intid < 16 {
            return 0; // SGIs: CPENDSGIR
        }
        let was = i.pending;
        i.pending = false;
        i.cleared = true;
        if i.hw && was && !i.in_lr {
            self.release(vcpu, intid);
            // This vCPU's next refill deactivates it, even when no vCPU
            // is a target (an SPI with ITARGETSR 0 reaches nobody).
            return reach | (1 << vcpu);
        }
        reach
    }

    /// Queues physical `intid` for deactivation by [`Self::take_released`].
    ///
    /// Bounded whatever the guest does: an interrupt is queued at most
    /// once (an SPI once for the VM, a PPI once per vCPU), so the queue
    /// never holds more than the VM's hardware-linked interrupts (a guest
    /// looping ISPENDR/ICPENDR on its passed-through SPI grew it by one
    /// entry per pair until the heap ran out).
    pub(super) fn release(&mut self, vcpu: usize, intid: u32) {
        let e = (if intid >= 32 { 0 } else { vcpu as u8 }, intid);
        if !self.released.contains(&e) {
            self.released.push(e);
        }
    }

    /// How many physical deactivations are queued.
    pub fn released_len(&self) -> usize {
        self.released.len()
    }

    /// The guest's SGIR write from `vcpu`.
    fn sgir(&mut self, vcpu: usize, v: u32) -> Dirty {
        let list = ((v >> 16) & 0xff) as u8 & self.all();
        let targets = match (v >> 24) & 3 {
            0 => list,
            1 => self.all() & !(1 << vcpu),
            2 => 1 << vcpu,
            _ => 0,
        };
        self.send_sgi(vcpu, targets, v & 15)
    }

    /// One bit per INTID of word `n` (INTIDs 32n..32n+31): `f` of each
    /// interrupt this vCPU sees, 0 for lines the VM does not own. Walks
    /// the slices directly: a guest reads these words on every interrupt
    /// setup, and each read is an exit.
    fn bits(&self, vcpu: usize, n: u32, f: impl Fn(&Irq) -> bool) -> u32 {
        // From the last interrupt down, shifting in one bit at a time: a
        // load and a shifted OR per interrupt (no variable shifts), which
        // is most of a trapped bitmap read's cost (B2r).
        fn fold(it: impl DoubleEndedIterator<Item = bool>) -> u32 {
            it.rev().fold(0, |acc, on| (acc << 1) | on as u32)
        }
        if n == 0 {
            return self.private.get(vcpu).map_or(0, |p| fold(p.iter().map(&f)));
        }
        let start = (n as usize - 1) * 32;
        let end = (start + 32).min(self.shared.len());
        if start >= end {
            return 0;
        }
        fold(
            self.shared[start..end]
                .iter()
                .zip(&self.owned[start..end])
                .map(|(i, &own)| own && f(i)),
        )
    }

    fn set_bits(&mut self, vcpu: usize, n: u32, v: u32, f: impl Fn(&mut Irq, u32)) -> Dirty {
        let mut dirty = 0;
        for b in 0..32 {
            if v & (1 << b) != 0 {
                let intid = n * 32 + b;
                let reach = self.reach(vcpu, intid);
                if let Some(i) = self.irq_mut(vcpu, intid) {
                    f(i, intid);
                    dirty |= reach;
                }
            }
        }
        dirty
    }

    /// The vCPU count.
    pub fn vcpus(&self) -> usize {
        self.vcpus
    }

    pub(super) fn ctlr(&self) -> u32 {
        self.ctlr
    }

    pub(super) fn sources_mut(&mut self, vcpu: usize, sgi: u32) -> Option<&mut u8> {
        self.sgi_sources.get_mut(vcpu)?.get_mut((sgi & 15) as usize)
    }

    /// vCPU `vcpu`'s SGIs and PPIs, if it exists.
    pub(super) fn private_irqs(&self, vcpu: usize) -> Option<&[Irq; 32]> {
        self.private.get(vcpu)
    }

    pub(super) fn owned_spis(&self) -> impl Iterator<Item = u32> + '_ {
        self.owned_ids.iter().copied()
    }

    fn target_byte(&self, vcpu: usize, intid: u32) -> u8 {
        if intid < 32 {
            // Banked, read-only: this vCPU's own bit.
            return if vcpu < self.vcpus { 1 << vcpu } else { 0 };
        }
        self.irq(vcpu, intid).map_or(0, |i| i.targets)
    }
}

#[path = "dist_regs.rs"]
mod regs;

#[cfg(test)]
#[path = "dist_tests.rs"]
mod tests;
