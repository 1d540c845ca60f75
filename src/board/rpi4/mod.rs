//! Raspberry Pi 4 (BCM2711): platform defaults and drivers.
//!
//! The device tree is the authority for every address; the defaults here are
//! used only when the tree is missing or unusable, to report that on the
//! console (low-peripheral mode, the firmware's default).

pub mod gpio;
pub mod mailbox;
pub mod miniuart;
pub mod pl011;

/// PL011 UART0 in low-peripheral mode (bus 0x7e201000).
pub const DEFAULT_UART0: u64 = 0xfe20_1000;
/// GPIO block in low-peripheral mode (bus 0x7e200000).
pub const DEFAULT_GPIO: u64 = 0xfe20_0000;
