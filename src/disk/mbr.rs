//! The card's partition table: a master boot record with up to four
//! primary partitions (numbers 1-4, by slot, as Linux numbers them), one
//! of which may be an extended partition holding a chain of extended boot
//! records, each describing one logical partition (numbers 5 on, in chain
//! order). Partition 1 is the FAT boot partition the firmware reads.
//!
//! The table is input like any other: every start and length is checked
//! to lie inside the card, the chain is bounded ([`MAX_LOGICAL`]) and
//! must move forward (no loops), and a GPT's protective MBR is refused
//! with its name.

use alloc::vec::Vec;
use core::fmt;

/// Bytes per sector.
pub const SECTOR: usize = 512;
/// The most logical partitions followed.
pub const MAX_LOGICAL: usize = 60;

/// One partition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Partition {
    /// Its number (1-4 primary, 5 on logical).
    pub number: u32,
    /// First sector on the card.
    pub start: u64,
    /// Length in sectors.
    pub sectors: u64,
    /// The type byte (0x0c FAT32 LBA, 0x83 Linux, ...).
    pub kind: u8,
    /// The boot flag (0x80).
    pub bootable: bool,
}

impl Partition {
    /// One past its last sector.
    pub fn end(&self) -> u64 {
        self.start + self.sectors
    }

    /// A short name for its type.
    pub fn kind_name(&self) -> &'static str {
        match self.kind {
            0x01 | 0x04 | 0x06 | 0x0e => "FAT",
            0x0b | 0x0c => "FAT32",
            0x07 => "NTFS/exFAT",
            0x82 => "Linux swap",
            0x83 => "Linux",
            0x8e => "Linux LVM",
            0xda => "non-FS data",
            _ => "other",
        }
    }
}

/// Why the table cannot be used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MbrError {
    /// The card could not be read at this sector.
    Read(u64),
    /// No 0x55 0xAA at the end of sector 0 (or of an EBR there).
    NoSignature(u64),
    /// A GUID partition table (protective MBR): not supported.
    Gpt,
    /// Partition `number` does not lie inside the card.
    OutsideCard(u32),
    /// Partitions `a` and `b` overlap.
    Overlap(u32, u32),
    /// More than one extended partition among the primaries.
    TwoExtended,
    /// The chain of extended boot records goes backwards, leaves the
    /// extended partition or is longer than [`MAX_LOGICAL`].
    BadChain(u64),
}

impl fmt::Display for MbrError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            MbrError::Read(s) => write!(f, "cannot read sector {s}"),
            MbrError::NoSignature(s) => write!(f, "no partition table signature in sector {s}"),
            MbrError::Gpt => {
                f.write_str("a GPT card (protective MBR): use an MBR (dos) partition table")
            }
            MbrError::OutsideCard(n) => write!(f, "partition {n} lies outside the card"),
            MbrError::Overlap(a, b) => write!(f, "partitions {a} and {b} overlap"),
            MbrError::TwoExtended => f.write_str("more than one extended partition"),
            MbrError::BadChain(s) => {
                write!(f, "the logical partitions' chain is broken at sector {s}")
            }
        }
    }
}

fn is_extended(kind: u8) -> bool {
    matches!(kind, 0x05 | 0x0f | 0x85)
}

fn le32(b: &[u8], at: usize) -> u64 {
    u64::from(u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]]))
}

/// The four entries of a boot record: (boot flag, type, relative start,
/// sectors).
fn entries(s: &[u8; SECTOR]) -> [(u8, u8, u64, u64); 4] {
    core::array::from_fn(|i| {
        let e = 446 + 16 * i;
        (s[e], s[e + 4], le32(s, e + 8), le32(s, e + 12))
    })
}

/// Reads the table of a card of `card_sectors`, through `read` (one
/// sector at a time). The partitions, primaries first.
pub fn parse(
    card_sectors: u64,
    read: &mut dyn FnMut(u64, &mut [u8; SECTOR]) -> bool,
) -> Result<Vec<Partition>, MbrError> {
    let mut s = [0u8; SECTOR];
    if !read(0, &mut s) {
        return Err(MbrError::Read(0));
    }
    if s[510..512] != [0x55, 0xaa] {
        return Err(MbrError::NoSignature(0));
    }
    let mut parts = Vec::new();
    let mut extended = None;
    for (i, (flag, kind, start, sectors)) in entries(&s).into_iter().enumerate() {
        let number = i as u32 + 1;
        if kind == 0xee {
            return Err(MbrError::Gpt);
        }
        if kind == 0 || sectors == 0 {
            continue;
        }
        if start == 0 || start + sectors > card_sectors {
            return Err(MbrError::OutsideCard(number));
        }
        if is_extended(kind) {
            if extended.replace((start, sectors, number)).is_some() {
                return Err(MbrError::TwoExtended);
            }
            continue;
        }
        parts.push(Partition {
            number,
            start,
            sectors,
            kind,
            bootable: flag == 0x80,
        });
    }
    if let Some((ext, ext_len, ext_no)) = extended {
        if let Some(p) = parts
            .iter()
            .find(|p| p.start < ext + ext_len && ext < p.end())
        {
            return Err(MbrError::Overlap(p.number, ext_no));
        }
        let mut ebr = ext;
        for k in 0..=MAX_LOGICAL {
            if k == MAX_LOGICAL {
                return Err(MbrError::BadChain(ebr));
            }
            if !read(ebr, &mut s) {
                return Err(MbrError::Read(ebr));
            }
            if s[510..512] != [0x55, 0xaa] {
                return Err(MbrError::NoSignature(ebr));
            }
            let e = entries(&s);
            let (flag, kind, rel, sectors) = e[0];
            let number = 5 + k as u32;
            if kind != 0 && sectors != 0 {
                let start = ebr + rel;
                if rel == 0 || start + sectors > ext + ext_len {
                    return Err(MbrError::OutsideCard(number));
                }
                parts.push(Partition {
                    number,
                    start,
                    sectors,
                    kind,
                    bootable: flag == 0x80,
                });
            }
            let (_, next_kind, next_rel, _) = e[1];
            if next_kind == 0 || next_rel == 0 {
                break;
            }
            let next = ext + next_rel;
            // Forward only, inside the extended partition.
            if !is_extended(next_kind) || next <= ebr || next >= ext + ext_len {
                return Err(MbrError::BadChain(ebr));
            }
            ebr = next;
        }
    }
    for (i, a) in parts.iter().enumerate() {
        for b in &parts[..i] {
            if a.start < b.end() && b.start < a.end() {
                return Err(MbrError::Overlap(b.number, a.number));
            }
        }
    }
    Ok(parts)
}

#[cfg(test)]
#[path = "mbr_tests.rs"]
mod tests;
