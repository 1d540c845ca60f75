//! The hostile VM's attacks on its LAN (guests/linux-lans.conf puts it on
//! lan0 beside two Linux VMs exchanging traffic): a minimal polling
//! virtio-net driver that floods broadcast frames, sends from MACs not
//! its own, sends oversized, runt and zero-length frames, headers
//! asking for offloads it did not negotiate (ECN, IPv6 segmentation) and
//! offload requests that contradict their frame (a checksum position
//! past its end, TCP segmentation of a frame that is not TCP), and posts
//! transmit and receive
//! descriptors outside its RAM, round after round until a victim asks
//! for its address (an ARP request for `ip`, which the harness makes a
//! victim send once its transfer is done; `secs` seconds at most). The
//! hypervisor must drop and count every bad frame (its counters appear
//! when this VM powers off), put the device into DEVICE_NEEDS_RESET for
//! every descriptor outside RAM, take it back after a reset, and keep the
//! victims' traffic intact (the harness checks their checksums).

use crate::gic::{cntfrq, cntvct, r32, w32};
use crate::hw::{psci, write64, SYSTEM_OFF};
use core::fmt::Write;

const VIO: u64 = 0xfc00_5000;
const NEEDS_RESET: u32 = 64;
/// Queue size of both queues.
const Q: u16 = 16;
/// Rings: receive then transmit (descriptors, available, used).
const RXD: u64 = 0x0100_0000;
const RXA: u64 = RXD + 0x100;
const RXU: u64 = RXD + 0x200;
const TXD: u64 = 0x0101_0000;
const TXA: u64 = TXD + 0x100;
const TXU: u64 = TXD + 0x200;
/// Frame buffers (one per transmit descriptor) and receive buffers.
const FRAMES: u64 = 0x0102_0000;
const RXBUF: u64 = 0x0104_0000;

fn w16(a: u64, v: u16) {
    // SAFETY: the guest's own RAM.
    unsafe { core::ptr::write_volatile(a as *mut u16, v) }
}
fn r16(a: u64) -> u16 {
    // SAFETY: the guest's own RAM.
    unsafe { core::ptr::read_volatile(a as *const u16) }
}
fn w8(a: u64, v: u8) {
    // SAFETY: the guest's own RAM.
    unsafe { core::ptr::write_volatile(a as *mut u8, v) }
}

fn desc(table: u64, i: u16, addr: u64, len: u32, flags: u16) {
    let d = table + 16 * u64::from(i);
    write64(d, addr);
    w32(d + 8, len);
    w16(d + 12, flags);
    w16(d + 14, 0);
}

/// Resets the device and brings it up (VERSION_1, MAC, CSUM and
/// HOST_TSO4: it may ask for offloads, and lies in them), its receive
/// queue holding eight buffers at `rx_at` (outside RAM for an attack).
/// Whether both queues took.
fn up(rx_at: u64) -> bool {
    w32(VIO + 0x70, 0);
    w32(VIO + 0x70, 1 | 2);
    w32(VIO + 0x24, 1);
    w32(VIO + 0x20, 1);
    w32(VIO + 0x24, 0);
    w32(VIO + 0x20, 1 << 5 | 1 | 1 << 11);
    w32(VIO + 0x70, 1 | 2 | 8);
    for a in (RXD..RXD + 0x400)
        .step_by(8)
        .chain((TXD..TXD + 0x400).step_by(8))
    {
        write64(a, 0);
    }
    for i in 0..8u16 {
        desc(RXD, i, rx_at + 0x800 * u64::from(i), 1526, 2);
        w16(RXA + 4 + 2 * u64::from(i), i);
    }
    w16(RXA + 2, 8);
    for (q, d, a, u) in [(0u32, RXD, RXA, RXU), (1, TXD, TXA, TXU)] {
        w32(VIO + 0x30, q);
        w32(VIO + 0x38, u32::from(Q));
        w32(VIO + 0x80, d as u32);
        w32(VIO + 0x84, 0);
        w32(VIO + 0x90, a as u32);
        w32(VIO + 0x94, 0);
        w32(VIO + 0xa0, u as u32);
        w32(VIO + 0xa4, 0);
        w32(VIO + 0x44, 1);
    }
    w32(VIO + 0x70, 1 | 2 | 8 | 4);
    w32(VIO + 0x30, 0);
    let rx = r32(VIO + 0x44) == 1;
    w32(VIO + 0x30, 1);
    rx && r32(VIO + 0x44) == 1
}

/// A frame in buffer `i`: header flags and gso_type, then `len` bytes
/// from `src` to `dst` (EtherType 0x88b5, local experimental).
fn frame(i: u16, hdr: (u8, u8), len: u32, dst: [u8; 6], src: [u8; 6]) -> (u64, u32) {
    let at = FRAMES + 0x800 * u64::from(i);
    for k in 0..12 {
        w8(at + k, 0);
    }
    w8(at, hdr.0);
    w8(at + 1, hdr.1);
    for (k, b) in dst.iter().chain(src.iter()).enumerate() {
        w8(at + 12 + k as u64, *b);
    }
    w8(at + 24, 0x88);
    w8(at + 25, 0xb5);
    (at, 12 + len)
}

/// Sends up to 16 buffers (address, length) as one-descriptor chains;
/// whether they all came back (false: the device needs a reset).
fn send(bufs: &[(u64, u32)]) -> bool {
    let idx = r16(TXA + 2);
    for (k, &(a, l)) in bufs.iter().enumerate() {
        let i = k as u16;
        desc(TXD, i, a, l, 0);
        w16(TXA + 4 + 2 * u64::from(idx.wrapping_add(i) % Q), i);
    }
    let want = idx.wrapping_add(bufs.len() as u16);
    w16(TXA + 2, want);
    w32(VIO + 0x50, 1);
    for _ in 0..100_000 {
        if r16(TXU + 2) == want {
            let isr = r32(VIO + 0x60);
            w32(VIO + 0x64, isr);
            return true;
        }
        if r32(VIO + 0x70) & NEEDS_RESET != 0 {
            return false;
        }
        w32(VIO + 0x50, 1);
    }
    false
}

/// Whether a frame received since `seen` (the receive ring's used index)
/// is an ARP request for `ip`; returns the new used index too.
fn asked_for(ip: [u8; 4], seen: u16) -> (bool, u16) {
    let now = r16(RXU + 2);
    let mut i = seen;
    let mut hit = false;
    while i != now {
        let e = RXU + 4 + 8 * u64::from(i % Q);
        let id = u64::from(r32(e)) % 8;
        let len = r32(e + 4);
        let f = RXBUF + 0x800 * id + 12;
        let b = |k: u64| {
            // SAFETY: the guest's own receive buffer.
            unsafe { core::ptr::read_volatile((f + k) as *const u8) }
        };
        // EtherType ARP, opcode request, target protocol address.
        if len >= 12 + 42
            && b(12) == 0x08
            && b(13) == 0x06
            && b(21) == 1
            && [b(38), b(39), b(40), b(41)] == ip
        {
            hit = true;
        }
        i = i.wrapping_add(1);
    }
    (hit, now)
}

/// The attack run; never returns (the VM powers off).
pub fn run(ram: u64, ip: [u8; 4], secs: u64) -> ! {
    let ok = up(RXBUF);
    let lo = r32(VIO + 0x100).to_le_bytes();
    let hi = r32(VIO + 0x104).to_le_bytes();
    let mac = [lo[0], lo[1], lo[2], lo[3], hi[0], hi[1]];
    crate::println!(
        "NETHOSTILE start up={ok} mac={:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
        mac[0],
        mac[1],
        mac[2],
        mac[3],
        mac[4],
        mac[5]
    );
    let bcast = [0xffu8; 6];
    let end = cntvct() + secs * cntfrq();
    let (mut rounds, mut flood, mut bad, mut tx_resets, mut rx_resets, mut came_back) =
        (0u64, 0u64, 0u64, 0u64, 0u64, 0u64);
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    let mut asked = false;
    while cntvct() < end && !asked {
        rounds += 1;
        // A broadcast flood: 8 batches of 16.
        for _ in 0..8 {
            let b: [(u64, u32); 16] =
                core::array::from_fn(|i| frame(i as u16, (0, 0), 60, bcast, mac));
            if send(&b) {
                flood += 16;
            }
        }
        // Frames the switch must drop: spoofed sources (random, a group
        // address), offload headers, oversized, runts, zero-length.
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        let s = seed.to_le_bytes();
        let spoof = [0x02, s[0], s[1], s[2], s[3], s[4]];
        let past_end = frame(2, (1, 0), 60, bcast, mac);
        w16(past_end.0 + 6, 0xfff0); // csum_start
        let b = [
            frame(0, (0, 0), 60, bcast, spoof),
            frame(1, (0, 0), 60, bcast, bcast),
            past_end,
            frame(3, (0, 4), 60, bcast, mac),
            frame(4, (0, 0), 1600, bcast, mac),
            frame(5, (0, 0), 13, bcast, mac),
            frame(6, (0, 0), 0, bcast, mac),
            (FRAMES + 0x3800, 5),
            frame(8, (1, 1), 3000, bcast, mac),
            frame(9, (1, 0x81), 3000, bcast, mac),
            frame(10, (1, 4), 3000, bcast, mac),
        ];
        if send(&b) {
            bad += b.len() as u64;
        }
        // A transmit descriptor outside RAM: the device needs a reset.
        if !send(&[(ram + 0x1000, 100)]) && r32(VIO + 0x70) & NEEDS_RESET != 0 {
            tx_resets += 1;
        }
        // Asked for its address: the victims are done.
        asked = asked_for(ip, 0).0;
        // Receive buffers outside RAM: the next frame a victim floods to
        // it (ARP, say) puts the device into reset.
        if up(ram + 0x10_0000) {
            for _ in 0..20_000 {
                if r32(VIO + 0x70) & NEEDS_RESET != 0 {
                    rx_resets += 1;
                    break;
                }
            }
        }
        // And back: a reset device works again.
        if up(RXBUF) {
            came_back += 1;
        }
    }
    let result = tx_resets == rounds && came_back == rounds && flood > 0;
    crate::println!(
        "NETHOSTILE done rounds={rounds} flood={flood} bad={bad} tx_resets={tx_resets} rx_resets={rx_resets} came_back={came_back} stopped_by={} result={}",
        if asked { "arp" } else { "time" },
        if result { "ok" } else { "FAIL" }
    );
    psci(SYSTEM_OFF, 0, 0, 0);
    crate::hw::halt()
}
