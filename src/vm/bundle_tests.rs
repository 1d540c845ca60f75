//! Tests of vm/bundle.rs: the bundle format round trip and hostile blobs.

use super::*;
use crate::vm::config::tests::TWO;
use std::vec::Vec;

fn sample() -> Vec<u8> {
    write(&[
        ("vms.conf", TWO.as_bytes()),
        ("testguest.img", b"kernel!"),
        ("rd.img", &[1, 2, 3]),
    ])
    .unwrap()
}

#[test]
fn bundle_round_trip() {
    let b = sample();
    let p = Bundle::parse(&b).unwrap();
    assert_eq!(p.config().unwrap(), TWO);
    assert_eq!(p.file("testguest.img"), Some(&b"kernel!"[..]));
    assert_eq!(p.file("rd.img"), Some(&[1u8, 2, 3][..]));
    assert_eq!(p.file("nope"), None);
    assert_eq!(p.files().len(), 3);
    // Trailing bytes beyond total_size (the firmware pads) are ignored.
    let mut padded = b.clone();
    padded.extend_from_slice(&[0xff; 4096]);
    assert!(Bundle::parse(&padded).is_ok());
}

#[test]
fn bundle_refuses_hostile_blobs() {
    let b = sample();
    assert!(matches!(
        Bundle::parse(&b[..10]),
        Err(BundleError::Truncated { .. })
    ));
    assert!(matches!(
        Bundle::parse(&b[..b.len() - 1]),
        Err(BundleError::Truncated { .. })
    ));
    let mut m = b.clone();
    m[0] = b'X';
    assert_eq!(Bundle::parse(&m).unwrap_err(), BundleError::BadMagic);
    let mut v = b.clone();
    v[8] = 2;
    assert_eq!(Bundle::parse(&v).unwrap_err(), BundleError::BadVersion(2));
    let mut c = b.clone();
    c[12..16].copy_from_slice(&1000u32.to_le_bytes());
    assert_eq!(Bundle::parse(&c).unwrap_err(), BundleError::BadCount(1000));
    let mut t = b.clone();
    t[40] ^= 1; // a file table byte
    assert_eq!(Bundle::parse(&t).unwrap_err(), BundleError::TableChecksum);
    let mut d = b.clone();
    let last = d.len() - 1;
    d[last] ^= 0x80; // file data
    assert_eq!(
        Bundle::parse(&d).unwrap_err(),
        BundleError::FileChecksum("rd.img".into())
    );
    // Every single-byte corruption and every truncation is refused
    // without a panic (or, for padding bytes, accepted unchanged).
    for i in 0..b.len() {
        let mut x = b.clone();
        x[i] ^= 0x5a;
        if let Ok(p) = Bundle::parse(&x) {
            assert_eq!(p.config().ok(), Some(TWO), "byte {i}");
        }
        assert!(Bundle::parse(&b[..i]).is_err(), "truncated at {i}");
    }
}

/// Rewrites an entry field and fixes the table checksum, so only the
/// entry check can catch it.
fn forge(b: &[u8], at: usize, bytes: &[u8]) -> Vec<u8> {
    let mut x = b.to_vec();
    x[at..at + bytes.len()].copy_from_slice(bytes);
    let n = u32::from_le_bytes(x[12..16].try_into().unwrap()) as usize;
    let sum = fnv1a(&x[32..32 + n * 64]);
    x[24..32].copy_from_slice(&sum.to_le_bytes());
    x
}

fn name40(n: &str) -> [u8; 40] {
    let mut a = [0u8; 40];
    a[..n.len()].copy_from_slice(n.as_bytes());
    a
}

#[test]
fn bundle_refuses_forged_entries() {
    let b = sample();
    let e1 = 32 + 64; // second entry
    let cases: Vec<(Vec<u8>, &str)> = std::vec![
        (
            forge(&b, e1 + 40, &0u64.to_le_bytes()),
            "data outside the bundle"
        ),
        (forge(&b, e1 + 40, &u64::MAX.to_le_bytes()), "overflows"),
        (
            forge(&b, e1 + 48, &(1u64 << 40).to_le_bytes()),
            "data outside"
        ),
        (forge(&b, e1, &name40("rd.img")), "appears twice"),
        (forge(&b, e1, &name40("a b")), "space"),
        (forge(&b, e1, &[b'x'; 40]), "NUL-terminated"),
        (forge(&b, e1 + 20, b"z"), "garbage after the name"),
        (
            forge(
                &b,
                e1,
                &[0xff; 1]
                    .iter()
                    .chain(&[0u8; 39])
                    .copied()
                    .collect::<Vec<u8>>()
            ),
            "UTF-8"
        ),
        (forge(&b, 32, b"other.cf"), "not vms.conf"),
        (
            forge(&b, 16, &64u64.to_le_bytes()),
            "smaller than the file table"
        ),
    ];
    for (x, want) in cases {
        let e = std::format!("{}", Bundle::parse(&x).unwrap_err());
        assert!(e.contains(want), "got '{e}', want '{want}'");
    }
    assert!(write(&[("k", b"")]).is_err(), "config must come first");
    assert!(write(&[("vms.conf", b""), ("vms.conf", b"")]).is_err());
    assert!(write(&[("vms.conf", b""), ("a/b", b"")]).is_err());
    assert!(write(&[]).is_err());
}
