//! The VMs' LANs: one switch ([`crate::net::lan::Lan`]) built at boot
//! from every VM's `net` line, before any VM's devices are attached; each
//! VM's virtio-net device is one of its ports. Fixed after boot: the
//! ports never change, so nothing grows on a guest's behalf.

use crate::net::lan::{Lan, LanPort};
use crate::net::switch::PortSpec;
use crate::virtio::net::{Fabric, Port};
use crate::vm::config::{NetConfig, VmConfig};
use alloc::boxed::Box;
use alloc::format;
use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec::Vec;

/// The switch, and which VM each port belongs to.
struct Ports {
    lan: Lan,
    owners: Vec<usize>,
}

static LAN: spin::Once<Ports> = spin::Once::new();

/// Microseconds of the generic timer (storm control's clock).
fn clock_us() -> u64 {
    let (c, f) = (
        crate::arch::cpu::counter(),
        crate::arch::cpu::counter_freq(),
    );
    (u128::from(c) * 1_000_000 / u128::from(f.max(1))) as u64
}

/// Builds the switch from the VMs' configurations (VM index = position).
pub fn build(cfgs: &[&VmConfig<'_>]) {
    let mut names: Vec<&str> = Vec::new();
    let mut specs = Vec::new();
    let mut owners = Vec::new();
    for (i, c) in cfgs.iter().enumerate() {
        let Some(n) = &c.net else { continue };
        let lan = match names.iter().position(|l| *l == n.lan) {
            Some(k) => k,
            None => {
                names.push(n.lan);
                names.len() - 1
            }
        };
        specs.push(PortSpec {
            mac: n.mac_for(c.name),
            lan: lan as u16,
            bridge: n.bridge,
        });
        owners.push(i);
    }
    LAN.call_once(|| Ports {
        lan: Lan::new(specs, clock_us),
        owners,
    });
}

/// VM `index`'s port and its way onto the switch.
pub fn port(index: usize, n: &NetConfig<'_>) -> Result<(Arc<Port>, Box<dyn Fabric>), String> {
    let what = || format!("net = {} (line {})", n.lan, n.line);
    let p = LAN
        .get()
        .ok_or_else(|| format!("{}: the switch was not built", what()))?;
    let k = p.owners.iter().position(|&o| o == index).ok_or_else(|| {
        format!(
            "{}: no port on the switch (more than {} interfaces?)",
            what(),
            crate::net::switch::MAX_PORTS
        )
    })?;
    let port = p
        .lan
        .port(k)
        .cloned()
        .ok_or_else(|| format!("{}: no port on the switch", what()))?;
    Ok((
        port,
        Box::new(LanPort {
            lan: &p.lan,
            index: k,
        }),
    ))
}
