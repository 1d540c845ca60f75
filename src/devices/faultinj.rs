//! The fault-injection page: lets a test guest make the hypervisor panic
//! on the core that runs it, holding the locks other VMs' cores need (the
//! console's line lock, the firmware mailbox's), so a test shows that a
//! hypervisor panic is never a deadlock for the other VMs. Configuration
//! `devices = fault-injection`, for test bundles only (docs/security.md):
//! a VM given it can take down the core it runs on. It has no device-tree
//! node; the test guest knows its address.
//!
//! | offset | width | register                                          |
//! |--------|-------|---------------------------------------------------|
//! | 0x00   | 4     | ID, read-only: 0x70766669 ("pvfi")                 |
//! | 0x04   | 4     | PANIC, write-only: [`PANIC_KEY`] panics the core   |
//!
//! Anything else is refused (the guest gets an external abort); a wrong
//! key is refused too, so a stray store never panics anything.

use crate::devices::bus::{MmioDevice, MmioError};
use alloc::boxed::Box;

/// The ID register's value.
pub const ID: u32 = 0x7076_6669;
/// The register block's size.
pub const SIZE: u64 = 0x1000;
/// The value PANIC takes: "PANC".
pub const PANIC_KEY: u32 = 0x5041_4e43;

/// What the hypervisor does on PANIC (does not return on the hypervisor).
pub type Trigger = Box<dyn FnMut() + Send>;

/// The page.
pub struct FaultInjection {
    trigger: Trigger,
}

impl FaultInjection {
    /// A page that calls `trigger` on a PANIC write with the key.
    pub fn new(trigger: Trigger) -> Self {
        Self { trigger }
    }
}

impl MmioDevice for FaultInjection {
    fn name(&self) -> &str {
        "fault injection"
    }

    fn read(&mut self, offset: u64, width: u8) -> Result<u64, MmioError> {
        match (offset, width) {
            (0, 4) => Ok(ID as u64),
            (0, _) => Err(MmioError::BadWidth),
            (4, _) => Err(MmioError::BadDirection),
            _ => Err(MmioError::BadOffset),
        }
    }

    fn write(&mut self, offset: u64, width: u8, value: u64) -> Result<(), MmioError> {
        match (offset, width) {
            (4, 4) if value == PANIC_KEY as u64 => {
                (self.trigger)();
                Ok(())
            }
            (4, 4) => Err(MmioError::BadOffset),
            (4, _) => Err(MmioError::BadWidth),
            (0, _) => Err(MmioError::BadDirection),
            _ => Err(MmioError::BadOffset),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};
    use std::sync::Arc;

    fn page() -> (FaultInjection, Arc<AtomicU32>) {
        let n = Arc::new(AtomicU32::new(0));
        let m = n.clone();
        let p = FaultInjection::new(Box::new(move || {
            m.fetch_add(1, Ordering::Relaxed);
        }));
        (p, n)
    }

    #[test]
    fn only_the_key_at_its_width_triggers() {
        let (mut p, n) = page();
        assert_eq!(p.read(0, 4), Ok(ID as u64));
        for (off, w, v) in [
            (4, 4, 0u64),
            (4, 4, PANIC_KEY as u64 + 1),
            (4, 4, (PANIC_KEY as u64) << 32),
            (4, 1, PANIC_KEY as u64),
            (4, 8, PANIC_KEY as u64),
            (0, 4, PANIC_KEY as u64),
            (8, 4, PANIC_KEY as u64),
            (u64::MAX, 4, PANIC_KEY as u64),
        ] {
            assert!(p.write(off, w, v).is_err(), "{off:#x}/{w} {v:#x}");
        }
        assert_eq!(n.load(Ordering::Relaxed), 0);
        assert_eq!(p.write(4, 4, PANIC_KEY as u64), Ok(()));
        assert_eq!(n.load(Ordering::Relaxed), 1);
    }

    #[test]
    fn reads_other_than_the_id_are_refused() {
        let (mut p, _) = page();
        assert_eq!(p.read(0, 8), Err(MmioError::BadWidth));
        assert_eq!(p.read(4, 4), Err(MmioError::BadDirection));
        assert_eq!(p.read(0xffc, 4), Err(MmioError::BadOffset));
    }
}
