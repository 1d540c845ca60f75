//! Checks of the built artifacts without booting: the image header, and the
//! device-tree reader on Debian's real Pi 4 trees (unmodified by QEMU).

use pivisor::dt::{blob, host::HostInfo};
use pivisor_harness::disasm::{self, Disasm};
use pivisor_harness::{artifact, dtb};

fn le64(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at + 8].try_into().unwrap())
}

#[test]
fn image_header_is_a_valid_arm64_image() {
    for (var, offset) in [("PIVISOR_IMAGE", 0u64), ("PIVISOR_IMAGE_80000", 0x80000)] {
        let img = std::fs::read(artifact(var)).unwrap();
        let code0 = u32::from_le_bytes(img[0..4].try_into().unwrap());
        assert_eq!(code0 >> 26, 0b000101, "code0 is a branch");
        assert_eq!(le64(&img, 8), offset, "text_offset");
        let size = le64(&img, 16);
        assert!(
            size >= img.len() as u64 + 4 * 0x10000,
            "image_size {size:#x} covers file, BSS and four stacks"
        );
        assert_eq!(size % 4096, 0);
        assert_eq!(le64(&img, 24), 0b1010, "flags: LE, 4 KiB pages, anywhere");
        assert_eq!(&img[56..60], b"ARM\x64");
    }
}

#[test]
fn debian_pi4_trees_parse() {
    for name in [
        "bcm2711-rpi-4-b.dtb",
        "bcm2711-rpi-400.dtb",
        "bcm2711-rpi-cm4-io.dtb",
    ] {
        let raw = std::fs::read(dtb(name)).unwrap();
        let mut buf = vec![0u8; 128 * 1024];
        let n = blob::sanitize(&raw, &mut buf).unwrap_or_else(|e| panic!("{name}: {e}"));
        let info = HostInfo::parse(&buf[..n]).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(info.cpus.len(), 4, "{name}");
        for (i, c) in info.cpus.iter().enumerate() {
            assert_eq!(c.enable_method, "spin-table");
            assert_eq!(c.release_addr, Some(0xd8 + 8 * i as u64));
        }
        assert_eq!(info.uart, Some(0xfe20_1000), "{name}");
        assert_eq!(info.gpio, Some(0xfe20_0000), "{name}");
        let gic = info.gic.expect("GIC-400 node");
        assert_eq!((gic.dist, gic.cpu), (0xff84_1000, 0xff84_2000), "{name}");
        assert_eq!(
            (gic.hyp, gic.vcpu),
            (Some(0xff84_4000), Some(0xff84_6000)),
            "{name}"
        );
        assert_eq!(
            info.translate(0x4004_1000),
            Some(0xff84_1000),
            "{name}: GIC distributor"
        );
        assert!(
            info.memory.is_empty(),
            "{name}: the file's /memory is empty until the firmware fills it"
        );
        assert_eq!(
            info.reserved[0].range.end, 0x1000,
            "{name}: /memreserve/ of the low page"
        );
    }
}

/// The release ELF's disassembly (Debian's binutils-aarch64-linux-gnu,
/// which tools/setup.sh installs with the cross compiler).
fn disassembly() -> Disasm {
    let elf = artifact("PIVISOR_ELF");
    let out = std::process::Command::new("aarch64-linux-gnu-objdump")
        .args(["-d", "-C", "--no-show-raw-insn"])
        .arg(&elf)
        .output()
        .expect("aarch64-linux-gnu-objdump (binutils-aarch64-linux-gnu) runs");
    assert!(
        out.status.success(),
        "objdump failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    disasm::parse(&String::from_utf8_lossy(&out.stdout))
}

/// Functions only ever entered with the MMU on, though a direct branch
/// from the MMU-off code reaches them: the second half of the boot, and
/// the log's line lock (taken only once the logger leaves early mode,
/// which `boot_mmu_on` does), and the fault path's atomic dead-core mark
/// (only once the logger has left early mode; before, a plain store).
const MMU_ON_ONLY: [&str; 3] = [
    "pivisor::boot::boot_mmu_on",
    "pivisor::console::Logger::acquire",
    "pivisor::sync::mark_dead",
];

/// What runs while the MMU is off: the boot path up to the EL2 MMU and the
/// fault-report paths, plus what they reach through indirect calls (the
/// logger, its line writer and the PL011 sink, every formatting impl).
fn mmu_off_roots(d: &Disasm) -> Vec<&str> {
    let mut roots = vec![
        "rust_primary_entry",
        "el2_mmu_enable",
        "pivisor::vmm::fault::unexpected_exception",
        "__rustc::rust_begin_unwind",
        "<pivisor::console::Logger as log::Log>::log",
        "<pivisor::console::LineWriter as core::fmt::Write>::write_str",
        "<pivisor::board::rpi4::pl011::Pl011 as pivisor::console::ConsoleSink>::write_bytes",
    ];
    roots.extend(d.names(|n| n.contains(" as core::fmt::") && n.ends_with(">::fmt")));
    roots
}

#[test]
fn nothing_reachable_before_the_mmu_uses_exclusives_or_atomics() {
    let d = disassembly();
    let roots = mmu_off_roots(&d);
    let reach = d.reachable(&roots, &MMU_ON_ONLY).unwrap();
    for f in ["pivisor::boot::boot_mmu_off", "core::fmt::write"] {
        assert!(reach.contains(f), "{f} is on the MMU-off path");
    }
    let bad = d.exclusives(&reach);
    assert!(
        bad.is_empty(),
        "load/store-exclusive or atomic instructions on the MMU-off path (Device memory): {:#?}",
        bad.iter()
            .map(|(f, i)| format!("{f} @ {:#x}: {} {}", i.addr, i.mnemonic, i.operands))
            .collect::<Vec<_>>()
    );
    // Positive control: past the stop list the image does use exclusives
    // (locks), so the check sees them when they are there.
    let all = d.reachable(&roots, &[]).unwrap();
    assert!(
        !d.exclusives(&all).is_empty(),
        "the check finds exclusives past the MMU"
    );
}

#[test]
fn every_sev_follows_a_dsb() {
    let d = disassembly();
    let sevs = d
        .funcs
        .values()
        .flatten()
        .filter(|i| i.mnemonic == "sev")
        .count();
    assert!(
        sevs > 0,
        "the image has SEVs (starting the cores, releasing the vCPUs)"
    );
    let bad = d.sev_without_dsb();
    assert!(
        bad.is_empty(),
        "sev without a DSB right before it: {:?}",
        bad.iter()
            .map(|(f, i)| format!("{f} @ {:#x}", i.addr))
            .collect::<Vec<_>>()
    );
}

#[test]
fn sgi_send_and_acknowledge_carry_their_barriers() {
    let d = disassembly();
    let send = "pivisor::board::gic400::Gic::send_sgi";
    let dmb = d
        .find(send, |i| i.mnemonic == "dmb" && i.operands == "ishst")
        .expect("dmb ishst in Gic::send_sgi");
    let store = d
        .find(send, |i| i.mnemonic.starts_with("str"))
        .expect("the GICD_SGIR store");
    assert!(dmb < store, "dmb ishst comes before the GICD_SGIR write");
    let ack = "pivisor::board::gic400::Gic::ack";
    let load = d
        .find(ack, |i| i.mnemonic.starts_with("ldr"))
        .expect("the GICC_IAR read");
    let dmb = d
        .find(ack, |i| i.mnemonic == "dmb" && i.operands == "ish")
        .expect("dmb ish in Gic::ack");
    assert!(load < dmb, "dmb ish comes after the GICC_IAR read");
}
