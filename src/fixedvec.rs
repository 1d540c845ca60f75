//! A fixed-capacity vector for what the boot path gathers before the heap
//! exists (memory ranges, CPUs, reservations).

use core::ops::{Deref, DerefMut};

/// The vector is full.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CapacityError;

/// Up to `N` items of `T`, stored inline.
#[derive(Clone, Copy)]
pub struct FixedVec<T: Copy + Default, const N: usize> {
    items: [T; N],
    len: usize,
}

impl<T: Copy + Default, const N: usize> Default for FixedVec<T, N> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T: Copy + Default, const N: usize> FixedVec<T, N> {
    /// An empty vector.
    pub fn new() -> Self {
        Self {
            items: [T::default(); N],
            len: 0,
        }
    }

    /// Appends `item`, or reports that the vector is full.
    pub fn push(&mut self, item: T) -> Result<(), CapacityError> {
        let slot = self.items.get_mut(self.len).ok_or(CapacityError)?;
        *slot = item;
        self.len += 1;
        Ok(())
    }

    /// Inserts `item` at `index` (clamped to the length), shifting the rest.
    pub fn insert(&mut self, index: usize, item: T) -> Result<(), CapacityError> {
        if self.len == N {
            return Err(CapacityError);
        }
        let index = index.min(self.len);
        self.items.copy_within(index..self.len, index + 1);
        self.items[index] = item;
        self.len += 1;
        Ok(())
    }

    /// Removes and returns the item at `index`; `None` when out of range.
    pub fn remove(&mut self, index: usize) -> Option<T> {
        if index >= self.len {
            return None;
        }
        let item = self.items[index];
        self.items.copy_within(index + 1..self.len, index);
        self.len -= 1;
        Some(item)
    }

    /// The capacity `N`.
    pub const fn capacity(&self) -> usize {
        N
    }
}

impl<T: Copy + Default, const N: usize> Deref for FixedVec<T, N> {
    type Target = [T];
    fn deref(&self) -> &[T] {
        &self.items[..self.len]
    }
}

impl<T: Copy + Default, const N: usize> DerefMut for FixedVec<T, N> {
    fn deref_mut(&mut self) -> &mut [T] {
        &mut self.items[..self.len]
    }
}

impl<T: Copy + Default + core::fmt::Debug, const N: usize> core::fmt::Debug for FixedVec<T, N> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn push_until_full() {
        let mut v: FixedVec<u32, 2> = FixedVec::new();
        assert!(v.push(1).is_ok());
        assert!(v.push(2).is_ok());
        assert_eq!(v.push(3), Err(CapacityError));
        assert_eq!(&v[..], &[1, 2]);
    }

    #[test]
    fn insert_and_remove_keep_order() {
        let mut v: FixedVec<u32, 4> = FixedVec::new();
        v.push(1).unwrap();
        v.push(3).unwrap();
        v.insert(1, 2).unwrap();
        v.insert(99, 4).unwrap();
        assert_eq!(&v[..], &[1, 2, 3, 4]);
        assert_eq!(v.insert(0, 0), Err(CapacityError));
        assert_eq!(v.remove(0), Some(1));
        assert_eq!(v.remove(7), None);
        assert_eq!(&v[..], &[2, 3, 4]);
    }
}
