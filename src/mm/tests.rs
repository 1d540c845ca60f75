//! Host tests of the memory plan and the EL2 identity map: build the map
//! for real Pi 4 layouts and walk it.

use super::pagetable::{el2_kind, PoolAlloc};
use super::*;
use crate::dt::host::Reserved;
use std::vec::Vec;

const GB: u64 = 1 << 30;

fn windows() -> Vec<Window> {
    std::vec![
        Window {
            bus: 0x7e00_0000,
            cpu: 0xfe00_0000,
            size: 0x180_0000
        },
        Window {
            bus: 0x7c00_0000,
            cpu: 0xfc00_0000,
            size: 0x200_0000
        },
        Window {
            bus: 0x4000_0000,
            cpu: 0xff80_0000,
            size: 0x80_0000
        },
    ]
}

fn info(memory: &[(u64, u64)], reserved: &[Reserved<'static>]) -> HostInfo<'static> {
    let mut i = HostInfo::default();
    for &(a, s) in memory {
        i.memory.push(Range::from_size(a, s).unwrap()).unwrap();
    }
    for r in reserved {
        i.reserved.push(*r).unwrap();
    }
    for w in windows() {
        i.windows.push(w).unwrap();
    }
    i.initrd = Some(Range {
        start: 0x0280_0000,
        end: 0x0290_0123,
    });
    i
}

const IMAGE: ImageLayout = ImageLayout {
    start: 0x20_0000,
    text_end: 0x21_0000,
    rodata_end: 0x21_4000,
    end: 0x26_0000,
};

fn dtb() -> Range {
    Range {
        start: 0x3bf0_0000,
        end: 0x3bf0_c123,
    }
}

fn nomap() -> Reserved<'static> {
    Reserved {
        range: Range {
            start: 0x3b3f_0000,
            end: 0x3b40_0000,
        },
        name: "fw",
        no_map: true,
    }
}

use crate::mm::pagetable::tests::pool;

#[test]
fn qemu_layout_plan() {
    let i = info(&[(0, 0x3c00_0000)], &[]);
    let p = plan_memory(&i, dtb(), &IMAGE).unwrap();
    assert_eq!(p.ram.total(), 960 << 20);
    let u = p.usable.ranges();
    assert_eq!(
        u[0],
        Range {
            start: 0x1000,
            end: 0x20_0000
        },
        "low page and image kept out"
    );
    assert!(!p.usable.overlaps(&dtb()));
    assert!(!p.usable.overlaps(&i.initrd.unwrap()));
    assert!(
        !p.usable.overlaps(&Range {
            start: 0x0290_0000,
            end: 0x0290_1000
        }),
        "initrd end rounded up to a page"
    );
    assert!(!p.usable.overlaps(&Range {
        start: IMAGE.start,
        end: IMAGE.end
    }));
    for r in u {
        assert_eq!(r.start % PAGE_SIZE, 0);
        assert_eq!(r.end % PAGE_SIZE, 0);
    }
}

#[test]
fn no_memory_or_nothing_usable() {
    let i = info(&[], &[]);
    assert_eq!(
        plan_memory(&i, dtb(), &IMAGE).unwrap_err(),
        PlanError::NoMemory
    );
    let all = Reserved {
        range: Range {
            start: 0,
            end: 0x3c00_0000,
        },
        name: "all",
        no_map: true,
    };
    let i = info(&[(0, 0x3c00_0000)], &[all]);
    assert_eq!(
        plan_memory(&i, dtb(), &IMAGE).unwrap_err(),
        PlanError::NoUsableMemory
    );
}

/// Builds the identity map and checks every mapped byte has the right kind
/// and that nothing else is mapped.
fn check_map(memory: &[(u64, u64)]) -> usize {
    let i = info(memory, &[nomap()]);
    let p = plan_memory(&i, dtb(), &IMAGE).unwrap();
    let regions = identity_map_regions(&p, &i.windows, &IMAGE).unwrap();
    let mut mem = pool(32);
    let mut t = PageTable::new(PoolAlloc::new(&mut mem)).unwrap();
    build_identity_map(&mut t, &regions).unwrap();

    let expect = |a: u64| -> Option<El2Kind> {
        if (IMAGE.start..IMAGE.text_end).contains(&a) {
            Some(El2Kind::Text)
        } else if (IMAGE.text_end..IMAGE.rodata_end).contains(&a) {
            Some(El2Kind::ReadOnly)
        } else if (IMAGE.rodata_end..IMAGE.end).contains(&a) {
            Some(El2Kind::ReadWrite)
        } else if nomap().range.start <= a && a < nomap().range.end {
            None
        } else if memory.iter().any(|&(s, l)| a >= s && a < s + l) {
            Some(El2Kind::ReadWrite)
        } else if (0xfc00_0000..0x1_0000_0000).contains(&a) {
            Some(El2Kind::Device)
        } else {
            None
        }
    };
    // Probe page boundaries around every interesting address.
    let mut probes: Vec<u64> = std::vec![
        0,
        0x1000,
        0x3b3f_0000,
        0x3b3f_f000,
        0x3b40_0000,
        0x3c00_0000,
        0xfbff_f000,
        0xfc00_0000,
        0xfe20_1000,
        0xff84_1000,
        0xffff_f000,
        0x1_0000_0000,
        0x2_0000_0000,
        0x7f_ffff_f000
    ];
    for x in [IMAGE.start, IMAGE.text_end, IMAGE.rodata_end, IMAGE.end] {
        probes.extend([x - 0x1000, x]);
    }
    for &(s, l) in memory {
        probes.extend([s, s + l - 0x1000, s + l]);
    }
    for a in probes {
        let got = t.translate(a).map(|l| {
            assert_eq!(l.pa, a, "identity at {a:#x}");
            el2_kind(l.attrs).unwrap()
        });
        assert_eq!(got, expect(a), "kind at {a:#x}");
    }
    // Total mapped bytes: RAM minus no-map plus the 64 MiB peripheral window.
    let mut total = 0;
    t.for_each_leaf(&mut |va, size, leaf| {
        assert_eq!(leaf.pa, va);
        total += size;
    });
    let ram: u64 = memory.iter().map(|m| m.1).sum();
    assert_eq!(total, ram - nomap().range.size() + 0x400_0000);
    t.allocator().used()
}

#[test]
fn identity_map_qemu_960m() {
    check_map(&[(0, 0x3c00_0000)]);
}

#[test]
fn identity_map_pi4_layouts() {
    let low = (0, 0x3b40_0000);
    check_map(&[low]);
    check_map(&[low, (GB, GB)]);
    check_map(&[low, (GB, 0xbc00_0000)]);
    let tables = check_map(&[low, (GB, 0xbc00_0000), (4 * GB, 2 * GB), (6 * GB, 2 * GB)]);
    assert!(
        tables <= 8,
        "1 GiB and 2 MiB blocks keep the table count small: {tables}"
    );
}

#[test]
fn window_overlapping_ram_is_refused() {
    let i = info(&[(0, 0x3c00_0000), (0xfc00_0000, 0x1000)], &[]);
    let p = plan_memory(&i, dtb(), &IMAGE).unwrap();
    assert!(matches!(
        identity_map_regions(&p, &i.windows, &IMAGE),
        Err(PlanError::WindowOverlapsRam(_))
    ));
}

#[test]
fn reasons_print() {
    assert_eq!(
        std::format!("{}", Reason::ReservedNode("fw", true)),
        "/reserved-memory/fw (no-map)"
    );
    assert_eq!(std::format!("{}", Reason::Hypervisor), "pivisor image");
}
