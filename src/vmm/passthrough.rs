//! Devices of the firmware's tree given to VMs (`passthrough =`), on the
//! hypervisor's side: every name resolved and every refusal made before
//! any RAM is taken (`resolve`: an identity-RAM VM's RAM must go where
//! its DMA masters reach), the pages and lines of each VM handed to its
//! stage 2 and its distributor at build.

use super::{firmware, irq, sd};
use crate::dt::host::HostInfo;
use crate::mm::stage2::DeviceMap;
use crate::region::{Range, RangeSet};
use crate::vm::config::{Device, VmConfig};
use crate::vm::layout::LOW_RAM_END;
use crate::vm::passthru::{self, check_owners, Claim, Dma, Owner, Resolved};
use crate::vm::ptree::{self, ClockSrc, PtNode};
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use fdt::Fdt;
use log::info;

/// One device a VM owns.
#[derive(Debug, Clone)]
pub struct Owned {
    /// The node and its addresses.
    pub dev: Resolved,
    /// `, host`: the USB controller in host mode.
    pub host_mode: bool,
    /// The configuration line that gives it.
    pub line: usize,
}

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
                line: p.line,
            });
        }
        out.push(mine);
    }
    // Beyond what no VM may ever have (passthru::kept): the hypervisor's
    // console (or the PL011 of `devices = pl011`) and, while VMs have
    // disks, the SD controllers it probes (sd::CONTROLLERS).
    let mut extra: Vec<(Owner<'_>, Resolved, usize)> = Vec::new();
    let pl011_vm = vms.iter().find(|v| v.devices.contains(&Device::Pl011));
    if let Some(uart) = nodes.iter().find(|f| {
        f.compatible == "arm,pl011" && f.reg.map(|r| r.0) == info.uart && info.uart.is_some()
    }) {
        if let Ok(dev) = passthru::resolve(&fdt, &nodes, &uart.path) {
            let (owner, line) = match pl011_vm {
                Some(v) => (Owner::Vm(v.name), v.line),
                None => (
                    Owner::Hypervisor("its console; a VM gets it with devices = pl011"),
                    0,
                ),
            };
            extra.push((owner, dev, line));
        }
    }
    if vms.iter().any(|v| v.disk.is_some()) {
        for f in nodes
            .iter()
            .filter(|f| f.enabled && sd::CONTROLLERS.iter().any(|c| c.0 == f.compatible))
        {
            if let Ok(dev) = passthru::resolve(&fdt, &nodes, &f.path) {
                extra.push((
                    Owner::Hypervisor("the SD card's controller while it serves the VMs' disks"),
                    dev,
                    0,
                ));
            }
        }
    }
    let mut claims: Vec<Claim<'_>> = extra
        .iter()
        .map(|(o, d, line)| Claim {
            owner: *o,
            dev: d,
            line: *line,
        })
        .collect();
    for (v, mine) in vms.iter().zip(&out) {
        for o in mine {
            claims.push(Claim {
                owner: Owner::Vm(v.name),
                dev: &o.dev,
                line: o.line,
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

/// The guest-physical ranges of a VM with `devices` that no
/// passed-through page may cover: the emulated devices' page range, the
/// GIC's distributor and CPU interface, the mailbox's and the UART's
/// pages when it has them.
pub fn vm_ranges(devices: &[Device]) -> Vec<(u64, u64, &'static str)> {
    use crate::vm::layout::*;
    let mut v = alloc::vec![
        (
            TESTDEV_IPA,
            0x10_0000,
            "emulated devices (0xfc000000: test device, counters, watchdog, virtio)"
        ),
        (GICD_IPA, GICD_SIZE, "GIC distributor"),
        (GICC_IPA, GICC_SIZE, "GIC CPU interface"),
    ];
    if devices.contains(&Device::Mailbox) {
        v.push((MAILBOX_IPA & !0xfff, 0x1000, "mailbox (devices = mailbox)"));
    }
    if devices
        .iter()
        .any(|d| matches!(d, Device::Uart | Device::Pl011))
    {
        v.push((UART_IPA, 0x1000, "UART (devices = uart or pl011)"));
    }
    v
}

/// What VM building needs of a VM's devices: their pages for its stage
/// 2 (at the same addresses), their SPIs (hardware-linked), their nodes
/// for its tree (clock rates from the firmware). Their power domains are
/// switched on here. `taken`: the VM's own guest-physical ranges (its
/// emulated devices, its GIC interface), which no page may cover.
pub struct Built {
    /// Stage-2 device pages, IPA == PA.
    pub maps: Vec<DeviceMap>,
    /// Their SPIs.
    pub spis: Vec<u32>,
    /// Their nodes for the VM's tree.
    pub nodes: Vec<PtNode>,
}

/// The firmware's power domains (raspberrypi,bcm2835-power; dt-bindings
/// raspberrypi-power.h) with the firmware device SET_POWER_STATE powers:
/// USB (domain 6) is device 3.
const POWER_DOMAINS: [(u32, u32); 1] = [(6, 3)];

/// See [`Built`].
pub fn build(
    vm: &str,
    host: &HostInfo<'_>,
    owned: &[Owned],
    taken: &[(u64, u64, &str)],
) -> Result<Built, String> {
    let mut b = Built {
        maps: Vec::new(),
        spis: Vec::new(),
        nodes: Vec::new(),
    };
    if owned.is_empty() {
        return Ok(b);
    }
    let fdt = Fdt::new(host.tree)
        .map_err(|_| String::from("passthrough: the firmware's device tree cannot be read"))?;
    for o in owned {
        let d = &o.dev;
        passthru::check_clear(d, taken)?;
        for (a, n) in d.pages() {
            b.maps.push(DeviceMap {
                ipa: a,
                pa: a,
                size: n,
            });
        }
        for &s in &d.spis {
            if !b.spis.contains(&s) {
                b.spis.push(s);
            }
        }
        let mut clock_hz = Vec::new();
        for src in ptree::clock_sources(&fdt, &d.path).map_err(|e| format!("passthrough: {e}"))? {
            clock_hz.push(match src {
                ClockSrc::Fixed(hz) => hz,
                ClockSrc::Firmware(id) => firmware::clock_rate(id).ok_or_else(|| {
                    format!("passthrough: {}: the firmware gives no rate for its clock (firmware clock {id})", d.path)
                })?,
            });
        }
        power_up(&fdt, &d.path)?;
        b.nodes.push(PtNode {
            path: d.path.clone(),
            host_mode: o.host_mode,
            clock_hz,
        });
        info!(
            "passthrough: {} ({}) -> pages {}, SPIs {:?}{}",
            d.path,
            d.compatible,
            d.pages()
                .iter()
                .map(|(a, n)| format!("{a:#x}+{n:#x}"))
                .collect::<Vec<_>>()
                .join(" "),
            d.spis.iter().map(|s| s - 32).collect::<Vec<_>>(),
            if d.is_dma() { ", DMA master" } else { "" }
        );
    }
    let masters: Vec<&str> = owned
        .iter()
        .filter(|o| o.dev.is_dma())
        .map(|o| o.dev.path.as_str())
        .collect();
    if !masters.is_empty() {
        log::warn!(
            "VM '{vm}' is trusted with DMA (trust = dma): {} can read and write all of RAM, the hypervisor's and the other VMs' included",
            masters.join(", ")
        );
    }
    Ok(b)
}

/// Switches on the power domains the node lists (the firmware's; the
/// VM's copy of the node lists none).
fn power_up(fdt: &Fdt<'_>, path: &str) -> Result<(), String> {
    let Some(node) = fdt.find_node(path) else {
        return Ok(());
    };
    let Some(p) = node.property("power-domains") else {
        return Ok(());
    };
    let w: Vec<u32> = p
        .value
        .chunks_exact(4)
        .map(|c| u32::from_be_bytes([c[0], c[1], c[2], c[3]]))
        .collect();
    for pair in w.chunks(2) {
        let (ph, dom) = (pair[0], pair.get(1).copied().unwrap_or(u32::MAX));
        let prov = fdt.find_phandle(ph);
        let ok_provider = prov.is_some_and(|n| {
            n.compatible()
                .is_some_and(|c| c.all().any(|s| s == "raspberrypi,bcm2835-power"))
        });
        let dev = POWER_DOMAINS
            .iter()
            .find(|(d, _)| *d == dom)
            .map(|(_, f)| *f);
        match (ok_provider, dev) {
            (true, Some(id)) => {
                if !firmware::power_on(id) {
                    return Err(format!(
                        "passthrough: {path}: the firmware did not switch its power domain {dom} on"
                    ));
                }
                info!("passthrough: {path}: power domain {dom} on (firmware device {id})");
            }
            _ => {
                return Err(format!(
                    "passthrough: {path}: its power domain ({ph:#x}, {dom}) is not one pivisor can switch on (the USB domain only)"
                ))
            }
        }
    }
    Ok(())
}

/// Brings VM `vm`'s passed-through devices to rest (its halt, its
/// restart before the RAM is scrubbed): their SPIs disabled at the
/// distributor, each device reset where pivisor knows how
/// ([`passthru::rest_steps`]).
pub fn rest(vm: &super::vm::Vm) {
    irq::disable_spis(&vm.pt_spis);
    for d in &vm.passthrough {
        let Some(&(base, _)) = d.regs.first() else {
            continue;
        };
        for s in passthru::rest_steps(&d.compatible) {
            let at = (base + s.off) as usize;
            // SAFETY: a register of the VM's own passed-through device
            // (its pages are in the EL2 map as Device); every vCPU of the
            // VM is stopped, so no one else touches it.
            unsafe {
                let r = at as *mut u32;
                let v = core::ptr::read_volatile(r);
                core::ptr::write_volatile(r, (v & !s.clear) | s.set);
            }
            if s.wait_clear != 0
                && !irq::wait_until(10, || {
                    // SAFETY: as above.
                    let v = unsafe { core::ptr::read_volatile(at as *const u32) };
                    v & s.wait_clear == 0
                })
            {
                vm.warn(format_args!(
                    "{}: its reset did not complete within 10 ms",
                    d.path
                ));
            }
        }
    }
}
