//! pivisor: a small type-1 hypervisor for the Raspberry Pi 4.
//!
//! Layers (docs/architecture.md; `make test` checks the imports): pure
//! modules that build and unit-test on the host (`cargo test`) at the
//! bottom and in the middle; the machine (`arch`: inline assembly and
//! system registers, bare-metal only; `board`: device registers); the
//! VMM glue (`vmm`) and the boot order (`boot`) on top, bare-metal only.
#![cfg_attr(not(test), no_std)]
#![deny(missing_docs)]

extern crate alloc;

pub mod board;
pub mod bootargs;
pub mod conmux;
pub mod conout;
pub mod console;
pub mod devices;
pub mod disk;
pub mod dt;
pub mod exception;
pub mod fixedvec;
pub mod logring;
pub mod mm;
pub mod monitor;
pub mod net;
pub mod platform;
pub mod ratelimit;
pub mod region;
pub mod smp;
pub mod sync;
pub mod trap;
pub mod vgic;
pub mod virtio;
pub mod vm;

#[cfg(target_os = "none")]
pub mod arch;
#[cfg(target_os = "none")]
pub mod boot;
#[cfg(target_os = "none")]
pub mod vmm;

#[cfg(test)]
mod layers_tests;

/// The version string printed in the boot banner.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
