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
//! | `start VM` | a halted VM booted again from its images, RAM scrubbed, its restart policy counting afresh |
//! | `restart VM` | a running VM reloaded and booted again, whatever its policy |
//! | `reset VM` | what the VM's own SYSTEM_RESET does (its restart policy decides) |
//!
//! Line editing: printable ASCII is echoed and kept (at most
//! [`LINE_MAX`] bytes), Backspace or DEL erases a character, Ctrl-U the
//! line, Ctrl-C abandons it, Enter runs it; escape sequences (arrow keys)
//! and other control bytes are ignored.

mod editor;
mod show;

pub use editor::{LineEditor, LINE_MAX, PROMPT};
pub use show::{list, stats, stats_json, uptime, Figures, State, VmRow};

use alloc::string::String;
use alloc::vec::Vec;

/// `log` without N: lines shown.
pub const LOG_DEFAULT: usize = 20;
/// `log N`: at most.
pub const LOG_MAX: usize = 1000;

/// The console the monitor is on (its `info` says which).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    /// The hypervisor's PL011, switched between the VMs' emulated UARTs
    /// (Ctrl-] m opens the monitor, Ctrl-] and a digit leaves it).
    Mux,
    /// A VM owns the PL011; the hypervisor's console is the mini UART,
    /// all of whose input is the monitor's.
    MiniUart,
    /// The hypervisor's PL011 and no VM with a UART: all of its input is
    /// the monitor's.
    Pl011,
}

impl Layout {
    /// How `info` describes it.
    pub fn describe(self) -> &'static str {
        match self {
            Layout::Mux => "the hypervisor's PL011, switched between the VMs' emulated UARTs (mux)",
            Layout::MiniUart => {
                "a VM owns the PL011; the hypervisor's log and this monitor are on the mini UART"
            }
            Layout::Pl011 => {
                "the hypervisor's PL011; no VM has a UART, so what is typed is the monitor's"
            }
        }
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

#[cfg(test)]
#[path = "tests.rs"]
mod tests;
