//! A simulated SDHCI controller with an SD card behind it, for the
//! driver's host tests: the registers the driver uses, 32-bit accesses
//! only (a narrower or misaligned one fails the test), the card's state
//! machine for the commands of SD initialisation and data transfer, PIO
//! through the buffer port, and injected faults.

use super::{int, reg, Clock, Regs};
use std::vec;
use std::vec::Vec;

/// What sits in the slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Nothing: every command with a response times out.
    Empty,
    /// A standard-capacity card (byte addresses; CSD 1.0).
    Sdsc,
    /// A high-capacity card (block addresses; CSD 2.0).
    Sdhc,
    /// A version 1.x card (no CMD8; standard capacity).
    V1,
    /// An SDIO-only device (a Wi-Fi chip): answers CMD5 alone.
    Sdio,
}

/// Injected faults.
#[derive(Debug, Clone, Copy, Default)]
pub struct Faults {
    /// A data CRC error when this block is read.
    pub read_crc_at: Option<u64>,
    /// ACMD41 keeps reporting busy.
    pub never_ready: bool,
    /// The buffer never becomes ready (a stuck transfer).
    pub stuck_data: bool,
}

pub struct Sim {
    pub kind: Kind,
    pub image: Vec<u8>,
    pub faults: Faults,
    // Registers.
    arg: u32,
    block: u32,
    host: u32,
    clock: u32,
    int: u32,
    int_enable: u32,
    resp: [u32; 4],
    // Card.
    app: bool,
    rca: u16,
    selected: bool,
    acmd41_polls: u32,
    pub bus_width_4: bool,
    pub block_len_set: bool,
    // Data phase.
    read: bool,
    blocks_left: u32,
    addr_block: u64,
    buf: Vec<u8>,
    word: usize,
    /// Commands seen, by index.
    pub commands: Vec<u8>,
    /// Blocks read and written by the card.
    pub blocks_read: u64,
    pub blocks_written: u64,
}

impl Sim {
    pub fn new(kind: Kind, size: usize) -> Self {
        Self {
            kind,
            image: (0..size).map(|i| (i as u8) ^ ((i >> 9) as u8)).collect(),
            faults: Faults::default(),
            arg: 0,
            block: 0,
            host: 0,
            clock: 0,
            int: 0,
            int_enable: 0,
            resp: [0; 4],
            app: false,
            rca: 0,
            selected: false,
            acmd41_polls: 0,
            bus_width_4: false,
            block_len_set: false,
            read: false,
            blocks_left: 0,
            addr_block: 0,
            buf: Vec::new(),
            word: 0,
            commands: Vec::new(),
            blocks_read: 0,
            blocks_written: 0,
        }
    }

    fn high_capacity(&self) -> bool {
        self.kind == Kind::Sdhc
    }

    fn sectors(&self) -> u64 {
        self.image.len() as u64 / 512
    }

    fn raise(&mut self, bits: u32) {
        self.int |= bits & (self.int_enable | int::ERROR);
        if bits & !0xffff != 0 {
            self.int |= int::ERROR | (bits & self.int_enable & !0xffff);
        }
    }

    fn timeout(&mut self) {
        self.raise(int::CMD_TIMEOUT);
    }

    fn csd(&self) -> u128 {
        if self.high_capacity() {
            let c_size = (self.sectors() / 1024).saturating_sub(1) as u128;
            1u128 << 126 | c_size << 48
        } else {
            // READ_BL_LEN 9, C_SIZE_MULT 7: (C_SIZE+1) * 512 blocks.
            let c_size = (self.sectors() / 512).saturating_sub(1) as u128;
            c_size << 62 | 7u128 << 47 | 9u128 << 80
        }
    }

    fn r1(&mut self, state: u32) {
        self.resp[0] = state << 9 | 1 << 8 | if self.app { 1 << 5 } else { 0 };
    }

    fn command(&mut self, w: u32) {
        let index = ((w >> 24) & 0x3f) as u8;
        let mode = w & 0xffff;
        self.commands.push(index);
        let app = core::mem::take(&mut self.app);
        let answers = match self.kind {
            Kind::Empty => false,
            Kind::Sdio => index == 5 || index == 0,
            _ => true,
        };
        if !answers {
            // CMD0 has no response: complete once sent, card or not.
            if index == 0 {
                self.raise(int::CMD_DONE);
            } else {
                self.timeout();
            }
            return;
        }
        let (rtype, data) = ((w >> 16) & 3, (w >> 21) & 1 != 0);
        match (app, index) {
            (_, 0) => {
                self.selected = false;
                self.rca = 0;
            }
            (false, 8) => {
                if self.kind == Kind::V1 {
                    return self.timeout();
                }
                self.resp[0] = self.arg & 0xfff;
            }
            (_, 55) => {
                self.app = true;
                self.r1(if self.selected { 4 } else { 1 });
            }
            (true, 41) => {
                self.acmd41_polls += 1;
                let ready = self.acmd41_polls >= 3 && !self.faults.never_ready;
                let ccs = self.high_capacity() && self.arg & (1 << 30) != 0;
                self.resp[0] = 0x00ff_8000 | u32::from(ready) << 31 | u32::from(ccs) << 30;
            }
            (false, 2) => self.resp = [1, 2, 3, 4],
            (false, 3) => {
                self.rca = 0xb368;
                self.resp[0] = u32::from(self.rca) << 16 | 0x0500;
            }
            (false, 9) => {
                let c = self.csd() >> 8;
                self.resp = [
                    c as u32,
                    (c >> 32) as u32,
                    (c >> 64) as u32,
                    (c >> 96) as u32,
                ];
            }
            (false, 7) => {
                self.selected = self.arg >> 16 == u32::from(self.rca);
                self.r1(3);
                self.raise(int::XFER_DONE);
            }
            (true, 6) => {
                self.bus_width_4 = self.arg == 2;
                self.r1(4);
            }
            (false, 16) => {
                self.block_len_set = self.arg == 512;
                self.r1(4);
            }
            (false, 13) => self.r1(4),
            (false, 12) => {
                self.blocks_left = 0;
                self.r1(5);
                self.raise(int::XFER_DONE);
            }
            (false, 17 | 18 | 24 | 25) => {
                assert!(data && rtype == 2, "CMD{index} with data and R1");
                let block = if self.high_capacity() {
                    u64::from(self.arg)
                } else {
                    assert_eq!(self.arg % 512, 0, "byte address not a whole block");
                    u64::from(self.arg) / 512
                };
                let multi = index == 18 || index == 25;
                let count = if multi { self.block >> 16 } else { 1 };
                assert_eq!(self.block & 0xfff, 512, "block size");
                if multi {
                    assert_eq!(mode & 0b100110, 0b100110, "block count, auto CMD12, multi");
                }
                assert_eq!(mode & (1 << 4) != 0, index < 24, "direction");
                if block + u64::from(count) > self.sectors() {
                    self.r1(4);
                    self.resp[0] |= 1 << 31; // OUT_OF_RANGE
                    self.raise(int::CMD_DONE);
                    return;
                }
                self.read = index < 24;
                self.blocks_left = count;
                self.addr_block = block;
                self.r1(4);
                self.raise(int::CMD_DONE);
                self.next_block();
                return;
            }
            _ => {
                // Unknown here: no response, as a card would time out.
                return self.timeout();
            }
        }
        self.raise(int::CMD_DONE);
    }

    fn next_block(&mut self) {
        if self.blocks_left == 0 {
            self.raise(int::XFER_DONE);
            return;
        }
        if self.faults.stuck_data {
            return;
        }
        self.word = 0;
        if self.read {
            if self.faults.read_crc_at == Some(self.addr_block) {
                self.raise(1 << 21);
                return;
            }
            let o = (self.addr_block * 512) as usize;
            self.buf = self.image[o..o + 512].to_vec();
            self.raise(int::READ_READY);
        } else {
            self.buf = vec![0; 512];
            self.raise(int::WRITE_READY);
        }
    }

    fn data_read(&mut self) -> u32 {
        if !self.read || self.buf.is_empty() || self.word >= 128 {
            return 0;
        }
        let i = self.word * 4;
        self.word += 1;
        let v = u32::from_le_bytes(self.buf[i..i + 4].try_into().unwrap());
        if self.word == 128 {
            self.blocks_read += 1;
            self.blocks_left -= 1;
            self.addr_block += 1;
            self.buf.clear();
            self.next_block();
        }
        v
    }

    fn data_write(&mut self, v: u32) {
        if self.read || self.buf.is_empty() || self.word >= 128 {
            return;
        }
        let i = self.word * 4;
        self.buf[i..i + 4].copy_from_slice(&v.to_le_bytes());
        self.word += 1;
        if self.word == 128 {
            let o = (self.addr_block * 512) as usize;
            self.image[o..o + 512].copy_from_slice(&self.buf);
            self.blocks_written += 1;
            self.blocks_left -= 1;
            self.addr_block += 1;
            self.buf.clear();
            self.next_block();
        }
    }
}

impl Regs for Sim {
    fn read(&mut self, off: usize) -> u32 {
        assert_eq!(off % 4, 0, "a misaligned read at {off:#x}");
        match off {
            reg::RESP => self.resp[0],
            0x14 => self.resp[1],
            0x18 => self.resp[2],
            0x1c => self.resp[3],
            reg::DATA => self.data_read(),
            reg::STATE => {
                let busy = self.blocks_left > 0;
                u32::from(busy) << 1
            }
            reg::HOST => self.host,
            reg::CLOCK => {
                // Internal clock stable as soon as it is on; resets
                // complete at once.
                let stable = if self.clock & 1 != 0 { 2 } else { 0 };
                (self.clock & 0x00ff_fffd) | stable
            }
            reg::INT => self.int,
            reg::INT_ENABLE => self.int_enable,
            reg::VERSION => 0x0002_0000,
            reg::BLOCK => self.block,
            reg::ARG => self.arg,
            _ => 0,
        }
    }

    fn write(&mut self, off: usize, v: u32) {
        assert_eq!(off % 4, 0, "a misaligned write at {off:#x}");
        match off {
            reg::ARG => self.arg = v,
            reg::BLOCK => self.block = v,
            reg::CMD => self.command(v),
            reg::DATA => self.data_write(v),
            reg::HOST => self.host = v,
            reg::CLOCK => {
                if v & (1 << 24) != 0 {
                    // Reset all: the controller forgets everything (the
                    // card, a separate device, is reset by CMD0 after).
                    *self = Sim {
                        image: core::mem::take(&mut self.image),
                        commands: core::mem::take(&mut self.commands),
                        faults: self.faults,
                        blocks_read: self.blocks_read,
                        blocks_written: self.blocks_written,
                        ..Sim::new(self.kind, 0)
                    };
                    return;
                }
                if v & (3 << 25) != 0 {
                    self.blocks_left = 0;
                    self.buf.clear();
                }
                self.clock = v & 0x00ff_ffff;
            }
            reg::INT => {
                self.int &= !v;
                if self.int & 0xffff_0000 == 0 {
                    self.int &= !int::ERROR;
                }
            }
            reg::INT_ENABLE => self.int_enable = v,
            _ => {}
        }
    }
}

/// Virtual time: every reading moves it on by `step` microseconds.
pub struct SimClock {
    pub now: u64,
    pub step: u64,
}

impl Clock for SimClock {
    fn now_us(&mut self) -> u64 {
        self.now += self.step;
        self.now
    }
    fn delay_us(&mut self, us: u64) {
        self.now += us;
    }
}
