//! Trap-and-emulate, the pure half: an exit decoded from its syndrome
//! ([`decode`]), an MMIO access's register semantics ([`mmio`]), system
//! registers ([`sysreg`]), exceptions injected back into the guest
//! ([`inject`]) and exit statistics ([`stats`]). The handlers that act on
//! them are `crate::vmm::exit`.

pub mod decode;
pub mod inject;
pub mod mmio;
pub mod stats;
pub mod sysreg;
