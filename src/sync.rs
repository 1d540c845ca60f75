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

use core::cell::UnsafeCell;
use core::ops::{Deref, DerefMut};
use core::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

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

/// How many cores the dead-core set can name.
const MAX_CORES: usize = 64;

/// Cores that panicked or took an exception nothing handles: parked for
/// good, so a lock one of them holds is never released by it.
static DEAD: AtomicU64 = AtomicU64::new(0);

/// How many locks were taken over from a dead core.
static TAKEOVERS: AtomicUsize = AtomicUsize::new(0);

/// Marks `core` as dead (the fault path, before it reports): the locks it
/// holds go to the next core that asks for them, the dead core included.
/// An atomic: only with the MMU on (never inlined, so the disassembly
/// check can tell it from [`mark_dead_early`]).
#[inline(never)]
pub fn mark_dead(core: usize) {
    if core < MAX_CORES {
        DEAD.fetch_or(1 << core, Ordering::AcqRel);
    }
}

/// Marks `core` as dead with a plain load and store (no exclusive): the
/// fault path with the MMU off, where only one core runs.
pub fn mark_dead_early(core: usize) {
    if core < MAX_CORES {
        let d = DEAD.load(Ordering::Relaxed);
        DEAD.store(d | 1 << core, Ordering::Relaxed);
    }
}

/// Whether `core` was marked dead.
pub fn is_dead(core: usize) -> bool {
    core < MAX_CORES && DEAD.load(Ordering::Acquire) & (1 << core) != 0
}

/// How many locks were taken over from a dead core since boot.
pub fn takeovers() -> usize {
    TAKEOVERS.load(Ordering::Relaxed)
}

/// The logical core running this code: TPIDR_EL2 on the target (set at
/// boot); on the host a per-thread number tests set ([`set_test_core`]).
#[inline(always)]
pub fn current_core() -> usize {
    #[cfg(target_os = "none")]
    return hints::core_index() & 0xffff;
    #[cfg(all(not(target_os = "none"), test))]
    return TEST_CORE.with(|c| c.get());
    #[cfg(all(not(target_os = "none"), not(test)))]
    return 0;
}

#[cfg(all(not(target_os = "none"), test))]
std::thread_local! {
    static TEST_CORE: core::cell::Cell<usize> = const { core::cell::Cell::new(0) };
}

/// Host tests: the core number this thread plays.
#[cfg(all(not(target_os = "none"), test))]
pub fn set_test_core(c: usize) {
    TEST_CORE.with(|x| x.set(c));
}

/// A spin lock whose waiters yield, recording its holder's core.
///
/// A core that panics is parked with whatever locks it held (there is no
/// unwinding). So that this is never a deadlock for the others, the fault
/// path marks its core dead ([`mark_dead`]) and a waiter that finds a dead
/// holder takes the lock over: the data is what it was at the panic, as
/// after a poisoned std mutex's `into_inner` (Rust's own types stay
/// memory-safe at any panic point; the hypervisor's data has no unsafe
/// invariants a half-done update could break). The dead core itself may
/// take its own locks again, so its report never waits on itself.
pub struct Mutex<T: ?Sized> {
    /// 0: free; otherwise the holder's core + 1.
    owner: AtomicUsize,
    data: UnsafeCell<T>,
}

// SAFETY: the lock hands out one guard at a time (the owner word is taken
// with acquire and given back with release); T moves between cores with it.
unsafe impl<T: ?Sized + Send> Sync for Mutex<T> {}
// SAFETY: as above.
unsafe impl<T: ?Sized + Send> Send for Mutex<T> {}

impl<T> Mutex<T> {
    /// A free lock around `v`.
    pub const fn new(v: T) -> Self {
        Self {
            owner: AtomicUsize::new(0),
            data: UnsafeCell::new(v),
        }
    }

    /// The value, consuming the lock.
    pub fn into_inner(self) -> T {
        self.data.into_inner()
    }
}

impl<T: ?Sized> Mutex<T> {
    /// Takes the lock, waiting (with the relax step) while a live core
    /// holds it; takes it over from a dead one.
    #[inline]
    pub fn lock(&self) -> MutexGuard<'_, T> {
        let me = current_core() + 1;
        loop {
            match self
                .owner
                .compare_exchange_weak(0, me, Ordering::Acquire, Ordering::Relaxed)
            {
                Ok(_) => return MutexGuard { lock: self },
                Err(0) => continue,
                Err(o) => {
                    if is_dead(o - 1)
                        && self
                            .owner
                            .compare_exchange(o, me, Ordering::Acquire, Ordering::Relaxed)
                            .is_ok()
                    {
                        TAKEOVERS.fetch_add(1, Ordering::Relaxed);
                        return MutexGuard { lock: self };
                    }
                    while self.owner.load(Ordering::Relaxed) == o && !is_dead(o - 1) {
                        relax();
                    }
                }
            }
        }
    }

    /// Takes the lock if it is free (or held by a dead core).
    #[inline]
    pub fn try_lock(&self) -> Option<MutexGuard<'_, T>> {
        let me = current_core() + 1;
        match self
            .owner
            .compare_exchange(0, me, Ordering::Acquire, Ordering::Relaxed)
        {
            Ok(_) => Some(MutexGuard { lock: self }),
            Err(o) if is_dead(o - 1) => {
                let ok = self
                    .owner
                    .compare_exchange(o, me, Ordering::Acquire, Ordering::Relaxed)
                    .is_ok();
                ok.then(|| {
                    TAKEOVERS.fetch_add(1, Ordering::Relaxed);
                    MutexGuard { lock: self }
                })
            }
            Err(_) => None,
        }
    }

    /// Whether some core holds the lock.
    pub fn is_locked(&self) -> bool {
        self.owner.load(Ordering::Relaxed) != 0
    }

    /// The value, through exclusive access to the lock.
    pub fn get_mut(&mut self) -> &mut T {
        self.data.get_mut()
    }
}

impl<T: Default> Default for Mutex<T> {
    fn default() -> Self {
        Self::new(T::default())
    }
}

/// Access to a [`Mutex`]'s value; the lock is given back when dropped.
pub struct MutexGuard<'a, T: ?Sized> {
    lock: &'a Mutex<T>,
}

impl<T: ?Sized> Deref for MutexGuard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        // SAFETY: the guard holds the lock.
        unsafe { &*self.lock.data.get() }
    }
}

impl<T: ?Sized> DerefMut for MutexGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        // SAFETY: the guard holds the lock.
        unsafe { &mut *self.lock.data.get() }
    }
}

impl<T: ?Sized> Drop for MutexGuard<'_, T> {
    fn drop(&mut self) {
        self.lock.owner.store(0, Ordering::Release);
    }
}
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicBool;
    use std::sync::Arc;

    // Cores 40..47 are these tests' own: the dead-core set is global.

    #[test]
    fn a_lock_held_by_a_live_core_is_not_taken() {
        set_test_core(40);
        let m = Mutex::new(1);
        let g = m.lock();
        assert!(m.is_locked());
        set_test_core(41);
        assert!(m.try_lock().is_none());
        drop(g);
        assert_eq!(*m.try_lock().unwrap(), 1);
        assert!(!m.is_locked());
    }

    #[test]
    fn a_lock_held_by_a_dead_core_is_taken_over() {
        let m = Arc::new(Mutex::new(Vec::<u32>::new()));
        let parked = Arc::new(AtomicBool::new(false));
        // Core 42 takes the lock, changes the data and "panics": it never
        // gives the lock back.
        let (m2, p2) = (m.clone(), parked.clone());
        let t = std::thread::spawn(move || {
            set_test_core(42);
            let mut g = m2.lock();
            g.push(7);
            core::mem::forget(g);
            mark_dead(42);
            p2.store(true, Ordering::Release);
        });
        t.join().unwrap();
        assert!(parked.load(Ordering::Acquire));
        set_test_core(43);
        let before = takeovers();
        let g = m.lock();
        assert_eq!(*g, [7]);
        assert!(takeovers() > before);
        drop(g);
        assert!(!m.is_locked());
    }

    #[test]
    fn a_waiter_wakes_when_the_holder_dies_while_it_waits() {
        let m = Arc::new(Mutex::new(0u32));
        set_test_core(44);
        let g = m.lock();
        let m2 = m.clone();
        let waiter = std::thread::spawn(move || {
            set_test_core(45);
            *m2.lock() += 1;
        });
        std::thread::sleep(std::time::Duration::from_millis(20));
        core::mem::forget(g);
        mark_dead(44);
        waiter.join().unwrap();
        assert_eq!(*m.lock(), 1);
    }

    #[test]
    fn a_dead_core_retakes_its_own_lock_to_report() {
        set_test_core(46);
        let m = Mutex::new(5);
        core::mem::forget(m.lock());
        mark_dead(46);
        // Without the takeover this would spin on itself for ever.
        assert_eq!(*m.lock(), 5);
        assert!(!m.is_locked());
    }

    #[test]
    fn out_of_range_cores_are_never_dead() {
        mark_dead(MAX_CORES + 3);
        assert!(!is_dead(MAX_CORES + 3));
        mark_dead_early(47);
        assert!(is_dead(47));
    }
}
