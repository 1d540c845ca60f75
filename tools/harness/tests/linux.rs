//! Linux guests end to end on QEMU raspi4b under the hypervisor: the small
//! kernel built from Debian's linux-source (guests/linux.conf, the default
//! bundle; two VMs: guests/linux-two.conf) and Debian's stock kernel
//! (guests/linux-debian.conf), with the busybox initramfs and
//! pv-selfcheck.

use pivisor_harness::report::printk_us;
use pivisor_harness::{artifact, dtb, Boot};
use std::time::Duration;

/// pivisor booting a Linux bundle (generous timeout: plain TCG on a
/// busy machine).
fn linux(bundle: &str) -> Boot {
    let b = Boot::new(artifact("PIVISOR_IMAGE"))
        .dtb(dtb("bcm2711-rpi-4-b.dtb"))
        .initrd(artifact(bundle))
        .timeout(Duration::from_secs(400));
    // The default bundle's VM has a disk: partition 2 of its card (a
    // scratch copy of the one `make sd` writes).
    if bundle == "PIVISOR_BUNDLE_LINUX" {
        b.sd_copy_of(artifact("PIVISOR_SD_IMAGE"))
    } else {
        b
    }
}

/// The per-CPU counts of the /proc/interrupts row that ends with `name`.
fn row(text: &str, name: &str) -> Vec<u64> {
    text.lines()
        .find(|l| {
            l.trim_end().ends_with(name)
                && l.split(':')
                    .nth(1)
                    .and_then(|r| r.split_whitespace().next())
                    .is_some_and(|n| n.parse::<u64>().is_ok())
        })
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
    // The default bundle: the PL011 passed through to Linux (its console),
    // the hypervisor's lines on the mini UART.
    let o = linux("PIVISOR_BUNDLE_LINUX")
        .type_after(
            r"LINUX ready",
            b"cat /proc/interrupts; echo TYPED-$((6*7))\r",
        )
        .type_after(r"(?m)^TYPED-42", b"pv-bench M4\r")
        .type_after(r"(?m)^BENCH done", b"reboot -f\r")
        .type_after(
            r"(?s)reboot: Restarting system.*LINUX ready",
            b"poweroff -f\r",
        )
        .run_until_match(r"VM 'linux': SYSTEM_OFF from vCPU 0");
    o.reject(r"Kernel panic|Oops|BUG:|WARNING:");
    o.reject_aux(r"ERROR|FAULT|PANIC|parked");
    o.expect_aux(r"console: hypervisor log on the mini UART; the PL011 is VM 'linux''s");
    // pv-bench finds the exit-counter page and counts the exits of its
    // 100,000 system calls (timer ticks only: a system call never exits).
    o.expect(r"BENCH start exit_counters=yes")
        .expect(r"BENCH M4 getppid n=100000 ns=[\d.]+ exits=\d+");
    // The small kernel has KVM built in (it is the benchmarks' KVM host
    // natively); entered at EL1 it must find no EL2 to take.
    o.expect(r"kvm \[\d+\]: HYP mode not available");
    // The firmware driver probed over the emulated mailbox (interrupt
    // driven) and QEMU's firmware answered through the forwarding path.
    o.expect(r"bcm2835-mbox fe00b880.mailbox: mailbox enabled")
        .expect(r"raspberrypi-firmware soc:firmware: Attached to firmware from");
    // The self-check (pv-selfcheck, Rust): SMP through PSCI CPU_ON, the
    // virtual timer, `sleep 1` one second of guest time (it passes at
    // 0.99-1.5 s), the firmware attached, the drivers bound, the console
    // on the real PL011.
    o.expect(r#"SELFCHECK cpus=4 online=0-3 mem_kb=\d+ timer_ticks_1s=\d+ sleep_1s_us=1\d{6} firmware="[^"]+" drivers=bcm2835-mbox,raspberrypi-firmware,raspberrypi-clk,raspberrypi-exp-gpio,uart-pl011 result=pass"#)
        .expect(r"LINUX ready: Linux 6\.\d+\.\d+ on pivisor VM linux")
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
    let uart = row(&o.serial, "uart-pl011");
    assert!(
        uart.iter().sum::<u64>() > 0,
        "the typed line came in by interrupt: {uart:?}"
    );
    // The typed command ran (its output, not its echo); reboot -f went
    // through PSCI SYSTEM_RESET and Linux came back; poweroff -f through
    // SYSTEM_OFF.
    o.expect(r"(?m)^TYPED-42");
    o.expect_aux(r"VM 'linux': SYSTEM_RESET from vCPU \d: reloading \(reset 1\)");
    assert_eq!(
        o.count(r"LINUX ready"),
        2,
        "Linux booted again after reboot -f"
    );
    o.expect(r"reboot: Power down");
}

#[test]
fn two_linux_vms_side_by_side_share_the_console() {
    // Mux layout: 'left' has the focus, 'right' prints whole prefixed
    // lines until Ctrl-] 1 moves the console (and the keyboard) to it;
    // then 'right' crashes and reboots while 'left' carries on.
    // The focused VM's own lines may be broken by a background line (they
    // pass through byte by byte; that is the design), so left's facts are
    // checked through a typed command once both are up.
    let check =
        "echo L-$(grep -c ^processor /proc/cpuinfo)-$(dmesg | grep -c 'Attached to firmware')\r";
    let o = linux("PIVISOR_BUNDLE_LINUX_TWO")
        .type_after(r"(?m)^\[right\] LINUX ready", b"")
        .type_after(r"VM left \(", check.as_bytes())
        .type_after(r"(?m)^L-\d-\d", b"\x1d1")
        .type_after(
            r"console -> VM 1 'right'",
            check.replace("L-", "R-").as_bytes(),
        )
        .type_after(r"(?m)^R-\d-\d", b"echo c > /proc/sysrq-trigger\r")
        .type_after(r"VM 'right': SYSTEM_RESET", b"\x1d0")
        .type_after(
            r"(?s)SYSTEM_RESET.*console -> VM 0 'left'",
            b"echo LEFT-ALIVE-$((3*3))\r",
        )
        .type_after(r"(?m)^LEFT-ALIVE-9", b"")
        // Then right's watchdog feeder is killed: its SP805 expires and its
        // policy (restart) boots it again.
        .type_after(r"(?s)SYSTEM_RESET.*\[right\] LINUX ready", b"\x1d1")
        .type_after(
            r"(?s)SYSTEM_RESET.*console -> VM 1 'right'",
            b"killall -9 watchdog\r",
        )
        .type_after(r"VM 'right': crashed: its watchdog expired", b"\x1d0")
        .type_after(r"(?s)watchdog expired.*console -> VM 0 'left'", b"")
        .type_after(
            r"(?s)watchdog expired.*\[right\] LINUX ready",
            b"poweroff -f\r",
        )
        .run_until_match(r"VM 'left': SYSTEM_OFF from vCPU 0");
    o.reject(r"ERROR|FAULT|PANIC|parked");
    o.expect(r#"(?m)^\[right\] SELFCHECK cpus=2 online=0-1 mem_kb=\d+ timer_ticks_1s=\d+ sleep_1s_us=\d+ firmware="[^"]+" drivers=bcm2835-mbox,raspberrypi-firmware,raspberrypi-clk,raspberrypi-exp-gpio,uart-pl011 result=pass"#)
        .expect(r"(?m)^\[right\] LINUX ready: Linux 6\..* on pivisor VM right ");
    // Each VM: 2 CPUs, the firmware attached once; each typed line reached
    // the focused VM only, and its output came unprefixed.
    o.expect(r"(?m)^L-2-1$")
        .expect(r"(?m)^R-2-1$")
        .reject(r"\[right\] L-|\[left\] R-");
    // A crash in one VM (panic=1) becomes a SYSTEM_RESET the hypervisor
    // reports; the VM boots again while the other keeps running.
    o.expect(r"Kernel panic - not syncing: sysrq triggered crash")
        .expect(r"VM 'right': SYSTEM_RESET from vCPU \d: reloading \(reset 1; policy restart\)")
        .expect(r"(?m)^LEFT-ALIVE-9$")
        .expect(r"(?s)SYSTEM_RESET from vCPU.*\[right\] SELFCHECK cpus=2 [^\n]*result=pass")
        .expect(r"VM 'left': exits since start: \d+ \(irq \d+");
    // The watchdog: Linux's sp805-wdt drives pivisor's SP805, busybox
    // feeds it; killed, the feeder stops and the VM is restarted.
    o.expect(r"(?m)^\[right\] WATCHDOG fed by busybox watchdog")
        .reject(r"\[left\] WATCHDOG")
        .expect(r"VM 'right': crashed: its watchdog expired \(seen on vCPU \d\): reloading \(reset 2; policy restart\)")
        .expect(r"(?s)watchdog expired.*\[right\] SELFCHECK cpus=2 [^\n]*result=pass");
}

#[test]
fn debian_stock_kernel_runs_as_the_distribution_guest() {
    // Debian's own arm64 kernel (modules and all, nothing built for
    // pivisor) passes the same self-check.
    let o = linux("PIVISOR_BUNDLE_LINUX_DEBIAN")
        .type_after(r"LINUX ready", b"poweroff -f\r")
        .run_until_match(r"VM 'debian': SYSTEM_OFF from vCPU 0");
    o.reject(r"Kernel panic|Oops|BUG:");
    o.reject_aux(r"ERROR|FAULT|PANIC|parked");
    o.expect(r"raspberrypi-firmware soc:firmware: Attached to firmware from")
        .expect(r#"SELFCHECK cpus=4 online=0-3 mem_kb=\d+ timer_ticks_1s=\d+ sleep_1s_us=\d+ firmware="[^"]+" drivers=bcm2835-mbox,raspberrypi-firmware,raspberrypi-clk,raspberrypi-exp-gpio,uart-pl011 result=pass"#)
        .expect(r"LINUX ready: Linux 6\.\d+\.\d+-\d+-arm64 on pivisor VM debian")
        // KVM is built in; entered at EL1 it must find no EL2 to take.
        .expect(r"kvm \[\d+\]: HYP mode not available")
        .expect(r"reboot: Power down");
    // Its virtio_net module from the initramfs: eth0 on lan0 with the
    // address from pivisor.ip=, and the SSH server (dropbear, glibc).
    o.expect(r"(?m)^NET eth0 10\.0\.0\.1/24 mac 02:[0-9a-f:]{14} mtu 1500")
        .expect(r"(?m)^SSH dropbear listening on 10\.0\.0\.1:22");
}

#[test]
fn boot_cost_native_vs_virtualized_in_deterministic_time() {
    // The same small kernel and initramfs, booted by QEMU directly
    // (native) and under pivisor, both under -icount shift=0: guest time
    // is one nanosecond per instruction, exact and repeatable. Figures
    // are printed, not asserted (a benchmark, not a timed test).
    let native = pivisor_harness::native_linux()
        .icount()
        .timeout(Duration::from_secs(400))
        .run_until_match(r"Run /init as init process");
    let virt = linux("PIVISOR_BUNDLE_LINUX")
        .icount()
        .type_after(r"LINUX ready", b"poweroff -f\r")
        .run_until_match(r"VM 'linux': exits since start");
    const INIT: &str = r"Run /init as init process";
    // Natively the kernel also probes the board's whole tree, which the
    // VM's tree leaves out; from the clocksource switch on, both boots
    // run the same drivers and unpack the same initramfs.
    const SAME: &str = r"clocksource: Switched to clocksource arch_sys_counter";
    let at = |o: &pivisor_harness::Output, line| printk_us(&o.serial, line);
    let (n, v) = (at(&native, INIT), at(&virt, INIT));
    let (ns, vs) = (at(&native, SAME), at(&virt, SAME));
    assert!(
        n.is_some() && v.is_some() && ns.is_some() && vs.is_some(),
        "both reach /init: native {n:?} (switch {ns:?}), virtualized {v:?} (switch {vs:?})"
    );
    let (n, v) = (n.unwrap_or(0), v.unwrap_or(0));
    let (nl, vl) = (n - ns.unwrap_or(0).min(n), v - vs.unwrap_or(0).min(v));
    let exits = regex::Regex::new(r"VM 'linux': exits since start: ([^\n]+)")
        .unwrap()
        .captures(&virt.aux)
        .map_or(String::from("?"), |c| c[1].to_string());
    let ratio = |a: u64, b: u64| a as f64 / b.max(1) as f64;
    eprintln!(
        "BOOTCOST small kernel to /init under -icount: native {n} us, virtualized {v} us, ratio {:.3}; \
         clocksource switch to /init (the same work): native {nl} us, virtualized {vl} us, ratio {:.3}; \
         VM exits start to poweroff: {exits}",
        ratio(v, n),
        ratio(vl, nl)
    );
}

/// The KVM yardstick end to end: the small kernel natively at EL2 as the
/// host, pv-vmm running the default bundle's VM (the same kernel,
/// initramfs, device tree and devices) under KVM. Input typed on the
/// host's console reaches the guest's shell through pv-vmm's PL011 (by
/// interrupt), pv-bench reads pv-vmm's exit-counter page, and poweroff
/// ends the VM through PSCI SYSTEM_OFF.
#[test]
fn linux_under_kvm_runs_pv_bench() {
    let o = pivisor_harness::kvm_host("linux")
        .sd_copy_of(artifact("PIVISOR_SD_IMAGE"))
        .timeout(Duration::from_secs(400))
        .type_after(r"LINUX ready", b"pv-bench M4\r")
        .type_after(r"(?m)^BENCH done", b"poweroff -f\r")
        .run_until_match(r"pv-vmm: exits: \d+ in all|KVM host: ");
    o.reject(r"Kernel panic|Oops|BUG:|WARNING:|external abort injected|unexpected exit");
    o.expect(r"KVM host ready: Linux 6\.\d+")
        .expect(r"pv-vmm: VM 'linux': 4 vCPUs, 768 MiB")
        // The guest is the bundle's: pivisor's device tree and bootargs.
        .expect(r"LINUX ready: Linux 6\.\d+\.\d+ on pivisor VM linux")
        .expect(r"SELFCHECK cpus=4 online=0-3")
        .expect(r"BENCH start exit_counters=yes")
        .expect(r"BENCH M4 getppid n=100000 ns=[\d.]+ exits=\d+")
        .expect(r"pv-vmm: VM 'linux' powered off \(PSCI SYSTEM_OFF\)");
}

#[test]
fn the_monitor_lists_the_vms_and_their_counters_grow() {
    // Ctrl-] m opens the monitor on the hypervisor's console: `list`
    // shows both VMs running, `stats left --json` twice shows left's exits
    // growing, unknown commands and VM names get errors, `log` and `info`
    // answer; Ctrl-] 0 goes back to left, whose shell answers as before.
    let o = linux("PIVISOR_BUNDLE_LINUX_TWO")
        .type_after(r"(?m)^\[right\] LINUX ready", b"")
        .type_after(
            r"VM left \(",
            b"(i=0; while [ $i -lt 300 ]; do sleep 1; i=$((i+1)); echo TICK-$i; done) &\r",
        )
        .type_after(r"TICK-1", b"\x1dm")
        .type_after(r"pivisor> ", b"list\r")
        .type_after(r"(?m)^1\s+right\s+running", b"stats left --json\r")
        // left keeps running with the monitor open: its ticks arrive as
        // background lines, and its exits grow.
        .type_after(
            r#"(?s)MONITOR \{"vm":"left".*\[left\] TICK-"#,
            b"stats left --json\r",
        )
        .type_after(
            r#"(?s)MONITOR \{"vm":"left".*MONITOR \{"vm":"left""#,
            b"frob\r",
        )
        .type_after(r"unknown command 'frob'", b"stats nosuch\r")
        .type_after(r"no VM 'nosuch'", b"log 3\rinfo\r")
        // stop: right's cores leave the guest, its exits stop growing,
        // left goes on; start boots it again; reset reloads it.
        .type_after(r"VM 1 'right': emulated UART", b"stop right\r")
        .type_after(r"VM 'right': stop from the monitor: stopped", b"list\r")
        .type_after(r"(?m)^1\s+right\s+halted", b"stats right --json\r")
        .type_after(
            r#"(?s)MONITOR \{"vm":"right".*\[left\] TICK-"#,
            b"stats right --json\r",
        )
        .type_after(
            r#"(?s)MONITOR \{"vm":"right".*MONITOR \{"vm":"right""#,
            b"start left\r",
        )
        .type_after(r"cannot start VM 'left'", b"stop right\r")
        .type_after(r"cannot stop VM 'right'", b"start right\r")
        .type_after(
            r"(?s)start from the monitor.*\[right\] LINUX ready",
            b"reset right\r",
        )
        .type_after(
            r"(?s)reset from the monitor.*\[right\] LINUX ready",
            b"list\r",
        )
        .type_after(
            r"(?s)reset from the monitor.*\n1\s+right\s+running",
            b"\x1d0",
        )
        .type_after(
            r"(?s)reset from the monitor.*console -> VM 0 'left'",
            b"echo BACK-$((6*7))\r",
        )
        .run_until_match(r"(?m)^BACK-42");
    o.reject(r"ERROR|FAULT|PANIC|parked");
    o.expect(r"\[pivisor: monitor; help lists its commands")
        .expect(r"(?m)^0\s+left\s+running\s+0-1\s+\d+ MiB\s+\S+\s+0\s+-$")
        .expect(r"(?m)^1\s+right\s+running\s+2-3\s+\d+ MiB")
        .expect(r"error: unknown command 'frob' \(help lists the commands\)")
        .expect(r"error: no VM 'nosuch' \(list shows them: left, right\)")
        .expect(r"(?m)^pivisor \d+\.\d+\.\d+")
        .expect(r"board: Raspberry Pi 4")
        .expect(r"console: the hypervisor's PL011, switched");
    // Both snapshots are whole JSON lines; the second counts more exits.
    let text = o.serial.clone();
    if std::env::var_os("PIVISOR_SHOW").is_some() {
        eprintln!("{text}");
    }
    let totals = exit_totals(&text, "left");
    assert_eq!(totals.len(), 2, "two stats lines: {totals:?}");
    assert!(totals[1] > totals[0], "left's exits grew: {totals:?}");
    let right: Vec<u64> = exit_totals(&text, "right");
    assert_eq!(right.len(), 2, "two stats lines of right: {right:?}");
    assert_eq!(right[0], right[1], "a stopped VM makes no exits: {right:?}");
    o.expect(r"error: cannot start VM 'left': it is running \(restart reloads it\)")
        .expect(r"error: cannot stop VM 'right': it is already halted")
        .expect(r"VM 'right': start from the monitor: reloading")
        .expect(r"VM 'right': reset from the monitor: reloading \(reset 1")
        .expect(r"(?m)^1\s+right\s+running\s+2-3\s+\d+ MiB\s+\S+\s+1\s+reset from the monitor$")
        .expect(r"(?m)^1\s+right\s+halted\s+2-3\s+\d+ MiB\s+-\s+0\s+stop from the monitor$");
    // Stopped, right's console is quiet until it is started again.
    let stopped = text
        .split("stop from the monitor: stopped")
        .nth(1)
        .and_then(|t| t.split("start from the monitor").next())
        .unwrap_or("");
    assert!(
        !stopped.contains("[right]"),
        "right printed while stopped:\n{stopped}"
    );
    assert_eq!(
        o.count(r"\[right\] LINUX ready"),
        3,
        "right booted three times"
    );
    assert!(text.contains("\"net_drops\"") || !text.contains("\"net\""));
    // Interrupts injected and the mailbox's tags are counted too.
    o.expect(r#"MONITOR \{"vm":"left"[^\n]*"irqs_injected":[1-9]\d*"#)
        .expect(r#"MONITOR \{"vm":"left"[^\n]*"mailbox":\{"local":\d+,"forwarded":[1-9]\d*,"refused":\d+\}"#);
}

/// The exit totals of VM `vm`'s `MONITOR` lines, in order.
fn exit_totals(text: &str, vm: &str) -> Vec<u64> {
    let head = format!("MONITOR {{\"vm\":\"{vm}\"");
    text.lines()
        .filter(|l| l.starts_with(&head))
        .map(|l| {
            let exits = l
                .split("\"exits\":{")
                .nth(1)
                .unwrap()
                .split('}')
                .next()
                .unwrap();
            exits
                .split(',')
                .map(|kv| kv.split(':').nth(1).unwrap().parse::<u64>().unwrap())
                .sum()
        })
        .collect()
}
