//! The one real-socket driver of every sans-IO core: it runs a core's poll
//! loop (DESIGN.md convention 1, [`SansIo`]) against wall-clock time and
//! hands transmissions and transport requests to a [`Transport`] — a TCP
//! client connection, a TCP listening server, a UDP socket. The same core
//! code the simulator drives is thus checked against real peers (mosquitto,
//! paho-mqtt, libcoap) in the interop tests.
//!
//! Wall time is mapped to [`SimTime`] as the time since the driver was
//! created. Every wait is bounded: a step waits at most until the core's
//! next timer or the caller's limit, and [`Driver::run_until`] gives up
//! after its limit with a [`Timeout`]. Nothing here can hang.

use crate::sansio::SansIo;
use crate::sim::SimTime;
use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// Wall time as simulated time: nanoseconds since the driver started.
#[derive(Debug, Clone, Copy)]
pub struct Clock {
    start: Instant,
}

impl Clock {
    /// A clock starting now.
    pub fn start() -> Self {
        Clock {
            start: Instant::now(),
        }
    }
    /// Now, as time since the start.
    pub fn now(&self) -> SimTime {
        SimTime::from_nanos(u64::try_from(self.start.elapsed().as_nanos()).unwrap_or(u64::MAX))
    }
    /// How long to wait for input: at most `max`, at most until `until`,
    /// at least 1 ms (so a due timer is not spun on).
    pub fn wait(&self, until: Option<SimTime>, max: Duration) -> Duration {
        let mut w = max;
        if let Some(t) = until {
            w = w.min(Duration::from_nanos((t - self.now()).as_nanos()));
        }
        w.max(Duration::from_millis(1))
    }
}

/// No event the caller waited for came within `limit`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("no matching event within {limit:?}")]
pub struct Timeout {
    pub limit: Duration,
}

/// What a core runs over: real sockets and what the core's events ask of
/// them.
pub trait Transport<C: SansIo> {
    type Error: From<Timeout>;
    /// Send one transmission (its bytes: `bytes`).
    fn send(
        &mut self,
        core: &mut C,
        clock: &Clock,
        t: &C::Transmit,
        bytes: &[u8],
    ) -> Result<(), Self::Error>;
    /// An event of the core: carry out what is addressed to the transport
    /// (open, close) and hand back what is for the application.
    fn event(
        &mut self,
        core: &mut C,
        clock: &Clock,
        ev: C::Event,
    ) -> Result<Option<C::Event>, Self::Error>;
    /// Wait at most `wait` for input and feed it to `core`; whether
    /// anything arrived.
    fn receive(&mut self, core: &mut C, clock: &Clock, wait: Duration)
        -> Result<bool, Self::Error>;
    /// After a flush: write out what is buffered (non-blocking sockets);
    /// whether anything happened.
    fn after_flush(&mut self, _core: &mut C, _clock: &Clock) -> Result<bool, Self::Error> {
        Ok(false)
    }
    /// The next timer of an application the transport carries beside the
    /// core (e.g. a CoAP server answering late).
    fn poll_timeout(&self) -> Option<SimTime> {
        None
    }
    /// That timer is due.
    fn handle_timeout(&mut self, _core: &mut C, _clock: &Clock) {}
}

/// Most events a driver keeps for the caller (older ones are dropped).
const MAX_EVENTS: usize = 100_000;

/// A sans-IO core over a [`Transport`].
pub struct Driver<C: SansIo, T> {
    core: C,
    io: T,
    clock: Clock,
    buf: Vec<u8>,
    events: VecDeque<C::Event>,
}

impl<C: SansIo, T: Transport<C>> Driver<C, T> {
    /// Drive `core` over `io`; the clock starts now.
    pub fn new(core: C, io: T) -> Self {
        Driver {
            core,
            io,
            clock: Clock::start(),
            buf: Vec::with_capacity(2048),
            events: VecDeque::new(),
        }
    }
    /// Time since the driver started.
    pub fn now(&self) -> SimTime {
        self.clock.now()
    }
    pub fn core(&self) -> &C {
        &self.core
    }
    pub fn core_mut(&mut self) -> &mut C {
        &mut self.core
    }
    pub fn transport(&self) -> &T {
        &self.io
    }
    /// The core and the transport together (an application command that
    /// needs both).
    pub fn parts_mut(&mut self) -> (&mut C, &mut T, &Clock) {
        (&mut self.core, &mut self.io, &self.clock)
    }
    /// Hand back the core and the transport.
    pub fn into_parts(self) -> (C, T) {
        (self.core, self.io)
    }

    /// Poll the core in the documented order until it is quiet: every
    /// transmission to the transport, every event to the transport and then
    /// to the caller's queue, again while an event made more. Whether
    /// anything happened.
    pub fn flush(&mut self) -> Result<bool, T::Error> {
        let mut busy = false;
        loop {
            let mut progress = false;
            loop {
                self.buf.clear();
                let now = self.clock.now();
                let Some(t) = self.core.poll_transmit(now, &mut self.buf) else {
                    break;
                };
                progress = true;
                self.io.send(&mut self.core, &self.clock, &t, &self.buf)?;
            }
            progress |= self.io.after_flush(&mut self.core, &self.clock)?;
            while let Some(e) = self.core.poll_event() {
                progress = true;
                if let Some(e) = self.io.event(&mut self.core, &self.clock, e)? {
                    if self.events.len() >= MAX_EVENTS {
                        self.events.pop_front();
                    }
                    self.events.push_back(e);
                }
            }
            if !progress {
                return Ok(busy);
            }
            busy = true;
        }
    }

    /// One round: flush, wait up to `max_wait` (less when a timer is due)
    /// for input, fire due timers, flush again. Whether anything happened.
    pub fn step(&mut self, max_wait: Duration) -> Result<bool, T::Error> {
        let mut busy = self.flush()?;
        let next = match (self.core.poll_timeout(), self.io.poll_timeout()) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        let wait = self.clock.wait(next, max_wait);
        busy |= self.io.receive(&mut self.core, &self.clock, wait)?;
        let now = self.clock.now();
        if self.core.poll_timeout().is_some_and(|t| t <= now) {
            self.core.handle_timeout(now);
            busy = true;
        }
        if self.io.poll_timeout().is_some_and(|t| t <= now) {
            self.io.handle_timeout(&mut self.core, &self.clock);
            busy = true;
        }
        busy |= self.flush()?;
        Ok(busy)
    }

    /// The next event collected so far.
    pub fn poll_event(&mut self) -> Option<C::Event> {
        self.events.pop_front()
    }

    /// Step until `f` maps an event to `Some`, for at most `limit`. Events
    /// `f` rejects are dropped.
    pub fn run_until<R>(
        &mut self,
        limit: Duration,
        mut f: impl FnMut(&C::Event) -> Option<R>,
    ) -> Result<R, T::Error> {
        let deadline = Instant::now() + limit;
        loop {
            while let Some(e) = self.events.pop_front() {
                if let Some(r) = f(&e) {
                    return Ok(r);
                }
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(Timeout { limit }.into());
            }
            self.step(left.min(Duration::from_millis(50)))?;
        }
    }
}

/// A background thread that runs until its stop flag is raised: what the
/// real-socket servers (`BrokerThread`, `GatewayThread`) run on. Dropping
/// it raises the flag and joins the thread, so a server never outlives its
/// owner.
pub struct Worker<T> {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    handle: Option<std::thread::JoinHandle<T>>,
}

impl<T: Send + 'static> Worker<T> {
    /// Run `f` on a new thread; `f` polls the flag it is given and returns
    /// once it is raised.
    pub fn spawn(f: impl FnOnce(&std::sync::atomic::AtomicBool) -> T + Send + 'static) -> Self {
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flag = stop.clone();
        let handle = std::thread::spawn(move || f(&flag));
        Worker {
            stop,
            handle: Some(handle),
        }
    }
}

impl<T> Worker<T> {
    /// The thread has ended (stopped, or returned early).
    pub fn is_finished(&self) -> bool {
        self.handle.as_ref().is_none_or(|h| h.is_finished())
    }

    /// Raise the stop flag and wait for the thread: what it returned, or
    /// `None` when it panicked.
    pub fn stop(mut self) -> Option<T> {
        self.finish()
    }

    fn finish(&mut self) -> Option<T> {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        self.handle.take().and_then(|h| h.join().ok())
    }
}

impl<T> std::fmt::Debug for Worker<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Worker")
            .field("finished", &self.is_finished())
            .finish()
    }
}

impl<T> Drop for Worker<T> {
    fn drop(&mut self) {
        let _ = self.finish();
    }
}
