//! One decoded MMIO access and the register semantics of a load (width,
//! sign extension, W vs X register). The devices it reaches are on the
//! VM's bus ([`crate::devices::bus`]).

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
