//! The BCM2711 VideoCore mailbox as a guest sees it: trap-and-emulate with
//! a policy. The guest's mailbox page is never mapped; every access comes
//! here.
//!
//! | offset | register   | emulated as                                     |
//! |--------|------------|-------------------------------------------------|
//! | 0x00   | MAIL0_RD   | pops the oldest response (0 when empty)         |
//! | 0x10   | MAIL0_POL  | the oldest response, not popped                 |
//! | 0x14   | MAIL0_SND  | 0                                               |
//! | 0x18   | MAIL0_STA  | EMPTY (bit 30) / FULL (bit 31), the fill level  |
//! | 0x1c   | MAIL0_CNF  | read-write; bit 0 raises the interrupt while a  |
//! |        |            | response waits (other bits kept, no effect)     |
//! | 0x20   | MAIL1_WRT  | a request: channel in bits 0-3, buffer bus      |
//! |        |            | address above; answered before the write returns|
//! | 0x38   | MAIL1_STA  | always EMPTY: requests are taken at once        |
//! | 0x3c   | MAIL1_CNF  | read-write, no effect                           |
//!
//! Other offsets of the 0x40-byte block read as zero and ignore writes;
//! every register is 32-bit. The request itself (find the buffer, check
//! and copy it, apply the policy, forward) is the [`Requests`] callback's
//! job ([`request::serve`] does it, over the guest's memory); its answer word is queued here
//! and the interrupt line (level) follows "enabled and not empty".

pub mod policy;
pub mod property;
pub mod request;

use crate::devices::bus::{MmioDevice, MmioError};
use alloc::boxed::Box;
use alloc::collections::VecDeque;

/// The mailbox registers' offset in their 4 KiB page (0x7e00b880 on the
/// VideoCore bus).
pub const OFFSET_IN_PAGE: u64 = 0x880;
/// The register block's size.
pub const SIZE: u64 = 0x40;
use crate::board::rpi4::mailbox::{EMPTY, FULL};
/// MAIL0_CNF: interrupt while data is waiting.
pub const CNF_DATA_IRQ: u32 = 1 << 0;
/// Responses that can wait (the hardware FIFO is 8 deep).
pub const DEPTH: usize = 8;

/// Answers a request word (channel | bus address): Some(word) to queue
/// as the response, None when there is none (unknown channel, no buffer).
pub type Requests = Box<dyn FnMut(u32) -> Option<u32> + Send>;
/// Drives the interrupt line.
pub type Line = Box<dyn FnMut(bool) + Send>;

/// The emulated mailbox.
pub struct Mailbox {
    fifo: VecDeque<u32>,
    cnf0: u32,
    cnf1: u32,
    requests: Requests,
    line: Line,
    level: bool,
}

impl Mailbox {
    /// A mailbox answering through `requests`, its interrupt on `line`.
    pub fn new(requests: Requests, line: Line) -> Self {
        Self {
            fifo: VecDeque::new(),
            cnf0: 0,
            cnf1: 0,
            requests,
            line,
            level: false,
        }
    }

    fn update_line(&mut self) {
        let level = self.cnf0 & CNF_DATA_IRQ != 0 && !self.fifo.is_empty();
        if level != self.level {
            self.level = level;
            (self.line)(level);
        }
    }

    fn status0(&self) -> u32 {
        let mut s = self.fifo.len() as u32;
        if self.fifo.is_empty() {
            s |= EMPTY;
        }
        if self.fifo.len() >= DEPTH {
            s |= FULL;
        }
        s
    }
}

impl Mailbox {
    /// Answers waiting for the guest (at most [`DEPTH`]).
    pub fn waiting(&self) -> usize {
        self.fifo.len()
    }
}

impl MmioDevice for Mailbox {
    fn reset(&mut self) {
        self.fifo.clear();
        self.cnf0 = 0;
        self.cnf1 = 0;
        self.level = false;
    }

    fn name(&self) -> &str {
        "mailbox"
    }

    fn read(&mut self, offset: u64, width: u8) -> Result<u64, MmioError> {
        if width != 4 || !offset.is_multiple_of(4) {
            return Err(MmioError::BadWidth);
        }
        let v = match offset {
            0x00 => {
                let v = self.fifo.pop_front().unwrap_or(0);
                self.update_line();
                v
            }
            0x10 => self.fifo.front().copied().unwrap_or(0),
            0x18 => self.status0(),
            0x1c => self.cnf0,
            0x38 => EMPTY,
            0x3c => self.cnf1,
            o if o < SIZE => 0,
            _ => return Err(MmioError::BadOffset),
        };
        Ok(u64::from(v))
    }

    fn write(&mut self, offset: u64, width: u8, value: u64) -> Result<(), MmioError> {
        if width != 4 || !offset.is_multiple_of(4) {
            return Err(MmioError::BadWidth);
        }
        let value = value as u32;
        match offset {
            0x1c => {
                self.cnf0 = value;
                self.update_line();
            }
            0x20 => {
                // A full FIFO drops the answer, as the hardware would
                // stall: a guest that never reads its responses only
                // hurts itself.
                if let Some(resp) = (self.requests)(value) {
                    if self.fifo.len() < DEPTH {
                        self.fifo.push_back(resp);
                    }
                }
                self.update_line();
            }
            0x3c => self.cnf1 = value,
            o if o < SIZE => {}
            _ => return Err(MmioError::BadOffset),
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
