//! The guest bundle (`guests.img`): the VM configuration and the files it
//! names, in one blob the firmware loads as the initramfs. Built by
//! `tools/mkbundle`, read by the hypervisor through /chosen
//! linux,initrd-start/end. All integers little-endian.
//!
//! ```text
//! 0   magic "PIVBNDL1"
//! 8   u32 version (1)      12  u32 file count
//! 16  u64 total size       24  u64 FNV-1a 64 of the file table
//! 32  file table: per file 64 bytes:
//!       name[40] (UTF-8, NUL-padded), u64 offset, u64 size, u64 FNV-1a 64
//!     then the file data, each file 8-byte aligned
//! ```
//! The first file is `vms.conf` (see [`super::config`]).

use alloc::vec::Vec;
use core::fmt;

/// The magic at offset 0.
pub const MAGIC: &[u8; 8] = b"PIVBNDL1";
/// The format version.
pub const VERSION: u32 = 1;
/// Header bytes.
pub const HEADER: usize = 32;
/// File table entry bytes.
pub const ENTRY: usize = 64;
/// Longest file name.
pub const NAME_MAX: usize = 39;
/// Most files in a bundle.
pub const MAX_FILES: usize = 64;
/// Name of the configuration file, always first.
pub const CONFIG_NAME: &str = "vms.conf";

/// FNV-1a, 64-bit.
pub fn fnv1a(data: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in data {
        h ^= b as u64;
        h = h.wrapping_mul(0x100_0000_01b3);
    }
    h
}

/// Why a bundle was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BundleError {
    /// Shorter than its header or its own total size.
    Truncated {
        /// Bytes needed.
        need: u64,
        /// Bytes there.
        have: u64,
    },
    /// Not a bundle.
    BadMagic,
    /// A format version this hypervisor does not read.
    BadVersion(u32),
    /// Too many or no files.
    BadCount(u32),
    /// The file table checksum does not match.
    TableChecksum,
    /// A file entry is malformed.
    BadEntry {
        /// Entry index.
        index: usize,
        /// What is wrong.
        why: &'static str,
    },
    /// A file's contents do not match its checksum.
    FileChecksum(alloc::string::String),
    /// Two files with one name.
    DuplicateName(alloc::string::String),
    /// The first file is not the configuration.
    NoConfig,
}

impl fmt::Display for BundleError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BundleError::Truncated { need, have } => {
                write!(f, "truncated: {need} bytes needed, {have} present")
            }
            BundleError::BadMagic => f.write_str("not a pivisor guest bundle (bad magic)"),
            BundleError::BadVersion(v) => write!(
                f,
                "bundle format version {v}, this hypervisor reads {VERSION}"
            ),
            BundleError::BadCount(n) => write!(f, "{n} files (1 to {MAX_FILES} allowed)"),
            BundleError::TableChecksum => f.write_str("file table checksum mismatch (corrupted)"),
            BundleError::BadEntry { index, why } => write!(f, "file entry {index}: {why}"),
            BundleError::FileChecksum(n) => {
                write!(f, "file '{n}' is corrupted (checksum mismatch)")
            }
            BundleError::DuplicateName(n) => write!(f, "file name '{n}' appears twice"),
            BundleError::NoConfig => write!(f, "the first file is not {CONFIG_NAME}"),
        }
    }
}

/// A checked bundle.
#[derive(Debug, Clone)]
pub struct Bundle<'a> {
    files: Vec<(&'a str, &'a [u8])>,
}

fn u32_at(b: &[u8], o: usize) -> u32 {
    u32::from_le_bytes(b[o..o + 4].try_into().unwrap_or([0; 4]))
}

fn u64_at(b: &[u8], o: usize) -> u64 {
    u64::from_le_bytes(b[o..o + 8].try_into().unwrap_or([0; 8]))
}

impl<'a> Bundle<'a> {
    /// Checks `blob` completely (header, table, every file's checksum)
    /// before anything in it is used.
    pub fn parse(blob: &'a [u8]) -> Result<Self, BundleError> {
        let have = blob.len() as u64;
        if blob.len() < HEADER {
            return Err(BundleError::Truncated {
                need: HEADER as u64,
                have,
            });
        }
        if &blob[..8] != MAGIC {
            return Err(BundleError::BadMagic);
        }
        let version = u32_at(blob, 8);
        if version != VERSION {
            return Err(BundleError::BadVersion(version));
        }
        let count = u32_at(blob, 12);
        if count == 0 || count as usize > MAX_FILES {
            return Err(BundleError::BadCount(count));
        }
        let total = u64_at(blob, 16);
        let table_end = (HEADER + count as usize * ENTRY) as u64;
        if total < table_end {
            return Err(BundleError::BadEntry {
                index: 0,
                why: "total size smaller than the file table",
            });
        }
        if total > have {
            return Err(BundleError::Truncated { need: total, have });
        }
        let blob = &blob[..total as usize];
        let table = &blob[HEADER..table_end as usize];
        if fnv1a(table) != u64_at(blob, 24) {
            return Err(BundleError::TableChecksum);
        }
        let mut files: Vec<(&'a str, &'a [u8])> = Vec::with_capacity(count as usize);
        for index in 0..count as usize {
            let e = &table[index * ENTRY..(index + 1) * ENTRY];
            let bad = |why| BundleError::BadEntry { index, why };
            let raw = &e[..NAME_MAX + 1];
            let len = raw
                .iter()
                .position(|&b| b == 0)
                .ok_or(bad("name not NUL-terminated"))?;
            if raw[len..].iter().any(|&b| b != 0) {
                return Err(bad("garbage after the name"));
            }
            let name = core::str::from_utf8(&raw[..len]).map_err(|_| bad("name is not UTF-8"))?;
            if name.is_empty() || name.contains([' ', '/']) {
                return Err(bad("empty name or one with a space or '/'"));
            }
            let (off, size, sum) = (u64_at(e, 40), u64_at(e, 48), u64_at(e, 56));
            let end = off
                .checked_add(size)
                .ok_or(bad("offset + size overflows"))?;
            if off < table_end || end > total {
                return Err(bad("data outside the bundle"));
            }
            let data = &blob[off as usize..end as usize];
            if fnv1a(data) != sum {
                return Err(BundleError::FileChecksum(name.into()));
            }
            if files.iter().any(|(n, _)| *n == name) {
                return Err(BundleError::DuplicateName(name.into()));
            }
            files.push((name, data));
        }
        if files[0].0 != CONFIG_NAME {
            return Err(BundleError::NoConfig);
        }
        Ok(Self { files })
    }

    /// A file's contents.
    pub fn file(&self, name: &str) -> Option<&'a [u8]> {
        self.files.iter().find(|(n, _)| *n == name).map(|(_, d)| *d)
    }

    /// Every file, in table order.
    pub fn files(&self) -> &[(&'a str, &'a [u8])] {
        &self.files
    }

    /// The configuration text (checked to be UTF-8).
    pub fn config(&self) -> Result<&'a str, BundleError> {
        core::str::from_utf8(self.files[0].1).map_err(|_| BundleError::BadEntry {
            index: 0,
            why: "vms.conf is not UTF-8",
        })
    }
}

/// Writes a bundle; `files[0]` must be the configuration. Names are
/// checked by [`Bundle::parse`]'s rules; the result parses.
pub fn write(files: &[(&str, &[u8])]) -> Result<Vec<u8>, BundleError> {
    if files.is_empty() || files.len() > MAX_FILES {
        return Err(BundleError::BadCount(files.len() as u32));
    }
    if files[0].0 != CONFIG_NAME {
        return Err(BundleError::NoConfig);
    }
    let table_end = HEADER + files.len() * ENTRY;
    let mut out = alloc::vec![0u8; table_end];
    for (i, (name, data)) in files.iter().enumerate() {
        if name.is_empty() || name.len() > NAME_MAX || name.contains([' ', '/', '\0']) {
            return Err(BundleError::BadEntry {
                index: i,
                why: "bad file name",
            });
        }
        if files[..i].iter().any(|(n, _)| n == name) {
            return Err(BundleError::DuplicateName((*name).into()));
        }
        while !out.len().is_multiple_of(8) {
            out.push(0);
        }
        let off = out.len() as u64;
        out.extend_from_slice(data);
        let e = &mut out[HEADER + i * ENTRY..HEADER + (i + 1) * ENTRY];
        e[..name.len()].copy_from_slice(name.as_bytes());
        e[40..48].copy_from_slice(&off.to_le_bytes());
        e[48..56].copy_from_slice(&(data.len() as u64).to_le_bytes());
        e[56..64].copy_from_slice(&fnv1a(data).to_le_bytes());
    }
    let total = out.len() as u64;
    let sum = fnv1a(&out[HEADER..table_end]);
    out[..8].copy_from_slice(MAGIC);
    out[8..12].copy_from_slice(&VERSION.to_le_bytes());
    out[12..16].copy_from_slice(&(files.len() as u32).to_le_bytes());
    out[16..24].copy_from_slice(&total.to_le_bytes());
    out[24..32].copy_from_slice(&sum.to_le_bytes());
    Ok(out)
}

#[cfg(test)]
#[path = "bundle_tests.rs"]
mod tests;
