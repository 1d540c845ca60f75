//! The distributor's registers as one table, the way Linux's
//! vgic-mmio-v2.c describes them: each entry an offset range, whether it
//! is byte-accessible, and what a read and a write of it do (ARM IHI
//! 0048B, 4.3). A guest access is looked up here and nowhere else.
//!
//! Word access works for every register (a word of a byte-accessible
//! register is its four bytes); byte access only for IPRIORITYR,
//! ITARGETSR, CPENDSGIR and SPENDSGIR, the spec's byte-accessible
//! registers. Any other width, an unaligned word, or an offset no entry
//! covers reads as zero and ignores writes.

use super::{Dirty, VgicDist, IIDR, PRIORITY_MASK};

/// One register or array of registers.
struct Reg {
    /// First offset.
    start: u32,
    /// Last offset of its last byte.
    end: u32,
    /// Byte-accessible: the handlers take one byte at `off`, and a word
    /// access is four of them.
    bytes: bool,
    /// A read at `off` (a byte or a word, as `bytes` says).
    read: fn(&VgicDist, usize, u32) -> u32,
    /// A write at `off`.
    write: fn(&mut VgicDist, usize, u32, u32) -> Dirty,
}

fn raz(_: &VgicDist, _: usize, _: u32) -> u32 {
    0
}

fn wi(_: &mut VgicDist, _: usize, _: u32, _: u32) -> Dirty {
    0
}

/// The bitmap word index `n` (32 INTIDs) of an offset in a bitmap array.
fn word(off: u32) -> u32 {
    (off & 0x7f) / 4
}

/// Sorted by offset; ranges never overlap.
const REGS: [Reg; 17] = [
    // GICD_CTLR: the enable bits.
    Reg {
        start: 0x000,
        end: 0x003,
        bytes: false,
        read: |d, _, _| d.ctlr,
        write: |d, _, _, v| {
            d.ctlr = v & 0b11;
            d.all()
        },
    },
    // GICD_TYPER: lines and CPUs.
    Reg {
        start: 0x004,
        end: 0x007,
        bytes: false,
        read: |d, _, _| (d.lines / 32 - 1) | ((d.vcpus as u32 - 1) << 5),
        write: wi,
    },
    // GICD_IIDR: a GIC-400.
    Reg {
        start: 0x008,
        end: 0x00b,
        bytes: false,
        read: |_, _, _| IIDR,
        write: wi,
    },
    // GICD_IGROUPRn.
    Reg {
        start: 0x080,
        end: 0x0ff,
        bytes: false,
        read: |d, v, off| d.bits(v, word(off), |i| i.group1),
        write: |d, v, off, val| {
            let n = word(off);
            let mut dirty = 0;
            for b in 0..32 {
                let intid = n * 32 + b;
                let reach = d.reach(v, intid);
                if let Some(i) = d.irq_mut(v, intid) {
                    i.group1 = val & (1 << b) != 0;
                    dirty |= reach;
                }
            }
            dirty
        },
    },
    // GICD_ISENABLERn.
    Reg {
        start: 0x100,
        end: 0x17f,
        bytes: false,
        read: |d, v, off| d.bits(v, word(off), |i| i.enabled),
        write: |d, v, off, val| d.set_bits(v, word(off), val, |i, _| i.enabled = true),
    },
    // GICD_ICENABLERn.
    Reg {
        start: 0x180,
        end: 0x1ff,
        bytes: false,
        read: |d, v, off| d.bits(v, word(off), |i| i.enabled),
        write: |d, v, off, val| d.set_bits(v, word(off), val, |i, _| i.enabled = false),
    },
    // GICD_ISPENDRn (SGIs are made pending through SPENDSGIR instead).
    Reg {
        start: 0x200,
        end: 0x27f,
        bytes: false,
        read: |d, v, off| d.bits(v, word(off), |i| i.is_pending()),
        write: |d, v, off, val| d.set_bits(v, word(off), val, |i, id| i.pending |= id >= 16),
    },
    // GICD_ICPENDRn.
    Reg {
        start: 0x280,
        end: 0x2ff,
        bytes: false,
        read: |d, v, off| d.bits(v, word(off), |i| i.is_pending()),
        write: |d, v, off, val| {
            let n = word(off);
            (0..32)
                .filter(|b| val & (1 << b) != 0)
                .fold(0, |dirty, b| dirty | d.clear_pending(v, n * 32 + b))
        },
    },
    // GICD_ISACTIVERn.
    Reg {
        start: 0x300,
        end: 0x37f,
        bytes: false,
        read: |d, v, off| d.bits(v, word(off), |i| i.active),
        write: |d, v, off, val| d.set_bits(v, word(off), val, |i, _| i.active = true),
    },
    // GICD_ICACTIVERn.
    Reg {
        start: 0x380,
        end: 0x3ff,
        bytes: false,
        read: |d, v, off| d.bits(v, word(off), |i| i.active),
        write: |d, v, off, val| d.set_bits(v, word(off), val, |i, _| i.active = false),
    },
    // GICD_IPRIORITYRn, one byte per interrupt (the last word, 0x7fc,
    // is reserved).
    Reg {
        start: 0x400,
        end: 0x7fb,
        bytes: true,
        read: |d, v, off| d.irq(v, off - 0x400).map_or(0, |i| i.priority) as u32,
        write: |d, v, off, b| {
            let intid = off - 0x400;
            let reach = d.reach(v, intid);
            match d.irq_mut(v, intid) {
                Some(i) => {
                    i.priority = b as u8 & PRIORITY_MASK;
                    reach
                }
                None => 0,
            }
        },
    },
    // GICD_ITARGETSRn, one byte per interrupt; SGIs' and PPIs' read-only.
    Reg {
        start: 0x800,
        end: 0xbfb,
        bytes: true,
        read: |d, v, off| d.target_byte(v, off - 0x800) as u32,
        write: |d, v, off, b| {
            let intid = off - 0x800;
            if intid < 32 {
                return 0;
            }
            let all = d.all();
            let old = d.reach(v, intid);
            match d.irq_mut(v, intid) {
                Some(i) => {
                    i.targets = b as u8 & all;
                    old | (b as u8 & all)
                }
                None => 0,
            }
        },
    },
    // GICD_ICFGRn: two bits per interrupt, bit 1 = edge. SGIs are always
    // edge and read-only; hardware-linked lines keep their trigger.
    Reg {
        start: 0xc00,
        end: 0xcff,
        bytes: false,
        read: |d, v, off| {
            let first = (off - 0xc00) * 4; // 16 INTIDs per word
            (0..16).fold(0, |a, k| {
                let edge = d.irq(v, first + k).is_some_and(|i| i.edge);
                a | ((edge as u32) << (2 * k + 1))
            })
        },
        write: |d, v, off, val| {
            let first = (off - 0xc00) * 4;
            let mut dirty = 0;
            for k in 0..16 {
                let intid = first + k;
                if intid < 16 {
                    continue;
                }
                let reach = d.reach(v, intid);
                match d.irq_mut(v, intid) {
                    Some(i) if !i.hw => {
                        i.edge = val & (1 << (2 * k + 1)) != 0;
                        dirty |= reach;
                    }
                    _ => {}
                }
            }
            dirty
        },
    },
    // GICD_SGIR: write-only.
    Reg {
        start: 0xf00,
        end: 0xf03,
        bytes: false,
        read: raz,
        write: |d, v, _, val| d.sgir(v, val),
    },
    // GICD_CPENDSGIRn: one byte per SGI, a bit per source.
    Reg {
        start: 0xf10,
        end: 0xf1f,
        bytes: true,
        read: |d, v, off| d.sgi_sources(v, off & 0xf) as u32,
        write: |d, v, off, b| {
            let sgi = (off & 0xf) as usize;
            let s = &mut d.sgi_sources[v][sgi];
            *s &= !(b as u8);
            if *s == 0 {
                d.private[v][sgi].pending = false;
            }
            1 << v
        },
    },
    // GICD_SPENDSGIRn.
    Reg {
        start: 0xf20,
        end: 0xf2f,
        bytes: true,
        read: |d, v, off| d.sgi_sources(v, off & 0xf) as u32,
        write: |d, v, off, b| {
            let sgi = (off & 0xf) as usize;
            let srcs = b as u8 & d.all();
            if srcs != 0 {
                d.sgi_sources[v][sgi] |= srcs;
                d.private[v][sgi].pending = true;
            }
            1 << v
        },
    },
    // The identification registers (a GIC-400's PIDR/CIDR), read-only.
    Reg {
        start: 0xfd0,
        end: 0xfff,
        bytes: false,
        read: |_, _, off| match off {
            0xfd0 => 0x04,
            0xfe0 => 0x90,
            0xfe4 => 0xb4,
            0xfe8 => 0x2b,
            0xff0 => 0x0d,
            0xff4 => 0xf0,
            0xff8 => 0x05,
            0xffc => 0xb1,
            _ => 0,
        },
        write: wi,
    },
];

/// The register `off` falls in, if any.
fn find(off: u32) -> Option<&'static Reg> {
    let i = REGS.partition_point(|r| r.end < off);
    REGS.get(i).filter(|r| r.start <= off)
}

impl VgicDist {
    /// A guest load of `width` bytes at `offset` from vCPU `vcpu`.
    pub fn read(&self, vcpu: usize, offset: u64, width: u8) -> u32 {
        let off = offset as u32;
        let Some(r) = find(off) else {
            return 0;
        };
        match (r.bytes, width) {
            (true, 1) => (r.read)(self, vcpu, off),
            (true, 4) if off.is_multiple_of(4) && off + 3 <= r.end => {
                (0..4).fold(0, |a, b| a | ((r.read)(self, vcpu, off + b) << (8 * b)))
            }
            (false, 4) if off.is_multiple_of(4) => (r.read)(self, vcpu, off),
            _ => 0,
        }
    }

    /// A guest store of `width` bytes at `offset` from vCPU `vcpu`;
    /// returns the vCPUs whose deliverable interrupts may have changed.
    pub fn write(&mut self, vcpu: usize, offset: u64, width: u8, value: u32) -> Dirty {
        let off = offset as u32;
        if vcpu >= self.vcpus {
            return 0;
        }
        let Some(r) = find(off) else {
            return 0;
        };
        match (r.bytes, width) {
            (true, 1) => (r.write)(self, vcpu, off, value & 0xff),
            (true, 4) if off.is_multiple_of(4) && off + 3 <= r.end => (0..4).fold(0, |d, b| {
                d | (r.write)(self, vcpu, off + b, (value >> (8 * b)) & 0xff)
            }),
            (false, 4) if off.is_multiple_of(4) => (r.write)(self, vcpu, off, value),
            _ => 0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_is_sorted_disjoint_and_covers_what_the_spec_lists() {
        for w in REGS.windows(2) {
            assert!(
                w[0].end < w[1].start,
                "{:#x} overlaps {:#x}",
                w[0].start,
                w[1].start
            );
        }
        for r in &REGS {
            assert!(r.start <= r.end && r.end < 0x1000);
        }
        for (off, covered) in [
            (0x000, true),
            (0x00c, false),
            (0x07c, false),
            (0x080, true),
            (0x7fb, true),
            (0x7fc, false),
            (0xbfc, false),
            (0xd00, false),
            (0xf04, false),
            (0xf10, true),
            (0xf2f, true),
            (0xf30, false),
            (0xffc, true),
            (0x1000, false),
        ] {
            assert_eq!(find(off).is_some(), covered, "{off:#x}");
        }
    }
}
