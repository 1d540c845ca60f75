use super::*;
use std::boxed::Box;
use std::vec::Vec;

/// A UART whose FIFO takes `fifo` bytes until the test "sends" them.
struct SlowUart {
    fifo: usize,
    held: usize,
    sent: Vec<u8>,
    tx_irq: bool,
}

impl SlowUart {
    fn new(fifo: usize) -> Self {
        Self {
            fifo,
            held: 0,
            sent: Vec::new(),
            tx_irq: false,
        }
    }
    /// The line sends everything in the FIFO.
    fn tick(&mut self) {
        self.held = 0;
    }
}

impl ConsoleSink for SlowUart {
    fn write_bytes(&mut self, bytes: &[u8]) {
        self.sent.extend_from_slice(bytes);
    }
    fn try_put(&mut self, b: u8) -> bool {
        if self.held == self.fifo {
            return false;
        }
        self.held += 1;
        self.sent.push(b);
        true
    }
    fn set_tx_interrupt(&mut self, on: bool) {
        self.tx_irq = on;
    }
}

fn leak<T>(t: T) -> &'static mut T {
    Box::leak(Box::new(t))
}

#[test]
fn bytes_leave_in_write_order_across_sources() {
    let mut q = Box::new(OutQueue::new());
    assert!(q.push(0, b"ab"));
    assert!(q.push(HYP, b"cd"));
    assert!(q.push(1, b"e"));
    let mut out = Vec::new();
    q.drain(&mut |b| {
        out.push(b);
        true
    });
    assert_eq!(out, b"abcde");
    assert!(q.is_empty());
    assert_eq!((q.used(0), q.used(1), q.used(HYP)), (0, 0, 0));
}

#[test]
fn a_write_that_does_not_fit_its_share_is_dropped_whole_and_counted() {
    let mut q = Box::new(OutQueue::new());
    let line = [b'x'; 1000];
    for _ in 0..4 {
        assert!(q.push(1, &line));
    }
    assert_eq!(q.room(1), VM_SHARE - 4000);
    assert!(!q.push(1, &line), "past the share");
    assert_eq!(q.used(1), 4000, "nothing of it queued");
    assert_eq!(
        q.drops(1),
        Drops {
            writes: 1,
            bytes: 1000
        }
    );
    // Another VM and the hypervisor still have their whole shares.
    assert_eq!(q.room(0), VM_SHARE);
    assert!(q.push(0, &line) && q.push(HYP, &[b'h'; HYP_SHARE]));
    assert!(!q.push(HYP, b"!"));
    assert_eq!(q.drops(0), Drops::default());
}

#[test]
fn unknown_sources_get_nothing() {
    let mut q = Box::new(OutQueue::new());
    assert!(!q.push(MAX_SOURCES, b"x"));
    assert!(!q.push(usize::MAX, b"x"));
    assert_eq!(q.room(MAX_SOURCES), 0);
    assert!(!q.wants(usize::MAX, 1));
    assert!(q.is_empty());
}

#[test]
fn the_whole_queue_bounds_every_share_together() {
    let mut q = Box::new(OutQueue::new());
    for src in 0..8 {
        assert!(q.push(src, &[b'v'; VM_SHARE]), "VM {src}");
    }
    // 8 x 4 KiB fill the 32 KiB queue: the hypervisor's share has no
    // room left in it.
    assert_eq!(q.room(HYP), 0);
    assert!(!q.push(HYP, b"log"));
}

#[test]
fn a_starved_source_is_woken_once_half_its_share_is_free() {
    let mut q = Box::new(OutQueue::new());
    assert!(q.push(2, &[b'z'; VM_SHARE]));
    assert!(!q.wants(2, 1), "TXFF");
    let mut n = 0;
    // The UART takes a quarter: not yet.
    let w = q.drain(&mut |_| {
        n += 1;
        n <= VM_SHARE / 4
    });
    assert_eq!(w, 0);
    let w = q.drain(&mut |_| true);
    assert_eq!(w, 1 << 2);
    // Told once.
    assert_eq!(q.drain(&mut |_| true), 0);
    assert!(q.wants(2, VM_SHARE));
}

#[test]
fn a_flooding_vm_never_makes_another_wait_or_lose() {
    // The UART takes 16 bytes per tick; VM 1 writes as fast as it can,
    // ignoring "no room"; VM 0 writes one line per tick, asking first.
    let uart = leak(SlowUart::new(16));
    let uart_ptr: *mut SlowUart = uart;
    let mut s = Box::new(QueuedSink::new());
    s.attach(uart, true);
    let mut zero_lines = 0;
    for tick in 0..2000 {
        for _ in 0..64 {
            s.write_from(1, b"flood flood flood flood\r\n");
        }
        let line = std::format!("[zero] line {tick}\r\n");
        if s.room(0, line.len()) {
            assert!(s.write_from(0, line.as_bytes()), "tick {tick}");
            zero_lines += 1;
        }
        // SAFETY: single-threaded; the sink holds the only other
        // reference and is not in use here.
        unsafe { (*uart_ptr).tick() };
        s.service();
    }
    while !s.q.is_empty() {
        // SAFETY: as above.
        unsafe { (*uart_ptr).tick() };
        s.service();
    }
    // SAFETY: as above.
    let sent = String::from_utf8(unsafe { (*uart_ptr).sent.clone() }).unwrap();
    let got = sent.matches("[zero] line").count();
    assert_eq!(got, zero_lines, "VM 0 lost nothing it was allowed to write");
    assert!(zero_lines > 100, "VM 0 got its share: {zero_lines} lines");
    assert!(s.q.drops(1).writes > 10_000, "VM 1's flood was dropped");
    assert_eq!(s.q.drops(0), Drops::default());
    // Lines arrive whole: every line of the output is one of the two.
    for l in sent.split("\r\n").filter(|l| !l.is_empty()) {
        assert!(
            l == "flood flood flood flood" || l.starts_with("[zero] line "),
            "torn: {l:?}"
        );
    }
}

#[test]
fn the_transmit_interrupt_is_armed_only_while_bytes_wait() {
    let uart = leak(SlowUart::new(4));
    let uart_ptr: *mut SlowUart = uart;
    let mut s = Box::new(QueuedSink::new());
    s.attach(uart, true);
    s.write_bytes(b"ab");
    // SAFETY: single-threaded, sink not in use.
    assert!(!unsafe { (*uart_ptr).tx_irq });
    s.write_bytes(b"cdefgh");
    assert!(unsafe { (*uart_ptr).tx_irq }, "4 bytes wait");
    unsafe { (*uart_ptr).tick() };
    s.service();
    assert!(!unsafe { (*uart_ptr).tx_irq });
    assert_eq!(unsafe { &(*uart_ptr).sent }, b"abcdefgh");
}

#[test]
fn without_a_transmit_interrupt_it_writes_synchronously() {
    // A plain sink (always takes the byte): nothing ever waits.
    struct Plain(Vec<u8>);
    impl ConsoleSink for Plain {
        fn write_bytes(&mut self, b: &[u8]) {
            self.0.extend_from_slice(b);
        }
    }
    let p = leak(Plain(Vec::new()));
    let ptr: *mut Plain = p;
    let mut s = Box::new(QueuedSink::new());
    s.attach(p, false);
    for _ in 0..100 {
        assert!(s.write_from(0, &[b'q'; 1000]));
    }
    assert!(s.q.is_empty());
    // SAFETY: single-threaded, sink not in use.
    assert_eq!(unsafe { (*ptr).0.len() }, 100_000);
}

#[test]
fn flush_empties_the_queue_for_the_fault_path() {
    let uart = leak(SlowUart::new(1_000_000));
    let uart_ptr: *mut SlowUart = uart;
    let mut s = Box::new(QueuedSink::new());
    s.attach(uart, true);
    // SAFETY: single-threaded, sink not in use.
    unsafe { (*uart_ptr).fifo = 0 };
    s.write_bytes(b"PANIC");
    assert!(!s.q.is_empty());
    unsafe { (*uart_ptr).fifo = 1_000_000 };
    s.flush();
    assert!(s.q.is_empty());
    assert_eq!(unsafe { &(*uart_ptr).sent }, b"PANIC");
}

use std::string::String;
