//! Emulated MMIO: one decoded access, the register semantics of a load
//! (width, sign extension, W vs X register), and the bus that devices
//! register guest-physical ranges on.

use alloc::boxed::Box;
use alloc::vec::Vec;
use core::fmt;

/// One emulated load or store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Access {
    /// Guest-physical address.
    pub ipa: u64,
    /// Bytes: 1, 2, 4 or 8.
    pub width: u8,
    /// A store.
    pub write: bool,
    /// Transfer register (31 = XZR).
    pub reg: u8,
    /// Sign-extend the loaded value.
    pub sign_extend: bool,
    /// The register is 64-bit (X), not W.
    pub sf: bool,
}

impl Access {
    /// Mask of `width` bytes.
    pub fn mask(&self) -> u64 {
        match self.width {
            8 => u64::MAX,
            w => (1u64 << (w as u32 * 8)) - 1,
        }
    }

    /// The value a store writes, from the register file (XZR reads 0).
    pub fn store_value(&self, regs: &[u64; 31]) -> u64 {
        regs.get(self.reg as usize).copied().unwrap_or(0) & self.mask()
    }

    /// What a load puts in the register: `raw` cut to the access width,
    /// sign-extended if asked, and cut to 32 bits for a W register.
    pub fn load_value(&self, raw: u64) -> u64 {
        let v = raw & self.mask();
        let bits = self.width as u32 * 8;
        let v = if self.sign_extend && bits < 64 {
            let shift = 64 - bits;
            (((v << shift) as i64) >> shift) as u64
        } else {
            v
        };
        if self.sf {
            v
        } else {
            v & 0xffff_ffff
        }
    }

    /// Writes a load's result into the register file (XZR discards it).
    pub fn complete_load(&self, regs: &mut [u64; 31], raw: u64) {
        if let Some(r) = regs.get_mut(self.reg as usize) {
            *r = self.load_value(raw);
        }
    }
}

/// Why a device refused an access.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MmioError {
    /// No register at this offset.
    BadOffset,
    /// The register does not accept this width.
    BadWidth,
    /// A store to a read-only register or a load from a write-only one.
    BadDirection,
}

impl fmt::Display for MmioError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            MmioError::BadOffset => "no register at this offset",
            MmioError::BadWidth => "access width not supported by the register",
            MmioError::BadDirection => "register is read-only or write-only",
        })
    }
}

/// A device model: registers at offsets from its base, no I/O of its own.
pub trait MmioDevice: Send {
    /// A short name for log lines.
    fn name(&self) -> &str;
    /// A load of `width` bytes at `offset`.
    fn read(&mut self, offset: u64, width: u8) -> Result<u64, MmioError>;
    /// A store of `width` bytes at `offset`.
    fn write(&mut self, offset: u64, width: u8, value: u64) -> Result<(), MmioError>;
}

/// Why an access could not be dispatched.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BusError {
    /// No device at this address.
    Unmapped,
    /// The access straddles the end of a device's range.
    Straddles,
    /// The device refused it.
    Device(MmioError),
}

impl fmt::Display for BusError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BusError::Unmapped => f.write_str("no device at this address"),
            BusError::Straddles => f.write_str("access crosses the end of the device"),
            BusError::Device(e) => write!(f, "{e}"),
        }
    }
}

struct Slot {
    base: u64,
    size: u64,
    dev: Box<dyn MmioDevice>,
}

/// Devices by guest-physical range (ranges never overlap).
#[derive(Default)]
pub struct MmioBus {
    slots: Vec<Slot>,
}

impl MmioBus {
    /// An empty bus.
    pub fn new() -> Self {
        Self::default()
    }

    /// Registers `dev` at `[base, base+size)`; false if that is empty,
    /// wraps, or overlaps a registered device.
    pub fn register(&mut self, base: u64, size: u64, dev: Box<dyn MmioDevice>) -> bool {
        let Some(end) = base.checked_add(size) else {
            return false;
        };
        if size == 0
            || self
                .slots
                .iter()
                .any(|s| base < s.base + s.size && s.base < end)
        {
            return false;
        }
        self.slots.push(Slot { base, size, dev });
        true
    }

    /// The name of the device at `ipa`, if any.
    pub fn device_name(&self, ipa: u64) -> Option<&str> {
        self.find(ipa).map(|i| self.slots[i].dev.name())
    }

    fn find(&self, ipa: u64) -> Option<usize> {
        self.slots
            .iter()
            .position(|s| ipa >= s.base && ipa - s.base < s.size)
    }

    /// Performs `a`; for a load returns the raw value (before
    /// [`Access::load_value`]); `store` is the value of a store.
    pub fn dispatch(&mut self, a: &Access, store: u64) -> Result<u64, BusError> {
        let i = self.find(a.ipa).ok_or(BusError::Unmapped)?;
        let s = &mut self.slots[i];
        let off = a.ipa - s.base;
        if off + a.width as u64 > s.size {
            return Err(BusError::Straddles);
        }
        if a.write {
            s.dev.write(off, a.width, store).map_err(BusError::Device)?;
            Ok(0)
        } else {
            s.dev.read(off, a.width).map_err(BusError::Device)
        }
    }
}
