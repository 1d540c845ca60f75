//! A passed-through device's node in its VM's device tree: copied from
//! the firmware's tree under a bus with the firmware's `ranges` and
//! `dma-ranges` (the VM's addresses are the board's: its pages are mapped
//! at the same addresses and, for a DMA master, its RAM is identity
//! RAM), with what it depends on made the VM's own: its clocks become
//! fixed clocks at the rates the firmware gives; what points at devices
//! the VM does not own (pin control, DMA engines, power domains, PHYs,
//! resets, regulators) is left out; its phandles are moved out of the
//! hypervisor's range; `status` is "okay", and a USB controller asked for
//! in host mode gets `dr_mode = "host"`. Pure.

use crate::dt::blob::{self, Event};
use crate::dt::host::cells;
use crate::dt::writer::{FdtWriter, WriteError};
use crate::dt::DtError;
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use fdt::Fdt;

/// Added to every phandle of a copied node (the hypervisor's own and
/// dtb-extra's stay below it).
pub const PHANDLE_OFFSET: u32 = 0x0001_0000;
/// The first passed-through clock's phandle.
pub const CLOCK_PHANDLE_BASE: u32 = 0x0000_8000;

/// One device's node for the VM's tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PtNode {
    /// Its path in the firmware's tree (`/bus/name`).
    pub path: String,
    /// `dr_mode = "host"` (a USB controller in host mode).
    pub host_mode: bool,
    /// The rates of its `clocks` entries, in order (Hz).
    pub clock_hz: Vec<u32>,
}

impl PtNode {
    /// The bus it sits on (the path's first component).
    pub fn bus(&self) -> &str {
        self.path[1..].split('/').next().unwrap_or("")
    }
}

/// Where a clock input's rate comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClockSrc {
    /// A fixed clock of the tree, at this rate.
    Fixed(u32),
    /// The firmware's clock with this id (GET_CLOCK_RATE).
    Firmware(u32),
}

/// The clock manager's clocks (dt-bindings/clock/bcm2835.h) that have a
/// firmware clock id (raspberrypi-firmware: 1 EMMC, 2 UART, 4 CORE, 10
/// PWM, 12 EMMC2).
const CPRMAN_TO_FIRMWARE: [(u32, u32); 5] = [(19, 2), (20, 4), (28, 1), (30, 10), (51, 12)];

/// Cell `i` of a property.
fn be32(v: &[u8], i: usize) -> Option<u32> {
    cells(v, i * 4, 1).map(|c| c as u32)
}

/// The sources of the node's `clocks` entries, in order.
pub fn clock_sources(fdt: &Fdt<'_>, path: &str) -> Result<Vec<ClockSrc>, String> {
    let node = fdt
        .find_node(path)
        .ok_or_else(|| format!("{path} is not in the tree"))?;
    let Some(p) = node.property("clocks") else {
        return Ok(Vec::new());
    };
    let mut out = Vec::new();
    let mut i = 0;
    while i < p.value.len() / 4 {
        let ph = be32(p.value, i).unwrap_or(0);
        let prov = fdt
            .find_phandle(ph)
            .ok_or_else(|| format!("{path}: clock provider {ph:#x} is not in the tree"))?;
        let cells = prov
            .property("#clock-cells")
            .and_then(|c| be32(c.value, 0))
            .unwrap_or(0) as usize;
        if cells > 1 {
            return Err(format!(
                "{path}: clock provider {} has {cells} cells",
                prov.name
            ));
        }
        let arg = if cells == 1 {
            Some(be32(p.value, i + 1).ok_or_else(|| format!("{path}: clocks is truncated"))?)
        } else {
            None
        };
        let compat = |c: &str| {
            prov.property("compatible")
                .is_some_and(|v| v.value.split(|&b| b == 0).any(|s| s == c.as_bytes()))
        };
        let src = if compat("fixed-clock") {
            let hz = prov
                .property("clock-frequency")
                .and_then(|f| be32(f.value, 0))
                .ok_or_else(|| {
                    format!("{path}: fixed clock {} has no clock-frequency", prov.name)
                })?;
            ClockSrc::Fixed(hz)
        } else if compat("raspberrypi,firmware-clocks") {
            ClockSrc::Firmware(arg.unwrap_or(0))
        } else if compat("brcm,bcm2711-cprman") || compat("brcm,bcm2835-cprman") {
            let n = arg.unwrap_or(u32::MAX);
            let id = CPRMAN_TO_FIRMWARE
                .iter()
                .find(|(c, _)| *c == n)
                .map(|(_, f)| *f)
                .ok_or_else(|| {
                    format!(
                        "{path}: clock {n} of the clock manager has no rate the firmware reports"
                    )
                })?;
            ClockSrc::Firmware(id)
        } else {
            return Err(format!(
                "{path}: its clock comes from {}, which pivisor cannot give the VM",
                prov.name
            ));
        };
        out.push(src);
        i += 1 + cells;
    }
    Ok(out)
}

/// Properties left out of a copied node: they point at devices the VM
/// does not own.
fn dropped(name: &str) -> bool {
    name.starts_with("pinctrl-")
        || name.ends_with("-supply")
        || name.starts_with("assigned-clock")
        || matches!(
            name,
            "interrupt-parent"
                | "dmas"
                | "dma-names"
                | "power-domains"
                | "phys"
                | "phy-names"
                | "resets"
                | "reset-names"
                | "nvmem-cells"
                | "nvmem-cell-names"
                | "mboxes"
                | "iommus"
                | "mmc-pwrseq"
        )
}

/// Why a node could not be copied.
fn werr(e: WriteError) -> DtError {
    let _ = e;
    DtError::Unusable("a passed-through node could not be written")
}

/// Writes bus `bus` of the firmware's tree (its compatible, cells,
/// `ranges` and `dma-ranges`) with the nodes of `nodes` on it inside.
pub fn write_bus(
    w: &mut FdtWriter,
    host: &[u8],
    bus: &str,
    nodes: &[PtNode],
) -> Result<(), DtError> {
    w.begin_node(bus).map_err(werr)?;
    let names = [
        "compatible",
        "#address-cells",
        "#size-cells",
        "ranges",
        "dma-ranges",
    ];
    for (name, v) in bus_properties(host, bus, &names) {
        w.property(&name, &v).map_err(werr)?;
    }
    write_children(w, host, bus, nodes)?;
    w.end_node().map_err(werr)
}

/// Writes the nodes of `nodes` that sit on bus `bus`, at the writer's
/// current node (the VM's bus node).
pub fn write_children(
    w: &mut FdtWriter,
    host: &[u8],
    bus: &str,
    nodes: &[PtNode],
) -> Result<(), DtError> {
    let mut clock0 = 0u32;
    for n in nodes {
        // Node i's clocks are pt-clock-k.. with k counted over the nodes
        // before it, as write_clocks numbers them.
        if n.bus() == bus {
            copy(w, host, n, clock0)?;
        }
        clock0 += n.clock_hz.len() as u32;
    }
    Ok(())
}

/// The buses the nodes sit on, each once, in order.
pub fn buses(nodes: &[PtNode]) -> Vec<&str> {
    let mut v: Vec<&str> = Vec::new();
    for n in nodes {
        if !v.contains(&n.bus()) {
            v.push(n.bus());
        }
    }
    v
}

/// Property `prop` of the firmware's bus `bus` (a root child).
pub fn bus_property(host: &[u8], bus: &str, prop: &str) -> Option<Vec<u8>> {
    bus_properties(host, bus, &[prop]).pop().map(|(_, v)| v)
}

/// The properties of bus `bus` (a root child) among `names`, in the
/// tree's order, from one walk. Only the bus's own: a child's (PCIe's
/// `dma-ranges` under /scb) never stands in for one the bus lacks.
fn bus_properties(host: &[u8], bus: &str, names: &[&str]) -> Vec<(String, Vec<u8>)> {
    // The depth of the node whose properties come next, and whether it
    // is the bus.
    let (mut depth, mut in_bus) = (0usize, false);
    let mut out = Vec::new();
    let _ = blob::walk(host, &mut |e| -> Result<(), DtError> {
        match e {
            Event::Begin(name, d) => {
                depth = d;
                if d == 1 {
                    in_bus = name == bus;
                }
            }
            Event::End(d) => depth = d.saturating_sub(1),
            Event::Prop(name, value) => {
                if in_bus && depth == 1 && names.contains(&name) {
                    out.push((String::from(name), value.to_vec()));
                }
            }
        }
        Ok(())
    });
    out
}

/// The fixed clocks the copied nodes refer to, at the root.
pub fn write_clocks(w: &mut FdtWriter, nodes: &[PtNode]) -> Result<(), DtError> {
    let mut k = 0u32;
    for n in nodes {
        for &hz in &n.clock_hz {
            w.begin_node(&format!("pt-clock-{k}")).map_err(werr)?;
            w.property_string("compatible", "fixed-clock")
                .map_err(werr)?;
            w.property_u32("#clock-cells", 0).map_err(werr)?;
            w.property_u32("clock-frequency", hz).map_err(werr)?;
            w.property_u32("phandle", CLOCK_PHANDLE_BASE + k)
                .map_err(werr)?;
            w.end_node().map_err(werr)?;
            k += 1;
        }
    }
    Ok(())
}

/// Copies node `n` (and everything under it) from `host`, its clocks
/// being fixed clocks `clock0..`.
fn copy(w: &mut FdtWriter, host: &[u8], n: &PtNode, clock0: u32) -> Result<(), DtError> {
    let target: Vec<&str> = n.path[1..].split('/').collect();
    let mut stack: Vec<String> = Vec::new();
    // Depth of the copied node's own level while inside it.
    let mut inside: Option<usize> = None;
    let mut found = false;
    let mut dr_mode_done = false;
    blob::walk(host, &mut |e| -> Result<(), DtError> {
        match e {
            Event::Begin(name, depth) => {
                if depth > 0 {
                    stack.truncate(depth - 1);
                    stack.push(name.into());
                }
                if inside.is_none()
                    && depth == target.len()
                    && stack.iter().map(String::as_str).eq(target.iter().copied())
                {
                    inside = Some(depth);
                    found = true;
                }
                if let Some(top) = inside {
                    // Properties come before subnodes: dr_mode before the
                    // node's first child.
                    if depth == top + 1 && n.host_mode && !dr_mode_done {
                        w.property_string("dr_mode", "host").map_err(werr)?;
                        dr_mode_done = true;
                    }
                    w.begin_node(name).map_err(werr)?;
                }
            }
            Event::Prop(name, value) => {
                let Some(top) = inside else { return Ok(()) };
                let here = stack.len() == top;
                if dropped(name) {
                    return Ok(());
                }
                match name {
                    "clocks" if here => {
                        let cells: Vec<u32> = (0..n.clock_hz.len() as u32)
                            .map(|k| CLOCK_PHANDLE_BASE + clock0 + k)
                            .collect();
                        w.property_cells("clocks", &cells).map_err(werr)?;
                    }
                    "clocks" => {}
                    "status" if here => w.property_string("status", "okay").map_err(werr)?,
                    "dr_mode" if here && n.host_mode => {
                        w.property_string("dr_mode", "host").map_err(werr)?;
                        dr_mode_done = true;
                    }
                    "phandle" | "linux,phandle" | "phy-handle" if value.len() == 4 => {
                        let p = be32(value, 0).unwrap_or(0).wrapping_add(PHANDLE_OFFSET);
                        w.property_u32(name, p).map_err(werr)?;
                    }
                    _ => w.property(name, value).map_err(werr)?,
                }
            }
            Event::End(depth) => {
                if let Some(top) = inside {
                    if depth == top && n.host_mode && !dr_mode_done {
                        w.property_string("dr_mode", "host").map_err(werr)?;
                        dr_mode_done = true;
                    }
                    w.end_node().map_err(werr)?;
                    if depth == top {
                        inside = None;
                    }
                }
            }
        }
        Ok(())
    })?;
    if found {
        Ok(())
    } else {
        Err(DtError::Missing("a passed-through node"))
    }
}

#[cfg(test)]
#[path = "ptree_tests.rs"]
mod tests;
