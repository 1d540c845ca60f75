use super::*;
use std::vec;
use std::vec::Vec;

const ALL: Offer = Offer {
    csum: true,
    tso4: true,
    tso6: true,
};

/// A TCP frame over IPv4 (`v6` false) or IPv6 with `payload` bytes, TCP
/// options of `opts` bytes, FIN|PSH|CWR set, its checksum left partial
/// as Linux leaves it (the pseudo-header's sum in the field).
pub(crate) fn tcp(v6: bool, payload: usize, opts: usize) -> Vec<u8> {
    let ip = if v6 { 40 } else { 20 };
    let thl = 20 + opts;
    let mut f = vec![0u8; 14 + ip + thl + payload];
    f[0..6].copy_from_slice(&[2, 0, 0, 0, 0, 2]);
    f[6..12].copy_from_slice(&[2, 0, 0, 0, 0, 1]);
    let l3 = 14;
    let l4 = l3 + ip;
    let tcp_len = thl + payload;
    if v6 {
        f[12..14].copy_from_slice(&0x86ddu16.to_be_bytes());
        f[l3] = 0x60;
        f[l3 + 4..l3 + 6].copy_from_slice(&(tcp_len as u16).to_be_bytes());
        f[l3 + 6] = 6;
        f[l3 + 7] = 64;
        f[l3 + 8..l3 + 24].copy_from_slice(&[0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]);
        f[l3 + 24..l3 + 40].copy_from_slice(&[0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2]);
    } else {
        f[12..14].copy_from_slice(&0x0800u16.to_be_bytes());
        f[l3] = 0x45;
        f[l3 + 2..l3 + 4].copy_from_slice(&((ip + tcp_len) as u16).to_be_bytes());
        f[l3 + 4..l3 + 6].copy_from_slice(&0x1234u16.to_be_bytes());
        f[l3 + 6] = 0x40; // DF
        f[l3 + 8] = 64;
        f[l3 + 9] = 6;
        f[l3 + 12..l3 + 16].copy_from_slice(&[10, 0, 0, 1]);
        f[l3 + 16..l3 + 20].copy_from_slice(&[10, 0, 0, 2]);
        let c = checksum(&f[l3..l4]);
        f[l3 + 10..l3 + 12].copy_from_slice(&c.to_be_bytes());
    }
    f[l4..l4 + 2].copy_from_slice(&5000u16.to_be_bytes());
    f[l4 + 2..l4 + 4].copy_from_slice(&40000u16.to_be_bytes());
    f[l4 + 4..l4 + 8].copy_from_slice(&0xffff_fff0u32.to_be_bytes());
    f[l4 + 12] = ((thl / 4) as u8) << 4;
    f[l4 + 13] = 0x80 | 0x08 | 0x01 | 0x10; // CWR PSH FIN ACK
    for (i, b) in f[l4 + thl..].iter_mut().enumerate() {
        *b = (i * 7 + i / 251) as u8;
    }
    // Partial: the pseudo-header's sum, not complemented.
    let seed = !pseudo(&f, v6, tcp_len).fold();
    f[l4 + 16..l4 + 18].copy_from_slice(&seed.to_be_bytes());
    f
}

fn pseudo(f: &[u8], v6: bool, tcp_len: usize) -> Sum {
    let mut s = Sum::default();
    if v6 {
        s.add(&f[22..54]);
        s.add(&(tcp_len as u32).to_be_bytes());
        s.add(&[0, 0, 0, 6]);
    } else {
        s.add(&f[26..34]);
        s.add(&[0, 6]);
        s.add(&(tcp_len as u16).to_be_bytes());
    }
    s
}

/// Whether a finished TCP frame's checksums hold.
pub(crate) fn valid(f: &[u8], v6: bool) -> bool {
    let l4 = if v6 {
        54
    } else {
        14 + usize::from(f[14] & 0xf) * 4
    };
    let ip_ok = v6 || checksum(&f[14..l4]) == 0;
    let mut s = pseudo(f, v6, f.len() - l4);
    s.add(&f[l4..]);
    ip_ok && s.fold() == 0
}

pub(crate) fn hdr(flags: u8, gso: u8, mss: u16, start: u16, off: u16) -> [u8; 12] {
    let mut h = [0u8; 12];
    h[0] = flags;
    h[1] = gso;
    h[4..6].copy_from_slice(&mss.to_le_bytes());
    h[6..8].copy_from_slice(&start.to_le_bytes());
    h[8..10].copy_from_slice(&off.to_le_bytes());
    h
}

fn parse(h: [u8; 12], f: &[u8], tx: Offer) -> Result<Meta, Bad> {
    Meta::parse(&h, &f[..f.len().min(HEAD)], f.len() as u32, tx, 1500)
}

#[test]
fn a_linux_tso_frame_is_accepted_and_passed_to_a_receiver_that_takes_it() {
    let f = tcp(false, 60000, 12);
    let m = parse(hdr(1, GSO_TCPV4, 1448, 34, 16), &f, ALL).unwrap();
    let g = m.gso.unwrap();
    assert_eq!((g.v6, g.l4, g.hdr_end, g.mss), (false, 34, 66, 1448));
    assert_eq!(m.csum, Some((34, 16)));
    let h = m.rx_header(ALL).unwrap();
    assert_eq!(h, {
        let mut h = hdr(1, GSO_TCPV4, 1448, 34, 16);
        h[2..4].copy_from_slice(&66u16.to_le_bytes());
        h
    });
    // Without the segmentation offload the switch cuts it.
    let rx = Offer {
        csum: true,
        tso4: false,
        tso6: true,
    };
    assert_eq!(m.rx_header(rx), None);
    assert_eq!(m.rx_header(Offer::default()), None);
    assert_eq!(segments(&m, f.len() as u32), 60000u32.div_ceil(1448));
}

#[test]
fn a_partial_checksum_passes_or_is_finished_in_software() {
    let mut f = tcp(false, 100, 0);
    let m = parse(hdr(1, 0, 0, 34, 16), &f, ALL).unwrap();
    assert_eq!(m.gso, None);
    assert!(m
        .rx_header(Offer {
            csum: true,
            ..Offer::default()
        })
        .is_some());
    assert_eq!(m.rx_header(Offer::default()), None);
    assert!(!valid(&f, false), "partial before");
    let mut got = Vec::new();
    let n = finish(&mut f, &m, &mut |b| {
        got.push(b.to_vec());
        true
    });
    assert_eq!(n, 1);
    assert!(valid(&got[0], false), "finished");
}

#[test]
fn a_udp_style_checksum_anywhere_in_the_frame_is_finished() {
    // Any protocol: the sum from csum_start, stored at csum_offset.
    let mut f = vec![0x5au8; 80];
    f[40..42].copy_from_slice(&[0x12, 0x34]);
    let m = parse(hdr(1, 0, 0, 34, 6), &f, ALL).unwrap();
    let mut out = Vec::new();
    finish(&mut f, &m, &mut |b| {
        out = b.to_vec();
        true
    });
    // With the pseudo-header's sum the field held (0x1234) it sums to
    // zero: the bytes alone to its complement.
    assert_eq!(checksum(&out[34..]), 0x1234);
}

#[test]
fn segments_carry_the_payload_in_order_with_valid_headers() {
    for v6 in [false, true] {
        let (payload, mss) = (10_000, 1400u16);
        let mut f = tcp(v6, payload, 12);
        let ty = if v6 { GSO_TCPV6 } else { GSO_TCPV4 };
        let l4 = if v6 { 54 } else { 34 };
        let m = parse(hdr(1, ty, mss, l4, 16), &f, ALL).unwrap();
        let end = l4 as usize + 32;
        let orig = f[end..].to_vec();
        let mut segs: Vec<Vec<u8>> = Vec::new();
        let n = finish(&mut f, &m, &mut |b| {
            segs.push(b.to_vec());
            true
        });
        assert_eq!(n as usize, segs.len());
        assert_eq!(segs.len(), payload.div_ceil(mss as usize));
        let mut joined = Vec::new();
        for (k, s) in segs.iter().enumerate() {
            assert!(valid(s, v6), "segment {k} (v6 {v6}) checksums");
            assert!(s.len() - 14 <= 1500, "fits the MTU");
            let lt = l4 as usize;
            let seq = u32::from_be_bytes([s[lt + 4], s[lt + 5], s[lt + 6], s[lt + 7]]);
            assert_eq!(seq, 0xffff_fff0u32.wrapping_add(k as u32 * u32::from(mss)));
            let fl = s[lt + 13];
            let last = k + 1 == segs.len();
            assert_eq!(fl & 0x09 != 0, last, "FIN/PSH on the last only");
            assert_eq!(fl & 0x80 != 0, k == 0, "CWR on the first only");
            assert_eq!(fl & 0x10, 0x10, "ACK kept");
            if !v6 {
                assert_eq!(be16(s, 18), 0x1234 + k as u16, "IPv4 id");
                assert_eq!(usize::from(be16(s, 16)), s.len() - 14);
            } else {
                assert_eq!(usize::from(be16(s, 18)), s.len() - 54);
            }
            joined.extend_from_slice(&s[end..]);
        }
        assert_eq!(joined, orig);
    }
}

#[test]
fn segmentation_stops_when_the_receiver_does_and_is_bounded() {
    let mut f = tcp(false, 30_000, 0);
    let m = parse(hdr(1, GSO_TCPV4, 100, 34, 16), &f, ALL).unwrap();
    assert_eq!(segments(&m, f.len() as u32), 300);
    let mut k = 0;
    assert_eq!(
        finish(&mut f, &m, &mut |_| {
            k += 1;
            k < 3
        }),
        2
    );
    let mut all = 0;
    assert_eq!(
        finish(&mut f, &m, &mut |_| {
            all += 1;
            true
        }),
        MAX_SEGS
    );
}

#[test]
fn one_segment_or_less_is_sent_with_its_checksum_partial_only() {
    let f = tcp(false, 1000, 0);
    let m = parse(hdr(1, GSO_TCPV4, 1448, 34, 16), &f, ALL).unwrap();
    assert_eq!(m.gso, None);
    assert_eq!(m.csum, Some((34, 16)));
}

#[test]
fn hostile_headers_are_refused() {
    let f = tcp(false, 5000, 0);
    let ok = hdr(1, GSO_TCPV4, 1448, 34, 16);
    assert!(parse(ok, &f, ALL).is_ok());
    let none = Offer::default();
    let no_tso = Offer { csum: true, ..none };
    let cases: [([u8; 12], Offer, Bad, &str); 11] = [
        (ok, none, Bad::Header, "offload not negotiated"),
        (ok, no_tso, Bad::Header, "TSO not negotiated"),
        (
            hdr(3, 0, 0, 34, 16),
            ALL,
            Bad::Header,
            "DATA_VALID from a sender",
        ),
        (
            hdr(0, GSO_TCPV4, 1448, 34, 16),
            ALL,
            Bad::Header,
            "GSO without a partial checksum",
        ),
        (
            hdr(1, GSO_TCPV4 | 0x80, 1448, 34, 16),
            ALL,
            Bad::Header,
            "ECN",
        ),
        (
            hdr(1, 3, 1448, 34, 16),
            ALL,
            Bad::Header,
            "UDP fragmentation",
        ),
        (
            hdr(1, GSO_TCPV6, 1448, 34, 16),
            ALL,
            Bad::Header,
            "IPv6 type on IPv4",
        ),
        (
            hdr(1, GSO_TCPV4, 1448, 30, 16),
            ALL,
            Bad::Header,
            "checksum not at TCP",
        ),
        (
            hdr(1, GSO_TCPV4, 1448, 34, 6),
            ALL,
            Bad::Header,
            "offset not TCP's",
        ),
        (hdr(1, GSO_TCPV4, 0, 34, 16), ALL, Bad::Header, "MSS 0"),
        (
            hdr(1, GSO_TCPV4, 1461, 34, 16),
            ALL,
            Bad::Oversized,
            "segments over the MTU",
        ),
    ];
    for (h, tx, want, what) in cases {
        assert_eq!(parse(h, &f, tx), Err(want), "{what}");
    }
    // A checksum position past the frame.
    let short = vec![0u8; 40];
    assert_eq!(parse(hdr(1, 0, 0, 30, 9), &short, ALL), Err(Bad::Header));
    assert_eq!(
        parse(hdr(1, 0, 0, 38, 0), &short, ALL),
        Ok(Meta {
            csum: Some((38, 0)),
            gso: None
        })
    );
    assert_eq!(
        parse(hdr(1, 0, 0, 0xffff, 0xffff), &short, ALL),
        Err(Bad::Header)
    );
    // Lengths that disagree with the IP header, fragments, other
    // protocols, a truncated header.
    let mut bad_len = f.clone();
    bad_len[17] ^= 1;
    let mut frag = f.clone();
    frag[20] = 0x20; // MF
    let mut udp = f.clone();
    udp[23] = 17;
    let mut vlan = f.clone();
    vlan[12..14].copy_from_slice(&0x8100u16.to_be_bytes());
    let mut thl = f.clone();
    thl[46] = 0x40; // 16-byte TCP header
    for (g, what) in [
        (bad_len, "length"),
        (frag, "fragment"),
        (udp, "UDP"),
        (vlan, "VLAN"),
        (thl, "TCP header"),
    ] {
        assert_eq!(parse(ok, &g, ALL), Err(Bad::Header), "{what}");
    }
    assert_eq!(
        Meta::parse(&ok, &f[..40], f.len() as u32, ALL, 1500),
        Err(Bad::Header),
        "truncated"
    );
    // Larger than any IP packet.
    assert_eq!(
        Meta::parse(&ok, &f[..HEAD], MAX_GSO_FRAME + 1, ALL, 1500),
        Err(Bad::Oversized)
    );
}

#[test]
fn the_running_sum_does_not_care_how_the_bytes_are_split() {
    let data: Vec<u8> = (0..1001u32).map(|i| (i * 31 + 7) as u8).collect();
    let whole = checksum(&data);
    for cut in [0, 1, 2, 3, 500, 999, 1000, 1001] {
        let mut s = Sum::default();
        s.add(&data[..cut]);
        s.add(&data[cut..]);
        assert_eq!(s.fold(), whole, "cut at {cut}");
    }
    // RFC 1071's example.
    assert_eq!(
        checksum(&[0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7]),
        !0xddf2
    );
}
