//! The MMU-off half of the boot's work on memory: the firmware's device
//! tree read and copied, the memory map logged, the EL2 identity map
//! built. Runs with memory Device-nGnRnE: no exclusives or atomics.

use crate::arch::mmu;
use crate::dt::{blob, host::HostInfo, DtError};
use crate::mm::pagetable::{PageTable, PoolAlloc, TableMem, ENTRIES};
use crate::mm::{self, MemoryPlan};
use crate::region::{Range, Size};
use crate::sync::BootCell;
use log::info;

/// Largest device tree accepted (the Pi 4 tree is about 50 KiB).
const DTB_MAX: usize = 128 * 1024;

/// Translation tables for the EL2 identity map.
const EL2_TABLES: usize = 32;

/// The copy of the firmware's device tree everything reads.
static DTB_COPY: BootCell<[u8; DTB_MAX]> = BootCell::new([0; DTB_MAX]);

/// Translation tables for the EL2 identity map.
static TABLES: BootCell<[TableMem; EL2_TABLES]> =
    BootCell::new([const { TableMem([0; ENTRIES]) }; EL2_TABLES]);

/// Reads, checks and copies the firmware's device tree.
pub(super) fn read_device_tree(dtb_pa: usize) -> Result<(HostInfo<'static>, Range), DtError> {
    if dtb_pa == 0 || !dtb_pa.is_multiple_of(8) {
        return Err(DtError::BadHeader(
            "device tree address is 0 or not 8-byte aligned",
        ));
    }
    // SAFETY: reads the 40-byte header where the boot loader says the tree
    // is; MMU off, so any RAM address is readable.
    let head = unsafe { core::slice::from_raw_parts(dtb_pa as *const u8, blob::HEADER_SIZE) };
    let h = blob::Header::read(head)?;
    let total = h.totalsize as usize;
    if total > DTB_MAX {
        return Err(DtError::TooLarge {
            size: total,
            max: DTB_MAX,
        });
    }
    // SAFETY: as above, for the size the header gives (bounded by DTB_MAX).
    let full =
        unsafe { core::slice::from_raw_parts(dtb_pa as *const u8, total.max(blob::HEADER_SIZE)) };
    // SAFETY: single core, early; DTB_COPY is only written here.
    let copy = unsafe { &mut *DTB_COPY.0.get() };
    let n = blob::sanitize(full, copy)?;
    let copy: &'static [u8] = &copy[..n];
    let info = HostInfo::parse(copy)?;
    Ok((
        info,
        Range {
            start: dtb_pa as u64,
            end: (dtb_pa + total) as u64,
        },
    ))
}

pub(super) fn log_memory_map(info: &HostInfo<'_>, plan: &MemoryPlan<'_>) {
    info!("memory map from the device tree:");
    for r in plan.ram.ranges() {
        info!("  RAM      {r}  {}", Size(r.size()));
    }
    for (r, why) in plan.reserved.iter() {
        info!("  reserved {r}  {why}");
    }
    for w in info.windows.iter() {
        info!("  device   {}  bus {:#x}", w.cpu_range(), w.bus);
    }
    info!(
        "  usable: {} in {} ranges of {} RAM",
        Size(plan.usable.total()),
        plan.usable.ranges().len(),
        Size(plan.ram.total())
    );
}

pub(super) fn build_el2_map(
    info: &HostInfo<'_>,
    plan: &MemoryPlan<'_>,
    image: &mm::ImageLayout,
) -> Result<mmu::MmuConfig, mm::PlanError> {
    let regions = mm::identity_map_regions(plan, &info.windows, image)?;
    // SAFETY: single core, before the MMU: the pool is only used here, and
    // after this it is only read by the table walker.
    let pool = unsafe { &mut *TABLES.0.get() };
    let mut table = PageTable::new(PoolAlloc::new(pool)).map_err(mm::PlanError::Map)?;
    mm::build_identity_map(&mut table, &regions)?;
    info!(
        "EL2 identity map: {} regions, {} of {} tables; text RX, rodata R, data RW+XN, devices nGnRE+XN",
        regions.len(),
        table.allocator().used(),
        EL2_TABLES
    );
    Ok(mmu::config_for(table.root()))
}
