//! The exit-counter page: a read-only register block through which a
//! guest, including a Linux program through /dev/mem, reads how often its
//! vCPUs left the guest (device tree compatible "pivisor,exit-counters";
//! configuration `devices = counters`). The benchmarks read it around
//! each measurement. Every read is itself one exit, counted before the
//! value is taken: a read returns a count that includes itself.
//!
//! | offset                   | width | register                               |
//! |--------------------------|-------|----------------------------------------|
//! | 0x000                    | 4     | ID, 0x70766563 ("pvec")                |
//! | 0x004                    | 4     | VERSION, 1                             |
//! | 0x008                    | 4     | VCPUS, the VM's vCPU count             |
//! | 0x00c                    | 4     | KINDS, exit kinds ([`EXIT_KINDS`])     |
//! | 0x100 + 8k               | 8, 4  | the VM's exits: k = 0 all, 1 + a kind  |
//! | 0x200 + 0x80v + 8k       | 8, 4  | vCPU v's exits, the same selectors     |
//!
//! Counters are 64-bit; a 4-byte read at +0 or +4 gives the low or high
//! half. Kinds follow [`crate::trap::ExitKind`]. Everything else reads as
//! an error (the guest gets an external abort), and every write does.

use crate::devices::bus::{MmioDevice, MmioError};
use crate::trap::stats::EXIT_KINDS;
use alloc::boxed::Box;

/// The ID register's value.
pub const ID: u32 = 0x7076_6563;
/// The register block's size.
pub const SIZE: u64 = 0x1000;
/// The most vCPUs the page describes (one 0x80 block each up to 0x1000).
pub const MAX_VCPUS: usize = 28;

/// A count: (None for the whole VM or Some(vCPU), selector 0 for all
/// exits or 1 + a kind).
pub type CountSource = Box<dyn Fn(Option<usize>, u64) -> u64 + Send>;

/// What a register offset names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reg {
    /// ID, VERSION, VCPUS or KINDS (by offset).
    Info(u32),
    /// A counter: whole VM or one vCPU, selector, and which half (None:
    /// the whole 64 bits).
    Count {
        /// None: the VM; Some(v): vCPU v.
        vcpu: Option<usize>,
        /// 0 for all exits, 1 + a kind.
        which: u64,
        /// For 4-byte reads: false low half, true high half.
        half: Option<bool>,
    },
}

/// Decodes a load of `width` bytes at `offset` for a VM of `vcpus`.
pub fn decode(offset: u64, width: u8, vcpus: usize) -> Result<Reg, MmioError> {
    let vcpus = vcpus.min(MAX_VCPUS);
    if offset < 0x10 {
        if width != 4 {
            return Err(MmioError::BadWidth);
        }
        if !offset.is_multiple_of(4) {
            return Err(MmioError::BadOffset);
        }
        return Ok(Reg::Info(offset as u32));
    }
    let (vcpu, rel) = match offset {
        0x100..=0x1ff => (None, offset - 0x100),
        0x200..=0xfff => {
            let v = ((offset - 0x200) / 0x80) as usize;
            if v >= vcpus {
                return Err(MmioError::BadOffset);
            }
            (Some(v), (offset - 0x200) % 0x80)
        }
        _ => return Err(MmioError::BadOffset),
    };
    let which = rel / 8;
    if which > EXIT_KINDS as u64 {
        return Err(MmioError::BadOffset);
    }
    let half = match (width, rel % 8) {
        (8, 0) => None,
        (4, 0) => Some(false),
        (4, 4) => Some(true),
        (8 | 4, _) => return Err(MmioError::BadOffset),
        _ => return Err(MmioError::BadWidth),
    };
    Ok(Reg::Count { vcpu, which, half })
}

/// The device: the VM's vCPU count and where counts come from.
pub struct ExitCounters {
    vcpus: usize,
    source: CountSource,
}

impl ExitCounters {
    /// A page for a VM of `vcpus`, reading counts through `source`.
    pub fn new(vcpus: usize, source: CountSource) -> Self {
        Self { vcpus, source }
    }
}

impl MmioDevice for ExitCounters {
    fn name(&self) -> &str {
        "exit counters"
    }

    fn read(&mut self, offset: u64, width: u8) -> Result<u64, MmioError> {
        Ok(match decode(offset, width, self.vcpus)? {
            Reg::Info(0x0) => ID as u64,
            Reg::Info(0x4) => 1,
            Reg::Info(0x8) => self.vcpus.min(MAX_VCPUS) as u64,
            Reg::Info(_) => EXIT_KINDS as u64,
            Reg::Count { vcpu, which, half } => {
                let n = (self.source)(vcpu, which);
                match half {
                    None => n,
                    Some(false) => n & 0xffff_ffff,
                    Some(true) => n >> 32,
                }
            }
        })
    }

    fn write(&mut self, _offset: u64, _width: u8, _value: u64) -> Result<(), MmioError> {
        Err(MmioError::BadDirection)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn page(vcpus: usize) -> ExitCounters {
        // Counts that show where they came from: vCPU * 1000 + selector,
        // the VM's 1 << 40 + selector (above 32 bits, for the halves).
        ExitCounters::new(
            vcpus,
            Box::new(|v, which| match v {
                None => (1 << 40) + which,
                Some(v) => v as u64 * 1000 + which,
            }),
        )
    }

    #[test]
    fn registers() {
        let mut p = page(4);
        assert_eq!(p.read(0, 4), Ok(ID as u64));
        assert_eq!(p.read(4, 4), Ok(1));
        assert_eq!(p.read(8, 4), Ok(4));
        assert_eq!(p.read(0xc, 4), Ok(EXIT_KINDS as u64));
        assert_eq!(p.read(0x100, 8), Ok(1 << 40));
        assert_eq!(p.read(0x108, 8), Ok((1 << 40) + 1));
        assert_eq!(p.read(0x100, 4), Ok(0));
        assert_eq!(p.read(0x104, 4), Ok(1 << 8));
        assert_eq!(p.read(0x200, 8), Ok(0));
        assert_eq!(p.read(0x200 + 3 * 0x80 + 8 * 8, 8), Ok(3008));
    }

    #[test]
    fn hostile_accesses_are_refused() {
        let mut p = page(2);
        // Writes anywhere.
        for off in [0, 0x100, 0x200, 0xff8] {
            assert_eq!(p.write(off, 8, 1), Err(MmioError::BadDirection));
        }
        // Widths and alignments the registers do not have.
        assert_eq!(p.read(0, 8), Err(MmioError::BadWidth));
        assert_eq!(p.read(0, 1), Err(MmioError::BadWidth));
        assert_eq!(p.read(2, 4), Err(MmioError::BadOffset));
        assert_eq!(p.read(0x100, 2), Err(MmioError::BadWidth));
        assert_eq!(p.read(0x102, 4), Err(MmioError::BadOffset));
        assert_eq!(p.read(0x104, 8), Err(MmioError::BadOffset));
        // Past the last selector, a vCPU the VM does not have, the gaps.
        assert_eq!(
            p.read(0x100 + 8 * (EXIT_KINDS as u64 + 1), 8),
            Err(MmioError::BadOffset)
        );
        assert_eq!(p.read(0x200 + 2 * 0x80, 8), Err(MmioError::BadOffset));
        assert_eq!(p.read(0x10, 4), Err(MmioError::BadOffset));
        assert_eq!(p.read(0x1000, 8), Err(MmioError::BadOffset));
        assert_eq!(p.read(u64::MAX - 7, 8), Err(MmioError::BadOffset));
        // More vCPUs than the page has room for: the page stops at 28.
        let mut big = page(64);
        assert_eq!(big.read(8, 4), Ok(MAX_VCPUS as u64));
        assert!(big.read(0x200 + 27 * 0x80, 8).is_ok());
        assert_eq!(big.read(0x200 + 28 * 0x80, 8), Err(MmioError::BadOffset));
    }
}
