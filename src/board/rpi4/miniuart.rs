//! The BCM2711 mini UART (UART1, in the AUX block; BCM2711 ARM Peripherals
//! 2.2): the hypervisor's console once the PL011 is passed through to a
//! VM. Transmit only; with its transmit interrupt when the console's
//! output queue has bytes waiting.
//!
//! QEMU raspi4b connects it to the second `-serial`. On a real Pi 4 only
//! GPIO14/15 reach the header and they carry the PL011 for its owner VM,
//! so the mini UART's output goes nowhere there: the log ring keeps it.
//! Its baud rate follows the VPU core clock (500 MHz on a Pi 4 with
//! `enable_uart=1`).

use crate::board::mmio::Mmio;
use crate::console::ConsoleSink;
use tock_registers::{
    interfaces::{Readable, Writeable},
    register_structs,
    registers::ReadWrite,
};

register_structs! {
    /// Mini UART registers (from AUX_MU_IO, 0x40 into the AUX block).
    #[allow(non_snake_case)]
    pub MiniUartRegs {
        (0x00 => IO: ReadWrite<u32>),
        (0x04 => IER: ReadWrite<u32>),
        (0x08 => IIR: ReadWrite<u32>),
        (0x0c => LCR: ReadWrite<u32>),
        (0x10 => MCR: ReadWrite<u32>),
        (0x14 => LSR: ReadWrite<u32>),
        (0x18 => _reserved0),
        (0x20 => CNTL: ReadWrite<u32>),
        (0x24 => _reserved1),
        (0x28 => BAUD: ReadWrite<u32>),
        (0x2c => @END),
    }
}

/// AUX_ENABLES, relative to the mini UART's registers (AUX base + 4).
const AUX_ENABLES: isize = -0x3c;
/// LSR: the transmitter can take a byte.
const LSR_TX_EMPTY: u32 = 1 << 5;
/// LSR: a received byte is waiting.
const LSR_DATA_READY: u32 = 1;
/// IER: receive interrupt (bit 0, as Linux's 8250 driver and QEMU's aux
/// model use it).
const IER_RX: u32 = 1;
/// IER: transmit interrupt (bit 1; the BCM2835 manual's table has RX and
/// TX swapped, its errata and Linux's 8250 driver agree on this).
const IER_TX: u32 = 1 << 1;
/// The VPU core clock a Pi 4 runs with enable_uart=1.
pub const CORE_CLOCK_HZ: u32 = 500_000_000;

/// AUX_MU_BAUD for `baud` at `clock` (baud = clock / (8 * (reg + 1))).
pub fn baud_reg(clock: u32, baud: u32) -> u32 {
    (clock / (8 * baud.max(1))).saturating_sub(1) & 0xffff
}

/// The mini UART as a console.
pub struct MiniUart {
    regs: Mmio<MiniUartRegs>,
    base: usize,
    /// The receive interrupt is on (the hypervisor's console input).
    rx: bool,
}

impl MiniUart {
    /// A driver for the mini UART at `base` (the AUX_MU_IO address).
    ///
    /// # Safety
    /// `base` must be the BCM2711 mini UART, device-mapped, used by no one
    /// else; the AUX block's enable register is 0x3c below it.
    pub unsafe fn new(base: usize) -> Self {
        // SAFETY: forwarded from the caller.
        Self {
            regs: unsafe { Mmio::new(base) },
            base,
            rx: false,
        }
    }

    /// Enables it for 115200 8N1, transmit only, no interrupts.
    pub fn init(&mut self, baud: u32) {
        let en = (self.base as isize + AUX_ENABLES) as *mut u32;
        // SAFETY: AUX_ENABLES, in the same device page (caller's contract).
        unsafe { en.write_volatile(en.read_volatile() | 1) };
        let r = &self.regs;
        r.CNTL.set(0);
        r.IER.set(0);
        r.LCR.set(3); // 8 bits
        r.MCR.set(0);
        r.IIR.set(0xc6); // clear both FIFOs
        r.BAUD.set(baud_reg(CORE_CLOCK_HZ, baud));
        r.CNTL.set(2); // transmitter on
    }

    fn put(&mut self, b: u8) {
        // Bounded: an unclocked mini UART must not hang the log.
        for _ in 0..100_000 {
            if self.regs.LSR.get() & LSR_TX_EMPTY != 0 {
                self.regs.IO.set(u32::from(b));
                return;
            }
            core::hint::spin_loop();
        }
    }
}

impl ConsoleSink for MiniUart {
    fn write_bytes(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.put(b);
        }
    }

    fn try_put(&mut self, b: u8) -> bool {
        if self.regs.LSR.get() & LSR_TX_EMPTY == 0 {
            return false;
        }
        self.regs.IO.set(u32::from(b));
        true
    }

    /// The aux interrupt while the FIFO can take a byte (level).
    fn set_tx_interrupt(&mut self, on: bool) {
        let rx = if self.rx { IER_RX } else { 0 };
        self.regs.IER.set(if on { IER_TX | rx } else { rx });
    }

    fn read_byte(&mut self) -> Option<u8> {
        if self.regs.LSR.get() & LSR_DATA_READY == 0 {
            return None;
        }
        Some(self.regs.IO.get() as u8)
    }

    /// Receiver and its interrupt on (the monitor's input when a VM owns
    /// the PL011).
    fn enable_input(&mut self) {
        self.rx = true;
        self.regs.CNTL.set(3); // receiver and transmitter on
        self.regs.IER.set(self.regs.IER.get() & IER_TX | IER_RX);
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn baud_divisor() {
        assert_eq!(super::baud_reg(500_000_000, 115_200), 541);
        assert_eq!(super::baud_reg(250_000_000, 115_200), 270);
        assert_eq!(super::baud_reg(0, 115_200), 0);
        assert_eq!(super::baud_reg(500_000_000, 0), 0xffff & (62_500_000 - 1));
    }
}
