//! Guests at EL1 on QEMU raspi4b: the bare-metal test guest under the
//! hypervisor, alone (four vCPUs) and as two VMs side by side, and bundles
//! the hypervisor must refuse.

use pivisor_harness::{artifact, dtb, Boot, Output};
use std::time::Duration;

fn boot(bundle: &str) -> Boot {
    Boot::new(artifact("PIVISOR_IMAGE"))
        .dtb(dtb("bcm2711-rpi-4-b.dtb"))
        .initrd(artifact(bundle))
}

/// Every check the test guest makes, by name (cpu-on per secondary vCPU).
const CHECKS: &[&str] = &[
    "testdev-id",
    "dt-cpus",
    "psci-version",
    "smccc-version",
    "psci-features",
    "arch-workarounds",
    "migrate-info-type",
    "unknown-hvc",
    "smc",
    "mmio-widths",
    "mmio-store",
    "abort-past-ram",
    "abort-write-past-ram",
    "abort-gpio-page",
    "abort-far-ipa",
    "abort-bad-register",
    "sysregs",
    "cpu-on-errors",
    "gic-ids",
    "gic-foreign-lines",
    "vcounter",
    "vtimer-1khz",
    "more-pending-than-lrs",
    "level-resample",
    "edge-latch",
    "sgi-ping-pong",
    "sgi-filters",
    "sgi-server-off",
    "mbox-firmware",
    "mbox-arm-memory",
    "mbox-refused",
    "mbox-malformed",
    "mbox-hostile",
    "mbox-irq",
    "ram",
];

fn guest_passed(o: &Output, vm: &str, vcpus: usize) {
    for c in CHECKS {
        o.expect(&format!(r"\[{vm}\] TEST {c} ok\n"));
    }
    assert_eq!(
        o.count(&format!(r"\[{vm}\] TEST cpu-on ok")),
        vcpus - 1,
        "{vm}: CPU_ON of every secondary vCPU"
    );
    assert_eq!(
        o.count(&format!(r"\[{vm}\] TEST cpu-on-again ok")),
        vcpus - 1,
        "{vm}: off then on again"
    );
    // The interrupt figures: 1000 virtual timer ticks at 1 kHz (the guest
    // checks the mean spacing within 5%), 200 SGI round trips.
    o.expect(&format!(
        r"\[{vm}\] TIMER ticks 1000 mean_spacing_ns \d+ max_spacing_ns \d+ period_ns 1000000"
    ))
    .expect(&format!(
        r"\[{vm}\] SGI ping-pong round_trips 200 total_ns \d+ per_round_trip_ns \d+"
    ));
    // The mailbox: what QEMU's firmware model answers (revision 346337,
    // board revision 0xb03115 for raspi4b) came through the forwarding
    // path.
    o.expect(&format!(
        r"\[{vm}\] MBOX firmware_revision 0x548e1 board_revision 0xb03115 board_model 0x0"
    ));
    o.expect(&format!(r"\[{vm}\] RESULT pass \d+; SYSTEM_RESET"))
        .expect(&format!(
            r"VM '{vm}': SYSTEM_RESET from vCPU 0: reloading \(reset 1\)"
        ))
        .expect(&format!(
            r"\[{vm}\] pivisor-testguest: VM \d back after SYSTEM_RESET"
        ))
        .expect(&format!(r"\[{vm}\] TEST reset-scrubbed ok"))
        .expect(&format!(r"\[{vm}\] TEST reset-gic ok"))
        .expect(&format!(r"\[{vm}\] TEST reset ok"))
        .expect(&format!(r"\[{vm}\] TEST reset-devices ok"))
        .expect(&format!(r"\[{vm}\] TEST reset-fp ok"))
        .expect(&format!(r"\[{vm}\] RESULT pass {}; SYSTEM_OFF", vcpus + 4))
        .expect(&format!(
            r"VM '{vm}': SYSTEM_OFF from vCPU 0: stopped; its cores are idle"
        ))
        .reject(&format!(r"\[{vm}\] .*FAIL"));
}

fn hypervisor_clean(o: &Output) {
    // Guest-caused aborts and unknown calls are WARN lines by design; the
    // hypervisor itself must never report an error or a fault.
    o.reject(r"ERROR|FAULT|PANIC|parked");
}

#[test]
fn one_vm_four_vcpus_passes_every_check() {
    let o = boot("PIVISOR_BUNDLE_TEST")
        .type_after(r"(?m)^UART ready", b"ping-1\r")
        .run_until_match(r"SYSTEM_OFF from vCPU 0");
    hypervisor_clean(&o);
    o.expect(r"VM 0 'test': 4 vCPU\(s\) on core\(s\) \[0, 1, 2, 3\], 128 MiB RAM at host 0x[0-9a-f]+ \(VMID 1\)")
        .expect(r"starting the VMs")
        .expect(r"\[test\] pivisor-testguest: VM 0, 4 vCPU\(s\), 128 MiB RAM");
    guest_passed(&o, "test", 4);
    // The refusals are logged, naming the VM and the IPA.
    o.expect(r"WARN  VM 'test': vCPU 0: read of unmapped IPA 0x8001000 \(PC 0x[0-9a-f]+\); injecting an external abort")
        .expect(r"VM 'test': vCPU 0: unknown SMC/HVC function 0x86000000; returned NOT_SUPPORTED");
    // The emulated UART in the mux layout: the only VM has the focus, so
    // its output is not prefixed, and typed input reaches it (receive
    // interrupt, echoed back).
    o.expect(r"console: mux layout, focus on VM 0")
        .expect_stream("UART hello from VM 0")
        .expect_stream("UART echo ping-1")
        .expect(r"\[test\] TEST uart-echo ok");
    // Mailbox refusals too (a second after the aborts: not rate-limited).
    o.expect(r"VM 'test': mailbox: property tag 0x00038002 refused by the VM's policy")
        .expect(r"VM 'test': mailbox: malformed buffer at bus 0xc007d000: tag at byte 8 runs past the buffer's end; answered 0x80000001")
        .expect(r"VM 'test': mailbox: buffer at bus 0xc7fffff0 of 64 bytes runs past the VM's RAM; refused");
}

#[test]
fn two_vms_side_by_side_stay_apart() {
    let o = boot("PIVISOR_BUNDLE_TWO")
        .timeout(std::time::Duration::from_secs(120))
        .type_after(r"(?m)^UART ready", b"to-alpha\r")
        .type_after(r"\[alpha\] TEST uart-echo ok", b"\x1d1")
        .type_after(r"console -> VM 1 'beta'", b"to-beta\r")
        .run_until(|s| s.matches("SYSTEM_OFF from vCPU 0").count() == 2);
    hypervisor_clean(&o);
    o.expect(r"VM 0 'alpha': 2 vCPU\(s\) on core\(s\) \[0, 1\], 384 MiB RAM at host 0x[0-9a-f]+ \(VMID 1\)")
        .expect(r"VM 1 'beta': 2 vCPU\(s\) on core\(s\) \[2, 3\], 384 MiB RAM at host 0x[0-9a-f]+ \(VMID 2\)");
    // Each VM's RAM kept its own pattern throughout (TEST ram), and every
    // IPA past its RAM - where the other VM's memory would be if IPAs were
    // host addresses - aborted (abort-past-ram, abort-far-ipa).
    guest_passed(&o, "alpha", 2);
    guest_passed(&o, "beta", 2);
    o.expect(r"\[beta\] TEST dtb-extra ok")
        .reject(r"\[alpha\] TEST dtb-extra");
    o.expect(r"\[alpha\] pivisor-testguest: VM 0")
        .expect(r"\[beta\] pivisor-testguest: VM 1");
    // The console switch: alpha (the first VM with a UART) has the focus,
    // beta's lines come prefixed; Ctrl-] 1 moves the focus and the input.
    // (The focused VM's lines may arrive in pieces around log lines from
    // the other cores: checked as a stream. Background lines are whole.)
    o.expect_stream("UART hello from VM 0")
        .expect(r"(?m)^\[beta\] UART hello from VM 1$")
        .expect_stream("UART echo to-alpha");
    // A background VM cannot hide text, move the cursor or forge the
    // banner: its controls come out escaped, its line prefixed, cut at
    // 256 bytes.
    o.expect(r"(?m)^\[beta\] UART spoof \^\[\[8mhidden\^H\^H\^\[\[2K\[pivisor: console -> VM 0 'alpha'\]\r?$")
        .expect(r"(?m)^\[beta\] L{256}\r?$")
        .expect(r"(?m)^\[beta\] L{44}\r?$");
    // The focused VM's escapes pass (it is the terminal's); the next line
    // of anyone else starts by re-asserting the terminal (CAN, attributes
    // off, ASCII), and the focus change by a soft reset.
    let spoof = o
        .raw
        .find("UART spoof \x1b[8mhidden")
        .expect("alpha's raw spoof line");
    assert!(
        o.raw[spoof..].contains(pivisor_harness::SWITCH_SEQUENCES[1]),
        "re-assertion after alpha's escapes"
    );
    assert!(
        regex::Regex::new(
            r"\x18\x1b\[!p\x1b\[0m\x1b\(B\x0f(\r\n)?\[pivisor: console -> VM 1 'beta'"
        )
        .unwrap()
        .is_match(&o.raw),
        "a soft reset before the banner"
    );
    let after_switch = o
        .serial
        .split("console -> VM 1 'beta'")
        .nth(1)
        .unwrap_or("");
    assert!(
        pivisor_harness::console_stream(after_switch).contains("UART echo to-beta"),
        "beta's echo after the switch:\n{}",
        o.serial
    );
    o.expect(r"\[beta\] TEST uart-echo ok")
        .reject(r"UART echo to-beta[\s\S]*UART echo to-beta");
    // Interrupts alpha's cores take for others (the keys typed into beta
    // land on core 0 when alpha is in its guest there) are reported apart
    // from alpha's exits, which alpha could read; how many depends on
    // where alpha is when the keys come, so only the report is checked.
    assert!(
        regex::Regex::new(r"VM 'alpha': exits since start: .*; \d+ interrupts for others")
            .unwrap()
            .is_match(&o.serial),
        "alpha's exit report counts interrupts for others apart"
    );
}

#[test]
fn a_corrupt_bundle_starts_nothing() {
    // The hypervisor image is not a bundle.
    let o = Boot::new(artifact("PIVISOR_IMAGE"))
        .dtb(dtb("bcm2711-rpi-4-b.dtb"))
        .initrd(artifact("PIVISOR_IMAGE"))
        .run_until_match(r"no VM started");
    o.expect(
        r"ERROR guest bundle at 0x[0-9a-f]+-0x[0-9a-f]+: not a pivisor guest bundle \(bad magic\)",
    )
    .expect(r"4 of 4 cores online")
    .reject(r"FAULT|PANIC|starting the VMs");
}

#[test]
fn a_config_that_does_not_fit_starts_nothing() {
    let o = boot("PIVISOR_BUNDLE_TOOBIG").run_until_match(r"no VM started");
    o.expect(r"ERROR vms.conf: the VMs need 1024 MiB of RAM, but only \d+ MiB is free for guests")
        .reject(r"FAULT|PANIC|starting the VMs|\[big\]");
}

/// Passthrough refusals (guests/test-configs/pt-*.conf), each resolved
/// against the real Pi 4 tree at boot and refused with the VM, the line
/// and the reason; nothing starts.
#[test]
fn passthrough_refusals_name_the_vm_the_line_and_the_reason() {
    let dir = artifact("PIVISOR_BUNDLE_DIR");
    for (fixture, want) in [
        (
            "pt-notrust",
            r"VM 'sd': line 6: /soc/mmc@7e300000 \(brcm,bcm2835-sdhci\) masters DMA: with no IOMMU on the BCM2711 it can read and write all of RAM, the hypervisor's included; give the VM `trust = dma`",
        ),
        (
            "pt-noidentity",
            r"VM 'usb': line 7: /soc/usb@7e980000 \(brcm,bcm2835-usb\) masters DMA: its driver programs guest addresses into it, so the VM needs identity RAM \(memory = SIZE, identity\)",
        ),
        (
            "pt-shared",
            r"passthrough: /soc/i2c@7e804000 \(VM 'a' \(line 7\)\) and /soc/i2c@7e205000 \(VM 'b' \(line 13\)\) share interrupt line SPI 117 \(INTID 149\): one owner must have both",
        ),
        (
            "pt-kept",
            r"VM 'greedy': line 6: passthrough: /soc/mailbox@7e00b880 is the VideoCore mailbox \(the hypervisor's",
        ),
        (
            "pt-unknown",
            r"VM 'typo': line 6: passthrough: no node /soc/i2c@7e80400 in the firmware's device tree \(did you mean /soc/i2c@7e804000\?\)",
        ),
        (
            "pt-noreg",
            r"VM 'fw': line 6: passthrough: /soc/firmware has no reg \(no registers to map: not a device a VM can own\)",
        ),
        (
            "pt-twice",
            r"passthrough: /soc/i2c@7e804000 is claimed by both VM 'a' \(line 6\) and VM 'b' \(line 12\) \(one owner at most\)",
        ),
        (
            "pt-page",
            r"passthrough: /soc/serial@7e201000 \(the hypervisor \(its console; a VM gets it with devices = pl011\)\) and /soc/serial@7e201400 \(VM 'u2' \(line 7\)\) share the 4 KiB page 0xfe201000: one owner must have both",
        ),
        (
            "pt-disk",
            r"passthrough: /soc/mmc@7e300000 is claimed by both the hypervisor \(the SD card's controller while it serves the VMs' disks\) and VM 'sd' \(line 14\) \(one owner at most\)",
        ),
    ] {
        let img = dir.join(format!("guests-{fixture}.img"));
        let o = Boot::new(artifact("PIVISOR_IMAGE"))
            .dtb(dtb("bcm2711-rpi-4-b.dtb"))
            .initrd(img)
            .run_until_match(r"no VM started");
        o.expect(&format!("ERROR vms.conf: {want}|ERROR {want}"))
            .reject(r"FAULT|PANIC|starting the VMs");
    }
}

#[test]
fn timer_ticks_are_exact_in_deterministic_time() {
    // Under -icount guest time is one nanosecond per instruction: the
    // 1 kHz virtual timer must tick exactly every 1 000 000 ns, every time.
    let o = boot("PIVISOR_BUNDLE_TEST")
        .icount()
        .timeout(std::time::Duration::from_secs(120))
        .run_until_match(r"SYSTEM_OFF from vCPU 0");
    hypervisor_clean(&o);
    o.expect(r"\[test\] TIMER ticks 1000 mean_spacing_ns 1000000 max_spacing_ns 1000000 period_ns 1000000 late 0");
    guest_passed(&o, "test", 4);
}

#[test]
fn passthrough_pl011_belongs_to_its_vm() {
    // The PL011 is mapped into the owner VM and its interrupt injected
    // hardware-linked; the hypervisor's own lines move to the mini UART.
    // What is typed on the mini UART goes to the monitor: list, stats,
    // then (the VM typed to and powered off) list again.
    let o = boot("PIVISOR_BUNDLE_PT")
        .type_aux_after(r"type there for the monitor", b"list\r")
        .type_aux_after(r"(?m)^0\s+owner\s+running", b"stats owner --json\r")
        .type_after(
            r#"(?s)UART ready.*MONITOR \{"vm":"owner""#,
            b"owner-typed\r",
        )
        .type_aux_after(r"SYSTEM_OFF from vCPU 0", b"list\r")
        .run_until_match(r"(?m)^0\s+owner\s+halted");
    o.expect(r"console: the PL011 now belongs to VM 'owner'; hypervisor messages continue on the mini UART")
        .expect(r"(?m)^UART hello from VM 0$")
        .expect(r"(?m)^UART echo owner-typed$");
    // After the handover the hypervisor never writes to the PL011 again.
    let after = o
        .serial
        .split("now belongs to VM 'owner'")
        .nth(1)
        .unwrap_or("");
    assert!(
        !regex::Regex::new(r"\] c\d (INFO|WARN|ERROR)")
            .unwrap()
            .is_match(after),
        "hypervisor output on the PL011 after the handover:\n{after}"
    );
    o.expect_aux(r"console: hypervisor log on the mini UART; the PL011 is VM 'owner''s \(passthrough, INTID 153 hardware-linked\)")
        .reject_aux(r"ERROR|FAULT|PANIC|parked");
    let aux = Output {
        serial: o.aux.clone(),
        raw: o.aux.clone(),
        aux: String::new(),
        stderr: o.stderr.clone(),
        timed_out: o.timed_out,
    };
    guest_passed(&aux, "owner", 2);
    aux.expect(r"\[owner\] TEST uart-echo ok")
        .expect(r#"(?m)^MONITOR \{"vm":"owner","exits":\{"irq":\d+"#)
        .expect(r"(?m)^0\s+owner\s+running\s+0")
        .expect(r"(?m)^0\s+owner\s+halted\s+.*SYSTEM_OFF from vCPU 0$");
}

/// The isolation suite (guests/hostile.conf, guests/testguest/src/
/// hostile.rs): a hostile VM runs the attack catalogue beside a victim
/// VM whose RAM holds a known pattern. Every attack must be refused, the
/// victim's pattern must stay intact and its heart must beat before,
/// during and after the attacks, and the hypervisor must count every
/// refusal, keep its log short (rate-limited), and never fault.
#[test]
fn hostile_guest_cannot_reach_the_victim_or_the_hypervisor() {
    // The card: partition 2 the hostile VM's disk (read-only), 3 the
    // victim's, both full of a pattern that must survive.
    let img = pivisor_harness::sd::test_card(
        "hostile",
        64 << 20,
        &[(
            0,
            &[
                (0, 0x80, 0x0c, 2048, 8192),
                (1, 0, 0x83, 10240, 16384),
                (2, 0, 0x83, 26624, 16384),
            ],
        )],
    );
    let pattern: Vec<u8> = (0..16384 * 512u32)
        .map(|i| (i ^ (i >> 9) ^ 0x5a) as u8)
        .collect();
    {
        use std::io::{Seek, SeekFrom, Write};
        let mut f = std::fs::OpenOptions::new().write(true).open(&img).unwrap();
        for start in [10240u64, 26624] {
            f.seek(SeekFrom::Start(start * 512)).unwrap();
            f.write_all(&pattern).unwrap();
        }
    }
    let o = boot("PIVISOR_BUNDLE_HOSTILE")
        .sd(img.clone())
        .timeout(Duration::from_secs(240))
        .run_until_match(
            r"(?s)VM 'hostile': exits since start.*VICTIM alive n=\d+.*VICTIM alive n=\d+.*VICTIM alive n=\d+",
        );
    let log = &o.aux;
    o.reject_aux(r"ERROR|FAULT|PANIC|parked|panicked|TEST .* FAIL");
    // Every attack in the catalogue ran and was refused.
    const ATTACKS: [&str; 18] = [
        "ipa-sweep",
        "peripheral-window",
        "ram-edges",
        "exec-device",
        "gicd-foreign",
        "mailbox",
        "smccc-sweep",
        "exit-count-call",
        "sysregs",
        "psci-cpu-on",
        "set-way",
        "wfx-storm",
        "pend-clear-flood",
        "uart-storm",
        "virtio-queues",
        "virtio-requests",
        "virtio-setup",
        "testdev-flood",
    ];
    for a in ATTACKS {
        o.expect_aux(&format!(
            r"\[hostile\] ATTACK {a} probes=\d+ refused=\d+ result=ok\n"
        ));
    }
    o.reject_aux(r"result=FAIL")
        .expect_aux(r"\[hostile\] HOSTILE done attacks=18 failed=0")
        .expect_aux(r"VM 'hostile': SYSTEM_OFF from vCPU 0");
    // Both disks untouched: the hostile VM's (read-only, attacked) and the
    // victim's.
    let card = std::fs::read(&img).unwrap();
    for start in [10240usize, 26624] {
        assert!(
            card[start * 512..start * 512 + pattern.len()] == pattern[..],
            "the partition at sector {start} changed"
        );
    }
    let _ = std::fs::remove_file(&img);
    // The test-device flood: at most 100 lines a second logged, the rest
    // counted and said.
    let flood = log.matches("[hostile] FLOOD ").count();
    let suppressed: u64 = regex::Regex::new(r"VM 'hostile': (\d+) test-device lines suppressed")
        .unwrap()
        .captures_iter(log)
        .map(|c| c[1].parse::<u64>().unwrap_or(0))
        .sum();
    assert!(
        (50..=400).contains(&flood) && flood as u64 + suppressed == 3000,
        "{flood} flood lines logged, {suppressed} said suppressed"
    );
    // The victim: pattern intact and its device answering every time,
    // and alive while the attacks ran.
    let beats: Vec<&str> = log.lines().filter(|l| l.contains("VICTIM alive")).collect();
    assert!(beats.len() >= 5, "too few heartbeats:\n{log}");
    for b in &beats {
        assert!(b.contains("bad=0 device=ok"), "victim damaged: {b}");
    }
    let during = log
        .split("HOSTILE start")
        .nth(1)
        .and_then(|s| s.split("HOSTILE done").next())
        .map_or(0, |s| s.matches("VICTIM alive").count());
    assert!(
        during >= 3,
        "the victim stalled during the attacks ({during} beats)"
    );
    // Each refusal counted; the log rate-limited (a flood cannot drown
    // the console).
    let refused: u64 =
        regex::Regex::new(r"VM 'hostile': exits since start: .*refused (\d+) guest requests")
            .unwrap()
            .captures(log)
            .and_then(|c| c[1].parse().ok())
            .expect("the hostile VM's refusal count");
    let sweeps: u64 = regex::Regex::new(r"ATTACK (ipa-sweep|peripheral-window) probes=(\d+)")
        .unwrap()
        .captures_iter(log)
        .map(|c| c[2].parse::<u64>().unwrap_or(0))
        .sum();
    assert!(
        refused >= sweeps,
        "{refused} refusals counted for {sweeps} refused accesses"
    );
    let warnings = log.matches("WARN  VM 'hostile'").count();
    assert!(
        warnings < 500,
        "{warnings} warning lines for {refused} refusals: not rate-limited"
    );
    eprintln!(
        "HOSTILE {} attacks refused; {refused} refusals counted in {warnings} log lines; victim {} heartbeats ({during} during the attacks); test-device flood: {flood} of 3000 lines logged, {suppressed} counted",
        ATTACKS.len(),
        beats.len()
    );
}

/// Crash containment (guests/crash.conf): a VM that crashes on every boot
/// (its exception vector moved out of its RAM; on the second boot a hang
/// its watchdog catches) is restarted by its policy, `restart 2`, with
/// its RAM scrubbed each time, and halted after the second restart; the
/// victim beside it keeps its pattern and its heartbeat throughout. Then
/// the monitor (no VM has a UART: the PL011's input is the monitor's)
/// boots it again from its images with `start crasher`, its RAM scrubbed
/// of the last life's pattern, and its policy counts afresh.
#[test]
fn crashing_vm_is_restarted_by_its_policy_and_the_other_never_notices() {
    let stopped = r"stopped after 2 restarts \(policy restart 2\); its cores are idle";
    let o = boot("PIVISOR_BUNDLE_CRASH")
        .timeout(Duration::from_secs(180))
        .type_after(stopped, b"\x1dm")
        .type_after(r"pivisor> ", b"start crasher\r")
        .type_after(r"start VM 'crasher': asked", b"info\r")
        // Its third life again, then (its life-cycle lines may be
        // rate-limited by now) the monitor says it halted.
        .type_after(
            r"(?s)start from the monitor.*CRASHER boot=3.*VICTIM alive n=\d+.*VICTIM alive n=\d+",
            b"list\r",
        )
        .run_until_match(r"(?m)^0\s+crasher\s+halted");
    o.reject(r"ERROR|FAULT|PANIC|parked|panicked|FAIL|scrubbed=NO");
    for boot in 1..=3 {
        assert_eq!(
            o.count(&format!(r"\[crasher\] CRASHER boot={boot} scrubbed=yes")),
            2,
            "boot {boot} once per start, RAM scrubbed:\n{}",
            o.serial
        );
    }
    // No VM has a UART: the PL011's input is the monitor's.
    o.expect(r"console: no VM has a UART; type here for the monitor")
        .expect(
            r"console: the hypervisor's PL011; no VM has a UART, so what is typed is the monitor's",
        )
        .expect(r"VM 'crasher': start from the monitor: reloading");
    let crash = r"VM 'crasher': crashed on vCPU 0: its exception vector at 0x4000000200 \(VBAR_EL1 0x4000000000\) cannot be fetched";
    o.expect(&format!(r"{crash} \(IPA 0x4000000200\): reloading \(reset 1; policy restart 2\)"))
        // The second life feeds its SP805 watchdog, then hangs with every
        // interrupt masked: the watchdog (through the hypervisor's EL2
        // timer) ends it 40 ms later.
        .expect(r"\[crasher\] CRASHER watchdog 0x141805 fed 10 times; hanging")
        .expect(r"VM 'crasher': crashed: its watchdog expired \(seen on vCPU \d\): reloading \(reset 2; policy restart 2\)")
        .expect(&format!(
            r"{crash} \(IPA 0x4000000200\): stopped after 2 restarts \(policy restart 2\); its cores are idle"
        ));
    assert_eq!(o.count(r"CRASHER boot="), 6, "three lives per start");
    let beats: Vec<&str> = o
        .serial
        .lines()
        .filter(|l| l.contains("VICTIM alive"))
        .collect();
    assert!(beats.len() >= 3, "victim heartbeats:\n{}", o.serial);
    assert!(
        beats.iter().all(|b| b.contains("bad=0 device=ok")),
        "victim damaged"
    );
}

/// A restart loop (guests/resetloop.conf): 'looper' asks for SYSTEM_RESET
/// as soon as it starts, for ever. The hypervisor backs off (after three
/// quick restarts each start waits, from the configured 50 ms, doubling),
/// its life-cycle lines are rate-limited, and the victim beside it
/// carries on.
#[test]
fn a_restart_loop_is_backed_off_and_rate_limited() {
    let o = boot("PIVISOR_BUNDLE_RESETLOOP")
        .timeout(Duration::from_secs(90))
        .run_until(|s| s.matches("VICTIM alive").count() >= 40);
    hypervisor_clean(&o);
    o.expect(r"VM 'looper': restart loop \(4 restarts in a row, each within 1000 ms of its start\): next start in 50 ms")
        .expect(r"VM 'looper': restart loop \(5 restarts in a row, [^)]*\): next start in 100 ms")
        .expect(r"VM 'looper': restart loop \(6 restarts in a row, [^)]*\): next start in 200 ms");
    // About 4 s of the victim's life: without the backoff the looper
    // restarted about 40 times a second.
    let boots = o.count(r"\[looper\] RESETLOOP boot");
    assert!(
        (5..30).contains(&boots),
        "{boots} boots of the looper in about 4 s"
    );
    let reloads = o.count(r"VM 'looper': SYSTEM_RESET from vCPU 0: reloading");
    assert!(
        reloads <= boots,
        "{reloads} restart lines for {boots} boots"
    );
    let beats: Vec<&str> = o
        .serial
        .lines()
        .filter(|l| l.contains("VICTIM alive"))
        .collect();
    assert!(beats.len() >= 40);
    for b in &beats {
        assert!(b.contains("bad=0 device=ok"), "victim damaged: {b}");
    }
    eprintln!(
        "RESETLOOP {boots} boots, {reloads} restart lines, {} victim heartbeats",
        beats.len()
    );
}

/// A hypervisor panic is never a deadlock for the other VMs
/// (guests/panic.conf): 'panicker' makes the hypervisor panic on core 0
/// while it holds the console's line lock and the firmware mailbox's
/// lock. The core is parked; the victim on cores 2-3 keeps printing
/// through the console (the line lock is taken over from the dead core)
/// and its firmware requests keep being answered (so is the mailbox's).
#[test]
fn a_hypervisor_panic_is_not_a_deadlock_for_other_vms() {
    let o = boot("PIVISOR_BUNDLE_PANIC")
        .timeout(Duration::from_secs(60))
        .run_until_match(r"(?s)PANIC on core 0.*core 0 parked(.*VICTIM alive n=\d+){5}");
    o.expect(r"\[panicker\] PANICKER fault page 0x70766669; panicking")
        .expect(r"ERROR PANIC on core 0: panicked at [^\n]*\nfault injected by VM 'panicker' \(devices = fault-injection\), holding the console's line lock and the firmware mailbox's lock");
    o.reject(r"PANICKER still running|mbox=FAIL|bad=[1-9]|device=BAD");
    let after = o.serial.split("core 0 parked").nth(1).unwrap_or("");
    let beats = after.matches("VICTIM alive").count();
    assert!(
        beats >= 5 && after.matches("mbox=ok").count() == beats,
        "victim after the panic: {beats} heartbeats\n{}",
        o.serial
    );
    eprintln!("PANIC the victim beat {beats} times after core 0 died, mailbox answered each time");
}
