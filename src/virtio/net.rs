//! The virtio network device (virtio 1.1 §5.1): a port of the
//! hypervisor's switch ([`crate::net`]). Two queues: receive (0) and
//! transmit (1).
//!
//! Features offered: VERSION_1, MAC, STATUS, MTU (1500),
//! RING_INDIRECT_DESC and RING_EVENT_IDX; no checksum or segmentation
//! offloads (the switch copies frames as they are and could not honour
//! them), no MRG_RXBUF (every receive buffer holds a whole frame), never
//! ACCESS_PLATFORM. Configuration space: mac, status (LINK_UP),
//! max_virtqueue_pairs 1, mtu 1500.
//!
//! Every frame starts with the 12-byte `virtio_net_hdr` (VERSION_1).
//!
//! - Transmit ([`Device::serve`] on queue 1, on the sender's core): at
//!   most [`TX_BUDGET`] frames per serve (the rest is carried over, so a
//!   flooding VM is bounded per exit). A frame is the chain's
//!   device-readable bytes after the header; dropped and counted if the
//!   header asks for an offload (flags or gso_type not 0), if it is
//!   shorter than an Ethernet header or longer than [`MAX_FRAME`], and by
//!   the switch (spoofed source, nowhere to go). Every chain goes back
//!   with used length 0, dropped or not.
//! - Receive ([`Port::deliver`], on the sender's core): the receiver's
//!   next receive chain, the header (num_buffers 1) and the frame copied
//!   once, straight from the sender's buffers into the receiver's; no
//!   buffer posted, or too small a one, drops the frame on the receiver's
//!   counters and never makes the sender wait. The receive queue's state
//!   lives in the port ([`Port`]), not in the transport: the transport
//!   hands it over when the driver makes the queue ready or resets it
//!   ([`Device::queue_changed`]), and the port raises the interrupt
//!   through the shared [`IrqLine`]. A malformed receive queue found
//!   there puts the device into DEVICE_NEEDS_RESET as the transport would.

use super::irq::IrqLine;
use super::mmio::{Device, Served};
use super::queue::{Buf, Queue, QueueError};
use super::stream::{config_bytes, copy, slice};
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
    /// The device checksums partial packets (never offered).
    pub const CSUM: u64 = 1 << 0;
    /// mtu in the configuration is valid.
    pub const MTU: u64 = 1 << 3;
    /// mac in the configuration is valid.
    pub const MAC: u64 = 1 << 5;
    /// Merged receive buffers (never offered).
    pub const MRG_RXBUF: u64 = 1 << 15;
    /// status in the configuration is valid.
    pub const STATUS: u64 = 1 << 16;
}

/// The configuration's link status: up.
pub const LINK_UP: u16 = 1;

/// Where a port's frames go: the switch (the hypervisor's LAN; a
/// loopback in tests).
pub trait Fabric: Send {
    /// Sends the frame `frame` (`len` bytes, checked buffers in `mem`,
    /// addressed `dst` from `src`): Err says why it went nowhere (the
    /// sender's counters; each receiver counts its own drops).
    fn send(
        &mut self,
        mem: &mut dyn GuestRam,
        frame: &[Buf],
        len: u32,
        dst: &Mac,
        src: &Mac,
    ) -> Result<(), DropReason>;
}

impl Fabric for Box<dyn Fabric> {
    fn send(
        &mut self,
        mem: &mut dyn GuestRam,
        frame: &[Buf],
        len: u32,
        dst: &Mac,
        src: &Mac,
    ) -> Result<(), DropReason> {
        (**self).send(mem, frame, len, dst, src)
    }
}

/// The network device: a port and where its frames go.
pub struct Net<F: Fabric> {
    port: Arc<Port>,
    fabric: F,
}

impl<F: Fabric> Net<F> {
    /// A device for `port`, sending through `fabric`.
    pub fn new(port: Arc<Port>, fabric: F) -> Self {
        Self { port, fabric }
    }

    /// Its port.
    pub fn port(&self) -> &Arc<Port> {
        &self.port
    }

    /// One transmit chain: its frame to the fabric, or dropped.
    fn transmit(&mut self, mem: &mut dyn GuestRam, bufs: &[Buf]) -> Result<(), DropReason> {
        let readable: Vec<Buf> = bufs.iter().copied().filter(|b| !b.writable).collect();
        let total: u64 = readable.iter().map(|b| u64::from(b.len)).sum();
        if total < HDR as u64 {
            return Err(DropReason::BadHeader);
        }
        let mut head = [0u8; HDR + 14];
        let n = (total as usize).min(head.len());
        if !copy(mem, &readable, 0, &mut head[..n], false) {
            return Err(DropReason::BadHeader);
        }
        // flags (NEEDS_CSUM, DATA_VALID) and gso_type: nothing offered.
        if head[0] != 0 || head[1] != 0 {
            return Err(DropReason::BadHeader);
        }
        let len = total - HDR as u64;
        if len < u64::from(MIN_FRAME) {
            return Err(DropReason::Runt);
        }
        if len > u64::from(MAX_FRAME) {
            return Err(DropReason::Oversized);
        }
        let len = len as u32;
        let mut dst = [0u8; 6];
        let mut src = [0u8; 6];
        dst.copy_from_slice(&head[HDR..HDR + 6]);
        src.copy_from_slice(&head[HDR + 6..HDR + 12]);
        let frame = slice(&readable, HDR as u64, u64::MAX);
        self.fabric.send(mem, &frame, len, &dst, &src)?;
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
        for _ in 0..TX_BUDGET {
            let Some(c) = queue.pop(mem)? else {
                queue.ask_notify(mem);
                if queue.pending(mem)? == 0 {
                    return Ok(s);
                }
                continue;
            };
            if let Err(d) = self.transmit(mem, &c.bufs) {
                self.port.counters.dropped(d);
            }
            queue.push_used(mem, c.head, 0)?;
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
