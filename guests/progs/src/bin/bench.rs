//! pv-bench: the macro benchmarks, run inside Linux the same way natively,
//! under pivisor and under KVM. Each prints one machine-readable line:
//!
//! `BENCH <id> <name> key=value ...`, and `BENCH done` at the end.
//!
//! - M1 cpu_loop: a fixed integer loop (no memory traffic, no exits).
//! - M2 mem_first_touch / M3 mem_retouch: write one byte per 4 KiB page
//!   of a fresh 64 MiB anonymous mapping, then again (the first touch
//!   pays the kernel's page faults, and under a hypervisor that maps RAM
//!   on demand, stage-2 faults too).
//! - M4 getppid: system calls that do no work.
//! - M5 sleep_1ms: how late a 1 ms nanosleep wakes (timer interrupt
//!   delivery), mean, median, p99, max.
//! - M6 pipe_pingpong: one byte back and forth through two pipes between
//!   threads pinned to CPUs 0 and 1 (wake-ups, IPIs).
//! - M7 disk_seq_read, M8 disk_rand_read, M9 disk_seq_write: the disk,
//!   raw and O_DIRECT (no page cache): 64 MiB read in 1 MiB requests;
//!   4 KiB reads at pseudo-random 4 KiB-aligned offsets, one at a time;
//!   64 MiB written in 1 MiB requests then fsync. The disk is /dev/vda
//!   in a VM (virtio-blk) or the card's partition 2 natively
//!   (/dev/mmcblk*p2, Linux's own SD driver); it is overwritten. Only
//!   when named (`pv-bench M7 M8 M9`), never by default.
//! - M10 net_tcp_stream, M11 net_udp_rtt: the network, against a peer
//!   running `pv-bench net-serve` (another VM on the LAN; natively another
//!   process over loopback): 32 MiB over one TCP connection in 64 KiB
//!   writes, timed until the peer confirms it received them all (per
//!   KiB); 2,000 round trips of a 64-byte UDP datagram the peer echoes
//!   (mean). Only when named with the peer: `pv-bench M10 M11
//!   peer=10.0.0.2`.
//!
//! With pivisor's exit-counter page in the VM (`devices = counters`, read
//! through /dev/mem), each line also says how many exits the VM took during
//! the benchmark (`exits=`; `na` without the page: natively, or under a
//! hypervisor without it; pv-vmm emulates the page under KVM), and every
//! line gives the benchmark's whole span (`span_ns=`), for exits per
//! second.
//!
//! Times come from CLOCK_MONOTONIC; under QEMU's `-icount shift=0` one
//! nanosecond is one guest instruction (all cores share the clock, so the
//! other CPUs must be idle for a clean figure). `pv-bench NAME...` runs a
//! subset (by id or name).

use pivisor_progs::{per_op, reg_base, summarize};
use std::io::{Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::fs::OpenOptionsExt;
use std::time::{Duration, Instant};

const CPU_LOOP: u64 = 20_000_000;
const MEM_BYTES: usize = 64 << 20;
const PAGE: usize = 4096;
const SYSCALLS: u64 = 100_000;
const SLEEPS: usize = 100;
const PINGPONGS: u64 = 10_000;

/// The exit-counter page's register with all of the VM's exits.
const VM_EXITS: usize = 0x100;

/// pivisor's exit-counter page, mapped from /dev/mem.
struct Counters(*const u64);

impl Counters {
    /// Finds the page in the device tree and maps it, if there is one.
    fn open() -> Option<Self> {
        let dir = std::fs::read_dir("/proc/device-tree").ok()?;
        let node = dir.flatten().find(|e| {
            std::fs::read(e.path().join("compatible"))
                .is_ok_and(|c| c.starts_with(b"pivisor,exit-counters"))
        })?;
        let base = reg_base(&std::fs::read(node.path().join("reg")).ok()?)?;
        let mem = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_SYNC)
            .open("/dev/mem")
            .ok()?;
        // SAFETY: a fresh shared read-only mapping of one page of device
        // memory; the pointer is only used for aligned volatile loads.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                4096,
                libc::PROT_READ,
                libc::MAP_SHARED,
                mem.as_raw_fd(),
                base as libc::off_t,
            )
        };
        (p != libc::MAP_FAILED).then_some(Self(p as *const u64))
    }

    /// The VM's exits so far (this read included).
    fn vm_exits(&self) -> u64 {
        self.read(0)
    }

    /// Selector `which`: 0 all exits, 1 + a kind (this read included).
    fn read(&self, which: usize) -> u64 {
        // SAFETY: within the mapped page, 8-byte aligned.
        unsafe { self.0.add(VM_EXITS / 8 + which).read_volatile() }
    }

    /// The exits by kind, in the page's order.
    fn kinds(&self) -> [u64; KINDS.len()] {
        core::array::from_fn(|k| self.read(1 + k))
    }
}

/// The exit kinds in the page's order (src/trap/stats.rs).
const KINDS: [&str; 8] = [
    "irq", "gicd", "mmio", "call", "sysreg", "wfx", "fault", "serror",
];
/// Where the page's own reads count.
const MMIO_KIND: usize = 2;

/// One benchmark, given the counters if the VM has them.
type Bench = fn(Option<&Counters>);

/// One benchmark's span: its guest time and, with the page, its exits.
struct Span<'a> {
    counters: Option<(&'a Counters, [u64; KINDS.len()], u64)>,
    t: Instant,
}

impl<'a> Span<'a> {
    fn start(c: Option<&'a Counters>) -> Self {
        Self {
            // The kinds first, the total last: the total's own read is
            // the last exit before the span.
            counters: c.map(|c| (c, c.kinds(), c.vm_exits())),
            t: Instant::now(),
        }
    }

    /// `exits=N span_ns=T exit_kinds=irq:N,...` for the span (the page's
    /// own reads taken out; `exits=na` without the page).
    fn end(&self) -> String {
        let span = ns(self.t.elapsed());
        match self.counters {
            Some((c, kinds, before)) => {
                let total = c.vm_exits().saturating_sub(before + 1);
                let after = c.kinds();
                // Page reads between the two snapshots of the MMIO kind:
                // at the start the kinds after it and the total, at the
                // end the total, the kinds before it and its own read.
                let own = (KINDS.len() - MMIO_KIND - 1) + 1 + 1 + MMIO_KIND + 1;
                let by: Vec<String> = KINDS
                    .iter()
                    .enumerate()
                    .map(|(k, name)| {
                        let mut d = after[k].saturating_sub(kinds[k]);
                        if k == MMIO_KIND {
                            d = d.saturating_sub(own as u64);
                        }
                        format!("{name}:{d}")
                    })
                    .collect();
                format!("exits={total} span_ns={span} exit_kinds={}", by.join(","))
            }
            None => format!("exits=na span_ns={span}"),
        }
    }
}

fn ns(d: Duration) -> u128 {
    d.as_nanos()
}

/// Times `n` calls of `step` and prints the per-operation line.
fn op_loop(c: Option<&Counters>, id: &str, name: &str, n: u64, mut step: impl FnMut(u64)) {
    let span = Span::start(c);
    let t = Instant::now();
    for i in 0..n {
        step(i);
    }
    let d = t.elapsed();
    println!(
        "BENCH {id} {name} n={n} ns={} {}",
        per_op(ns(d), n),
        span.end()
    );
}

fn cpu_loop(c: Option<&Counters>) {
    let mut x: u64 = 1;
    op_loop(c, "M1", "cpu_loop", CPU_LOOP, |i| {
        // A dependency chain the optimizer cannot fold away.
        x = x.wrapping_mul(6364136223846793005).wrapping_add(i);
    });
    std::hint::black_box(x);
}

fn memory(c: Option<&Counters>) {
    let pages = (MEM_BYTES / PAGE) as u64;
    // A fresh anonymous mapping: every page is untouched.
    let mut buf: Vec<u8> = Vec::with_capacity(MEM_BYTES);
    let p = buf.as_mut_ptr();
    let touch = || {
        let t = Instant::now();
        for off in (0..MEM_BYTES).step_by(PAGE) {
            // SAFETY: within the allocation's capacity; bytes written,
            // never read as initialised values.
            unsafe { p.add(off).write_volatile(1) };
        }
        t.elapsed()
    };
    for (id, name) in [("M2", "mem_first_touch"), ("M3", "mem_retouch")] {
        let span = Span::start(c);
        let d = touch();
        println!(
            "BENCH {id} {name} mib={} ns={} ns_per_page={} {}",
            MEM_BYTES >> 20,
            ns(d),
            per_op(ns(d), pages),
            span.end()
        );
    }
    drop(buf);
}

fn syscalls(c: Option<&Counters>) {
    op_loop(c, "M4", "getppid", SYSCALLS, |_| {
        // getppid(2) every time: std does not cache it.
        std::hint::black_box(std::os::unix::process::parent_id());
    });
}

fn sleeps(c: Option<&Counters>) {
    let want = Duration::from_millis(1);
    let span = Span::start(c);
    let mut late: Vec<u64> = (0..SLEEPS)
        .map(|_| {
            let t = Instant::now();
            std::thread::sleep(want);
            t.elapsed().saturating_sub(want).as_nanos() as u64
        })
        .collect();
    let exits = span.end();
    match summarize(&mut late) {
        Some(s) => println!(
            "BENCH M5 sleep_1ms n={} overshoot_mean_ns={} median_ns={} p99_ns={} max_ns={} {exits}",
            s.n, s.mean, s.median, s.p99, s.max
        ),
        None => println!("BENCH M5 sleep_1ms error=no-samples"),
    }
}

/// Pins the calling thread to `cpu`; false if the kernel refuses.
fn pin(cpu: usize) -> bool {
    // SAFETY: a zeroed cpu_set_t is valid; CPU_SET stays within it.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(cpu, &mut set);
        libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set) == 0
    }
}

fn pingpong(c: Option<&Counters>) {
    // Two pipes: ping (a -> b) and pong (b -> a).
    let pipes = std::io::pipe().and_then(|p| Ok((p, std::io::pipe()?)));
    let ((mut ping_r, mut ping_w), (mut pong_r, mut pong_w)) = match pipes {
        Ok(p) => p,
        Err(e) => {
            println!("BENCH M6 pipe_pingpong error={e}");
            return;
        }
    };
    let echo = std::thread::spawn(move || {
        let pinned = pin(1);
        let mut byte = [0u8];
        for _ in 0..PINGPONGS {
            if ping_r.read_exact(&mut byte).is_err() || pong_w.write_all(&byte).is_err() {
                break;
            }
        }
        pinned
    });
    let pinned = pin(0);
    let mut byte = [7u8];
    let span = Span::start(c);
    let t = Instant::now();
    let mut done = 0;
    for _ in 0..PINGPONGS {
        if ping_w.write_all(&byte).is_err() || pong_r.read_exact(&mut byte).is_err() {
            break;
        }
        done += 1;
    }
    let d = t.elapsed();
    let exits = span.end();
    let echo_pinned = echo.join().unwrap_or(false);
    println!(
        "BENCH M6 pipe_pingpong n={done} ns={} pinned={} {exits}",
        per_op(ns(d), done.max(1)),
        if pinned && echo_pinned { "0,1" } else { "no" }
    );
}

/// The benchmark disk: a VM's /dev/vda, or natively the card's
/// partition 2.
fn bench_disk() -> Option<String> {
    if std::path::Path::new("/dev/vda").exists() {
        return Some("/dev/vda".into());
    }
    let mut cards: Vec<String> = std::fs::read_dir("/dev")
        .ok()?
        .flatten()
        .filter_map(|e| e.file_name().into_string().ok())
        .filter(|n| n.starts_with("mmcblk") && n.ends_with("p2"))
        .collect();
    cards.sort();
    cards.first().map(|n| format!("/dev/{n}"))
}

/// 4 KiB-aligned memory for O_DIRECT.
struct Aligned(*mut u8, usize);

impl Aligned {
    fn new(len: usize) -> Self {
        let mut p: *mut libc::c_void = std::ptr::null_mut();
        // SAFETY: posix_memalign with a power-of-two alignment.
        let r = unsafe { libc::posix_memalign(&mut p, 4096, len) };
        assert_eq!(r, 0, "posix_memalign");
        // SAFETY: just allocated, len bytes.
        unsafe { std::ptr::write_bytes(p as *mut u8, 0x5a, len) };
        Self(p as *mut u8, len)
    }
    fn slice(&mut self) -> &mut [u8] {
        // SAFETY: the allocation above.
        unsafe { std::slice::from_raw_parts_mut(self.0, self.1) }
    }
}

impl Drop for Aligned {
    fn drop(&mut self) {
        // SAFETY: from posix_memalign.
        unsafe { libc::free(self.0 as *mut libc::c_void) };
    }
}

const DISK_BYTES: u64 = 64 << 20;
const DISK_REQ: usize = 1 << 20;
const RAND_READS: u64 = 512;

fn open_disk(write: bool) -> Option<(String, std::fs::File)> {
    let dev = bench_disk()?;
    let f = std::fs::OpenOptions::new()
        .read(true)
        .write(write)
        .custom_flags(libc::O_DIRECT)
        .open(&dev)
        .ok()?;
    Some((dev, f))
}

fn disk_line(id: &str, name: &str, dev: &str, bytes: u64, d: Duration, extra: &str, exits: String) {
    let kib = (bytes / 1024).max(1);
    println!(
        "BENCH {id} {name} dev={dev} bytes={bytes} ns={} ns_per_kib={} mib_s={} {extra}{exits}",
        ns(d),
        per_op(ns(d), kib),
        (bytes as u128 * 1_000_000_000 / ns(d).max(1)) >> 20,
    );
}

/// Queue depth 1 on the CPU that takes the disk's interrupt: Linux
/// routes a new SPI to CPU 0 (GICv2 ITARGETSR), so the disk benchmarks
/// run there, natively, under pivisor and under KVM alike. Elsewhere every
/// completion would also cost an IPI to wake the waiting CPU (and, in a
/// VM, an exit on each side), which measures the scheduler, not the disk.
fn pin_to_cpu0() -> bool {
    pin(0)
}

fn disk_reads(c: Option<&Counters>) {
    use std::os::unix::fs::FileExt;
    if !pin_to_cpu0() {
        println!("BENCH M7 disk_seq_read error=affinity");
        return;
    }
    let Some((dev, f)) = open_disk(false) else {
        println!("BENCH M7 disk_seq_read error=no-disk");
        return;
    };
    let mut buf = Aligned::new(DISK_REQ);
    let span = Span::start(c);
    let t = Instant::now();
    let mut done = 0u64;
    while done < DISK_BYTES {
        match f.read_at(buf.slice(), done) {
            Ok(n) if n > 0 => done += n as u64,
            _ => break,
        }
    }
    let d = t.elapsed();
    disk_line("M7", "disk_seq_read", &dev, done, d, "", span.end());
    // M8: 4 KiB at pseudo-random offsets inside the same 64 MiB.
    let mut one = Aligned::new(4096);
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let span = Span::start(c);
    let t = Instant::now();
    let mut n = 0u64;
    for _ in 0..RAND_READS {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let off = (x % (DISK_BYTES / 4096)) * 4096;
        if f.read_at(one.slice(), off).is_ok_and(|r| r == 4096) {
            n += 1;
        }
    }
    let d = t.elapsed();
    disk_line(
        "M8",
        "disk_rand_read",
        &dev,
        n * 4096,
        d,
        &format!("reads={n} ns_per_read={} ", per_op(ns(d), n.max(1))),
        span.end(),
    );
}

fn disk_write(c: Option<&Counters>) {
    use std::os::unix::fs::FileExt;
    if !pin_to_cpu0() {
        println!("BENCH M9 disk_seq_write error=affinity");
        return;
    }
    let Some((dev, f)) = open_disk(true) else {
        println!("BENCH M9 disk_seq_write error=no-disk");
        return;
    };
    let mut buf = Aligned::new(DISK_REQ);
    let span = Span::start(c);
    let t = Instant::now();
    let mut done = 0u64;
    while done < DISK_BYTES {
        match f.write_at(buf.slice(), done) {
            Ok(n) if n > 0 => done += n as u64,
            _ => break,
        }
    }
    let synced = f.sync_all().is_ok();
    let d = t.elapsed();
    disk_line(
        "M9",
        "disk_seq_write",
        &dev,
        done,
        d,
        &format!("fsync={} ", if synced { "ok" } else { "FAIL" }),
        span.end(),
    );
}

/// `pv-bench share victim SECONDS` and `pv-bench share flood DELAY
/// SECONDS`: two VMs on one card (guests/linux-share.conf). The victim
/// reads its disk at queue depth 1 (1 MiB O_DIRECT requests) for SECONDS
/// and prints its rate per 4 MiB; the flooder waits DELAY seconds, then
/// keeps FLOOD_THREADS requests in flight for SECONDS and prints its own
/// rate. The serial log's order says which of the victim's samples fell
/// in the flood (tools/harness/tests/disks.rs).
fn share(args: &[String]) {
    use std::os::unix::fs::FileExt;
    const FLOOD_THREADS: usize = 4;
    let secs = |i: usize| args.get(i).and_then(|s| s.parse::<u64>().ok());
    let (role, delay, run) = match args.first().map(String::as_str) {
        Some("victim") => ("victim", 0, secs(1)),
        Some("flood") => ("flood", secs(1).unwrap_or(0), secs(2)),
        _ => ("usage", 0, None::<u64>),
    };
    let Some(run) = run else {
        println!("SHARE error=usage (share victim SECONDS | share flood DELAY SECONDS)");
        return;
    };
    let Some((dev, f)) = open_disk(false) else {
        println!("SHARE {role} error=no-disk");
        return;
    };
    let len = f.metadata().map(|m| m.len()).unwrap_or(0);
    let len = std::fs::read_to_string(format!(
        "/sys/block/{}/size",
        dev.trim_start_matches("/dev/")
    ))
    .ok()
    .and_then(|s| s.trim().parse::<u64>().ok())
    .map_or(len, |sectors| sectors * 512);
    let span = (len / DISK_REQ as u64).clamp(1, 64) * DISK_REQ as u64;
    std::thread::sleep(Duration::from_secs(delay));
    let end = Instant::now() + Duration::from_secs(run);
    if role == "victim" {
        let mut buf = Aligned::new(DISK_REQ);
        let mut off = 0u64;
        while Instant::now() < end {
            let t = Instant::now();
            let mut got = 0u64;
            for _ in 0..4 {
                if f.read_at(buf.slice(), off).is_ok_and(|n| n == DISK_REQ) {
                    got += DISK_REQ as u64;
                }
                off = (off + DISK_REQ as u64) % span;
            }
            let ns = ns(t.elapsed()).max(1);
            println!(
                "SHARE victim bytes={got} kib_s={}",
                got as u128 * 1_000_000_000 / ns / 1024
            );
        }
        println!("SHARE victim end");
        return;
    }
    println!("SHARE flood start threads={FLOOD_THREADS}");
    let f = std::sync::Arc::new(f);
    let t = Instant::now();
    let workers: Vec<_> = (0..FLOOD_THREADS as u64)
        .map(|k| {
            let f = f.clone();
            std::thread::spawn(move || {
                let mut buf = Aligned::new(DISK_REQ);
                let mut off = (k * DISK_REQ as u64 * 8) % span;
                let mut got = 0u64;
                while Instant::now() < end {
                    if f.read_at(buf.slice(), off).is_ok_and(|n| n == DISK_REQ) {
                        got += DISK_REQ as u64;
                    }
                    off = (off + DISK_REQ as u64) % span;
                }
                got
            })
        })
        .collect();
    let got: u64 = workers.into_iter().map(|w| w.join().unwrap_or(0)).sum();
    let ns = ns(t.elapsed()).max(1);
    println!(
        "SHARE flood end bytes={got} kib_s={}",
        got as u128 * 1_000_000_000 / ns / 1024
    );
}

/// The network benchmarks' TCP and UDP ports on the peer.
const NET_TCP: u16 = 5001;
const NET_UDP: u16 = 5002;
/// Bytes M10 moves, and in what writes.
const NET_BYTES: usize = 32 << 20;
const NET_WRITE: usize = 64 << 10;
/// M11's round trips and datagram size.
const NET_RTTS: usize = 2000;
const NET_DGRAM: usize = 64;

/// The peer of M10 and M11: discards what a TCP connection sends and
/// answers with the byte count once it ends; echoes UDP datagrams. Runs
/// until killed.
fn net_serve() {
    use std::net::{TcpListener, UdpSocket};
    let udp = std::thread::spawn(|| {
        let Ok(s) = UdpSocket::bind(("0.0.0.0", NET_UDP)) else {
            println!("NETSERVE error=udp-bind");
            return;
        };
        let mut b = [0u8; 2048];
        while let Ok((n, from)) = s.recv_from(&mut b) {
            let _ = s.send_to(&b[..n], from);
        }
    });
    let Ok(l) = TcpListener::bind(("0.0.0.0", NET_TCP)) else {
        println!("NETSERVE error=tcp-bind");
        return;
    };
    println!("NETSERVE ready tcp={NET_TCP} udp={NET_UDP}");
    for c in l.incoming().flatten() {
        std::thread::spawn(move || {
            let mut c = c;
            let mut b = vec![0u8; 64 << 10];
            let mut n: u64 = 0;
            while let Ok(k) = c.read(&mut b) {
                if k == 0 {
                    break;
                }
                n += k as u64;
            }
            let _ = c.write_all(&n.to_le_bytes());
        });
    }
    let _ = udp.join();
}

/// M10: 32 MiB to the peer over TCP, until it confirms the count.
fn net_stream(c: Option<&Counters>, peer: &str) {
    use std::net::{Shutdown, TcpStream};
    // The peer may still be starting (another VM's boot): up to 60 s.
    let mut tries = 0;
    let mut s = loop {
        match TcpStream::connect((peer, NET_TCP)) {
            Ok(s) => break s,
            Err(_) if tries < 300 => {
                tries += 1;
                std::thread::sleep(Duration::from_millis(200));
            }
            Err(e) => {
                println!("BENCH M10 net_tcp_stream error=connect peer={peer} ({e})");
                return;
            }
        }
    };
    let _ = s.set_nodelay(true);
    let buf = vec![0x5au8; NET_WRITE];
    let span = Span::start(c);
    let t = Instant::now();
    let mut sent = 0;
    while sent < NET_BYTES {
        if s.write_all(&buf).is_err() {
            println!("BENCH M10 net_tcp_stream error=write");
            return;
        }
        sent += NET_WRITE;
    }
    let _ = s.shutdown(Shutdown::Write);
    let mut n = [0u8; 8];
    if s.read_exact(&mut n).is_err() || u64::from_le_bytes(n) != sent as u64 {
        println!(
            "BENCH M10 net_tcp_stream error=count got={}",
            u64::from_le_bytes(n)
        );
        return;
    }
    let d = t.elapsed();
    let kib = (sent / 1024) as u128;
    println!(
        "BENCH M10 net_tcp_stream peer={peer} bytes={sent} ns={} ns_per_kib={} mib_s={} {}",
        ns(d),
        per_op(ns(d), kib as u64),
        (sent as u128 * 1_000_000_000 / ns(d).max(1)) >> 20,
        span.end()
    );
}

/// M11: UDP round trips of a small datagram.
fn net_rtt(c: Option<&Counters>, peer: &str) {
    use std::net::UdpSocket;
    let Ok(s) = UdpSocket::bind(("0.0.0.0", 0)) else {
        println!("BENCH M11 net_udp_rtt error=bind");
        return;
    };
    if s.connect((peer, NET_UDP)).is_err() {
        println!("BENCH M11 net_udp_rtt error=connect peer={peer}");
        return;
    }
    let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
    let out = [0x33u8; NET_DGRAM];
    let mut back = [0u8; 2048];
    // A few unmeasured round trips first (ARP, caches).
    for _ in 0..10 {
        let _ = s.send(&out);
        let _ = s.recv(&mut back);
    }
    let mut times = Vec::with_capacity(NET_RTTS);
    let mut lost = 0;
    let span = Span::start(c);
    for _ in 0..NET_RTTS {
        let t = Instant::now();
        if s.send(&out).is_err() || s.recv(&mut back).is_err() {
            lost += 1;
            continue;
        }
        times.push(ns(t.elapsed()));
    }
    let exits = span.end();
    let times: &mut [u128] = &mut times;
    let mut t64: Vec<u64> = times.iter().map(|&t| t as u64).collect();
    match summarize(&mut t64) {
        Some(s) => println!(
            "BENCH M11 net_udp_rtt peer={peer} n={} lost={lost} rtt_mean_ns={} median_ns={} p99_ns={} max_ns={} {exits}",
            s.n, s.mean, s.median, s.p99, s.max
        ),
        None => println!("BENCH M11 net_udp_rtt error=no-answer peer={peer}"),
    }
}

fn main() {
    let want: Vec<String> = std::env::args().skip(1).collect();
    if want.first().is_some_and(|w| w == "share") {
        share(&want[1..]);
        return;
    }
    if want.first().is_some_and(|w| w == "net-serve") {
        net_serve();
        return;
    }
    let counters = Counters::open();
    println!(
        "BENCH start exit_counters={}",
        if counters.is_some() { "yes" } else { "no" }
    );
    let all: [(&str, &str, Bench); 5] = [
        ("M1", "cpu_loop", cpu_loop),
        ("M2", "memory", memory),
        ("M4", "getppid", syscalls),
        ("M5", "sleep_1ms", sleeps),
        ("M6", "pipe_pingpong", pingpong),
    ];
    for (id, name, run) in all {
        if want.is_empty() || want.iter().any(|w| w == id || w == name) {
            run(counters.as_ref());
        }
    }
    // The disk benchmarks overwrite the disk: only when named.
    let disk: [(&str, &str, Bench); 2] = [
        ("M7", "disk_reads", disk_reads),
        ("M9", "disk_write", disk_write),
    ];
    for (id, name, run) in disk {
        if want
            .iter()
            .any(|w| w == id || w == name || (id == "M7" && w == "M8"))
        {
            run(counters.as_ref());
        }
    }
    // The network's need a peer: only when named with one.
    if let Some(peer) = want.iter().find_map(|w| w.strip_prefix("peer=")) {
        if want.iter().any(|w| w == "M10" || w == "net_tcp_stream") {
            net_stream(counters.as_ref(), peer);
        }
        if want.iter().any(|w| w == "M11" || w == "net_udp_rtt") {
            net_rtt(counters.as_ref(), peer);
        }
    }
    println!("BENCH done");
}
