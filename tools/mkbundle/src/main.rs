//! mkbundle: a VM configuration (guests/*.conf) and the files it names ->
//! a guest bundle (guests.img) for the firmware to load as the initramfs.
//!
//! It checks everything the hypervisor will check at boot, with the same
//! code (pivisor::vm): the configuration, every kernel's Image header and
//! layout, and that the VMs fit a board with `--ram` bytes (default 960M:
//! QEMU raspi4b, and what a 1 GB Pi 4 leaves the ARM cores) and `--cores`.
//!
//! Usage: pivisor-mkbundle <vms.conf> <out.img> [-L DIR]... [--ram SIZE] [--cores N]
//! Files named in the configuration are looked up next to it, then in
//! each -L directory.
//!
//! `pivisor-mkbundle --card <vms.conf | guests.img> <card.img> BOOT_MIB`
//! instead plans the SD card `make sd` writes for those VMs (the
//! configuration given, or the one inside a bundle; pivisor::disk::layout):
//! it creates the image (sparse, a power of two in size), writes its MBR
//! and extended boot records, and prints one line per partition, `N START
//! SECTORS WHO` (WHO: `boot`, the VMs' names joined by commas, or `spare`),
//! for tools/mksd.sh to format.

use pivisor::disk;
use pivisor::vm::{bundle, config, fdt, image};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// What the hypervisor itself keeps (image, stacks, heap, tables), rounded up.
const HYPERVISOR_RESERVE: u64 = 16 << 20;

struct Args {
    conf: PathBuf,
    out: PathBuf,
    dirs: Vec<PathBuf>,
    ram: u64,
    cores: usize,
}

fn parse_args() -> Result<Args, String> {
    let usage = "usage: pivisor-mkbundle <vms.conf> <out.img> [-L DIR]... [--ram SIZE] [--cores N]";
    let mut pos = Vec::new();
    let (mut dirs, mut ram, mut cores) = (Vec::new(), 960u64 << 20, 4usize);
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        match a.as_str() {
            "-L" => dirs.push(PathBuf::from(it.next().ok_or("-L needs a directory")?)),
            "--ram" => {
                let v = it.next().ok_or("--ram needs a size")?;
                ram = config::parse_size(&v).ok_or(format!("--ram: '{v}' is not a size"))?;
            }
            "--cores" => {
                let v = it.next().ok_or("--cores needs a number")?;
                cores = v
                    .parse()
                    .map_err(|_| format!("--cores: '{v}' is not a number"))?;
            }
            _ if a.starts_with('-') => return Err(format!("unknown option {a}\n{usage}")),
            _ => pos.push(PathBuf::from(a)),
        }
    }
    let [conf, out]: [PathBuf; 2] = pos.try_into().map_err(|_| usage.to_string())?;
    Ok(Args {
        conf,
        out,
        dirs,
        ram,
        cores,
    })
}

fn find(name: &str, conf: &Path, dirs: &[PathBuf]) -> Result<PathBuf, String> {
    let here = conf.parent().unwrap_or(Path::new("."));
    std::iter::once(here.to_path_buf())
        .chain(dirs.iter().cloned())
        .map(|d| d.join(name))
        .find(|p| p.is_file())
        .ok_or_else(|| {
            format!(
                "'{name}' not found next to {} or in -L directories",
                conf.display()
            )
        })
}

/// `--card`: the card's partition table and the partitions to format.
fn card(args: &[String]) -> Result<(), String> {
    let [conf, img, boot] = args else {
        return Err(
            "usage: pivisor-mkbundle --card <vms.conf | guests.img> <card.img> BOOT_MIB".into(),
        );
    };
    let raw = std::fs::read(conf).map_err(|e| format!("{conf}: {e}"))?;
    let text = if raw.starts_with(bundle::MAGIC) {
        let b = bundle::Bundle::parse(&raw).map_err(|e| format!("{conf}: {e}"))?;
        let c = b
            .file(bundle::CONFIG_NAME)
            .ok_or(format!("{conf}: no {}", bundle::CONFIG_NAME))?;
        String::from_utf8(c.to_vec())
            .map_err(|_| format!("{conf}: its configuration is not UTF-8"))?
    } else {
        String::from_utf8(raw).map_err(|_| format!("{conf}: not UTF-8"))?
    };
    let vms = config::parse(&text).map_err(|e| format!("{conf}: {e}"))?;
    let boot: u64 = boot
        .parse()
        .map_err(|_| format!("BOOT_MIB: '{boot}' is not a number"))?;
    // Each partition once: its largest size, who uses it.
    let mut disks: Vec<(u32, u64, Vec<&str>)> = Vec::new();
    for v in &vms {
        let Some(d) = v.disk else { continue };
        let size = d.size.unwrap_or(256 << 20) / 512;
        match disks.iter_mut().find(|e| e.0 == d.partition) {
            Some(e) => {
                e.1 = e.1.max(size);
                e.2.push(v.name);
            }
            None => disks.push((d.partition, size, vec![v.name])),
        }
    }
    if disks.iter().any(|d| d.0 == 1) {
        return Err(format!("{conf}: a VM names partition 1, the boot partition: make sd gives VMs partitions 2 and up"));
    }
    let sizes: Vec<(u32, u64)> = disks.iter().map(|d| (d.0, d.1)).collect();
    let plan = disk::layout::plan(boot * 2048, &sizes).map_err(|e| format!("{conf}: {e}"))?;
    let mut f = std::fs::File::create(img).map_err(|e| format!("{img}: {e}"))?;
    f.set_len(plan.sectors * 512)
        .map_err(|e| format!("{img}: {e}"))?;
    for (sector, bytes) in plan.records() {
        use std::io::{Seek, SeekFrom, Write};
        f.seek(SeekFrom::Start(sector * 512))
            .and_then(|_| f.write_all(&bytes))
            .map_err(|e| format!("{img}: {e}"))?;
    }
    for p in &plan.parts {
        let who = match p.number {
            1 => "boot".to_string(),
            n => disks
                .iter()
                .find(|d| d.0 == n)
                .map_or("spare".to_string(), |d| d.2.join(",")),
        };
        println!("{} {} {} {who}", p.number, p.start, p.sectors);
    }
    Ok(())
}

fn run() -> Result<(), String> {
    let argv: Vec<String> = std::env::args().skip(1).collect();
    if argv.first().is_some_and(|a| a == "--card") {
        return card(&argv[1..]);
    }
    let a = parse_args()?;
    let text =
        std::fs::read_to_string(&a.conf).map_err(|e| format!("{}: {e}", a.conf.display()))?;
    let cfg = |e: &dyn std::fmt::Display| format!("{}: {e}", a.conf.display());
    let vms = config::parse(&text).map_err(|e| cfg(&e))?;
    // Every file once, in first-use order.
    let mut names: Vec<&str> = Vec::new();
    for v in &vms {
        for n in std::iter::once(v.kernel).chain(v.initrd).chain(v.dtb_extra) {
            if !names.contains(&n) {
                names.push(n);
            }
        }
    }
    let mut files: Vec<(String, Vec<u8>)> =
        vec![(bundle::CONFIG_NAME.into(), text.clone().into_bytes())];
    for n in &names {
        let p = find(n, &a.conf, &a.dirs)?;
        let data = std::fs::read(&p).map_err(|e| format!("{}: {e}", p.display()))?;
        files.push((n.to_string(), data));
    }
    let file = |n: &str| {
        files
            .iter()
            .find(|(f, _)| f == n)
            .map(|(_, d)| d.as_slice())
            .unwrap_or(&[])
    };
    for (index, v) in vms.iter().enumerate() {
        let h = image::parse_header(file(v.kernel))
            .map_err(|e| cfg(&format!("VM '{}': kernel '{}': {e}", v.name, v.kernel)))?;
        let rd = v.initrd.map(|n| file(n).len() as u64);
        let plan = image::plan(&h, v.memory, rd, image::DTB_MAX)
            .map_err(|e| cfg(&format!("VM '{}': {e}", v.name)))?;
        // The tree the hypervisor will generate (this also checks dtb-extra).
        let tree = fdt::build(&fdt::VmTree {
            name: v.name,
            index,
            vcpus: v.cores.len(),
            ram: v.memory,
            ram_base: 0,
            host: &[],
            pt: &[],
            bootargs: v.bootargs,
            initrd: plan.initrd,
            devices: &v.devices,
            extra: v.dtb_extra.map(file),
            disk: v.disk.is_some(),
            net: v.net.is_some(),
        })
        .map_err(|e| cfg(&format!("VM '{}': {e}", v.name)))?;
        if tree.len() as u64 > image::DTB_MAX {
            return Err(cfg(&format!(
                "VM '{}': its device tree would exceed 2 MiB",
                v.name
            )));
        }
    }
    let refs: Vec<(&str, &[u8])> = files
        .iter()
        .map(|(n, d)| (n.as_str(), d.as_slice()))
        .collect();
    let blob = bundle::write(&refs).map_err(|e| format!("bundle: {e}"))?;
    let free = a
        .ram
        .saturating_sub(HYPERVISOR_RESERVE + (blob.len() as u64).next_multiple_of(2 << 20));
    config::check_fits(&vms, a.cores, free)
        .map_err(|e| cfg(&format!("{e} (--ram {} MiB board)", a.ram >> 20)))?;
    // The hypervisor will parse exactly these bytes.
    bundle::Bundle::parse(&blob).map_err(|e| format!("bundle self-check: {e}"))?;
    std::fs::write(&a.out, &blob).map_err(|e| format!("{}: {e}", a.out.display()))?;
    println!(
        "mkbundle: {}: {} bytes, {} VM(s), {} file(s)",
        a.out.display(),
        blob.len(),
        vms.len(),
        files.len()
    );
    for v in &vms {
        println!(
            "  VM {:<15} cores {:?}, {} MiB, kernel {}{}",
            v.name,
            v.cores,
            v.memory >> 20,
            v.kernel,
            v.initrd
                .map(|i| format!(", initrd {i}"))
                .unwrap_or_default()
        );
    }
    Ok(())
}

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("mkbundle: {e}");
            ExitCode::FAILURE
        }
    }
}
