//! The micro-benchmark guest (guests/bench/) natively and under pivisor,
//! both under `-icount shift=0`. Costs are printed, not asserted (a
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
        .expect(r"BENCH start mode=native counter_hz=\d+ pivisor_exits=no")
        .expect(r"BENCH B1 null_hypercall n=10000 ns=[\d.]+ exits=na");

    let virt = Boot::new(artifact("PIVISOR_IMAGE"))
        .dtb(dtb("bcm2711-rpi-4-b.dtb"))
        .initrd(artifact("PIVISOR_BUNDLE_BENCH"))
        .icount()
        .timeout(Duration::from_secs(120))
        .run_until_match(r"VM 'bench': exits since start|BENCH error");
    check_all_ran(&virt);
    virt.reject_aux(r"ERROR|FAULT|PANIC|parked")
        .expect(r"BENCH start mode=virtualized counter_hz=\d+ pivisor_exits=yes")
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
