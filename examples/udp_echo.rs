//! CoAP NON echo benchmark (issue #3): a client sends NON requests with a
//! 32-byte payload over one 250 kbit/s, 50 ms link with Bernoulli loss in
//! each direction; the server answers each with a NON response. Runs through
//! the same `World`, links and CoAP endpoints as every scenario.
//!
//!     cargo run --release --example udp_echo -- --loss 0.1 --packets 200000
//!
//! Prints the round-trip success ratio (≈ (1 − loss)²), the allocations per
//! simulated packet after warm-up, and as the last line
//! `packets_per_s=<simulated packet transmissions per wall-clock second>`.

use qossim::run::RunOptions;
use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

struct Counting;
static ALLOCS: AtomicU64 = AtomicU64::new(0);

// SAFETY: forwards to the system allocator unchanged; only counts calls.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        ALLOCS.fetch_add(1, Ordering::Relaxed);
        unsafe { System.alloc(l) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        unsafe { System.dealloc(p, l) }
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, n: usize) -> *mut u8 {
        ALLOCS.fetch_add(1, Ordering::Relaxed);
        unsafe { System.realloc(p, l, n) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn arg(args: &[String], name: &str, default: f64) -> f64 {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn scenario(loss: f64, requests: u64) -> String {
    // one request every 10 ms keeps the 250 kbit/s link below saturation
    format!(
        r#"
name = "udp-echo"
seed = 1
duration = "{secs} s"
drain = "10 s"
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

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let loss = arg(&args, "--loss", 0.1);
    let packets = arg(&args, "--packets", 200_000.0) as u64;
    // each exchange is a request and (if the request survives) a response
    let requests = (packets as f64 / (2.0 - loss)).round() as u64;
    let text = scenario(loss, requests);
    let sc = match qossim::scenario::load_str(&text, "udp_echo", std::path::Path::new("."), &[]) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: {e}");
            std::process::exit(2);
        }
    };
    let _ = RunOptions::default();
    // warm-up: a short run of the same shape, so lazily grown buffers exist
    let warm = qossim::scenario::load_str(
        &scenario(loss, 1000),
        "warm",
        std::path::Path::new("."),
        &[],
    );
    if let Ok(w) = warm {
        if let Ok(world) = qossim::world::World::new(&w, 0, Default::default()) {
            let _ = world.run();
        }
    }
    let world = match qossim::world::World::new(&sc, 0, Default::default()) {
        Ok(w) => w,
        Err(e) => {
            eprintln!("error: {e}");
            std::process::exit(1);
        }
    };
    let a0 = ALLOCS.load(Ordering::Relaxed);
    let t0 = Instant::now();
    let out = match world.run() {
        Ok(o) => o,
        Err(e) => {
            eprintln!("error: {e}");
            std::process::exit(1);
        }
    };
    let wall = t0.elapsed().as_secs_f64();
    let allocs = ALLOCS.load(Ordering::Relaxed) - a0;
    let tx: u64 = out
        .links
        .iter()
        .flat_map(|l| l.dirs.iter())
        .map(|d| d.stats.tx_packets)
        .sum();
    let started = out.counter("coap", "requests_started").unwrap_or(0);
    let answered = out.counter("coap", "responses_received").unwrap_or(0);
    let ratio = answered as f64 / started.max(1) as f64;
    println!("loss={loss} requests={started} responses={answered}");
    for c in [
        "requests_outstanding",
        "requests_unanswered",
        "dedup_entries",
        "requests_tracked",
    ] {
        println!("{c}={}", out.counter("coap", c).unwrap_or(0));
    }
    println!(
        "round_trip_success={ratio:.4} (closed form (1-p)^2 = {:.4})",
        (1.0 - loss) * (1.0 - loss)
    );
    println!("events={} wall_s={wall:.3}", out.events);
    println!(
        "transmissions={tx} allocs_per_packet={:.3}",
        allocs as f64 / tx.max(1) as f64
    );
    println!("packets_per_s={:.0}", tx as f64 / wall);
}
