//! Strict structural check of a flattened device tree, and a compacted copy.
//!
//! The `fdt` crate assumes a well-formed blob: it panics on bad tokens, and
//! handles NOP tokens between sibling nodes inconsistently (QEMU turns the
//! original /memory node into NOPs, after which later nodes become invisible
//! to `find_node`). So every blob is checked here completely (header,
//! reservation block, every token, every name and string offset) and copied
//! without NOPs; only the copy is given to `fdt`.

use super::DtError;

/// FDT magic number.
pub const FDT_MAGIC: u32 = 0xd00d_feed;
/// Size of the v17 header.
pub const HEADER_SIZE: usize = 40;
/// Deepest node nesting accepted (the `fdt` crate tracks at most 63).
pub const MAX_DEPTH: usize = 16;
/// Most memory-reservation entries accepted.
pub const MAX_RESERVATIONS: usize = 64;

const BEGIN_NODE: u32 = 1;
const END_NODE: u32 = 2;
const PROP: u32 = 3;
const NOP: u32 = 4;
const END: u32 = 9;

/// The fields of an FDT header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    /// Size of the whole blob.
    pub totalsize: u32,
    /// Offset of the structure block.
    pub off_dt_struct: u32,
    /// Offset of the strings block.
    pub off_dt_strings: u32,
    /// Offset of the memory reservation block.
    pub off_mem_rsvmap: u32,
    /// Format version.
    pub version: u32,
    /// Oldest compatible version.
    pub last_comp_version: u32,
    /// Physical id of the boot CPU.
    pub boot_cpuid_phys: u32,
    /// Size of the strings block.
    pub size_dt_strings: u32,
    /// Size of the structure block.
    pub size_dt_struct: u32,
}

fn be32(b: &[u8], at: usize) -> Option<u32> {
    let s = b.get(at..at.checked_add(4)?)?;
    Some(u32::from_be_bytes([s[0], s[1], s[2], s[3]]))
}

fn be64(b: &[u8], at: usize) -> Option<u64> {
    Some((u64::from(be32(b, at)?) << 32) | u64::from(be32(b, at + 4)?))
}

impl Header {
    /// Reads the header at the start of `b` (the magic is checked first).
    pub fn read(b: &[u8]) -> Result<Self, DtError> {
        let magic = be32(b, 0).ok_or(DtError::Truncated)?;
        if magic != FDT_MAGIC {
            return Err(DtError::NoMagic { found: magic });
        }
        let f = |i: usize| be32(b, i * 4).ok_or(DtError::Truncated);
        Ok(Header {
            totalsize: f(1)?,
            off_dt_struct: f(2)?,
            off_dt_strings: f(3)?,
            off_mem_rsvmap: f(4)?,
            version: f(5)?,
            last_comp_version: f(6)?,
            boot_cpuid_phys: f(7)?,
            size_dt_strings: f(8)?,
            size_dt_struct: f(9)?,
        })
    }

    /// Checks that every block lies inside `totalsize` and is aligned.
    pub fn check_layout(&self) -> Result<(), DtError> {
        if self.version < 17 || self.last_comp_version > 17 {
            return Err(DtError::UnsupportedVersion(self.version));
        }
        let total = self.totalsize as u64;
        if total < HEADER_SIZE as u64 {
            return Err(DtError::BadHeader("totalsize is smaller than the header"));
        }
        let inside = |off: u32, size: u32| {
            (off as u64) >= HEADER_SIZE as u64 && off as u64 + size as u64 <= total
        };
        if !inside(self.off_dt_struct, self.size_dt_struct) || !self.off_dt_struct.is_multiple_of(4)
        {
            return Err(DtError::BadHeader(
                "structure block outside the blob or misaligned",
            ));
        }
        if !inside(self.off_dt_strings, self.size_dt_strings) {
            return Err(DtError::BadHeader("strings block outside the blob"));
        }
        if !inside(self.off_mem_rsvmap, 16) || !self.off_mem_rsvmap.is_multiple_of(8) {
            return Err(DtError::BadHeader(
                "reservation block outside the blob or misaligned",
            ));
        }
        Ok(())
    }
}

fn cstr_at(block: &[u8], at: usize) -> Option<&str> {
    let rest = block.get(at..)?;
    let nul = rest.iter().position(|&c| c == 0)?;
    core::str::from_utf8(&rest[..nul]).ok()
}

fn align4(n: usize) -> usize {
    (n + 3) & !3
}

/// Appends to a fixed output buffer.
struct Out<'o> {
    buf: &'o mut [u8],
    len: usize,
    max: usize,
    src_size: usize,
}

impl Out<'_> {
    fn put(&mut self, bytes: &[u8]) -> Result<(), DtError> {
        let end = self.len + bytes.len();
        let dst = self.buf.get_mut(self.len..end).ok_or(DtError::TooLarge {
            size: self.src_size,
            max: self.max,
        })?;
        dst.copy_from_slice(bytes);
        self.len = end;
        Ok(())
    }
    fn put32(&mut self, v: u32) -> Result<(), DtError> {
        self.put(&v.to_be_bytes())
    }
}

/// Checks `blob` completely and writes a NOP-free, version-17 copy of it into
/// `out`. Returns the length of the copy. `blob` may be longer than the tree.
pub fn sanitize(blob: &[u8], out: &mut [u8]) -> Result<usize, DtError> {
    let h = Header::read(blob)?;
    h.check_layout()?;
    let total = h.totalsize as usize;
    if blob.len() < total {
        return Err(DtError::Truncated);
    }
    let max = out.len();
    if total > max {
        return Err(DtError::TooLarge { size: total, max });
    }
    let blob = &blob[..total];
    let structs = &blob[h.off_dt_struct as usize..(h.off_dt_struct + h.size_dt_struct) as usize];
    let strings = &blob[h.off_dt_strings as usize..(h.off_dt_strings + h.size_dt_strings) as usize];

    let mut o = Out {
        buf: out,
        len: HEADER_SIZE,
        max,
        src_size: total,
    };
    // total >= HEADER_SIZE (check_layout) and total <= max: the header fits.

    // Reservation block: entries until (0, 0).
    let rsv_off = HEADER_SIZE;
    let mut at = h.off_mem_rsvmap as usize;
    let mut n = 0;
    loop {
        let addr =
            be64(blob, at).ok_or(DtError::BadHeader("reservation block is not terminated"))?;
        let size =
            be64(blob, at + 8).ok_or(DtError::BadHeader("reservation block is not terminated"))?;
        o.put(&addr.to_be_bytes())?;
        o.put(&size.to_be_bytes())?;
        if addr == 0 && size == 0 {
            break;
        }
        n += 1;
        if n > MAX_RESERVATIONS {
            return Err(DtError::BadHeader("more than 64 memory reservations"));
        }
        at += 16;
    }

    // Structure block.
    let struct_off = o.len;
    let mut pos = 0usize;
    let mut depth = 0usize;
    let mut had_child = [false; MAX_DEPTH];
    let mut root_done = false;
    let bad = |offset: usize, what: &'static str| DtError::BadStructure { offset, what };
    loop {
        let tok = be32(structs, pos).ok_or(bad(pos, "structure block ends without FDT_END"))?;
        match tok {
            NOP => pos += 4,
            BEGIN_NODE => {
                if root_done {
                    return Err(bad(pos, "node after the root node"));
                }
                let name = cstr_at(structs, pos + 4)
                    .ok_or(bad(pos, "node name not terminated or not UTF-8"))?;
                if depth == 0 && !name.is_empty() {
                    return Err(bad(pos, "root node has a name"));
                }
                if depth > 0 && name.is_empty() {
                    return Err(bad(pos, "node without a name"));
                }
                if depth == MAX_DEPTH {
                    return Err(bad(pos, "nodes nested too deep"));
                }
                if depth > 0 {
                    had_child[depth - 1] = true;
                }
                had_child[depth] = false;
                depth += 1;
                let len = align4(4 + name.len() + 1);
                o.put(
                    structs
                        .get(pos..pos + len)
                        .ok_or(bad(pos, "node name runs past the block"))?,
                )?;
                pos += len;
            }
            PROP => {
                if depth == 0 {
                    return Err(bad(pos, "property outside any node"));
                }
                if had_child[depth - 1] {
                    return Err(bad(pos, "property after a subnode"));
                }
                let len =
                    be32(structs, pos + 4).ok_or(bad(pos, "property header truncated"))? as usize;
                let nameoff =
                    be32(structs, pos + 8).ok_or(bad(pos, "property header truncated"))? as usize;
                let name =
                    cstr_at(strings, nameoff).ok_or(bad(pos, "property name offset invalid"))?;
                if (name == "#address-cells" || name == "#size-cells") && len != 4 {
                    return Err(bad(pos, "#address-cells/#size-cells is not one cell"));
                }
                let whole = 12usize
                    .checked_add(len)
                    .map(align4)
                    .ok_or(bad(pos, "property too long"))?;
                let end = pos
                    .checked_add(whole)
                    .ok_or(bad(pos, "property too long"))?;
                o.put(
                    structs
                        .get(pos..end)
                        .ok_or(bad(pos, "property value runs past the block"))?,
                )?;
                pos = end;
            }
            END_NODE => {
                if depth == 0 {
                    return Err(bad(pos, "unbalanced FDT_END_NODE"));
                }
                depth -= 1;
                root_done = depth == 0;
                o.put32(END_NODE)?;
                pos += 4;
            }
            END => {
                if depth != 0 || !root_done {
                    return Err(bad(pos, "FDT_END inside a node or before the root"));
                }
                o.put32(END)?;
                break;
            }
            _ => return Err(bad(pos, "unknown token")),
        }
    }
    let struct_size = o.len - struct_off;

    // Strings block, verbatim.
    let strings_off = o.len;
    o.put(strings)?;
    let total_out = o.len;

    // Header of the copy.
    let fields = [
        FDT_MAGIC,
        total_out as u32,
        struct_off as u32,
        strings_off as u32,
        rsv_off as u32,
        17,
        16,
        h.boot_cpuid_phys,
        strings.len() as u32,
        struct_size as u32,
    ];
    for (i, v) in fields.iter().enumerate() {
        o.buf[i * 4..i * 4 + 4].copy_from_slice(&v.to_be_bytes());
    }
    Ok(total_out)
}

/// One event of a walk over a checked tree's structure block.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event<'a> {
    /// A node begins (depth 0 is the root).
    Begin(&'a str, usize),
    /// A property of the current node.
    Prop(&'a str, &'a [u8]),
    /// The current node ends.
    End(usize),
}

/// Checks `blob` (as [`sanitize`] does) and calls `f` for every node and
/// property, in order. Stops at the first error `f` returns.
pub fn walk<E: From<DtError>>(
    blob: &[u8],
    f: &mut dyn FnMut(Event<'_>) -> Result<(), E>,
) -> Result<(), E> {
    let mut copy = alloc::vec![0u8; blob.len().max(HEADER_SIZE) + 64];
    let n = sanitize(blob, &mut copy)?;
    let b = &copy[..n];
    let h = Header::read(b)?;
    let structs = &b[h.off_dt_struct as usize..(h.off_dt_struct + h.size_dt_struct) as usize];
    let strings = &b[h.off_dt_strings as usize..(h.off_dt_strings + h.size_dt_strings) as usize];
    let bad = |offset: usize| DtError::BadStructure {
        offset,
        what: "inconsistent checked copy",
    };
    let (mut pos, mut depth) = (0usize, 0usize);
    loop {
        match be32(structs, pos).ok_or(bad(pos))? {
            BEGIN_NODE => {
                let name = cstr_at(structs, pos + 4).ok_or(bad(pos))?;
                f(Event::Begin(name, depth))?;
                depth += 1;
                pos += align4(4 + name.len() + 1);
            }
            PROP => {
                let len = be32(structs, pos + 4).ok_or(bad(pos))? as usize;
                let nameoff = be32(structs, pos + 8).ok_or(bad(pos))? as usize;
                let name = cstr_at(strings, nameoff).ok_or(bad(pos))?;
                let value = structs.get(pos + 12..pos + 12 + len).ok_or(bad(pos))?;
                f(Event::Prop(name, value))?;
                pos += 12 + align4(len);
            }
            END_NODE => {
                depth = depth.checked_sub(1).ok_or(bad(pos))?;
                f(Event::End(depth))?;
                pos += 4;
            }
            END => return Ok(()),
            _ => return Err(bad(pos).into()),
        }
    }
}
