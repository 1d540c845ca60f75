//! pivisor's micro-benchmark guest: a bare-metal EL1 program that measures
//! what virtualization adds to single operations. The same image runs
//! natively (QEMU or the firmware enter it at EL2; it drops itself to EL1
//! behind a stub that returns from every HVC at once), under pivisor and
//! under KVM.
//!
//! - B1 null hypercall: HVC SMCCC_VERSION, a round trip to EL2.
//! - B2 GICD register read (ISENABLER0) and GICD_SGIR write (an SGI to
//!   nobody): trap and emulate under a hypervisor.
//! - B3 SGI to itself, then IAR and EOIR through the CPU interface (the
//!   mapped GICV under a hypervisor: the EOIs must cost no exit).
//! - B4 virtual-timer interrupt latency: a deadline a fixed time ahead,
//!   the handler reads the counter first.
//! - B5 an emulated-device MMIO read: the mailbox's MAIL0_STATUS.
//! - B6 SGI to another vCPU and back (cross-core: meaningful in plain
//!   TCG, not under -icount where the cores share one clock).
//!
//! Costs are counter deltas in nanoseconds; under QEMU's `-icount
//! shift=0` one nanosecond is one instruction. B1, B2 and B5 subtract the
//! same loop with a NOP in place of the operation. Under pivisor the exit
//! counts come from its exit-count hypercall; natively there are none;
//! under KVM they are read by the VMM. All four cores run the guest; the
//! ones not measuring wait in WFI, so they add no instructions.
//!
//! Each result is one line: `BENCH <id> <name> key=value ...`; the run
//! ends with `BENCH done`.
#![no_std]
#![no_main]

use core::arch::{asm, global_asm};
use core::fmt::Write;
use core::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicU8, Ordering};

global_asm!(include_str!("../../image-header.s"));
global_asm!(include_str!("start.s"));
global_asm!(include_str!("../../el1-vectors.s"));

const UART: u64 = 0xfe20_1000;
const GICD: u64 = 0xff84_1000;
const GICC: u64 = 0xff84_2000;
const MAIL0_STATUS: u64 = 0xfe00_b898;
/// The exit-counter page (pivisor,exit-counters) and its ID register.
const EXITCTR: u64 = 0xfc00_1000;
const EXITCTR_ID: u32 = 0x7076_6563;
/// QEMU's and the Pi 4 firmware's spin table: core n waits for an entry
/// address at 0xd8 + 8n.
const SPIN_TABLE: u64 = 0xd8;

const SMCCC_VERSION: u64 = 0x8000_0000;
const CPU_ON: u64 = 0xc400_0003;
const SYSTEM_OFF: u64 = 0x8400_0008;
/// pivisor's exit-count hypercall (vendor-specific hypervisor service):
/// x1 = 0 for all of the calling vCPU's exits.
const PIVISOR_EXIT_COUNT: u64 = 0xc600_0001;

const SGI_SELF: u32 = 1;
const SGI_PING: u32 = 2;
const SGI_PONG: u32 = 3;
const VTIMER: u32 = 27;

/// Iterations of the loop benchmarks.
const LOOPS: u64 = 10_000;
/// Interrupt round trips (B3, B6) and timer samples (B4), after warm-up.
const SAMPLES: usize = 200;
const WARMUP: usize = 20;
/// B4's deadline, this far ahead.
const TIMER_AHEAD_US: u64 = 50;

static SGI_SELF_SEEN: AtomicU32 = AtomicU32::new(0);
static PONGS: AtomicU32 = AtomicU32::new(0);
static TIMER_AT: AtomicU64 = AtomicU64::new(0);
/// Ticks spent in IAR + EOIR for B3, summed.
static EOI_TICKS: AtomicU64 = AtomicU64::new(0);
/// Per core: its CPU interface bit (GICD_ITARGETSR0), once it is up.
static IFACE: [AtomicU8; 4] = [const { AtomicU8::new(0) }; 4];
static UP: AtomicU32 = AtomicU32::new(0);
/// Entered at EL2: the HVCs go to this guest's own stub, which counts
/// nothing (and returns x0 unchanged).
static NATIVE: AtomicBool = AtomicBool::new(false);
/// Where exit counts come from: [`COUNTS_NONE`], [`COUNTS_CALL`] or
/// [`COUNTS_PAGE`] (decided once, by [`find_counter`]).
static COUNTS: AtomicU8 = AtomicU8::new(COUNTS_NONE);
const COUNTS_NONE: u8 = 0;
/// pivisor's exit-count hypercall.
const COUNTS_CALL: u8 = 1;
/// The exit-counter page (pivisor's `devices = counters`, which pv-vmm
/// emulates from KVM's statistics).
const COUNTS_PAGE: u8 = 2;

extern "C" {
    fn secondary_entry();
}

struct Console;

impl Write for Console {
    fn write_str(&mut self, s: &str) -> core::fmt::Result {
        for b in s.bytes() {
            if b == b'\n' {
                putc(b'\r');
            }
            putc(b);
        }
        Ok(())
    }
}

fn putc(b: u8) {
    // FR.TXFF: wait while the transmit FIFO is full (bounded: a UART that
    // never drains must not hang the benchmarks).
    for _ in 0..1_000_000 {
        if r32(UART + 0x18) & (1 << 5) == 0 {
            break;
        }
    }
    w32(UART, b as u32);
}

macro_rules! println {
    ($($arg:tt)*) => {{
        let _ = writeln!(Console, $($arg)*);
    }};
}

fn r32(a: u64) -> u32 {
    // SAFETY: a device register in the identity map's device GiB.
    unsafe { core::ptr::read_volatile(a as *const u32) }
}

fn w32(a: u64, v: u32) {
    // SAFETY: as r32.
    unsafe { core::ptr::write_volatile(a as *mut u32, v) }
}

fn ticks() -> u64 {
    let v: u64;
    // SAFETY: reading the virtual counter; the ISB keeps it in order.
    unsafe { asm!("isb", "mrs {}, cntvct_el0", out(reg) v, options(nomem, nostack)) };
    v
}

fn freq() -> u64 {
    let v: u64;
    // SAFETY: reading CNTFRQ_EL0.
    unsafe { asm!("mrs {}, cntfrq_el0", out(reg) v, options(nomem, nostack)) };
    v
}

fn core_id() -> usize {
    let v: u64;
    // SAFETY: reading MPIDR_EL1.
    unsafe { asm!("mrs {}, mpidr_el1", out(reg) v, options(nomem, nostack)) };
    (v & 3) as usize
}

/// An SMCCC call over HVC (x0-x3 in, x0 out; x4-x17 may be clobbered).
fn hvc(f: u64, a: u64, b: u64, c: u64) -> i64 {
    let mut r = f;
    // SAFETY: SMCCC calling convention.
    unsafe {
        asm!("hvc #0", inout("x0") r, inout("x1") a => _, inout("x2") b => _, inout("x3") c => _,
             out("x4") _, out("x5") _, out("x6") _, out("x7") _, out("x8") _, out("x9") _,
             out("x10") _, out("x11") _, out("x12") _, out("x13") _, out("x14") _, out("x15") _,
             out("x16") _, out("x17") _, options(nostack))
    };
    r as i64
}

fn irqs_on() {
    // SAFETY: the vectors are installed.
    unsafe { asm!("msr daifclr, #2", "isb", options(nomem, nostack)) };
}

fn irqs_off() {
    // SAFETY: masking only.
    unsafe { asm!("msr daifset, #2", options(nomem, nostack)) };
}

/// Sleeps until `done()` holds: the check runs with interrupts masked, so
/// an interrupt arriving between it and WFI still wakes the WFI.
fn wait_until(done: impl Fn() -> bool) {
    loop {
        irqs_off();
        if done() {
            irqs_on();
            return;
        }
        // SAFETY: WFI wakes on a pending interrupt even while masked.
        unsafe { asm!("wfi", options(nomem, nostack)) };
        irqs_on();
    }
}

/// Decides where exit counts come from: nowhere natively, pivisor's
/// hypercall if it answers, else the exit-counter page if its ID reads
/// right (under KVM the hypercall is unknown and pv-vmm has the page; the
/// page is only touched when a hypervisor is below but the call failed,
/// so a configuration without it must not hide under pivisor).
fn find_counter(native: bool) {
    let how = if native {
        COUNTS_NONE
    } else if hvc(PIVISOR_EXIT_COUNT, 0, 0, 0) >= 0 {
        COUNTS_CALL
    } else if r32(EXITCTR) == EXITCTR_ID {
        COUNTS_PAGE
    } else {
        COUNTS_NONE
    };
    COUNTS.store(how, Ordering::Relaxed);
}

/// The calling vCPU's exits so far, if a hypervisor below counts them.
fn exits() -> Option<u64> {
    match COUNTS.load(Ordering::Relaxed) {
        COUNTS_CALL => {
            let r = hvc(PIVISOR_EXIT_COUNT, 0, 0, 0);
            (r >= 0).then_some(r as u64)
        }
        COUNTS_PAGE => {
            let a = EXITCTR + 0x200 + 0x80 * core_id() as u64;
            // SAFETY: the counter page's 64-bit register for this vCPU.
            Some(unsafe { core::ptr::read_volatile(a as *const u64) })
        }
        _ => None,
    }
}

/// Exit counting around a benchmark: `per(n)` is the exits of the span
/// (without the closing count call itself) per operation.
struct Exits(Option<u64>);

impl Exits {
    fn start() -> Self {
        Self(exits())
    }

    fn per(&self, ops: u64) -> Fixed {
        match (self.0, exits()) {
            (Some(a), Some(b)) => Fixed::ratio(b.saturating_sub(a + 1), ops),
            _ => Fixed::NA,
        }
    }
}

/// A non-negative value with three decimals, or "na".
#[derive(Clone, Copy)]
struct Fixed(Option<u64>);

impl Fixed {
    const NA: Self = Self(None);

    fn ratio(num: u64, den: u64) -> Self {
        Self(Some((num as u128 * 1000 / den.max(1) as u128) as u64))
    }

    /// `ticks` of the counter, as nanoseconds per operation.
    fn ns(ticks: u64, ops: u64) -> Self {
        let f = freq().max(1) as u128;
        Self(Some(
            (ticks as u128 * 1_000_000_000_000 / f / ops.max(1) as u128) as u64,
        ))
    }
}

impl core::fmt::Display for Fixed {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self.0 {
            Some(m) => write!(f, "{}.{:03}", m / 1000, m % 1000),
            None => f.write_str("na"),
        }
    }
}

/// Runs `$op` (one instruction, with x10 = `$addr`, w9 = 0) `LOOPS` times
/// in a fixed loop; returns the counter ticks.
macro_rules! timed_loop {
    ($op:literal, $addr:expr) => {{
        let t0 = ticks();
        // SAFETY: the operation touches only x9, x10 and the address given
        // (a device register or nothing); HVC may clobber x0-x17.
        unsafe {
            asm!("mov x9, #0", "1:", "mov x0, #{f}", $op, "subs {n}, {n}, #1", "b.ne 1b",
                 n = inout(reg) LOOPS => _, f = const SMCCC_VERSION, in("x10") $addr,
                 out("x0") _, out("x1") _, out("x2") _, out("x3") _, out("x4") _, out("x5") _,
                 out("x6") _, out("x7") _, out("x8") _, out("x9") _,
                 out("x11") _, out("x12") _, out("x13") _, out("x14") _, out("x15") _,
                 out("x16") _, out("x17") _, options(nostack))
        };
        ticks() - t0
    }};
}

/// One loop benchmark: the operation's loop against the same loop with
/// a NOP, and its exits per operation.
fn loop_bench(id: &str, name: &str, op_ticks: impl Fn() -> u64) {
    let base = timed_loop!("nop", 0u64);
    let e = Exits::start();
    let t = op_ticks();
    let per = e.per(LOOPS);
    println!(
        "BENCH {id} {name} n={LOOPS} ns={} exits={per}",
        Fixed::ns(t.saturating_sub(base), LOOPS)
    );
}

fn b3_eoi() {
    for _ in 0..WARMUP {
        sgi_self_once();
    }
    EOI_TICKS.store(0, Ordering::Relaxed);
    let e = Exits::start();
    let t0 = ticks();
    for _ in 0..SAMPLES {
        sgi_self_once();
    }
    let t = ticks() - t0;
    // Each round trip's SGIR write is one exit; whatever else exits is
    // the interrupt's delivery and EOI.
    let exits = match (e.0, exits()) {
        (Some(a), Some(b)) => Fixed::ratio(
            b.saturating_sub(a + 1).saturating_sub(SAMPLES as u64),
            SAMPLES as u64,
        ),
        _ => Fixed::NA,
    };
    println!(
        "BENCH B3 sgi_self_eoi n={SAMPLES} ns={} iar_eoir_ns={} exits_beyond_sgir={exits}",
        Fixed::ns(t, SAMPLES as u64),
        Fixed::ns(EOI_TICKS.load(Ordering::Relaxed), SAMPLES as u64)
    );
}

fn sgi_self_once() {
    let before = SGI_SELF_SEEN.load(Ordering::Acquire);
    w32(GICD + 0xf00, (2 << 24) | SGI_SELF);
    wait_until(|| SGI_SELF_SEEN.load(Ordering::Acquire) != before);
}

fn set_vtimer(cval: u64, on: bool) {
    // SAFETY: the EL1 virtual timer belongs to this guest.
    unsafe {
        asm!("msr cntv_cval_el0, {}", "msr cntv_ctl_el0, {}", "isb",
             in(reg) cval, in(reg) u64::from(on), options(nomem, nostack))
    };
}

fn b4_timer() {
    let ahead = freq() * TIMER_AHEAD_US / 1_000_000;
    let mut lat = [0u64; SAMPLES];
    let e = Exits::start();
    for i in 0..WARMUP + SAMPLES {
        TIMER_AT.store(0, Ordering::Release);
        let cval = ticks() + ahead;
        set_vtimer(cval, true);
        wait_until(|| TIMER_AT.load(Ordering::Acquire) != 0);
        if i >= WARMUP {
            lat[i - WARMUP] = TIMER_AT.load(Ordering::Acquire).saturating_sub(cval);
        }
    }
    let per = e.per((WARMUP + SAMPLES) as u64);
    lat.sort_unstable();
    let sum: u64 = lat.iter().sum();
    let p99 = lat[(SAMPLES * 99).div_ceil(100) - 1];
    println!(
        "BENCH B4 timer_latency n={SAMPLES} mean_ns={} p99_ns={} max_ns={} exits={per}",
        Fixed::ns(sum, SAMPLES as u64),
        Fixed::ns(p99, 1),
        Fixed::ns(lat[SAMPLES - 1], 1)
    );
}

fn b6_pingpong() {
    let peer = IFACE[1].load(Ordering::Acquire);
    if peer == 0 {
        println!("BENCH B6 sgi_pingpong skipped: core 1 is not up");
        return;
    }
    let mut rt = [0u64; SAMPLES];
    let e = Exits::start();
    for i in 0..WARMUP + SAMPLES {
        let before = PONGS.load(Ordering::Acquire);
        let t0 = ticks();
        w32(GICD + 0xf00, (u32::from(peer) << 16) | SGI_PING);
        wait_until(|| PONGS.load(Ordering::Acquire) != before);
        if i >= WARMUP {
            rt[i - WARMUP] = ticks() - t0;
        }
    }
    let per = e.per((WARMUP + SAMPLES) as u64);
    rt.sort_unstable();
    println!(
        "BENCH B6 sgi_pingpong n={SAMPLES} median_ns={} min_ns={} exits={per}",
        Fixed::ns(rt[SAMPLES / 2], 1),
        Fixed::ns(rt[0], 1)
    );
}

/// This core's GIC CPU interface: SGIs and the virtual timer enabled at
/// one priority, everything unmasked.
fn gic_cpu_init() {
    w32(GICD + 0x180, !0); // ICENABLER0
    for i in 0..8 {
        w32(GICD + 0x400 + 4 * i, 0xa0a0_a0a0); // IPRIORITYR0-7
    }
    w32(
        GICD + 0x100,
        (1 << SGI_SELF) | (1 << SGI_PING) | (1 << SGI_PONG) | (1 << VTIMER),
    );
    w32(GICC + 0x4, 0xf0); // PMR
    w32(GICC, 1); // CTLR: EnableGrp0
    IFACE[core_id()].store(r32(GICD + 0x800) as u8, Ordering::Release);
}

/// Starts cores 1-3: natively through the spin table, else PSCI CPU_ON.
fn start_secondaries(native: bool) {
    let entry = secondary_entry as *const () as u64;
    for c in 1..4u64 {
        if native {
            let slot = (SPIN_TABLE + 8 * c) as *mut u64;
            // SAFETY: the spin-table word of core c, which waits on it;
            // cleaned to the point of coherency before the event.
            unsafe {
                core::ptr::write_volatile(slot, entry);
                asm!("dc cvac, {}", "dsb sy", "sev", in(reg) slot, options(nostack));
            }
        } else {
            let r = hvc(CPU_ON, c, entry, c);
            if r != 0 {
                println!("BENCH note: CPU_ON of core {c} returned {r}");
            }
        }
    }
    let t0 = ticks();
    while UP.load(Ordering::Acquire) < 3 && ticks() - t0 < freq() {
        core::hint::spin_loop();
    }
}

#[no_mangle]
extern "C" fn bench_main(_dtb: u64, native: u64) -> ! {
    let native = native != 0;
    NATIVE.store(native, Ordering::Relaxed);
    if native {
        // Natively the UART is as firmware or QEMU left it: enable it.
        w32(UART + 0x2c, 0x70); // LCR_H: 8 bits, FIFOs
        w32(UART + 0x30, 0x301); // CR: UARTEN, TXE, RXE
    }
    w32(GICD, 1); // the distributor (real or emulated), Group 0
    gic_cpu_init();
    irqs_on();
    find_counter(native);
    println!(
        "BENCH start mode={} counter_hz={} exits={}",
        if native { "native" } else { "virtualized" },
        freq(),
        ["none", "hypercall", "page"][COUNTS.load(Ordering::Relaxed) as usize]
    );
    start_secondaries(native);
    loop_bench("B1", "null_hypercall", || timed_loop!("hvc #0", 0u64));
    loop_bench("B2r", "gicd_read", || {
        timed_loop!("ldr w9, [x10]", GICD + 0x100)
    });
    loop_bench("B2w", "gicd_sgir_write", || {
        timed_loop!("str w9, [x10]", GICD + 0xf00)
    });
    b3_eoi();
    b4_timer();
    loop_bench("B5", "mailbox_status_read", || {
        timed_loop!("ldr w9, [x10]", MAIL0_STATUS)
    });
    b6_pingpong();
    println!("BENCH done");
    if !native {
        hvc(SYSTEM_OFF, 0, 0, 0);
    }
    loop {
        // SAFETY: nothing left to do.
        unsafe { asm!("wfi", options(nomem, nostack)) };
    }
}

#[no_mangle]
extern "C" fn secondary_main(_native: u64) -> ! {
    gic_cpu_init();
    UP.fetch_add(1, Ordering::AcqRel);
    irqs_on();
    loop {
        // SAFETY: waiting for SGIs; the handler answers them.
        unsafe { asm!("wfi", options(nomem, nostack)) };
    }
}

/// Every exception lands here (kind: the vector slot). IRQs are handled;
/// anything else is a bug in this guest, reported and parked.
#[no_mangle]
extern "C" fn exception(kind: u64) {
    if kind != 5 {
        let (esr, elr): (u64, u64);
        // SAFETY: reading the syndrome registers.
        unsafe { asm!("mrs {}, esr_el1", "mrs {}, elr_el1", out(reg) esr, out(reg) elr) };
        println!("BENCH error: exception kind {kind} ESR {esr:#x} ELR {elr:#x}");
        loop {
            // SAFETY: parked.
            unsafe { asm!("wfi", options(nomem, nostack)) };
        }
    }
    let now = ticks();
    let t0 = ticks();
    let iar = r32(GICC + 0xc);
    let intid = iar & 0x3ff;
    match intid {
        VTIMER => {
            set_vtimer(0, false);
            TIMER_AT.store(now, Ordering::Release);
        }
        SGI_PING => {
            w32(
                GICD + 0xf00,
                (u32::from(IFACE[0].load(Ordering::Acquire)) << 16) | SGI_PONG,
            );
        }
        SGI_PONG => {
            PONGS.fetch_add(1, Ordering::AcqRel);
        }
        1023 => return, // spurious
        _ => {}
    }
    w32(GICC + 0x10, iar);
    if intid == SGI_SELF {
        EOI_TICKS.fetch_add(ticks() - t0, Ordering::Relaxed);
        SGI_SELF_SEEN.fetch_add(1, Ordering::AcqRel);
    }
}

#[panic_handler]
fn panic(info: &core::panic::PanicInfo) -> ! {
    println!("BENCH error: panic: {info}");
    loop {
        // SAFETY: parked.
        unsafe { asm!("wfi", options(nomem, nostack)) };
    }
}
