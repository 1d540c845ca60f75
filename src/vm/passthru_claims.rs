//! Who owns what among passed-through devices: one owner (a VM or the
//! hypervisor) per device, 4 KiB page and interrupt line; a VM's pages
//! clear of its own emulated devices; identity RAM where every DMA master
//! reaches. Pure.

use super::{Dma, Resolved};
use alloc::format;
use alloc::string::String;

/// Who a device goes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Owner<'o> {
    /// A VM, by name.
    Vm(&'o str),
    /// The hypervisor, for the reason given.
    Hypervisor(&'o str),
}

impl core::fmt::Display for Owner<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Owner::Vm(n) => write!(f, "VM '{n}'"),
            Owner::Hypervisor(w) => write!(f, "the hypervisor ({w})"),
        }
    }
}

/// One device with its owner.
#[derive(Debug, Clone, Copy)]
pub struct Claim<'c> {
    /// Who gets it.
    pub owner: Owner<'c>,
    /// The device.
    pub dev: &'c Resolved,
    /// The configuration line that asks for it (0: none, the
    /// hypervisor's own).
    pub line: usize,
}

impl Claim<'_> {
    /// Its owner, with the line that asks for it.
    fn who(&self) -> String {
        if self.line > 0 {
            format!("{} (line {})", self.owner, self.line)
        } else {
            format!("{}", self.owner)
        }
    }
}

/// Checks that no device, 4 KiB page or interrupt line would have two
/// owners; the first conflict, naming both devices and both owners.
pub fn check_owners(claims: &[Claim<'_>]) -> Result<(), String> {
    // A device claimed twice first (the plainest conflict), then pages
    // and lines.
    for (i, a) in claims.iter().enumerate() {
        if let Some(b) = claims[..i].iter().find(|b| b.dev.path == a.dev.path) {
            if a.owner == b.owner {
                return Err(format!(
                    "{} is given to {} twice (line {} and line {})",
                    a.dev.path, a.owner, b.line, a.line
                ));
            }
            return Err(format!(
                "{} is claimed by both {} and {} (one owner at most)",
                a.dev.path,
                b.who(),
                a.who()
            ));
        }
    }
    for (i, a) in claims.iter().enumerate() {
        for b in &claims[..i] {
            if a.owner == b.owner {
                continue;
            }
            let (pa, pb) = (a.dev.pages(), b.dev.pages());
            if let Some(p) = pa.iter().find_map(|x| {
                pb.iter()
                    .find(|y| x.0 < y.0 + y.1 && y.0 < x.0 + x.1)
                    .map(|y| x.0.max(y.0))
            }) {
                return Err(format!(
                    "{} ({}) and {} ({}) share the 4 KiB page {p:#x}: one owner must have both",
                    b.dev.path,
                    b.who(),
                    a.dev.path,
                    a.who()
                ));
            }
            if let Some(s) = a.dev.spis.iter().find(|s| b.dev.spis.contains(s)) {
                return Err(format!(
                    "{} ({}) and {} ({}) share interrupt line SPI {} (INTID {s}): one owner must have both",
                    b.dev.path,
                    b.who(),
                    a.dev.path,
                    a.who(),
                    s - 32
                ));
            }
        }
    }
    Ok(())
}

/// Checks that `dev`'s pages stay clear of the IPA ranges `taken` (the
/// VM's emulated devices and GIC interface, by name) and of RAM.
pub fn check_clear(dev: &Resolved, taken: &[(u64, u64, &str)]) -> Result<(), String> {
    for (a, n) in dev.pages() {
        if let Some((_, _, what)) = taken.iter().find(|t| a < t.0 + t.1 && t.0 < a + n) {
            return Err(format!(
                "passthrough: {} at {a:#x} would cover the VM's {what}",
                dev.path
            ));
        }
    }
    Ok(())
}

/// The RAM a VM with these DMA masters may have as identity RAM: the
/// intersection of every master's reach (None: no limit).
pub fn dma_window(devs: &[&Resolved]) -> Result<Option<(u64, u64)>, String> {
    let mut w: Option<(u64, u64)> = None;
    for d in devs {
        let Dma::Master { reach: Some(r), .. } = &d.dma else {
            continue;
        };
        // The largest range it reaches (the Pi 4's are one range each).
        let Some(&(a, n)) = r.iter().max_by_key(|x| x.1) else {
            return Err(format!(
                "passthrough: {}: its bus's dma-ranges reach no CPU address",
                d.path
            ));
        };
        w = Some(match w {
            None => (a, n),
            Some((b, m)) => {
                let s = a.max(b);
                let e = (a + n).min(b + m);
                if e <= s {
                    return Err(format!(
                        "passthrough: the DMA masters' reachable RAM does not overlap ({} reaches {a:#x}-{:#x})",
                        d.path,
                        a + n
                    ));
                }
                (s, e - s)
            }
        });
    }
    Ok(w)
}
