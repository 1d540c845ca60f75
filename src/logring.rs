//! A ring of the newest bytes of console output: the hypervisor's log
//! once a VM owns the PL011, and the lines the monitor's `log` shows.

/// The last `N` bytes of console output (the hypervisor's log once it
/// has no UART of its own), oldest first.
pub struct LogRing<const N: usize> {
    buf: [u8; N],
    /// Next write position.
    head: usize,
    /// Bytes held (at most N).
    len: usize,
}

impl<const N: usize> LogRing<N> {
    /// An empty ring.
    pub const fn new() -> Self {
        Self {
            buf: [0; N],
            head: 0,
            len: 0,
        }
    }

    /// Appends bytes, dropping the oldest when full.
    pub fn push(&mut self, bytes: &[u8]) {
        for &b in bytes {
            if N == 0 {
                return;
            }
            self.buf[self.head] = b;
            self.head = (self.head + 1) % N;
            self.len = (self.len + 1).min(N);
        }
    }

    /// The held bytes, oldest first, as two slices.
    pub fn contents(&self) -> (&[u8], &[u8]) {
        let start = (self.head + N - self.len) % N.max(1);
        if start + self.len <= N {
            (&self.buf[start..start + self.len], &[])
        } else {
            (&self.buf[start..], &self.buf[..self.head])
        }
    }

    /// The last `n` whole lines held (a line cut by the ring's start is
    /// not whole), oldest first, appended to `out`.
    pub fn last_lines(&self, n: usize, out: &mut alloc::vec::Vec<u8>) {
        let (a, b) = self.contents();
        let at = |i: usize| if i < a.len() { a[i] } else { b[i - a.len()] };
        let len = a.len() + b.len();
        // Back from the end: past the final newline, then n more.
        let mut end = len;
        while end > 0 && at(end - 1) != b'\n' {
            end -= 1;
        }
        let mut start = end;
        let mut seen = 0;
        while start > 0 {
            if at(start - 1) == b'\n' {
                seen += 1;
                if seen > n {
                    break;
                }
            }
            start -= 1;
        }
        if start == 0 && self.len == N && seen <= n {
            // The oldest line may be cut: skip to its end.
            while start < end && at(start) != b'\n' {
                start += 1;
            }
            start = (start + 1).min(end);
        }
        out.extend((start..end).map(at));
    }
}

impl<const N: usize> Default for LogRing<N> {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::vec::Vec;

    #[test]
    fn the_last_lines_are_whole_lines() {
        let mut r = LogRing::<32>::new();
        let mut out = Vec::new();
        r.last_lines(3, &mut out);
        assert!(out.is_empty());
        r.push(b"0123456789\none\ntwo\nthree\nfour\npartial");
        // The ring holds the newest 32 bytes: the first line cut.
        out.clear();
        r.last_lines(2, &mut out);
        assert_eq!(out, b"three\nfour\n");
        out.clear();
        r.last_lines(10, &mut out);
        assert_eq!(out, b"one\ntwo\nthree\nfour\n");
        let mut r = LogRing::<64>::new();
        r.push(b"a\nb\n");
        out.clear();
        r.last_lines(10, &mut out);
        assert_eq!(out, b"a\nb\n", "nothing cut while the ring is not full");
    }
}
