//! The virtual GIC-400: the emulated distributor ([`dist`]) and the list
//! register encoding and allocation ([`lr`]). The GICH save/restore, the
//! virtual CPU interface mapping and the timer come next; until then guests
//! get no interrupts and their GICD accesses abort.

pub mod dist;
pub mod lr;
