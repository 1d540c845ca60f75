//! The card `make sd` writes: partition 1 the FAT boot partition, then
//! one partition per VM disk under the number its configuration names
//! (`disk = sd:N`): 2-4 primary, 5 on logical inside an extended
//! partition in a free primary slot (logical numbers with no disk get a
//! 1 MiB spare, since logical partitions are numbered in chain order).
//! Everything 1 MiB-aligned; each logical partition's boot record in the
//! 1 MiB before it. The card's size is a power of two (QEMU insists).
//! [`CardPlan::records`] are the MBR and EBRs to write; [`super::mbr`]
//! reads them back. Pure.

use super::mbr::SECTOR;
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;

/// 1 MiB in sectors: the alignment of every partition.
pub const ALIGN: u64 = 2048;

/// One partition of the plan.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Planned {
    /// Its number.
    pub number: u32,
    /// First sector.
    pub start: u64,
    /// Sectors.
    pub sectors: u64,
    /// Type byte (0x0c FAT32 LBA, 0x83 Linux).
    pub kind: u8,
}

/// The whole card.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CardPlan {
    /// The partitions, by number.
    pub parts: Vec<Planned>,
    /// The extended partition: (primary slot 2-4, start, sectors).
    pub extended: Option<(u32, u64, u64)>,
    /// The card's size in sectors (a power of two).
    pub sectors: u64,
}

fn up(x: u64) -> u64 {
    x.div_ceil(ALIGN) * ALIGN
}

/// Plans a card: a boot partition of `boot` sectors and `disks` as
/// (partition number, sectors); numbers must be 2-64 and distinct.
pub fn plan(boot: u64, disks: &[(u32, u64)]) -> Result<CardPlan, String> {
    let mut disks: Vec<(u32, u64)> = disks.to_vec();
    disks.sort();
    if let Some(w) = disks.windows(2).find(|w| w[0].0 == w[1].0) {
        return Err(format!("partition {} is named twice", w[0].0));
    }
    if let Some(&(n, _)) = disks.iter().find(|d| d.0 < 2 || d.0 > 64) {
        return Err(format!(
            "partition {n}: a VM disk is partition 2-4 (primary) or 5-64 (logical)"
        ));
    }
    let mut parts = Vec::new();
    let mut at = ALIGN;
    parts.push(Planned {
        number: 1,
        start: at,
        sectors: up(boot.max(1)),
        kind: 0x0c,
    });
    at += up(boot.max(1));
    for &(n, s) in disks.iter().filter(|d| d.0 <= 4) {
        parts.push(Planned {
            number: n,
            start: at,
            sectors: up(s.max(1)),
            kind: 0x83,
        });
        at += up(s.max(1));
    }
    let logical: Vec<(u32, u64)> = disks.iter().copied().filter(|d| d.0 >= 5).collect();
    let mut extended = None;
    if let Some(&(last, _)) = logical.last() {
        let slot = (2..=4u32)
            .rev()
            .find(|s| !disks.iter().any(|d| d.0 == *s))
            .ok_or("partitions 2, 3 and 4 are all VM disks, so there is no slot left for the extended partition that logical ones (5 on) need")?;
        let ext_start = at;
        for n in 5..=last {
            let s = logical
                .iter()
                .find(|d| d.0 == n)
                .map_or(ALIGN, |d| up(d.1.max(1)));
            // The logical partition's boot record in the MiB before it.
            at += ALIGN;
            parts.push(Planned {
                number: n,
                start: at,
                sectors: s,
                kind: 0x83,
            });
            at += s;
        }
        extended = Some((slot, ext_start, at - ext_start));
    }
    if at > u64::from(u32::MAX) {
        return Err("the card would be larger than an MBR can describe (2 TiB)".into());
    }
    Ok(CardPlan {
        parts,
        extended,
        sectors: at.next_power_of_two(),
    })
}

impl CardPlan {
    /// The boot records to write: (sector, its 512 bytes).
    pub fn records(&self) -> Vec<(u64, [u8; SECTOR])> {
        let entry =
            |s: &mut [u8; SECTOR], slot: usize, boot: bool, kind: u8, start: u64, len: u64| {
                let e = 446 + 16 * slot;
                s[e] = if boot { 0x80 } else { 0 };
                s[e + 4] = kind;
                s[e + 8..e + 12].copy_from_slice(&(start as u32).to_le_bytes());
                s[e + 12..e + 16].copy_from_slice(&(len as u32).to_le_bytes());
                s[510] = 0x55;
                s[511] = 0xaa;
            };
        let mut mbr = [0u8; SECTOR];
        for p in self.parts.iter().filter(|p| p.number <= 4) {
            entry(
                &mut mbr,
                p.number as usize - 1,
                p.number == 1,
                p.kind,
                p.start,
                p.sectors,
            );
        }
        let mut out = Vec::new();
        if let Some((slot, ext, len)) = self.extended {
            entry(&mut mbr, slot as usize - 1, false, 0x05, ext, len);
            let logical: Vec<&Planned> = self.parts.iter().filter(|p| p.number >= 5).collect();
            for (i, p) in logical.iter().enumerate() {
                let ebr_at = p.start - ALIGN;
                let mut ebr = [0u8; SECTOR];
                entry(&mut ebr, 0, false, p.kind, ALIGN, p.sectors);
                if let Some(next) = logical.get(i + 1) {
                    let next_ebr = next.start - ALIGN;
                    entry(
                        &mut ebr,
                        1,
                        false,
                        0x05,
                        next_ebr - ext,
                        next.sectors + ALIGN,
                    );
                }
                out.push((ebr_at, ebr));
            }
        }
        out.insert(0, (0, mbr));
        out
    }
}

#[cfg(test)]
mod tests {
    use super::super::mbr;
    use super::*;
    use std::collections::BTreeMap;
    use std::vec;

    /// Writes the plan's records into a sparse card and reads it back.
    fn round_trip(p: &CardPlan) -> Vec<mbr::Partition> {
        let recs: BTreeMap<u64, [u8; SECTOR]> = p.records().into_iter().collect();
        mbr::parse(p.sectors, &mut |lba, buf| {
            *buf = recs.get(&lba).copied().unwrap_or([0; SECTOR]);
            true
        })
        .unwrap()
    }

    #[test]
    fn primaries_and_logicals_come_back_with_their_numbers() {
        let mib = 2048;
        let p = plan(256 * mib, &[(2, 64 * mib), (5, 32 * mib), (7, 16 * mib)]).unwrap();
        let back = round_trip(&p);
        let got: Vec<(u32, u64, u64)> = back
            .iter()
            .map(|q| (q.number, q.start, q.sectors))
            .collect();
        let want: Vec<(u32, u64, u64)> = p
            .parts
            .iter()
            .map(|q| (q.number, q.start, q.sectors))
            .collect();
        assert_eq!(got, want);
        assert_eq!(
            back.iter().map(|q| q.number).collect::<Vec<_>>(),
            vec![1, 2, 5, 6, 7]
        );
        // 6 is a 1 MiB spare; the extended partition took slot 4.
        assert_eq!(back[3].sectors, ALIGN);
        assert_eq!(p.extended.map(|e| e.0), Some(4));
        assert!(back[0].bootable && back[0].kind == 0x0c);
        // Aligned, inside the card, a power of two.
        assert!(p
            .parts
            .iter()
            .all(|q| q.start % ALIGN == 0 && q.start + q.sectors <= p.sectors));
        assert!(p.sectors.is_power_of_two());
    }

    #[test]
    fn only_primaries_need_no_extended_partition() {
        let p = plan(100, &[(3, 5000), (2, 10)]).unwrap();
        assert!(p.extended.is_none());
        let back = round_trip(&p);
        assert_eq!(
            back.iter().map(|q| q.number).collect::<Vec<_>>(),
            vec![1, 2, 3]
        );
        assert_eq!(p.records().len(), 1);
    }

    #[test]
    fn impossible_layouts_are_refused() {
        assert!(plan(1, &[(2, 1), (2, 1)])
            .unwrap_err()
            .contains("named twice"));
        assert!(plan(1, &[(1, 1)]).unwrap_err().contains("2-4"));
        assert!(plan(1, &[(65, 1)]).unwrap_err().contains("5-64"));
        assert!(plan(1, &[(2, 1), (3, 1), (4, 1), (5, 1)])
            .unwrap_err()
            .contains("no slot left"));
        assert!(plan(1, &[(2, u64::from(u32::MAX))])
            .unwrap_err()
            .contains("2 TiB"));
    }
}
