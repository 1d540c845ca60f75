//! A network port's counters: frames and bytes both ways, drops by
//! reason (what the VM's end-of-life report and the monitor show), and
//! the Ethernet address types the port and the switch share.

use core::fmt;
use core::sync::atomic::{AtomicU64, Ordering};

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
    /// Sent: a virtio-net header asking for an offload its driver did not
    /// negotiate or that contradicts the frame, or too short for the
    /// header.
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
    /// Received: a segmentation offload the receiver's driver did not
    /// take, whose frame would be cut into more than
    /// [`super::offload::MAX_SEGS`] segments.
    Segments,
    /// Received: the receiver's ring was nearly full and this sender
    /// had had more than its share of it (others were sending too).
    Share,
}

impl DropReason {
    /// Every reason, in counter order.
    pub const ALL: [DropReason; 11] = [
        DropReason::Runt,
        DropReason::Oversized,
        DropReason::BadHeader,
        DropReason::Spoofed,
        DropReason::NoDestination,
        DropReason::NoRxBuffer,
        DropReason::RxTooSmall,
        DropReason::RxFault,
        DropReason::Storm,
        DropReason::Segments,
        DropReason::Share,
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
            DropReason::Segments => "segments",
            DropReason::Share => "share",
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

    /// Counts a frame put into the port's receive buffers.
    pub(super) fn received(&self, bytes: u32) {
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
