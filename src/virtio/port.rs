//! A VM's port on the hypervisor's switch, the receive side of its
//! virtio-net device ([`super::net`]): its MAC, the VM's receive queue as
//! the transport last handed it over, and its counters. Senders on other
//! cores deliver into it ([`Port::deliver`]) under its own lock, never the
//! VM's transport's, and never wait for its vCPU.

use super::irq::{isr, IrqLine};
use super::queue::{Buf, Queue, QueueError};
use super::GuestRam;
use crate::sync::Mutex;
use alloc::boxed::Box;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::fmt;
use core::sync::atomic::{AtomicU64, Ordering};

/// The header before every frame (`virtio_net_hdr` with num_buffers).
pub const HDR: usize = 12;

/// An Ethernet MAC address.
pub type Mac = [u8; 6];

/// The broadcast address.
pub const BROADCAST: Mac = [0xff; 6];

/// Whether `m` is a group (multicast or broadcast) address.
pub fn is_group(m: &Mac) -> bool {
    m[0] & 1 != 0
}

/// Why a frame was dropped (the counters' index).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DropReason {
    /// Sent: shorter than an Ethernet header (14 bytes).
    Runt,
    /// Sent: longer than the MTU allows (1500 + 14 + a VLAN tag).
    Oversized,
    /// Sent: a virtio-net header asking for an offload nobody offered
    /// (checksum or segmentation), or too short for the header.
    BadHeader,
    /// Sent with a source MAC that is not the port's (or a group one).
    Spoofed,
    /// Sent: no other port on the LAN would take it.
    NoDestination,
    /// Received: the VM had posted no receive buffer (or its receive
    /// queue is not running).
    NoRxBuffer,
    /// Received: the VM's receive buffer was too small for the frame.
    RxTooSmall,
    /// Received: the VM's receive queue is malformed (it needs a reset).
    RxFault,
    /// Sent: a group frame past the port's share of flooding (storm
    /// control).
    Storm,
}

impl DropReason {
    /// Every reason, in counter order.
    pub const ALL: [DropReason; 9] = [
        DropReason::Runt,
        DropReason::Oversized,
        DropReason::BadHeader,
        DropReason::Spoofed,
        DropReason::NoDestination,
        DropReason::NoRxBuffer,
        DropReason::RxTooSmall,
        DropReason::RxFault,
        DropReason::Storm,
    ];

    /// Its short name (counters, logs, the tests).
    pub fn name(self) -> &'static str {
        match self {
            DropReason::Runt => "runt",
            DropReason::Oversized => "oversized",
            DropReason::BadHeader => "bad-header",
            DropReason::Spoofed => "spoofed",
            DropReason::NoDestination => "no-destination",
            DropReason::NoRxBuffer => "no-rx-buffer",
            DropReason::RxTooSmall => "rx-too-small",
            DropReason::RxFault => "rx-fault",
            DropReason::Storm => "storm",
        }
    }
}

/// A port's counters, updated by whichever core moves its frames.
#[derive(Debug, Default)]
pub struct Counters {
    tx_frames: AtomicU64,
    tx_bytes: AtomicU64,
    rx_frames: AtomicU64,
    rx_bytes: AtomicU64,
    drops: [AtomicU64; DropReason::ALL.len()],
}

/// A port's counters at one moment.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    /// Frames the switch took from the VM.
    pub tx_frames: u64,
    /// Their bytes (without the virtio header).
    pub tx_bytes: u64,
    /// Frames put into the VM's receive buffers.
    pub rx_frames: u64,
    /// Their bytes.
    pub rx_bytes: u64,
    /// Frames dropped, by [`DropReason`] (in [`DropReason::ALL`] order).
    pub drops: [u64; DropReason::ALL.len()],
}

impl Stats {
    /// Frames dropped for `why`.
    pub fn dropped(&self, why: DropReason) -> u64 {
        let i = DropReason::ALL.iter().position(|d| *d == why).unwrap_or(0);
        self.drops[i]
    }
}

impl fmt::Display for Stats {
    /// `tx F frames B bytes, rx F frames B bytes, dropped N (reason N, ...)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "tx {} frames {} bytes, rx {} frames {} bytes, dropped {}",
            self.tx_frames,
            self.tx_bytes,
            self.rx_frames,
            self.rx_bytes,
            self.drops.iter().sum::<u64>()
        )?;
        let mut first = true;
        for (d, n) in DropReason::ALL.iter().zip(self.drops) {
            if n > 0 {
                f.write_str(if first { " (" } else { ", " })?;
                write!(f, "{} {n}", d.name())?;
                first = false;
            }
        }
        if !first {
            f.write_str(")")?;
        }
        Ok(())
    }
}

impl Counters {
    /// Counts a dropped frame.
    pub fn dropped(&self, why: DropReason) {
        let i = DropReason::ALL.iter().position(|d| *d == why).unwrap_or(0);
        self.drops[i].fetch_add(1, Ordering::Relaxed);
    }

    /// Counts a frame the switch took from the port.
    pub fn sent(&self, bytes: u32) {
        self.tx_frames.fetch_add(1, Ordering::Relaxed);
        self.tx_bytes.fetch_add(bytes.into(), Ordering::Relaxed);
    }

    fn received(&self, bytes: u32) {
        self.rx_frames.fetch_add(1, Ordering::Relaxed);
        self.rx_bytes.fetch_add(bytes.into(), Ordering::Relaxed);
    }

    /// The counters now.
    pub fn stats(&self) -> Stats {
        let l = |a: &AtomicU64| a.load(Ordering::Relaxed);
        let mut drops = [0; DropReason::ALL.len()];
        for (d, a) in drops.iter_mut().zip(&self.drops) {
            *d = l(a);
        }
        Stats {
            tx_frames: l(&self.tx_frames),
            tx_bytes: l(&self.tx_bytes),
            rx_frames: l(&self.rx_frames),
            rx_bytes: l(&self.rx_bytes),
            drops,
        }
    }
}

/// A problem with a VM's queue found while delivering to it.
pub type ProblemSink = Box<dyn FnMut(&QueueError) + Send>;

/// The receive side of a port: the VM's receive queue as the transport
/// last handed it over, its RAM and its interrupt.
struct Rx {
    queue: Queue,
    live: bool,
    broken: bool,
    mem: Option<Box<dyn GuestRam + Send>>,
    irq: Option<Arc<IrqLine>>,
    problem: Option<ProblemSink>,
}

/// A VM's port on the switch: its MAC, its receive side and its counters.
/// Shared between the VM's device (its transport's core) and the cores of
/// every VM that sends to it. Lock order: a transport, then at most one
/// port's receive side, then that port's interrupt line.
pub struct Port {
    /// Its MAC.
    pub mac: Mac,
    rx: Mutex<Rx>,
    /// Its counters.
    pub counters: Counters,
}

impl Port {
    /// A port with MAC `mac`, not receiving until a device binds it.
    pub fn new(mac: Mac) -> Self {
        Self {
            mac,
            rx: Mutex::new(Rx {
                queue: Queue::default(),
                live: false,
                broken: false,
                mem: None,
                irq: None,
                problem: None,
            }),
            counters: Counters::default(),
        }
    }

    /// The VM's RAM and its problem log, for delivering to it.
    pub fn bind(&self, mem: Box<dyn GuestRam + Send>, problem: ProblemSink) {
        let mut rx = self.rx.lock();
        rx.mem = Some(mem);
        rx.problem = Some(problem);
    }

    /// Puts the frame `frame` (`len` bytes in the sender's RAM `src`, as
    /// checked buffers) into this port's next receive buffer, or says why
    /// not (counted here, the receiver's side).
    pub fn deliver(
        &self,
        src: &mut dyn GuestRam,
        frame: &[Buf],
        len: u32,
    ) -> Result<(), DropReason> {
        let r = self.try_deliver(src, frame, len);
        match r {
            Ok(()) => self.counters.received(len),
            Err(d) => self.counters.dropped(d),
        }
        r
    }

    fn try_deliver(
        &self,
        src: &mut dyn GuestRam,
        frame: &[Buf],
        len: u32,
    ) -> Result<(), DropReason> {
        let mut guard = self.rx.lock();
        let rx = &mut *guard;
        if !rx.live || rx.broken || !rx.queue.ready {
            return Err(DropReason::NoRxBuffer);
        }
        let Some(mem) = rx.mem.as_deref_mut() else {
            return Err(DropReason::NoRxBuffer);
        };
        let r = fill(&mut rx.queue, mem, src, frame, len);
        match r {
            Ok(Some(())) => {
                if rx.queue.should_interrupt(mem) {
                    if let Some(irq) = &rx.irq {
                        irq.raise(isr::USED);
                    }
                }
                Ok(())
            }
            Ok(None) => Err(DropReason::NoRxBuffer),
            Err(Fill::TooSmall) => {
                if rx.queue.should_interrupt(mem) {
                    if let Some(irq) = &rx.irq {
                        irq.raise(isr::USED);
                    }
                }
                Err(DropReason::RxTooSmall)
            }
            Err(Fill::Queue(e)) => {
                rx.broken = true;
                if let Some(p) = rx.problem.as_mut() {
                    p(&e);
                }
                if let Some(irq) = &rx.irq {
                    irq.fault();
                }
                Err(DropReason::RxFault)
            }
        }
    }

    /// The VM's receive queue, as its transport hands it over (made
    /// ready, stopped or reset).
    pub fn set_queue(&self, queue: &Queue) {
        let mut rx = self.rx.lock();
        rx.queue = queue.clone();
        rx.broken = false;
    }

    /// The device went live or stopped: frames are delivered only while
    /// it is live.
    pub fn set_live(&self, live: bool) {
        self.rx.lock().live = live;
    }

    /// The device's interrupt line.
    pub fn set_irq(&self, irq: Arc<IrqLine>) {
        self.rx.lock().irq = Some(irq);
    }

    /// The receive queue's state (tests).
    #[cfg(test)]
    pub(crate) fn rx_ready(&self) -> bool {
        let rx = self.rx.lock();
        rx.live && rx.queue.ready && !rx.broken
    }
}

enum Fill {
    TooSmall,
    Queue(QueueError),
}

impl From<QueueError> for Fill {
    fn from(e: QueueError) -> Self {
        Fill::Queue(e)
    }
}

/// Takes the receiver's next chain and copies the header and the frame
/// into it. `Ok(None)`: no chain posted.
fn fill(
    queue: &mut Queue,
    mem: &mut (dyn GuestRam + Send),
    src: &mut dyn GuestRam,
    frame: &[Buf],
    len: u32,
) -> Result<Option<()>, Fill> {
    // No avail_event update: a refill needs no notify (frames come
    // from the switch, not from the driver's kick).
    let Some(c) = queue.pop(mem)? else {
        return Ok(None);
    };
    let dst: Vec<Buf> = c.bufs.iter().copied().filter(|b| b.writable).collect();
    let room: u64 = dst.iter().map(|b| u64::from(b.len)).sum();
    if room < HDR as u64 + u64::from(len) {
        queue.push_used(mem, c.head, 0)?;
        return Err(Fill::TooSmall);
    }
    let mut hdr = [0u8; HDR];
    hdr[10] = 1; // num_buffers
    let mut out = Cursor::new(&dst);
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
    queue.push_used(mem, c.head, HDR as u32 + len)?;
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
