use super::*;
use std::vec;

/// The firmware's tree, the parts a copy meets: /soc with the clock
/// manager, a fixed clock, USB (clocks, PHY, power domain, pin control,
/// peripheral mode, a child with a phandle) and I2C (the manager's VPU
/// clock); /emmc2bus with EMMC2 (clock, regulators, dma-ranges).
fn host() -> Vec<u8> {
    let mut w = FdtWriter::new();
    w.begin_node("").unwrap();
    w.property_u32("#address-cells", 2).unwrap();
    w.property_u32("#size-cells", 1).unwrap();
    w.begin_node("clk-usb").unwrap();
    w.property_string("compatible", "fixed-clock").unwrap();
    w.property_u32("#clock-cells", 0).unwrap();
    w.property_u32("clock-frequency", 480_000_000).unwrap();
    w.property_u32("phandle", 0x13).unwrap();
    w.end_node().unwrap();
    w.begin_node("strange-clock").unwrap();
    w.property_string("compatible", "x,pll").unwrap();
    w.property_u32("#clock-cells", 0).unwrap();
    w.property_u32("phandle", 0x30).unwrap();
    w.end_node().unwrap();
    w.begin_node("soc").unwrap();
    w.property_string("compatible", "simple-bus").unwrap();
    w.property_u32("#address-cells", 1).unwrap();
    w.property_u32("#size-cells", 1).unwrap();
    w.property_cells("ranges", &[0x7e00_0000, 0, 0xfe00_0000, 0x180_0000])
        .unwrap();
    w.property_cells("dma-ranges", &[0xc000_0000, 0, 0, 0x4000_0000])
        .unwrap();
    w.begin_node("cprman@7e101000").unwrap();
    w.property_string("compatible", "brcm,bcm2711-cprman")
        .unwrap();
    w.property_u32("#clock-cells", 1).unwrap();
    w.property_u32("phandle", 7).unwrap();
    w.end_node().unwrap();
    w.begin_node("usb@7e980000").unwrap();
    w.property_string("compatible", "brcm,bcm2835-usb").unwrap();
    w.property_cells("reg", &[0x7e98_0000, 0x10000]).unwrap();
    w.property_cells("interrupts", &[0, 0x49, 4]).unwrap();
    w.property_cells("clocks", &[0x13]).unwrap();
    w.property_string("clock-names", "otg").unwrap();
    w.property_cells("phys", &[0x14]).unwrap();
    w.property_cells("power-domains", &[0x0c, 6]).unwrap();
    w.property_cells("pinctrl-0", &[0x0b]).unwrap();
    w.property_string("pinctrl-names", "default").unwrap();
    w.property_string("dr_mode", "peripheral").unwrap();
    w.property_string("status", "disabled").unwrap();
    w.property_u32("phandle", 0x40).unwrap();
    w.begin_node("port@1").unwrap();
    w.property_u32("reg", 1).unwrap();
    w.property_u32("phandle", 0x41).unwrap();
    w.property_cells("clocks", &[0x13]).unwrap();
    w.end_node().unwrap();
    w.end_node().unwrap();
    w.begin_node("i2c@7e804000").unwrap();
    w.property_string("compatible", "brcm,bcm2711-i2c").unwrap();
    w.property_cells("reg", &[0x7e80_4000, 0x1000]).unwrap();
    w.property_cells("clocks", &[7, 20]).unwrap();
    w.property_u32("interrupt-parent", 1).unwrap();
    w.end_node().unwrap();
    w.begin_node("pwm@7e20c000").unwrap();
    w.property_cells("clocks", &[7, 3]).unwrap();
    w.end_node().unwrap();
    w.begin_node("odd@7e00f000").unwrap();
    w.property_cells("clocks", &[0x30]).unwrap();
    w.end_node().unwrap();
    w.end_node().unwrap();
    w.begin_node("emmc2bus").unwrap();
    w.property_string("compatible", "simple-bus").unwrap();
    w.property_u32("#address-cells", 2).unwrap();
    w.property_u32("#size-cells", 1).unwrap();
    w.property_cells("ranges", &[0, 0x7e00_0000, 0, 0xfe00_0000, 0x180_0000])
        .unwrap();
    w.property_cells("dma-ranges", &[0, 0xc000_0000, 0, 0, 0x4000_0000])
        .unwrap();
    w.property_string("secret", "not copied").unwrap();
    w.begin_node("mmc@7e340000").unwrap();
    w.property_string("compatible", "brcm,bcm2711-emmc2")
        .unwrap();
    w.property_cells("reg", &[0, 0x7e34_0000, 0x100]).unwrap();
    w.property_cells("clocks", &[7, 51]).unwrap();
    w.property_cells("vqmmc-supply", &[0x20]).unwrap();
    w.property_empty("broken-cd").unwrap();
    w.end_node().unwrap();
    w.end_node().unwrap();
    w.end_node().unwrap();
    w.finish().unwrap()
}

#[test]
fn clocks_come_from_fixed_clocks_or_the_firmware() {
    let h = host();
    let fdt = Fdt::new(&h).unwrap();
    assert_eq!(
        clock_sources(&fdt, "/soc/usb@7e980000"),
        Ok(vec![ClockSrc::Fixed(480_000_000)])
    );
    assert_eq!(
        clock_sources(&fdt, "/soc/i2c@7e804000"),
        Ok(vec![ClockSrc::Firmware(4)]),
        "VPU: the core clock"
    );
    assert_eq!(
        clock_sources(&fdt, "/emmc2bus/mmc@7e340000"),
        Ok(vec![ClockSrc::Firmware(12)])
    );
    assert_eq!(clock_sources(&fdt, "/emmc2bus"), Ok(vec![]));
    assert!(clock_sources(&fdt, "/soc/pwm@7e20c000")
        .unwrap_err()
        .contains("clock 3 of the clock manager"));
    assert!(clock_sources(&fdt, "/soc/odd@7e00f000")
        .unwrap_err()
        .contains("strange-clock"));
    assert!(clock_sources(&fdt, "/nowhere").is_err());
}

fn vm_tree(f: impl FnOnce(&mut FdtWriter)) -> Vec<u8> {
    let mut w = FdtWriter::new();
    w.begin_node("").unwrap();
    w.property_u32("#address-cells", 2).unwrap();
    w.property_u32("#size-cells", 2).unwrap();
    f(&mut w);
    w.end_node().unwrap();
    w.finish().unwrap()
}

fn strs(v: &[u8]) -> &str {
    core::str::from_utf8(v).unwrap().trim_end_matches('\0')
}

#[test]
fn a_usb_controller_is_copied_in_host_mode_with_its_own_clock() {
    let h = host();
    let nodes = [PtNode {
        path: "/soc/usb@7e980000".into(),
        host_mode: true,
        clock_hz: vec![480_000_000],
    }];
    let out = vm_tree(|w| {
        w.begin_node("soc").unwrap();
        write_children(w, &h, "soc", &nodes).unwrap();
        w.end_node().unwrap();
        write_clocks(w, &nodes).unwrap();
    });
    let fdt = Fdt::new(&out).unwrap();
    let usb = fdt.find_node("/soc/usb@7e980000").unwrap();
    let p = |n: &str| usb.property(n).map(|p| p.value.to_vec());
    assert_eq!(strs(&p("dr_mode").unwrap()), "host");
    assert_eq!(strs(&p("status").unwrap()), "okay");
    assert_eq!(p("clocks").unwrap(), CLOCK_PHANDLE_BASE.to_be_bytes());
    assert_eq!(strs(&p("clock-names").unwrap()), "otg");
    assert_eq!(p("phandle").unwrap(), (0x40 + PHANDLE_OFFSET).to_be_bytes());
    for gone in ["phys", "power-domains", "pinctrl-0", "pinctrl-names"] {
        assert!(p(gone).is_none(), "{gone} left out");
    }
    assert_eq!(p("reg").unwrap().len(), 8);
    let port = fdt.find_node("/soc/usb@7e980000/port@1").unwrap();
    assert_eq!(
        port.property("phandle").unwrap().value,
        (0x41 + PHANDLE_OFFSET).to_be_bytes()
    );
    assert!(port.property("clocks").is_none());
    let clk = fdt.find_node("/pt-clock-0").unwrap();
    assert_eq!(
        clk.property("clock-frequency").unwrap().value,
        480_000_000u32.to_be_bytes()
    );
    assert_eq!(
        clk.property("phandle").unwrap().value,
        CLOCK_PHANDLE_BASE.to_be_bytes()
    );
    assert!(
        fdt.find_node("/soc/i2c@7e804000").is_none(),
        "only what was asked for"
    );
}

#[test]
fn a_device_on_another_bus_gets_that_bus_with_its_ranges() {
    let h = host();
    let nodes = [
        PtNode {
            path: "/emmc2bus/mmc@7e340000".into(),
            host_mode: false,
            clock_hz: vec![100_000_000],
        },
        PtNode {
            path: "/soc/i2c@7e804000".into(),
            host_mode: false,
            clock_hz: vec![500_000_000],
        },
    ];
    assert_eq!(buses(&nodes), ["emmc2bus", "soc"]);
    assert_eq!(
        bus_property(&h, "emmc2bus", "#address-cells"),
        Some(2u32.to_be_bytes().to_vec())
    );
    assert_eq!(bus_property(&h, "soc", "nothing"), None);
    let out = vm_tree(|w| {
        // The EMMC2 first in the list: its clock is pt-clock-0 wherever
        // its bus is written.
        w.begin_node("soc").unwrap();
        write_children(w, &h, "soc", &nodes).unwrap();
        w.end_node().unwrap();
        write_bus(w, &h, "emmc2bus", &nodes).unwrap();
        write_clocks(w, &nodes).unwrap();
    });
    let fdt = Fdt::new(&out).unwrap();
    let bus = fdt.find_node("/emmc2bus").unwrap();
    assert_eq!(bus.property("ranges").unwrap().value.len(), 20);
    assert_eq!(bus.property("dma-ranges").unwrap().value.len(), 20);
    assert!(bus.property("secret").is_none());
    let mmc = fdt.find_node("/emmc2bus/mmc@7e340000").unwrap();
    assert!(mmc.property("vqmmc-supply").is_none());
    assert!(mmc.property("broken-cd").is_some());
    assert!(mmc.property("dr_mode").is_none());
    assert_eq!(
        mmc.property("clocks").unwrap().value,
        CLOCK_PHANDLE_BASE.to_be_bytes()
    );
    let i2c = fdt.find_node("/soc/i2c@7e804000").unwrap();
    assert!(
        i2c.property("interrupt-parent").is_none(),
        "the VM's GIC, from the root"
    );
    assert_eq!(
        i2c.property("clocks").unwrap().value,
        (CLOCK_PHANDLE_BASE + 1).to_be_bytes()
    );
    let rate = |n: &str| {
        fdt.find_node(n)
            .unwrap()
            .property("clock-frequency")
            .unwrap()
            .value
            .to_vec()
    };
    assert_eq!(rate("/pt-clock-0"), 100_000_000u32.to_be_bytes());
    assert_eq!(rate("/pt-clock-1"), 500_000_000u32.to_be_bytes());
}

#[test]
fn a_missing_node_is_an_error() {
    let h = host();
    let nodes = [PtNode {
        path: "/soc/gone@0".into(),
        host_mode: false,
        clock_hz: vec![],
    }];
    let mut w = FdtWriter::new();
    w.begin_node("").unwrap();
    assert!(write_children(&mut w, &h, "soc", &nodes).is_err());
}

#[test]
fn a_bus_gets_only_its_own_properties_never_a_childs() {
    // /scb has no dma-ranges; its PCIe child has: the VM's /scb must not.
    let mut w = FdtWriter::new();
    w.begin_node("").unwrap();
    w.begin_node("scb").unwrap();
    w.property_u32("#address-cells", 2).unwrap();
    w.begin_node("pcie@7d500000").unwrap();
    w.property_cells("dma-ranges", &[1, 2, 3]).unwrap();
    w.property_u32("#size-cells", 2).unwrap();
    w.end_node().unwrap();
    w.end_node().unwrap();
    w.begin_node("other").unwrap();
    w.property_cells("ranges", &[9]).unwrap();
    w.end_node().unwrap();
    w.end_node().unwrap();
    let h = w.finish().unwrap();
    assert_eq!(bus_property(&h, "scb", "dma-ranges"), None);
    assert_eq!(bus_property(&h, "scb", "#size-cells"), None);
    assert_eq!(bus_property(&h, "scb", "ranges"), None, "not another bus's");
    assert_eq!(
        bus_property(&h, "scb", "#address-cells"),
        Some(2u32.to_be_bytes().to_vec())
    );
}
