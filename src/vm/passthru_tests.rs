use super::*;
use crate::dt::writer::FdtWriter;
use std::vec::Vec;

/// The parts of the Pi 4's tree that passthrough meets: the GIC (phandle
/// 1, every node's interrupt parent), /soc with UART0 and UART2 on one
/// page and line, two I2C controllers on one line, the Arasan, USB, the
/// mailbox and the mini UART; /emmc2bus (dma-ranges: the low 1 GiB) with
/// EMMC2 on the Arasan's line; /scb with GENET (no dma-ranges); aliases.
fn pi4() -> Vec<u8> {
    let mut w = FdtWriter::new();
    let node = |w: &mut FdtWriter, name: &str, compat: &str, reg: &[u32], irqs: &[u32]| {
        w.begin_node(name).unwrap();
        w.property_string("compatible", compat).unwrap();
        if !reg.is_empty() {
            w.property_cells("reg", reg).unwrap();
        }
        if !irqs.is_empty() {
            w.property_cells("interrupts", irqs).unwrap();
        }
        w.end_node().unwrap();
    };
    w.begin_node("").unwrap();
    w.property_u32("#address-cells", 2).unwrap();
    w.property_u32("#size-cells", 1).unwrap();
    w.property_u32("interrupt-parent", 1).unwrap();
    w.begin_node("aliases").unwrap();
    w.property_string("serial0", "/soc/serial@7e201000")
        .unwrap();
    w.property_string("serial1", "/soc/serial@7e215040")
        .unwrap();
    w.property_string("ethernet0", "/scb/ethernet@7d580000")
        .unwrap();
    w.property_string("ghost", "/soc/nothing@0").unwrap();
    w.end_node().unwrap();
    w.begin_node("soc").unwrap();
    w.property_u32("#address-cells", 1).unwrap();
    w.property_u32("#size-cells", 1).unwrap();
    w.property_cells(
        "ranges",
        &[
            0x7e00_0000,
            0,
            0xfe00_0000,
            0x180_0000,
            0x4000_0000,
            0,
            0xff80_0000,
            0x80_0000,
        ],
    )
    .unwrap();
    w.property_cells("dma-ranges", &[0xc000_0000, 0, 0, 0x4000_0000])
        .unwrap();
    node(
        &mut w,
        "serial@7e201000",
        "arm,pl011",
        &[0x7e20_1000, 0x200],
        &[0, 0x79, 4],
    );
    node(
        &mut w,
        "serial@7e201400",
        "arm,pl011",
        &[0x7e20_1400, 0x200],
        &[0, 0x79, 4],
    );
    node(
        &mut w,
        "serial@7e215040",
        "brcm,bcm2835-aux-uart",
        &[0x7e21_5040, 0x40],
        &[0, 0x5d, 4],
    );
    node(
        &mut w,
        "spi@7e215080",
        "brcm,bcm2835-aux-spi",
        &[0x7e21_5080, 0x40],
        &[0, 0x5d, 4],
    );
    node(
        &mut w,
        "i2c@7e804000",
        "brcm,bcm2711-i2c",
        &[0x7e80_4000, 0x1000],
        &[0, 0x75, 4],
    );
    node(
        &mut w,
        "i2c@7e805000",
        "brcm,bcm2711-i2c",
        &[0x7e80_5000, 0x1000],
        &[0, 0x75, 4],
    );
    node(
        &mut w,
        "mmc@7e300000",
        "brcm,bcm2835-sdhci",
        &[0x7e30_0000, 0x100],
        &[0, 0x7e, 4],
    );
    node(
        &mut w,
        "usb@7e980000",
        "brcm,bcm2835-usb",
        &[0x7e98_0000, 0x10000],
        &[0, 0x49, 4],
    );
    node(
        &mut w,
        "mailbox@7e00b880",
        "brcm,bcm2835-mbox",
        &[0x7e00_b880, 0x40],
        &[0, 0x21, 4],
    );
    node(
        &mut w,
        "gpio@7e200000",
        "brcm,bcm2711-gpio",
        &[0x7e20_0000, 0xb4],
        &[0, 0x71, 4, 0, 0x72, 4],
    );
    node(
        &mut w,
        "odd@7e00a000",
        "x,odd",
        &[0x7e00_a000, 0x100],
        &[1, 9, 4],
    );
    node(&mut w, "nothing", "x,none", &[], &[]);
    node(&mut w, "far@10000", "x,far", &[0x1_0000, 0x100], &[]);
    w.begin_node("interrupt-controller@40041000").unwrap();
    w.property_string("compatible", "arm,gic-400").unwrap();
    w.property_cells("reg", &[0x4004_1000, 0x1000, 0x4004_2000, 0x2000])
        .unwrap();
    w.property_u32("phandle", 1).unwrap();
    w.end_node().unwrap();
    w.begin_node("intc2").unwrap();
    w.property_string("compatible", "x,intc").unwrap();
    w.property_u32("phandle", 9).unwrap();
    w.end_node().unwrap();
    w.begin_node("button@7e00c000").unwrap();
    w.property_string("compatible", "x,button").unwrap();
    w.property_cells("reg", &[0x7e00_c000, 0x10]).unwrap();
    w.property_u32("interrupt-parent", 9).unwrap();
    w.property_cells("interrupts", &[3, 4]).unwrap();
    w.end_node().unwrap();
    w.end_node().unwrap();
    w.begin_node("emmc2bus").unwrap();
    w.property_u32("#address-cells", 2).unwrap();
    w.property_u32("#size-cells", 1).unwrap();
    w.property_cells("ranges", &[0, 0x7e00_0000, 0, 0xfe00_0000, 0x180_0000])
        .unwrap();
    w.property_cells("dma-ranges", &[0, 0xc000_0000, 0, 0, 0x4000_0000])
        .unwrap();
    node(
        &mut w,
        "mmc@7e340000",
        "brcm,bcm2711-emmc2",
        &[0, 0x7e34_0000, 0x100],
        &[0, 0x7e, 4],
    );
    w.end_node().unwrap();
    w.begin_node("scb").unwrap();
    w.property_u32("#address-cells", 2).unwrap();
    w.property_u32("#size-cells", 1).unwrap();
    w.property_cells("ranges", &[0, 0x7c00_0000, 0, 0xfc00_0000, 0x380_0000])
        .unwrap();
    node(
        &mut w,
        "ethernet@7d580000",
        "brcm,bcm2711-genet-v5",
        &[0, 0x7d58_0000, 0x10000],
        &[0, 0x9d, 4, 0, 0x9e, 4],
    );
    node(
        &mut w,
        "mystery@7d5d0000",
        "x,mystery",
        &[0, 0x7d5d_0000, 0x100],
        &[],
    );
    w.end_node().unwrap();
    w.end_node().unwrap();
    w.finish().unwrap()
}

fn with<R>(f: impl FnOnce(&Fdt<'_>, &[Found<'_>]) -> R) -> R {
    let blob = pi4();
    let fdt = Fdt::new(&blob).unwrap();
    let n = nodes(&fdt);
    f(&fdt, &n)
}

fn res(name: &str) -> Result<Resolved, String> {
    with(|fdt, n| resolve(fdt, n, name))
}

#[test]
fn a_device_is_found_by_path_alias_or_unique_name() {
    let i2c = res("/soc/i2c@7e804000").unwrap();
    assert_eq!(i2c.regs, vec![(0xfe80_4000, 0x1000)]);
    assert_eq!(i2c.spis, vec![32 + 0x75]);
    assert_eq!(i2c.dma, Dma::None);
    let eth = res("ethernet0").unwrap();
    assert_eq!(eth.path, "/scb/ethernet@7d580000");
    assert_eq!(
        eth.regs,
        vec![(0xfd58_0000, 0x10000)],
        "through /scb's 2-cell ranges"
    );
    assert_eq!(eth.spis, vec![189, 190]);
    assert_eq!(
        eth.dma,
        Dma::Master {
            reach: None,
            known: true
        }
    );
    assert_eq!(res("mmc@7e300000").unwrap().path, "/soc/mmc@7e300000");
    assert_eq!(res("usb").unwrap().path, "/soc/usb@7e980000");
    let emmc2 = res("/emmc2bus/mmc@7e340000").unwrap();
    assert_eq!(emmc2.regs, vec![(0xfe34_0000, 0x100)]);
    assert_eq!(
        emmc2.dma,
        Dma::Master {
            reach: Some(vec![(0, 0x4000_0000)]),
            known: true
        },
        "the low 1 GiB, from /emmc2bus's dma-ranges"
    );
    let arasan = res("/soc/mmc@7e300000").unwrap();
    assert_eq!(
        arasan.dma,
        Dma::Master {
            reach: Some(vec![(0, 0x4000_0000)]),
            known: true
        }
    );
    assert_eq!(
        res("/scb/mystery@7d5d0000").unwrap().dma,
        Dma::Master {
            reach: None,
            known: false
        },
        "an unknown device is taken as a bus master"
    );
}

#[test]
fn bad_names_are_refused_with_what_is_wrong() {
    let e = res("/soc/i2c@7e80400").unwrap_err();
    assert!(
        e.contains("no node /soc/i2c@7e80400") && e.contains("/soc/i2c@7e804000"),
        "{e}"
    );
    let e = res("i2c").unwrap_err();
    assert!(
        e.contains("names 2 nodes") && e.contains("/soc/i2c@7e805000"),
        "{e}"
    );
    assert!(res("flux-capacitor")
        .unwrap_err()
        .contains("neither a path"));
    assert!(res("ghost")
        .unwrap_err()
        .contains("alias ghost points at /soc/nothing@0"));
    assert!(res("").is_err());
    assert!(res("/").is_err());
    assert!(res("/soc/nothing").unwrap_err().contains("has no reg"));
    assert!(res("/soc/far@10000")
        .unwrap_err()
        .contains("do not reach the CPU"));
    assert!(res("/soc/odd@7e00a000")
        .unwrap_err()
        .contains("not GIC SPIs"));
    assert!(res("/soc/button@7e00c000")
        .unwrap_err()
        .contains("not GIC SPIs"));
}

#[test]
fn the_hypervisors_devices_are_never_given_away() {
    for (name, why) in [
        ("/soc/interrupt-controller@40041000", "interrupt controller"),
        ("/soc/mailbox@7e00b880", "mailbox"),
        ("serial1", "mini UART"),
    ] {
        let e = res(name).unwrap_err();
        assert!(e.contains(why), "{name}: {e}");
    }
}

#[test]
fn pages_are_whole_and_merged() {
    let d = Resolved {
        path: "/x".into(),
        compatible: "x".into(),
        regs: vec![
            (0x1_0ff0, 0x20),
            (0x1_0000, 0x10),
            (0x3_0000, 0),
            (0x5_0800, 0x1000),
        ],
        spis: vec![],
        dma: Dma::None,
        enabled: true,
    };
    assert_eq!(d.pages(), vec![(0x1_0000, 0x2000), (0x5_0000, 0x2000)]);
}

fn claim<'c>(owner: Owner<'c>, dev: &'c Resolved) -> Claim<'c> {
    Claim {
        owner,
        dev,
        line: 0,
    }
}

#[test]
fn one_owner_per_device_page_and_line() {
    let uart0 = res("serial0").unwrap();
    let uart2 = res("/soc/serial@7e201400").unwrap();
    let i2c1 = res("/soc/i2c@7e804000").unwrap();
    let i2c2 = res("/soc/i2c@7e805000").unwrap();
    let arasan = res("/soc/mmc@7e300000").unwrap();
    let emmc2 = res("/emmc2bus/mmc@7e340000").unwrap();
    let usb = res("usb").unwrap();
    let (a, b) = (Owner::Vm("a"), Owner::Vm("b"));
    let e = check_owners(&[claim(a, &uart0), claim(b, &uart2)]).unwrap_err();
    assert!(e.contains("share the 4 KiB page 0xfe201000"), "{e}");
    let e = check_owners(&[claim(a, &i2c1), claim(b, &i2c2)]).unwrap_err();
    assert!(
        e.contains("share interrupt line SPI 117 (INTID 149)"),
        "{e}"
    );
    let e = check_owners(&[
        claim(Owner::Hypervisor("it serves the VMs' disks"), &emmc2),
        claim(a, &arasan),
    ])
    .unwrap_err();
    assert!(
        e.contains("SPI 126") && e.contains("the hypervisor (it serves the VMs' disks)"),
        "{e}"
    );
    let e = check_owners(&[claim(a, &usb), claim(b, &usb)]).unwrap_err();
    assert!(e.contains("claimed by both VM 'a' and VM 'b'"), "{e}");
    assert!(check_owners(&[claim(a, &usb), claim(a, &usb)])
        .unwrap_err()
        .contains("twice"));
    // One owner may have everything that shares.
    check_owners(&[
        claim(a, &uart0),
        claim(a, &uart2),
        claim(a, &i2c1),
        claim(a, &i2c2),
        claim(b, &usb),
    ])
    .unwrap();
}

#[test]
fn devices_stay_clear_of_the_vms_own_addresses() {
    let usb = res("usb").unwrap();
    check_clear(&usb, &[(0xfc00_0000, 0x6000, "emulated devices")]).unwrap();
    let e = check_clear(&usb, &[(0xfe98_f000, 0x1000, "test page")]).unwrap_err();
    assert!(e.contains("would cover the VM's test page"), "{e}");
}

#[test]
fn identity_ram_is_where_every_master_reaches() {
    let emmc2 = res("/emmc2bus/mmc@7e340000").unwrap();
    let eth = res("ethernet0").unwrap();
    let i2c = res("/soc/i2c@7e804000").unwrap();
    assert_eq!(dma_window(&[&eth, &i2c]), Ok(None));
    assert_eq!(dma_window(&[&eth, &emmc2]), Ok(Some((0, 0x4000_0000))));
    let mut far = emmc2.clone();
    far.dma = Dma::Master {
        reach: Some(vec![(0x8000_0000, 0x1000_0000)]),
        known: true,
    };
    assert!(dma_window(&[&emmc2, &far])
        .unwrap_err()
        .contains("does not overlap"));
    let mut none = emmc2.clone();
    none.dma = Dma::Master {
        reach: Some(vec![]),
        known: true,
    };
    assert!(dma_window(&[&none]).is_err());
}

#[test]
fn dma_masters_are_brought_to_rest_by_a_reset() {
    let sd = rest_steps("brcm,bcm2711-emmc2");
    assert_eq!(sd.len(), 1);
    assert_eq!(
        (sd[0].off, sd[0].set, sd[0].wait_clear),
        (0x2c, 1 << 24, 1 << 24)
    );
    assert_eq!(rest_steps("brcm,bcm2835-sdhci"), sd);
    let usb = rest_steps("brcm,bcm2835-usb");
    assert_eq!(usb[0].off, 0x008, "interrupts and DMA off first");
    assert_eq!(usb[0].clear & 1 << 5, 1 << 5);
    assert_eq!(usb[1].off, 0x440, "the host port's power off");
    assert_eq!(
        usb[1].clear & (1 << 12 | 0b10_1110),
        1 << 12 | 0b10_1110,
        "PrtPwr and the W1C bits written as 0"
    );
    assert_eq!((usb[2].off, usb[2].set, usb[2].wait_clear), (0x010, 1, 1));
    assert!(rest_steps("brcm,bcm2711-i2c").is_empty());
    for s in sd.iter().chain(usb) {
        assert_eq!(s.off % 4, 0);
    }
}

#[test]
fn only_devices_on_a_bus_under_the_root_are_passed() {
    // A node under a device (the Arasan's Wi-Fi function) is not a device
    // of its own here.
    let mut w = FdtWriter::new();
    w.begin_node("").unwrap();
    w.property_u32("#address-cells", 1).unwrap();
    w.property_u32("#size-cells", 1).unwrap();
    w.begin_node("soc").unwrap();
    w.property_u32("#address-cells", 1).unwrap();
    w.property_u32("#size-cells", 1).unwrap();
    w.property_empty("ranges").unwrap();
    w.begin_node("bus2").unwrap();
    w.property_u32("#address-cells", 1).unwrap();
    w.property_u32("#size-cells", 1).unwrap();
    w.property_empty("ranges").unwrap();
    w.begin_node("dev@1000").unwrap();
    w.property_cells("reg", &[0x1000, 0x100]).unwrap();
    w.end_node().unwrap();
    w.end_node().unwrap();
    w.end_node().unwrap();
    w.begin_node("top@2000").unwrap();
    w.property_cells("reg", &[0x2000, 0x100]).unwrap();
    w.end_node().unwrap();
    w.end_node().unwrap();
    let blob = w.finish().unwrap();
    let fdt = Fdt::new(&blob).unwrap();
    let n = nodes(&fdt);
    assert!(resolve(&fdt, &n, "/soc/bus2/dev@1000")
        .unwrap_err()
        .contains("sit on a bus under the root"));
    assert!(resolve(&fdt, &n, "/top@2000")
        .unwrap_err()
        .contains("sit on a bus under the root"));
}
