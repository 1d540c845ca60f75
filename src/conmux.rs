//! The console switch for the "mux" layout: the hypervisor keeps the real
//! UART, every VM with an emulated UART writes to it, one VM has the focus.
//!
//! - The focused VM's bytes go out at once, untouched (a shell prompt has
//!   no newline).
//! - Background VMs' bytes are collected into lines of at most
//!   [`LINE_MAX`] bytes, written whole with a `[name] ` prefix, so lines
//!   of different VMs never mix. They are sanitised: a background VM is
//!   not the terminal's, so every control character (C0 but tab, DEL,
//!   C1) and bidirectional-override character is shown escaped, C0 and
//!   DEL in caret notation (ESC is `^[`), the others as `\u{..}`, bytes
//!   that are not UTF-8 as `\xNN`; carriage returns are dropped. So a
//!   background VM cannot move the cursor, hide text, or forge another
//!   VM's line, a hypervisor line or the switch's banner (each of those
//!   starts at a line start that it cannot reach without its prefix).
//! - The focused VM's bytes pass as they are (it is the terminal's:
//!   colours, cursor keys, full-screen programs). Once it has written a
//!   control byte (anything but printable text, CR, LF, tab, backspace
//!   and bell), the next line of anyone else is preceded by
//!   [`REASSERT`]: CAN (abandons an unfinished escape sequence),
//!   attributes off, the ASCII character set. A focus change always sends
//!   [`FOCUS_RESET`] (also the terminal's soft reset: scroll margins,
//!   modes, cursor shown) before the banner, so the banner and the
//!   hypervisor's lines are never hidden or garbled by the previous VM's
//!   settings.
//! - Before anything else is written on a line of its own (a background
//!   line, a hypervisor log line), a focused VM's unfinished line is ended,
//!   so the two never share a line.
//! - Typed bytes go to the focused VM, except for the escape key
//!   (Ctrl-], 0x1d; Ctrl-A is QEMU's own with `-serial mon:stdio`) which
//!   starts a command: a digit focuses that VM, `l` lists the VMs, `m`
//!   opens the hypervisor's monitor ([`crate::monitor`]: typed bytes go
//!   to it, every VM's output is shown as background lines, until a digit
//!   focuses a VM again), Ctrl-] sends a literal Ctrl-], anything else
//!   shows the help.
//!
//! Pure logic: the caller writes the returned bytes and delivers input.

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt::Write;

/// The escape key: Ctrl-].
pub const ESCAPE: u8 = 0x1d;
/// A background line is written when it reaches this many bytes (as
/// received; shown escaped it is at most four times longer).
pub const LINE_MAX: usize = 256;
/// The longest VM name (vm/config.rs).
const NAME_MAX: usize = 15;
/// Before another line, after the focused VM wrote control bytes: CAN,
/// SGR reset, G0 = ASCII, shift in.
pub const REASSERT: &[u8] = b"\x18\x1b[0m\x1b(B\x0f";
/// Before the banner of a focus change: CAN, soft terminal reset
/// (DECSTR), SGR reset, G0 = ASCII, shift in.
pub const FOCUS_RESET: &[u8] = b"\x18\x1b[!p\x1b[0m\x1b(B\x0f";
/// The most a background VM's one byte can make the switch write: a
/// whole line, escaped, with the break, the re-assertion and the prefix.
pub const BACKGROUND_WORST: usize = REASSERT.len() + 2 + NAME_MAX + 3 + 4 * LINE_MAX + 2;

/// What a typed byte means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Input {
    /// Deliver to VM `.0`.
    ToVm(usize, u8),
    /// The monitor was opened (Ctrl-] m): show its prompt.
    MonitorOpened,
    /// A byte for the monitor's line editor.
    ToMonitor(u8),
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
    /// The focused VM wrote control bytes since the last re-assertion.
    dirty: bool,
    escape: bool,
    /// The monitor has the keyboard (no VM is focused).
    monitor: bool,
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
            dirty: false,
            escape: false,
            monitor: false,
        }
    }

    /// The focused VM.
    pub fn focus(&self) -> usize {
        self.focus
    }

    /// Whether the monitor has the keyboard.
    pub fn in_monitor(&self) -> bool {
        self.monitor
    }

    /// Whether VM `vm`'s output passes straight through.
    fn passes(&self, vm: usize) -> bool {
        vm == self.focus && !self.monitor
    }

    /// Ends the focused VM's unfinished line, if any (before a line of
    /// someone else's).
    /// Re-asserts the terminal's state first if the focused VM may have
    /// changed it.
    pub fn break_line(&mut self, out: &mut Vec<u8>) {
        if self.dirty {
            out.extend_from_slice(REASSERT);
            self.dirty = false;
        }
        if !self.at_line_start {
            out.extend_from_slice(b"\r\n");
            self.at_line_start = true;
        }
    }

    /// Notes that a whole line (ending in a newline) was written.
    pub fn wrote_line(&mut self) {
        self.at_line_start = true;
    }

    /// Notes that the monitor wrote `bytes` (a prompt, an echo): a
    /// background line then starts on a line of its own.
    pub fn wrote(&mut self, bytes: &[u8]) {
        if let Some(&l) = bytes.last() {
            self.at_line_start = l == b'\n';
        }
    }

    /// A byte VM `vm` transmitted; what to write to the console goes to
    /// `out`.
    pub fn output(&mut self, vm: usize, b: u8, out: &mut Vec<u8>) {
        if vm >= self.names.len() {
            return;
        }
        if self.passes(vm) {
            out.push(b);
            self.at_line_start = b == b'\n';
            self.dirty |= changes_terminal(b);
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

    /// The most VM `vm`'s next byte can make the switch write (what its
    /// UART asks the output queue for before it takes a byte).
    pub fn worst_next(&self, vm: usize) -> usize {
        if self.passes(vm) {
            1
        } else {
            BACKGROUND_WORST
        }
    }

    fn flush_line(&mut self, vm: usize, out: &mut Vec<u8>) {
        self.break_line(out);
        out.push(b'[');
        out.extend_from_slice(self.names[vm].as_bytes());
        out.extend_from_slice(b"] ");
        sanitise(&self.pending[vm], out);
        self.pending[vm].clear();
        out.extend_from_slice(b"\r\n");
        self.at_line_start = true;
    }

    /// Focuses VM `vm`: its unfinished background line is shown as it is
    /// (a prompt), from then on its output passes straight through.
    pub fn set_focus(&mut self, vm: usize, out: &mut Vec<u8>) -> bool {
        if vm >= self.names.len() {
            return false;
        }
        out.extend_from_slice(FOCUS_RESET);
        self.dirty = false;
        self.break_line(out);
        let _ = write!(
            Bytes(out),
            "[pivisor: console -> VM {vm} '{}'; Ctrl-] l lists the VMs]\r\n",
            self.names[vm]
        );
        self.focus = vm;
        self.monitor = false;
        if !self.pending[vm].is_empty() {
            self.dirty = self.pending[vm].iter().any(|&b| changes_terminal(b));
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
            if self.monitor {
                return Input::ToMonitor(b);
            }
            return Input::ToVm(self.focus, b);
        }
        self.escape = false;
        match b {
            ESCAPE if self.monitor => Input::ToMonitor(ESCAPE),
            ESCAPE => Input::ToVm(self.focus, ESCAPE),
            b'm' | b'M' => {
                if !self.monitor {
                    out.extend_from_slice(FOCUS_RESET);
                    self.dirty = false;
                    self.break_line(out);
                    let _ = write!(
                        Bytes(out),
                        "[pivisor: monitor; help lists its commands, Ctrl-] then a VM number goes back]\r\n"
                    );
                    self.monitor = true;
                }
                Input::MonitorOpened
            }
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
                    "[pivisor: Ctrl-] then 0-{} focuses a VM, l lists them, m opens the monitor, Ctrl-] sends Ctrl-]]\r\n",
                    self.names.len().saturating_sub(1)
                );
                Input::Handled
            }
        }
    }
}

/// Whether a byte from the focused VM may change the terminal's state
/// beyond the current line (anything but printable ASCII, CR, LF, tab,
/// backspace and bell; UTF-8 counts, for its C1 controls).
fn changes_terminal(b: u8) -> bool {
    !matches!(b, 0x20..=0x7e | b'\r' | b'\n' | b'\t' | 0x08 | 0x07)
}

/// Whether a character must be shown escaped in a background line:
/// controls (C0 but tab, DEL, C1) and the bidirectional controls that
/// reorder what follows.
fn must_escape(c: char) -> bool {
    (c.is_control() && c != '\t')
        || matches!(c, '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

/// A background VM's line as it may be shown: see the module's notes.
pub fn sanitise(line: &[u8], out: &mut Vec<u8>) {
    for chunk in line.utf8_chunks() {
        for c in chunk.valid().chars() {
            if !must_escape(c) {
                let mut b = [0; 4];
                out.extend_from_slice(c.encode_utf8(&mut b).as_bytes());
            } else if (c as u32) < 0x20 || c == '\x7f' {
                out.extend_from_slice(&[b'^', (c as u8) ^ 0x40]);
            } else {
                let _ = write!(Bytes(out), "\\u{{{:x}}}", c as u32);
            }
        }
        for &b in chunk.invalid() {
            let _ = write!(Bytes(out), "\\x{b:02x}");
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
    fn the_monitor_takes_the_keyboard_until_a_vm_is_focused_again() {
        let mut m = mux();
        let mut out = Vec::new();
        assert_eq!(m.input(ESCAPE, &mut out), Input::Handled);
        assert_eq!(m.input(b'm', &mut out), Input::MonitorOpened);
        assert!(m.in_monitor());
        assert!(std::string::String::from_utf8_lossy(&out).contains("monitor"));
        assert_eq!(m.input(b'l', &mut out), Input::ToMonitor(b'l'));
        // Ctrl-] Ctrl-] reaches the monitor (which ignores it), not a VM.
        m.input(ESCAPE, &mut out);
        assert_eq!(m.input(ESCAPE, &mut out), Input::ToMonitor(ESCAPE));
        // Every VM is background meanwhile, the focused one too.
        assert_eq!(feed(&mut m, 0, b"# "), b"");
        assert_eq!(m.worst_next(0), BACKGROUND_WORST);
        let shown = feed(&mut m, 0, b"\n");
        assert!(shown.ends_with(b"[linux] # \r\n"));
        // Ctrl-] 1 goes back to a VM.
        out.clear();
        m.input(ESCAPE, &mut out);
        assert_eq!(m.input(b'1', &mut out), Input::Handled);
        assert!(!m.in_monitor());
        assert_eq!(m.input(b'x', &mut out), Input::ToVm(1, b'x'));
        assert_eq!(feed(&mut m, 1, b"$ "), b"$ ");
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

    fn text(b: &[u8]) -> std::string::String {
        std::string::String::from_utf8_lossy(b).into_owned()
    }

    #[test]
    fn a_background_vm_cannot_move_hide_or_forge() {
        let mut m = mux();
        // Hide what follows, clear the screen, move the cursor, overwrite
        // its own prefix with a carriage return and backspaces, and forge
        // the switch's banner and a hypervisor line.
        let attack = b"\x1b[8mhidden\x1b[2J\x1b[H\r\x08\x08[pivisor: console -> VM 0 'linux']\x9b\xc2\x9b\xe2\x80\xae\x07\n";
        let out = text(&feed(&mut m, 1, attack));
        assert_eq!(
            out,
            "[rtos] ^[[8mhidden^[[2J^[[H^H^H[pivisor: console -> VM 0 'linux']\\x9b\\u{9b}\\u{202e}^G\r\n"
        );
        // Nothing in it reaches the terminal as a control but the line end.
        let body = &out[..out.len() - 2];
        assert!(!body.bytes().any(|b| b < 0x20 || b == 0x7f), "{body:?}");
        // Multi-byte text passes; tab too.
        assert_eq!(
            text(&feed(&mut m, 1, "gr\u{fc}\u{df}e\tok\n".as_bytes())),
            "[rtos] gr\u{fc}\u{df}e\tok\r\n"
        );
    }

    #[test]
    fn a_background_line_never_exceeds_its_worst_case() {
        let mut m = Mux::new(vec!["a".repeat(NAME_MAX), "b".to_string()]);
        m.set_focus(1, &mut Vec::new());
        // The focused VM leaves the terminal dirty and mid-line.
        feed(&mut m, 1, b"\x1b[1m$ ");
        assert_eq!(m.worst_next(1), 1);
        let mut out = Vec::new();
        for _ in 0..LINE_MAX {
            m.output(0, 0x80, &mut out);
        }
        assert!(out.is_empty());
        m.output(0, b'\n', &mut out);
        assert_eq!(out.len(), BACKGROUND_WORST, "{}", text(&out));
        assert!(out.len() <= m.worst_next(0));
    }

    #[test]
    fn after_the_focused_vm_used_escapes_other_lines_reassert_the_terminal() {
        let mut m = mux();
        // Plain text, backspaces and bells change nothing.
        feed(&mut m, 0, b"ok\x08\x07\r\n");
        assert_eq!(feed(&mut m, 1, b"a\n"), b"[rtos] a\r\n");
        // Hidden text, then a half-written escape sequence.
        feed(&mut m, 0, b"\x1b[8msecret\x1b[");
        let out = feed(&mut m, 1, b"b\n");
        let mut want = REASSERT.to_vec();
        want.extend_from_slice(b"\r\n[rtos] b\r\n");
        assert_eq!(out, want);
        // Once: the next line needs nothing.
        assert_eq!(feed(&mut m, 1, b"c\n"), b"[rtos] c\r\n");
        // Hypervisor lines (break_line) get it too.
        feed(&mut m, 0, b"\x1b(0");
        let mut out = Vec::new();
        m.break_line(&mut out);
        assert!(out.starts_with(REASSERT));
    }

    #[test]
    fn a_focus_change_resets_the_terminal_before_its_banner() {
        let mut m = mux();
        feed(&mut m, 0, b"\x1b[?25l\x1b[5;10r");
        let mut out = Vec::new();
        m.input(ESCAPE, &mut out);
        m.input(b'1', &mut out);
        assert!(out.starts_with(FOCUS_RESET), "{}", text(&out));
        let s = text(&out);
        assert!(s.contains("[pivisor: console -> VM 1 'rtos'"));
        // The banner comes after the reset and a line break, never inside
        // an escape sequence.
        assert!(s.find("[pivisor").unwrap() > FOCUS_RESET.len());
    }
}
