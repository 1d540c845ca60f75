//! `make bench`: runs the benchmarks natively, under pivisor and under
//! Linux/KVM (pv-vmm, tools/vmm) on QEMU raspi4b and writes the results
//! (results.json, results.csv), a report
//! (report.md) and the raw logs under the output directory; `make bench`
//! then draws ratios.png from results.json (tools/plot-bench.py).
//!
//! Figures come from `-icount shift=0,align=off,sleep=off` (exact guest
//! instruction counts, repeatable), except the cross-core ones (B6, M6),
//! which are medians of several plain-TCG runs (noisy: host timing), and
//! the Debian boot (DBOOT), the median of several -icount boots (natively
//! and under KVM the boot waits on device models that run in host time).
//!
//! Environment (the Makefile sets it): the artifacts as for `make test`,
//! `PIVISOR_BENCH_OUT` (output directory), `PIVISOR_BENCH_RUNS` (plain-TCG
//! runs and Debian boots per configuration, default 3).

use pivisor_harness::report::{self, Config, Figure, Results, SPECS};
use pivisor_harness::{artifact, dtb, Boot, Output};
use std::path::PathBuf;
use std::time::{Duration, Instant};

struct Bench {
    out: PathBuf,
    runs: usize,
    started: Instant,
    step: usize,
    steps: usize,
}

impl Bench {
    fn progress(&mut self, what: &str) {
        self.step += 1;
        eprintln!(
            "[bench {:>2}/{} {:>4}s] {what}",
            self.step,
            self.steps,
            self.started.elapsed().as_secs()
        );
    }

    fn save(&self, name: &str, o: &Output) {
        let dir = self.out.join("logs");
        let _ = std::fs::create_dir_all(&dir);
        let _ = std::fs::write(dir.join(format!("{name}.log")), &o.serial);
        if !o.aux.is_empty() {
            let _ = std::fs::write(dir.join(format!("{name}.aux.log")), &o.aux);
        }
    }

    fn run(&mut self, name: &str, what: &str, boot: Boot, done: &str) -> Output {
        self.progress(what);
        let o = boot.run_until_match(done);
        self.save(name, &o);
        if o.serial.contains("BENCH error") {
            eprintln!("[bench] {name}: the guest reported an error; see logs/{name}.log");
        }
        o
    }
}

fn micro(c: Config, icount: bool) -> Boot {
    let b = match c {
        Config::Native => {
            Boot::new(artifact("PIVISOR_BENCH_IMAGE")).dtb(dtb("bcm2711-rpi-4-b.dtb"))
        }
        Config::Pivisor => Boot::new(artifact("PIVISOR_IMAGE"))
            .initrd(artifact("PIVISOR_BUNDLE_BENCH"))
            .dtb(dtb("bcm2711-rpi-4-b.dtb")),
        Config::Kvm => pivisor_harness::kvm_host("bench"),
    }
    .timeout(Duration::from_secs(300));
    if icount {
        b.icount()
    } else {
        b
    }
}

fn linux(c: Config, icount: bool, cmd: &str) -> Boot {
    // The default bundle's VM has a disk (partition 2 of its card).
    let card = || artifact("PIVISOR_SD_IMAGE");
    let b = match c {
        Config::Native => pivisor_harness::native_linux(),
        Config::Pivisor => Boot::new(artifact("PIVISOR_IMAGE"))
            .initrd(artifact("PIVISOR_BUNDLE_LINUX"))
            .dtb(dtb("bcm2711-rpi-4-b.dtb"))
            .sd_copy_of(card()),
        Config::Kvm => pivisor_harness::kvm_host("linux").sd_copy_of(card()),
    }
    .timeout(Duration::from_secs(900))
    .type_after(r"LINUX ready", format!("{cmd}\r").as_bytes());
    if icount {
        b.icount()
    } else {
        b
    }
}

/// The disk benchmarks' boot: the same Linux with a card whose partition
/// 2 is the benchmark disk (natively Linux's own SD driver on it; under
/// pivisor and KVM the bundle's `disk = sd:2` as virtio-blk).
fn disk_linux(c: Config, card: PathBuf, icount: bool) -> Boot {
    let b = match c {
        Config::Native => pivisor_harness::native_linux(),
        Config::Pivisor => Boot::new(artifact("PIVISOR_IMAGE"))
            .initrd(artifact("PIVISOR_BUNDLE_LINUX_BENCH_DISK"))
            .dtb(dtb("bcm2711-rpi-4-b.dtb")),
        Config::Kvm => pivisor_harness::kvm_host("linux-bench-disk"),
    };
    let b = b
        .sd(card)
        .timeout(Duration::from_secs(900))
        .type_after(r"LINUX ready", b"pv-bench M7 M9\r");
    if icount {
        b.icount()
    } else {
        b
    }
}

/// A disk benchmark's exits per MiB moved and its MB/s, from its line.
fn disk_rates(text: &str, id: &str) -> (Option<f64>, Option<f64>) {
    let Some(f) = report::fields(text, id) else {
        return (None, None);
    };
    let num = |k: &str| f.get(k).and_then(|v| v.parse::<f64>().ok());
    let mib = num("bytes").map(|b| b / f64::from(1 << 20));
    let exits = num("exits").zip(mib).map(|(e, m)| e / m.max(1e-9));
    let mbs = num("bytes")
        .zip(num("ns"))
        .map(|(b, ns)| b / 1e6 / (ns.max(1.0) / 1e9));
    (exits, mbs)
}

/// The network benchmarks' boot: natively `pv-bench net-serve` and the
/// client as two processes over loopback; under pivisor two VMs on lan0
/// (guests/linux-bench-net.conf); under KVM the same two VMs under two
/// pv-vmm, their taps on a bridge in the host (the client on the console).
fn net_linux(c: Config) -> Option<Boot> {
    let b = match c {
        Config::Native => pivisor_harness::native_linux().type_after(
            r"LINUX ready",
            b"pv-bench net-serve & sleep 1; pv-bench M10 M11 peer=127.0.0.1\r",
        ),
        Config::Pivisor => Boot::new(artifact("PIVISOR_IMAGE"))
            .initrd(artifact("PIVISOR_BUNDLE_LINUX_BENCH_NET"))
            .dtb(dtb("bcm2711-rpi-4-b.dtb"))
            .type_after(r"\[server\] NETSERVE ready", b"")
            .type_after(r"(?m)^LINUX ready", b"pv-bench M10 M11 peer=10.0.0.2\r"),
        Config::Kvm => pivisor_harness::kvm_host("linux-bench-net")
            .type_after(r"LINUX ready", b"pv-bench M10 M11 peer=10.0.0.2\r"),
    };
    Some(b.timeout(Duration::from_secs(900)).icount())
}

/// The Debian boot (DBOOT): partition 2 of the Debian card (a scratch
/// copy) booted to its login prompt, natively (Debian's kernel and
/// initramfs with root=sd:2: Linux's own SD driver) and as a pivisor VM
/// (guests/debian-bench.conf: the same partition through virtio-blk),
/// and under KVM (the same bundle under pv-vmm, its disk the host's
/// /dev/mmcblk0p2, from a host initramfs of its own).
fn debian_boot(c: Config) -> Boot {
    let b = match c {
        Config::Native => Boot::new(artifact("PIVISOR_DEBIAN_IMAGE"))
            .dtb(dtb("native-debian.dtb"))
            .initrd(artifact("PIVISOR_DEBIAN_INITRD"))
            .append(
                "console=ttyAMA0,115200 rdinit=/init root=sd:2 panic=5 pivisor.hostname=alpha \
                 kvm-arm.mode=none",
            ),
        Config::Pivisor => Boot::new(artifact("PIVISOR_IMAGE"))
            .initrd(artifact("PIVISOR_BUNDLE_DEBIAN_BENCH"))
            .dtb(dtb("bcm2711-rpi-4-b.dtb")),
        Config::Kvm => Boot::new(artifact("PIVISOR_LINUX_IMAGE"))
            .dtb(dtb("native-host.dtb"))
            .initrd(artifact("PIVISOR_KVM_HOST_DEBIAN_INITRD"))
            .append(
                "console=ttyAMA0,115200 earlycon=pl011,mmio32,0xfe201000 rdinit=/init panic=1 \
                 quiet pv.vm=debian-bench",
            ),
    };
    b.sd_copy_of(artifact("PIVISOR_DEBIAN_CARD"))
        .timeout(Duration::from_secs(2400))
        .icount()
}

/// A fresh benchmark card: 256 MiB, partition 1 (8 MiB, the boot one's
/// place), partition 2 (128 MiB) the benchmark disk.
fn bench_card(out: &std::path::Path, c: Config) -> PathBuf {
    let p = pivisor_harness::sd::test_card(
        &format!("bench-{}", c.name()),
        256 << 20,
        &[(
            0,
            &[(0, 0x80, 0x0c, 2048, 16384), (1, 0, 0x83, 18432, 262144)],
        )],
    );
    let dst = out.join(format!("card-{}.img", c.name()));
    let _ = std::fs::rename(&p, &dst);
    dst
}

/// One configuration's Debian boots: the login prompt's uptime and the
/// span from systemd's start to it, per run (microseconds).
struct DebianBoots {
    config: Config,
    totals: Vec<u64>,
    spans: Vec<u64>,
}

/// The median of `xs` in microseconds (None if empty).
fn median_us(xs: &[u64]) -> Option<u64> {
    report::median(&mut xs.iter().map(|&x| x as f64).collect::<Vec<_>>()).map(|m| m as u64)
}

/// The Debian boot in detail: the whole boot to the prompt and the span
/// from systemd's start to it, each the median of the runs with its ratio
/// to native's and the runs' spread.
fn debian_markdown(d: &[DebianBoots]) -> String {
    if d.is_empty() {
        return String::new();
    }
    let native = d.iter().find(|x| x.config == Config::Native);
    let cell = |xs: &[u64], n: Option<&[u64]>| {
        let Some(v) = median_us(xs) else {
            return "n/a".to_string();
        };
        let mut c = format!("{:.1} ms", v as f64 / 1e3);
        if let Some(n) = n.and_then(median_us).filter(|&n| n > 0) {
            c += &format!(" ({:.3})", v as f64 / n as f64);
        }
        let (lo, hi) = (xs.iter().min(), xs.iter().max());
        if let (Some(&lo), Some(&hi)) = (lo, hi) {
            if xs.len() > 1 {
                c += &format!(", runs {:.1}-{:.1}", lo as f64 / 1e3, hi as f64 / 1e3);
            }
        }
        c
    };
    let rows: Vec<String> = d
        .iter()
        .map(|b| {
            format!(
                "| {} | {} | {} | {} |",
                b.config.name(),
                b.totals.len(),
                cell(&b.totals, native.map(|n| n.totals.as_slice())),
                cell(&b.spans, native.map(|n| n.spans.as_slice()))
            )
        })
        .collect();
    format!(
        "\n## The Debian boot in detail\n\n\
         DBOOT is the uptime at the login prompt, the median of the runs.\n\
         Natively the kernel also probes the whole board and udev loads its\n\
         drivers (sound, video, Bluetooth), which the VM's tree leaves out;\n\
         from systemd's start to the prompt both run the same units on the\n\
         same root file system. Under KVM pv-vmm emulates the PL011 in user\n\
         space: every character of systemd's console output is an exit to\n\
         it. Natively and under KVM the boot also waits on device models\n\
         that run in host time, so those figures move between runs (the\n\
         spread); pivisor's repeat exactly.\n\n\
         | config | runs | to the login prompt (median) | systemd's start to the prompt (median) |\n\
         |---|---:|---:|---:|\n{}\n",
        rows.join("\n")
    )
}

fn command_line(cmd: &str, args: &[&str]) -> String {
    std::process::Command::new(cmd)
        .args(args)
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.lines().next().map(str::to_string))
        .unwrap_or_else(|| "unknown".into())
}

fn main() {
    let out =
        PathBuf::from(std::env::var("PIVISOR_BENCH_OUT").unwrap_or_else(|_| "build/bench".into()));
    let runs = std::env::var("PIVISOR_BENCH_RUNS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(3usize)
        .clamp(1, 99);
    let _ = std::fs::create_dir_all(&out);
    let measured = Config::ALL;
    // PIVISOR_BENCH_ONLY=disk (or micro, linux, net, debian, tcg; comma-separated)
    // runs only those groups: for working on one path.
    let only: Vec<String> = std::env::var("PIVISOR_BENCH_ONLY")
        .map(|s| {
            s.split(',')
                .map(|w| w.trim().to_string())
                .filter(|w| !w.is_empty())
                .collect()
        })
        .unwrap_or_default();
    let want = |g: &str| only.is_empty() || only.iter().any(|w| w == g);
    let mut b = Bench {
        out: out.clone(),
        runs,
        started: Instant::now(),
        step: 0,
        steps: measured.len()
            * (["micro", "linux", "disk", "disk", "net"]
                .iter()
                .filter(|g| want(g))
                .count()
                + if want("tcg") { 2 * runs } else { 0 })
            + if want("debian") {
                measured.len() * runs
            } else {
                0
            },
    };
    let mut results = Results::new();
    let mut disk_detail: Vec<String> = Vec::new();
    let mut debian_detail: Vec<DebianBoots> = Vec::new();
    let put = |r: &mut Results, id: &str, c: Config, f: Option<Figure>| {
        if let Some(f) = f {
            r.insert((id.to_string(), c), f);
        } else {
            eprintln!("[bench] no figure for {id} ({})", c.name());
        }
    };
    for c in measured {
        if want("micro") || want("linux") {
            // Everything exact: -icount.
            let m = want("micro").then(|| {
                b.run(
                    &format!("micro-{}-icount", c.name()),
                    &format!("micro benchmarks, {}, -icount", c.name()),
                    micro(c, true),
                    r"BENCH done|BENCH error",
                )
            });
            let l = want("linux").then(|| {
                b.run(
                    &format!("linux-{}-icount", c.name()),
                    &format!("Linux boot and pv-bench, {}, -icount", c.name()),
                    linux(c, true, "pv-bench"),
                    r"BENCH done",
                )
            });
            for sp in SPECS
                .iter()
                .filter(|s| !s.plain_tcg && !matches!(s.id, "M7" | "M8" | "M9" | "M10" | "M11"))
            {
                let micro_id = sp.id.starts_with('B') && sp.id != "BOOT";
                let f = match (sp.id, &m, &l) {
                    (_, Some(m), _) if micro_id => report::figure(&m.serial, sp),
                    (_, _, Some(l)) if !micro_id => {
                        // Under KVM the guest's lines follow pv-vmm's start
                        // line (the host boots quietly before it).
                        let guest = match c {
                            Config::Kvm => l.serial.split_once("pv-vmm: VM '").map_or("", |x| x.1),
                            _ => &l.serial,
                        };
                        if sp.id == "BOOT" {
                            report::printk_us(guest, "Run /init as init process")
                                .map(Figure::time_us)
                        } else {
                            report::figure(&l.serial, sp)
                        }
                    }
                    _ => continue,
                };
                put(&mut results, sp.id, c, f);
            }
        }
        if want("disk") {
            // The disk, -icount, on a fresh card.
            let card = bench_card(&b.out, c);
            let d = b.run(
                &format!("disk-{}-icount", c.name()),
                &format!("disk benchmarks, {}, -icount", c.name()),
                disk_linux(c, card.clone(), true),
                r"BENCH done",
            );
            let _ = std::fs::remove_file(&card);
            for sp in SPECS.iter().filter(|s| matches!(s.id, "M7" | "M8" | "M9")) {
                put(&mut results, sp.id, c, report::figure(&d.serial, sp));
            }
            // Once more in plain TCG, for MB/s in host time (information).
            let card = bench_card(&b.out, c);
            let t = b.run(
                &format!("disk-{}-tcg", c.name()),
                &format!("disk benchmarks, {}, plain TCG", c.name()),
                disk_linux(c, card.clone(), false),
                r"BENCH done",
            );
            let _ = std::fs::remove_file(&card);
            for id in ["M7", "M8", "M9"] {
                let (exits, _) = disk_rates(&d.serial, id);
                let (_, mbs) = disk_rates(&t.serial, id);
                let f = |v: Option<f64>, p: usize| v.map_or("n/a".into(), |v| format!("{v:.p$}"));
                disk_detail.push(format!(
                    "| {id} | {} | {} | {} |",
                    c.name(),
                    f(exits, 1),
                    f(mbs, 2)
                ));
            }
        }
        if want("net") {
            if let Some(boot) = net_linux(c) {
                let n = b.run(
                    &format!("net-{}-icount", c.name()),
                    &format!("network benchmarks, {}, -icount", c.name()),
                    boot,
                    r"BENCH done",
                );
                for sp in SPECS.iter().filter(|s| matches!(s.id, "M10" | "M11")) {
                    put(&mut results, sp.id, c, report::figure(&n.serial, sp));
                }
            }
        }
        if want("debian") {
            // Several boots: natively and under KVM the boot waits on
            // devices whose models run in host time (natively the whole
            // board; the host's console), so the figure moves between runs
            // (natively by up to a second); the median is reported, the
            // spread with it.
            let mut boots = DebianBoots {
                config: c,
                totals: Vec::new(),
                spans: Vec::new(),
            };
            for k in 1..=b.runs {
                let runs = b.runs;
                let d = b.run(
                    &format!("debian-{}-icount{k}", c.name()),
                    &format!(
                        "Debian boot to its login prompt, {}, -icount, run {k} of {runs}",
                        c.name()
                    ),
                    debian_boot(c),
                    r"BOOTMARK getty \S+ at uptime \d+\.\d+ s|Kernel panic",
                );
                // Apart from the whole boot, the span both boots spend on
                // the same work: systemd's start to the prompt (before it,
                // natively the kernel also probes the whole board).
                let total = report::bootmark_us(&d.serial);
                let init = report::printk_us(&d.serial, r"systemd\[1\]: systemd \d+");
                let ms =
                    |v: Option<u64>| v.map_or("n/a".into(), |v| format!("{:.1}", v as f64 / 1e3));
                eprintln!(
                    "[bench] Debian, {}: login prompt at {} ms, systemd from {} ms",
                    c.name(),
                    ms(total),
                    ms(init)
                );
                boots.totals.extend(total);
                boots
                    .spans
                    .extend(total.zip(init).map(|(t, i)| t.saturating_sub(i)));
            }
            put(
                &mut results,
                "DBOOT",
                c,
                median_us(&boots.totals).map(Figure::time_us),
            );
            debian_detail.push(boots);
        }
        if want("tcg") {
            // Cross-core: medians over plain-TCG runs.
            let (mut b6, mut m6) = (Vec::new(), Vec::new());
            for k in 1..=b.runs {
                let runs = b.runs;
                let m = b.run(
                    &format!("micro-{}-tcg{k}", c.name()),
                    &format!("B6, {}, plain TCG, run {k} of {runs}", c.name()),
                    micro(c, false),
                    r"BENCH done|BENCH error",
                );
                b6.extend(report::figure(&m.serial, &SPECS[6]));
                let l = b.run(
                    &format!("linux-{}-tcg{k}", c.name()),
                    &format!("M6, {}, plain TCG, run {k} of {runs}", c.name()),
                    linux(c, false, "pv-bench M6"),
                    r"BENCH done",
                );
                m6.extend(report::figure(&l.serial, &SPECS[12]));
            }
            put(&mut results, "B6", c, report::median_figure(&b6));
            put(&mut results, "M6", c, report::median_figure(&m6));
        }
    }
    let qemu = command_line(
        &std::env::var("PIVISOR_QEMU").unwrap_or_else(|_| "qemu-system-aarch64".into()),
        &["--version"],
    );
    let date = command_line("date", &["-u", "+%Y-%m-%d %H:%M UTC"]);
    let meta = [
        ("qemu", qemu.clone()),
        ("machine", "raspi4b".to_string()),
        ("date", date.clone()),
        (
            "icount",
            "-icount shift=0,align=off,sleep=off (1 ns = 1 guest instruction)".to_string(),
        ),
        ("plain_tcg_runs", runs.to_string()),
        (
            "kvm",
            "the same small kernel as host at EL2, pv-vmm (tools/vmm): in-kernel GICv2, PSCI, \
             PL011/mailbox/exit counters emulated in user space"
                .to_string(),
        ),
    ];
    let table = report::markdown_table(&results);
    let disk = if disk_detail.is_empty() {
        String::new()
    } else {
        format!(
            "\n## The disk in detail\n\n\
             Exits per MiB moved (-icount, the VM's exits; natively none) and\n\
             MB/s in a plain-TCG run (host time: for information, noisy).\n\n\
             | benchmark | config | exits per MiB | MB/s (plain TCG) |\n\
             |---|---|---:|---:|\n{}\n",
            disk_detail.join("\n")
        )
    };
    let debian = debian_markdown(&debian_detail);
    let goals = report::markdown_targets(&results);
    let md = format!(
        "# pivisor benchmarks\n\n\
         {qemu}, machine raspi4b, {date}.\n\n\
         Mode: `-icount shift=0,align=off,sleep=off` unless marked: guest time\n\
         advances one nanosecond per guest instruction, so `instr` figures are\n\
         exact instruction counts and repeat bit for bit. QEMU models no\n\
         caches, TLBs or stage-2 walk cost: these are instruction ratios, not\n\
         cycle ratios. All cores share the one icount clock, so the cores not\n\
         measuring wait in WFI. B6 and M6 cross cores: medians of {runs}\n\
         plain-TCG runs each, host timing, noisy.\n\n\
         Micro benchmarks (B): a bare-metal guest (guests/bench), cost per\n\
         operation beyond the same loop with a NOP; exits per operation.\n\
         Macro benchmarks (M): pv-bench inside Linux (guests/progs), exits\n\
         in total per benchmark (the exit-counter page: pivisor's, or\n\
         pv-vmm's from KVM's statistics). Exits per second: over the\n\
         operation's cost (B1, B2, B5, B6) or the benchmark's whole span (M). BOOT: the\n\
         small kernel's printk time at `Run /init`. DBOOT: the Debian\n\
         system's uptime when its serial login prompt comes (systemd, root\n\
         on the card: natively Linux's SD driver, under pivisor\n\
         virtio-blk on pivisor's; under KVM pv-vmm's on the host's).\n\n\
         KVM: the same small kernel booted natively at EL2 as the host,\n\
         running the same bundle under pv-vmm (tools/vmm): KVM's in-kernel\n\
         GICv2 and PSCI; the PL011, mailbox and exit-counter page emulated\n\
         in pv-vmm (so every console character is an exit to user space,\n\
         where pivisor passes the PL011 through; this weighs on BOOT).\n\
         KVM's exit counts are its own statistics (exits, hvc, wfi/wfe,\n\
         mmio kernel/user).\n\n\
         {table}\n\
         Ratios are left out where the native cost is below 2 (a trapped\n\
         operation against one instruction).\n\n\
         ## Targets\n\n\
         {goals}{disk}{debian}"
    );
    let write = |name: &str, text: &str| {
        let p = out.join(name);
        if let Err(e) = std::fs::write(&p, text) {
            eprintln!("[bench] cannot write {}: {e}", p.display());
            std::process::exit(1);
        }
    };
    write("results.json", &report::json(&results, &meta));
    write("results.csv", &report::csv(&results));
    write("report.md", &md);
    println!("{table}\n{goals}");
    eprintln!(
        "[bench] done in {}s: {}/report.md, results.json, results.csv, logs/",
        b.started.elapsed().as_secs(),
        out.display()
    );
}
