use super::*;
use std::vec;
use std::vec::Vec;

/// A card image built sector by sector.
struct Card(Vec<[u8; SECTOR]>);

impl Card {
    fn new(sectors: usize) -> Self {
        Card(vec![[0; SECTOR]; sectors])
    }
    /// Writes entry `i` of the boot record at `at`, with its signature.
    fn entry(&mut self, at: u64, i: usize, flag: u8, kind: u8, start: u32, sectors: u32) {
        let s = &mut self.0[at as usize];
        let e = 446 + 16 * i;
        s[e] = flag;
        s[e + 4] = kind;
        s[e + 8..e + 12].copy_from_slice(&start.to_le_bytes());
        s[e + 12..e + 16].copy_from_slice(&sectors.to_le_bytes());
        s[510] = 0x55;
        s[511] = 0xaa;
    }
    fn parse(&self) -> Result<Vec<Partition>, MbrError> {
        let n = self.0.len() as u64;
        parse(n, &mut |lba, buf| match self.0.get(lba as usize) {
            Some(s) => {
                *buf = *s;
                true
            }
            None => false,
        })
    }
}

/// The card `make sd` will write: a FAT32 boot partition, an extended
/// partition with three Linux logical partitions (one per VM).
fn pi_card() -> Card {
    let mut c = Card::new(4096);
    c.entry(0, 0, 0x80, 0x0c, 16, 256);
    c.entry(0, 1, 0, 0x83, 272, 200);
    c.entry(0, 2, 0, 0x05, 1024, 3072);
    // EBR 1 at 1024: logical 5 at +8, next EBR at ext+1000.
    c.entry(1024, 0, 0, 0x83, 8, 900);
    c.entry(1024, 1, 0, 0x05, 1000, 1000);
    // EBR 2 at 2024: logical 6, next at ext+2000.
    c.entry(2024, 0, 0, 0x83, 8, 900);
    c.entry(2024, 1, 0, 0x05, 2000, 1072);
    // EBR 3 at 3024: logical 7, end of chain.
    c.entry(3024, 0, 0, 0x83, 8, 1064);
    c
}

#[test]
fn primaries_then_logicals_numbered_as_linux_does() {
    let p = pi_card().parse().unwrap();
    let got: Vec<(u32, u64, u64, u8)> = p
        .iter()
        .map(|p| (p.number, p.start, p.sectors, p.kind))
        .collect();
    assert_eq!(
        got,
        vec![
            (1, 16, 256, 0x0c),
            (2, 272, 200, 0x83),
            (5, 1032, 900, 0x83),
            (6, 2032, 900, 0x83),
            (7, 3032, 1064, 0x83),
        ]
    );
    assert!(p[0].bootable && !p[1].bootable);
    assert_eq!((p[0].kind_name(), p[2].kind_name()), ("FAT32", "Linux"));
}

#[test]
fn empty_slots_keep_their_numbers() {
    let mut c = Card::new(1000);
    c.entry(0, 3, 0, 0x83, 100, 100);
    let p = c.parse().unwrap();
    assert_eq!((p.len(), p[0].number), (1, 4));
}

#[test]
fn hostile_tables_are_refused_with_a_reason() {
    let cases: Vec<(&str, Card, MbrError)> = vec![
        ("no signature", Card::new(100), MbrError::NoSignature(0)),
        (
            "GPT",
            {
                let mut c = Card::new(100);
                c.entry(0, 0, 0, 0xee, 1, 99);
                c
            },
            MbrError::Gpt,
        ),
        (
            "past the card",
            {
                let mut c = Card::new(100);
                c.entry(0, 1, 0, 0x83, 50, 51);
                c
            },
            MbrError::OutsideCard(2),
        ),
        (
            "huge length",
            {
                let mut c = Card::new(100);
                c.entry(0, 0, 0, 0x83, u32::MAX, u32::MAX);
                c
            },
            MbrError::OutsideCard(1),
        ),
        (
            "starting at the MBR",
            {
                let mut c = Card::new(100);
                c.entry(0, 0, 0, 0x83, 0, 10);
                c
            },
            MbrError::OutsideCard(1),
        ),
        (
            "overlapping primaries",
            {
                let mut c = Card::new(100);
                c.entry(0, 0, 0, 0x0c, 10, 20);
                c.entry(0, 1, 0, 0x83, 29, 10);
                c
            },
            MbrError::Overlap(1, 2),
        ),
        (
            "two extended",
            {
                let mut c = Card::new(100);
                c.entry(0, 0, 0, 0x05, 10, 20);
                c.entry(0, 1, 0, 0x0f, 40, 20);
                c
            },
            MbrError::TwoExtended,
        ),
        (
            "a primary inside the extended partition",
            {
                let mut c = Card::new(100);
                c.entry(0, 0, 0, 0x83, 15, 5);
                c.entry(0, 1, 0, 0x05, 10, 50);
                c
            },
            MbrError::Overlap(1, 2),
        ),
        (
            "a logical past the extended partition",
            {
                let mut c = Card::new(200);
                c.entry(0, 0, 0, 0x05, 10, 50);
                c.entry(10, 0, 0, 0x83, 2, 60);
                c
            },
            MbrError::OutsideCard(5),
        ),
        (
            "a chain that loops back",
            {
                let mut c = Card::new(200);
                c.entry(0, 0, 0, 0x05, 10, 100);
                c.entry(10, 0, 0, 0x83, 2, 5);
                c.entry(10, 1, 0, 0x05, 20, 20);
                c.entry(30, 0, 0, 0x83, 2, 5);
                c.entry(30, 1, 0, 0x05, 16, 20); // ext + 16 = 26: backwards
                c
            },
            MbrError::BadChain(30),
        ),
        (
            "an EBR without signature",
            {
                let mut c = Card::new(200);
                c.entry(0, 0, 0, 0x05, 10, 100);
                c
            },
            MbrError::NoSignature(10),
        ),
        (
            "an EBR past the extended partition's end",
            {
                let mut c = Card::new(50);
                c.entry(0, 0, 0, 0x05, 10, 40);
                c.entry(10, 0, 0, 0x83, 2, 5);
                c.entry(10, 1, 0, 0x05, 40, 1);
                c
            },
            MbrError::BadChain(10),
        ),
    ];
    for (what, card, want) in cases {
        assert_eq!(card.parse(), Err(want), "{what}");
    }
}

#[test]
fn a_long_chain_is_cut_off() {
    // Every EBR one sector after the last, for ever.
    let mut c = Card::new(300);
    c.entry(0, 0, 0, 0x05, 1, 299);
    for k in 0..298u32 {
        c.entry(1 + u64::from(k), 0, 0, 0x83, 0, 0);
        c.entry(1 + u64::from(k), 1, 0, 0x05, k + 1, 1);
    }
    assert_eq!(c.parse(), Err(MbrError::BadChain(1 + MAX_LOGICAL as u64)));
}

#[test]
fn a_next_pointer_back_to_the_first_ebr_ends_the_chain() {
    let mut c = Card::new(200);
    c.entry(0, 0, 0, 0x05, 10, 100);
    c.entry(10, 0, 0, 0x83, 2, 5);
    c.entry(10, 1, 0, 0x05, 0, 5);
    assert_eq!(c.parse().unwrap().len(), 1);
}

#[test]
fn an_unreadable_card_is_a_read_error() {
    assert_eq!(parse(10, &mut |_, _| false), Err(MbrError::Read(0)));
}
