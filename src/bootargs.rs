//! The hypervisor's own options, read from /chosen/bootargs.
//!
//! The firmware (or QEMU's `-append`) writes the command line; the Pi
//! firmware adds its own words (`coherent_pool=...`, `8250.nr_uarts=...`), so
//! only words starting with `pivisor.` are ours and everything else is
//! ignored. Options:
//!
//! - `pivisor.log=off|error|warn|info|debug|trace`: console log level (info).
//! - `pivisor.fault=data|undef|brk[@CORE]`: debug aid: after boot, make core
//!   CORE (default 0) take a deliberate EL2 fault, to show the fault report.

use crate::fixedvec::FixedVec;
use log::LevelFilter;

/// A deliberate fault a debug boot option asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaultKind {
    /// A load from an address the EL2 page tables do not map.
    DataAbort,
    /// An undefined instruction (`udf`).
    Undefined,
    /// A software breakpoint (`brk`).
    Breakpoint,
}

/// A fault to inject on one core.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FaultInjection {
    /// What kind of fault.
    pub kind: FaultKind,
    /// Logical core that takes it.
    pub core: usize,
}

/// The parsed options.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Options {
    /// Console log level.
    pub log_level: LevelFilter,
    /// Debug fault injection, if asked for.
    pub fault: Option<FaultInjection>,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            log_level: LevelFilter::Info,
            fault: None,
        }
    }
}

/// An option word that was not understood; reported once the console is up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct BadWord<'a> {
    /// The whole word as written.
    pub word: &'a str,
    /// Why it was refused.
    pub reason: &'static str,
}

/// Parses a command line; returns the options and the words it refused.
pub fn parse(cmdline: &str) -> (Options, FixedVec<BadWord<'_>, 8>) {
    let mut opts = Options::default();
    let mut bad = FixedVec::new();
    for word in cmdline.split_ascii_whitespace() {
        let Some(rest) = word.strip_prefix("pivisor.") else {
            continue;
        };
        let (key, value) = rest.split_once('=').unwrap_or((rest, ""));
        let result = match key {
            "log" => parse_level(value).map(|l| opts.log_level = l),
            "fault" => parse_fault(value).map(|f| opts.fault = Some(f)),
            _ => Err("unknown option"),
        };
        if let Err(reason) = result {
            // A command line with more than 8 bad words only loses reports.
            let _ = bad.push(BadWord { word, reason });
        }
    }
    (opts, bad)
}

fn parse_level(value: &str) -> Result<LevelFilter, &'static str> {
    Ok(match value {
        "off" => LevelFilter::Off,
        "error" => LevelFilter::Error,
        "warn" => LevelFilter::Warn,
        "info" => LevelFilter::Info,
        "debug" => LevelFilter::Debug,
        "trace" => LevelFilter::Trace,
        _ => return Err("log level must be off, error, warn, info, debug or trace"),
    })
}

fn parse_fault(value: &str) -> Result<FaultInjection, &'static str> {
    let (kind, core) = match value.split_once('@') {
        Some((k, c)) => (
            k,
            c.parse::<usize>()
                .map_err(|_| "fault core must be a number")?,
        ),
        None => (value, 0),
    };
    let kind = match kind {
        "data" => FaultKind::DataAbort,
        "undef" => FaultKind::Undefined,
        "brk" => FaultKind::Breakpoint,
        _ => return Err("fault must be data, undef or brk, optionally @CORE"),
    };
    Ok(FaultInjection { kind, core })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_line_gives_defaults() {
        let (o, bad) = parse("");
        assert_eq!(o, Options::default());
        assert!(bad.is_empty());
    }

    #[test]
    fn firmware_words_are_ignored() {
        let (o, bad) =
            parse("coherent_pool=1M 8250.nr_uarts=1 console=ttyS0,115200 pivisor.log=debug");
        assert_eq!(o.log_level, LevelFilter::Debug);
        assert!(bad.is_empty());
    }

    #[test]
    fn fault_with_and_without_core() {
        let (o, _) = parse("pivisor.fault=data");
        assert_eq!(
            o.fault,
            Some(FaultInjection {
                kind: FaultKind::DataAbort,
                core: 0
            })
        );
        let (o, _) = parse("pivisor.fault=undef@2");
        assert_eq!(
            o.fault,
            Some(FaultInjection {
                kind: FaultKind::Undefined,
                core: 2
            })
        );
        let (o, _) = parse("pivisor.fault=brk@3");
        assert_eq!(o.fault.map(|f| f.kind), Some(FaultKind::Breakpoint));
    }

    #[test]
    fn bad_words_are_reported_not_applied() {
        let (o, bad) =
            parse("pivisor.log=loud pivisor.fault=nope@x pivisor.bogus pivisor.fault=data@-1");
        assert_eq!(o, Options::default());
        assert_eq!(bad.len(), 4);
        assert_eq!(bad[0].word, "pivisor.log=loud");
        assert_eq!(bad[2].reason, "unknown option");
    }

    #[test]
    fn many_bad_words_do_not_overflow() {
        let line = "pivisor.x ".repeat(100);
        let (_, bad) = parse(&line);
        assert_eq!(bad.len(), 8);
    }
}
