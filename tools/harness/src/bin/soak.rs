//! `make soak`: two Linux VMs under load for a long time (guests/soak.conf):
//! 'steady' prints a numbered line every 100 ms beside CPU and IPI load;
//! 'crashy' does the same and crashes itself every 30-90 s (a kernel
//! panic or its watchdog expiring), and its policy restarts it. At the end
//! 'steady' is powered off and the run is judged: every one of steady's
//! lines present, in order and whole; no hypervisor warning; steady's
//! exit counts and crashy's restarts reported. Plain TCG (real time).
//!
//! Environment (the Makefile sets it): PIVISOR_IMAGE, PIVISOR_BUNDLE_SOAK,
//! PIVISOR_DTB_DIR; PIVISOR_SOAK_MINUTES (default 30); PIVISOR_SOAK_OUT
//! (where the log goes, default build/soak).

use pivisor_harness::{artifact, console_stream, dtb, Boot};
use regex::Regex;
use std::path::PathBuf;
use std::time::{Duration, Instant};

fn main() {
    let minutes: u64 = std::env::var("PIVISOR_SOAK_MINUTES")
        .ok()
        .and_then(|m| m.parse().ok())
        .unwrap_or(30)
        .max(1);
    let out =
        PathBuf::from(std::env::var("PIVISOR_SOAK_OUT").unwrap_or_else(|_| "build/soak".into()));
    let _ = std::fs::create_dir_all(&out);
    let run = Duration::from_secs(60 * minutes);
    eprintln!(
        "[soak] {minutes} minutes: two Linux VMs, 'crashy' crashing every 30-90 s; log in {}",
        out.display()
    );
    let started = Instant::now();
    let o = Boot::new(artifact("PIVISOR_IMAGE"))
        .dtb(dtb("bcm2711-rpi-4-b.dtb"))
        .initrd(artifact("PIVISOR_BUNDLE_SOAK"))
        .timeout(run + Duration::from_secs(300))
        .type_at(run, b"\rpoweroff -f\r")
        .run_until(|t| t.contains("VM 'steady': exits since start"));
    let _ = std::fs::write(out.join("soak.log"), &o.serial);
    let mut problems = Vec::new();

    // steady's lines, through the console switch: steady has the focus,
    // so its bytes pass straight through, and a whole line of the other VM
    // ('[crashy] ...') or of the hypervisor may start in the middle of one
    // of steady's (the switch's design). Without those, steady's bytes
    // must be complete and in order.
    let steady_only: Vec<&str> = o
        .serial
        .lines()
        .filter(|l| !l.starts_with("[crashy] "))
        .collect();
    let stream = console_stream(&steady_only.join("\n"));
    let line = Regex::new(r"SOAK steady seq=(\d+) pad=0123456789abcdefghijklmnopqrstuvwxyz end")
        .expect("regex");
    let seqs: Vec<u64> = line
        .captures_iter(&stream)
        .filter_map(|c| c[1].parse().ok())
        .collect();
    let mangled = stream.matches("SOAK steady").count() - seqs.len();
    if seqs.is_empty() {
        problems.push("no steady lines at all".to_string());
    }
    let mut gaps = 0;
    for w in seqs.windows(2) {
        if w[1] != w[0] + 1 {
            gaps += 1;
            if gaps <= 5 {
                problems.push(format!("steady's lines jump from seq {} to {}", w[0], w[1]));
            }
        }
    }
    if mangled > 0 {
        problems.push(format!("{mangled} of steady's lines mangled"));
    }
    // No hypervisor warnings (crashy's guest-caused messages are its own,
    // and a crash is reported at INFO).
    let warning = Regex::new(r"\] c\d (WARN|ERROR) ").expect("regex");
    let warnings: Vec<&str> = o
        .serial
        .lines()
        .filter(|l| warning.is_match(l))
        .filter(|l| !l.contains("VM 'crashy'"))
        .collect();
    for w in warnings.iter().take(5) {
        problems.push(format!("hypervisor warning: {w}"));
    }
    let restarts = o.count(r"VM 'crashy': [^\n]*reloading \(reset \d+");
    let by_watchdog = o.count(r"VM 'crashy': crashed: its watchdog expired");
    let by_panic = o.count(r"VM 'crashy': SYSTEM_RESET from vCPU");
    if restarts == 0 {
        problems.push("crashy was never restarted".to_string());
    }
    let steady_exits = Regex::new(r"VM 'steady': exits since start: ([^\n]*)")
        .expect("regex")
        .captures(&o.serial)
        .map(|c| c[1].to_string());
    if steady_exits.is_none() {
        problems.push("steady did not power off at the end (no exit report)".to_string());
    }
    let crashy_lives = console_stream(&o.serial)
        .matches("SOAK crashy seq=1 ")
        .count();
    let verdict = if problems.is_empty() { "PASS" } else { "FAIL" };
    let report = format!(
        "soak {verdict}: {minutes} min ({} s wall); steady: {} lines, seq 1-{}, {gaps} gaps, {mangled} mangled; \
         crashy: {restarts} restarts ({by_panic} kernel panics, {by_watchdog} watchdog expiries), {crashy_lives} lives; \
         hypervisor warnings: {}; steady's exits: {}\n{}",
        started.elapsed().as_secs(),
        seqs.len(),
        seqs.last().copied().unwrap_or(0),
        warnings.len(),
        steady_exits.as_deref().unwrap_or("n/a"),
        problems.join("\n")
    );
    let _ = std::fs::write(out.join("result.txt"), &report);
    println!("{report}");
    if !problems.is_empty() {
        std::process::exit(1);
    }
}
