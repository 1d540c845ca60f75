//! The benchmark report: `BENCH` lines parsed into records, one figure per
//! benchmark and configuration, ratios against native, and the results as
//! CSV, JSON and a markdown table. Pure text in, text out (host-tested);
//! `make bench` (src/bin/bench.rs) runs the boots and writes the files.

use std::collections::BTreeMap;
use std::fmt::Write;

/// Where a figure was measured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Config {
    /// No hypervisor: QEMU boots the guest directly.
    Native,
    /// Under pivisor.
    Pivisor,
    /// Under Linux/KVM on the same emulated board.
    Kvm,
}

impl Config {
    /// Every configuration, in report order.
    pub const ALL: [Config; 3] = [Config::Native, Config::Pivisor, Config::Kvm];

    /// Its name in the files.
    pub fn name(self) -> &'static str {
        match self {
            Config::Native => "native",
            Config::Pivisor => "pivisor",
            Config::Kvm => "kvm",
        }
    }
}

/// One benchmark's figure in one configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct Figure {
    /// The primary value (see [`Spec::key`]).
    pub value: f64,
    /// Exits during the benchmark as the line reports them (per operation
    /// for the micro benchmarks, in total for the macro ones); None when
    /// not counted.
    pub exits: Option<f64>,
    /// Exits per second of guest time, where the line allows it (see
    /// [`Spec::rate`]).
    pub per_s: Option<f64>,
    /// Requests the benchmark made, where its line says (`reads=`: the
    /// disk's random reads), for exits per request.
    pub requests: Option<f64>,
    /// Of the exits, those for physical interrupts (`exit_kinds=irq:N`):
    /// timer ticks and kicks, which follow time rather than requests.
    pub irq: Option<f64>,
}

impl Figure {
    /// A figure that is a time alone (the boot benchmarks: no exits or
    /// requests on a line to count).
    pub fn time_us(us: u64) -> Figure {
        Figure {
            value: us as f64,
            exits: None,
            per_s: None,
            requests: None,
            irq: None,
        }
    }
}

/// How a benchmark's exits per second follow from its line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rate {
    /// Not meaningful (a latency, or no exits counted).
    None,
    /// Exits per operation over the primary value, nanoseconds per
    /// operation (back-to-back operations).
    PerOp,
    /// Exits in total over the line's `span_ns`.
    Span,
}

/// What the report takes from a benchmark's line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Spec {
    /// Benchmark id (B1, M5, BOOT, ...).
    pub id: &'static str,
    /// What it measures.
    pub what: &'static str,
    /// The key of the primary value on the `BENCH` line.
    pub key: &'static str,
    /// Its unit.
    pub unit: &'static str,
    /// The key of the exit count, if the line has one.
    pub exits_key: &'static str,
    /// Measured in plain TCG (cross-core), medians over runs; every other
    /// figure comes from `-icount`.
    pub plain_tcg: bool,
    /// How its exits per second are computed.
    pub rate: Rate,
}

/// The benchmarks, in report order.
pub const SPECS: [Spec; 20] = [
    spec("B1", "null hypercall (HVC)", "ns", "instr", "exits", false),
    spec("B2r", "GICD register read", "ns", "instr", "exits", false),
    spec("B2w", "GICD_SGIR write", "ns", "instr", "exits", false),
    spec(
        "B3",
        "SGI to self, IAR + EOIR round trip",
        "ns",
        "instr",
        "exits_beyond_sgir",
        false,
    ),
    spec(
        "B4",
        "virtual timer latency (mean)",
        "mean_ns",
        "instr",
        "exits",
        false,
    ),
    spec(
        "B5",
        "mailbox status read (emulated device)",
        "ns",
        "instr",
        "exits",
        false,
    ),
    spec(
        "B6",
        "SGI to another vCPU and back (median)",
        "median_ns",
        "ns",
        "exits",
        true,
    ),
    spec("M1", "CPU loop (per step)", "ns", "instr", "exits", false),
    spec(
        "M2",
        "first touch of 64 MiB (per page)",
        "ns_per_page",
        "instr",
        "exits",
        false,
    ),
    spec(
        "M3",
        "re-touch of 64 MiB (per page)",
        "ns_per_page",
        "instr",
        "exits",
        false,
    ),
    spec("M4", "getppid", "ns", "instr", "exits", false),
    spec(
        "M5",
        "1 ms sleep overshoot (mean)",
        "overshoot_mean_ns",
        "instr",
        "exits",
        false,
    ),
    spec(
        "M6",
        "pipe ping-pong CPU 0 <-> 1",
        "ns",
        "ns",
        "exits",
        true,
    ),
    spec(
        "M7",
        "disk: sequential read of 64 MiB, O_DIRECT (per KiB)",
        "ns_per_kib",
        "instr",
        "exits",
        false,
    ),
    spec(
        "M8",
        "disk: 4 KiB random reads, one at a time (per KiB)",
        "ns_per_kib",
        "instr",
        "exits",
        false,
    ),
    spec(
        "M9",
        "disk: sequential write of 64 MiB and fsync (per KiB)",
        "ns_per_kib",
        "instr",
        "exits",
        false,
    ),
    spec(
        "M10",
        "network: TCP stream of 32 MiB between two VMs (per KiB)",
        "ns_per_kib",
        "instr",
        "exits",
        false,
    ),
    spec(
        "M11",
        "network: UDP round trip of 64 bytes (mean)",
        "rtt_mean_ns",
        "instr",
        "exits",
        false,
    ),
    spec("BOOT", "Linux boot to /init", "us", "us", "", false),
    spec(
        "DBOOT",
        "Debian (systemd, root on the card) boot to its login prompt",
        "us",
        "us",
        "",
        false,
    ),
];

const fn spec(
    id: &'static str,
    what: &'static str,
    key: &'static str,
    unit: &'static str,
    exits_key: &'static str,
    plain_tcg: bool,
) -> Spec {
    Spec {
        id,
        what,
        key,
        unit,
        exits_key,
        plain_tcg,
        rate: match id.as_bytes()[0] {
            b'M' => Rate::Span,
            _ if matches!(id.as_bytes(), b"B1" | b"B2r" | b"B2w" | b"B5" | b"B6") => Rate::PerOp,
            _ => Rate::None,
        },
    }
}

/// The `key=value` fields of the `BENCH <id> ...` line for `id` in `text`
/// (the last one, if a run printed it twice).
pub fn fields(text: &str, id: &str) -> Option<BTreeMap<String, String>> {
    let line = text.lines().rev().find(|l| {
        l.split_whitespace().nth(1) == Some(id) && l.trim_start().starts_with("BENCH ")
    })?;
    Some(
        line.split_whitespace()
            .filter_map(|w| w.split_once('='))
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
    )
}

/// The figure for `spec` in one run's output, if the run printed it.
pub fn figure(text: &str, spec: &Spec) -> Option<Figure> {
    let f = fields(text, spec.id)?;
    let value = f
        .get(spec.key)?
        .parse::<f64>()
        .ok()
        .filter(|v| v.is_finite())?;
    let exits = f
        .get(spec.exits_key)
        .and_then(|e| e.parse::<f64>().ok())
        .filter(|v| v.is_finite());
    let span = f.get("span_ns").and_then(|s| s.parse::<f64>().ok());
    let per_s = match (spec.rate, exits, span) {
        (Rate::PerOp, Some(e), _) if value > 0.0 => Some(e / value * 1e9),
        (Rate::Span, Some(e), Some(t)) if t > 0.0 => Some(e / t * 1e9),
        _ => None,
    };
    let requests = f.get("reads").and_then(|r| r.parse::<f64>().ok());
    let irq = f.get("exit_kinds").and_then(|k| {
        k.split(',')
            .find_map(|kv| kv.strip_prefix("irq:"))
            .and_then(|n| n.parse::<f64>().ok())
    });
    Some(Figure {
        value,
        exits,
        per_s,
        requests,
        irq,
    })
}

/// The printk time, in microseconds, of the first kernel log line
/// matching `line` (a regex) in `text`.
pub fn printk_us(text: &str, line: &str) -> Option<u64> {
    let re = regex::Regex::new(&format!(r"\[\s*(\d+)\.(\d{{6}})\] {line}")).ok()?;
    let c = re.captures(text)?;
    Some(c[1].parse::<u64>().ok()? * 1_000_000 + c[2].parse::<u64>().ok()?)
}

/// The Debian systems' login-prompt mark (guests/debian/rootfs: the
/// serial getty's ExecStartPre writes the kernel's uptime, /proc/uptime,
/// to the console just before the prompt): that uptime in microseconds.
/// The first mark counts (a later one is a second life or another
/// console).
pub fn bootmark_us(text: &str) -> Option<u64> {
    let re = regex::Regex::new(r"BOOTMARK getty \S+ at uptime (\d+)\.(\d{2}) s").ok()?;
    let c = re.captures(text)?;
    Some(c[1].parse::<u64>().ok()?.checked_mul(1_000_000)? + c[2].parse::<u64>().ok()? * 10_000)
}

/// The median of `xs` (None if empty); NaNs are not expected.
pub fn median(xs: &mut [f64]) -> Option<f64> {
    if xs.is_empty() {
        return None;
    }
    xs.sort_by(|a, b| a.total_cmp(b));
    let n = xs.len();
    Some(if n % 2 == 1 {
        xs[n / 2]
    } else {
        (xs[n / 2 - 1] + xs[n / 2]) / 2.0
    })
}

/// The median figure of several runs (value and exits separately).
pub fn median_figure(figs: &[Figure]) -> Option<Figure> {
    let value = median(&mut figs.iter().map(|f| f.value).collect::<Vec<_>>())?;
    let mut ex: Vec<f64> = figs.iter().filter_map(|f| f.exits).collect();
    let mut rates: Vec<f64> = figs.iter().filter_map(|f| f.per_s).collect();
    Some(Figure {
        value,
        exits: median(&mut ex),
        per_s: median(&mut rates),
        requests: figs.first().and_then(|f| f.requests),
        irq: None,
    })
}

/// All figures: (benchmark id, configuration) -> figure.
pub type Results = BTreeMap<(String, Config), Figure>;

/// `a / b`, when both are there and the base is large enough to divide
/// by (a native cost of 0 or 1 instruction makes a ratio meaningless).
pub fn ratio(a: Option<f64>, base: Option<f64>) -> Option<f64> {
    match (a, base) {
        (Some(a), Some(b)) if b >= 2.0 => Some(a / b),
        _ => None,
    }
}

fn get<'a>(r: &'a Results, id: &str, c: Config) -> Option<&'a Figure> {
    r.get(&(id.to_string(), c))
}

fn num(x: Option<f64>) -> String {
    match x {
        Some(v) if v.fract() == 0.0 && v.abs() < 1e15 => format!("{v:.0}"),
        Some(v) => format!("{v:.3}"),
        None => String::new(),
    }
}

/// CSV: one row per benchmark and configuration.
pub fn csv(r: &Results) -> String {
    let mut s = String::from("benchmark,description,config,mode,value,unit,exits,exits_per_s\n");
    for sp in &SPECS {
        for c in Config::ALL {
            if let Some(f) = get(r, sp.id, c) {
                let mode = if sp.plain_tcg { "tcg-median" } else { "icount" };
                let _ = writeln!(
                    s,
                    "{},\"{}\",{},{mode},{},{},{},{}",
                    sp.id,
                    sp.what,
                    c.name(),
                    num(Some(f.value)),
                    sp.unit,
                    num(f.exits),
                    num(f.per_s.map(f64::round))
                );
            }
        }
    }
    s
}

fn json_str(s: &str) -> String {
    let mut o = String::from("\"");
    for ch in s.chars() {
        match ch {
            '"' => o.push_str("\\\""),
            '\\' => o.push_str("\\\\"),
            c if (c as u32) < 0x20 => {
                let _ = write!(o, "\\u{:04x}", c as u32);
            }
            c => o.push(c),
        }
    }
    o.push('"');
    o
}

fn json_num(x: Option<f64>) -> String {
    match x {
        Some(v) if v.is_finite() => format!("{v}"),
        _ => "null".into(),
    }
}

/// JSON: the run's metadata and every figure.
pub fn json(r: &Results, meta: &[(&str, String)]) -> String {
    let mut s = String::from("{\n  \"meta\": {");
    for (i, (k, v)) in meta.iter().enumerate() {
        let _ = write!(
            s,
            "{}\n    {}: {}",
            if i == 0 { "" } else { "," },
            json_str(k),
            json_str(v)
        );
    }
    s.push_str("\n  },\n  \"results\": [");
    let mut first = true;
    for sp in &SPECS {
        for c in Config::ALL {
            if let Some(f) = get(r, sp.id, c) {
                let _ = write!(
                    s,
                    "{}\n    {{\"benchmark\": {}, \"description\": {}, \"config\": {}, \"mode\": {}, \"value\": {}, \"unit\": {}, \"exits\": {}, \"exits_per_s\": {}}}",
                    if first { "" } else { "," },
                    json_str(sp.id),
                    json_str(sp.what),
                    json_str(c.name()),
                    json_str(if sp.plain_tcg { "tcg-median" } else { "icount" }),
                    json_num(Some(f.value)),
                    json_str(sp.unit),
                    json_num(f.exits),
                    json_num(f.per_s.map(f64::round))
                );
                first = false;
            }
        }
    }
    s.push_str("\n  ]\n}\n");
    s
}

/// The markdown table: benchmark, native, pivisor, KVM, the two ratios,
/// and each hypervisor's exits (as the line counts them) and exits per
/// second of guest time.
pub fn markdown_table(r: &Results) -> String {
    let mut s = String::from(
        "| benchmark | unit | native | pivisor | KVM | pivisor/native | KVM/native | pivisor exits | pivisor exits/s | KVM exits | KVM exits/s |\n\
         |---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n",
    );
    let cell = |x: Option<f64>| {
        let t = num(x);
        if t.is_empty() {
            "n/a".to_string()
        } else {
            t
        }
    };
    let rcell = |x: Option<f64>| x.map_or("n/a".to_string(), |x| format!("{x:.3}"));
    for sp in &SPECS {
        let v = |c| get(r, sp.id, c).map(|f| f.value);
        let exits = |c| get(r, sp.id, c).and_then(|f| f.exits);
        let rate = |c| get(r, sp.id, c).and_then(|f| f.per_s).map(f64::round);
        let _ = writeln!(
            s,
            "| {} {}{} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            sp.id,
            sp.what,
            if sp.plain_tcg {
                " (plain TCG, noisy)"
            } else {
                ""
            },
            sp.unit,
            cell(v(Config::Native)),
            cell(v(Config::Pivisor)),
            cell(v(Config::Kvm)),
            rcell(ratio(v(Config::Pivisor), v(Config::Native))),
            rcell(ratio(v(Config::Kvm), v(Config::Native))),
            cell(exits(Config::Pivisor)),
            cell(rate(Config::Pivisor)),
            cell(exits(Config::Kvm)),
            cell(rate(Config::Kvm)),
        );
    }
    s
}

/// One target of the benchmark issue, checked against the figures.
#[derive(Debug, Clone, PartialEq)]
pub struct Target {
    /// What is required.
    pub rule: String,
    /// Met (Some(true)), missed (Some(false)), or not checkable yet
    /// (None: a figure is missing).
    pub met: Option<bool>,
    /// The figures it was judged on.
    pub seen: String,
}

fn value(r: &Results, id: &str, c: Config) -> Option<f64> {
    get(r, id, c).map(|f| f.value)
}

/// The targets: every macro benchmark pivisor/native <= max(1.02,
/// KVM/native + 0.005) and no worse than KVM; first touch about 1.00; boot
/// <= 1.10 x native; B1 <= 150 and B2 <= 400 instructions; B3 no exit
/// beyond the SGIR write; B4's overhead over native at most one exit's
/// worth (B1's cost) and below KVM's.
pub fn targets(r: &Results) -> Vec<Target> {
    let mut out = Vec::new();
    let mut add =
        |rule: String, met: Option<bool>, seen: String| out.push(Target { rule, met, seen });
    let rt = |id: &str, c| ratio(value(r, id, c), value(r, id, Config::Native));
    for id in ["M1", "M2", "M3", "M4", "M5", "M6"] {
        let (p, k) = (rt(id, Config::Pivisor), rt(id, Config::Kvm));
        let limit = k.map_or(1.02, |k| f64::max(1.02, k + 0.005));
        let met = p.map(|p| p <= limit && k.is_none_or(|k| p <= k));
        let kvm = k.map_or("KVM n/a".into(), |k| format!("KVM/native {k:.3}"));
        add(
            format!("{id}: pivisor/native <= max(1.02, KVM/native + 0.005), no worse than KVM"),
            // Without KVM's figure neither the limit nor "no worse than
            // KVM" is known yet.
            if k.is_none() { None } else { met },
            format!(
                "pivisor/native {}, {kvm}",
                p.map_or("n/a".into(), |p| format!("{p:.3}"))
            ),
        );
    }
    // The disk (issue 20): instructions per KiB within 1.25 x native and
    // below KVM's.
    for id in ["M7", "M8", "M9"] {
        let (p, k) = (rt(id, Config::Pivisor), rt(id, Config::Kvm));
        let met = match (p, k) {
            (Some(p), Some(k)) => Some(p <= 1.25 && p < k),
            _ => None,
        };
        add(
            format!("{id}: pivisor/native <= 1.25 and below KVM/native (instructions per KiB)"),
            met,
            format!(
                "pivisor/native {}, KVM/native {}",
                p.map_or("n/a".into(), |p| format!("{p:.3}")),
                k.map_or("n/a".into(), |k| format!("{k:.3}"))
            ),
        );
    }
    // The network (issue 21): instructions per KiB moved below KVM's and
    // at most 2 x native loopback (two processes in one Linux).
    let (p, k) = (rt("M10", Config::Pivisor), rt("M10", Config::Kvm));
    add(
        "M10: pivisor/native loopback <= 2 and below KVM/native (instructions per KiB)".into(),
        match (p, k) {
            (Some(p), Some(k)) => Some(p <= 2.0 && p < k),
            (Some(p), None) if p > 2.0 => Some(false),
            _ => None,
        },
        format!(
            "pivisor/native {}, KVM/native {}",
            p.map_or("n/a".into(), |p| format!("{p:.3}")),
            k.map_or("n/a".into(), |k| format!("{k:.3}"))
        ),
    );
    // At queue depth 1 a 4 KiB request costs at most 3 exits (notify,
    // interrupt status read, interrupt acknowledge). Interrupt exits
    // (the vCPUs' timer ticks) follow time, not requests: they are shown,
    // and do not count as long as they stay well below one per request
    // (a completion interrupt costing an exit each would be one).
    let m8 = get(r, "M8", Config::Pivisor).and_then(|f| {
        let n = f.requests?;
        Some((f.exits? / n, f.irq.map(|i| i / n)))
    });
    let m8_own = get(r, "M8", Config::Pivisor)
        .and_then(|f| Some((f.exits? - f.irq.unwrap_or(0.0), f.requests?)));
    add(
        "M8: at most 3 exits per 4 KiB request under pivisor (interrupt exits aside)".into(),
        m8_own
            .zip(m8)
            // To the report's two decimals: an exit of the guest's own in
            // the span (one GICD write in 512 requests) is not per request.
            .map(|((own, n), (_, irq))| own / n < 3.005 && irq.unwrap_or(0.0) < 0.25),
        m8.map_or("n/a".into(), |(e, irq)| match irq {
            Some(i) => format!(
                "{e:.2} exits per request: {:.2} by the request, {i:.2} interrupts",
                e - i
            ),
            None => format!("{e:.2} exits per request"),
        }),
    );
    let first = rt("M2", Config::Pivisor);
    add(
        "M2 first touch: pivisor/native about 1.00 (RAM mapped up front)".into(),
        first.map(|f| f <= 1.01),
        first.map_or("n/a".into(), |f| format!("{f:.3}")),
    );
    for id in ["BOOT", "DBOOT"] {
        let boot = rt(id, Config::Pivisor);
        add(
            format!("{id}: pivisor <= 1.10 x native"),
            boot.map(|b| b <= 1.10),
            boot.map_or("n/a".into(), |b| format!("{b:.3}")),
        );
    }
    for (id, limit) in [("B1", 150.0), ("B2r", 400.0), ("B2w", 400.0)] {
        let v = value(r, id, Config::Pivisor);
        add(
            format!("{id}: <= {limit} instructions under pivisor"),
            v.map(|v| v <= limit),
            v.map_or("n/a".into(), |v| format!("{v:.0}")),
        );
    }
    let b3 = get(r, "B3", Config::Pivisor).and_then(|f| f.exits);
    add(
        "B3: 0 exits for the EOIs through the mapped GICV".into(),
        b3.map(|e| e == 0.0),
        b3.map_or("n/a".into(), |e| format!("{e:.3} per round trip")),
    );
    let over = |c| Some(value(r, "B4", c)? - value(r, "B4", Config::Native)?);
    let (p, k, one) = (
        over(Config::Pivisor),
        over(Config::Kvm),
        value(r, "B1", Config::Pivisor),
    );
    add(
        "B4: latency overhead over native at most one exit (B1) and below KVM's".into(),
        match (p, one, k) {
            (Some(p), Some(one), Some(k)) => Some(p <= one && p < k),
            (Some(p), Some(one), None) if p > one => Some(false),
            _ => None,
        },
        format!(
            "pivisor +{}, one exit {}, KVM +{}",
            p.map_or("n/a".into(), |v| format!("{v:.0}")),
            one.map_or("n/a".into(), |v| format!("{v:.0}")),
            k.map_or("n/a".into(), |v| format!("{v:.0}"))
        ),
    );
    out
}

/// The targets as a markdown table.
pub fn markdown_targets(r: &Results) -> String {
    let mut s = String::from("| target | result | figures |\n|---|---|---|\n");
    for t in targets(r) {
        let res = match t.met {
            Some(true) => "met",
            Some(false) => "MISSED",
            None => "not yet checkable",
        };
        let _ = writeln!(s, "| {} | {res} | {} |", t.rule, t.seen);
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    const MICRO: &str = "BENCH start mode=virtualized counter_hz=62500000 exits=hypercall\n\
        BENCH B1 null_hypercall n=10000 ns=134.000 exits=1.000\n\
        BENCH B3 sgi_self_eoi n=200 ns=3168.000 iar_eoir_ns=0.000 exits_beyond_sgir=0.000\n\
        BENCH B4 timer_latency n=200 mean_ns=2960.000 p99_ns=2960.000 max_ns=2960.000 exits=2.000\n\
        noise BENCH B5 not a line\n\
        BENCH done\n";

    #[test]
    fn figures_from_bench_lines() {
        let b1 = SPECS.iter().find(|s| s.id == "B1").unwrap();
        assert_eq!(
            figure(MICRO, b1),
            Some(Figure {
                value: 134.0,
                exits: Some(1.0),
                per_s: Some(1e9 / 134.0),
                requests: None,
                irq: None,
            })
        );
        let b3 = SPECS.iter().find(|s| s.id == "B3").unwrap();
        assert_eq!(figure(MICRO, b3).unwrap().exits, Some(0.0));
        assert_eq!(
            figure(MICRO, b3).unwrap().per_s,
            None,
            "a round trip has no rate"
        );
        // Macro lines: exits over their whole span.
        let m4 = SPECS.iter().find(|s| s.id == "M4").unwrap();
        let line = "BENCH M4 getppid n=100000 ns=250.000 exits=25 span_ns=25000000\n";
        assert_eq!(figure(line, m4).unwrap().per_s, Some(1000.0));
        let no_span = "BENCH M4 getppid n=100000 ns=250.000 exits=25\n";
        assert_eq!(figure(no_span, m4).unwrap().per_s, None);
        let b4 = SPECS.iter().find(|s| s.id == "B4").unwrap();
        assert_eq!(figure(MICRO, b4).unwrap().value, 2960.0);
        // Absent, or not at the start of a line: nothing.
        let b5 = SPECS.iter().find(|s| s.id == "B5").unwrap();
        assert_eq!(figure(MICRO, b5), None);
        // Natively exits are "na".
        let native = "BENCH B1 null_hypercall n=10000 ns=1.000 exits=na\n";
        assert_eq!(figure(native, b1).unwrap().exits, None);
        // Hostile values: not numbers, infinities.
        assert_eq!(figure("BENCH B1 x ns=abc\n", b1), None);
        assert_eq!(figure("BENCH B1 x ns=inf\n", b1), None);
        assert_eq!(figure("BENCH B1\n", b1), None);
        assert_eq!(figure("", b1), None);
    }

    #[test]
    fn printk_times() {
        let log = "[    0.000000] Booting\n[    0.063268] Run /init as init process\n";
        assert_eq!(printk_us(log, "Run /init as init process"), Some(63268));
        assert_eq!(
            printk_us("[   12.000001] Run /init", "Run /init"),
            Some(12_000_001)
        );
        assert_eq!(printk_us(log, "nothing"), None);
        assert_eq!(printk_us("[ x.y] Run /init", "Run /init"), None);
    }

    #[test]
    fn medians_ratios_and_files() {
        assert_eq!(median(&mut []), None);
        assert_eq!(median(&mut [3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(&mut [4.0, 1.0, 2.0, 3.0]), Some(2.5));
        assert_eq!(
            ratio(Some(6.031), Some(6.015)).map(|r| (r * 1000.0).round()),
            Some(1003.0)
        );
        assert_eq!(
            ratio(Some(134.0), Some(1.0)),
            None,
            "a 1-instruction base is no base"
        );
        assert_eq!(ratio(None, Some(5.0)), None);
        let mut r = Results::new();
        r.insert(
            ("M1".into(), Config::Native),
            Figure {
                value: 6.015,
                exits: None,
                per_s: None,
                requests: None,
                irq: None,
            },
        );
        r.insert(
            ("M1".into(), Config::Pivisor),
            Figure {
                value: 6.031,
                exits: Some(129.0),
                per_s: Some(1075.0),
                requests: None,
                irq: None,
            },
        );
        let t = markdown_table(&r);
        assert!(
            t.contains(
                "| M1 CPU loop (per step) | instr | 6.015 | 6.031 | n/a | 1.003 | n/a | 129 | 1075 | n/a | n/a |"
            ),
            "{t}"
        );
        assert!(
            t.contains("| B6 SGI to another vCPU and back (median) (plain TCG, noisy) |"),
            "{t}"
        );
        let c = csv(&r);
        assert!(
            c.contains("M1,\"CPU loop (per step)\",pivisor,icount,6.031,instr,129,1075\n"),
            "{c}"
        );
        let j = json(&r, &[("qemu", "QEMU \"10.0\"".into())]);
        assert!(j.contains("\"qemu\": \"QEMU \\\"10.0\\\"\""), "{j}");
        assert!(j.contains("\"benchmark\": \"M1\", \"description\": \"CPU loop (per step)\", \"config\": \"native\""), "{j}");
        assert!(j.contains("\"exits\": null"), "{j}");
    }

    #[test]
    fn the_login_prompt_mark_is_read_in_microseconds() {
        let t = "[  OK  ] Started x\r\nBOOTMARK getty ttyAMA0 at uptime 41.27 s\r\n\
                 BOOTMARK getty ttyAMA0 at uptime 99.00 s\r\n";
        assert_eq!(bootmark_us(t), Some(41_270_000));
        assert_eq!(
            bootmark_us("BOOTMARK getty ttyAMA0 at uptime 0.05 s"),
            Some(50_000)
        );
        // Missing, malformed or absurd marks give no figure.
        assert_eq!(bootmark_us("no mark here"), None);
        assert_eq!(bootmark_us("BOOTMARK getty ttyAMA0 at uptime 41 s"), None);
        assert_eq!(
            bootmark_us("BOOTMARK getty ttyAMA0 at uptime -1.00 s"),
            None
        );
        assert_eq!(
            bootmark_us("BOOTMARK getty ttyAMA0 at uptime 99999999999999999999.00 s"),
            None
        );
    }

    #[test]
    fn targets_are_judged_on_the_figures() {
        let mut r = Results::new();
        let mut put = |id: &str, c, value, exits| {
            r.insert(
                (id.to_string(), c),
                Figure {
                    value,
                    exits,
                    per_s: None,
                    requests: (id == "M8").then_some(512.0),
                    irq: None,
                },
            );
        };
        put("M1", Config::Native, 6.0, None);
        put("M1", Config::Pivisor, 6.05, Some(1.0));
        put("M5", Config::Native, 50.0, None);
        put("M5", Config::Pivisor, 60.0, None);
        put("M5", Config::Kvm, 55.0, None);
        put("M4", Config::Native, 250.0, None);
        put("M4", Config::Pivisor, 250.0, None);
        put("M4", Config::Kvm, 275.0, None);
        put("B1", Config::Pivisor, 134.0, Some(1.0));
        put("B2r", Config::Pivisor, 446.0, Some(1.0));
        put("B3", Config::Pivisor, 3168.0, Some(0.0));
        put("B4", Config::Native, 16.0, None);
        put("B4", Config::Pivisor, 2960.0, Some(2.0));
        put("BOOT", Config::Native, 100.0, None);
        put("BOOT", Config::Pivisor, 105.0, None);
        put("DBOOT", Config::Native, 100.0, None);
        put("DBOOT", Config::Pivisor, 111.0, None);
        put("M7", Config::Native, 100.0, None);
        put("M7", Config::Pivisor, 120.0, Some(70.0));
        put("M7", Config::Kvm, 130.0, None);
        put("M9", Config::Native, 100.0, None);
        put("M9", Config::Pivisor, 130.0, Some(70.0));
        put("M9", Config::Kvm, 140.0, None);
        put("M8", Config::Pivisor, 900.0, Some(1536.0));
        let t = targets(&r);
        let find = |p: &str| t.iter().find(|x| x.rule.starts_with(p)).unwrap().met;
        // 1.008 <= 1.02, but without KVM's figure "no worse than KVM"
        // cannot be judged yet.
        assert_eq!(find("M1:"), None);
        // 1.2 against KVM's 1.1: missed.
        assert_eq!(find("M5:"), Some(false));
        // 1.0 against KVM's 1.1: met.
        assert_eq!(find("M4:"), Some(true));
        assert_eq!(find("M2:"), None, "no figures");
        assert_eq!(find("BOOT"), Some(true));
        assert_eq!(find("DBOOT"), Some(false), "1.11 is past 1.10");
        assert_eq!(find("B1:"), Some(true));
        assert_eq!(find("B2r:"), Some(false));
        assert_eq!(find("B3:"), Some(true));
        // +2944 over native is more than one exit (134): missed even
        // before KVM's figure exists.
        assert_eq!(find("B4:"), Some(false));
        // Disks: 1.2 <= 1.25 and below 1.3; 1.3 is past 1.25; no native
        // M8 yet; 1536 exits for 512 reads is 3 per request.
        assert_eq!(find("M7:"), Some(true));
        assert_eq!(find("M9:"), Some(false));
        assert_eq!(find("M8: pivisor"), None);
        assert_eq!(find("M8: at most 3"), Some(true));
        // One interrupt exit per request is not "aside".
        r.get_mut(&("M8".to_string(), Config::Pivisor))
            .unwrap()
            .exits = Some(2048.0);
        r.get_mut(&("M8".to_string(), Config::Pivisor)).unwrap().irq = Some(512.0);
        let t = targets(&r);
        let find = |p: &str| t.iter().find(|x| x.rule.starts_with(p)).unwrap().met;
        assert_eq!(find("M8: at most 3"), Some(false));
        r.get_mut(&("M8".to_string(), Config::Pivisor))
            .unwrap()
            .exits = Some(1568.0);
        r.get_mut(&("M8".to_string(), Config::Pivisor)).unwrap().irq = Some(32.0);
        let t = targets(&r);
        let find = |p: &str| t.iter().find(|x| x.rule.starts_with(p)).unwrap().met;
        assert_eq!(find("M8: at most 3"), Some(true));
        let md = markdown_targets(&r);
        assert!(
            md.contains("| B2r: <= 400 instructions under pivisor | MISSED | 446 |"),
            "{md}"
        );
    }
}
