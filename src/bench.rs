//! Workloads of the benchmark programs in `examples/`, shared with the
//! tests that check them, and a counting allocator to measure allocations.
//!
//! - [`udp_echo_scenario`] / [`run_udp_echo`]: the CoAP NON echo of
//!   `examples/udp_echo.rs` (BENCHMARKS.md, "CoAP NON echo").
//! - [`run_hold`]: the hold model of `examples/hold_model.rs` on the
//!   event queue (BENCHMARKS.md, "Event queue: hold model").
//! - [`CountingAlloc`] and [`allocations`]: `crate::sim::alloc`'s counting
//!   allocator, re-exported for the benchmark programs.

use crate::sim::{run_until, EventQueue, Model, SimDuration, SimRng, SimTime};
use crate::world::{RunOutcome, World};
use std::time::{Duration, Instant};

pub use crate::sim::alloc::{allocations, CountingAlloc};

/// The CoAP NON echo: a client sends NON PUTs with a 32-byte payload every
/// 10 ms over one 250 kbit/s, 50 ms link with Bernoulli loss `loss` in each
/// direction; the server answers each with a NON 2.04. `requests` requests,
/// then 10 s of drain. The per-second time series is off: its rows are
/// output kept per simulated second, not per-packet work (and ns-3's
/// UdpEcho, which this is compared with, records none).
pub fn udp_echo_scenario(loss: f64, requests: u64) -> String {
    // one request every 10 ms keeps the 250 kbit/s link below saturation
    format!(
        r#"
name = "udp-echo"
seed = 1
duration = "{secs} s"
drain = "10 s"
timeseries_interval = "0 s"
[[nodes]]
name = "client"
role = "client"
[[nodes]]
name = "server"
role = "server"
[[links]]
a = "client"
b = "server"
rate = "250 kbit/s"
delay = "50 ms"
queue = 1000
loss = {{ model = "bernoulli", p = {loss} }}
[[flows]]
name = "echo"
pattern = "point_to_point"
protocol = "coap"
reliability = "non"
publishers = ["client"]
receivers = ["server"]
topic = "echo"
payload_bytes = 32
interval = "10 ms"
count = {requests}
[protocols.coap]
nstart = 65535
"#,
        secs = requests / 100 + 1
    )
}

/// The requests that make about `packets` transmissions at `loss`: each
/// exchange is a request and, if the request survives, a response.
pub fn udp_echo_requests(loss: f64, packets: u64) -> u64 {
    (packets as f64 / (2.0 - loss)).round() as u64
}

/// One run of the echo, measured.
pub struct EchoRun {
    /// The run's results.
    pub outcome: RunOutcome,
    /// Packet transmissions on the link, both directions.
    pub transmissions: u64,
    /// Wall time of `World::run` (set-up excluded).
    pub wall: Duration,
    /// Allocations during `World::run`, as [`allocations`] counts them.
    pub allocations: u64,
}

impl EchoRun {
    /// Counter `name` of the CoAP plug-in (0 if absent).
    pub fn coap(&self, name: &str) -> u64 {
        self.outcome.counter("coap", name).unwrap_or(0)
    }

    /// The steady state: (allocations, transmissions) of this run less
    /// those of `shorter`, a run of the same echo with fewer packets (same
    /// seed, so the same beginning). Set-up, warm-up (buffers and tables
    /// growing to their working size, the deduplication store filling for
    /// NON_LIFETIME) and the end of the run cost the same in both and
    /// cancel out, provided `shorter` is past the warm-up.
    pub fn beyond(&self, shorter: &EchoRun) -> (u64, u64) {
        (
            self.allocations.saturating_sub(shorter.allocations),
            self.transmissions.saturating_sub(shorter.transmissions),
        )
    }
}

/// Build and run the echo of about `packets` transmissions at `loss`.
pub fn run_udp_echo(loss: f64, packets: u64) -> Result<EchoRun, String> {
    let text = udp_echo_scenario(loss, udp_echo_requests(loss, packets));
    let sc = crate::scenario::load_str(&text, "udp_echo", std::path::Path::new("."), &[])
        .map_err(|e| e.to_string())?;
    let world = World::new(&sc, 0, Default::default()).map_err(|e| e.to_string())?;
    let a0 = allocations();
    let t0 = Instant::now();
    let outcome = world.run().map_err(|e| e.to_string())?;
    let wall = t0.elapsed();
    let allocations = allocations() - a0;
    let transmissions = outcome
        .links
        .iter()
        .flat_map(|l| l.dirs.iter())
        .map(|d| d.stats.tx_packets)
        .sum();
    Ok(EchoRun {
        outcome,
        transmissions,
        wall,
        allocations,
    })
}

/// Mean of the hold model's exponential holding time: 1 µs in nanoseconds.
const HOLD_MEAN_NS: f64 = 1_000.0;

/// One Exp(1 µs) draw as a duration, rounded half up to the nanosecond
/// (draws are finite and non-negative; `as` saturates in any case).
pub fn hold_draw(rng: &mut SimRng) -> SimDuration {
    SimDuration::from_nanos((rng.exp(HOLD_MEAN_NS) + 0.5) as u64)
}

/// The hold model as a `Model`: each event reschedules itself `Exp(1 µs)`
/// later until `stop_after` holds are done, then the queue drains.
struct Hold {
    rng: SimRng,
    done: u64,
    warm_up_end: u64,
    stop_after: u64,
    /// Wall clock and allocation count at the end of warm-up.
    start: Option<(Instant, u64)>,
    /// Wall clock, allocation count and simulated time after the last hold.
    end: Option<(Instant, u64, SimTime)>,
}

impl Model for Hold {
    type Event = u64;
    fn handle(&mut self, now: SimTime, ev: u64, queue: &mut EventQueue<u64>) {
        if self.done == self.warm_up_end {
            self.start = Some((Instant::now(), allocations()));
        }
        if self.done < self.stop_after {
            self.done += 1;
            // `now + d >= now`, so the push cannot be refused.
            let _ = queue.push(now + hold_draw(&mut self.rng), ev);
            if self.done == self.stop_after {
                self.end = Some((Instant::now(), allocations(), now));
            }
        }
    }
}

/// One hold-model run, measured after warm-up.
pub struct HoldRun {
    /// Wall time of the measured holds.
    pub wall: Duration,
    /// Allocations during the measured holds, as [`allocations`] counts them.
    pub allocations: u64,
    /// Simulated time of the last measured hold.
    pub final_time: SimTime,
}

/// The hold model (Jones 1986) through `EventQueue` and `run_until`:
/// prefill `pending` events at Exp(1 µs) times (stream "hold" of `seed`),
/// then pop the earliest and schedule one `Exp(1 µs)` after it, `pending`
/// times as warm-up and `events` times measured. `None` if it did not
/// complete (`pending` or `events` zero).
pub fn run_hold(pending: u64, events: u64, seed: u64) -> Option<HoldRun> {
    let mut rng = SimRng::stream(seed, "hold");
    let mut queue = EventQueue::new();
    for id in 0..pending {
        let at = SimTime::ZERO + hold_draw(&mut rng);
        queue.push(at, id).ok()?;
    }
    let mut model = Hold {
        rng,
        done: 0,
        warm_up_end: pending,
        stop_after: pending.saturating_add(events),
        start: None,
        end: None,
    };
    run_until(&mut model, &mut queue, SimTime::MAX);
    let (t0, a0) = model.start?;
    let (t1, a1, final_time) = model.end?;
    Some(HoldRun {
        wall: t1.duration_since(t0),
        allocations: a1 - a0,
        final_time,
    })
}
