//! VMs' disks: a partition of the SD card behind each VM's virtio-blk
//! device ([`crate::virtio::blk`]), the VM's RAM for its virtio devices,
//! and the card shared fairly.
//!
//! Fairness: a backend call moves at most 64 KiB ([`crate::virtio::blk::CHUNK`])
//! under the card's lock, so another VM waits for one bounded transfer at
//! most; and a VM that just had the card lets a waiting VM go first
//! ([`with_card`]), so a VM flooding its queue takes turns with the others
//! instead of re-taking the card ahead of them.

use super::irq;
use super::sd::{self, SdCard};
use super::vm::vm;
use crate::arch::cpu;
use crate::sync::hints;
use crate::virtio::blk::{Backend, IoError};
use crate::virtio::GuestRam;
use crate::vm::config::DiskConfig;
use alloc::boxed::Box;
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

/// VMs waiting for the card (bit per VM index).
static WAITING: AtomicU64 = AtomicU64::new(0);
/// The VM that had the card last (usize::MAX: none).
static LAST: AtomicUsize = AtomicUsize::new(usize::MAX);
/// How long a VM that just had the card steps back for a waiting one.
const POLITE_SPINS: u32 = 10_000;

/// Runs `f` with the card for VM `index`, taking turns with other VMs.
fn with_card<R>(index: usize, f: impl FnOnce(&mut SdCard) -> R) -> Option<R> {
    let card = sd::card()?;
    let bit = 1u64 << (index % 64);
    WAITING.fetch_or(bit, Ordering::AcqRel);
    let mut spins = 0;
    let mut g = loop {
        let mine_last = LAST.load(Ordering::Acquire) == index;
        let others = WAITING.load(Ordering::Acquire) & !bit != 0;
        if mine_last && others && spins < POLITE_SPINS {
            spins += 1;
            crate::sync::relax();
            continue;
        }
        if let Some(g) = card.try_lock() {
            break g;
        }
        crate::sync::relax();
    };
    WAITING.fetch_and(!bit, Ordering::AcqRel);
    LAST.store(index, Ordering::Release);
    Some(f(&mut g))
}

/// A VM's partition of the card: sector numbers from its start, checked
/// against its length again here (the device model checked them first).
pub struct SdPartition {
    index: usize,
    start: u64,
    sectors: u64,
    serial: [u8; 20],
}

impl Backend for SdPartition {
    fn sectors(&self) -> u64 {
        self.sectors
    }

    fn read(&mut self, sector: u64, buf: &mut [u8]) -> Result<(), IoError> {
        let at = self.at(sector, buf.len())?;
        with_card(self.index, |c| c.read(at, buf))
            .ok_or(IoError)?
            .map_err(|e| self.failed("read", at, e))
    }

    fn write(&mut self, sector: u64, buf: &[u8]) -> Result<(), IoError> {
        let at = self.at(sector, buf.len())?;
        with_card(self.index, |c| c.write(at, buf))
            .ok_or(IoError)?
            .map_err(|e| self.failed("write", at, e))
    }

    fn flush(&mut self) -> Result<(), IoError> {
        with_card(self.index, |c| c.flush())
            .ok_or(IoError)?
            .map_err(|e| self.failed("flush", 0, e))
    }

    fn serial(&self) -> [u8; 20] {
        self.serial
    }
}

impl SdPartition {
    /// The card's sector for `sector`, if the whole transfer is inside
    /// the partition.
    fn at(&self, sector: u64, len: usize) -> Result<u64, IoError> {
        let n = (len / 512) as u64;
        let end = sector.checked_add(n).ok_or(IoError)?;
        if !len.is_multiple_of(512) || end > self.sectors {
            return Err(IoError);
        }
        Ok(self.start + sector)
    }

    fn failed(&self, what: &str, at: u64, e: crate::board::sdhci::SdError) -> IoError {
        if let Some(vm) = vm(self.index) {
            vm.warn(format_args!("disk: {what} at card sector {at}: {e}"));
        }
        IoError
    }
}

/// VM `index`'s disk `d`, or why it cannot have it.
pub fn partition(index: usize, d: &DiskConfig) -> Result<Box<dyn Backend>, String> {
    let what = format!("disk = sd:{} (line {})", d.partition, d.line);
    let card = sd::card().ok_or_else(|| format!("{what}: no SD card was found"))?;
    let c = card.lock();
    let Some(p) = c.partitions.iter().find(|p| p.number == d.partition) else {
        let have: Vec<String> = c
            .partitions
            .iter()
            .map(|p| format!("{}", p.number))
            .collect();
        return Err(if have.is_empty() {
            format!("{what}: the card has no usable partition table")
        } else {
            format!(
                "{what}: the card has no partition {} (it has {})",
                d.partition,
                have.join(", ")
            )
        });
    };
    let mut serial = [0u8; 20];
    let id = format!("pivisor-sd{}-vm{index}", d.partition);
    let n = id.len().min(20);
    serial[..n].copy_from_slice(&id.as_bytes()[..n]);
    Ok(Box::new(SdPartition {
        index,
        start: p.start,
        sectors: p.sectors,
        serial,
    }))
}

/// VM `index`'s RAM as its virtio devices see it.
pub struct VmRam(pub usize);

impl GuestRam for VmRam {
    fn contains(&self, ipa: u64, len: u64) -> bool {
        vm(self.0).is_some_and(|v| v.ram.contains(ipa, len))
    }
    fn read(&mut self, ipa: u64, out: &mut [u8]) -> bool {
        vm(self.0).is_some_and(|v| v.read_ram_cached(ipa, out))
    }
    fn write(&mut self, ipa: u64, data: &[u8]) -> bool {
        vm(self.0).is_some_and(|v| v.write_ram_cached(ipa, data))
    }
    fn read_u16(&mut self, ipa: u64) -> Option<u16> {
        vm(self.0).and_then(|v| v.read_u16_cached(ipa))
    }
    fn write_u16(&mut self, ipa: u64, v: u16) -> bool {
        vm(self.0).is_some_and(|vm| vm.write_u16_cached(ipa, v))
    }
    fn read_with(&mut self, ipa: u64, len: u64, f: &mut dyn FnMut(&[u8]) -> bool) -> bool {
        let Some(v) = vm(self.0) else {
            return false;
        };
        let Some(pieces) = v.ram.host_pieces(ipa, len) else {
            return false;
        };
        for (pa, n) in pieces {
            // SAFETY: VM RAM, identity-mapped, inside the VM (checked);
            // read through the cacheable map, as the guest's rings and
            // buffers are (no ACCESS_PLATFORM).
            let s = unsafe { core::slice::from_raw_parts(pa as *const u8, n as usize) };
            if !f(s) {
                return false;
            }
        }
        true
    }
    fn fence(&mut self) {
        hints::memory_fence();
    }
}

/// A virtio device of VM `index` has work left: poll it on this core's
/// next exit (an SGI to itself makes one right after the guest resumes).
pub fn more(index: usize) {
    if let Some(v) = vm(index) {
        v.io_pending.store(true, Ordering::Release);
        irq::kick(cpu::core_index());
    }
}

/// On the way back to the guest: serve what the VM's virtio devices left.
#[inline]
pub fn poll(v: &super::vm::Vm) {
    if !v.io_pending.load(Ordering::Relaxed) || !v.io_pending.swap(false, Ordering::AcqRel) {
        return;
    }
    if let Some(b) = &v.blk {
        b.lock().poll();
    }
    if let Some(n) = &v.net {
        n.lock().poll();
    }
}
