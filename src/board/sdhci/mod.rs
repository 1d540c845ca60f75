//! The SD host driver: an SD memory card behind an SDHCI-style controller
//! (SD Host Controller Simplified Specification 3.00), the BCM2711's EMMC2
//! (the Pi 4's card slot) or its Arasan (QEMU raspi4b's card; the Wi-Fi
//! chip's SDIO on a Pi 4).
//!
//! All of the logic runs over two small traits, [`Regs`] (32-bit register
//! reads and writes) and [`Clock`] (microseconds), so it is host-tested
//! against a simulated controller and card (`sim.rs`); only [`Mmio32`]
//! touches hardware. What the silicon asks of it (docs/hardware.md):
//!
//! - 32-bit accesses only (both BCM2711 controllers lose narrower ones):
//!   BLOCK_SIZE with BLOCK_COUNT, and TRANSFER_MODE with COMMAND, are
//!   written as one word each (the command goes out with the word), the
//!   8- and 16-bit control registers read-modified-written as words;
//! - after every write, a pause of two SD clock cycles (the Arasan loses
//!   a write that follows another within them);
//! - the clock from the firmware (the capabilities register is not
//!   trusted, as in Linux), 400 kHz to identify, 25 MHz after;
//! - every wait bounded: a missing card, a broken command or a stuck
//!   transfer is an [`SdError`], the lines are reset, and the next
//!   command starts clean. Nothing here ever waits for ever.
//!
//! Initialisation: CMD0, CMD8 (voltage and pattern: 2.00+ cards), ACMD41
//! with HCS until the card is ready (1 s), CMD2, CMD3 (RCA), CMD9 (CSD:
//! capacity), CMD7, ACMD6 (4-bit bus), CMD16 (512-byte blocks on
//! standard-capacity cards, whose addresses are bytes; high-capacity
//! cards, OCR.CCS, take block numbers). An SDIO device (the Wi-Fi chip)
//! does not answer CMD55/ACMD41 and is left alone: CMD5 is never sent.
//! Data moves by PIO (QEMU's controllers offer no DMA): CMD17/CMD18 and
//! CMD24/CMD25 with auto CMD12, 512 bytes per buffer-ready interrupt.

pub mod cmd;
mod error;
mod regs;

use cmd::{Cmd, Data, IfCond, Resp};
pub use error::SdError;
use regs::{clk, host, state};
pub use regs::{int, reg, Clock, Mmio32, Regs};

/// The identification clock.
pub const IDENT_HZ: u32 = 400_000;
/// The data clock (default speed).
pub const DATA_HZ: u32 = 25_000_000;
/// Bytes per block.
pub const BLOCK: usize = 512;
/// Most blocks per command (the driver's cap; BLOCK_COUNT allows 65535).
pub const MAX_BLOCKS: usize = 128;

/// Bounded waits, in microseconds.
mod timeout {
    pub const RESET: u64 = 100_000;
    pub const CLOCK: u64 = 20_000;
    pub const INHIBIT: u64 = 100_000;
    pub const CMD: u64 = 100_000;
    pub const READY: u64 = 1_000_000;
    pub const BLOCK: u64 = 250_000;
    /// Writes may keep the card busy this long (SD: 250 ms SDHC, 500 ms
    /// SDXC per block; with margin).
    pub const BUSY: u64 = 1_000_000;
}

/// The card, once initialised.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Card {
    /// 512-byte sectors.
    pub sectors: u64,
    /// OCR.CCS: block addressing (SDHC/SDXC); else bytes (SDSC).
    pub high_capacity: bool,
    /// The relative card address.
    pub rca: u16,
}

/// The controller and, once found, its card.
pub struct Sdhci<R: Regs, C: Clock> {
    regs: R,
    clock: C,
    /// The controller's base clock (from the firmware).
    base_hz: u32,
    /// The SD clock now (for the post-write pause).
    sd_hz: u32,
    card: Option<Card>,
}

impl<R: Regs, C: Clock> Sdhci<R, C> {
    /// A controller whose base clock the firmware says is `base_hz`.
    pub fn new(regs: R, clock: C, base_hz: u32) -> Self {
        Self {
            regs,
            clock,
            base_hz,
            sd_hz: IDENT_HZ,
            card: None,
        }
    }

    /// The card, if [`Sdhci::init`] found one.
    pub fn card(&self) -> Option<Card> {
        self.card
    }

    /// The registers (tests look at the simulated controller).
    pub fn regs(&mut self) -> &mut R {
        &mut self.regs
    }

    fn rd(&mut self, off: usize) -> u32 {
        self.regs.read(off)
    }

    /// A write, then two SD clock cycles.
    fn wr(&mut self, off: usize, v: u32) {
        self.regs.write(off, v);
        let ns = 2_000_000_000 / u64::from(self.sd_hz.max(1));
        self.clock.delay_ns(ns);
    }

    /// Waits until `done(register)` or `us` pass.
    fn wait(
        &mut self,
        off: usize,
        us: u64,
        what: &'static str,
        done: impl Fn(u32) -> bool,
    ) -> Result<u32, SdError> {
        let t0 = self.clock.now_us();
        loop {
            let v = self.rd(off);
            if done(v) {
                return Ok(v);
            }
            if self.clock.now_us().saturating_sub(t0) > us {
                return Err(SdError::Timeout(what));
            }
        }
    }

    /// Software reset of `bits` (all, or the CMD/DAT lines).
    fn reset(&mut self, bits: u32) -> Result<(), SdError> {
        let v = self.rd(reg::CLOCK) & 0x00ff_ffff;
        self.wr(reg::CLOCK, v | bits);
        self.wait(reg::CLOCK, timeout::RESET, "the controller's reset", |v| {
            v & bits == 0
        })?;
        Ok(())
    }

    /// Runs the SD clock at `hz` at most.
    fn set_clock(&mut self, hz: u32) -> Result<(), SdError> {
        let keep = self.rd(reg::CLOCK) & 0x00ff_0000;
        // SD clock off before the divider changes.
        self.wr(reg::CLOCK, keep);
        let (div, real) = cmd::clock_divider(self.base_hz, hz);
        let v = keep | clk::TIMEOUT_MAX | u32::from(div) | clk::INTERNAL_ON;
        self.wr(reg::CLOCK, v);
        self.wait(reg::CLOCK, timeout::CLOCK, "the internal clock", |r| {
            r & clk::INTERNAL_STABLE != 0
        })?;
        self.sd_hz = real.max(1);
        self.wr(reg::CLOCK, v | clk::SD_ON);
        Ok(())
    }

    /// Sends `c`; its response registers (RESPONSE0 for 48-bit ones).
    /// For a data command, the data phase is the caller's.
    fn send(&mut self, c: Cmd) -> Result<[u32; 4], SdError> {
        let busy = matches!(c.data, Data::Read(_) | Data::Write(_)) || c.resp == Resp::R1b;
        let mask = state::CMD_INHIBIT | if busy { state::DAT_INHIBIT } else { 0 };
        self.wait(reg::STATE, timeout::INHIBIT, "the command line", |s| {
            s & mask == 0
        })?;
        self.wr(reg::INT, 0xffff_ffff);
        self.wr(reg::ARG, c.arg);
        self.wr(
            reg::CMD,
            u32::from(c.command_reg()) << 16 | u32::from(c.transfer_mode()),
        );
        let st = self.wait(reg::INT, timeout::CMD, "a command's response", |i| {
            i & (int::CMD_DONE | int::ERROR) != 0
        });
        let st = match st {
            Ok(v) => v,
            Err(e) => {
                let _ = self.reset(clk::RESET_CMD);
                return Err(e);
            }
        };
        if st & int::ERROR != 0 {
            let errors = st >> 16;
            self.wr(reg::INT, st);
            let _ = self.reset(clk::RESET_CMD | if busy { clk::RESET_DAT } else { 0 });
            return Err(SdError::Command {
                index: c.index,
                errors,
            });
        }
        self.wr(reg::INT, int::CMD_DONE);
        let r = [
            self.rd(reg::RESP),
            self.rd(reg::RESP + 4),
            self.rd(reg::RESP + 8),
            self.rd(reg::RESP + 12),
        ];
        if c.resp == Resp::R1b {
            self.transfer_done(timeout::BUSY)?;
        }
        // R6 (CMD3) and R7 (CMD8) are not card status; CMD55's may carry
        // ILLEGAL_COMMAND for the CMD8 a version 1 card did not know.
        let status = !matches!(c.index, 3 | 8 | 55);
        if matches!(c.resp, Resp::R1 | Resp::R1b) && status && r[0] & cmd::R1_ERRORS != 0 {
            return Err(SdError::Status {
                index: c.index,
                status: r[0],
            });
        }
        Ok(r)
    }

    fn transfer_done(&mut self, us: u64) -> Result<(), SdError> {
        let st = self.wait(reg::INT, us, "the transfer's end", |i| {
            i & (int::XFER_DONE | int::ERROR) != 0
        });
        self.finish(st)
    }

    /// After a data wait: clears it, or on an error resets the lines.
    fn finish(&mut self, st: Result<u32, SdError>) -> Result<(), SdError> {
        match st {
            Ok(v) if v & int::ERROR == 0 => {
                self.wr(reg::INT, v & (int::XFER_DONE | int::CMD_DONE));
                Ok(())
            }
            Ok(v) => {
                self.wr(reg::INT, v);
                let _ = self.reset(clk::RESET_CMD | clk::RESET_DAT);
                Err(SdError::Data(v >> 16))
            }
            Err(e) => {
                let _ = self.reset(clk::RESET_CMD | clk::RESET_DAT);
                Err(e)
            }
        }
    }

    /// A transfer failed half-way: lines reset, the card told to stop
    /// (it may still be sending or expecting blocks).
    fn abort(&mut self, st: Result<u32, SdError>) -> Result<(), SdError> {
        let e = self.finish(st.map(|v| v | int::ERROR));
        let _ = self.send(Cmd::stop());
        e
    }

    /// An application command (CMD55 first).
    fn app(&mut self, rca: u16, c: Cmd) -> Result<[u32; 4], SdError> {
        self.send(Cmd::app_cmd(rca))?;
        self.send(c)
    }

    /// Resets the controller and brings up the card: see the module.
    pub fn init(&mut self) -> Result<Card, SdError> {
        self.card = None;
        self.sd_hz = IDENT_HZ;
        self.reset(clk::RESET_ALL)?;
        self.wr(reg::HOST, host::POWER_33V);
        self.set_clock(IDENT_HZ)?;
        self.wr(reg::INT_ENABLE, int::ENABLED);
        self.wr(reg::INT_SIGNAL, 0);
        // 74 clocks after power-up before the first command.
        self.clock.delay_us(1000);
        self.send(Cmd::go_idle())?;
        let r7 = match self.send(Cmd::send_if_cond()) {
            Ok(r) => Some(r[0]),
            Err(SdError::Command { .. }) | Err(SdError::Timeout(_)) => None,
            Err(e) => return Err(e),
        };
        let v2 = match cmd::if_cond(r7) {
            IfCond::V2 => true,
            IfCond::NoAnswer => false,
            IfCond::Mismatch(_) => return Err(SdError::Unusable("CMD8 did not echo its pattern")),
        };
        let t0 = self.clock.now_us();
        let ocr = loop {
            let ocr = match self.app(0, Cmd::send_op_cond(v2)) {
                Ok(r) => r[0],
                // An SDIO device or no card at all: nothing answers CMD55.
                Err(SdError::Command { index: 55, .. })
                | Err(SdError::Command { index: 41, .. }) => return Err(SdError::NoMemoryCard),
                Err(e) => return Err(e),
            };
            if ocr & cmd::OCR_READY != 0 {
                break ocr;
            }
            if self.clock.now_us().saturating_sub(t0) > timeout::READY {
                return Err(SdError::Timeout("the card's power-up (ACMD41)"));
            }
            self.clock.delay_us(10_000);
        };
        if ocr & cmd::OCR_VOLTAGES == 0 {
            return Err(SdError::Unusable("no voltage in 2.7-3.6 V"));
        }
        let high_capacity = v2 && ocr & cmd::OCR_CCS != 0;
        self.send(Cmd::all_send_cid())?;
        let rca = (self.send(Cmd::send_relative_addr())?[0] >> 16) as u16;
        let csd = cmd::r2_bits(self.send(Cmd::send_csd(rca))?);
        let sectors = cmd::csd_sectors(csd).ok_or(SdError::Unusable("its CSD structure"))?;
        if sectors == 0 || (!high_capacity && sectors * BLOCK as u64 > u64::from(u32::MAX) + 1) {
            return Err(SdError::Unusable("its capacity"));
        }
        self.send(Cmd::select(rca))?;
        self.app(rca, Cmd::bus_width_4())?;
        let h = self.rd(reg::HOST);
        self.wr(reg::HOST, h | host::WIDTH_4);
        if !high_capacity {
            self.send(Cmd::block_len())?;
        }
        self.wr(reg::BLOCK, BLOCK as u32);
        self.set_clock(DATA_HZ)?;
        let card = Card {
            sectors,
            high_capacity,
            rca,
        };
        self.card = Some(card);
        Ok(card)
    }

    fn check(&self, lba: u64, len: usize) -> Result<(Card, u32, u32), SdError> {
        let card = self.card.ok_or(SdError::NoMemoryCard)?;
        let blocks = len / BLOCK;
        if len == 0 || !len.is_multiple_of(BLOCK) || blocks > MAX_BLOCKS {
            return Err(SdError::Range);
        }
        let end = lba.checked_add(blocks as u64).ok_or(SdError::Range)?;
        if end > card.sectors {
            return Err(SdError::Range);
        }
        let addr = if card.high_capacity {
            lba
        } else {
            lba * BLOCK as u64
        };
        let addr = u32::try_from(addr).map_err(|_| SdError::Range)?;
        Ok((card, addr, blocks as u32))
    }

    /// Reads whole blocks (at most [`MAX_BLOCKS`]) from `lba` into `buf`.
    pub fn read(&mut self, lba: u64, buf: &mut [u8]) -> Result<(), SdError> {
        let (_, addr, blocks) = self.check(lba, buf.len())?;
        self.wr(reg::BLOCK, blocks << 16 | BLOCK as u32);
        self.send(Cmd::read(addr, blocks))?;
        for b in buf.chunks_mut(BLOCK) {
            let st = self.wait(reg::INT, timeout::BLOCK, "a block to read", |i| {
                i & (int::READ_READY | int::ERROR) != 0
            });
            match st {
                Ok(v) if v & int::ERROR == 0 => self.wr(reg::INT, int::READ_READY),
                other => return self.abort(other),
            }
            for w in b.chunks_mut(4) {
                w.copy_from_slice(&self.rd(reg::DATA).to_le_bytes());
            }
        }
        self.transfer_done(timeout::BLOCK)
    }

    /// Writes whole blocks (at most [`MAX_BLOCKS`]) from `buf` at `lba`;
    /// they are on the card when it returns (the controller waits out
    /// the card's busy signal before transfer complete).
    pub fn write(&mut self, lba: u64, buf: &[u8]) -> Result<(), SdError> {
        let (_, addr, blocks) = self.check(lba, buf.len())?;
        self.wr(reg::BLOCK, blocks << 16 | BLOCK as u32);
        self.send(Cmd::write(addr, blocks))?;
        for b in buf.chunks(BLOCK) {
            let st = self.wait(reg::INT, timeout::BLOCK, "room to write a block", |i| {
                i & (int::WRITE_READY | int::ERROR) != 0
            });
            match st {
                Ok(v) if v & int::ERROR == 0 => self.wr(reg::INT, int::WRITE_READY),
                other => return self.abort(other),
            }
            for w in b.chunks(4) {
                let v = u32::from_le_bytes([w[0], w[1], w[2], w[3]]);
                self.regs.write(reg::DATA, v);
            }
        }
        self.transfer_done(timeout::BUSY)
    }

    /// Waits until the card is back in the transfer state and ready for
    /// data (after writes: what FLUSH waits for).
    pub fn wait_ready(&mut self) -> Result<(), SdError> {
        let card = self.card.ok_or(SdError::NoMemoryCard)?;
        let t0 = self.clock.now_us();
        loop {
            let s = self.send(Cmd::send_status(card.rca))?[0];
            if cmd::r1_state(s) == cmd::STATE_TRAN && s & cmd::R1_READY_FOR_DATA != 0 {
                return Ok(());
            }
            if self.clock.now_us().saturating_sub(t0) > timeout::BUSY {
                return Err(SdError::Timeout("the card to be ready"));
            }
        }
    }
}

#[cfg(test)]
mod sim;
#[cfg(test)]
#[path = "tests.rs"]
mod tests;
