//! The console logger behind the `log` macros.
//!
//! Every line reads `[    s.micros] cN LEVEL message`: counter time since
//! reset, the logical core, the level. A line is written whole under a lock
//! whose owner is the core, so output from four cores never interleaves
//! mid-line, and a core that faults while holding it can still report.
//! Before the MMU is on (exclusives are not guaranteed on Device memory) the
//! logger runs in early mode: one core only, no lock.

use core::cell::UnsafeCell;
use core::fmt::{self, Write};
use core::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use log::{Level, Log, Metadata, Record};

pub use crate::logring::LogRing;

/// Where console bytes go.
pub trait ConsoleSink: Send {
    /// Writes bytes, blocking until they are accepted.
    fn write_bytes(&mut self, bytes: &[u8]);
    /// A received byte, if the sink is also an input.
    fn read_byte(&mut self) -> Option<u8> {
        None
    }
    /// Starts signalling input with an interrupt (if it can).
    fn enable_input(&mut self) {}
    /// Puts one byte if the transmitter has room now; false if not (a
    /// plain sink waits and always takes it).
    fn try_put(&mut self, b: u8) -> bool {
        self.write_bytes(&[b]);
        true
    }
    /// Arms (or disarms) the transmitter's interrupt (if it has one).
    fn set_tx_interrupt(&mut self, _on: bool) {}
    /// Writes bytes on behalf of `source` (a VM's index, or
    /// `conout::HYP`); false when they were dropped (a queued
    /// sink whose source had no room; a plain sink takes everything).
    fn write_from(&mut self, _source: usize, bytes: &[u8]) -> bool {
        self.write_bytes(bytes);
        true
    }
    /// Whether `source` may write `n` more bytes now without any being
    /// dropped (a queued sink remembers to wake it when not).
    fn room(&mut self, _source: usize, _n: usize) -> bool {
        true
    }
    /// The transmitter's interrupt: moves queued bytes on; returns the
    /// sources to wake (bit per source).
    fn service(&mut self) -> u16 {
        0
    }
    /// Sources to wake that drains found since last asked.
    fn take_woken(&mut self) -> u16 {
        0
    }
    /// Writes out everything queued, waiting (the fault path).
    fn flush(&mut self) {}
}

/// Called with the sink just before each log line is written (the
/// console switch ends a guest's unfinished line there).
pub type LineHook = fn(&mut dyn ConsoleSink);

/// Platform hooks: counter time and core number.
#[derive(Clone, Copy)]
pub struct Hooks {
    /// Counter ticks since reset.
    pub ticks: fn() -> u64,
    /// Counter frequency in Hz.
    pub freq: fn() -> u64,
    /// Logical core number.
    pub core: fn() -> usize,
}

fn zero() -> u64 {
    0
}
fn one() -> u64 {
    1
}
fn core0() -> usize {
    0
}

/// The line prefix: `[    s.micros] cN LEVEL `.
pub struct Prefix {
    /// Counter ticks.
    pub ticks: u64,
    /// Counter frequency.
    pub freq: u64,
    /// Core.
    pub core: usize,
    /// Level.
    pub level: Level,
}

impl fmt::Display for Prefix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let freq = self.freq.max(1);
        let secs = self.ticks / freq;
        let micros = (self.ticks % freq) * 1_000_000 / freq;
        let lvl = match self.level {
            Level::Error => "ERROR",
            Level::Warn => "WARN ",
            Level::Info => "INFO ",
            Level::Debug => "DEBUG",
            Level::Trace => "TRACE",
        };
        write!(f, "[{secs:>5}.{micros:06}] c{} {lvl} ", self.core)
    }
}

/// Adapts a sink to `fmt::Write`, turning `\n` into `\r\n` for terminals.
pub struct LineWriter<'s>(pub &'s mut dyn ConsoleSink);

impl Write for LineWriter<'_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        for (i, part) in s.split('\n').enumerate() {
            if i > 0 {
                self.0.write_bytes(b"\r\n");
            }
            self.0.write_bytes(part.as_bytes());
        }
        Ok(())
    }
}

/// Writes one whole log line.
pub fn write_line(sink: &mut dyn ConsoleSink, prefix: &Prefix, args: fmt::Arguments<'_>) {
    let mut w = LineWriter(sink);
    let _ = writeln!(w, "{prefix}{args}");
}

/// A sink that keeps everything in a ring and also writes it to another
/// sink, if there is one.
pub struct RingTee<const N: usize> {
    /// The ring.
    pub ring: LogRing<N>,
    /// Where output also goes.
    pub out: Option<&'static mut dyn ConsoleSink>,
}

impl<const N: usize> ConsoleSink for RingTee<N> {
    fn write_bytes(&mut self, bytes: &[u8]) {
        self.ring.push(bytes);
        if let Some(o) = self.out.as_deref_mut() {
            o.write_bytes(bytes);
        }
    }

    /// Into the ring once the UART (if any) took it.
    fn try_put(&mut self, b: u8) -> bool {
        if let Some(o) = self.out.as_deref_mut() {
            if !o.try_put(b) {
                return false;
            }
        }
        self.ring.push(&[b]);
        true
    }

    fn set_tx_interrupt(&mut self, on: bool) {
        if let Some(o) = self.out.as_deref_mut() {
            o.set_tx_interrupt(on);
        }
    }

    fn read_byte(&mut self) -> Option<u8> {
        self.out.as_deref_mut()?.read_byte()
    }

    fn enable_input(&mut self) {
        if let Some(o) = self.out.as_deref_mut() {
            o.enable_input();
        }
    }
}

/// A line on its way to the sink, kept in the history too.
struct Tee<'a> {
    sink: &'a mut dyn ConsoleSink,
    history: &'a mut LogRing<HISTORY>,
}

impl ConsoleSink for Tee<'_> {
    fn write_bytes(&mut self, bytes: &[u8]) {
        self.history.push(bytes);
        self.sink.write_bytes(bytes);
    }
}

/// The console logger.
pub struct Logger {
    sink: UnsafeCell<Option<&'static mut dyn ConsoleSink>>,
    hooks: UnsafeCell<Hooks>,
    /// 0 when free, else owning core + 1.
    owner: AtomicUsize,
    early: AtomicBool,
    /// A [`LineHook`] as a usize (0: none).
    hook: AtomicUsize,
    /// Every line logged, the newest [`HISTORY`] bytes (the monitor's
    /// `log`), written and read under the line lock.
    history: UnsafeCell<LogRing<HISTORY>>,
}

/// Bytes of log lines the logger keeps for the monitor.
pub const HISTORY: usize = 16 * 1024;

// SAFETY: the sink and hooks are written only by `install`, in early mode,
// while a single core runs; afterwards the sink is used only under `owner`.
unsafe impl Sync for Logger {}

impl Logger {
    /// A logger with no sink (messages are dropped) in early mode.
    pub const fn new() -> Self {
        Logger {
            sink: UnsafeCell::new(None),
            hooks: UnsafeCell::new(Hooks {
                ticks: zero,
                freq: one,
                core: core0,
            }),
            owner: AtomicUsize::new(0),
            early: AtomicBool::new(true),
            hook: AtomicUsize::new(0),
            history: UnsafeCell::new(LogRing::new()),
        }
    }

    /// The last `n` lines logged, appended to `out` (under the line lock).
    pub fn last_lines(&self, n: usize, out: &mut alloc::vec::Vec<u8>) {
        // SAFETY: under the line lock, which `log` writes it under.
        self.with_sink(|_, _| unsafe { (*self.history.get()).last_lines(n, out) });
    }

    /// Sets the sink and hooks.
    ///
    /// # Safety
    /// Only while one core runs and before the logger leaves early mode.
    pub unsafe fn install(&self, sink: &'static mut dyn ConsoleSink, hooks: Hooks) {
        // SAFETY: the caller guarantees nothing else touches the logger now.
        unsafe {
            *self.sink.get() = Some(sink);
            *self.hooks.get() = hooks;
        }
    }

    /// Whether the logger is still in early mode (MMU off: no exclusives).
    pub fn is_early(&self) -> bool {
        self.early.load(Ordering::Acquire)
    }

    /// Leaves early mode: from now on lines are written under the lock.
    /// Call once exclusive accesses work (MMU and caches on).
    pub fn enable_locking(&self) {
        self.early.store(false, Ordering::Release);
    }

    /// Replaces the sink (under the line lock, so no line is cut): the
    /// PL011 handover to a VM.
    pub fn switch_sink(&self, sink: &'static mut dyn ConsoleSink) {
        let mut new = Some(sink);
        self.with_sink_slot(|slot| *slot = new.take());
    }

    fn with_sink_slot(&self, f: impl FnOnce(&mut Option<&'static mut dyn ConsoleSink>)) {
        let me = (self.hooks().core)() + 1;
        while self
            .owner
            .compare_exchange_weak(0, me, Ordering::Acquire, Ordering::Relaxed)
            .is_err()
        {
            crate::sync::relax();
        }
        // SAFETY: we hold the line lock.
        f(unsafe { &mut *self.sink.get() });
        self.owner.store(0, Ordering::Release);
    }

    /// Installs the hook called before each log line.
    pub fn set_line_hook(&self, hook: LineHook) {
        self.hook.store(hook as usize, Ordering::Release);
    }

    fn hooks(&self) -> Hooks {
        // SAFETY: hooks are only written in early mode by `install`.
        unsafe { *self.hooks.get() }
    }

    /// Takes the line lock for core `me - 1`: true when taken, false when
    /// this core already holds it (a fault while logging). Only called out
    /// of early mode: its compare-exchange is an exclusive, which needs the
    /// MMU on. Never inlined, so that `make test`'s disassembly check can
    /// tell the MMU-off logging path (which must not reach it) apart.
    #[inline(never)]
    fn acquire(&self, me: usize) -> bool {
        loop {
            match self
                .owner
                .compare_exchange_weak(0, me, Ordering::Acquire, Ordering::Relaxed)
            {
                Ok(_) => return true,
                Err(o) if o == me => return false,
                // A core that died holding the line lock never gives it
                // back: take it over (its line stays cut).
                Err(o)
                    if crate::sync::is_dead(o - 1)
                        && self
                            .owner
                            .compare_exchange(o, me, Ordering::Acquire, Ordering::Relaxed)
                            .is_ok() =>
                {
                    return true
                }
                Err(_) => crate::sync::relax(),
            }
        }
    }

    /// Runs `f` with the sink, holding the line lock.
    pub fn with_sink(&self, f: impl FnOnce(&mut dyn ConsoleSink, Hooks)) {
        let hooks = self.hooks();
        let me = (hooks.core)() + 1;
        let acquired = !self.early.load(Ordering::Acquire) && self.acquire(me);
        // SAFETY: we hold the lock (or run alone in early mode, or are the
        // owner re-entering from an exception on the same core).
        if let Some(sink) = unsafe { (*self.sink.get()).as_deref_mut() } {
            f(sink, hooks);
        }
        if acquired {
            self.owner.store(0, Ordering::Release);
        }
    }
}

impl Default for Logger {
    fn default() -> Self {
        Self::new()
    }
}

impl Log for Logger {
    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        metadata.level() <= log::max_level()
    }

    fn log(&self, record: &Record<'_>) {
        if !self.enabled(record.metadata()) {
            return;
        }
        let hook = self.hook.load(Ordering::Acquire);
        self.with_sink(|sink, h| {
            if hook != 0 {
                // SAFETY: only ever stored from a LineHook by set_line_hook.
                let f: LineHook = unsafe { core::mem::transmute::<usize, LineHook>(hook) };
                f(sink);
            }
            let p = Prefix {
                ticks: (h.ticks)(),
                freq: (h.freq)(),
                core: (h.core)(),
                level: record.level(),
            };
            // SAFETY: under the line lock (or alone, in early mode).
            let history = unsafe { &mut *self.history.get() };
            let mut tee = Tee { sink, history };
            write_line(&mut tee, &p, *record.args());
        });
    }

    fn flush(&self) {}
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::vec::Vec;

    struct Buf(Vec<u8>);
    impl ConsoleSink for Buf {
        fn write_bytes(&mut self, b: &[u8]) {
            self.0.extend_from_slice(b);
        }
    }

    #[test]
    fn ring_keeps_the_newest_bytes_in_order() {
        let mut r = LogRing::<8>::new();
        assert_eq!(r.contents(), (&b""[..], &b""[..]));
        r.push(b"abc");
        assert_eq!(r.contents(), (&b"abc"[..], &b""[..]));
        r.push(b"defghij");
        let (a, b) = r.contents();
        assert_eq!([a, b].concat(), b"cdefghij");
        r.push(&[b'x'; 20]);
        let (a, b) = r.contents();
        assert_eq!([a, b].concat(), b"xxxxxxxx");
        let mut tee = RingTee::<4> {
            ring: LogRing::new(),
            out: None,
        };
        tee.write_bytes(b"hello");
        let (a, b) = tee.ring.contents();
        assert_eq!([a, b].concat(), b"ello");
    }

    #[test]
    fn prefix_format() {
        let p = Prefix {
            ticks: 62_500_000 * 3 + 625,
            freq: 62_500_000,
            core: 2,
            level: Level::Info,
        };
        assert_eq!(std::format!("{p}"), "[    3.000010] c2 INFO  ");
        let p = Prefix {
            ticks: 5,
            freq: 0,
            core: 0,
            level: Level::Error,
        };
        assert_eq!(std::format!("{p}"), "[    5.000000] c0 ERROR ");
    }

    #[test]
    fn lines_end_with_crlf_and_inner_newlines_too() {
        let mut b = Buf(Vec::new());
        let p = Prefix {
            ticks: 0,
            freq: 1,
            core: 1,
            level: Level::Warn,
        };
        write_line(&mut b, &p, format_args!("a\nb"));
        assert_eq!(b.0, b"[    0.000000] c1 WARN  a\r\nb\r\n");
    }

    #[test]
    fn logger_writes_through_sink_with_lock() {
        let sink: &'static mut Buf = std::boxed::Box::leak(std::boxed::Box::new(Buf(Vec::new())));
        let ptr: *const Buf = sink;
        let l = Logger::new();
        // SAFETY: single-threaded test.
        unsafe {
            l.install(
                sink,
                Hooks {
                    ticks: zero,
                    freq: one,
                    core: core0,
                },
            )
        };
        l.enable_locking();
        l.with_sink(|s, _| s.write_bytes(b"x"));
        // Re-entry from the owning core must not deadlock.
        l.with_sink(|s, _| {
            s.write_bytes(b"y");
        });
        assert_eq!(l.owner.load(Ordering::Relaxed), 0);
        // SAFETY: the logger is done with the sink.
        assert_eq!(unsafe { &(*ptr).0 }, b"xy");
    }
}
