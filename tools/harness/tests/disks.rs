//! Disks for VMs (issue 20): the hypervisor's SD driver finds the card
//! QEMU raspi4b puts on the Arasan (EMMC2's bus is empty there), whatever
//! its capacity class, and reads its partition table, logical partitions
//! included.

use pivisor_harness::{artifact, dtb, Boot};
use std::fs::File;
use std::io::{Seek, SeekFrom, Write};
use std::path::PathBuf;

/// A sparse card image of `size` bytes with boot records written at the
/// given sectors: (sector, [(slot, flag, type, start, sectors)]).
fn card(name: &str, size: u64, records: &[(u64, &[(usize, u8, u8, u32, u32)])]) -> PathBuf {
    let p = std::env::temp_dir().join(format!("pivisor-{}-{name}.img", std::process::id()));
    let mut f = File::create(&p).unwrap();
    f.set_len(size).unwrap();
    for (sector, entries) in records {
        let mut s = [0u8; 512];
        for &(slot, flag, kind, start, len) in *entries {
            let e = 446 + 16 * slot;
            s[e] = flag;
            s[e + 4] = kind;
            s[e + 8..e + 12].copy_from_slice(&start.to_le_bytes());
            s[e + 12..e + 16].copy_from_slice(&len.to_le_bytes());
        }
        s[510] = 0x55;
        s[511] = 0xaa;
        f.seek(SeekFrom::Start(sector * 512)).unwrap();
        f.write_all(&s).unwrap();
    }
    p
}

fn boot_with(sd: Option<PathBuf>) -> pivisor_harness::Output {
    let mut b = Boot::new(artifact("PIVISOR_IMAGE"))
        .dtb(dtb("bcm2711-rpi-4-b.dtb"))
        .initrd(artifact("PIVISOR_BUNDLE_TEST"));
    if let Some(p) = &sd {
        b = b.sd(p.clone());
    }
    let o = b.run_until_match(r"sd: (no SD memory card found|.*partition table|partition \d+: .*\n(?s:.*)starting the VMs)");
    if let Some(p) = sd {
        let _ = std::fs::remove_file(p);
    }
    o
}

#[test]
fn a_standard_capacity_card_and_its_logical_partitions() {
    // 64 MiB: QEMU makes it an SDSC card (byte addresses). A FAT32 boot
    // partition, a Linux one, an extended one with two logical ones.
    let img = card(
        "sdsc",
        64 << 20,
        &[
            (0, &[(0, 0x80, 0x0c, 2048, 32768), (1, 0, 0x83, 34816, 40960), (2, 0, 0x05, 75776, 55296)]),
            (75776, &[(0, 0, 0x83, 2048, 20000), (1, 0, 0x05, 24576, 30720)]),
            (100352, &[(0, 0, 0x83, 2048, 28672)]),
        ],
    );
    let o = boot_with(Some(img));
    o.expect(r"sd: /emmc2bus/mmc@7e340000 \(EMMC2\): no SD memory card answers")
        .expect(r"sd: SDSC card of 64 MiB \(131072 sectors\) on the Arasan SDHCI at 0xfe300000 \(/soc/mmc@7e300000, base clock \d+ MHz\)")
        .expect(r"sd: partition 1: FAT32 \(0x0c\), 16 MiB at sector 2048, boot")
        .expect(r"sd: partition 2: Linux \(0x83\), 20 MiB at sector 34816\n")
        .expect(r"sd: partition 5: Linux \(0x83\), 9.7 MiB at sector 77824")
        .expect(r"sd: partition 6: Linux \(0x83\), 14 MiB at sector 102400")
        .reject(r"partition 3|ERROR|PANIC");
}

#[test]
fn a_high_capacity_card_uses_block_addresses() {
    // 4 GiB (sparse): QEMU makes it SDHC.
    let img = card("sdhc", 4 << 30, &[(0, &[(0, 0, 0x0c, 2048, 65536), (1, 0, 0x83, 67584, 8_320_000)])]);
    let o = boot_with(Some(img));
    o.expect(r"sd: SDHC/SDXC card of 4 GiB \(8388608 sectors\) on the Arasan SDHCI")
        .expect(r"sd: partition 2: Linux \(0x83\), 4062.5 MiB at sector 67584");
}

#[test]
fn no_card_and_a_gpt_card_give_no_disks_and_say_why() {
    let o = boot_with(None);
    o.expect(r"sd: /soc/mmc@7e300000 \(Arasan SDHCI\): no SD memory card answers")
        .expect(r"sd: no SD memory card found: VMs get no disks");
    let img = card("gpt", 64 << 20, &[(0, &[(0, 0, 0xee, 1, 131071)])]);
    boot_with(Some(img)).expect(r"sd: the card's partition table: a GPT card \(protective MBR\): use an MBR \(dos\) partition table; VMs get no disks");
}
