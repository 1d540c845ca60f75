//! A Linux guest end to end on QEMU raspi4b: the stock Debian arm64 kernel
//! with a busybox initramfs under the hypervisor (guests/linux.conf).

use pivisor_harness::{artifact, dtb, Boot};
use std::time::Duration;

/// The per-CPU counts of the /proc/interrupts row that ends with `name`.
fn row(text: &str, name: &str) -> Vec<u64> {
    text.lines()
        .find(|l| l.trim_end().ends_with(name) && l.contains(':'))
        .map(|l| {
            l.split(':')
                .nth(1)
                .unwrap_or("")
                .split_whitespace()
                .take(4)
                .map(|n| n.parse().unwrap_or(0))
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn debian_linux_boots_smp_to_an_interactive_shell() {
    let o = Boot::new(artifact("PIVISOR_IMAGE"))
        .dtb(dtb("bcm2711-rpi-4-b.dtb"))
        .initrd(artifact("PIVISOR_BUNDLE_LINUX"))
        .timeout(Duration::from_secs(400))
        .type_after(
            r"LINUX ready",
            b"cat /proc/interrupts; echo TYPED-$((6*7))\r",
        )
        .type_after(r"(?m)^TYPED-42", b"poweroff -f\r")
        .run_until_match(r"VM 'linux': SYSTEM_OFF from vCPU 0");
    o.reject(r"ERROR|FAULT|PANIC|parked|Kernel panic|Oops");
    // The firmware driver probed over the emulated mailbox (interrupt
    // driven) and QEMU's firmware answered through the forwarding path.
    o.expect(r"bcm2835-mbox fe00b880.mailbox: mailbox enabled")
        .expect(r"raspberrypi-firmware soc:firmware: Attached to firmware from");
    // SMP through PSCI CPU_ON, the virtual timer ticking, the console.
    o.expect(r"LINUX self-check: cpus 4 mem_kb \d+ timer_ticks_in_1s \d+ firmware 'Attached to firmware from [^']+'")
        .expect(r"LINUX drivers: bcm2835-mbox raspberrypi-firmware raspberrypi-clk raspberrypi-exp-gpio uart-pl011\n")
        .expect(r"LINUX ready: Linux 6\.")
        .expect(r"printk: console \[ttyAMA0\] enabled");
    let ticks = row(&o.serial, "arch_timer");
    assert!(
        ticks.len() == 4 && ticks.iter().all(|&n| n > 0),
        "timer interrupts on every CPU: {ticks:?}\n{}",
        o.serial
    );
    let ipis = row(&o.serial, "Function call interrupts");
    let resched = row(&o.serial, "Rescheduling interrupts");
    assert!(
        ipis.len() == 4 && resched.len() == 4 && (0..4).all(|c| ipis[c] + resched[c] > 0),
        "IPIs on every CPU: {ipis:?} {resched:?}"
    );
    // The typed command ran (its output, not its echo) and poweroff went
    // through PSCI SYSTEM_OFF.
    o.expect(r"(?m)^TYPED-42").expect(r"reboot: Power down");
}
