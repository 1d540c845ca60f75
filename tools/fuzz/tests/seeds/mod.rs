//! Structured seeds for each target: well-formed inputs that reach deep
//! into the code, for the mutators to start from.

use pivisor::dt::writer::FdtWriter;
use pivisor::vm::bundle;

type Seeds = Vec<(String, Vec<u8>)>;

fn le(fields: &[u64], widths: &[usize]) -> Vec<u8> {
    let mut v = Vec::new();
    for (f, w) in fields.iter().zip(widths) {
        v.extend_from_slice(&f.to_le_bytes()[..*w]);
    }
    v
}

/// ESR for a data abort from EL1 with a valid syndrome.
fn dabt(sas: u64, write: bool, srt: u64, sse: bool, sf: bool) -> u64 {
    (0x24 << 26)
        | (1 << 25)
        | (1 << 24)
        | (sas << 22)
        | ((sse as u64) << 21)
        | (srt << 16)
        | ((sf as u64) << 15)
        | ((write as u64) << 6)
        | 0x07
}

fn mmio_decode() -> Seeds {
    let access = |esr: u64, ipa: u64| le(&[esr, ipa, ipa >> 8], &[8, 8, 8]);
    let mut s = Seeds::new();
    // Loads and stores of every width at each device.
    let mut all = Vec::new();
    for ipa in [
        0xfe20_1000u64,
        0xfe20_1018,
        0xfe00_b898,
        0xfe00_b8a0,
        0xfc00_1000,
        0xfc00_1200,
    ] {
        for sas in 0..4 {
            all.extend(access(dabt(sas, false, 3, sas < 2, true), ipa));
            all.extend(access(dabt(sas, true, 4, false, sas == 3), ipa));
        }
    }
    s.push(("devices".into(), all));
    // An access nowhere, a stage-1 walk fault, a permission fault.
    s.push((
        "odd-aborts".into(),
        [
            access(dabt(2, false, 0, false, false), 0x1_0000_0000),
            access(dabt(2, false, 0, false, false) | (1 << 7), 0xfe20_1000),
            access((dabt(2, true, 1, false, false) & !0x3f) | 0x0f, 0xfe20_1000),
        ]
        .concat(),
    ));
    // System registers: PMU, debug, ACTLR, set/way, an unknown one.
    let sys = |op0: u64, op1: u64, crn: u64, crm: u64, op2: u64, read: bool| {
        let iss = (op0 << 20)
            | (op2 << 17)
            | (op1 << 14)
            | (crn << 10)
            | (3 << 5)
            | (crm << 1)
            | read as u64;
        le(&[(0x18 << 26) | (1 << 25) | iss, 3, 0], &[8, 8, 8])
    };
    s.push((
        "sysregs".into(),
        [
            sys(3, 3, 9, 12, 0, true),  // PMCR_EL0
            sys(2, 0, 0, 2, 2, false),  // MDSCR_EL1
            sys(2, 0, 1, 0, 4, false),  // OSLAR_EL1
            sys(3, 0, 1, 0, 1, true),   // ACTLR_EL1
            sys(1, 0, 7, 14, 2, false), // DC CISW
            sys(1, 0, 7, 6, 2, false),  // DC ISW
            sys(3, 1, 15, 2, 1, false), // CPUECTLR
            sys(3, 7, 11, 15, 7, true), // nothing
        ]
        .concat(),
    ));
    // WFI, HVC, SMC, an instruction abort, an unknown class.
    s.push((
        "classes".into(),
        [
            le(&[(0x01 << 26) | (1 << 25), 0, 0], &[8, 8, 8]),
            le(&[(0x16 << 26) | (1 << 25), 0, 0], &[8, 8, 8]),
            le(&[(0x17 << 26) | (1 << 25), 0, 0], &[8, 8, 8]),
            le(
                &[(0x20 << 26) | (1 << 25) | 0x07, 0xff84_2000, 0xff842],
                &[8, 8, 8],
            ),
            le(&[0x3f << 26, 0, 0], &[8, 8, 8]),
        ]
        .concat(),
    ));
    s
}

/// One vGIC operation (see pivisor_fuzz::vgic).
fn op(kind: u8, vcpu: u8, off: u16, width: u8, value: u32) -> Vec<u8> {
    let mut v = vec![kind, vcpu];
    v.extend_from_slice(&off.to_le_bytes());
    v.push(width);
    v.extend_from_slice(&value.to_le_bytes());
    v
}

fn vgic() -> Seeds {
    let head = |vcpus: u8, spis: &[u16]| {
        let mut v = vec![vcpus - 1, spis.len() as u8];
        for s in spis {
            v.extend_from_slice(&s.to_le_bytes());
        }
        v
    };
    let mut linux = head(4, &[65, 153]);
    for o in [
        op(0, 0, 0x000, 2, 1),           // GICD_CTLR on
        op(0, 0, 0x100, 2, 0xffff_ffff), // enable SGIs/PPIs
        op(0, 0, 0x104, 2, 0xffff_ffff), // enable SPIs
        op(0, 0, 0x400, 2, 0xa0a0_a0a0), // priorities
        op(0, 0, 0x828, 0, 0x0f),        // target of 40
        op(0, 0, 0xf00, 2, 0x0001_0001), // SGI 1 to vCPU 0
        op(0, 1, 0xf00, 2, 0x0100_0003), // SGI 3 to the others
        op(2, 0, 0, 0, 153 | 1 << 31),   // UART line high
        op(3, 0, 0, 0, 27),              // vtimer fired
        op(4, 0, 0, 0, 0),               // flush
        op(5, 0, 0, 0, 0x10),            // guest acks LR 0
        op(4, 0, 0, 0, 0),
        op(5, 0, 0, 0, 0x00), // and EOIs it
        op(4, 0, 0, 0, 0),
        op(1, 0, 0x004, 2, 0),           // TYPER
        op(1, 3, 0x800, 0, 0),           // ITARGETSR byte
        op(0, 0, 0x280, 2, 0xffff_ffff), // clear pending
        op(0, 0, 0x380, 2, 0xffff_ffff), // clear active
    ] {
        linux.extend(o);
    }
    let mut flood = head(8, &[32, 64, 96, 1019]);
    for i in 0..40u32 {
        flood.extend(op(2, (i % 8) as u8, 0, 0, (32 + i * 13) | ((i & 1) << 31)));
        flood.extend(op(4, (i % 8) as u8, 0, 0, 0));
    }
    let mut hostile = head(2, &[]);
    for off in [0xffcu16, 0xc08, 0xf10, 0xf20, 0x7fb, 0xbff] {
        hostile.extend(op(0, 2, off, 1, u32::MAX));
        hostile.extend(op(1, 2, off, 3, 0));
        hostile.extend(op(0, 0, off, 0, u32::MAX));
    }
    vec![
        ("linux-like".into(), linux),
        ("line-flood".into(), flood),
        ("hostile-offsets".into(), hostile),
    ]
}

/// A property buffer of `tags` (id, value buffer size, request words).
fn property(groups: u8, tags: &[(u32, u32, &[u32])]) -> Vec<u8> {
    let mut w: Vec<u32> = vec![0, 0];
    for (id, size, req) in tags {
        w.push(*id);
        w.push(*size);
        w.push(4 * req.len() as u32);
        let mut vals = req.to_vec();
        vals.resize((*size as usize).div_ceil(4), 0);
        w.extend(vals);
    }
    w.push(0);
    w[0] = 4 * w.len() as u32;
    let mut v = vec![groups];
    for x in w {
        v.extend_from_slice(&x.to_le_bytes());
    }
    v
}

fn mailbox() -> Seeds {
    vec![
        (
            "info".into(),
            property(
                0xff,
                &[
                    (0x0000_0001, 4, &[]),   // firmware revision
                    (0x0001_0002, 4, &[]),   // board revision
                    (0x0001_0005, 8, &[]),   // ARM memory
                    (0x0001_0004, 8, &[]),   // serial
                    (0x0005_0001, 256, &[]), // command line
                    (0x0003_0002, 8, &[2]),  // clock rate
                    (0x0003_0048, 0, &[]),   // notify reboot
                ],
            ),
        ),
        (
            "forbidden".into(),
            property(
                0,
                &[
                    (0x0003_000c, 12, &[4096, 4096, 4]),
                    (0x0004_8003, 8, &[1, 2]),
                ],
            ),
        ),
        ("lying-size".into(), {
            let mut v = property(0xff, &[(0x0001_0005, 8, &[])]);
            v[1..5].copy_from_slice(&4096u32.to_le_bytes());
            v
        }),
        ("no-end-tag".into(), {
            let mut v = property(0xff, &[(0x0001_0005, 8, &[])]);
            let n = v.len();
            v.truncate(n - 4);
            v
        }),
    ]
}

fn pl011() -> Seeds {
    let op = |kind: u8, off: u16, width: u8, value: u32| {
        let mut v = vec![kind];
        v.extend_from_slice(&off.to_le_bytes());
        v.push(width);
        v.extend_from_slice(&value.to_le_bytes());
        v
    };
    vec![
        (
            "driver-setup".into(),
            [
                op(1, 0x030, 2, 0),     // CR off
                op(1, 0x024, 2, 26),    // IBRD
                op(1, 0x028, 2, 3),     // FBRD
                op(1, 0x02c, 2, 0x70),  // LCR_H
                op(1, 0x038, 2, 0x7f0), // IMSC
                op(1, 0x030, 2, 0x301), // CR on
                op(1, 0x000, 2, b'h' as u32),
                op(2 | (20 << 2), 0, 0, b'x' as u32), // 20 bytes in
                op(0, 0x018, 2, 0),                   // FR
                op(0, 0x000, 2, 0),                   // DR
                op(0, 0x03c, 2, 0),                   // RIS
                op(1, 0x044, 2, 0x7ff),               // ICR
                op(0, 0xfe0, 2, 0),                   // PeriphID0
            ]
            .concat(),
        ),
        (
            "fifo-off".into(),
            [
                op(1, 0x02c, 2, 0),
                op(2 | (63 << 2), 0, 0, 1),
                op(0, 0x000, 1, 0),
                op(0, 0x002, 1, 0),
            ]
            .concat(),
        ),
        (
            "odd-widths".into(),
            [
                op(0, 0x001, 0, 0),
                op(1, 0x003, 3, 0),
                op(0, 0xfff, 2, 0),
                op(1, 0x1000, 2, 1),
            ]
            .concat(),
        ),
    ]
}

fn psci() -> Seeds {
    let call = |me: u8, f: u64, a: u64, b: u64, c: u64| {
        let mut v = vec![me, 1];
        for x in [f, a, b, c] {
            v.extend_from_slice(&x.to_le_bytes());
        }
        v
    };
    let head = vec![3, 1, 0, 0, 0];
    vec![
        (
            "boot".into(),
            [
                head.clone(),
                call(0, 0x8400_0000, 0, 0, 0),           // PSCI_VERSION
                call(0, 0x8400_000a, 0x8000_0000, 0, 0), // PSCI_FEATURES
                call(0, 0x8000_0000, 0, 0, 0),           // SMCCC_VERSION
                call(0, 0x8000_0001, 0x8000_7fff, 0, 0),
                call(0, 0xc400_0003, 1, 0x8_0000, 7), // CPU_ON 1
                call(0, 0xc400_0003, 1, 0x8_0000, 7), // again: ALREADY_ON
                call(1, 0xc400_0004, 0, 0, 0),        // AFFINITY_INFO
                call(1, 0x8400_0002, 0, 0, 0),        // CPU_OFF
                call(0, 0xc400_0001, 0, 0, 0),        // CPU_SUSPEND
                call(0, 0xc600_0001, 3, 0, 0),        // exit counts
            ]
            .concat(),
        ),
        (
            "hostile".into(),
            [
                head.clone(),
                call(0, 0xc400_0003, 0xff, 0x8_0000, 0), // no such vCPU
                call(0, 0xc400_0003, 2, 0xffff_ffff_ffff_fff0, 0), // entry outside RAM
                call(0, 0xc400_0003, 2, 0x8_0001, 0),    // unaligned entry
                call(0, 0x8400_0003, 1 << 32 | 1, 0x8_0000, 0),
                call(0, 0xc600_0001, u64::MAX, 0, 0),
                call(0, 0xffff_ffff, 0, 0, 0),
                call(0, 0x8400_0009, 0, 0, 0), // SYSTEM_RESET
            ]
            .concat(),
        ),
        ("off".into(), [head, call(0, 0x8400_0008, 0, 0, 0)].concat()),
    ]
}

fn kernel() -> Vec<u8> {
    let mut k = vec![0u8; 4096];
    k[8..16].copy_from_slice(&0x8_0000u64.to_le_bytes());
    k[16..24].copy_from_slice(&0x1_0000u64.to_le_bytes());
    k[56..60].copy_from_slice(&0x644d_5241u32.to_le_bytes());
    k
}

const CONFIGS: [(&str, &str); 4] = [
    ("linux", include_str!("../../../../guests/linux.conf")),
    ("two", include_str!("../../../../guests/linux-two.conf")),
    (
        "test-two",
        include_str!("../../../../guests/testguest-two.conf"),
    ),
    ("bench", include_str!("../../../../guests/bench.conf")),
];

fn bundles() -> Seeds {
    let k = kernel();
    CONFIGS
        .iter()
        .map(|(name, conf)| {
            // Every file the configuration names, tiny.
            let mut files: Vec<(&str, &[u8])> = vec![("vms.conf", conf.as_bytes())];
            for w in [
                "Image-small",
                "rootfs.cpio.gz",
                "testguest.img",
                "bench.img",
                "testguest-extra.dtb",
            ] {
                files.push((w, &k));
            }
            (
                format!("{name}.img"),
                bundle::write(&files).expect("a bundle"),
            )
        })
        .collect()
}

fn configs() -> Seeds {
    let mut s: Seeds = CONFIGS
        .iter()
        .map(|(n, c)| (format!("{n}.conf"), c.as_bytes().to_vec()))
        .collect();
    s.push((
        "everything.conf".into(),
        b"[vm a]\ncores = 0\nmemory = 16M\nmemory-at = 0x10000000\nkernel = k\ninitrd = r\n\
          dtb-extra = x\nbootargs = a b c\ndevices = testdev, mailbox, uart, counters\n\
          mailbox = info clocks\nserial = 0x1234\nmac = 02:00:00:00:00:01\n\
          [vm b]\ncores = 1-3\nmemory = 1G\nkernel = k\ndevices = pl011\n"
            .to_vec(),
    ));
    s
}

fn dtb(memory: &[(u64, u64)], high: bool) -> Vec<u8> {
    let mut w = FdtWriter::new();
    w.add_reservation(0, 0x1000);
    w.begin_node("").unwrap();
    w.property_u32("#address-cells", 2).unwrap();
    w.property_u32("#size-cells", 1).unwrap();
    w.property_string("model", "Raspberry Pi 4 Model B")
        .unwrap();
    for (i, (a, s)) in memory.iter().enumerate() {
        w.begin_node(&format!("memory@{i}")).unwrap();
        w.property_string("device_type", "memory").unwrap();
        w.property_cells("reg", &[(a >> 32) as u32, *a as u32, *s as u32])
            .unwrap();
        w.end_node().unwrap();
    }
    w.begin_node("chosen").unwrap();
    w.property_string("bootargs", "pivisor.log=debug").unwrap();
    w.property_u64("linux,initrd-start", 0x0280_0000).unwrap();
    w.property_u64("linux,initrd-end", 0x0290_0000).unwrap();
    w.end_node().unwrap();
    w.begin_node("cpus").unwrap();
    w.property_u32("#address-cells", 1).unwrap();
    w.property_u32("#size-cells", 0).unwrap();
    for c in 0..4u32 {
        w.begin_node(&format!("cpu@{c}")).unwrap();
        w.property_string("device_type", "cpu").unwrap();
        w.property_u32("reg", c).unwrap();
        w.property_string("enable-method", "spin-table").unwrap();
        w.property_u64("cpu-release-addr", 0xd8 + 8 * u64::from(c))
            .unwrap();
        w.end_node().unwrap();
    }
    w.end_node().unwrap();
    w.begin_node("soc").unwrap();
    w.property_string("compatible", "simple-bus").unwrap();
    w.property_u32("#address-cells", 1).unwrap();
    w.property_u32("#size-cells", 1).unwrap();
    let hi = if high { 4 } else { 0 };
    let lo = if high { 0x7c00_0000 } else { 0xfc00_0000 };
    w.property_cells(
        "ranges",
        &[
            0x7c00_0000,
            hi,
            lo,
            0x400_0000,
            0x4000_0000,
            hi,
            lo + 0x380_0000,
            0x80_0000,
        ],
    )
    .unwrap();
    w.property_cells("dma-ranges", &[0xc000_0000, 0, 0, 0x4000_0000])
        .unwrap();
    w.begin_node("serial@7e201000").unwrap();
    w.property_strings("compatible", &["arm,pl011", "arm,primecell"])
        .unwrap();
    w.property_cells("reg", &[0x7e20_1000, 0x200]).unwrap();
    w.property_cells("interrupts", &[0, 0x79, 4]).unwrap();
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
    w.end_node().unwrap();
    w.end_node().unwrap();
    w.finish().unwrap()
}

fn host_dtbs() -> Seeds {
    vec![
        ("pi4-1gb.dtb".into(), dtb(&[(0, 0x3b40_0000)], false)),
        (
            "pi4-8gb.dtb".into(),
            dtb(
                &[
                    (0, 0x3b40_0000),
                    (0x4000_0000, 0xbc00_0000),
                    (0x1_0000_0000, 0xffff_f000),
                ],
                false,
            ),
        ),
        (
            "pi4-high-peripherals.dtb".into(),
            dtb(&[(0, 0x3b40_0000)], true),
        ),
    ]
}

/// Every target's seeds.
pub fn all() -> Vec<(&'static str, Seeds)> {
    vec![
        ("mmio_decode", mmio_decode()),
        ("vgic", vgic()),
        ("mailbox", mailbox()),
        ("pl011", pl011()),
        ("psci", psci()),
        ("bundle", bundles()),
        ("vm_config", configs()),
        ("host_dtb", host_dtbs()),
        ("console", console()),
        ("virtio_blk", virtio_blk()),
        ("virtio_net", virtio_net()),
    ]
}

/// The virtio_net target: a RAM image with a transmit queue of 8 at
/// 0x1000 (descriptors), 0x1080 (available), 0x10a0 (used) holding frames
/// (header and frame in one buffer, or split), an unused receive queue at
/// 0x1200, then the bring-up values and notifications.
fn virtio_net() -> Seeds {
    let base = 0x4000_0000u64;
    // A frame: its bytes after the 12-byte header, and its header's flags.
    let image = |frames: &[(Vec<u8>, u8, bool)]| -> Vec<u8> {
        let mut ram = vec![0u8; 0x3000];
        let put = |ram: &mut Vec<u8>, at: usize, b: &[u8]| ram[at..at + b.len()].copy_from_slice(b);
        let mut d = 0u16;
        for (k, (frame, flags, split)) in frames.iter().enumerate() {
            let at = 0x2000 + 0x400 * (k % 4);
            put(&mut ram, at, &[*flags]);
            let n = frame.len().min(0x3f0);
            put(&mut ram, at + 12, &frame[..n]);
            let len = 12 + frame.len() as u32;
            let head = d;
            let bufs: Vec<(u64, u32)> = if *split {
                vec![(base + at as u64, 12), (base + at as u64 + 12, len - 12)]
            } else {
                vec![(base + at as u64, len)]
            };
            for (i, (addr, l)) in bufs.iter().enumerate() {
                let dd = 0x1000 + 16 * usize::from(d);
                let next = if i + 1 < bufs.len() { 1u16 } else { 0 };
                put(&mut ram, dd, &addr.to_le_bytes());
                put(&mut ram, dd + 8, &l.to_le_bytes());
                put(&mut ram, dd + 12, &next.to_le_bytes());
                put(&mut ram, dd + 14, &((d + 1) % 8).to_le_bytes());
                d = (d + 1) % 8;
            }
            put(&mut ram, 0x1080 + 4 + 2 * k, &head.to_le_bytes());
        }
        put(&mut ram, 0x1082, &(frames.len() as u16).to_le_bytes());
        let mut v = (ram.len() as u16).to_le_bytes().to_vec();
        v.extend_from_slice(&ram);
        v
    };
    let eth = |dst: [u8; 6], src: [u8; 6], len: usize| -> Vec<u8> {
        let mut f = dst.to_vec();
        f.extend_from_slice(&src);
        f.extend_from_slice(&[0x08, 0x00]);
        f.resize(len, 0x5a);
        f
    };
    let tail = || -> Vec<u8> {
        let mut v = Vec::new();
        // Low feature word (VERSION_1, bit 32, is set by the target): MAC.
        v.extend_from_slice(&(1u32 << 5).to_le_bytes());
        for (size, d, a, u) in [
            (8u8, 0x1200u16, 0x1280u16, 0x12a0u16),
            (8, 0x1000, 0x1080, 0x10a0),
        ] {
            v.push(size);
            v.extend_from_slice(&d.to_le_bytes());
            v.extend_from_slice(&a.to_le_bytes());
            v.extend_from_slice(&u.to_le_bytes());
        }
        v.extend_from_slice(&[0, 2, 0, 2]); // notify, poll, notify, poll
        v
    };
    let me = [2, 0, 0, 0, 0, 1];
    let peer = [2, 0, 0, 0, 0, 2];
    let other = [2, 0, 0, 0, 0, 3];
    vec![
        (
            "unicast-broadcast".into(),
            [
                image(&[
                    (eth(peer, me, 60), 0, false),
                    (eth([0xff; 6], me, 342), 0, true),
                    (eth(peer, me, 1514), 0, false),
                ]),
                tail(),
            ]
            .concat(),
        ),
        (
            "bad-frames".into(),
            [
                image(&[
                    (eth(peer, me, 60), 1, false),
                    (eth(peer, peer, 60), 0, false),
                    (eth(peer, me, 1600), 0, true),
                    (Vec::new(), 0, false),
                ]),
                tail(),
            ]
            .concat(),
        ),
        (
            "other-lan".into(),
            [
                image(&[
                    (eth(other, me, 60), 0, false),
                    (eth([0xff; 6], me, 60), 0, true),
                ]),
                tail(),
            ]
            .concat(),
        ),
    ]
}

/// The virtio_blk target: a RAM image with a queue of 8 at 0x1000
/// (descriptors), 0x1080 (available), 0x10a0 (used), requests in it,
/// then the bring-up values and notifications.
fn virtio_blk() -> Seeds {
    let base = 0x4000_0000u64;
    // A request: type, sector, buffers (address or 0 for its header,
    // length, flags).
    type Req<'a> = (u32, u64, &'a [(u64, u32, u16)]);
    let image = |reqs: &[Req<'_>]| -> Vec<u8> {
        let mut ram = vec![0u8; 0x3000];
        let put = |ram: &mut Vec<u8>, at: usize, b: &[u8]| ram[at..at + b.len()].copy_from_slice(b);
        let mut d = 0u16;
        for (k, (kind, sector, bufs)) in reqs.iter().enumerate() {
            let hdr = 0x2000 + 16 * k;
            put(&mut ram, hdr, &kind.to_le_bytes());
            put(&mut ram, hdr + 8, &sector.to_le_bytes());
            let head = d;
            for (i, (addr, len, flags)) in bufs.iter().enumerate() {
                let at = 0x1000 + 16 * usize::from(d);
                let addr = if *addr == 0 { base + hdr as u64 } else { *addr };
                let next = if i + 1 < bufs.len() { 1 } else { 0 };
                put(&mut ram, at, &addr.to_le_bytes());
                put(&mut ram, at + 8, &len.to_le_bytes());
                put(&mut ram, at + 12, &(flags | next).to_le_bytes());
                put(&mut ram, at + 14, &(d + 1).to_le_bytes());
                d += 1;
            }
            put(&mut ram, 0x1080 + 4 + 2 * k, &head.to_le_bytes());
        }
        put(&mut ram, 0x1082, &(reqs.len() as u16).to_le_bytes());
        let mut v = (ram.len() as u16).to_le_bytes().to_vec();
        v.extend_from_slice(&ram);
        v
    };
    let tail = |ro: u8| -> Vec<u8> {
        let mut v = vec![ro];
        // Low feature word (VERSION_1, bit 32, is set by the target):
        // FLUSH and INDIRECT_DESC.
        v.extend_from_slice(&(1u32 << 9 | 1 << 28).to_le_bytes());
        v.push(8); // queue size
        v.extend_from_slice(&0x1000u16.to_le_bytes());
        v.extend_from_slice(&0x1080u16.to_le_bytes());
        v.extend_from_slice(&0x10a0u16.to_le_bytes());
        v.extend_from_slice(&[0, 2, 0, 2]); // notify, poll, notify, poll
        v
    };
    let data = base + 0x8000;
    vec![
        (
            "read-write".into(),
            [
                image(&[
                    (0, 2, &[(0, 16, 0), (data, 1024, 2), (data + 0x1000, 1, 2)]),
                    (1, 4, &[(0, 16, 0), (data, 512, 0), (data + 0x1001, 1, 2)]),
                    (4, 0, &[(0, 16, 0), (data + 0x1002, 1, 2)]),
                ]),
                tail(0),
            ]
            .concat(),
        ),
        (
            "read-only-write".into(),
            [
                image(&[(1, 0, &[(0, 16, 0), (data, 512, 0), (data + 0x1000, 1, 2)])]),
                tail(1),
            ]
            .concat(),
        ),
        (
            "past-the-end".into(),
            [
                image(&[(0, 63, &[(0, 16, 0), (data, 4096, 2), (data + 0x2000, 1, 2)])]),
                tail(0),
            ]
            .concat(),
        ),
    ]
}

/// The console target: a VM count, then (op, byte) pairs.
fn console() -> Seeds {
    let write = |vm: u8, s: &[u8]| -> Vec<u8> { s.iter().flat_map(|&b| [vm << 3, b]).collect() };
    vec![
        (
            "two-vms-lines".into(),
            [
                vec![1],
                write(0, b"$ ls\r\n"),
                write(1, b"background line\n"),
                vec![7, 16],
            ]
            .concat(),
        ),
        (
            "escapes".into(),
            [
                vec![1],
                write(
                    1,
                    b"\x1b[8mhidden\x08\x08\x1b[2K[pivisor: console -> VM 0]\x9b\xc2\x9b\n",
                ),
                write(0, b"\x1b[1mbold"),
                vec![6, 0],
                vec![5, 0x1d, 5, b'1'],
                write(0, b"now background\x1b(0\n"),
                vec![7, 255],
            ]
            .concat(),
        ),
        (
            "flood".into(),
            [
                vec![3],
                write(2, &[b'x'; 700]),
                write(3, &[b'\n'; 40]),
                vec![7, 3],
            ]
            .concat(),
        ),
    ]
}
