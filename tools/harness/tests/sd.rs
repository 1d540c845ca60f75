//! The SD card `make sd` builds (tools/mksd.sh): its partition table and
//! FAT32 file system valid, every file on it present and byte-identical
//! to its source, config.txt's keys right, and a "firmware-equivalent"
//! boot: QEMU given the card's own bcm2711-rpi-4-b.dtb, kernel8.img and
//! guests.img, as the Pi 4 firmware would load them, boots the default
//! Linux VM to its shell.

use pivisor_harness::sd::{check_config, config_txt, fat32, mbr, SECTOR};
use pivisor_harness::{artifact, Boot};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

/// Where each file on the card comes from.
fn sources() -> Vec<(String, PathBuf)> {
    let fw = artifact("PIVISOR_FIRMWARE_DIR");
    let dtbs = artifact("PIVISOR_DTB_DIR");
    let mut v: Vec<(String, PathBuf)> = [
        "start4.elf",
        "start4cd.elf",
        "start4db.elf",
        "start4x.elf",
        "fixup4.dat",
        "fixup4cd.dat",
        "fixup4db.dat",
        "fixup4x.dat",
        "LICENCE.broadcom",
    ]
    .iter()
    .map(|f| (f.to_string(), fw.join(f)))
    .collect();
    for d in [
        "bcm2711-rpi-4-b.dtb",
        "bcm2711-rpi-400.dtb",
        "bcm2711-rpi-cm4-io.dtb",
    ] {
        v.push((d.into(), dtbs.join(d)));
    }
    v.push((
        "config.txt".into(),
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../firmware/config.txt"),
    ));
    v.push(("kernel8.img".into(), artifact("PIVISOR_IMAGE")));
    v.push(("guests.img".into(), artifact("PIVISOR_BUNDLE_LINUX")));
    v
}

/// Runs an mtools command on the image's partition (at 1 MiB).
fn mtools(tool: &str, img: &Path, args: &[&str]) -> std::process::Output {
    let out = Command::new(tool)
        .env("MTOOLS_SKIP_CHECK", "1")
        .arg("-i")
        .arg(format!("{}@@1M", img.display()))
        .args(args)
        .output()
        .unwrap_or_else(|e| {
            panic!("cannot run {tool} (mtools; tools/setup.sh sd installs it): {e}")
        });
    assert!(
        out.status.success(),
        "{tool} {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// Copies `name` out of the image into `dir`.
fn extract(img: &Path, name: &str, dir: &Path) -> PathBuf {
    let to = dir.join(name);
    mtools(
        "mcopy",
        img,
        &[
            "-n",
            &format!("::/{name}"),
            to.to_str().expect("utf-8 path"),
        ],
    );
    to
}

fn scratch() -> PathBuf {
    let d = std::env::temp_dir().join(format!("pivisor-sd-test-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).expect("scratch directory");
    d
}

#[test]
fn sd_card_image_is_valid_and_boots_like_the_firmware_would() {
    let img = artifact("PIVISOR_SD_IMAGE");
    let disk = std::fs::read(&img).expect("the SD image");
    let tmp = scratch();

    // The partition table and the file system.
    let p = mbr(&disk).unwrap_or_else(|e| panic!("MBR: {e}"));
    let part = &disk[p.start as usize * SECTOR..(p.start + p.sectors) as usize * SECTOR];
    fat32(part, p.sectors).unwrap_or_else(|e| panic!("FAT32: {e}"));
    let part_file = tmp.join("partition.img");
    std::fs::write(&part_file, part).expect("write the partition");
    let fsck = Command::new("fsck.fat")
        .args(["-n", part_file.to_str().expect("utf-8 path")])
        .output()
        .expect("fsck.fat (dosfstools; tools/setup.sh sd installs it)");
    assert!(
        fsck.status.success(),
        "fsck.fat -n finds problems:\n{}{}",
        String::from_utf8_lossy(&fsck.stdout),
        String::from_utf8_lossy(&fsck.stderr)
    );
    let _ = std::fs::remove_file(&part_file);

    // Every file, and nothing else, byte-identical to its source; the
    // folder make sd writes beside the image holds the same.
    let listing = mtools("mdir", &img, &["-b", "::/"]);
    let on_card: BTreeSet<String> = String::from_utf8_lossy(&listing.stdout)
        .lines()
        .map(|l| l.trim().trim_start_matches("::/").to_string())
        .filter(|l| !l.is_empty())
        .collect();
    let sources = sources();
    let expected: BTreeSet<String> = sources.iter().map(|(n, _)| n.clone()).collect();
    assert_eq!(on_card, expected, "the files on the card");
    let folder = artifact("PIVISOR_SD_DIR");
    for (name, src) in &sources {
        let want = std::fs::read(src).unwrap_or_else(|e| panic!("{}: {e}", src.display()));
        let got = std::fs::read(extract(&img, name, &tmp)).expect("extracted file");
        assert!(
            got == want,
            "{name} on the card differs from {}",
            src.display()
        );
        let copy = std::fs::read(folder.join(name)).expect("the SD folder's copy");
        assert!(copy == want, "{name} in {} differs", folder.display());
    }
    // The firmware files are the ones fetched, checksums as recorded.
    let sums = Command::new("sha256sum")
        .args(["--quiet", "-c", "SHA256SUMS"])
        .current_dir(artifact("PIVISOR_FIRMWARE_DIR"))
        .status()
        .expect("sha256sum");
    assert!(
        sums.success(),
        "the fetched firmware fails its recorded checksums"
    );

    // config.txt as the firmware reads it.
    let cfg = std::fs::read_to_string(tmp.join("config.txt")).expect("config.txt");
    let settings = config_txt(&cfg).unwrap_or_else(|e| panic!("config.txt: {e}"));
    let bad = check_config(&settings, pivisor::platform::UART_CLOCK_HZ);
    assert!(bad.is_empty(), "config.txt: {bad:?}");

    // Firmware-equivalent boot from the card's own files: the unmodified
    // tree, the image, the bundle as the initrd.
    // As `make run` does: the card attached too (a copy: the boot must
    // not change the artefact).
    let card = tmp.join("card.img");
    std::fs::copy(&img, &card).expect("a copy of the card");
    let o = Boot::new(tmp.join("kernel8.img"))
        .dtb(tmp.join("bcm2711-rpi-4-b.dtb"))
        .initrd(tmp.join("guests.img"))
        .sd(card)
        .timeout(Duration::from_secs(400))
        .type_after(r"LINUX ready", b"echo SD-$((6*7))\r")
        .run_until_match(r"(?m)^SD-42");
    o.reject(r"Kernel panic|Oops");
    o.reject_aux(r"ERROR|FAULT|PANIC");
    o.expect(r"sd: partition 1: FAT32 \(0x0c\), 256 MiB at sector 2048, boot")
        .expect(r"LINUX ready: Linux 6\.\d+\.\d+ on pivisor VM linux")
        .expect(r"(?m)^SD-42");
    let _ = std::fs::remove_dir_all(&tmp);
}
