//! The console switch for the "mux" layout: the hypervisor keeps the real
//! UART, every VM with an emulated UART writes to it, one VM has the focus.
//!
//! - The focused VM's bytes go out at once, untouched (a shell prompt has
//!   no newline).
//! - Background VMs' bytes are collected into lines, written whole with a
//!   `[name] ` prefix, so lines of different VMs never mix.
//! - Before anything else is written on a line of its own (a background
//!   line, a hypervisor log line), a focused VM's unfinished line is ended,
//!   so the two never share a line.
//! - Typed bytes go to the focused VM, except for the escape key
//!   (Ctrl-], 0x1d; Ctrl-A is QEMU's own with `-serial mon:stdio`) which
//!   starts a command: a digit focuses that VM, `l` lists the VMs, Ctrl-]
//!   sends a literal Ctrl-], anything else shows the help.
//!
//! Pure logic: the caller writes the returned bytes and delivers input.

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt::Write;

/// The escape key: Ctrl-].
pub const ESCAPE: u8 = 0x1d;
/// A background line is written when it reaches this length.
pub const LINE_MAX: usize = 1024;

/// What a typed byte means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Input {
    /// Deliver to VM `.0`.
    ToVm(usize, u8),
    /// Nothing to deliver (escape pending, or a command was handled and
    /// its text returned).
    Handled,
}

/// The switch.
pub struct Mux {
    names: Vec<String>,
    pending: Vec<Vec<u8>>,
    focus: usize,
    /// The console's cursor is at the start of a line.
    at_line_start: bool,
    escape: bool,
}

impl Mux {
    /// A switch for VMs named `names` (index order); VM 0 has the focus.
    pub fn new(names: Vec<String>) -> Self {
        let n = names.len();
        Self {
            names,
            pending: (0..n).map(|_| Vec::new()).collect(),
            focus: 0,
            at_line_start: true,
            escape: false,
        }
    }

    /// The focused VM.
    pub fn focus(&self) -> usize {
        self.focus
    }

    /// Ends the focused VM's unfinished line, if any (before a line of
    /// someone else's).
    pub fn break_line(&mut self, out: &mut Vec<u8>) {
        if !self.at_line_start {
            out.extend_from_slice(b"\r\n");
            self.at_line_start = true;
        }
    }

    /// Notes that a whole line (ending in a newline) was written.
    pub fn wrote_line(&mut self) {
        self.at_line_start = true;
    }

    /// A byte VM `vm` transmitted; what to write to the console goes to
    /// `out`.
    pub fn output(&mut self, vm: usize, b: u8, out: &mut Vec<u8>) {
        if vm >= self.names.len() {
            return;
        }
        if vm == self.focus {
            out.push(b);
            self.at_line_start = b == b'\n';
            return;
        }
        if b == b'\n' || self.pending[vm].len() >= LINE_MAX {
            self.flush_line(vm, out);
            if b == b'\n' {
                return;
            }
        }
        if b != b'\r' {
            self.pending[vm].push(b);
        }
    }

    fn flush_line(&mut self, vm: usize, out: &mut Vec<u8>) {
        self.break_line(out);
        out.push(b'[');
        out.extend_from_slice(self.names[vm].as_bytes());
        out.extend_from_slice(b"] ");
        out.append(&mut self.pending[vm]);
        out.extend_from_slice(b"\r\n");
        self.at_line_start = true;
    }

    /// Focuses VM `vm`: its unfinished background line is shown as it is
    /// (a prompt), from then on its output passes straight through.
    pub fn set_focus(&mut self, vm: usize, out: &mut Vec<u8>) -> bool {
        if vm >= self.names.len() {
            return false;
        }
        self.break_line(out);
        let _ = write!(
            Bytes(out),
            "[pivisor: console -> VM {vm} '{}'; Ctrl-] l lists the VMs]\r\n",
            self.names[vm]
        );
        self.focus = vm;
        if !self.pending[vm].is_empty() {
            out.append(&mut self.pending[vm]);
            self.at_line_start = false;
        }
        true
    }

    /// A byte typed on the console; command output goes to `out`.
    pub fn input(&mut self, b: u8, out: &mut Vec<u8>) -> Input {
        if !self.escape {
            if b == ESCAPE {
                self.escape = true;
                return Input::Handled;
            }
            return Input::ToVm(self.focus, b);
        }
        self.escape = false;
        match b {
            ESCAPE => Input::ToVm(self.focus, ESCAPE),
            b'0'..=b'9' if ((b - b'0') as usize) < self.names.len() => {
                self.set_focus((b - b'0') as usize, out);
                Input::Handled
            }
            b'l' | b'L' => {
                self.break_line(out);
                for (i, n) in self.names.iter().enumerate() {
                    let mark = if i == self.focus { " (focus)" } else { "" };
                    let _ = write!(Bytes(out), "[pivisor: VM {i} '{n}'{mark}]\r\n");
                }
                Input::Handled
            }
            _ => {
                self.break_line(out);
                let _ = write!(
                    Bytes(out),
                    "[pivisor: Ctrl-] then 0-{} focuses a VM, l lists them, Ctrl-] sends Ctrl-]]\r\n",
                    self.names.len().saturating_sub(1)
                );
                Input::Handled
            }
        }
    }
}

struct Bytes<'a>(&'a mut Vec<u8>);

impl Write for Bytes<'_> {
    fn write_str(&mut self, s: &str) -> core::fmt::Result {
        self.0.extend_from_slice(s.as_bytes());
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::string::ToString;
    use std::vec;

    fn mux() -> Mux {
        Mux::new(vec!["linux".to_string(), "rtos".to_string()])
    }

    fn feed(m: &mut Mux, vm: usize, s: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        for &b in s {
            m.output(vm, b, &mut out);
        }
        out
    }

    #[test]
    fn focused_output_passes_at_once_background_is_prefixed_by_line() {
        let mut m = mux();
        assert_eq!(
            feed(&mut m, 0, b"# "),
            b"# ",
            "a prompt shows without a newline"
        );
        // A background line ends the prompt's line first, then comes whole.
        assert_eq!(feed(&mut m, 1, b"tick"), b"");
        assert_eq!(feed(&mut m, 1, b" 1\r\n"), b"\r\n[rtos] tick 1\r\n");
        assert_eq!(feed(&mut m, 0, b"ls\r\n"), b"ls\r\n");
        assert_eq!(
            feed(&mut m, 1, b"x\n"),
            b"[rtos] x\r\n",
            "no extra break at a line start"
        );
        assert_eq!(feed(&mut m, 7, b"nobody\n"), b"", "unknown VM ignored");
    }

    #[test]
    fn long_background_lines_are_cut() {
        let mut m = mux();
        let long = vec![b'a'; LINE_MAX + 5];
        let out = feed(&mut m, 1, &long);
        assert_eq!(out.len(), "[rtos] ".len() + LINE_MAX + 2);
        let out = feed(&mut m, 1, b"\n");
        assert_eq!(out, b"[rtos] aaaaa\r\n");
    }

    #[test]
    fn hypervisor_lines_never_share_a_line_with_a_guest() {
        let mut m = mux();
        feed(&mut m, 0, b"login: ");
        let mut out = Vec::new();
        m.break_line(&mut out);
        assert_eq!(out, b"\r\n");
        m.wrote_line();
        out.clear();
        m.break_line(&mut out);
        assert!(out.is_empty());
    }

    #[test]
    fn escape_switches_focus_lists_and_passes_a_literal() {
        let mut m = mux();
        let mut out = Vec::new();
        assert_eq!(m.input(b'a', &mut out), Input::ToVm(0, b'a'));
        assert_eq!(
            m.input(3, &mut out),
            Input::ToVm(0, 3),
            "Ctrl-C goes to the guest"
        );
        feed(&mut m, 1, b"$ ");
        assert_eq!(m.input(ESCAPE, &mut out), Input::Handled);
        assert_eq!(m.input(b'1', &mut out), Input::Handled);
        assert_eq!(m.focus(), 1);
        let s = std::string::String::from_utf8(out.clone()).unwrap();
        assert!(
            s.ends_with("'rtos'; Ctrl-] l lists the VMs]\r\n$ "),
            "{s:?}"
        );
        assert_eq!(m.input(b'x', &mut out), Input::ToVm(1, b'x'));
        // Now VM 0 is in the background.
        assert_eq!(feed(&mut m, 0, b"hi\n"), b"\r\n[linux] hi\r\n");
        out.clear();
        m.input(ESCAPE, &mut out);
        assert_eq!(m.input(ESCAPE, &mut out), Input::ToVm(1, ESCAPE));
        m.input(ESCAPE, &mut out);
        m.input(b'l', &mut out);
        let s = std::string::String::from_utf8(out.clone()).unwrap();
        assert!(
            s.contains("VM 0 'linux']") && s.contains("VM 1 'rtos' (focus)]"),
            "{s}"
        );
        out.clear();
        m.input(ESCAPE, &mut out);
        assert_eq!(m.input(b'9', &mut out), Input::Handled, "no VM 9: help");
        assert_eq!(m.focus(), 1);
        assert!(std::string::String::from_utf8(out)
            .unwrap()
            .contains("0-1 focuses"));
        assert!(!m.set_focus(2, &mut Vec::new()));
    }
}
