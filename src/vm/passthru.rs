//! Devices of the firmware's device tree given to a VM by name
//! (`passthrough =`): the name resolved to one node (a path, an alias or a
//! unique node name), its registers as CPU physical pages and its
//! interrupts as GIC SPIs (every ancestor bus's `ranges` applied: the
//! user never writes 0x7e... or 0xfe... by hand), whether it can master
//! DMA and what RAM that DMA reaches, and the checks that no page or
//! interrupt line ends up with two owners. Pure: the VMM maps what this
//! decides.

use crate::dt::bus::{self, Found};
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use fdt::Fdt;

/// Stage-2 page size: what a passed-through register block is rounded to.
pub const PAGE: u64 = 0x1000;

/// One resolved device: the node and what the VM gets of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolved {
    /// Its full path in the firmware's tree.
    pub path: String,
    /// Its first `compatible` string.
    pub compatible: String,
    /// Its registers, CPU physical (address, size).
    pub regs: Vec<(u64, u64)>,
    /// Its interrupts, GIC INTIDs (SPIs).
    pub spis: Vec<u32>,
    /// Whether it can be a bus master (DMA), and if the tree limits it,
    /// the CPU ranges its DMA reaches.
    pub dma: Dma,
    /// The firmware left it enabled (`status`).
    pub enabled: bool,
}

/// A device's DMA.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Dma {
    /// A register block only (UARTs, I2C, SPI, GPIO, ...).
    None,
    /// A bus master: it reads and writes RAM itself. `reach`: the CPU
    /// ranges it can address (None: all of RAM); `known`: its compatible
    /// is a known master (false: an unknown device, taken as one).
    Master {
        /// CPU physical ranges its DMA reaches (None: no limit).
        reach: Option<Vec<(u64, u64)>>,
        /// Known to be a bus master (not merely assumed).
        known: bool,
    },
}

impl Resolved {
    /// Its registers as whole 4 KiB pages, merged and in order.
    pub fn pages(&self) -> Vec<(u64, u64)> {
        let mut v: Vec<(u64, u64)> = self
            .regs
            .iter()
            .filter(|r| r.1 > 0)
            .map(|&(a, n)| {
                let s = a & !(PAGE - 1);
                let e = a.saturating_add(n).saturating_add(PAGE - 1) & !(PAGE - 1);
                (s, e - s)
            })
            .collect();
        v.sort_unstable();
        let mut out: Vec<(u64, u64)> = Vec::new();
        for (a, n) in v {
            match out.last_mut() {
                Some(l) if a <= l.0 + l.1 => l.1 = l.1.max(a + n - l.0),
                _ => out.push((a, n)),
            }
        }
        out
    }

    /// Whether it is a bus master.
    pub fn is_dma(&self) -> bool {
        matches!(self.dma, Dma::Master { .. })
    }
}

/// Compatibles of devices known to master DMA on a BCM2711 (SD hosts,
/// USB, Ethernet, PCIe, the DMA engines, the GPU's masters).
const DMA_MASTERS: [&str; 13] = [
    "brcm,bcm2835-sdhci",
    "brcm,bcm2711-emmc2",
    "brcm,bcm2835-sdhost",
    "brcm,bcm2835-usb",
    "brcm,bcm2708-usb",
    "snps,dwc2",
    "brcm,bcm2711-genet-v5",
    "brcm,bcm2711-pcie",
    "brcm,bcm2835-dma",
    "brcm,bcm2711-dma",
    "brcm,bcm2711-v3d",
    "brcm,bcm2711-hvs",
    "brcm,bcm2835-txp",
];

/// Compatibles of register-only devices (they may use a DMA engine
/// through `dmas`, which the VM does not get; never a master themselves).
const MMIO_ONLY: [&str; 14] = [
    "arm,pl011",
    "brcm,bcm2835-aux-uart",
    "brcm,bcm2711-i2c",
    "brcm,bcm2835-i2c",
    "brcm,bcm2835-spi",
    "brcm,bcm2835-aux-spi",
    "brcm,bcm2711-gpio",
    "brcm,bcm2835-gpio",
    "brcm,bcm2835-pwm",
    "brcm,bcm2711-thermal",
    "brcm,bcm2711-rng200",
    "brcm,bcm2835-rng",
    "brcm,bcm2835-system-timer",
    "brcm,bcm2835-i2s",
];

/// Devices the hypervisor keeps whatever the configuration says, by
/// compatible, with why.
const KEPT: [(&str, &str); 7] = [
    ("arm,gic-400", "the interrupt controller (the hypervisor's)"),
    (
        "brcm,bcm2835-mbox",
        "the VideoCore mailbox (the hypervisor's; VMs get it emulated: devices = mailbox)",
    ),
    (
        "brcm,bcm2835-aux-uart",
        "the mini UART, the hypervisor's console once a VM owns the PL011",
    ),
    (
        "brcm,bcm2711-cprman",
        "the clock manager (clocks of every device)",
    ),
    (
        "raspberrypi,bcm2835-power",
        "the power domains of every device",
    ),
    (
        "brcm,bcm2711-pm",
        "the power manager and watchdog (the board's reset)",
    ),
    (
        "brcm,bcm2836-l1-intc",
        "the cores' local interrupt controller",
    ),
];

/// Why the hypervisor keeps a node with compatible `compatible`, if it
/// does.
pub fn kept(compatible: &str) -> Option<&'static str> {
    KEPT.iter().find(|(c, _)| *c == compatible).map(|(_, w)| *w)
}

/// Every node of the tree with its addresses translated (resolve against
/// this).
pub fn nodes<'a>(fdt: &Fdt<'a>) -> Vec<Found<'a>> {
    bus::find(fdt, &|_| true)
}

/// The node `name` names: a full path (`/soc/i2c@7e804000`), an alias of
/// `/aliases` (`ethernet0`), or a node name unique in the tree, with or
/// without its unit address (`mmc@7e300000`, `usb`).
pub fn lookup<'n, 'a>(
    fdt: &Fdt<'a>,
    nodes: &'n [Found<'a>],
    name: &str,
) -> Result<&'n Found<'a>, String> {
    if name.is_empty() {
        return Err("passthrough: no device named".into());
    }
    if name.starts_with('/') {
        return nodes.iter().find(|f| f.path == name).ok_or_else(|| {
            let parent = &name[..name.rfind('/').unwrap_or(0)];
            let base = base_name(&name[name.rfind('/').map_or(0, |i| i + 1)..]);
            let leaf = &name[name.rfind('/').map_or(0, |i| i + 1)..];
            let same: Vec<&str> = nodes
                .iter()
                .filter(|f| {
                    let (p, n) = f.path.split_at(f.path.rfind('/').unwrap_or(0));
                    p == parent && base_name(&n[1..]) == base
                })
                .map(|f| f.path.as_str())
                .collect();
            // Those whose unit address begins as the one typed, if any;
            // else every node of that name there (at most four).
            let close: Vec<&str> = same
                .iter()
                .copied()
                .filter(|p| p[p.rfind('/').map_or(0, |i| i + 1)..].starts_with(leaf))
                .collect();
            let near: Vec<&str> = if close.is_empty() { same } else { close }
                .into_iter()
                .take(4)
                .collect();
            if near.is_empty() {
                format!("passthrough: no node {name} in the firmware's device tree")
            } else {
                format!(
                    "passthrough: no node {name} in the firmware's device tree (did you mean {}?)",
                    near.join(" or ")
                )
            }
        });
    }
    if let Some(path) = fdt
        .find_node("/aliases")
        .and_then(|a| a.property(name))
        .and_then(|p| p.as_str())
    {
        let path = path.trim_end_matches('\0');
        return nodes.iter().find(|f| f.path == path).ok_or_else(|| {
            format!("passthrough: alias {name} points at {path}, which is not in the tree")
        });
    }
    let hits: Vec<&Found<'a>> = nodes
        .iter()
        .filter(|f| {
            let leaf = &f.path[f.path.rfind('/').map_or(0, |i| i + 1)..];
            leaf == name || (!name.contains('@') && base_name(leaf) == name)
        })
        .collect();
    match hits.as_slice() {
        [one] => Ok(one),
        [] => Err(format!(
            "passthrough: '{name}' is neither a path, an alias nor a node name in the firmware's device tree"
        )),
        many => Err(format!(
            "passthrough: '{name}' names {} nodes ({}): give the path",
            many.len(),
            many.iter().map(|f| f.path.as_str()).collect::<Vec<_>>().join(", ")
        )),
    }
}

fn base_name(leaf: &str) -> &str {
    leaf.split('@').next().unwrap_or(leaf)
}

/// `name` resolved to a device a VM may own: it has registers, every one
/// reaches the CPU, its interrupts are GIC SPIs, and the hypervisor does
/// not keep it.
pub fn resolve(fdt: &Fdt<'_>, nodes: &[Found<'_>], name: &str) -> Result<Resolved, String> {
    let f = lookup(fdt, nodes, name)?;
    let path = &f.path;
    if let Some(why) = kept(f.compatible) {
        return Err(format!("passthrough: {path} is {why}"));
    }
    if path.matches('/').count() != 2 {
        return Err(format!(
            "passthrough: {path}: pivisor passes devices that sit on a bus under the root (/soc, /scb, /emmc2bus, ...), whole with their children"
        ));
    }
    if f.regs.is_empty() && f.lost_regs == 0 {
        return Err(format!(
            "passthrough: {path} has no reg (no registers to map: not a device a VM can own)"
        ));
    }
    if f.lost_regs > 0 {
        return Err(format!(
            "passthrough: {path}: {} of its reg entries do not reach the CPU through its buses' ranges",
            f.lost_regs
        ));
    }
    if f.other_irqs > 0 {
        return Err(format!(
            "passthrough: {path} has interrupts that are not GIC SPIs (another interrupt controller's, or PPIs): pivisor passes SPIs only"
        ));
    }
    let dma = if MMIO_ONLY.contains(&f.compatible) {
        Dma::None
    } else {
        Dma::Master {
            reach: f.dma_reach.clone(),
            known: DMA_MASTERS.contains(&f.compatible),
        }
    };
    Ok(Resolved {
        path: path.clone(),
        compatible: f.compatible.into(),
        regs: f.regs.clone(),
        spis: f.spis.clone(),
        dma,
        enabled: f.enabled,
    })
}

/// One register step of bringing a device to rest: read the 32-bit
/// register at `off`, clear `clear`, set `set`, write it back, then wait
/// (bounded) until the bits `wait_clear` read as zero.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Step {
    /// Register offset (32-bit aligned, inside the device's first reg).
    pub off: u64,
    /// Bits cleared.
    pub clear: u32,
    /// Bits set.
    pub set: u32,
    /// Bits that must read zero afterwards (a reset completing).
    pub wait_clear: u32,
}

/// SDHCI (SD Host Controller Simplified Specification 3.00, 2.2.18):
/// SOFTWARE_RESET's Reset All (bit 0 of the byte at 0x2f, so bit 24 of
/// the 0x2c word: the BCM2711's controllers take 32-bit accesses only);
/// it self-clears when the reset is done, and leaves DMA, interrupts and
/// the card's clock and power off.
const SDHCI_REST: [Step; 1] = [Step {
    off: 0x2c,
    clear: 0,
    set: 1 << 24,
    wait_clear: 1 << 24,
}];

/// DWC2 (the Pi's USB OTG controller): GAHBCFG's global interrupt and
/// DMA enables cleared; the host port's power off (HPRT0.PrtPwr, written
/// with its write-1-to-clear bits as zero), so what is plugged in sees a
/// detach and the next owner's driver, powering the port, a fresh
/// connect; then a core soft reset (GRSTCTL.CSftRst, which the core
/// clears when done): its channels and DMA stop.
const DWC2_REST: [Step; 3] = [
    Step {
        off: 0x008,
        clear: 1 | 1 << 5,
        set: 0,
        wait_clear: 0,
    },
    Step {
        off: 0x440,
        clear: 1 << 12 | 1 << 1 | 1 << 2 | 1 << 3 | 1 << 5,
        set: 0,
        wait_clear: 0,
    },
    Step {
        off: 0x010,
        clear: 0,
        set: 1,
        wait_clear: 1,
    },
];

/// How a device of compatible `compatible` is brought to rest when its
/// VM halts or restarts, before its RAM is scrubbed (a DMA master must not
/// write into the next boot's images). Empty: left as the guest left it
/// (register-only devices; and, documented, GENET and PCIe, which
/// pivisor does not reset).
pub fn rest_steps(compatible: &str) -> &'static [Step] {
    match compatible {
        "brcm,bcm2835-sdhci" | "brcm,bcm2711-emmc2" => &SDHCI_REST,
        "brcm,bcm2835-usb" | "brcm,bcm2708-usb" | "snps,dwc2" => &DWC2_REST,
        _ => &[],
    }
}

#[path = "passthru_claims.rs"]
mod claims;
pub use claims::{check_clear, check_owners, dma_window, Claim, Owner};

#[cfg(test)]
#[path = "passthru_tests.rs"]
mod tests;
