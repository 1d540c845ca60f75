//! The saved register frame of an exception and the fault report of one
//! the hypervisor does not handle.
//!
//! Snapshot, then decode: the vector code saves the registers and ESR/FAR/
//! HPFAR into a plain [`Snapshot`]; everything here is pure and host-tested.
//! The syndrome fields are [`crate::trap::decode`]'s.

use crate::trap::decode::{Syndrome, ABORT_ISS, ESR};
use core::fmt;
use tock_registers::{interfaces::Readable, registers::InMemoryRegister};

/// Which of the 16 vector slots was taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VectorSlot(pub u64);

impl VectorSlot {
    /// Where the exception came from.
    pub fn origin(self) -> &'static str {
        match self.0 / 4 {
            0 => "current EL, SP_EL0",
            1 => "current EL, SP_EL2",
            2 => "lower EL, AArch64",
            3 => "lower EL, AArch32",
            _ => "invalid vector",
        }
    }

    /// Synchronous, IRQ, FIQ or SError.
    pub fn kind(self) -> &'static str {
        match self.0 % 4 {
            0 => "synchronous",
            1 => "IRQ",
            2 => "FIQ",
            _ => "SError",
        }
    }

    /// True for an exception taken from EL2 itself (a hypervisor fault).
    pub fn from_current_el(self) -> bool {
        self.0 < 8
    }
}

/// The name of an exception class (ESR_ELx.EC).
pub fn class_name(ec: u64) -> &'static str {
    match ec {
        0x00 => "Unknown reason",
        0x01 => "Trapped WFI/WFE",
        0x03 => "Trapped MCR/MRC (CP15)",
        0x04 => "Trapped MCRR/MRRC (CP15)",
        0x05 => "Trapped MCR/MRC (CP14)",
        0x06 => "Trapped LDC/STC (CP14)",
        0x07 => "SVE/SIMD/FP access",
        0x0C => "Trapped MRRC (CP14)",
        0x0E => "Illegal execution state",
        0x11 => "SVC (AArch32)",
        0x12 => "HVC (AArch32)",
        0x13 => "SMC (AArch32)",
        0x15 => "SVC (AArch64)",
        0x16 => "HVC (AArch64)",
        0x17 => "SMC (AArch64)",
        0x18 => "MSR/MRS/system instruction",
        0x19 => "SVE access",
        0x1F => "IMPLEMENTATION DEFINED (EL3)",
        0x20 => "Instruction Abort from a lower EL",
        0x21 => "Instruction Abort from the current EL",
        0x22 => "PC alignment fault",
        0x24 => "Data Abort from a lower EL",
        0x25 => "Data Abort from the current EL",
        0x26 => "SP alignment fault",
        0x28 => "FP exception (AArch32)",
        0x2C => "FP exception (AArch64)",
        0x2F => "SError interrupt",
        0x30 => "Breakpoint from a lower EL",
        0x31 => "Breakpoint from the current EL",
        0x32 => "Software step from a lower EL",
        0x33 => "Software step from the current EL",
        0x34 => "Watchpoint from a lower EL",
        0x35 => "Watchpoint from the current EL",
        0x38 => "BKPT (AArch32)",
        0x3A => "Vector catch (AArch32)",
        0x3C => "BRK (AArch64)",
        _ => "Reserved exception class",
    }
}

/// The name of an instruction/data fault status code (ISS.DFSC/IFSC).
pub fn fault_status_name(fsc: u64) -> &'static str {
    match fsc {
        0x00..=0x03 => "address size fault",
        0x04..=0x07 => "translation fault",
        0x09..=0x0B => "access flag fault",
        0x0D..=0x0F => "permission fault",
        0x10 => "synchronous external abort",
        0x11 => "synchronous tag check fault",
        0x14..=0x17 => "synchronous external abort on table walk",
        0x18 => "synchronous parity/ECC error",
        0x1C..=0x1F => "synchronous parity/ECC error on table walk",
        0x21 => "alignment fault",
        0x30 => "TLB conflict abort",
        0x31 => "unsupported atomic hardware update",
        _ => "reserved fault status",
    }
}

/// The lookup level a fault status code names, where it names one.
pub fn fault_status_level(fsc: u64) -> Option<u64> {
    match fsc {
        0x00..=0x07 | 0x09..=0x0B | 0x0D..=0x0F | 0x14..=0x17 | 0x1C..=0x1F => Some(fsc & 3),
        _ => None,
    }
}

/// The registers the EL2 vector code saves, in its layout
/// (src/arch/aarch64/vectors.s): 36 u64 = 288 bytes.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
pub struct Frame {
    /// General registers x0-x30.
    pub regs: [u64; 31],
    /// Exception link register.
    pub elr: u64,
    /// Saved program status.
    pub spsr: u64,
    /// Exception syndrome.
    pub esr: u64,
    /// Fault address.
    pub far: u64,
    /// Faulting IPA (stage-2 faults only).
    pub hpfar: u64,
}

const _: () = assert!(core::mem::size_of::<Frame>() == 288);

impl Frame {
    /// All registers zero.
    pub const ZERO: Frame = Frame {
        regs: [0; 31],
        elr: 0,
        spsr: 0,
        esr: 0,
        far: 0,
        hpfar: 0,
    };

    /// Moves the return address past the trapped instruction (an emulated
    /// access, a trapped WFx or system register, an SMC, which leaves ELR
    /// at itself): 4 bytes, or 2 for a 16-bit T32 instruction, as
    /// ESR_EL2.IL says (an AArch32 EL0 under a guest kernel can trap with
    /// one; skipping 4 would land in the middle of the next instruction).
    #[inline(always)]
    pub fn skip_instruction(&mut self) {
        self.elr += if self.esr & ESR::IL::SET.value != 0 {
            4
        } else {
            2
        };
    }
}

/// An exception as taken: the saved frame, the vector slot and the core.
#[derive(Debug, Clone, Copy, Default)]
pub struct Snapshot {
    /// The saved registers.
    pub frame: Frame,
    /// Vector slot taken (0-15).
    pub slot: u64,
    /// Logical core that took it.
    pub core: usize,
}

impl Syndrome {
    /// True when FAR holds a meaningful fault address.
    pub fn far_valid(&self) -> bool {
        let abort = matches!(self.ec, 0x20 | 0x21 | 0x24 | 0x25 | 0x22 | 0x34 | 0x35);
        let iss: InMemoryRegister<u64, ABORT_ISS::Register> = InMemoryRegister::new(self.iss);
        abort && iss.read(ABORT_ISS::FNV) == 0
    }

    /// For aborts: "read/write, <status> (level N)".
    pub fn abort_detail(&self) -> Option<AbortDetail> {
        if !matches!(self.ec, 0x20 | 0x21 | 0x24 | 0x25) {
            return None;
        }
        let iss: InMemoryRegister<u64, ABORT_ISS::Register> = InMemoryRegister::new(self.iss);
        let fsc = iss.read(ABORT_ISS::FSC);
        Some(AbortDetail {
            data: matches!(self.ec, 0x24 | 0x25),
            write: iss.read(ABORT_ISS::WNR) == 1,
            status: fault_status_name(fsc),
            level: fault_status_level(fsc),
            s1ptw: iss.read(ABORT_ISS::S1PTW) == 1,
        })
    }
}

/// What an abort's ISS says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AbortDetail {
    /// Data (not instruction) abort.
    pub data: bool,
    /// The access was a write.
    pub write: bool,
    /// Fault status name.
    pub status: &'static str,
    /// Lookup level, if the status names one.
    pub level: Option<u64>,
    /// Stage-2 fault on a stage-1 table walk.
    pub s1ptw: bool,
}

impl fmt::Display for AbortDetail {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let access = match (self.data, self.write) {
            (false, _) => "instruction fetch",
            (true, false) => "read",
            (true, true) => "write",
        };
        write!(f, "{access}: {}", self.status)?;
        if let Some(l) = self.level {
            write!(f, " (level {l})")?;
        }
        if self.s1ptw {
            write!(f, " during a stage-1 table walk")?;
        }
        Ok(())
    }
}

/// Writes the multi-line fault report for `s`, one line per call of `line`.
pub fn report(s: &Snapshot, line: &mut dyn FnMut(fmt::Arguments<'_>)) {
    let slot = VectorSlot(s.slot);
    let f = &s.frame;
    let syn = Syndrome::from_esr(f.esr);
    line(format_args!(
        "FAULT on core {}: {} exception from {}: {} (EC {:#04x})",
        s.core,
        slot.kind(),
        slot.origin(),
        class_name(syn.ec),
        syn.ec
    ));
    if let Some(d) = syn.abort_detail() {
        line(format_args!("  {d}"));
    }
    line(format_args!(
        "  ESR {:#018x}  ELR {:#018x}  SPSR {:#018x}",
        f.esr, f.elr, f.spsr
    ));
    if syn.far_valid() {
        line(format_args!(
            "  FAR {:#018x}  HPFAR {:#018x}",
            f.far, f.hpfar
        ));
    } else {
        line(format_args!(
            "  FAR {:#018x} (not valid for this exception)",
            f.far
        ));
    }
    for first in (0..31).step_by(4) {
        line(format_args!(
            "  {}",
            RegRow {
                regs: &f.regs,
                first
            }
        ));
    }
}

/// Up to four general registers of a snapshot, starting at `first`.
struct RegRow<'a> {
    regs: &'a [u64; 31],
    first: usize,
}

impl fmt::Display for RegRow<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for i in self.first..(self.first + 4).min(31) {
            if i != self.first {
                f.write_str("  ")?;
            }
            if i == 30 {
                write!(f, "lr  {:#018x}", self.regs[i])?;
            } else {
                write!(f, "x{:<2} {:#018x}", i, self.regs[i])?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::string::String;
    use std::vec::Vec;

    fn lines(s: &Snapshot) -> Vec<String> {
        let mut out = Vec::new();
        report(s, &mut |a| out.push(std::format!("{a}")));
        out
    }

    #[test]
    fn slots_decode() {
        assert_eq!(VectorSlot(4).origin(), "current EL, SP_EL2");
        assert_eq!(VectorSlot(4).kind(), "synchronous");
        assert_eq!(VectorSlot(7).kind(), "SError");
        assert_eq!(VectorSlot(9).origin(), "lower EL, AArch64");
        assert!(VectorSlot(5).from_current_el());
        assert!(!VectorSlot(8).from_current_el());
    }

    #[test]
    fn data_abort_translation_fault_level_1() {
        // EC 0x25, IL, ISS: DFSC 0x05 (translation fault level 1), read.
        let esr = (0x25 << 26) | (1 << 25) | 0x05;
        let syn = Syndrome::from_esr(esr);
        assert_eq!(syn.ec, 0x25);
        assert!(syn.far_valid());
        let d = syn.abort_detail().unwrap();
        assert_eq!(std::format!("{d}"), "read: translation fault (level 1)");
    }

    #[test]
    fn write_permission_fault() {
        let esr = (0x25 << 26) | (1 << 25) | (1 << 6) | 0x0F;
        let d = Syndrome::from_esr(esr).abort_detail().unwrap();
        assert_eq!(std::format!("{d}"), "write: permission fault (level 3)");
    }

    #[test]
    fn far_not_valid_when_fnv_set_or_not_an_abort() {
        assert!(!Syndrome::from_esr((0x25 << 26) | (1 << 10)).far_valid());
        assert!(!Syndrome::from_esr(0x3C << 26).far_valid());
    }

    #[test]
    fn every_class_has_a_name() {
        for ec in 0..64 {
            assert!(!class_name(ec).is_empty());
        }
        assert_eq!(class_name(0x3C), "BRK (AArch64)");
        assert_eq!(class_name(0x2F), "SError interrupt");
        assert_eq!(class_name(0x02), "Reserved exception class");
    }

    #[test]
    fn report_names_everything() {
        let frame = Frame {
            esr: (0x25 << 26) | (1 << 25) | 0x06,
            far: 0x40_0000_0000,
            elr: 0x20_1234,
            ..Default::default()
        };
        let mut s = Snapshot {
            frame,
            slot: 4,
            core: 2,
        };
        for (i, r) in s.frame.regs.iter_mut().enumerate() {
            *r = i as u64 * 0x1111;
        }
        let l = lines(&s);
        assert!(l[0].contains("FAULT on core 2"), "{l:?}");
        assert!(l[0].contains("Data Abort from the current EL"), "{l:?}");
        assert!(l[1].contains("translation fault (level 2)"), "{l:?}");
        assert!(l.iter().any(|x| x.contains("ELR 0x0000000000201234")));
        assert!(l.iter().any(|x| x.contains("FAR 0x0000004000000000")));
        assert!(
            l.iter()
                .any(|x| x.contains("x29 0x000000000001eeed")
                    && x.contains("lr  0x000000000001fffe")),
            "{l:?}"
        );
        assert!(l.iter().any(|x| x.contains("x0  0x0000000000000000")));
    }

    #[test]
    fn skipping_a_trapped_instruction_follows_its_length() {
        let mut f = Frame::ZERO;
        f.elr = 0x1000;
        f.esr = (0x24 << 26) | (1 << 25); // a 32-bit instruction
        f.skip_instruction();
        assert_eq!(f.elr, 0x1004);
        f.esr = 0x24 << 26; // IL clear: a 16-bit T32 instruction
        f.skip_instruction();
        assert_eq!(f.elr, 0x1006);
    }
}
