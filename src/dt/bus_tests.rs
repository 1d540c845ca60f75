use super::*;
use crate::dt::writer::FdtWriter;
use std::vec::Vec;

/// The Pi 4's buses as its firmware describes them: /soc (1 address
/// cell), /emmc2bus (2), /scb (2, into 2 at the root), with a node each.
fn pi4_like() -> Vec<u8> {
    let mut w = FdtWriter::new();
    w.begin_node("").unwrap();
    w.property_u32("#address-cells", 2).unwrap();
    w.property_u32("#size-cells", 1).unwrap();
    w.begin_node("soc").unwrap();
    w.property_u32("#address-cells", 1).unwrap();
    w.property_u32("#size-cells", 1).unwrap();
    w.property_cells("ranges", &[0x7e00_0000, 0, 0xfe00_0000, 0x180_0000])
        .unwrap();
    w.begin_node("mmc@7e300000").unwrap();
    w.property_string("compatible", "brcm,bcm2835-sdhci")
        .unwrap();
    w.property_cells("reg", &[0x7e30_0000, 0x100]).unwrap();
    w.property_cells("interrupts", &[0, 0x7e, 4]).unwrap();
    w.end_node().unwrap();
    w.begin_node("gpio@7e200000").unwrap();
    w.property_strings("compatible", &["brcm,bcm2711-gpio", "brcm,bcm2835-gpio"])
        .unwrap();
    w.property_cells("reg", &[0x7e20_0000, 0xb4]).unwrap();
    w.property_string("status", "disabled").unwrap();
    w.end_node().unwrap();
    // Outside every window.
    w.begin_node("far@10000").unwrap();
    w.property_string("compatible", "x,far").unwrap();
    w.property_cells("reg", &[0x1_0000, 0x100]).unwrap();
    w.end_node().unwrap();
    // Straddles the window's end.
    w.begin_node("edge@7f7fff00").unwrap();
    w.property_string("compatible", "x,edge").unwrap();
    w.property_cells("reg", &[0x7f7f_ff00, 0x200]).unwrap();
    w.end_node().unwrap();
    w.end_node().unwrap();
    w.begin_node("emmc2bus").unwrap();
    w.property_u32("#address-cells", 2).unwrap();
    w.property_u32("#size-cells", 1).unwrap();
    w.property_cells("ranges", &[0, 0x7e00_0000, 0, 0xfe00_0000, 0x180_0000])
        .unwrap();
    w.begin_node("mmc@7e340000").unwrap();
    w.property_string("compatible", "brcm,bcm2711-emmc2")
        .unwrap();
    w.property_cells("reg", &[0, 0x7e34_0000, 0x100]).unwrap();
    w.property_cells("interrupts", &[0, 0x7e, 4]).unwrap();
    w.end_node().unwrap();
    w.end_node().unwrap();
    w.begin_node("scb").unwrap();
    w.property_u32("#address-cells", 2).unwrap();
    w.property_u32("#size-cells", 1).unwrap();
    w.property_cells(
        "ranges",
        &[
            0,
            0x7c00_0000,
            0,
            0xfc00_0000,
            0x380_0000,
            6,
            0,
            6,
            0,
            0x4000_0000,
        ],
    )
    .unwrap();
    w.begin_node("ethernet@7d580000").unwrap();
    w.property_string("compatible", "brcm,bcm2711-genet-v5")
        .unwrap();
    w.property_cells("reg", &[0, 0x7d58_0000, 0x10000]).unwrap();
    w.property_cells("interrupts", &[0, 0x9d, 4, 0, 0x9e, 4])
        .unwrap();
    w.end_node().unwrap();
    w.begin_node("pcie@7d500000").unwrap();
    w.property_string("compatible", "brcm,bcm2711-pcie")
        .unwrap();
    w.property_cells("reg", &[0, 0x7d50_0000, 0x9310]).unwrap();
    w.end_node().unwrap();
    w.end_node().unwrap();
    // A bus without ranges: its children are not reachable.
    w.begin_node("hidden").unwrap();
    w.property_u32("#address-cells", 1).unwrap();
    w.property_u32("#size-cells", 1).unwrap();
    w.begin_node("dev@0").unwrap();
    w.property_string("compatible", "x,hidden").unwrap();
    w.property_cells("reg", &[0, 0x100]).unwrap();
    w.end_node().unwrap();
    w.end_node().unwrap();
    w.end_node().unwrap();
    w.finish().unwrap()
}

fn found<'a>(fdt: &Fdt<'a>, compat: &str) -> Found<'a> {
    let v = find(fdt, &|n| is_compatible(n, compat));
    assert_eq!(v.len(), 1, "{compat}");
    v.into_iter().next().unwrap()
}

#[test]
fn reg_goes_through_every_ancestors_ranges() {
    let blob = pi4_like();
    let fdt = Fdt::new(&blob).unwrap();
    let arasan = found(&fdt, "brcm,bcm2835-sdhci");
    assert_eq!(arasan.path, "/soc/mmc@7e300000");
    assert_eq!(arasan.reg, Some((0xfe30_0000, 0x100)));
    assert_eq!(arasan.intid, Some(32 + 126));
    assert!(arasan.enabled);
    let emmc2 = found(&fdt, "brcm,bcm2711-emmc2");
    assert_eq!(emmc2.path, "/emmc2bus/mmc@7e340000");
    assert_eq!(emmc2.reg, Some((0xfe34_0000, 0x100)));
    let genet = found(&fdt, "brcm,bcm2711-genet-v5");
    assert_eq!(genet.reg, Some((0xfd58_0000, 0x10000)));
    assert_eq!(genet.intid, Some(32 + 0x9d));
    assert_eq!(
        found(&fdt, "brcm,bcm2711-pcie").reg,
        Some((0xfd50_0000, 0x9310))
    );
    // The second compatible string matches too; status is read.
    let gpio = found(&fdt, "brcm,bcm2835-gpio");
    assert_eq!(
        (gpio.compatible, gpio.enabled),
        ("brcm,bcm2711-gpio", false)
    );
}

#[test]
fn untranslatable_nodes_have_no_cpu_address() {
    let blob = pi4_like();
    let fdt = Fdt::new(&blob).unwrap();
    for c in ["x,far", "x,edge", "x,hidden"] {
        assert_eq!(found(&fdt, c).reg, None, "{c}");
    }
}

#[test]
fn nodes_are_found_by_path() {
    let blob = pi4_like();
    let fdt = Fdt::new(&blob).unwrap();
    assert_eq!(
        at(&fdt, "/scb/ethernet@7d580000").unwrap().compatible,
        "brcm,bcm2711-genet-v5"
    );
    assert_eq!(at(&fdt, "/soc").unwrap().reg, None);
    assert!(at(&fdt, "/scb/nothing").is_none());
    assert!(at(&fdt, "").is_none());
}
