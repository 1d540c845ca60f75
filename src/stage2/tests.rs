//! Stage-2 builder tests: build real tables in host memory and walk them.

use super::*;
use crate::mm::pagetable::{PoolAlloc, TableMem, ENTRIES};
use std::boxed::Box;
use std::vec::Vec;

fn pool(n: usize) -> Box<[TableMem]> {
    (0..n)
        .map(|_| TableMem([0; ENTRIES]))
        .collect::<Vec<_>>()
        .into_boxed_slice()
}

type LeafRow = (u64, u64, u64, Option<S2Kind>, u32);

/// Every leaf of the table as (ipa, size, pa, kind, level).
fn leaves<A: TableAlloc>(t: &mut PageTable<A>) -> Vec<LeafRow> {
    let mut v = Vec::new();
    t.for_each_leaf(&mut |ipa, size, l| v.push((ipa, size, l.pa, s2_kind(l.attrs), l.level)));
    v
}

#[test]
fn attributes_follow_the_spec() {
    let ram = s2_attrs(S2Kind::Ram);
    assert_eq!((ram >> 2) & 0xf, 0b1111, "Normal WB");
    assert_eq!((ram >> 6) & 3, 0b11, "read-write");
    assert_eq!((ram >> 8) & 3, 0b11, "inner shareable");
    assert_eq!(ram & (1 << 10), 1 << 10, "AF");
    assert_eq!(ram & (1 << 54), 0, "RAM is executable");
    let dev = s2_attrs(S2Kind::Device);
    assert_eq!((dev >> 2) & 0xf, 0b0001, "Device-nGnRE");
    assert_eq!(dev & (1 << 54), 1 << 54, "device is XN");
    assert_eq!(dev & (1 << 10), 1 << 10, "AF");
    assert_eq!(s2_kind(ram | 0x1234_5000 | 3), Some(S2Kind::Ram));
    assert_eq!(s2_kind(0), None);
}

#[test]
fn vtcr_and_vttbr() {
    let v = vtcr_value(0b101);
    assert_eq!(v & 0x3f, 25, "T0SZ 25: 39-bit IPA");
    assert_eq!((v >> 6) & 3, 1, "start at level 1");
    assert_eq!((v >> 14) & 3, 0, "4 KiB granule");
    assert_eq!((v >> 12) & 3, 3, "inner shareable walks");
    assert_eq!((v >> 16) & 7, 0b010, "PS clamped to 40 bits");
    assert_eq!((v >> 31) & 1, 1, "RES1");
    assert_eq!((vtcr_value(0b001) >> 16) & 7, 0b001, "36-bit PA kept");
    assert_eq!(vttbr_value(0x1234_5000, 3), 0x0003_0000_1234_5000);
}

#[test]
fn fault_ipa_combines_hpfar_and_far() {
    // IPA 0x3f20_1234: FIPA = 0x3f201 at bits 4+.
    assert_eq!(fault_ipa(0x3f201 << 4, 0xffff_0000_dead_f234), 0x3f20_1234);
    // Bits above FIPA (RES0) are ignored.
    assert_eq!(fault_ipa((1 << 63) | (0x10 << 4), 0x5), 0x10005);
}

#[test]
fn one_vm_ram_in_blocks_and_nothing_else() {
    let mut p = pool(8);
    let mut t = PageTable::new(PoolAlloc::new(&mut p)).unwrap();
    let mut ram = GuestRam::new();
    // 768 MiB at host 0x1000_0000: not 1 GiB-aligned, so 2 MiB blocks.
    assert!(ram.push(0x1000_0000, 768 << 20));
    build(&mut t, &ram, &[]).unwrap();
    let l = leaves(&mut t);
    assert_eq!(l.len(), 384, "768 MiB in 2 MiB blocks");
    for (i, (ipa, size, pa, kind, level)) in l.iter().enumerate() {
        assert_eq!(*ipa, i as u64 * BLOCK);
        assert_eq!((*size, *level), (BLOCK, 2));
        assert_eq!(*pa, 0x1000_0000 + *ipa);
        assert_eq!(*kind, Some(S2Kind::Ram));
    }
    assert_eq!(t.translate(768 << 20), None, "RAM end traps");
    assert_eq!(t.translate(0xfe20_1000), None, "peripherals trap");
    assert_eq!(t.translate(0x12_3456).unwrap().pa, 0x1012_3456);
}

#[test]
fn gib_blocks_where_aligned() {
    let mut p = pool(8);
    let mut t = PageTable::new(PoolAlloc::new(&mut p)).unwrap();
    let mut ram = GuestRam::new();
    assert!(ram.push(0x4000_0000, 1 << 30));
    assert!(ram.push(0x9000_0000, 4 << 20));
    build(&mut t, &ram, &[]).unwrap();
    let l = leaves(&mut t);
    assert_eq!(l[0], (0, 1 << 30, 0x4000_0000, Some(S2Kind::Ram), 1));
    assert_eq!(l[1], (1 << 30, BLOCK, 0x9000_0000, Some(S2Kind::Ram), 2));
    assert_eq!(
        l[2],
        ((1 << 30) + BLOCK, BLOCK, 0x9020_0000, Some(S2Kind::Ram), 2)
    );
    assert_eq!(l.len(), 3);
}

#[test]
fn chunks_and_device_pages_map_exactly() {
    let mut p = pool(16);
    let mut t = PageTable::new(PoolAlloc::new(&mut p)).unwrap();
    let mut ram = GuestRam::new();
    assert!(ram.push(0x2000_0000, 6 << 20));
    assert!(ram.push(0x0800_0000, 4 << 20));
    let dev = DeviceMap {
        ipa: 0xfe20_1000,
        pa: 0xfe20_1000,
        size: 0x1000,
    };
    build(&mut t, &ram, &[dev]).unwrap();
    // Every page of the first 16 MiB maps exactly as GuestRam says.
    for ipa in (0..(16 << 20)).step_by(PAGE_SIZE as usize) {
        let got = t.translate(ipa).map(|l| l.pa);
        let want = ram.host(ipa).map(|(pa, _)| pa);
        assert_eq!(got, want, "IPA {ipa:#x}");
    }
    let d = t.translate(0xfe20_1004).unwrap();
    assert_eq!(
        (d.pa, d.level, s2_kind(d.attrs)),
        (0xfe20_1004, 3, Some(S2Kind::Device))
    );
    assert_eq!(t.translate(0xfe20_0fff), None);
    assert_eq!(t.translate(0xfe20_2000), None);
    assert_eq!(leaves(&mut t).len(), 5 + 1);
}

#[test]
fn hostile_layouts_are_refused() {
    let mut p = pool(4);
    let mut t = PageTable::new(PoolAlloc::new(&mut p)).unwrap();
    let mut ram = GuestRam::new();
    assert!(ram.push(0x2000_1000, 2 << 20));
    assert!(matches!(
        build(&mut t, &ram, &[]),
        Err(Stage2Error::ChunkMisaligned(_))
    ));
    let mut ram = GuestRam::new();
    assert!(ram.push(0x2000_0000, 2 << 20));
    let over = DeviceMap {
        ipa: 0x1000,
        pa: 0xfe00_0000,
        size: 0x1000,
    };
    assert!(matches!(
        build(&mut t, &ram, &[over]),
        Err(Stage2Error::DeviceOverlapsRam(_))
    ));
    let mut p2 = pool(4);
    let mut t2 = PageTable::new(PoolAlloc::new(&mut p2)).unwrap();
    let far = DeviceMap {
        ipa: INPUT_LIMIT - 0x1000,
        pa: 0,
        size: 0x2000,
    };
    assert!(build(&mut t2, &GuestRam::new(), &[far]).is_err());
    let wrap = DeviceMap {
        ipa: u64::MAX - 0xfff,
        pa: 0,
        size: 0x1000,
    };
    assert!(build(&mut t2, &GuestRam::new(), &[wrap]).is_err());
}

#[test]
fn guest_ram_lookup() {
    let mut ram = GuestRam::new();
    assert!(ram.push(0x2000_0000, 2 << 20));
    assert!(ram.push(0x0800_0000, 2 << 20));
    assert_eq!(ram.size(), 4 << 20);
    assert_eq!(ram.host(0x1f_fff0), Some((0x201f_fff0, 0x10)));
    assert_eq!(ram.host(0x20_0000), Some((0x0800_0000, 2 << 20)));
    assert_eq!(ram.host(4 << 20), None);
    let pieces: Vec<_> = ram.host_pieces(0x1f_fff0, 0x20).unwrap().collect();
    assert_eq!(pieces, [(0x201f_fff0, 0x10), (0x0800_0000, 0x10)]);
    assert!(ram.host_pieces((4 << 20) - 8, 16).is_none());
    assert!(ram.host_pieces(u64::MAX, 2).is_none());
    assert!(!ram.contains(u64::MAX - 1, 4));
    let mut full = GuestRam::new();
    // MAX_CHUNKS host pieces, plus one split at the peripheral window.
    for i in 0..MAX_CHUNKS as u64 + 1 {
        assert!(full.push(i * BLOCK, BLOCK));
    }
    assert!(!full.push(0, BLOCK), "chunk table full");
    assert_eq!(
        full.size(),
        (MAX_CHUNKS as u64 + 1) * BLOCK,
        "a refused push changes nothing"
    );
}

/// The guest IPAs of every emulated or passed-through device (vm/fdt.rs):
/// each must trap (or map as its device), never be RAM.
const DEVICE_IPAS: [u64; 8] = [
    crate::vm::fdt::TESTDEV_IPA,
    crate::vm::fdt::EXITCTR_IPA,
    crate::vm::fdt::WATCHDOG_IPA,
    crate::vm::fdt::SOC_IPA,
    crate::vm::fdt::MAILBOX_IPA,
    crate::vm::fdt::UART_IPA,
    crate::vm::fdt::GICD_IPA,
    crate::vm::fdt::GICC_IPA,
];

/// RAM an 8 GB Pi 4 has free in the low-peripheral layout, as the host
/// pieces `prepare` takes a VM's RAM from: below the VideoCore's share,
/// up to the peripheral window, and from 4 GiB to 8 GiB.
const PI4_8GB_FREE: [(u64, u64); 3] = [
    (0x0020_0000, 0x3b20_0000),
    (0x4000_0000, 0xbc00_0000),
    (0x1_0000_0000, 0x1_0000_0000),
];

fn ram_from_host(size: u64) -> GuestRam {
    let mut ram = GuestRam::new();
    let mut left = size;
    for (pa, n) in PI4_8GB_FREE {
        let take = left.min(n);
        if take > 0 {
            assert!(ram.push(pa, take));
        }
        left -= take;
    }
    assert_eq!(left, 0, "the 8 GB board has room for {size:#x}");
    ram
}

#[test]
fn large_vms_keep_every_device_ipa_trapping_and_map_all_their_ram() {
    for mib in [1024u64, 2048, 3584, 4096, 6144, 7680] {
        let size = mib << 20;
        let ram = ram_from_host(size);
        assert_eq!(ram.size(), size);
        let banks: Vec<_> = ram.banks().collect();
        let low = size.min(LOW_RAM_END);
        assert_eq!(banks[0], (0, low), "{mib} MiB: low bank");
        if size > LOW_RAM_END {
            assert_eq!(
                banks[1],
                (HIGH_RAM_BASE, size - LOW_RAM_END),
                "{mib} MiB: high bank"
            );
        } else {
            assert_eq!(banks.len(), 1);
        }
        // A VM with the PL011 passed through: GICC and UART map as devices.
        let devices = [
            DeviceMap {
                ipa: crate::vm::fdt::GICC_IPA,
                pa: 0xff84_6000,
                size: 0x2000,
            },
            DeviceMap {
                ipa: crate::vm::fdt::UART_IPA,
                pa: 0xfe20_1000,
                size: 0x1000,
            },
        ];
        let mut p = pool(64);
        let mut t = PageTable::new(PoolAlloc::new(&mut p)).unwrap();
        build(&mut t, &ram, &devices).unwrap_or_else(|e| panic!("{mib} MiB: {e}"));
        for ipa in DEVICE_IPAS {
            let l = t.translate(ipa);
            match devices
                .iter()
                .find(|d| (d.ipa..d.ipa + d.size).contains(&ipa))
            {
                Some(d) => {
                    let l = l.unwrap();
                    assert_eq!(
                        s2_kind(l.attrs),
                        Some(S2Kind::Device),
                        "{mib} MiB: {ipa:#x}"
                    );
                    assert_eq!(l.pa, d.pa + (ipa - d.ipa));
                }
                None => assert!(l.is_none(), "{mib} MiB: device IPA {ipa:#x} traps"),
            }
            assert!(!ram.overlaps(ipa, 4), "{mib} MiB: {ipa:#x} is not RAM");
        }
        // Every 2 MiB block of RAM maps to its host page, as RAM.
        for (b, n) in ram.banks() {
            for ipa in (b..b + n).step_by(BLOCK as usize) {
                let l = t
                    .translate(ipa)
                    .unwrap_or_else(|| panic!("{mib} MiB: {ipa:#x} maps"));
                assert_eq!(s2_kind(l.attrs), Some(S2Kind::Ram));
                assert_eq!(
                    Some(l.pa),
                    ram.host(ipa).map(|h| h.0),
                    "{mib} MiB: {ipa:#x}"
                );
            }
            assert!(ram.contains(b, n) && !ram.contains(b, n + 1));
        }
        // Nothing past the RAM maps, and no range crosses the window.
        let end = ram.banks().last().map(|(b, n)| b + n).unwrap();
        assert!(t.translate(end).is_none());
        if size > LOW_RAM_END {
            assert!(
                !ram.contains(LOW_RAM_END - 8, 16),
                "a range across the window"
            );
            assert!(ram.host_pieces(LOW_RAM_END - 8, 16).is_none());
        }
    }
}

#[test]
fn ram_banks_follow_the_size_alone() {
    assert_eq!(ram_banks(0).count(), 0);
    assert_eq!(ram_banks(64 << 20).collect::<Vec<_>>(), [(0, 64 << 20)]);
    assert_eq!(
        ram_banks(LOW_RAM_END).collect::<Vec<_>>(),
        [(0, LOW_RAM_END)]
    );
    assert_eq!(
        ram_banks(LOW_RAM_END + BLOCK).collect::<Vec<_>>(),
        [(0, LOW_RAM_END), (HIGH_RAM_BASE, BLOCK)]
    );
    // A chunk that reaches the window is split: its host memory stays
    // contiguous, its IPA jumps to 4 GiB.
    let mut ram = GuestRam::new();
    assert!(ram.push(0x1_0000_0000, 0x1_0000_0000));
    assert_eq!(ram.chunks().len(), 2);
    assert_eq!(
        ram.host(LOW_RAM_END - 1),
        Some((0x1_0000_0000 + LOW_RAM_END - 1, 1))
    );
    assert_eq!(ram.host(LOW_RAM_END), None);
    assert_eq!(
        ram.host(HIGH_RAM_BASE),
        Some((0x1_0000_0000 + LOW_RAM_END, 0x400_0000))
    );
    assert!(!ram.push(0, MAX_RAM), "past the IPA space");
    use super::RamMap;
    assert!((&ram).is_ram(HIGH_RAM_BASE, 0x400_0000));
    assert!(!(&ram).is_ram(HIGH_RAM_BASE, 0x400_0001));
    assert!(!(&ram).is_ram(LOW_RAM_END, 4));
}
