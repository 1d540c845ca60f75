//! Rate-limited logging: a guest that faults in a loop must not drown the
//! console. At most [`RateLimit::BURST`] lines per second per limiter (or
//! the limiter's own budget); the next allowed line says how many were
//! suppressed. Pure logic.

/// A per-VM line budget.
#[derive(Debug, Clone, Copy)]
pub struct RateLimit {
    window_start: u64,
    used: u32,
    suppressed: u64,
    /// Lines per window (at least one).
    burst: u32,
}

impl Default for RateLimit {
    fn default() -> Self {
        Self::new()
    }
}

impl RateLimit {
    /// Lines allowed per one-second window.
    pub const BURST: u32 = 10;

    /// A fresh limiter.
    pub const fn new() -> Self {
        Self::with_burst(Self::BURST)
    }

    /// A limiter allowing `burst` lines per second (at least one).
    pub const fn with_burst(burst: u32) -> Self {
        Self {
            window_start: 0,
            used: 0,
            suppressed: 0,
            burst: if burst == 0 { 1 } else { burst },
        }
    }

    /// Asks to log at counter time `now` (counter frequency `freq`).
    /// `Some(n)`: log, and mention `n` suppressed lines if non-zero;
    /// `None`: stay quiet (counted).
    pub fn allow(&mut self, now: u64, freq: u64) -> Option<u64> {
        if now.wrapping_sub(self.window_start) >= freq.max(1) || self.used == 0 {
            self.window_start = now;
            self.used = 0;
        }
        if self.used >= self.burst.max(1) {
            self.suppressed += 1;
            return None;
        }
        self.used += 1;
        Some(core::mem::take(&mut self.suppressed))
    }

    /// Lines suppressed and not yet reported.
    pub fn pending(&self) -> u64 {
        self.suppressed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bursts_then_suppresses_then_reports() {
        let mut r = RateLimit::new();
        for i in 0..RateLimit::BURST as u64 {
            assert_eq!(r.allow(100 + i, 1000), Some(0));
        }
        for i in 0..500 {
            assert_eq!(r.allow(200 + i, 1000), None);
        }
        assert_eq!(r.pending(), 500);
        assert_eq!(
            r.allow(1100, 1000),
            Some(500),
            "new window reports the count"
        );
        assert_eq!(r.allow(1101, 1000), Some(0));
        assert_eq!(r.pending(), 0);
    }

    #[test]
    fn a_limiter_has_its_own_budget() {
        let mut r = RateLimit::with_burst(100);
        assert!((0..100).all(|i| r.allow(i, 1000).is_some()));
        assert_eq!(r.allow(100, 1000), None);
        assert_eq!(RateLimit::with_burst(0).allow(0, 1), Some(0), "never zero");
        // The default budget is BURST.
        let mut d = RateLimit::default();
        assert_eq!(
            (0..50).filter(|&i| d.allow(i, 1000).is_some()).count(),
            RateLimit::BURST as usize
        );
    }

    #[test]
    fn odd_clocks_do_not_break_it() {
        let mut r = RateLimit::new();
        assert_eq!(r.allow(u64::MAX, 0), Some(0));
        assert_eq!(r.allow(3, 0), Some(0), "counter wrap starts a new window");
    }
}
