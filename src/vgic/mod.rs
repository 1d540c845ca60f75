//! The virtual GIC-400: the emulated distributor ([`dist`]), list
//! register encoding and allocation ([`lr`]) and the fold/fill of a
//! vCPU's list registers ([`flush`]). Pure logic; the hypervisor drives
//! the hardware (GICH, the physical GIC) in `hyp`.

pub mod dist;
pub mod flush;
pub mod lr;
