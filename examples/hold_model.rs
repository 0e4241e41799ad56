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
use qossim::sim::{run_until, EventQueue, Model, SimDuration, SimRng, SimTime};
use std::alloc::{GlobalAlloc, Layout, System};
use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Counts every allocation and reallocation, then defers to `System`.
struct CountingAlloc;

static ALLOCS: AtomicU64 = AtomicU64::new(0);

// SAFETY: every method forwards to `System` with the caller's arguments
// unchanged; the counter has no effect on the memory handed out.
unsafe impl GlobalAlloc for CountingAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: same contract as our caller's.
        unsafe { System.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        ALLOCS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: same contract as our caller's.
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: same contract as our caller's.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as our caller's.
        unsafe { System.dealloc(ptr, layout) }
    }
}

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

/// Mean of the exponential holding time: 1 µs in nanoseconds.
const MEAN_NS: f64 = 1_000.0;

/// One Exp(1 µs) draw as a duration, rounded half up to the nanosecond
/// (draws are finite and non-negative; `as` saturates in any case).
fn draw(rng: &mut SimRng) -> SimDuration {
    SimDuration::from_nanos((rng.exp(MEAN_NS) + 0.5) as u64)
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
            self.start = Some((Instant::now(), ALLOCS.load(Ordering::Relaxed)));
        }
        if self.done < self.stop_after {
            self.done += 1;
            // `now + d >= now`, so the push cannot be refused.
            let _ = queue.push(now + draw(&mut self.rng), ev);
            if self.done == self.stop_after {
                self.end = Some((Instant::now(), ALLOCS.load(Ordering::Relaxed), now));
            }
        }
    }
}

/// Result of one hold-model run.
struct Measured {
    wall: Duration,
    allocs: u64,
    final_time: SimTime,
}

fn run_qossim(args: &Args) -> Option<Measured> {
    let mut rng = SimRng::stream(args.seed, "hold");
    let mut queue = EventQueue::new();
    for id in 0..args.pending {
        let at = SimTime::ZERO + draw(&mut rng);
        queue.push(at, id).ok()?;
    }
    let mut model = Hold {
        rng,
        done: 0,
        warm_up_end: args.pending,
        stop_after: args.pending.saturating_add(args.events),
        start: None,
        end: None,
    };
    run_until(&mut model, &mut queue, SimTime::MAX);
    let (t0, a0) = model.start?;
    let (t1, a1, final_time) = model.end?;
    Some(Measured {
        wall: t1.duration_since(t0),
        allocs: a1 - a0,
        final_time,
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
    let a0 = ALLOCS.load(Ordering::Relaxed);
    let mut last = 0;
    for _ in 0..args.events {
        last = hold(&mut heap, &mut rng, &mut seq)?;
    }
    let wall = t0.elapsed();
    Some(Measured {
        wall,
        allocs: ALLOCS.load(Ordering::Relaxed) - a0,
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
