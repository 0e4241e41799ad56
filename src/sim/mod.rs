//! Simulation engine: time, the event queue, the run loop and random streams.

pub mod alloc;
pub mod deadlines;
pub mod delay;
pub mod fixed_hash;
pub mod queue;
pub mod rng;
pub mod shed;
pub mod time;
pub mod wakeup;

pub use deadlines::DeadlineSet;
pub use delay::Delay;
pub use fixed_hash::{FixedMap, FixedSet};
pub use queue::{EventQueue, ScheduleError};
pub use rng::SimRng;
pub use time::{Opt64, SimDuration, SimTime, TimerSlots};
pub use wakeup::Wakeup;

/// A model driven by the run loop: it handles one event at a time and may
/// schedule more. The simulator's `World` and the hold-model benchmark both
/// implement it, so they run through the same loop and queue.
pub trait Model {
    type Event;
    fn handle(&mut self, now: SimTime, ev: Self::Event, queue: &mut EventQueue<Self::Event>);
}

/// Counters the run loop keeps.
#[derive(Debug, Default, Clone, Copy)]
pub struct LoopStats {
    pub events: u64,
}

/// [`run_until`] that stops before the event after `max_events`; `false`
/// when it stopped there (events were left before `end`).
pub fn run_until_at_most<M: Model>(
    model: &mut M,
    queue: &mut EventQueue<M::Event>,
    end: SimTime,
    max_events: u64,
) -> (LoopStats, bool) {
    let mut stats = LoopStats::default();
    while let Some(t) = queue.peek_time() {
        if t > end {
            break;
        }
        if stats.events >= max_events {
            return (stats, false);
        }
        let Some((now, ev)) = queue.pop() else { break };
        model.handle(now, ev, queue);
        stats.events += 1;
    }
    (stats, true)
}

/// Pop and handle events in order until the queue is empty or the next event
/// lies after `end`. Events at exactly `end` are handled. Returns how many
/// events ran.
pub fn run_until<M: Model>(
    model: &mut M,
    queue: &mut EventQueue<M::Event>,
    end: SimTime,
) -> LoopStats {
    let mut stats = LoopStats::default();
    while let Some(t) = queue.peek_time() {
        if t > end {
            break;
        }
        let Some((now, ev)) = queue.pop() else { break };
        model.handle(now, ev, queue);
        stats.events += 1;
    }
    stats
}
