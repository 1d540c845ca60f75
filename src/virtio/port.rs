//! A VM's port on the hypervisor's switch, the receive side of its
//! virtio-net device ([`super::net`]): its MAC, the VM's receive queue as
//! the transport last handed it over, and its counters. Senders on other
//! cores deliver into it ([`Port::deliver`]) under its own lock, never the
//! VM's transport's, and never wait for its vCPU.

use super::irq::{isr, IrqLine};
use super::offload::{finish, segments, Meta, Offer, MAX_SEGS};
use super::queue::{Buf, Queue, QueueError};
use super::rxfill::{fill, Bytes, Fill, Scratch};
use super::stream::copy;
use super::GuestRam;
use crate::sync::Mutex;
use alloc::boxed::Box;
use alloc::sync::Arc;

pub use super::netcount::{is_group, Counters, DropReason, Mac, Stats, BROADCAST};
pub use super::rxfill::HDR;

/// A problem with a VM's queue found while delivering to it.
pub type ProblemSink = Box<dyn FnMut(&QueueError) + Send>;

/// The receive side of a port: the VM's receive queue as the transport
/// last handed it over, its RAM and its interrupt.
struct Rx {
    queue: Queue,
    live: bool,
    broken: bool,
    /// The offloads its driver takes (GUEST_CSUM, GUEST_TSO4/6).
    offer: Offer,
    /// MRG_RXBUF: a frame may span receive chains.
    merge: bool,
    /// Lists reused from frame to frame.
    scratch: Scratch,
    /// Who took its buffers since the ring was last half free.
    share: Share,
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
                offer: Offer::default(),
                merge: false,
                scratch: Scratch::default(),
                share: Share::default(),
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
    /// checked buffers, its offload request `meta`) into this port's
    /// next receive buffers, or says why not (counted here, the
    /// receiver's side). A frame whose offload the receiver's driver did
    /// not take is finished here first (checksum, segments): copied
    /// into the hypervisor, then into the receiver.
    pub fn deliver(
        &self,
        src: &mut dyn GuestRam,
        frame: &[Buf],
        len: u32,
        meta: &Meta,
        from: usize,
    ) -> Result<(), DropReason> {
        let mut guard = self.rx.lock();
        let rx = &mut *guard;
        if !rx.live || rx.broken || !rx.queue.ready {
            self.counters.dropped(DropReason::NoRxBuffer);
            return Err(DropReason::NoRxBuffer);
        }
        let Some(mem) = rx.mem.as_deref_mut() else {
            self.counters.dropped(DropReason::NoRxBuffer);
            return Err(DropReason::NoRxBuffer);
        };
        // A malformed ring is found (and reported) by the fill below.
        let free = rx.queue.pending(mem).unwrap_or(rx.queue.size);
        if !rx.share.allows(from, free, rx.queue.size) {
            self.counters.dropped(DropReason::Share);
            return Err(DropReason::Share);
        }
        let r = self.deliver_to(rx, src, frame, len, meta);
        if r.is_ok() {
            rx.share.took(from);
        }
        r
    }

    fn deliver_to(
        &self,
        rx: &mut Rx,
        src: &mut dyn GuestRam,
        frame: &[Buf],
        len: u32,
        meta: &Meta,
    ) -> Result<(), DropReason> {
        if let Some(h) = meta.rx_header(rx.offer) {
            return self.fill_one(rx, src, frame, len, h);
        }
        if segments(meta, len) > MAX_SEGS {
            self.counters.dropped(DropReason::Segments);
            return Err(DropReason::Segments);
        }
        let mut whole = alloc::vec![0u8; len as usize];
        if !copy(src, frame, 0, &mut whole, false) {
            // The sender's buffers were checked: not reached.
            self.counters.dropped(DropReason::BadHeader);
            return Err(DropReason::BadHeader);
        }
        let mut r = Ok(());
        finish(&mut whole, meta, &mut |seg| {
            let b = [Buf {
                addr: 0,
                len: seg.len() as u32,
                writable: false,
            }];
            r = self.fill_one(rx, &mut Bytes(seg), &b, seg.len() as u32, [0; HDR]);
            r.is_ok()
        });
        r
    }

    /// One frame into the receive queue with header `hdr`, counted.
    fn fill_one(
        &self,
        rx: &mut Rx,
        src: &mut dyn GuestRam,
        frame: &[Buf],
        len: u32,
        hdr: [u8; HDR],
    ) -> Result<(), DropReason> {
        let r = Self::try_fill(rx, src, frame, len, hdr);
        match r {
            Ok(()) => self.counters.received(len),
            Err(d) => self.counters.dropped(d),
        }
        r
    }

    fn try_fill(
        rx: &mut Rx,
        src: &mut dyn GuestRam,
        frame: &[Buf],
        len: u32,
        hdr: [u8; HDR],
    ) -> Result<(), DropReason> {
        let Some(mem) = rx.mem.as_deref_mut() else {
            return Err(DropReason::NoRxBuffer);
        };
        let r = fill(
            &mut rx.queue,
            mem,
            src,
            frame,
            len,
            hdr,
            rx.merge,
            &mut rx.scratch,
        );
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

    /// The receive offloads the VM's driver negotiated (set when it
    /// goes live, cleared at reset).
    pub fn set_offer(&self, offer: Offer, merge: bool) {
        let mut rx = self.rx.lock();
        rx.offer = offer;
        rx.merge = merge;
    }

    /// The VM's receive queue, as its transport hands it over (made
    /// ready, stopped or reset).
    pub fn set_queue(&self, queue: &Queue) {
        let mut rx = self.rx.lock();
        rx.queue = queue.clone();
        rx.broken = false;
        rx.share = Share::default();
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

/// Senders a port tells apart for fair shares of its ring (the switch's
/// ports; a larger index shares a slot).
pub const SENDERS: usize = 16;

/// Fair shares of a receive ring among the VMs sending to it. While at
/// least half the ring is free nobody is counted; below that each
/// delivery counts for its sender; and once at most a quarter is left, a
/// sender that has had more than an equal share of what others also took
/// is refused (counted `share`), so a VM flooding another cannot take its
/// last buffers from everyone else. A sender alone may use the whole
/// ring.
#[derive(Debug, Default)]
struct Share {
    got: [u32; SENDERS],
    total: u32,
}

impl Share {
    /// Whether sender `from` may take a buffer of a ring of `size` with
    /// `free` chains posted.
    fn allows(&mut self, from: usize, free: u16, size: u16) -> bool {
        let (free, size) = (u32::from(free), u32::from(size));
        if free * 2 >= size {
            *self = Share::default();
            return true;
        }
        if free * 4 > size {
            return true;
        }
        let i = from % SENDERS;
        let others = self
            .got
            .iter()
            .enumerate()
            .filter(|&(j, &n)| j != i && n > 0)
            .count() as u32;
        others == 0 || self.got[i] * (others + 1) <= self.total
    }

    /// Sender `from` took a buffer.
    fn took(&mut self, from: usize) {
        let g = &mut self.got[from % SENDERS];
        *g = g.saturating_add(1);
        self.total = self.total.saturating_add(1);
    }
}
