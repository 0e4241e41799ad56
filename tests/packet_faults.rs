//! Packet-level faults as `[[events]]` actions (issue 15, item 1):
//! `drop_packet`, `duplicate_packet`, `delay_packet` and `corrupt_packet`
//! with a `match` table — their check errors, and what each does to real
//! protocol runs, read from packets.csv, messages.csv, runs.csv, mqtt.csv
//! and the pcaps.

mod common;
use common::sim::*;
use std::collections::BTreeMap;
use std::path::Path;

type Row = BTreeMap<String, String>;

fn regression(name: &str) -> String {
    scenario_file(&format!("regression/{name}"))
}

/// The check error of `text` (which must fail to load).
fn load_err(text: &str) -> String {
    match qossim::scenario::load_str(text, "t.toml", Path::new("."), &[]) {
        Ok(_) => panic!("loaded, expected an error:\n{text}"),
        Err(e) => e.to_string(),
    }
}

/// The monitors found nothing: runs.csv says 0 for every flow and
/// violations.csv has its header only.
fn assert_no_violations(dir: &Path) {
    for r in rows(dir, "runs.csv") {
        assert_eq!(r["violations"], "0", "{r:?}");
    }
    let v = std::fs::read_to_string(dir.join("violations.csv")).expect("violations.csv");
    assert_eq!(v.lines().count(), 1, "{v}");
}

fn rows(dir: &Path, file: &str) -> Vec<Row> {
    read_csv(&dir.join(file))
}

fn mqtt_metric(dir: &Path, scope: &str, name: &str, metric: &str) -> f64 {
    rows(dir, "mqtt.csv")
        .into_iter()
        .find(|r| r["scope"] == scope && r["name"] == name && r["metric"] == metric)
        .map(|r| r["value"].parse().expect("number"))
        .unwrap_or_else(|| panic!("no mqtt.csv row {scope}/{name}/{metric}"))
}

/// A small topology for the parse tests: one CoAP flow.
const BASE: &str = r#"
name = "t"
duration = "10 s"
[[nodes]]
name = "a"
role = "client"
[[nodes]]
name = "b"
role = "server"
[[links]]
a = "a"
b = "b"
[[flows]]
name = "f"
pattern = "fan_in"
protocol = "coap"
reliability = "con"
publishers = ["a"]
receivers = ["b"]
topic = "t"
payload_bytes = 10
interval = "1 s"
"#;

fn with_event(ev: &str) -> String {
    format!("{BASE}\n[[events]]\n{ev}\n")
}

#[test]
fn every_fault_action_parses() {
    for ev in [
        r#"at = "1 s"
action = "drop_packet"
match = { protocol = "coap", kind = "coap_con", from = "a", to = "b", flow = "f", nth = 1 }"#,
        r#"at = "0 s"
action = "duplicate_packet"
until = "5 s"
count = 3
match = { kind = "coap_ack", every = 1 }"#,
        r#"at = "0 s"
action = "delay_packet"
by = "250 ms"
match = { kind = "coap_con", every = 2 }"#,
        r#"at = "0 s"
action = "corrupt_packet"
layer = "payload"
offset = 0
match = { kind = "coap_con", nth = 2 }"#,
        r#"at = "0 s"
action = "corrupt_packet"
layer = "wire"
match = { kind = "mqttsn_publish", nth = 2 }"#,
    ] {
        let sc = load(&with_event(ev), &[]);
        assert_eq!(sc.events.len(), 1);
        assert!(
            matches!(
                sc.events[0].action,
                qossim::scenario::model::Action::PacketFault(_)
            ),
            "{ev}"
        );
    }
}

#[test]
fn fault_check_errors_name_the_field() {
    let cases: [(&str, &str, &str); 9] = [
        (
            r#"at = "0 s"
action = "drop_packet"
match = { kind = "coap_con", nth = 1, every = 2 }"#,
            "events[0].match.every",
            "exactly one of `nth`",
        ),
        (
            r#"at = "0 s"
action = "drop_packet"
match = { kind = "coap_con" }"#,
            "events[0].match.nth",
            "exactly one of `nth`",
        ),
        (
            r#"at = "0 s"
action = "drop_packet"
match = { kind = "coap_bogus", nth = 1 }"#,
            "events[0].match.kind",
            "unknown packet kind \"coap_bogus\"",
        ),
        (
            r#"at = "0 s"
action = "drop_packet"
match = { from = "nobody", nth = 1 }"#,
            "events[0].match.from",
            "unknown node \"nobody\"",
        ),
        (
            r#"at = "0 s"
action = "drop_packet"
match = { to = "nobody", nth = 1 }"#,
            "events[0].match.to",
            "unknown node \"nobody\"",
        ),
        (
            r#"at = "0 s"
action = "corrupt_packet"
layer = "ip"
match = { nth = 1 }"#,
            "events[0].layer",
            "expected one of: wire, payload",
        ),
        (
            r#"at = "0 s"
action = "delay_packet"
match = { nth = 1 }"#,
            "events[0].by",
            "action `delay_packet` needs `by`",
        ),
        (
            r#"at = "0 s"
action = "drop_packet"
match = { nth = 0 }"#,
            "events[0].match.nth",
            "out of range",
        ),
        (
            r#"at = "0 s"
action = "drop_packet"
count = 2
match = { nth = 1 }"#,
            "events[0].count",
            "`count` applies with `match.every` only",
        ),
    ];
    for (ev, field, what) in cases {
        let e = load_err(&with_event(ev));
        assert!(
            e.starts_with("t.toml:") && e.contains(&format!("field `{field}`")) && e.contains(what),
            "event:\n{ev}\nerror: {e}\nexpected field {field} and {what:?}"
        );
    }
    // the line is the one of the offending key
    let text = with_event(
        "at = \"0 s\"\naction = \"drop_packet\"\nmatch = { kind = \"coap_con\", nth = 1, every = 2 }",
    );
    let line = text
        .lines()
        .position(|l| l.starts_with("match"))
        .expect("match line")
        + 1;
    let e = load_err(&text);
    assert!(e.starts_with(&format!("t.toml:{line}:")), "{e}");
    // keys of other actions are refused
    let e = load_err(&with_event(
        "at = \"0 s\"\naction = \"link_down\"\nlink = \"a--b\"\nby = \"1 s\"",
    ));
    assert!(
        e.contains("field `events[0].by`") && e.contains("does not apply"),
        "{e}"
    );
}

/// The shipped QoS 2 example: the broker's first PUBREL to sensor-3 is
/// dropped at the broker — one `fault_dropped` row — and QoS 2 still
/// delivers every command exactly once.
#[test]
fn dropping_the_first_pubrel_keeps_qos2_exactly_once() {
    let dir = run_text(
        "fault-pubrel",
        &regression("mqtt-qos2-drop-first-pubrel.toml"),
        &[],
    );
    let packets = rows(&dir, "packets.csv");
    let dropped: Vec<&Row> = packets
        .iter()
        .filter(|r| r["outcome"] == "fault_dropped")
        .collect();
    assert_eq!(dropped.len(), 1, "{dropped:?}");
    let d = dropped[0];
    assert_eq!(d["kind"], "mqtt_pubrel");
    assert_eq!(d["from"], "broker");
    // on the broker's connection to sensor-3
    let conns = rows(&dir, "connections.csv");
    assert!(
        conns.iter().any(|c| c["connection"] == d["connection"]
            && c["node"] == "broker"
            && c["peer"] == "sensor-3"),
        "connection {} is not the broker's to sensor-3",
        d["connection"]
    );
    // it was the first PUBREL the broker sent sensor-3: none earlier on that connection
    let first = packets
        .iter()
        .find(|r| {
            r["kind"] == "mqtt_pubrel"
                && r["connection"] == d["connection"]
                && r["from"] == "broker"
        })
        .expect("a PUBREL row");
    assert_eq!(first["outcome"], "fault_dropped");
    // and TCP sent it again
    assert!(packets.iter().any(|r| r["kind"] == "mqtt_pubrel"
        && r["connection"] == d["connection"]
        && r["from"] == "broker"
        && r["outcome"] == "delivered"));
    let run = run_row(&dir, "commands");
    assert_eq!(num(&run, "drops_fault"), 1.0);
    assert_eq!(num(&run, "delivery_ratio"), 1.0);
    assert_eq!(num(&run, "duplicates"), 0.0);
    let msgs = rows(&dir, "messages.csv");
    let to3: Vec<&Row> = msgs
        .iter()
        .filter(|m| m["receiver"] == "sensor-3")
        .collect();
    assert!(!to3.is_empty());
    for m in &msgs {
        assert!(!m["delivered_at_ms"].is_empty(), "undelivered: {m:?}");
        assert_eq!(m["copies"], "1", "{m:?}");
    }
}

/// The ACK rows of a CoAP run: (collector's ACKs, CON requests reaching it).
fn ack_and_con_rows(dir: &Path) -> (usize, usize) {
    let p = rows(dir, "packets.csv");
    let acks = p
        .iter()
        .filter(|r| r["kind"] == "coap_ack" && r["from"] == "collector")
        .count();
    let cons = p
        .iter()
        .filter(|r| r["kind"] == "coap_con" && r["to"] == "collector")
        .count();
    (acks, cons)
}

#[test]
fn duplicating_every_coap_ack_sends_each_twice_and_changes_no_delivery() {
    let text = regression("coap-duplicate-every-ack.toml");
    let faulty = run_text("fault-coap-dup", &text, &[]);
    let pos = text.find("[[events]]").expect("events");
    let clean = run_text("fault-coap-clean", &text[..pos], &[]);
    let (acks, cons) = ack_and_con_rows(&faulty);
    let (acks0, cons0) = ack_and_con_rows(&clean);
    assert!(cons > 0);
    assert_eq!(cons, cons0);
    assert_eq!(acks0, cons0, "without the fault one ACK per CON");
    assert_eq!(acks, 2 * acks0, "every ACK twice");
    // on the sensors' side too: each sensor receives two ACK rows per CON it sent
    let p = rows(&faulty, "packets.csv");
    for s in 1..=5 {
        let name = format!("sensor-{s}");
        let sent = p
            .iter()
            .filter(|r| r["kind"] == "coap_con" && r["from"] == name)
            .count();
        let acked = p
            .iter()
            .filter(|r| r["kind"] == "coap_ack" && r["to"] == name)
            .count();
        assert_eq!(acked, 2 * sent, "{name}");
    }
    let (f, c) = (run_row(&faulty, "readings"), run_row(&clean, "readings"));
    for col in [
        "sent",
        "delivered",
        "duplicates",
        "delivery_ratio",
        "latency_ms_max",
        "round_trip_success",
        "give_ups",
        "retransmissions",
    ] {
        assert_eq!(f[col], c[col], "{col}");
    }
    assert_eq!(num(&f, "delivery_ratio"), 1.0);
    assert_eq!(num(&f, "duplicates"), 0.0);
}

/// One sensor's CON readings; `fault` appended.
fn one_sensor_coap(fault: &str) -> String {
    format!(
        r#"
name = "delay"
seed = 3
duration = "30 s"
drain = "100 s"
[[nodes]]
name = "collector"
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
delay = "20 ms"
[[links]]
a = "router"
b = "collector"
rate = "10 Mbit/s"
delay = "5 ms"
[[flows]]
name = "readings"
pattern = "fan_in"
protocol = "coap"
reliability = "con"
publishers = ["sensor"]
receivers = ["collector"]
topic = "t"
payload_bytes = 16
interval = "5 s"
{fault}
"#
    )
}

fn ms(r: &Row, col: &str) -> f64 {
    r[col]
        .parse()
        .unwrap_or_else(|_| panic!("{col}: {:?}", r[col]))
}

#[test]
fn a_delayed_packet_arrives_exactly_by_later() {
    let clean = run_text("fault-delay-clean", &one_sensor_coap(""), &[]);
    let delayed = run_text(
        "fault-delay",
        &one_sensor_coap(
            r#"[[events]]
at = "0 s"
action = "delay_packet"
by = "250 ms"
match = { kind = "coap_con", from = "sensor", nth = 2 }"#,
        ),
        &[],
    );
    let m0 = rows(&clean, "messages.csv");
    let m1 = rows(&delayed, "messages.csv");
    assert_eq!(m0.len(), m1.len());
    assert!(m0.len() >= 3);
    for (i, (a, b)) in m0.iter().zip(&m1).enumerate() {
        assert_eq!(a["sent_at_ms"], b["sent_at_ms"]);
        let shift = ms(b, "delivered_at_ms") - ms(a, "delivered_at_ms");
        let want = if i == 1 { 250.0 } else { 0.0 };
        assert!(
            (shift - want).abs() < 1e-6,
            "message {i}: shifted {shift} ms"
        );
    }
    // the hop rows of that CON are 250 ms later, at every hop
    let cons = |d: &Path| -> Vec<Row> {
        rows(d, "packets.csv")
            .into_iter()
            .filter(|r| r["kind"] == "coap_con")
            .collect()
    };
    let (c0, c1) = (cons(&clean), cons(&delayed));
    assert_eq!(c0.len(), c1.len());
    // two hops per CON: rows 2 and 3 are the second CON's
    for (i, (a, b)) in c0.iter().zip(&c1).enumerate() {
        let want = if i == 2 || i == 3 { 250.0 } else { 0.0 };
        let shift = ms(b, "time_ms") - ms(a, "time_ms");
        assert!((shift - want).abs() < 1e-6, "row {i}: shifted {shift} ms");
    }
}

fn corrupt_variant(layer: &str, offset: Option<u32>) -> String {
    let text = regression("mqtt-corrupt-second-publish.toml");
    let mut fault = format!("layer = \"{layer}\"");
    if let Some(o) = offset {
        fault.push_str(&format!("\noffset = {o}"));
    }
    let t = text.replacen("\nlayer = \"wire\"", &format!("\n{fault}"), 1);
    assert_ne!(
        t,
        text.replacen("\nlayer = \"wire\"", "\n", 1),
        "fault kept"
    );
    t
}

/// A PUBLISH whose fixed header byte is flipped with the checksums repaired
/// reaches the broker's decoder: [MQTT-4.8.0-1] the broker closes that
/// connection (a protocol error), the client reconnects and resends it.
#[test]
fn a_payload_corrupted_publish_header_closes_the_connection() {
    let dir = run_text(
        "fault-corrupt-payload",
        &corrupt_variant("payload", Some(0)),
        &[],
    );
    assert_eq!(
        mqtt_metric(&dir, "broker", "broker", "protocol_errors"),
        1.0
    );
    let run = run_row(&dir, "readings");
    assert_eq!(num(&run, "tcp_malformed"), 0.0, "checksums were repaired");
    assert_eq!(num(&run, "mqtt_connection_losses"), 1.0);
    assert!(num(&run, "mqtt_reconnects") >= 1.0);
    assert_eq!(num(&run, "delivery_ratio"), 1.0);
    assert!(mqtt_metric(&dir, "flow", "readings", "retransmissions") >= 1.0);
    // the same run without the fault has no protocol error
    let text = regression("mqtt-corrupt-second-publish.toml");
    let clean = run_text(
        "fault-corrupt-clean",
        &text[..text.find("[[events]]").expect("events")],
        &[],
    );
    assert_eq!(
        mqtt_metric(&clean, "broker", "broker", "protocol_errors"),
        0.0
    );
    assert_eq!(
        num(&run_row(&clean, "readings"), "mqtt_connection_losses"),
        0.0
    );
}

/// With stale checksums the broker's TCP discards the segment
/// (`tcp_malformed`) and the client's TCP retransmits it.
#[test]
fn a_wire_corrupted_publish_is_dropped_by_tcp_and_retransmitted() {
    for offset in [None, Some(0), Some(30)] {
        let dir = run_text("fault-corrupt-wire", &corrupt_variant("wire", offset), &[]);
        let run = run_row(&dir, "readings");
        assert_eq!(num(&run, "tcp_malformed"), 1.0, "offset {offset:?}");
        assert!(num(&run, "tcp_retransmissions") >= 1.0, "offset {offset:?}");
        assert_eq!(num(&run, "mqtt_connection_losses"), 0.0);
        assert_eq!(num(&run, "delivery_ratio"), 1.0);
        assert_eq!(num(&run, "duplicates"), 0.0);
        assert_eq!(
            mqtt_metric(&dir, "broker", "broker", "protocol_errors"),
            0.0
        );
    }
}

/// First bytes of the TCP payloads of the segments a pcap holds from
/// `src` (raw IPv4 records).
fn tcp_payload_heads(pcap: &Path, src: [u8; 4]) -> Vec<u8> {
    let b = std::fs::read(pcap).unwrap_or_else(|e| panic!("{}: {e}", pcap.display()));
    let mut out = Vec::new();
    let mut i = 24;
    while i + 16 <= b.len() {
        let incl = u32::from_le_bytes([b[i + 8], b[i + 9], b[i + 10], b[i + 11]]) as usize;
        let p = &b[i + 16..i + 16 + incl];
        i += 16 + incl;
        if p.len() < 20 || p[9] != 6 || p[12..16] != src {
            continue;
        }
        let ihl = usize::from(p[0] & 0x0F) * 4;
        let total = usize::from(u16::from_be_bytes([p[2], p[3]]));
        let doff = usize::from(p[ihl + 12] >> 4) * 4;
        if total > ihl + doff {
            out.push(p[ihl + doff]);
        }
    }
    out
}

/// Every transmission of the segment carrying the first PUBACK to sensor-1
/// is dropped until the broker's TCP gives up: the client learns the
/// connection is gone, reconnects and resends the PUBLISH with DUP set.
#[test]
fn dropping_every_transmission_of_the_first_puback_forces_a_dup_resend() {
    let text = r#"
name = "puback-loss"
seed = 1
duration = "60 s"
drain = "60 s"
[[nodes]]
name = "broker"
role = "broker"
[[nodes]]
name = "router"
role = "router"
[[nodes]]
name = "dashboard"
role = "client"
[[nodes]]
name = "sensor-1"
role = "client"
[[links]]
a = "sensor-1"
b = "router"
rate = "250 kbit/s"
delay = "20 ms"
[[links]]
a = "router"
b = "broker"
rate = "100 Mbit/s"
delay = "1 ms"
[[links]]
a = "dashboard"
b = "router"
rate = "10 Mbit/s"
delay = "2 ms"
[[flows]]
name = "readings"
pattern = "fan_in"
protocol = "mqtt"
reliability = "qos1"
publishers = ["sensor-1"]
receivers = ["dashboard"]
topic = "plant/temperature"
payload_bytes = 16
interval = "30 s"
start = "5 s"
[protocols.tcp]
retries = 3
# the original, a tail-loss probe and three RTO retransmissions: the
# fourth expiry ends the connection
[[events]]
at = "20 s"
action = "drop_packet"
count = 5
match = { kind = "mqtt_puback", from = "broker", to = "sensor-1", every = 1 }
"#;
    let dir = run_text_checked("fault-puback", text);
    assert_no_violations(&dir);
    let packets = rows(&dir, "packets.csv");
    let dropped: Vec<&Row> = packets
        .iter()
        .filter(|r| r["outcome"] == "fault_dropped")
        .collect();
    assert_eq!(dropped.len(), 5);
    let conn = &dropped[0]["connection"];
    assert!(dropped
        .iter()
        .all(|r| r["kind"] == "mqtt_puback" && &r["connection"] == conn));
    // no PUBACK got through on that connection
    assert!(!packets.iter().any(|r| r["kind"] == "mqtt_puback"
        && &r["connection"] == conn
        && r["outcome"] == "delivered"));
    let conns = rows(&dir, "connections.csv");
    let c = conns
        .iter()
        .find(|c| &c["connection"] == conn && c["node"] == "broker")
        .expect("the broker's endpoint of the connection");
    assert_eq!(c["peer"], "sensor-1");
    assert_eq!(c["failed"], "1", "{c:?}");
    let run = run_row(&dir, "readings");
    assert_eq!(num(&run, "drops_fault"), 5.0);
    assert!(num(&run, "mqtt_connection_losses") >= 1.0);
    assert!(num(&run, "mqtt_reconnects") >= 1.0);
    assert_eq!(num(&run, "delivery_ratio"), 1.0);
    assert!(mqtt_metric(&dir, "flow", "readings", "retransmissions") >= 1.0);
    // the pcap of the sensor's link: a PUBLISH with DUP (fixed header
    // 0x3A: PUBLISH, DUP, QoS 1) after the reconnection, none before
    let heads = tcp_payload_heads(&dir.join("pcap/sensor-1--router.pcap"), [10, 0, 0, 4]);
    let publishes: Vec<u8> = heads.iter().copied().filter(|h| h >> 4 == 3).collect();
    assert!(publishes.len() >= 3, "{publishes:02x?}");
    assert_eq!(publishes[0] & 0x08, 0, "first send without DUP");
    assert!(
        publishes.iter().any(|h| h & 0x08 != 0),
        "a PUBLISH with DUP: {publishes:02x?}"
    );
    // without the fault: no loss, no DUP
    let clean = run_text(
        "fault-puback-clean",
        &text[..text.find("# the original").expect("comment")],
        &[],
    );
    let run0 = run_row(&clean, "readings");
    assert_eq!(num(&run0, "mqtt_connection_losses"), 0.0);
    let heads0 = tcp_payload_heads(&clean.join("pcap/sensor-1--router.pcap"), [10, 0, 0, 4]);
    assert!(heads0.iter().all(|h| h >> 4 != 3 || h & 0x08 == 0));
}

#[test]
fn a_random_offset_corruption_is_deterministic() {
    let text = regression("mqtt-corrupt-second-publish.toml");
    let a = run_text("fault-det-a", &text, &[]);
    let b = run_text("fault-det-b", &text, &[]);
    for f in ["packets.csv", "runs.csv", "messages.csv"] {
        let (x, y) = (
            std::fs::read(a.join(f)).expect("a"),
            std::fs::read(b.join(f)).expect("b"),
        );
        assert!(x == y, "{f} differs between two runs of the same seed");
    }
    let pa = std::fs::read(a.join("pcap/sensor-1--router.pcap")).expect("pcap");
    let pb = std::fs::read(b.join("pcap/sensor-1--router.pcap")).expect("pcap");
    assert!(pa == pb);
    // the fault hit: one malformed segment
    assert_eq!(num(&run_row(&a, "readings"), "tcp_malformed"), 1.0);
}

/// Every kind the protocols write into packets.csv is a kind a match may
/// name (the check's list cannot drift from what the plug-ins emit).
#[test]
fn every_kind_in_packets_csv_is_matchable() {
    let mut kinds = std::collections::BTreeSet::new();
    for (tag, file) in [
        ("kinds-mqttsn", "mqttsn-point-to-point.toml"),
        ("kinds-coap", "coap-vs-udp.toml"),
        ("kinds-mqtt", "teaching/qos-levels.toml"),
    ] {
        let dir = run_text(tag, &scenario_file(file), &[]);
        for r in rows(&dir, "packets.csv") {
            kinds.insert(r["kind"].clone());
        }
    }
    for k in [
        "udp",
        "coap_con",
        "coap_ack",
        "tcp_syn",
        "mqtt_pubrel",
        "mqttsn_publish",
    ] {
        assert!(kinds.contains(k), "{k} not seen: {kinds:?}");
    }
    for k in &kinds {
        let text = with_event(&format!(
            "at = \"0 s\"\naction = \"drop_packet\"\nmatch = {{ kind = \"{k}\", nth = 1 }}"
        ));
        if let Err(e) = qossim::scenario::load_str(&text, "t.toml", Path::new("."), &[]) {
            panic!("kind {k} from packets.csv is refused: {e}");
        }
    }
}

/// Every transmission of the first PUBREL the broker sends sensor-3 is
/// dropped until the broker's TCP gives up on the connection: sensor-3
/// reconnects to its persistent session, the broker resends that PUBREL
/// on the new connection [MQTT-4.4.0-1] and the QoS 2 command still
/// reaches every sensor exactly once — with the monitors on, zero
/// violations.
#[test]
fn the_first_pubrel_lost_across_a_reconnect_stays_exactly_once() {
    let text = regression("mqtt-qos2-drop-first-pubrel.toml")
        .replace(
            "match = { protocol = \"mqtt\", kind = \"mqtt_pubrel\", from = \"broker\", to = \"sensor-3\", nth = 1 }",
            "count = 5\nmatch = { protocol = \"mqtt\", kind = \"mqtt_pubrel\", from = \"broker\", to = \"sensor-3\", every = 1 }",
        )
        // the broker's TCP gives up after three RTO retransmissions; a 10 s
        // keep-alive makes sensor-3 notice the dead connection (its
        // PINGREQ meets an RST) before the next commands' deadlines
        + "\n[protocols.tcp]\nretries = 3\n[protocols.mqtt]\nkeep_alive = \"10 s\"\n";
    assert!(text.contains("every = 1"), "the fault was not rewritten");
    let dir = run_text_checked("fault-pubrel-reconnect", &text);
    let packets = rows(&dir, "packets.csv");
    let dropped: Vec<&Row> = packets
        .iter()
        .filter(|r| r["outcome"] == "fault_dropped")
        .collect();
    assert_eq!(dropped.len(), 5, "{dropped:?}");
    let conn = dropped[0]["connection"].clone();
    assert!(dropped
        .iter()
        .all(|r| r["kind"] == "mqtt_pubrel" && r["connection"] == conn));
    let conns = rows(&dir, "connections.csv");
    let broker_end = conns
        .iter()
        .find(|c| c["connection"] == conn && c["node"] == "broker")
        .expect("the broker's endpoint");
    assert_eq!(broker_end["peer"], "sensor-3");
    assert_eq!(broker_end["failed"], "1", "{broker_end:?}");
    // the PUBREL went through later on another connection to sensor-3
    let later: Vec<&Row> = packets
        .iter()
        .filter(|r| {
            r["kind"] == "mqtt_pubrel"
                && r["from"] == "broker"
                && r["outcome"] == "delivered"
                && r["connection"] != conn
                && conns.iter().any(|c| {
                    c["connection"] == r["connection"]
                        && c["node"] == "broker"
                        && c["peer"] == "sensor-3"
                })
        })
        .collect();
    assert!(
        !later.is_empty(),
        "no PUBREL to sensor-3 after the reconnect"
    );
    let run = run_row(&dir, "commands");
    assert_eq!(num(&run, "drops_fault"), 5.0);
    assert!(num(&run, "mqtt_reconnects") >= 1.0);
    assert_eq!(num(&run, "delivery_ratio"), 1.0);
    assert_eq!(num(&run, "duplicates"), 0.0);
    assert_no_violations(&dir);
    for m in rows(&dir, "messages.csv") {
        assert!(!m["delivered_at_ms"].is_empty(), "undelivered: {m:?}");
        assert_eq!(m["copies"], "1", "{m:?}");
    }
}
