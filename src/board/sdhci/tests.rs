use super::sim::{Faults, Kind, Sim, SimClock};
use super::*;
use std::vec;

const MIB: usize = 1 << 20;

fn host(kind: Kind, size: usize) -> Sdhci<Sim, SimClock> {
    Sdhci::new(
        Sim::new(kind, size),
        SimClock { now: 0, step: 1 },
        200_000_000,
    )
}

#[test]
fn a_high_capacity_card_comes_up_with_block_addressing() {
    let mut h = host(Kind::Sdhc, 4 * MIB);
    let c = h.init().unwrap();
    assert_eq!(
        c,
        Card {
            sectors: 8192,
            high_capacity: true,
            rca: 0xb368
        }
    );
    let s = h.regs();
    assert_eq!(&s.commands[..4], &[0, 8, 55, 41]);
    assert!(s.bus_width_4 && !s.block_len_set);
    assert!(!s.commands.contains(&5), "CMD5 is never sent");
    assert_eq!(h.regs().read(reg::HOST) & 2, 2, "the host in 4-bit mode");
}

#[test]
fn a_standard_capacity_card_gets_byte_addresses_and_cmd16() {
    let mut h = host(Kind::Sdsc, 2 * MIB);
    let c = h.init().unwrap();
    assert_eq!((c.sectors, c.high_capacity), (4096, false));
    assert!(h.regs().block_len_set);
    // The simulator checks byte addresses are whole blocks and in range.
    let mut buf = vec![0u8; 4 * BLOCK];
    h.read(4092, &mut buf).unwrap();
    let o = 4092 * BLOCK;
    assert_eq!(&buf[..], &h.regs().image[o..o + 4 * BLOCK]);
}

#[test]
fn a_version_1_card_is_asked_without_hcs() {
    let mut h = host(Kind::V1, MIB);
    let c = h.init().unwrap();
    assert!(!c.high_capacity);
    assert!(h.regs().commands.starts_with(&[0, 8, 55, 41]));
}

#[test]
fn no_card_and_an_sdio_device_are_no_memory_card() {
    for kind in [Kind::Empty, Kind::Sdio] {
        let mut h = host(kind, 0);
        assert_eq!(h.init(), Err(SdError::NoMemoryCard), "{kind:?}");
        assert!(!h.regs().commands.contains(&5), "CMD5 never sent");
        assert!(h.card().is_none());
        // Data calls are refused, not sent.
        let n = h.regs().commands.len();
        assert_eq!(h.read(0, &mut [0; BLOCK]), Err(SdError::NoMemoryCard));
        assert_eq!(h.regs().commands.len(), n);
    }
}

#[test]
fn a_card_that_never_powers_up_times_out() {
    let mut h = host(Kind::Sdhc, MIB);
    h.regs().faults = Faults {
        never_ready: true,
        ..Faults::default()
    };
    assert_eq!(
        h.init(),
        Err(SdError::Timeout("the card's power-up (ACMD41)"))
    );
}

#[test]
fn multi_block_reads_and_writes_round_trip() {
    let mut h = host(Kind::Sdhc, 4 * MIB);
    h.init().unwrap();
    let data: std::vec::Vec<u8> = (0..MAX_BLOCKS * BLOCK)
        .map(|i| (i * 31 + 7) as u8)
        .collect();
    h.write(1000, &data).unwrap();
    assert_eq!(
        &h.regs().image[1000 * BLOCK..1000 * BLOCK + data.len()],
        &data[..]
    );
    let mut back = vec![0u8; data.len()];
    h.read(1000, &mut back).unwrap();
    assert_eq!(back, data);
    // One block: CMD17/CMD24.
    h.write(5, &data[..BLOCK]).unwrap();
    h.read(5, &mut back[..BLOCK]).unwrap();
    let cmds = &h.regs().commands;
    assert!(cmds.contains(&25) && cmds.contains(&18) && cmds.contains(&24) && cmds.contains(&17));
    h.wait_ready().unwrap();
}

#[test]
fn blocks_outside_the_card_or_odd_buffers_are_refused_before_any_command() {
    let mut h = host(Kind::Sdhc, MIB);
    h.init().unwrap();
    let n = h.regs().commands.len();
    let mut b = vec![0u8; 2 * BLOCK];
    for (lba, len) in [
        (2047u64, 2 * BLOCK),
        (2048, BLOCK),
        (u64::MAX, BLOCK),
        (0, 100),
        (0, 0),
    ] {
        assert_eq!(
            h.read(lba, &mut b[..len]),
            Err(SdError::Range),
            "{lba} {len}"
        );
        assert_eq!(h.write(lba, &b[..len]), Err(SdError::Range));
    }
    let mut big = vec![0u8; (MAX_BLOCKS + 1) * BLOCK];
    assert_eq!(h.read(0, &mut big), Err(SdError::Range));
    assert_eq!(h.regs().commands.len(), n, "nothing reached the card");
}

#[test]
fn a_data_error_is_reported_and_the_next_transfer_works() {
    let mut h = host(Kind::Sdhc, MIB);
    h.init().unwrap();
    h.regs().faults.read_crc_at = Some(10);
    let mut b = vec![0u8; 4 * BLOCK];
    assert!(matches!(h.read(8, &mut b), Err(SdError::Data(e)) if e & 0x20 != 0));
    h.regs().faults.read_crc_at = None;
    h.read(8, &mut b).unwrap();
    assert_eq!(&b[..], &h.regs().image[8 * BLOCK..12 * BLOCK]);
}

#[test]
fn a_stuck_transfer_times_out_and_never_hangs() {
    let mut h = host(Kind::Sdhc, MIB);
    h.init().unwrap();
    h.regs().faults.stuck_data = true;
    let mut b = vec![0u8; BLOCK];
    assert_eq!(h.read(0, &mut b), Err(SdError::Timeout("a block to read")));
    assert_eq!(
        h.write(0, &b),
        Err(SdError::Timeout("room to write a block"))
    );
    h.regs().faults.stuck_data = false;
    h.read(0, &mut b).unwrap();
}

#[test]
fn the_card_says_out_of_range_for_blocks_it_does_not_have() {
    // A card smaller than its CSD claims: the driver's check passes, the
    // card refuses (OUT_OF_RANGE in R1), nothing is transferred.
    let mut h = host(Kind::Sdhc, MIB);
    h.init().unwrap();
    h.regs().image.truncate(MIB / 2);
    let mut b = vec![0u8; BLOCK];
    assert!(matches!(
        h.read(1500, &mut b),
        Err(SdError::Status { index: 17, .. })
    ));
    h.read(0, &mut b).unwrap();
}
