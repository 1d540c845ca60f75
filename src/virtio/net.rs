//! The virtio network device (virtio 1.1 §5.1): a port of the
//! hypervisor's switch ([`crate::net`]). Two queues: receive (0) and
//! transmit (1).
//!
//! Features offered: VERSION_1, MAC, STATUS, MTU (1500),
//! RING_INDIRECT_DESC, RING_EVENT_IDX, MRG_RXBUF, and the checksum and
//! TCP segmentation offloads both ways (CSUM, HOST_TSO4/6, GUEST_CSUM,
//! GUEST_TSO4/6), which the switch honours for every receiver
//! ([`super::offload`]); never ACCESS_PLATFORM. Configuration space: mac,
//! status (LINK_UP), max_virtqueue_pairs 1, mtu 1500.
//!
//! Every frame starts with the 12-byte `virtio_net_hdr` (VERSION_1).
//!
//! - Transmit ([`Device::serve`] on queue 1, on the sender's core): at
//!   most [`TX_BUDGET`] frames per serve (the rest is carried over, so a
//!   flooding VM is bounded per exit). A frame is the chain's
//!   device-readable bytes after the header; dropped and counted if the
//!   header's offload request was not negotiated or contradicts the
//!   frame ([`Meta::parse`]), if it is shorter than an Ethernet header
//!   or longer than [`MAX_FRAME`] (a segmentation offload: 64 KiB of IP),
//!   and by the switch (spoofed source, nowhere to go). Every chain goes
//!   back with used length 0, dropped or not.
//! - Receive ([`Port::deliver`], on the sender's core): the receiver's
//!   next receive chain (with MRG_RXBUF, as many as the frame needs), the
//!   header and the frame copied once, straight from the sender's buffers
//!   into the receiver's, or finished by the hypervisor first when the
//!   receiver did not take the offload the frame asks for; no buffer
//!   posted, or too small a one, drops the frame on the receiver's
//!   counters and never makes the sender wait. The receive queue's state
//!   lives in the port ([`Port`]), not in the transport: the transport
//!   hands it over when the driver makes the queue ready or resets it
//!   ([`Device::queue_changed`]), and the port raises the interrupt
//!   through the shared [`IrqLine`]. A malformed receive queue found
//!   there puts the device into DEVICE_NEEDS_RESET as the transport would.

use super::irq::IrqLine;
use super::mmio::{Device, Served};
use super::offload::{Bad, Meta, Offer, HEAD, MAX_GSO_FRAME};
use super::queue::{Buf, Queue, QueueError};
use super::stream::{advance, config_bytes, copy};
use super::{feature, GuestRam};
use alloc::boxed::Box;
use alloc::sync::Arc;
use alloc::vec::Vec;

pub use super::port::{
    is_group, Counters, DropReason, Mac, Port, ProblemSink, Stats, BROADCAST, HDR,
};

/// The virtio device ID of a network card.
pub const ID: u32 = 1;
/// Each queue's size.
pub const QUEUE_MAX: u16 = 256;
/// The MTU offered (VIRTIO_NET_F_MTU).
pub const MTU: u16 = 1500;
/// The shortest frame: an Ethernet header.
pub const MIN_FRAME: u32 = 14;
/// The longest frame: the MTU, the Ethernet header and a VLAN tag.
pub const MAX_FRAME: u32 = MTU as u32 + 14 + 4;
/// Frames sent per serve.
pub const TX_BUDGET: usize = 64;
/// The receive queue.
pub const RXQ: usize = 0;
/// The transmit queue.
pub const TXQ: usize = 1;

/// Feature bits of the network device.
pub mod f {
    /// The device takes frames with a partial checksum.
    pub const CSUM: u64 = 1 << 0;
    /// The driver takes frames with a partial checksum.
    pub const GUEST_CSUM: u64 = 1 << 1;
    /// The driver takes TCP/IPv4 segmentation offload frames.
    pub const GUEST_TSO4: u64 = 1 << 7;
    /// The driver takes TCP/IPv6 segmentation offload frames.
    pub const GUEST_TSO6: u64 = 1 << 8;
    /// The device takes TCP/IPv4 segmentation offload frames.
    pub const HOST_TSO4: u64 = 1 << 11;
    /// The device takes TCP/IPv6 segmentation offload frames.
    pub const HOST_TSO6: u64 = 1 << 12;
    /// mtu in the configuration is valid.
    pub const MTU: u64 = 1 << 3;
    /// mac in the configuration is valid.
    pub const MAC: u64 = 1 << 5;
    /// Merged receive buffers: a frame may span receive chains.
    pub const MRG_RXBUF: u64 = 1 << 15;
    /// status in the configuration is valid.
    pub const STATUS: u64 = 1 << 16;
}

/// The configuration's link status: up.
pub const LINK_UP: u16 = 1;

/// A frame on its way through the switch: where it lies in the sender's
/// RAM (checked buffers), its length, addresses and offload request.
#[derive(Debug, Clone, Copy)]
pub struct Frame<'a> {
    /// Its bytes: buffers of the sender's RAM, checked.
    pub bufs: &'a [Buf],
    /// How many bytes (without the virtio header).
    pub len: u32,
    /// Destination MAC.
    pub dst: Mac,
    /// Source MAC.
    pub src: Mac,
    /// Its offload request, checked ([`Meta::parse`]).
    pub meta: Meta,
}

/// Where a port's frames go: the switch (the hypervisor's LAN; a
/// loopback in tests).
pub trait Fabric: Send {
    /// Sends `frame` (its bytes in `mem`): Err says why it went nowhere
    /// (the sender's counters; each receiver counts its own drops).
    fn send(&mut self, mem: &mut dyn GuestRam, frame: &Frame<'_>) -> Result<(), DropReason>;
}

impl Fabric for Box<dyn Fabric> {
    fn send(&mut self, mem: &mut dyn GuestRam, frame: &Frame<'_>) -> Result<(), DropReason> {
        (**self).send(mem, frame)
    }
}

/// The network device: a port and where its frames go.
pub struct Net<F: Fabric> {
    port: Arc<Port>,
    fabric: F,
    /// The transmit offloads its driver negotiated (CSUM, HOST_TSO4/6).
    offer: Offer,
    /// The chain being sent (reused: no allocation per frame; a chain's
    /// length is bounded by the queue).
    bufs: Vec<Buf>,
}

impl<F: Fabric> Net<F> {
    /// A device for `port`, sending through `fabric`.
    pub fn new(port: Arc<Port>, fabric: F) -> Self {
        Self {
            port,
            fabric,
            offer: Offer::default(),
            bufs: Vec::new(),
        }
    }

    /// Its port.
    pub fn port(&self) -> &Arc<Port> {
        &self.port
    }

    /// One transmit chain (in `self.bufs`): its frame to the fabric, or
    /// dropped.
    fn transmit(&mut self, mem: &mut dyn GuestRam) -> Result<(), DropReason> {
        // The device-readable buffers carry the header and the frame.
        self.bufs.retain(|b| !b.writable);
        let readable = &mut self.bufs;
        let total: u64 = readable.iter().map(|b| u64::from(b.len)).sum();
        if total < HDR as u64 {
            return Err(DropReason::BadHeader);
        }
        let mut head = [0u8; HDR + HEAD];
        let n = (total as usize).min(head.len());
        if !copy(mem, readable, 0, &mut head[..n], false) {
            return Err(DropReason::BadHeader);
        }
        let len = total - HDR as u64;
        if len < u64::from(MIN_FRAME) {
            return Err(DropReason::Runt);
        }
        if len > u64::from(MAX_GSO_FRAME) {
            return Err(DropReason::Oversized);
        }
        let len = len as u32;
        let meta =
            Meta::parse(&head[..HDR], &head[HDR..n], len, self.offer, MTU).map_err(
                |b| match b {
                    Bad::Header => DropReason::BadHeader,
                    Bad::Oversized => DropReason::Oversized,
                },
            )?;
        if meta.gso.is_none() && len > MAX_FRAME {
            return Err(DropReason::Oversized);
        }
        let mut dst = [0u8; 6];
        let mut src = [0u8; 6];
        dst.copy_from_slice(&head[HDR..HDR + 6]);
        src.copy_from_slice(&head[HDR + 6..HDR + 12]);
        advance(readable, HDR as u64);
        let frame = Frame {
            bufs: readable,
            len,
            dst,
            src,
            meta,
        };
        self.fabric.send(mem, &frame)?;
        self.port.counters.sent(len);
        Ok(())
    }
}

impl<F: Fabric> Device for Net<F> {
    fn id(&self) -> u32 {
        ID
    }

    fn features(&self) -> u64 {
        feature::VERSION_1
            | feature::RING_INDIRECT_DESC
            | feature::RING_EVENT_IDX
            | f::MAC
            | f::STATUS
            | f::MTU
            | f::MRG_RXBUF
            | f::CSUM
            | f::HOST_TSO4
            | f::HOST_TSO6
            | f::GUEST_CSUM
            | f::GUEST_TSO4
            | f::GUEST_TSO6
    }

    fn activate(&mut self, features: u64) {
        let has = |b: u64| features & b != 0;
        // Segmentation needs the checksum offload beside it (§5.1.3.1).
        self.offer = Offer {
            csum: has(f::CSUM),
            tso4: has(f::CSUM) && has(f::HOST_TSO4),
            tso6: has(f::CSUM) && has(f::HOST_TSO6),
        };
        let rx = Offer {
            csum: has(f::GUEST_CSUM),
            tso4: has(f::GUEST_CSUM) && has(f::GUEST_TSO4),
            tso6: has(f::GUEST_CSUM) && has(f::GUEST_TSO6),
        };
        self.port.set_offer(rx, has(f::MRG_RXBUF));
    }

    fn reset(&mut self) {
        self.offer = Offer::default();
        self.port.set_offer(Offer::default(), false);
    }

    fn queues(&self) -> usize {
        2
    }

    fn queue_max(&self) -> u16 {
        QUEUE_MAX
    }

    fn config(&self, offset: u64, out: &mut [u8]) {
        let mut cfg = [0u8; 12];
        cfg[0..6].copy_from_slice(&self.port.mac);
        cfg[6..8].copy_from_slice(&LINK_UP.to_le_bytes());
        cfg[8..10].copy_from_slice(&1u16.to_le_bytes());
        cfg[10..12].copy_from_slice(&MTU.to_le_bytes());
        config_bytes(&cfg, offset, out);
    }

    fn serve(
        &mut self,
        q: usize,
        queue: &mut Queue,
        mem: &mut dyn GuestRam,
    ) -> Result<Served, QueueError> {
        let mut s = Served::default();
        if q != TXQ {
            // The receive queue: buffers wait for frames; the switch
            // fills them (Port::deliver).
            return Ok(s);
        }
        // Each chain goes back as soon as it is sent: a driver waiting
        // for room sees it at once (returning them together at the end
        // cost twice the exits in M10).
        for _ in 0..TX_BUDGET {
            self.bufs.clear();
            let Some(head) = queue.pop_into(mem, &mut self.bufs)? else {
                queue.ask_notify(mem);
                if queue.pending(mem)? == 0 {
                    break;
                }
                continue;
            };
            if let Err(d) = self.transmit(mem) {
                self.port.counters.dropped(d);
            }
            queue.push_used(mem, head, 0)?;
            s.used = true;
        }
        s.more = queue.pending(mem)? > 0;
        if !s.more {
            queue.ask_notify(mem);
            s.more = queue.pending(mem)? > 0;
        }
        Ok(s)
    }

    fn queue_changed(&mut self, q: usize, queue: &Queue) {
        if q == RXQ {
            self.port.set_queue(queue);
        }
    }

    fn live_changed(&mut self, live: bool) {
        self.port.set_live(live);
    }

    fn attach_irq(&mut self, irq: Arc<IrqLine>) {
        self.port.set_irq(irq);
    }
}

#[cfg(test)]
#[path = "net_tests.rs"]
mod tests;
