//! The hand-written instructions that code building on the host needs
//! too: YIELD for the locks' spin step, the core number the locks record,
//! and the two barriers between
//! normal memory and device registers. They live here, behind the arch
//! wall with every other instruction written by hand, and build into
//! `crate::sync` (`sync::hints`) rather than into `arch` (which exists
//! only on the target, and which `sync` must not import: arch builds on
//! mm, and mm on sync). On the host they fall back to the nearest
//! portable equivalent.

/// YIELD: on silicon a hint that frees pipeline resources; under QEMU's
/// round-robin TCG the point where the emulator moves on to the next
/// core, so a lock's holder gets to run instead of its waiter burning
/// its time slice.
#[inline(always)]
pub fn yield_now() {
    #[cfg(target_arch = "aarch64")]
    // SAFETY: YIELD is a hint with no architectural effect.
    unsafe {
        core::arch::asm!("yield", options(nomem, nostack, preserves_flags))
    };
    #[cfg(not(target_arch = "aarch64"))]
    core::hint::spin_loop();
}

/// `dmb ishst`: stores to normal memory before this are observed by every
/// core before a later device write (GICD_SGIR: the receiver of an SGI
/// must see what the sender wrote before it).
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

/// The logical core number boot put into TPIDR_EL2 (the locks record
/// their holder with it). Only on the target.
#[cfg(target_os = "none")]
#[inline(always)]
pub fn core_index() -> usize {
    let v: u64;
    // SAFETY: reading TPIDR_EL2 has no side effect.
    unsafe {
        core::arch::asm!("mrs {}, tpidr_el2", out(reg) v, options(nomem, nostack, preserves_flags))
    };
    v as usize
}

/// `dmb ish`: every memory access before this is observed by the other
/// cores before any after it (the virtqueue protocol's barriers).
#[inline(always)]
pub fn memory_fence() {
    #[cfg(target_arch = "aarch64")]
    // SAFETY: a barrier has no effect but ordering.
    unsafe {
        core::arch::asm!("dmb ish", options(nostack, preserves_flags))
    };
    #[cfg(not(target_arch = "aarch64"))]
    core::sync::atomic::fence(core::sync::atomic::Ordering::SeqCst);
}
