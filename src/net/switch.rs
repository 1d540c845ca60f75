//! Where a frame goes: the forwarding decision of the hypervisor's switch,
//! pure. Every port has a configured MAC and sits on one LAN; frames never
//! leave their LAN.
//!
//! - Source: a port sends with its own MAC only (else [`DropReason::Spoofed`]),
//!   unless it is a bridge (a router VM forwarding for others); a bridge
//!   may not use another port's configured MAC, nor a group address.
//!   What a bridge sends from is learned, in a table of at most
//!   [`LEARNED_MAX`] entries (the least recently used goes), so the
//!   table never grows on a guest's behalf.
//! - Destination: a group address is flooded to every other port on the
//!   LAN; a unicast goes to the port that has that MAC, configured or
//!   learned on the same LAN; an unknown unicast can only be for something
//!   behind a bridge, so it goes to the LAN's bridges.

use super::{is_group, DropReason, Mac};
use alloc::vec::Vec;

/// Most learned addresses (behind bridges), over all LANs.
pub const LEARNED_MAX: usize = 64;
/// Most ports on the switch.
pub const MAX_PORTS: usize = 16;

/// A port as configured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PortSpec {
    /// Its MAC.
    pub mac: Mac,
    /// Its LAN (an index: equal numbers, same LAN).
    pub lan: u16,
    /// It may send from MACs not its own (a bridge or router VM).
    pub bridge: bool,
}

/// Where a frame goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dest {
    /// To one port.
    One(usize),
    /// To every other port on the sender's LAN (`bridges_only`: only the
    /// bridges among them).
    Flood {
        /// Unknown unicast: only bridges could want it.
        bridges_only: bool,
    },
}

#[derive(Debug, Clone, Copy)]
struct Learned {
    mac: Mac,
    lan: u16,
    port: usize,
    used: u64,
}

/// The switch's forwarding state.
#[derive(Debug, Clone)]
pub struct Switch {
    ports: Vec<PortSpec>,
    learned: Vec<Learned>,
    tick: u64,
}

impl Switch {
    /// A switch joining `ports` (at most [`MAX_PORTS`]; more are cut).
    pub fn new(mut ports: Vec<PortSpec>) -> Self {
        ports.truncate(MAX_PORTS);
        Self {
            ports,
            learned: Vec::with_capacity(LEARNED_MAX),
            tick: 0,
        }
    }

    /// The ports.
    pub fn ports(&self) -> &[PortSpec] {
        &self.ports
    }

    /// Learned addresses now.
    pub fn learned(&self) -> usize {
        self.learned.len()
    }

    fn configured(&self, lan: u16, mac: &Mac) -> Option<usize> {
        self.ports
            .iter()
            .position(|p| p.lan == lan && p.mac == *mac)
    }

    fn learn(&mut self, lan: u16, mac: Mac, port: usize) {
        self.tick += 1;
        let tick = self.tick;
        if let Some(e) = self
            .learned
            .iter_mut()
            .find(|e| e.lan == lan && e.mac == mac)
        {
            e.port = port;
            e.used = tick;
            return;
        }
        let e = Learned {
            mac,
            lan,
            port,
            used: tick,
        };
        if self.learned.len() < LEARNED_MAX {
            self.learned.push(e);
        } else if let Some(old) = self.learned.iter_mut().min_by_key(|e| e.used) {
            *old = e;
        }
    }

    /// Where a frame from port `from` with these addresses goes, or why
    /// it is dropped (the sender's counters).
    pub fn route(&mut self, from: usize, dst: &Mac, src: &Mac) -> Result<Dest, DropReason> {
        let p = *self.ports.get(from).ok_or(DropReason::NoDestination)?;
        if *src != p.mac {
            let taken = self.configured(p.lan, src).is_some();
            if !p.bridge || is_group(src) || taken || *src == [0; 6] {
                return Err(DropReason::Spoofed);
            }
            self.learn(p.lan, *src, from);
        }
        let dest = if is_group(dst) {
            Dest::Flood {
                bridges_only: false,
            }
        } else if let Some(to) = self.configured(p.lan, dst) {
            Dest::One(to)
        } else if let Some(e) = self
            .learned
            .iter()
            .find(|e| e.lan == p.lan && e.mac == *dst)
        {
            Dest::One(e.port)
        } else {
            Dest::Flood { bridges_only: true }
        };
        match dest {
            Dest::One(to) if to == from => Err(DropReason::NoDestination),
            Dest::Flood { bridges_only } if self.targets(from, bridges_only).next().is_none() => {
                Err(DropReason::NoDestination)
            }
            d => Ok(d),
        }
    }

    /// The ports a flood from `from` reaches: the others on its LAN.
    pub fn targets(&self, from: usize, bridges_only: bool) -> impl Iterator<Item = usize> + '_ {
        let lan = self.ports.get(from).map(|p| p.lan);
        self.ports
            .iter()
            .enumerate()
            .filter(move |(i, p)| *i != from && Some(p.lan) == lan && (p.bridge || !bridges_only))
            .map(|(i, _)| i)
    }
}

#[cfg(test)]
#[path = "switch_tests.rs"]
mod tests;
