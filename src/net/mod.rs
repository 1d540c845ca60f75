//! The virtual LANs: a switch inside the hypervisor joining the VMs'
//! virtio-net ports ([`crate::virtio::net`]), so any VM talks to any
//! other on its LAN with no helper VM. Pure: which ports a frame goes to
//! ([`switch`]) and the ports themselves ([`lan`]); the hypervisor builds
//! one [`lan::Lan`] from the VMs' configurations at boot.

pub mod lan;
pub mod switch;

pub use crate::virtio::net::{is_group, DropReason, Mac, BROADCAST};

/// A stable locally administered unicast MAC for a VM named `name`
/// (02:xx:xx:xx:xx:xx, xx from an FNV-1a hash of the name), so a VM keeps
/// its address across boots and bundles.
pub fn mac_from_name(name: &str) -> Mac {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in name.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    let b = h.to_le_bytes();
    [0x02, b[0], b[1], b[2], b[3], b[4]]
}

/// Formats a MAC as aa:bb:cc:dd:ee:ff.
pub struct MacFmt(pub Mac);

impl core::fmt::Display for MacFmt {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let m = self.0;
        write!(
            f,
            "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
            m[0], m[1], m[2], m[3], m[4], m[5]
        )
    }
}
