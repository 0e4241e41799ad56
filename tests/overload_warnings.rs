//! The in-flight window warning (issue 22 item 5, `scenario::window`):
//! 2,000 publishers, one QoS 1 reading per second each, to one subscriber
//! 22 ms of round trip from the broker are 2,000 messages/s through a
//! window of 20 per round trip (at most about 900/s, about half that as
//! Nagle's algorithm holds each small segment for the previous one's ACK). `qossim check` warns at
//! `max_inflight`, saying what share can arrive at most, and the run shows
//! it: the broker drops at its queue for the subscriber
//! (`dropped_queue_full`) and delivers no more than the warning said. With
//! the window raised as the warning suggests, or at QoS 0, there is no
//! warning and nothing is dropped. 2,001 clients connecting within 1 s to
//! a broker that needs 12 s to accept them warn at `connect_spread`, and
//! the run shows the collapse; spread as suggested, all connect.
//! `--deny-warnings` makes either exit 2.

mod common;

use common::cli::run;
use common::sim::{num, read_csv, run_row};
use common::temp_dir;
use std::path::{Path, PathBuf};

const SCENARIO: &str = r#"name = "window"
seed = 3
duration = "12 s"
drain = "5 s"

[[nodes]]
name = "broker"
role = "broker"
processing = { PROC }

[[nodes]]
name = "router"
role = "router"

[[nodes]]
name = "collector"
role = "client"

[[groups]]
name = "dev-{i}"
count = 2000
role = "client"
link = { to = "router", rate = "1 Mbit/s", delay = "5 ms" }

[[links]]
a = "router"
b = "broker"
rate = "1 Gbit/s"
delay = "1 ms"

[[links]]
a = "collector"
b = "router"
rate = "100 Mbit/s"
delay = "10 ms"

[[flows]]
name = "telemetry"
pattern = "fan_in"
protocol = "mqtt"
reliability = "QOS"
publishers = ["dev-*"]
receivers = ["collector"]
topic = "fleet/{name}/telemetry"
payload_bytes = 32
interval = "INTERVAL"
start = "2 s"

[protocols.mqtt]
connect_spread = "SPREAD"
max_inflight = INFLIGHT
"#;

fn scenario(tag: &str, qos: &str, inflight: u32) -> (PathBuf, usize) {
    scenario_with(tag, qos, inflight, "1 s", "2 s", "service = \"35 us\"")
}

/// `SCENARIO` with QoS `qos`, `max_inflight`, the publishers' interval,
/// `connect_spread` and the broker's `processing` table's content.
fn scenario_with(
    tag: &str,
    qos: &str,
    inflight: u32,
    interval: &str,
    spread: &str,
    proc: &str,
) -> (PathBuf, usize) {
    let text = SCENARIO
        .replace("QOS", qos)
        .replace("INFLIGHT", &inflight.to_string())
        .replace("INTERVAL", interval)
        .replace("SPREAD", spread)
        .replace("PROC", proc);
    let line = text
        .lines()
        .position(|l| l.starts_with("max_inflight = "))
        .expect("max_inflight line")
        + 1;
    let p = temp_dir(tag).join("window.toml");
    std::fs::write(&p, text).expect("write");
    (p, line)
}

/// The 1-based line of scenario file `p` that starts with `prefix`.
fn line_of(p: &Path, prefix: &str) -> usize {
    std::fs::read_to_string(p)
        .expect("read")
        .lines()
        .position(|l| l.starts_with(prefix))
        .unwrap_or_else(|| panic!("no line starting {prefix:?}"))
        + 1
}

/// The window warnings among `qossim check`'s stderr lines.
fn window_warnings(err: &str) -> Vec<String> {
    err.lines()
        .filter(|l| l.contains("warning:") && l.contains("in-flight window"))
        .map(str::to_string)
        .collect()
}

/// The connect-storm warnings among `qossim check`'s stderr lines.
fn storm_warnings(err: &str) -> Vec<String> {
    err.lines()
        .filter(|l| l.contains("warning:") && l.contains("first connect within"))
        .map(str::to_string)
        .collect()
}

/// mqtt.csv's `metric` of `scope` (`broker` or `flow`) in run `out`.
fn mqtt_value(out: &Path, scope: &str, metric: &str) -> f64 {
    read_csv(&out.join("mqtt.csv"))
        .into_iter()
        .find(|r| r["scope"] == scope && r["metric"] == metric)
        .map(|r| r["value"].parse::<f64>().expect("number"))
        .unwrap_or_else(|| panic!("no {scope} {metric} in mqtt.csv"))
}

/// `qossim run` into a fresh directory: (its stderr, the directory).
fn run_out(p: &Path, tag: &str) -> (String, PathBuf) {
    let out = temp_dir(tag);
    let (code, _, err) = run(&[
        "run",
        p.to_str().expect("utf-8"),
        "--out",
        out.to_str().expect("utf-8"),
    ]);
    assert_eq!(code, 0, "{err}");
    (err, out)
}

/// `qossim run` into a fresh directory: (its window warnings, the broker's
/// `dropped_queue_full`, the flow's delivery ratio).
fn run_it(p: &Path, tag: &str) -> (Vec<String>, f64, f64) {
    let (err, out) = run_out(p, tag);
    let dropped = mqtt_value(&out, "broker", "dropped_queue_full");
    let ratio = num(&run_row(&out, "telemetry"), "delivery_ratio");
    (window_warnings(&err), dropped, ratio)
}

#[test]
fn an_overloaded_window_warns_and_drops() {
    let (p, line) = scenario("window-warn", "qos1", 20);
    let (code, _, err) = run(&["check", p.to_str().expect("utf-8")]);
    assert_eq!(code, 0, "warnings alone do not fail check: {err}");
    let w = window_warnings(&err);
    assert_eq!(w.len(), 1, "{err}");
    let w = &w[0];
    let at = format!("window.toml:{line}:");
    assert!(w.contains(&at), "not located at max_inflight ({at}): {w}");
    for part in [
        "subscriber collector",
        "about 2000 QoS 1/2 messages/s",
        "protocols.mqtt.max_inflight = 20",
        "max_queued 1000",
        "dropped_queue_full",
        "add subscribers, or use QoS 0",
    ] {
        assert!(w.contains(part), "missing {part:?}: {w}");
    }
    // the estimate: 22 ms of propagation both ways plus serialisation and
    // the broker's processing; twice that with Nagle's algorithm, so about
    // 2,000/s × 44.1 ms ≈ 88.3 messages in flight
    let rtt: f64 = between(w, "a round trip of at least ", " ms");
    assert!((22.0..23.0).contains(&rtt), "round trip {rtt} ms: {w}");
    let nagle: f64 = between(w, "the broker's processing), ", " ms with Nagle");
    assert!(
        (44.0..45.0).contains(&nagle),
        "round trip with Nagle {nagle} ms: {w}"
    );
    let about: f64 = between(w, "expect about ", " % delivered");
    assert!((20.0..26.0).contains(&about), "estimate {about} %: {w}");
    let bound: f64 = between(w, "(at most ", " %)");
    assert!((40.0..50.0).contains(&bound), "bound {bound} %: {w}");
    let raise: u32 = between(w, "Raise max_inflight to at least ", ",");
    assert_eq!(raise, 133, "suggested window (1.5 × 88.3): {w}");

    let (code, _, err) = run(&["check", p.to_str().expect("utf-8"), "--deny-warnings"]);
    assert_eq!(code, 2, "--deny-warnings: {err}");

    // the run prints the same warning and shows the drop it announces
    let (w_run, dropped, ratio) = run_it(&p, "window-warn-run");
    assert_eq!(w_run.len(), 1, "run's warnings: {w_run:?}");
    assert!(dropped > 1000.0, "dropped_queue_full {dropped}");
    assert!(
        ratio * 100.0 <= bound + 5.0 && (ratio * 100.0 - about).abs() <= 10.0,
        "delivered {:.1} % but the warning said about {about} %, at most {bound} %",
        ratio * 100.0
    );

    // the suggested window carries the load: no warning, nothing dropped
    let (p, _) = scenario("window-raised", "qos1", raise);
    let (w_run, dropped, ratio) = run_it(&p, "window-raised-run");
    assert!(w_run.is_empty(), "{w_run:?}");
    assert_eq!(dropped, 0.0, "dropped with max_inflight = {raise}");
    assert!(
        ratio > 0.99,
        "delivery ratio {ratio} with max_inflight = {raise}"
    );
}

#[test]
fn qos0_and_a_window_just_large_enough_do_not_warn() {
    let (p, _) = scenario("window-qos0", "qos0", 20);
    let (w_run, dropped, _) = run_it(&p, "window-qos0-run");
    assert!(w_run.is_empty(), "{w_run:?}");
    assert_eq!(dropped, 0.0, "QoS 0 dropped at the broker's queue");
    // the threshold: 1.25 × 88.3 ≈ 110.4; a window of 90, above the
    // estimate but without room for bursts, warns, and drops
    let (p, _) = scenario("window-90", "qos1", 90);
    let (_, _, err) = run(&["check", p.to_str().expect("utf-8")]);
    let w = window_warnings(&err);
    assert_eq!(w.len(), 1, "{err}");
    assert!(w[0].contains("expect drops in bursts"), "{}", w[0]);
    let (_, dropped, _) = run_it(&p, "window-90-run");
    assert!(dropped > 0.0, "a window of 90 dropped nothing");
    let (p, _) = scenario("window-110", "qos1", 110);
    let (_, _, err) = run(&["check", p.to_str().expect("utf-8")]);
    assert_eq!(window_warnings(&err).len(), 1, "110 < 110.4: {err}");
    let (p, _) = scenario("window-111", "qos1", 111);
    let (_, _, err) = run(&["check", p.to_str().expect("utf-8")]);
    assert!(window_warnings(&err).is_empty(), "111 > 110.4: {err}");
}

#[test]
fn a_connect_storm_the_broker_cannot_absorb_warns_and_clients_reconnect() {
    // 2,001 clients (2,000 publishers and the collector) first connect
    // within 1 s; 2 ms of broker stack time per packet received is 6 ms
    // per connect (SYN, ACK, CONNECT), 12 s of work, so the last would
    // wait 11 s, beyond connect_timeout (5 s). One QoS 0 reading per
    // minute keeps the publishing load small.
    let long = |p: &Path| {
        let t = std::fs::read_to_string(p).expect("read");
        std::fs::write(p, t.replace("duration = \"12 s\"", "duration = \"40 s\"")).expect("write");
    };
    let (p, _) = scenario_with("storm", "qos0", 20, "60 s", "1 s", "stack_rx = \"2 ms\"");
    long(&p);
    let line = line_of(&p, "connect_spread = ");
    let (code, _, err) = run(&["check", p.to_str().expect("utf-8")]);
    assert_eq!(code, 0, "{err}");
    let w = storm_warnings(&err);
    assert_eq!(w.len(), 1, "{err}");
    let w = &w[0];
    assert!(
        w.contains(&format!("window.toml:{line}:")),
        "not at connect_spread: {w}"
    );
    for part in [
        "2001 MQTT clients first connect within protocols.mqtt.connect_spread = 1 s",
        "broker broker needs about 12.0 s",
        "(6000 µs each",
        "the last would wait about 11.0 s, longer than connect_timeout 5 s",
        "connect_spread = \"25 s\" or more",
    ] {
        assert!(w.contains(part), "missing {part:?}: {w}");
    }
    let (code, _, err) = run(&["check", p.to_str().expect("utf-8"), "--deny-warnings"]);
    assert_eq!(code, 2, "--deny-warnings: {err}");
    let (err, out) = run_out(&p, "storm-run");
    assert_eq!(storm_warnings(&err).len(), 1, "{err}");
    let (clients, connects) = (
        mqtt_value(&out, "flow", "clients"),
        mqtt_value(&out, "flow", "connects"),
    );
    assert_eq!(clients, 2001.0);
    assert!(
        connects < clients / 2.0,
        "{connects} of {clients} clients connected: no storm?"
    );

    // spread as the warning says: no warning, one connect per client
    let (p, _) = scenario_with(
        "storm-spread",
        "qos0",
        20,
        "60 s",
        "25 s",
        "stack_rx = \"2 ms\"",
    );
    long(&p);
    let (err, out) = run_out(&p, "storm-spread-run");
    assert!(storm_warnings(&err).is_empty(), "{err}");
    let (clients, connects) = (
        mqtt_value(&out, "flow", "clients"),
        mqtt_value(&out, "flow", "connects"),
    );
    assert_eq!(connects, clients, "clients reconnected although spread");
    // and the default stack time (3 × 11 µs, 0.07 s of work) is no storm
    let (p, _) = scenario_with(
        "storm-default",
        "qos0",
        20,
        "60 s",
        "1 s",
        "service = \"35 us\"",
    );
    let (_, _, err) = run(&["check", p.to_str().expect("utf-8")]);
    assert!(storm_warnings(&err).is_empty(), "{err}");
}

/// No shipped scenario draws either warning: the fan-in benchmark's 1,000
/// messages/s over 4 ms keep about 8 of its 20 slots busy, and its 10,000
/// clients connect over 60 s.
#[test]
fn shipped_scenarios_are_quiet() {
    let files = common::shipped_scenarios();
    assert!(files.len() > 30, "{files:?}");
    for f in &files {
        let (_, _, err) = run(&["check", f.to_str().expect("utf-8")]);
        let (w, s) = (window_warnings(&err), storm_warnings(&err));
        assert!(w.is_empty() && s.is_empty(), "{}: {w:?} {s:?}", f.display());
    }
}

/// The number in `s` between `before` and the next `after`.
fn between<T: std::str::FromStr>(s: &str, before: &str, after: &str) -> T {
    let from = s
        .find(before)
        .unwrap_or_else(|| panic!("no {before:?} in {s}"))
        + before.len();
    let to = from
        + s[from..]
            .find(after)
            .unwrap_or_else(|| panic!("no {after:?} in {s}"));
    s[from..to]
        .parse()
        .unwrap_or_else(|_| panic!("{:?} is not a number: {s}", &s[from..to]))
}

/// The saturation warnings among `qossim check`'s stderr lines.
fn saturation_warnings(err: &str) -> Vec<String> {
    err.lines()
        .filter(|l| l.contains("warning:") && l.contains("of the time. Past saturation"))
        .map(str::to_string)
        .collect()
}

#[test]
fn a_saturated_broker_warns_and_its_queue_grows() {
    // 2,000 QoS 0 readings/s against 1 ms of service per PUBLISH: ρ = 2
    let (p, _) = scenario_with("sat", "qos0", 20, "1 s", "2 s", "service = \"1 ms\"");
    let line = line_of(&p, "processing = ");
    let (code, _, err) = run(&["check", p.to_str().expect("utf-8")]);
    assert_eq!(code, 0, "{err}");
    let w = saturation_warnings(&err);
    assert_eq!(w.len(), 1, "{err}");
    let w = &w[0];
    assert!(
        w.contains(&format!("window.toml:{line}:")),
        "not at the broker's processing: {w}"
    );
    for part in [
        "broker broker is offered about 2000 PUBLISH/s and sends about 2000 copies/s (flows telemetry)",
        "its application server (service 1 ms per PUBLISH in",
        "busy 200 % of the time",
        "at most about 50 % delivered",
    ] {
        assert!(w.contains(part), "missing {part:?}: {w}");
    }
    // the run: the server works all the time from the first readings on,
    // and readings wait seconds for it
    let (err, out) = run_out(&p, "sat-run");
    assert_eq!(saturation_warnings(&err).len(), 1, "{err}");
    let nodes = read_csv(&out.join("nodes.csv"));
    let broker = nodes
        .iter()
        .find(|r| r["node"] == "broker")
        .expect("broker");
    let busy: f64 = broker["proc_busy_ms"].parse().expect("busy");
    let wait: f64 = broker["proc_wait_ms_mean"].parse().expect("wait");
    assert!(busy > 9_000.0, "busy {busy} ms of 10 s of publishing");
    assert!(wait > 1_000.0, "mean wait {wait} ms: no queue?");
    let ratio = num(&run_row(&out, "telemetry"), "delivery_ratio");
    assert!(ratio < 0.8, "{ratio} delivered past saturation");

    // a stack side: 2 ms per packet received
    let (p, _) = scenario_with("sat-rx", "qos0", 20, "1 s", "2 s", "stack_rx = \"2 ms\"");
    let (_, _, err) = run(&["check", p.to_str().expect("utf-8")]);
    let w = saturation_warnings(&err);
    assert_eq!(w.len(), 1, "{err}");
    assert!(
        w[0].contains("its stack's receive side (stack_rx 2 ms per packet, at least 2000 packets/s in; stack_queue 1000)")
            && w[0].contains("busy 400 % of the time"),
        "{}",
        w[0]
    );

    // 35 µs per PUBLISH: ρ = 0.07, no warning
    let (p, _) = scenario("sat-ok", "qos0", 20);
    let (_, _, err) = run(&["check", p.to_str().expect("utf-8")]);
    assert!(saturation_warnings(&err).is_empty(), "{err}");
}
