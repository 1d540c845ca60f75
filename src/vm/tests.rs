//! Configuration, bundle and device-tree tests, including hostile inputs.

use super::bundle::{self, Bundle, BundleError};
use super::config::{self, Device};
use super::fdt::{self, VmTree};
use std::process::Command;
use std::string::String;
use std::vec::Vec;

const TWO: &str = "\
# two test VMs
[vm alpha]
cores = 0-1
memory = 384M
kernel = testguest.img
bootargs = \"test=1 # not a comment\"
devices = testdev

[vm beta]   # trailing comment
cores = 2, 3
memory = 0x18000000
memory-at = 0x20000000
kernel = testguest.img
initrd = rd.img
";

#[test]
fn parses_a_two_vm_config() {
    let vms = config::parse(TWO).unwrap();
    assert_eq!(vms.len(), 2);
    let (a, b) = (&vms[0], &vms[1]);
    assert_eq!(
        (a.name, a.cores.as_slice(), a.memory),
        ("alpha", &[0, 1][..], 384 << 20)
    );
    assert_eq!(a.bootargs, "test=1 # not a comment");
    assert_eq!(a.devices, [Device::TestDev]);
    assert_eq!((a.initrd, a.memory_at), (None, None));
    assert_eq!(
        (b.name, b.cores.as_slice(), b.memory),
        ("beta", &[2, 3][..], 384 << 20)
    );
    assert_eq!(
        (b.memory_at, b.initrd, b.line),
        (Some(0x2000_0000), Some("rd.img"), 9)
    );
    config::check_fits(&vms, 4, 900 << 20).unwrap();
}

fn config_error(text: &str) -> String {
    std::format!("{}", config::parse(text).unwrap_err())
}

#[test]
fn refuses_bad_configs_with_a_reason() {
    let base = "[vm a]\ncores = 0\nmemory = 64M\nkernel = k\n";
    let cases: &[(&str, &str)] = &[
        ("", "defines no VM"),
        ("cores = 1\n", "line 1: a setting before any [vm NAME]"),
        ("[vm a]\ncores = 0\nkernel = k\n", "VM 'a' has no memory"),
        ("[vm a]\nmemory = 2M\nkernel = k\n", "has no cores"),
        ("[vm a]\ncores = 0\nmemory = 2M\n", "has no kernel"),
        ("[host]\n", "unknown section"),
        ("[vm a\n", "without ']'"),
        ("[vm a b]\n", "VM name 'a b'"),
        ("[vm waytoolongname12345]\n", "VM name"),
        ("[vm a]\nfoo = 1\n", "line 2: unknown key 'foo'"),
        ("[vm a]\ncores\n", "expected 'key = value'"),
        ("[vm a]\ncores = 4\n", "not within 0-3"),
        ("[vm a]\ncores = 2-1\n", "not within"),
        ("[vm a]\ncores = 0,0\n", "listed twice"),
        ("[vm a]\ncores = x\n", "not a core number"),
        ("[vm a]\ncores = ,\n", "at least one core"),
        (
            "[vm a]\ncores = 0\ncores = 1\n",
            "line 3: 'cores' is given twice",
        ),
        ("[vm a]\nmemory = 3M\n", "multiple of 2M"),
        ("[vm a]\nmemory = 0\n", "multiple of 2M"),
        ("[vm a]\nmemory = 99999999999999G\n", "not a size"),
        ("[vm a]\nmemory = lots\n", "not a size"),
        ("[vm a]\nmemory-at = 0x1000\n", "2M-aligned"),
        ("[vm a]\nkernel = a b\n", "not a bundle file name"),
        ("[vm a]\ndevices = testdev, gpu\n", "unknown device 'gpu'"),
        ("[vm a]\ndevices = testdev testdev\n", "listed twice"),
        (
            "[vm a]\nmailbox = info\ncores = 0\nmemory = 2M\nkernel = k\n",
            "line 2: mailbox: VM 'a' has no 'mailbox' device",
        ),
        (
            "[vm a]\nserial = 5\ncores = 0\nmemory = 2M\nkernel = k\n",
            "serial: VM 'a' has no 'mailbox'",
        ),
        ("[vm a]\nmailbox = info gpu\n", "unknown tag group 'gpu'"),
        (
            "[vm a]\ndevices = uart, pl011\n",
            "line 2: devices: 'uart' (emulated) and 'pl011'",
        ),
        ("[vm a]\nserial = 12ab\n", "serial: '12ab' is not a number"),
        ("[vm a]\nmac = 02:00:00:00:00\n", "not aa:bb:cc:dd:ee:ff"),
        ("[vm a]\nmac = 02:00:00:00:00:01:02\n", "not aa:bb"),
        ("[vm a]\nmac = 2:00:00:00:00:01\n", "not aa:bb"),
        ("[vm a]\nmac = 0g:00:00:00:00:01\n", "not aa:bb"),
    ];
    for (text, want) in cases {
        let got = config_error(text);
        assert!(got.contains(want), "{text:?}: got '{got}', want '{want}'");
    }
    let dup = std::format!("{base}[vm a]\n");
    assert!(config_error(&dup).contains("used twice"));
    let shared = std::format!("{base}[vm b]\ncores = 1,0\nmemory = 2M\nkernel = k\n");
    assert!(config_error(&shared).contains("core 0 is given to both 'a' and 'b'"));
    let two_owners = std::format!(
        "{base}devices = pl011\n[vm b]\ncores = 1\nmemory = 2M\nkernel = k\ndevices = uart\n[vm c]\ncores = 2\nmemory = 2M\nkernel = k\ndevices = pl011\n"
    );
    assert!(config_error(&two_owners).contains("passed through to both 'a' and 'c'"));
    let overlap = "[vm a]\ncores = 0\nmemory = 64M\nmemory-at = 0x10000000\nkernel = k\n\
                   [vm b]\ncores = 1\nmemory = 64M\nmemory-at = 0x13e00000\nkernel = k\n";
    assert!(config_error(overlap).contains("memory of 'a' and 'b' overlaps"));
    let five: String = (0..5)
        .map(|i| std::format!("[vm v{i}]\ncores = {}\nmemory = 2M\nkernel = k\n", i % 4))
        .collect();
    assert!(config_error(&five).contains("more than 4 VMs"));
}

#[test]
fn mailbox_policy_serial_and_mac() {
    use crate::devices::mailbox::property::{group, Policy};
    let vms = config::parse(
        "[vm a]\ncores = 0\nmemory = 2M\nkernel = k\ndevices = mailbox\n\
         mailbox = info, gpio-set\nserial = 0x10000000abcdef\nmac = 02:1a:Ff:00:00:01\n\
         [vm b]\ncores = 1\nmemory = 2M\nkernel = k\ndevices = testdev mailbox\n",
    )
    .unwrap();
    assert_eq!(vms[0].devices, [Device::Mailbox]);
    assert_eq!(vms[0].mailbox.groups, group::INFO | group::GPIO_SET);
    assert_eq!(vms[0].serial, Some(0x10_0000_00ab_cdef));
    assert_eq!(vms[0].mac, Some([2, 0x1a, 0xff, 0, 0, 1]));
    assert_eq!(vms[1].mailbox, Policy::default());
    assert_eq!((vms[1].serial, vms[1].mac), (None, None));
}

#[test]
fn machine_checks() {
    let vms = config::parse(TWO).unwrap();
    let e = config::check_fits(&vms, 2, 1 << 30).unwrap_err();
    assert!(std::format!("{e}").contains("core 2 does not exist"), "{e}");
    let e = config::check_fits(&vms, 4, 700 << 20).unwrap_err();
    assert!(std::format!("{e}").contains("need 768 MiB"), "{e}");
}

#[test]
fn sizes_and_numbers() {
    assert_eq!(config::parse_size("768M"), Some(768 << 20));
    assert_eq!(config::parse_size("1G"), Some(1 << 30));
    assert_eq!(config::parse_size("64k"), Some(64 << 10));
    assert_eq!(config::parse_size("0x200000"), Some(2 << 20));
    for bad in ["", "M", "0x", "-1", "1.5G", "1T", "18446744073709551615K"] {
        assert_eq!(config::parse_size(bad), None, "{bad}");
    }
}

fn sample() -> Vec<u8> {
    bundle::write(&[
        ("vms.conf", TWO.as_bytes()),
        ("testguest.img", b"kernel!"),
        ("rd.img", &[1, 2, 3]),
    ])
    .unwrap()
}

#[test]
fn bundle_round_trip() {
    let b = sample();
    let p = Bundle::parse(&b).unwrap();
    assert_eq!(p.config().unwrap(), TWO);
    assert_eq!(p.file("testguest.img"), Some(&b"kernel!"[..]));
    assert_eq!(p.file("rd.img"), Some(&[1u8, 2, 3][..]));
    assert_eq!(p.file("nope"), None);
    assert_eq!(p.files().len(), 3);
    // Trailing bytes beyond total_size (the firmware pads) are ignored.
    let mut padded = b.clone();
    padded.extend_from_slice(&[0xff; 4096]);
    assert!(Bundle::parse(&padded).is_ok());
}

#[test]
fn bundle_refuses_hostile_blobs() {
    let b = sample();
    assert!(matches!(
        Bundle::parse(&b[..10]),
        Err(BundleError::Truncated { .. })
    ));
    assert!(matches!(
        Bundle::parse(&b[..b.len() - 1]),
        Err(BundleError::Truncated { .. })
    ));
    let mut m = b.clone();
    m[0] = b'X';
    assert_eq!(Bundle::parse(&m).unwrap_err(), BundleError::BadMagic);
    let mut v = b.clone();
    v[8] = 2;
    assert_eq!(Bundle::parse(&v).unwrap_err(), BundleError::BadVersion(2));
    let mut c = b.clone();
    c[12..16].copy_from_slice(&1000u32.to_le_bytes());
    assert_eq!(Bundle::parse(&c).unwrap_err(), BundleError::BadCount(1000));
    let mut t = b.clone();
    t[40] ^= 1; // a file table byte
    assert_eq!(Bundle::parse(&t).unwrap_err(), BundleError::TableChecksum);
    let mut d = b.clone();
    let last = d.len() - 1;
    d[last] ^= 0x80; // file data
    assert_eq!(
        Bundle::parse(&d).unwrap_err(),
        BundleError::FileChecksum("rd.img".into())
    );
    // Every single-byte corruption and every truncation is refused
    // without a panic (or, for padding bytes, accepted unchanged).
    for i in 0..b.len() {
        let mut x = b.clone();
        x[i] ^= 0x5a;
        if let Ok(p) = Bundle::parse(&x) {
            assert_eq!(p.config().ok(), Some(TWO), "byte {i}");
        }
        assert!(Bundle::parse(&b[..i]).is_err(), "truncated at {i}");
    }
}

/// Rewrites an entry field and fixes the table checksum, so only the
/// entry check can catch it.
fn forge(b: &[u8], at: usize, bytes: &[u8]) -> Vec<u8> {
    let mut x = b.to_vec();
    x[at..at + bytes.len()].copy_from_slice(bytes);
    let n = u32::from_le_bytes(x[12..16].try_into().unwrap()) as usize;
    let sum = bundle::fnv1a(&x[32..32 + n * 64]);
    x[24..32].copy_from_slice(&sum.to_le_bytes());
    x
}

fn name40(n: &str) -> [u8; 40] {
    let mut a = [0u8; 40];
    a[..n.len()].copy_from_slice(n.as_bytes());
    a
}

#[test]
fn bundle_refuses_forged_entries() {
    let b = sample();
    let e1 = 32 + 64; // second entry
    let cases: Vec<(Vec<u8>, &str)> = std::vec![
        (
            forge(&b, e1 + 40, &0u64.to_le_bytes()),
            "data outside the bundle"
        ),
        (forge(&b, e1 + 40, &u64::MAX.to_le_bytes()), "overflows"),
        (
            forge(&b, e1 + 48, &(1u64 << 40).to_le_bytes()),
            "data outside"
        ),
        (forge(&b, e1, &name40("rd.img")), "appears twice"),
        (forge(&b, e1, &name40("a b")), "space"),
        (forge(&b, e1, &[b'x'; 40]), "NUL-terminated"),
        (forge(&b, e1 + 20, b"z"), "garbage after the name"),
        (
            forge(
                &b,
                e1,
                &[0xff; 1]
                    .iter()
                    .chain(&[0u8; 39])
                    .copied()
                    .collect::<Vec<u8>>()
            ),
            "UTF-8"
        ),
        (forge(&b, 32, b"other.cf"), "not vms.conf"),
        (
            forge(&b, 16, &64u64.to_le_bytes()),
            "smaller than the file table"
        ),
    ];
    for (x, want) in cases {
        let e = std::format!("{}", Bundle::parse(&x).unwrap_err());
        assert!(e.contains(want), "got '{e}', want '{want}'");
    }
    assert!(
        bundle::write(&[("k", b"")]).is_err(),
        "config must come first"
    );
    assert!(bundle::write(&[("vms.conf", b""), ("vms.conf", b"")]).is_err());
    assert!(bundle::write(&[("vms.conf", b""), ("a/b", b"")]).is_err());
    assert!(bundle::write(&[]).is_err());
}

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
        bootargs: "console=hvc0 x=\"y\"",
        initrd: Some((0x1000_0000, 0x12345)),
        devices: &[Device::TestDev],
        extra: None,
    };
    let s = dtc(&fdt::build(&t).unwrap());
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
    let big = dtc(&fdt::build(&VmTree { ram: 6 << 30, ..t }).unwrap());
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
    let s = dtc(&fdt::build(&bare).unwrap());
    assert!(!s.contains("pivisor-test") && !s.contains("initrd"), "{s}");
    assert!(!s.contains("soc {") && !s.contains("mailbox"), "{s}");
    assert!(!s.contains("exit-counters"), "{s}");
    // The exit-counter page, when configured.
    let ctr = VmTree {
        devices: &[Device::Counters],
        ..bare
    };
    let s = dtc(&fdt::build(&ctr).unwrap());
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
    let m = dtc(&fdt::build(&mb).unwrap());
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
    let m = dtc(&fdt::build(&u).unwrap());
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
        bootargs: "",
        initrd: None,
        devices: &[],
        extra: Some(&good),
    };
    let s = dtc(&fdt::build(&t).unwrap());
    assert!(
        s.contains("widget@fd000000 {") && s.contains("compatible = \"acme,widget\";"),
        "{s}"
    );
    assert!(
        s.contains("sub@0 {") && s.contains("phandle = <0x27>;"),
        "{s}"
    );
    let plain = dtc(&fdt::build(&VmTree { extra: None, ..t }).unwrap());
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
        let e = fdt::build(&VmTree {
            extra: Some(&blob),
            ..t
        })
        .unwrap_err();
        assert!(std::format!("{e}").contains(want), "{e}");
    }
    // Every truncation of a good extra tree is refused without a panic.
    for n in 0..good.len() {
        assert!(fdt::build(&VmTree {
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
fn restart_policy_is_read_and_checked() {
    use crate::vm::restart::RestartPolicy;
    let vms = config::parse(
        "[vm a]\ncores = 0\nmemory = 2M\nkernel = k\npolicy = restart 3\n\
         [vm b]\ncores = 1\nmemory = 2M\nkernel = k\npolicy = halt\n\
         [vm c]\ncores = 2\nmemory = 2M\nkernel = k\n",
    )
    .unwrap();
    assert_eq!(vms[0].policy, RestartPolicy::Restart { max: Some(3) });
    assert_eq!(vms[1].policy, RestartPolicy::Halt);
    assert_eq!(vms[2].policy, RestartPolicy::Default);
    let e = config_error("[vm a]\ncores = 0\nmemory = 2M\nkernel = k\npolicy = reboot\n");
    assert!(
        e.contains("line 5") && e.contains("policy: 'reboot'"),
        "{e}"
    );
    let twice = "[vm a]\ncores = 0\nmemory = 2M\nkernel = k\npolicy = halt\npolicy = restart\n";
    assert!(config_error(twice).contains("given twice"));
}

#[test]
fn vm_files_finds_and_plans_or_names_what_is_missing() {
    let mut k = std::vec![0u8; 4096];
    k[8..16].copy_from_slice(&0x8_0000u64.to_le_bytes());
    k[56..60].copy_from_slice(&super::image::MAGIC.to_le_bytes());
    let conf = "[vm a]\ncores = 0\nmemory = 16M\nkernel = k\ninitrd = rd\n\
                [vm b]\ncores = 1\nmemory = 16M\nkernel = k\ninitrd = nope\n\
                [vm c]\ncores = 2\nmemory = 16M\nkernel = rd\n";
    let blob = bundle::write(&[("vms.conf", conf.as_bytes()), ("k", &k), ("rd", b"xyz")]).unwrap();
    let b = Bundle::parse(&blob).unwrap();
    let vms = config::parse(b.config().unwrap()).unwrap();
    let f = super::image::vm_files(&b, &vms[0]).unwrap();
    assert_eq!(
        (f.kernel.len(), f.initrd, f.extra),
        (4096, Some(&b"xyz"[..]), None)
    );
    assert_eq!(f.plan.kernel, 0x8_0000);
    let e = super::image::vm_files(&b, &vms[1]).unwrap_err();
    assert!(
        e.contains("VM 'b': initrd 'nope' is not in the bundle"),
        "{e}"
    );
    let e = super::image::vm_files(&b, &vms[2]).unwrap_err();
    assert!(e.starts_with("VM 'c': kernel 'rd': "), "{e}");
}
