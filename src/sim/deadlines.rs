//! [`DeadlineSet`]: an ordered set of timer records (e.g. `(SimTime, key)`)
//! that, unlike a `BTreeSet`, stops allocating once it has reached its peak
//! size.
//!
//! Protocol timers are armed and cancelled in a sliding window (a request's
//! timeout armed when it is sent, cancelled when its answer comes). A
//! B-tree holding such a window frees and allocates nodes as it slides: one
//! allocation every few insertions for ever. Here a binary heap holds the
//! records and a fixed-hash set says which are live; a cancelled record
//! stays in the heap until it reaches the top (lazy deletion), where it is
//! dropped at once, so the top is always live and `first` is exact. Both
//! containers keep their storage, so a window that has reached its peak
//! costs no allocation.
//!
//! Order is that of `T` (for a tuple: time, then the rest), exactly as a
//! `BTreeSet<T>` would give: the sequence of `pop_first` results depends
//! only on the values inserted and removed, never on the hash set's order
//! (which is never iterated) or the heap's layout.

use super::fixed_hash::FixedSet;
use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::hash::Hash;

/// An ordered set of `Copy` records with `insert`, `remove`, `first` and
/// `pop_first` as `BTreeSet` has them; allocation-free in steady state.
#[derive(Debug, Clone)]
pub struct DeadlineSet<T: Ord + Hash + Copy> {
    /// Every live record, and cancelled ones not yet at the top.
    heap: BinaryHeap<Reverse<T>>,
    /// The live records.
    live: FixedSet<T>,
}

impl<T: Ord + Hash + Copy> Default for DeadlineSet<T> {
    fn default() -> Self {
        DeadlineSet {
            heap: BinaryHeap::new(),
            live: FixedSet::default(),
        }
    }
}

impl<T: Ord + Hash + Copy> DeadlineSet<T> {
    /// An empty set (allocates nothing until used).
    pub fn new() -> Self {
        Self::default()
    }

    /// Number of live records.
    pub fn len(&self) -> usize {
        self.live.len()
    }

    /// `true` when no record is live.
    pub fn is_empty(&self) -> bool {
        self.live.is_empty()
    }

    /// Add `v`; `false` (and no change) if it is already in the set.
    pub fn insert(&mut self, v: T) -> bool {
        if !self.live.insert(v) {
            return false;
        }
        self.heap.push(Reverse(v));
        true
    }

    /// Remove `v`; whether it was in the set.
    pub fn remove(&mut self, v: &T) -> bool {
        if !self.live.remove(v) {
            return false;
        }
        self.settle();
        true
    }

    /// `true` when `v` is in the set.
    pub fn contains(&self, v: &T) -> bool {
        self.live.contains(v)
    }

    /// The smallest record.
    pub fn first(&self) -> Option<&T> {
        // `settle` keeps the top live (or the heap empty)
        self.heap.peek().map(|r| &r.0)
    }

    /// Remove and return the smallest record.
    pub fn pop_first(&mut self) -> Option<T> {
        let Reverse(v) = self.heap.pop()?;
        self.live.remove(&v);
        self.settle();
        Some(v)
    }

    /// Drop cancelled records from the top, and compact the heap when
    /// cancelled records outnumber live ones (so memory follows the live
    /// set, not the history of cancellations).
    fn settle(&mut self) {
        while let Some(Reverse(top)) = self.heap.peek() {
            if self.live.contains(top) {
                break;
            }
            self.heap.pop();
        }
        if self.heap.len() > 2 * self.live.len() + 64 {
            // in place, no allocation; a live value held twice (removed
            // and inserted again while its old copy waited) stays twice,
            // harmlessly: the second copy is dropped once the first pops
            let live = &self.live;
            self.heap.retain(|r| live.contains(&r.0));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::BTreeSet;

    #[derive(Debug, Clone)]
    enum Op {
        Insert(u8, u8),
        Remove(u8, u8),
        Pop,
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            4 => (0u8..20, 0u8..6).prop_map(|(t, k)| Op::Insert(t, k)),
            3 => (0u8..20, 0u8..6).prop_map(|(t, k)| Op::Remove(t, k)),
            2 => Just(Op::Pop),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]
        #[test]
        fn behaves_as_a_btreeset(ops in proptest::collection::vec(op(), 1..600)) {
            let mut d = DeadlineSet::new();
            let mut b = BTreeSet::new();
            for op in ops {
                match op {
                    Op::Insert(t, k) => prop_assert_eq!(d.insert((t, k)), b.insert((t, k))),
                    Op::Remove(t, k) => prop_assert_eq!(d.remove(&(t, k)), b.remove(&(t, k))),
                    Op::Pop => prop_assert_eq!(d.pop_first(), b.pop_first()),
                }
                prop_assert_eq!(d.first(), b.first());
                prop_assert_eq!(d.len(), b.len());
                prop_assert!(d.heap.len() <= 2 * d.live.len() + 64);
            }
        }
    }

    #[test]
    fn a_sliding_window_keeps_its_storage() {
        // timers armed 100 apart and cancelled 10 later, nine in ten: the
        // heap and the set reach a size and stay there
        let mut d = DeadlineSet::new();
        let mut caps = (0, 0);
        for i in 0..100_000u64 {
            d.insert((i + 100, i));
            if i >= 10 && i % 10 != 0 {
                assert!(d.remove(&(i + 90, i - 10)));
            }
            while d.first().is_some_and(|&(t, _)| t <= i) {
                d.pop_first();
            }
            if i == 10_000 {
                caps = (d.heap.capacity(), d.live.capacity());
            }
        }
        assert_eq!((d.heap.capacity(), d.live.capacity()), caps);
        assert!(d.len() < 30, "{}", d.len());
    }
}
