//! Exit statistics: why vCPUs left their guests, counted per vCPU. Pure.

/// Why a vCPU left the guest, for the exit counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitKind {
    /// A physical interrupt (timer, kick, device, maintenance).
    Irq = 0,
    /// An emulated GICD access.
    Gicd,
    /// Another emulated MMIO access (a device model).
    Mmio,
    /// HVC or SMC (PSCI, SMCCC, pivisor's own calls).
    Call,
    /// A trapped system register or cache operation.
    SysReg,
    /// A trapped WFI or WFE.
    Wfx,
    /// A fault answered with an injected abort or UNDEFINED.
    Fault,
    /// An SError from the guest.
    SError,
}

/// How many [`ExitKind`]s there are.
pub const EXIT_KINDS: usize = 8;

/// Exit counts by kind (a snapshot, or a sum over vCPUs).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ExitCounts(pub [u64; EXIT_KINDS]);

impl ExitCounts {
    /// The kinds' names, in [`ExitKind`] order.
    pub const NAMES: [&'static str; EXIT_KINDS] = [
        "irq", "gicd", "mmio", "hvc/smc", "sysreg", "wfx", "fault", "serror",
    ];

    /// All exits.
    pub fn total(&self) -> u64 {
        self.0.iter().sum()
    }

    /// The answer to pivisor's exit-count call for selector `which`: 0
    /// for all exits, 1 + an [`ExitKind`] for one kind, else None.
    pub fn select(&self, which: u64) -> Option<u64> {
        match which {
            0 => Some(self.total()),
            k => self.0.get(usize::try_from(k - 1).ok()?).copied(),
        }
    }
}

impl core::ops::AddAssign for ExitCounts {
    fn add_assign(&mut self, o: Self) {
        for (a, b) in self.0.iter_mut().zip(o.0) {
            *a += b;
        }
    }
}

impl core::fmt::Display for ExitCounts {
    /// `N (irq a, gicd b, ...)`, kinds with no exits left out.
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "{}", self.total())?;
        let mut first = true;
        for (n, name) in self.0.iter().zip(Self::NAMES) {
            if *n > 0 {
                write!(f, "{}{name} {n}", if first { " (" } else { ", " })?;
                first = false;
            }
        }
        if !first {
            f.write_str(")")?;
        }
        Ok(())
    }
}

/// One vCPU's exit counts since its VM (re)started. Only the vCPU's own
/// core records (a plain load and store, no atomic read-modify-write on
/// the exit path); any core may read.
#[derive(Debug, Default)]
pub struct ExitStats {
    counts: [core::sync::atomic::AtomicU64; EXIT_KINDS],
}

impl ExitStats {
    /// Counts one exit (on the vCPU's own core).
    pub fn record(&self, k: ExitKind) {
        use core::sync::atomic::Ordering::Relaxed;
        let c = &self.counts[k as usize];
        c.store(c.load(Relaxed) + 1, Relaxed);
    }

    /// The counts now.
    pub fn snapshot(&self) -> ExitCounts {
        let mut out = ExitCounts::default();
        for (o, c) in out.0.iter_mut().zip(&self.counts) {
            *o = c.load(core::sync::atomic::Ordering::Relaxed);
        }
        out
    }

    /// Starts counting again (SYSTEM_RESET, with the vCPU stopped).
    pub fn reset(&self) {
        for c in &self.counts {
            c.store(0, core::sync::atomic::Ordering::Relaxed);
        }
    }
}

#[cfg(test)]
#[path = "stats_tests.rs"]
mod tests;
