//! Virtual machines, the pure half: configuration, the guest bundle, the
//! guest address map and RAM, the Linux boot protocol, per-VM device trees,
//! device attachment, PSCI and restart policies. The target-only glue that
//! runs VMs is `crate::vmm`.

pub mod attach;
pub mod bundle;
pub mod config;
pub mod fdt;
pub mod image;
pub mod layout;
pub mod passthru;
pub mod psci;
pub mod ptree;
pub mod ram;
pub mod restart;
