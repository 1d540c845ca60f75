//! AArch64 at EL2: entry, CPU control, the EL2 MMU and exception vectors.

pub mod boot;
pub mod copy;
pub mod cpu;
pub mod exception;
pub mod guest;
pub mod mmu;
