//! Host tests of the device-tree reader: Pi 4 layouts, /chosen forms,
//! missing pieces, and hostile blobs.

use super::*;
use crate::dt::blob::sanitize;
use crate::dt::writer::FdtWriter;
use std::vec::Vec;

const GB: u64 = 1 << 30;

/// Options for a Pi-4-like test tree.
struct Fixture {
    memory: Vec<(u64, u64)>,
    initrd_cells: Option<usize>,
    cpus: bool,
    soc_ranges: bool,
    psci: bool,
    /// A dead /memory node first in the root that gets NOPed out, as QEMU does.
    nop_node: bool,
}

impl Default for Fixture {
    fn default() -> Self {
        Fixture {
            memory: layout(1),
            initrd_cells: Some(2),
            cpus: true,
            soc_ranges: true,
            psci: false,
            nop_node: false,
        }
    }
}

/// The /memory ranges the firmware writes for a 1/2/4/8 GB Pi 4.
fn layout(gb: u64) -> Vec<(u64, u64)> {
    let low = (0, 0x3b40_0000);
    match gb {
        1 => std::vec![low],
        2 => std::vec![low, (GB, GB)],
        4 => std::vec![low, (GB, 0xbc00_0000)],
        8 => std::vec![low, (GB, 0xbc00_0000), (4 * GB, 2 * GB), (6 * GB, 2 * GB)],
        _ => unreachable!(),
    }
}

fn reg_cells(pairs: &[(u64, u64)]) -> Vec<u32> {
    pairs
        .iter()
        .flat_map(|&(a, s)| [(a >> 32) as u32, a as u32, s as u32])
        .collect()
}

fn build(f: &Fixture) -> Vec<u8> {
    let mut w = FdtWriter::new();
    w.add_reservation(0, 0x1000);
    w.begin_node("").unwrap();
    w.property_u32("#address-cells", 2).unwrap();
    w.property_u32("#size-cells", 1).unwrap();
    w.property_string("model", "Raspberry Pi 4 Model B")
        .unwrap();
    if f.nop_node {
        w.begin_node("memory-old@0").unwrap();
        w.property_string("device_type", "memory").unwrap();
        w.property_cells("reg", &[0, 0, 0x1000_0000]).unwrap();
        w.end_node().unwrap();
    }
    w.begin_node("reserved-memory").unwrap();
    w.property_u32("#address-cells", 2).unwrap();
    w.property_u32("#size-cells", 1).unwrap();
    w.property_empty("ranges").unwrap();
    w.begin_node("linux,cma").unwrap();
    w.property_u32("size", 0x400_0000).unwrap();
    w.end_node().unwrap();
    w.begin_node("nvram@0").unwrap();
    w.property_cells("reg", &[0, 0, 0]).unwrap();
    w.property_empty("no-map").unwrap();
    w.property_string("status", "disabled").unwrap();
    w.end_node().unwrap();
    w.begin_node("fw@3b3f0000").unwrap();
    w.property_cells("reg", &[0, 0x3b3f_0000, 0x1_0000])
        .unwrap();
    w.property_empty("no-map").unwrap();
    w.end_node().unwrap();
    w.end_node().unwrap();
    w.begin_node("chosen").unwrap();
    w.property_string("bootargs", "pivisor.log=debug console=ttyS0")
        .unwrap();
    match f.initrd_cells {
        Some(1) => {
            w.property_u32("linux,initrd-start", 0x0280_0000).unwrap();
            w.property_u32("linux,initrd-end", 0x0290_0000).unwrap();
        }
        Some(2) => {
            w.property_u64("linux,initrd-start", 0x0280_0000).unwrap();
            w.property_u64("linux,initrd-end", 0x0290_0000).unwrap();
        }
        _ => {}
    }
    w.end_node().unwrap();
    if f.psci {
        w.begin_node("psci").unwrap();
        w.property_string("method", "smc").unwrap();
        w.end_node().unwrap();
    }
    if f.cpus {
        w.begin_node("cpus").unwrap();
        w.property_u32("#address-cells", 1).unwrap();
        w.property_u32("#size-cells", 0).unwrap();
        w.property_string("enable-method", "brcm,bcm2836-smp")
            .unwrap();
        for i in 0..4u32 {
            w.begin_node(&std::format!("cpu@{i}")).unwrap();
            w.property_string("device_type", "cpu").unwrap();
            w.property_u32("reg", i).unwrap();
            if f.psci {
                w.property_string("enable-method", "psci").unwrap();
            } else {
                w.property_string("enable-method", "spin-table").unwrap();
                w.property_u64("cpu-release-addr", 0xd8 + 8 * u64::from(i))
                    .unwrap();
            }
            w.end_node().unwrap();
        }
        w.end_node().unwrap();
    }
    w.begin_node("soc").unwrap();
    w.property_u32("#address-cells", 1).unwrap();
    w.property_u32("#size-cells", 1).unwrap();
    if f.soc_ranges {
        w.property_cells(
            "ranges",
            &[
                0x7e00_0000,
                0,
                0xfe00_0000,
                0x180_0000,
                0x7c00_0000,
                0,
                0xfc00_0000,
                0x200_0000,
                0x4000_0000,
                0,
                0xff80_0000,
                0x80_0000,
            ],
        )
        .unwrap();
        w.property_cells("dma-ranges", &[0xc000_0000, 0, 0, 0x4000_0000])
            .unwrap();
    }
    w.begin_node("gpio@7e200000").unwrap();
    w.property_string("compatible", "brcm,bcm2711-gpio")
        .unwrap();
    w.property_cells("reg", &[0x7e20_0000, 0xb4]).unwrap();
    w.end_node().unwrap();
    w.begin_node("serial@7e201000").unwrap();
    w.property_strings("compatible", &["arm,pl011", "arm,primecell"])
        .unwrap();
    w.property_cells("reg", &[0x7e20_1000, 0x200]).unwrap();
    w.property_cells("interrupts", &[0, 0x79, 4]).unwrap();
    w.end_node().unwrap();
    w.begin_node("mailbox@7e00b880").unwrap();
    w.property_string("compatible", "brcm,bcm2835-mbox")
        .unwrap();
    w.property_cells("reg", &[0x7e00_b880, 0x40]).unwrap();
    w.property_cells("interrupts", &[0, 0x21, 4]).unwrap();
    w.end_node().unwrap();
    w.begin_node("serial@7e215040").unwrap();
    w.property_string("compatible", "brcm,bcm2835-aux-uart")
        .unwrap();
    w.property_cells("reg", &[0x7e21_5040, 0x40]).unwrap();
    w.property_cells("interrupts", &[0, 0x5d, 4]).unwrap();
    w.end_node().unwrap();
    w.begin_node("interrupt-controller@40041000").unwrap();
    w.property_string("compatible", "arm,gic-400").unwrap();
    w.property_cells(
        "reg",
        &[
            0x4004_1000,
            0x1000,
            0x4004_2000,
            0x2000,
            0x4004_4000,
            0x2000,
            0x4004_6000,
            0x2000,
        ],
    )
    .unwrap();
    w.end_node().unwrap();
    w.begin_node("serial@7e201400").unwrap();
    w.property_strings("compatible", &["arm,pl011", "arm,primecell"])
        .unwrap();
    w.property_cells("reg", &[0x7e20_1400, 0x200]).unwrap();
    w.property_string("status", "disabled").unwrap();
    w.end_node().unwrap();
    w.end_node().unwrap();
    w.begin_node("memory@0").unwrap();
    w.property_string("device_type", "memory").unwrap();
    w.property_cells("reg", &reg_cells(&f.memory)).unwrap();
    w.end_node().unwrap();
    w.end_node().unwrap();
    let mut blob = w.finish().unwrap();
    if f.nop_node {
        // BEGIN + "memory-old@0\0" padded (20) + device_type (20) + reg (24) + END (4).
        let pat = b"\0\0\0\x01memory-old@0\0";
        let at = blob.windows(pat.len()).position(|w| w == pat).unwrap();
        for i in (at..at + 68).step_by(4) {
            blob[i..i + 4].copy_from_slice(&4u32.to_be_bytes());
        }
    }
    blob
}

fn with_info<R>(blob: &[u8], f: impl FnOnce(Result<HostInfo<'_>, DtError>) -> R) -> R {
    let mut buf = std::vec![0u8; 128 * 1024];
    match sanitize(blob, &mut buf) {
        Ok(n) => f(HostInfo::parse(&buf[..n])),
        Err(e) => f(Err(e)),
    }
}

#[test]
fn pi4_layouts_1_2_4_8_gb() {
    for gb in [1, 2, 4, 8] {
        let blob = build(&Fixture {
            memory: layout(gb),
            ..Default::default()
        });
        with_info(&blob, |i| {
            let i = i.unwrap();
            let expect: Vec<Range> = layout(gb)
                .iter()
                .map(|&(a, s)| Range::from_size(a, s).unwrap())
                .collect();
            assert_eq!(&i.memory[..], &expect[..], "{gb} GB");
            let total: u64 = i.memory.iter().map(Range::size).sum();
            assert!(
                total > (gb * GB) - (GB / 4) && total <= gb * GB,
                "{gb} GB total {total:#x}"
            );
        });
    }
}

#[test]
fn reads_everything_the_hypervisor_needs() {
    with_info(&build(&Fixture::default()), |i| {
        let i = i.unwrap();
        assert_eq!(i.model, "Raspberry Pi 4 Model B");
        assert_eq!(i.bootargs, "pivisor.log=debug console=ttyS0");
        assert_eq!(
            i.initrd,
            Some(Range {
                start: 0x0280_0000,
                end: 0x0290_0000
            })
        );
        assert_eq!(i.cpus.len(), 4);
        assert_eq!(
            i.cpus[3],
            CpuNode {
                mpidr: 3,
                enable_method: "spin-table",
                release_addr: Some(0xf0)
            }
        );
        assert_eq!(i.windows.len(), 3);
        assert_eq!(i.uart, Some(0xfe20_1000));
        assert_eq!(i.gpio, Some(0xfe20_0000));
        assert_eq!(i.uart_intid, Some(153));
        assert_eq!((i.mailbox, i.mailbox_intid), (Some(0xfe00_b880), Some(65)));
        assert_eq!(i.mini_uart, Some(0xfe21_5040));
        assert_eq!(i.mini_uart_intid, Some(32 + 93), "GIC_SPI 93");
        assert_eq!(
            i.dma,
            Some(Window {
                bus: 0xc000_0000,
                cpu: 0,
                size: 0x4000_0000
            })
        );
        assert_eq!(
            i.gic,
            Some(GicAddrs {
                dist: 0xff84_1000,
                cpu: 0xff84_2000,
                hyp: Some(0xff84_4000),
                vcpu: Some(0xff84_6000)
            })
        );
        assert_eq!(
            i.translate(0x4004_1000),
            Some(0xff84_1000),
            "the GIC through the third window"
        );
        assert_eq!(i.translate(0x1000), None);
        assert_eq!(i.psci_method, None);
        // memreserve + fw@3b3f0000 (no-map); the disabled and reg-less nodes are skipped.
        assert_eq!(i.reserved.len(), 2);
        assert_eq!(
            i.reserved[0],
            Reserved {
                range: Range {
                    start: 0,
                    end: 0x1000
                },
                name: "/memreserve/",
                no_map: false
            }
        );
        assert_eq!(i.reserved[1].name, "fw@3b3f0000");
        assert!(i.reserved[1].no_map);
    });
}

#[test]
fn initrd_in_one_or_two_cells_or_absent() {
    for (cells, expect) in [(Some(1), true), (Some(2), true), (None, false)] {
        with_info(
            &build(&Fixture {
                initrd_cells: cells,
                ..Default::default()
            }),
            |i| {
                assert_eq!(i.unwrap().initrd.is_some(), expect);
            },
        );
    }
}

#[test]
fn psci_enable_method_is_read() {
    with_info(
        &build(&Fixture {
            psci: true,
            ..Default::default()
        }),
        |i| {
            let i = i.unwrap();
            assert_eq!(i.psci_method, Some("smc"));
            assert_eq!(i.cpus[1].enable_method, "psci");
            assert_eq!(i.cpus[1].release_addr, None);
        },
    );
}

#[test]
fn missing_cpus_or_soc_ranges_is_an_error() {
    with_info(
        &build(&Fixture {
            cpus: false,
            ..Default::default()
        }),
        |i| {
            assert_eq!(i.unwrap_err(), DtError::Missing("/cpus node"));
        },
    );
    with_info(
        &build(&Fixture {
            soc_ranges: false,
            ..Default::default()
        }),
        |i| {
            assert!(matches!(i.unwrap_err(), DtError::Unusable(_)));
        },
    );
}

#[test]
fn empty_memory_is_reported_as_no_ranges() {
    with_info(
        &build(&Fixture {
            memory: std::vec![(0, 0)],
            ..Default::default()
        }),
        |i| {
            assert!(i.unwrap().memory.is_empty());
        },
    );
}

#[test]
fn nodes_after_a_nopped_node_are_still_found() {
    with_info(
        &build(&Fixture {
            nop_node: true,
            ..Default::default()
        }),
        |i| {
            let i = i.unwrap();
            assert_eq!(i.cpus.len(), 4);
            assert_eq!(
                &i.memory[..],
                &[Range {
                    start: 0,
                    end: 0x3b40_0000
                }],
                "only the live /memory"
            );
        },
    );
}

#[test]
fn no_magic_and_tiny_buffers() {
    let mut buf = std::vec![0u8; 4096];
    assert_eq!(sanitize(&[], &mut buf), Err(DtError::Truncated));
    assert_eq!(
        sanitize(&[0u8; 64], &mut buf),
        Err(DtError::NoMagic { found: 0 })
    );
    let blob = build(&Fixture::default());
    let mut small = std::vec![0u8; 256];
    assert!(matches!(
        sanitize(&blob, &mut small),
        Err(DtError::TooLarge { .. })
    ));
}

#[test]
fn every_truncation_is_refused() {
    let blob = build(&Fixture::default());
    let mut buf = std::vec![0u8; 128 * 1024];
    for len in 0..blob.len() {
        assert!(sanitize(&blob[..len], &mut buf).is_err(), "length {len}");
    }
}

#[test]
fn lying_header_fields_are_refused() {
    let blob = build(&Fixture::default());
    let mut buf = std::vec![0u8; 128 * 1024];
    for field in 1..10 {
        for v in [
            0u32,
            1,
            3,
            39,
            40,
            0x7fff_ffff,
            0xffff_ffff,
            blob.len() as u32 + 1,
        ] {
            let mut b = blob.clone();
            b[field * 4..field * 4 + 4].copy_from_slice(&v.to_be_bytes());
            let _ = with_info(&b, |r| r.map(|_| ()));
            let _ = sanitize(&b, &mut buf);
        }
    }
}

#[test]
fn random_corruption_never_panics() {
    let blob = build(&Fixture {
        nop_node: true,
        memory: layout(8),
        ..Default::default()
    });
    let mut state = 0x2545_f491_4f6c_dd1du64;
    let mut next = || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let mut accepted = 0;
    for _ in 0..20_000 {
        let mut b = blob.clone();
        for _ in 0..1 + next() % 4 {
            let at = (next() as usize) % b.len();
            b[at] = match next() % 4 {
                0 => 0,
                1 => 0xff,
                2 => (next() % 10) as u8,
                _ => next() as u8,
            };
        }
        if with_info(&b, |r| r.is_ok()) {
            accepted += 1;
        }
    }
    assert!(
        accepted > 0,
        "some corruptions (in values) must still parse"
    );
}

#[test]
fn high_peripheral_mode_is_recognised() {
    // The Pi 4 tree as the firmware passes it in low-peripheral mode.
    with_info(&build(&Fixture::default()), |i| {
        assert!(!i.unwrap().high_peripherals())
    });
    // arm_peri_high=1: the same bus addresses above 4 GiB.
    let mut info = HostInfo::default();
    for (bus, cpu, size) in [
        (0x7c00_0000, 0x4_7c00_0000, 0x400_0000),
        (0x4000_0000, 0x4_c000_0000, 0x80_0000),
    ] {
        info.windows.push(Window { bus, cpu, size }).unwrap();
    }
    assert!(info.high_peripherals());
    // No window for the peripherals at all: not high (and not usable,
    // which the UART lookup reports on its own).
    assert!(!HostInfo::default().high_peripherals());
}
