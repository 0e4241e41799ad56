//! The event queue: events ordered by `(time, sequence number)`.
//!
//! Equal-time events pop in insertion order (the sequence number is a
//! monotone counter). Scheduling before the time of the last popped event is an
//! error (`ScheduleError::InPast`). There is no cancellation: timers carry a
//! generation token and stale ones are ignored by their owner.

use super::time::SimTime;
use std::cmp::Reverse;
use std::collections::BinaryHeap;

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ScheduleError {
    #[error("event scheduled at {at} ns, before the current time {now} ns")]
    InPast { at: u64, now: u64 },
}

/// Priority queue of events of type `E`.
pub struct EventQueue<E> {
    heap: BinaryHeap<Reverse<(u64, u64, u32)>>,
    slots: Vec<Option<E>>,
    free: Vec<u32>,
    seq: u64,
    now: SimTime,
}

impl<E> Default for EventQueue<E> {
    fn default() -> Self {
        Self::new()
    }
}

impl<E> EventQueue<E> {
    pub fn new() -> Self {
        Self::with_capacity(0)
    }
    pub fn with_capacity(n: usize) -> Self {
        EventQueue {
            heap: BinaryHeap::with_capacity(n),
            slots: Vec::with_capacity(n),
            free: Vec::with_capacity(n),
            seq: 0,
            now: SimTime::ZERO,
        }
    }
    /// Time of the last popped event (the simulation's current time).
    pub fn now(&self) -> SimTime {
        self.now
    }
    pub fn len(&self) -> usize {
        self.heap.len()
    }
    pub fn is_empty(&self) -> bool {
        self.heap.is_empty()
    }
    /// Schedule `ev` at `at`. Fails if `at` is earlier than `now()`.
    pub fn push(&mut self, at: SimTime, ev: E) -> Result<(), ScheduleError> {
        if at < self.now {
            return Err(ScheduleError::InPast {
                at: at.0,
                now: self.now.0,
            });
        }
        let slot = match self.free.pop() {
            Some(s) => {
                self.slots[s as usize] = Some(ev);
                s
            }
            None => {
                self.slots.push(Some(ev));
                (self.slots.len() - 1) as u32
            }
        };
        self.heap.push(Reverse((at.0, self.seq, slot)));
        self.seq += 1;
        Ok(())
    }
    /// Time of the earliest pending event.
    pub fn peek_time(&self) -> Option<SimTime> {
        self.heap.peek().map(|Reverse((t, _, _))| SimTime(*t))
    }
    /// Remove and return the earliest event, advancing `now()` to its time.
    pub fn pop(&mut self) -> Option<(SimTime, E)> {
        let Reverse((t, _, slot)) = self.heap.pop()?;
        let ev = self.slots[slot as usize].take()?;
        self.free.push(slot);
        self.now = SimTime(t);
        Some((SimTime(t), ev))
    }
}
