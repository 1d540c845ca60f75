//! A VM's RAM: the guest-physical banks of [`super::layout`] backed by
//! chunks of host memory, and the checks of guest-given addresses
//! against it. Pure.

use super::layout::{ram_banks, HIGH_RAM_BASE, LOW_RAM_END, MAX_RAM};
use crate::fixedvec::FixedVec;
use crate::mm::stage2::RamChunk;

/// Most host chunks one VM's RAM may be taken from.
pub const MAX_CHUNKS: usize = 8;

/// Which guest-physical ranges are RAM (for checks of guest-given
/// addresses).
pub trait RamMap {
    /// True if all of `[ipa, ipa+len)` is RAM of one bank.
    fn is_ram(&self, ipa: u64, len: u64) -> bool;
}

/// A flat RAM of that many bytes from IPA 0 (pv-vmm's, the tests').
impl RamMap for u64 {
    fn is_ram(&self, ipa: u64, len: u64) -> bool {
        ipa.checked_add(len).is_some_and(|e| e <= *self)
    }
}

impl RamMap for &GuestRam {
    fn is_ram(&self, ipa: u64, len: u64) -> bool {
        self.contains(ipa, len)
    }
}

/// A VM's RAM, laid out like a Pi 4's: IPA `[0, min(size, LOW_RAM_END))`
/// and, for more than that, the rest from [`HIGH_RAM_BASE`]; backed by
/// host chunks ([`MAX_CHUNKS`] at most, one of which may be split in two
/// at the window).
#[derive(Debug, Clone, Copy, Default)]
pub struct GuestRam {
    chunks: FixedVec<RamChunk, { MAX_CHUNKS + 1 }>,
    size: u64,
    /// Identity RAM: one bank at this IPA, which is also its host
    /// address (0 otherwise: the Pi 4 layout from IPA 0).
    base: u64,
    /// Identity RAM (guest-physical == host-physical).
    identity: bool,
}

impl GuestRam {
    /// Empty RAM.
    pub fn new() -> Self {
        Self::default()
    }

    /// Identity RAM: `size` bytes at guest-physical == host-physical
    /// `pa`, one bank wholly below the peripheral window (what a VM
    /// owning a DMA master gets: the addresses its driver programs are
    /// the device's). None if it would not fit there or is empty.
    pub fn identity(pa: u64, size: u64) -> Option<Self> {
        if size == 0 || pa.checked_add(size)? > LOW_RAM_END {
            return None;
        }
        let mut r = Self::default();
        let _ = r.chunks.push(RamChunk { ipa: pa, pa, size });
        r.size = size;
        r.base = pa;
        r.identity = true;
        Some(r)
    }

    /// Where the RAM starts (0, or identity RAM's host address).
    pub fn base(&self) -> u64 {
        self.base
    }

    /// Whether it is identity RAM (guest-physical == host-physical).
    pub fn is_identity(&self) -> bool {
        self.identity
    }

    /// The IPA the next byte of RAM goes to.
    fn next_ipa(&self) -> u64 {
        if self.size < LOW_RAM_END {
            self.size
        } else {
            HIGH_RAM_BASE + (self.size - LOW_RAM_END)
        }
    }

    /// Appends a host chunk of `size` bytes at `pa`; it becomes the next
    /// guest RAM, split in two if it reaches the peripheral window.
    /// Returns false (and changes nothing) if the table of chunks is full
    /// or the RAM would pass [`MAX_RAM`].
    pub fn push(&mut self, pa: u64, size: u64) -> bool {
        if self.identity {
            return false;
        }
        let Some(total) = self.size.checked_add(size).filter(|&t| t <= MAX_RAM) else {
            return false;
        };
        let low = if self.size < LOW_RAM_END {
            size.min(LOW_RAM_END - self.size)
        } else {
            0
        };
        let parts = [(pa, low), (pa + low, size - low)];
        let n = parts.iter().filter(|p| p.1 > 0).count();
        if self.chunks.len() + n > MAX_CHUNKS + 1 {
            return false;
        }
        for (p, len) in parts {
            if len > 0 {
                let c = RamChunk {
                    ipa: self.next_ipa(),
                    pa: p,
                    size: len,
                };
                let _ = self.chunks.push(c);
                self.size += len;
            }
        }
        debug_assert_eq!(self.size, total);
        true
    }

    /// Bytes of RAM.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Bytes of RAM below the peripheral window (from IPA [`Self::base`]):
    /// where the kernel, initrd and device tree go, and what the
    /// firmware's GET_ARM_MEMORY reports.
    pub fn low_size(&self) -> u64 {
        self.size.min(LOW_RAM_END)
    }

    /// The guest-physical RAM ranges `(ipa, size)` ([`ram_banks`], or
    /// identity RAM's one bank).
    pub fn banks(&self) -> impl Iterator<Item = (u64, u64)> {
        let identity = self.identity.then_some((self.base, self.size));
        let layout = (!self.identity).then(|| ram_banks(self.size));
        identity.into_iter().chain(layout.into_iter().flatten())
    }

    /// The chunks, in IPA order.
    pub fn chunks(&self) -> &[RamChunk] {
        &self.chunks
    }

    /// True if `[ipa, ipa+len)` is inside one bank of RAM (a range across
    /// the peripheral window is not).
    pub fn contains(&self, ipa: u64, len: u64) -> bool {
        let Some(end) = ipa.checked_add(len) else {
            return false;
        };
        self.banks().any(|(b, n)| ipa >= b && end <= b + n)
    }

    /// True if any byte of `[ipa, ipa+len)` is RAM.
    pub fn overlaps(&self, ipa: u64, len: u64) -> bool {
        let end = ipa.saturating_add(len);
        self.banks().any(|(b, n)| ipa < b + n && b < end)
    }

    /// The host address of `ipa` and how many bytes from there are
    /// contiguous in host memory, or None outside RAM.
    pub fn host(&self, ipa: u64) -> Option<(u64, u64)> {
        self.chunks
            .iter()
            .find(|c| ipa >= c.ipa && ipa - c.ipa < c.size)
            .map(|c| (c.pa + (ipa - c.ipa), c.size - (ipa - c.ipa)))
    }

    /// Splits `[ipa, ipa+len)` into host-contiguous pieces `(pa, len)`;
    /// None if any of it is outside RAM.
    pub fn host_pieces(&self, ipa: u64, len: u64) -> Option<impl Iterator<Item = (u64, u64)> + '_> {
        if !self.contains(ipa, len) {
            return None;
        }
        let mut at = ipa;
        let end = ipa + len;
        Some(core::iter::from_fn(move || {
            if at >= end {
                return None;
            }
            let (pa, avail) = self.host(at)?;
            let n = avail.min(end - at);
            at += n;
            Some((pa, n))
        }))
    }
}

#[cfg(test)]
#[path = "ram_tests.rs"]
mod tests;
