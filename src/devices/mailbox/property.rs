//! The VideoCore firmware's property channel (mailbox channel 8), checked
//! and answered for a guest.
//!
//! A property buffer (in the guest's RAM, found through the bus address it
//! writes to the mailbox) reads:
//!
//! | word | request                         | response                           |
//! |------|---------------------------------|------------------------------------|
//! | 0    | buffer size in bytes            | (unchanged)                        |
//! | 1    | 0 (process request)             | 0x80000000 ok, 0x80000001 error    |
//! | ...  | tags: id, value buffer size,    | bit 31 of the code set, low bits   |
//! |      | request code (bit 31 clear,     | the response length; the value     |
//! |      | low bits the request length),   | buffer holds the answer (cut to    |
//! |      | value buffer padded to 4 bytes  | its size if longer)                |
//! | last | end tag 0                       |                                    |
//!
//! [`process`] works on the hypervisor's own copy of the buffer (the guest
//! may rewrite the original while it is parsed). A buffer whose sizes lie,
//! whose tags are truncated or that has no end tag is *malformed*: nothing
//! is answered and only its code word becomes 0x80000001. Otherwise each tag
//! is answered from the VM's own view (memory, serial, MAC, command line,
//! NOTIFY_REBOOT), forwarded to the real firmware (a read-only allow-list,
//! grouped, chosen per VM by [`Policy`]), or refused: a refused tag keeps
//! its response bit clear and the buffer code becomes 0x80000001, which is
//! how the protocol says "error" (it has no per-tag error bit).

use super::policy::{tag, Policy};
use alloc::vec::Vec;
use core::fmt;

/// The longest property buffer a guest may send (bytes). Linux's requests
/// are a few dozen bytes; the firmware's own limit is similar in spirit.
pub const MAX_BUFFER: usize = 4096;
/// Buffer code: a request.
pub const CODE_REQUEST: u32 = 0;
/// Buffer code: every tag answered.
pub const CODE_SUCCESS: u32 = 0x8000_0000;
/// Buffer code: error (malformed buffer, or a tag refused or failed).
pub const CODE_ERROR: u32 = 0x8000_0001;
/// A tag's code word: bit 31 set in a response.
pub const RESPONSE: u32 = 1 << 31;
/// The property channel.
pub const CHANNEL: u32 = crate::board::rpi4::mailbox::PROPERTY_CHANNEL;

/// The VM's own view, for tags answered locally.
#[derive(Debug, Clone, Copy)]
pub struct View<'a> {
    /// Where the VM's RAM below the peripheral window starts (0, or the
    /// host address of identity RAM).
    pub ram_base: u64,
    /// The size of the VM's RAM below the peripheral window.
    pub ram: u64,
    /// The board serial the VM sees (None: the real one).
    pub serial: Option<u64>,
    /// The MAC address the VM sees (None: the real one).
    pub mac: Option<[u8; 6]>,
    /// The VM's kernel command line.
    pub cmdline: &'a str,
}

/// The real firmware, reached through the hypervisor's own mailbox.
pub trait Firmware {
    /// Sends a whole property buffer (size word first, end tag last) and
    /// waits for the answer in place. Err: no answer (timeout, no mailbox).
    fn call(&mut self, buf: &mut [u8]) -> Result<(), &'static str>;
}

/// Why a buffer is malformed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Malformed {
    /// The size word is below 12, above [`MAX_BUFFER`] or not a multiple of 4.
    BadSize(u32),
    /// The code word of a request must be 0.
    NotARequest(u32),
    /// A tag's header or value buffer runs past the buffer's end.
    TagOverrun {
        /// Byte offset of the tag.
        at: usize,
    },
    /// A tag's request length exceeds its value buffer (or has bit 31 set).
    BadRequestLength {
        /// Byte offset of the tag.
        at: usize,
    },
    /// No end tag before the buffer's end.
    NoEndTag,
}

impl fmt::Display for Malformed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Malformed::BadSize(s) => write!(
                f,
                "buffer size {s} (must be 12-{MAX_BUFFER}, a multiple of 4)"
            ),
            Malformed::NotARequest(c) => write!(f, "buffer code {c:#x} is not a request (0)"),
            Malformed::TagOverrun { at } => {
                write!(f, "tag at byte {at} runs past the buffer's end")
            }
            Malformed::BadRequestLength { at } => {
                write!(
                    f,
                    "tag at byte {at}: request length larger than its value buffer"
                )
            }
            Malformed::NoEndTag => f.write_str("no end tag"),
        }
    }
}

/// What happened to one buffer.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Outcome {
    /// The buffer code written back.
    pub code: u32,
    /// Tags refused by policy (for the log).
    pub refused: Vec<u32>,
    /// Tags the firmware did not answer (or a forward that failed).
    pub failed: Vec<u32>,
    /// Tags forwarded to the firmware.
    pub forwarded: usize,
    /// Tags answered from the VM's view.
    pub local: usize,
}

/// Reads a little-endian word at byte `at` (caller checked the bounds).
fn rd(buf: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([buf[at], buf[at + 1], buf[at + 2], buf[at + 3]])
}

fn wr(buf: &mut [u8], at: usize, v: u32) {
    buf[at..at + 4].copy_from_slice(&v.to_le_bytes());
}

/// One parsed tag: where it is and its sizes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tag {
    /// Byte offset of the tag's id word.
    pub at: usize,
    /// Tag id.
    pub id: u32,
    /// Value buffer size in bytes.
    pub size: usize,
}

impl Tag {
    /// The value buffer's byte range.
    pub fn value(&self) -> core::ops::Range<usize> {
        self.at + 12..self.at + 12 + self.size
    }
    /// The whole tag's length, padded to 4 bytes.
    pub fn padded_len(&self) -> usize {
        12 + self.size.next_multiple_of(4)
    }
}

/// Checks the buffer's size (the first word, read once by the caller, who
/// copies that many bytes): 12 to [`MAX_BUFFER`], a multiple of 4.
pub fn check_size(size: u32) -> Result<usize, Malformed> {
    let s = size as usize;
    if !(12..=MAX_BUFFER).contains(&s) || !s.is_multiple_of(4) {
        return Err(Malformed::BadSize(size));
    }
    Ok(s)
}

/// Parses the copied buffer `buf` (its whole length is the size the caller
/// checked; the size word inside is not trusted again).
pub fn parse(buf: &[u8]) -> Result<Vec<Tag>, Malformed> {
    check_size(buf.len() as u32)?;
    let code = rd(buf, 4);
    if code != CODE_REQUEST {
        return Err(Malformed::NotARequest(code));
    }
    let mut tags = Vec::new();
    let mut at = 8;
    loop {
        if at + 4 > buf.len() {
            return Err(Malformed::NoEndTag);
        }
        let id = rd(buf, at);
        if id == 0 {
            return Ok(tags);
        }
        if at + 12 > buf.len() {
            return Err(Malformed::TagOverrun { at });
        }
        let size = rd(buf, at + 4) as usize;
        let req = rd(buf, at + 8);
        let t = Tag { at, id, size };
        if size > buf.len() || at + t.padded_len() > buf.len() {
            return Err(Malformed::TagOverrun { at });
        }
        if req & RESPONSE != 0 || req as usize > size {
            return Err(Malformed::BadRequestLength { at });
        }
        tags.push(t);
        at += t.padded_len();
    }
}

/// Writes a local answer: as much of `data` as fits, the code word saying
/// the full length (the protocol's "truncated" signal when larger).
fn answer(buf: &mut [u8], t: &Tag, data: &[u8]) {
    let n = data.len().min(t.size);
    let v = t.value();
    buf[v.start..v.start + n].copy_from_slice(&data[..n]);
    wr(buf, t.at + 8, RESPONSE | data.len() as u32);
}

/// The local answer to tag `id`, if it is answered from the VM's view.
fn local(id: u32, view: &View<'_>, out: &mut Vec<u8>) -> bool {
    out.clear();
    match id {
        tag::ARM_MEMORY => {
            let size = view.ram.min(u64::from(u32::MAX) & !0xfff) as u32;
            out.extend_from_slice(&(view.ram_base as u32).to_le_bytes());
            out.extend_from_slice(&size.to_le_bytes());
        }
        tag::BOARD_SERIAL => match view.serial {
            Some(s) => out.extend_from_slice(&s.to_le_bytes()),
            None => return false,
        },
        tag::BOARD_MAC => match view.mac {
            Some(m) => out.extend_from_slice(&m),
            None => return false,
        },
        tag::COMMAND_LINE => {
            out.extend_from_slice(view.cmdline.as_bytes());
            out.push(0);
        }
        tag::NOTIFY_REBOOT => {}
        _ => return false,
    }
    true
}

/// Answers a request buffer in place (the hypervisor's copy; the caller
/// writes it back). A malformed buffer is left alone except for its code
/// word, which becomes [`CODE_ERROR`].
pub fn process(
    buf: &mut [u8],
    policy: &Policy,
    view: &View<'_>,
    fw: &mut dyn Firmware,
) -> Result<Outcome, Malformed> {
    let tags = match parse(buf) {
        Ok(t) => t,
        Err(e) => {
            if buf.len() >= 8 {
                wr(buf, 4, CODE_ERROR);
            }
            return Err(e);
        }
    };
    let mut out = Outcome::default();
    let mut fwd: Vec<Tag> = Vec::new();
    let mut data = Vec::new();
    for t in &tags {
        // NOTIFY_REBOOT is answered by the hypervisor for every VM: Linux
        // sends it on each poweroff and reboot, and it must never reach
        // the real firmware (it would prepare the board for a reboot).
        let allowed = t.id == tag::NOTIFY_REBOOT
            || (policy.allows(t.id)
                && (!matches!(t.id, tag::SET_GPIO_STATE | tag::SET_GPIO_CONFIG)
                    || (t.size >= 4 && policy.may_set_pin(rd(buf, t.value().start)))));
        if !allowed {
            out.refused.push(t.id);
        } else if local(t.id, view, &mut data) {
            answer(buf, t, &data);
            out.local += 1;
        } else {
            fwd.push(*t);
        }
    }
    if !fwd.is_empty() {
        // Only the forwarded tags go to the firmware, in a buffer of
        // their own: the same layout, the request codes as the guest
        // wrote them.
        let len = 8 + fwd.iter().map(Tag::padded_len).sum::<usize>() + 4;
        let mut fb = alloc::vec![0u8; len];
        wr(&mut fb, 0, len as u32);
        let mut at = 8;
        for t in &fwd {
            fb[at..at + t.padded_len()].copy_from_slice(&buf[t.at..t.at + t.padded_len()]);
            // GET_THROTTLED's request word says which sticky bits to
            // clear (Linux's hwmon sends 0xffff): that history is the
            // board's, not the VM's, so it is only ever read.
            if t.id == tag::THROTTLED && t.size >= 4 {
                wr(&mut fb, at + 12, 0);
            }
            at += t.padded_len();
        }
        let ok = fw.call(&mut fb).is_ok() && rd(&fb, 4) == CODE_SUCCESS;
        let mut at = 8;
        for t in &fwd {
            let code = rd(&fb, at + 8);
            if ok && code & RESPONSE != 0 {
                // The value buffer and code as the firmware wrote them;
                // the sizes are the guest's, checked above.
                buf[t.at + 8..t.at + t.padded_len()]
                    .copy_from_slice(&fb[at + 8..at + t.padded_len()]);
                out.forwarded += 1;
            } else {
                out.failed.push(t.id);
            }
            at += t.padded_len();
        }
    }
    out.code = if out.refused.is_empty() && out.failed.is_empty() {
        CODE_SUCCESS
    } else {
        CODE_ERROR
    };
    wr(buf, 4, out.code);
    Ok(out)
}

/// A DMA window of a VM's device tree (`dma-ranges`): bus addresses
/// `bus..bus + size` are IPAs `ipa..ipa + size`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DmaWindow {
    /// First bus address.
    pub bus: u64,
    /// The IPA it maps to.
    pub ipa: u64,
    /// Bytes.
    pub size: u64,
}

/// The BCM2711 window (`dma-ranges = <0xc0000000 0x0 0x0 0x40000000>`):
/// the VideoCore's view of the low 1 GiB.
pub const BCM2711_DMA: DmaWindow = DmaWindow {
    bus: 0xc000_0000,
    ipa: 0,
    size: 0x4000_0000,
};

impl DmaWindow {
    /// The IPA of `len` bytes at bus address `bus`, if all of them are
    /// inside the window.
    pub fn to_ipa(&self, bus: u64, len: u64) -> Option<u64> {
        let off = bus.checked_sub(self.bus)?;
        let end = off.checked_add(len)?;
        (end <= self.size).then(|| self.ipa + off)
    }

    /// The IPA of a `len`-byte buffer at bus address `bus` that must lie
    /// wholly inside the window and inside a VM's RAM (IPA 0 to
    /// `ram_size`); None otherwise (0 bytes count as outside).
    pub fn buffer_ipa(&self, bus: u64, len: u64, ram_size: u64) -> Option<u64> {
        if len == 0 {
            return None;
        }
        let ipa = self.to_ipa(bus, len)?;
        (ipa.checked_add(len)? <= ram_size).then_some(ipa)
    }
}

#[cfg(test)]
#[path = "property_tests.rs"]
pub(crate) mod tests;
