//! A guest's mailbox request, end to end and pure: the word it wrote to
//! MAIL1_WRT names a channel and a buffer by bus address; the buffer is
//! found through the VM's DMA window, must lie wholly in its RAM, is copied
//! once (another vCPU may change the original meanwhile), parsed, answered
//! under the VM's policy ([`property::process`]) and copied back. The
//! hypervisor and pv-vmm both serve requests with [`serve`]; they differ
//! only in the guest memory and the firmware behind it.

use super::policy::Policy;
use super::property::{self, check_size, Firmware, Malformed, Outcome, View};
use super::property::{BCM2711_DMA, CHANNEL, CODE_ERROR};
use alloc::vec::Vec;
use core::fmt;

/// The VM's RAM as a request sees it. Accesses outside RAM fail and
/// change nothing.
pub trait GuestMemory {
    /// Whether all of `[ipa, ipa+len)` is RAM.
    fn contains(&self, ipa: u64, len: u64) -> bool;
    /// RAM bytes from IPA 0 below the peripheral window: what the DMA
    /// window can reach.
    fn low_size(&self) -> u64;
    /// Copies RAM at `ipa` into `out`; false if outside RAM.
    fn read(&mut self, ipa: u64, out: &mut [u8]) -> bool;
    /// Copies `data` into RAM at `ipa`; false if outside RAM.
    fn write(&mut self, ipa: u64, data: &[u8]) -> bool;
}

/// What was wrong with a request (for the VM's rate-limited log).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Problem {
    /// A channel other than the property channel: not answered.
    Channel(u32),
    /// The buffer's first word is not in the VM's RAM.
    Outside {
        /// The bus address.
        bus: u64,
        /// The last bus address the window reaches in the VM's RAM.
        last: u64,
    },
    /// The buffer's size runs past the VM's RAM.
    PastRam {
        /// The bus address.
        bus: u64,
        /// Its size word.
        size: u32,
    },
    /// The size word is impossible; the buffer's code says error.
    BadSize {
        /// The bus address.
        bus: u64,
        /// Why.
        why: Malformed,
    },
    /// The tags do not parse; the buffer's code says error.
    Malformed {
        /// The bus address.
        bus: u64,
        /// Why.
        why: Malformed,
    },
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Problem::Channel(c) => write!(
                f,
                "mailbox: channel {c} is not emulated (only the property channel 8); no answer"
            ),
            Problem::Outside { bus, last } => write!(
                f,
                "mailbox: buffer at bus address {bus:#x} is not in the VM's RAM (DMA window bus {:#x}-{last:#x}); refused",
                BCM2711_DMA.bus
            ),
            Problem::PastRam { bus, size } => write!(
                f,
                "mailbox: buffer at bus {bus:#x} of {size} bytes runs past the VM's RAM; refused"
            ),
            Problem::BadSize { bus, why } => {
                write!(f, "mailbox: buffer at bus {bus:#x}: {why}; answered 0x80000001")
            }
            Problem::Malformed { bus, why } => write!(
                f,
                "mailbox: malformed buffer at bus {bus:#x}: {why}; answered 0x80000001"
            ),
        }
    }
}

/// What serving a request did.
#[derive(Debug, Default)]
pub struct Served {
    /// The word to queue for MAIL0 (None: no answer).
    pub answer: Option<u32>,
    /// What was refused, if the request was.
    pub problem: Option<Problem>,
    /// The property outcome, if the buffer was processed.
    pub outcome: Option<Outcome>,
}

/// Serves the request `word` against `mem`, under `policy`, answering from
/// `view` or forwarding to `fw`.
pub fn serve(
    word: u32,
    mem: &mut impl GuestMemory,
    policy: &Policy,
    view: &View<'_>,
    fw: &mut dyn Firmware,
) -> Served {
    let refuse = |answer, p| Served {
        answer,
        problem: Some(p),
        outcome: None,
    };
    let channel = word & 0xf;
    if channel != CHANNEL {
        return refuse(None, Problem::Channel(channel));
    }
    let bus = u64::from(word & !0xf);
    let low = mem.low_size();
    // The size word first, then the whole buffer once its size is known.
    let Some(ipa) = inside(mem, bus, 4) else {
        let last = BCM2711_DMA.bus + BCM2711_DMA.size.min(low) - 1;
        return refuse(Some(word), Problem::Outside { bus, last });
    };
    let mut head = [0u8; 4];
    mem.read(ipa, &mut head);
    let size = u32::from_le_bytes(head);
    let len = match check_size(size) {
        Ok(l) if inside(mem, bus, l as u64).is_some() => l,
        Ok(_) => return refuse(Some(word), Problem::PastRam { bus, size }),
        Err(why) => {
            // Only the response code is written (and only inside RAM).
            mem.write(ipa + 4, &CODE_ERROR.to_le_bytes());
            return refuse(Some(word), Problem::BadSize { bus, why });
        }
    };
    let mut copy: Vec<u8> = alloc::vec![0; len];
    mem.read(ipa, &mut copy);
    copy[..4].copy_from_slice(&size.to_le_bytes());
    match property::process(&mut copy, policy, view, fw) {
        Ok(o) => {
            mem.write(ipa, &copy);
            Served {
                answer: Some(word),
                problem: None,
                outcome: Some(o),
            }
        }
        Err(why) => {
            // process() set the code in the copy; nothing else goes back.
            mem.write(ipa + 4, &copy[4..8]);
            refuse(Some(word), Problem::Malformed { bus, why })
        }
    }
}

/// The IPA of `len` bytes at bus address `bus`, if the VM's DMA window
/// reaches them and they are all RAM.
fn inside(mem: &impl GuestMemory, bus: u64, len: u64) -> Option<u64> {
    BCM2711_DMA
        .buffer_ipa(bus, len, mem.low_size())
        .filter(|&ipa| mem.contains(ipa, len))
}

/// A flat RAM from IPA 0 (pv-vmm's, which refuses VMs larger than the
/// low bank; and the tests').
impl GuestMemory for &mut [u8] {
    fn contains(&self, ipa: u64, len: u64) -> bool {
        ipa.checked_add(len).is_some_and(|e| e <= self.len() as u64)
    }
    fn low_size(&self) -> u64 {
        self.len() as u64
    }
    fn read(&mut self, ipa: u64, out: &mut [u8]) -> bool {
        if !GuestMemory::contains(self, ipa, out.len() as u64) {
            return false;
        }
        let at = ipa as usize;
        out.copy_from_slice(&self[at..at + out.len()]);
        true
    }
    fn write(&mut self, ipa: u64, data: &[u8]) -> bool {
        if !GuestMemory::contains(self, ipa, data.len() as u64) {
            return false;
        }
        let at = ipa as usize;
        self[at..at + data.len()].copy_from_slice(data);
        true
    }
}

#[cfg(test)]
#[path = "request_tests.rs"]
mod tests;
