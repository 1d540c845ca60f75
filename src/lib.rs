//! pivisor: a small type-1 hypervisor for the Raspberry Pi 4.
//!
//! The crate is split along the "arch wall": everything outside `arch` is
//! plain Rust that builds and unit-tests on the host (`cargo test`); the
//! `arch` module (inline assembly, system registers) and the boot glue in
//! `kernel` exist only for the bare-metal target.
#![cfg_attr(not(test), no_std)]
#![deny(missing_docs)]

extern crate alloc;

pub mod board;
pub mod bootargs;
pub mod conmux;
pub mod console;
pub mod devices;
pub mod dt;
pub mod exception;
pub mod fixedvec;
pub mod mm;
pub mod ratelimit;
pub mod smp;
pub mod stage2;
pub mod sync;
pub mod trap;
pub mod vgic;
pub mod vm;

#[cfg(target_os = "none")]
pub mod arch;
#[cfg(target_os = "none")]
pub mod hyp;
#[cfg(target_os = "none")]
pub mod kernel;

/// The version string printed in the boot banner.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
