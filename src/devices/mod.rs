//! Device models: pure state machines behind [`crate::trap::mmio::MmioDevice`].

pub mod mailbox;
pub mod pl011;
pub mod testdev;
