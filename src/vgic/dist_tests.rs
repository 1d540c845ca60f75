//! Virtual distributor: every register, byte and word access, ownership
//! and the SGIR filters.

use super::*;

/// A 2-vCPU VM owning SPI 153 (the UART) and 40.
fn dist() -> VgicDist {
    VgicDist::new(2, &[153, 40])
}

#[test]
fn typer_iidr_ctlr_and_ids() {
    let mut d = dist();
    assert_eq!(d.lines(), 160);
    assert_eq!(
        d.read(0, 0x004, 4),
        4 | (1 << 5),
        "ITLinesNumber 4 (160 lines), 2 CPUs"
    );
    assert_eq!(d.read(0, 0x008, 4), IIDR);
    assert_eq!(d.read(0, 0x000, 4), 0);
    assert_eq!(d.write(1, 0x000, 4, 0xffff_ffff), 0b11);
    assert_eq!(d.read(0, 0x000, 4), 0b11, "only EnableGrp0/1 stick");
    assert!(d.enabled());
    assert_eq!(d.read(0, 0xfe8, 4), 0x2b, "PIDR2: GICv2");
    assert_eq!(
        VgicDist::new(4, &[]).read(0, 0x004, 4),
        3 << 5,
        "no SPIs: 32 lines"
    );
    assert_eq!(
        VgicDist::new(1, &[2000, 5]).lines(),
        32,
        "bogus owned INTIDs are ignored"
    );
}

#[test]
fn enable_pending_active_set_and_clear() {
    let mut d = dist();
    // ISENABLER1 covers INTIDs 32-63: only the owned 40 sticks.
    assert_eq!(
        d.write(0, 0x104, 4, u32::MAX),
        0,
        "SPI targets are empty: no vCPU to refresh"
    );
    assert_eq!(d.read(0, 0x104, 4), 1 << 8);
    assert_eq!(
        d.read(1, 0x184, 4),
        1 << 8,
        "ICENABLER reads the same state"
    );
    d.write(0, 0x184, 4, 1 << 8);
    assert_eq!(d.read(0, 0x104, 4), 0);
    // Banked: vCPU 1's PPIs are its own.
    d.write(1, 0x100, 4, 1 << 27);
    assert_eq!(d.read(1, 0x100, 4), 1 << 27);
    assert_eq!(d.read(0, 0x100, 4), 0);
    // Pending: SGIs cannot be set through ISPENDR0.
    assert_eq!(d.write(0, 0x200, 4, 0xffff_ffff), 1);
    assert_eq!(d.read(0, 0x200, 4), 0xffff_0000);
    d.write(0, 0x280, 4, 0xffff_ffff);
    assert_eq!(d.read(0, 0x200, 4), 0);
    // Active.
    d.write(0, 0x304, 4, 1 << 8);
    assert_eq!(d.read(0, 0x384, 4), 1 << 8);
    d.write(0, 0x384, 4, u32::MAX);
    assert_eq!(d.read(0, 0x304, 4), 0);
    // Groups.
    d.write(0, 0x084, 4, u32::MAX);
    assert_eq!(d.read(0, 0x084, 4), 1 << 8);
    assert!(d.irq(0, 40).unwrap().group1);
}

#[test]
fn priorities_and_targets_byte_and_word() {
    let mut d = dist();
    d.write(0, 0x400 + 40, 1, 0xa7);
    assert_eq!(d.read(0, 0x400 + 40, 1), 0xa0, "low 3 bits RAZ");
    d.write(0, 0x400 + 153 - 1, 4, 0x1122_3344);
    // Word at 0x498 covers INTIDs 152-155: only 153 is owned.
    assert_eq!(d.read(0, 0x498, 4), 0x0000_3000);
    // Private priorities are banked.
    d.write(1, 0x41b, 1, 0x80);
    assert_eq!(d.read(1, 0x41b, 1), 0x80);
    assert_eq!(d.read(0, 0x41b, 1), 0);
    // ITARGETSR0-7: read-only, the reading vCPU's own bit.
    assert_eq!(d.read(0, 0x800, 4), 0x0101_0101);
    assert_eq!(d.read(1, 0x81c, 4), 0x0202_0202);
    d.write(0, 0x800, 4, 0);
    assert_eq!(d.read(0, 0x800, 1), 1);
    // SPI targets: masked to the VM's vCPUs.
    assert_eq!(d.write(0, 0x800 + 153, 1, 0xff), 0b11);
    assert_eq!(d.read(0, 0x800 + 153, 1), 0b11);
    assert_eq!(d.read(0, 0x898, 4), 0x0000_0300);
}

#[test]
fn icfgr() {
    let mut d = dist();
    assert_eq!(d.read(0, 0xc00, 4), 0xaaaa_aaaa, "SGIs are edge");
    d.write(0, 0xc00, 4, 0);
    assert_eq!(d.read(0, 0xc00, 4), 0xaaaa_aaaa, "and read-only");
    d.write(0, 0xc04, 4, 0x8000_0000);
    assert_eq!(d.read(0, 0xc04, 4), 0x8000_0000, "PPI 31 edge");
    d.write(0, 0xc08, 4, 0xffff_ffff);
    assert_eq!(
        d.read(0, 0xc08, 4),
        2 << 16,
        "ICFGR2 (32-47): only 40 is owned"
    );
}

#[test]
fn sgir_filters_and_sources() {
    let mut d = VgicDist::new(4, &[]);
    // Filter 0: the list (vCPU 4+ do not exist).
    assert_eq!(
        d.write(0, 0xf00, 4, (0xf2 << 16) | 3),
        0b0010,
        "targets 4-7 do not exist"
    );
    assert_eq!(d.sgi_sources(1, 3), 1);
    assert_eq!(d.sgi_sources(0, 3), 0);
    // Filter 1: all but self.
    assert_eq!(d.write(2, 0xf00, 4, (1 << 24) | 5), 0b1011);
    assert_eq!(d.sgi_sources(0, 5), 1 << 2);
    assert_eq!(d.sgi_sources(2, 5), 0);
    // Filter 2: self.
    assert_eq!(
        d.write(3, 0xf00, 4, (2 << 24) | 0xff),
        0b1000,
        "SGI id is the low 4 bits"
    );
    assert_eq!(d.sgi_sources(3, 15), 1 << 3);
    // Filter 3: reserved, nothing.
    assert_eq!(d.write(3, 0xf00, 4, (3 << 24) | (0xff << 16) | 1), 0);
    // The pending bit shows in ISPENDR0 and SPENDSGIR, per source.
    assert_eq!(d.read(1, 0x200, 4) & (1 << 3), 1 << 3);
    assert_eq!(d.read(1, 0xf20 + 3, 1), 1);
    assert_eq!(d.read(1, 0xf20, 4), 1 << 24, "SPENDSGIR0 byte 3");
    // CPENDSGIR clears sources; the SGI stops pending with the last one.
    d.write(1, 0xf10 + 3, 1, 1);
    assert_eq!(d.sgi_sources(1, 3), 0);
    assert!(!d.irq(1, 3).unwrap().pending);
    // SPENDSGIR sets them (only existing vCPUs as sources).
    d.write(0, 0xf2c, 4, 0xff << 24);
    assert_eq!(d.sgi_sources(0, 15), 0b1111);
}

#[test]
fn other_vms_lines_are_invisible_and_untouchable() {
    let mut d = dist();
    let probes = [
        (0x104u64, 4u8),
        (0x184, 4),
        (0x204, 4),
        (0x284, 4),
        (0x304, 4),
        (0x384, 4),
        (0x084, 4),
    ];
    // INTID 33-39 and 41-63 are not this VM's: nothing sticks, all reads 0
    // but bit 8 (INTID 40).
    for (off, w) in probes {
        d.write(0, off, w, u32::MAX);
        assert_eq!(d.read(0, off, w) & !(1 << 8), 0, "{off:#x}");
    }
    for intid in [32u32, 99, 152, 154, 159] {
        d.write(0, 0x400 + intid as u64, 1, 0xff);
        d.write(0, 0x800 + intid as u64, 1, 0xff);
        assert_eq!(d.read(0, 0x400 + intid as u64, 1), 0);
        assert_eq!(d.read(0, 0x800 + intid as u64, 1), 0);
        assert!(d.irq(0, intid).is_none());
        assert_eq!(d.set_line(0, intid, true), 0);
    }
    // Beyond the VM's lines: RAZ/WI.
    assert_eq!(d.write(0, 0x118, 4, u32::MAX), 0);
    assert_eq!(d.read(0, 0x118, 4), 0);
}

#[test]
fn odd_widths_offsets_and_vcpus_are_harmless() {
    let mut d = dist();
    let before = d.clone();
    for off in (0..0x1000u64).step_by(1) {
        for w in [1u8, 2, 8, 3] {
            if w == 1 && matches!(off, 0x400..=0xbfb | 0xf10..=0xf2f) {
                continue;
            }
            assert_eq!(d.write(0, off, w, u32::MAX), 0, "{off:#x}/{w}");
            if w != 1 {
                assert_eq!(d.read(0, off, w), 0, "{off:#x}/{w}");
            }
        }
        assert_eq!(d.write(7, off, 4, u32::MAX), 0, "no such vCPU");
        let _ = d.read(9, off, 4);
    }
    assert_eq!(d.read(0, 0x104, 4), before.read(0, 0x104, 4));
    assert_eq!(d.read(0, 0x000, 4), 0);
}

#[test]
fn devices_raise_lines_for_their_targets() {
    let mut d = dist();
    d.write(0, 0x800 + 153, 1, 0b10);
    assert_eq!(d.set_line(0, 153, true), 0b10);
    assert!(d.irq(0, 153).unwrap().is_pending());
    assert_eq!(d.set_line(1, 27, true), 0b10, "a PPI reaches its own vCPU");
    assert_eq!(d.set_line(0, 3, true), 0, "SGIs only through SGIR");
}

#[test]
fn a_pend_clear_loop_on_a_passed_through_spi_stays_bounded_and_drains() {
    // VM-owned SPI 153, hardware-linked (the passed-through PL011's), its
    // ITARGETSR left at 0: nobody is a target.
    let mut d = VgicDist::new(2, &[153]);
    d.set_hw(153);
    d.write(0, 0x100 + 4 * (153 / 32), 4, 1 << (153 % 32)); // enabled
    let bit = 1u32 << (153 % 32);
    for _ in 0..100_000 {
        d.write(0, 0x200 + 4 * (153 / 32), 4, bit); // ISPENDR
        let dirty = d.write(0, 0x280 + 4 * (153 / 32), 4, bit); // ICPENDR
        assert_ne!(dirty & 1, 0, "the writer's next refill drains it");
        assert!(d.released_len() <= 1, "one queued deactivation at most");
    }
    assert_eq!(d.take_released(0), [153]);
    assert_eq!(d.released_len(), 0);
}
