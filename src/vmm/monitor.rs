//! The monitor on the hypervisor's console ([`crate::monitor`]): typed
//! bytes from the console's interrupt (core 0) through the line editor,
//! each command answered from the VMs' own counters. It takes a VM's
//! device lock for the moment of a snapshot and never waits for a VM's
//! core, so an open monitor costs the VMs nothing.
//!
//! `stop`, `start`, `restart` and `reset` only ask
//! ([`super::lifecycle::ask`]): the VM's own cores carry them out through
//! the lifecycle path SYSTEM_OFF and SYSTEM_RESET take.
//!
//! When a VM owns the PL011 the monitor is on the mini UART (its input
//! interrupt, like the PL011's in the mux layout); when no VM has a UART
//! it has the PL011's input to itself.

use super::console::log_tail;
use super::vm::{vms, Vm};
use crate::arch::cpu;
use crate::monitor::{self, Command, Figures, Layout, LineEditor, State, VmRow, PROMPT};
use crate::sync::{Mutex, Once};
use crate::trap::stats::ExitCounts;
use crate::virtio::net::DropReason;
use crate::vm::restart::state;
use alloc::string::String;
use alloc::vec::Vec;
use core::fmt::Write;
use core::sync::atomic::Ordering;

/// The board as the firmware's tree names it, and its RAM in bytes.
static BOARD: Once<(String, u64)> = Once::new();

/// The line editor and, per VM, the figures of the last `stats` and when
/// (counter time).
type Session = (LineEditor, Vec<Option<(Figures, u64)>>);

/// The monitor's session (one: the console is one terminal).
static STATE: Mutex<Option<Session>> = Mutex::new(None);

/// Where the monitor's bytes go (the console, through its switch).
pub type Out<'a> = &'a mut dyn FnMut(&[u8]);

/// Notes the board (boot, once).
pub fn set_board(model: &str, ram: u64) {
    BOARD.call_once(|| (model.into(), ram));
}

/// The monitor was opened: its prompt.
pub fn opened(write: Out<'_>) {
    if let Some((e, _)) = STATE.lock().as_mut() {
        e.clear();
    }
    write(PROMPT);
}

/// A byte typed while the monitor has the keyboard, on the console
/// `layout`.
pub fn key(b: u8, layout: Layout, write: Out<'_>) {
    let mut echo = Vec::new();
    let line = {
        let mut g = STATE.lock();
        let (e, _) = g.get_or_insert_with(|| (LineEditor::default(), Vec::new()));
        e.key(b, &mut echo)
    };
    if !echo.is_empty() {
        write(&echo);
    }
    let Some(line) = line else { return };
    let names: Vec<&str> = vms().iter().map(|v| v.name.as_str()).collect();
    let mut out = String::new();
    let mut tail = Vec::new();
    match monitor::parse(&line, &names) {
        Ok(Command::Log(n)) => log_tail(n, &mut tail),
        Ok(c) => run(c, layout, &mut out),
        Err(e) => {
            let _ = write!(out, "error: {e}\r\n");
        }
    }
    let mut bytes = out.into_bytes();
    bytes.append(&mut tail);
    bytes.extend_from_slice(PROMPT);
    write(&bytes);
}

fn run(c: Command, layout: Layout, out: &mut String) {
    match c {
        Command::Nothing | Command::Log(_) => {}
        Command::Help => out.push_str(monitor::HELP),
        Command::List => {
            let rows: Vec<VmRow<'_>> = vms().iter().map(row).collect();
            monitor::list(&rows, out);
        }
        Command::Stats { vm: one, json } => {
            let now = cpu::counter();
            let freq = cpu::counter_freq().max(1);
            for v in vms() {
                if one.is_some_and(|i| i != v.index) {
                    continue;
                }
                let f = figures(v);
                let mut g = STATE.lock();
                let (_, last) = g.get_or_insert_with(|| (LineEditor::default(), Vec::new()));
                if last.len() <= v.index {
                    last.resize(v.index + 1, None);
                }
                let before = last[v.index]
                    .as_ref()
                    .map(|(b, at)| (b, now.saturating_sub(*at) as f64 / freq as f64));
                if json {
                    monitor::stats_json(&v.name, &f, out);
                } else {
                    monitor::stats(&v.name, &f, before, out);
                }
                last[v.index] = Some((f, now));
            }
        }
        Command::Info => info(layout, out),
        Command::Life(what, i) => {
            let Some(v) = vms().get(i) else { return };
            if let Some(why) = monitor::refusal(what, &v.name, state_of(v)) {
                let _ = write!(out, "error: {why}\r\n");
            } else if !super::lifecycle::ask(v, what) {
                let _ = write!(
                    out,
                    "error: cannot {} VM '{}': an earlier request is still being carried out\r\n",
                    what.word(),
                    v.name
                );
            } else {
                let _ = write!(
                    out,
                    "{} VM '{}': asked (its own cores carry it out)\r\n",
                    what.word(),
                    v.name
                );
            }
        }
    }
}

/// A VM's state as the monitor names it.
fn state_of(v: &Vm) -> State {
    match v.state.load(Ordering::Acquire) {
        state::RUNNING => State::Running,
        state::OFF => State::Halted,
        _ => State::Restarting,
    }
}

fn row(v: &Vm) -> VmRow<'_> {
    let st = state_of(v);
    let started = v.backoff.lock().started_at();
    let ms = cpu::counter().saturating_sub(started) * 1000 / cpu::counter_freq().max(1);
    VmRow {
        name: &v.name,
        state: st,
        cores: cores(v),
        memory_mib: v.ram.size() >> 20,
        uptime_ms: ms,
        restarts: v.resets.load(Ordering::Relaxed),
        last_end: v.last_end.lock().clone(),
    }
}

/// Its cores: "2-3", or "0,2" when not a run.
fn cores(v: &Vm) -> String {
    let c: Vec<usize> = v.vcpus.iter().map(|c| c.core).collect();
    match (c.first(), c.last()) {
        (Some(a), Some(b)) if c.windows(2).all(|w| w[1] == w[0] + 1) && a != b => {
            alloc::format!("{a}-{b}")
        }
        _ => c
            .iter()
            .map(|n| alloc::format!("{n}"))
            .collect::<Vec<_>>()
            .join(","),
    }
}

/// A VM's counters now.
fn figures(v: &Vm) -> Figures {
    let e = v.exit_counts(None);
    let mut f = Figures {
        exits: ExitCounts::NAMES.iter().copied().zip(e.0).collect(),
        counters: Vec::new(),
    };
    let foreign: u64 = v
        .vcpus
        .iter()
        .map(|c| c.foreign_irqs.load(Ordering::Relaxed))
        .sum();
    f.counters
        .push(("guest", "refused", v.refusals.load(Ordering::Relaxed)));
    let injected: u64 = v
        .vcpus
        .iter()
        .map(|c| c.injected.load(Ordering::Relaxed))
        .sum();
    f.counters.push(("guest", "irqs_injected", injected));
    f.counters.push(("guest", "irqs_for_others", foreign));
    for (what, c) in ["local", "forwarded", "refused"]
        .into_iter()
        .zip(&v.mailbox_tags)
    {
        f.counters
            .push(("mailbox", what, c.load(Ordering::Relaxed)));
    }
    if let Some(b) = &v.blk {
        let s = b.lock().device().stats;
        f.counters.extend([
            ("disk", "reads", s.reads),
            ("disk", "writes", s.writes),
            ("disk", "flushes", s.flushes),
            ("disk", "read_bytes", s.read_bytes),
            ("disk", "written_bytes", s.written_bytes),
            ("disk", "errors", s.errors),
        ]);
    }
    if let Some(n) = &v.net {
        let s = n.lock().device().port().counters.stats();
        f.counters.extend([
            ("net", "tx_frames", s.tx_frames),
            ("net", "tx_bytes", s.tx_bytes),
            ("net", "rx_frames", s.rx_frames),
            ("net", "rx_bytes", s.rx_bytes),
        ]);
        for d in DropReason::ALL {
            f.counters.push(("net_drops", d.name(), s.dropped(d)));
        }
    }
    f
}

fn info(layout: Layout, out: &mut String) {
    let (model, ram) = BOARD
        .get()
        .map_or(("unknown", 0), |(m, r)| (m.as_str(), *r));
    let _ = write!(
        out,
        "pivisor {}\r\nboard: {model}, {} MiB of RAM\r\nconsole: {}\r\n",
        crate::VERSION,
        ram >> 20,
        layout.describe()
    );
    for v in vms() {
        let mut devs: Vec<String> = Vec::new();
        if v.uart.is_some() {
            devs.push("emulated UART".into());
        }
        if let Some(pa) = v.pl011_pa {
            devs.push(alloc::format!("the PL011 at {pa:#x} (passed through)"));
        }
        for d in &v.passthrough {
            devs.push(alloc::format!(
                "{} ({}) passed through{}",
                d.path,
                d.compatible,
                if d.is_dma() {
                    ", a DMA master: the VM is trusted with all of RAM"
                } else {
                    ""
                }
            ));
        }
        if v.blk.is_some() {
            devs.push("virtio disk (an SD card partition)".into());
        }
        if v.net.is_some() {
            devs.push("virtio network".into());
        }
        if v.watchdog.is_some() {
            devs.push("watchdog".into());
        }
        devs.push("mailbox (mediated)".into());
        let _ = write!(out, "VM {} '{}': {}\r\n", v.index, v.name, devs.join(", "));
    }
}
