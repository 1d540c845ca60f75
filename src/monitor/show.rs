//! What the monitor answers with: the `list` table and the `stats`
//! text and JSON lines, from figures the glue gathers.

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt::Write;

/// A VM's state as the monitor sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// Running (some vCPUs may be off).
    Running,
    /// Halted: stopped, powered off, or crashed and not restarted.
    Halted,
    /// Being reloaded.
    Restarting,
}

impl State {
    /// Its name in `list`.
    pub fn name(self) -> &'static str {
        match self {
            State::Running => "running",
            State::Halted => "halted",
            State::Restarting => "restarting",
        }
    }
}

/// One VM as `list` shows it.
#[derive(Debug, Clone)]
pub struct VmRow<'a> {
    /// Its name.
    pub name: &'a str,
    /// Its state.
    pub state: State,
    /// Its cores, e.g. "2-3".
    pub cores: String,
    /// Its memory in MiB.
    pub memory_mib: u64,
    /// Since its last start, milliseconds.
    pub uptime_ms: u64,
    /// Restarts so far.
    pub restarts: u32,
    /// Why it last ended, if it has.
    pub last_end: Option<String>,
}

/// The `list` table.
pub fn list(rows: &[VmRow<'_>], out: &mut String) {
    let _ = write!(
        out,
        "{:<3} {:<16} {:<10} {:<7} {:>8} {:>12} {:>8}  last end\r\n",
        "#", "name", "state", "cores", "memory", "uptime", "restarts"
    );
    for (i, r) in rows.iter().enumerate() {
        let up = if r.state == State::Running {
            uptime(r.uptime_ms)
        } else {
            "-".into()
        };
        let _ = write!(
            out,
            "{:<3} {:<16} {:<10} {:<7} {:>5} MiB {:>12} {:>8}  {}\r\n",
            i,
            r.name,
            r.state.name(),
            r.cores,
            r.memory_mib,
            up,
            r.restarts,
            r.last_end.as_deref().unwrap_or("-")
        );
    }
}

/// An uptime as `list` shows it (`3.914s`, `1m01s`, `1h02m03s`).
pub fn uptime(ms: u64) -> String {
    let s = ms / 1000;
    if s < 60 {
        alloc::format!("{}.{:03}s", s, ms % 1000)
    } else if s < 3600 {
        alloc::format!("{}m{:02}s", s / 60, s % 60)
    } else {
        alloc::format!("{}h{:02}m{:02}s", s / 3600, s / 60 % 60, s % 60)
    }
}

/// One VM's figures for `stats`: named counters, in order.
#[derive(Debug, Clone, Default)]
pub struct Figures {
    /// Exits by kind (name, count).
    pub exits: Vec<(&'static str, u64)>,
    /// Other counters (group, name, value): refusals, devices.
    pub counters: Vec<(&'static str, &'static str, u64)>,
}

/// A VM's `stats` text: `now` against `before` (the last `stats`,
/// `secs` seconds ago; None: the first).
pub fn stats(name: &str, now: &Figures, before: Option<(&Figures, f64)>, out: &mut String) {
    let total: u64 = now.exits.iter().map(|e| e.1).sum();
    let _ = write!(out, "VM '{name}': exits {total}");
    let rate = |n: u64, i: usize| -> Option<f64> {
        let (b, secs) = before?;
        let was = b.exits.get(i).map_or(0, |e| e.1);
        (secs > 0.0).then(|| n.saturating_sub(was) as f64 / secs)
    };
    if let Some((b, secs)) = before.filter(|b| b.1 > 0.0) {
        let was: u64 = b.exits.iter().map(|e| e.1).sum();
        let _ = write!(
            out,
            ", {:.1}/s over the last {:.1} s",
            total.saturating_sub(was) as f64 / secs,
            secs
        );
    }
    out.push_str("\r\n");
    for (i, (kind, n)) in now.exits.iter().enumerate() {
        if *n == 0 {
            continue;
        }
        let _ = write!(out, "  exits {kind:<8} {n:>12}");
        if let Some(r) = rate(*n, i) {
            let _ = write!(out, "  {r:>10.1}/s");
        }
        out.push_str("\r\n");
    }
    for (group, what, n) in &now.counters {
        let _ = write!(out, "  {group:<8} {what:<16} {n:>12}\r\n");
    }
}

/// A VM's `stats --json` line: `MONITOR {"vm":...,"exits":{...},...}`.
pub fn stats_json(name: &str, now: &Figures, out: &mut String) {
    out.push_str("MONITOR {\"vm\":\"");
    json_str(name, out);
    out.push_str("\",\"exits\":{");
    for (i, (kind, n)) in now.exits.iter().enumerate() {
        let _ = write!(out, "{}\"{kind}\":{n}", if i > 0 { "," } else { "" });
    }
    out.push('}');
    let mut group = "";
    for (g, what, n) in &now.counters {
        if *g != group {
            if !group.is_empty() {
                out.push('}');
            }
            let _ = write!(out, ",\"{g}\":{{");
            group = g;
        } else {
            out.push(',');
        }
        let _ = write!(out, "\"{what}\":{n}");
    }
    if !group.is_empty() {
        out.push('}');
    }
    out.push_str("}\r\n");
}

/// `s` inside a JSON string (a VM name: printable ASCII, but checked).
fn json_str(s: &str, out: &mut String) {
    for c in s.chars() {
        match c {
            '"' | '\\' => {
                out.push('\\');
                out.push(c);
            }
            ' '..='~' => out.push(c),
            _ => {
                let _ = write!(out, "\\u{:04x}", c as u32 & 0xffff);
            }
        }
    }
}
