//! Physical address ranges and sorted, merged sets of them.

use crate::fixedvec::{CapacityError, FixedVec};
use core::fmt;

/// A half-open physical range `[start, end)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, PartialOrd, Ord)]
pub struct Range {
    /// First byte.
    pub start: u64,
    /// One past the last byte.
    pub end: u64,
}

impl Range {
    /// `[start, start + size)`, or `None` if that overflows.
    pub fn from_size(start: u64, size: u64) -> Option<Self> {
        Some(Range {
            start,
            end: start.checked_add(size)?,
        })
    }

    /// Size in bytes.
    pub fn size(&self) -> u64 {
        self.end.saturating_sub(self.start)
    }

    /// True if empty.
    pub fn is_empty(&self) -> bool {
        self.end <= self.start
    }

    /// True if the ranges share a byte.
    pub fn overlaps(&self, o: &Range) -> bool {
        self.start < o.end && o.start < self.end
    }

    /// True if `o` lies inside `self`.
    pub fn contains_range(&self, o: &Range) -> bool {
        o.start >= self.start && o.end <= self.end
    }

    /// The largest `align`-aligned range inside this one (align: power of two).
    pub fn shrink_to(&self, align: u64) -> Range {
        let start = self
            .start
            .checked_add(align - 1)
            .map_or(u64::MAX, |v| v & !(align - 1));
        let end = self.end & !(align - 1);
        if end > start {
            Range { start, end }
        } else {
            Range::default()
        }
    }

    /// The smallest `align`-aligned range covering this one.
    pub fn grow_to(&self, align: u64) -> Range {
        let start = self.start & !(align - 1);
        let end = self
            .end
            .checked_add(align - 1)
            .map_or(!(align - 1), |v| v & !(align - 1));
        Range { start, end }
    }
}

impl fmt::Display for Range {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:#011x}-{:#011x}",
            self.start,
            self.end.saturating_sub(1)
        )
    }
}

/// A human-readable size ("960 MiB", "4 KiB", "1.5 GiB" is shown as MiB).
pub struct Size(pub u64);

impl fmt::Display for Size {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let b = self.0;
        if b >= 1 << 30 && b.is_multiple_of(1 << 30) {
            write!(f, "{} GiB", b >> 30)
        } else if b >= 1 << 20 && b.is_multiple_of(1 << 20) {
            write!(f, "{} MiB", b >> 20)
        } else if b >= 1 << 20 {
            let tenths = b * 10 / (1 << 20);
            write!(f, "{}.{} MiB", tenths / 10, tenths % 10)
        } else if b >= 1 << 10 && b.is_multiple_of(1 << 10) {
            write!(f, "{} KiB", b >> 10)
        } else {
            write!(f, "{b} B")
        }
    }
}

/// A sorted set of disjoint, non-adjacent ranges.
#[derive(Debug, Clone, Copy, Default)]
pub struct RangeSet<const N: usize> {
    ranges: FixedVec<Range, N>,
}

impl<const N: usize> RangeSet<N> {
    /// An empty set.
    pub fn new() -> Self {
        Self {
            ranges: FixedVec::new(),
        }
    }

    /// The ranges, sorted by address.
    pub fn ranges(&self) -> &[Range] {
        &self.ranges
    }

    /// Total bytes.
    pub fn total(&self) -> u64 {
        self.ranges.iter().map(Range::size).sum()
    }

    /// Adds `r`, merging with overlapping or adjacent ranges.
    pub fn add(&mut self, r: Range) -> Result<(), CapacityError> {
        if r.is_empty() {
            return Ok(());
        }
        let mut merged = r;
        let mut i = 0;
        while i < self.ranges.len() {
            let c = self.ranges[i];
            if c.start <= merged.end && merged.start <= c.end {
                merged.start = merged.start.min(c.start);
                merged.end = merged.end.max(c.end);
                self.ranges.remove(i);
            } else {
                i += 1;
            }
        }
        let pos = self
            .ranges
            .iter()
            .position(|c| c.start > merged.start)
            .unwrap_or(self.ranges.len());
        self.ranges.insert(pos, merged)
    }

    /// Removes `r` from the set (splitting a range may need one more slot).
    pub fn remove(&mut self, r: Range) -> Result<(), CapacityError> {
        if r.is_empty() {
            return Ok(());
        }
        let mut i = 0;
        while i < self.ranges.len() {
            let c = self.ranges[i];
            if !c.overlaps(&r) {
                i += 1;
                continue;
            }
            let left = Range {
                start: c.start,
                end: r.start.max(c.start),
            };
            let right = Range {
                start: r.end.min(c.end),
                end: c.end,
            };
            self.ranges.remove(i);
            if !right.is_empty() {
                self.ranges.insert(i, right)?;
            }
            if !left.is_empty() {
                self.ranges.insert(i, left)?;
                i += 1;
            }
            if !right.is_empty() {
                i += 1;
            }
        }
        Ok(())
    }

    /// Keeps only the `align`-aligned parts of every range.
    pub fn shrink_to(&mut self, align: u64) {
        let mut i = 0;
        while i < self.ranges.len() {
            let s = self.ranges[i].shrink_to(align);
            if s.is_empty() {
                self.ranges.remove(i);
            } else {
                self.ranges[i] = s;
                i += 1;
            }
        }
    }

    /// True if any range overlaps `r`.
    pub fn overlaps(&self, r: &Range) -> bool {
        self.ranges.iter().any(|c| c.overlaps(r))
    }

    /// Takes `size` bytes, `align`-aligned, from the first range that has
    /// them, removing them from the set.
    pub fn take(&mut self, size: u64, align: u64) -> Option<Range> {
        let found = self.ranges.iter().find_map(|c| {
            let start = c.start.checked_add(align - 1)? & !(align - 1);
            let r = Range::from_size(start, size)?;
            c.contains_range(&r).then_some(r)
        })?;
        self.remove(found).ok()?;
        Some(found)
    }

    /// Takes `size` bytes as few `align`-aligned pieces as possible
    /// (contiguous if any range can hold it, else largest pieces first),
    /// at most `max` pieces; on failure the set is unchanged.
    pub fn take_pieces(
        &mut self,
        size: u64,
        align: u64,
        max: usize,
    ) -> Option<FixedVec<Range, 16>> {
        let mut out = FixedVec::new();
        if let Some(r) = self.take(size, align) {
            out.push(r).ok()?;
            return Some(out);
        }
        let saved = *self;
        let mut left = size;
        while left > 0 {
            let best = self
                .ranges
                .iter()
                .map(|c| c.shrink_to(align))
                .filter(|c| !c.is_empty())
                .max_by_key(Range::size);
            let piece = match best {
                Some(b) if out.len() < max.min(16) => {
                    Range::from_size(b.start, b.size().min(left))?
                }
                _ => {
                    *self = saved;
                    return None;
                }
            };
            if self.remove(piece).is_err() || out.push(piece).is_err() {
                *self = saved;
                return None;
            }
            left -= piece.size();
        }
        Some(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(s: u64, e: u64) -> Range {
        Range { start: s, end: e }
    }

    #[test]
    fn add_merges_overlapping_and_adjacent() {
        let mut s: RangeSet<8> = RangeSet::new();
        s.add(r(10, 20)).unwrap();
        s.add(r(30, 40)).unwrap();
        s.add(r(20, 25)).unwrap();
        assert_eq!(s.ranges(), &[r(10, 25), r(30, 40)]);
        s.add(r(5, 35)).unwrap();
        assert_eq!(s.ranges(), &[r(5, 40)]);
        s.add(r(0, 0)).unwrap();
        assert_eq!(s.ranges().len(), 1);
    }

    #[test]
    fn take_pieces_contiguous_then_scattered() {
        let mut s: RangeSet<8> = RangeSet::new();
        s.add(r(0x10_0000, 0x80_0000)).unwrap(); // 6 MiB aligned from 2 MiB
        s.add(r(0x100_0000, 0x140_0000)).unwrap(); // 4 MiB
        let one = s.take_pieces(0x40_0000, 0x20_0000, 4).unwrap();
        assert_eq!(&one[..], &[r(0x20_0000, 0x60_0000)]);
        let mut t: RangeSet<8> = RangeSet::new();
        t.add(r(0, 0x40_0000)).unwrap();
        t.add(r(0x100_0000, 0x160_0000)).unwrap();
        let two = t.take_pieces(0x80_0000, 0x20_0000, 4).unwrap();
        assert_eq!(&two[..], &[r(0x100_0000, 0x160_0000), r(0, 0x20_0000)]);
        let before = t;
        assert!(
            t.take_pieces(0x40_0000, 0x20_0000, 4).is_none(),
            "only 2 MiB left"
        );
        assert_eq!(t.ranges(), before.ranges(), "unchanged on failure");
        let mut u: RangeSet<8> = RangeSet::new();
        u.add(r(0, 0x20_0000)).unwrap();
        u.add(r(0x40_0000, 0x60_0000)).unwrap();
        assert!(
            u.take_pieces(0x40_0000, 0x20_0000, 1).is_none(),
            "piece limit"
        );
        assert_eq!(u.take_pieces(0x40_0000, 0x20_0000, 2).unwrap().len(), 2);
    }

    #[test]
    fn remove_splits_and_trims() {
        let mut s: RangeSet<8> = RangeSet::new();
        s.add(r(0, 100)).unwrap();
        s.add(r(200, 300)).unwrap();
        s.remove(r(10, 20)).unwrap();
        assert_eq!(s.ranges(), &[r(0, 10), r(20, 100), r(200, 300)]);
        s.remove(r(90, 250)).unwrap();
        assert_eq!(s.ranges(), &[r(0, 10), r(20, 90), r(250, 300)]);
        s.remove(r(0, 1000)).unwrap();
        assert!(s.ranges().is_empty());
    }

    #[test]
    fn remove_reports_capacity() {
        let mut s: RangeSet<1> = RangeSet::new();
        s.add(r(0, 100)).unwrap();
        assert!(s.remove(r(10, 20)).is_err());
    }

    #[test]
    fn alignment() {
        assert_eq!(r(1, 8193).shrink_to(4096), r(4096, 8192));
        assert!(r(1, 4000).shrink_to(4096).is_empty());
        assert_eq!(r(1, 4097).grow_to(4096), r(0, 8192));
        assert_eq!(r(u64::MAX - 5, u64::MAX).shrink_to(4096), Range::default());
        let mut s: RangeSet<4> = RangeSet::new();
        s.add(r(0x1001, 0x3000)).unwrap();
        s.add(r(0x5000, 0x5800)).unwrap();
        s.shrink_to(0x1000);
        assert_eq!(s.ranges(), &[r(0x2000, 0x3000)]);
    }

    #[test]
    fn take_aligned() {
        let mut s: RangeSet<4> = RangeSet::new();
        s.add(r(0x1000, 0x3000)).unwrap();
        s.add(r(0x10_0000, 0x90_0000)).unwrap();
        let t = s.take(0x20_0000, 0x20_0000).unwrap();
        assert_eq!(t, r(0x20_0000, 0x40_0000));
        assert_eq!(
            s.ranges(),
            &[
                r(0x1000, 0x3000),
                r(0x10_0000, 0x20_0000),
                r(0x40_0000, 0x90_0000)
            ]
        );
        assert!(s.take(1 << 40, 0x1000).is_none());
    }

    #[test]
    fn overflow_is_refused() {
        assert!(Range::from_size(u64::MAX, 2).is_none());
        assert_eq!(Range::from_size(0x1000, 0x1000), Some(r(0x1000, 0x2000)));
    }

    #[test]
    fn sizes_print_readably() {
        assert_eq!(std::format!("{}", Size(960 << 20)), "960 MiB");
        assert_eq!(std::format!("{}", Size(4 << 30)), "4 GiB");
        assert_eq!(std::format!("{}", Size(4096)), "4 KiB");
        assert_eq!(std::format!("{}", Size(982_356 * 1024)), "959.3 MiB");
        assert_eq!(std::format!("{}", Size(100)), "100 B");
        assert_eq!(std::format!("{}", r(0, 0x1000)), "0x000000000-0x000000fff");
    }
}
