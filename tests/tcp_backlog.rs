//! A TCP source that writes faster than its connection drains has its
//! writes refused past the socket's application-backlog bound (hardening
//! issue, defect 6: lossy TCP at microsecond intervals allocated 7.86 GB
//! and aborted). The run finishes, the refusals count in the flow's
//! `drops_queue`, and the process's memory stays bounded.
//!
//! Its own test binary: it reads the process's peak RSS.

mod common;
use common::sim::*;

fn peak_rss_mb() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
        .expect("VmHWM")
        / 1024
}

const SCENARIO: &str = r#"
name = "tcp-backlog"
seed = 1
duration = "20 s"
warmup = "0 s"
drain = "1 s"

[[nodes]]
name = "sensor"
role = "client"

[[nodes]]
name = "collector"
role = "server"

[[links]]
name = "radio"
a = "sensor"
b = "collector"
rate = "250 kbit/s"
delay = "40 ms"
queue = 32
loss = { model = "bernoulli", p = 0.03 }

[[flows]]
name = "telemetry"
pattern = "point_to_point"
protocol = "tcp"
publishers = ["sensor"]
receivers = ["collector"]
topic = "t"
payload_bytes = 1000
interval = "50 us"
"#;

#[test]
fn a_source_faster_than_its_connection_is_bounded() {
    // 400,000 messages of 1,000 bytes in 20 s (400 MB offered) to a
    // 250 kbit/s lossy link that carries about 0.6 MB in that time
    let dir = run_text("tcp-backlog", SCENARIO, &[]);
    let row = run_row(&dir, "telemetry");
    let sent = num(&row, "sent");
    let refused = num(&row, "drops_queue");
    assert!(sent >= 399_000.0, "sent {sent}");
    // the 16 MiB backlog holds about 16,000 messages; the rest is refused
    assert!(refused > 350_000.0, "refused {refused} of {sent}");
    assert!(num(&row, "delivered") > 0.0);
    let peak = peak_rss_mb();
    assert!(peak < 200, "peak RSS {peak} MB for 400 MB offered");
}
