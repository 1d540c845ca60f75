//! Tests of trap/stats.rs: exit counts.

#[test]
fn exit_counts_print_what_happened() {
    use super::{ExitCounts, ExitKind, ExitStats, EXIT_KINDS};
    let s = ExitStats::default();
    assert_eq!(std::format!("{}", s.snapshot()), "0");
    for _ in 0..3 {
        s.record(ExitKind::Irq);
    }
    s.record(ExitKind::Call);
    s.record(ExitKind::Mmio);
    s.record(ExitKind::SError);
    let c = s.snapshot();
    assert_eq!(c.total(), 6);
    assert_eq!(c.0[ExitKind::Irq as usize], 3);
    assert_eq!(
        std::format!("{c}"),
        "6 (irq 3, mmio 1, hvc/smc 1, serror 1)"
    );
    // Summed over vCPUs.
    let mut sum = ExitCounts::default();
    sum += c;
    sum += c;
    assert_eq!(sum.total(), 12);
    s.reset();
    assert_eq!(s.snapshot().total(), 0);
    assert_eq!(ExitCounts::NAMES.len(), EXIT_KINDS);
}

#[test]
fn exit_count_call_selects_a_kind_or_refuses() {
    use super::{ExitCounts, ExitKind, EXIT_KINDS};
    let mut c = ExitCounts::default();
    c.0[ExitKind::Call as usize] = 7;
    c.0[ExitKind::Irq as usize] = 2;
    assert_eq!(c.select(0), Some(9));
    assert_eq!(c.select(1 + ExitKind::Call as u64), Some(7));
    assert_eq!(c.select(1 + ExitKind::SError as u64), Some(0));
    // Hostile selectors: past the last kind, huge, the top bit.
    assert_eq!(c.select(1 + EXIT_KINDS as u64), None);
    assert_eq!(c.select(u64::MAX), None);
    assert_eq!(c.select(1 << 63), None);
}
