//! Filling a VM's receive queue with one frame (virtio 1.1 §5.1.6.3-4):
//! the header and the frame copied once, straight from where they are
//! into the next receive chain, or with MRG_RXBUF into as many chains as
//! the frame needs, every one of them published at once with the count
//! in `num_buffers`. No chain posted, or not enough of them, takes
//! nothing (the chains taken are given back untouched).

use super::queue::{Buf, Queue, QueueError};
use super::GuestRam;
use alloc::vec::Vec;

/// The header before every frame (`virtio_net_hdr` with num_buffers).
pub const HDR: usize = 12;

/// Why a frame did not go in.
pub enum Fill {
    /// The (non-merged) chain was smaller than the frame: it went back
    /// empty.
    TooSmall,
    /// The queue is malformed.
    Queue(QueueError),
}

impl From<QueueError> for Fill {
    fn from(e: QueueError) -> Self {
        Fill::Queue(e)
    }
}

/// Bytes in the hypervisor's memory seen as a guest's RAM at address 0:
/// the source of a frame the switch finished itself.
pub struct Bytes<'a>(pub &'a [u8]);

impl GuestRam for Bytes<'_> {
    fn contains(&self, ipa: u64, len: u64) -> bool {
        ipa.checked_add(len)
            .is_some_and(|end| end <= self.0.len() as u64)
    }
    fn read(&mut self, ipa: u64, out: &mut [u8]) -> bool {
        if !self.contains(ipa, out.len() as u64) {
            return false;
        }
        out.copy_from_slice(&self.0[ipa as usize..ipa as usize + out.len()]);
        true
    }
    fn write(&mut self, _: u64, _: &[u8]) -> bool {
        false
    }
    fn read_with(&mut self, ipa: u64, len: u64, f: &mut dyn FnMut(&[u8]) -> bool) -> bool {
        self.contains(ipa, len) && f(&self.0[ipa as usize..(ipa + len) as usize])
    }
}

/// Receive buffers one frame may take at most (all chains together): a
/// driver posting chains of many tiny buffers gets its frame dropped
/// (too small) rather than the hypervisor walking them without end.
pub const MAX_RX_BUFS: usize = 1024;

/// A port's lists reused from frame to frame (no allocation per frame;
/// bounded by [`MAX_RX_BUFS`]).
#[derive(Default)]
pub struct Scratch {
    dst: Vec<Buf>,
    heads: Vec<(u16, u64)>,
}

/// Takes the receiver's next chain (or chains, `merge`) and copies the
/// header `hdr` (its num_buffers filled in here) and the frame (`len`
/// bytes in `src`'s buffers `frame`) into them. `Ok(None)`: not enough
/// chains posted (nothing taken).
#[allow(clippy::too_many_arguments)]
pub fn fill(
    queue: &mut Queue,
    mem: &mut (dyn GuestRam + Send),
    src: &mut dyn GuestRam,
    frame: &[Buf],
    len: u32,
    mut hdr: [u8; HDR],
    merge: bool,
    scratch: &mut Scratch,
) -> Result<Option<()>, Fill> {
    // No avail_event update: a refill needs no notify (frames come
    // from the switch, not from the driver's kick).
    let need = HDR as u64 + u64::from(len);
    let Scratch { dst, heads } = scratch;
    dst.clear();
    heads.clear();
    let mut room = 0u64;
    while room < need {
        let start = dst.len();
        let Some(head) = queue.pop_into(mem, dst)? else {
            queue.unpop(heads.len() as u16);
            return Ok(None);
        };
        // Only the device-writable buffers take the frame.
        let mut k = start;
        for j in start..dst.len() {
            if dst[j].writable {
                dst[k] = dst[j];
                k += 1;
            }
        }
        dst.truncate(k);
        let r: u64 = dst[start..].iter().map(|b| u64::from(b.len)).sum();
        heads.push((head, r));
        room += r;
        // Without merging one chain holds it all; with it the header
        // must fit the first, and the chains' buffers stay bounded.
        let short = if merge {
            (heads.len() == 1 && r < HDR as u64) || dst.len() > MAX_RX_BUFS
        } else {
            room < need
        };
        if short {
            for &(h, _) in heads.iter() {
                queue.stage_used(mem, h, 0)?;
            }
            queue.publish_used(mem)?;
            return Err(Fill::TooSmall);
        }
    }
    hdr[10..12].copy_from_slice(&(heads.len() as u16).to_le_bytes());
    let mut out = Cursor::new(dst);
    if !out.write(mem, &hdr) {
        return Err(Fill::Queue(QueueError::BadRequest(
            "receive buffer unwritable",
        )));
    }
    for b in frame {
        // At most one destination buffer's worth at a time, so every
        // piece `read_with` hands over lands in one contiguous run.
        let mut at = b.addr;
        let mut left = u64::from(b.len);
        while left > 0 {
            let Some((daddr, davail)) = out.current() else {
                return Err(Fill::TooSmall);
            };
            let n = left.min(davail);
            let mut w = daddr;
            let ok = src.read_with(at, n, &mut |bytes| {
                let ok = mem.write(w, bytes);
                w += bytes.len() as u64;
                ok
            });
            if !ok {
                return Err(Fill::Queue(QueueError::BadRequest(
                    "receive buffer unwritable",
                )));
            }
            out.advance(n);
            at += n;
            left -= n;
        }
    }
    let mut left = need;
    for &(head, r) in heads.iter() {
        let n = left.min(r);
        queue.stage_used(mem, head, n as u32)?;
        left -= n;
    }
    queue.publish_used(mem)?;
    Ok(Some(()))
}

/// A write position in a stream of buffers.
struct Cursor<'a> {
    bufs: &'a [Buf],
    i: usize,
    off: u64,
}

impl<'a> Cursor<'a> {
    fn new(bufs: &'a [Buf]) -> Self {
        Self { bufs, i: 0, off: 0 }
    }

    /// The current buffer's next address and the room left in it.
    fn current(&mut self) -> Option<(u64, u64)> {
        loop {
            let b = self.bufs.get(self.i)?;
            if self.off < u64::from(b.len) {
                return Some((b.addr + self.off, u64::from(b.len) - self.off));
            }
            self.i += 1;
            self.off = 0;
        }
    }

    fn advance(&mut self, n: u64) {
        self.off += n;
    }

    /// Writes `data` at the cursor (across buffers).
    fn write(&mut self, mem: &mut (dyn GuestRam + Send), mut data: &[u8]) -> bool {
        while !data.is_empty() {
            let Some((a, room)) = self.current() else {
                return false;
            };
            let n = (room as usize).min(data.len());
            if !mem.write(a, &data[..n]) {
                return false;
            }
            self.advance(n as u64);
            data = &data[n..];
        }
        true
    }
}
