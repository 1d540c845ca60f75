//! A VM's RAM for the virtio tests: `size` bytes at IPA `base`, and a
//! driver side that builds rings in it the way Linux's virtio_ring does.

use super::GuestRam;
use std::vec;
use std::vec::Vec;

/// RAM at `[base, base + mem.len())`.
pub struct Ram {
    pub base: u64,
    pub mem: Vec<u8>,
    pub fences: usize,
}

impl Ram {
    pub fn new(base: u64, size: usize) -> Self {
        Self {
            base,
            mem: vec![0; size],
            fences: 0,
        }
    }

    fn at(&self, ipa: u64, len: usize) -> Option<usize> {
        let off = ipa.checked_sub(self.base)? as usize;
        (off.checked_add(len)? <= self.mem.len()).then_some(off)
    }

    pub fn w16(&mut self, ipa: u64, v: u16) {
        assert!(self.write(ipa, &v.to_le_bytes()));
    }
    pub fn w32(&mut self, ipa: u64, v: u32) {
        assert!(self.write(ipa, &v.to_le_bytes()));
    }
    pub fn w64(&mut self, ipa: u64, v: u64) {
        assert!(self.write(ipa, &v.to_le_bytes()));
    }
    pub fn r16(&mut self, ipa: u64) -> u16 {
        let mut b = [0; 2];
        assert!(self.read(ipa, &mut b));
        u16::from_le_bytes(b)
    }
    pub fn r32(&mut self, ipa: u64) -> u32 {
        let mut b = [0; 4];
        assert!(self.read(ipa, &mut b));
        u32::from_le_bytes(b)
    }
    pub fn bytes(&self, ipa: u64, len: usize) -> &[u8] {
        let o = self.at(ipa, len).expect("inside the test RAM");
        &self.mem[o..o + len]
    }
}

impl GuestRam for Ram {
    fn contains(&self, ipa: u64, len: u64) -> bool {
        usize::try_from(len).is_ok_and(|l| self.at(ipa, l).is_some())
    }
    fn read(&mut self, ipa: u64, out: &mut [u8]) -> bool {
        match self.at(ipa, out.len()) {
            Some(o) => {
                out.copy_from_slice(&self.mem[o..o + out.len()]);
                true
            }
            None => false,
        }
    }
    fn write(&mut self, ipa: u64, data: &[u8]) -> bool {
        match self.at(ipa, data.len()) {
            Some(o) => {
                self.mem[o..o + data.len()].copy_from_slice(data);
                true
            }
            None => false,
        }
    }
    fn fence(&mut self) {
        self.fences += 1;
    }
}

/// A [`Ram`] shared between a test (the driver) and the device under
/// test, locked per access.
#[derive(Clone)]
pub struct Shared(pub std::sync::Arc<std::sync::Mutex<Ram>>);

impl GuestRam for Shared {
    fn contains(&self, ipa: u64, len: u64) -> bool {
        self.0.lock().unwrap().contains(ipa, len)
    }
    fn read(&mut self, ipa: u64, out: &mut [u8]) -> bool {
        self.0.lock().unwrap().read(ipa, out)
    }
    fn write(&mut self, ipa: u64, data: &[u8]) -> bool {
        self.0.lock().unwrap().write(ipa, data)
    }
}

/// A split queue of `size` laid out in the test RAM as Linux does:
/// descriptors, then the available ring, then (4-aligned) the used ring.
pub struct Driver {
    pub size: u16,
    pub desc: u64,
    pub avail: u64,
    pub used: u64,
    /// Next free descriptor.
    pub next_desc: u16,
    pub avail_idx: u16,
    pub used_seen: u16,
}

impl Driver {
    pub fn new(size: u16, at: u64) -> Self {
        let desc = at;
        let avail = desc + 16 * u64::from(size);
        let used = (avail + 6 + 2 * u64::from(size) + 3) & !3;
        Self {
            size,
            desc,
            avail,
            used,
            next_desc: 0,
            avail_idx: 0,
            used_seen: 0,
        }
    }

    /// Writes descriptor `i`.
    pub fn set_desc(&self, ram: &mut Ram, i: u16, addr: u64, len: u32, flags: u16, next: u16) {
        let d = self.desc + 16 * u64::from(i);
        ram.w64(d, addr);
        ram.w32(d + 8, len);
        ram.w16(d + 12, flags);
        ram.w16(d + 14, next);
    }

    /// Adds a chain of (addr, len, device-writable) buffers; returns its
    /// head.
    pub fn add(&mut self, ram: &mut Ram, bufs: &[(u64, u32, bool)]) -> u16 {
        let head = self.next_desc;
        for (k, &(addr, len, w)) in bufs.iter().enumerate() {
            let i = (self.next_desc + k as u16) % self.size;
            let last = k + 1 == bufs.len();
            let flags = if last { 0 } else { 1 } | if w { 2 } else { 0 };
            self.set_desc(ram, i, addr, len, flags, (i + 1) % self.size);
        }
        self.next_desc = (self.next_desc + bufs.len() as u16) % self.size;
        self.publish(ram, head);
        head
    }

    /// Puts `head` in the available ring and bumps its index.
    pub fn publish(&mut self, ram: &mut Ram, head: u16) {
        let slot = self.avail + 4 + 2 * u64::from(self.avail_idx % self.size);
        ram.w16(slot, head);
        self.avail_idx = self.avail_idx.wrapping_add(1);
        ram.w16(self.avail + 2, self.avail_idx);
    }

    /// The used ring's entries since last asked: (id, len).
    pub fn take_used(&mut self, ram: &mut Ram) -> Vec<(u32, u32)> {
        let idx = ram.r16(self.used + 2);
        let mut v = Vec::new();
        while self.used_seen != idx {
            let e = self.used + 4 + 8 * u64::from(self.used_seen % self.size);
            v.push((ram.r32(e), ram.r32(e + 4)));
            self.used_seen = self.used_seen.wrapping_add(1);
        }
        v
    }

    /// used_event (the avail ring's last field).
    pub fn set_used_event(&self, ram: &mut Ram, v: u16) {
        ram.w16(self.avail + 4 + 2 * u64::from(self.size), v);
    }

    /// avail_event (the used ring's last field).
    pub fn avail_event(&self, ram: &mut Ram) -> u16 {
        ram.r16(self.used + 4 + 8 * u64::from(self.size))
    }
}
