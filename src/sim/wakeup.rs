//! The wake-up bookkeeping every driven endpoint needs (DESIGN.md convention
//! 7: cancellation by generation tokens, never by searching the queue).
//!
//! An endpoint's `poll_timeout` moves freely; queuing an event for every
//! move would flood the queue. A [`Wakeup`] remembers the earliest event
//! already queued: a new deadline is queued only when it is earlier, an
//! event that fires for a deadline that moved later is ignored (the caller
//! re-polls and re-arms), and bumping the generation (a restart, a reused
//! slot) makes every queued event stale.

use super::SimTime;

/// Earliest queued wake-up and the generation that names valid events.
/// Sixteen bytes: one sits in every socket and client of a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Wakeup {
    /// The deadline of the queued event, ns; `SimTime::MAX` when none is
    /// queued (a deadline at the end of time never fires anyway).
    armed: SimTime,
    gen: u32,
}

impl Default for Wakeup {
    fn default() -> Self {
        Wakeup::with_gen(0)
    }
}

impl Wakeup {
    /// A deadline is wanted at `d`: `Some(generation)` when an event must be
    /// queued for it (none queued yet, or only later ones).
    pub fn arm(&mut self, d: SimTime) -> Option<u32> {
        if d < self.armed {
            self.armed = d;
            Some(self.gen)
        } else {
            None
        }
    }

    /// An event of generation `gen` fired at `now`: true when it is the one
    /// armed (the wake-up is then consumed), false for a stale event.
    pub fn fire(&mut self, gen: u32, now: SimTime) -> bool {
        if gen != self.gen || self.armed != now || now == SimTime::MAX {
            return false;
        }
        self.armed = SimTime::MAX;
        true
    }

    /// Forget every queued event (restart, slot reuse).
    pub fn reset(&mut self) {
        self.armed = SimTime::MAX;
        self.gen = self.gen.wrapping_add(1);
    }

    /// The generation queued events must carry.
    pub fn gen(&self) -> u32 {
        self.gen
    }

    /// A wake-up whose events carry generation `gen`.
    pub fn with_gen(gen: u32) -> Self {
        Wakeup {
            armed: SimTime::MAX,
            gen,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn earlier_deadlines_queue_later_ones_wait_stale_events_are_ignored() {
        let t = SimTime::from_nanos;
        let mut w = Wakeup::default();
        assert_eq!(w.arm(t(100)), Some(0));
        assert_eq!(
            w.arm(t(200)),
            None,
            "a later deadline rides on the queued one"
        );
        assert_eq!(w.arm(t(50)), Some(0), "an earlier one is queued");
        assert!(!w.fire(0, t(100)), "the superseded event is stale");
        assert!(w.fire(0, t(50)));
        assert!(!w.fire(0, t(50)), "consumed");
        assert_eq!(w.arm(t(300)), Some(0));
        w.reset();
        assert!(!w.fire(0, t(300)), "old generation");
        assert_eq!(w.arm(t(300)), Some(1));
        assert_eq!(std::mem::size_of::<Wakeup>(), 16);
    }
}
