//! A descriptor chain (virtio 1.1 §2.6.5-2.6.5.3): its buffers, what
//! can be wrong with it, and the walk that checks every descriptor a
//! guest wrote before anything uses it (see [`super::queue`] for the
//! rules).

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

/// Walks the chain at `head` of the descriptor table at `desc` (of
/// `size` entries), appending its buffers to `bufs`, every
/// descriptor and buffer checked.
pub fn walk(
    mem: &mut (impl GuestRam + ?Sized),
    desc: u64,
    size: u16,
    head: u16,
    bufs: &mut Vec<Buf>,
) -> Result<(), QueueError> {
    let size = u32::from(size);
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
        let d = read_desc(mem, desc + 16 * u64::from(i))
            .ok_or(QueueError::RingNotRam("descriptor", desc))?;
        if d.flags & flags::INDIRECT != 0 {
            if d.flags & flags::NEXT != 0 {
                return Err(QueueError::IndirectWithNext);
            }
            walk_indirect(mem, &d, bufs, start, &mut total)?;
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
    mem: &mut (impl GuestRam + ?Sized),
    table: &Desc,
    bufs: &mut Vec<Buf>,
    start: usize,
    total: &mut u64,
) -> Result<(), QueueError> {
    let n = table.len / 16;
    if table.len == 0 || !table.len.is_multiple_of(16) || n > MAX_INDIRECT || bufs.len() != start {
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
        let d = read_desc(mem, table.addr + 16 * u64::from(i)).ok_or(QueueError::BufferNotRam {
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
