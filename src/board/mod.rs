//! Board support: MMIO access and the BCM2711 (Raspberry Pi 4) drivers.

pub mod gic400;
pub mod mmio;
pub mod rpi4;
pub mod sdhci;
