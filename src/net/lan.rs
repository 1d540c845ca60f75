//! The switch with its ports: what the hypervisor builds once at boot
//! from the VMs' `net` lines, and what a VM's virtio-net device sends
//! through ([`LanPort`], its [`Fabric`]).
//!
//! Storm control: a port floods its LAN (broadcast and multicast) with
//! at most [`STORM_RATE`] frames a second, [`STORM_BURST`] at once; past
//! that its group frames are dropped (counted `storm`), so a VM flooding
//! the LAN cannot fill every other VM's receive ring. Unicast is not
//! limited here (a receiver's ring is shared by its senders first come,
//! first served).
//!
//! Sending: the forwarding decision under the switch's lock (brief: no
//! frame is copied under it), then each destination port's delivery
//! under that port's own receive lock, one port at a time. A sender never
//! holds two ports' locks and never waits for a receiver's vCPU: a
//! receiver with no buffer posted drops the frame.

use super::switch::{Dest, PortSpec, Switch, MAX_PORTS};
use super::DropReason;
use crate::sync::Mutex;
use crate::virtio::net::{Fabric, Frame, Port};
use crate::virtio::GuestRam;
use alloc::sync::Arc;
use alloc::vec::Vec;

/// Group frames a port may flood per second.
pub const STORM_RATE: u64 = 2000;
/// Group frames a port may flood at once.
pub const STORM_BURST: u64 = 200;

/// A port's flooding allowance.
#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: u64,
    /// When it was last refilled (microseconds of the LAN's clock).
    at: u64,
}

/// The switch and its ports.
pub struct Lan {
    switch: Mutex<Switch>,
    ports: Vec<Arc<Port>>,
    /// Under the switch's lock's sibling: one bucket per port.
    storm: Mutex<Vec<Bucket>>,
    /// Microseconds, monotonic.
    clock: fn() -> u64,
}

impl Lan {
    /// A switch joining `specs` (at most [`MAX_PORTS`]), its storm
    /// control timed by `clock` (microseconds, monotonic).
    pub fn new(specs: Vec<PortSpec>, clock: fn() -> u64) -> Self {
        let ports: Vec<Arc<Port>> = specs
            .iter()
            .take(MAX_PORTS)
            .map(|s| Arc::new(Port::new(s.mac)))
            .collect();
        let now = clock();
        Self {
            storm: Mutex::new(alloc::vec![
                Bucket {
                    tokens: STORM_BURST,
                    at: now
                };
                ports.len()
            ]),
            switch: Mutex::new(Switch::new(specs)),
            ports,
            clock,
        }
    }

    /// Takes one flooding token of port `from`, if it has one.
    fn may_flood(&self, from: usize) -> bool {
        let now = (self.clock)();
        let mut b = self.storm.lock();
        let Some(b) = b.get_mut(from) else {
            return false;
        };
        let dt = now.saturating_sub(b.at);
        let add = dt.saturating_mul(STORM_RATE) / 1_000_000;
        if add > 0 {
            b.tokens = (b.tokens + add).min(STORM_BURST);
            // Keep the remainder: advance the clock by what was credited.
            b.at += add * 1_000_000 / STORM_RATE;
        }
        if b.tokens == 0 {
            return false;
        }
        b.tokens -= 1;
        true
    }

    /// Port `i`.
    pub fn port(&self, i: usize) -> Option<&Arc<Port>> {
        self.ports.get(i)
    }

    /// How many ports.
    pub fn len(&self) -> usize {
        self.ports.len()
    }

    /// Whether it has no ports.
    pub fn is_empty(&self) -> bool {
        self.ports.is_empty()
    }

    /// Sends `frame` from port `from`: see [`Fabric::send`].
    pub fn send(
        &self,
        from: usize,
        mem: &mut dyn GuestRam,
        frame: &Frame<'_>,
    ) -> Result<(), DropReason> {
        let mut targets = [0usize; MAX_PORTS];
        let mut n = 0;
        {
            let mut sw = self.switch.lock();
            match sw.route(from, &frame.dst, &frame.src)? {
                Dest::One(to) => {
                    targets[0] = to;
                    n = 1;
                }
                Dest::Flood { bridges_only } => {
                    if !bridges_only && !self.may_flood(from) {
                        return Err(DropReason::Storm);
                    }
                    for t in sw.targets(from, bridges_only) {
                        if n < MAX_PORTS {
                            targets[n] = t;
                            n += 1;
                        }
                    }
                }
            }
        }
        for &t in &targets[..n] {
            if let Some(p) = self.ports.get(t) {
                // A receiver's drop is its own (counted there).
                let _ = p.deliver(mem, frame.bufs, frame.len, &frame.meta, from);
            }
        }
        Ok(())
    }
}

/// Port `index` of a shared [`Lan`], as its device's [`Fabric`].
pub struct LanPort<L: core::ops::Deref<Target = Lan> + Send> {
    /// The LAN.
    pub lan: L,
    /// Which port.
    pub index: usize,
}

impl<L: core::ops::Deref<Target = Lan> + Send> Fabric for LanPort<L> {
    fn send(&mut self, mem: &mut dyn GuestRam, frame: &Frame<'_>) -> Result<(), DropReason> {
        self.lan.send(self.index, mem, frame)
    }
}
