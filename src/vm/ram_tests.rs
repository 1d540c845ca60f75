//! RAM layout tests: the banks, host chunks split at the peripheral
//! window, and whole stage-2 tables for VMs of every size an 8 GB Pi 4
//! can hold.

use super::*;
use crate::mm::pagetable::{PageTable, PoolAlloc};
use crate::mm::stage2::{build, s2_kind, DeviceMap, S2Kind, BLOCK};
use crate::vm::layout;
use std::vec::Vec;

use crate::mm::pagetable::tests::pool;

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
    layout::TESTDEV_IPA,
    layout::EXITCTR_IPA,
    layout::WATCHDOG_IPA,
    layout::SOC_IPA,
    layout::MAILBOX_IPA,
    layout::UART_IPA,
    layout::GICD_IPA,
    layout::GICC_IPA,
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
                ipa: layout::GICC_IPA,
                pa: 0xff84_6000,
                size: 0x2000,
            },
            DeviceMap {
                ipa: layout::UART_IPA,
                pa: 0xfe20_1000,
                size: 0x1000,
            },
        ];
        let mut p = pool(64);
        let mut t = PageTable::new(PoolAlloc::new(&mut p)).unwrap();
        build(&mut t, ram.chunks(), &devices).unwrap_or_else(|e| panic!("{mib} MiB: {e}"));
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

#[test]
fn identity_ram_is_one_bank_at_its_host_address() {
    let r = GuestRam::identity(0x2000_0000, 0x1000_0000).unwrap();
    assert!(r.is_identity());
    assert_eq!(r.base(), 0x2000_0000);
    assert_eq!(r.banks().collect::<Vec<_>>(), [(0x2000_0000, 0x1000_0000)]);
    assert!(r.contains(0x2000_0000, 0x1000_0000));
    assert!(!r.contains(0, 0x1000), "nothing at IPA 0");
    assert!(!r.contains(0x2fff_ffff, 2));
    assert_eq!(r.host(0x2800_0000), Some((0x2800_0000, 0x800_0000)));
    assert_eq!(r.low_size(), 0x1000_0000);
    let mut r2 = r;
    assert!(
        !r2.push(0x4000_0000, 0x20_0000),
        "identity RAM takes no more chunks"
    );
    assert!(
        GuestRam::identity(0xfb00_0000, 0x200_0000).is_none(),
        "into the peripheral window"
    );
    assert!(GuestRam::identity(0x1000, 0).is_none());
    assert!(GuestRam::identity(u64::MAX - 0xfff, 0x2000).is_none());
    assert!(!GuestRam::new().is_identity());
}
