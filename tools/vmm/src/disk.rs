//! pv-vmm's disks: a partition of the host's own SD card (the host
//! kernel's MMC driver, /dev/mmcblkXpN) behind pivisor's virtio-blk model,
//! as the hypervisor serves its VMs' partitions of the card. O_DIRECT with
//! an aligned bounce buffer, so the host's page cache does not stand
//! between the guest and the card (the benchmarks compare the card's
//! work, not the host's cache).

use pivisor::virtio::blk::{Backend, IoError, CHUNK};
use std::fs::File;
use std::os::unix::fs::{FileExt, OpenOptionsExt};

/// A 4 KiB-aligned buffer of [`CHUNK`] bytes.
struct Aligned(*mut u8);
// SAFETY: owned memory, used by one thread at a time (the device's lock).
unsafe impl Send for Aligned {}

impl Drop for Aligned {
    fn drop(&mut self) {
        // SAFETY: from posix_memalign.
        unsafe { libc::free(self.0.cast()) };
    }
}

/// Partition `N` of the host's card.
pub struct HostPartition {
    file: File,
    sectors: u64,
    buf: Aligned,
    serial: [u8; 20],
}

impl HostPartition {
    /// Opens partition `n` of the first SD card that has one, waiting up
    /// to 5 s for the host kernel to find the card (its MMC probe runs
    /// after init has started).
    pub fn open(n: u32, readonly: bool) -> Result<Self, String> {
        let mut last = String::new();
        for _ in 0..50 {
            match Self::try_open(n, readonly) {
                Ok(p) => return Ok(p),
                Err(e) => last = e,
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        Err(last)
    }

    fn try_open(n: u32, readonly: bool) -> Result<Self, String> {
        let mut cards: Vec<String> = std::fs::read_dir("/sys/block")
            .map_err(|e| format!("/sys/block: {e}"))?
            .flatten()
            .filter_map(|e| e.file_name().into_string().ok())
            .filter(|n| n.starts_with("mmcblk"))
            .collect();
        cards.sort();
        let (card, part) = cards
            .iter()
            .map(|c| (c.clone(), format!("{c}p{n}")))
            .find(|(c, p)| std::path::Path::new(&format!("/sys/block/{c}/{p}")).exists())
            .ok_or(format!(
                "disk = sd:{n}: the host has no SD card partition {n} (/dev/mmcblk*p{n})"
            ))?;
        let size: u64 = std::fs::read_to_string(format!("/sys/block/{card}/{part}/size"))
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .ok_or(format!("/sys/block/{card}/{part}/size unreadable"))?;
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(!readonly)
            .custom_flags(libc::O_DIRECT)
            .open(format!("/dev/{part}"))
            .map_err(|e| format!("/dev/{part}: {e}"))?;
        let mut p: *mut libc::c_void = std::ptr::null_mut();
        // SAFETY: posix_memalign with a power-of-two alignment.
        if unsafe { libc::posix_memalign(&mut p, 4096, CHUNK) } != 0 {
            return Err("out of memory".into());
        }
        let mut serial = [0u8; 20];
        let id = format!("pv-vmm-{part}");
        let k = id.len().min(20);
        serial[..k].copy_from_slice(&id.as_bytes()[..k]);
        eprintln!(
            "pv-vmm: disk = sd:{n}: /dev/{part}, {} MiB{}",
            size >> 11,
            if readonly { ", read-only" } else { "" }
        );
        Ok(Self {
            file,
            sectors: size,
            buf: Aligned(p.cast()),
            serial,
        })
    }

    fn aligned(&mut self, len: usize) -> &mut [u8] {
        // SAFETY: CHUNK bytes from posix_memalign; len <= CHUNK (checked
        // by the callers through the model's contract).
        unsafe { std::slice::from_raw_parts_mut(self.buf.0, len.min(CHUNK)) }
    }
}

impl Backend for HostPartition {
    fn sectors(&self) -> u64 {
        self.sectors
    }

    fn read(&mut self, sector: u64, buf: &mut [u8]) -> Result<(), IoError> {
        if buf.len() > CHUNK
            || sector
                .checked_add(buf.len() as u64 / 512)
                .is_none_or(|e| e > self.sectors)
        {
            return Err(IoError);
        }
        let off = sector * 512;
        let len = buf.len();
        let file = self.file.try_clone().map_err(|_| IoError)?;
        let a = self.aligned(len);
        file.read_exact_at(a, off).map_err(|_| IoError)?;
        buf.copy_from_slice(a);
        Ok(())
    }

    fn write(&mut self, sector: u64, buf: &[u8]) -> Result<(), IoError> {
        if buf.len() > CHUNK
            || sector
                .checked_add(buf.len() as u64 / 512)
                .is_none_or(|e| e > self.sectors)
        {
            return Err(IoError);
        }
        let off = sector * 512;
        let file = self.file.try_clone().map_err(|_| IoError)?;
        let a = self.aligned(buf.len());
        a.copy_from_slice(buf);
        file.write_all_at(a, off).map_err(|_| IoError)
    }

    fn flush(&mut self) -> Result<(), IoError> {
        self.file.sync_data().map_err(|_| IoError)
    }

    fn serial(&self) -> [u8; 20] {
        self.serial
    }
}
