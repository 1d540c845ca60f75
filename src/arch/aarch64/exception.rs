//! EL2 exception entry: the vectors (vectors.s) save a [`Frame`] and call
//! `handle_exception` (crate::vmm::exit) with the vector slot.
//!
//! [`Frame`]: crate::exception::Frame

use core::arch::global_asm;

global_asm!(include_str!("vectors.s"));
