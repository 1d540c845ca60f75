//! pv-vmm: a small VMM on Linux/KVM, the yardstick of pivisor's
//! benchmarks. It runs a VM from a pivisor guest bundle as pivisor would
//! (same configuration, load plan and device tree) under KVM on a Linux
//! host entered at EL2: `make bench` boots the small kernel natively on
//! QEMU raspi4b with pv-vmm and the bundles in its initramfs.
//!
//!     pv-vmm BUNDLE [VM-NAME]
//!
//! The VM's console is this process's stdin and stdout (raw mode on a
//! terminal; Ctrl-A x quits); pv-vmm's own messages go to stderr. It ends
//! when the guest powers off or resets, printing the exit counts.

use pivisor_vmm::machine;

#[cfg(target_arch = "aarch64")]
mod disk;
#[cfg(target_arch = "aarch64")]
mod kvm;
#[cfg(target_arch = "aarch64")]
mod tap;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.is_empty() || args.len() > 2 || args[0].starts_with('-') {
        eprintln!(
            "usage: pv-vmm BUNDLE [VM-NAME]  (a pivisor guest bundle; default: its first VM)"
        );
        std::process::exit(2);
    }
    let blob = match std::fs::read(&args[0]) {
        Ok(b) => b,
        Err(e) => {
            eprintln!("pv-vmm: cannot read {}: {e}", args[0]);
            std::process::exit(1);
        }
    };
    let m = match machine::plan(&blob, args.get(1).map(String::as_str)) {
        Ok(m) => m,
        Err(e) => {
            eprintln!("pv-vmm: {}: {e}", args[0]);
            std::process::exit(1);
        }
    };
    drop(blob);
    #[cfg(target_arch = "aarch64")]
    if let Err(e) = kvm::run(m) {
        eprintln!("pv-vmm: {e}");
        std::process::exit(1);
    }
    #[cfg(not(target_arch = "aarch64"))]
    {
        eprintln!(
            "pv-vmm: VM '{}' planned, but KVM for arm64 guests needs an aarch64 Linux host",
            m.name
        );
        std::process::exit(1);
    }
}
