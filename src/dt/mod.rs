//! Flattened device trees: the strict reader that stands in front of the
//! `fdt` crate ([`blob`]), the platform facts the hypervisor takes from the
//! firmware's tree ([`host`]), nodes by path with their addresses
//! translated through every bus ([`bus`]), and a writer ([`writer`]).
//!
//! Format: Devicetree Specification v0.4, chapter 5 (flattened format).

pub mod blob;
pub mod bus;
pub mod host;
pub mod writer;

use core::fmt;

/// Why a device tree could not be used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DtError {
    /// No FDT magic at the given address.
    NoMagic {
        /// The word found instead.
        found: u32,
    },
    /// The blob ends before something it promises.
    Truncated,
    /// The header's sizes or offsets do not fit together.
    BadHeader(&'static str),
    /// A format version this reader does not handle.
    UnsupportedVersion(u32),
    /// Larger than the hypervisor's copy buffer.
    TooLarge {
        /// Size of the blob.
        size: usize,
        /// Largest size accepted.
        max: usize,
    },
    /// The structure block is malformed at `offset` (from its start).
    BadStructure {
        /// Offset in the structure block.
        offset: usize,
        /// What is wrong there.
        what: &'static str,
    },
    /// A node the hypervisor needs is missing.
    Missing(&'static str),
    /// A property has a value the hypervisor cannot use.
    BadValue(&'static str),
    /// Present but unusable for the reason given.
    Unusable(&'static str),
}

impl fmt::Display for DtError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DtError::NoMagic { found } => {
                write!(
                    f,
                    "no device tree (found {found:#010x}, not the FDT magic 0xd00dfeed)"
                )
            }
            DtError::Truncated => f.write_str("device tree is truncated"),
            DtError::BadHeader(w) => write!(f, "device tree header is invalid: {w}"),
            DtError::UnsupportedVersion(v) => {
                write!(f, "device tree version {v} is not supported (need 17)")
            }
            DtError::TooLarge { size, max } => write!(
                f,
                "device tree is {size} bytes, larger than the {max} bytes accepted"
            ),
            DtError::BadStructure { offset, what } => {
                write!(
                    f,
                    "device tree structure is malformed at offset {offset:#x}: {what}"
                )
            }
            DtError::Missing(n) => write!(f, "device tree has no {n}"),
            DtError::BadValue(w) => write!(f, "device tree value is unusable: {w}"),
            DtError::Unusable(w) => write!(f, "device tree is unusable: {w}"),
        }
    }
}
