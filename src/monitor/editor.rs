//! The monitor's line editor: enough for a serial terminal.

use alloc::string::String;
use alloc::vec::Vec;

/// The longest command line.
pub const LINE_MAX: usize = 120;
/// The prompt.
pub const PROMPT: &[u8] = b"pivisor> ";
/// The console switch's escape key, Ctrl-].
const SWITCH_ESCAPE: u8 = 0x1d;
/// The line being typed.
#[derive(Debug, Default)]
pub struct LineEditor {
    buf: Vec<u8>,
    /// Inside an escape sequence (1, 2: ESC, then `[` and parameters up
    /// to a final byte), or after the console switch's escape key (3).
    esc: u8,
}

impl LineEditor {
    /// Takes one typed byte; what to echo goes to `out`. A finished line
    /// (Enter) is returned, trimmed.
    pub fn key(&mut self, b: u8, out: &mut Vec<u8>) -> Option<String> {
        match (self.esc, b) {
            // Ctrl-] and one key (Ctrl-] m, out of the mux layout's
            // habit, where no switch takes it): the line abandoned, a
            // fresh prompt.
            (0, SWITCH_ESCAPE) => {
                self.esc = 3;
                return None;
            }
            (3, _) => {
                self.esc = 0;
                self.buf.clear();
                out.extend_from_slice(b"\r\n");
                out.extend_from_slice(PROMPT);
                return None;
            }
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
