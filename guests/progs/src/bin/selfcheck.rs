//! pv-selfcheck: what a Linux guest sees of its virtual machine, as one
//! machine-readable line for the QEMU tests (and a human at the shell):
//!
//! `SELFCHECK cpus=N online=LIST mem_kb=N timer_ticks_1s=N sleep_1s_us=N
//!  firmware="DATE" drivers=a,b,... result=pass|fail`
//!
//! cpus: processors in /proc/cpuinfo; timer_ticks_1s: arch_timer
//! interrupts on all CPUs during a one-second sleep (a tickless idle
//! kernel takes few); sleep_1s_us: how long that sleep took by
//! CLOCK_MONOTONIC; firmware: the raspberrypi-firmware driver's "Attached
//! to firmware from" line in the kernel log (the firmware's build date,
//! asked over the mailbox); drivers: firmware-side drivers bound to a
//! device. result=pass when there is a CPU, the timer ticked, the sleep
//! took 0.99-1.5 s and the firmware driver attached.

use pivisor_progs::*;
use std::fs;
use std::io::Read;
use std::os::unix::fs::OpenOptionsExt;
use std::time::{Duration, Instant};

/// O_NONBLOCK on Linux/arm64: /dev/kmsg reads end with EAGAIN.
const O_NONBLOCK: i32 = 0o4000;

fn read(path: &str) -> String {
    fs::read_to_string(path).unwrap_or_default()
}

fn timer_total() -> u64 {
    irq_row(&read("/proc/interrupts"), "arch_timer").map_or(0, |v| v.iter().sum())
}

/// The firmware driver's line from the kernel log.
fn firmware() -> Option<String> {
    let mut f = fs::OpenOptions::new()
        .read(true)
        .custom_flags(O_NONBLOCK)
        .open("/dev/kmsg")
        .ok()?;
    let mut buf = vec![0u8; 8192];
    loop {
        // One record per read; EAGAIN at the end.
        let n = f.read(&mut buf).ok()?;
        let rec = String::from_utf8_lossy(&buf[..n]);
        if let Some(d) = firmware_attached(kmsg_text(&rec)) {
            return Some(d.to_string());
        }
    }
}

fn bound(bus: &str, driver: &str) -> bool {
    fs::read_dir(format!("/sys/bus/{bus}/drivers/{driver}"))
        .map(|d| {
            d.flatten()
                .any(|e| e.file_name().to_string_lossy().contains([':', '.']))
        })
        .unwrap_or(false)
}

fn main() {
    let cpus = cpu_count(&read("/proc/cpuinfo"));
    let online = read("/sys/devices/system/cpu/online").trim().to_string();
    let mem = meminfo_kb(&read("/proc/meminfo"), "MemTotal").unwrap_or(0);
    let t0 = timer_total();
    let start = Instant::now();
    std::thread::sleep(Duration::from_secs(1));
    let slept = start.elapsed();
    let ticks = timer_total().saturating_sub(t0);
    let fw = firmware();
    let drivers: Vec<&str> = [
        ("platform", "bcm2835-mbox"),
        ("platform", "raspberrypi-firmware"),
        ("platform", "raspberrypi-clk"),
        ("platform", "raspberrypi-exp-gpio"),
        ("amba", "uart-pl011"),
    ]
    .into_iter()
    .filter(|(bus, d)| bound(bus, d))
    .map(|(_, d)| d)
    .collect();
    let pass = cpus > 0
        && ticks > 0
        && (Duration::from_millis(990)..Duration::from_millis(1500)).contains(&slept)
        && fw.is_some();
    println!(
        "SELFCHECK cpus={cpus} online={online} mem_kb={mem} timer_ticks_1s={ticks} sleep_1s_us={} firmware=\"{}\" drivers={} result={}",
        slept.as_micros(),
        fw.as_deref().unwrap_or("none"),
        drivers.join(","),
        if pass { "pass" } else { "fail" }
    );
    std::process::exit(if pass { 0 } else { 1 });
}
