//! The hypervisor's locks: `spin`'s mutex and once-cell with a relax step
//! that yields.
//!
//! Waiting for a lock another core holds spins. On the bare-metal target
//! each spin executes YIELD ([`Yield`]): a hint on silicon,
//! and under QEMU's single-threaded round-robin TCG (the `-icount` mode
//! the benchmarks use) the point where the emulator moves on to the next
//! core. With the default relax step (ISB) a core spinning on a lock held
//! by a descheduled core burns its whole time slice, which under `-icount`
//! counts as guest time: it made a four-vCPU Linux boot 1.7x slower than
//! native. On the host (unit tests) the relax step is `spin`'s own.

#[path = "arch/hints.rs"]
pub mod hints;

/// The relax step on the bare-metal target: YIELD ([`hints::yield_now`]).
pub struct Yield;

impl spin::RelaxStrategy for Yield {
    #[inline(always)]
    fn relax() {
        hints::yield_now();
    }
}

/// The locks' relax step: [`Yield`] on the bare-metal target, `spin`'s
/// own on the host (unit tests).
#[cfg(target_os = "none")]
pub type Relax = Yield;
/// The locks' relax step: [`Yield`] on the bare-metal target, `spin`'s
/// own on the host (unit tests).
#[cfg(not(target_os = "none"))]
pub type Relax = spin::relax::Spin;

/// A spin lock whose waiters yield.
pub type Mutex<T> = spin::mutex::SpinMutex<T, Relax>;
/// A one-time initialised value whose waiters yield.
pub type Once<T> = spin::once::Once<T, Relax>;

/// One step of a hand-written spin wait (the locks' relax step).
#[inline(always)]
pub fn relax() {
    <Relax as spin::RelaxStrategy>::relax();
}

/// Storage written by the primary core alone, before any other core runs
/// (at boot, with the MMU off or just after), and only read afterwards.
pub struct BootCell<T>(pub core::cell::UnsafeCell<T>);

// SAFETY: every BootCell is written only on the primary core before the
// secondaries are released, and only read afterwards.
unsafe impl<T> Sync for BootCell<T> {}

impl<T> BootCell<T> {
    /// A cell holding `v`.
    pub const fn new(v: T) -> Self {
        Self(core::cell::UnsafeCell::new(v))
    }
}
