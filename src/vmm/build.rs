//! Building the VMs from what [`super::prepare`] read and placed, in one
//! readable sequence per VM: its stage 2, its device tree, its devices
//! attached, its images loaded (`build`), then the start (`start`). All
//! or nothing: if any VM cannot be built, none starts.

use super::host::VmHost;
use super::irq::new_vgic;
use super::passthrough;
use super::prepare::Prepared;
use super::vm::{publish, vms, Vcpu, Vm};
use super::{console, conswitch, cores, irq};
use crate::arch::{cpu, guest};
use crate::dt::host::HostInfo;
use crate::mm::frames::FRAMES;
use crate::mm::pagetable::{PageTable, TableAlloc, ENTRIES, PAGE_SIZE};
use crate::mm::stage2::{self, DeviceMap};
use crate::ratelimit::RateLimit;
use crate::region::Size;
use crate::sync::Mutex;
use crate::trap::stats::ExitStats;
use crate::trap::sysreg::SysRegState;
use crate::vm::attach::{attach, Devices, RealUart};
use crate::vm::config::{Device, VmConfig};
use crate::vm::fdt::{self, VmTree};
use crate::vm::image;
use crate::vm::layout::{GICC_IPA, GICC_SIZE, UART_INTID, UART_IPA};
use crate::vm::psci::Power;
use crate::vm::restart::state;
use alloc::string::{String, ToString};
use alloc::vec::Vec;
use core::sync::atomic::{AtomicU32, AtomicU64, AtomicU8, AtomicUsize, Ordering};
use log::info;
/// Stage-2 tables from the frame allocator (identity-mapped).
struct FrameTables;

impl TableAlloc for FrameTables {
    fn alloc_table(&mut self) -> Option<u64> {
        let f = FRAMES.lock().alloc(1)?;
        let pa = f as u64 * PAGE_SIZE;
        // SAFETY: a fresh frame of free RAM, identity-mapped RW.
        unsafe { core::ptr::write_bytes(pa as *mut u8, 0, PAGE_SIZE as usize) };
        Some(pa)
    }

    fn table(&mut self, pa: u64) -> &mut [u64; ENTRIES] {
        // SAFETY: `pa` came from alloc_table; tables are only touched by
        // the builder while the VM is being built.
        unsafe { &mut *(pa as *mut [u64; ENTRIES]) }
    }
}

/// Builds every prepared VM, each in the same order: its stage 2, its
/// device tree, its devices, then the VM itself with its RAM scrubbed and
/// its images loaded. All or nothing. `host` is the firmware's device
/// tree: its GIC's virtual CPU interface is what the guests' GICC is.
pub fn build(prepared: Vec<Prepared>, parange: u64, host: &HostInfo<'_>) -> Result<(), String> {
    let gicv = host.gic.and_then(|g| g.hyp.and(g.vcpu)).ok_or(
        "the device tree's GIC lists no virtual interface (GICH, GICV): guests cannot get interrupts",
    )?;
    let cfgs: Vec<&VmConfig<'_>> = prepared.iter().map(|p| &p.cfg).collect();
    super::net::build(&cfgs);
    let mut vms = Vec::new();
    for (index, p) in prepared.into_iter().enumerate() {
        let name = p.cfg.name.to_string();
        let what = |e: &dyn core::fmt::Display| alloc::format!("VM '{name}': {e}");
        let pl011 = passed_pl011(&p, host).map_err(|e| what(&e))?;
        let vm_devs: Vec<_> = p.owned.iter().map(|o| o.dev.clone()).collect();
        let pt = passthrough::build(
            &name,
            host,
            &p.owned,
            &passthrough::vm_ranges(&p.cfg.devices),
        )
        .map_err(|e| what(&e))?;
        let table = stage2_tables(&p, gicv, pl011, &pt.maps).map_err(|e| what(&e))?;
        let bootargs = p.cfg.command_line(index);
        let dtb = fdt::build(&VmTree {
            index,
            name: &name,
            vcpus: p.cfg.cores.len(),
            ram: p.ram.size(),
            ram_base: p.ram.base(),
            bootargs: &bootargs,
            initrd: p.plan.initrd,
            devices: &p.cfg.devices,
            extra: p.extra,
            disk: p.cfg.disk.is_some(),
            net: p.cfg.net.is_some(),
            host: host.tree,
            pt: &pt.nodes,
        })
        .map_err(|e| what(&e))?;
        if dtb.len() as u64 > image::DTB_MAX {
            return Err(what(&"its device tree exceeds 2 MiB"));
        }
        let mut dev = attach(
            &p.cfg.devices,
            p.cfg.disk.as_ref(),
            p.cfg.net.as_ref(),
            index,
            p.cfg.cores.len(),
            RealUart::PassThrough,
            VmHost { index },
        )
        .map_err(|e| what(&e))?;
        if pl011.is_some() {
            PASSTHROUGH.store(index, Ordering::Relaxed);
        }
        // The VM's own lines (its distributor lets it see them), each
        // hardware-linked.
        for &s in &pt.spis {
            if !dev.spis.contains(&s) {
                dev.spis.push(s);
            }
            if !dev.hw_spis.contains(&s) {
                dev.hw_spis.push(s);
            }
        }
        let kernel = p.cfg.kernel;
        let net = p.cfg.net;
        let mut vm = new_vm(index, name, p, table, dtb, dev, pl011, bootargs);
        vm.pt_spis = pt.spis;
        vm.passthrough = vm_devs;
        vm.zero_ram();
        vm.load();
        log_vm(&vm, kernel);
        if let Some(n) = net {
            let (ip, len) = n.ip_for(index);
            info!(
                "VM {index} '{}': eth0 on {}{}, MAC {}, address {}.{}.{}.{}/{len} (pivisor.ip=)",
                vm.name,
                n.lan,
                if n.bridge {
                    " (bridge: may send from other MACs)"
                } else {
                    ""
                },
                crate::net::MacFmt(n.mac_for(&vm.name)),
                ip[0],
                ip[1],
                ip[2],
                ip[3]
            );
        }
        vms.push(vm);
    }
    guest::publish_memory();
    publish(vms, stage2::vtcr_value(parange));
    HOST_UART_INTID.store(host.uart_intid.unwrap_or(0), Ordering::Relaxed);
    HOST_MINI_UART.store(host.mini_uart.unwrap_or(0), Ordering::Relaxed);
    HOST_MINI_UART_INTID.store(host.mini_uart_intid.unwrap_or(0), Ordering::Relaxed);
    Ok(())
}

/// The real PL011's address if the VM owns it (`devices = pl011`),
/// checked against the host's tree: a whole page, and the INTID the VM's
/// tree gives it.
fn passed_pl011(p: &Prepared, host: &HostInfo<'_>) -> Result<Option<u64>, String> {
    if !p.cfg.devices.contains(&Device::Pl011) {
        return Ok(None);
    }
    let pa = host
        .uart
        .filter(|a| a % PAGE_SIZE == 0)
        .ok_or("pl011: the device tree has no page-aligned PL011 to pass through")?;
    if host.uart_intid != Some(UART_INTID) {
        return Err(alloc::format!(
            "pl011: its interrupt is {:?} in the device tree, expected INTID {UART_INTID} (GIC_SPI 0x79)",
            host.uart_intid
        ));
    }
    Ok(Some(pa))
}

/// A VM's stage-2 tables: its RAM, the GICV frame as its GICC (both
/// pages: GICV_DIR is in the second; acknowledge, EOI and deactivate never
/// exit), and the real PL011's page (`pl011`) if it owns it (UART2-5 share
/// the page and go with it; reads, writes and its hardware-linked
/// interrupt never exit). Everything else, the GICD page included, traps.
fn stage2_tables(
    p: &Prepared,
    gicv: u64,
    pl011: Option<u64>,
    pt: &[DeviceMap],
) -> Result<PageTable<FrameTables>, String> {
    let mut table = PageTable::new(FrameTables).map_err(|e| alloc::format!("{e}"))?;
    let mut devices = alloc::vec![DeviceMap {
        ipa: GICC_IPA,
        pa: gicv,
        size: GICC_SIZE,
    }];
    if let Some(pa) = pl011 {
        devices.push(DeviceMap {
            ipa: UART_IPA,
            pa,
            size: PAGE_SIZE,
        });
    }
    devices.extend_from_slice(pt);
    stage2::build(&mut table, p.ram.chunks(), &devices).map_err(|e| alloc::format!("{e}"))?;
    Ok(table)
}

/// The VM from its parts, at power-on.
#[allow(clippy::too_many_arguments)]
fn new_vm(
    index: usize,
    name: String,
    p: Prepared,
    table: PageTable<FrameTables>,
    dtb: Vec<u8>,
    dev: Devices,
    pl011_pa: Option<u64>,
    bootargs: String,
) -> Vm {
    let vmid = index as u8 + 1;
    let vcpus = p.cfg.cores.len();
    Vm {
        index,
        vmid,
        vcpus: p
            .cfg
            .cores
            .iter()
            .map(|&core| Vcpu {
                core,
                sysregs: Mutex::new(SysRegState::reset()),
                exits: ExitStats::default(),
                foreign_irqs: AtomicU64::new(0),
                injected: AtomicU64::new(0),
            })
            .collect(),
        ram: p.ram,
        vttbr: stage2::vttbr_value(table.root(), vmid),
        kernel: p.kernel,
        initrd: p.initrd,
        dtb,
        plan: p.plan,
        power: Mutex::new(alloc::vec![Power::Off; vcpus]),
        bus: Mutex::new(dev.bus),
        state: AtomicU8::new(state::RUNNING),
        resets: AtomicU32::new(0),
        refusals: AtomicU64::new(0),
        log: Mutex::new(RateLimit::new()),
        life_log: Mutex::new(RateLimit::new()),
        test_log: Mutex::new(RateLimit::with_burst(super::vm::TEST_LINES_PER_SECOND)),
        backoff: Mutex::new(crate::vm::restart::Backoff::new(p.cfg.backoff)),
        vgic: Mutex::new(new_vgic(vcpus, &dev.spis, &dev.hw_spis)),
        spis: dev.spis,
        hw_spis: dev.hw_spis,
        cntvoff: AtomicU64::new(0),
        mailbox: p.cfg.mailbox,
        policy: p.cfg.policy,
        serial: p.cfg.serial,
        mac: p.cfg.mac,
        bootargs,
        uart: dev.uart,
        watchdog: dev.watchdog,
        blk: dev.blk,
        net: dev.net,
        io_pending: core::sync::atomic::AtomicBool::new(false),
        request: core::sync::atomic::AtomicU8::new(0),
        mailbox_tags: [const { AtomicU64::new(0) }; 3],
        last_end: Mutex::new(None),
        pl011_pa,
        passthrough: Vec::new(),
        pt_spis: Vec::new(),
        counters: p.cfg.devices.contains(&Device::Counters),
        name,
    }
}

/// The VM's line in the boot log (`kernel`: its kernel's file name).
fn log_vm(vm: &Vm, kernel: &str) {
    let cores: Vec<usize> = vm.vcpus.iter().map(|c| c.core).collect();
    let chunks: Vec<String> = vm
        .ram
        .chunks()
        .iter()
        .map(|c| alloc::format!("{:#x}", c.pa))
        .collect();
    info!(
        "VM {} '{}': {} vCPU(s) on core(s) {:?}, {} RAM at host {} (VMID {}), kernel '{}' at IPA {:#x}, device tree at IPA {:#x}{}",
        vm.index,
        vm.name,
        vm.vcpus.len(),
        cores,
        Size(vm.ram.size()),
        chunks.join("+"),
        vm.vmid,
        kernel,
        vm.plan.kernel,
        vm.plan.dtb,
        vm.plan.initrd.map_or(String::new(), |(a, s)| alloc::format!(", initrd {} at IPA {a:#x}", Size(s))),
    );
}

/// The VM the PL011 is passed through to (usize::MAX: none).
static PASSTHROUGH: AtomicUsize = AtomicUsize::new(usize::MAX);

/// The host mini UART, for the hypervisor's log after the handover.
static HOST_MINI_UART: AtomicU64 = AtomicU64::new(0);

/// The host PL011's INTID (0: unknown), for the console's input.
static HOST_UART_INTID: AtomicU32 = AtomicU32::new(0);

/// The aux block's INTID (0: unknown), for the mini UART's transmit
/// interrupt once it is the console.
static HOST_MINI_UART_INTID: AtomicU32 = AtomicU32::new(0);

/// Starts the VMs if every core they need is online (`online` bitmask).
pub fn start(online: u32) -> Result<(), String> {
    super::vcpu::on_requests(super::lifecycle::take_request);
    conswitch::connect_monitor(conswitch::MonitorHooks {
        opened: super::monitor::opened,
        key: super::monitor::key,
    });
    let vms = vms();
    if vms.is_empty() {
        return Err("no VMs built".into());
    }
    for vm in vms {
        for (i, v) in vm.vcpus.iter().enumerate() {
            if online & (1 << v.core) == 0 {
                return Err(alloc::format!(
                    "VM '{}': vCPU {i} needs core {}, which is not online",
                    vm.name,
                    v.core
                ));
            }
        }
    }
    // The PL011 handover: from here on the hypervisor never touches it.
    if let Some(vm) = vms.get(PASSTHROUGH.load(Ordering::Relaxed)) {
        let mini = HOST_MINI_UART.load(Ordering::Relaxed);
        info!(
            "console: the PL011 now belongs to VM '{}'; hypervisor messages continue on the mini UART{} and in the log ring",
            vm.name,
            if mini != 0 { " (QEMU: the second -serial)" } else { " (none in the device tree)" }
        );
        // Its transmit interrupt drains the console's output queue (on
        // core 0, like the PL011's in the mux layout).
        let aux = HOST_MINI_UART_INTID.load(Ordering::Relaxed);
        let irq = mini != 0 && aux != 0;
        if irq {
            irq::route_console_input(aux);
            conswitch::console_interrupt(aux);
        }
        console::to_mini_uart((mini != 0).then_some(mini), irq);
        if irq {
            // What is typed there goes to the monitor.
            console::with_console(|s| s.enable_input());
        }
        info!(
            "console: hypervisor log on the mini UART; the PL011 is VM '{}''s (passthrough, INTID {UART_INTID} hardware-linked){}",
            vm.name,
            if irq { "; type there for the monitor (help lists its commands)" } else { "" }
        );
    }
    // Physical SPIs passed through (hardware-linked) go to the core of
    // their owner's vCPU 0 (the guest's GICD_ITARGETSR decides which vCPU
    // gets the virtual one).
    for vm in vms {
        irq::route_spis(&vm.hw_spis, vm.vcpus[0].core);
    }
    // The console switch, if any VM has an emulated UART (the GIC is up
    // now, so the UART's input interrupt can be routed). When another VM
    // owns the PL011 the switch writes to the hypervisor's log and takes
    // no input: the PL011 and its interrupt are not the hypervisor's.
    if let Some(focus) = vms.iter().position(|v| v.uart.is_some()) {
        let names = vms.iter().map(|v| v.name.clone()).collect();
        let intid = HOST_UART_INTID.load(Ordering::Relaxed);
        let owned = PASSTHROUGH.load(Ordering::Relaxed) != usize::MAX;
        let input = (intid != 0 && !owned).then_some(intid);
        if let Some(i) = input {
            irq::route_console_input(i);
        }
        conswitch::init(names, focus, input);
    } else if PASSTHROUGH.load(Ordering::Relaxed) == usize::MAX {
        // No VM has a UART and the PL011 is the hypervisor's: what is
        // typed there is the monitor's.
        let intid = HOST_UART_INTID.load(Ordering::Relaxed);
        if intid != 0 {
            irq::route_console_input(intid);
            conswitch::monitor_only(intid);
        }
    }
    for vm in vms {
        for (i, v) in vm.vcpus.iter().enumerate() {
            cores::assign(v.core, vm, i);
        }
        irq::reset_vgic(vm); // now that the GIC model is known
        vm.cntvoff.store(cpu::counter(), Ordering::Relaxed);
        vm.backoff.lock().started(cpu::counter());
        vm.power.lock()[0] = vm.boot_power();
    }
    Ok(())
}
