//! What happens when a VM ends: its restart policy (configuration key
//! `policy`), decided here, carried out by the hypervisor (hyp::run).
//!
//! A VM ends when it powers off (PSCI SYSTEM_OFF), asks for a reset (PSCI
//! SYSTEM_RESET), or crashes: it takes an exception it cannot handle (its
//! vector table is not in its RAM), causes an SError, or lets its
//! watchdog expire.
//!
//! | policy      | power-off | reset   | crash   |
//! |-------------|-----------|---------|---------|
//! | (default)   | halt      | restart | halt    |
//! | `halt`      | halt      | halt    | halt    |
//! | `restart`   | restart   | restart | restart |
//! | `restart N` | restart while fewer than N restarts were made, then halt |
//!
//! A restart cleans the VM completely and boots it again from the bundle's
//! images; a halt leaves its cores idle. The other VMs never notice.

use core::fmt;

/// The configured policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RestartPolicy {
    /// Resets restart, power-off and crashes halt.
    #[default]
    Default,
    /// Every end halts the VM.
    Halt,
    /// Every end restarts it, at most `max` times in all (None: always).
    Restart {
        /// The most restarts.
        max: Option<u32>,
    },
}

/// Why a VM ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum End {
    /// PSCI SYSTEM_OFF.
    PowerOff,
    /// PSCI SYSTEM_RESET.
    Reset,
    /// A crash (an exception it cannot take, an SError, its watchdog).
    Crash,
}

/// What to do about it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Stop the VM; its cores stay idle.
    Halt,
    /// Clean it and boot it again.
    Restart,
}

/// The most restarts `restart N` may ask for.
pub const MAX_RESTARTS: u32 = 1_000_000;

impl RestartPolicy {
    /// Parses `halt`, `restart` or `restart N` (N 1 to [`MAX_RESTARTS`]).
    pub fn parse(s: &str) -> Result<Self, &'static str> {
        let mut w = s.split_whitespace();
        let p = match (w.next(), w.next()) {
            (Some("halt"), None) => RestartPolicy::Halt,
            (Some("restart"), None) => RestartPolicy::Restart { max: None },
            (Some("restart"), Some(n)) => {
                let n: u32 = n
                    .parse()
                    .map_err(|_| "the restart count must be a number")?;
                if n == 0 || n > MAX_RESTARTS {
                    return Err("the restart count must be 1 to 1000000 (or use halt)");
                }
                RestartPolicy::Restart { max: Some(n) }
            }
            _ => return Err("expected halt, restart or restart N"),
        };
        if w.next().is_some() {
            return Err("expected halt, restart or restart N");
        }
        Ok(p)
    }

    /// What to do when the VM ends with `end`, after `restarts` restarts.
    pub fn decide(self, end: End, restarts: u32) -> Action {
        match self {
            RestartPolicy::Default => match end {
                End::Reset => Action::Restart,
                End::PowerOff | End::Crash => Action::Halt,
            },
            RestartPolicy::Halt => Action::Halt,
            RestartPolicy::Restart { max: None } => Action::Restart,
            RestartPolicy::Restart { max: Some(n) } => {
                if restarts < n {
                    Action::Restart
                } else {
                    Action::Halt
                }
            }
        }
    }
}

impl fmt::Display for RestartPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RestartPolicy::Default => {
                f.write_str("default (reset restarts; power-off and crashes halt)")
            }
            RestartPolicy::Halt => f.write_str("halt"),
            RestartPolicy::Restart { max: None } => f.write_str("restart"),
            RestartPolicy::Restart { max: Some(n) } => write!(f, "restart {n}"),
        }
    }
}

/// A VM's run state, shared by its vCPUs' cores.
pub mod state {
    /// Running (some vCPUs may be off).
    pub const RUNNING: u8 = 0;
    /// Stopped by SYSTEM_OFF, a crash or its policy.
    pub const OFF: u8 = 1;
    /// Being reloaded (SYSTEM_RESET, a restart by its policy).
    pub const RESETTING: u8 = 2;
}

/// Moves a running VM's `state` to `to` (OFF or RESETTING) and says
/// whether this caller won: the first decision to end a VM wins, and a
/// later one (another vCPU halting while it resets, or resetting while it
/// halts) is dropped instead of overwriting it.
pub fn claim_end(state: &core::sync::atomic::AtomicU8, to: u8) -> bool {
    use core::sync::atomic::Ordering::{AcqRel, Acquire};
    state
        .compare_exchange(state::RUNNING, to, AcqRel, Acquire)
        .is_ok()
}

/// How a VM's restart loop is backed off (configuration key `backoff`,
/// e.g. `backoff = 100ms 10s`, or `backoff = off`): the first wait and
/// the longest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BackoffConfig {
    /// The first wait in ms (0: never wait).
    pub first_ms: u64,
    /// The longest wait in ms.
    pub max_ms: u64,
}

impl Default for BackoffConfig {
    fn default() -> Self {
        BackoffConfig {
            first_ms: 100,
            max_ms: 10_000,
        }
    }
}

/// The longest wait a configuration may ask for: an hour.
pub const MAX_BACKOFF_MS: u64 = 3_600_000;

/// Parses a duration: a number with `ms` or `s` (e.g. `250ms`, `10s`).
fn parse_ms(s: &str) -> Option<u64> {
    if let Some(n) = s.strip_suffix("ms") {
        n.parse::<u64>().ok()
    } else {
        s.strip_suffix('s')?.parse::<u64>().ok()?.checked_mul(1000)
    }
}

impl BackoffConfig {
    /// Parses `off` or `FIRST MAX` (durations in `ms` or `s`; FIRST at
    /// least 1 ms, MAX from FIRST to an hour).
    pub fn parse(s: &str) -> Result<Self, &'static str> {
        let w: alloc::vec::Vec<&str> = s.split_whitespace().collect();
        match w[..] {
            ["off"] => Ok(BackoffConfig {
                first_ms: 0,
                max_ms: 0,
            }),
            [a, b] => {
                let (Some(first_ms), Some(max_ms)) = (parse_ms(a), parse_ms(b)) else {
                    return Err("durations are a number with ms or s, e.g. 100ms 10s");
                };
                if first_ms == 0 || first_ms > max_ms || max_ms > MAX_BACKOFF_MS {
                    return Err("the first wait must be at least 1 ms and at most the longest, the longest at most 3600s");
                }
                Ok(BackoffConfig { first_ms, max_ms })
            }
            _ => Err("expected off, or the first and the longest wait (e.g. 100ms 10s)"),
        }
    }
}

impl fmt::Display for BackoffConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.first_ms == 0 {
            f.write_str("off")
        } else {
            write!(f, "{}ms {}ms", self.first_ms, self.max_ms)
        }
    }
}

/// Restart-loop detection: a VM that keeps ending soon after it starts
/// (SYSTEM_RESET as its first instruction restarted about 40 times a
/// second, a log line pair each) waits before each further start, the
/// wait doubling from the configured first wait up to its cap; a VM that
/// lives long enough starts over.
#[derive(Debug, Clone, Copy, Default)]
pub struct Backoff {
    /// Counter time of the VM's last start.
    started: u64,
    /// Restarts in a row that came within [`Backoff::SHORT_LIFE_MS`] of
    /// their start.
    quick: u32,
    cfg: BackoffConfig,
}

impl Backoff {
    /// A life shorter than this counts toward a loop.
    pub const SHORT_LIFE_MS: u64 = 1000;
    /// Quick restarts allowed before the waits begin.
    pub const FREE: u32 = 3;

    /// A backoff with waits as `cfg` says.
    pub fn new(cfg: BackoffConfig) -> Self {
        Backoff {
            cfg,
            ..Default::default()
        }
    }

    /// The VM (re)started at counter time `now`.
    pub fn started(&mut self, now: u64) {
        self.started = now;
    }

    /// A start asked for by the operator (the monitor's `start`): no
    /// loop is going on, the next quick restarts count from zero.
    pub fn forget_loop(&mut self) {
        self.quick = 0;
    }

    /// Counter time of the VM's last start.
    pub fn started_at(&self) -> u64 {
        self.started
    }

    /// The VM ends at `now` (counter frequency `freq`) and restarts: how
    /// many milliseconds to wait before it starts again (0: at once), and
    /// how many quick restarts in a row this makes.
    pub fn restart(&mut self, now: u64, freq: u64) -> (u64, u32) {
        let life_ms = now.saturating_sub(self.started).saturating_mul(1000) / freq.max(1);
        if life_ms >= Self::SHORT_LIFE_MS {
            self.quick = 0;
        }
        self.quick = self.quick.saturating_add(1);
        let wait = match self.quick.checked_sub(Self::FREE + 1) {
            None => 0,
            Some(k) => self
                .cfg
                .first_ms
                .checked_shl(k.min(32))
                .filter(|w| w >> k.min(32) == self.cfg.first_ms)
                .unwrap_or(self.cfg.max_ms)
                .min(self.cfg.max_ms),
        };
        (wait, self.quick)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_three_forms_and_refuses_the_rest() {
        assert_eq!(RestartPolicy::parse("halt"), Ok(RestartPolicy::Halt));
        assert_eq!(
            RestartPolicy::parse("restart"),
            Ok(RestartPolicy::Restart { max: None })
        );
        assert_eq!(
            RestartPolicy::parse(" restart   3 "),
            Ok(RestartPolicy::Restart { max: Some(3) })
        );
        for bad in [
            "",
            "reboot",
            "restart 0",
            "restart -1",
            "restart x",
            "restart 2000000",
            "halt now",
            "restart 1 2",
        ] {
            assert!(RestartPolicy::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn decides_by_the_table() {
        use Action::*;
        use End::*;
        let d = RestartPolicy::Default;
        assert_eq!(
            [
                d.decide(PowerOff, 0),
                d.decide(Reset, 7),
                d.decide(Crash, 0)
            ],
            [Halt, Restart, Halt]
        );
        let h = RestartPolicy::Halt;
        assert_eq!(
            [
                h.decide(PowerOff, 0),
                h.decide(Reset, 0),
                h.decide(Crash, 0)
            ],
            [Halt; 3]
        );
        let r = RestartPolicy::Restart { max: None };
        assert_eq!(
            [
                r.decide(PowerOff, 9),
                r.decide(Reset, 9),
                r.decide(Crash, u32::MAX)
            ],
            [Restart; 3]
        );
        let n = RestartPolicy::Restart { max: Some(2) };
        assert_eq!(n.decide(Crash, 0), Restart);
        assert_eq!(n.decide(Reset, 1), Restart);
        assert_eq!(n.decide(Crash, 2), Halt);
        assert_eq!(n.decide(PowerOff, 5), Halt);
    }

    #[test]
    fn the_first_decision_to_end_a_vm_wins() {
        use core::sync::atomic::{AtomicU8, Ordering};
        let s = AtomicU8::new(state::RUNNING);
        assert!(claim_end(&s, state::RESETTING));
        assert!(
            !claim_end(&s, state::OFF),
            "a halt during a reset is dropped"
        );
        assert_eq!(s.load(Ordering::Relaxed), state::RESETTING);
        s.store(state::RUNNING, Ordering::Relaxed);
        assert!(claim_end(&s, state::OFF));
        assert!(!claim_end(&s, state::RESETTING));
        assert_eq!(s.load(Ordering::Relaxed), state::OFF);
    }

    #[test]
    fn a_restart_loop_waits_longer_each_time_and_a_long_life_starts_over() {
        let f = 1000; // counter ticks per second: 1 tick = 1 ms
        let mut b = Backoff::default();
        let mut t = 0;
        let mut waits = std::vec::Vec::new();
        for _ in 0..12 {
            b.started(t);
            t += 20; // ends 20 ms after it started
            let (w, _) = b.restart(t, f);
            waits.push(w);
            t += w;
        }
        assert_eq!(
            waits,
            [0, 0, 0, 100, 200, 400, 800, 1600, 3200, 6400, 10_000, 10_000]
        );
        // A life past SHORT_LIFE_MS: no wait, and the count starts over.
        b.started(t);
        t += 5000;
        assert_eq!(b.restart(t, f), (0, 1));
        // An operator's start forgets a loop in progress.
        for _ in 0..6 {
            b.started(t);
            t += 20;
            b.restart(t, f);
        }
        b.forget_loop();
        b.started(t);
        assert_eq!(b.restart(t + 20, f), (0, 1));
        // Hostile clocks and frequencies stay sane.
        let mut h = Backoff::new(BackoffConfig::default());
        h.started(u64::MAX);
        for _ in 0..100 {
            let (w, _) = h.restart(0, 0);
            assert!(w <= 10_000);
        }
    }

    #[test]
    fn the_backoff_is_configured_per_vm() {
        assert_eq!(
            BackoffConfig::parse("100ms 10s"),
            Ok(BackoffConfig::default())
        );
        let c = BackoffConfig::parse(" 2s  1m ".replace("1m", "60s").as_str()).unwrap();
        assert_eq!((c.first_ms, c.max_ms), (2000, 60_000));
        assert_eq!(BackoffConfig::parse("off").unwrap().first_ms, 0);
        for bad in [
            "",
            "off 1s",
            "100 10s",
            "0ms 1s",
            "2s 1s",
            "1s 3601s",
            "1s",
            "1s 2s 3s",
            "-1s 2s",
            "99999999999999999999s 1s",
            "18446744073709552s 18446744073709552s",
        ] {
            assert!(BackoffConfig::parse(bad).is_err(), "{bad:?}");
        }
        assert_eq!(
            std::format!("{}", BackoffConfig::default()),
            "100ms 10000ms"
        );
        // Waits from the configured first one, doubling to the cap.
        let f = 1000;
        let mut b = Backoff::new(BackoffConfig::parse("1s 5s").unwrap());
        let waits: std::vec::Vec<u64> = (0..8).map(|_| b.restart(0, f).0).collect();
        assert_eq!(waits, [0, 0, 0, 1000, 2000, 4000, 5000, 5000]);
        // Off: never a wait, however quick the loop.
        let mut b = Backoff::new(BackoffConfig::parse("off").unwrap());
        assert!((0..50).all(|_| b.restart(0, f).0 == 0));
        // A huge first wait never overflows past the cap.
        let mut b = Backoff::new(BackoffConfig {
            first_ms: MAX_BACKOFF_MS,
            max_ms: MAX_BACKOFF_MS,
        });
        assert!((0..100).all(|_| b.restart(0, f).0 <= MAX_BACKOFF_MS));
    }
}
