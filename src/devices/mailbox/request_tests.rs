//! Tests of devices/mailbox/request.rs: a guest's request served end to
//! end over a flat RAM.

use super::*;
use crate::devices::mailbox::policy::{tag, Policy};
use crate::devices::mailbox::property::tests::{buffer, word, FakeFw, VIEW};
use crate::devices::mailbox::property::{CODE_ERROR, CODE_SUCCESS};
use std::vec;

/// A request against a 1 MiB flat RAM with the buffer at IPA `at`.
fn serve_at(ram: &mut [u8], word: u32) -> Served {
    let mut mem: &mut [u8] = ram;
    serve(
        word,
        &mut mem,
        &Policy::default(),
        &VIEW,
        &mut FakeFw::default(),
    )
}

#[test]
fn serve_answers_a_good_request_in_place() {
    let mut ram = vec![0u8; 1 << 20];
    let b = buffer(&[(tag::FIRMWARE_REVISION, 4, 0, &[])]);
    ram[0x1000..0x1000 + b.len()].copy_from_slice(&b);
    let s = serve_at(&mut ram, 0xc000_1000 | CHANNEL);
    assert_eq!(s.answer, Some(0xc000_1000 | CHANNEL));
    assert_eq!(s.problem, None);
    assert_eq!(s.outcome.unwrap().forwarded, 1);
    assert_eq!(word(&ram[0x1000..], 1), CODE_SUCCESS);
    assert_eq!(word(&ram[0x1000..], 5), tag::FIRMWARE_REVISION + 1);
}

#[test]
fn serve_refuses_hostile_requests_and_writes_only_the_code() {
    let mut ram = vec![0u8; 1 << 20];
    // Another channel: no answer at all.
    let s = serve_at(&mut ram, 0xc000_1000 | 9);
    assert_eq!((s.answer, s.problem), (None, Some(Problem::Channel(9))));
    // Outside the VM's RAM: answered, nothing written.
    let s = serve_at(&mut ram, 0xc010_0000 | CHANNEL);
    assert!(matches!(s.problem, Some(Problem::Outside { .. })));
    assert!(ram.iter().all(|&b| b == 0));
    // A size that runs past RAM: refused, nothing written.
    ram[0xffff0..0xffff4].copy_from_slice(&64u32.to_le_bytes());
    let s = serve_at(&mut ram, 0xc00f_fff0 | CHANNEL);
    assert_eq!(
        s.problem,
        Some(Problem::PastRam {
            bus: 0xc00f_fff0,
            size: 64
        })
    );
    assert_eq!(word(&ram[0xffff0..], 1), 0);
    // An impossible size: only the code word changes.
    ram[0x2000..0x2004].copy_from_slice(&7u32.to_le_bytes());
    let s = serve_at(&mut ram, 0xc000_2000 | CHANNEL);
    assert!(matches!(s.problem, Some(Problem::BadSize { .. })));
    assert_eq!(word(&ram[0x2000..], 1), CODE_ERROR);
    assert!(ram[0x2008..0x2100].iter().all(|&b| b == 0));
    // Tags that run past the buffer: the code only, the tags untouched.
    let mut b = buffer(&[(tag::FIRMWARE_REVISION, 4, 0, &[])]);
    b[12..16].copy_from_slice(&4096u32.to_le_bytes());
    ram[0x3000..0x3000 + b.len()].copy_from_slice(&b);
    let s = serve_at(&mut ram, 0xc000_3000 | CHANNEL);
    assert!(matches!(s.problem, Some(Problem::Malformed { .. })));
    assert_eq!(word(&ram[0x3000..], 1), CODE_ERROR);
    assert_eq!(&ram[0x3008..0x3000 + b.len()], &b[8..]);
    assert!(s
        .problem
        .unwrap()
        .to_string()
        .starts_with("mailbox: malformed buffer at bus 0xc0003000"));
}
