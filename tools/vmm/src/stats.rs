//! KVM's binary statistics (KVM_GET_STATS_FD, Linux 5.14 and later) and
//! their mapping onto pivisor's exit kinds, for the exit-counter page the
//! VMM emulates.
//!
//! A vCPU's stats file holds a header (flags, name_size, num_desc,
//! id_offset, desc_offset, data_offset: six little-endian u32), then
//! `num_desc` descriptors of 16 bytes (flags u32, exponent i16, size u16,
//! offset u32, bucket_size u32) each followed by a `name_size`-byte
//! NUL-padded name, then the data: `size` u64 values per statistic at
//! `data_offset + offset`.
//!
//! arm64 KVM counts per vCPU: `exits` (every return from the guest),
//! `hvc_exit_stat`, `wfi_exit_stat`, `wfe_exit_stat`, `mmio_exit_kernel`
//! (MMIO emulated in the kernel: with a GICv2 that is the vGIC
//! distributor) and `mmio_exit_user` (MMIO handed to this VMM). It has no
//! separate counts for interrupts, trapped system registers or stage-2
//! faults, so [`exit_counts`] puts what `exits` has beyond the named kinds
//! in the `irq` slot and says so in its name list ([`KIND_NAMES`]).

use pivisor::trap::stats::{ExitCounts, ExitKind};

/// The header's size in bytes.
pub const HEADER: usize = 24;
/// A descriptor's fixed part in bytes (before its name).
pub const DESC: usize = 16;

/// Why a stats file could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StatsError {
    /// The file is shorter than its header says.
    Truncated(&'static str),
    /// A count or size is implausible.
    Bad(&'static str),
}

impl std::fmt::Display for StatsError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StatsError::Truncated(w) => write!(f, "KVM stats file truncated ({w})"),
            StatsError::Bad(w) => write!(f, "KVM stats file malformed ({w})"),
        }
    }
}

fn u32_at(b: &[u8], at: usize, what: &'static str) -> Result<u32, StatsError> {
    b.get(at..at + 4)
        .map(|s| u32::from_le_bytes(s.try_into().expect("4 bytes")))
        .ok_or(StatsError::Truncated(what))
}

/// Where one statistic's first value lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stat {
    /// Its name.
    pub name: String,
    /// Byte offset of its first u64 in the file.
    pub at: usize,
}

/// The layout of a stats file: which statistic is where. Read once per
/// file; the values are re-read at `at` whenever they are wanted.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Layout {
    /// The statistics, in file order.
    pub stats: Vec<Stat>,
}

impl Layout {
    /// Parses the header and descriptors at the start of `file` (which
    /// must reach at least to the data block's start).
    pub fn parse(file: &[u8]) -> Result<Self, StatsError> {
        if file.len() < HEADER {
            return Err(StatsError::Truncated("header"));
        }
        let name_size = u32_at(file, 4, "header")? as usize;
        let num = u32_at(file, 8, "header")? as usize;
        let desc_off = u32_at(file, 16, "header")? as usize;
        let data_off = u32_at(file, 20, "header")? as usize;
        if name_size == 0 || name_size > 256 {
            return Err(StatsError::Bad("name size"));
        }
        if num > 4096 {
            return Err(StatsError::Bad("descriptor count"));
        }
        let step = DESC + name_size;
        let mut stats = Vec::with_capacity(num);
        for i in 0..num {
            let d = desc_off
                .checked_add(i * step)
                .ok_or(StatsError::Bad("descriptor offset"))?;
            let size = file
                .get(d + 6..d + 8)
                .map(|s| u16::from_le_bytes([s[0], s[1]]))
                .ok_or(StatsError::Truncated("descriptor"))?;
            let offset = u32_at(file, d + 8, "descriptor")? as usize;
            let name = file
                .get(d + DESC..d + step)
                .ok_or(StatsError::Truncated("descriptor name"))?;
            let len = name.iter().position(|&c| c == 0).unwrap_or(name.len());
            let name = String::from_utf8_lossy(&name[..len]).into_owned();
            if size == 0 {
                continue;
            }
            let at = data_off
                .checked_add(offset)
                .ok_or(StatsError::Bad("data offset"))?;
            stats.push(Stat { name, at });
        }
        Ok(Self { stats })
    }

    /// Where `name` is, if the file has it.
    pub fn find(&self, name: &str) -> Option<usize> {
        self.stats.iter().find(|s| s.name == name).map(|s| s.at)
    }
}

/// The counters the mapping needs, by name.
pub const NAMES: [&str; 7] = [
    "exits",
    "hvc_exit_stat",
    "wfi_exit_stat",
    "wfe_exit_stat",
    "mmio_exit_kernel",
    "mmio_exit_user",
    "signal_exits",
];

/// pivisor's exit-kind names as the VMM fills them: KVM's uncounted rest
/// (interrupts, system registers, stage-2 faults) sits in the first slot.
pub const KIND_NAMES: [&str; 8] = [
    "irq+other",
    "gicd",
    "mmio",
    "hvc/smc",
    "sysreg",
    "wfx",
    "fault",
    "serror",
];

/// Maps KVM's counters (values in [`NAMES`] order; missing ones 0) onto
/// pivisor's exit kinds. The total stays KVM's `exits` (or the named
/// counts' sum, if that is larger: the counters are read one by one while
/// the vCPU may run).
pub fn exit_counts(v: &[u64; 7]) -> ExitCounts {
    let [exits, hvc, wfi, wfe, kernel, user, _signal] = *v;
    let mut c = ExitCounts::default();
    c.0[ExitKind::Call as usize] = hvc;
    c.0[ExitKind::Wfx as usize] = wfi + wfe;
    c.0[ExitKind::Gicd as usize] = kernel;
    c.0[ExitKind::Mmio as usize] = user;
    let named = hvc + wfi + wfe + kernel + user;
    c.0[ExitKind::Irq as usize] = exits.saturating_sub(named);
    c
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A stats file with the given (name, value) statistics.
    fn file(stats: &[(&str, u64)], name_size: usize) -> Vec<u8> {
        let desc_off = HEADER + 16; // an id string between
        let data_off = desc_off + stats.len() * (DESC + name_size);
        let mut f = vec![0u8; data_off + 8 * stats.len()];
        for (i, v) in [0u32, name_size as u32, stats.len() as u32, HEADER as u32]
            .iter()
            .chain(&[desc_off as u32, data_off as u32])
            .enumerate()
        {
            f[i * 4..i * 4 + 4].copy_from_slice(&v.to_le_bytes());
        }
        for (i, (name, value)) in stats.iter().enumerate() {
            let d = desc_off + i * (DESC + name_size);
            f[d + 6..d + 8].copy_from_slice(&1u16.to_le_bytes());
            f[d + 8..d + 12].copy_from_slice(&((i * 8) as u32).to_le_bytes());
            f[d + DESC..d + DESC + name.len()].copy_from_slice(name.as_bytes());
            f[data_off + i * 8..data_off + i * 8 + 8].copy_from_slice(&value.to_le_bytes());
        }
        f
    }

    fn value(f: &[u8], at: usize) -> u64 {
        u64::from_le_bytes(f[at..at + 8].try_into().unwrap())
    }

    #[test]
    fn finds_every_counter() {
        let f = file(
            &[("halt_wakeup", 9), ("exits", 100), ("hvc_exit_stat", 7)],
            48,
        );
        let l = Layout::parse(&f).unwrap();
        assert_eq!(l.stats.len(), 3);
        assert_eq!(value(&f, l.find("exits").unwrap()), 100);
        assert_eq!(value(&f, l.find("hvc_exit_stat").unwrap()), 7);
        assert_eq!(l.find("wfe_exit_stat"), None);
    }

    #[test]
    fn refuses_hostile_files() {
        assert!(Layout::parse(&[0; 10]).is_err());
        let mut f = file(&[("exits", 1)], 48);
        f[4..8].copy_from_slice(&0u32.to_le_bytes()); // name size 0
        assert_eq!(Layout::parse(&f), Err(StatsError::Bad("name size")));
        let mut f = file(&[("exits", 1)], 48);
        f[8..12].copy_from_slice(&u32::MAX.to_le_bytes()); // descriptors
        assert!(Layout::parse(&f).is_err());
        let mut f = file(&[("exits", 1)], 48);
        f[8..12].copy_from_slice(&5u32.to_le_bytes()); // past the end
        assert!(matches!(Layout::parse(&f), Err(StatsError::Truncated(_))));
        let mut f = file(&[("exits", 1)], 48);
        f[16..20].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(Layout::parse(&f).is_err());
    }

    #[test]
    fn maps_onto_pivisors_kinds() {
        let c = exit_counts(&[100, 10, 20, 5, 30, 15, 2]);
        assert_eq!(c.0[ExitKind::Call as usize], 10);
        assert_eq!(c.0[ExitKind::Wfx as usize], 25);
        assert_eq!(c.0[ExitKind::Gicd as usize], 30);
        assert_eq!(c.0[ExitKind::Mmio as usize], 15);
        assert_eq!(c.0[ExitKind::Irq as usize], 20);
        assert_eq!(c.total(), 100);
        // Read while running: the named counts may pass `exits`.
        let c = exit_counts(&[10, 11, 0, 0, 0, 0, 0]);
        assert_eq!((c.0[ExitKind::Irq as usize], c.total()), (0, 11));
    }
}
