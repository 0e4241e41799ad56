//! Memory per client (issue 22): the million-client scenario's model,
//! built small, must hold no more heap per client than its budget, and the
//! per-client structures must not grow past theirs. The full 1,000,000-
//! client run is a benchmark (BENCHMARKS.md "A million MQTT clients").
//!
//! One test in this file: the counting allocator sees the whole process.

use qossim::sim::alloc::{live_bytes, peak_bytes, reset_peak, CountingAlloc};
use qossim::world::{footprint, Outputs, World};
use std::path::Path;

#[global_allocator]
static HEAP: CountingAlloc = CountingAlloc;

/// Heap bytes per client a run of `scenarios/bench/mqtt-1m.toml` may add
/// at its peak (world, TCP both ends, MQTT client and broker session,
/// links, routing, metrics and the run's outcome tables together).
/// Measured 3,211 (3,733 before the changes of 2026-12-08 to TCP buffers,
/// `Wakeup`, the MQTT plug-in's clients, the broker's connections and
/// sessions and the event queue: BENCHMARKS.md; 4,106 before the SACK
/// scoreboard gave its segment list back when everything was acknowledged
/// and an open connection's record stopped holding counters its
/// connection already keeps; 4,555 before
/// sockets and clients kept their queues in
/// a box given back when empty and connection records took 8 bytes per
/// optional time; 5,100 before clients shared one `ClientConfig`, timers
/// took 8 bytes a slot, 5.0 state moved behind a box and the routing
/// adjacency became one array; 7,800 before this changes); the goal
/// is 3,000 of peak RSS per client, not reached yet (BENCHMARKS.md "A
/// million MQTT clients"): this budget catches regressions.
const HEAP_PER_CLIENT: f64 = 3_500.0;

/// Budgets of the fixed part of each per-client structure, in bytes.
const SIZE_BUDGETS: &[(&str, usize)] = &[
    ("tcp::Connection", 470),
    ("tcp socket (world)", 580),
    ("mqtt::Client", 300),
    ("mqtt client (world)", 360),
    ("mqtt broker session", 64),
    ("mqtt broker connection", 96),
    ("tcp connection record", 80),
];

/// The 1M scenario with `per_router` clients behind each of its 100
/// routers, run for three simulated minutes (every client connected and
/// publishing); returns (clients, peak heap added by the run, delivered,
/// intended).
fn run(per_router: u32) -> (u64, usize, u64, u64) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/bench/mqtt-1m.toml");
    let mut sets: Vec<String> = (1..=100)
        .map(|k| format!("groups.r{k}-d{{i}}.count={per_router}"))
        .collect();
    sets.push("duration=3min".into());
    sets.push("drain=10s".into());
    let sc = qossim::scenario::load_file(&path, &sets).expect("scenario loads");
    let base = live_bytes();
    reset_peak();
    let world = World::new(&sc, 0, Outputs::default()).expect("world builds");
    let outcome = world.run().expect("run completes");
    let peak = peak_bytes().saturating_sub(base);
    let delivered = outcome.flows.iter().map(|(_, f)| f.delivered).sum();
    let intended = outcome.flows.iter().map(|(_, f)| f.intended).sum();
    drop(outcome);
    (u64::from(per_router) * 100, peak, delivered, intended)
}

#[test]
fn a_client_costs_less_than_its_budget() {
    let (n1, peak1, d1, i1) = run(20);
    let (n2, peak2, d2, i2) = run(40);
    // the runs did the work: every client published and was delivered
    for (n, d, i) in [(n1, d1, i1), (n2, d2, i2)] {
        assert!(i >= n, "{n} clients intended only {i} messages");
        assert!(
            d as f64 >= 0.95 * i as f64,
            "{n} clients: {d} of {i} delivered"
        );
    }
    let per_client = (peak2 as f64 - peak1 as f64) / (n2 - n1) as f64;
    println!(
        "peak heap: {n1} clients {peak1} B, {n2} clients {peak2} B: {per_client:.0} B per client (budget {HEAP_PER_CLIENT})"
    );
    assert!(
        per_client > 0.0 && per_client <= HEAP_PER_CLIENT,
        "{per_client:.0} B of heap per client (budget {HEAP_PER_CLIENT} B)"
    );
    let sizes = footprint();
    for (name, size) in &sizes {
        println!("{name:32} {size:5} B");
    }
    for (name, budget) in SIZE_BUDGETS {
        let size = sizes
            .iter()
            .find(|(n, _)| n == name)
            .unwrap_or_else(|| panic!("footprint() lists no {name}"))
            .1;
        assert!(size <= *budget, "{name} is {size} B (budget {budget} B)");
    }
}
