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
