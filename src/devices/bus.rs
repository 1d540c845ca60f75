//! The VM's MMIO bus: device models by guest-physical range, and the
//! interface every device model implements. Pure logic.

use alloc::boxed::Box;
use alloc::vec::Vec;
use core::fmt;

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
    /// Back to the state at power-on (the VM restarts): FIFOs, registers
    /// and the interrupt line's level, without signalling the line (the
    /// VM's distributor is reset with it).
    fn reset(&mut self) {}
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

/// Why a device could not be put on the bus.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RegisterError {
    /// The range is empty or wraps.
    Empty {
        /// Its base.
        base: u64,
    },
    /// It overlaps a device already there.
    Overlaps {
        /// Its base.
        base: u64,
        /// The other device's base.
        other: u64,
    },
}

impl fmt::Display for RegisterError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RegisterError::Empty { base } => {
                write!(f, "device at {base:#x}: empty or wrapping range")
            }
            RegisterError::Overlaps { base, other } => {
                write!(f, "device at {base:#x} overlaps the device at {other:#x}")
            }
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

    /// Registers `dev` at `[base, base+size)`; refused if that is empty,
    /// wraps, or overlaps a registered device.
    pub fn register(
        &mut self,
        base: u64,
        size: u64,
        dev: Box<dyn MmioDevice>,
    ) -> Result<(), RegisterError> {
        let end = base
            .checked_add(size)
            .filter(|_| size > 0)
            .ok_or(RegisterError::Empty { base })?;
        if let Some(s) = self
            .slots
            .iter()
            .find(|s| base < s.base + s.size && s.base < end)
        {
            return Err(RegisterError::Overlaps {
                base,
                other: s.base,
            });
        }
        self.slots.push(Slot { base, size, dev });
        Ok(())
    }

    /// Resets every device (the VM restarts).
    pub fn reset_all(&mut self) {
        for s in &mut self.slots {
            s.dev.reset();
        }
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

    /// Performs a `width`-byte access at `ipa`: a store of the value in
    /// `store`, or (None) a load, whose raw value it returns (0 for a
    /// store).
    pub fn dispatch(&mut self, ipa: u64, width: u8, store: Option<u64>) -> Result<u64, BusError> {
        let i = self.find(ipa).ok_or(BusError::Unmapped)?;
        let s = &mut self.slots[i];
        let off = ipa - s.base;
        if off + width as u64 > s.size {
            return Err(BusError::Straddles);
        }
        match store {
            Some(v) => s.dev.write(off, width, v).map(|()| 0),
            None => s.dev.read(off, width),
        }
        .map_err(BusError::Device)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    struct Regs {
        scratch: u32,
    }

    impl MmioDevice for Regs {
        fn name(&self) -> &str {
            "regs"
        }
        fn read(&mut self, offset: u64, width: u8) -> Result<u64, MmioError> {
            match (offset, width) {
                (0, 4) => Ok(self.scratch as u64),
                (0, _) => Err(MmioError::BadWidth),
                _ => Err(MmioError::BadOffset),
            }
        }
        fn write(&mut self, offset: u64, _width: u8, value: u64) -> Result<(), MmioError> {
            match offset {
                0 => {
                    self.scratch = value as u32;
                    Ok(())
                }
                _ => Err(MmioError::BadOffset),
            }
        }
    }

    #[test]
    fn bus_dispatch_and_overlaps() {
        let mut bus = MmioBus::new();
        let regs = || Box::new(Regs { scratch: 0 });
        assert_eq!(bus.register(0x1000, 0x100, regs()), Ok(()));
        assert_eq!(
            bus.register(0x10f0, 0x100, regs()),
            Err(RegisterError::Overlaps {
                base: 0x10f0,
                other: 0x1000
            })
        );
        assert_eq!(
            bus.register(u64::MAX - 1, 4, regs()),
            Err(RegisterError::Empty { base: u64::MAX - 1 }),
            "wraps"
        );
        assert_eq!(
            bus.register(0x5000, 0, regs()),
            Err(RegisterError::Empty { base: 0x5000 })
        );
        assert_eq!(bus.dispatch(0x1000, 4, Some(0xabcd)), Ok(0));
        assert_eq!(bus.dispatch(0x1000, 4, None), Ok(0xabcd));
        assert_eq!(
            bus.dispatch(0x1000, 1, None),
            Err(BusError::Device(MmioError::BadWidth))
        );
        assert_eq!(
            bus.dispatch(0x1004, 4, None),
            Err(BusError::Device(MmioError::BadOffset))
        );
        assert_eq!(bus.dispatch(0x10fc, 8, None), Err(BusError::Straddles));
        assert_eq!(bus.dispatch(0x2000, 4, None), Err(BusError::Unmapped));
        assert_eq!(bus.device_name(0x1080), Some("regs"));
        assert_eq!(bus.device_name(0x1100), None);
    }
}
