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

/// The registers: each entry an offset range (first to last byte), its
/// access (`word`: 32-bit only; `bytes`: byte-accessible, a word being
/// its four bytes), and what a read and a write at an offset in it do.
/// The macro turns the table into the two `match`es a hand-written
/// emulation would have (bytes, then aligned words), so a trapped access
/// costs the same.
macro_rules! registers {
    ($($start:literal ..= $end:literal, $kind:ident { read: $read:expr, write: $write:expr $(,)? })*) => {
        /// The table's ranges and whether each is byte-accessible.
        #[cfg(test)]
        const RANGES: &[(u32, u32, bool)] = &[$(($start, $end, registers!(@bytes $kind))),*];

        fn read_reg(d: &VgicDist, vcpu: usize, off: u32, width: u8) -> u32 {
            if width == 1 {
                return match off {
                    $($start..=$end if registers!(@bytes $kind) => rd($read)(d, vcpu, off),)*
                    _ => 0,
                };
            }
            if width != 4 || !off.is_multiple_of(4) {
                return 0;
            }
            match off {
                $($start..=$end => registers!(@word_read $kind, d, vcpu, off, $end, $read),)*
                _ => 0,
            }
        }

        fn write_reg(d: &mut VgicDist, vcpu: usize, off: u32, width: u8, value: u32) -> Dirty {
            if width == 1 {
                return match off {
                    $($start..=$end if registers!(@bytes $kind) => wr($write)(d, vcpu, off, value & 0xff),)*
                    _ => 0,
                };
            }
            if width != 4 || !off.is_multiple_of(4) {
                return 0;
            }
            match off {
                $($start..=$end => registers!(@word_write $kind, d, vcpu, off, value, $end, $write),)*
                _ => 0,
            }
        }
    };
    (@bytes bytes) => { true };
    (@bytes word) => { false };
    // A word of a byte-accessible register: its four bytes, if all four
    // are in the register.
    (@word_read bytes, $d:ident, $v:ident, $off:ident, $end:literal, $f:expr) => {
        if $off + 3 <= $end {
            (0..4).fold(0, |a, b| a | (rd($f)($d, $v, $off + b) << (8 * b)))
        } else {
            0
        }
    };
    (@word_read word, $d:ident, $v:ident, $off:ident, $end:literal, $f:expr) => {
        rd($f)($d, $v, $off)
    };
    (@word_write bytes, $d:ident, $v:ident, $off:ident, $val:ident, $end:literal, $f:expr) => {
        if $off + 3 <= $end {
            (0..4).fold(0, |dirty, b| dirty | wr($f)($d, $v, $off + b, ($val >> (8 * b)) & 0xff))
        } else {
            0
        }
    };
    (@word_write word, $d:ident, $v:ident, $off:ident, $val:ident, $end:literal, $f:expr) => {
        wr($f)($d, $v, $off, $val)
    };
}

/// A read handler as the table writes it (the signature, for inference).
#[inline(always)]
fn rd<F: Fn(&VgicDist, usize, u32) -> u32>(f: F) -> F {
    f
}

/// A write handler as the table writes it.
#[inline(always)]
fn wr<F: Fn(&mut VgicDist, usize, u32, u32) -> Dirty>(f: F) -> F {
    f
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

// Sorted by offset; ranges never overlap (checked below).
registers! {
    // GICD_CTLR: the enable bits.
    0x000..=0x003, word {
        read: |d, _, _| d.ctlr,
        write: |d, _, _, v| {
            d.ctlr = v & 0b11;
            d.all()
        },
    }
    // GICD_TYPER: lines and CPUs.
    0x004..=0x007, word {
        read: |d, _, _| (d.lines / 32 - 1) | ((d.vcpus as u32 - 1) << 5),
        write: wi,
    }
    // GICD_IIDR: a GIC-400.
    0x008..=0x00b, word {
        read: |_, _, _| IIDR,
        write: wi,
    }
    // GICD_IGROUPRn.
    0x080..=0x0ff, word {
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
    }
    // GICD_ISENABLERn.
    0x100..=0x17f, word {
        read: |d, v, off| d.bits(v, word(off), |i| i.enabled),
        write: |d, v, off, val| d.set_bits(v, word(off), val, |i, _| i.enabled = true),
    }
    // GICD_ICENABLERn.
    0x180..=0x1ff, word {
        read: |d, v, off| d.bits(v, word(off), |i| i.enabled),
        write: |d, v, off, val| d.set_bits(v, word(off), val, |i, _| i.enabled = false),
    }
    // GICD_ISPENDRn (SGIs are made pending through SPENDSGIR instead).
    0x200..=0x27f, word {
        read: |d, v, off| d.bits(v, word(off), |i| i.is_pending()),
        write: |d, v, off, val| d.set_bits(v, word(off), val, |i, id| i.pending |= id >= 16),
    }
    // GICD_ICPENDRn.
    0x280..=0x2ff, word {
        read: |d, v, off| d.bits(v, word(off), |i| i.is_pending()),
        write: |d, v, off, val| {
            let n = word(off);
            (0..32)
                .filter(|b| val & (1 << b) != 0)
                .fold(0, |dirty, b| dirty | d.clear_pending(v, n * 32 + b))
        },
    }
    // GICD_ISACTIVERn.
    0x300..=0x37f, word {
        read: |d, v, off| d.bits(v, word(off), |i| i.active),
        write: |d, v, off, val| d.set_bits(v, word(off), val, |i, _| i.active = true),
    }
    // GICD_ICACTIVERn.
    0x380..=0x3ff, word {
        read: |d, v, off| d.bits(v, word(off), |i| i.active),
        write: |d, v, off, val| d.set_bits(v, word(off), val, |i, _| i.active = false),
    }
    // GICD_IPRIORITYRn, one byte per interrupt (the last word, 0x7fc,
    // is reserved).
    0x400..=0x7fb, bytes {
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
    }
    // GICD_ITARGETSRn, one byte per interrupt; SGIs' and PPIs' read-only.
    0x800..=0xbfb, bytes {
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
    }
    // GICD_ICFGRn: two bits per interrupt, bit 1 = edge. SGIs are always
    // edge and read-only; hardware-linked lines keep their trigger.
    0xc00..=0xcff, word {
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
    }
    // GICD_SGIR: write-only.
    0xf00..=0xf03, word {
        read: raz,
        write: |d, v, _, val| d.sgir(v, val),
    }
    // GICD_CPENDSGIRn: one byte per SGI, a bit per source.
    0xf10..=0xf1f, bytes {
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
    }
    // GICD_SPENDSGIRn.
    0xf20..=0xf2f, bytes {
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
    }
    // The identification registers (a GIC-400's PIDR/CIDR), read-only.
    0xfd0..=0xfff, word {
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
    }
}

impl VgicDist {
    /// A guest load of `width` bytes at `offset` from vCPU `vcpu`.
    pub fn read(&self, vcpu: usize, offset: u64, width: u8) -> u32 {
        read_reg(self, vcpu, offset as u32, width)
    }

    /// A guest store of `width` bytes at `offset` from vCPU `vcpu`;
    /// returns the vCPUs whose deliverable interrupts may have changed.
    pub fn write(&mut self, vcpu: usize, offset: u64, width: u8, value: u32) -> Dirty {
        if vcpu >= self.vcpus {
            return 0;
        }
        write_reg(self, vcpu, offset as u32, width, value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn find(off: u32) -> Option<(u32, u32, bool)> {
        RANGES.iter().copied().find(|r| (r.0..=r.1).contains(&off))
    }

    #[test]
    fn the_table_is_sorted_disjoint_and_covers_what_the_spec_lists() {
        for w in RANGES.windows(2) {
            assert!(w[0].1 < w[1].0, "{:#x} overlaps {:#x}", w[0].0, w[1].0);
        }
        for r in RANGES {
            assert!(r.0 <= r.1 && r.1 < 0x1000);
        }
        assert_eq!(
            RANGES.iter().filter(|r| r.2).count(),
            4,
            "four byte-accessible registers"
        );
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
