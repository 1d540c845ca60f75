//! Boot glue: brings the machine up in order (console, device tree, memory
//! plan, EL2 MMU, heap and frames, the other cores) and reports every
//! failure on the console before parking. No inline assembly here: the
//! hardware is reached through `arch` and `board`.

use crate::arch::{boot, cpu, mmu};
use crate::board::rpi4::{self, gpio::Gpio, miniuart::MiniUart, pl011::Pl011};
use crate::bootargs::{self, FaultKind, Options};
use crate::console::{ConsoleSink, Hooks, LineHook, LogRing, Logger, RingTee};
use crate::dt::{blob, host::HostInfo, DtError};
use crate::exception::{self, Snapshot};
use crate::hyp;
use crate::mm::pagetable::{PageTable, PoolAlloc, TableMem, ENTRIES, PAGE_SIZE};
use crate::mm::region::{Range, Size};
use crate::mm::{self, MemoryPlan};
use crate::smp::{self, BootMethod};
use crate::sync::{Mutex, Once};
use buddy_system_allocator::{FrameAllocator, Heap};
use core::alloc::{GlobalAlloc, Layout};
use core::cell::UnsafeCell;
use core::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use log::{error, info, warn};

/// Largest device tree accepted (the Pi 4 tree is about 50 KiB).
const DTB_MAX: usize = 128 * 1024;
/// Translation tables for the EL2 identity map.
const EL2_TABLES: usize = 32;
/// Hypervisor heap.
const HEAP_SIZE: u64 = 8 << 20;
/// How long a secondary core gets to report online.
const ONLINE_TIMEOUT_MS: u64 = 1000;

/// Storage written by the primary core alone, before any other core runs.
struct BootCell<T>(UnsafeCell<T>);
// SAFETY: every BootCell is written only on the primary core before the
// secondaries are released, and only read afterwards.
unsafe impl<T> Sync for BootCell<T> {}

static LOGGER: Logger = Logger::new();
static CONSOLE: BootCell<Option<Pl011>> = BootCell(UnsafeCell::new(None));
static CONSOLE_READY: AtomicBool = AtomicBool::new(false);
static DTB_COPY: BootCell<[u8; DTB_MAX]> = BootCell(UnsafeCell::new([0; DTB_MAX]));
static TABLES: BootCell<[TableMem; EL2_TABLES]> = BootCell(UnsafeCell::new(
    [const { TableMem([0; ENTRIES]) }; EL2_TABLES],
));
static OPTIONS: Once<Options> = Once::new();
static ONLINE: AtomicU32 = AtomicU32::new(0);

#[global_allocator]
static HEAP: KernelHeap = KernelHeap(Mutex::new(Heap::new()));

/// The buddy heap behind the hypervisor's lock (whose waiters yield;
/// buddy_system_allocator's own LockedHeap spins without yielding).
struct KernelHeap(Mutex<Heap<32>>);

// SAFETY: every access to the heap goes through its lock; a failed
// allocation returns null, as GlobalAlloc requires.
unsafe impl GlobalAlloc for KernelHeap {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        self.0
            .lock()
            .alloc(layout)
            .map_or(core::ptr::null_mut(), |p| p.as_ptr())
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        if let Some(p) = core::ptr::NonNull::new(ptr) {
            self.0.lock().dealloc(p, layout);
        }
    }
}
/// Free physical memory, in 4 KiB frames, for guest memory and tables.
pub static FRAMES: Mutex<FrameAllocator<32>> = Mutex::new(FrameAllocator::new());

/// The hypervisor's log once the PL011 belongs to a VM: the newest 64 KiB
/// in memory (symbol HYP_LOG, for a debugger), also written to the mini
/// UART when the tree has one.
static HYP_LOG: BootCell<RingTee<{ 64 * 1024 }>> = BootCell(UnsafeCell::new(RingTee {
    ring: LogRing::new(),
    out: None,
}));
static MINI_UART: BootCell<Option<MiniUart>> = BootCell(UnsafeCell::new(None));

/// Moves the hypervisor's log off the PL011 (which a VM is about to own)
/// to the log ring and the mini UART at `mini`. From here on the
/// hypervisor never touches the PL011. Primary core, before the other
/// cores are released.
pub fn console_to_mini_uart(mini: Option<u64>) {
    // SAFETY: primary core, before the secondaries leave boot (BootCell).
    let (m, log) = unsafe { (&mut *MINI_UART.0.get(), &mut *HYP_LOG.0.get()) };
    if let Some(a) = mini {
        // SAFETY: the mini UART from the device tree, in a /soc window
        // the EL2 map has as Device; nothing else uses it.
        let mut u = unsafe { MiniUart::new(a as usize) };
        u.init(rpi4::BAUD);
        *m = Some(u);
    }
    log.out = m.as_mut().map(|u| u as &mut dyn ConsoleSink);
    LOGGER.switch_sink(log);
}

/// Runs `f` with the console under the line lock (whole lines and
/// console-switch output never interleave).
pub fn with_console(f: impl FnOnce(&mut dyn ConsoleSink)) {
    LOGGER.with_sink(|s, _| f(s));
}

/// Installs the hook run before each log line.
pub fn set_console_line_hook(h: LineHook) {
    LOGGER.set_line_hook(h);
}

fn hooks() -> Hooks {
    Hooks {
        ticks: cpu::counter,
        freq: cpu::counter_freq,
        core: cpu::core_index,
    }
}

/// Brings up the PL011 at `uart` (routing it to the header pins through the
/// GPIO block at `gpio`) and makes it the log console. Primary core, early.
fn console_init(uart: u64, gpio: Option<u64>) {
    if let Some(g) = gpio {
        // SAFETY: the GPIO block from the device tree (or the BCM2711
        // default), MMU off: device accesses.
        unsafe { Gpio::new(g as usize) }.route_pl011_to_header();
    }
    // SAFETY: single core, early: nothing else holds the console.
    let slot = unsafe { &mut *CONSOLE.0.get() };
    // SAFETY: the PL011 from the device tree (or the BCM2711 default).
    let mut uart = unsafe { Pl011::new(uart as usize) };
    uart.init(rpi4::UART_CLOCK_HZ, rpi4::BAUD);
    *slot = Some(uart);
    if let Some(u) = slot.as_mut() {
        // SAFETY: single core, early mode.
        unsafe { LOGGER.install(u, hooks()) };
    }
    // A plain load and store, never swap: this runs with the MMU off
    // (and from the fault paths before the console is up), where memory is
    // Device-nGnRnE and the ARM ARM does not guarantee load/store-exclusive
    // (a swap is an ldxrb/stxrb loop that may never succeed on a Pi 4).
    // One core runs here, so nothing races. `make test` disassembles the
    // image to keep every function reachable before the MMU free of
    // exclusives and atomics (tools/harness/tests/artifacts.rs).
    if !CONSOLE_READY.load(Ordering::Relaxed) {
        CONSOLE_READY.store(true, Ordering::Relaxed);
        // First install: hook up `log`. (set_logger_racy: no CAS before the MMU.)
        // SAFETY: no other core runs and no logging is in progress.
        unsafe {
            let _ = log::set_logger_racy(&LOGGER);
        }
        log::set_max_level(log::LevelFilter::Info);
    }
}

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
        console_init(rpi4::DEFAULT_UART0, Some(rpi4::DEFAULT_GPIO));
        banner(load);
        error!("entered at EL{el}, not EL2: the firmware or boot loader must start pivisor at EL2; parking");
        cpu::park();
    }
    cpu::configure_el2();
    let dt = read_device_tree(dtb_pa);
    let (info, dtb) = match dt {
        Ok(v) => v,
        Err(e) => {
            console_init(rpi4::DEFAULT_UART0, Some(rpi4::DEFAULT_GPIO));
            banner(load);
            error!("device tree at {dtb_pa:#x}: {e}");
            error!("cannot continue without a usable device tree: on a Pi 4 put bcm2711-rpi-4-b.dtb on the card; under QEMU pass -dtb; parking");
            cpu::park();
        }
    };
    let uart = info.uart.unwrap_or(rpi4::DEFAULT_UART0);
    console_init(uart, info.gpio);
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
    info!("console: PL011 at {uart:#x}, {} 8N1", rpi4::BAUD);

    let image = boot::image_layout();
    let plan = match mm::plan_memory(&info, dtb, &image) {
        Ok(p) => p,
        Err(e) => {
            error!("memory: {e}; parking");
            cpu::park();
        }
    };
    log_memory_map(&info, &plan);

    let cfg = match build_el2_map(&info, &plan, &image) {
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
    LOGGER.enable_locking();
    cpu::unmask_serror();
    info!(
        "EL2 MMU on: 39-bit identity map, caches on (TCR_EL2 {:#x}, SCTLR_EL2 {:#x})",
        cfg.tcr, cfg.sctlr
    );

    let mut usable = plan.usable;
    setup_heap(&mut usable);
    // VM RAM comes out of `usable` before the frame allocator gets the rest.
    let prepared = hyp::prepare(&info, &mut usable);
    setup_frames(&usable);
    let built = prepared.and_then(|p| hyp::build(p, cpu::pa_range(), &info));
    OPTIONS.call_once(|| opts);

    start_secondaries(&info, &cfg);
    hyp::firmware_init(&info);
    let online = ONLINE.load(Ordering::Acquire);
    let ms = cpu::counter() * 1000 / cpu::counter_freq().max(1);
    info!(
        "{} of {} cores online; boot complete at {ms} ms",
        online.count_ones(),
        info.cpus.len()
    );
    match built.and_then(|()| hyp::start(online)) {
        Ok(()) => info!("starting the VMs"),
        Err(e) if info.initrd.is_none() => warn!("{e}; nothing to run"),
        Err(e) => {
            error!("{e}");
            error!("no VM started: fix the bundle or vms.conf (tools/mkbundle checks it at build time)");
        }
    }
    hyp::release_cores();
    after_boot(cpu::core_index());
}

fn banner(load: usize) {
    info!(
        "pivisor {} - a type-1 hypervisor for the Raspberry Pi 4 - at EL2, loaded at {load:#x}",
        crate::VERSION
    );
}

/// Reads, checks and copies the firmware's device tree.
fn read_device_tree(dtb_pa: usize) -> Result<(HostInfo<'static>, Range), DtError> {
    if dtb_pa == 0 || !dtb_pa.is_multiple_of(8) {
        return Err(DtError::BadHeader(
            "device tree address is 0 or not 8-byte aligned",
        ));
    }
    // SAFETY: reads the 40-byte header where the boot loader says the tree
    // is; MMU off, so any RAM address is readable.
    let head = unsafe { core::slice::from_raw_parts(dtb_pa as *const u8, blob::HEADER_SIZE) };
    let h = blob::Header::read(head)?;
    let total = h.totalsize as usize;
    if total > DTB_MAX {
        return Err(DtError::TooLarge {
            size: total,
            max: DTB_MAX,
        });
    }
    // SAFETY: as above, for the size the header gives (bounded by DTB_MAX).
    let full =
        unsafe { core::slice::from_raw_parts(dtb_pa as *const u8, total.max(blob::HEADER_SIZE)) };
    // SAFETY: single core, early; DTB_COPY is only written here.
    let copy = unsafe { &mut *DTB_COPY.0.get() };
    let n = blob::sanitize(full, copy)?;
    let copy: &'static [u8] = &copy[..n];
    let info = HostInfo::parse(copy)?;
    Ok((
        info,
        Range {
            start: dtb_pa as u64,
            end: (dtb_pa + total) as u64,
        },
    ))
}

fn log_memory_map(info: &HostInfo<'_>, plan: &MemoryPlan<'_>) {
    info!("memory map from the device tree:");
    for r in plan.ram.ranges() {
        info!("  RAM      {r}  {}", Size(r.size()));
    }
    for (r, why) in plan.reserved.iter() {
        info!("  reserved {r}  {why}");
    }
    for w in info.windows.iter() {
        info!("  device   {}  bus {:#x}", w.cpu_range(), w.bus);
    }
    info!(
        "  usable: {} in {} ranges of {} RAM",
        Size(plan.usable.total()),
        plan.usable.ranges().len(),
        Size(plan.ram.total())
    );
}

fn build_el2_map(
    info: &HostInfo<'_>,
    plan: &MemoryPlan<'_>,
    image: &mm::ImageLayout,
) -> Result<mmu::MmuConfig, mm::PlanError> {
    let regions = mm::identity_map_regions(plan, &info.windows, image)?;
    // SAFETY: single core, before the MMU: the pool is only used here, and
    // after this it is only read by the table walker.
    let pool = unsafe { &mut *TABLES.0.get() };
    let mut table = PageTable::new(PoolAlloc::new(pool)).map_err(mm::PlanError::Map)?;
    mm::build_identity_map(&mut table, &regions)?;
    info!(
        "EL2 identity map: {} regions, {} of {} tables; text RX, rodata R, data RW+XN, devices nGnRE+XN",
        regions.len(),
        table.allocator().used(),
        EL2_TABLES
    );
    Ok(mmu::config_for(table.root()))
}

/// The heap, first: the frame allocator's lists and the VM structures live
/// on it.
fn setup_heap(usable: &mut mm::region::RangeSet<48>) {
    let Some(heap) = usable
        .take(HEAP_SIZE, 2 << 20)
        .or_else(|| usable.take(HEAP_SIZE / 8, PAGE_SIZE))
    else {
        error!("memory: no room for the hypervisor heap; parking");
        cpu::park();
    };
    // SAFETY: the range is free RAM, mapped RW, given to the heap alone.
    unsafe {
        HEAP.0
            .lock()
            .init(heap.start as usize, heap.size() as usize)
    };
    let v: alloc::vec::Vec<u64> = (0..1024).collect();
    info!(
        "heap: {} at {:#x} ({} probe bytes ok)",
        Size(heap.size()),
        heap.start,
        v.len() * 8
    );
}

/// Every page still usable (after VM RAM is taken) as frames.
fn setup_frames(usable: &mm::region::RangeSet<48>) {
    let mut frames = FRAMES.lock();
    for r in usable.ranges() {
        frames.add_frame((r.start / PAGE_SIZE) as usize, (r.end / PAGE_SIZE) as usize);
    }
    // Prove it works before anyone relies on it.
    let probe = frames.alloc(1);
    if let Some(f) = probe {
        frames.dealloc(f, 1);
    }
    info!(
        "frames: {} free for the hypervisor{}",
        Size(usable.total()),
        if probe.is_some() {
            ""
        } else {
            " (frame probe FAILED)"
        }
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
    hyp::gic_init_core(Some(info), cpu::core_index());
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
        if !hyp::wait_until(ONLINE_TIMEOUT_MS, || {
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
    hyp::gic_init_core(None, core);
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
        cpu::inject_fault(f.kind);
        error!("pivisor.fault: core {core} returned from the deliberate fault");
    }
    hyp::run_core(core)
}

/// Reports an exception nothing handles and parks this core. Also runs
/// with the MMU off (a fault during early boot): no exclusives on this
/// path either (checked with the boot path).
#[inline(never)]
pub fn unexpected_exception(s: &Snapshot) -> ! {
    if !CONSOLE_READY.load(Ordering::Relaxed) {
        console_init(rpi4::DEFAULT_UART0, None);
    }
    exception::report(s, &mut |line| error!("{line}"));
    error!("core {} parked", s.core);
    cpu::park()
}

#[panic_handler]
fn panic(info: &core::panic::PanicInfo<'_>) -> ! {
    if !CONSOLE_READY.load(Ordering::Relaxed) {
        console_init(rpi4::DEFAULT_UART0, None);
    }
    error!("PANIC on core {}: {info}", cpu::core_index());
    error!("core {} parked", cpu::core_index());
    cpu::park()
}
