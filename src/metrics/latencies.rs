//! A flow's delivery latencies, kept exactly in about half the memory of a
//! `Vec<u64>`: a latency below 2^32 ns (4.29 s) takes 4 bytes, a longer
//! one 8. A run's latencies are its largest vector (540,000 in the
//! mqttsn-10k benchmark: 4.3 MB as `u64`, 2.2 MB here; BENCHMARKS.md).
//!
//! Every short value is smaller than every long one, so once both parts are
//! sorted ([`Latencies::sort`]) the short values followed by the long ones
//! are the whole sorted sequence: ranks, the largest value and sums read it
//! without building a `Vec<u64>`.

/// Values at or above this many ns are kept in 8 bytes.
const LONG: u64 = 1 << 32;

/// Latencies in ns (see the module documentation).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Latencies {
    short: Vec<u32>,
    long: Vec<u64>,
}

impl Latencies {
    /// Add one latency (ns).
    pub fn push(&mut self, ns: u64) {
        if ns < LONG {
            let s = &mut self.short;
            if s.len() == s.capacity() {
                // grow by a quarter, not double: a large run's latencies
                // are its largest vector
                s.reserve_exact((s.len() / 4).max(1024));
            }
            s.push(ns as u32);
        } else {
            self.long.push(ns);
        }
    }

    pub fn len(&self) -> usize {
        self.short.len() + self.long.len()
    }

    pub fn is_empty(&self) -> bool {
        self.short.is_empty() && self.long.is_empty()
    }

    /// Sort in place: afterwards [`Latencies::iter`] is ascending.
    pub fn sort(&mut self) {
        self.short.sort_unstable();
        self.long.sort_unstable();
    }

    /// Whether [`Latencies::iter`] is ascending.
    pub fn is_sorted(&self) -> bool {
        self.short.is_sorted() && self.long.is_sorted()
    }

    /// Value number `i` (0-based) of [`Latencies::iter`].
    pub fn get(&self, i: usize) -> Option<u64> {
        match self.short.get(i) {
            Some(&v) => Some(u64::from(v)),
            None => self.long.get(i - self.short.len()).copied(),
        }
    }

    /// The values: the short ones, then the long ones (ascending once
    /// sorted).
    pub fn iter(&self) -> impl Iterator<Item = u64> + '_ {
        self.short
            .iter()
            .map(|&v| u64::from(v))
            .chain(self.long.iter().copied())
    }

    /// The largest value (the last one once sorted).
    pub fn max(&self) -> Option<u64> {
        match self.long.iter().max() {
            Some(&v) => Some(v),
            None => self.short.iter().max().map(|&v| u64::from(v)),
        }
    }

    /// Nearest-rank percentile `q` of the sorted values (`None` when empty
    /// or `q` is outside (0, 100]; see `stats::percentile_nearest_rank`).
    /// Sorts a copy when they are not sorted.
    pub fn percentile(&self, q: f64) -> Option<u64> {
        let rank = crate::metrics::stats::nearest_rank(self.len(), q)?;
        if self.is_sorted() {
            self.get(rank - 1)
        } else {
            let mut c = self.clone();
            c.sort();
            c.get(rank - 1)
        }
    }

    /// The values as a `Vec<u64>` (in [`Latencies::iter`] order).
    pub fn to_vec(&self) -> Vec<u64> {
        self.iter().collect()
    }
}

impl FromIterator<u64> for Latencies {
    fn from_iter<I: IntoIterator<Item = u64>>(iter: I) -> Self {
        let mut l = Latencies::default();
        for v in iter {
            l.push(v);
        }
        l
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_either_side_of_4_29_s_sort_and_rank_as_u64() {
        let raw = [
            10_000_000_000u64,
            19_000_000,
            u64::from(u32::MAX),
            LONG,
            3,
            u64::MAX,
            19_000_000,
            4_294_967_297,
        ];
        let mut l: Latencies = raw.iter().copied().collect();
        assert_eq!(l.len(), raw.len());
        assert_eq!(l.short.len(), 4, "below 2^32 ns in 4 bytes");
        let mut want = raw.to_vec();
        want.sort_unstable();
        l.sort();
        assert!(l.is_sorted());
        assert_eq!(l.to_vec(), want);
        assert_eq!(l.max(), Some(u64::MAX));
        for q in [0.5, 12.5, 25.0, 50.0, 62.5, 87.5, 99.0, 100.0] {
            assert_eq!(
                l.percentile(q),
                crate::metrics::stats::percentile_nearest_rank(&want, q),
                "q = {q}"
            );
        }
        assert_eq!(l.percentile(0.0), None);
        assert_eq!(Latencies::default().percentile(50.0), None);
        assert_eq!(Latencies::default().max(), None);
    }

    #[test]
    fn unsorted_percentile_sorts_a_copy() {
        let l: Latencies = [5u64, 1, LONG + 7, 3].into_iter().collect();
        assert!(!l.is_sorted());
        assert_eq!(l.percentile(50.0), Some(3));
        assert_eq!(l.percentile(100.0), Some(LONG + 7));
        assert_eq!(l.max(), Some(LONG + 7));
    }

    #[test]
    fn short_part_grows_by_a_quarter() {
        let mut l = Latencies::default();
        for i in 0..100_000u64 {
            l.push(i);
        }
        assert!(l.short.capacity() <= 100_000 + 100_000 / 4 + 1024);
        assert!(l.long.is_empty());
    }
}
