//! The VMs' network end to end on QEMU raspi4b: two Linux VMs on lan0 of
//! the hypervisor's switch (guests/linux-two.conf), each configuring eth0
//! from `pivisor.ip=` in its /init; ping both ways, a 16 MiB TCP transfer
//! with busybox nc compared by checksum, SSH from one to the other.

use pivisor_harness::{artifact, dtb, Boot};
use regex::Regex;
use std::time::Duration;

fn linux(bundle: &str) -> Boot {
    Boot::new(artifact("PIVISOR_IMAGE"))
        .dtb(dtb("bcm2711-rpi-4-b.dtb"))
        .initrd(artifact(bundle))
        .timeout(Duration::from_secs(600))
}

/// The first capture of `re` in `text`.
fn cap(text: &str, re: &str) -> Option<String> {
    Regex::new(re)
        .expect("valid regex")
        .captures(text)
        .and_then(|c| c.get(1))
        .map(|m| m.as_str().to_string())
}

#[test]
fn two_linux_vms_ping_and_move_16_mib_over_lan0() {
    // Typed commands echo on the console, so each marker the script waits
    // for is computed by the shell ($((1+1)) prints 2), never typed.
    let o = linux("PIVISOR_BUNDLE_LINUX_TWO")
        .type_after(r"(?m)^\[right\] LINUX ready", b"")
        .type_after(
            r"(?m)^LINUX ready",
            b"ping -c 3 10.0.0.2 && echo PING-L-$((1+1))\r",
        )
        .type_after(r"(?m)^PING-L-2", b"\x1d1")
        .type_after(
            r"console -> VM 1 'right'",
            b"ping -c 3 10.0.0.1 && echo PING-R-$((1+1))\r",
        )
        .type_after(
            r"(?m)^PING-R-2",
            // busybox nc ends the connection when its stdin ends: the
            // listener's never does (a background job's may be /dev/null).
            b"tail -f /dev/null | nc -l -p 5000 > /tmp/rx & echo LISTEN-$((2+2))\r",
        )
        .type_after(r"(?m)^LISTEN-4", b"\x1d0")
        .type_after(
            r"(?s)LISTEN-4.*console -> VM 0 'left'",
            b"head -c 16777216 /dev/urandom > /tmp/blob; echo SENT-$(wc -c < /tmp/blob)-$(md5sum < /tmp/blob | cut -c1-32); nc 10.0.0.2 5000 < /tmp/blob &\r",
        )
        .type_after(r"(?m)^SENT-\d+-[0-9a-f]{32}", b"\x1d1")
        .type_after(
            r"(?s)SENT-\d+-[0-9a-f]{32}.*console -> VM 1 'right'",
            b"while [ $(wc -c < /tmp/rx) -lt 16777216 ]; do sleep 1; done; echo GOT-$(wc -c < /tmp/rx)-$(md5sum < /tmp/rx | cut -c1-32)\r",
        )
        // SSH from right to left with the build's key, no password.
        .type_after(
            r"(?m)^GOT-\d+-[0-9a-f]{32}",
            b"ssh root@10.0.0.1 'echo SSH-$((6+1))-$(cut -d\" \" -f3 /proc/device-tree/model)'\r",
        )
        .run_until_match(r"(?m)^SSH-7-\S+");
    o.reject(r"ERROR|FAULT|PANIC|parked|DEVICE_NEEDS_RESET");
    // Each VM's address from the command line, shown by the hypervisor
    // and by the guest.
    o.expect(r"VM 0 'left': eth0 on lan0, MAC 02:[0-9a-f:]{14}, address 10\.0\.0\.1/24")
        .expect(r"VM 1 'right': eth0 on lan0, MAC 02:[0-9a-f:]{14}, address 10\.0\.0\.2/24")
        .expect(r"(?m)^NET eth0 10\.0\.0\.1/24 mac 02:[0-9a-f:]{14} mtu 1500")
        .expect(r"(?m)^\[right\] NET eth0 10\.0\.0\.2/24 mac 02:[0-9a-f:]{14} mtu 1500");
    // Ping both ways, nothing lost.
    o.expect(r"3 packets transmitted, 3 packets received, 0% packet loss")
        .expect(r"(?m)^PING-L-2")
        .expect(r"(?m)^PING-R-2");
    // 16 MiB arrived intact.
    let sent = cap(&o.serial, r"(?m)^SENT-16777216-([0-9a-f]{32})").expect("SENT line, 16 MiB");
    let got = cap(&o.serial, r"(?m)^GOT-16777216-([0-9a-f]{32})").expect("GOT line, 16 MiB");
    assert_eq!(sent, got, "the 16 MiB arrived with another checksum");
    // Both run an SSH server; right's `ssh root@10.0.0.1` ran on left.
    o.expect(r"(?m)^SSH dropbear listening on 10\.0\.0\.1:22")
        .expect(r"(?m)^\[right\] SSH dropbear listening on 10\.0\.0\.2:22")
        .expect(r"(?m)^SSH-7-left");
}

#[test]
fn lans_are_isolated_and_a_hostile_vm_cannot_disturb_its_lan() {
    // guests/linux-lans.conf: 'hostile' (0) attacks lan0 for 45 s from its
    // start; meanwhile 'a' (Ctrl-] 1) pings 'b' (Ctrl-] 2). Once the
    // attack is over a sends b 16 MiB; 'c' (Ctrl-] 3), alone on lan1,
    // tries to reach them. (During a broadcast flood the victims' own
    // traffic mostly finds their receive rings full: the switch has no
    // storm control yet, so the transfer is not timed against it.)
    let o = linux("PIVISOR_BUNDLE_LINUX_LANS")
        .type_after(r"(?m)^\[b\] LINUX ready", b"")
        .type_after(r"(?m)^\[c\] LINUX ready", b"")
        .type_after(
            r"(?m)^LINUX ready",
            b"ping -c 5 -W 2 10.0.0.3; echo PING-A-$((1+1))\r",
        )
        .type_after(r"(?m)^PING-A-2", b"")
        .type_after(r"NETHOSTILE done", b"\x1d2")
        .type_after(
            r"console -> VM 2 'b'",
            b"tail -f /dev/null | nc -l -p 5000 > /tmp/rx & echo LISTEN-$((2+2))\r",
        )
        .type_after(r"(?m)^LISTEN-4", b"\x1d1")
        .type_after(
            r"(?s)LISTEN-4.*console -> VM 1 'a'",
            b"head -c 16777216 /dev/urandom > /tmp/blob; echo SENT-$(wc -c < /tmp/blob)-$(md5sum < /tmp/blob | cut -c1-32); nc 10.0.0.3 5000 < /tmp/blob &\r",
        )
        .type_after(r"(?m)^SENT-\d+-[0-9a-f]{32}", b"\x1d2")
        .type_after(
            r"(?s)SENT-\d+-[0-9a-f]{32}.*console -> VM 2 'b'",
            b"while [ $(wc -c < /tmp/rx) -lt 16777216 ]; do sleep 1; done; echo GOT-$(wc -c < /tmp/rx)-$(md5sum < /tmp/rx | cut -c1-32)\r",
        )
        .type_after(r"(?m)^GOT-\d+-[0-9a-f]{32}", b"\x1d3")
        .type_after(
            r"(?s)GOT-\d+-[0-9a-f]{32}.*console -> VM 3 'c'",
            b"ping -c 2 -W 1 10.0.0.2; ping -c 2 -W 1 10.0.0.3; echo C-$((5+5)); poweroff -f\r",
        )
        .run_until_match(r"VM 'c': network: [^\n]*\n");
    o.reject(r"ERROR|FAULT|PANIC|parked");
    // The figures, for the log.
    for l in o
        .serial
        .lines()
        .filter(|l| l.contains("NETHOSTILE") || l.contains("network:") || l.contains("packets"))
    {
        eprintln!("{l}");
    }
    o.expect(r"NETHOSTILE start up=true")
        .expect(r"NETHOSTILE done rounds=[1-9]\d* flood=[1-9]\d* [^\n]*result=ok");
    // Every kind of bad frame was dropped and counted at the hostile port.
    for why in ["runt", "oversized", "bad-header", "spoofed", "storm"] {
        o.expect(&format!(r"VM 'hostile': network: [^\n]*\b{why} [1-9]"));
    }
    // Its descriptors outside RAM were the device's problem, rate-limited.
    o.expect(r"VM 'hostile': virtio-net: buffer 0x[0-9a-f]+\+0x[0-9a-f]+ is not in the VM's RAM");
    // The victims' devices never needed a reset, and after the attack
    // their 16 MiB arrived intact.
    o.reject(r"VM '[abc]': virtio-net");
    let sent = cap(&o.serial, r"(?m)^SENT-16777216-([0-9a-f]{32})").expect("SENT line, 16 MiB");
    let got = cap(&o.serial, r"(?m)^GOT-16777216-([0-9a-f]{32})").expect("GOT line, 16 MiB");
    assert_eq!(
        sent, got,
        "the victims' 16 MiB arrived with another checksum"
    );
    // c, alone on lan1, reached nobody: its frames went nowhere and
    // nothing came to it (not even the hostile VM's floods).
    o.expect(r"(?m)^2 packets transmitted, 0 packets received, 100% packet loss")
        .expect(r"VM 'c': network: tx 0 frames 0 bytes, rx 0 frames 0 bytes, dropped [1-9]\d* \(no-destination [1-9]\d*\)");
}
