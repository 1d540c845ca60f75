//! pv-vmm's library: the parts that are plain logic (the VM plan from a
//! pivisor bundle, the mailbox checks, KVM's statistics) and so build and
//! unit-test on any host; the KVM glue (`kvm`, in the binary) is aarch64
//! Linux only.

pub mod machine;
pub mod stats;
