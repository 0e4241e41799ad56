//! The event queue: events ordered by `(time, sequence number)`.
//!
//! Equal-time events pop in insertion order (FIFO). Scheduling before the time
//! of the last popped event is an error (`ScheduleError::InPast`) and leaves
//! the queue unchanged. There is no cancellation: timers carry a generation
//! token and stale ones are ignored by their owner.
//!
//! # Implementation: a FIFO-stable radix heap over a payload slab
//!
//! Because the past is refused, every key pushed is at least the time of the
//! last pop: keys are *monotone*, which is exactly what a radix heap
//! (Ahuja, Mehlhorn, Orlin, Tarjan 1990) needs. The queue keeps a reference
//! time `last` (always equal to `now()` after a pop) and 65 buckets: bucket 0
//! holds the events at exactly `last`, bucket `i ≥ 1` the events whose time
//! differs from `last` first in bit `i − 1` (`i = 64 − lzcnt(t ^ last)`).
//! Popping takes the front of bucket 0; when it is empty, the lowest non-empty
//! bucket `j` (found with a 64-bit occupancy mask) is redistributed: `last`
//! becomes that bucket's minimum (tracked on push, so no scan is needed) and
//! every entry moves to a strictly lower bucket. An entry therefore moves at
//! most 64 times in its life and, in practice, a handful of times: the
//! amortised cost is `O(log(Δt))` with tiny constants and linear memory
//! access, whatever the time distribution (nanosecond gaps, hour-long timers,
//! thousands of events at one instant, jumps near `u64::MAX`).
//!
//! FIFO among equal times without a sequence number in the key: two events
//! with the same time always sit in the same bucket (the index depends only
//! on the time and `last`), pushes append, and a redistribution empties the
//! lowest bucket in order into buckets that are all empty at that moment. So
//! within every bucket, entries of equal time appear in insertion order, and
//! bucket 0 (a ring buffer) pops from the front. The ordering structure only
//! holds `(time, slot)` pairs; payloads live in a slab with a free list.
//! The ring buffer, the slab and small buckets keep their capacity; a
//! bucket drained by a redistribution hands a buffer larger than
//! `KEEP_CAPACITY` entries to a pool, from which the next bucket to outgrow
//! its own takes the smallest one that fits. The pool is trimmed to three
//! times the pending events' worth, so the buckets hold a small multiple
//! of the pending events rather than the sum of each bucket's own peak,
//! and a large bucket that refills does not allocate its way up again
//! (about 1e-4 allocations per hold at 10,000 pending, not 1.3e-3).
//!
//! `peek_time` is `O(1)` (`&self`, no reorganisation): bucket 0's time is
//! `last`, and every other bucket records its minimum as entries arrive.
//!
//! Measured against the previous `BinaryHeap<(time, seq, slot)>` and a plain
//! `BinaryHeap<Reverse<(u64, u64)>>` with `examples/hold_model.rs`; figures in
//! `BENCHMARKS.md`.

use super::time::SimTime;
use std::collections::VecDeque;

/// Why an event could not be scheduled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ScheduleError {
    /// The requested time is earlier than the queue's current time.
    #[error("event scheduled at {at} ns, before the current time {now} ns")]
    InPast {
        /// The requested time, in nanoseconds.
        at: u64,
        /// The queue's current time (`now()`), in nanoseconds.
        now: u64,
    },
    /// 2^32 events are already pending (slab slots are `u32`).
    #[error("{pending} events pending: the queue holds at most 4,294,967,296")]
    Full {
        /// Events pending.
        pending: u64,
    },
}

/// Number of radix buckets: bucket 0 for `t == last`, buckets 1..=64 for the
/// highest differing bit of `t ^ last`.
const BUCKETS: usize = 65;

/// A drained bucket keeps its buffer up to this many entries (64 KB).
const KEEP_CAPACITY: usize = 4096;

/// Most buffers the pool of drained buckets' buffers holds.
const POOL_BUFFERS: usize = 32;

/// A compact ordering entry: the event time and its slab slot, 12 bytes
/// (packed to 4-byte alignment: with a 16-byte entry the buckets of a
/// million clients' pending timers held a quarter more; x86 and ARM load an
/// unaligned `u64` at full speed).
#[derive(Clone, Copy, Debug)]
#[repr(C, packed(4))]
struct Entry {
    time: u64,
    slot: u32,
}

/// Bucket index of time `t` relative to the reference `last` (`t >= last`).
#[inline(always)]
fn bucket_of(t: u64, last: u64) -> usize {
    (u64::BITS - (t ^ last).leading_zeros()) as usize
}

/// Priority queue of events of type `E`, ordered by `(time, insertion order)`.
pub struct EventQueue<E> {
    /// Events at exactly `last`, in insertion order.
    current: VecDeque<Entry>,
    /// Buckets 1..=64 (index 0 unused, kept empty so indices match).
    buckets: Vec<Vec<Entry>>,
    /// Minimum time in each bucket (`u64::MAX` when empty; index 0 unused).
    mins: [u64; BUCKETS],
    /// Bit `i - 1` set when `buckets[i]` is non-empty (`i >= 1`).
    occupied: u64,
    /// Radix reference time: every pending event is at or after it.
    last: u64,
    /// Payload slab; `None` marks a free slot.
    slots: Vec<Option<E>>,
    /// Free slab slots.
    free: Vec<u32>,
    /// Buffers of drained buckets larger than `KEEP_CAPACITY`, handed to a
    /// bucket that outgrows its own; their total capacity is kept within
    /// three times the pending events' number (see `trim_pool`).
    pool: Vec<Vec<Entry>>,
    /// Sum of the pooled buffers' capacities, in entries.
    pool_capacity: usize,
    len: usize,
    now: SimTime,
}

impl<E> Default for EventQueue<E> {
    fn default() -> Self {
        Self::new()
    }
}

impl<E> std::fmt::Debug for EventQueue<E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventQueue")
            .field("now", &self.now)
            .field("len", &self.len)
            .field("next", &self.peek_time())
            .finish_non_exhaustive()
    }
}

impl<E> EventQueue<E> {
    /// An empty queue at time zero.
    pub fn new() -> Self {
        Self::with_capacity(0)
    }

    /// An empty queue at time zero with room for `n` pending events in the
    /// payload slab and in the current-time bucket.
    pub fn with_capacity(n: usize) -> Self {
        EventQueue {
            current: VecDeque::with_capacity(n),
            buckets: (0..BUCKETS).map(|_| Vec::new()).collect(),
            mins: [u64::MAX; BUCKETS],
            occupied: 0,
            last: 0,
            slots: Vec::with_capacity(n),
            free: Vec::with_capacity(n),
            pool: Vec::new(),
            pool_capacity: 0,
            len: 0,
            now: SimTime::ZERO,
        }
    }

    /// Time of the last popped event (the simulation's current time).
    pub fn now(&self) -> SimTime {
        self.now
    }

    /// Number of pending events.
    pub fn len(&self) -> usize {
        self.len
    }

    /// `true` when no event is pending.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Schedule `ev` at `at`. Fails if `at` is earlier than `now()`, in which
    /// case the queue is unchanged.
    pub fn push(&mut self, at: SimTime, ev: E) -> Result<(), ScheduleError> {
        if at < self.now {
            return Err(ScheduleError::InPast {
                at: at.0,
                now: self.now.0,
            });
        }
        let slot = match self.free.pop() {
            Some(s) => {
                // The slot is on the free list, so it holds `None`.
                self.slots[s as usize] = Some(ev);
                s
            }
            None => {
                // slab slots are `u32`: at most 2^32 events pending
                let Ok(slot) = u32::try_from(self.slots.len()) else {
                    return Err(ScheduleError::Full {
                        pending: self.len as u64,
                    });
                };
                self.slots.push(Some(ev));
                slot
            }
        };
        // `at >= now == last` (see `pop`), so the radix invariant holds.
        let t = at.0;
        let b = bucket_of(t, self.last);
        let e = Entry { time: t, slot };
        if b == 0 {
            self.current.push_back(e);
        } else {
            let bucket = &mut self.buckets[b];
            if bucket.len() == bucket.capacity() {
                self.grow(b);
            }
            self.buckets[b].push(e);
            if t < self.mins[b] {
                self.mins[b] = t;
            }
            self.occupied |= 1u64 << (b - 1);
        }
        self.len += 1;
        Ok(())
    }

    /// Time of the earliest pending event.
    pub fn peek_time(&self) -> Option<SimTime> {
        if !self.current.is_empty() {
            return Some(SimTime(self.last));
        }
        if self.occupied == 0 {
            return None;
        }
        let b = self.occupied.trailing_zeros() as usize + 1;
        Some(SimTime(self.mins[b]))
    }

    /// Remove and return the earliest event, advancing `now()` to its time.
    pub fn pop(&mut self) -> Option<(SimTime, E)> {
        if self.current.is_empty() {
            if self.occupied == 0 {
                return None;
            }
            self.redistribute();
        }
        let e = self.current.pop_front()?;
        let slot = e.slot;
        let ev = self.slots.get_mut(slot as usize)?.take()?;
        self.free.push(slot);
        self.len -= 1;
        self.now = SimTime(e.time);
        Some((self.now, ev))
    }

    /// Move the lowest non-empty bucket into lower buckets, making its
    /// minimum the new reference time. Requires `current` empty and
    /// `occupied != 0`; afterwards `current` is non-empty.
    fn redistribute(&mut self) {
        let j = self.occupied.trailing_zeros() as usize + 1;
        let new_last = self.mins[j];
        self.last = new_last;
        self.occupied &= !(1u64 << (j - 1));
        self.mins[j] = u64::MAX;
        let mut src = std::mem::take(&mut self.buckets[j]);
        for &e in &src {
            let b = bucket_of(e.time, new_last);
            // Every entry of bucket j shares bits above j-1 with the old
            // reference and with `new_last`, so b < j; buckets below j are
            // empty, which keeps equal-time entries in insertion order.
            if b == 0 {
                self.current.push_back(e);
            } else {
                let bucket = &mut self.buckets[b];
                if bucket.len() == bucket.capacity() {
                    self.grow(b);
                }
                self.buckets[b].push(e);
                if e.time < self.mins[b] {
                    self.mins[b] = e.time;
                }
                self.occupied |= 1u64 << (b - 1);
            }
        }
        src.clear();
        // Put the emptied vector back so its capacity is reused, unless it
        // is large: each bucket would otherwise keep the largest size it
        // ever had, and with every bucket at its own peak the queue held
        // several times its pending events (6.5 MB for ~40,000 in the
        // mqttsn-10k benchmark). A large one goes to the pool, where the
        // next bucket to outgrow its buffer finds it (so a bucket refilling
        // does not allocate its way up again). The pool is trimmed (smallest
        // buffers first) to three times the pending events' worth: with
        // twice, large buckets still regrew (4e-4 allocations per hold at
        // 10,000 pending, against 1e-4 with three times).
        if src.capacity() <= KEEP_CAPACITY {
            self.buckets[j] = src;
        } else {
            self.pool_capacity += src.capacity();
            self.pool.push(src);
        }
        self.trim_pool();
    }

    /// Drop the smallest pooled buffers until at most `POOL_BUFFERS`
    /// remain, holding at most three times the pending events' worth.
    fn trim_pool(&mut self) {
        let budget = (3 * self.len).max(KEEP_CAPACITY);
        while self.pool_capacity > budget || self.pool.len() > POOL_BUFFERS {
            let Some(i) = self.smallest_pooled() else {
                break;
            };
            let dropped = self.pool.swap_remove(i);
            self.pool_capacity -= dropped.capacity();
        }
    }

    /// Index of the pooled buffer with the least capacity.
    fn smallest_pooled(&self) -> Option<usize> {
        (0..self.pool.len()).min_by_key(|&i| self.pool[i].capacity())
    }

    /// Bucket `b` is full: move its entries into the smallest pooled buffer
    /// that is larger, else let it grow as a `Vec` does. Its old buffer
    /// goes to the pool in turn.
    #[cold]
    #[inline(never)]
    fn grow(&mut self, b: usize) {
        let len = self.buckets[b].len();
        let fit = (0..self.pool.len())
            .filter(|&i| self.pool[i].capacity() > len)
            .min_by_key(|&i| self.pool[i].capacity());
        let Some(i) = fit else {
            self.buckets[b].reserve(len.max(4));
            return;
        };
        let mut next = self.pool.swap_remove(i);
        self.pool_capacity -= next.capacity();
        next.extend_from_slice(&self.buckets[b]);
        let mut old = std::mem::replace(&mut self.buckets[b], next);
        if old.capacity() > 0 {
            old.clear();
            self.pool_capacity += old.capacity();
            self.pool.push(old);
            self.trim_pool();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::BTreeMap;

    /// Sum of the buckets' capacities, in entries.
    fn bucket_capacity<E>(q: &EventQueue<E>) -> usize {
        q.buckets.iter().map(Vec::capacity).sum()
    }

    #[test]
    fn drained_large_buckets_give_their_buffers_back() {
        // 40,000 events spread over a second, with later ones pushed as the
        // earlier pop (a hold model): every level of the radix heap fills
        // far past KEEP_CAPACITY at some point
        let mut q = EventQueue::new();
        let mut rng = 0x2545_f491_4f6c_dd1du64;
        let mut next = || {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            rng % 1_000_000_000
        };
        for i in 0..40_000u64 {
            q.push(SimTime(next()), i).unwrap();
        }
        let mut last = SimTime::ZERO;
        for i in 0..200_000u64 {
            let (t, _) = q.pop().unwrap();
            assert!(t >= last);
            last = t;
            q.push(t + crate::sim::SimDuration::from_nanos(next()), i)
                .unwrap();
        }
        assert_eq!(q.len(), 40_000);
        // while pending: about the events, not every bucket's own peak
        assert!(bucket_capacity(&q) <= 2 * 40_000 + KEEP_CAPACITY * BUCKETS);
        while q.pop().is_some() {}
        // drained: no bucket keeps more than KEEP_CAPACITY entries of room
        for b in &q.buckets {
            assert!(b.capacity() <= KEEP_CAPACITY, "{}", b.capacity());
        }
    }

    #[test]
    fn equal_times_pop_in_insertion_order() {
        let mut q = EventQueue::new();
        for i in 0..100u32 {
            q.push(SimTime(7), i).unwrap();
        }
        q.push(SimTime(3), 1000).unwrap();
        assert_eq!(q.pop(), Some((SimTime(3), 1000)));
        // Pushes at `now` after a pop join the end of the same-time group.
        for i in 100..110u32 {
            q.push(SimTime(7), i).unwrap();
        }
        for i in 0..110u32 {
            assert_eq!(q.pop(), Some((SimTime(7), i)));
        }
        assert!(q.is_empty());
        assert_eq!(q.pop(), None);
    }

    #[test]
    fn push_at_now_after_pop_is_fifo_behind_pending_equals() {
        let mut q = EventQueue::new();
        q.push(SimTime(5), 'a').unwrap();
        q.push(SimTime(5), 'b').unwrap();
        assert_eq!(q.pop(), Some((SimTime(5), 'a')));
        q.push(SimTime(5), 'c').unwrap();
        assert_eq!(q.pop(), Some((SimTime(5), 'b')));
        assert_eq!(q.pop(), Some((SimTime(5), 'c')));
    }

    #[test]
    fn past_is_refused_and_queue_unchanged() {
        let mut q = EventQueue::new();
        q.push(SimTime(10), 1).unwrap();
        q.push(SimTime(20), 2).unwrap();
        assert_eq!(q.pop(), Some((SimTime(10), 1)));
        assert_eq!(
            q.push(SimTime(9), 3),
            Err(ScheduleError::InPast { at: 9, now: 10 })
        );
        assert_eq!(q.len(), 1);
        assert_eq!(q.now(), SimTime(10));
        assert_eq!(q.peek_time(), Some(SimTime(20)));
        assert_eq!(q.pop(), Some((SimTime(20), 2)));
        assert_eq!(q.pop(), None);
    }

    #[test]
    fn extreme_times() {
        let mut q = EventQueue::new();
        q.push(SimTime::MAX, 3).unwrap();
        q.push(SimTime(u64::MAX / 2), 2).unwrap();
        q.push(SimTime(0), 0).unwrap();
        q.push(SimTime(1), 1).unwrap();
        q.push(SimTime::MAX, 4).unwrap();
        let got: Vec<_> = std::iter::from_fn(|| q.pop()).collect();
        assert_eq!(
            got,
            vec![
                (SimTime(0), 0),
                (SimTime(1), 1),
                (SimTime(u64::MAX / 2), 2),
                (SimTime::MAX, 3),
                (SimTime::MAX, 4)
            ]
        );
        assert_eq!(q.now(), SimTime::MAX);
        assert!(q.push(SimTime(u64::MAX - 1), 5).is_err());
        assert!(q.push(SimTime::MAX, 6).is_ok());
    }

    #[test]
    fn peek_matches_pop() {
        let mut q = EventQueue::new();
        for t in [50u64, 3, 900, 3, 17, 1 << 40, 18] {
            q.push(SimTime(t), t).unwrap();
        }
        while let Some(t) = q.peek_time() {
            let (pt, _) = q.pop().unwrap();
            assert_eq!(t, pt);
        }
        assert!(q.is_empty());
    }

    #[test]
    fn slab_reuses_slots_after_warm_up() {
        let mut q = EventQueue::with_capacity(4);
        for round in 0..1000u64 {
            q.push(SimTime(round * 3), round).unwrap();
            q.push(SimTime(round * 3 + 1), round).unwrap();
            q.pop().unwrap();
            q.pop().unwrap();
        }
        assert!(q.slots.len() <= 2, "slab grew to {}", q.slots.len());
    }

    #[derive(Debug, Clone)]
    enum Op {
        /// Push at `now + delta`.
        Push(u64),
        /// Push this absolute time (may be in the past: must then fail).
        PushAbs(u64),
        /// Push `n` events at `now + delta`.
        Burst(u64, u8),
        Pop,
        /// Pop until empty.
        Drain,
    }

    fn delta() -> impl Strategy<Value = u64> {
        prop_oneof![
            4 => Just(0u64),
            4 => 0u64..4,
            4 => 0u64..1_000,
            2 => 0u64..1_000_000_000,
            1 => (u64::MAX / 2 - 1000)..(u64::MAX / 2 + 1000),
            1 => any::<u64>(),
        ]
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            6 => delta().prop_map(Op::Push),
            1 => any::<u64>().prop_map(Op::PushAbs),
            1 => (0u64..10, 1u8..40).prop_map(|(d, n)| Op::Burst(d, n)),
            6 => Just(Op::Pop),
            1 => Just(Op::Drain),
        ]
    }

    /// Push into both the queue and the reference model; both must agree
    /// on acceptance.
    fn push_both(
        q: &mut EventQueue<u64>,
        model: &mut BTreeMap<(u64, u64), u64>,
        seq: &mut u64,
        t: u64,
    ) -> Result<(), TestCaseError> {
        let id = *seq;
        let r = q.push(SimTime(t), id);
        if t < q.now().0 {
            prop_assert_eq!(
                r,
                Err(ScheduleError::InPast {
                    at: t,
                    now: q.now().0
                })
            );
        } else {
            prop_assert_eq!(r, Ok(()));
            model.insert((t, id), id);
            *seq += 1;
        }
        Ok(())
    }

    fn pop_both(
        q: &mut EventQueue<u64>,
        model: &mut BTreeMap<(u64, u64), u64>,
    ) -> Result<(), TestCaseError> {
        let expected_peek = model.keys().next().map(|&(t, _)| SimTime(t));
        prop_assert_eq!(q.peek_time(), expected_peek);
        let expected = model.pop_first().map(|((t, _), v)| (SimTime(t), v));
        prop_assert_eq!(q.pop(), expected);
        prop_assert_eq!(q.len(), model.len());
        Ok(())
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]
        #[test]
        fn matches_btreemap_reference(ops in proptest::collection::vec(op(), 1..400)) {
            let mut q = EventQueue::new();
            let mut model = BTreeMap::new();
            let mut seq = 0u64;
            for op in ops {
                let now = q.now().0;
                match op {
                    Op::Push(d) => push_both(&mut q, &mut model, &mut seq, now.saturating_add(d))?,
                    Op::PushAbs(t) => push_both(&mut q, &mut model, &mut seq, t)?,
                    Op::Burst(d, n) => {
                        for _ in 0..n {
                            push_both(&mut q, &mut model, &mut seq, now.saturating_add(d))?;
                        }
                    }
                    Op::Pop => pop_both(&mut q, &mut model)?,
                    Op::Drain => {
                        while !model.is_empty() {
                            pop_both(&mut q, &mut model)?;
                        }
                        pop_both(&mut q, &mut model)?;
                    }
                }
                prop_assert_eq!(q.len(), model.len());
                prop_assert_eq!(q.is_empty(), model.is_empty());
            }
            while !model.is_empty() {
                pop_both(&mut q, &mut model)?;
            }
            prop_assert_eq!(q.pop(), None);
        }
    }
}
