//! The virtual GIC-400: the emulated distributor ([`dist`]). The list
//! registers, the virtual CPU interface mapping and the timer come next;
//! until then guests get no interrupts and their GICD accesses abort.

pub mod dist;
