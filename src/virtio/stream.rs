//! A descriptor chain's buffers read as the byte stream the virtio spec
//! defines (a request's header, data and status, or a frame behind its
//! header, wherever the driver put the buffer boundaries), and the
//! configuration space's byte view. Shared by the device models.

use super::queue::Buf;
use super::GuestRam;
use alloc::vec::Vec;

/// The bytes `[skip, skip + len)` of the stream `bufs`, as buffers
/// (`len` u64::MAX: to the end).
pub fn slice(bufs: &[Buf], mut skip: u64, mut len: u64) -> Vec<Buf> {
    let mut out = Vec::with_capacity(bufs.len());
    for b in bufs {
        let blen = u64::from(b.len);
        if skip >= blen {
            skip -= blen;
            continue;
        }
        if len == 0 {
            break;
        }
        let take = (blen - skip).min(len);
        out.push(Buf {
            addr: b.addr + skip,
            len: take as u32,
            writable: b.writable,
        });
        len -= take;
        skip = 0;
    }
    out
}

/// Copies between `bounce` and the stream `bufs` at `offset`: into guest
/// RAM when `to_guest`. False unless all of `bounce` was moved.
pub fn copy(
    mem: &mut dyn GuestRam,
    bufs: &[Buf],
    offset: u64,
    bounce: &mut [u8],
    to_guest: bool,
) -> bool {
    let mut at = 0usize;
    for b in slice(bufs, offset, bounce.len() as u64) {
        let part = &mut bounce[at..at + b.len as usize];
        let ok = if to_guest {
            mem.write(b.addr, part)
        } else {
            mem.read(b.addr, part)
        };
        if !ok {
            return false;
        }
        at += b.len as usize;
    }
    at == bounce.len()
}

/// Reads `out.len()` bytes at `offset` of a device's configuration space
/// `cfg` (bytes past its end read as zero).
pub fn config_bytes(cfg: &[u8], offset: u64, out: &mut [u8]) {
    for (i, b) in out.iter_mut().enumerate() {
        *b = usize::try_from(offset)
            .ok()
            .and_then(|o| o.checked_add(i))
            .and_then(|o| cfg.get(o))
            .copied()
            .unwrap_or(0);
    }
}
