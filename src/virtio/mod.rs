//! Paravirtual devices (virtio 1.1+, OASIS): the split virtqueue, the
//! virtio-mmio transport (the "modern" v2 register layout) and the device
//! models behind it. Pure state machines over the VM's RAM
//! ([`GuestRam`]); every address and length a guest writes is checked
//! against that RAM before use, every chain is bounded, and a malformed
//! queue puts the device into DEVICE_NEEDS_RESET instead of faulting.
//!
//! What the hypervisor does with a request (the SD card, the switch) is
//! behind each device's backend trait.

pub mod blk;
pub mod chain;
pub mod irq;
pub mod mmio;
pub mod net;
pub mod netcount;
pub mod offload;
pub mod port;
pub mod queue;
pub mod rxfill;
pub mod stream;

/// The VM's RAM as a virtio device sees it (guest-physical addresses).
pub trait GuestRam {
    /// Whether all of `[ipa, ipa + len)` is the VM's RAM.
    fn contains(&self, ipa: u64, len: u64) -> bool;
    /// Copies RAM at `ipa` into `out`; false (nothing copied) if any of
    /// it is not the VM's RAM.
    fn read(&mut self, ipa: u64, out: &mut [u8]) -> bool;
    /// Copies `data` into RAM at `ipa`; false (nothing written) if any of
    /// it is not the VM's RAM.
    fn write(&mut self, ipa: u64, data: &[u8]) -> bool;
    /// Hands the bytes at `[ipa, ipa + len)` to `f` in order, in pieces
    /// (straight from RAM where the implementation can: a frame between
    /// two VMs is copied once); false if any of it is not the VM's RAM
    /// (checked before `f` sees anything) or `f` returned false.
    fn read_with(&mut self, ipa: u64, len: u64, f: &mut dyn FnMut(&[u8]) -> bool) -> bool {
        if !self.contains(ipa, len) {
            return false;
        }
        let mut buf = [0u8; 256];
        let mut at = 0;
        while at < len {
            let n = (len - at).min(buf.len() as u64) as usize;
            if !self.read(ipa + at, &mut buf[..n]) || !f(&buf[..n]) {
                return false;
            }
            at += n as u64;
        }
        true
    }
    /// Reads the little-endian 16-bit ring field at `ipa` (a ring index,
    /// flags, a ring entry or an event index: always 2-aligned, as
    /// [`queue::Queue::activate`] checked) with one access, so a value
    /// the driver's core is writing at the same moment is seen whole,
    /// old or new (an aligned halfword access is single-copy atomic, ARM
    /// ARM B2.2.1). A byte-wise copy is not: the available index moving
    /// from 0x08ff to 0x0900 could be read as 0x09ff. None outside RAM.
    fn read_u16(&mut self, ipa: u64) -> Option<u16> {
        let mut b = [0u8; 2];
        self.read(ipa, &mut b).then(|| u16::from_le_bytes(b))
    }
    /// Writes the 16-bit ring field at `ipa` with one access (see
    /// [`GuestRam::read_u16`]: a used index written byte by byte could be
    /// read by the driver half old, half new, and it would then take
    /// stale used elements as returned buffers). False outside RAM.
    fn write_u16(&mut self, ipa: u64, v: u16) -> bool {
        self.write(ipa, &v.to_le_bytes())
    }
    /// Orders this side's RAM accesses before it against later ones, as
    /// the driver on another core sees them (a DMB ISH on the target).
    fn fence(&mut self) {}
}

/// Device status bits (virtio 1.1 §2.1).
pub mod status {
    /// The guest noticed the device.
    pub const ACKNOWLEDGE: u32 = 1;
    /// The guest has a driver for it.
    pub const DRIVER: u32 = 2;
    /// The driver is ready.
    pub const DRIVER_OK: u32 = 4;
    /// Feature negotiation is complete.
    pub const FEATURES_OK: u32 = 8;
    /// The device hit an error it cannot recover from without a reset.
    pub const DEVICE_NEEDS_RESET: u32 = 64;
    /// The driver gave up on the device.
    pub const FAILED: u32 = 128;
}

/// Transport-independent feature bits.
pub mod feature {
    /// Indirect descriptors.
    pub const RING_INDIRECT_DESC: u64 = 1 << 28;
    /// used_event / avail_event notification suppression.
    pub const RING_EVENT_IDX: u64 = 1 << 29;
    /// Virtio 1.0 or later ("modern").
    pub const VERSION_1: u64 = 1 << 32;
    /// The device sits behind an IOMMU or needs platform DMA handling:
    /// never offered (rings and buffers stay ordinary cacheable RAM).
    pub const ACCESS_PLATFORM: u64 = 1 << 33;
}

#[cfg(test)]
pub(crate) mod testram;
