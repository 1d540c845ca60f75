//! Stage-2 builder tests: build real tables in host memory and walk them.

use super::*;
use crate::mm::pagetable::PoolAlloc;
use crate::vm::ram::GuestRam;
use std::vec::Vec;

use crate::mm::pagetable::tests::pool;

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
fn one_vm_ram_in_blocks_and_nothing_else() {
    let mut p = pool(8);
    let mut t = PageTable::new(PoolAlloc::new(&mut p)).unwrap();
    let mut ram = GuestRam::new();
    // 768 MiB at host 0x1000_0000: not 1 GiB-aligned, so 2 MiB blocks.
    assert!(ram.push(0x1000_0000, 768 << 20));
    build(&mut t, ram.chunks(), &[]).unwrap();
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
    build(&mut t, ram.chunks(), &[]).unwrap();
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
    build(&mut t, ram.chunks(), &[dev]).unwrap();
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
        build(&mut t, ram.chunks(), &[]),
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
        build(&mut t, ram.chunks(), &[over]),
        Err(Stage2Error::DeviceOverlapsRam(_))
    ));
    let mut p2 = pool(4);
    let mut t2 = PageTable::new(PoolAlloc::new(&mut p2)).unwrap();
    let far = DeviceMap {
        ipa: INPUT_LIMIT - 0x1000,
        pa: 0,
        size: 0x2000,
    };
    assert!(build(&mut t2, &[], &[far]).is_err());
    let wrap = DeviceMap {
        ipa: u64::MAX - 0xfff,
        pa: 0,
        size: 0x1000,
    };
    assert!(build(&mut t2, &[], &[wrap]).is_err());
}
