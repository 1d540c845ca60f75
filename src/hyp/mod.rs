//! The virtual machine monitor on the target: VMs built from the guest
//! bundle (RAM, stage-2 tables, loaded images, device trees, devices), the
//! per-core vCPU loop and the exit handlers (`run`).
//!
//! Static partitioning: each VM owns a set of cores (one pinned vCPU per
//! core) and its RAM; nothing is shared between VMs but the hypervisor.
//! Building is all-or-nothing: if any VM cannot be built, none starts.

mod console;
mod firmware;
mod irq;
mod run;

pub use firmware::init as firmware_init;
pub use irq::wait_until;
pub use run::{fast_exit, handle_exit, run_core};

use crate::arch::{cpu, guest};
use crate::board::gic400::{Gic, PHYS_TIMER, SGI_KICK, VIRT_TIMER};
use crate::devices::exitctr::{self, ExitCounters};
use crate::devices::mailbox::property::Policy;
use crate::devices::mailbox::{self, Mailbox};
use crate::devices::pl011::{self, Pl011};
use crate::devices::sp805::{self, Sp805};
use crate::devices::testdev::{self, TestDev};
use crate::devices::Shared;
use crate::dt::host::{GicAddrs, HostInfo};
use crate::mm::pagetable::{PageTable, TableAlloc, ENTRIES, PAGE_SIZE};
use crate::mm::region::{Range, RangeSet, Size};
use crate::ratelimit::RateLimit;
use crate::stage2::{self, DeviceMap, GuestRam, MAX_CHUNKS};
use crate::sync::{Mutex, Once};
use crate::trap::mmio::MmioBus;
use crate::trap::sysreg::SysRegState;
use crate::vgic::dist::VgicDist;
use crate::vm::bundle::Bundle;
use crate::vm::config::{self, Device, VmConfig};
use crate::vm::fdt::{
    self, VmTree, EXITCTR_IPA, GICC_IPA, MAILBOX_INTID, MAILBOX_IPA, TESTDEV_IPA, TESTDEV_SIZE,
    UART_INTID, UART_IPA, WATCHDOG_IPA,
};
use crate::vm::image::{self, LoadPlan};
use crate::vm::psci::Power;
use crate::vm::restart::RestartPolicy;
use alloc::boxed::Box;
use alloc::string::{String, ToString};
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::sync::atomic::{
    AtomicBool, AtomicPtr, AtomicU32, AtomicU64, AtomicU8, AtomicUsize, Ordering,
};
use log::{error, info, warn};

/// VM states.
pub mod state {
    /// Running (some vCPUs may be off).
    pub const RUNNING: u8 = 0;
    /// Stopped by SYSTEM_OFF or a fatal error.
    pub const OFF: u8 = 1;
    /// Being reloaded by SYSTEM_RESET.
    pub const RESETTING: u8 = 2;
}

/// One vCPU.
pub struct Vcpu {
    /// The physical core it is pinned to.
    pub core: usize,
    /// Emulated system-register state (debug OS lock, MDSCR).
    pub sysregs: Mutex<SysRegState>,
    /// Its exits since the VM (re)started, by kind.
    pub exits: crate::trap::ExitStats,
}

/// One virtual machine.
pub struct Vm {
    /// Index in the configuration.
    pub index: usize,
    /// Name from the configuration.
    pub name: String,
    /// VMID (index + 1).
    pub vmid: u8,
    /// vCPUs, in vCPU order.
    pub vcpus: Vec<Vcpu>,
    /// RAM.
    pub ram: GuestRam,
    /// VTTBR_EL2 (root and VMID).
    pub vttbr: u64,
    kernel: &'static [u8],
    initrd: Option<&'static [u8]>,
    dtb: Vec<u8>,
    plan: LoadPlan,
    /// vCPU power states (PSCI).
    pub power: Mutex<Vec<Power>>,
    /// Emulated devices.
    pub bus: Mutex<MmioBus>,
    /// [`state`].
    pub state: AtomicU8,
    /// How many times SYSTEM_RESET restarted it.
    pub resets: AtomicU32,
    /// Guest requests refused (every [`Vm::warn`], logged or not: an
    /// access outside its devices, a refused mailbox buffer, an
    /// unemulated register, an unknown call).
    pub refusals: AtomicU64,
    /// Guest-caused log lines.
    pub log: Mutex<RateLimit>,
    /// The virtual distributor (and what each vCPU's list registers hold).
    pub vgic: Mutex<VgicDist>,
    /// The SPIs the VM owns (emulated device lines, passed-through ones).
    spis: Vec<u32>,
    /// Of those, the hardware-linked ones (physical SPIs passed through).
    pub hw_spis: Vec<u32>,
    /// CNTVOFF_EL2: the counter value at VM (re)start, so the guest's
    /// virtual counter counts from 0 at its start.
    pub cntvoff: AtomicU64,
    /// Firmware property tags the VM may use.
    pub mailbox: Policy,
    /// What happens when it powers off, resets or crashes.
    pub policy: RestartPolicy,
    /// Board serial the VM sees, if virtual.
    pub serial: Option<u64>,
    /// MAC address the VM sees, if virtual.
    pub mac: Option<[u8; 6]>,
    bootargs: String,
    /// The emulated UART, if the VM has one (the console feeds it input).
    pub uart: Option<Arc<Mutex<Pl011>>>,
    /// The emulated SP805 watchdog, if the VM has one.
    pub watchdog: Option<Arc<Mutex<Sp805>>>,
}

/// All VMs, once built.
static VMS: Once<Vec<Vm>> = Once::new();
/// VTCR_EL2, the same for every VM.
static VTCR: Once<u64> = Once::new();
/// The GIC, once initialized.
static GIC: Once<Gic> = Once::new();
/// Each core's GIC CPU interface mask.
static CPU_IF: [AtomicU8; 4] = [const { AtomicU8::new(0) }; 4];
/// Each core's VM (null: none) and vCPU index, set once before the VMs
/// start; read on every exit, so a pointer rather than a lookup.
static ASSIGN_VM: [AtomicPtr<Vm>; 4] = [const { AtomicPtr::new(core::ptr::null_mut()) }; 4];
static ASSIGN_VCPU: [AtomicUsize; 4] = [const { AtomicUsize::new(0) }; 4];
/// Whether each core is inside a guest right now.
static IN_GUEST: [AtomicBool; 4] = [const { AtomicBool::new(false) }; 4];
/// Set when the VMs may start.
static GO: AtomicBool = AtomicBool::new(false);
/// Forward the timers with EOI maintenance instead of hardware-linked
/// (a GIC model that is not a GIC-400: QEMU's).
static HW_VIA_EOI: AtomicBool = AtomicBool::new(false);

/// Sets up the GIC distributor (boot core, once) and this core's CPU
/// interface.
pub fn gic_init_core(info: Option<&HostInfo<'_>>, core: usize) {
    let gic = GIC.call_once(|| {
        let a = info.and_then(|i| i.gic).unwrap_or_default();
        let (d, c, h) = if a.dist != 0 {
            (a.dist, a.cpu, a.hyp)
        } else {
            (0xff84_1000, 0xff84_2000, None)
        };
        // SAFETY: the GIC-400 from the device tree (or the BCM2711
        // default), inside a /soc window the EL2 map has as Device.
        let g = unsafe { Gic::new(d as usize, c as usize, h.map(|h| h as usize)) };
        g.init_distributor();
        if !g.is_gic400() {
            HW_VIA_EOI.store(true, Ordering::Relaxed);
            info!(
                "GIC: GICD_IIDR {:#x} is not an ARM GIC-400 (QEMU's model): timer interrupts are forwarded with EOI maintenance, not hardware-linked",
                g.iidr()
            );
        }
        g
    });
    let mask = gic.init_cpu();
    if let Some(s) = CPU_IF.get(core) {
        s.store(mask, Ordering::Relaxed);
    }
}

/// Wakes core `core` (an SGI; it exits its guest or leaves wfi).
pub fn kick(core: usize) {
    if let (Some(g), Some(m)) = (GIC.get(), CPU_IF.get(core)) {
        g.send_sgi(m.load(Ordering::Relaxed), SGI_KICK);
    }
}

/// A configured VM before its stage-2 tables exist.
pub struct Prepared {
    cfg: VmConfig<'static>,
    ram: GuestRam,
    kernel: &'static [u8],
    initrd: Option<&'static [u8]>,
    extra: Option<&'static [u8]>,
    plan: LoadPlan,
}

/// Reads the bundle and configuration and takes each VM's RAM out of
/// `usable`. Runs before the frame allocator gets the rest.
pub fn prepare(
    info: &HostInfo<'static>,
    usable: &mut RangeSet<48>,
) -> Result<Vec<Prepared>, String> {
    let Some(rd) = info.initrd else {
        return Err("no guest bundle: the firmware loaded no initramfs (config.txt: `initramfs guests.img followkernel`; QEMU: -initrd guests.img)".into());
    };
    // SAFETY: the initrd range is reserved RAM, identity-mapped, never
    // written by anyone after the firmware loaded it.
    let blob: &'static [u8] =
        unsafe { core::slice::from_raw_parts(rd.start as *const u8, rd.size() as usize) };
    let bundle = Bundle::parse(blob).map_err(|e| alloc::format!("guest bundle at {rd}: {e}"))?;
    let text = bundle
        .config()
        .map_err(|e| alloc::format!("guest bundle: {e}"))?;
    let vms = config::parse(text).map_err(|e| alloc::format!("vms.conf: {e}"))?;
    let mut aligned = *usable;
    aligned.shrink_to(stage2::BLOCK);
    config::check_fits(&vms, info.cpus.len().min(4), aligned.total())
        .map_err(|e| alloc::format!("vms.conf: {e}"))?;
    let mut out = Vec::new();
    for cfg in vms {
        let what = |e: &dyn core::fmt::Display| alloc::format!("VM '{}': {e}", cfg.name);
        let f = bundle.vm_files(&cfg)?;
        let (kernel, initrd, extra, plan) = (f.kernel, f.initrd, f.extra, f.plan);
        let mut ram = GuestRam::new();
        match cfg.memory_at {
            Some(at) => {
                let r =
                    Range::from_size(at, cfg.memory).ok_or_else(|| what(&"memory-at overflows"))?;
                if !aligned.ranges().iter().any(|u| u.contains_range(&r)) {
                    return Err(what(&alloc::format!("memory-at: {r} is not free RAM")));
                }
                let _ = usable.remove(r);
                let _ = aligned.remove(r);
                if !ram.push(r.start, r.size()) {
                    return Err(what(
                        &"memory: does not fit the guest-physical address space",
                    ));
                }
            }
            None => {
                let pieces = aligned
                    .take_pieces(cfg.memory, stage2::BLOCK, MAX_CHUNKS)
                    .ok_or_else(|| {
                        what(&alloc::format!("no room for {} of RAM", Size(cfg.memory)))
                    })?;
                for p in pieces.iter() {
                    let _ = usable.remove(*p);
                    if !ram.push(p.start, p.size()) {
                        return Err(what(&alloc::format!(
                            "memory: {} does not fit the guest-physical layout ({} host pieces at most)",
                            Size(cfg.memory),
                            MAX_CHUNKS
                        )));
                    }
                }
            }
        }
        out.push(Prepared {
            cfg,
            ram,
            kernel,
            initrd,
            extra,
            plan,
        });
    }
    Ok(out)
}

/// Stage-2 tables from the frame allocator (identity-mapped).
struct FrameTables;

impl TableAlloc for FrameTables {
    fn alloc_table(&mut self) -> Option<u64> {
        let f = crate::kernel::FRAMES.lock().alloc(1)?;
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

/// Builds every prepared VM: stage-2 tables, device tree, devices, and
/// the loaded images. All or nothing. `gic` is the host GIC from the
/// device tree: its virtual CPU interface is what the guests' GICC is.
pub fn build(prepared: Vec<Prepared>, parange: u64, host: &HostInfo<'_>) -> Result<(), String> {
    let gic: Option<GicAddrs> = host.gic;
    let gicv = gic.and_then(|g| g.hyp.and(g.vcpu)).ok_or(
        "the device tree's GIC lists no virtual interface (GICH, GICV): guests cannot get interrupts",
    )?;
    VTCR.call_once(|| stage2::vtcr_value(parange));
    let mut vms = Vec::new();
    for (index, p) in prepared.into_iter().enumerate() {
        let name = p.cfg.name.to_string();
        let what = |e: &dyn core::fmt::Display| alloc::format!("VM '{name}': {e}");
        let mut table = PageTable::new(FrameTables).map_err(|e| what(&e))?;
        // The guest's GICC is the GICV frame (both pages: GICV_DIR is in
        // the second), so acknowledge, EOI and deactivate never exit. The
        // GICD page stays unmapped: every access traps and is emulated.
        let mut devices = alloc::vec![DeviceMap {
            ipa: GICC_IPA,
            pa: gicv,
            size: 0x2000,
        }];
        let passthrough = p.cfg.devices.contains(&Device::Pl011);
        if passthrough {
            // The real PL011's page (UART2-5 share it and go with it),
            // as device memory: reads, writes and its interrupt (below)
            // never exit.
            let pa = host.uart.filter(|a| a % PAGE_SIZE == 0).ok_or_else(|| {
                what(&"pl011: the device tree has no page-aligned PL011 to pass through")
            })?;
            if host.uart_intid != Some(UART_INTID) {
                return Err(what(&alloc::format!(
                    "pl011: its interrupt is {:?} in the device tree, expected INTID {UART_INTID} (GIC_SPI 0x79)",
                    host.uart_intid
                )));
            }
            devices.push(DeviceMap {
                ipa: UART_IPA,
                pa,
                size: PAGE_SIZE,
            });
        }
        stage2::build(&mut table, &p.ram, &devices).map_err(|e| what(&e))?;
        let dtb = fdt::build(&VmTree {
            index,
            name: &name,
            vcpus: p.cfg.cores.len(),
            ram: p.ram.size(),
            bootargs: p.cfg.bootargs,
            initrd: p.plan.initrd,
            devices: &p.cfg.devices,
            extra: p.extra,
        })
        .map_err(|e| what(&e))?;
        if dtb.len() as u64 > image::DTB_MAX {
            return Err(what(&"its device tree exceeds 2 MiB"));
        }
        let mut bus = MmioBus::new();
        let mut spis = Vec::new();
        let mut uart = None;
        let mut watchdog = None;
        let mut hw_spis = Vec::new();
        for d in &p.cfg.devices {
            match d {
                Device::TestDev => {
                    let tag = name.clone();
                    let base = fdt::testdev_irq_base(index);
                    spis.extend(base..base + testdev::LINES);
                    let dev = TestDev::new(
                        p.cfg.cores.len(),
                        index,
                        Box::new(move |l| info!("[{tag}] {l}")),
                        base,
                        Box::new(move |intid, level| {
                            if let Some(vm) = VMS.get().and_then(|v| v.get(index)) {
                                let d = vm.vgic.lock().set_line(0, intid, level);
                                irq::mark(vm, d);
                            }
                        }),
                    )
                    .with_boots(Box::new(move || {
                        VMS.get()
                            .and_then(|v| v.get(index))
                            .map_or(1, |vm| vm.resets.load(Ordering::Relaxed) + 1)
                    }));
                    bus.register(TESTDEV_IPA, TESTDEV_SIZE, Box::new(dev));
                }
                Device::Watchdog => {
                    let dev = Arc::new(Mutex::new(Sp805::new(Box::new(watchdog_ticks))));
                    bus.register(
                        WATCHDOG_IPA,
                        sp805::SIZE,
                        Box::new(Shared(dev.clone(), "sp805")),
                    );
                    watchdog = Some(dev);
                }
                Device::Counters => {
                    let dev = ExitCounters::new(
                        p.cfg.cores.len(),
                        Box::new(move |vcpu, which| {
                            VMS.get()
                                .and_then(|v| v.get(index))
                                .and_then(|vm| vm.exit_counts(vcpu).select(which))
                                .unwrap_or(0)
                        }),
                    );
                    bus.register(EXITCTR_IPA, exitctr::SIZE, Box::new(dev));
                }
                Device::Mailbox => {
                    spis.push(MAILBOX_INTID);
                    let dev = Mailbox::new(
                        Box::new(move |word| firmware::guest_request(index, word)),
                        Box::new(move |level| {
                            if let Some(vm) = VMS.get().and_then(|v| v.get(index)) {
                                let d = vm.vgic.lock().set_line(0, MAILBOX_INTID, level);
                                irq::mark(vm, d);
                            }
                        }),
                    );
                    bus.register(MAILBOX_IPA, mailbox::SIZE, Box::new(dev));
                }
                Device::Uart => {
                    spis.push(UART_INTID);
                    let dev = Arc::new(Mutex::new(Pl011::new(
                        Box::new(move |b| console::guest_byte(index, b)),
                        Box::new(move |level| {
                            if let Some(vm) = VMS.get().and_then(|v| v.get(index)) {
                                let d = vm.vgic.lock().set_line(0, UART_INTID, level);
                                irq::mark(vm, d);
                            }
                        }),
                    )));
                    bus.register(
                        UART_IPA,
                        pl011::SIZE,
                        Box::new(Shared(dev.clone(), "pl011")),
                    );
                    uart = Some(dev);
                }
                Device::Pl011 => {
                    spis.push(UART_INTID);
                    hw_spis.push(UART_INTID);
                    PASSTHROUGH.store(index, Ordering::Relaxed);
                }
            }
        }
        let vmid = index as u8 + 1;
        let vm = Vm {
            index,
            vmid,
            vcpus: p
                .cfg
                .cores
                .iter()
                .map(|&core| Vcpu {
                    core,
                    sysregs: Mutex::new(SysRegState::reset()),
                    exits: crate::trap::ExitStats::default(),
                })
                .collect(),
            ram: p.ram,
            vttbr: stage2::vttbr_value(table.root(), vmid),
            kernel: p.kernel,
            initrd: p.initrd,
            dtb,
            plan: p.plan,
            power: Mutex::new(alloc::vec![Power::Off; p.cfg.cores.len()]),
            bus: Mutex::new(bus),
            state: AtomicU8::new(state::RUNNING),
            resets: AtomicU32::new(0),
            refusals: AtomicU64::new(0),
            log: Mutex::new(RateLimit::new()),
            vgic: Mutex::new(new_vgic(p.cfg.cores.len(), &spis, &hw_spis)),
            spis,
            hw_spis,
            cntvoff: AtomicU64::new(0),
            mailbox: p.cfg.mailbox,
            policy: p.cfg.policy,
            serial: p.cfg.serial,
            mac: p.cfg.mac,
            bootargs: p.cfg.bootargs.to_string(),
            uart,
            watchdog,
            name,
        };
        vm.zero_ram();
        vm.load();
        let chunks: Vec<String> = vm
            .ram
            .chunks()
            .iter()
            .map(|c| alloc::format!("{:#x}", c.pa))
            .collect();
        info!(
            "VM {} '{}': {} vCPU(s) on core(s) {:?}, {} RAM at host {} (VMID {vmid}), kernel '{}' at IPA {:#x}, device tree at IPA {:#x}{}",
            index,
            vm.name,
            vm.vcpus.len(),
            p.cfg.cores,
            Size(vm.ram.size()),
            chunks.join("+"),
            p.cfg.kernel,
            vm.plan.kernel,
            vm.plan.dtb,
            vm.plan.initrd.map_or(String::new(), |(a, s)| alloc::format!(", initrd {} at IPA {a:#x}", Size(s))),
        );
        vms.push(vm);
    }
    guest::publish_memory();
    VMS.call_once(|| vms);
    HOST_UART_INTID.store(host.uart_intid.unwrap_or(0), Ordering::Relaxed);
    HOST_MINI_UART.store(host.mini_uart.unwrap_or(0), Ordering::Relaxed);
    Ok(())
}

/// The VM the PL011 is passed through to (usize::MAX: none).
static PASSTHROUGH: AtomicUsize = AtomicUsize::new(usize::MAX);
/// The host mini UART, for the hypervisor's log after the handover.
static HOST_MINI_UART: AtomicU64 = AtomicU64::new(0);

/// The host PL011's INTID (0: unknown), for the console's input.
static HOST_UART_INTID: AtomicU32 = AtomicU32::new(0);

/// Starts the VMs if every core they need is online (`online` bitmask).
pub fn start(online: u32) -> Result<(), String> {
    let vms = VMS.get().ok_or("no VMs built")?;
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
        crate::kernel::console_to_mini_uart((mini != 0).then_some(mini));
        info!(
            "console: hypervisor log on the mini UART; the PL011 is VM '{}''s (passthrough, INTID {UART_INTID} hardware-linked)",
            vm.name
        );
    }
    // Physical SPIs passed through (hardware-linked) go to the core of
    // their owner's vCPU 0 (the guest's GICD_ITARGETSR decides which vCPU
    // gets the virtual one).
    if let Some(g) = GIC.get() {
        for vm in vms {
            let mask = CPU_IF[vm.vcpus[0].core].load(Ordering::Relaxed);
            for &intid in &vm.hw_spis {
                g.route_spi(intid, mask, true, false);
            }
        }
    }
    // The console switch, if any VM has an emulated UART (the GIC is up
    // now, so the UART's input interrupt can be routed). When another VM
    // owns the PL011 the switch writes to the hypervisor's log and takes
    // no input: the PL011 and its interrupt are not the hypervisor's.
    if let Some(focus) = vms.iter().position(|v| v.uart.is_some()) {
        let names = vms.iter().map(|v| v.name.clone()).collect();
        let intid = HOST_UART_INTID.load(Ordering::Relaxed);
        let owned = PASSTHROUGH.load(Ordering::Relaxed) != usize::MAX;
        console::init(names, focus, (intid != 0 && !owned).then_some(intid));
    }
    for vm in vms {
        for (i, v) in vm.vcpus.iter().enumerate() {
            ASSIGN_VCPU[v.core].store(i, Ordering::Relaxed);
            ASSIGN_VM[v.core].store(vm as *const Vm as *mut Vm, Ordering::Release);
        }
        vm.reset_vgic(); // now that the GIC model is known
        vm.cntvoff.store(cpu::counter(), Ordering::Relaxed);
        vm.power.lock()[0] = vm.boot_power();
    }
    Ok(())
}

/// A VM's virtual distributor as at power-on: its SPIs, the timers'
/// PPIs hardware-linked.
fn new_vgic(vcpus: usize, spis: &[u32], hw_spis: &[u32]) -> VgicDist {
    let mut d = VgicDist::new(vcpus, spis);
    for &i in hw_spis {
        d.set_hw(i);
    }
    d.set_hw(VIRT_TIMER);
    d.set_hw(PHYS_TIMER);
    d.set_hw_via_eoi(HW_VIA_EOI.load(Ordering::Relaxed));
    d
}

/// Lets every core leave boot: cores with a vCPU run it, the others park.
pub fn release_cores() {
    GO.store(true, Ordering::Release);
    cpu::sev();
}

impl Vm {
    /// Its exits since it (re)started: one vCPU's, or (None) all of them.
    pub fn exit_counts(&self, vcpu: Option<usize>) -> crate::trap::ExitCounts {
        let mut sum = crate::trap::ExitCounts::default();
        for (i, c) in self.vcpus.iter().enumerate() {
            if vcpu.is_none_or(|v| v == i) {
                sum += c.exits.snapshot();
            }
        }
        sum
    }

    /// Its exits since it (re)started, summed over its vCPUs, and per vCPU.
    pub fn exit_report(&self) -> String {
        let per: Vec<String> = (0..self.vcpus.len())
            .map(|v| self.exit_counts(Some(v)).total().to_string())
            .collect();
        alloc::format!(
            "{}; per vCPU {}; refused {} guest requests",
            self.exit_counts(None),
            per.join(", "),
            self.refusals.load(Ordering::Relaxed)
        )
    }

    /// Logs a guest-caused event, rate-limited per VM (a flood cannot
    /// drown the console).
    pub fn warn(&self, msg: core::fmt::Arguments<'_>) {
        self.refusals.fetch_add(1, Ordering::Relaxed);
        let allowed = self.log.lock().allow(cpu::counter(), cpu::counter_freq());
        if let Some(n) = allowed {
            if n > 0 {
                warn!("VM '{}': {} similar messages suppressed", self.name, n);
            }
            warn!("VM '{}': {}", self.name, msg);
        }
    }

    /// The VM's kernel command line.
    pub fn bootargs(&self) -> &str {
        &self.bootargs
    }

    /// Puts the VM's interrupt state back to power-on (SYSTEM_RESET).
    pub(super) fn reset_vgic(&self) {
        *self.vgic.lock() = new_vgic(self.vcpus.len(), &self.spis, &self.hw_spis);
    }

    /// vCPU 0's state at (re)start: pending at the kernel entry, x0 = DTB.
    fn boot_power(&self) -> Power {
        Power::OnPending {
            entry: self.plan.kernel,
            context: self.plan.dtb,
        }
    }

    /// Scrubs the VM's RAM (nothing of a previous owner may leak) and
    /// leaves it clean to the point of coherency.
    pub(super) fn zero_ram(&self) {
        for c in self.ram.chunks() {
            cpu::zero_to_poc(c.pa, c.size);
        }
    }

    /// Copies `data` into the VM's RAM at `ipa` and cleans it to the point
    /// of coherency (a guest with its caches off, or mapping it
    /// non-cacheable, sees it). False if the range is not all RAM.
    pub(super) fn write_ram(&self, ipa: u64, data: &[u8]) -> bool {
        let Some(pieces) = self.ram.host_pieces(ipa, data.len() as u64) else {
            return false;
        };
        let mut at = 0usize;
        for (pa, n) in pieces {
            // SAFETY: VM RAM, identity-mapped, inside the VM (checked).
            let dst = unsafe { core::slice::from_raw_parts_mut(pa as *mut u8, n as usize) };
            dst.copy_from_slice(&data[at..at + n as usize]);
            cpu::clean_inval_dcache(pa, n);
            at += n as usize;
        }
        true
    }

    /// Copies the VM's RAM at `ipa` into `out`, first dropping any cache
    /// line this core holds for it (the guest may have written through a
    /// non-cacheable mapping). False if the range is not all RAM.
    pub(super) fn read_ram(&self, ipa: u64, out: &mut [u8]) -> bool {
        let Some(pieces) = self.ram.host_pieces(ipa, out.len() as u64) else {
            return false;
        };
        let mut at = 0usize;
        for (pa, n) in pieces {
            cpu::clean_inval_dcache(pa, n);
            // SAFETY: VM RAM, identity-mapped, inside the VM (checked).
            let src = unsafe { core::slice::from_raw_parts(pa as *const u8, n as usize) };
            out[at..at + n as usize].copy_from_slice(src);
            at += n as usize;
        }
        true
    }

    /// Copies `data` to guest IPA `ipa` (inside RAM: checked by the plan).
    fn copy_in(&self, ipa: u64, data: &[u8]) {
        if !self.write_ram(ipa, data) {
            error!(
                "VM '{}': image at IPA {ipa:#x} outside RAM (plan bug)",
                self.name
            );
        }
    }

    /// Writes back and drops every cache line of the VM's RAM: what the
    /// guest left dirty must not land on top of a fresh load later.
    pub(super) fn flush_ram(&self) {
        for c in self.ram.chunks() {
            cpu::clean_inval_dcache(c.pa, c.size);
        }
    }

    /// (Re)loads kernel, initrd and device tree, cleaned to the point of
    /// coherency for a guest that starts with its caches off.
    pub(super) fn load(&self) {
        self.copy_in(self.plan.kernel, self.kernel);
        if let (Some(rd), Some((ipa, _))) = (self.initrd, self.plan.initrd) {
            self.copy_in(ipa, rd);
        }
        self.copy_in(self.plan.dtb, &self.dtb);
    }
}

/// The watchdog clock (sp805::CLOCK_HZ) now, from the counter.
fn watchdog_ticks() -> u64 {
    (u128::from(cpu::counter()) * u128::from(sp805::CLOCK_HZ)
        / u128::from(cpu::counter_freq().max(1))) as u64
}

/// The counter value at watchdog tick `t` (rounded up: never early).
pub(super) fn watchdog_counter(t: u64) -> u64 {
    let f = u128::from(cpu::counter_freq().max(1));
    (u128::from(t) * f).div_ceil(u128::from(sp805::CLOCK_HZ)) as u64
}

/// The VM a physical SPI is passed through to (hardware-linked), if any.
pub(super) fn hw_spi_owner(intid: u32) -> Option<&'static Vm> {
    VMS.get()?.iter().find(|vm| vm.hw_spis.contains(&intid))
}

/// This core's VM and vCPU index.
pub fn current(core: usize) -> Option<(&'static Vm, usize)> {
    let vm = ASSIGN_VM.get(core)?.load(Ordering::Acquire);
    // SAFETY: the pointer is null or points into VMS, which is built once
    // and never dropped or moved.
    let vm = unsafe { vm.as_ref() }?;
    Some((vm, ASSIGN_VCPU[core].load(Ordering::Relaxed)))
}
