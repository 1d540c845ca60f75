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

use super::GuestRam;
use alloc::vec::Vec;
use core::fmt;

/// Descriptor flags.
pub mod flags {
    /// The chain continues at `next`.
    pub const NEXT: u16 = 1;
    /// The device writes this buffer (else reads it).
    pub const WRITE: u16 = 2;
    /// The buffer is a table of descriptors.
    pub const INDIRECT: u16 = 4;
}

/// The available ring's flag: the driver wants no interrupts.
pub const AVAIL_F_NO_INTERRUPT: u16 = 1;
/// The most descriptors in one indirect table.
pub const MAX_INDIRECT: u32 = 256;

/// One buffer of a chain: guest-physical, checked to be the VM's RAM.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Buf {
    /// Guest-physical address.
    pub addr: u64,
    /// Length in bytes.
    pub len: u32,
    /// The device writes it (else it only reads it).
    pub writable: bool,
}

/// A descriptor chain taken from the available ring.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chain {
    /// Its head's index (what the used element names).
    pub head: u16,
    /// Its buffers in order (at most the queue size, or
    /// [`MAX_INDIRECT`] through an indirect table).
    pub bufs: Vec<Buf>,
}

impl Chain {
    /// Bytes the device may write.
    pub fn writable_len(&self) -> u64 {
        self.bufs
            .iter()
            .filter(|b| b.writable)
            .map(|b| u64::from(b.len))
            .sum()
    }
}

/// What was wrong with a guest's queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QueueError {
    /// Queue size zero, not a power of two, or above the maximum.
    BadSize(u32),
    /// A ring not aligned as the spec requires.
    Misaligned(&'static str, u64),
    /// A ring not wholly in the VM's RAM.
    RingNotRam(&'static str, u64),
    /// The available index ran more than a queue's worth ahead.
    AvailIndex {
        /// The driver's index.
        idx: u16,
        /// The device's next one.
        next: u16,
    },
    /// A descriptor index past the table.
    IndexOutOfRange(u32),
    /// A chain longer than the table (a loop of `next` pointers).
    ChainTooLong,
    /// An indirect table of a bad length or nested in another.
    BadIndirect(u32),
    /// INDIRECT and NEXT on one descriptor.
    IndirectWithNext,
    /// A buffer not wholly in the VM's RAM.
    BufferNotRam {
        /// Its address.
        addr: u64,
        /// Its length.
        len: u32,
    },
    /// The chain's buffers add up past 4 GiB.
    ChainTooBig,
    /// The chain is not a request the device can answer (no room for
    /// the header or the status, say which).
    BadRequest(&'static str),
}

impl fmt::Display for QueueError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            QueueError::BadSize(n) => {
                write!(f, "queue size {n} is not a power of two within the maximum")
            }
            QueueError::Misaligned(r, a) => write!(f, "{r} ring at {a:#x} is misaligned"),
            QueueError::RingNotRam(r, a) => write!(f, "{r} ring at {a:#x} is not in the VM's RAM"),
            QueueError::AvailIndex { idx, next } => write!(
                f,
                "available index {idx} is more than a queue ahead of {next}"
            ),
            QueueError::IndexOutOfRange(i) => write!(f, "descriptor index {i} is past the table"),
            QueueError::ChainTooLong => {
                f.write_str("descriptor chain longer than its table (a loop?)")
            }
            QueueError::BadIndirect(len) => {
                write!(f, "indirect table of {len} bytes is malformed or nested")
            }
            QueueError::IndirectWithNext => f.write_str("descriptor has both INDIRECT and NEXT"),
            QueueError::BufferNotRam { addr, len } => {
                write!(f, "buffer {addr:#x}+{len:#x} is not in the VM's RAM")
            }
            QueueError::ChainTooBig => f.write_str("descriptor chain adds up past 4 GiB"),
            QueueError::BadRequest(why) => write!(f, "malformed request: {why}"),
        }
    }
}

/// One raw descriptor.
#[derive(Debug, Clone, Copy)]
struct Desc {
    addr: u64,
    len: u32,
    flags: u16,
    next: u16,
}

fn read_desc(mem: &mut (impl GuestRam + ?Sized), at: u64) -> Option<Desc> {
    let mut b = [0u8; 16];
    if !mem.read(at, &mut b) {
        return None;
    }
    Some(Desc {
        addr: u64::from_le_bytes(b[0..8].try_into().ok()?),
        len: u32::from_le_bytes(b[8..12].try_into().ok()?),
        flags: u16::from_le_bytes([b[12], b[13]]),
        next: u16::from_le_bytes([b[14], b[15]]),
    })
}

fn r16(mem: &mut (impl GuestRam + ?Sized), at: u64) -> Option<u16> {
    let mut b = [0u8; 2];
    mem.read(at, &mut b).then(|| u16::from_le_bytes(b))
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
        self.walk(mem, head, bufs)?;
        self.next_avail = self.next_avail.wrapping_add(1);
        Ok(Some(head))
    }

    fn walk(
        &self,
        mem: &mut (impl GuestRam + ?Sized),
        head: u16,
        bufs: &mut Vec<Buf>,
    ) -> Result<(), QueueError> {
        let size = u32::from(self.size);
        let start = bufs.len();
        let mut total: u64 = 0;
        let mut i = u32::from(head);
        // Direct descriptors visited: more than the table holds is a loop.
        let mut steps = 0;
        loop {
            if i >= size {
                return Err(QueueError::IndexOutOfRange(i));
            }
            steps += 1;
            if steps > size {
                return Err(QueueError::ChainTooLong);
            }
            let d = read_desc(mem, self.desc + 16 * u64::from(i))
                .ok_or(QueueError::RingNotRam("descriptor", self.desc))?;
            if d.flags & flags::INDIRECT != 0 {
                if d.flags & flags::NEXT != 0 {
                    return Err(QueueError::IndirectWithNext);
                }
                self.walk_indirect(mem, &d, bufs, start, &mut total)?;
                break;
            }
            push(mem, bufs, &mut total, &d)?;
            if d.flags & flags::NEXT == 0 {
                break;
            }
            i = u32::from(d.next);
        }
        Ok(())
    }

    fn walk_indirect(
        &self,
        mem: &mut (impl GuestRam + ?Sized),
        table: &Desc,
        bufs: &mut Vec<Buf>,
        start: usize,
        total: &mut u64,
    ) -> Result<(), QueueError> {
        let n = table.len / 16;
        if table.len == 0
            || !table.len.is_multiple_of(16)
            || n > MAX_INDIRECT
            || bufs.len() != start
        {
            return Err(QueueError::BadIndirect(table.len));
        }
        if !mem.contains(table.addr, u64::from(table.len)) {
            return Err(QueueError::BufferNotRam {
                addr: table.addr,
                len: table.len,
            });
        }
        let mut i = 0u32;
        let mut steps = 0;
        loop {
            if i >= n {
                return Err(QueueError::IndexOutOfRange(i));
            }
            steps += 1;
            if steps > n {
                return Err(QueueError::ChainTooLong);
            }
            let d =
                read_desc(mem, table.addr + 16 * u64::from(i)).ok_or(QueueError::BufferNotRam {
                    addr: table.addr,
                    len: table.len,
                })?;
            if d.flags & flags::INDIRECT != 0 {
                return Err(QueueError::BadIndirect(table.len));
            }
            push(mem, bufs, total, &d)?;
            if d.flags & flags::NEXT == 0 {
                return Ok(());
            }
            i = u32::from(d.next);
        }
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
        if !mem.write(self.used + 2, &self.next_used.to_le_bytes()) {
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
            let _ = mem.write(at, &self.next_avail.to_le_bytes());
            mem.fence();
        }
    }
}

fn push(
    mem: &mut (impl GuestRam + ?Sized),
    bufs: &mut Vec<Buf>,
    total: &mut u64,
    d: &Desc,
) -> Result<(), QueueError> {
    if !mem.contains(d.addr, u64::from(d.len)) {
        return Err(QueueError::BufferNotRam {
            addr: d.addr,
            len: d.len,
        });
    }
    *total += u64::from(d.len);
    if *total > u64::from(u32::MAX) {
        return Err(QueueError::ChainTooBig);
    }
    bufs.push(Buf {
        addr: d.addr,
        len: d.len,
        writable: d.flags & flags::WRITE != 0,
    });
    Ok(())
}

#[cfg(test)]
#[path = "queue_tests.rs"]
mod tests;
