//! The classic hold model (Jones 1986) through qossim's event queue.
//!
//! Prefill `--pending` events at Exp(1 µs) times, then repeatedly pop the
//! earliest event and schedule a new one at `now + Exp(1 µs)`, so the queue
//! size stays constant. The run goes through `sim::run_until` with a `Model`
//! implementation: the same queue and loop scenarios use.
//!
//! Warm-up is the prefill plus the first `pending` holds; wall time and heap
//! allocations (counted by a wrapper around the system allocator) are measured
//! over the following `--events` holds only. The same hold model is then run on
//! a plain `std::collections::BinaryHeap<Reverse<(u64, u64)>>` as a reference;
//! both use identical random draws and tie-breaking, so their final simulated
//! times must agree (checked; exit code 1 otherwise).
//!
//! ```text
//! cargo run --release --example hold_model -- --pending 10000 --events 10000000
//! ```
//! The last line is `events_per_s=<n>` (the qossim queue).

use clap::Parser;
use qossim::bench::{allocations, hold_draw as draw, run_hold, CountingAlloc};
use qossim::sim::{SimRng, SimTime};
use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::time::{Duration, Instant};

#[global_allocator]
static GLOBAL: CountingAlloc = CountingAlloc;

/// Hold-model benchmark of the qossim event queue.
#[derive(Parser, Debug)]
struct Args {
    /// Events kept pending in the queue.
    #[arg(long, default_value_t = 10_000)]
    pending: u64,
    /// Hold operations measured after warm-up.
    #[arg(long, default_value_t = 10_000_000)]
    events: u64,
    /// Master seed of the exponential draws.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Skip the BinaryHeap reference run.
    #[arg(long)]
    no_reference: bool,
}

/// Result of one hold-model run.
struct Measured {
    wall: Duration,
    allocs: u64,
    final_time: SimTime,
}

fn run_qossim(args: &Args) -> Option<Measured> {
    let r = run_hold(args.pending, args.events, args.seed)?;
    Some(Measured {
        wall: r.wall,
        allocs: r.allocations,
        final_time: r.final_time,
    })
}

fn run_binary_heap(args: &Args) -> Option<Measured> {
    let mut rng = SimRng::stream(args.seed, "hold");
    let mut heap: BinaryHeap<Reverse<(u64, u64)>> = BinaryHeap::new();
    let mut seq = 0u64;
    for _ in 0..args.pending {
        heap.push(Reverse((draw(&mut rng).as_nanos(), seq)));
        seq += 1;
    }
    let hold = |heap: &mut BinaryHeap<Reverse<(u64, u64)>>, rng: &mut SimRng, seq: &mut u64| {
        let Reverse((t, _)) = heap.pop()?;
        let at = SimTime(t) + draw(rng);
        heap.push(Reverse((at.as_nanos(), *seq)));
        *seq += 1;
        Some(t)
    };
    for _ in 0..args.pending {
        hold(&mut heap, &mut rng, &mut seq)?;
    }
    let t0 = Instant::now();
    let a0 = allocations();
    let mut last = 0;
    for _ in 0..args.events {
        last = hold(&mut heap, &mut rng, &mut seq)?;
    }
    let wall = t0.elapsed();
    Some(Measured {
        wall,
        allocs: allocations() - a0,
        final_time: SimTime(last),
    })
}

fn rate(events: u64, wall: Duration) -> u64 {
    let s = wall.as_secs_f64();
    if s > 0.0 {
        (events as f64 / s) as u64
    } else {
        0
    }
}

fn main() {
    let args = Args::parse();
    if args.pending == 0 || args.events == 0 {
        eprintln!("hold_model: --pending and --events must be at least 1");
        std::process::exit(2);
    }
    let Some(ours) = run_qossim(&args) else {
        eprintln!("hold_model: the qossim run did not complete");
        std::process::exit(1);
    };
    println!("pending={}", args.pending);
    println!("events={}", args.events);
    println!("final_time_ns={}", ours.final_time.as_nanos());
    println!("wall_s={:.6}", ours.wall.as_secs_f64());
    println!(
        "allocs_per_event={}",
        ours.allocs as f64 / args.events as f64
    );
    if !args.no_reference {
        let Some(reference) = run_binary_heap(&args) else {
            eprintln!("hold_model: the BinaryHeap run did not complete");
            std::process::exit(1);
        };
        if reference.final_time != ours.final_time {
            eprintln!(
                "hold_model: final times differ: qossim {} ns, BinaryHeap {} ns",
                ours.final_time.as_nanos(),
                reference.final_time.as_nanos()
            );
            std::process::exit(1);
        }
        println!("binaryheap_wall_s={:.6}", reference.wall.as_secs_f64());
        println!(
            "binaryheap_allocs_per_event={}",
            reference.allocs as f64 / args.events as f64
        );
        println!(
            "binaryheap_events_per_s={}",
            rate(args.events, reference.wall)
        );
    }
    println!("events_per_s={}", rate(args.events, ours.wall));
}
