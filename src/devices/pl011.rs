//! An emulated ARM PL011 UART (PrimeCell UART, TRM DDI 0183), for VMs that
//! do not own the real one: the registers Linux's amba-pl011 driver and
//! earlycon use, polled or interrupt-driven.
//!
//! | offset      | register | emulated as                                   |
//! |-------------|----------|-----------------------------------------------|
//! | 0x000       | DR       | write: one byte out (UART and TX enabled);    |
//! |             |          | read: the oldest received byte, 0 when empty  |
//! | 0x004       | RSR/ECR  | reads 0 (no line errors); writes ignored      |
//! | 0x018       | FR       | TXFF while the console has no room for this   |
//! |             |          | VM, else TXFE; RXFE/RXFF from the receive     |
//! |             |          | FIFO; CTS/DSR/DCD set                         |
//! | 0x020-0x030 | ILPR,    | read-write, kept (baud rate and framing have  |
//! |             | IBRD,    | no meaning here)                              |
//! |             | FBRD,    |                                               |
//! |             | LCR_H, CR|                                               |
//! | 0x034       | IFLS     | read-write: the receive trigger level         |
//! | 0x038       | IMSC     | read-write interrupt mask                     |
//! | 0x03c/0x040 | RIS/MIS  | raw and masked status                         |
//! | 0x044       | ICR      | write-one-to-clear                            |
//! | 0x048       | DMACR    | read-write, no DMA                            |
//! | 0xfe0-0xffc | IDs      | PL011 r1p5 PeriphID, PrimeCell ID             |
//!
//! Interrupts (one line, level): RX when the receive FIFO reaches its
//! trigger level (1 byte with FIFOs off), receive timeout while bytes wait
//! below it, TX each time a written byte has gone while the console still
//! has room, or when room comes back after TXFF ([`Pl011::tx_room_returned`]:
//! the FIFO's level falling through its trigger level; cleared by ICR).
//! The console (the hypervisor's output queue) says whether it has room:
//! a guest that writes only while TXFF is clear, as Linux does, loses
//! nothing and never makes its core wait; bytes written while TXFF is
//! set are the console's to drop. Input that
//! finds the FIFO full waits in a backlog (up to [`BACKLOG`] bytes, as the
//! line would pace it) and moves in as the guest reads; overrun only when
//! that is full too. The line follows RIS & IMSC.

use crate::devices::bus::{MmioDevice, MmioError};
use alloc::boxed::Box;
use alloc::collections::VecDeque;

/// Receive FIFO depth.
pub const FIFO: usize = 16;
/// Bytes held back while the receive FIFO is full (typed or pasted input
/// arrives faster than a guest drains 16 bytes; the real line would pace
/// it). Past this, input overruns.
pub const BACKLOG: usize = 4096;
/// The register page size.
pub const SIZE: u64 = 0x1000;

/// Interrupt bits (RIS, MIS, IMSC, ICR).
pub mod int {
    /// Receive.
    pub const RX: u32 = 1 << 4;
    /// Transmit.
    pub const TX: u32 = 1 << 5;
    /// Receive timeout.
    pub const RT: u32 = 1 << 6;
    /// Overrun error.
    pub const OE: u32 = 1 << 10;
    /// Every implemented bit (modem 0-3, errors 7-10).
    pub const ALL: u32 = 0x7ff;
}

/// FR bits.
pub mod fr {
    /// Clear to send.
    pub const CTS: u32 = 1 << 0;
    /// Data set ready.
    pub const DSR: u32 = 1 << 1;
    /// Data carrier detect.
    pub const DCD: u32 = 1 << 2;
    /// Receive FIFO empty.
    pub const RXFE: u32 = 1 << 4;
    /// Transmit FIFO full.
    pub const TXFF: u32 = 1 << 5;
    /// Receive FIFO full.
    pub const RXFF: u32 = 1 << 6;
    /// Transmit FIFO empty.
    pub const TXFE: u32 = 1 << 7;
}

/// CR bits.
pub mod cr {
    /// UART enable.
    pub const UARTEN: u32 = 1 << 0;
    /// Transmit enable.
    pub const TXE: u32 = 1 << 8;
    /// Receive enable.
    pub const RXE: u32 = 1 << 9;
}

/// LCR_H: FIFOs enabled.
const LCR_FEN: u32 = 1 << 4;

/// PeriphID0-3 then PCellID0-3 (0xfe0-0xffc): part 0x011, designer ARM
/// (0x41), revision r1p5 (3).
pub const ID: [u32; 8] = [0x11, 0x10, 0x34, 0x00, 0x0d, 0xf0, 0x05, 0xb1];

/// Where transmitted bytes go.
pub type TxSink = Box<dyn FnMut(u8) + Send>;
/// Drives the interrupt line.
pub type Line = Box<dyn FnMut(bool) + Send>;
/// Whether the console has room for another byte now.
pub type Room = Box<dyn FnMut() -> bool + Send>;

/// The emulated UART.
pub struct Pl011 {
    rx: VecDeque<u8>,
    backlog: VecDeque<u8>,
    ris: u32,
    imsc: u32,
    ilpr: u32,
    ibrd: u32,
    fbrd: u32,
    lcr_h: u32,
    cr: u32,
    ifls: u32,
    dmacr: u32,
    tx: TxSink,
    line: Line,
    room: Room,
    level: bool,
    /// Bytes dropped because the receive FIFO was full.
    pub overruns: u64,
}

impl Pl011 {
    /// A UART as the Pi firmware leaves it: enabled, 8 bits, FIFOs on,
    /// interrupts masked (so earlycon works before a driver sets it up).
    pub fn new(tx: TxSink, line: Line) -> Self {
        Self {
            rx: VecDeque::new(),
            backlog: VecDeque::new(),
            ris: 0,
            imsc: 0,
            ilpr: 0,
            ibrd: 26,
            fbrd: 3,
            lcr_h: 0x70,
            cr: cr::UARTEN | cr::TXE | cr::RXE,
            ifls: 0x12,
            dmacr: 0,
            tx,
            line,
            room: Box::new(|| true),
            level: false,
            overruns: 0,
        }
    }

    /// Asks `room` whether the console takes another byte (default:
    /// always).
    pub fn with_room(mut self, room: Room) -> Self {
        self.room = room;
        self
    }

    /// The console has room again after this UART read TXFF: the
    /// transmit interrupt asserts, as when a real FIFO drains through
    /// its trigger level.
    pub fn tx_room_returned(&mut self) {
        self.ris |= int::TX;
        self.update();
    }

    fn fifo_on(&self) -> bool {
        self.lcr_h & LCR_FEN != 0
    }

    fn depth(&self) -> usize {
        if self.fifo_on() {
            FIFO
        } else {
            1
        }
    }

    /// Bytes at which the RX interrupt asserts (IFLS RXIFLSEL: 1/8, 1/4,
    /// 1/2, 3/4, 7/8 full).
    fn rx_trigger(&self) -> usize {
        if !self.fifo_on() {
            return 1;
        }
        match (self.ifls >> 3) & 7 {
            0 => FIFO / 8,
            1 => FIFO / 4,
            2 => FIFO / 2,
            3 => FIFO * 3 / 4,
            _ => FIFO * 7 / 8,
        }
    }

    /// Recomputes the receive status bits and the line.
    fn update(&mut self) {
        if self.rx.len() >= self.rx_trigger() {
            self.ris |= int::RX;
        } else {
            self.ris &= !int::RX;
        }
        if self.rx.is_empty() {
            self.ris &= !int::RT;
        } else if self.ris & int::RX == 0 {
            // Bytes wait below the trigger level: the receive timeout
            // (32 bit periods without new data) has certainly passed by
            // the time a guest looks.
            self.ris |= int::RT;
        }
        let level = self.ris & self.imsc != 0;
        if level != self.level {
            self.level = level;
            (self.line)(level);
        }
    }

    /// Whether the UART takes input now (enabled, receive enabled, room
    /// in the FIFO or the backlog).
    pub fn can_receive(&self) -> bool {
        self.cr & (cr::UARTEN | cr::RXE) == (cr::UARTEN | cr::RXE)
            && (self.rx.len() < self.depth() || self.backlog.len() < BACKLOG)
    }

    /// A byte from the outside world: into the FIFO, or held back while
    /// it is full. Returns false when it is dropped (receiver disabled, or
    /// the backlog full too: an overrun).
    pub fn receive(&mut self, b: u8) -> bool {
        let ok = if self.cr & (cr::UARTEN | cr::RXE) != (cr::UARTEN | cr::RXE) {
            false
        } else if self.rx.len() < self.depth() && self.backlog.is_empty() {
            self.rx.push_back(b);
            true
        } else if self.backlog.len() < BACKLOG {
            self.backlog.push_back(b);
            true
        } else {
            self.ris |= int::OE;
            self.overruns += 1;
            false
        };
        self.update();
        ok
    }

    /// Moves held-back bytes into the FIFO as it drains.
    fn refill(&mut self) {
        while self.rx.len() < self.depth() {
            match self.backlog.pop_front() {
                Some(b) => self.rx.push_back(b),
                None => break,
            }
        }
    }

    /// The interrupt line's level.
    pub fn level(&self) -> bool {
        self.level
    }

    /// Received bytes held: in the FIFO and in the backlog (bounded by
    /// [`FIFO`] and [`BACKLOG`] whatever the guest and the input do).
    pub fn held(&self) -> (usize, usize) {
        (self.rx.len(), self.backlog.len())
    }
}

impl MmioDevice for Pl011 {
    fn reset(&mut self) {
        let tx = core::mem::replace(&mut self.tx, Box::new(|_| {}));
        let line = core::mem::replace(&mut self.line, Box::new(|_| {}));
        let room = core::mem::replace(&mut self.room, Box::new(|| true));
        *self = Self::new(tx, line).with_room(room);
    }

    fn name(&self) -> &str {
        "pl011"
    }

    fn read(&mut self, offset: u64, width: u8) -> Result<u64, MmioError> {
        // Linux uses 32-bit accesses (16-bit on some ports): both work.
        if !(width == 4 || width == 2) || !offset.is_multiple_of(u64::from(width)) {
            return Err(MmioError::BadWidth);
        }
        if !offset.is_multiple_of(4) {
            return Ok(0); // upper half of a register: reserved, zero
        }
        let v = match offset {
            0x000 => {
                let b = self.rx.pop_front().map_or(0, u32::from);
                self.refill();
                self.update();
                b
            }
            0x004 => 0,
            0x018 => {
                let mut f = fr::CTS | fr::DSR | fr::DCD;
                f |= if (self.room)() { fr::TXFE } else { fr::TXFF };
                if self.rx.is_empty() {
                    f |= fr::RXFE;
                }
                if self.rx.len() >= self.depth() {
                    f |= fr::RXFF;
                }
                f
            }
            0x020 => self.ilpr,
            0x024 => self.ibrd,
            0x028 => self.fbrd,
            0x02c => self.lcr_h,
            0x030 => self.cr,
            0x034 => self.ifls,
            0x038 => self.imsc,
            0x03c => self.ris,
            0x040 => self.ris & self.imsc,
            0x048 => self.dmacr,
            // The IDs where the PrimeCell spec puts them (0xfe0) and where
            // Linux's amba bus looks for a 0x200-byte window (size - 0x20).
            0xfe0..=0xffc => ID[((offset - 0xfe0) / 4) as usize],
            0x1e0..=0x1fc => ID[((offset - 0x1e0) / 4) as usize],
            o if o < SIZE => 0,
            _ => return Err(MmioError::BadOffset),
        };
        Ok(u64::from(v))
    }

    fn write(&mut self, offset: u64, width: u8, value: u64) -> Result<(), MmioError> {
        if !(width == 4 || width == 2) || !offset.is_multiple_of(u64::from(width)) {
            return Err(MmioError::BadWidth);
        }
        if !offset.is_multiple_of(4) {
            return Ok(());
        }
        let v = value as u32;
        match offset {
            0x000 => {
                if self.cr & (cr::UARTEN | cr::TXE) == (cr::UARTEN | cr::TXE) {
                    (self.tx)(v as u8);
                    if (self.room)() {
                        self.ris |= int::TX;
                    } else {
                        self.ris &= !int::TX;
                    }
                }
            }
            0x004 => {}
            0x020 => self.ilpr = v & 0xff,
            0x024 => self.ibrd = v & 0xffff,
            0x028 => self.fbrd = v & 0x3f,
            0x02c => {
                self.lcr_h = v & 0xff;
                // Turning the FIFOs off leaves one byte in the holding
                // register (the rest waits); turning them on lets more in.
                while self.rx.len() > self.depth() {
                    if let Some(b) = self.rx.pop_back() {
                        self.backlog.push_front(b);
                    }
                }
                self.refill();
            }
            0x030 => self.cr = v & 0xff87,
            0x034 => self.ifls = v & 0x3f,
            0x038 => self.imsc = v & int::ALL,
            0x044 => self.ris &= !(v & int::ALL),
            0x048 => self.dmacr = v & 0x7,
            o if o < SIZE => {}
            _ => return Err(MmioError::BadOffset),
        }
        self.update();
        Ok(())
    }
}

#[cfg(test)]
#[path = "pl011_tests.rs"]
mod tests;
