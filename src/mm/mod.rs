//! Memory: physical ranges, the boot-time memory plan (what is RAM, what is
//! reserved and why, what the hypervisor may hand out), the EL2 identity
//! map plan, and the translation-table builder.

pub mod frames;
pub mod pagetable;
pub mod stage2;

use crate::dt::host::{HostInfo, Window};
use crate::fixedvec::FixedVec;
use crate::region::{Range, RangeSet};
use core::fmt;
use pagetable::{El2Kind, MapError, PageTable, TableAlloc, PAGE_SIZE};

/// Why a range is not free.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Reason<'a> {
    /// The low 4 KiB: spin-table release addresses and the boot stub.
    #[default]
    LowPage,
    /// A memory reservation block entry.
    MemReserve,
    /// A /reserved-memory node (name; no-map).
    ReservedNode(&'a str, bool),
    /// The device tree blob.
    DeviceTree,
    /// The initrd (the guest bundle).
    Initrd,
    /// The hypervisor image, BSS and stacks.
    Hypervisor,
}

impl fmt::Display for Reason<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reason::LowPage => f.write_str("low page (spin table, boot stub)"),
            Reason::MemReserve => f.write_str("/memreserve/"),
            Reason::ReservedNode(n, true) => write!(f, "/reserved-memory/{n} (no-map)"),
            Reason::ReservedNode(n, false) => write!(f, "/reserved-memory/{n}"),
            Reason::DeviceTree => f.write_str("device tree"),
            Reason::Initrd => f.write_str("initrd"),
            Reason::Hypervisor => f.write_str("pivisor image"),
        }
    }
}

/// Why no memory plan could be made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PlanError {
    /// The tree describes no RAM.
    NoMemory,
    /// Everything is reserved.
    NoUsableMemory,
    /// More ranges than the fixed tables hold.
    TooManyRanges,
    /// A peripheral window overlaps RAM.
    WindowOverlapsRam(Range),
    /// The page-table builder failed.
    Map(MapError),
}

impl fmt::Display for PlanError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PlanError::NoMemory => f.write_str("the device tree describes no memory (/memory)"),
            PlanError::NoUsableMemory => {
                f.write_str("no usable memory: every RAM page is reserved")
            }
            PlanError::TooManyRanges => f.write_str("too many memory ranges or reservations"),
            PlanError::WindowOverlapsRam(r) => write!(f, "peripheral window {r} overlaps RAM"),
            PlanError::Map(e) => write!(f, "building the EL2 map failed: {e}"),
        }
    }
}

/// The hypervisor's own image, by physical address (page-aligned bounds).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ImageLayout {
    /// Load address.
    pub start: u64,
    /// End of code.
    pub text_end: u64,
    /// End of read-only data.
    pub rodata_end: u64,
    /// End of BSS and stacks.
    pub end: u64,
}

/// What is RAM, what is reserved, and what is free.
#[derive(Debug, Clone, Copy)]
pub struct MemoryPlan<'a> {
    /// All RAM, merged.
    pub ram: RangeSet<16>,
    /// Every reservation and its reason.
    pub reserved: FixedVec<(Range, Reason<'a>), 48>,
    /// Free RAM, page-aligned, in address order.
    pub usable: RangeSet<48>,
}

/// Works out the memory plan from the tree, the DTB and the image.
pub fn plan_memory<'a>(
    info: &HostInfo<'a>,
    dtb: Range,
    image: &ImageLayout,
) -> Result<MemoryPlan<'a>, PlanError> {
    let too_many = |_| PlanError::TooManyRanges;
    let mut ram = RangeSet::new();
    for r in info.memory.iter() {
        ram.add(*r).map_err(too_many)?;
    }
    if ram.total() == 0 {
        return Err(PlanError::NoMemory);
    }
    let mut reserved: FixedVec<(Range, Reason<'a>), 48> = FixedVec::new();
    reserved
        .push((
            Range {
                start: 0,
                end: PAGE_SIZE,
            },
            Reason::LowPage,
        ))
        .map_err(too_many)?;
    for r in info.reserved.iter() {
        let why = if r.name == "/memreserve/" {
            Reason::MemReserve
        } else {
            Reason::ReservedNode(r.name, r.no_map)
        };
        reserved.push((r.range, why)).map_err(too_many)?;
    }
    reserved.push((dtb, Reason::DeviceTree)).map_err(too_many)?;
    if let Some(i) = info.initrd {
        reserved.push((i, Reason::Initrd)).map_err(too_many)?;
    }
    reserved
        .push((
            Range {
                start: image.start,
                end: image.end,
            },
            Reason::Hypervisor,
        ))
        .map_err(too_many)?;

    let mut usable: RangeSet<48> = RangeSet::new();
    for r in ram.ranges() {
        usable.add(*r).map_err(too_many)?;
    }
    for (r, _) in reserved.iter() {
        usable.remove(r.grow_to(PAGE_SIZE)).map_err(too_many)?;
    }
    usable.shrink_to(PAGE_SIZE);
    if usable.total() == 0 {
        return Err(PlanError::NoUsableMemory);
    }
    Ok(MemoryPlan {
        ram,
        reserved,
        usable,
    })
}

/// One region of the EL2 identity map.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MapRegion {
    /// Page-aligned range.
    pub range: Range,
    /// How it is mapped.
    pub kind: El2Kind,
}

impl Default for MapRegion {
    fn default() -> Self {
        MapRegion {
            range: Range::default(),
            kind: El2Kind::ReadWrite,
        }
    }
}

/// The EL2 identity map: RAM read-write and never executable (except the
/// hypervisor's text, which is read-only and executable; its rodata read-only),
/// `no-map` reservations left out, peripheral windows Device-nGnRE.
pub fn identity_map_regions(
    plan: &MemoryPlan<'_>,
    windows: &[Window],
    image: &ImageLayout,
) -> Result<FixedVec<MapRegion, 96>, PlanError> {
    let too_many = |_| PlanError::TooManyRanges;
    let mut out: FixedVec<MapRegion, 96> = FixedVec::new();
    let mut ram: RangeSet<48> = RangeSet::new();
    for r in plan.ram.ranges() {
        ram.add(*r).map_err(too_many)?;
    }
    for (r, why) in plan.reserved.iter() {
        if matches!(why, Reason::ReservedNode(_, true)) {
            ram.remove(r.grow_to(PAGE_SIZE)).map_err(too_many)?;
        }
    }
    let img = Range {
        start: image.start,
        end: image.end,
    };
    ram.remove(img).map_err(too_many)?;
    ram.shrink_to(PAGE_SIZE);
    for r in ram.ranges() {
        out.push(MapRegion {
            range: *r,
            kind: El2Kind::ReadWrite,
        })
        .map_err(too_many)?;
    }
    for (s, e, kind) in [
        (image.start, image.text_end, El2Kind::Text),
        (image.text_end, image.rodata_end, El2Kind::ReadOnly),
        (image.rodata_end, image.end, El2Kind::ReadWrite),
    ] {
        if e > s {
            out.push(MapRegion {
                range: Range { start: s, end: e },
                kind,
            })
            .map_err(too_many)?;
        }
    }
    for w in windows {
        let r = w.cpu_range().grow_to(PAGE_SIZE);
        if plan.ram.overlaps(&r) {
            return Err(PlanError::WindowOverlapsRam(r));
        }
        // Windows may be adjacent or repeated; map each page once.
        let mut pieces: RangeSet<4> = RangeSet::new();
        pieces.add(r).map_err(too_many)?;
        for done in out.iter().filter(|m| m.kind == El2Kind::Device) {
            pieces.remove(done.range).map_err(too_many)?;
        }
        for p in pieces.ranges() {
            out.push(MapRegion {
                range: *p,
                kind: El2Kind::Device,
            })
            .map_err(too_many)?;
        }
    }
    Ok(out)
}

/// Maps every region 1:1 into `table`.
pub fn build_identity_map<A: TableAlloc>(
    table: &mut PageTable<A>,
    regions: &[MapRegion],
) -> Result<(), PlanError> {
    for m in regions {
        table
            .map(
                m.range.start,
                m.range.start,
                m.range.size(),
                pagetable::el2_attrs(m.kind),
            )
            .map_err(PlanError::Map)?;
    }
    Ok(())
}

#[cfg(test)]
#[path = "tests.rs"]
mod tests;
