//! The console's output queue (the mux layout): what VMs and the
//! hypervisor write goes into one queue in the order written, and leaves
//! for the UART as fast as its FIFO takes it, from whichever core writes
//! next or from the UART's transmit interrupt. Nobody waits on the UART
//! for anyone else's bytes.
//!
//! - Every source (a VM, or the hypervisor's log) has a share of the
//!   queue ([`VM_SHARE`], [`HYP_SHARE`]); a write that does not fit its
//!   source's share is dropped whole (a line is never torn) and counted.
//! - A VM's emulated UART asks first ([`OutQueue::wants`]): with no room
//!   it reads FR.TXFF set and its transmit interrupt waits, so a guest
//!   that respects TXFF loses nothing, and is woken ([`OutQueue::drain`]
//!   reports it) once its share is half free. Only a guest that ignores
//!   TXFF loses bytes, its own.
//! - [`QueuedSink`] puts the queue in front of a UART. Without a
//!   transmit interrupt it writes synchronously, as a plain sink does.
//!
//! Pure logic: the UART is a [`ConsoleSink`] with a non-blocking put.

use crate::console::ConsoleSink;

/// Sources: up to eight VMs (by index) and the hypervisor.
pub const MAX_SOURCES: usize = 9;
/// The hypervisor's log lines.
pub const HYP: usize = MAX_SOURCES - 1;
/// The queue's size in bytes.
pub const QUEUE: usize = 32 * 1024;
/// A VM's share (a background line is at most about 1 KiB escaped).
pub const VM_SHARE: usize = 4 * 1024;
/// The hypervisor's share.
pub const HYP_SHARE: usize = 8 * 1024;

/// What a source lost.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Drops {
    /// Writes dropped (a line or a byte each).
    pub writes: u64,
    /// Bytes in them.
    pub bytes: u64,
}

/// The queue: bytes in write order, each with its source.
pub struct OutQueue {
    bytes: [u8; QUEUE],
    owner: [u8; QUEUE],
    /// Oldest byte's index.
    tail: usize,
    len: usize,
    used: [usize; MAX_SOURCES],
    /// Sources told "no room" since they last had some (bit per source).
    starved: u16,
    drops: [Drops; MAX_SOURCES],
}

impl OutQueue {
    /// An empty queue.
    pub const fn new() -> Self {
        Self {
            bytes: [0; QUEUE],
            owner: [0; QUEUE],
            tail: 0,
            len: 0,
            used: [0; MAX_SOURCES],
            starved: 0,
            drops: [Drops {
                writes: 0,
                bytes: 0,
            }; MAX_SOURCES],
        }
    }

    fn share(src: usize) -> usize {
        if src == HYP {
            HYP_SHARE
        } else {
            VM_SHARE
        }
    }

    /// Bytes source `src` may still queue (0 for an unknown source).
    pub fn room(&self, src: usize) -> usize {
        if src >= MAX_SOURCES {
            return 0;
        }
        Self::share(src)
            .saturating_sub(self.used[src])
            .min(QUEUE - self.len)
    }

    /// Whether `src` may queue `n` more bytes; if not it is marked to be
    /// woken when it may again.
    pub fn wants(&mut self, src: usize, n: usize) -> bool {
        let ok = self.room(src) >= n;
        if !ok && src < MAX_SOURCES {
            self.starved |= 1 << src;
        }
        ok
    }

    /// Queues `data` from `src` whole, or drops it whole (counted).
    pub fn push(&mut self, src: usize, data: &[u8]) -> bool {
        if src >= MAX_SOURCES {
            return false;
        }
        if data.len() > self.room(src) {
            self.drops[src].writes += 1;
            self.drops[src].bytes += data.len() as u64;
            self.starved |= 1 << src;
            return false;
        }
        for &b in data {
            let i = (self.tail + self.len) % QUEUE;
            self.bytes[i] = b;
            self.owner[i] = src as u8;
            self.len += 1;
        }
        self.used[src] += data.len();
        true
    }

    /// Hands bytes to `put` in order until it refuses one (the UART's
    /// FIFO is full) or the queue is empty. Returns the sources to wake:
    /// starved ones whose share is now at least half free.
    pub fn drain(&mut self, put: &mut dyn FnMut(u8) -> bool) -> u16 {
        while self.len > 0 {
            if !put(self.bytes[self.tail]) {
                break;
            }
            let src = self.owner[self.tail] as usize;
            self.used[src] -= 1;
            self.tail = (self.tail + 1) % QUEUE;
            self.len -= 1;
        }
        let mut woken = 0;
        for src in 0..MAX_SOURCES {
            if self.starved & (1 << src) != 0 && self.room(src) >= Self::share(src) / 2 {
                woken |= 1 << src;
            }
        }
        self.starved &= !woken;
        woken
    }

    /// Whether nothing waits.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Bytes waiting from `src`.
    pub fn used(&self, src: usize) -> usize {
        self.used.get(src).copied().unwrap_or(0)
    }

    /// What `src` lost.
    pub fn drops(&self, src: usize) -> Drops {
        self.drops.get(src).copied().unwrap_or_default()
    }
}

impl Default for OutQueue {
    fn default() -> Self {
        Self::new()
    }
}

/// The queue in front of a UART, as the console's sink.
pub struct QueuedSink<'a> {
    /// The queue.
    pub q: OutQueue,
    uart: Option<&'a mut dyn ConsoleSink>,
    /// The UART's transmit interrupt is handled (else: synchronous).
    irq: bool,
    /// Sources to wake, collected from drains until taken.
    woken: u16,
}

impl<'a> QueuedSink<'a> {
    /// A sink with no UART yet (in a static; see [`QueuedSink::attach`]).
    pub const fn new() -> Self {
        Self {
            q: OutQueue::new(),
            uart: None,
            irq: false,
            woken: 0,
        }
    }

    /// Puts the queue in front of `uart`; with `irq` the caller handles
    /// the UART's transmit interrupt by calling [`ConsoleSink::service`].
    pub fn attach(&mut self, uart: &'a mut dyn ConsoleSink, irq: bool) {
        self.uart = Some(uart);
        self.irq = irq;
    }

    /// Drains what the UART takes now; arms its transmit interrupt while
    /// bytes wait (the FIFO is full then, so its level will fall through
    /// the trigger level and interrupt), or without one writes everything.
    fn pump(&mut self) {
        let Some(u) = self.uart.as_deref_mut() else {
            return;
        };
        loop {
            self.woken |= self.q.drain(&mut |b| u.try_put(b));
            if self.irq || self.q.is_empty() {
                break;
            }
        }
        if self.irq {
            u.set_tx_interrupt(!self.q.is_empty());
        }
    }
}

impl Default for QueuedSink<'_> {
    fn default() -> Self {
        Self::new()
    }
}

impl ConsoleSink for QueuedSink<'_> {
    fn write_bytes(&mut self, bytes: &[u8]) {
        self.write_from(HYP, bytes);
    }

    fn write_from(&mut self, source: usize, bytes: &[u8]) -> bool {
        let ok = self.q.push(source, bytes);
        self.pump();
        ok
    }

    fn room(&mut self, source: usize, n: usize) -> bool {
        self.q.wants(source, n)
    }

    fn service(&mut self) -> u16 {
        self.pump();
        core::mem::take(&mut self.woken)
    }

    fn take_woken(&mut self) -> u16 {
        core::mem::take(&mut self.woken)
    }

    fn flush(&mut self) {
        let Some(u) = self.uart.as_deref_mut() else {
            return;
        };
        // Bounded: a UART that never takes a byte must not hang the
        // fault path that flushes (about 10 s at 115200 baud).
        for _ in 0..100_000_000u32 {
            if self.q.is_empty() {
                break;
            }
            self.woken |= self.q.drain(&mut |b| u.try_put(b));
        }
        if self.irq {
            u.set_tx_interrupt(false);
        }
    }

    fn read_byte(&mut self) -> Option<u8> {
        self.uart.as_deref_mut().and_then(|u| u.read_byte())
    }

    fn enable_input(&mut self) {
        if let Some(u) = self.uart.as_deref_mut() {
            u.enable_input();
        }
    }
}

#[cfg(test)]
#[path = "conout_tests.rs"]
mod tests;
