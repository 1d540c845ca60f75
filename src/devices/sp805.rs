//! An ARM SP805 watchdog (device tree "arm,sp805", "arm,primecell";
//! configuration `devices = watchdog`), as the SP805 TRM (ARM DDI 0270B)
//! describes it and Linux's sp805_wdt drives it.
//!
//! | offset      | register                                                  |
//! |-------------|-----------------------------------------------------------|
//! | 0x000       | WdogLoad: the count to reload (minimum 1)                 |
//! | 0x004       | WdogValue, read-only: the count now                       |
//! | 0x008       | WdogControl: bit 0 INTEN (counting, interrupt), bit 1     |
//! |             | RESEN (reset on the second expiry)                        |
//! | 0x00c       | WdogIntClr, write-only: clears the interrupt, reloads     |
//! | 0x010/0x014 | WdogRIS / WdogMIS, read-only                              |
//! | 0xc00       | WdogLock: 0x1ACCE551 unlocks, anything else locks; reads  |
//! |             | 1 while locked (then writes to the others are ignored)    |
//! | 0xf00/0xf04 | WdogITCR / WdogITOP (integration test): zero, ignored     |
//! | 0xfe0-0xffc | PeriphID 0x00141805, PCellID 0xb105f00d                   |
//!
//! The counter runs at the watchdog clock (the VM's device tree gives it
//! as a fixed clock of [`CLOCK_HZ`]); time comes from the `now` closure in
//! that clock's ticks, so the model is pure. With INTEN set it counts down
//! from WdogLoad; at zero the interrupt is raised (RIS) and it reloads; if
//! it reaches zero again with the interrupt still raised and RESEN set, the
//! watchdog resets the system: [`Sp805::expired`] says so, and the
//! hypervisor ends the VM as a crash (its restart policy decides). The
//! interrupt itself is not wired to the VM (Linux's driver does not use it).

use crate::devices::bus::{MmioDevice, MmioError};
use alloc::boxed::Box;

/// The watchdog clock the VM's device tree describes.
pub const CLOCK_HZ: u64 = 1_000_000;
/// The register block's size.
pub const SIZE: u64 = 0x1000;
/// The value that unlocks the registers.
pub const UNLOCK: u32 = 0x1acc_e551;
/// PeriphID0-3 and PCellID0-3 (0xfe0-0xffc).
pub const ID: [u32; 8] = [0x05, 0x18, 0x14, 0x00, 0x0d, 0xf0, 0x05, 0xb1];

const INTEN: u32 = 1 << 0;
const RESEN: u32 = 1 << 1;

/// Ticks of the watchdog clock now.
pub type Clock = Box<dyn Fn() -> u64 + Send>;

/// The emulated watchdog.
pub struct Sp805 {
    now: Clock,
    load: u32,
    control: u32,
    ris: bool,
    locked: bool,
    /// When the current count started (ticks).
    start: u64,
    /// Latched: the watchdog reset the system.
    fired: bool,
}

impl Sp805 {
    /// A watchdog as after reset: not counting, unlocked.
    pub fn new(now: Clock) -> Self {
        Self {
            now,
            load: u32::MAX,
            control: 0,
            ris: false,
            locked: false,
            start: 0,
            fired: false,
        }
    }

    /// Back to the reset state (the VM restarts).
    pub fn reset(&mut self) {
        self.load = u32::MAX;
        self.control = 0;
        self.ris = false;
        self.locked = false;
        self.fired = false;
    }

    fn period(&self) -> u64 {
        u64::from(self.load) + 1
    }

    /// Brings the state up to `now`: expiries since the last look.
    fn update(&mut self, now: u64) {
        if self.control & INTEN == 0 || self.fired {
            return;
        }
        let p = self.period();
        let mut n = now.saturating_sub(self.start) / p;
        if n == 0 {
            return;
        }
        self.start += n * p;
        if !self.ris {
            self.ris = true;
            n -= 1;
        }
        if n > 0 && self.control & RESEN != 0 {
            self.fired = true;
        }
    }

    /// Whether the watchdog has reset the system (checked at `now`).
    pub fn expired(&mut self) -> bool {
        let now = (self.now)();
        self.update(now);
        self.fired
    }

    /// When, in ticks, it will reset the system if nobody feeds it (None:
    /// it cannot: not counting, or RESEN clear).
    pub fn deadline(&self) -> Option<u64> {
        if self.fired {
            return Some(self.start);
        }
        if self.control & (INTEN | RESEN) != INTEN | RESEN {
            return None;
        }
        let p = self.period();
        Some(self.start + if self.ris { p } else { 2 * p })
    }

    /// The count now.
    fn value(&mut self, now: u64) -> u32 {
        self.update(now);
        if self.control & INTEN == 0 {
            return self.load;
        }
        let p = self.period();
        (p - 1 - (now.saturating_sub(self.start) % p)) as u32
    }
}

impl MmioDevice for Sp805 {
    fn reset(&mut self) {
        Sp805::reset(self);
    }

    fn name(&self) -> &str {
        "sp805"
    }

    fn read(&mut self, offset: u64, width: u8) -> Result<u64, MmioError> {
        if width != 4 || !offset.is_multiple_of(4) {
            return Err(MmioError::BadWidth);
        }
        let now = (self.now)();
        self.update(now);
        let v = match offset {
            0x000 => self.load,
            0x004 => self.value(now),
            0x008 => self.control,
            0x010 => u32::from(self.ris),
            0x014 => u32::from(self.ris && self.control & INTEN != 0),
            0xc00 => u32::from(self.locked),
            0xf00 | 0xf04 => 0,
            0xfe0..=0xffc => ID[((offset - 0xfe0) / 4) as usize],
            0x00c => return Err(MmioError::BadDirection),
            _ => return Err(MmioError::BadOffset),
        };
        Ok(u64::from(v))
    }

    fn write(&mut self, offset: u64, width: u8, value: u64) -> Result<(), MmioError> {
        if width != 4 || !offset.is_multiple_of(4) {
            return Err(MmioError::BadWidth);
        }
        let value = value as u32;
        let now = (self.now)();
        self.update(now);
        match offset {
            0xc00 => {
                self.locked = value != UNLOCK;
                return Ok(());
            }
            0x004 | 0x010 | 0x014 | 0xfe0..=0xffc => return Err(MmioError::BadDirection),
            0x000 | 0x008 | 0x00c | 0xf00 | 0xf04 => {}
            _ => return Err(MmioError::BadOffset),
        }
        if self.locked || self.fired {
            return Ok(()); // locked: ignored, as the hardware does
        }
        match offset {
            0x000 => {
                self.load = value.max(1);
                self.start = now;
            }
            0x008 => {
                let was = self.control & INTEN;
                self.control = value & (INTEN | RESEN);
                if was == 0 && self.control & INTEN != 0 {
                    self.start = now; // counting starts from the load value
                }
            }
            0x00c => {
                self.ris = false;
                self.start = now;
            }
            _ => {} // integration test registers
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::Arc;

    fn dog() -> (Sp805, Arc<AtomicU64>) {
        let t = Arc::new(AtomicU64::new(1000));
        let c = t.clone();
        (Sp805::new(Box::new(move || c.load(Ordering::SeqCst))), t)
    }

    #[test]
    fn ids_and_reset_state() {
        let (mut d, _) = dog();
        let id: Vec<u64> = (0..8).map(|i| d.read(0xfe0 + 4 * i, 4).unwrap()).collect();
        assert_eq!(id, [0x05, 0x18, 0x14, 0x00, 0x0d, 0xf0, 0x05, 0xb1]);
        assert_eq!(d.read(0, 4), Ok(0xffff_ffff));
        assert_eq!(d.read(8, 4), Ok(0));
        assert_eq!(d.deadline(), None);
        assert!(!d.expired());
    }

    #[test]
    fn fed_it_never_fires_starved_it_fires_on_the_second_expiry() {
        let (mut d, t) = dog();
        d.write(0, 4, 99).unwrap(); // period 100 ticks
        d.write(8, 4, 3).unwrap(); // INTEN | RESEN
        assert_eq!(d.deadline(), Some(1000 + 200));
        // Linux's ping: reload and clear, well within the period.
        for _ in 0..50 {
            t.fetch_add(60, Ordering::SeqCst);
            assert!(!d.expired());
            d.write(0, 4, 99).unwrap();
            d.write(0xc, 4, 0).unwrap();
        }
        let fed = t.load(Ordering::SeqCst);
        assert_eq!(d.read(0x10, 4), Ok(0));
        // First expiry: the interrupt, not the reset.
        t.store(fed + 100, Ordering::SeqCst);
        assert!(!d.expired());
        assert_eq!(d.read(0x10, 4), Ok(1));
        assert_eq!(d.deadline(), Some(fed + 200));
        // Second: the reset, latched.
        t.store(fed + 200, Ordering::SeqCst);
        assert!(d.expired());
        d.write(0xc, 4, 0).unwrap();
        assert!(d.expired(), "a fired watchdog stays fired");
        d.reset();
        assert!(!d.expired());
        assert_eq!(d.read(8, 4), Ok(0));
    }

    #[test]
    fn a_long_silence_is_one_reset_and_value_counts_down() {
        let (mut d, t) = dog();
        d.write(0, 4, 9).unwrap();
        d.write(8, 4, 1).unwrap(); // INTEN only: no reset
        t.fetch_add(3, Ordering::SeqCst);
        assert_eq!(d.read(4, 4), Ok(6));
        t.fetch_add(1_000_000, Ordering::SeqCst);
        assert!(!d.expired(), "RESEN clear: never a reset");
        assert_eq!(d.read(0x14, 4), Ok(1));
        d.write(8, 4, 3).unwrap();
        t.fetch_add(u64::MAX / 2, Ordering::SeqCst);
        assert!(d.expired());
    }

    #[test]
    fn locked_writes_are_ignored_and_hostile_accesses_refused() {
        let (mut d, _) = dog();
        d.write(0xc00, 4, 0).unwrap();
        assert_eq!(d.read(0xc00, 4), Ok(1));
        d.write(8, 4, 3).unwrap();
        assert_eq!(d.read(8, 4), Ok(0), "locked");
        d.write(0xc00, 4, u64::from(UNLOCK)).unwrap();
        d.write(0, 4, 0).unwrap();
        assert_eq!(d.read(0, 4), Ok(1), "load minimum 1");
        assert_eq!(d.read(0, 2), Err(MmioError::BadWidth));
        assert_eq!(d.read(2, 4), Err(MmioError::BadWidth));
        assert_eq!(d.read(0xc, 4), Err(MmioError::BadDirection));
        assert_eq!(d.write(4, 4, 1), Err(MmioError::BadDirection));
        assert_eq!(d.read(0x800, 4), Err(MmioError::BadOffset));
        assert_eq!(d.write(0x2000, 4, 1), Err(MmioError::BadOffset));
    }
}
