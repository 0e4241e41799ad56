//! Allocations in the steady state of the two benchmark workloads
//! (issue 22, items 2 and 3), driven by the same library functions as the
//! examples.
//!
//! The CoAP NON echo of `examples/udp_echo.rs` (`qossim::bench::run_udp_echo`)
//! allocates nothing per packet once warmed up: the endpoints' maps,
//! timers, buffers and the deduplication store reuse their storage.
//! Measured as the difference of two runs of the same echo (same seed), one
//! longer than the other: warm-up and the end of the run cancel out. The
//! shorter run already covers more than NON_LIFETIME (145 s) of simulated
//! time, so the deduplication store has reached its steady size (its
//! entries expire as fast as new ones come) before the compared window.

use qossim::bench::{run_hold, run_udp_echo, CountingAlloc};

#[global_allocator]
static GLOBAL: CountingAlloc = CountingAlloc;

/// The allocation counter is process-wide: one measurement at a time.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

#[test]
fn udp_echo_allocates_nothing_per_packet_after_warm_up() {
    let _one_at_a_time = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let loss = 0.1;
    // ~190 packets per simulated second: 40,000 packets ≈ 210 s > 145 s
    let short = run_udp_echo(loss, 40_000).expect("short run");
    let long = run_udp_echo(loss, 100_000).expect("long run");
    let (allocs, packets) = long.beyond(&short);
    assert!(packets >= 55_000, "compared window: {packets} packets");
    // the store is at its steady size through the window: as many
    // entries at the end of both runs (entries live NON_LIFETIME)
    let entries = (short.coap("dedup_entries"), long.coap("dedup_entries"));
    assert!(entries.0 > 20_000, "{entries:?}");
    assert!(
        entries.0.abs_diff(entries.1) < entries.0 / 50,
        "{entries:?}"
    );
    // the same exchange both times, and it is lossy as configured
    let ratio = long.coap("responses_received") as f64 / long.coap("requests_started") as f64;
    assert!((ratio - 0.81).abs() < 0.01, "round trip {ratio}");
    // Allowed: growth of run-long result vectors (every latency is kept
    // for the percentiles, growing by a quarter at a time; every lost
    // message is listed) and of buffers reaching a new peak of
    // simultaneous use — geometric or record-setting, a handful however
    // long the window (10 in 100,000 packets measured, 7 of them the
    // latencies). One allocation in a thousand packets would be 55.
    assert!(
        allocs <= 16,
        "{allocs} allocations in {packets} steady-state packets ({:.5} per packet)",
        allocs as f64 / packets as f64
    );
}

/// The hold model of `examples/hold_model.rs` (`qossim::bench::run_hold`):
/// after warm-up, fewer than one allocation in 2,000 events at 10,000 and
/// 100,000 pending events (issue 22 asks for < 0.001; measured ~1e-4):
/// the radix heap's large buckets refill from a pool of drained buffers
/// instead of allocating their way up again, as they did when a drained
/// bucket gave its buffer back (1.3e-3 and 2.0e-3).
#[test]
fn hold_model_allocates_almost_nothing_per_event() {
    let _one_at_a_time = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    for pending in [10_000u64, 100_000] {
        let events = 2_000_000;
        let r = run_hold(pending, events, 1).expect("hold model");
        let per_event = r.allocations as f64 / events as f64;
        assert!(
            per_event < 5e-4,
            "pending {pending}: {} allocations in {events} events",
            r.allocations
        );
    }
}
