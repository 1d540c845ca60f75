//! The switch with its ports: what the hypervisor builds once at boot
//! from the VMs' `net` lines, and what a VM's virtio-net device sends
//! through ([`LanPort`], its [`Fabric`]).
//!
//! Sending: the forwarding decision under the switch's lock (brief: no
//! frame is copied under it), then each destination port's delivery
//! under that port's own receive lock, one port at a time. A sender never
//! holds two ports' locks and never waits for a receiver's vCPU: a
//! receiver with no buffer posted drops the frame.

use super::switch::{Dest, PortSpec, Switch, MAX_PORTS};
use super::{DropReason, Mac};
use crate::sync::Mutex;
use crate::virtio::net::{Fabric, Port};
use crate::virtio::queue::Buf;
use crate::virtio::GuestRam;
use alloc::sync::Arc;
use alloc::vec::Vec;

/// The switch and its ports.
pub struct Lan {
    switch: Mutex<Switch>,
    ports: Vec<Arc<Port>>,
}

impl Lan {
    /// A switch joining `specs` (at most [`MAX_PORTS`]).
    pub fn new(specs: Vec<PortSpec>) -> Self {
        let ports = specs
            .iter()
            .take(MAX_PORTS)
            .map(|s| Arc::new(Port::new(s.mac)))
            .collect();
        Self {
            switch: Mutex::new(Switch::new(specs)),
            ports,
        }
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

    /// Sends a frame from port `from`: see [`Fabric::send`].
    pub fn send(
        &self,
        from: usize,
        mem: &mut dyn GuestRam,
        frame: &[Buf],
        len: u32,
        dst: &Mac,
        src: &Mac,
    ) -> Result<(), DropReason> {
        let mut targets = [0usize; MAX_PORTS];
        let mut n = 0;
        {
            let mut sw = self.switch.lock();
            match sw.route(from, dst, src)? {
                Dest::One(to) => {
                    targets[0] = to;
                    n = 1;
                }
                Dest::Flood { bridges_only } => {
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
                let _ = p.deliver(mem, frame, len);
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
    fn send(
        &mut self,
        mem: &mut dyn GuestRam,
        frame: &[Buf],
        len: u32,
        dst: &Mac,
        src: &Mac,
    ) -> Result<(), DropReason> {
        self.lan.send(self.index, mem, frame, len, dst, src)
    }
}
