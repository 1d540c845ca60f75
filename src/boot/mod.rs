//! The boot order: brings the machine up (console, device tree, memory
//! plan, EL2 MMU, heap and frames, the VMs, the other cores) and reports
//! every failure on the console before parking. No inline assembly here:
//! the hardware is reached through `arch` and `board`, the VMs through
//! `vmm`.

mod heap;
mod tree;

use crate::arch::{boot, cpu, mmu};
use crate::board::rpi4;
use crate::bootargs::{self, FaultKind, Options};
use crate::dt::host::HostInfo;
use crate::mm::{self, MemoryPlan};
use crate::smp::{self, BootMethod};
use crate::sync::Once;
use crate::vmm::{self, console};
use core::sync::atomic::{AtomicU32, Ordering};
use log::{error, info, warn};

/// Called by boot.s on the primary core: MMU off, BSS zeroed, relocated.
///
/// # Safety
/// Only boot.s calls this, once.
#[no_mangle]
pub unsafe extern "C" fn rust_primary_entry(dtb: usize, el: u64, load: usize) -> ! {
    primary_main(dtb, el, load)
}

/// Called by boot.s on a secondary core: MMU and caches on (same tables
/// as the primary), stack set.
///
/// # Safety
/// Only boot.s calls this, with `boot` = &SECONDARY_BOOT.
#[no_mangle]
pub unsafe extern "C" fn rust_secondary_entry(b: &boot::SecondaryBoot) -> ! {
    let core = b.core.load(Ordering::Relaxed) as usize;
    boot::set_core_stack(core, b.stack_top.load(Ordering::Relaxed));
    secondary_main(core)
}

/// How long a secondary core gets to report online.
const ONLINE_TIMEOUT_MS: u64 = 1000;

static OPTIONS: Once<Options> = Once::new();

static ONLINE: AtomicU32 = AtomicU32::new(0);

/// The primary core's boot, from boot.s. MMU off, single core.
///
/// Split in two at the EL2 MMU: [`boot_mmu_off`] and everything it calls
/// run with memory Device-nGnRnE (no exclusives, no atomics read-modify-
/// write: `make test` checks the disassembly), [`boot_mmu_on`] runs with
/// caches and locks.
pub fn primary_main(dtb_pa: usize, el: u64, load: usize) -> ! {
    let early = boot_mmu_off(dtb_pa, el, load);
    // SAFETY: the map covers the image, the stacks, RAM and the console, 1:1.
    unsafe { mmu::enable(&early.cfg) };
    boot_mmu_on(early)
}

/// What the MMU-off half of the boot hands to the other half.
struct EarlyBoot {
    info: HostInfo<'static>,
    plan: MemoryPlan<'static>,
    cfg: mmu::MmuConfig,
    opts: Options,
}

/// The boot up to the EL2 MMU: console, device tree, memory plan, the
/// identity map. Parks on any failure.
#[inline(never)]
fn boot_mmu_off(dtb_pa: usize, el: u64, load: usize) -> EarlyBoot {
    if el != 2 {
        console::init(rpi4::DEFAULT_UART0, Some(rpi4::DEFAULT_GPIO));
        banner(load);
        error!("entered at EL{el}, not EL2: the firmware or boot loader must start pivisor at EL2; parking");
        cpu::park();
    }
    cpu::configure_el2();
    let dt = tree::read_device_tree(dtb_pa);
    let (info, dtb) = match dt {
        Ok(v) => v,
        Err(e) => {
            console::init(rpi4::DEFAULT_UART0, Some(rpi4::DEFAULT_GPIO));
            banner(load);
            error!("device tree at {dtb_pa:#x}: {e}");
            error!("cannot continue without a usable device tree: on a Pi 4 put bcm2711-rpi-4-b.dtb on the card; under QEMU pass -dtb; parking");
            cpu::park();
        }
    };
    let uart = info.uart.unwrap_or(rpi4::DEFAULT_UART0);
    console::init(uart, info.gpio);
    banner(load);
    if info.high_peripherals() {
        // The console above already uses the tree's (high) UART address,
        // with the MMU off, so this is seen on the serial pins.
        error!(
            "the firmware put the peripherals above 4 GiB (high-peripheral mode, arm_peri_high=1; /soc maps bus {:#x} to {:#x}): pivisor supports the low-peripheral layout only. Remove arm_peri_high from config.txt (firmware/config.txt sets arm_peri_high=0); parking",
            crate::dt::host::PERIPHERAL_BUS,
            info.translate(crate::dt::host::PERIPHERAL_BUS).unwrap_or(0)
        );
        cpu::park();
    }

    let (opts, bad) = bootargs::parse(info.bootargs);
    log::set_max_level(opts.log_level);
    for b in bad.iter() {
        warn!("bootargs: ignoring '{}': {}", b.word, b.reason);
    }
    info!(
        "device tree: {} ({} bytes at {:#x}), bootargs \"{}\"",
        info.model,
        dtb.size(),
        dtb.start,
        info.bootargs
    );
    if info.uart.is_none() {
        warn!("no enabled arm,pl011 in /soc: console on the BCM2711 default {uart:#x}");
    }
    info!("console: PL011 at {uart:#x}, {} 8N1", crate::platform::BAUD);

    let image = boot::image_layout();
    let plan = match mm::plan_memory(&info, dtb, &image) {
        Ok(p) => p,
        Err(e) => {
            error!("memory: {e}; parking");
            cpu::park();
        }
    };
    tree::log_memory_map(&info, &plan);

    let cfg = match tree::build_el2_map(&info, &plan, &image) {
        Ok(c) => c,
        Err(e) => {
            error!("EL2 map: {e}; parking");
            cpu::park();
        }
    };
    // Everything the MMU-off code wrote (relocations, BSS, tables, stacks)
    // went to memory; drop any stale cache lines over it before caching.
    cpu::inval_dcache(image.start, image.end - image.start);
    EarlyBoot {
        info,
        plan,
        cfg,
        opts,
    }
}

/// The rest of the boot, MMU and caches on: locks, heap, frames, VMs, the
/// other cores.
#[inline(never)]
fn boot_mmu_on(early: EarlyBoot) -> ! {
    let EarlyBoot {
        info,
        plan,
        cfg,
        opts,
    } = early;
    console::enable_locking();
    cpu::unmask_serror();
    info!(
        "EL2 MMU on: 39-bit identity map, caches on (TCR_EL2 {:#x}, SCTLR_EL2 {:#x})",
        cfg.tcr, cfg.sctlr
    );

    let mut usable = plan.usable;
    heap::setup_heap(&mut usable);
    vmm::monitor::set_board(info.model, plan.ram.total());
    // VM RAM comes out of `usable` before the frame allocator gets the rest.
    let prepared = vmm::prepare::prepare(&info, &mut usable);
    heap::setup_frames(&usable);
    // The firmware and the SD card before the VMs: their disks are
    // partitions of the card.
    vmm::firmware::init(&info);
    vmm::firmware::probe_el3(info.psci_method);
    let owned = prepared
        .as_ref()
        .map(|p| vmm::prepare::owned_paths(p))
        .unwrap_or_default();
    vmm::sd::probe(&info, &owned);
    let built = prepared.and_then(|p| vmm::build::build(p, cpu::pa_range(), &info));
    OPTIONS.call_once(|| opts);

    start_secondaries(&info, &cfg);
    let online = ONLINE.load(Ordering::Acquire);
    let ms = cpu::counter() * 1000 / cpu::counter_freq().max(1);
    info!(
        "{} of {} cores online; boot complete at {ms} ms",
        online.count_ones(),
        info.cpus.len()
    );
    match built.and_then(|()| vmm::build::start(online)) {
        Ok(()) => info!("starting the VMs"),
        Err(e) if info.initrd.is_none() => warn!("{e}; nothing to run"),
        Err(e) => {
            error!("{e}");
            error!("no VM started: fix the bundle or vms.conf (tools/mkbundle checks it at build time)");
        }
    }
    vmm::cores::release_cores();
    after_boot(cpu::core_index());
}

fn banner(load: usize) {
    info!(
        "pivisor {} - a type-1 hypervisor for the Raspberry Pi 4 - at EL2, loaded at {load:#x}",
        crate::VERSION
    );
}

/// Starts every other core the tree lists, one at a time.
fn start_secondaries(info: &HostInfo<'_>, cfg: &mmu::MmuConfig) {
    let me = cpu::mpidr();
    let primary = info.cpus.iter().position(|c| c.mpidr == me);
    match primary {
        Some(i) => cpu::set_core_index(i),
        None => warn!("boot core MPIDR {me:#x} is not in /cpus; calling it core 0"),
    }
    boot::set_core_stack(cpu::core_index(), boot::stack_top(0));
    vmm::irq::gic_init_core(Some(info), cpu::core_index());
    ONLINE.fetch_or(1 << cpu::core_index(), Ordering::AcqRel);
    let sb = &boot::SECONDARY_BOOT;
    sb.ttbr.store(cfg.ttbr, Ordering::Relaxed);
    sb.tcr.store(cfg.tcr, Ordering::Relaxed);
    sb.mair.store(cfg.mair, Ordering::Relaxed);
    sb.sctlr.store(cfg.sctlr, Ordering::Relaxed);
    let entry = boot::secondary_entry_pa();
    let mut slot = 1;
    for (idx, c) in info.cpus.iter().enumerate() {
        if Some(idx) == primary || (primary.is_none() && idx == 0) {
            continue;
        }
        if slot >= boot::MAX_STACKS {
            warn!(
                "core {idx} (MPIDR {:#x}): the image has stacks for {} cores; not started",
                c.mpidr,
                boot::MAX_STACKS
            );
            continue;
        }
        let method = match smp::boot_method(c, info.psci_method) {
            Ok(m) => m,
            Err(e) => {
                error!("core {idx} (MPIDR {:#x}): {e}; not started", c.mpidr);
                continue;
            }
        };
        sb.stack_top.store(boot::stack_top(slot), Ordering::Relaxed);
        sb.core.store(idx as u64, Ordering::Relaxed);
        // The secondary reads the block with its caches off.
        cpu::clean_dcache(sb as *const _ as u64, core::mem::size_of_val(sb) as u64);
        match method {
            BootMethod::SpinTable { release_addr } => {
                // SAFETY: the release address is in the low page, mapped RW;
                // the firmware's stub polls it with caches off.
                unsafe { core::ptr::write_volatile(release_addr as *mut u64, entry) };
                cpu::clean_dcache(release_addr, 8);
                cpu::sev();
            }
            BootMethod::Psci { hvc } => {
                let r = cpu::psci_call(hvc, smp::PSCI_CPU_ON_64, c.mpidr, entry, 0);
                if r != 0 {
                    error!(
                        "core {idx}: PSCI CPU_ON failed: {} ({r})",
                        smp::psci_error_name(r)
                    );
                    continue;
                }
            }
        }
        if !vmm::irq::wait_until(ONLINE_TIMEOUT_MS, || {
            ONLINE.load(Ordering::Acquire) & (1 << idx) != 0
        }) {
            error!(
                "core {idx} (MPIDR {:#x}) did not come online within {ONLINE_TIMEOUT_MS} ms",
                c.mpidr
            );
        }
        slot += 1;
    }
}

/// A secondary core's boot, MMU on.
pub fn secondary_main(core: usize) -> ! {
    cpu::configure_el2();
    cpu::unmask_serror();
    vmm::irq::gic_init_core(None, core);
    ONLINE.fetch_or(1 << core, Ordering::AcqRel);
    info!(
        "core {core} online (MPIDR {:#x}, EL2, MMU on)",
        cpu::mpidr()
    );
    after_boot(core)
}

/// Runs a requested deliberate fault on this core, then sleeps.
fn after_boot(core: usize) -> ! {
    if let Some(f) = OPTIONS
        .get()
        .and_then(|o| o.fault)
        .filter(|f| f.core == core)
    {
        let name = match f.kind {
            FaultKind::DataAbort => "data abort (read of unmapped 0x4000000000)",
            FaultKind::Undefined => "undefined instruction",
            FaultKind::Breakpoint => "breakpoint",
        };
        warn!("pivisor.fault: core {core} takes a deliberate {name}");
        match f.kind {
            FaultKind::DataAbort => cpu::fault_data_abort(),
            FaultKind::Undefined => cpu::fault_undefined(),
            FaultKind::Breakpoint => cpu::fault_breakpoint(),
        }
        error!("pivisor.fault: core {core} returned from the deliberate fault");
    }
    vmm::vcpu::run_core(core)
}
