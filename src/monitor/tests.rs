use super::*;
use std::string::ToString;
use std::vec;

fn typed(e: &mut LineEditor, bytes: &[u8]) -> (Vec<u8>, Vec<String>) {
    let mut out = Vec::new();
    let mut lines = Vec::new();
    for &b in bytes {
        if let Some(l) = e.key(b, &mut out) {
            lines.push(l);
        }
    }
    (out, lines)
}

#[test]
fn the_line_editor_echoes_erases_and_ends_lines() {
    let mut e = LineEditor::default();
    let (out, lines) = typed(&mut e, b"lisx\x7ft\r");
    assert_eq!(lines, vec!["list".to_string()]);
    assert_eq!(out, b"lisx\x08 \x08t\r\n");
    // Ctrl-U erases the line, Ctrl-C abandons it with a fresh prompt.
    let (out, lines) = typed(&mut e, b"ab\x15stats\x03info\n");
    assert_eq!(lines, vec!["info".to_string()]);
    assert!(out.starts_with(b"ab\x08 \x08\x08 \x08stats^C\r\npivisor> info"));
    // Arrow keys and other controls are ignored; backspace on nothing
    // echoes nothing.
    let (out, lines) = typed(&mut e, b"\x08\x1b[A\x1bOBl\x01s\x1b[1;5C\r");
    assert_eq!(lines, vec!["ls".to_string()]);
    assert_eq!(out, b"ls\r\n");
}

#[test]
fn the_switch_escape_gives_a_fresh_prompt_where_no_switch_takes_it() {
    // Out of the mux layout, Ctrl-] and any key (Ctrl-] m by habit)
    // abandon the line and prompt again; neither byte is kept.
    let mut e = LineEditor::default();
    let (out, lines) = typed(&mut e, b"sta\x1dmlist\r");
    assert_eq!(lines, vec!["list".to_string()]);
    assert_eq!(out, b"sta\r\npivisor> list\r\n");
    // Ctrl-] Ctrl-] is one escape and its key, not two.
    let (out, lines) = typed(&mut e, b"\x1d\x1dx\r");
    assert_eq!(lines, vec!["x".to_string()]);
    assert_eq!(out, b"\r\npivisor> x\r\n");
}

#[test]
fn every_console_layout_is_described() {
    let all = [Layout::Mux, Layout::MiniUart, Layout::Pl011];
    for (i, a) in all.iter().enumerate() {
        assert!(!a.describe().is_empty());
        for b in &all[i + 1..] {
            assert_ne!(a.describe(), b.describe());
        }
    }
}

#[test]
fn a_line_is_bounded_and_trimmed() {
    let mut e = LineEditor::default();
    let long = vec![b'x'; 500];
    let (out, _) = typed(&mut e, &long);
    assert_eq!(out.len(), LINE_MAX);
    let (_, lines) = typed(&mut e, b"\r");
    assert_eq!(lines[0].len(), LINE_MAX);
    let (_, lines) = typed(&mut e, b"   list  \r");
    assert_eq!(lines, vec!["list".to_string()]);
    // Bytes that are not ASCII are not kept.
    let (out, lines) = typed(&mut e, &[0xc3, 0xa9, b'\r']);
    assert_eq!(lines, vec![String::new()]);
    assert_eq!(out, b"\r\n");
}

#[test]
fn commands_parse_and_errors_say_what_is_wrong() {
    let names = ["left", "right"];
    assert_eq!(parse("", &names), Ok(Command::Nothing));
    assert_eq!(parse("help", &names), Ok(Command::Help));
    assert_eq!(parse("list", &names), Ok(Command::List));
    assert_eq!(parse("info", &names), Ok(Command::Info));
    assert_eq!(
        parse("stats", &names),
        Ok(Command::Stats {
            vm: None,
            json: false
        })
    );
    assert_eq!(
        parse("stats right --json", &names),
        Ok(Command::Stats {
            vm: Some(1),
            json: true
        })
    );
    assert_eq!(
        parse("stats --json 0", &names),
        Ok(Command::Stats {
            vm: Some(0),
            json: true
        })
    );
    assert_eq!(parse("log", &names), Ok(Command::Log(LOG_DEFAULT)));
    assert_eq!(parse("log 5", &names), Ok(Command::Log(5)));
    let err = |l: &str| parse(l, &names).unwrap_err();
    assert_eq!(
        err("frobnicate"),
        "unknown command 'frobnicate' (help lists the commands)"
    );
    assert_eq!(
        err("stats nosuch"),
        "no VM 'nosuch' (list shows them: left, right)"
    );
    assert_eq!(err("stats 2"), "no VM '2' (list shows them: left, right)");
    assert_eq!(err("stats left right"), "stats takes one VM at most");
    assert_eq!(err("list all"), "list takes no argument");
    assert!(err("log 0").starts_with("log N"));
    assert!(err("log 99999999999999999999").starts_with("log N"));
    assert!(err("log x").starts_with("log N"));
}

#[test]
fn list_shows_every_vm() {
    let rows = [
        VmRow {
            name: "left",
            state: State::Running,
            cores: "0-1".into(),
            memory_mib: 256,
            uptime_ms: 61_500,
            restarts: 2,
            last_end: Some("SYSTEM_RESET from vCPU 1".into()),
        },
        VmRow {
            name: "right",
            state: State::Halted,
            cores: "2-3".into(),
            memory_mib: 256,
            uptime_ms: 5,
            restarts: 0,
            last_end: None,
        },
    ];
    let mut s = String::new();
    list(&rows, &mut s);
    let lines: Vec<&str> = s.split("\r\n").collect();
    assert!(lines[0].starts_with("#   name"));
    assert!(lines[1].contains("left") && lines[1].contains("running"));
    assert!(lines[1].contains("1m01s") && lines[1].contains("256 MiB"));
    assert!(lines[2].contains("right") && lines[2].contains("halted"));
    assert!(lines[2].contains(" - "), "no uptime when not running");
    assert!(
        lines[1].ends_with("SYSTEM_RESET from vCPU 1"),
        "{}",
        lines[1]
    );
    assert!(lines[0].ends_with("last end"));
    assert_eq!(uptime(3_723_000), "1h02m03s");
}

#[test]
fn stats_give_rates_since_the_last_call_and_json() {
    let a = Figures {
        exits: vec![("irq", 100), ("mmio", 50), ("wfx", 0)],
        counters: vec![
            ("guest", "refused", 3),
            ("net", "tx_frames", 10),
            ("net", "rx_frames", 12),
        ],
    };
    let b = Figures {
        exits: vec![("irq", 300), ("mmio", 70), ("wfx", 0)],
        counters: a.counters.clone(),
    };
    let mut s = String::new();
    stats("left", &a, None, &mut s);
    assert!(s.starts_with("VM 'left': exits 150\r\n"));
    assert!(!s.contains("/s"));
    assert!(!s.contains("wfx"), "zero kinds left out");
    let mut s = String::new();
    stats("left", &b, Some((&a, 2.0)), &mut s);
    assert!(s.starts_with("VM 'left': exits 370, 110.0/s over the last 2.0 s"));
    assert!(s.contains("exits irq"));
    assert!(s.contains("100.0/s") && s.contains("10.0/s"));
    assert!(s.contains("refused"));
    let mut j = String::new();
    stats_json("le\"ft", &b, &mut j);
    assert_eq!(
        j,
        "MONITOR {\"vm\":\"le\\\"ft\",\"exits\":{\"irq\":300,\"mmio\":70,\"wfx\":0},\"guest\":{\"refused\":3},\"net\":{\"tx_frames\":10,\"rx_frames\":12}}\r\n"
    );
}

#[test]
fn state_changes_parse_and_are_refused_where_they_cannot_apply() {
    let names = ["left", "right"];
    assert_eq!(
        parse("stop right", &names),
        Ok(Command::Life(Life::Stop, 1))
    );
    assert_eq!(parse("start 1", &names), Ok(Command::Life(Life::Start, 1)));
    assert_eq!(
        parse("restart left", &names),
        Ok(Command::Life(Life::Restart, 0))
    );
    assert_eq!(
        parse("reset left", &names),
        Ok(Command::Life(Life::Reset, 0))
    );
    assert_eq!(parse("stop", &names).unwrap_err(), "stop takes one VM");
    assert_eq!(
        parse("stop left right", &names).unwrap_err(),
        "stop takes one VM"
    );
    assert!(parse("start nosuch", &names)
        .unwrap_err()
        .starts_with("no VM 'nosuch'"));
    use Life::*;
    use State::*;
    for (what, st, ok) in [
        (Stop, Running, true),
        (Stop, Halted, false),
        (Start, Halted, true),
        (Start, Running, false),
        (Restart, Running, true),
        (Restart, Halted, false),
        (Reset, Running, true),
        (Reset, Halted, false),
        (Stop, Restarting, false),
        (Start, Restarting, false),
    ] {
        let r = refusal(what, "right", st);
        assert_eq!(r.is_none(), ok, "{what:?} in {st:?}: {r:?}");
        if let Some(m) = r {
            assert!(m.starts_with(&std::format!("cannot {} VM 'right': ", what.word())));
        }
    }
}
