//! Exit decode, MMIO semantics, system-register policy and injection.

use super::decode::*;
use super::inject::{self, Fault};
use super::mmio::Access;
use super::sysreg::{self, Class, SysRegAccess, SysRegResult, SysRegState};

/// ESR for a data abort from EL1 with the given ISS.
fn dabt(iss: u64) -> u64 {
    (0x24 << 26) | (1 << 25) | iss
}

/// ISS of a syndrome-valid data abort.
fn dabt_iss(sas: u64, sse: bool, srt: u64, sf: bool, wnr: bool, dfsc: u64) -> u64 {
    (1 << 24)
        | (sas << 22)
        | ((sse as u64) << 21)
        | (srt << 16)
        | ((sf as u64) << 15)
        | ((wnr as u64) << 6)
        | dfsc
}

#[test]
fn mmio_store_word() {
    // str w3, [x0] to IPA 0xfc00_0004, level-3 translation fault.
    let e = decode(
        dabt(dabt_iss(2, false, 3, false, true, 0b000111)),
        0xffff_8000_0000_0004,
        0xfc000 << 4,
    );
    assert_eq!(
        e,
        Exit::Mmio(Access {
            ipa: 0xfc00_0004,
            width: 4,
            write: true,
            reg: 3,
            sign_extend: false,
            sf: false
        })
    );
}

#[test]
fn mmio_load_sign_extended_byte() {
    let e = decode(
        dabt(dabt_iss(0, true, 7, true, false, 0b000101)),
        0x1,
        0x10 << 4,
    );
    let Exit::Mmio(a) = e else { panic!("{e:?}") };
    assert_eq!(
        (a.width, a.reg, a.sign_extend, a.sf, a.write),
        (1, 7, true, true, false)
    );
    assert_eq!(a.load_value(0x80), 0xffff_ffff_ffff_ff80);
    assert_eq!(a.load_value(0x17f), 0x7f, "cut to width first");
    let w = Access { sf: false, ..a };
    assert_eq!(w.load_value(0x80), 0xffff_ff80, "ldrsb w: 32-bit result");
    let h = Access {
        width: 2,
        sign_extend: false,
        ..a
    };
    assert_eq!(h.load_value(0xdead_8001), 0x8001);
    let d = Access { width: 8, ..a };
    assert_eq!(d.load_value(u64::MAX), u64::MAX);
}

#[test]
fn loads_and_stores_touch_the_right_register() {
    let mut regs = [0u64; 31];
    regs[5] = 0x1122_3344_5566_7788;
    let st = Access {
        ipa: 0,
        width: 2,
        write: true,
        reg: 5,
        sign_extend: false,
        sf: true,
    };
    assert_eq!(st.store_value(&regs), 0x7788);
    let zr = Access { reg: 31, ..st };
    assert_eq!(zr.store_value(&regs), 0, "XZR stores zero");
    let ld = Access {
        write: false,
        width: 4,
        reg: 9,
        ..st
    };
    ld.complete_load(&mut regs, 0xaabb_ccdd);
    assert_eq!(regs[9], 0xaabb_ccdd);
    let before = regs;
    Access { reg: 31, ..ld }.complete_load(&mut regs, 5);
    assert_eq!(regs, before, "a load to XZR is discarded");
}

#[test]
fn aborts_that_are_not_mmio() {
    // S1PTW: the guest's page-table walk hit an unmapped IPA.
    let iss = dabt_iss(3, false, 0, true, false, 0b000111) | (1 << 7);
    assert!(matches!(decode(dabt(iss), 0x1000, 0x4_0000 << 4), Exit::DataAbort(a) if a.s1ptw));
    // ISV = 0 (e.g. ldp, or a post-indexed store).
    let iss = 0b000110;
    let e = decode(dabt(iss), 0x1000, 0x4_0000 << 4);
    assert!(matches!(e, Exit::DataAbort(a) if !a.isv && a.ipa == 0x4000_0000));
    // Permission fault.
    let iss = dabt_iss(2, false, 0, false, true, 0b001111);
    assert!(matches!(decode(dabt(iss), 0, 0), Exit::DataAbort(_)));
    // Cache maintenance on an unmapped IPA.
    let iss = dabt_iss(2, false, 0, false, true, 0b000111) | (1 << 8);
    assert!(matches!(decode(dabt(iss), 0, 0), Exit::DataAbort(_)));
    // FAR not valid.
    let iss = 0b000111 | (1 << 10);
    assert!(
        matches!(decode(dabt(iss), 0x55, 0x7 << 4), Exit::DataAbort(a) if a.far.is_none() && a.ipa == 0x7055)
    );
}

#[test]
fn other_classes() {
    assert_eq!(decode((0x01 << 26) | 1, 0, 0), Exit::Wfx { wfe: true });
    assert_eq!(decode(0x01 << 26, 0, 0), Exit::Wfx { wfe: false });
    assert_eq!(
        decode((0x16 << 26) | 0x1234, 0, 0),
        Exit::Hvc { imm: 0x1234 }
    );
    assert_eq!(decode((0x17 << 26) | 7, 0, 0), Exit::Smc { imm: 7 });
    assert!(matches!(decode(0x20 << 26, 0x4000, 0x4 << 4), Exit::InstrAbort(a) if a.ipa == 0x4000));
    assert_eq!(decode(0x07 << 26, 0, 0), Exit::Other { ec: 7 });
    assert_eq!(
        decode(u64::MAX, u64::MAX, u64::MAX),
        Exit::Other { ec: 0x3f }
    );
}

/// ISS for MSR/MRS with the given encoding.
fn sys_iss(op0: u64, op1: u64, crn: u64, crm: u64, op2: u64, rt: u64, read: bool) -> u64 {
    (op0 << 20) | (op2 << 17) | (op1 << 14) | (crn << 10) | (rt << 5) | (crm << 1) | read as u64
}

#[test]
fn sysreg_decode_and_policy() {
    let e = decode((0x18 << 26) | sys_iss(2, 0, 1, 0, 4, 3, false), 0, 0);
    let Exit::SysReg(a) = e else { panic!() };
    assert_eq!(
        a,
        SysRegAccess {
            op0: 2,
            op1: 0,
            crn: 1,
            crm: 0,
            op2: 4,
            rt: 3,
            read: false
        }
    );
    assert_eq!(sysreg::classify(&a), Class::OsLockAccess);
    let mut st = SysRegState::reset();
    let oslsr = SysRegAccess::from_iss(sys_iss(2, 0, 1, 1, 4, 0, true));
    assert_eq!(
        sysreg::emulate(&oslsr, 0, &mut st),
        SysRegResult::Read(0b1010)
    );
    assert_eq!(sysreg::emulate(&a, 0, &mut st), SysRegResult::Written);
    assert_eq!(
        sysreg::emulate(&oslsr, 0, &mut st),
        SysRegResult::Read(0b1000),
        "unlocked"
    );
    let mdscr_w = SysRegAccess::from_iss(sys_iss(2, 0, 0, 2, 2, 1, false));
    let mdscr_r = SysRegAccess {
        read: true,
        ..mdscr_w
    };
    sysreg::emulate(&mdscr_w, 0x8000, &mut st);
    assert_eq!(
        sysreg::emulate(&mdscr_r, 0, &mut st),
        SysRegResult::Read(0x8000)
    );
    // DBGBCR0_EL1, PMCR_EL0, PMEVCNTR3_EL0, ACTLR_EL1, CPUECTLR_EL1.
    for (k, class) in [
        ((2, 0, 0, 0, 5), Class::Debug),
        ((3, 3, 9, 12, 0), Class::Pmu),
        ((3, 3, 14, 8, 3), Class::Pmu),
        ((3, 0, 9, 14, 1), Class::Pmu),
        ((3, 0, 1, 0, 1), Class::Actlr),
        ((3, 1, 15, 2, 1), Class::ImpDef),
        ((3, 1, 11, 0, 2), Class::ImpDef),
    ] {
        let r = SysRegAccess::from_iss(sys_iss(k.0, k.1, k.2, k.3, k.4, 2, true));
        assert_eq!(sysreg::classify(&r), class, "{r}");
        assert_eq!(
            sysreg::emulate(&r, 0, &mut st),
            SysRegResult::Read(0),
            "{r}"
        );
        let w = SysRegAccess { read: false, ..r };
        assert_eq!(
            sysreg::emulate(&w, u64::MAX, &mut st),
            SysRegResult::Written,
            "{r}"
        );
    }
    // DC ISW, CSW, CISW all become CISW with the guest's operand.
    for crm in [6, 10, 14] {
        let r = SysRegAccess::from_iss(sys_iss(1, 0, 7, crm, 2, 4, false));
        assert_eq!(
            sysreg::emulate(&r, 0x42, &mut st),
            SysRegResult::SetWay(0x42)
        );
    }
    // SCTLR_EL1 is not trapped, so an exit for it is unknown: UNDEFINED.
    let r = SysRegAccess::from_iss(sys_iss(3, 0, 1, 0, 0, 0, true));
    assert_eq!(sysreg::emulate(&r, 0, &mut st), SysRegResult::Undefined);
}

#[test]
fn injection_vectors_and_syndromes() {
    // EL1h data abort on a write.
    let i = inject::inject(
        Fault::DataAbort {
            far: 0x4000_0000,
            write: true,
        },
        0x8_1000,
        0x3c5,
        0x8_0000,
    );
    assert_eq!(i.pc, 0x8_0200);
    assert_eq!(i.esr_el1, (0x25 << 26) | (1 << 25) | 0x10 | (1 << 6));
    assert_eq!(
        (i.elr_el1, i.spsr_el1, i.far_el1),
        (0x8_1000, 0x3c5, Some(0x4000_0000))
    );
    assert_eq!(i.pstate, inject::PSTATE_EL1H_MASKED);
    // EL1t, EL0 and AArch32 origins.
    assert_eq!(inject::inject(Fault::Undefined, 0, 0x4, 0x1000).pc, 0x1000);
    let el0 = inject::inject(Fault::InstrAbort { far: 0x10 }, 0, 0x0, 0x1000);
    assert_eq!(el0.pc, 0x1400);
    assert_eq!(el0.esr_el1 >> 26, 0x20, "instruction abort from a lower EL");
    assert_eq!(inject::inject(Fault::Undefined, 0, 0x10, 0x1000).pc, 0x1600);
    let u = inject::inject(Fault::Undefined, 0, 0x3c5, 0x1000);
    assert_eq!((u.esr_el1, u.far_el1), (1 << 25, None));
    // VBAR_EL1's low bits are RES0: a hostile value cannot misalign vectors.
    assert_eq!(
        inject::inject(Fault::Undefined, 0, 0x3c5, 0x10ff).pc,
        0x1200
    );
}

#[test]
fn every_syndrome_decodes_without_panic() {
    // A cheap exhaustive-ish sweep: every EC with a spread of ISS values.
    let mut x = 0x1234_5678_9abc_def0u64;
    for ec in 0..64u64 {
        for _ in 0..2000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let e = decode(
                (ec << 26) | (x & 0x3ff_ffff),
                x.rotate_left(7),
                x.rotate_left(29),
            );
            if let Exit::Mmio(a) = e {
                assert!(matches!(a.width, 1 | 2 | 4 | 8));
                assert!(a.reg <= 31);
                let _ = a.load_value(x);
            }
        }
    }
}

#[test]
fn exit_counts_print_what_happened() {
    use super::stats::{ExitCounts, ExitKind, ExitStats, EXIT_KINDS};
    let s = ExitStats::default();
    assert_eq!(std::format!("{}", s.snapshot()), "0");
    for _ in 0..3 {
        s.record(ExitKind::Irq);
    }
    s.record(ExitKind::Call);
    s.record(ExitKind::Mmio);
    s.record(ExitKind::SError);
    let c = s.snapshot();
    assert_eq!(c.total(), 6);
    assert_eq!(c.0[ExitKind::Irq as usize], 3);
    assert_eq!(
        std::format!("{c}"),
        "6 (irq 3, mmio 1, hvc/smc 1, serror 1)"
    );
    // Summed over vCPUs.
    let mut sum = ExitCounts::default();
    sum += c;
    sum += c;
    assert_eq!(sum.total(), 12);
    s.reset();
    assert_eq!(s.snapshot().total(), 0);
    assert_eq!(ExitCounts::NAMES.len(), EXIT_KINDS);
}

#[test]
fn exit_count_call_selects_a_kind_or_refuses() {
    use super::stats::{ExitCounts, ExitKind, EXIT_KINDS};
    let mut c = ExitCounts::default();
    c.0[ExitKind::Call as usize] = 7;
    c.0[ExitKind::Irq as usize] = 2;
    assert_eq!(c.select(0), Some(9));
    assert_eq!(c.select(1 + ExitKind::Call as u64), Some(7));
    assert_eq!(c.select(1 + ExitKind::SError as u64), Some(0));
    // Hostile selectors: past the last kind, huge, the top bit.
    assert_eq!(c.select(1 + EXIT_KINDS as u64), None);
    assert_eq!(c.select(u64::MAX), None);
    assert_eq!(c.select(1 << 63), None);
}

#[test]
fn fault_ipa_combines_hpfar_and_far() {
    // IPA 0x3f20_1234: FIPA = 0x3f201 at bits 4+.
    assert_eq!(fault_ipa(0x3f201 << 4, 0xffff_0000_dead_f234), 0x3f20_1234);
    // Bits above FIPA (RES0) are ignored.
    assert_eq!(fault_ipa((1 << 63) | (0x10 << 4), 0x5), 0x10005);
}
