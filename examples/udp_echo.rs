//! CoAP NON echo benchmark (issue #3): a client sends NON requests with a
//! 32-byte payload over one 250 kbit/s, 50 ms link with Bernoulli loss in
//! each direction; the server answers each with a NON response. Runs through
//! the same `World`, links and CoAP endpoints as every scenario; the
//! scenario and the measurement are `qossim::bench::run_udp_echo`, which
//! `tests/udp_echo_allocations.rs` drives too.
//!
//!     cargo run --release --example udp_echo -- --loss 0.1 --packets 200000
//!
//! Prints the round-trip success ratio (≈ (1 − loss)²), the allocations per
//! simulated packet over the whole run (`allocs_per_packet`, warm-up
//! included) and in the steady state (`allocs_per_packet_steady`: this run
//! against one of half its packets, so warm-up cancels out), and as the
//! last line `packets_per_s=<simulated packet transmissions per wall-clock
//! second>` of the first, timed, run.

use qossim::bench::{run_udp_echo, CountingAlloc};

#[global_allocator]
static GLOBAL: CountingAlloc = CountingAlloc;

fn arg(args: &[String], name: &str, default: f64) -> f64 {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn run(loss: f64, packets: u64) -> qossim::bench::EchoRun {
    match run_udp_echo(loss, packets) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: {e}");
            std::process::exit(1);
        }
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let loss = arg(&args, "--loss", 0.1);
    let packets = arg(&args, "--packets", 200_000.0) as u64;
    // warm-up: a short run of the same shape, so the process's allocator
    // and caches are in the state the timed run will find them
    let _ = run(loss, 2_000);
    let r = run(loss, packets);
    let wall = r.wall.as_secs_f64();
    let started = r.coap("requests_started");
    let answered = r.coap("responses_received");
    let ratio = answered as f64 / started.max(1) as f64;
    println!("loss={loss} requests={started} responses={answered}");
    for c in [
        "requests_outstanding",
        "requests_unanswered",
        "dedup_entries",
        "requests_tracked",
    ] {
        println!("{c}={}", r.coap(c));
    }
    println!(
        "round_trip_success={ratio:.4} (closed form (1-p)^2 = {:.4})",
        (1.0 - loss) * (1.0 - loss)
    );
    println!("events={} wall_s={wall:.3}", r.outcome.events);
    // the steady state: this run less one with half the packets (same
    // seed, so the same first half); untimed
    let half = run(loss, packets / 2);
    let (steady_allocs, steady_tx) = r.beyond(&half);
    println!(
        "transmissions={} allocs_per_packet={:.3} allocs_per_packet_steady={:.5} ({steady_allocs} allocations in the last {steady_tx} packets)",
        r.transmissions,
        r.allocations as f64 / r.transmissions.max(1) as f64,
        steady_allocs as f64 / steady_tx.max(1) as f64,
    );
    println!("packets_per_s={:.0}", r.transmissions as f64 / wall);
}
