//! The "mux" console layout: the hypervisor keeps the PL011; each VM with
//! an emulated UART (`devices = uart`) writes through the console switch
//! ([`crate::conmux`]) and the focused VM gets what is typed.
//!
//! Output: a VM's byte leaves its emulated UART and goes through the
//! switch (under the console's line lock, the one log lines take, so VM
//! output and hypervisor lines never share a line) into the output queue
//! ([`crate::conout`]), which the PL011 drains as fast as it sends: the
//! next writer moves on what the FIFO takes, the PL011's transmit
//! interrupt (core 0) the rest. No core waits on the UART for another
//! VM's output. A VM's emulated UART reads TXFF while its share of the
//! queue has no room, and its transmit interrupt comes once the share is
//! half free ([`wake_pending`]). Input: the PL011's receive interrupt goes
//! to core 0 (hypervisor priority, completed with EOIR and DIR); the bytes
//! go through the switch to the focused VM's emulated UART, whose
//! interrupt line then rises in the VM's vGIC.
//!
//! When a VM owns the PL011 the switch writes to the hypervisor's log (the
//! log ring and the mini UART), through the same queue, drained by the
//! mini UART's transmit interrupt (the aux block's, on core 0); what is
//! typed on the mini UART goes to the monitor. When no VM has a UART
//! there is no switch: the PL011's output goes through the queue and
//! what is typed on it to the monitor ([`monitor_only`]).

use super::console::{queue_output, set_line_hook, with_console};
use super::vm::vm;
use crate::conmux::{Input, Mux};
use crate::console::ConsoleSink;
use crate::monitor::Layout;
use crate::sync::Mutex;
use alloc::string::String;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use log::info;

/// The switch and a scratch buffer for what it writes (reused: a VM's
/// console output is one exit per byte, no allocation each time).
static MUX: Mutex<Option<(Mux, Vec<u8>)>> = Mutex::new(None);

/// The interrupt of the hypervisor's console UART when it is handled
/// (0: not): the PL011's in the mux layout (input and output), the aux
/// block's when a VM owns the PL011 (the mini UART's output).
static CONSOLE_INTID: AtomicU32 = AtomicU32::new(0);

/// The monitor's entry points (`vmm::monitor`, set by `build::start`:
/// the monitor reaches the lifecycle, which reaches the interrupts, which
/// call this module, so this module does not call it by name).
pub struct MonitorHooks {
    /// The monitor was opened.
    pub opened: fn(Sink<'_>),
    /// A byte typed into it, on the console layout given.
    pub key: fn(u8, Layout, Sink<'_>),
}

/// Where the monitor writes.
pub type Sink<'a> = &'a mut dyn FnMut(&[u8]);

static MONITOR: crate::sync::Once<MonitorHooks> = crate::sync::Once::new();

/// Connects the monitor.
pub fn connect_monitor(h: MonitorHooks) {
    MONITOR.call_once(|| h);
}

/// The console is the hypervisor's PL011 with no switch (no VM has a
/// UART): what is typed there is the monitor's. Otherwise, with no
/// switch, the console is the mini UART (a VM owns the PL011).
static PL011_MONITOR: AtomicBool = AtomicBool::new(false);

/// VMs whose emulated UART is to be told the console has room again
/// (bit per VM index), collected where that UART's lock may be held.
static PENDING_WAKE: AtomicU64 = AtomicU64::new(0);

/// Sets the switch up for VMs `names`, focused on `focus`; takes the
/// PL011's input on INTID `intid` (the caller routes it to core 0).
pub fn init(names: Vec<String>, focus: usize, intid: Option<u32>) {
    let mut m = Mux::new(names);
    let mut out = Vec::new();
    m.set_focus(focus, &mut out);
    *MUX.lock() = Some((m, Vec::with_capacity(crate::conmux::LINE_MAX + 64)));
    set_line_hook(line_hook);
    if let Some(i) = intid {
        take_pl011(i);
    }
    info!(
        "console: mux layout, focus on VM {focus}; type Ctrl-] then a VM number to switch, Ctrl-] l to list"
    );
    with_console(|s| s.write_bytes(&out));
}

/// The layout where the hypervisor keeps the PL011 and no VM has a UART
/// (the VMs print through the test device's lines, or not at all): the
/// PL011's input goes to the monitor, on INTID `intid` (the caller
/// routes it to core 0), its output through the queue.
pub fn monitor_only(intid: u32) {
    PL011_MONITOR.store(true, Ordering::Relaxed);
    take_pl011(intid);
    info!("console: no VM has a UART; type here for the monitor (help lists its commands)");
}

/// The hypervisor's PL011 as an interrupt-driven console: its output
/// through the queue, its input (INTID `intid`) to this module.
fn take_pl011(intid: u32) {
    queue_output(true);
    with_console(|s| s.enable_input());
    CONSOLE_INTID.store(intid, Ordering::Release);
}

/// Before each log line: end a focused guest's unfinished line.
fn line_hook(sink: &mut dyn ConsoleSink) {
    // try_lock: a fault report from a core inside the switch still prints.
    if let Some(mut g) = MUX.try_lock() {
        if let Some((m, out)) = g.as_mut() {
            out.clear();
            m.break_line(out);
            m.wrote_line();
            sink.write_bytes(out);
        }
    }
}

/// A byte VM `vm` wrote to its emulated UART (under that UART's lock).
pub fn guest_byte(index: usize, b: u8) {
    let (mut kept, mut woken) = (true, 0);
    with_console(|s| {
        if let Some((m, out)) = MUX.lock().as_mut() {
            out.clear();
            m.output(index, b, out);
            if !out.is_empty() {
                kept = s.write_from(index, out);
            }
            woken = s.take_woken();
        }
    });
    // Other VMs' UARTs are not touched here (their locks come after this
    // one's on another core): whoever runs next outside a UART lock
    // tells them.
    if woken != 0 {
        PENDING_WAKE.fetch_or(woken.into(), Ordering::AcqRel);
    }
    if !kept {
        if let Some(vm) = vm(index) {
            vm.warn(format_args!(
                "console: output dropped: it wrote while its UART said TXFF (the console's share for it is full)"
            ));
        }
    }
}

/// Whether VM `index`'s emulated UART may take another byte (its FR.TXFF
/// clear): the console has room for the most that byte can write.
pub fn room(index: usize) -> bool {
    let mut ok = true;
    with_console(|s| {
        if let Some((m, _)) = MUX.lock().as_ref() {
            ok = s.room(index, m.worst_next(index));
        }
    });
    ok
}

/// Tells the VMs the console has room for again (their UARTs' transmit
/// interrupt). Called where no UART lock is held: after an emulated
/// access, and from the console's interrupt.
#[inline]
pub fn wake_pending() {
    if PENDING_WAKE.load(Ordering::Relaxed) == 0 {
        return;
    }
    let w = PENDING_WAKE.swap(0, Ordering::AcqRel);
    for i in 0..64 {
        if w & (1 << i) != 0 {
            if let Some(u) = vm(i).and_then(|v| v.uart.as_ref()) {
                u.lock().tx_room_returned();
            }
        }
    }
}

/// Handles the console UART's interrupt `intid` (routed to core 0 by
/// the caller) from now on: the mini UART's, once it is the console.
pub fn console_interrupt(intid: u32) {
    CONSOLE_INTID.store(intid, Ordering::Release);
}

/// Writes the monitor's `bytes` (its prompt, echo and answers) to the
/// console, so that a VM's background line never shares their line.
fn write_monitor(bytes: &[u8]) {
    with_console(|s| {
        if let Some((m, _)) = MUX.lock().as_mut() {
            m.wrote(bytes);
        }
        s.write_bytes(bytes);
    });
}

/// Whether `intid` is the console's interrupt.
pub fn is_input(intid: u32) -> bool {
    intid != 0 && CONSOLE_INTID.load(Ordering::Relaxed) == intid
}

/// The console's interrupt: queued output moved on (its transmit half),
/// typed bytes to the focused VM or to the switch's commands (its receive
/// half). Returns the VMs that got bytes (bit per VM index).
pub fn interrupt() -> u64 {
    let mut to = 0u64;
    let mut bytes = [0u8; 64];
    let mut n = 0;
    with_console(|s| {
        let woken = s.service();
        if woken != 0 {
            PENDING_WAKE.fetch_or(woken.into(), Ordering::AcqRel);
        }
        while n < bytes.len() {
            match s.read_byte() {
                Some(b) => {
                    bytes[n] = b;
                    n += 1;
                }
                None => break,
            }
        }
    });
    for &b in &bytes[..n] {
        let mut r = Input::Handled;
        let mut mux = false;
        with_console(|s| {
            if let Some((m, out)) = MUX.lock().as_mut() {
                mux = true;
                out.clear();
                r = m.input(b, out);
                s.write_bytes(out);
            }
        });
        if !mux {
            // No switch (a VM owns the PL011 and this is the mini UART,
            // or no VM has a UART): everything typed is the monitor's.
            let layout = if PL011_MONITOR.load(Ordering::Relaxed) {
                Layout::Pl011
            } else {
                Layout::MiniUart
            };
            if let Some(m) = MONITOR.get() {
                (m.key)(b, layout, &mut |bytes| {
                    with_console(|s| s.write_bytes(bytes))
                });
            }
            continue;
        }
        match r {
            Input::ToVm(vm_index, b) => {
                if let Some(u) = vm(vm_index).and_then(|v| v.uart.as_ref()) {
                    u.lock().receive(b);
                    to |= 1 << (vm_index % 64);
                }
            }
            Input::MonitorOpened => {
                if let Some(m) = MONITOR.get() {
                    (m.opened)(&mut write_monitor);
                }
            }
            Input::ToMonitor(b) => {
                if let Some(m) = MONITOR.get() {
                    (m.key)(b, Layout::Mux, &mut write_monitor);
                }
            }
            Input::Handled => {}
        }
    }
    wake_pending();
    to
}
