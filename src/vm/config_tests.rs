//! Tests of vm/config.rs: the configuration language, its refusals and
//! the machine checks.

use super::*;
use std::string::String;

/// Two VMs, every key used (also the bundle tests' configuration).
pub(crate) const TWO: &str = "\
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
    let vms = parse(TWO).unwrap();
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
    check_fits(&vms, 4, 900 << 20).unwrap();
}

fn config_error(text: &str) -> String {
    std::format!("{}", parse(text).unwrap_err())
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
    use crate::devices::mailbox::policy::{group, Policy};
    let vms = parse(
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
    let vms = parse(TWO).unwrap();
    let e = check_fits(&vms, 2, 1 << 30).unwrap_err();
    assert!(std::format!("{e}").contains("core 2 does not exist"), "{e}");
    let e = check_fits(&vms, 4, 700 << 20).unwrap_err();
    assert!(std::format!("{e}").contains("need 768 MiB"), "{e}");
}

#[test]
fn sizes_and_numbers() {
    assert_eq!(parse_size("768M"), Some(768 << 20));
    assert_eq!(parse_size("1G"), Some(1 << 30));
    assert_eq!(parse_size("64k"), Some(64 << 10));
    assert_eq!(parse_size("0x200000"), Some(2 << 20));
    for bad in ["", "M", "0x", "-1", "1.5G", "1T", "18446744073709551615K"] {
        assert_eq!(parse_size(bad), None, "{bad}");
    }
}

#[test]
fn restart_policy_is_read_and_checked() {
    use crate::vm::restart::RestartPolicy;
    let vms = parse(
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
fn the_restart_backoff_is_configured_per_vm() {
    use crate::vm::restart::BackoffConfig;
    let vms = parse(
        "[vm a]\ncores = 0\nmemory = 2M\nkernel = k\nbackoff = 1s 30s\n\
         [vm b]\ncores = 1\nmemory = 2M\nkernel = k\nbackoff = off\n\
         [vm c]\ncores = 2\nmemory = 2M\nkernel = k\n",
    )
    .unwrap();
    assert_eq!(
        vms[0].backoff,
        BackoffConfig {
            first_ms: 1000,
            max_ms: 30_000
        }
    );
    assert_eq!(vms[1].backoff.first_ms, 0);
    assert_eq!(vms[2].backoff, BackoffConfig::default());
    let e = config_error("[vm a]\ncores = 0\nmemory = 2M\nkernel = k\nbackoff = 5s 1s\n");
    assert!(
        e.contains("line 5") && e.contains("backoff: '5s 1s'"),
        "{e}"
    );
    let twice = "[vm a]\ncores = 0\nmemory = 2M\nkernel = k\nbackoff = off\nbackoff = off\n";
    assert!(config_error(twice).contains("given twice"));
}

#[test]
fn gpio_pins_are_listed_per_vm_and_never_the_boards_supply() {
    let base =
        "[vm a]\ncores = 0\nmemory = 2M\nkernel = k\ndevices = mailbox\nmailbox = gpio-set\n";
    let text = format!("{base}gpio-pins = 128, 130 133\n");
    let vms = parse(&text).unwrap();
    assert_eq!(vms[0].mailbox.gpio_pins, 0b10_0101);
    assert!(vms[0].mailbox.may_set_pin(130) && !vms[0].mailbox.may_set_pin(129));
    for bad in ["131", "132", "134"] {
        let e = config_error(&format!("{base}gpio-pins = 128 {bad}\n"));
        assert!(e.contains("never a VM's"), "{bad}: {e}");
    }
    for bad in ["127", "136", "x", "0x80000000"] {
        let e = config_error(&format!("{base}gpio-pins = {bad}\n"));
        assert!(e.contains("is not an expander pin"), "{bad}: {e}");
    }
    let e = config_error("[vm a]\ncores = 0\nmemory = 2M\nkernel = k\ngpio-pins = 128\n");
    assert!(e.contains("has no 'mailbox' device"), "{e}");
    // Without the key, no pin.
    assert_eq!(parse(base).unwrap()[0].mailbox.gpio_pins, 0);
}

#[test]
fn a_disk_is_a_partition_of_the_card() {
    let vms = parse(
        "[vm a]\ncores = 0\nmemory = 2M\nkernel = k\ndisk = sd:2\n\
         [vm b]\ncores = 1\nmemory = 2M\nkernel = k\ndisk = sd:5, readonly\n\
         [vm c]\ncores = 2\nmemory = 2M\nkernel = k\ndisk = sd:5,ro\n\
         [vm d]\ncores = 3\nmemory = 2M\nkernel = k\n",
    )
    .unwrap();
    assert_eq!(
        vms.iter()
            .map(|v| v.disk.map(|d| (d.partition, d.readonly)))
            .collect::<Vec<_>>(),
        [Some((2, false)), Some((5, true)), Some((5, true)), None]
    );
    assert_eq!(vms[0].disk.unwrap().line, 5);
    let base = "[vm a]\ncores = 0\nmemory = 2M\nkernel = k\n";
    for (bad, why) in [
        ("disk = 2", "expected sd:N"),
        ("disk = sd:", "must be a number"),
        ("disk = sd:0", "numbered 1-4"),
        ("disk = sd:65", "numbered 1-4"),
        ("disk = sd:-1", "must be a number"),
        ("disk = sd:2, rw", "then readonly and/or a size"),
        ("disk = sd:2, readonly, x", "then readonly and/or a size"),
        ("disk = sd:2, 512M, 1G", "then readonly and/or a size"),
        ("disk = sd:2, ro, ro", "then readonly and/or a size"),
        ("disk = sd:2, 12q", "must be a size"),
        ("disk = sd:2, 1000", "at least 1M"),
        ("disk = sd:1", "boot partition"),
        ("disk = mmc:2", "expected sd:N"),
    ] {
        let e = config_error(&format!("{base}{bad}\n"));
        assert!(e.contains("line 5") && e.contains(why), "{bad}: {e}");
    }
    assert!(parse(&format!("{base}disk = sd:1, readonly\n")).is_ok());
    let d = parse(&format!("{base}disk = sd:6, readonly, 512M\n")).unwrap()[0]
        .disk
        .unwrap();
    assert_eq!(
        (d.partition, d.readonly, d.size),
        (6, true, Some(512 << 20))
    );
    let d = parse(&format!("{base}disk = sd:6, 1G\n")).unwrap()[0]
        .disk
        .unwrap();
    assert_eq!((d.readonly, d.size), (false, Some(1 << 30)));
    // A writable partition is one VM's.
    let two = "[vm a]\ncores = 0\nmemory = 2M\nkernel = k\ndisk = sd:2\n\
               [vm b]\ncores = 1\nmemory = 2M\nkernel = k\ndisk = sd:2, readonly\n";
    let e = config_error(two);
    assert!(e.contains("sd:2 is the disk of both 'a' and 'b'"), "{e}");
    let e = config_error(&format!("{base}disk = sd:2\ndisk = sd:3\n"));
    assert!(e.contains("given twice"), "{e}");
}

#[test]
fn a_network_interface_on_a_lan() {
    let base = "[vm a]\ncores = 0\nmemory = 4M\nkernel = k\n";
    let text = std::format!("{base}net = lan0\n");
    let vms = parse(&text).unwrap();
    let n = vms[0].net.unwrap();
    assert_eq!((n.lan, n.bridge, n.mac, n.ip), ("lan0", false, None, None));
    assert_eq!(n.mac_for("a"), crate::net::mac_from_name("a"));
    assert_eq!(n.ip_for(1), ([10, 0, 0, 2], 24));
    let text = std::format!(
        "{base}net = lan1, bridge\nnet-mac = 02:00:00:00:00:09\nnet-ip = 192.168.7.1/16\n"
    );
    let vms = parse(&text).unwrap();
    let n = vms[0].net.unwrap();
    assert!(n.bridge);
    assert_eq!(n.mac_for("a"), [2, 0, 0, 0, 0, 9]);
    assert_eq!(n.ip_for(0), ([192, 168, 7, 1], 16));
    for (bad, want) in [
        ("net = lan 0\n", "net: 'lan 0'"),
        ("net = lan0, router\n", "net: 'lan0, router'"),
        ("net = lan0\nnet = lan1\n", "'net' is given twice"),
        ("net-mac = 02:00:00:00:00:01\n", "has no 'net' line"),
        ("net-ip = 10.0.0.1/24\n", "has no 'net' line"),
        ("net = lan0\nnet-mac = 01:00:00:00:00:01\n", "not a unicast"),
        ("net = lan0\nnet-mac = 00:00:00:00:00:00\n", "not a unicast"),
        ("net = lan0\nnet-ip = 10.0.0.256/24\n", "net-ip"),
        ("net = lan0\nnet-ip = 10.0.0.1\n", "net-ip"),
        ("net = lan0\nnet-ip = 10.0.0.1/31\n", "net-ip"),
    ] {
        let e = parse(&std::format!("{base}{bad}")).unwrap_err();
        assert!(e.msg.contains(want), "{bad}: {e}");
    }
}

#[test]
fn two_interfaces_on_one_lan_need_different_macs_and_addresses() {
    let two = |extra_a: &str, extra_b: &str| {
        std::format!(
            "[vm a]\ncores = 0\nmemory = 4M\nkernel = k\nnet = lan0\n{extra_a}[vm b]\ncores = 1\nmemory = 4M\nkernel = k\n{extra_b}"
        )
    };
    assert!(parse(&two("", "net = lan0\n")).is_ok());
    let e = parse(&two(
        "net-mac = 02:00:00:00:00:01\n",
        "net = lan0\nnet-mac = 02:00:00:00:00:01\n",
    ))
    .unwrap_err();
    assert!(e.msg.contains("same MAC"), "{e}");
    // The same MAC on another LAN is fine.
    assert!(parse(&two(
        "net-mac = 02:00:00:00:00:01\n",
        "net = lan1\nnet-mac = 02:00:00:00:00:01\n"
    ))
    .is_ok());
    // a's default is 10.0.0.1.
    let e = parse(&two("", "net = lan0\nnet-ip = 10.0.0.1/24\n")).unwrap_err();
    assert!(e.msg.contains("same address 10.0.0.1"), "{e}");
}

#[test]
fn passthrough_identity_and_trust_are_read() {
    let vms = parse(
        "[vm r]\ncores = 0\nmemory = 256M, identity\nkernel = k\ntrust = dma\n\
         passthrough = /soc/usb@7e980000, host\npassthrough = i2c@7e804000\n",
    )
    .unwrap();
    let v = &vms[0];
    assert!(v.identity && v.trust_dma);
    assert_eq!(v.memory, 256 << 20);
    assert_eq!(
        v.passthrough,
        [
            Passthrough {
                name: "/soc/usb@7e980000",
                host: true,
                line: 6
            },
            Passthrough {
                name: "i2c@7e804000",
                host: false,
                line: 7
            }
        ]
    );
    let plain = parse("[vm p]\ncores = 0\nmemory = 64M\nkernel = k\n").unwrap();
    assert!(!plain[0].identity && !plain[0].trust_dma && plain[0].passthrough.is_empty());
}

#[test]
fn passthrough_lines_are_checked() {
    let head = "[vm r]\ncores = 0\nmemory = 64M\nkernel = k\n";
    let mut many = String::from(head);
    for i in 0..9 {
        many.push_str(&std::format!("passthrough = /soc/d@{i}\n"));
    }
    for (tail, want) in [
        (
            "passthrough =\n",
            "passthrough: expected a device-tree node path",
        ),
        ("passthrough = /soc/a b\n", "passthrough: expected"),
        (
            "passthrough = /soc/usb, device\n",
            "the only option is 'host'",
        ),
        (
            "passthrough = usb\npassthrough = usb\n",
            "'usb' is given twice",
        ),
        ("trust = everything\n", "trust: 'everything' is not a trust"),
        ("trust = dma\ntrust = dma\n", "'trust' is given twice"),
    ] {
        let text = std::format!("{head}{tail}");
        let e = parse(&text).unwrap_err();
        assert!(e.msg.contains(want), "{tail:?}: {e}");
        assert!(e.line >= 5, "{tail:?}: the line is named");
    }
    assert!(parse(&many).unwrap_err().msg.contains("at most 8 devices"));
    let e = parse("[vm r]\ncores = 0\nmemory = 64M, wherever\nkernel = k\n").unwrap_err();
    assert!(
        e.msg.contains("unknown option 'wherever'") && e.line == 3,
        "{e}"
    );
    assert!(parse("[vm r]\ncores = 0\nmemory = , identity\nkernel = k\n").is_err());
}
