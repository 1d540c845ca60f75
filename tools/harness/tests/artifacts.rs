//! Checks of the built artifacts without booting: the image header, and the
//! device-tree reader on Debian's real Pi 4 trees (unmodified by QEMU).

use pivisor::dt::{blob, host::HostInfo};
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
