//! MQTT-SN through the simulator: the plug-in `src/world/apps/mqttsn.rs`
//! driving the `proto::mqttsn` cores over simulated links, run through the
//! same loader and run path as the CLI (`common::sim`) and read back from
//! the CSVs, the pcaps and tshark.
//!
//! * closed forms of QoS −1/0/1 over a lossy link (20 000 messages each);
//! * QoS 2 end to end through a lossy access and a backhaul break;
//! * discovery by SEARCHGW and failover to a second gateway;
//! * sleeping clients: buffering, buffer overflow, the will of one that
//!   never wakes;
//! * end to end in each gateway mode, MQTT connections per mode;
//! * determinism (single runs and a sweep with `--jobs`), packets.csv
//!   kinds, pcap decoding in tshark.
//!
//! Statistical checks use fixed seeds and state their tolerance (3
//! standard errors). Run in release:
//! `cargo test --release --test mqttsn_sim`.

mod common;
use common::sim::{load, num, read_csv, run_row, run_text};
use common::{temp_dir, tshark};
use qossim::run::{run_scenario, RunOptions};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Run `text` without packets.csv and pcaps (the statistical runs write
/// ~100 000 packets each).
fn run_lean(tag: &str, text: &str, overrides: &[&str]) -> PathBuf {
    let sc = load(text, overrides);
    let dir = temp_dir(tag);
    run_scenario(
        &sc,
        &RunOptions {
            check: false,
            out_dir: dir.clone(),
            ..Default::default()
        },
    )
    .unwrap_or_else(|e| panic!("run: {e}"));
    dir
}

/// A value of mqttsn.csv (0 when the row is absent: per-type counters are
/// only written when non-zero).
fn sn(dir: &Path, scope: &str, name: &str, metric: &str) -> f64 {
    read_csv(&dir.join("mqttsn.csv"))
        .into_iter()
        .find(|r| r["scope"] == scope && r["name"] == name && r["metric"] == metric)
        .map_or(0.0, |r| r["value"].parse().expect("number"))
}

/// |observed − expected| ≤ 3·se; prints the comparison (the table in the
/// report is made of these lines).
fn within_3se(observed: f64, expected: f64, se: f64, what: &str) {
    eprintln!(
        "{what}: simulated {observed:.5}, closed form {expected:.5}, se {se:.5}, z {:+.2}",
        (observed - expected) / se
    );
    assert!(
        (observed - expected).abs() <= 3.0 * se,
        "{what}: simulated {observed:.5}, closed form {expected:.5} ± 3·{se:.5}"
    );
}

fn se_proportion(q: f64, n: f64) -> f64 {
    (q * (1.0 - q) / n).sqrt()
}

// ---------------------------------------------------------------------------
// 1. Closed forms
// ---------------------------------------------------------------------------

/// Publishers in parallel: PUBLISHERS × PER_PUBLISHER = 20 000 messages.
const PUBLISHERS: u32 = 100;
const PER_PUBLISHER: u32 = 200;

/// 100 sensors `s1`…`s100`, each on its own wired link to the gateway with
/// Bernoulli loss `p` in each direction (independent per packet), publish
/// 8-byte messages every 500 ms to one predefined topic (no REGISTER) at
/// `reliability`; the gateway aggregates them onto one lossless MQTT
/// connection, and `dash`, an MQTT subscriber on a lossless link, takes
/// every message from the broker. Static discovery (no SEARCHGW over the
/// lossy link), keep alive off (no PINGREQ), T_RETRY = 100 ms, so every
/// message's exchange (at most (N + 1)·T_RETRY = 400 ms for N ≤ 3) ends
/// before the next is published. After a give-up the client loses the
/// gateway and CONNECTs again over the lossy link; the next message waits
/// in its queue meanwhile (never full), so every message still starts its
/// own exchange with a connected client. Flows start at 5 s, after every
/// client has connected and the subscriber has subscribed; the drain
/// (60 s) is far longer than any message's exchange.
fn closed_form_scenario(p: f64, n_retry: u32, reliability: &str) -> String {
    format!(
        r#"name = "sn-closed-form"
seed = 7
duration = "110 s"
drain = "60 s"

[[nodes]]
name = "gw"
role = "gateway"

[[nodes]]
name = "broker"
role = "broker"

[[nodes]]
name = "dash"
role = "client"

[[groups]]
name = "s{{i}}"
count = {PUBLISHERS}
role = "client"
link = {{ to = "gw", delay = "1 ms", loss = {{ model = "bernoulli", p = {p:?} }} }}

[[links]]
a = "gw"
b = "broker"

[[links]]
a = "dash"
b = "broker"

[[flows]]
name = "f"
pattern = "fan_in"
protocol = "mqttsn"
reliability = "{reliability}"
subscribe_with = "mqtt"
publishers = ["s*"]
receivers = ["dash"]
topic = "cf/t"
payload_bytes = 8
interval = "500 ms"
start = "5 s"
count = {PER_PUBLISHER}

[protocols.mqtt]
keep_alive = "0 s"

[protocols.mqttsn]
discovery = "static"
t_adv = "1 h"
t_retry = "100 ms"
n_retry = {n_retry}
keep_alive = "0 s"
topic_id_type = "predefined"
predefined = {{ "cf/t" = 1 }}
"#
    )
}

/// QoS 1 with loss p each way and N = n_retry retransmissions, q = 1 −
/// (1 − p)² (an attempt fails when its PUBLISH or its PUBACK is lost):
/// * the gateway receives a message with 1 − p^(N+1) (read as deliveries
///   at the lossless MQTT subscriber: the gateway forwards every PUBLISH it
///   receives upstream over reliable TCP);
/// * the publisher gets its PUBACK with 1 − q^(N+1) (publishes given up,
///   flow scope of mqttsn.csv, and runs.csv `give_ups`);
/// * the PUBLISH is transmitted Σ_{k=0..N} q^k times on average
///   (packets_sent_publish / publishes_sent; variance from
///   E[T²] = Σ (2k+1) q^k).
///
/// Each within 3 standard errors over 20 000 messages (seed 7).
#[test]
fn qos1_matches_its_closed_forms() {
    for (p, n) in [(0.2, 3u32), (0.2, 1), (0.4, 3), (0.4, 1)] {
        let dir = run_lean("sn-cf-q1", &closed_form_scenario(p, n, "qos1"), &[]);
        let row = run_row(&dir, "f");
        let sent = num(&row, "sent");
        assert_eq!(sent, f64::from(PUBLISHERS * PER_PUBLISHER));
        assert_eq!(num(&row, "mqttsn_client_drops"), 0.0, "queue never full");
        assert_eq!(num(&row, "late_deliveries"), 0.0);
        assert_eq!(sn(&dir, "flow", "f", "publishes_sent"), sent);
        let tag = format!("QoS 1, p = {p}, N = {n}");
        let tries = f64::from(n + 1);
        let q = 1.0 - (1.0 - p) * (1.0 - p);

        let received = 1.0 - p.powf(tries);
        within_3se(
            num(&row, "delivered") / sent,
            received,
            se_proportion(received, sent),
            &format!("{tag}: gateway receives"),
        );
        // every PUBLISH the gateway takes (duplicates included) goes upstream once
        assert_eq!(
            sn(&dir, "gateway", "gw", "publishes_received"),
            num(&row, "delivered") + num(&row, "duplicates"),
            "{tag}: gateway receipts = first copies + duplicates at the subscriber"
        );

        let given_up = sn(&dir, "flow", "f", "publishes_given_up");
        assert_eq!(num(&row, "give_ups"), given_up, "{tag}: runs.csv give_ups");
        let acked = 1.0 - q.powf(tries);
        within_3se(
            1.0 - given_up / sent,
            acked,
            se_proportion(acked, sent),
            &format!("{tag}: publisher gets PUBACK"),
        );

        let tx = sn(&dir, "flow", "f", "packets_sent_publish");
        let mean: f64 = (0..=n).map(|k| q.powi(k as i32)).sum();
        let second: f64 = (0..=n)
            .map(|k| f64::from(2 * k + 1) * q.powi(k as i32))
            .sum();
        let se = ((second - mean * mean) / sent).sqrt();
        within_3se(
            tx / sent,
            mean,
            se,
            &format!("{tag}: PUBLISH transmissions per message"),
        );
        // the PUBLISH retransmissions are the flow's retransmissions (CONNECT
        // retries after a give-up add to them, never subtract)
        assert!(num(&row, "retransmissions") >= tx - sent, "{tag}");
    }
}

/// QoS 0 (after a CONNECT) and QoS −1 (no connection, §6.8) are sent once:
/// delivered with 1 − p, within 3 standard errors over 20 000 messages.
#[test]
fn qos0_and_qos_minus1_deliver_1_minus_p() {
    for p in [0.2, 0.4] {
        for reliability in ["qos0", "qos_minus1"] {
            let dir = run_lean("sn-cf-q0", &closed_form_scenario(p, 3, reliability), &[]);
            let row = run_row(&dir, "f");
            let sent = num(&row, "sent");
            assert_eq!(sent, f64::from(PUBLISHERS * PER_PUBLISHER));
            let tag = format!("{reliability}, p = {p}");
            within_3se(
                num(&row, "delivered") / sent,
                1.0 - p,
                se_proportion(1.0 - p, sent),
                &format!("{tag}: delivery"),
            );
            assert_eq!(num(&row, "duplicates"), 0.0, "{tag}");
            if reliability == "qos_minus1" {
                assert_eq!(num(&row, "retransmissions"), 0.0, "{tag}: nothing resent");
            }
            assert_eq!(
                sn(&dir, "flow", "f", "packets_sent_publish"),
                sent,
                "{tag}: one PUBLISH per message"
            );
            assert_eq!(
                sn(&dir, "flow", "f", "publishes_sent"),
                sent,
                "{tag}: every publish counted, QoS −1 included"
            );
            let connects = sn(&dir, "flow", "f", "packets_sent_connect");
            if reliability == "qos_minus1" {
                assert_eq!(connects, 0.0, "{tag}: QoS −1 never connects");
            } else {
                assert!(connects >= f64::from(PUBLISHERS), "{tag}");
            }
        }
    }
}

// ---------------------------------------------------------------------------
// 2. QoS 2 end to end through a lossy access and a backhaul break
// ---------------------------------------------------------------------------

/// Ten MQTT-SN publishers (`p*`, QoS 2) and ten MQTT-SN subscribers
/// (`r*`), and ten more of each at QoS 1 (`x*` → `y*`), every one on its
/// own access link to the aggregating gateway with 20 % loss each way;
/// T_RETRY = 1 s, N_RETRY = 5. The gateway–broker link goes down at
/// 100 s for 60 s: with MQTT keep alive 10 s the gateway's MQTT client
/// misses its PINGRESP, drops the connection and reconnects (persistent
/// session) once the link is back; the broker, meanwhile, drops its side
/// by keep-alive timeout.
const QOS2_BREAK: &str = r#"name = "sn-qos2-break"
seed = 3
duration = "300 s"
drain = "200 s"

[[nodes]]
name = "gw"
role = "gateway"

[[nodes]]
name = "broker"
role = "broker"

[[groups]]
name = "p{i}"
count = 10
role = "client"
link = { to = "gw", delay = "5 ms", loss = { model = "bernoulli", p = 0.2 } }

[[groups]]
name = "r{i}"
count = 10
role = "client"
link = { to = "gw", delay = "5 ms", loss = { model = "bernoulli", p = 0.2 } }

[[groups]]
name = "x{i}"
count = 10
role = "client"
link = { to = "gw", delay = "5 ms", loss = { model = "bernoulli", p = 0.2 } }

[[groups]]
name = "y{i}"
count = 10
role = "client"
link = { to = "gw", delay = "5 ms", loss = { model = "bernoulli", p = 0.2 } }

[[links]]
name = "backhaul"
a = "gw"
b = "broker"
delay = "2 ms"

[[flows]]
name = "q2"
pattern = "point_to_point"
protocol = "mqttsn"
reliability = "qos2"
publishers = ["p*"]
receivers = ["r*"]
topic = "q2/{i}"
payload_bytes = 12
interval = "3 s"
start = "20 s"

[[flows]]
name = "q1"
pattern = "point_to_point"
protocol = "mqttsn"
reliability = "qos1"
publishers = ["x*"]
receivers = ["y*"]
topic = "q1/{i}"
payload_bytes = 12
interval = "3 s"
start = "20 s"

[protocols.mqtt]
keep_alive = "10 s"

[protocols.mqttsn]
t_searchgw = "1 s"
t_retry = "1 s"
n_retry = 5
keep_alive = "60 s"

[[events]]
at = "100 s"
action = "link_down"
link = "backhaul"

[[events]]
at = "160 s"
action = "link_up"
link = "backhaul"
"#;

/// QoS 2 through the gateway: no duplicate and ≥ 99 % delivered despite
/// the loss and the break (messages published during the break wait in the
/// gateway's MQTT client and go out after the reconnection); QoS 1 in the
/// same run delivers too, with duplicates (lost PUBACKs). The aggregating
/// connection must come back after the break: at least one message
/// published during the break is delivered.
#[test]
fn qos2_through_a_lossy_access_and_a_backhaul_break_is_exactly_once() {
    let dir = run_lean("sn-qos2-break", QOS2_BREAK, &[]);
    let q2 = run_row(&dir, "q2");
    let q1 = run_row(&dir, "q1");
    assert!(num(&q2, "sent") > 900.0);
    assert_eq!(num(&q2, "duplicates"), 0.0, "QoS 2: exactly once");
    assert!(
        num(&q2, "delivery_ratio") >= 0.99,
        "QoS 2 delivery {}",
        num(&q2, "delivery_ratio")
    );
    assert!(
        num(&q1, "duplicates") > 0.0,
        "QoS 1: lost PUBACKs duplicate"
    );
    assert!(
        num(&q1, "delivery_ratio") >= 0.99,
        "QoS 1 delivery {}",
        num(&q1, "delivery_ratio")
    );
    // the loss was real: PUBLISHes and PUBRELs were retransmitted
    assert!(num(&q2, "retransmissions") > 100.0);
    // messages sent during the break got through after it
    let during = read_csv(&dir.join("messages.csv"))
        .into_iter()
        .filter(|m| m["flow"] == "q2")
        .filter(|m| {
            let t: f64 = m["sent_at_ms"].parse().expect("sent_at_ms");
            (105_000.0..155_000.0).contains(&t)
        })
        .collect::<Vec<_>>();
    assert!(during.len() > 100, "{}", during.len());
    assert!(
        during.iter().all(|m| !m["delivered_at_ms"].is_empty()),
        "every QoS 2 message sent during the break is delivered after it"
    );
    // one MQTT client object, reconnected (more than one TCP connection)
    assert_eq!(sn(&dir, "gateway", "gw", "upstream_opened"), 1.0);
    assert!(num(&q2, "mqttsn_gateway_connections") >= 2.0);
}

// ---------------------------------------------------------------------------
// 3. Discovery and failover
// ---------------------------------------------------------------------------

/// `[[events]]` that cut `nodes` off at 0 s and heal at 1 ms: the
/// gateways' ADVERTISE at start-up (their only one: T_ADV = 1 h) is lost,
/// so clients must search. Clients connect at a uniform time in [0, 1 s).
fn hide_first_advertise(nodes: &str) -> String {
    format!(
        "\n[[events]]\nat = \"0 s\"\naction = \"partition\"\nnodes = [\"{nodes}\"]\n\n[[events]]\nat = \"1 ms\"\naction = \"heal\"\n"
    )
}

/// Twenty islands: client `s<i>` alone on a 5 ms link with gateway
/// `g<i>` (so no client hears another's SEARCHGW or GWINFO), T_SEARCHGW =
/// 4 s, T_GWINFO = 2 s.
fn islands(n: u32) -> String {
    let mut t = format!(
        r#"name = "sn-discovery"
seed = 5
duration = "30 s"
drain = "10 s"

[[nodes]]
name = "broker"
role = "broker"

[[nodes]]
name = "dash"
role = "client"

[[links]]
a = "dash"
b = "broker"

[[groups]]
name = "g{{i}}"
count = {n}
role = "gateway"
link = {{ to = "broker" }}

[[groups]]
name = "s{{i}}"
count = {n}
role = "client"

[[flows]]
name = "f"
pattern = "fan_in"
protocol = "mqttsn"
reliability = "qos1"
subscribe_with = "mqtt"
publishers = ["s*"]
receivers = ["dash"]
topic = "d/{{i}}"
payload_bytes = 8
interval = "5 s"
start = "15 s"

[protocols.mqttsn]
t_adv = "1 h"
t_searchgw = "4 s"
t_gwinfo = "2 s"
"#
    );
    for i in 1..=n {
        t.push_str(&format!(
            "\n[[links]]\na = \"s{i}\"\nb = \"g{i}\"\ndelay = \"5 ms\"\n"
        ));
    }
    t + &hide_first_advertise("s*")
}

/// SEARCHGW finds the gateway: it is sent after a uniform delay in
/// [0, T_SEARCHGW] and answered at once, so each client's discovery time
/// is U·T_SEARCHGW + RTT (RTT = 10 ms here), within
/// T_SEARCHGW + T_GWINFO + RTT; the mean over the 20 clients (`mqttsn_discovery_ms_mean`) must
/// be T_SEARCHGW/2 + RTT within 3 standard errors (se = T/√(12·20)).
/// Per client (packets.csv): one SEARCHGW, answered by a GWINFO one RTT
/// later, all before connect_spread + T_SEARCHGW + T_GWINFO + RTT.
#[test]
fn searchgw_finds_a_silent_gateway_within_t_searchgw_plus_one_rtt() {
    const N: u32 = 20;
    let (t_search, t_gwinfo, rtt) = (4000.0, 2000.0, 10.0);
    let dir = run_text("sn-discovery", &islands(N), &[]);
    let row = run_row(&dir, "f");
    assert_eq!(num(&row, "delivery_ratio"), 1.0);
    assert_eq!(sn(&dir, "flow", "f", "searches_sent"), f64::from(N));
    let mean = num(&row, "mqttsn_discovery_ms_mean");
    assert!(mean <= t_search + t_gwinfo + rtt, "{mean}");
    within_3se(
        mean,
        t_search / 2.0 + rtt,
        t_search / (12.0 * f64::from(N)).sqrt(),
        "discovery time (ms), mean over 20 clients",
    );
    let packets = read_csv(&dir.join("packets.csv"));
    let t = |r: &BTreeMap<String, String>| r["time_ms"].parse::<f64>().expect("time");
    for i in 1..=N {
        let (s, g) = (format!("s{i}"), format!("g{i}"));
        let link = format!("{s}--{g}");
        let adv: Vec<_> = packets
            .iter()
            .filter(|r| r["link"] == link && r["kind"] == "mqttsn_advertise")
            .collect();
        assert!(
            adv.iter().all(|r| r["outcome"] != "delivered"),
            "{s}: the ADVERTISE must not arrive"
        );
        let search: Vec<f64> = packets
            .iter()
            .filter(|r| r["link"] == link && r["kind"] == "mqttsn_searchgw")
            .map(t)
            .collect();
        assert_eq!(search.len(), 1, "{s}: one SEARCHGW");
        let gwinfo = packets
            .iter()
            .find(|r| r["link"] == link && r["kind"] == "mqttsn_gwinfo" && r["to"] == s)
            .map(t)
            .unwrap_or_else(|| panic!("{s}: no GWINFO"));
        // packets.csv times are transmission starts: the answer leaves as
        // the SEARCHGW arrives (one-way 5 ms)
        assert!(
            gwinfo >= search[0] && gwinfo - search[0] <= rtt / 2.0 + 1.0,
            "{s}: SEARCHGW at {} ms, GWINFO at {gwinfo} ms",
            search[0]
        );
        assert!(gwinfo + rtt / 2.0 <= 1000.0 + t_search + t_gwinfo + rtt);
    }
}

/// Client `c` knows two gateways (both answered its SEARCHGW with GWINFO)
/// and publishes QoS 1 every second through the first; `g1` crashes at
/// 40.5 s (no restart). The next PUBLISH goes unanswered, the client gives
/// up after N_RETRY retransmissions, loses g1, CONNECTs to g2 and
/// publishes again: the first delivery after the crash comes within
/// keep_alive + T_RETRY·(N_RETRY + 1) + T_SEARCHGW + RTT (that is,
/// 10 + 2·3 + 2 + 0.01 s) of it, and every later message arrives.
#[test]
fn a_client_fails_over_to_the_second_gateway() {
    let text = r#"name = "sn-failover"
seed = 2
duration = "120 s"
drain = "30 s"

[[nodes]]
name = "broker"
role = "broker"

[[nodes]]
name = "dash"
role = "client"

[[nodes]]
name = "g1"
role = "gateway"

[[nodes]]
name = "g2"
role = "gateway"

[[nodes]]
name = "c"
role = "client"

[[links]]
a = "dash"
b = "broker"

[[links]]
a = "g1"
b = "broker"

[[links]]
a = "g2"
b = "broker"

[[links]]
a = "c"
b = "g1"
delay = "5 ms"

[[links]]
a = "c"
b = "g2"
delay = "5 ms"

[[flows]]
name = "f"
pattern = "fan_in"
protocol = "mqttsn"
reliability = "qos1"
subscribe_with = "mqtt"
publishers = ["c"]
receivers = ["dash"]
topic = "fo/t"
payload_bytes = 8
interval = "1 s"
start = "10 s"

[protocols.mqttsn]
t_adv = "1 h"
t_searchgw = "2 s"
t_retry = "2 s"
n_retry = 2
keep_alive = "10 s"

[[events]]
at = "40.5 s"
action = "node_crash"
node = "g1"
"#
    .to_string()
        + &hide_first_advertise("c");
    let crash = 40_500.0;
    let bound = 10_000.0 + 2_000.0 * 3.0 + 2_000.0 + 10.0;
    let dir = run_lean("sn-failover", &text, &[]);
    assert_eq!(sn(&dir, "flow", "f", "searches_sent"), 1.0);
    assert_eq!(sn(&dir, "flow", "f", "gateways_lost"), 1.0);
    assert_eq!(sn(&dir, "gateway", "g1", "restarts"), 1.0);
    assert_eq!(
        sn(&dir, "gateway", "g2", "connects"),
        1.0,
        "failed over to g2"
    );
    let msgs: Vec<(f64, Option<f64>)> = read_csv(&dir.join("messages.csv"))
        .into_iter()
        .map(|m| {
            (
                m["sent_at_ms"].parse().expect("sent"),
                m["delivered_at_ms"].parse().ok(),
            )
        })
        .collect();
    // through g1 before the crash
    assert!(msgs
        .iter()
        .any(|&(s, d)| s < crash && d.is_some_and(|d| d < crash)));
    let first_after = msgs
        .iter()
        .filter_map(|&(_, d)| d.filter(|&d| d > crash))
        .fold(f64::INFINITY, f64::min);
    assert!(
        first_after - crash <= bound,
        "first delivery {:.0} ms after the crash, bound {bound} ms",
        first_after - crash
    );
    assert!(
        msgs.iter()
            .filter(|&&(s, _)| s > crash + bound)
            .all(|&(_, d)| d.is_some()),
        "every message after the failover is delivered"
    );
    // only the message in flight at the crash is lost
    let lost = msgs.iter().filter(|&&(_, d)| d.is_none()).count();
    assert!((1..=2).contains(&lost), "{lost} lost");
}

// ---------------------------------------------------------------------------
// 4. Sleeping clients
// ---------------------------------------------------------------------------

/// `ctl` publishes ten QoS 1 commands to `v1` at 10, 11, …, 19 s; `v1`
/// sleeps from 5 s (DISCONNECT with Duration 30 s) and wakes at ≈ 35 s.
/// `v2` sleeps too and crashes at 8 s while asleep: it never wakes, so the
/// gateway's sleep supervision (1.5 × 30 s of silence) ends its session
/// at ≈ 50 s and publishes its will (`will/v2`, "v-offline") to the
/// broker, where `dash`, an MQTT subscriber of `will/v2` (the flow
/// `wills`, one message from `wp` at 2 s), receives it. Lossless links.
const SLEEPING: &str = r#"name = "sn-sleep"
seed = 4
duration = "60 s"
drain = "60 s"

[[nodes]]
name = "broker"
role = "broker"

[[nodes]]
name = "gw"
role = "gateway"

[[nodes]]
name = "dash"
role = "client"

[[nodes]]
name = "wp"
role = "client"

[[nodes]]
name = "ctl"
role = "client"

[[nodes]]
name = "ctl2"
role = "client"

[[nodes]]
name = "v1"
role = "client"

[[nodes]]
name = "v2"
role = "client"

[[links]]
a = "gw"
b = "broker"

[[links]]
a = "dash"
b = "broker"

[[links]]
a = "wp"
b = "broker"

[[links]]
a = "ctl"
b = "gw"
delay = "5 ms"

[[links]]
a = "ctl2"
b = "gw"
delay = "5 ms"

[[links]]
a = "v1"
b = "gw"
delay = "5 ms"

[[links]]
a = "v2"
b = "gw"
delay = "5 ms"

[[flows]]
name = "cmd"
pattern = "point_to_point"
protocol = "mqttsn"
reliability = "qos1"
publishers = ["ctl"]
receivers = ["v1"]
topic = "cmd/v1"
payload_bytes = 10
interval = "1 s"
start = "10 s"
count = 10

[[flows]]
name = "cmd2"
pattern = "point_to_point"
protocol = "mqttsn"
reliability = "qos1"
publishers = ["ctl2"]
receivers = ["v2"]
topic = "cmd/v2"
payload_bytes = 10
interval = "1 s"
start = "2 s"
count = 1

[[flows]]
name = "wills"
pattern = "point_to_point"
protocol = "mqtt"
reliability = "qos1"
publishers = ["wp"]
receivers = ["dash"]
topic = "will/v2"
payload_bytes = 10
interval = "1 s"
start = "2 s"
count = 1

[protocols.mqttsn]
t_searchgw = "1 s"
keep_alive = "600 s"
will_topic = "will/{name}"
will_message = "v-offline"

[[events]]
at = "5 s"
action = "client_sleep"
node = "v1"
duration = "30 s"

[[events]]
at = "5 s"
action = "client_sleep"
node = "v2"
duration = "30 s"

[[events]]
at = "8 s"
action = "client_crash"
node = "v2"
"#;

/// The ten commands are buffered while `v1` sleeps and delivered at its
/// first wake-up, none lost (`gateway_buffer` = 20): buffered 10, drops 0.
/// With `gateway_buffer` = 4 the first 4 are buffered and delivered, the
/// other 6 dropped and counted (`mqttsn_gateway_drops` = 6). Either way
/// `v2`'s will reaches the MQTT subscriber ≈ 45 s after it fell asleep,
/// and only `v2` times out.
#[test]
fn a_sleeping_client_gets_its_buffer_and_a_dead_one_its_will() {
    for (buffer, kept) in [(20u32, 10usize), (4, 4)] {
        let set = format!("protocols.mqttsn.gateway_buffer={buffer}");
        let dir = run_text("sn-sleep", SLEEPING, &[&set]);
        let cmd = run_row(&dir, "cmd");
        assert_eq!(num(&cmd, "sent"), 10.0);
        assert_eq!(num(&cmd, "delivered"), kept as f64, "buffer {buffer}");
        assert_eq!(num(&cmd, "mqttsn_buffered_asleep"), kept as f64);
        assert_eq!(num(&cmd, "mqttsn_gateway_drops"), (10 - kept) as f64);
        assert_eq!(
            sn(&dir, "gateway", "gw", "dropped_asleep"),
            (10 - kept) as f64
        );
        // delivered at the wake-up (≈ 35 s), in order, none before it
        let got: Vec<(f64, f64)> = read_csv(&dir.join("messages.csv"))
            .into_iter()
            .filter(|m| m["flow"] == "cmd" && !m["delivered_at_ms"].is_empty())
            .map(|m| {
                (
                    m["sent_at_ms"].parse().expect("sent"),
                    m["delivered_at_ms"].parse().expect("delivered"),
                )
            })
            .collect();
        assert_eq!(got.len(), kept);
        assert!(
            got.iter().all(|&(_, d)| (35_000.0..36_000.0).contains(&d)),
            "buffer {buffer}: {got:?}"
        );
        assert!(got.windows(2).all(|w| w[0].1 < w[1].1), "in order");
        // the buffer keeps the oldest
        assert!(got
            .iter()
            .all(|&(s, _)| s < 10_000.0 + kept as f64 * 1000.0));

        // v2's will: one sleep timeout, one will, one extra PUBLISH to dash
        assert_eq!(sn(&dir, "gateway", "gw", "sleep_timeouts"), 1.0);
        assert_eq!(sn(&dir, "gateway", "gw", "wills_published"), 1.0);
        let to_dash: Vec<f64> = read_csv(&dir.join("packets.csv"))
            .into_iter()
            .filter(|r| r["to"] == "dash" && r["kind"] == "mqtt_publish")
            .map(|r| r["time_ms"].parse().expect("time"))
            .collect();
        assert_eq!(
            to_dash.len(),
            2,
            "the flow's message and the will: {to_dash:?}"
        );
        assert!(
            (49_000.0..51_000.0).contains(&to_dash[1]),
            "will at {} ms, expected 5 s + 1.5 × 30 s",
            to_dash[1]
        );
        if tshark::available("a_sleeping_client_gets_its_buffer_and_a_dead_one_its_will") {
            let out = tshark::run(
                &dir.join("pcap/dash--broker.pcap"),
                &[
                    "-Y",
                    "mqtt.msgtype == 3",
                    "-T",
                    "fields",
                    "-e",
                    "mqtt.topic",
                    "-e",
                    "mqtt.msg",
                ],
            );
            let lines = tshark::lines(&out);
            assert_eq!(lines.len(), 2, "{out}");
            let will = lines[1];
            assert!(will.starts_with("will/v2\t"), "{will}");
            // tshark prints the message as hex or text, by version
            assert!(
                will.contains("v-offline") || will.contains(&hex("v-offline")),
                "{will}"
            );
        }
    }
}

fn hex(s: &str) -> String {
    s.bytes().map(|b| format!("{b:02x}")).collect()
}

// ---------------------------------------------------------------------------
// 5. Each gateway mode end to end
// ---------------------------------------------------------------------------

/// Three MQTT-SN sensors `s1`–`s3` and three MQTT-SN actuators `a1`–`a3`
/// on 5 ms links to `gw` (2 % loss: QoS 1 repairs it). With an MQTT side
/// (`mqtt_side`): `up` (sensors → `dash`, an MQTT subscriber), `down`
/// (`mp`, an MQTT publisher → the actuators over MQTT-SN) and `sn` (sensor
/// i → actuator i, MQTT-SN both ends); integrated: `sn` only.
fn modes(mode: &str, mqtt_side: bool) -> String {
    let mut t = format!(
        r#"name = "sn-modes"
seed = 9
duration = "60 s"
drain = "60 s"

[[nodes]]
name = "gw"
role = "gateway"

[[groups]]
name = "s{{i}}"
count = 3
role = "client"
link = {{ to = "gw", delay = "5 ms", loss = {{ model = "bernoulli", p = 0.02 }} }}

[[groups]]
name = "a{{i}}"
count = 3
role = "client"
link = {{ to = "gw", delay = "5 ms", loss = {{ model = "bernoulli", p = 0.02 }} }}

[[flows]]
name = "sn"
pattern = "point_to_point"
protocol = "mqttsn"
reliability = "qos1"
publishers = ["s*"]
receivers = ["a*"]
topic = "sn/{{i}}"
payload_bytes = 12
interval = "2 s"
start = "10 s"

[protocols.mqttsn]
gateway_mode = "{mode}"
t_searchgw = "1 s"
t_retry = "2 s"
"#
    );
    if mqtt_side {
        t.push_str(
            r#"
[[nodes]]
name = "broker"
role = "broker"

[[nodes]]
name = "dash"
role = "client"

[[nodes]]
name = "mp"
role = "client"

[[links]]
a = "gw"
b = "broker"

[[links]]
a = "dash"
b = "broker"

[[links]]
a = "mp"
b = "broker"

[[flows]]
name = "up"
pattern = "fan_in"
protocol = "mqttsn"
reliability = "qos1"
subscribe_with = "mqtt"
publishers = ["s*"]
receivers = ["dash"]
topic = "up/{i}"
payload_bytes = 12
interval = "2 s"
start = "10 s"

[[flows]]
name = "down"
pattern = "broadcast"
protocol = "mqtt"
reliability = "qos1"
subscribe_with = "mqttsn"
publishers = ["mp"]
receivers = ["a*"]
topic = "down/all"
payload_bytes = 12
interval = "2 s"
start = "10 s"
"#,
        );
    }
    t
}

/// Every flow delivers everything in every mode (QoS 1 over 2 % loss; the
/// runs are long enough for the MQTT side to connect first). Aggregating:
/// exactly one MQTT connection for the six clients; transparent: one per
/// MQTT-SN client (six, none lost: no client lost its gateway);
/// integrated: none at all.
#[test]
fn each_gateway_mode_delivers_end_to_end() {
    for (mode, mqtt_side) in [
        ("aggregating", true),
        ("transparent", true),
        ("integrated", false),
    ] {
        let dir = run_lean("sn-modes", &modes(mode, mqtt_side), &[]);
        let flows: &[&str] = if mqtt_side {
            &["sn", "up", "down"]
        } else {
            &["sn"]
        };
        for flow in flows {
            let row = run_row(&dir, flow);
            assert!(num(&row, "sent") >= 25.0, "{mode}/{flow}");
            assert_eq!(num(&row, "delivery_ratio"), 1.0, "{mode}/{flow}");
        }
        assert_eq!(sn(&dir, "flow", "sn", "gateways_lost"), 0.0, "{mode}");
        let opened = sn(&dir, "gateway", "gw", "upstream_opened");
        let sn_row = run_row(&dir, "sn");
        match mode {
            "aggregating" => {
                assert_eq!(opened, 1.0, "{mode}: one shared MQTT connection");
                for flow in flows {
                    assert_eq!(
                        num(&run_row(&dir, flow), "mqttsn_gateway_connections"),
                        1.0,
                        "{mode}/{flow}"
                    );
                }
            }
            "transparent" => {
                assert_eq!(opened, 6.0, "{mode}: one MQTT connection per client");
                assert_eq!(num(&sn_row, "mqttsn_gateway_connections"), 6.0);
                // `up`: the sensors' three; `down`: the actuators' three
                assert_eq!(num(&run_row(&dir, "up"), "mqttsn_gateway_connections"), 3.0);
                assert_eq!(
                    num(&run_row(&dir, "down"), "mqttsn_gateway_connections"),
                    3.0
                );
            }
            _ => {
                assert_eq!(opened, 0.0, "{mode}: no MQTT side");
                assert_eq!(num(&sn_row, "mqttsn_gateway_connections"), 0.0);
                assert_eq!(num(&sn_row, "mqttsn_bytes_backhaul"), 0.0);
            }
        }
    }
}

// ---------------------------------------------------------------------------
// 6. Determinism
// ---------------------------------------------------------------------------

/// Every file under `dir` (relative paths, sorted) whose name ends in one
/// of `exts`.
fn files(dir: &Path, exts: &[&str]) -> Vec<PathBuf> {
    fn walk(root: &Path, dir: &Path, exts: &[&str], out: &mut Vec<PathBuf>) {
        for e in std::fs::read_dir(dir).expect("dir") {
            let p = e.expect("entry").path();
            if p.is_dir() {
                walk(root, &p, exts, out);
            } else if exts.iter().any(|x| p.to_string_lossy().ends_with(x)) {
                out.push(p.strip_prefix(root).expect("under root").to_path_buf());
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, dir, exts, &mut out);
    out.sort();
    out
}

fn assert_same_files(a: &Path, b: &Path, exts: &[&str]) -> usize {
    let (fa, fb) = (files(a, exts), files(b, exts));
    assert_eq!(fa, fb, "the same files");
    for f in &fa {
        let x = std::fs::read(a.join(f)).expect("read");
        let y = std::fs::read(b.join(f)).expect("read");
        assert!(x == y, "{} differs", f.display());
    }
    fa.len()
}

/// The QoS 2 break scenario (loss, retransmissions, searches, a
/// reconnection) run twice with the same seed gives byte-identical CSVs
/// and pcaps; another seed does not.
#[test]
fn same_scenario_and_seed_give_identical_outputs() {
    let a = run_text("sn-det-a", QOS2_BREAK, &[]);
    let b = run_text("sn-det-b", QOS2_BREAK, &[]);
    let n = assert_same_files(&a, &b, &[".csv", ".pcap"]);
    assert!(n >= 40 + 8, "{n} files: every CSV and one pcap per link");
    for f in [
        "mqttsn.csv",
        "packets.csv",
        "messages.csv",
        "pcap/p1--gw.pcap",
    ] {
        assert!(a.join(f).is_file(), "{f}");
    }
    let c = run_text("sn-det-c", QOS2_BREAK, &["seed=4"]);
    assert_ne!(
        std::fs::read(a.join("packets.csv")).expect("read"),
        std::fs::read(c.join("packets.csv")).expect("read"),
        "the seed matters"
    );
}

/// A sweep (gateway mode × 2 replications) gives the same files with
/// `--jobs 1` and `--jobs 2`, each run's mqttsn.csv included.
#[test]
fn a_sweep_is_identical_with_one_or_two_jobs() {
    let dir = temp_dir("sn-sweep-src");
    let file = dir.join("sweep.toml");
    let text = QOS2_BREAK.replace("duration = \"300 s\"", "duration = \"200 s\"")
        + "\n[sweep]\nreplications = 2\naxes = [{ path = \"protocols.mqttsn.gateway_mode\", values = [\"aggregating\", \"transparent\"] }]\n";
    std::fs::write(&file, text).expect("write");
    let (a, b) = (temp_dir("sn-sweep-j1"), temp_dir("sn-sweep-j2"));
    common::cli::sweep_ok(&file, &a, &["--jobs", "1"]);
    common::cli::sweep_ok(&file, &b, &["--jobs", "2"]);
    assert_same_files(&a, &b, &[".csv"]);
    let runs = read_csv(&a.join("runs.csv"));
    assert_eq!(runs.len(), 2 * 2 * 2, "2 modes × 2 replications × 2 flows");
    for id in 0..4 {
        assert!(a.join(format!("runs/{id}/mqttsn.csv")).is_file());
    }
    // the axis matters: transparent opens one connection per client
    let conns = |mode: &str| {
        runs.iter()
            .find(|r| r["protocols.mqttsn.gateway_mode"] == mode && r["flow"] == "q2")
            .map(|r| num(r, "mqttsn_gateway_connections"))
            .expect("row")
    };
    assert!(conns("transparent") > conns("aggregating"));
}

// ---------------------------------------------------------------------------
// 7. packets.csv kinds and pcaps in tshark
// ---------------------------------------------------------------------------

/// MQTT-SN message types by code (MQTT-SN 1.2 §5.2.2) and the kind
/// packets.csv gives them.
const TYPES: [(u8, &str); 17] = [
    (0x00, "mqttsn_advertise"),
    (0x01, "mqttsn_searchgw"),
    (0x02, "mqttsn_gwinfo"),
    (0x04, "mqttsn_connect"),
    (0x05, "mqttsn_connack"),
    (0x0a, "mqttsn_register"),
    (0x0b, "mqttsn_regack"),
    (0x0c, "mqttsn_publish"),
    (0x0d, "mqttsn_puback"),
    (0x0e, "mqttsn_pubcomp"),
    (0x0f, "mqttsn_pubrec"),
    (0x10, "mqttsn_pubrel"),
    (0x12, "mqttsn_subscribe"),
    (0x13, "mqttsn_suback"),
    (0x16, "mqttsn_pingreq"),
    (0x17, "mqttsn_pingresp"),
    (0x18, "mqttsn_disconnect"),
];

/// packets.csv labels every datagram on the access links with its MQTT-SN
/// type (`mqttsn_publish`, `mqttsn_puback`, …), and the exchanges of the
/// scenario all appear; tshark with `-d udp.port==1883,mqttsn` decodes
/// every frame of those links' pcaps as MQTT-SN, with the same type counts
/// as packets.csv and no malformed frame.
#[test]
fn packets_are_labelled_by_type_and_pcaps_decode_in_tshark() {
    let dir = run_text("sn-pcap", QOS2_BREAK, &[]);
    let packets = read_csv(&dir.join("packets.csv"));
    let mut kinds: BTreeMap<(String, String), usize> = BTreeMap::new();
    for r in &packets {
        // rows without a link: no route during the break (TCP to the broker)
        if r["link"].ends_with("--gw") {
            assert!(
                r["kind"].starts_with("mqttsn_"),
                "access link {}: kind {}",
                r["link"],
                r["kind"]
            );
            assert_eq!(r["protocol"], "mqttsn");
        }
        *kinds
            .entry((r["link"].clone(), r["kind"].clone()))
            .or_default() += 1;
    }
    let seen: std::collections::BTreeSet<&str> = kinds.keys().map(|(_, k)| k.as_str()).collect();
    for k in [
        "mqttsn_publish",
        "mqttsn_puback",
        "mqttsn_pubrec",
        "mqttsn_pubrel",
        "mqttsn_pubcomp",
        "mqttsn_connect",
        "mqttsn_connack",
        "mqttsn_register",
        "mqttsn_regack",
        "mqttsn_subscribe",
        "mqttsn_suback",
        "mqttsn_searchgw",
        "mqttsn_gwinfo",
        "mqttsn_advertise",
        "mqtt_publish",
    ] {
        assert!(seen.contains(k), "no {k} in packets.csv: {seen:?}");
    }
    let test = "packets_are_labelled_by_type_and_pcaps_decode_in_tshark";
    if !tshark::available(test) {
        return;
    }
    for link in ["p1--gw", "r1--gw", "x1--gw", "y1--gw"] {
        let pcap = dir.join(format!("pcap/{link}.pcap"));
        let decode = ["-d", "udp.port==1883,mqttsn"];
        let types = tshark::run(
            &pcap,
            &[&decode[..], &["-T", "fields", "-e", "mqttsn.msg.type"]].concat(),
        );
        let mut by_kind: BTreeMap<String, usize> = BTreeMap::new();
        for l in tshark::lines(&types) {
            let code = u8::from_str_radix(l.trim_start_matches("0x"), 16)
                .unwrap_or_else(|_| panic!("{link}: not an MQTT-SN frame: {l:?}"));
            let kind = TYPES
                .iter()
                .find(|(c, _)| *c == code)
                .unwrap_or_else(|| panic!("{link}: unexpected type {code:#04x}"))
                .1;
            *by_kind.entry(kind.to_string()).or_default() += 1;
        }
        let expected: BTreeMap<String, usize> = kinds
            .iter()
            .filter(|((l, _), _)| l == link)
            .map(|((_, k), n)| (k.clone(), *n))
            .collect();
        assert_eq!(by_kind, expected, "{link}: tshark types vs packets.csv");
        assert!(by_kind["mqttsn_publish"] > 0 || by_kind.contains_key("mqttsn_pubrel"));
        let malformed = tshark::run(
            &pcap,
            &[
                &decode[..],
                &["-Y", "_ws.malformed || _ws.expert.severity >= 6291456"],
            ]
            .concat(),
        );
        assert!(
            tshark::lines(&malformed).is_empty(),
            "{link}: malformed frames:\n{malformed}"
        );
    }
}
