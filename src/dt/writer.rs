//! A flattened-device-tree writer (version 17), for the device trees the
//! hypervisor builds (per-VM trees, and test fixtures).
//!
//! Usage: `begin_node("")` for the root, properties, child nodes, `end_node`
//! for each, then `finish`. Property names are deduplicated in the strings
//! block; the output is byte-exact and deterministic.

use alloc::vec::Vec;
use core::fmt;

/// Misuse of the writer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteError {
    /// `end_node` without an open node, or `finish` with nodes still open.
    Unbalanced,
    /// A property outside any node.
    PropertyOutsideNode,
    /// A property after a child node of the same node (the format forbids it).
    PropertyAfterSubnode,
    /// A second root node.
    SecondRoot,
    /// A name containing NUL, or an empty non-root node name.
    BadName,
}

impl fmt::Display for WriteError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            WriteError::Unbalanced => "unbalanced begin_node/end_node",
            WriteError::PropertyOutsideNode => "property outside any node",
            WriteError::PropertyAfterSubnode => "property after a subnode",
            WriteError::SecondRoot => "second root node",
            WriteError::BadName => "invalid node or property name",
        })
    }
}

/// Builds a flattened device tree in memory.
#[derive(Default)]
pub struct FdtWriter {
    structs: Vec<u8>,
    strings: Vec<u8>,
    reservations: Vec<(u64, u64)>,
    /// One entry per open node: has it had a child yet?
    open: Vec<bool>,
    root_done: bool,
    boot_cpuid: u32,
}

impl FdtWriter {
    /// An empty tree.
    pub fn new() -> Self {
        Self::default()
    }

    /// How many nodes are open (1 inside the root).
    pub fn depth(&self) -> usize {
        self.open.len()
    }

    /// Sets the header's boot_cpuid_phys.
    pub fn set_boot_cpuid(&mut self, id: u32) {
        self.boot_cpuid = id;
    }

    /// Adds a memory reservation block entry.
    pub fn add_reservation(&mut self, address: u64, size: u64) {
        self.reservations.push((address, size));
    }

    /// Opens a node; the root is `""`.
    pub fn begin_node(&mut self, name: &str) -> Result<(), WriteError> {
        if self.open.is_empty() {
            if self.root_done {
                return Err(WriteError::SecondRoot);
            }
            if !name.is_empty() {
                return Err(WriteError::BadName);
            }
        } else if name.is_empty() || name.contains('\0') {
            return Err(WriteError::BadName);
        }
        if let Some(parent) = self.open.last_mut() {
            *parent = true;
        }
        self.open.push(false);
        self.structs.extend_from_slice(&1u32.to_be_bytes());
        self.structs.extend_from_slice(name.as_bytes());
        self.structs.push(0);
        self.pad();
        Ok(())
    }

    /// Closes the innermost open node.
    pub fn end_node(&mut self) -> Result<(), WriteError> {
        self.open.pop().ok_or(WriteError::Unbalanced)?;
        self.root_done = self.open.is_empty();
        self.structs.extend_from_slice(&2u32.to_be_bytes());
        Ok(())
    }

    /// Adds a property with a raw value.
    pub fn property(&mut self, name: &str, value: &[u8]) -> Result<(), WriteError> {
        match self.open.last() {
            None => return Err(WriteError::PropertyOutsideNode),
            Some(true) => return Err(WriteError::PropertyAfterSubnode),
            Some(false) => {}
        }
        if name.is_empty() || name.contains('\0') {
            return Err(WriteError::BadName);
        }
        let off = self.string_offset(name);
        self.structs.extend_from_slice(&3u32.to_be_bytes());
        self.structs
            .extend_from_slice(&(value.len() as u32).to_be_bytes());
        self.structs.extend_from_slice(&off.to_be_bytes());
        self.structs.extend_from_slice(value);
        self.pad();
        Ok(())
    }

    /// An empty (boolean) property.
    pub fn property_empty(&mut self, name: &str) -> Result<(), WriteError> {
        self.property(name, &[])
    }

    /// A one-cell property.
    pub fn property_u32(&mut self, name: &str, v: u32) -> Result<(), WriteError> {
        self.property(name, &v.to_be_bytes())
    }

    /// A two-cell property.
    pub fn property_u64(&mut self, name: &str, v: u64) -> Result<(), WriteError> {
        self.property(name, &v.to_be_bytes())
    }

    /// A property of several cells.
    pub fn property_cells(&mut self, name: &str, cells: &[u32]) -> Result<(), WriteError> {
        let bytes: Vec<u8> = cells.iter().flat_map(|c| c.to_be_bytes()).collect();
        self.property(name, &bytes)
    }

    /// A NUL-terminated string property.
    pub fn property_string(&mut self, name: &str, s: &str) -> Result<(), WriteError> {
        self.property_strings(name, &[s])
    }

    /// A string-list property.
    pub fn property_strings(&mut self, name: &str, list: &[&str]) -> Result<(), WriteError> {
        let mut bytes = Vec::new();
        for s in list {
            if s.contains('\0') {
                return Err(WriteError::BadName);
            }
            bytes.extend_from_slice(s.as_bytes());
            bytes.push(0);
        }
        self.property(name, &bytes)
    }

    /// Finishes the tree and returns the blob.
    pub fn finish(mut self) -> Result<Vec<u8>, WriteError> {
        if !self.open.is_empty() || !self.root_done {
            return Err(WriteError::Unbalanced);
        }
        self.structs.extend_from_slice(&9u32.to_be_bytes());
        let rsv_off = 40usize;
        let rsv_len = (self.reservations.len() + 1) * 16;
        let struct_off = rsv_off + rsv_len;
        let strings_off = struct_off + self.structs.len();
        let total = strings_off + self.strings.len();
        let mut out = Vec::with_capacity(total);
        for v in [
            0xd00d_feed,
            total as u32,
            struct_off as u32,
            strings_off as u32,
            rsv_off as u32,
            17,
            16,
            self.boot_cpuid,
            self.strings.len() as u32,
            self.structs.len() as u32,
        ] {
            out.extend_from_slice(&u32::to_be_bytes(v));
        }
        for (a, s) in self.reservations.iter().chain(core::iter::once(&(0, 0))) {
            out.extend_from_slice(&a.to_be_bytes());
            out.extend_from_slice(&s.to_be_bytes());
        }
        out.extend_from_slice(&self.structs);
        out.extend_from_slice(&self.strings);
        Ok(out)
    }

    fn pad(&mut self) {
        while !self.structs.len().is_multiple_of(4) {
            self.structs.push(0);
        }
    }

    fn string_offset(&mut self, name: &str) -> u32 {
        let mut at = 0;
        for s in self.strings.split(|&c| c == 0) {
            if s == name.as_bytes() && at < self.strings.len() {
                return at as u32;
            }
            at += s.len() + 1;
        }
        let off = self.strings.len();
        self.strings.extend_from_slice(name.as_bytes());
        self.strings.push(0);
        off as u32
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn minimal_tree_is_byte_exact() {
        let mut w = FdtWriter::new();
        w.begin_node("").unwrap();
        w.property_u32("#address-cells", 2).unwrap();
        w.end_node().unwrap();
        let b = w.finish().unwrap();
        let expect: Vec<u8> = [
            0xd00dfeedu32,
            103,
            56,
            88,
            40,
            17,
            16,
            0,
            15,
            32, // header
            0,
            0,
            0,
            0, // reservation terminator (2 x u64)
            1,
            0, // FDT_BEGIN_NODE, "" padded
            3,
            4,
            0,
            2, // FDT_PROP len 4 nameoff 0, value 2
            2,
            9, // END_NODE, END
        ]
        .iter()
        .flat_map(|v| v.to_be_bytes())
        .chain(*b"#address-cells\0")
        .collect();
        assert_eq!(b, expect);
    }

    #[test]
    fn names_are_deduplicated() {
        let mut w = FdtWriter::new();
        w.begin_node("").unwrap();
        w.property_string("compatible", "a").unwrap();
        w.begin_node("x").unwrap();
        w.property_string("compatible", "b").unwrap();
        w.end_node().unwrap();
        w.end_node().unwrap();
        let b = w.finish().unwrap();
        let strings = &b[b.len() - 11..];
        assert_eq!(strings, b"compatible\0");
    }

    #[test]
    fn misuse_is_refused() {
        let mut w = FdtWriter::new();
        assert_eq!(w.property_u32("x", 1), Err(WriteError::PropertyOutsideNode));
        assert_eq!(w.begin_node("notroot"), Err(WriteError::BadName));
        w.begin_node("").unwrap();
        assert_eq!(w.begin_node(""), Err(WriteError::BadName));
        w.begin_node("a").unwrap();
        w.end_node().unwrap();
        assert_eq!(
            w.property_u32("late", 1),
            Err(WriteError::PropertyAfterSubnode)
        );
        assert_eq!(
            w.property_u32("bad\0name", 1),
            Err(WriteError::PropertyAfterSubnode)
        );
        w.end_node().unwrap();
        assert_eq!(w.end_node(), Err(WriteError::Unbalanced));
        assert_eq!(w.begin_node(""), Err(WriteError::SecondRoot));
        assert!(w.finish().is_ok());
        let mut open = FdtWriter::new();
        open.begin_node("").unwrap();
        assert_eq!(open.finish(), Err(WriteError::Unbalanced));
    }

    #[test]
    fn output_passes_the_strict_reader() {
        let mut w = FdtWriter::new();
        w.add_reservation(0, 0x1000);
        w.begin_node("").unwrap();
        w.property_strings("compatible", &["raspberrypi,4-model-b", "brcm,bcm2711"])
            .unwrap();
        w.begin_node("chosen").unwrap();
        w.property_string("bootargs", "x").unwrap();
        w.end_node().unwrap();
        w.end_node().unwrap();
        let b = w.finish().unwrap();
        let mut out = std::vec![0u8; 4096];
        let n = crate::dt::blob::sanitize(&b, &mut out).unwrap();
        assert_eq!(&out[..n], &b[..], "a NOP-free tree copies unchanged");
    }
}
