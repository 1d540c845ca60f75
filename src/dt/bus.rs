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
    let mut out = Vec::new();
    if let Some(root) = fdt.find_node("/") {
        let mut hops = Vec::new();
        let mut path = String::new();
        walk(&root, &mut path, &mut hops, want, &mut out, 0);
    }
    out
}

/// The node at `path`, found the same way.
pub fn at<'a>(fdt: &Fdt<'a>, path: &str) -> Option<Found<'a>> {
    find(fdt, &|_| true).into_iter().find(|f| f.path == path)
}

fn walk<'a>(
    node: &FdtNode<'_, 'a>,
    path: &mut String,
    hops: &mut Vec<Hop<'a>>,
    want: &dyn Fn(&FdtNode<'_, 'a>) -> bool,
    out: &mut Vec<Found<'a>>,
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
    };
    for child in node.children() {
        let len = path.len();
        path.push('/');
        path.push_str(child.name);
        if want(&child) {
            let reg = child
                .property("reg")
                .and_then(|p| Some((cells(p.value, 0, ac)?, cells(p.value, ac * 4, sc)?)))
                .and_then(|(a, s)| {
                    // Through this node's parent (`hop`), then its ancestors.
                    let mut a = through(&hop, a, s)?;
                    for h in hops.iter().rev() {
                        a = through(h, a, s)?;
                    }
                    Some((a, s))
                });
            out.push(Found {
                path: path.clone(),
                compatible: child
                    .property("compatible")
                    .and_then(|p| p.value.split(|&b| b == 0).next())
                    .and_then(|s| core::str::from_utf8(s).ok())
                    .unwrap_or(""),
                reg,
                intid: spi_intid(&child),
                enabled: enabled(&child),
            });
        }
        hops.push(hop);
        walk(&child, path, hops, want, out, depth + 1);
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
