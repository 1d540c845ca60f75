//! Devices of the firmware's tree given to VMs (`passthrough =`), on the
//! hypervisor's side: every name resolved and every refusal made before
//! any RAM is taken (`resolve`: an identity-RAM VM's RAM must go where
//! its DMA masters reach), the pages and lines of each VM handed to its
//! stage 2 and its distributor at build.

use crate::dt::host::HostInfo;
use crate::region::{Range, RangeSet};
use crate::vm::config::{Device, VmConfig};
use crate::vm::layout::LOW_RAM_END;
use crate::vm::passthru::{self, check_owners, Claim, Dma, Owner, Resolved};
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use fdt::Fdt;

/// One device a VM owns.
#[derive(Debug, Clone)]
pub struct Owned {
    /// The node and its addresses.
    pub dev: Resolved,
    /// `, host`: the USB controller in host mode.
    pub host_mode: bool,
}

/// What the hypervisor keeps while VMs run, by compatible (beyond
/// [`passthru::kept`], which no VM may ever have): its console and, when
/// VMs have disks, the SD controllers.
const SD_HOSTS: [&str; 2] = ["brcm,bcm2711-emmc2", "brcm,bcm2835-sdhci"];

/// Resolves every VM's `passthrough` lines against the firmware's tree
/// and refuses, naming the VM and the line: unknown names, devices
/// without registers or with interrupts that are not GIC SPIs, the
/// hypervisor's devices, a device, page or line with two owners, a DMA
/// master without `trust = dma` or without identity RAM. Per VM, in
/// configuration order.
pub fn resolve(info: &HostInfo<'_>, vms: &[VmConfig<'_>]) -> Result<Vec<Vec<Owned>>, String> {
    if vms.iter().all(|v| v.passthrough.is_empty()) {
        return Ok(vms.iter().map(|_| Vec::new()).collect());
    }
    let fdt = Fdt::new(info.tree)
        .map_err(|_| String::from("passthrough: the firmware's device tree cannot be read"))?;
    let nodes = passthru::nodes(&fdt);
    let mut out = Vec::new();
    for v in vms {
        let mut mine = Vec::new();
        for p in &v.passthrough {
            let at = |e: &dyn core::fmt::Display| format!("VM '{}': line {}: {e}", v.name, p.line);
            let dev = passthru::resolve(&fdt, &nodes, p.name).map_err(|e| at(&e))?;
            if let Dma::Master { known, .. } = dev.dma {
                let what = if known {
                    format!("{} ({}) masters DMA", dev.path, dev.compatible)
                } else {
                    format!(
                        "{} ({}) is not known to pivisor as register-only, so it is taken as a DMA master",
                        dev.path, dev.compatible
                    )
                };
                if !v.trust_dma {
                    return Err(at(&format_args!(
                        "{what}: with no IOMMU on the BCM2711 it can read and write all of RAM, the hypervisor's included; give the VM `trust = dma` to allow that"
                    )));
                }
                if !v.identity {
                    return Err(at(&format_args!(
                        "{what}: its driver programs guest addresses into it, so the VM needs identity RAM (memory = SIZE, identity)"
                    )));
                }
            }
            if p.host && !dev.compatible.contains("usb") && dev.compatible != "snps,dwc2" {
                return Err(at(&format_args!(
                    "passthrough: 'host' is for a USB controller; {} is {}",
                    dev.path, dev.compatible
                )));
            }
            mine.push(Owned {
                dev,
                host_mode: p.host,
            });
        }
        out.push(mine);
    }
    // The hypervisor's own, and the PL011 of `devices = pl011`.
    let mut extra: Vec<(Owner<'_>, Resolved)> = Vec::new();
    let pl011_vm = vms.iter().find(|v| v.devices.contains(&Device::Pl011));
    if let Some(uart) = nodes.iter().find(|f| {
        f.compatible == "arm,pl011" && f.reg.map(|r| r.0) == info.uart && info.uart.is_some()
    }) {
        if let Ok(dev) = passthru::resolve(&fdt, &nodes, &uart.path) {
            let owner = match pl011_vm {
                Some(v) => Owner::Vm(v.name),
                None => Owner::Hypervisor("its console; a VM gets it with devices = pl011"),
            };
            extra.push((owner, dev));
        }
    }
    if vms.iter().any(|v| v.disk.is_some()) {
        for f in nodes
            .iter()
            .filter(|f| SD_HOSTS.contains(&f.compatible) && f.enabled)
        {
            if let Ok(dev) = passthru::resolve(&fdt, &nodes, &f.path) {
                extra.push((
                    Owner::Hypervisor("the SD card's controller while it serves the VMs' disks"),
                    dev,
                ));
            }
        }
    }
    let mut claims: Vec<Claim<'_>> = extra
        .iter()
        .map(|(o, d)| Claim { owner: *o, dev: d })
        .collect();
    for (v, mine) in vms.iter().zip(&out) {
        for o in mine {
            claims.push(Claim {
                owner: Owner::Vm(v.name),
                dev: &o.dev,
            });
        }
    }
    check_owners(&claims).map_err(|e| format!("passthrough: {e}"))?;
    Ok(out)
}

/// Identity RAM of `size` bytes for VM `cfg` (its DMA masters `mine`):
/// at `memory-at` if given, else the highest free 2 MiB-aligned range
/// below the peripheral window that every master reaches; taken out of
/// `aligned` (and the caller's `usable`).
pub fn identity_range(
    cfg: &VmConfig<'_>,
    mine: &[Owned],
    aligned: &RangeSet<48>,
    align: u64,
) -> Result<Range, String> {
    let masters: Vec<&Resolved> = mine.iter().map(|o| &o.dev).filter(|d| d.is_dma()).collect();
    let window = passthru::dma_window(&masters)?.unwrap_or((0, LOW_RAM_END));
    let (lo, hi) = (window.0, window.0.saturating_add(window.1).min(LOW_RAM_END));
    let size = cfg.memory;
    if let Some(at) = cfg.memory_at {
        let r = Range::from_size(at, size).ok_or("memory-at overflows")?;
        if r.start < lo || r.end > hi {
            return Err(format!(
                "identity RAM at {r} is outside what its DMA masters reach ({lo:#x}-{hi:#x}) or the low 4 GiB below the peripheral window"
            ));
        }
        if !aligned.ranges().iter().any(|u| u.contains_range(&r)) {
            return Err(format!("memory-at: {r} is not free RAM"));
        }
        return Ok(r);
    }
    aligned
        .ranges()
        .iter()
        .rev()
        .find_map(|u| {
            let end = u.end.min(hi) & !(align - 1);
            let start = end.checked_sub(size)?;
            (start >= u.start.max(lo)).then_some(Range { start, end })
        })
        .ok_or_else(|| {
            format!(
                "no free {} MiB of RAM between {lo:#x} and {hi:#x} for identity RAM (where its DMA masters reach)",
                size >> 20
            )
        })
}
