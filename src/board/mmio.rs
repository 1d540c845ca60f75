//! The one door to memory-mapped registers.

use core::marker::PhantomData;
use core::ops::Deref;

/// A typed view of a register block at a fixed physical (identity-mapped)
/// address.
pub struct Mmio<T> {
    base: usize,
    _t: PhantomData<fn() -> T>,
}

impl<T> Mmio<T> {
    /// A view of the block at `base`.
    ///
    /// # Safety
    /// `base` must be the address of a device register block laid out as `T`,
    /// mapped as device memory (or the MMU off), for as long as the view lives.
    pub const unsafe fn new(base: usize) -> Self {
        Self {
            base,
            _t: PhantomData,
        }
    }

    /// The block's address.
    pub fn base(&self) -> usize {
        self.base
    }
}

impl<T> Deref for Mmio<T> {
    type Target = T;
    fn deref(&self) -> &T {
        // SAFETY: `new`'s contract makes `base` a valid, live `T`.
        unsafe { &*(self.base as *const T) }
    }
}

/// Barriers between normal-memory accesses and device-register accesses.
/// On the host (unit tests) they are compiler fences.
pub mod barrier {
    /// `dmb ishst`: stores to normal memory before this are observed by
    /// every core before a later device write (GICD_SGIR: the receiver of
    /// an SGI must see what the sender wrote before it).
    #[inline(always)]
    pub fn stores_before_device_write() {
        #[cfg(target_arch = "aarch64")]
        // SAFETY: a barrier has no effect but ordering.
        unsafe {
            core::arch::asm!("dmb ishst", options(nostack, preserves_flags))
        };
        #[cfg(not(target_arch = "aarch64"))]
        core::sync::atomic::fence(core::sync::atomic::Ordering::Release);
    }

    /// `dmb ish`: a device read before this (GICC_IAR acknowledging an SGI)
    /// is ordered before later normal-memory reads (what the sender wrote).
    #[inline(always)]
    pub fn device_read_before_loads() {
        #[cfg(target_arch = "aarch64")]
        // SAFETY: a barrier has no effect but ordering.
        unsafe {
            core::arch::asm!("dmb ish", options(nostack, preserves_flags))
        };
        #[cfg(not(target_arch = "aarch64"))]
        core::sync::atomic::fence(core::sync::atomic::Ordering::Acquire);
    }
}
