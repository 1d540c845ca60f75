//! BCM2711 GPIO: pin functions and pulls (BCM2711 ARM Peripherals, ch. 5).
//!
//! On a Pi 4 the PL011 is wired to Bluetooth (GPIO32/33) and the header pins
//! GPIO14/15 carry the mini UART by default; Debian's firmware package has no
//! disable-bt overlay, so the hypervisor routes the PL011 itself: GPIO14/15
//! to ALT0 (TXD0/RXD0) with pulls off, GPIO32/33 back to inputs.

use crate::board::mmio::Mmio;
use tock_registers::{
    interfaces::{Readable, Writeable},
    register_structs,
    registers::ReadWrite,
};

register_structs! {
    /// GPIO register block (the parts used here).
    #[allow(non_snake_case)]
    pub GpioRegs {
        /// Function select, 10 pins per register, 3 bits each.
        (0x00 => GPFSEL: [ReadWrite<u32>; 6]),
        (0x18 => _reserved0),
        /// BCM2711 pull-up/down control, 16 pins per register, 2 bits each.
        (0xe4 => PUP_PDN: [ReadWrite<u32>; 4]),
        (0xf4 => @END),
    }
}

/// Pin functions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u32)]
pub enum Function {
    /// Input.
    Input = 0b000,
    /// Output.
    Output = 0b001,
    /// Alternate function 0.
    Alt0 = 0b100,
}

/// GPFSEL register index and new value for setting `pin` to `f`.
pub fn fsel_update(old: u32, pin: u32, f: Function) -> (usize, u32) {
    let shift = (pin % 10) * 3;
    (
        (pin / 10) as usize,
        (old & !(0b111 << shift)) | ((f as u32) << shift),
    )
}

/// PUP_PDN register index and new value for "no pull" on `pin`.
pub fn pull_none_update(old: u32, pin: u32) -> (usize, u32) {
    let shift = (pin % 16) * 2;
    ((pin / 16) as usize, old & !(0b11 << shift))
}

/// The GPIO block.
pub struct Gpio {
    regs: Mmio<GpioRegs>,
}

impl Gpio {
    /// A driver for the GPIO block at `base`.
    ///
    /// # Safety
    /// `base` must be the BCM2711 GPIO block, device-mapped (or MMU off).
    pub const unsafe fn new(base: usize) -> Self {
        // SAFETY: forwarded from the caller.
        Self {
            regs: unsafe { Mmio::new(base) },
        }
    }

    /// Sets `pin`'s function (pins 0-57).
    pub fn set_function(&self, pin: u32, f: Function) {
        let idx = (pin / 10) as usize;
        if let Some(reg) = self.regs.GPFSEL.get(idx) {
            reg.set(fsel_update(reg.get(), pin, f).1);
        }
    }

    /// Disables the pull-up/down on `pin`.
    pub fn set_pull_none(&self, pin: u32) {
        let idx = (pin / 16) as usize;
        if let Some(reg) = self.regs.PUP_PDN.get(idx) {
            reg.set(pull_none_update(reg.get(), pin).1);
        }
    }

    /// Routes the PL011 (UART0) to header pins 8/10 (GPIO14/15) and detaches
    /// it from the Bluetooth pins (GPIO32/33).
    pub fn route_pl011_to_header(&self) {
        self.set_function(32, Function::Input);
        self.set_function(33, Function::Input);
        for pin in [14, 15] {
            self.set_pull_none(pin);
            self.set_function(pin, Function::Alt0);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fsel_for_uart_pins() {
        // GPFSEL1 holds pins 10-19; 14 at bits 12-14, 15 at 15-17.
        let (i, v) = fsel_update(0xffff_ffff, 14, Function::Alt0);
        assert_eq!(i, 1);
        assert_eq!(v, !(0b111 << 12) | (0b100 << 12));
        let (i, v) = fsel_update(0, 33, Function::Input);
        assert_eq!((i, v), (3, 0));
        let (_, v) = fsel_update(0xffff_ffff, 32, Function::Input);
        assert_eq!(v, !(0b111 << 6));
    }

    #[test]
    fn pulls_for_uart_pins() {
        let (i, v) = pull_none_update(0xffff_ffff, 15);
        assert_eq!(i, 0);
        assert_eq!(v, !(0b11 << 30));
    }
}
