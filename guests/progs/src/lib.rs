//! Pure helpers of the guest programs (parsing /proc and kernel log
//! text), tested on the host.

/// The per-CPU counts of the /proc/interrupts row whose description ends
/// with `name` (e.g. "arch_timer"), or None.
pub fn irq_row(text: &str, name: &str) -> Option<Vec<u64>> {
    let header = text.lines().next()?;
    let cpus = header
        .split_whitespace()
        .filter(|w| w.starts_with("CPU"))
        .count();
    text.lines().skip(1).find_map(|l| {
        if !l.trim_end().ends_with(name) {
            return None;
        }
        let (_, rest) = l.split_once(':')?;
        let counts: Vec<u64> = rest
            .split_whitespace()
            .take(cpus)
            .map(|n| n.parse().ok())
            .collect::<Option<_>>()?;
        (counts.len() == cpus).then_some(counts)
    })
}

/// The value in kB of a /proc/meminfo field.
pub fn meminfo_kb(text: &str, field: &str) -> Option<u64> {
    text.lines().find_map(|l| {
        let rest = l.strip_prefix(field)?.strip_prefix(':')?;
        rest.split_whitespace().next()?.parse().ok()
    })
}

/// Processors listed in /proc/cpuinfo.
pub fn cpu_count(cpuinfo: &str) -> usize {
    cpuinfo
        .lines()
        .filter(|l| l.starts_with("processor"))
        .count()
}

/// The text of a /dev/kmsg record ("prio,seq,time,flags;message\n"
/// followed by " KEY=value" dictionary lines).
pub fn kmsg_text(record: &str) -> &str {
    let msg = record.split_once(';').map_or(record, |(_, m)| m);
    msg.split('\n').next().unwrap_or("").trim_end()
}

/// The raspberrypi-firmware driver's "Attached to firmware from ..." line's
/// tail, if `line` is it.
pub fn firmware_attached(line: &str) -> Option<&str> {
    let at = line.find("Attached to firmware from ")?;
    Some(line[at + "Attached to firmware from ".len()..].trim())
}

/// The physical address in a device-tree `reg` property (two address
/// cells and two size cells, big-endian, as the root of pivisor's VM tree
/// has): the first region's base, if the property holds one.
pub fn reg_base(prop: &[u8]) -> Option<u64> {
    let cells: Vec<u32> = prop
        .chunks_exact(4)
        .map(|c| u32::from_be_bytes([c[0], c[1], c[2], c[3]]))
        .collect();
    if cells.len() < 4 {
        return None;
    }
    Some((u64::from(cells[0]) << 32) | u64::from(cells[1]))
}

/// Summary of timing samples (nanoseconds): mean, median, 99th
/// percentile (nearest rank), maximum. None for no samples.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Summary {
    pub n: usize,
    pub mean: u64,
    pub median: u64,
    pub p99: u64,
    pub max: u64,
}

/// Summarises `samples` (reordered in place).
pub fn summarize(samples: &mut [u64]) -> Option<Summary> {
    let n = samples.len();
    if n == 0 {
        return None;
    }
    samples.sort_unstable();
    let sum: u128 = samples.iter().map(|&x| x as u128).sum();
    let rank = |pct: usize| samples[(n * pct).div_ceil(100).clamp(1, n) - 1];
    Some(Summary {
        n,
        mean: (sum / n as u128) as u64,
        median: samples[(n - 1) / 2],
        p99: rank(99),
        max: samples[n - 1],
    })
}

/// `total` nanoseconds over `ops` operations, with three decimals, as a
/// `BENCH` line prints it.
pub fn per_op(total_ns: u128, ops: u64) -> String {
    let milli = total_ns * 1000 / ops.max(1) as u128;
    format!("{}.{:03}", milli / 1000, milli % 1000)
}

#[cfg(test)]
mod tests {
    use super::*;

    const INTERRUPTS: &str = "           CPU0       CPU1       CPU2       CPU3       
 11:        785        800        841        740 GIC-0  27 Level     arch_timer
 13:          2          0          0          0 GIC-0 153 Level     uart-pl011
IPI0:        22         28         18         27       Rescheduling interrupts
IPI1:       166        157        111        133       Function call interrupts
Err:          0
";

    #[test]
    fn interrupt_rows() {
        assert_eq!(
            irq_row(INTERRUPTS, "arch_timer"),
            Some(vec![785, 800, 841, 740])
        );
        assert_eq!(
            irq_row(INTERRUPTS, "Function call interrupts"),
            Some(vec![166, 157, 111, 133])
        );
        assert_eq!(irq_row(INTERRUPTS, "uart-pl011"), Some(vec![2, 0, 0, 0]));
        assert_eq!(irq_row(INTERRUPTS, "nothing"), None);
        assert_eq!(irq_row("", "arch_timer"), None);
        assert_eq!(irq_row("CPU0\n 11: x arch_timer\n", "arch_timer"), None);
    }

    #[test]
    fn meminfo_cpuinfo_kmsg_firmware() {
        let m = "MemTotal:         744100 kB\nMemFree:  1 kB\n";
        assert_eq!(meminfo_kb(m, "MemTotal"), Some(744100));
        assert_eq!(meminfo_kb(m, "Mem"), None);
        assert_eq!(cpu_count("processor\t: 0\nBogoMIPS\nprocessor\t: 1\n"), 2);
        assert_eq!(
            kmsg_text("6,339,2979495,-;raspberrypi-firmware soc:firmware: x\n"),
            "raspberrypi-firmware soc:firmware: x"
        );
        assert_eq!(
            firmware_attached(
                "raspberrypi-firmware soc:firmware: Attached to firmware from 1970-01-05T00:12:17"
            ),
            Some("1970-01-05T00:12:17")
        );
        assert_eq!(firmware_attached("something else"), None);
        // Device records carry dictionary lines after the message.
        let rec = "6,340,783477,-;raspberrypi-firmware soc:firmware: Attached to firmware from 1970-01-05T00:12:17\n SUBSYSTEM=platform\n DEVICE=+platform:soc:firmware\n";
        assert_eq!(
            firmware_attached(kmsg_text(rec)),
            Some("1970-01-05T00:12:17")
        );
    }

    #[test]
    fn summaries_and_per_op() {
        assert_eq!(summarize(&mut []), None);
        let mut one = [7];
        let s = summarize(&mut one).unwrap();
        assert_eq!((s.n, s.mean, s.median, s.p99, s.max), (1, 7, 7, 7, 7));
        let mut v: Vec<u64> = (1..=200).rev().collect();
        let s = summarize(&mut v).unwrap();
        assert_eq!((s.mean, s.median, s.p99, s.max), (100, 100, 198, 200));
        // Huge samples do not overflow the mean.
        let mut big = [u64::MAX, u64::MAX];
        assert_eq!(summarize(&mut big).unwrap().mean, u64::MAX);
        assert_eq!(per_op(1000, 3), "333.333");
        assert_eq!(per_op(5, 0), "5.000", "no operations: the total");
        assert_eq!(per_op(u128::from(u64::MAX), 1), format!("{}.000", u64::MAX));
    }

    #[test]
    fn reg_property_base() {
        let reg = [0, 0, 0, 0, 0xfc, 0, 0x10, 0, 0, 0, 0, 0, 0, 0, 0x10, 0];
        assert_eq!(reg_base(&reg), Some(0xfc00_1000));
        let high = [0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10, 0];
        assert_eq!(reg_base(&high), Some(1 << 32));
        assert_eq!(reg_base(&reg[..12]), None, "no size cells");
        assert_eq!(reg_base(&[]), None);
        assert_eq!(reg_base(&reg[..15]), None, "a torn cell is not a cell");
    }
}
