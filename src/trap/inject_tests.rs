//! Tests of trap/inject.rs: exceptions injected into the guest.

use super::*;

#[test]
fn injection_vectors_and_syndromes() {
    // EL1h data abort on a write.
    let i = inject(
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
    assert_eq!(i.pstate, PSTATE_EL1H_MASKED);
    // EL1t, EL0 and AArch32 origins.
    assert_eq!(inject(Fault::Undefined, 0, 0x4, 0x1000).pc, 0x1000);
    let el0 = inject(Fault::InstrAbort { far: 0x10 }, 0, 0x0, 0x1000);
    assert_eq!(el0.pc, 0x1400);
    assert_eq!(el0.esr_el1 >> 26, 0x20, "instruction abort from a lower EL");
    assert_eq!(inject(Fault::Undefined, 0, 0x10, 0x1000).pc, 0x1600);
    let u = inject(Fault::Undefined, 0, 0x3c5, 0x1000);
    assert_eq!((u.esr_el1, u.far_el1), (1 << 25, None));
    // VBAR_EL1's low bits are RES0: a hostile value cannot misalign vectors.
    assert_eq!(inject(Fault::Undefined, 0, 0x3c5, 0x10ff).pc, 0x1200);
}
