//! Disks for VMs (issue 20): the hypervisor's SD driver finds the card
//! QEMU raspi4b puts on the Arasan (EMMC2's bus is empty there), whatever
//! its capacity class, and reads its partition table, logical partitions
//! included.

use pivisor_harness::sd::test_card as card;
use pivisor_harness::{artifact, dtb, Boot};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

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
            (
                0,
                &[
                    (0, 0x80, 0x0c, 2048, 32768),
                    (1, 0, 0x83, 34816, 40960),
                    (2, 0, 0x05, 75776, 55296),
                ],
            ),
            (
                75776,
                &[(0, 0, 0x83, 2048, 20000), (1, 0, 0x05, 24576, 30720)],
            ),
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
    let img = card(
        "sdhc",
        4 << 30,
        &[(
            0,
            &[(0, 0, 0x0c, 2048, 65536), (1, 0, 0x83, 67584, 8_320_000)],
        )],
    );
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

/// Formats the partition at `start` (sectors) of `sectors` as ext4 with
/// the files `files` (name, contents) in its root, without root or loop
/// devices (mke2fs -d, at an offset into the image).
fn ext4(img: &Path, start: u64, sectors: u64, files: &[(&str, &[u8])]) {
    let dir = img.with_extension(format!("d{start}"));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    for (n, c) in files {
        std::fs::write(dir.join(n), c).unwrap();
    }
    let st = Command::new("mke2fs")
        .args(["-q", "-t", "ext4", "-F", "-E"])
        .arg(format!("offset={}", start * 512))
        .arg("-d")
        .arg(&dir)
        .arg(img)
        .arg(format!("{}", sectors / 2))
        .status()
        .expect("mke2fs (e2fsprogs; tools/setup.sh sd installs it)");
    assert!(st.success(), "mke2fs");
    let _ = std::fs::remove_dir_all(&dir);
}

/// A file from the ext4 partition at `start`, read on the host.
fn debugfs_cat(img: &Path, start: u64, file: &str) -> String {
    let out = Command::new("debugfs")
        .args(["-R", &format!("cat {file}")])
        .arg(format!("{}?offset={}", img.display(), start * 512))
        .output()
        .expect("debugfs (e2fsprogs)");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The card of guests/linux-disk.conf and linux-disks.conf: 64 MiB,
/// FAT32 boot partition 1, ext4 partitions 2 (16 MiB), 3 (8 MiB) and,
/// in an extended partition, 5 (12 MiB).
fn linux_card(name: &str) -> PathBuf {
    let img = card(
        name,
        64 << 20,
        &[
            (
                0,
                &[
                    (0, 0x80, 0x0c, 2048, 16384),
                    (1, 0, 0x83, 18432, 32768),
                    (2, 0, 0x83, 51200, 16384),
                    (3, 0, 0x05, 67584, 63488),
                ],
            ),
            (67584, &[(0, 0, 0x83, 2048, 24576)]),
        ],
    );
    ext4(
        &img,
        18432,
        32768,
        &[("hello.txt", b"a file from the card\n")],
    );
    ext4(&img, 51200, 16384, &[("readme", b"read-only partition\n")]);
    ext4(&img, 69632, 24576, &[]);
    img
}

fn linux_boot(bundle: &str, img: &Path) -> Boot {
    Boot::new(artifact("PIVISOR_IMAGE"))
        .dtb(dtb("bcm2711-rpi-4-b.dtb"))
        .initrd(artifact(bundle))
        .sd(img.to_path_buf())
        .timeout(Duration::from_secs(240))
}

/// A file written in a VM survives its SYSTEM_RESET and a fresh QEMU boot
/// of the same card, and is on the card (read back on the host).
#[test]
fn a_file_written_in_a_vm_survives_reset_and_a_fresh_boot() {
    let img = linux_card("persist");
    let o = linux_boot("PIVISOR_BUNDLE_LINUX_DISK", &img)
        .type_after(
            r"LINUX ready",
            b"cat /data/hello.txt; echo persisted-4711 > /data/mark && sync && reboot -f\r",
        )
        .type_after(
            r"(?s)LINUX ready.*LINUX ready",
            b"cat /data/mark; poweroff -f\r",
        )
        .run_until_match(r"(?s)LINUX ready.*LINUX ready.*\npersisted-4711");
    o.expect(r"DISK /dev/vda \(16 MiB, rw\) mounted at /data")
        .expect("a file from the card")
        .reject(r"EXT4-fs error|I/O error|blk_update_request");
    assert_eq!(
        o.count(r"DISK /dev/vda \(16 MiB, rw\) mounted"),
        2,
        "two lives"
    );
    assert_eq!(
        debugfs_cat(&img, 18432, "/mark"),
        "persisted-4711\n",
        "on the card"
    );
    // A fresh boot of the same card.
    let o = linux_boot("PIVISOR_BUNDLE_LINUX_DISK", &img)
        .type_after(r"LINUX ready", b"cat /data/mark\r")
        .run_until_match(r"LINUX ready(?s:.*)\npersisted-4711");
    o.reject(r"EXT4-fs error|I/O error");
    let _ = std::fs::remove_file(&img);
}

/// Three VMs on one card, each on its own partition: the writable ones
/// see only what they wrote, the read-only one is refused both through
/// its file system and its raw device, and its partition is untouched.
#[test]
fn vms_see_only_their_own_partition_and_read_only_stays_read_only() {
    let img = linux_card("three");
    let before_ro = std::fs::read(&img).unwrap()[51200 * 512..(51200 + 16384) * 512].to_vec();
    let o = linux_boot("PIVISOR_BUNDLE_LINUX_DISKS", &img)
        .run_until(|s| s.matches("DISKTEST").count() >= 3);
    assert!(!o.timed_out, "{}", o.serial);
    o.expect(r"DISKTEST left wrote owner-left; sees: hello.txt lost\+found owner-left \n")
        .expect(r"DISKTEST right wrote owner-right; sees: lost\+found owner-right \n")
        .expect(r"DISKTEST ro readonly: file write refused \(Read-only file system\); device write refused \(Operation not permitted\); sees: lost\+found readme \n")
        .expect(r"DISK /dev/vda \(8 MiB, ro\) mounted at /data")
        .expect(r"DISK /dev/vda \(12 MiB, rw\) mounted at /data")
        .reject(r"EXT4-fs error|I/O error");
    let card = std::fs::read(&img).unwrap();
    assert_eq!(
        &card[51200 * 512..(51200 + 16384) * 512],
        &before_ro[..],
        "read-only partition untouched"
    );
    assert_eq!(debugfs_cat(&img, 18432, "/owner-left"), "left\n");
    assert_eq!(debugfs_cat(&img, 69632, "/owner-right"), "right\n");
    let _ = std::fs::remove_file(&img);
}

/// Debian's stock kernel sees the same disk: its initramfs loads
/// virtio_mmio, virtio_blk and ext4 from the kernel's own package.
#[test]
fn debians_kernel_mounts_its_disk_with_its_own_modules() {
    let img = linux_card("debian");
    let o = linux_boot("PIVISOR_BUNDLE_LINUX_DEBIAN_DISK", &img)
        .timeout(Duration::from_secs(400))
        .type_after(r"LINUX ready", b"cat /data/hello.txt\r")
        .run_until_match(r"LINUX ready(?s:.*)a file from the card");
    o.expect(r"MODULES loaded: virtio_mmio virtio_blk crc32c_generic jbd2 mbcache crc16 ext4")
        .expect(r"virtio_blk virtio0: \[vda\] 32768 512-byte logical blocks")
        .expect(r"DISK /dev/vda \(16 MiB, rw\) mounted at /data")
        .expect(r"LINUX ready: Linux 6\.\d+\.\d+-\d+-arm64")
        .reject(r"MODULES: .* did not load|EXT4-fs error|Kernel panic");
    let _ = std::fs::remove_file(&img);
}

/// The victim's rates (KiB/s) from its `SHARE victim` lines in `text`.
fn victim_rates(text: &str) -> Vec<u64> {
    let re = regex::Regex::new(r"SHARE victim bytes=\d+ kib_s=(\d+)").unwrap();
    re.captures_iter(text)
        .filter_map(|c| c[1].parse().ok())
        .collect()
}

fn median(mut v: Vec<u64>) -> u64 {
    v.sort_unstable();
    v.get(v.len() / 2).copied().unwrap_or(0)
}

/// One VM flooding its disk (four 1 MiB requests in flight) does not
/// starve another VM reading its own at queue depth 1: the card is shared
/// in bounded turns (guests/linux-share.conf). Both VMs' throughput while
/// one floods is printed; the victim must keep at least a quarter of what
/// it had alone (its fair share is about half), and the flooder must move
/// data too (turns, not priority inversion).
#[test]
fn a_flooding_vm_does_not_starve_another_vms_disk() {
    let img = linux_card("share");
    let o = linux_boot("PIVISOR_BUNDLE_LINUX_SHARE", &img)
        .timeout(Duration::from_secs(240))
        .run_until_match(r"SHARE victim end");
    assert!(!o.timed_out, "{}", o.serial);
    o.reject(r"I/O error|blk_update_request|SHARE \w+ error");
    let s = &o.serial;
    let start = s.find("SHARE flood start").expect("the flood started");
    let end = s[start..]
        .find("SHARE flood end")
        .map(|i| start + i)
        .expect("the flood ended before the victim did");
    let alone = victim_rates(&s[..start]);
    let during = victim_rates(&s[start..end]);
    let flood: u64 = regex::Regex::new(r"SHARE flood end bytes=\d+ kib_s=(\d+)")
        .unwrap()
        .captures(s)
        .and_then(|c| c[1].parse().ok())
        .unwrap_or(0);
    assert!(
        !alone.is_empty() && !during.is_empty(),
        "victim samples alone {alone:?}, during the flood {during:?}"
    );
    let (a, d) = (median(alone.clone()), median(during.clone()));
    eprintln!(
        "disk sharing (plain TCG): victim alone {a} KiB/s (median of {}), \
         during the flood {d} KiB/s (median of {}), flooder {flood} KiB/s",
        alone.len(),
        during.len()
    );
    assert!(
        d * 4 >= a,
        "victim starved: {d} KiB/s during the flood against {a} alone ({during:?})"
    );
    assert!(flood > 0, "the flooder moved nothing");
    let _ = std::fs::remove_file(&img);
}

/// 64 KiB of bytes no two runs of which repeat within a sector, and
/// their MD5 (as `md5sum` prints it).
fn blob() -> (Vec<u8>, String) {
    let mut x = 0x2545_f491_4f6c_dd1du64;
    let v: Vec<u8> = (0..65536)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect();
    let out = Command::new("md5sum")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut c| {
            use std::io::Write;
            c.stdin.take().unwrap().write_all(&v)?;
            c.wait_with_output()
        })
        .expect("md5sum");
    let sum = String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .next()
        .unwrap()
        .to_string();
    (v, sum)
}

/// What the tests type to mount the card's partitions 2 and 3 and read
/// them, on whichever mmcblk the card is.
const MOUNT_AND_READ: &[u8] = b"mkdir -p /m2 /m3; d=$(ls /dev/mmcblk*p2 | head -n1); d=${d%p2}; mount -t ext4 ${d}p2 /m2 && mount -t ext4 -o ro ${d}p3 /m3 && cat /m2/hello.txt && md5sum /m3/blob";

/// Issue 22 (a): the SD controller the card is on (QEMU: the Arasan)
/// passed through by its device-tree path to a Linux VM with identity
/// RAM: Linux's own sdhci-iproc driver finds the card through the copied
/// node, with its registers mapped and its interrupt hardware-linked,
/// mounts the ext4 partitions and reads a file byte for byte, as the same
/// kernel does natively on the same card (the positive control); after a
/// SYSTEM_RESET (the controller reset by the hypervisor before the RAM
/// is scrubbed) it does again. The hypervisor leaves the card alone (no
/// VM has a disk).
#[test]
fn a_vm_owning_the_sd_controller_mounts_the_card_itself() {
    let img = linux_card("pt-sd");
    let (data, sum) = blob();
    // Partition 3 (8 MiB) made again with the blob in it.
    ext4(&img, 51200, 16384, &[("blob", &data)]);
    let mut first = MOUNT_AND_READ.to_vec();
    first.extend_from_slice(b"; umount /m2 /m3; reboot -f\r");
    let mut second = MOUNT_AND_READ.to_vec();
    second.extend_from_slice(b"; poweroff -f\r");
    let native = pivisor_harness::native_linux()
        .sd(img.clone())
        .timeout(Duration::from_secs(240))
        .type_after(r"LINUX ready", &second)
        .run_until_match(r"[0-9a-f]{32}  /m3/blob|Kernel panic");
    native
        .expect("a file from the card")
        .expect(&format!("{sum}  /m3/blob"));
    let o = linux_boot("PIVISOR_BUNDLE_LINUX_PT_SD", &img)
        .type_after(r"LINUX ready", &first)
        .type_after(r"(?s)LINUX ready.*LINUX ready", &second)
        .run_until_match(r"(?s)LINUX ready.*LINUX ready.*[0-9a-f]{32}  /m3/blob");
    o.expect(r"passthrough: /soc/mmc@7e300000 \(brcm,bcm2835-sdhci\) -> pages 0xfe300000\+0x1000, SPIs \[126\], DMA master")
        .expect(r"sd: /soc/mmc@7e300000 \(Arasan SDHCI\) belongs to a VM \(passthrough\); not probed")
        .expect(r"mmcblk0: mmc0:\w+ \S+ 64\.0 MiB")
        .expect("a file from the card")
        .reject(r"EXT4-fs error|I/O error|FAULT|PANIC|mmc0: Timeout|reset did not complete");
    assert_eq!(
        o.count(&format!("{sum}  /m3/blob")),
        2,
        "both lives read it whole:\n{}",
        o.serial
    );
    let _ = std::fs::remove_file(&img);
}
