//! Who drives the console: the PL011 from the start (with the MMU off, in
//! the logger's early mode), and once a VM owns the PL011 the log ring and
//! the mini UART. Everything that writes to the terminal (log lines, the
//! console switch) goes through [`with_console`], under the line lock.

use crate::arch::cpu;
use crate::board::rpi4::{self, gpio::Gpio, miniuart::MiniUart, pl011::Pl011};
use crate::conout::QueuedSink;
use crate::console::{ConsoleSink, Hooks, LineHook, LogRing, Logger, RingTee};
use crate::sync::BootCell;
use core::sync::atomic::{AtomicBool, Ordering};

/// The logger behind the `log` macros.
static LOGGER: Logger = Logger::new();

/// The PL011 console (until a VM takes the PL011).
static CONSOLE: BootCell<Option<Pl011>> = BootCell::new(None);

/// Whether the console is set up (plain loads and stores only: see
/// [`init`]).
static CONSOLE_READY: AtomicBool = AtomicBool::new(false);

/// The hypervisor's log once the PL011 belongs to a VM: the newest 64 KiB
/// in memory (symbol HYP_LOG, for a debugger), also written to the mini
/// UART when the tree has one.
static HYP_LOG: BootCell<RingTee<{ 64 * 1024 }>> = BootCell::new(RingTee {
    ring: LogRing::new(),
    out: None,
});

/// The mini UART, once the hypervisor's log moved there.
static MINI_UART: BootCell<Option<MiniUart>> = BootCell::new(None);

/// Moves the hypervisor's log off the PL011 (which a VM is about to own)
/// to the log ring and the mini UART at `mini`, behind the output queue
/// when the caller handles the mini UART's interrupt (`irq`). From here
/// on the hypervisor never touches the PL011. Primary core, before the
/// other cores are released.
pub fn to_mini_uart(mini: Option<u64>, irq: bool) {
    // SAFETY: primary core, before the secondaries leave boot (BootCell).
    let (m, log) = unsafe { (&mut *MINI_UART.0.get(), &mut *HYP_LOG.0.get()) };
    if let Some(a) = mini {
        // SAFETY: the mini UART from the device tree, in a /soc window
        // the EL2 map has as Device; nothing else uses it.
        let mut u = unsafe { MiniUart::new(a as usize) };
        u.init(crate::platform::BAUD);
        *m = Some(u);
    }
    let have = m.is_some();
    log.out = m.as_mut().map(|u| u as &mut dyn ConsoleSink);
    if irq && have {
        // SAFETY: as above (BootCell).
        let q = unsafe { &mut *QUEUED.0.get() };
        q.attach(log, true);
        LOGGER.switch_sink(q);
    } else {
        LOGGER.switch_sink(log);
    }
}

/// The output queue in front of the console's UART: the PL011 (the mux
/// layout) or the mini UART and the log ring (a VM owns the PL011).
static QUEUED: BootCell<QueuedSink<'static>> = BootCell::new(QueuedSink::new());

/// Puts the output queue in front of the PL011 (the mux layout, with the
/// PL011's interrupt routed to this hypervisor: `irq`), so no core waits
/// on the UART for anyone else's output. Primary core, before the other
/// cores are released.
pub fn queue_output(irq: bool) {
    // SAFETY: primary core, before the secondaries leave boot (BootCell);
    // the PL011 is the console's and stays so (the mux layout).
    let (q, c) = unsafe { (&mut *QUEUED.0.get(), &mut *CONSOLE.0.get()) };
    if let Some(u) = c.as_mut() {
        q.attach(u, irq);
        LOGGER.switch_sink(q);
    }
}

/// Writes out whatever the console has queued, waiting (the fault path).
pub fn flush() {
    with_console(|s| s.flush());
}

/// The hypervisor's last `n` log lines (the monitor's `log`).
pub fn log_tail(n: usize, out: &mut alloc::vec::Vec<u8>) {
    LOGGER.last_lines(n, out);
}

/// Runs `f` with the console under the line lock (whole lines and
/// console-switch output never interleave).
pub fn with_console(f: impl FnOnce(&mut dyn ConsoleSink)) {
    LOGGER.with_sink(|s, _| f(s));
}

/// Installs the hook run before each log line.
pub fn set_line_hook(h: LineHook) {
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
pub fn init(uart: u64, gpio: Option<u64>) {
    if let Some(g) = gpio {
        // SAFETY: the GPIO block from the device tree (or the BCM2711
        // default), MMU off: device accesses.
        unsafe { Gpio::new(g as usize) }.route_pl011_to_header();
    }
    // SAFETY: single core, early: nothing else holds the console.
    let slot = unsafe { &mut *CONSOLE.0.get() };
    // SAFETY: the PL011 from the device tree (or the BCM2711 default).
    let mut uart = unsafe { Pl011::new(uart as usize) };
    uart.init(crate::platform::UART_CLOCK_HZ, crate::platform::BAUD);
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

/// Sets the console up on the BCM2711's default PL011 if nothing has yet
/// (a fault or panic before the device tree was read).
pub fn ensure() {
    if !CONSOLE_READY.load(Ordering::Relaxed) {
        init(rpi4::DEFAULT_UART0, None);
    }
}

/// Whether exclusives work yet (the logger has left early mode, which
/// boot does once the MMU and caches are on).
pub fn exclusives_ok() -> bool {
    !LOGGER.is_early()
}

/// Lines are written under the line lock from now on. Call once
/// exclusive accesses work (MMU and caches on).
pub fn enable_locking() {
    LOGGER.enable_locking();
}
