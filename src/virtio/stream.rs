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
    mut offset: u64,
    bounce: &mut [u8],
    to_guest: bool,
) -> bool {
    let mut at = 0usize;
    for b in bufs {
        if at == bounce.len() {
            break;
        }
        let blen = u64::from(b.len);
        if offset >= blen {
            offset -= blen;
            continue;
        }
        let take = ((blen - offset) as usize).min(bounce.len() - at);
        let part = &mut bounce[at..at + take];
        let a = b.addr + offset;
        let ok = if to_guest {
            mem.write(a, part)
        } else {
            mem.read(a, part)
        };
        if !ok {
            return false;
        }
        at += take;
        offset = 0;
    }
    at == bounce.len()
}

/// Drops the first `n` bytes of the stream `bufs` (in place).
pub fn advance(bufs: &mut Vec<Buf>, mut n: u64) {
    let mut whole = 0;
    for b in bufs.iter_mut() {
        let blen = u64::from(b.len);
        if n >= blen && blen > 0 || b.len == 0 {
            n -= blen;
            whole += 1;
            continue;
        }
        b.addr += n;
        b.len -= n as u32;
        break;
    }
    bufs.drain(..whole);
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::vec;

    fn b(addr: u64, len: u32) -> Buf {
        Buf {
            addr,
            len,
            writable: false,
        }
    }

    #[test]
    fn advance_drops_whole_and_partial_buffers() {
        let mut v = vec![b(0, 5), b(100, 0), b(200, 10), b(300, 4)];
        advance(&mut v, 12);
        assert_eq!(v, vec![b(207, 3), b(300, 4)]);
        advance(&mut v, 0);
        assert_eq!(v, vec![b(207, 3), b(300, 4)]);
        advance(&mut v, 3);
        assert_eq!(v, vec![b(300, 4)]);
        advance(&mut v, 9);
        assert!(v.is_empty());
    }
}
