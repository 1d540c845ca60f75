//! Checksum and segmentation offloads between virtio-net ports (virtio
//! 1.1 §5.1.6.2 and §5.1.6.4): what a sender's `virtio_net_hdr` may ask
//! for, checked against what its driver negotiated and against the frame
//! itself, and the software fallbacks that honour it for a receiver whose
//! driver did not take the offload (the Internet checksum and TCP
//! segmentation). Pure: bytes in, bytes out.
//!
//! Offered and honoured: CSUM with HOST_TSO4/HOST_TSO6 (the sender leaves
//! a TCP or UDP checksum partial, or hands over one TCP segment of up to
//! 64 KiB), GUEST_CSUM with GUEST_TSO4/GUEST_TSO6 (the receiver takes
//! them as they are). A GSO frame is accepted only as plain TCP over IPv4
//! or IPv6 without options the switch would have to understand (no IPv6
//! extension headers, no IPv4 fragment, no VLAN tag, no ECN), its
//! checksum position must be the TCP checksum, its lengths must agree
//! with the IP header and each segment must fit the MTU. Anything else
//! with an offload asked for is refused (the frame dropped, counted as a
//! bad header), so what a receiver's driver is handed has been checked.

/// `virtio_net_hdr.flags`: the checksum from `csum_start` is partial.
pub const NEEDS_CSUM: u8 = 1;
/// `gso_type`: none.
pub const GSO_NONE: u8 = 0;
/// `gso_type`: TCP over IPv4.
pub const GSO_TCPV4: u8 = 1;
/// `gso_type`: TCP over IPv6.
pub const GSO_TCPV6: u8 = 4;

/// Frame bytes read to check a GSO frame's headers: Ethernet, the
/// largest IPv4 header and the largest TCP header.
pub const HEAD: usize = 14 + 60 + 60;
/// The largest GSO frame: an IPv6 header and a full 64 KiB payload.
pub const MAX_GSO_FRAME: u32 = 14 + 40 + 65535;
/// Segments the software fallback makes of one GSO frame at most (a
/// 64 KiB frame with a 536-byte MSS, IPv4's default minimum, is 123).
pub const MAX_SEGS: u32 = 128;

/// What one side's driver negotiated, as it matters for offloads: for a
/// sender CSUM and HOST_TSO4/6, for a receiver GUEST_CSUM and
/// GUEST_TSO4/6.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Offer {
    /// Partial checksums.
    pub csum: bool,
    /// TCP segmentation over IPv4.
    pub tso4: bool,
    /// TCP segmentation over IPv6.
    pub tso6: bool,
}

/// A GSO frame's checked layout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Gso {
    /// IPv6 (else IPv4).
    pub v6: bool,
    /// Where the TCP header starts (after Ethernet and IP).
    pub l4: u16,
    /// Where the payload starts.
    pub hdr_end: u16,
    /// Payload bytes per segment.
    pub mss: u16,
}

/// A frame's offload request, checked.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Meta {
    /// Partial checksum: from `.0`, stored at `.0 + .1`.
    pub csum: Option<(u16, u16)>,
    /// One TCP segment to be cut at the MSS.
    pub gso: Option<Gso>,
}

/// Why a header was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bad {
    /// It asks for something not negotiated, or contradicts the frame.
    Header,
    /// A segment would exceed the MTU, or the frame 64 KiB.
    Oversized,
}

fn be16(b: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([b[at], b[at + 1]])
}

fn le16(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([b[at], b[at + 1]])
}

impl Meta {
    /// Checks a sender's header `hdr` (12 bytes) for a frame of `len`
    /// bytes whose first bytes are `head` (up to [`HEAD`]), its driver
    /// having negotiated `tx`, segments at most `mtu` bytes of IP.
    pub fn parse(hdr: &[u8], head: &[u8], len: u32, tx: Offer, mtu: u16) -> Result<Meta, Bad> {
        let (flags, gso_type) = (hdr[0], hdr[1]);
        if flags & !NEEDS_CSUM != 0 {
            return Err(Bad::Header);
        }
        let mut meta = Meta::default();
        if flags & NEEDS_CSUM != 0 {
            let (start, off) = (le16(hdr, 6), le16(hdr, 8));
            if !tx.csum || u32::from(start) + u32::from(off) + 2 > len {
                return Err(Bad::Header);
            }
            meta.csum = Some((start, off));
        }
        let v6 = match gso_type {
            GSO_NONE => return Ok(meta),
            GSO_TCPV4 if tx.tso4 => false,
            GSO_TCPV6 if tx.tso6 => true,
            _ => return Err(Bad::Header),
        };
        let Some((start, off)) = meta.csum else {
            return Err(Bad::Header);
        };
        if len > MAX_GSO_FRAME {
            return Err(Bad::Oversized);
        }
        let l3 = 14usize;
        let need = |n: usize| {
            if head.len() < n {
                Err(Bad::Header)
            } else {
                Ok(())
            }
        };
        need(l3)?;
        let ip_len = if v6 {
            need(l3 + 40)?;
            let ok = be16(head, 12) == 0x86dd
                && head[l3] >> 4 == 6
                && head[l3 + 6] == 6
                && u32::from(be16(head, l3 + 4)) + 40 + 14 == len;
            if !ok {
                return Err(Bad::Header);
            }
            40
        } else {
            need(l3 + 20)?;
            let ihl = usize::from(head[l3] & 0xf) * 4;
            let ok = be16(head, 12) == 0x0800
                && head[l3] >> 4 == 4
                && ihl >= 20
                && head[l3 + 9] == 6
                && be16(head, l3 + 6) & 0x3fff == 0
                && u32::from(be16(head, l3 + 2)) + 14 == len;
            if !ok {
                return Err(Bad::Header);
            }
            ihl
        };
        let l4 = l3 + ip_len;
        need(l4 + 20)?;
        let thl = usize::from(head[l4 + 12] >> 4) * 4;
        let hdr_end = l4 + thl;
        if usize::from(start) != l4 || off != 16 || thl < 20 || hdr_end > head.len() {
            return Err(Bad::Header);
        }
        let mss = le16(hdr, 4);
        if mss == 0 {
            return Err(Bad::Header);
        }
        if ip_len + thl + usize::from(mss) > usize::from(mtu) {
            return Err(Bad::Oversized);
        }
        // One segment's worth is sent as it is, checksum partial.
        if len as usize - hdr_end > usize::from(mss) {
            meta.gso = Some(Gso {
                v6,
                l4: l4 as u16,
                hdr_end: hdr_end as u16,
                mss,
            });
        }
        Ok(meta)
    }

    /// The header a receiver whose driver negotiated `rx` gets for this
    /// frame, if it can take the frame as it is (else the switch
    /// finishes the checksum or cuts the segments for it: [`finish`]).
    pub fn rx_header(&self, rx: Offer) -> Option<[u8; 12]> {
        let mut h = [0u8; 12];
        if let Some((start, off)) = self.csum {
            if !rx.csum {
                return None;
            }
            h[0] = NEEDS_CSUM;
            h[6..8].copy_from_slice(&start.to_le_bytes());
            h[8..10].copy_from_slice(&off.to_le_bytes());
        }
        if let Some(g) = self.gso {
            let (ty, ok) = if g.v6 {
                (GSO_TCPV6, rx.tso6)
            } else {
                (GSO_TCPV4, rx.tso4)
            };
            if !ok {
                return None;
            }
            h[1] = ty;
            h[2..4].copy_from_slice(&g.hdr_end.to_le_bytes());
            h[4..6].copy_from_slice(&g.mss.to_le_bytes());
        }
        Some(h)
    }
}

/// The Internet checksum's running sum (RFC 1071), big-endian words.
#[derive(Debug, Clone, Copy, Default)]
pub struct Sum {
    acc: u64,
    odd: bool,
}

impl Sum {
    /// Adds `bytes`, continuing where the last call left off.
    pub fn add(&mut self, bytes: &[u8]) {
        let mut b = bytes;
        if self.odd {
            if let Some((&x, rest)) = b.split_first() {
                self.acc += u64::from(x);
                self.odd = false;
                b = rest;
            }
        }
        let mut pairs = b.chunks_exact(2);
        for p in &mut pairs {
            self.acc += u64::from(u16::from_be_bytes([p[0], p[1]]));
        }
        if let [x] = pairs.remainder() {
            self.acc += u64::from(*x) << 8;
            self.odd = true;
        }
    }

    /// The checksum to store: the complement of the folded sum.
    pub fn fold(self) -> u16 {
        let mut s = self.acc;
        while s >> 16 != 0 {
            s = (s & 0xffff) + (s >> 16);
        }
        !(s as u16)
    }
}

/// The checksum of `b`.
pub fn checksum(b: &[u8]) -> u16 {
    let mut s = Sum::default();
    s.add(b);
    s.fold()
}

/// Finishes `frame` (its offload request `meta`, checked by
/// [`Meta::parse`] against it) for a receiver that takes no offload:
/// hands each resulting frame to `out` in order (one with its checksum
/// filled in, or the segments of a GSO frame with their headers and
/// checksums), stopping when `out` says false. The number handed over.
pub fn finish(frame: &mut [u8], meta: &Meta, out: &mut dyn FnMut(&[u8]) -> bool) -> u32 {
    if let Some(g) = meta.gso {
        return segment(frame, &g, out);
    }
    if let Some((start, off)) = meta.csum {
        let (s, at) = (usize::from(start), usize::from(start) + usize::from(off));
        if at + 2 <= frame.len() && s <= frame.len() {
            // The field holds the pseudo-header's sum: summed with the rest.
            let mut c = checksum(&frame[s..]);
            if c == 0 {
                c = 0xffff;
            }
            frame[at..at + 2].copy_from_slice(&c.to_be_bytes());
        }
    }
    u32::from(out(frame))
}

/// Cuts a checked GSO frame into segments of `g.mss` payload bytes, each
/// with the frame's headers: IP length (and IPv4 id and checksum), TCP
/// sequence number, FIN and PSH on the last only, CWR on the first only,
/// and the TCP checksum over the pseudo-header. At most [`MAX_SEGS`].
fn segment(frame: &[u8], g: &Gso, out: &mut dyn FnMut(&[u8]) -> bool) -> u32 {
    let (l3, l4, end) = (14usize, usize::from(g.l4), usize::from(g.hdr_end));
    let mss = usize::from(g.mss);
    if frame.len() <= end || mss == 0 {
        return 0;
    }
    let payload = &frame[end..];
    let n = payload.len().div_ceil(mss);
    let seq0 = u32::from_be_bytes([frame[l4 + 4], frame[l4 + 5], frame[l4 + 6], frame[l4 + 7]]);
    let id0 = be16(frame, l3 + 4);
    let mut seg = alloc::vec::Vec::with_capacity(end + mss);
    let mut sent = 0;
    for (k, part) in payload.chunks(mss).enumerate().take(MAX_SEGS as usize) {
        seg.clear();
        seg.extend_from_slice(&frame[..end]);
        seg.extend_from_slice(part);
        let tcp_len = seg.len() - l4;
        if g.v6 {
            seg[l3 + 4..l3 + 6].copy_from_slice(&(tcp_len as u16).to_be_bytes());
        } else {
            let tot = (seg.len() - l3) as u16;
            seg[l3 + 2..l3 + 4].copy_from_slice(&tot.to_be_bytes());
            seg[l3 + 4..l3 + 6].copy_from_slice(&id0.wrapping_add(k as u16).to_be_bytes());
            seg[l3 + 10..l3 + 12].fill(0);
            let c = checksum(&seg[l3..l4]);
            seg[l3 + 10..l3 + 12].copy_from_slice(&c.to_be_bytes());
        }
        let seq = seq0.wrapping_add((k * mss) as u32);
        seg[l4 + 4..l4 + 8].copy_from_slice(&seq.to_be_bytes());
        if k + 1 < n {
            seg[l4 + 13] &= !(0x01 | 0x08); // FIN, PSH
        }
        if k > 0 {
            seg[l4 + 13] &= !0x80; // CWR
        }
        seg[l4 + 16..l4 + 18].fill(0);
        let mut s = Sum::default();
        if g.v6 {
            s.add(&seg[l3 + 8..l3 + 40]);
            s.add(&(tcp_len as u32).to_be_bytes());
            s.add(&[0, 0, 0, 6]);
        } else {
            s.add(&seg[l3 + 12..l3 + 20]);
            s.add(&[0, 6]);
            s.add(&(tcp_len as u16).to_be_bytes());
        }
        s.add(&seg[l4..]);
        let c = s.fold();
        seg[l4 + 16..l4 + 18].copy_from_slice(&c.to_be_bytes());
        if !out(&seg) {
            break;
        }
        sent += 1;
    }
    sent
}

/// How many segments [`finish`] would make of a frame of `len` bytes.
pub fn segments(meta: &Meta, len: u32) -> u32 {
    match meta.gso {
        Some(g) if g.mss > 0 => {
            (len.saturating_sub(u32::from(g.hdr_end))).div_ceil(u32::from(g.mss))
        }
        _ => 1,
    }
}

#[cfg(test)]
#[path = "offload_tests.rs"]
pub(crate) mod tests;
