//! A split virtqueue from the device's side (virtio 1.1 §2.6): the driver
//! (the guest) owns the descriptor table and the available ring, the
//! device (the hypervisor) the used ring. Everything read from the guest
//! is checked before use:
//!
//! - the rings' addresses, alignment and size when the queue is made
//!   ready ([`Queue::activate`]): wholly inside the VM's RAM;
//! - the available index: never more than the queue size ahead of what
//!   the device has taken;
//! - every descriptor index, and every chain's length: at most the queue
//!   size (a loop of `next` pointers is an error, not a hang), an
//!   indirect table at most [`MAX_INDIRECT`] entries, never nested, never
//!   with NEXT beside INDIRECT;
//! - every buffer: wholly inside the VM's RAM, and the chain's total
//!   length within `u32`.
//!
//! Any violation is a [`QueueError`]: the device model puts itself into
//! DEVICE_NEEDS_RESET. Memory ordering follows the spec's driver/device
//! protocol: the device fences after reading the available index and
//! before reading what it covers, and between writing a used element and
//! publishing the used index, and before reading the driver's
//! suppression fields after publishing ([`GuestRam::fence`]).
//!
//! Notification suppression: without RING_EVENT_IDX the driver's
//! NO_INTERRUPT flag; with it, used_event and avail_event.

use super::chain::walk;
pub use super::chain::{flags, Buf, Chain, QueueError, MAX_INDIRECT};
use super::GuestRam;
use alloc::vec::Vec;

/// The available ring's flag: the driver wants no interrupts.
pub const AVAIL_F_NO_INTERRUPT: u16 = 1;

/// A 16-bit ring field, read with one access ([`GuestRam::read_u16`]).
fn r16(mem: &mut (impl GuestRam + ?Sized), at: u64) -> Option<u16> {
    mem.read_u16(at)
}

/// A queue's configuration and the device's position in it.
#[derive(Debug, Clone, Default)]
pub struct Queue {
    /// Entries (a power of two up to the device's maximum).
    pub size: u16,
    /// The driver made it ready and its rings checked out.
    pub ready: bool,
    /// The descriptor table's address.
    pub desc: u64,
    /// The available (driver) ring's address.
    pub avail: u64,
    /// The used (device) ring's address.
    pub used: u64,
    /// RING_EVENT_IDX was negotiated.
    pub event_idx: bool,
    /// Next available-ring entry to take.
    next_avail: u16,
    /// Next used-ring entry to fill (also the published used index).
    next_used: u16,
    /// The used index when the driver was last interrupted.
    signalled_used: u16,
}

impl Queue {
    /// A queue of `size` with its rings at these addresses, not ready.
    pub fn with_rings(size: u16, desc: u64, avail: u64, used: u64) -> Self {
        Queue {
            size,
            desc,
            avail,
            used,
            ..Default::default()
        }
    }

    /// Checks the driver's configuration (size at most `max`) against
    /// the VM's RAM and makes the queue ready.
    pub fn activate(&mut self, max: u16, mem: &(impl GuestRam + ?Sized)) -> Result<(), QueueError> {
        let n = u64::from(self.size);
        if self.size == 0 || !self.size.is_power_of_two() || self.size > max {
            return Err(QueueError::BadSize(self.size.into()));
        }
        let extra = if self.event_idx { 2 } else { 0 };
        for (name, at, align, len) in [
            ("descriptor", self.desc, 16, 16 * n),
            ("available", self.avail, 2, 4 + 2 * n + extra),
            ("used", self.used, 4, 4 + 8 * n + extra),
        ] {
            if at % align != 0 {
                return Err(QueueError::Misaligned(name, at));
            }
            if !mem.contains(at, len) {
                return Err(QueueError::RingNotRam(name, at));
            }
        }
        self.next_avail = 0;
        self.next_used = 0;
        self.signalled_used = 0;
        self.ready = true;
        Ok(())
    }

    /// Back to the state after a device reset (not ready, no rings).
    pub fn reset(&mut self) {
        *self = Queue::default();
    }

    /// Chains the driver made available and the device has not taken.
    pub fn pending(&self, mem: &mut (impl GuestRam + ?Sized)) -> Result<u16, QueueError> {
        if !self.ready {
            return Ok(0);
        }
        let idx =
            r16(mem, self.avail + 2).ok_or(QueueError::RingNotRam("available", self.avail))?;
        let n = idx.wrapping_sub(self.next_avail);
        if n > self.size {
            return Err(QueueError::AvailIndex {
                idx,
                next: self.next_avail,
            });
        }
        Ok(n)
    }

    /// Takes the next available chain, if any, every descriptor checked.
    pub fn pop(&mut self, mem: &mut (impl GuestRam + ?Sized)) -> Result<Option<Chain>, QueueError> {
        let mut bufs = Vec::new();
        Ok(self
            .pop_into(mem, &mut bufs)?
            .map(|head| Chain { head, bufs }))
    }

    /// Takes the next available chain, if any, every descriptor checked,
    /// appending its buffers to `bufs` (a caller's reused list: no
    /// allocation per chain); its head.
    pub fn pop_into(
        &mut self,
        mem: &mut (impl GuestRam + ?Sized),
        bufs: &mut Vec<Buf>,
    ) -> Result<Option<u16>, QueueError> {
        if self.pending(mem)? == 0 {
            return Ok(None);
        }
        // The ring entry and the descriptors after the index.
        mem.fence();
        let slot = self.avail + 4 + 2 * u64::from(self.next_avail % self.size);
        let head = r16(mem, slot).ok_or(QueueError::RingNotRam("available", self.avail))?;
        walk(mem, self.desc, self.size, head, bufs)?;
        self.next_avail = self.next_avail.wrapping_add(1);
        Ok(Some(head))
    }

    /// Gives back the last `n` chains taken and not yet returned (the
    /// driver never saw them taken): they are taken again next time.
    pub fn unpop(&mut self, n: u16) {
        self.next_avail = self.next_avail.wrapping_sub(n);
    }

    /// Returns chain `head` to the driver with `len` bytes written.
    pub fn push_used(
        &mut self,
        mem: &mut (impl GuestRam + ?Sized),
        head: u16,
        len: u32,
    ) -> Result<(), QueueError> {
        self.stage_used(mem, head, len)?;
        self.publish_used(mem)
    }

    /// Writes the used element for chain `head` without publishing it:
    /// [`Queue::publish_used`] makes every staged element visible at
    /// once (a frame spread over several receive buffers).
    pub fn stage_used(
        &mut self,
        mem: &mut (impl GuestRam + ?Sized),
        head: u16,
        len: u32,
    ) -> Result<(), QueueError> {
        let slot = self.used + 4 + 8 * u64::from(self.next_used % self.size);
        let mut e = [0u8; 8];
        e[..4].copy_from_slice(&u32::from(head).to_le_bytes());
        e[4..].copy_from_slice(&len.to_le_bytes());
        if !mem.write(slot, &e) {
            return Err(QueueError::RingNotRam("used", self.used));
        }
        self.next_used = self.next_used.wrapping_add(1);
        Ok(())
    }

    /// Publishes the staged used elements (the used index).
    pub fn publish_used(&mut self, mem: &mut (impl GuestRam + ?Sized)) -> Result<(), QueueError> {
        // The elements before the index that publishes them.
        mem.fence();
        if !mem.write_u16(self.used + 2, self.next_used) {
            return Err(QueueError::RingNotRam("used", self.used));
        }
        Ok(())
    }

    /// After returning chains: whether the driver wants an interrupt for
    /// them (its NO_INTERRUPT flag, or with EVENT_IDX its used_event).
    pub fn should_interrupt(&mut self, mem: &mut (impl GuestRam + ?Sized)) -> bool {
        if self.next_used == self.signalled_used {
            return false;
        }
        // The published index before the driver's suppression fields.
        mem.fence();
        let want = if self.event_idx {
            let at = self.avail + 4 + 2 * u64::from(self.size);
            match r16(mem, at) {
                Some(ev) => {
                    let (new, old) = (self.next_used, self.signalled_used);
                    new.wrapping_sub(ev).wrapping_sub(1) < new.wrapping_sub(old)
                }
                None => true,
            }
        } else {
            r16(mem, self.avail).is_none_or(|f| f & AVAIL_F_NO_INTERRUPT == 0)
        };
        self.signalled_used = self.next_used;
        want
    }

    /// With EVENT_IDX: asks the driver to notify once it makes more than
    /// what the device has taken available (avail_event). Call when the
    /// queue has been drained, then check [`Queue::pending`] again (a
    /// chain may have come in between).
    pub fn ask_notify(&mut self, mem: &mut (impl GuestRam + ?Sized)) {
        if self.event_idx && self.ready {
            let at = self.used + 4 + 8 * u64::from(self.size);
            let _ = mem.write_u16(at, self.next_avail);
            mem.fence();
        }
    }
}

#[cfg(test)]
#[path = "queue_tests.rs"]
mod tests;
