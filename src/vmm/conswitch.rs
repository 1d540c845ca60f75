//! The "mux" console layout: the hypervisor keeps the PL011; each VM with
//! an emulated UART (`devices = uart`) writes through the console switch
//! ([`crate::conmux`]) and the focused VM gets what is typed.
//!
//! Output: a VM's byte leaves its emulated UART, takes the console's line
//! lock (the same one log lines take) and goes through the switch, so VM
//! output and hypervisor lines never share a line. Input: the PL011's
//! receive interrupt goes to core 0 (hypervisor priority, completed with
//! EOIR and DIR); the bytes go through the switch to the focused VM's
//! emulated UART, whose interrupt line then rises in the VM's vGIC.

use super::console::{set_line_hook, with_console};
use super::vm::vm;
use crate::conmux::{Input, Mux};
use crate::console::ConsoleSink;
use crate::sync::Mutex;
use alloc::string::String;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicU32, Ordering};
use log::info;

/// The switch and a scratch buffer for what it writes (reused: a VM's
/// console output is one exit per byte, no allocation each time).
static MUX: Mutex<Option<(Mux, Vec<u8>)>> = Mutex::new(None);

/// The host PL011's INTID when its input is taken (0: not).
static INPUT_INTID: AtomicU32 = AtomicU32::new(0);

/// Sets the switch up for VMs `names`, focused on `focus`; takes the
/// PL011's input on INTID `intid` (the caller routes it to core 0).
pub fn init(names: Vec<String>, focus: usize, intid: Option<u32>) {
    let mut m = Mux::new(names);
    let mut out = Vec::new();
    m.set_focus(focus, &mut out);
    *MUX.lock() = Some((m, Vec::with_capacity(crate::conmux::LINE_MAX + 64)));
    set_line_hook(line_hook);
    if let Some(i) = intid {
        with_console(|s| s.enable_input());
        INPUT_INTID.store(i, Ordering::Release);
    }
    info!(
        "console: mux layout, focus on VM {focus}; type Ctrl-] then a VM number to switch, Ctrl-] l to list"
    );
    with_console(|s| s.write_bytes(&out));
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

/// A byte VM `vm` wrote to its emulated UART.
pub fn guest_byte(vm: usize, b: u8) {
    with_console(|s| {
        if let Some((m, out)) = MUX.lock().as_mut() {
            out.clear();
            m.output(vm, b, out);
            s.write_bytes(out);
        }
    });
}

/// Whether `intid` is the console's input interrupt.
pub fn is_input(intid: u32) -> bool {
    intid != 0 && INPUT_INTID.load(Ordering::Relaxed) == intid
}

/// The console's receive interrupt: typed bytes to the focused VM (or to
/// the switch's commands). Returns the VMs that got bytes (bit per VM
/// index).
pub fn input() -> u64 {
    let mut to = 0u64;
    let mut bytes = [0u8; 64];
    let mut n = 0;
    with_console(|s| {
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
        with_console(|s| {
            if let Some((m, out)) = MUX.lock().as_mut() {
                out.clear();
                r = m.input(b, out);
                s.write_bytes(out);
            }
        });
        if let Input::ToVm(vm_index, b) = r {
            if let Some(u) = vm(vm_index).and_then(|v| v.uart.as_ref()) {
                u.lock().receive(b);
                to |= 1 << (vm_index % 64);
            }
        }
    }
    to
}
