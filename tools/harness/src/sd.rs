//! Checks of the SD-card image `make sd` builds (tools/mksd.sh): the MBR,
//! the FAT32 boot sector, and config.txt's keys. Pure: the QEMU test
//! (tests/sd.rs) feeds them the image and adds what needs tools (fsck.fat,
//! mtools) and a boot.

use std::collections::BTreeMap;

/// Bytes per sector on the card.
pub const SECTOR: usize = 512;

/// The one partition of the card.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Partition {
    /// First sector.
    pub start: u64,
    /// Sectors.
    pub sectors: u64,
    /// MBR partition type (0x0c: FAT32 with LBA).
    pub kind: u8,
}

fn le32(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().expect("4 bytes"))
}

fn le16(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([b[at], b[at + 1]])
}

/// Checks the MBR of `disk`: the boot signature, partition 1 bootable,
/// FAT32 (type 0x0b or 0x0c), 1 MiB aligned, inside the disk; any other
/// entry (the VMs' disks, an extended partition for logical ones) 1 MiB
/// aligned, after partition 1 and inside the disk.
pub fn mbr(disk: &[u8]) -> Result<Partition, String> {
    if disk.len() < SECTOR {
        return Err(format!("image of {} bytes has no MBR", disk.len()));
    }
    if disk[510..512] != [0x55, 0xaa] {
        return Err("no MBR boot signature (0x55 0xAA at byte 510)".into());
    }
    let entry = |i: usize| &disk[446 + 16 * i..446 + 16 * (i + 1)];
    let e = entry(0);
    let p = Partition {
        start: u64::from(le32(e, 8)),
        sectors: u64::from(le32(e, 12)),
        kind: e[4],
    };
    if e[0] != 0x80 {
        return Err(format!(
            "partition 1 is not marked bootable (flag {:#04x})",
            e[0]
        ));
    }
    if p.kind != 0x0c && p.kind != 0x0b {
        return Err(format!(
            "partition 1 has type {:#04x}, not FAT32 (0x0b/0x0c)",
            p.kind
        ));
    }
    if p.start == 0 || !p.start.is_multiple_of(2048) {
        return Err(format!(
            "partition 1 starts at sector {}, not 1 MiB aligned",
            p.start
        ));
    }
    let disk_sectors = (disk.len() / SECTOR) as u64;
    if p.sectors == 0 || p.start + p.sectors > disk_sectors {
        return Err(format!(
            "partition 1 ({} sectors from {}) does not fit the {disk_sectors}-sector image",
            p.sectors, p.start
        ));
    }
    for i in 1..4 {
        let e = entry(i);
        if e.iter().all(|&b| b == 0) {
            continue;
        }
        let (start, len) = (u64::from(le32(e, 8)), u64::from(le32(e, 12)));
        if e[0] != 0
            || start < p.start + p.sectors
            || !start.is_multiple_of(2048)
            || start + len > disk_sectors
        {
            return Err(format!(
                "partition {} ({len} sectors from {start}, flag {:#04x}) is not an aligned partition after the boot one inside the image",
                i + 1,
                e[0]
            ));
        }
    }
    Ok(p)
}

/// Checks a FAT32 boot sector against the partition it heads (`sectors`
/// long): 512-byte sectors, a power-of-two cluster size, two FATs, the
/// FAT32 layout (no fixed root directory, a 32-bit FAT size), the "FAT32"
/// type string, the signature, enough clusters to be FAT32, and a sector
/// count that fills the partition (within 1 MiB) without overhanging it.
pub fn fat32(boot: &[u8], sectors: u64) -> Result<(), String> {
    if boot.len() < SECTOR {
        return Err("partition too short for a boot sector".into());
    }
    if boot[510..512] != [0x55, 0xaa] {
        return Err("FAT boot sector has no signature".into());
    }
    let bps = le16(boot, 11);
    let spc = boot[13];
    let reserved = le16(boot, 14);
    let fats = boot[16];
    let root_entries = le16(boot, 17);
    let fat16_size = le16(boot, 22);
    let total = u64::from(le32(boot, 32));
    let fat_size = le32(boot, 36);
    if usize::from(bps) != SECTOR {
        return Err(format!("{bps} bytes per sector, not {SECTOR}"));
    }
    if spc == 0 || !spc.is_power_of_two() {
        return Err(format!("{spc} sectors per cluster"));
    }
    if reserved == 0 || fats != 2 {
        return Err(format!("{reserved} reserved sectors, {fats} FATs"));
    }
    if root_entries != 0 || fat16_size != 0 || fat_size == 0 {
        return Err("not a FAT32 layout (fixed root directory or 16-bit FAT size)".into());
    }
    if &boot[82..90] != b"FAT32   " {
        return Err(format!(
            "file system type {:?}, not FAT32",
            String::from_utf8_lossy(&boot[82..90])
        ));
    }
    // mkfs.fat may leave a few sectors of the partition unused (it rounds
    // to its geometry); more than 1 MiB unused, or any overhang, is wrong.
    if total > sectors || sectors - total > 2048 {
        return Err(format!(
            "the file system has {total} sectors, its partition {sectors}"
        ));
    }
    let data = total - u64::from(reserved) - 2 * u64::from(fat_size);
    let clusters = data / u64::from(spc);
    if clusters < 65_525 {
        return Err(format!(
            "{clusters} clusters: below FAT32's minimum of 65525"
        ));
    }
    Ok(())
}

/// One config.txt setting: `key=value`, or a directive with arguments
/// (`initramfs guests.img followkernel`).
pub type Settings = BTreeMap<String, String>;

/// The keys pivisor's config.txt may set (a typo must not pass silently:
/// the firmware ignores unknown keys).
pub const KNOWN: [&str; 8] = [
    "arm_64bit",
    "kernel",
    "kernel_address",
    "enable_uart",
    "init_uart_clock",
    "enable_gic",
    "arm_peri_high",
    "initramfs",
];

/// Parses config.txt as the firmware reads it: one setting per line,
/// `#` comments, `key=value` or `initramfs FILE [followkernel|ADDR]`.
/// Conditional sections (`[pi4]`) are refused: the card is for a Pi 4
/// only, and every line applies.
pub fn config_txt(text: &str) -> Result<Settings, String> {
    let mut out = Settings::new();
    for (n, raw) in text.lines().enumerate() {
        let line = raw.split('#').next().unwrap_or("").trim();
        if line.is_empty() {
            continue;
        }
        let (key, value) = if let Some(rest) = line.strip_prefix("initramfs ") {
            ("initramfs", rest.trim())
        } else if line.starts_with('[') {
            return Err(format!("line {}: section {line}: not expected", n + 1));
        } else {
            let (k, v) = line
                .split_once('=')
                .ok_or_else(|| format!("line {}: '{line}' is not key=value", n + 1))?;
            (k.trim(), v.trim())
        };
        if !KNOWN.contains(&key) {
            return Err(format!("line {}: unknown key '{key}'", n + 1));
        }
        if out.insert(key.to_string(), value.to_string()).is_some() {
            return Err(format!("line {}: '{key}' set twice", n + 1));
        }
    }
    Ok(out)
}

/// What the hypervisor needs from config.txt; the problems found (empty:
/// all good). `uart_clock_hz` is the clock pivisor programs the PL011 for.
pub fn check_config(s: &Settings, uart_clock_hz: u32) -> Vec<String> {
    let mut bad = Vec::new();
    let mut want = |key: &str, value: &str, why: &str| match s.get(key) {
        Some(v) if v == value => {}
        Some(v) => bad.push(format!("{key}={v}, expected {value}: {why}")),
        None => bad.push(format!("{key} missing, expected {value}: {why}")),
    };
    want("arm_64bit", "1", "pivisor is AArch64");
    want("kernel", "kernel8.img", "the image's name on the card");
    want("enable_uart", "1", "the serial console");
    want(
        "init_uart_clock",
        &uart_clock_hz.to_string(),
        "the PL011 clock pivisor programs the baud rate for",
    );
    want("enable_gic", "1", "the GIC-400, which the vGIC needs");
    want("arm_peri_high", "0", "pivisor refuses high-peripheral mode");
    want(
        "initramfs",
        "guests.img followkernel",
        "the guest bundle, loaded after the kernel",
    );
    match s.get("kernel_address").map(|a| parse_addr(a)) {
        Some(Some(a)) if a.is_multiple_of(2 << 20) && a > 0 && a < 0x3c00_0000 => {}
        Some(_) => bad.push(format!(
            "kernel_address={}: must be a 2 MiB-aligned address in the low RAM (the image's text_offset is 0)",
            s["kernel_address"]
        )),
        None => bad.push("kernel_address missing".into()),
    }
    bad
}

fn parse_addr(a: &str) -> Option<u64> {
    match a.strip_prefix("0x") {
        Some(h) => u64::from_str_radix(h, 16).ok(),
        None => a.parse().ok(),
    }
}

/// A partition table entry: slot, boot flag, type, start, sectors.
pub type Entry = (usize, u8, u8, u32, u32);

/// A sparse card image of `size` bytes in the temporary directory, with
/// boot records (MBR, EBRs) written at the given sectors.
pub fn test_card(name: &str, size: u64, records: &[(u64, &[Entry])]) -> std::path::PathBuf {
    use std::io::{Seek, SeekFrom, Write};
    let p = std::env::temp_dir().join(format!("pivisor-{}-{name}.img", std::process::id()));
    let mut f = std::fs::File::create(&p).expect("a temporary card image");
    f.set_len(size).expect("card size");
    for (sector, entries) in records {
        let mut s = [0u8; SECTOR];
        for &(slot, flag, kind, start, len) in *entries {
            let e = 446 + 16 * slot;
            s[e] = flag;
            s[e + 4] = kind;
            s[e + 8..e + 12].copy_from_slice(&start.to_le_bytes());
            s[e + 12..e + 16].copy_from_slice(&len.to_le_bytes());
        }
        s[510] = 0x55;
        s[511] = 0xaa;
        f.seek(SeekFrom::Start(sector * SECTOR as u64))
            .expect("seek");
        f.write_all(&s).expect("write");
    }
    p
}

#[cfg(test)]
mod tests {
    use super::*;

    fn disk(entry: [u8; 16], sectors: usize) -> Vec<u8> {
        let mut d = vec![0u8; sectors * SECTOR];
        d[446..462].copy_from_slice(&entry);
        d[510] = 0x55;
        d[511] = 0xaa;
        d
    }

    fn entry(boot: u8, kind: u8, start: u32, len: u32) -> [u8; 16] {
        let mut e = [0u8; 16];
        e[0] = boot;
        e[4] = kind;
        e[8..12].copy_from_slice(&start.to_le_bytes());
        e[12..16].copy_from_slice(&len.to_le_bytes());
        e
    }

    #[test]
    fn mbr_is_checked() {
        let ok = disk(entry(0x80, 0x0c, 2048, 4096), 6144);
        assert_eq!(
            mbr(&ok),
            Ok(Partition {
                start: 2048,
                sectors: 4096,
                kind: 0x0c
            })
        );
        assert!(mbr(&[0; 100]).is_err());
        let mut nosig = ok.clone();
        nosig[511] = 0;
        assert!(mbr(&nosig).unwrap_err().contains("signature"));
        assert!(mbr(&disk(entry(0, 0x0c, 2048, 4096), 6144))
            .unwrap_err()
            .contains("bootable"));
        assert!(mbr(&disk(entry(0x80, 0x83, 2048, 4096), 6144))
            .unwrap_err()
            .contains("type"));
        assert!(mbr(&disk(entry(0x80, 0x0c, 63, 4096), 6144))
            .unwrap_err()
            .contains("aligned"));
        assert!(mbr(&disk(entry(0x80, 0x0c, 2048, 4097), 6144))
            .unwrap_err()
            .contains("fit"));
        // A second partition: fine after the boot one, not bootable, not
        // overlapping it.
        let mut two = ok.clone();
        two[462] = 0x80;
        assert!(mbr(&two).unwrap_err().contains("partition 2"));
        let mut two = disk(entry(0x80, 0x0c, 2048, 2048), 8192);
        two[462..478].copy_from_slice(&entry(0, 0x83, 4096, 2048));
        assert!(mbr(&two).is_ok());
        two[462..478].copy_from_slice(&entry(0, 0x83, 2048, 2048));
        assert!(mbr(&two).unwrap_err().contains("partition 2"));
    }

    fn boot_sector(total: u32, spc: u8, fat_size: u32) -> Vec<u8> {
        let mut b = vec![0u8; SECTOR];
        b[11..13].copy_from_slice(&512u16.to_le_bytes());
        b[13] = spc;
        b[14..16].copy_from_slice(&32u16.to_le_bytes());
        b[16] = 2;
        b[32..36].copy_from_slice(&total.to_le_bytes());
        b[36..40].copy_from_slice(&fat_size.to_le_bytes());
        b[82..90].copy_from_slice(b"FAT32   ");
        b[510] = 0x55;
        b[511] = 0xaa;
        b
    }

    #[test]
    fn fat32_boot_sector_is_checked() {
        let total = 524_288;
        assert_eq!(
            fat32(&boot_sector(total, 1, 4033), u64::from(total)),
            Ok(())
        );
        assert!(fat32(&boot_sector(total, 1, 4033), 1000)
            .unwrap_err()
            .contains("partition"));
        assert!(fat32(&boot_sector(total, 3, 4033), u64::from(total)).is_err());
        // Too few clusters for FAT32 (a FAT16-sized volume).
        assert!(fat32(&boot_sector(65_536, 1, 512), 65_536)
            .unwrap_err()
            .contains("clusters"));
        let mut fat16 = boot_sector(total, 1, 4033);
        fat16[82..90].copy_from_slice(b"FAT16   ");
        assert!(fat32(&fat16, u64::from(total)).is_err());
        assert!(fat32(&[0; 10], 1).is_err());
    }

    const GOOD: &str = "# comment\narm_64bit=1\nkernel=kernel8.img\nkernel_address=0x200000\n\
        enable_uart=1 # trailing comment\ninit_uart_clock=48000000\nenable_gic=1\n\
        arm_peri_high=0\n\ninitramfs guests.img followkernel\n";

    #[test]
    fn config_txt_is_parsed_and_checked() {
        let s = config_txt(GOOD).unwrap();
        assert_eq!(s["initramfs"], "guests.img followkernel");
        assert_eq!(s["enable_uart"], "1");
        assert_eq!(check_config(&s, 48_000_000), Vec::<String>::new());
        // The shipped file passes.
        let shipped = include_str!("../../../firmware/config.txt");
        assert_eq!(
            check_config(&config_txt(shipped).unwrap(), 48_000_000),
            Vec::<String>::new()
        );
        // Wrong values, missing keys, typos, duplicates, sections.
        let wrong = GOOD.replace("arm_peri_high=0", "arm_peri_high=1");
        let bad = check_config(&config_txt(&wrong).unwrap(), 48_000_000);
        assert!(
            bad.len() == 1 && bad[0].contains("arm_peri_high=1"),
            "{bad:?}"
        );
        assert!(check_config(&config_txt(GOOD).unwrap(), 3_000_000)[0].contains("init_uart_clock"));
        let unaligned = GOOD.replace("0x200000", "0x80001");
        assert!(
            check_config(&config_txt(&unaligned).unwrap(), 48_000_000)[0]
                .contains("kernel_address")
        );
        let missing = GOOD.replace("enable_gic=1\n", "");
        assert!(check_config(&config_txt(&missing).unwrap(), 48_000_000)[0]
            .contains("enable_gic missing"));
        assert!(config_txt("enable_uartt=1")
            .unwrap_err()
            .contains("unknown key"));
        assert!(config_txt("kernel=a\nkernel=b")
            .unwrap_err()
            .contains("twice"));
        assert!(config_txt("[pi4]\nkernel=a")
            .unwrap_err()
            .contains("section"));
        assert!(config_txt("just words").unwrap_err().contains("key=value"));
    }
}
