//! Tests of trap/sysreg.rs: the policy for every trapped system register.

use super::*;
use crate::trap::decode::{decode, Exit};

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
    assert_eq!(classify(&a), Class::OsLockAccess);
    let mut st = SysRegState::reset();
    let oslsr = SysRegAccess::from_iss(sys_iss(2, 0, 1, 1, 4, 0, true));
    assert_eq!(emulate(&oslsr, 0, &mut st), SysRegResult::Read(0b1010));
    assert_eq!(emulate(&a, 0, &mut st), SysRegResult::Written);
    assert_eq!(
        emulate(&oslsr, 0, &mut st),
        SysRegResult::Read(0b1000),
        "unlocked"
    );
    let mdscr_w = SysRegAccess::from_iss(sys_iss(2, 0, 0, 2, 2, 1, false));
    let mdscr_r = SysRegAccess {
        read: true,
        ..mdscr_w
    };
    emulate(&mdscr_w, 0x8000, &mut st);
    assert_eq!(emulate(&mdscr_r, 0, &mut st), SysRegResult::Read(0x8000));
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
        assert_eq!(classify(&r), class, "{r}");
        assert_eq!(emulate(&r, 0, &mut st), SysRegResult::Read(0), "{r}");
        let w = SysRegAccess { read: false, ..r };
        assert_eq!(emulate(&w, u64::MAX, &mut st), SysRegResult::Written, "{r}");
    }
    // DC ISW, CSW, CISW all become CISW with the guest's operand.
    for crm in [6, 10, 14] {
        let r = SysRegAccess::from_iss(sys_iss(1, 0, 7, crm, 2, 4, false));
        assert_eq!(emulate(&r, 0x42, &mut st), SysRegResult::SetWay(0x42));
    }
    // SCTLR_EL1 is not trapped, so an exit for it is unknown: UNDEFINED.
    let r = SysRegAccess::from_iss(sys_iss(3, 0, 1, 0, 0, 0, true));
    assert_eq!(emulate(&r, 0, &mut st), SysRegResult::Undefined);
}
