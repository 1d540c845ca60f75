//! The virtio block device (virtio 1.1 §5.2) over a [`Backend`] (a
//! partition of the SD card in the hypervisor; a file or a vector in
//! tests). One request queue.
//!
//! Features offered: VERSION_1, SEG_MAX, BLK_SIZE, FLUSH, RO for a
//! read-only disk, RING_INDIRECT_DESC and RING_EVENT_IDX; never
//! ACCESS_PLATFORM. Configuration space: capacity (512-byte sectors),
//! seg_max, blk_size 512.
//!
//! A request is read as the spec's byte streams, whatever the chain's
//! framing: the device-readable bytes are the 16-byte header (type,
//! reserved, sector) then, for a write, the data; the device-writable
//! bytes are, for a read, the data then the status byte. A chain too
//! short for the header or with no writable byte for the status is
//! malformed (the device needs a reset). Everything else is answered:
//!
//! - IN, OUT: data a whole number of sectors, inside the disk
//!   (`sector + n <= capacity`, no overflow), else IOERR; OUT on a
//!   read-only disk IOERR, the disk untouched;
//! - FLUSH: what was written is on the medium when it completes;
//! - GET_ID: the backend's 20-byte serial;
//! - anything else: UNSUPP.
//!
//! Bounded work: one [`Device::serve`] moves at most [`BUDGET`] bytes, in
//! [`CHUNK`]-byte backend calls (the hypervisor holds the card for one
//! chunk at a time); a larger request is carried over to the next serve
//! ([`Served::more`]), so no exit runs long and other VMs' requests
//! interleave with it on the card.

use super::mmio::{Device, Served};
use super::queue::{Buf, Chain, Queue, QueueError};
use super::stream::{config_bytes, copy, slice};
use super::{feature, GuestRam};
use alloc::vec;
use alloc::vec::Vec;

/// The virtio device ID of a block device.
pub const ID: u32 = 2;
/// Bytes per sector.
pub const SECTOR: u64 = 512;
/// The request queue's size.
pub const QUEUE_MAX: u16 = 128;
/// Bytes moved per backend call.
pub const CHUNK: usize = 64 * 1024;
/// Bytes moved per serve.
pub const BUDGET: u64 = 256 * 1024;

/// Feature bits of the block device.
pub mod f {
    /// The disk is read-only.
    pub const RO: u64 = 1 << 5;
    /// seg_max in the configuration is valid.
    pub const SEG_MAX: u64 = 1 << 2;
    /// blk_size in the configuration is valid.
    pub const BLK_SIZE: u64 = 1 << 6;
    /// FLUSH requests.
    pub const FLUSH: u64 = 1 << 9;
}

/// Request types.
pub mod req {
    /// Read.
    pub const IN: u32 = 0;
    /// Write.
    pub const OUT: u32 = 1;
    /// Flush.
    pub const FLUSH: u32 = 4;
    /// Device ID string.
    pub const GET_ID: u32 = 8;
}

/// Request status.
pub mod st {
    /// Done.
    pub const OK: u8 = 0;
    /// Failed (or refused: outside the disk, read-only).
    pub const IOERR: u8 = 1;
    /// Not a request this device knows.
    pub const UNSUPP: u8 = 2;
}

/// The backend failed a transfer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IoError;

/// Where the sectors are.
pub trait Backend: Send {
    /// The disk's size in sectors.
    fn sectors(&self) -> u64;
    /// Reads `buf.len()` bytes (whole sectors, at most [`CHUNK`]) from
    /// `sector` on.
    fn read(&mut self, sector: u64, buf: &mut [u8]) -> Result<(), IoError>;
    /// Writes whole sectors from `sector` on; on the medium once
    /// [`Backend::flush`] returns.
    fn write(&mut self, sector: u64, buf: &[u8]) -> Result<(), IoError>;
    /// Everything written is on the medium.
    fn flush(&mut self) -> Result<(), IoError>;
    /// The 20-byte serial (GET_ID; NUL-padded).
    fn serial(&self) -> [u8; 20];
}

impl Backend for alloc::boxed::Box<dyn Backend> {
    fn sectors(&self) -> u64 {
        (**self).sectors()
    }
    fn read(&mut self, sector: u64, buf: &mut [u8]) -> Result<(), IoError> {
        (**self).read(sector, buf)
    }
    fn write(&mut self, sector: u64, buf: &[u8]) -> Result<(), IoError> {
        (**self).write(sector, buf)
    }
    fn flush(&mut self) -> Result<(), IoError> {
        (**self).flush()
    }
    fn serial(&self) -> [u8; 20] {
        (**self).serial()
    }
}

/// Counters (for the exit report and the monitor).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    /// Read requests completed.
    pub reads: u64,
    /// Write requests completed.
    pub writes: u64,
    /// Flushes.
    pub flushes: u64,
    /// Bytes read.
    pub read_bytes: u64,
    /// Bytes written.
    pub written_bytes: u64,
    /// Requests answered IOERR or UNSUPP.
    pub errors: u64,
}

/// A request being carried out.
struct InFlight {
    head: u16,
    write: bool,
    sector: u64,
    /// Data bytes in all.
    len: u64,
    /// Data bytes moved so far.
    done: u64,
    /// The data: device-writable buffers for a read, device-readable
    /// ones (past the header) for a write.
    data: Vec<Buf>,
    /// Where the status byte goes.
    status: u64,
}

/// The block device.
pub struct Blk<B: Backend> {
    backend: B,
    read_only: bool,
    bounce: Vec<u8>,
    cur: Option<InFlight>,
    /// What it did.
    pub stats: Stats,
}

impl<B: Backend> Blk<B> {
    /// A device over `backend`.
    pub fn new(backend: B, read_only: bool) -> Self {
        Self {
            backend,
            read_only,
            bounce: vec![0; CHUNK],
            cur: None,
            stats: Stats::default(),
        }
    }

    /// The backend.
    pub fn backend(&self) -> &B {
        &self.backend
    }
}

impl<B: Backend> Blk<B> {
    /// Reads a chain's header and starts it, or answers it at once.
    /// Returns the used length of an answered request.
    fn start(&mut self, mem: &mut dyn GuestRam, c: Chain) -> Result<Option<u32>, QueueError> {
        let readable: Vec<Buf> = c.bufs.iter().copied().filter(|b| !b.writable).collect();
        let writable: Vec<Buf> = c.bufs.iter().copied().filter(|b| b.writable).collect();
        let rlen: u64 = readable.iter().map(|b| u64::from(b.len)).sum();
        let wlen: u64 = writable.iter().map(|b| u64::from(b.len)).sum();
        if rlen < 16 {
            return Err(QueueError::BadRequest("no room for the 16-byte header"));
        }
        if wlen == 0 {
            return Err(QueueError::BadRequest("no room for the status byte"));
        }
        let mut h = [0u8; 16];
        if !copy(mem, &readable, 0, &mut h, false) {
            return Err(QueueError::BadRequest("header unreadable"));
        }
        let kind = u32::from_le_bytes([h[0], h[1], h[2], h[3]]);
        let sector = u64::from_le_bytes(h[8..16].try_into().unwrap_or_default());
        let status = slice(&writable, wlen - 1, 1)
            .first()
            .map(|b| b.addr)
            .ok_or(QueueError::BadRequest("status byte"))?;
        let (write, len, data) = match kind {
            req::IN => (false, wlen - 1, slice(&writable, 0, wlen - 1)),
            req::OUT => (true, rlen - 16, slice(&readable, 16, rlen - 16)),
            req::FLUSH => {
                let s = if self.backend.flush().is_ok() {
                    self.stats.flushes += 1;
                    st::OK
                } else {
                    st::IOERR
                };
                return self.answer(mem, status, s, 1).map(Some);
            }
            req::GET_ID => {
                let n = (wlen - 1).min(20) as usize;
                let id = self.backend.serial();
                let d = slice(&writable, 0, n as u64);
                let mut bytes = id;
                if !copy(mem, &d, 0, &mut bytes[..n], true) {
                    return Err(QueueError::BadRequest("ID buffer unwritable"));
                }
                return self.answer(mem, status, st::OK, n as u32 + 1).map(Some);
            }
            _ => return self.answer(mem, status, st::UNSUPP, 1).map(Some),
        };
        let sectors = len / SECTOR;
        let inside = sector
            .checked_add(sectors)
            .is_some_and(|end| end <= self.backend.sectors());
        if len % SECTOR != 0 || !inside || (write && self.read_only) {
            return self.answer(mem, status, st::IOERR, 1).map(Some);
        }
        self.cur = Some(InFlight {
            head: c.head,
            write,
            sector,
            len,
            done: 0,
            data,
            status,
        });
        Ok(None)
    }

    /// Writes the status byte; the used length to report.
    fn answer(
        &mut self,
        mem: &mut dyn GuestRam,
        at: u64,
        s: u8,
        used: u32,
    ) -> Result<u32, QueueError> {
        if s != st::OK {
            self.stats.errors += 1;
        }
        if !mem.write(at, &[s]) {
            return Err(QueueError::BadRequest("status byte unwritable"));
        }
        Ok(used)
    }

    /// Moves up to `budget` bytes of the request in flight; returns the
    /// bytes moved and, once it is complete, its used length.
    fn advance(
        &mut self,
        mem: &mut dyn GuestRam,
        budget: u64,
    ) -> Result<(u64, Option<u32>), QueueError> {
        let Some(f) = self.cur.as_mut() else {
            return Ok((0, None));
        };
        let mut moved = 0;
        let mut failed = false;
        while f.done < f.len && moved < budget {
            let n = (f.len - f.done).min(CHUNK as u64).min(budget - moved) as usize;
            let n = n - n % SECTOR as usize;
            let n = if n == 0 { SECTOR as usize } else { n };
            let sector = f.sector + f.done / SECTOR;
            let buf = &mut self.bounce[..n];
            let ok = if f.write {
                copy(mem, &f.data, f.done, buf, false) && self.backend.write(sector, buf).is_ok()
            } else {
                self.backend.read(sector, buf).is_ok() && copy(mem, &f.data, f.done, buf, true)
            };
            if !ok {
                failed = true;
                break;
            }
            f.done += n as u64;
            moved += n as u64;
        }
        if !failed && f.done < f.len {
            return Ok((moved, None));
        }
        let Some(f) = self.cur.take() else {
            return Ok((moved, None));
        };
        if failed {
            return Ok((moved, Some(self.answer(mem, f.status, st::IOERR, 1)?)));
        }
        if f.write {
            self.stats.writes += 1;
            self.stats.written_bytes += f.len;
        } else {
            self.stats.reads += 1;
            self.stats.read_bytes += f.len;
        }
        let used = if f.write { 1 } else { f.len as u32 + 1 };
        Ok((moved, Some(self.answer(mem, f.status, st::OK, used)?)))
    }
}

impl<B: Backend> Device for Blk<B> {
    fn id(&self) -> u32 {
        ID
    }

    fn features(&self) -> u64 {
        let ro = if self.read_only { f::RO } else { 0 };
        feature::VERSION_1
            | feature::RING_INDIRECT_DESC
            | feature::RING_EVENT_IDX
            | f::SEG_MAX
            | f::BLK_SIZE
            | f::FLUSH
            | ro
    }

    fn queues(&self) -> usize {
        1
    }

    fn queue_max(&self) -> u16 {
        QUEUE_MAX
    }

    fn config(&self, offset: u64, out: &mut [u8]) {
        let mut cfg = [0u8; 24];
        cfg[0..8].copy_from_slice(&self.backend.sectors().to_le_bytes());
        cfg[12..16].copy_from_slice(&u32::from(QUEUE_MAX - 2).to_le_bytes());
        cfg[20..24].copy_from_slice(&(SECTOR as u32).to_le_bytes());
        config_bytes(&cfg, offset, out);
    }

    fn serve(
        &mut self,
        _q: usize,
        queue: &mut Queue,
        mem: &mut dyn GuestRam,
    ) -> Result<Served, QueueError> {
        let mut s = Served::default();
        let mut budget = BUDGET;
        // Requests answered at once cost no data budget: a queue's worth
        // per serve at most.
        let mut chains = 0;
        loop {
            if self.cur.is_some() {
                let head = self.cur.as_ref().map_or(0, |f| f.head);
                let (moved, done) = self.advance(mem, budget)?;
                budget = budget.saturating_sub(moved);
                match done {
                    Some(used) => {
                        queue.push_used(mem, head, used)?;
                        s.used = true;
                    }
                    None => {
                        s.more = true;
                        return Ok(s);
                    }
                }
            }
            if budget == 0 || chains == QUEUE_MAX {
                if queue.pending(mem)? == 0 {
                    // Caught up: with EVENT_IDX the driver notifies only
                    // past avail_event, so it must say where the device
                    // is, then look once more.
                    queue.ask_notify(mem);
                }
                s.more = queue.pending(mem)? > 0;
                return Ok(s);
            }
            chains += 1;
            let Some(c) = queue.pop(mem)? else {
                // Drained: ask for a notify on the next request, then look
                // once more (one may have come in between).
                queue.ask_notify(mem);
                if queue.pending(mem)? == 0 {
                    return Ok(s);
                }
                continue;
            };
            let head = c.head;
            if let Some(used) = self.start(mem, c)? {
                queue.push_used(mem, head, used)?;
                s.used = true;
            }
        }
    }

    fn reset(&mut self) {
        // A request in flight is dropped with the queue (the driver reset
        // the device; nothing more is written to its RAM).
        self.cur = None;
    }
}

#[cfg(test)]
#[path = "blk_tests.rs"]
mod tests;
