//! CoAP Observe telemetry (`coap_mode = "observe"`, RFC 7641) through the
//! simulator: scenario loader, run path and runs.csv columns the CLI uses,
//! checked against closed forms. Run in release:
//! `cargo test --release --test coap_observe`.

mod common;
use common::sim::*;

/// `n` sensors `s-{i}`, each on its own point-to-point link to the
/// collector (Bernoulli loss `p` each way, 10 ms delay), publishing every
/// `interval` from `start` = 2 s; the collector observes each sensor's
/// resource. `extra` goes into `[protocols.coap]`.
fn observed(n: u32, p: f64, rel: &str, interval: &str, duration: &str, extra: &str) -> String {
    format!(
        r#"
name = "coap-observe-test"
duration = "{duration}"
drain = "60 s"
[[nodes]]
name = "collector"
role = "client"
[[groups]]
name = "s-{{i}}"
count = {n}
role = "server"
link = {{ to = "collector", rate = "1 Mbit/s", delay = "10 ms", loss = {{ model = "bernoulli", p = {p} }} }}
[[flows]]
name = "f"
pattern = "fan_in"
protocol = "coap"
coap_mode = "observe"
reliability = "{rel}"
publishers = ["s-*"]
receivers = ["collector"]
topic = "building/xyz/room/{{i}}/temperature"
payload_bytes = 8
interval = "{interval}"
start = "2 s"
[protocols.coap]
{extra}
"#
    )
}

/// NON observe: each reading is one NON notification, delivered with
/// probability 1 − p (p = 0.2). 20 sensors, one reading a second for
/// 500 s: n ≈ 9,960 readings, s.e. = √(0.16/n) = 0.004; within 3 s.e.
/// (The first notification to each observer is CON, RFC 7641 §4.5.1 — no
/// RTT estimate yet — 20 of ~10,000, a bias of < 0.0004.)
#[test]
fn non_observe_delivers_one_minus_p() {
    let p = 0.2;
    let dir = run_text(
        "coap-observe-non",
        &observed(20, p, "non", "1 s", "500 s", ""),
        &[],
    );
    let r = run_row(&dir, "f");
    let n = num(&r, "intended");
    assert!(n > 9_000.0, "{n} readings");
    assert_proportion(
        num(&r, "delivery_ratio"),
        1.0 - p,
        n,
        3.0,
        "NON observe delivery",
    );
    // one notification per reading and observer, none stale — but for the
    // readings that came while a CON notification (the first, and any
    // after a retransmitted CON left no RTT sample) was still in flight:
    // they replaced it (§4.5.2)
    let sent = num(&r, "coap_notifications_sent");
    assert!(
        sent <= n && sent >= n - 100.0,
        "notifications {sent} vs readings {n}"
    );
    assert_eq!(num(&r, "coap_notifications_stale"), 0.0);
    // readings come by notification, but for the few that answered a
    // registration retransmitted after its ACK was lost
    let (d, a) = (num(&r, "delivered"), num(&r, "coap_notifications_accepted"));
    assert!(
        d >= a && d - a <= 20.0,
        "delivered {d}, notifications accepted {a}"
    );
}

/// CON observe: with ACK_TIMEOUT = 1 s, ACK_RANDOM_FACTOR = 1 and
/// MAX_RETRANSMIT = 2, a notification is sent at 0, 1 and 3 s and given
/// up at 7 s, before the next reading (interval 10 s) could supersede it:
/// k = 3 transmissions, so a notification reaches the collector with
/// probability 1 − p^k = 1 − 0.3³ = 0.973 (p = 0.3 each way). A
/// notification whose three ACK exchanges all fail ends the observation
/// (§4.5), and the collector re-registers after Max-Age (15 s) + margin
/// (1 s) without news; so the ratio is taken over the notifications the
/// sensors sent (`coap_notifications_accepted / coap_notifications_sent`).
/// 40 sensors × 300 readings: n ≈ 10,000 notifications, s.e. ≈ 0.0016.
#[test]
fn con_observe_delivers_one_minus_p_to_the_k() {
    let p: f64 = 0.3;
    let extra = "ack_timeout = \"1 s\"\nack_random_factor = 1.0\nmax_retransmit = 2\n\
                 observe_max_age = 15\nobserve_margin = \"1 s\"";
    let dir = run_text(
        "coap-observe-con",
        &observed(40, p, "con", "10 s", "3000 s", extra),
        &[],
    );
    let r = run_row(&dir, "f");
    let sent = num(&r, "coap_notifications_sent");
    let accepted = num(&r, "coap_notifications_accepted");
    assert!(sent > 9_000.0, "{sent} notifications");
    assert_proportion(
        accepted / sent,
        1.0 - p.powi(3),
        sent,
        3.0,
        "CON notification success",
    );
    // observations ended by timed-out notifications were re-registered
    assert!(num(&r, "coap_reregistrations") > 0.0);
    // and what the collector got is at least what came by notification
    assert!(num(&r, "delivered") >= accepted);
}

/// A publisher crash loses its observers (volatile server state). The
/// collector hears nothing for Max-Age (60 s) + margin (5 s), re-registers,
/// and readings flow again; none is delivered twice.
#[test]
fn observer_reregisters_after_server_crash_and_restart() {
    let base = observed(1, 0.0, "con", "1 s", "300 s", "");
    let text = with_events(
        &base,
        &[
            ("100 s", "node_crash", "node", "s-1"),
            ("110 s", "node_restart", "node", "s-1"),
        ],
    );
    let dir = run_text("coap-observe-crash", &text, &[]);
    let r = run_row(&dir, "f");
    assert!(num(&r, "coap_reregistrations") >= 1.0);
    // readings 2..100 s arrive; those of the outage and until the
    // re-registration (last heard ≈ 100 s, + 65 s) are lost; the rest
    // arrive: about 98 + (300 − 165) = 233 of ~288 published
    let delivered = num(&r, "delivered");
    assert!(
        (225.0..=240.0).contains(&delivered),
        "delivered {delivered}: {r:?}"
    );
    assert_eq!(num(&r, "duplicates"), 0.0);
}

/// Readings rarer than Max-Age + margin would cost a re-registration each:
/// `qossim check`/`run` warn, and stop warning once Max-Age covers them.
#[test]
fn rare_readings_against_max_age_are_warned() {
    let rare = load(&observed(2, 0.0, "con", "2 min", "10 min", ""), &[]);
    let w = qossim::cli::warnings(&rare);
    assert!(
        w.iter()
            .any(|m| m.message.contains("flow f") && m.message.contains("observe_max_age")),
        "{w:?}"
    );
    let fixed = load(
        &observed(2, 0.0, "con", "2 min", "10 min", "observe_max_age = 180"),
        &[],
    );
    assert!(!qossim::cli::warnings(&fixed)
        .iter()
        .any(|m| m.message.contains("observe_max_age")));
}

/// `coap_mode = "pubsub"` (draft-ietf-core-coap-pubsub): the sensor PUTs
/// each reading once to its topic data on the broker, and the broker
/// notifies the three receivers observing it there: one PUT per reading
/// on the sensor's link, one notification per reading and receiver, every
/// reading delivered to every receiver on a lossless network, and the
/// broker itself is not a receiver.
#[test]
fn pubsub_broker_fans_one_put_out_to_every_observer() {
    let text = r#"
name = "coap-pubsub-test"
duration = "60 s"
drain = "100 s"
[[nodes]]
name = "broker"
role = "server"
[[nodes]]
name = "router"
role = "router"
[[nodes]]
name = "sensor"
role = "client"
[[links]]
a = "sensor"
b = "router"
rate = "250 kbit/s"
delay = "10 ms"
[[groups]]
name = "app-{i}"
count = 3
role = "client"
link = { to = "router", rate = "1 Mbit/s", delay = "5 ms" }
[[links]]
a = "router"
b = "broker"
rate = "10 Mbit/s"
delay = "1 ms"
[[flows]]
name = "f"
pattern = "broadcast"
protocol = "coap"
coap_mode = "pubsub"
broker = "broker"
reliability = "con"
publishers = ["sensor"]
receivers = ["app-*"]
topic = "building/xyz/room/120/temperature"
payload_bytes = 8
interval = "5 s"
start = "2 s"
"#;
    let dir = run_text("coap-pubsub", text, &[]);
    let r = run_row(&dir, "f");
    let readings = num(&r, "sent");
    assert!(readings >= 11.0, "{readings}");
    assert_eq!(num(&r, "delivery_ratio"), 1.0);
    assert_eq!(num(&r, "coap_notifications_sent"), 3.0 * readings);
    let rows = read_csv(&dir.join("packets.csv"));
    let puts = rows
        .iter()
        .filter(|p| p["from"] == "sensor" && p["kind"] == "coap_con")
        .count() as f64;
    assert_eq!(puts, readings, "one PUT per reading, to the broker only");
    // a topic the broker holds, observed by each receiver once
    let registrations = rows
        .iter()
        .filter(|p| p["from"].starts_with("app-") && p["to"] == "router" && p["kind"] == "coap_con")
        .count();
    assert_eq!(registrations, 3);
    assert!(scenario_load_error(
        &text
            .replace("broker = \"broker\"\n", "")
            .replace("role = \"server\"", "role = \"client\"")
    )
    .contains("needs a broker"));
}

fn scenario_load_error(text: &str) -> String {
    match qossim::scenario::load_str(text, "t.toml", std::path::Path::new("."), &[]) {
        Ok(_) => String::new(),
        Err(e) => e.to_string(),
    }
}

/// scenarios/patterns-protocols.toml: the three patterns over MQTT,
/// MQTT-SN, CoAP Observe and CoAP pub/sub. Every reading reaches every
/// intended receiver (p2p and fan-in: one each, broadcast: four); a
/// broadcast costs an Observe sensor one notification per observer on its
/// own link, while behind a broker (MQTT-SN gateway, CoAP pub/sub broker)
/// the sensor sends each reading once.
#[test]
fn three_patterns_over_every_protocol() {
    let dir = run_text(
        "patterns-protocols",
        &scenario_file("patterns-protocols.toml"),
        &[],
    );
    for v in ["mqtt", "sn", "obs", "ps"] {
        for (pattern, fanout) in [("p2p", 1.0), ("broadcast", 4.0), ("fan-in", 1.0)] {
            let r = run_row(&dir, &format!("{v}-{pattern}"));
            assert_eq!(
                num(&r, "intended"),
                fanout * num(&r, "sent"),
                "{v}-{pattern}"
            );
            assert!(num(&r, "sent") > 0.0);
            assert_eq!(num(&r, "delivery_ratio"), 1.0, "{v}-{pattern}");
        }
    }
    // packets the broadcasting sensor sent on its own link, per reading
    let packets = read_csv(&dir.join("packets.csv"));
    let per_reading = |v: &str| {
        let sensor = format!("{v}-3");
        let link = format!("{sensor}--router");
        let n = packets
            .iter()
            .filter(|p| p["from"] == sensor && p["link"] == link)
            .count();
        n as f64 / num(&run_row(&dir, &format!("{v}-broadcast")), "sent")
    };
    let (obs, ps, sn) = (per_reading("obs"), per_reading("ps"), per_reading("sn"));
    assert!(obs >= 4.0, "one notification per observer: {obs}");
    assert!(
        ps < 1.2 && sn < 1.2,
        "one PUT / PUBLISH per reading: {ps} {sn}"
    );
    // and Observe, with no broker leg, is the cheapest per delivered
    // reading point to point
    let per = |f: &str| num(&run_row(&dir, f), "bytes_on_wire_per_delivered");
    for f in ["mqtt-p2p", "sn-p2p", "ps-p2p"] {
        assert!(per("obs-p2p") < per(f), "{f}");
    }
}
