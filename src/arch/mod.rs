//! Architecture code. Only AArch64 exists; everything with inline assembly
//! or system-register access lives below this module.

pub mod aarch64;
pub use aarch64::*;
