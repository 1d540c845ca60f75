//! Checks on the image's disassembly (Debian's `aarch64-linux-gnu-objdump
//! -d -C --no-show-raw-insn` of the release ELF): the real-silicon duties
//! QEMU does not enforce, kept true by `make test` (docs/hardware.md).
//!
//! - Nothing reachable before the EL2 MMU is on contains a load/store-
//!   exclusive or an atomic instruction: with the MMU off every data access
//!   is Device-nGnRnE, where the ARM ARM does not guarantee exclusives.
//! - Every `sev` follows a DSB (SEV is not a memory access).
//! - Barriers a function must contain (GICD_SGIR writes, SGI acknowledges).
//!
//! Reachability follows direct branches (`bl`, `b` to another function).
//! Indirect calls (`blr`: trait objects, `fmt` vtables, function pointers)
//! cannot be followed, so the callers name the functions they reach as
//! extra roots; a function in the stop list is not entered (it runs only
//! once the MMU is on, which a run-time flag guarantees).

use std::collections::{BTreeMap, BTreeSet};

/// One instruction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Insn {
    /// Address.
    pub addr: u64,
    /// Mnemonic (`ldxrb`, `b.ne`, `dmb`).
    pub mnemonic: String,
    /// Operands as printed.
    pub operands: String,
    /// The function a branch or call goes to (`<name+0x10>` -> `name`).
    pub target: Option<String>,
}

/// A disassembled image: functions by (demangled) name, in address order.
#[derive(Debug, Default)]
pub struct Disasm {
    /// Each function's instructions.
    pub funcs: BTreeMap<String, Vec<Insn>>,
}

/// Whether a mnemonic is a load/store-exclusive or an LSE atomic.
pub fn is_exclusive_or_atomic(m: &str) -> bool {
    let m = m.to_ascii_lowercase();
    // Exclusives: LDXR/LDAXR/STXR/STLXR, byte/half/pair forms.
    for p in [
        "ldxr", "ldaxr", "stxr", "stlxr", "ldxp", "ldaxp", "stxp", "stlxp",
    ] {
        if m == p || (m.starts_with(p) && matches!(&m[p.len()..], "b" | "h")) {
            return true;
        }
    }
    // LSE: CAS, CASP, SWP, LD<op>, ST<op>, with A/L/AL and B/H suffixes.
    let strip = |s: &str| -> bool {
        let s = s
            .strip_suffix('b')
            .or_else(|| s.strip_suffix('h'))
            .unwrap_or(s);
        let s = s
            .strip_suffix("al")
            .or_else(|| s.strip_suffix('a'))
            .or_else(|| s.strip_suffix('l'))
            .unwrap_or(s);
        s.is_empty()
    };
    for op in ["casp", "cas", "swp"] {
        if let Some(rest) = m.strip_prefix(op) {
            if strip(rest) {
                return true;
            }
        }
    }
    for ls in ["ld", "st"] {
        if let Some(rest) = m.strip_prefix(ls) {
            for op in ["add", "clr", "eor", "set", "smax", "smin", "umax", "umin"] {
                if let Some(r) = rest.strip_prefix(op) {
                    if strip(r) {
                        return true;
                    }
                }
            }
        }
    }
    false
}

fn is_branch(m: &str) -> bool {
    m == "b" || m == "bl" || m.starts_with("b.") || matches!(m, "cbz" | "cbnz" | "tbz" | "tbnz")
}

/// Parses objdump's output.
pub fn parse(text: &str) -> Disasm {
    let mut d = Disasm::default();
    let mut cur: Option<String> = None;
    for line in text.lines() {
        // `0000000000200000 <name>:` starts a function.
        if let Some(rest) = line.strip_suffix(">:") {
            if let Some((addr, name)) = rest.split_once(" <") {
                if u64::from_str_radix(addr.trim(), 16).is_ok() {
                    cur = Some(name.to_string());
                    d.funcs.entry(name.to_string()).or_default();
                    continue;
                }
            }
        }
        // `  200000:\tmnemonic\toperands`.
        let Some(name) = cur.as_ref() else { continue };
        let Some((addr, rest)) = line.split_once(':') else {
            continue;
        };
        let Ok(addr) = u64::from_str_radix(addr.trim(), 16) else {
            continue;
        };
        let rest = rest.trim_start_matches('\t');
        let mut parts = rest.splitn(2, '\t');
        let mnemonic = parts.next().unwrap_or("").trim().to_string();
        if mnemonic.is_empty() || mnemonic.starts_with('.') {
            continue;
        }
        let operands = parts.next().unwrap_or("").trim().to_string();
        let target = if is_branch(&mnemonic) {
            operands
                .rsplit_once(" <")
                .and_then(|(_, t)| t.strip_suffix('>'))
                .map(|t| match t.rfind('+') {
                    Some(i) if t[i + 1..].starts_with("0x") => t[..i].to_string(),
                    _ => t.to_string(),
                })
        } else {
            None
        };
        d.funcs.get_mut(name).unwrap().push(Insn {
            addr,
            mnemonic,
            operands,
            target,
        });
    }
    d
}

impl Disasm {
    /// The functions reachable from `roots` by direct branches, not
    /// entering any in `stops`. Unknown roots are returned as errors.
    pub fn reachable(&self, roots: &[&str], stops: &[&str]) -> Result<BTreeSet<String>, String> {
        for n in roots.iter().chain(stops) {
            if !self.funcs.contains_key(*n) {
                return Err(format!("no function '{n}' in the image"));
            }
        }
        let mut seen = BTreeSet::new();
        let mut todo: Vec<String> = roots.iter().map(|s| s.to_string()).collect();
        while let Some(f) = todo.pop() {
            if stops.contains(&f.as_str()) || !seen.insert(f.clone()) {
                continue;
            }
            for i in self.funcs.get(&f).into_iter().flatten() {
                if let Some(t) = &i.target {
                    if t != &f && self.funcs.contains_key(t) {
                        todo.push(t.clone());
                    }
                }
            }
        }
        Ok(seen)
    }

    /// Every exclusive or atomic instruction in `funcs`: `(function, insn)`.
    pub fn exclusives<'a>(
        &'a self,
        funcs: impl IntoIterator<Item = &'a String>,
    ) -> Vec<(&'a str, &'a Insn)> {
        let mut out = Vec::new();
        for f in funcs {
            for i in self.funcs.get(f).into_iter().flatten() {
                if is_exclusive_or_atomic(&i.mnemonic) {
                    out.push((f.as_str(), i));
                }
            }
        }
        out
    }

    /// Every `sev` whose previous instruction is not a DSB.
    pub fn sev_without_dsb(&self) -> Vec<(&str, &Insn)> {
        let mut out = Vec::new();
        for (f, insns) in &self.funcs {
            for (k, i) in insns.iter().enumerate() {
                if i.mnemonic == "sev" && (k == 0 || insns[k - 1].mnemonic != "dsb") {
                    out.push((f.as_str(), i));
                }
            }
        }
        out
    }

    /// The first instruction of `func` matching `pred`, as an index.
    pub fn find(&self, func: &str, pred: impl Fn(&Insn) -> bool) -> Option<usize> {
        self.funcs.get(func)?.iter().position(pred)
    }

    /// Functions whose name satisfies `pred`.
    pub fn names(&self, pred: impl Fn(&str) -> bool) -> Vec<&str> {
        self.funcs
            .keys()
            .map(|s| s.as_str())
            .filter(|n| pred(n))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = "
build/pivisor:     file format elf64-littleaarch64


Disassembly of section .text:

0000000000000040 <primary_entry>:
      40:\tmov\tx19, x0
      44:\tbl\t100 <early>
      48:\tb\t40 <primary_entry>

0000000000000100 <early>:
     100:\tstp\tx29, x30, [sp, #-16]!
     104:\tb.ne\t110 <early+0x10>
     108:\tbl\t200 <helper>
     10c:\tbl\t300 <late>
     110:\tret

0000000000000200 <helper>:
     200:\tldr\tw8, [x0]
     204:\tb\t400 <tail>

0000000000000300 <late>:
     300:\tldaxrb\tw9, [x8]
     304:\tstxrb\tw10, w9, [x8]
     308:\tdsb\tish
     30c:\tsev
     310:\tret

0000000000000400 <tail>:
     400:\tldaddal\tw1, w0, [x2]
     404:\tsev
     408:\tret
";

    #[test]
    fn finds_functions_branches_and_targets() {
        let d = parse(SAMPLE);
        assert_eq!(d.funcs.len(), 5);
        let e = &d.funcs["early"];
        assert_eq!(e[1].target.as_deref(), Some("early"));
        assert_eq!(e[2].target.as_deref(), Some("helper"));
        assert_eq!(d.funcs["helper"][1].target.as_deref(), Some("tail"));
        assert_eq!(d.funcs["late"][0].mnemonic, "ldaxrb");
    }

    #[test]
    fn reachability_follows_calls_and_tail_calls_and_respects_stops() {
        let d = parse(SAMPLE);
        let all = d.reachable(&["primary_entry"], &[]).unwrap();
        assert_eq!(all.len(), 5);
        let some = d.reachable(&["primary_entry"], &["late"]).unwrap();
        assert!(!some.contains("late") && some.contains("tail"));
        assert!(d.reachable(&["nope"], &[]).is_err());
    }

    #[test]
    fn flags_exclusives_and_atomics_only() {
        let d = parse(SAMPLE);
        let all = d.reachable(&["primary_entry"], &[]).unwrap();
        let bad: Vec<_> = d.exclusives(&all).iter().map(|(_, i)| i.addr).collect();
        assert_eq!(bad, vec![0x300, 0x304, 0x400]);
        for m in [
            "ldxr", "ldxrb", "ldaxrh", "stlxr", "stxp", "ldaxp", "cas", "casal", "caspal", "caslb",
            "swp", "swpalh", "ldadd", "ldclral", "ldsetb", "ldumaxl", "stadd", "steorl", "stsminh",
        ] {
            assert!(is_exclusive_or_atomic(m), "{m}");
        }
        for m in [
            "ldr", "ldrb", "ldar", "stlr", "stlrb", "ldp", "stp", "ldur", "str", "ldarh", "ldapr",
            "casting", "ldaddx", "swpx", "dmb", "sev",
        ] {
            assert!(!is_exclusive_or_atomic(m), "{m}");
        }
    }

    #[test]
    fn sev_needs_a_dsb_right_before() {
        let d = parse(SAMPLE);
        let bad: Vec<_> = d.sev_without_dsb().iter().map(|(_, i)| i.addr).collect();
        assert_eq!(bad, vec![0x404]);
    }
}
