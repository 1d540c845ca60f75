//! The BCM2711 VideoCore mailbox (the ARM's side) and the hypervisor's
//! own driver for it: mailbox 0 carries the VideoCore's answers to the
//! ARM, mailbox 1 the ARM's requests. Each word is a 16-byte-aligned bus
//! address with the channel in its low 4 bits.
//!
//! [`HostMailbox`] sends one property buffer at a time through a bounce
//! buffer in hypervisor memory (below 1 GiB, where the VideoCore can see
//! it, at its bus address), cleaned to the point of coherency before the
//! VideoCore reads it and invalidated before the ARM reads the answer (the
//! VideoCore is not coherent with the ARM's caches). It polls the status
//! between sleeps its caller provides ([`Platform`]): the mailbox
//! interrupt stays disabled, so the hypervisor never has to share it.

use super::super::mmio::Mmio;
use tock_registers::{
    interfaces::{Readable, Writeable},
    register_structs,
    registers::{ReadOnly, ReadWrite, WriteOnly},
};

/// Status: the FIFO is full.
pub const FULL: u32 = 1 << 31;
/// Status: the FIFO is empty.
pub const EMPTY: u32 = 1 << 30;
/// The property-tag channel (the ARM's requests to the firmware).
pub const PROPERTY_CHANNEL: u32 = 8;
/// Most stale answers discarded while waiting for ours.
const MAX_STALE: usize = 16;

register_structs! {
    /// The register block (0x40 bytes, at bus 0x7e00b880).
    #[allow(non_snake_case)]
    pub MailboxRegs {
        /// Mailbox 0 read: pops the oldest answer.
        (0x00 => pub MAIL0_RD: ReadOnly<u32>),
        (0x04 => _reserved0),
        /// Mailbox 0 status: FULL (bit 31), EMPTY (bit 30).
        (0x18 => pub MAIL0_STA: ReadOnly<u32>),
        /// Mailbox 0 configuration: bit 0 interrupts while data waits.
        (0x1c => pub MAIL0_CNF: ReadWrite<u32>),
        /// Mailbox 1 write: a request to the VideoCore.
        (0x20 => pub MAIL1_WRT: WriteOnly<u32>),
        (0x24 => _reserved1),
        /// Mailbox 1 status.
        (0x38 => pub MAIL1_STA: ReadOnly<u32>),
        (0x3c => @END),
    }
}

/// Reads answers until `word` (sets `got`) or too many others; whether to
/// stop waiting.
fn take(regs: &MailboxRegs, word: u32, got: &mut bool) -> bool {
    let mut stale = 0;
    while regs.MAIL0_STA.get() & EMPTY == 0 {
        if regs.MAIL0_RD.get() == word {
            *got = true;
            return true;
        }
        stale += 1;
        if stale > MAX_STALE {
            return true;
        }
    }
    false
}

/// What the driver needs from the CPU and the scheduler around it.
pub trait Platform {
    /// Cleans and invalidates `[pa, pa+len)` to the point of coherency.
    fn clean_inval(&self, pa: u64, len: u64);
    /// Waits until `done` holds, looking often, for at most the driver's
    /// timeout; false if it never held.
    fn wait(&self, done: &mut dyn FnMut() -> bool) -> bool;
}

/// The hypervisor's mailbox: its registers and its bounce buffer.
pub struct HostMailbox {
    regs: Mmio<MailboxRegs>,
    bounce: &'static mut [u8],
    /// The bounce buffer's VideoCore bus address.
    bus: u32,
    /// A request timed out: its answer may still come, and the firmware
    /// may still write the bounce buffer. Every answer carries the same
    /// word (one buffer, one channel), so that late answer must be taken
    /// before another request, or the next caller (in any VM) reads it
    /// as its own.
    late: bool,
}

// SAFETY: the registers and the buffer are only used by whoever owns the
// driver (the hypervisor keeps it under a lock).
unsafe impl Send for HostMailbox {}

impl HostMailbox {
    /// Takes the mailbox at `base` with `bounce` (VideoCore bus address
    /// `bus`): its interrupt off, answers nobody waits for dropped.
    ///
    /// # Safety
    /// `base` is the mailbox's register block, mapped as device memory,
    /// used by nothing else; `bounce` is identity-mapped RAM the
    /// VideoCore reaches at `bus`.
    pub unsafe fn new(base: usize, bounce: &'static mut [u8], bus: u32) -> Self {
        // SAFETY: the caller's promise.
        let regs = unsafe { Mmio::<MailboxRegs>::new(base) };
        regs.MAIL0_CNF.set(0);
        for _ in 0..MAX_STALE {
            if regs.MAIL0_STA.get() & EMPTY != 0 {
                break;
            }
            let _ = regs.MAIL0_RD.get();
        }
        Self {
            regs,
            bounce,
            bus,
            late: false,
        }
    }

    /// The bounce buffer's bus address.
    pub fn bus(&self) -> u32 {
        self.bus
    }

    /// Sends the property buffer `buf` and waits for the answer in place.
    pub fn call(&mut self, buf: &mut [u8], p: &dyn Platform) -> Result<(), &'static str> {
        let len = buf.len();
        if len > self.bounce.len() || !len.is_multiple_of(4) {
            return Err("buffer too large");
        }
        let word = self.bus | PROPERTY_CHANNEL;
        let regs = &self.regs;
        if self.late {
            let mut got = false;
            p.wait(&mut || take(regs, word, &mut got));
            if !got {
                return Err("the firmware still owes an earlier answer");
            }
            self.late = false;
        }
        let pa = self.bounce.as_ptr() as u64;
        self.bounce[..len].copy_from_slice(buf);
        p.clean_inval(pa, len as u64);
        if !p.wait(&mut || regs.MAIL1_STA.get() & FULL == 0) {
            return Err("mailbox full");
        }
        regs.MAIL1_WRT.set(word);
        let mut got = false;
        p.wait(&mut || take(regs, word, &mut got));
        if !got {
            self.late = true;
            return Err("no answer from the firmware");
        }
        // Drop whatever the cache fetched meanwhile, then read the answer.
        p.clean_inval(pa, len as u64);
        buf.copy_from_slice(&self.bounce[..len]);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::boxed::Box;
    use std::cell::RefCell;
    use std::collections::VecDeque;
    use std::vec;
    use std::vec::Vec;

    /// What the fake firmware does at each wait.
    enum Step {
        /// MAIL1 has room.
        Room,
        /// Nothing happens (the wait times out).
        Silence,
        /// An answer: these bytes land in the bounce buffer (at the
        /// VideoCore's pace), then the word is in MAIL0.
        Answer(Vec<u8>),
    }

    /// A register block in host memory and a scripted firmware.
    struct Fake {
        regs: *mut u32,
        bounce: *mut u8,
        steps: RefCell<VecDeque<Step>>,
    }

    const STA: usize = 0x18 / 4;
    const RD: usize = 0;

    impl Platform for Fake {
        fn clean_inval(&self, _: u64, _: u64) {}
        fn wait(&self, done: &mut dyn FnMut() -> bool) -> bool {
            let step = self.steps.borrow_mut().pop_front();
            // SAFETY: the test's own memory, alive for the whole test.
            unsafe {
                match step {
                    Some(Step::Answer(bytes)) => {
                        core::ptr::copy_nonoverlapping(bytes.as_ptr(), self.bounce, bytes.len());
                        *self.regs.add(RD) = 0x1000 | PROPERTY_CHANNEL;
                        *self.regs.add(STA) = 0;
                        let r = done();
                        *self.regs.add(STA) = EMPTY; // popped
                        r
                    }
                    Some(Step::Room) => done(),
                    Some(Step::Silence) | None => {
                        *self.regs.add(STA) = EMPTY;
                        done()
                    }
                }
            }
        }
    }

    fn buf(tag: u8) -> Vec<u8> {
        vec![tag; 16]
    }

    #[test]
    fn a_late_answer_is_never_taken_for_the_next_request() {
        let regs: &'static mut [u32; 16] = Box::leak(Box::new([0; 16]));
        regs[STA] = EMPTY;
        let bounce: &'static mut [u8] = Box::leak(vec![0u8; 64].into_boxed_slice());
        let fake = Fake {
            regs: regs.as_mut_ptr(),
            bounce: bounce.as_mut_ptr(),
            steps: RefCell::new(VecDeque::new()),
        };
        // SAFETY: a register block and a bounce buffer in test memory.
        let mut mb = unsafe { HostMailbox::new(regs.as_mut_ptr() as usize, bounce, 0x1000) };
        // Request A times out.
        fake.steps.borrow_mut().extend([Step::Room, Step::Silence]);
        let mut a = buf(0xa0);
        assert!(mb.call(&mut a, &fake).is_err());
        // A's answer arrives late, then B's: B must get B's.
        fake.steps.borrow_mut().extend([
            Step::Answer(buf(0xaa)),
            Step::Room,
            Step::Answer(buf(0xbb)),
        ]);
        let mut b = buf(0xb0);
        mb.call(&mut b, &fake).unwrap();
        assert_eq!(b, buf(0xbb), "B read A's late answer");
        // A late answer that never comes: refused, nothing sent.
        fake.steps.borrow_mut().extend([Step::Room, Step::Silence]);
        assert!(mb.call(&mut buf(0xc0), &fake).is_err());
        fake.steps.borrow_mut().push_back(Step::Silence);
        assert_eq!(
            mb.call(&mut buf(0xd0), &fake),
            Err("the firmware still owes an earlier answer")
        );
    }
}
