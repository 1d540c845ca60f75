//! Tests of vm/fdt.rs: each VM's generated device tree, decompiled by
//! Debian's dtc, and the grafted dtb-extra nodes.

use super::*;
use crate::vm::config;
use std::process::Command;
use std::string::String;
use std::vec::Vec;

fn dtc(blob: &[u8]) -> String {
    let dir = std::env::temp_dir().join(std::format!("pivisor-vmfdt-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let f = dir.join(std::format!("{}.dtb", blob.len()));
    std::fs::write(&f, blob).unwrap();
    let out = Command::new("dtc")
        .args(["-I", "dtb", "-O", "dts"])
        .arg(&f)
        .output()
        .expect("dtc (Debian's device-tree-compiler; `make setup` installs it)");
    assert!(
        out.status.success(),
        "dtc: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn vm_device_tree_decompiles_and_describes_the_vm() {
    let t = VmTree {
        name: "alpha",
        index: 1,
        vcpus: 2,
        ram: 384 << 20,
        ram_base: 0,
        host: &[],
        pt: &[],
        bootargs: "console=hvc0 x=\"y\"",
        initrd: Some((0x1000_0000, 0x12345)),
        devices: &[Device::TestDev],
        extra: None,
        disk: false,
        net: false,
    };
    let s = dtc(&build(&t).unwrap());
    for want in [
        "model = \"pivisor VM alpha (Raspberry Pi 4)\";",
        "bootargs = \"console=hvc0 x=\\\"y\\\"\";",
        "linux,initrd-start = <0x00 0x10000000>;",
        "linux,initrd-end = <0x00 0x10012345>;",
        "memory@0 {",
        "reg = <0x00 0x00 0x00 0x18000000>;",
        "cpu@0 {",
        "cpu@1 {",
        "enable-method = \"psci\";",
        "method = \"hvc\";",
        "compatible = \"arm,psci-1.0\\0arm,psci-0.2\";",
        "interrupt-controller@ff841000 {",
        "reg = <0x00 0xff841000 0x00 0x1000 0x00 0xff842000 0x00 0x2000>;",
        "compatible = \"arm,armv8-timer\";",
        "interrupts = <0x01 0x0d 0x308 0x01 0x0e 0x308 0x01 0x0b 0x308 0x01 0x0a 0x308>;",
        "pivisor-test@fc000000 {",
        "interrupts = <0x00 0x48 0x04 0x00 0x49 0x04",
    ] {
        assert!(s.contains(want), "missing {want:?} in\n{s}");
    }
    assert!(!s.contains("cpu@2"), "only the VM's vCPUs");
    // More RAM than fits below the peripheral window: the rest at 4 GiB,
    // like a Pi 4 with 8 GB.
    let big = dtc(&build(&VmTree { ram: 6 << 30, ..t }).unwrap());
    assert!(
        big.contains("reg = <0x00 0x00 0x00 0xfc000000 0x01 0x00 0x00 0x84000000>;"),
        "two banks in\n{big}"
    );
    // A VM without devices or initrd says nothing about them.
    let bare = VmTree {
        devices: &[],
        initrd: None,
        vcpus: 4,
        ..t
    };
    let s = dtc(&build(&bare).unwrap());
    assert!(!s.contains("pivisor-test") && !s.contains("initrd"), "{s}");
    assert!(!s.contains("soc {") && !s.contains("mailbox"), "{s}");
    assert!(!s.contains("exit-counters"), "{s}");
    // The exit-counter page, when configured.
    let ctr = VmTree {
        devices: &[Device::Counters],
        ..bare
    };
    let s = dtc(&build(&ctr).unwrap());
    for want in [
        "pivisor-exit-counters@fc001000 {",
        "compatible = \"pivisor,exit-counters\";",
        "reg = <0x00 0xfc001000 0x00 0x1000>;",
    ] {
        assert!(s.contains(want), "missing {want:?} in\n{s}");
    }
    // The mailbox sits on a Pi 4-like /soc bus with its DMA window.
    let mb = VmTree {
        devices: &[Device::Mailbox],
        ..t
    };
    let m = dtc(&build(&mb).unwrap());
    for want in [
        "soc {",
        "compatible = \"simple-bus\";",
        "ranges = <0x7e000000 0x00 0xfe000000 0x1800000>;",
        "dma-ranges = <0xc0000000 0x00 0x00 0x40000000>;",
        "mailbox@7e00b880 {",
        "compatible = \"brcm,bcm2835-mbox\";",
        "reg = <0x7e00b880 0x40>;",
        "interrupts = <0x00 0x21 0x04>;",
        "compatible = \"raspberrypi,bcm2835-firmware\\0simple-mfd\";",
        "mboxes = <0x02>;",
        "compatible = \"raspberrypi,firmware-clocks\";",
        "compatible = \"raspberrypi,firmware-gpio\";",
    ] {
        assert!(m.contains(want), "missing {want:?} in\n{m}");
    }
    assert!(!m.contains("stdout-path") && !m.contains("serial@"), "{m}");
    // The emulated UART: a PL011 where UART0 is, a fixed 48 MHz clock,
    // the console's stdout-path.
    let u = VmTree {
        devices: &[Device::Uart],
        ..t
    };
    let m = dtc(&build(&u).unwrap());
    for want in [
        "stdout-path = \"serial0:115200n8\";",
        "serial0 = \"/soc/serial@7e201000\";",
        "serial@7e201000 {",
        "compatible = \"arm,pl011\\0arm,primecell\";",
        "reg = <0x7e201000 0x200>;",
        "interrupts = <0x00 0x79 0x04>;",
        "clocks = <0x04 0x04>;",
        "clock-names = \"uartclk\\0apb_pclk\";",
        "arm,primecell-periphid = <0x241011>;",
        "compatible = \"fixed-clock\";",
        "clock-frequency = <0x2dc6c00>;",
    ] {
        assert!(m.contains(want), "missing {want:?} in\n{m}");
    }
    assert!(!m.contains("mailbox"), "{m}");
    assert!(s.contains("cpu@3 {") && s.contains("0xf08"));
}

fn extra_tree(child: &str, phandle: u32) -> Vec<u8> {
    let mut w = crate::dt::writer::FdtWriter::new();
    w.begin_node("").unwrap();
    w.property_u32("#address-cells", 1).unwrap();
    w.begin_node(child).unwrap();
    w.property_string("compatible", "acme,widget").unwrap();
    w.property_u32("phandle", phandle).unwrap();
    w.begin_node("sub@0").unwrap();
    w.property_cells("reg", &[0, 1]).unwrap();
    w.end_node().unwrap();
    w.end_node().unwrap();
    w.end_node().unwrap();
    w.finish().unwrap()
}

#[test]
fn dtb_extra_nodes_are_grafted_and_checked() {
    let good = extra_tree("widget@fd000000", 0x27);
    let t = VmTree {
        name: "x",
        index: 0,
        vcpus: 1,
        ram: 64 << 20,
        ram_base: 0,
        host: &[],
        pt: &[],
        bootargs: "",
        initrd: None,
        devices: &[],
        extra: Some(&good),
        disk: false,
        net: false,
    };
    let s = dtc(&build(&t).unwrap());
    assert!(
        s.contains("widget@fd000000 {") && s.contains("compatible = \"acme,widget\";"),
        "{s}"
    );
    assert!(
        s.contains("sub@0 {") && s.contains("phandle = <0x27>;"),
        "{s}"
    );
    let plain = dtc(&build(&VmTree { extra: None, ..t }).unwrap());
    assert_eq!(
        s.matches("#address-cells").count(),
        plain.matches("#address-cells").count(),
        "root property of the extra tree ignored: {s}"
    );
    for (blob, want) in [
        (extra_tree("cpus", 7), "node /cpus is generated by pivisor"),
        (extra_tree("memory@0", 7), "node /memory@0 is generated"),
        (extra_tree("widget", 3), "phandle 3 is pivisor's"),
        (b"not a tree".to_vec(), "not a valid device tree"),
    ] {
        let e = build(&VmTree {
            extra: Some(&blob),
            ..t
        })
        .unwrap_err();
        assert!(std::format!("{e}").contains(want), "{e}");
    }
    // Every truncation of a good extra tree is refused without a panic.
    for n in 0..good.len() {
        assert!(build(&VmTree {
            extra: Some(&good[..n]),
            ..t
        })
        .is_err());
    }
    let vms =
        config::parse("[vm a]\ncores = 0\nmemory = 4M\nkernel = k\ndtb-extra = e.dtb\n").unwrap();
    assert_eq!(vms[0].dtb_extra, Some("e.dtb"));
}

#[test]
fn a_disk_is_a_virtio_mmio_node_with_its_spi() {
    let t = VmTree {
        name: "d",
        index: 0,
        vcpus: 1,
        ram: 64 << 20,
        ram_base: 0,
        host: &[],
        pt: &[],
        bootargs: "",
        initrd: None,
        devices: &[],
        extra: None,
        disk: true,
        net: false,
    };
    let s = dtc(&build(&t).unwrap());
    for want in [
        "virtio_mmio@fc004000 {",
        "compatible = \"virtio,mmio\";",
        "reg = <0x00 0xfc004000 0x00 0x200>;",
        "interrupts = <0x00 0xd0 0x04>;",
        "dma-coherent;",
    ] {
        assert!(s.contains(want), "{want} in\n{s}");
    }
    let none = dtc(&build(&VmTree { disk: false, ..t }).unwrap());
    assert!(!none.contains("virtio"));
}

#[test]
fn a_network_interface_is_a_virtio_mmio_node_with_its_spi() {
    let t = VmTree {
        name: "n",
        index: 0,
        vcpus: 1,
        ram: 64 << 20,
        ram_base: 0,
        host: &[],
        pt: &[],
        bootargs: "",
        initrd: None,
        devices: &[],
        extra: None,
        disk: true,
        net: true,
    };
    let s = dtc(&build(&t).unwrap());
    for want in [
        "virtio_mmio@fc004000 {",
        "virtio_mmio@fc005000 {",
        "reg = <0x00 0xfc005000 0x00 0x200>;",
        "interrupts = <0x00 0xd1 0x04>;",
    ] {
        assert!(s.contains(want), "{want} in\n{s}");
    }
}
