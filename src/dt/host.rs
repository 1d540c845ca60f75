//! The platform facts the hypervisor takes from the firmware's device tree:
//! RAM, reservations, /chosen, the CPUs and how to start them, the
//! peripheral windows (/soc `ranges`) and the console UART and GPIO blocks.
//!
//! Input must be a blob that passed [`super::blob::sanitize`]; the `fdt`
//! crate does the node and property lookups.

use super::DtError;
use crate::fixedvec::FixedVec;
use crate::region::Range;
use fdt::{node::FdtNode, Fdt};

/// Most CPUs recorded.
pub const MAX_CPUS: usize = 8;

/// A reserved region named by the tree.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Reserved<'a> {
    /// The range.
    pub range: Range,
    /// `/memreserve/` or the /reserved-memory child's name.
    pub name: &'a str,
    /// `no-map`: must not even be mapped.
    pub no_map: bool,
}

/// One CPU node.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CpuNode<'a> {
    /// MPIDR affinity bits (`reg`).
    pub mpidr: u64,
    /// `enable-method` ("" when absent).
    pub enable_method: &'a str,
    /// `cpu-release-addr` (spin-table).
    pub release_addr: Option<u64>,
}

/// The BCM2711 main peripherals' VideoCore bus address.
pub const PERIPHERAL_BUS: u64 = 0x7e00_0000;

/// One peripheral window: bus addresses `bus..bus+size` appear at `cpu`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Window {
    /// Child (bus) address.
    pub bus: u64,
    /// CPU physical address.
    pub cpu: u64,
    /// Size.
    pub size: u64,
}

impl Window {
    /// The CPU physical range.
    pub fn cpu_range(&self) -> Range {
        Range {
            start: self.cpu,
            end: self.cpu.saturating_add(self.size),
        }
    }
}

/// Everything the hypervisor reads from the host device tree.
#[derive(Debug, Clone, Copy, Default)]
pub struct HostInfo<'a> {
    /// Root `model`.
    pub model: &'a str,
    /// RAM ranges from every /memory node, as given.
    pub memory: FixedVec<Range, 16>,
    /// Memory reservation block entries and /reserved-memory regions.
    pub reserved: FixedVec<Reserved<'a>, 32>,
    /// /chosen/bootargs ("" when absent).
    pub bootargs: &'a str,
    /// /chosen linux,initrd-start..end.
    pub initrd: Option<Range>,
    /// The CPU nodes, in tree order.
    pub cpus: FixedVec<CpuNode<'a>, MAX_CPUS>,
    /// /psci `method` ("smc" or "hvc"), if the tree has a PSCI node.
    pub psci_method: Option<&'a str>,
    /// The whole (sanitised) tree, for later lookups by path
    /// ([`super::bus`]).
    pub tree: &'a [u8],
    /// /soc `ranges`: the peripheral windows.
    pub windows: FixedVec<Window, 8>,
    /// CPU physical address of the first enabled PL011.
    pub uart: Option<u64>,
    /// CPU physical address of the GPIO block.
    pub gpio: Option<u64>,
    /// The GIC-400 (CPU physical addresses).
    pub gic: Option<GicAddrs>,
    /// The PL011's interrupt (GIC INTID), if its node gives a GIC SPI.
    pub uart_intid: Option<u32>,
    /// CPU physical address of the VideoCore mailbox registers.
    pub mailbox: Option<u64>,
    /// The mailbox's interrupt (GIC INTID).
    pub mailbox_intid: Option<u32>,
    /// CPU physical address of the mini UART (the aux block's UART1).
    pub mini_uart: Option<u64>,
    /// The aux block's interrupt (GIC INTID): the mini UART's.
    pub mini_uart_intid: Option<u32>,
    /// /soc `dma-ranges`' first window: how the VideoCore (DMA masters)
    /// sees RAM. `bus` is the VideoCore's address of CPU address `cpu`.
    pub dma: Option<Window>,
}

/// Where the GIC-400's register frames are: distributor, CPU interface,
/// virtual interface control (GICH) and virtual CPU interface (GICV).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct GicAddrs {
    /// GICD.
    pub dist: u64,
    /// GICC.
    pub cpu: u64,
    /// GICH, if the tree lists it.
    pub hyp: Option<u64>,
    /// GICV, if the tree lists it.
    pub vcpu: Option<u64>,
}

/// Reads a big-endian number of `cells` 32-bit cells (1 or 2).
pub fn cells(bytes: &[u8], at: usize, n: usize) -> Option<u64> {
    let mut v = 0u64;
    for i in 0..n {
        let s = bytes.get(at + i * 4..at + i * 4 + 4)?;
        v = (v << 32) | u64::from(u32::from_be_bytes([s[0], s[1], s[2], s[3]]));
    }
    Some(v)
}

/// `#address-cells` / `#size-cells` of `node` (defaults 2 and 1).
pub(super) fn cell_sizes(node: &FdtNode<'_, '_>) -> Result<(usize, usize), DtError> {
    let get = |name, default| match node.property(name) {
        Some(p) => cells(p.value, 0, 1)
            .map(|v| v as usize)
            .ok_or(DtError::BadValue("#cells property")),
        None => Ok(default),
    };
    let (a, s) = (get("#address-cells", 2)?, get("#size-cells", 1)?);
    if !(1..=2).contains(&a) || s > 2 {
        return Err(DtError::BadValue(
            "#address-cells must be 1 or 2 and #size-cells at most 2",
        ));
    }
    Ok((a, s))
}

/// Iterates the (address, size) pairs of a `reg`-like property.
fn pairs<'v>(
    value: &'v [u8],
    ac: usize,
    sc: usize,
) -> impl Iterator<Item = Option<(u64, u64)>> + 'v {
    let stride = (ac + sc) * 4;
    let whole = value.len().is_multiple_of(stride);
    value.chunks(stride).map(move |c| {
        if !whole {
            return None;
        }
        Some((
            cells(c, 0, ac)?,
            if sc == 0 { 0 } else { cells(c, ac * 4, sc)? },
        ))
    })
}

/// The INTID of a node's first interrupt when it is a GIC SPI
/// (`interrupts = <0 n flags>`: INTID n + 32).
pub(super) fn spi_intid(node: &FdtNode<'_, '_>) -> Option<u32> {
    let p = node.property("interrupts")?;
    if p.value.len() < 12 || cells(p.value, 0, 1)? != 0 {
        return None;
    }
    let n = cells(p.value, 4, 1)?;
    // `then`, not `then_some`: the sum must not be formed for a huge n
    // (found by the host_dtb fuzz target: it overflowed).
    (n < 988).then(|| n as u32 + 32)
}

pub(super) fn enabled(node: &FdtNode<'_, '_>) -> bool {
    node.property("status")
        .and_then(|p| p.as_str())
        .is_none_or(|s| s == "okay" || s == "ok")
}

fn first_string<'a>(node: &FdtNode<'_, 'a>, name: &str) -> &'a str {
    node.property(name)
        .and_then(|p| p.as_str())
        .and_then(|s| s.split('\0').next())
        .unwrap_or("")
}

fn compatible_with(node: &FdtNode<'_, '_>, names: &[&str]) -> bool {
    node.property("compatible")
        .map(|p| {
            p.value
                .split(|&c| c == 0)
                .any(|c| names.iter().any(|n| n.as_bytes() == c))
        })
        .unwrap_or(false)
}

impl<'a> HostInfo<'a> {
    /// Reads the facts from a sanitized blob.
    pub fn parse(blob: &'a [u8]) -> Result<Self, DtError> {
        let fdt = Fdt::new(blob).map_err(|_| DtError::Truncated)?;
        let mut info = HostInfo {
            tree: blob,
            ..HostInfo::default()
        };
        let root = fdt.find_node("/").ok_or(DtError::Missing("root node"))?;
        let (root_ac, root_sc) = cell_sizes(&root)?;
        info.model = first_string(&root, "model");

        for node in root.children() {
            let is_memory = node.property("device_type").and_then(|p| p.as_str()) == Some("memory");
            if !is_memory || !enabled(&node) {
                continue;
            }
            let Some(reg) = node.property("reg") else {
                continue;
            };
            for pair in pairs(reg.value, root_ac, root_sc) {
                let (addr, size) = pair.ok_or(DtError::BadValue(
                    "/memory reg is not whole (address, size) pairs",
                ))?;
                if size == 0 {
                    continue;
                }
                let r = Range::from_size(addr, size)
                    .ok_or(DtError::BadValue("/memory range overflows"))?;
                info.memory
                    .push(r)
                    .map_err(|_| DtError::BadValue("more than 16 /memory ranges"))?;
            }
        }

        for rsv in fdt.memory_reservations() {
            let r = Range::from_size(rsv.address() as u64, rsv.size() as u64)
                .ok_or(DtError::BadValue("/memreserve/ range overflows"))?;
            if !r.is_empty() {
                let e = Reserved {
                    range: r,
                    name: "/memreserve/",
                    no_map: false,
                };
                info.reserved
                    .push(e)
                    .map_err(|_| DtError::BadValue("more than 32 reservations"))?;
            }
        }
        if let Some(rm) = fdt.find_node("/reserved-memory") {
            let (ac, sc) = cell_sizes(&rm)?;
            for child in rm.children() {
                if !enabled(&child) {
                    continue;
                }
                let Some(reg) = child.property("reg") else {
                    continue;
                };
                let no_map = child.property("no-map").is_some();
                for pair in pairs(reg.value, ac, sc) {
                    let (addr, size) =
                        pair.ok_or(DtError::BadValue("/reserved-memory reg is malformed"))?;
                    let r = Range::from_size(addr, size)
                        .ok_or(DtError::BadValue("/reserved-memory range overflows"))?;
                    if !r.is_empty() {
                        let e = Reserved {
                            range: r,
                            name: child.name,
                            no_map,
                        };
                        info.reserved
                            .push(e)
                            .map_err(|_| DtError::BadValue("more than 32 reservations"))?;
                    }
                }
            }
        }

        if let Some(chosen) = fdt.find_node("/chosen") {
            info.bootargs = chosen
                .property("bootargs")
                .and_then(|p| p.as_str())
                .unwrap_or("");
            // QEMU writes two cells, the firmware may write one.
            let num = |name| {
                chosen.property(name).map(|p| match p.value.len() {
                    4 => cells(p.value, 0, 1).ok_or(DtError::BadValue("initrd address")),
                    8 => cells(p.value, 0, 2).ok_or(DtError::BadValue("initrd address")),
                    _ => Err(DtError::BadValue(
                        "linux,initrd-start/end must be one or two cells",
                    )),
                })
            };
            match (num("linux,initrd-start"), num("linux,initrd-end")) {
                (Some(s), Some(e)) => {
                    let (s, e) = (s?, e?);
                    if e < s {
                        return Err(DtError::BadValue(
                            "linux,initrd-end is below linux,initrd-start",
                        ));
                    }
                    info.initrd = Some(Range { start: s, end: e }).filter(|r| !r.is_empty());
                }
                (None, None) => {}
                _ => {
                    return Err(DtError::BadValue(
                        "only one of linux,initrd-start and linux,initrd-end",
                    ))
                }
            }
        }

        let cpus = fdt
            .find_node("/cpus")
            .ok_or(DtError::Missing("/cpus node"))?;
        let (cpu_ac, _) = cell_sizes(&cpus)?;
        for cpu in cpus.children() {
            let is_cpu = cpu.property("device_type").and_then(|p| p.as_str()) == Some("cpu");
            if !is_cpu || !enabled(&cpu) {
                continue;
            }
            let mpidr = cpu
                .property("reg")
                .and_then(|p| cells(p.value, 0, cpu_ac))
                .ok_or(DtError::BadValue("a /cpus/cpu node has no usable reg"))?;
            let release_addr = match cpu.property("cpu-release-addr") {
                None => None,
                Some(p) if p.value.len() == 8 => cells(p.value, 0, 2),
                Some(p) if p.value.len() == 4 => cells(p.value, 0, 1),
                Some(_) => {
                    return Err(DtError::BadValue(
                        "cpu-release-addr must be one or two cells",
                    ))
                }
            };
            let node = CpuNode {
                mpidr,
                enable_method: first_string(&cpu, "enable-method"),
                release_addr,
            };
            if info.cpus.push(node).is_err() {
                break; // More CPUs than we track: the first MAX_CPUS are used.
            }
        }
        if info.cpus.is_empty() {
            return Err(DtError::Missing("CPU in /cpus"));
        }
        info.psci_method = fdt.find_node("/psci").map(|p| first_string(&p, "method"));

        let soc = fdt.find_node("/soc").ok_or(DtError::Missing("/soc node"))?;
        let (soc_ac, soc_sc) = cell_sizes(&soc)?;
        let ranges = soc
            .property("ranges")
            .ok_or(DtError::Unusable("/soc has no ranges (peripheral windows)"))?;
        let stride = (soc_ac + root_ac + soc_sc) * 4;
        if ranges.value.is_empty() || ranges.value.len() % stride != 0 {
            return Err(DtError::Unusable("/soc ranges is empty or malformed"));
        }
        for c in ranges.value.chunks(stride) {
            let w = Window {
                bus: cells(c, 0, soc_ac).ok_or(DtError::Truncated)?,
                cpu: cells(c, soc_ac * 4, root_ac).ok_or(DtError::Truncated)?,
                size: cells(c, (soc_ac + root_ac) * 4, soc_sc).ok_or(DtError::Truncated)?,
            };
            if w.size == 0 || w.cpu.checked_add(w.size).is_none() {
                return Err(DtError::Unusable(
                    "/soc ranges has an empty or overflowing window",
                ));
            }
            info.windows
                .push(w)
                .map_err(|_| DtError::Unusable("more than 8 /soc ranges windows"))?;
        }

        if let Some(d) = soc.property("dma-ranges") {
            let c = d.value;
            if c.len() >= stride {
                let w = Window {
                    bus: cells(c, 0, soc_ac).ok_or(DtError::Truncated)?,
                    cpu: cells(c, soc_ac * 4, root_ac).ok_or(DtError::Truncated)?,
                    size: cells(c, (soc_ac + root_ac) * 4, soc_sc).ok_or(DtError::Truncated)?,
                };
                info.dma = Some(w).filter(|w| w.size != 0 && w.cpu.checked_add(w.size).is_some());
            }
        }

        for child in soc.children() {
            if !enabled(&child) {
                continue;
            }
            let base = child
                .property("reg")
                .and_then(|p| cells(p.value, 0, soc_ac));
            let Some(bus) = base else { continue };
            if info.uart.is_none() && compatible_with(&child, &["arm,pl011"]) {
                info.uart = info.translate(bus);
                info.uart_intid = spi_intid(&child);
            }
            if info.mailbox.is_none() && compatible_with(&child, &["brcm,bcm2835-mbox"]) {
                info.mailbox = info.translate(bus);
                info.mailbox_intid = spi_intid(&child);
            }
            if info.mini_uart.is_none() && compatible_with(&child, &["brcm,bcm2835-aux-uart"]) {
                info.mini_uart = info.translate(bus);
                info.mini_uart_intid = spi_intid(&child);
            }
            if info.gpio.is_none()
                && compatible_with(&child, &["brcm,bcm2711-gpio", "brcm,bcm2835-gpio"])
            {
                info.gpio = info.translate(bus);
            }
            if info.gic.is_none() && compatible_with(&child, &["arm,gic-400", "arm,cortex-a15-gic"])
            {
                let reg = child.property("reg").map_or(&[][..], |p| p.value);
                let stride = (soc_ac + soc_sc) * 4;
                let frame =
                    |i: usize| cells(reg, i * stride, soc_ac).and_then(|b| info.translate(b));
                if let (Some(dist), Some(cpu)) = (frame(0), frame(1)) {
                    info.gic = Some(GicAddrs {
                        dist,
                        cpu,
                        hyp: frame(2),
                        vcpu: frame(3),
                    });
                }
            }
        }
        Ok(info)
    }

    /// Whether the firmware put the peripherals in high-peripheral mode
    /// (`arm_peri_high=1` in config.txt): the main peripheral block (bus
    /// 0x7e000000) then appears above 4 GiB (0x4_7e000000 on a BCM2711)
    /// instead of at 0xfe000000. pivisor refuses that layout (see
    /// `kernel::primary_main`): its guests' device addresses and the
    /// tested EL2 map are the low-peripheral ones.
    pub fn high_peripherals(&self) -> bool {
        self.translate(PERIPHERAL_BUS)
            .is_some_and(|cpu| cpu >= 1 << 32)
    }

    /// Translates a /soc bus address to a CPU physical address.
    pub fn translate(&self, bus: u64) -> Option<u64> {
        self.windows
            .iter()
            .find(|w| bus >= w.bus && bus - w.bus < w.size)
            .map(|w| w.cpu + (bus - w.bus))
    }
}

#[cfg(test)]
#[path = "host_tests.rs"]
mod tests;
