//! Nodes of the firmware's tree by path, their `reg` translated to CPU
//! physical addresses through every ancestor bus's `ranges` (/soc,
//! /emmc2bus, /scb on a Pi 4), and their first GIC SPI. The SD host
//! driver finds its controllers here; device passthrough will too.
//!
//! Translation follows the devicetree specification: a node's `reg` is
//! in its parent's address space (the parent's #address-cells and
//! #size-cells); each ancestor below the root maps its children's
//! addresses into its own parent's with `ranges` (empty: identity;
//! absent: not translatable, so not reachable from the CPU).

use super::host::{cell_sizes, cells, enabled, spi_intid};
use alloc::string::String;
use alloc::vec::Vec;
use fdt::{node::FdtNode, Fdt};

/// Deepest nesting walked (the Pi 4 tree is 4 deep).
const MAX_DEPTH: usize = 12;

/// A node found by [`find`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found<'a> {
    /// Its full path, e.g. `/emmc2bus/mmc@7e340000`.
    pub path: String,
    /// Its first `compatible` string ("" if none).
    pub compatible: &'a str,
    /// Its first `reg` entry as CPU physical (address, size), if it has
    /// one and every ancestor translates it.
    pub reg: Option<(u64, u64)>,
    /// Its first interrupt, if a GIC SPI (as an INTID).
    pub intid: Option<u32>,
    /// `status` is "okay" (or absent).
    pub enabled: bool,
    /// Every `reg` entry as CPU physical (address, size); an entry no
    /// ancestor translates is left out and counted in `lost_regs`.
    pub regs: Vec<(u64, u64)>,
    /// `reg` entries that are malformed or that do not reach the CPU.
    pub lost_regs: usize,
    /// Every interrupt of `interrupts` as a GIC INTID when the node's
    /// interrupt parent (its own `interrupt-parent` or its nearest
    /// ancestor's) has the phandle `gic` names in [`find_with`]; SPIs
    /// only.
    pub spis: Vec<u32>,
    /// Interrupts that are not GIC SPIs (PPIs, another interrupt
    /// controller's, `interrupts-extended`, malformed).
    pub other_irqs: usize,
    /// The CPU physical ranges the node's DMA reaches, from its nearest
    /// ancestor bus with `dma-ranges` (None: no ancestor limits it, or
    /// an empty `dma-ranges`: one to one).
    pub dma_reach: Option<Vec<(u64, u64)>>,
}

/// One ancestor's mapping of its children's addresses.
#[derive(Clone, Copy)]
struct Hop<'a> {
    /// `ranges` (None: absent).
    ranges: Option<&'a [u8]>,
    /// The ancestor's #address-cells (its children's addresses).
    child_ac: usize,
    /// Its parent's #address-cells.
    parent_ac: usize,
    /// The ancestor's #size-cells.
    sc: usize,
    /// `dma-ranges` (None: absent).
    dma: Option<&'a [u8]>,
    /// The interrupt parent its children inherit (a phandle).
    irq_parent: Option<u32>,
}

fn through(hop: &Hop<'_>, addr: u64, size: u64) -> Option<u64> {
    let r = hop.ranges?;
    if r.is_empty() {
        return Some(addr);
    }
    let stride = (hop.child_ac + hop.parent_ac + hop.sc) * 4;
    if r.len() % stride != 0 {
        return None;
    }
    r.chunks(stride).find_map(|c| {
        let child = cells(c, 0, hop.child_ac)?;
        let parent = cells(c, hop.child_ac * 4, hop.parent_ac)?;
        let len = cells(c, (hop.child_ac + hop.parent_ac) * 4, hop.sc)?;
        let off = addr.checked_sub(child)?;
        (off < len && size <= len - off).then(|| parent.checked_add(off))?
    })
}

/// Every node for which `want` holds, in tree order.
pub fn find<'a>(fdt: &Fdt<'a>, want: &dyn Fn(&FdtNode<'_, 'a>) -> bool) -> Vec<Found<'a>> {
    find_with(fdt, want, gic_phandle(fdt))
}

/// The phandle of the tree's GIC (`arm,gic-400` or `arm,cortex-a15-gic`).
pub fn gic_phandle(fdt: &Fdt<'_>) -> Option<u32> {
    fdt.all_nodes()
        .find(|n| is_compatible(n, "arm,gic-400") || is_compatible(n, "arm,cortex-a15-gic"))
        .and_then(|n| n.property("phandle"))
        .and_then(|p| cells(p.value, 0, 1))
        .map(|v| v as u32)
}

/// [`find`], with `gic` the phandle whose interrupts are GIC SPIs.
pub fn find_with<'a>(
    fdt: &Fdt<'a>,
    want: &dyn Fn(&FdtNode<'_, 'a>) -> bool,
    gic: Option<u32>,
) -> Vec<Found<'a>> {
    let mut out = Vec::new();
    if let Some(root) = fdt.find_node("/") {
        let mut hops = Vec::new();
        let mut path = String::new();
        let mut ctx = Walk {
            want,
            gic,
            out: &mut out,
        };
        walk(&root, &mut path, &mut hops, &mut ctx, 0);
    }
    out
}

struct Walk<'w, 'a> {
    want: &'w dyn Fn(&FdtNode<'_, 'a>) -> bool,
    gic: Option<u32>,
    out: &'w mut Vec<Found<'a>>,
}

fn phandle_of(node: &FdtNode<'_, '_>, prop: &str) -> Option<u32> {
    node.property(prop)
        .and_then(|p| cells(p.value, 0, 1))
        .map(|v| v as u32)
}

/// The interrupts of `node` (3-cell GIC specifiers when its parent is
/// the GIC): SPIs as INTIDs, and how many others.
fn interrupts(node: &FdtNode<'_, '_>, parent: Option<u32>, gic: Option<u32>) -> (Vec<u32>, usize) {
    let mut spis = Vec::new();
    let mut other = usize::from(node.property("interrupts-extended").is_some());
    if let Some(p) = node.property("interrupts") {
        if parent.is_none() || parent != gic || p.value.len() % 12 != 0 {
            other += 1;
        } else {
            for c in p.value.chunks(12) {
                match (cells(c, 0, 1), cells(c, 4, 1)) {
                    (Some(0), Some(n)) if n < 988 => spis.push(n as u32 + 32),
                    _ => other += 1,
                }
            }
        }
    }
    (spis, other)
}

/// The CPU ranges a child of `hops`' last bus reaches by DMA: that
/// bus's nearest `dma-ranges`, its parent addresses taken through the
/// ancestors above it.
fn dma_reach(hops: &[Hop<'_>]) -> Option<Vec<(u64, u64)>> {
    let i = hops.iter().rposition(|h| h.dma.is_some())?;
    let h = &hops[i];
    let d = h.dma?;
    if d.is_empty() {
        return None;
    }
    let stride = (h.child_ac + h.parent_ac + h.sc) * 4;
    let mut out = Vec::new();
    if d.len() % stride != 0 {
        return Some(out);
    }
    for c in d.chunks(stride) {
        let (Some(mut a), Some(n)) = (
            cells(c, h.child_ac * 4, h.parent_ac),
            cells(c, (h.child_ac + h.parent_ac) * 4, h.sc),
        ) else {
            continue;
        };
        let mut ok = true;
        for up in hops[..i].iter().rev() {
            match through(up, a, n) {
                Some(x) => a = x,
                None => ok = false,
            }
        }
        if ok {
            out.push((a, n));
        }
    }
    Some(out)
}

/// The node at `path`, found the same way.
pub fn at<'a>(fdt: &Fdt<'a>, path: &str) -> Option<Found<'a>> {
    find(fdt, &|_| true).into_iter().find(|f| f.path == path)
}

fn walk<'a>(
    node: &FdtNode<'_, 'a>,
    path: &mut String,
    hops: &mut Vec<Hop<'a>>,
    ctx: &mut Walk<'_, 'a>,
    depth: usize,
) {
    if depth > MAX_DEPTH {
        return;
    }
    let Ok((ac, sc)) = cell_sizes(node) else {
        return;
    };
    let parent_ac = hops.last().map_or(2, |h: &Hop<'_>| h.child_ac);
    let hop = Hop {
        ranges: if depth == 0 {
            Some(&[][..])
        } else {
            node.property("ranges").map(|p| p.value)
        },
        child_ac: ac,
        parent_ac,
        sc,
        dma: if depth == 0 {
            None
        } else {
            node.property("dma-ranges").map(|p| p.value)
        },
        irq_parent: phandle_of(node, "interrupt-parent")
            .or_else(|| hops.last().and_then(|h| h.irq_parent)),
    };
    for child in node.children() {
        let len = path.len();
        path.push('/');
        path.push_str(child.name);
        if (ctx.want)(&child) {
            // Through this node's parent (`hop`), then its ancestors.
            let up = |(a, s): (u64, u64)| {
                let mut a = through(&hop, a, s)?;
                for h in hops.iter().rev() {
                    a = through(h, a, s)?;
                }
                Some((a, s))
            };
            let raw = child.property("reg").map_or(&[][..], |p| p.value);
            let stride = (ac + sc) * 4;
            let mut regs = Vec::new();
            let mut lost_regs = usize::from(stride == 0 || raw.len() % stride != 0);
            if lost_regs == 0 {
                for c in raw.chunks(stride) {
                    match cells(c, 0, ac).zip(cells(c, ac * 4, sc)).and_then(up) {
                        Some(r) => regs.push(r),
                        None => lost_regs += 1,
                    }
                }
            }
            let irq_parent = phandle_of(&child, "interrupt-parent").or(hop.irq_parent);
            let (spis, other_irqs) = interrupts(&child, irq_parent, ctx.gic);
            hops.push(hop);
            let dma = dma_reach(hops);
            hops.pop();
            ctx.out.push(Found {
                path: path.clone(),
                compatible: child
                    .property("compatible")
                    .and_then(|p| p.value.split(|&b| b == 0).next())
                    .and_then(|s| core::str::from_utf8(s).ok())
                    .unwrap_or(""),
                reg: regs.first().copied(),
                intid: spi_intid(&child),
                enabled: enabled(&child),
                regs,
                lost_regs,
                spis,
                other_irqs,
                dma_reach: dma,
            });
        }
        hops.push(hop);
        walk(&child, path, hops, ctx, depth + 1);
        hops.pop();
        path.truncate(len);
    }
}

/// Whether `node` lists `name` among its `compatible` strings.
pub fn is_compatible(node: &FdtNode<'_, '_>, name: &str) -> bool {
    node.property("compatible")
        .is_some_and(|p| p.value.split(|&b| b == 0).any(|s| s == name.as_bytes()))
}

#[cfg(test)]
#[path = "bus_tests.rs"]
mod tests;
