//! Integration tests of the event queue and the run loop through the public
//! API only (`qossim::sim`).

use proptest::prelude::*;
use qossim::sim::{run_until, EventQueue, Model, ScheduleError, SimDuration, SimTime};
use std::collections::BTreeMap;

/// Records every event it handles; an event `(tag, Some(d))` schedules
/// `(tag + 1000, None)` at `now + d`.
#[derive(Default)]
struct Recorder {
    seen: Vec<(SimTime, u32)>,
}

impl Model for Recorder {
    type Event = (u32, Option<u64>);
    fn handle(&mut self, now: SimTime, ev: Self::Event, queue: &mut EventQueue<Self::Event>) {
        self.seen.push((now, ev.0));
        if let Some(d) = ev.1 {
            queue
                .push(now + SimDuration::from_nanos(d), (ev.0 + 1000, None))
                .expect("now + d is never in the past");
        }
    }
}

#[test]
fn equal_time_events_keep_insertion_order() {
    let mut q = EventQueue::new();
    let times = [5u64, 1, 5, 5, 1, 9, 5, 1];
    for (i, &t) in times.iter().enumerate() {
        q.push(SimTime(t), i).unwrap();
    }
    let got: Vec<(SimTime, usize)> = std::iter::from_fn(|| q.pop()).collect();
    let want = vec![
        (SimTime(1), 1),
        (SimTime(1), 4),
        (SimTime(1), 7),
        (SimTime(5), 0),
        (SimTime(5), 2),
        (SimTime(5), 3),
        (SimTime(5), 6),
        (SimTime(9), 5),
    ];
    assert_eq!(got, want);
}

#[test]
fn scheduling_in_the_past_is_an_error_and_changes_nothing() {
    let mut q = EventQueue::new();
    q.push(SimTime(100), "a").unwrap();
    q.push(SimTime(100), "b").unwrap();
    q.push(SimTime(300), "c").unwrap();
    assert_eq!(q.pop(), Some((SimTime(100), "a")));
    let before = (q.len(), q.now(), q.peek_time());
    assert_eq!(
        q.push(SimTime(99), "late"),
        Err(ScheduleError::InPast { at: 99, now: 100 })
    );
    assert_eq!(
        q.push(SimTime::ZERO, "late"),
        Err(ScheduleError::InPast { at: 0, now: 100 })
    );
    assert_eq!((q.len(), q.now(), q.peek_time()), before);
    // Exactly now is allowed and goes behind the pending equal-time event.
    q.push(SimTime(100), "d").unwrap();
    let rest: Vec<_> = std::iter::from_fn(|| q.pop()).collect();
    assert_eq!(
        rest,
        vec![
            (SimTime(100), "b"),
            (SimTime(100), "d"),
            (SimTime(300), "c")
        ]
    );
}

#[test]
fn run_until_handles_events_at_end_and_stops_after() {
    let mut q = EventQueue::new();
    q.push(SimTime(10), (1, None)).unwrap();
    // Handled at 20 and schedules tag 1002 at exactly `end` = 25.
    q.push(SimTime(20), (2, Some(5))).unwrap();
    q.push(SimTime(25), (3, Some(0))).unwrap();
    q.push(SimTime(26), (4, None)).unwrap();
    q.push(SimTime(1_000), (5, None)).unwrap();
    let mut m = Recorder::default();
    let stats = run_until(&mut m, &mut q, SimTime(25));
    // Tag 3 at 25 schedules 1003 at 25 + 0 = 25: also at `end`, also handled,
    // after 1002 (inserted earlier).
    assert_eq!(
        m.seen,
        vec![
            (SimTime(10), 1),
            (SimTime(20), 2),
            (SimTime(25), 3),
            (SimTime(25), 1002),
            (SimTime(25), 1003),
        ]
    );
    assert_eq!(stats.events, 5);
    assert_eq!(q.now(), SimTime(25));
    assert_eq!(q.len(), 2);
    assert_eq!(q.peek_time(), Some(SimTime(26)));

    // Resuming continues where it stopped; an empty queue ends the loop.
    let stats = run_until(&mut m, &mut q, SimTime::MAX);
    assert_eq!(stats.events, 2);
    assert_eq!(&m.seen[5..], &[(SimTime(26), 4), (SimTime(1_000), 5)]);
    assert!(q.is_empty());
    assert_eq!(run_until(&mut m, &mut q, SimTime::MAX).events, 0);
}

#[test]
fn run_until_before_first_event_runs_nothing() {
    let mut q = EventQueue::new();
    q.push(SimTime(50), (1, None)).unwrap();
    let mut m = Recorder::default();
    assert_eq!(run_until(&mut m, &mut q, SimTime(49)).events, 0);
    assert_eq!(q.now(), SimTime::ZERO);
    assert_eq!(q.len(), 1);
}

/// Mixed scales: nanosecond gaps, hour-long timers, bursts at one instant.
#[test]
fn mixed_time_scales_pop_in_order() {
    let hour = 3_600_000_000_000u64;
    let mut q = EventQueue::new();
    let mut model: BTreeMap<(u64, u64), u64> = BTreeMap::new();
    let mut seq = 0u64;
    let mut x = 0x2545_f491_4f6c_dd1du64;
    for round in 0..20_000u64 {
        // xorshift64: deterministic, no dependency on the crate's RNG.
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let now = q.now().0;
        let d = match x % 5 {
            0 => 0,
            1 => x % 7,
            2 => x % 5_000,
            3 => hour + x % 1_000,
            _ => (x >> 20) % (24 * hour),
        };
        let n = if round % 97 == 0 { 50 } else { 1 };
        for _ in 0..n {
            q.push(SimTime(now + d), seq).unwrap();
            model.insert((now + d, seq), seq);
            seq += 1;
        }
        if !x.is_multiple_of(3) {
            let want = model.pop_first().map(|((t, _), v)| (SimTime(t), v));
            assert_eq!(q.pop(), want);
        }
    }
    while let Some(((t, _), v)) = model.pop_first() {
        assert_eq!(q.pop(), Some((SimTime(t), v)));
    }
    assert!(q.is_empty());
}

#[derive(Debug, Clone)]
enum Op {
    Push(u64),
    Burst(u64, u8),
    Pop,
    DrainAll,
}

fn delta() -> impl Strategy<Value = u64> {
    prop_oneof![
        3 => Just(0u64),
        3 => 0u64..8,
        3 => 0u64..100_000,
        1 => (u64::MAX / 2 - 4)..(u64::MAX / 2 + 4),
        1 => any::<u64>(),
    ]
}

fn ops() -> impl Strategy<Value = Vec<Op>> {
    proptest::collection::vec(
        prop_oneof![
            5 => delta().prop_map(Op::Push),
            1 => (0u64..3, 1u8..64).prop_map(|(d, n)| Op::Burst(d, n)),
            5 => Just(Op::Pop),
            1 => Just(Op::DrainAll),
        ],
        1..500,
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Random interleavings of push and pop give the same pop sequence as a
    /// `BTreeMap<(time, seq), E>` reference; past pushes are refused by both.
    #[test]
    fn queue_matches_reference_model(ops in ops(), past in proptest::collection::vec(any::<u64>(), 8)) {
        let mut q: EventQueue<u64> = EventQueue::with_capacity(16);
        let mut model: BTreeMap<(u64, u64), u64> = BTreeMap::new();
        let mut seq = 0u64;
        let mut popped = Vec::new();
        let mut expected = Vec::new();
        for (i, op) in ops.into_iter().enumerate() {
            let now = q.now().0;
            let mut push = |q: &mut EventQueue<u64>, t: u64| -> Result<(), TestCaseError> {
                prop_assert!(q.push(SimTime(t), seq).is_ok());
                model.insert((t, seq), seq);
                seq += 1;
                Ok(())
            };
            match op {
                Op::Push(d) => push(&mut q, now.saturating_add(d))?,
                Op::Burst(d, n) => {
                    for _ in 0..n {
                        push(&mut q, now.saturating_add(d))?;
                    }
                }
                Op::Pop => {
                    prop_assert_eq!(q.peek_time(), model.keys().next().map(|k| SimTime(k.0)));
                    if let Some(p) = q.pop() { popped.push(p); }
                    if let Some(((t, _), v)) = model.pop_first() { expected.push((SimTime(t), v)); }
                }
                Op::DrainAll => {
                    while let Some(p) = q.pop() { popped.push(p); }
                    while let Some(((t, _), v)) = model.pop_first() { expected.push((SimTime(t), v)); }
                }
            }
            // Occasionally try the past: refused, queue unchanged.
            let t = past[i % past.len()];
            if t < q.now().0 {
                let len = q.len();
                let peek = q.peek_time();
                prop_assert_eq!(q.push(SimTime(t), u64::MAX), Err(ScheduleError::InPast { at: t, now: q.now().0 }));
                prop_assert_eq!(q.len(), len);
                prop_assert_eq!(q.peek_time(), peek);
            }
            prop_assert_eq!(q.len(), model.len());
        }
        while let Some(p) = q.pop() { popped.push(p); }
        while let Some(((t, _), v)) = model.pop_first() { expected.push((SimTime(t), v)); }
        prop_assert_eq!(popped, expected);
    }
}
