//! The hypervisor's monitor on its console (Ctrl-] m): a line editor
//! for a serial terminal, the command language, and the text it answers
//! with. Pure: the console glue (`vmm::monitor`) feeds typed bytes in,
//! gathers each VM's figures and writes what comes out.
//!
//! Commands (a VM is named by its name or its index):
//!
//! | command | answer |
//! |---------|--------|
//! | `help` | the commands |
//! | `list` | each VM: state, cores, memory, uptime, restarts, last end |
//! | `stats [VM] [--json]` | exits by kind and per second since the last `stats`, refusals, device counters; `--json`: one `MONITOR {...}` line per VM |
//! | `log [N]` | the last N (default 20) lines of the hypervisor's log |
//! | `info` | version, board, RAM, console layout, which VM owns which device |
//! | `stop VM` | its cores leave the guest and sleep, its devices quiesced |
//! | `start VM` | a halted VM booted again from its images, RAM scrubbed |
//! | `restart VM` | a running VM reloaded and booted again, whatever its policy |
//! | `reset VM` | what the VM's own SYSTEM_RESET does (its restart policy decides) |
//!
//! Line editing: printable ASCII is echoed and kept (at most
//! [`LINE_MAX`] bytes), Backspace or DEL erases a character, Ctrl-U the
//! line, Ctrl-C abandons it, Enter runs it; escape sequences (arrow keys)
//! and other control bytes are ignored.

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt::Write;

/// The longest command line.
pub const LINE_MAX: usize = 120;
/// The prompt.
pub const PROMPT: &[u8] = b"pivisor> ";
/// `log` without N: lines shown.
pub const LOG_DEFAULT: usize = 20;
/// `log N`: at most.
pub const LOG_MAX: usize = 1000;

/// The line being typed.
#[derive(Debug, Default)]
pub struct LineEditor {
    buf: Vec<u8>,
    /// Inside an escape sequence (ESC, then `[` and parameters up to a
    /// final byte).
    esc: u8,
}

impl LineEditor {
    /// Takes one typed byte; what to echo goes to `out`. A finished line
    /// (Enter) is returned, trimmed.
    pub fn key(&mut self, b: u8, out: &mut Vec<u8>) -> Option<String> {
        match (self.esc, b) {
            (0, 0x1b) => {
                self.esc = 1;
                return None;
            }
            (1, b'[' | b'O') => {
                self.esc = 2;
                return None;
            }
            (1, _) => {
                self.esc = 0;
                return None;
            }
            (2, 0x40..=0x7e) => {
                self.esc = 0;
                return None;
            }
            (2, _) => return None,
            _ => {}
        }
        match b {
            b'\r' | b'\n' => {
                out.extend_from_slice(b"\r\n");
                let line = String::from_utf8_lossy(&self.buf).trim().into();
                self.buf.clear();
                Some(line)
            }
            0x08 | 0x7f => {
                if self.buf.pop().is_some() {
                    out.extend_from_slice(b"\x08 \x08");
                }
                None
            }
            0x15 => {
                for _ in 0..self.buf.len() {
                    out.extend_from_slice(b"\x08 \x08");
                }
                self.buf.clear();
                None
            }
            0x03 => {
                self.buf.clear();
                out.extend_from_slice(b"^C\r\n");
                out.extend_from_slice(PROMPT);
                None
            }
            0x20..=0x7e if self.buf.len() < LINE_MAX => {
                self.buf.push(b);
                out.push(b);
                None
            }
            _ => None,
        }
    }

    /// Forgets a half-typed line (the monitor was left).
    pub fn clear(&mut self) {
        self.buf.clear();
        self.esc = 0;
    }
}

/// A parsed command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// An empty line.
    Nothing,
    /// `help`.
    Help,
    /// `list`.
    List,
    /// `stats [VM] [--json]`.
    Stats {
        /// One VM, or all.
        vm: Option<usize>,
        /// One `MONITOR {...}` line per VM.
        json: bool,
    },
    /// `log [N]`.
    Log(usize),
    /// `info`.
    Info,
    /// `stop VM`, `start VM`, `restart VM`, `reset VM`.
    Life(Life, usize),
}

/// A change of a VM's state the monitor asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Life {
    /// Halt it.
    Stop,
    /// Boot a halted VM.
    Start,
    /// Reload and boot a running VM.
    Restart,
    /// SYSTEM_RESET on its behalf.
    Reset,
}

impl Life {
    /// The command's word.
    pub fn word(self) -> &'static str {
        match self {
            Life::Stop => "stop",
            Life::Start => "start",
            Life::Restart => "restart",
            Life::Reset => "reset",
        }
    }
}

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

/// Why `what` cannot be done to VM `name` in state `st` (None: it can).
pub fn refusal(what: Life, name: &str, st: State) -> Option<String> {
    let why = match (what, st) {
        (_, State::Restarting) => "it is restarting; try again in a moment",
        (Life::Stop, State::Halted) => "it is already halted",
        (Life::Start, State::Running) => "it is running (restart reloads it)",
        (Life::Restart | Life::Reset, State::Halted) => "it is halted (start boots it)",
        _ => return None,
    };
    Some(alloc::format!("cannot {} VM '{name}': {why}", what.word()))
}

/// The help text.
pub const HELP: &str = "commands:\r\n\
  list                  each VM: state, cores, memory, uptime, restarts, last end\r\n\
  stats [VM] [--json]   exits, per second since the last stats, refusals, devices\r\n\
  log [N]               the hypervisor's last N log lines (default 20)\r\n\
  info                  version, board, RAM, console layout, devices\r\n\
  stop VM               halt it: its cores sleep, its devices stop\r\n\
  start VM              boot a halted VM again (RAM scrubbed)\r\n\
  restart VM            reload and boot a running VM\r\n\
  reset VM              what its SYSTEM_RESET does (its policy decides)\r\n\
  help                  this text\r\n\
Ctrl-] then a VM's number goes back to that VM.\r\n";

/// Which VM `word` names (its name or its index), among `names`.
pub fn find_vm(word: &str, names: &[&str]) -> Result<usize, String> {
    if let Some(i) = names.iter().position(|n| *n == word) {
        return Ok(i);
    }
    match word.parse::<usize>() {
        Ok(i) if i < names.len() => Ok(i),
        _ => Err(alloc::format!(
            "no VM '{word}' (list shows them: {})",
            names.join(", ")
        )),
    }
}

/// Parses a command line.
pub fn parse(line: &str, names: &[&str]) -> Result<Command, String> {
    let mut words = line.split_whitespace();
    let Some(cmd) = words.next() else {
        return Ok(Command::Nothing);
    };
    let rest: Vec<&str> = words.collect();
    let none = |c: Command| {
        if rest.is_empty() {
            Ok(c)
        } else {
            Err(alloc::format!("{cmd} takes no argument"))
        }
    };
    match cmd {
        "help" | "?" => none(Command::Help),
        "list" | "ls" => none(Command::List),
        "info" => none(Command::Info),
        "stats" => {
            let mut vm = None;
            let mut json = false;
            for w in rest {
                if w == "--json" {
                    json = true;
                } else if vm.is_none() {
                    vm = Some(find_vm(w, names)?);
                } else {
                    return Err("stats takes one VM at most".into());
                }
            }
            Ok(Command::Stats { vm, json })
        }
        "stop" | "start" | "restart" | "reset" => {
            let life = match cmd {
                "stop" => Life::Stop,
                "start" => Life::Start,
                "restart" => Life::Restart,
                _ => Life::Reset,
            };
            match rest.as_slice() {
                [vm] => Ok(Command::Life(life, find_vm(vm, names)?)),
                _ => Err(alloc::format!("{cmd} takes one VM")),
            }
        }
        "log" => match rest.as_slice() {
            [] => Ok(Command::Log(LOG_DEFAULT)),
            [n] => match n.parse::<usize>() {
                Ok(n) if (1..=LOG_MAX).contains(&n) => Ok(Command::Log(n)),
                _ => Err(alloc::format!(
                    "log N: N is a number of lines, 1 to {LOG_MAX}"
                )),
            },
            _ => Err("log takes one number at most".into()),
        },
        _ => Err(alloc::format!(
            "unknown command '{cmd}' (help lists the commands)"
        )),
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

fn uptime(ms: u64) -> String {
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

#[cfg(test)]
#[path = "monitor_tests.rs"]
mod tests;
