//! Virtual machines: configuration, the guest bundle, the Linux boot
//! protocol, per-VM device trees and PSCI. Pure logic; the target-only
//! glue that runs VMs is in [`crate::hyp`].

pub mod bundle;
pub mod config;
pub mod fdt;
pub mod image;
pub mod psci;
pub mod restart;

#[cfg(test)]
mod tests;
