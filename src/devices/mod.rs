//! Device models: pure state machines behind [`crate::trap::mmio::MmioDevice`].

pub mod testdev;
