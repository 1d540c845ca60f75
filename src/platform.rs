//! Facts of the board that every layer shares, each in one place: the
//! BCM2711 of a Raspberry Pi 4.

/// Cores the hypervisor drives (a BCM2711 has four Cortex-A72s): every
/// per-core table is this long, and a VM's `cores` are below it.
pub const MAX_CORES: usize = 4;

/// The PL011 reference clock a Pi 4 runs with `init_uart_clock=48000000`
/// (firmware/config.txt): the hypervisor programs its console divisors for
/// it, and a VM's device tree gives it as the PL011's clock (the
/// passed-through UART is the real one). QEMU ignores the divisors.
pub const UART_CLOCK_HZ: u32 = 48_000_000;

/// Console speed.
pub const BAUD: u32 = 115_200;
