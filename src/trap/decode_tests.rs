//! Tests of trap/decode.rs: exits decoded from their syndromes, and the
//! MMIO access semantics they carry.

use super::*;
use crate::trap::mmio::Access;

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
fn fault_ipa_combines_hpfar_and_far() {
    // IPA 0x3f20_1234: FIPA = 0x3f201 at bits 4+.
    assert_eq!(fault_ipa(0x3f201 << 4, 0xffff_0000_dead_f234), 0x3f20_1234);
    // Bits above FIPA (RES0) are ignored.
    assert_eq!(fault_ipa((1 << 63) | (0x10 << 4), 0x5), 0x10005);
}
