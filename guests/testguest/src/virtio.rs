//! The hostile VM's attacks on its disk (guests/hostile.conf gives it
//! `disk = sd:2, readonly`): a minimal polling virtio-mmio block driver
//! that builds malformed queues and requests on purpose. Each attack is
//! refused as the hypervisor must (DEVICE_NEEDS_RESET for a malformed
//! queue, IOERR for a request it may not carry out, nothing for a
//! notification it should ignore), and a valid read works before and
//! after, so the refusals are not a broken device's.

use crate::gic::{r32, w32};
use crate::hw::{read64, write64};

/// The virtio-mmio page.
const VIO: u64 = 0xfc00_4000;
/// The queue's rings (below the image, clear of the other scratch).
const DESC: u64 = 0x70000;
const AVAIL: u64 = 0x70080;
const USED: u64 = 0x70100;
/// A request header, its status byte, its data.
const HDR: u64 = 0x71000;
const STATUS: u64 = 0x71100;
const DATA: u64 = 0x72000;
const SIZE: u32 = 8;

const NEEDS_RESET: u32 = 64;

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
fn r8(a: u64) -> u8 {
    // SAFETY: the guest's own RAM.
    unsafe { core::ptr::read_volatile(a as *const u8) }
}

/// Resets the device and brings it up with one queue at (desc, avail,
/// used); whether the queue took (QueueReady reads 1).
fn bring_up(desc: u64, avail: u64, used: u64) -> bool {
    w32(VIO + 0x70, 0);
    w32(VIO + 0x70, 1 | 2);
    w32(VIO + 0x24, 1);
    w32(VIO + 0x20, 1); // VERSION_1
    w32(VIO + 0x24, 0);
    w32(VIO + 0x20, 0);
    w32(VIO + 0x70, 1 | 2 | 8);
    w32(VIO + 0x30, 0);
    w32(VIO + 0x38, SIZE);
    w32(VIO + 0x80, desc as u32);
    w32(VIO + 0x84, (desc >> 32) as u32);
    w32(VIO + 0x90, avail as u32);
    w32(VIO + 0x94, (avail >> 32) as u32);
    w32(VIO + 0xa0, used as u32);
    w32(VIO + 0xa4, (used >> 32) as u32);
    for a in (DESC..USED + 0x100).step_by(8) {
        write64(a, 0);
    }
    w32(VIO + 0x44, 1);
    w32(VIO + 0x70, 1 | 2 | 8 | 4);
    r32(VIO + 0x44) == 1
}

fn desc(i: u64, addr: u64, len: u32, flags: u16, next: u16) {
    let d = DESC + 16 * i;
    write64(d, addr);
    w32(d + 8, len);
    w16(d + 12, flags);
    w16(d + 14, next);
}

/// Publishes head 0, notifies, and waits for it to come back: true if it
/// did, false if not (the device refused the queue, or never answered).
fn submit() -> bool {
    let idx = r16(AVAIL + 2);
    w16(AVAIL + 4 + 2 * u64::from(idx % SIZE as u16), 0);
    w16(AVAIL + 2, idx.wrapping_add(1));
    let before = r16(USED + 2);
    w32(VIO + 0x50, 0);
    for _ in 0..100_000 {
        if r16(USED + 2) != before {
            w32(VIO + 0x64, r32(VIO + 0x60));
            return true;
        }
        if r32(VIO + 0x70) & NEEDS_RESET != 0 {
            return false;
        }
    }
    false
}

/// A request: header (type, sector), one data buffer, the status byte.
fn request(kind: u32, sector: u64, data: u64, len: u32) {
    w32(HDR, kind);
    w32(HDR + 4, 0);
    write64(HDR + 8, sector);
    w8(STATUS, 0xff);
    let write = if kind == 0 { 2 } else { 0 };
    desc(0, HDR, 16, 1, 1);
    desc(1, data, len, 1 | write, 2);
    desc(2, STATUS, 1, 2, 0);
}

/// A valid read of the partition's first sector: status OK.
fn read_ok() -> bool {
    bring_up(DESC, AVAIL, USED) && {
        request(0, 0, DATA, 512);
        submit() && r8(STATUS) == 0
    }
}

/// The results of one attack: (probes, refused as they must be).
pub struct Tally {
    pub probes: u64,
    pub refused: u64,
}

impl Tally {
    fn probe(&mut self, refused: bool) {
        self.probes += 1;
        self.refused += u64::from(refused);
    }
}

/// A malformed queue: the device must need a reset and return nothing.
fn malformed(t: &mut Tally, build: impl FnOnce()) {
    let ok = bring_up(DESC, AVAIL, USED);
    build();
    let came_back = submit();
    t.probe(ok && !came_back && r32(VIO + 0x70) & NEEDS_RESET != 0);
}

/// Buffers outside the VM's RAM, straddling its end, a huge length, a
/// descriptor loop, an index past the table: each a device needing a
/// reset, nothing written.
pub fn queues(ram: u64) -> (Tally, bool) {
    let mut t = Tally {
        probes: 0,
        refused: 0,
    };
    let sane = read_ok();
    for (addr, len) in [
        (ram, 512),            // just past RAM
        (ram - 8, 16),         // straddling its end
        (0x40_0000_0000, 512), // far away (another VM's host memory, as an IPA)
        (u64::MAX - 255, 512), // wrapping
        (DATA, u32::MAX),      // a huge length
    ] {
        malformed(&mut t, || request(0, 0, addr, len));
    }
    // A loop of next pointers.
    malformed(&mut t, || {
        request(0, 0, DATA, 512);
        desc(2, STATUS, 1, 1 | 2, 0);
    });
    // A next index past the table.
    malformed(&mut t, || {
        request(0, 0, DATA, 512);
        desc(1, DATA, 512, 1 | 2, 200);
    });
    // An indirect table outside RAM.
    malformed(&mut t, || desc(0, ram + 0x1000, 48, 4, 0));
    let still = read_ok();
    (t, sane && still)
}

/// Requests the device must refuse with IOERR: sectors past the
/// partition, and writes (the disk is read-only; the guest ignores RO).
pub fn requests() -> (Tally, bool) {
    let mut t = Tally {
        probes: 0,
        refused: 0,
    };
    let sane = read_ok();
    let sectors = u64::from(r32(VIO + 0x100)) | u64::from(r32(VIO + 0x104)) << 32;
    for (kind, sector) in [
        (0u32, sectors),
        (0, sectors - 1 + 8), // its last sector plus 4 KiB
        (0, u64::MAX),
        (0, u64::MAX / 512),
        (1, 0), // a write to the read-only disk
        (1, sectors + 1),
    ] {
        let ok = bring_up(DESC, AVAIL, USED);
        request(kind, sector, DATA, 4096);
        t.probe(ok && submit() && r8(STATUS) == 1);
    }
    let still = read_ok();
    (t, sane && still && sectors > 8)
}

/// Rings outside RAM, and notifications on a reset device or for
/// queues that do not exist: refused, or nothing happens.
pub fn setup_and_notify(ram: u64) -> (Tally, bool) {
    let mut t = Tally {
        probes: 0,
        refused: 0,
    };
    for (d, a, u) in [
        (ram + 0x1000, AVAIL, USED),
        (DESC, ram - 2, USED),
        (DESC, AVAIL, 0x40_0000_0000),
        (DESC + 8, AVAIL, USED), // misaligned
    ] {
        let took = bring_up(d, a, u);
        t.probe(!took && r32(VIO + 0x70) & NEEDS_RESET != 0);
    }
    // A reset device: notifications, even for queues that do not exist,
    // change nothing.
    w32(VIO + 0x70, 0);
    for q in [0u32, 1, 7, 0xffff_ffff] {
        for _ in 0..250 {
            w32(VIO + 0x50, q);
        }
        t.probe(r32(VIO + 0x70) == 0 && r32(VIO + 0x60) == 0);
    }
    let ok = read_ok();
    let _ = read64(DATA);
    (t, ok)
}
