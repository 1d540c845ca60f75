//! The micro-benchmark guest (guests/bench/) natively, under pivisor and
//! under Linux/KVM (pv-vmm), all under `-icount shift=0`. Costs are printed, not asserted (a
//! benchmark, not a timed test); what is asserted is what must hold
//! whatever the speed: every benchmark ran, each trapped operation is
//! exactly one exit, EOIs through the mapped GICV cost none, and natively
//! nothing is counted.

use pivisor_harness::{artifact, dtb, Boot, Output};
use std::time::Duration;

const IDS: [&str; 8] = ["B1", "B2r", "B2w", "B3", "B4", "B5", "B6", "done"];

fn bench_lines(o: &Output) -> Vec<String> {
    o.serial
        .lines()
        .filter(|l| l.starts_with("BENCH "))
        .map(|l| l.trim_end().to_string())
        .collect()
}

fn check_all_ran(o: &Output) {
    o.reject(r"BENCH error|skipped|BENCH note");
    for id in IDS {
        o.expect(&format!(r"(?m)^BENCH {id}\b"));
    }
}

#[test]
fn micro_benchmarks_native_and_under_pivisor() {
    let native = Boot::new(artifact("PIVISOR_BENCH_IMAGE"))
        .dtb(dtb("bcm2711-rpi-4-b.dtb"))
        .icount()
        .timeout(Duration::from_secs(120))
        .run_until_match(r"BENCH done|BENCH error");
    check_all_ran(&native);
    native
        .expect(r"BENCH start mode=native counter_hz=\d+ exits=none")
        .expect(r"BENCH B1 null_hypercall n=10000 ns=[\d.]+ exits=na");

    let virt = Boot::new(artifact("PIVISOR_IMAGE"))
        .dtb(dtb("bcm2711-rpi-4-b.dtb"))
        .initrd(artifact("PIVISOR_BUNDLE_BENCH"))
        .icount()
        .timeout(Duration::from_secs(120))
        .run_until_match(r"VM 'bench': exits since start|BENCH error");
    check_all_ran(&virt);
    virt.reject_aux(r"ERROR|FAULT|PANIC|parked")
        .expect(r"BENCH start mode=virtualized counter_hz=\d+ exits=hypercall")
        // One exit per trapped operation, no more.
        .expect(r"BENCH B1 null_hypercall n=10000 ns=[\d.]+ exits=1\.000")
        .expect(r"BENCH B2r gicd_read n=10000 ns=[\d.]+ exits=1\.000")
        .expect(r"BENCH B2w gicd_sgir_write n=10000 ns=[\d.]+ exits=1\.000")
        .expect(r"BENCH B5 mailbox_status_read n=10000 ns=[\d.]+ exits=1\.000")
        // The SGIR write exits; delivery, IAR and EOIR through GICV do not.
        .expect(
            r"BENCH B3 sgi_self_eoi n=200 ns=[\d.]+ iar_eoir_ns=[\d.]+ exits_beyond_sgir=0\.000",
        )
        .expect_aux(r"VM 'bench': SYSTEM_OFF from vCPU 0");
    for (n, v) in bench_lines(&native).iter().zip(bench_lines(&virt)) {
        eprintln!("MICRO native:      {n}\nMICRO virtualized: {v}");
    }
}

/// The KVM yardstick runs the same bundle: the same checks hold there
/// (KVM also takes exactly one exit per trapped operation and none for
/// EOIs through its GICV), and pv-vmm's exit-counter page, built on
/// KVM's statistics, is what the guest reads.
#[test]
fn micro_benchmarks_under_kvm() {
    let kvm = pivisor_harness::kvm_host("bench")
        .icount()
        .timeout(Duration::from_secs(180))
        .run_until_match(r"pv-vmm: exits: \d+ in all|BENCH error|KVM host: ");
    check_all_ran(&kvm);
    kvm.expect(r"KVM host ready")
        .expect(r"pv-vmm: VM 'bench': 4 vCPUs, 64 MiB")
        .expect(r"BENCH start mode=virtualized counter_hz=\d+ exits=page")
        .expect(r"BENCH B1 null_hypercall n=10000 ns=[\d.]+ exits=1\.000")
        .expect(r"BENCH B2r gicd_read n=10000 ns=[\d.]+ exits=1\.000")
        .expect(r"BENCH B5 mailbox_status_read n=10000 ns=[\d.]+ exits=1\.000")
        .expect(
            r"BENCH B3 sgi_self_eoi n=200 ns=[\d.]+ iar_eoir_ns=[\d.]+ exits_beyond_sgir=0\.000",
        )
        .expect(r"pv-vmm: VM 'bench' powered off \(PSCI SYSTEM_OFF\)")
        .reject(r"external abort injected|unexpected exit");
    for l in bench_lines(&kvm) {
        eprintln!("MICRO kvm: {l}");
    }
}
