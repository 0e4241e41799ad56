//! The teaching scenarios (scenarios/teaching/*.toml) answer a course
//! question each; every test here runs one through the CLI's run path and
//! asserts the answer its header states, on the CSVs a student would read.

mod common;
use common::sim::*;
use std::collections::BTreeMap;
use std::path::Path;

type Row = BTreeMap<String, String>;

fn teaching(name: &str) -> String {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("scenarios/teaching")
        .join(name);
    std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

fn messages(dir: &Path) -> Vec<Row> {
    read_csv(&dir.join("messages.csv"))
}

fn delivered(m: &Row) -> bool {
    !m["delivered_at_ms"].is_empty()
}

fn mean(xs: impl Iterator<Item = f64>) -> f64 {
    let (s, n) = xs.fold((0.0, 0usize), |(s, n), x| (s + x, n + 1));
    assert!(n > 0, "mean of nothing");
    s / n as f64
}

fn mqtt_metric(dir: &Path, scope: &str, name: &str, metric: &str) -> f64 {
    read_csv(&dir.join("mqtt.csv"))
        .into_iter()
        .find(|r| r["scope"] == scope && r["name"] == name && r["metric"] == metric)
        .map(|r| num(&r, "value"))
        .unwrap_or_else(|| panic!("no mqtt.csv row {scope}/{name}/{metric}"))
}

/// "What is the difference between QoS 1 and QoS 2?": with 20 % loss and
/// three breaks, QoS 0 loses readings, QoS 1 delivers everything with some
/// duplicates, QoS 2 everything exactly once at a higher byte cost.
#[test]
fn qos_levels_qos2_never_duplicates_qos1_does_and_qos0_loses() {
    let dir = run_text("teach-qos", &teaching("qos-levels.toml"), &[]);
    let (q0, q1, q2) = (
        run_row(&dir, "qos0"),
        run_row(&dir, "qos1"),
        run_row(&dir, "qos2"),
    );
    assert_eq!(num(&q2, "duplicates"), 0.0, "QoS 2 is exactly once");
    assert!(num(&q1, "duplicates") > 0.0, "QoS 1 resends after breaks");
    assert!(
        num(&q0, "delivery_ratio") < num(&q1, "delivery_ratio"),
        "QoS 0 loses what was in flight at the breaks"
    );
    assert!(num(&q1, "delivery_ratio") > 0.999);
    assert!(num(&q2, "delivery_ratio") > 0.999);
    assert!(
        num(&q2, "bytes_on_wire_per_delivered") > num(&q1, "bytes_on_wire_per_delivered"),
        "four packets per leg cost more than two"
    );
}

/// A late subscriber gets each room's last reading from the broker at
/// once: within one RTT of its MQTT connect (TCP handshake, then
/// CONNECT/CONNACK, then SUBSCRIBE answered with the retained messages);
/// without RETAIN it gets nothing sent before it connected.
#[test]
fn retained_late_subscriber_gets_last_value_within_one_rtt_of_connecting() {
    let dir = run_text("teach-retained", &teaching("retained.toml"), &[]);
    let conns = read_csv(&dir.join("connections.csv"));
    let dash = conns
        .iter()
        .find(|c| c["flow"] == "retained" && c["node"] == "dashboard" && c["side"] == "client")
        .expect("the dashboard's connection");
    let opened = num(dash, "opened_ms");
    let established = num(dash, "established_ms");
    let rtt = num(dash, "handshake_ms");
    assert!((95_000.0..95_100.0).contains(&opened), "connects at 95 s");
    // the MQTT connect completes one RTT after the TCP handshake (CONNACK)
    let connack = established + rtt;
    let msgs = messages(&dir);
    let rooms = ["room-1", "room-2", "room-3", "room-4"];
    for room in rooms {
        let early: Vec<&Row> = msgs
            .iter()
            .filter(|m| m["flow"] == "retained" && m["publisher"] == room)
            .filter(|m| num(m, "sent_at_ms") < opened)
            .collect();
        let got: Vec<&&Row> = early.iter().filter(|m| delivered(m)).collect();
        assert_eq!(got.len(), 1, "{room}: only the retained reading");
        let last_sent = early
            .iter()
            .map(|m| num(m, "sent_at_ms"))
            .fold(f64::MIN, f64::max);
        assert_eq!(num(got[0], "sent_at_ms"), last_sent, "{room}: the last one");
        let at = num(got[0], "delivered_at_ms");
        // one RTT for SUBSCRIBE → retained PUBLISHes, plus the
        // serialisation of the larger CONNECT/SUBSCRIBE/PUBLISH segments
        // at 1 Mbit/s that the handshake's RTT sample did not pay (here
        // ≈ 4 ms): 5 ms of slack, against the 30 s a plain subscriber waits
        assert!(
            at >= connack && at <= connack + rtt + 5.0,
            "{room}: retained value at {at} ms, connect done at {connack} ms, RTT {rtt} ms"
        );
    }
    let plain_early = msgs
        .iter()
        .filter(|m| m["flow"] == "plain" && num(m, "sent_at_ms") < opened && delivered(m))
        .count();
    assert_eq!(plain_early, 0, "without RETAIN nothing from before");
}

/// A crashed client's will comes after ≈ 1.5 × keep-alive (30 s) minus
/// the time since its last packet (< one publish interval, 2 s); a clean
/// DISCONNECT sends none.
#[test]
fn last_will_after_one_and_a_half_keep_alives_and_none_after_disconnect() {
    let dir = run_text("teach-will", &teaching("last-will.toml"), &[]);
    let crash = run_row(&dir, "crashing");
    let leave = run_row(&dir, "leaving");
    assert_eq!(num(&crash, "mqtt_wills"), 1.0);
    let delay = num(&crash, "mqtt_will_delay_ms_mean");
    let (keep_alive, interval) = (20_000.0, 2_000.0);
    assert!(
        delay <= 1.5 * keep_alive + 100.0 && delay >= 1.5 * keep_alive - interval,
        "will after {delay} ms"
    );
    assert_eq!(num(&leave, "mqtt_wills"), 0.0, "no will after DISCONNECT");
    assert_eq!(leave["mqtt_will_delay_ms_mean"], "");
    assert_eq!(
        mqtt_metric(&dir, "broker", "broker", "wills_published"),
        1.0
    );
    assert_eq!(
        mqtt_metric(&dir, "broker", "broker", "keep_alive_timeouts"),
        1.0
    );
    // the crashed device stops publishing; the disconnected one queues
    assert_eq!(num(&crash, "sent"), num(&crash, "delivered"));
    assert!(num(&leave, "sent") > num(&leave, "delivered"));
}

/// Point-to-point, broadcast and fan-in: who receives what and what each
/// delivered reading costs.
#[test]
fn patterns_broadcast_reaches_every_display_and_costs_least_per_delivery() {
    let dir = run_text("teach-patterns", &teaching("patterns.toml"), &[]);
    let p2p = run_row(&dir, "p2p");
    let bc = run_row(&dir, "broadcast");
    let fi = run_row(&dir, "fan_in");
    assert_eq!(num(&p2p, "intended"), num(&p2p, "sent"));
    assert_eq!(num(&fi, "intended"), num(&fi, "sent"));
    assert_eq!(num(&bc, "intended"), 4.0 * num(&bc, "sent"), "4 displays");
    for r in [&p2p, &bc, &fi] {
        assert_eq!(num(r, "delivery_ratio"), 1.0, "{}", r["flow"]);
    }
    let per = |r: &Row| num(r, "bytes_on_wire_per_delivered");
    assert!(per(&bc) < 0.75 * per(&p2p), "{} vs {}", per(&bc), per(&p2p));
    assert!((per(&fi) - per(&p2p)).abs() < 0.05 * per(&p2p));
    // the same two legs through the broker
    for r in [&p2p, &bc, &fi] {
        let p50 = num(r, "latency_ms_p50");
        assert!((20.0..25.0).contains(&p50), "{}: p50 {p50}", r["flow"]);
    }
    // each fan-in publisher's topic matches the monitor's wildcard
    for m in messages(&dir).iter().filter(|m| m["flow"] == "fan_in") {
        assert_eq!(
            m["topic"],
            format!("lab/fanin/{}/temperature", m["publisher"])
        );
    }
}

/// Delivered vs true average temperature of building XYZ, per QoS and loss.
fn averages(dir: &Path) -> (f64, f64, usize, usize) {
    let msgs = messages(dir);
    let truth = mean(msgs.iter().map(|m| num(m, "value")));
    let got = mean(
        msgs.iter()
            .filter(|m| delivered(m))
            .map(|m| num(m, "value")),
    );
    let n = msgs.iter().filter(|m| delivered(m)).count();
    (truth, got, n, msgs.len())
}

#[test]
fn building_average_is_within_a_fifth_of_a_degree_at_every_qos() {
    let text = teaching("building-average.toml");
    for qos in ["qos0", "qos1", "qos2"] {
        for loss in ["0.0", "0.2"] {
            let set_q = format!("flows.rooms.reliability={qos}");
            let set_l = format!("links.backhaul.loss.p={loss}");
            let dir = run_text("teach-avg", &text, &[&set_q, &set_l]);
            let (truth, got, n, all) = averages(&dir);
            let what = format!("{qos} at loss {loss}");
            // every message went to the one monitor through `+`
            for m in messages(&dir) {
                assert!(m["topic"].starts_with("building/xyz/room/"), "{what}");
                assert_eq!(m["receiver"], "monitor");
            }
            assert!(
                (got - truth).abs() < 0.2,
                "{what}: delivered {got:.3} vs true {truth:.3}"
            );
            // and the truth is the generator's 21.0 °C within its sampling error
            assert!((truth - 21.0).abs() < 0.1, "{what}: {truth}");
            if qos == "qos0" {
                assert!(n < all, "{what}: the breaks lose QoS 0 readings");
            } else {
                assert_eq!(n, all, "{what}: QoS 1/2 deliver every reading");
                assert_eq!(got, truth, "{what}");
            }
        }
    }
}

/// Room 120 as an MQTT topic and as a CoAP URI: the same name, both
/// delivered; MQTT pays more bytes per reading.
#[test]
fn room_120_same_name_as_topic_and_uri_mqtt_costs_more_bytes() {
    let dir = run_text("teach-room120", &teaching("room-120.toml"), &[]);
    let msgs = messages(&dir);
    for flow in ["mqtt-topic", "coap-uri"] {
        let rows: Vec<&Row> = msgs.iter().filter(|m| m["flow"] == flow).collect();
        assert!(rows.len() > 50, "{flow}");
        for m in rows {
            assert_eq!(m["topic"], "building/xyz/room/120/temperature");
            assert_eq!(m["receiver"], "app");
        }
    }
    let mqtt = run_row(&dir, "mqtt-topic");
    let coap = run_row(&dir, "coap-uri");
    assert_eq!(num(&mqtt, "delivery_ratio"), 1.0);
    assert_eq!(num(&coap, "delivery_ratio"), 1.0);
    assert!(
        num(&mqtt, "bytes_on_wire_per_delivered") > 2.0 * num(&coap, "bytes_on_wire_per_delivered")
    );
    assert!(num(&coap, "latency_ms_p50") < num(&mqtt, "latency_ms_p50"));
}

/// CoAP NON loses what the hop loses; CON recovers it with retransmissions
/// at the price of latency.
#[test]
fn coap_con_recovers_what_non_loses_at_the_price_of_latency() {
    let dir = run_text("teach-con-non", &teaching("coap-con-vs-non.toml"), &[]);
    let non = run_row(&dir, "non");
    let con = run_row(&dir, "con");
    // NON: one lossy hop for the request, p = 0.15
    assert_proportion(
        num(&non, "delivery_ratio"),
        0.85,
        num(&non, "intended"),
        3.0,
        "NON delivery",
    );
    assert!(num(&con, "delivery_ratio") > 0.99);
    assert_eq!(num(&non, "retransmissions"), 0.0);
    assert!(num(&con, "retransmissions") > 0.0);
    assert!(num(&con, "duplicates_suppressed") > 0.0, "lost ACKs");
    assert_eq!(num(&con, "duplicates"), 0.0);
    assert!(num(&con, "latency_ms_p99") > 2_000.0, "past ACK_TIMEOUT");
    assert!(num(&non, "latency_ms_p99") < 100.0);
    let per = |r: &Row| num(r, "bytes_on_wire_per_delivered");
    assert!(per(&con) > per(&non) && per(&con) < 2.0 * per(&non));
}

/// MQTT and HTTP (over TCP), MQTT-SN QoS 1 and CoAP CON notifications
/// deliver at 10 % loss, NON notifications and MQTT-SN QoS 0 do not; MQTT
/// and HTTP cost at least twice the bytes per reading of CON; MQTT-SN puts
/// a fraction of that on the lossy side. CoAP runs as Observe: one
/// registration per sensor, every reading a notification.
#[test]
fn mqtt_vs_coap_reliability_and_overhead() {
    let dir = run_text("teach-mqtt-coap", &teaching("mqtt-vs-coap.toml"), &[]);
    let q0 = run_row(&dir, "mqtt-qos0");
    let q1 = run_row(&dir, "mqtt-qos1");
    let sn0 = run_row(&dir, "mqttsn-qos0");
    let sn1 = run_row(&dir, "mqttsn-qos1");
    let non = run_row(&dir, "coap-non");
    let con = run_row(&dir, "coap-con");
    let http = run_row(&dir, "http");
    for r in [&q0, &q1, &con, &http] {
        assert!(num(r, "delivery_ratio") > 0.99, "{}", r["flow"]);
    }
    // one give-up after N_RETRY may drop a reading: 465 readings, 10 % loss
    assert!(num(&sn1, "delivery_ratio") > 0.99);
    for r in [&non, &sn0] {
        // they lose what the link loses: 1 − 0.1, ± 4 SE of ~465 readings
        let d = num(r, "delivery_ratio");
        assert!(
            (d - 0.9).abs() < 4.0 * (0.09f64 / 465.0).sqrt(),
            "{} {d}",
            r["flow"]
        );
    }
    for r in [&non, &con] {
        // every delivered reading came as a notification of the one
        // registration per sensor (8 sensors), none re-registered
        assert!(num(r, "coap_notifications_accepted") >= num(r, "delivered"));
        assert_eq!(num(r, "coap_reregistrations"), 0.0, "{}", r["flow"]);
    }
    let per = |r: &Row| num(r, "bytes_on_wire_per_delivered");
    assert!(per(&q0) > 1.8 * per(&con), "{} vs {}", per(&q0), per(&con));
    assert!(
        per(&http) > 1.8 * per(&con),
        "{} vs {}",
        per(&http),
        per(&con)
    );
    assert!(per(&con) > per(&non));
    assert!(per(&q1) > per(&q0));
    assert!(per(&sn1) > per(&sn0));
    // the UDP (gateway-side) share of MQTT-SN is at most a third of its total
    for r in [&sn0, &sn1] {
        let udp = num(r, "mqttsn_bytes_constrained");
        assert!(
            udp > 0.0 && udp < num(r, "bytes_on_wire") / 3.0,
            "{}",
            r["flow"]
        );
        assert_eq!(num(r, "mqttsn_gateway_connections"), 1.0, "aggregating");
    }
}

/// Client id = thing name (read back from the CONNECT packets in the
/// pcap), topics end with the thing, and a verbose topic costs its extra
/// length twice per reading (both legs).
#[test]
fn topics_client_id_is_thing_name_and_long_topics_cost_bytes() {
    let text = teaching("topics.toml");
    let dir = run_text("teach-topics", &text, &[]);
    for m in messages(&dir).iter().filter(|m| m["flow"] == "basement") {
        assert_eq!(
            m["topic"],
            format!("hv100/bld1518/basement/{}", m["publisher"])
        );
    }
    // CONNECT: fixed header, "\0\x04MQTT", level 4, flags, keep-alive (2),
    // then the client id as a length-prefixed string
    let mut ids = Vec::new();
    for entry in std::fs::read_dir(dir.join("pcap")).expect("pcap dir") {
        let bytes = std::fs::read(entry.expect("entry").path()).expect("pcap");
        let pat = b"\x00\x04MQTT\x04";
        let mut i = 0;
        while let Some(off) = bytes[i..].windows(pat.len()).position(|w| w == pat) {
            let at = i + off + pat.len() + 3;
            let len = u16::from_be_bytes([bytes[at], bytes[at + 1]]) as usize;
            ids.push(String::from_utf8_lossy(&bytes[at + 2..at + 2 + len]).to_string());
            i = i + off + 1;
        }
    }
    ids.sort();
    ids.dedup();
    for thing in ["hvac719", "hvac720", "boiler12", "ops-dashboard"] {
        assert!(ids.contains(&thing.to_string()), "{thing} not in {ids:?}");
    }
    let short = "hv100/bld1518/basement/hvac719".len() as f64;
    let long = "/company-headquarters-campus/building-number-1518/basement-level/heating-ventilation-air-conditioning/hvac801/sensors/temperature".len() as f64;
    let per = |r: &Row| num(r, "bytes_protocol") / num(r, "delivered");
    let extra = per(&run_row(&dir, "verbose")) - per(&run_row(&dir, "basement"));
    let expected = 2.0 * (long - short);
    assert!(
        (extra - expected).abs() < 0.05 * expected,
        "verbose topic costs {extra:.1} B more per reading, expected ≈ {expected}"
    );
}

/// Idle cost: a sleeping MQTT-SN sensor's radio spends a small fraction of
/// an always-listening one's energy; on the radio, MQTT's keep-alive costs
/// more bytes than MQTT-SN's PINGREQ, which costs more than sleeping, which
/// costs more than CoAP (no session); every reading still arrives.
#[test]
fn idle_cost_sleep_saves_energy_and_keep_alive_costs_bytes() {
    let dir = run_text("teach-idle", &teaching("idle-cost.toml"), &[]);
    for f in ["mqtt-keepalive", "mqttsn-ping", "mqttsn-sleep", "coap-con"] {
        assert_eq!(num(&run_row(&dir, f), "delivery_ratio"), 1.0, "{f}");
    }
    let mut energy: BTreeMap<String, Vec<f64>> = BTreeMap::new();
    for r in read_csv(&dir.join("nodes.csv")) {
        if let Some((g, _)) = r["node"].split_once('-') {
            energy
                .entry(g.to_string())
                .or_default()
                .push(num(&r, "energy_mj"));
        }
    }
    let e = |g: &str| mean(energy[g].iter().copied());
    // an hour and 10 min of idle listening at 0.426 mA × 3 V = 5,368 mJ
    for g in ["mqtt", "sn", "coap"] {
        assert!((5_368.0..5_800.0).contains(&e(g)), "{g}: {}", e(g));
    }
    assert!(
        e("sleep") < e("sn") / 10.0,
        "sleep {} vs awake {}",
        e("sleep"),
        e("sn")
    );
    // the keep-alive traffic is a small part of an awake sensor's energy
    assert!((e("mqtt") - e("coap")).abs() < 0.01 * e("coap"));
    // bytes on the radio in the hour, by sensor group
    let mut radio: BTreeMap<String, f64> = BTreeMap::new();
    for p in read_csv(&dir.join("packets.csv")) {
        if p["link"] != "wpan" || num(&p, "time_ms") > 3_600_000.0 {
            continue;
        }
        for end in [&p["from"], &p["to"]] {
            if let Some((g, _)) = end.split_once('-') {
                *radio.entry(g.to_string()).or_default() += num(&p, "bytes");
            }
        }
    }
    let b = |g: &str| radio.get(g).copied().unwrap_or(0.0);
    assert!(
        b("mqtt") > 2.0 * b("sn"),
        "mqtt {} sn {}",
        b("mqtt"),
        b("sn")
    );
    assert!(
        b("sn") > 2.0 * b("sleep"),
        "sn {} sleep {}",
        b("sn"),
        b("sleep")
    );
    assert!(b("sleep") > b("coap") && b("coap") > 0.0);
    // the sleeping readings waited for a wake-up (every 300 s)
    let lat: Vec<f64> = messages(&dir)
        .iter()
        .filter(|m| m["flow"] == "mqttsn-sleep")
        .map(|m| num(m, "latency_ms"))
        .collect();
    assert!(lat.iter().all(|&l| l > 1_000.0 && l < 310_000.0), "{lat:?}");
}

/// broker-saturation.toml: at ρ = 0.8 the broker's queueing delay is the
/// M/D/1 mean (2 ms; a 40 s run, so within 20 %); at ρ = 0.4 it is far
/// smaller; past saturation (ρ = 1.25) latency climbs through the run and
/// the full queue drops.
#[test]
fn broker_saturation_wait_follows_md1_and_grows_past_saturation() {
    let text = teaching("broker-saturation.toml");
    let broker = |dir: &Path| -> Row {
        read_csv(&dir.join("nodes.csv"))
            .into_iter()
            .find(|r| r["node"] == "broker")
            .expect("broker row")
    };
    let base = run_text("teach-sat-08", &text, &[]);
    let b = broker(&base);
    let wq = num(&b, "proc_wait_ms_mean");
    assert!(
        (wq - 2.0).abs() < 0.4,
        "rho 0.8: Wq {wq} ms, M/D/1 says 2 ms"
    );
    let busy = num(&b, "proc_busy_ms") / 39_000.0;
    assert!((busy - 0.8).abs() < 0.04, "utilisation {busy}");
    assert_eq!(num(&run_row(&base, "telemetry"), "delivery_ratio"), 1.0);
    let light = run_text("teach-sat-04", &text, &["flows.telemetry.interval=50ms"]);
    let wq_light = num(&broker(&light), "proc_wait_ms_mean");
    assert!(
        wq_light < 0.45 && wq_light > 0.2,
        "rho 0.4: Wq {wq_light} ms (M/D/1: 0.33)"
    );
    let over = run_text("teach-sat-125", &text, &["flows.telemetry.interval=16ms"]);
    let o = broker(&over);
    assert!(num(&o, "proc_dropped") > 0.0);
    assert_eq!(num(&o, "proc_queue_max"), 2000.0);
    let series: Vec<Row> = read_csv(&over.join("timeseries.csv"))
        .into_iter()
        .filter(|r| !r["latency_ms_p50"].is_empty())
        .collect();
    let p50 = |k: usize| num(&series[k], "latency_ms_p50");
    // The backlog grows by a quarter of the offered load: the median
    // latency of each third of the run exceeds the previous one's (SACK
    // repairs the broker's drops quickly, so the climb has plateaus).
    let third = series.len() / 3;
    let mean = |r: std::ops::Range<usize>| {
        let n = r.len() as f64;
        r.map(p50).sum::<f64>() / n
    };
    let (a, b, c) = (
        mean(0..third),
        mean(third..2 * third),
        mean(2 * third..series.len()),
    );
    assert!(
        p50(2) < 1000.0 && a < b && b < c && c > 4000.0,
        "latency must climb: thirds {a:.0} → {b:.0} → {c:.0} ms"
    );
}

/// "What does MQTT 5.0 change?": topic aliases cut the telemetry's bytes
/// by the topic length on every later PUBLISH of the sensor leg (which
/// crosses two links), and a 60 s session expiry loses set-points a
/// 3.1.1 persistent session keeps through a two-minute outage.
#[test]
fn mqtt_versions_aliases_save_topic_bytes_and_session_expiry_loses_what_3_1_1_keeps() {
    let text = teaching("mqtt-versions.toml");
    let v311 = run_text("teach-v311", &text, &["protocols.mqtt.version=\"3.1.1\""]);
    let v5 = run_text("teach-v5", &text, &["protocols.mqtt.version=5.0"]);
    let per = |dir: &Path, col: &str| {
        let r = run_row(dir, "telemetry");
        num(&r, col) / num(&r, "delivered")
    };
    // every reading arrives in both
    for d in [&v311, &v5] {
        let r = run_row(d, "telemetry");
        assert_eq!(num(&r, "delivered"), num(&r, "intended"));
    }
    // sensor leg (sensor → router → broker, 2 links): topic (47 B) − alias
    // property (3 B) − property length (1 B) = 43 B saved per link; the
    // dashboard leg (1 link, Topic Alias Maximum 1: one sensor in ten
    // aliased) saves 44/10 − 1 ≈ 3.4 B
    let topic = "hv100/bld1518/basement/hvac/sensor0/temperature".len() as f64;
    let expected = 2.0 * (topic - 4.0) + (topic - 3.0) / 10.0 - 1.0;
    let saved = per(&v311, "bytes_protocol") - per(&v5, "bytes_protocol");
    assert!(
        (saved - expected).abs() < 2.0,
        "5.0 saves {saved:.1} B of MQTT per reading, expected ≈ {expected:.1}"
    );
    assert_eq!(per(&v311, "bytes_payload"), per(&v5, "bytes_payload"));
    // the sessions: 3.1.1 keeps what queued during the outage, 5.0's
    // expired session does not
    let got = |dir: &Path| num(&run_row(dir, "commands"), "delivered");
    let (a, b) = (got(&v311), got(&v5));
    assert!(a >= b + 5.0, "3.1.1 delivered {a}, 5.0 {b}");
    let late = messages(&v311)
        .iter()
        .filter(|m| m["flow"] == "commands" && delivered(m) && num(m, "latency_ms") > 10_000.0)
        .count();
    assert!(late >= 5, "3.1.1 delivers queued set-points late: {late}");
    // those of the outage's first minute went into the dead connection:
    // in flight, resent when the actuator is back — after the 60 s drain,
    // so late deliveries; at 3.1.1 every set-point reaches it, at 5.0 the
    // expired session took them with it
    let row = run_row(&v311, "commands");
    assert!(
        num(&row, "late_deliveries") >= 5.0,
        "in-flight set-points resent late"
    );
    assert_eq!(
        num(&row, "delivered") + num(&row, "late_deliveries"),
        num(&row, "intended"),
        "3.1.1 loses no set-point"
    );
    assert_eq!(num(&run_row(&v5, "commands"), "late_deliveries"), 0.0);
    assert_eq!(
        mqtt_metric(&v5, "broker", "broker", "sessions_expired"),
        1.0,
        "the actuator's session expired"
    );
}

/// `qossim sweep` of a teaching scenario into a temp dir; the dir.
fn sweep_teaching(name: &str, tag: &str) -> std::path::PathBuf {
    let f = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("scenarios/teaching")
        .join(name);
    let out = common::temp_dir(tag);
    let st = std::process::Command::new(env!("CARGO_BIN_EXE_qossim"))
        .arg("sweep")
        .arg(&f)
        .args(["--quiet", "--out"])
        .arg(&out)
        .status()
        .expect("qossim sweep");
    assert!(st.success(), "qossim sweep {name}");
    out
}

/// "What does a reading cost on the air?": the sweep runs one stack per
/// point; per delivered reading, 6LoWPAN costs fewer bytes than IPv4 in
/// 802.15.4 frames for every protocol, raw MQTT-SN fewest, MQTT/TCP most
/// (two frames more); airtime and energy follow from the bytes.
#[test]
fn air_cost_6lowpan_beats_ipv4_raw_mqttsn_is_cheapest_and_tcp_dearest() {
    let out = sweep_teaching("air-cost.toml", "teach-air");
    let rows = read_csv(&out.join("runs.csv"));
    assert_eq!(rows.len(), 7, "one run per stack");
    // per delivered reading: (frames, bytes, airtime ms, mJ) of a stack
    let stack = |proto: &str, ip: &str, transport: &str| -> [f64; 4] {
        let r = rows
            .iter()
            .find(|r| {
                r["protocol"] == proto
                    && r["protocols.ip.version"] == ip
                    && r["protocols.mqttsn.transport"] == transport
            })
            .unwrap_or_else(|| panic!("no run {proto} v{ip} {transport}"));
        assert_eq!(num(r, "delivered"), num(r, "intended"), "{proto} v{ip}");
        let d = num(r, "delivered");
        assert!(d >= 50.0, "{proto} v{ip}: {d} readings");
        let v = [
            num(r, "frames_air") / d,
            num(r, "bytes_air") / d,
            num(r, "airtime_ms_air") / d,
            num(r, "energy_mj_air") / d,
        ];
        // 250 kbit/s: 32 µs a byte; energy: the sender at 17.4 mA and the
        // two other radios at 18.8 mA, 3 V (CC2420)
        assert!((v[2] - v[1] * 0.032).abs() < 1e-6, "{proto}: airtime {v:?}");
        let mj = v[2] * 1e-3 * 3.0 * (17.4 + 2.0 * 18.8);
        assert!((v[3] - mj).abs() < 1e-6, "{proto}: energy {v:?} vs {mj}");
        v
    };
    let coap4 = stack("coap", "4", "udp");
    let coap6 = stack("coap", "6", "udp");
    let sn4 = stack("mqttsn", "4", "udp");
    let sn6 = stack("mqttsn", "6", "udp");
    let raw = stack("mqttsn", "6", "raw");
    let mqtt4 = stack("mqtt", "4", "udp");
    let mqtt6 = stack("mqtt", "6", "udp");
    // a datagram exchange is 4 frames (request, response, two link ACKs);
    // MQTT-SN's keep-alive adds a little, MQTT/TCP's ACK two frames
    assert_eq!(coap4[0], 4.0);
    assert_eq!(coap6[0], 4.0);
    for sn in [sn4, sn6, raw] {
        assert!((4.0..4.2).contains(&sn[0]), "MQTT-SN frames {sn:?}");
    }
    for m in [mqtt4, mqtt6] {
        assert!((6.0..6.2).contains(&m[0]), "MQTT frames {m:?}");
    }
    // 6LoWPAN: per IP data frame (two a reading) the 28 bytes of IPv4 +
    // UDP become an IPHC + NHC header of 6 to 16 bytes; for TCP only the
    // 20-byte IPv4 header is compressed
    for (v4, v6) in [(coap4, coap6), (sn4, sn6)] {
        let saved = (v4[1] - v6[1]) / 2.0;
        assert!(
            (12.0..=22.0).contains(&saved),
            "UDP saves {saved} B a frame"
        );
    }
    let saved_tcp = (mqtt4[1] - mqtt6[1]) / 3.0;
    assert!(
        (10.0..=18.0).contains(&saved_tcp),
        "TCP saves {saved_tcp} B a frame"
    );
    // raw frames drop what is left of IP and UDP
    assert!(raw[1] + 10.0 < sn6[1], "raw {raw:?} vs UDP {sn6:?}");
    // the order the question is about, in bytes and energy
    for k in [1, 3] {
        assert!(raw[k] < sn6[k] && sn6[k] < coap6[k] && coap6[k] < mqtt6[k]);
        assert!(sn4[k] < coap4[k] && coap4[k] < mqtt4[k]);
        assert!(coap6[k] < coap4[k] && sn6[k] < sn4[k] && mqtt6[k] < mqtt4[k]);
    }
    // the chart that answers it, with MQTT-SN's two transports told apart
    let svg = std::fs::read_to_string(out.join("charts/energy_mj_air_per_delivered_by_series.svg"))
        .expect("energy chart");
    for label in [
        "CoAP CON",
        "MQTT QoS 1",
        "mqtt-sn over raw",
        "mqtt-sn over udp",
    ] {
        assert!(svg.contains(label), "legend lacks {label}");
    }
    for name in ["frames", "bytes", "airtime_ms"] {
        assert!(out
            .join(format!("charts/{name}_air_per_delivered_by_series.svg"))
            .exists());
    }
}

/// The air-cost sweep sets `subscribe_with` on every point: the flow's
/// own protocol written out is its default (CoAP included), while another
/// protocol stays an error for CoAP.
#[test]
fn subscribe_with_own_protocol_is_the_default_and_others_stay_mqtt_only() {
    let text = teaching("air-cost.toml");
    let a = load(&text, &[]);
    let b = load(&text, &["flows.reading.subscribe_with=\"coap\""]);
    assert_eq!(a.flows[0].subscribe_with, b.flows[0].subscribe_with);
    let o = vec!["flows.reading.subscribe_with=\"mqtt\"".to_string()];
    let e = qossim::scenario::load_str(&text, "air-cost.toml", Path::new("."), &o)
        .expect_err("coap with mqtt subscribers")
        .to_string();
    assert!(
        e.contains("flows.reading.subscribe_with") && e.contains("not \"coap\""),
        "{e}"
    );
}

/// "What does TLS cost a sensor on a lossy link?": the sweep runs six
/// stacks × two session kinds × three losses. Security costs bytes on
/// every reading (records) and a handshake per connection: with a session
/// per reading that dominates; connecting takes longer the more round
/// trips and bytes a handshake has, and longer still with loss.
#[test]
fn tls_cost_handshakes_dominate_per_message_and_cost_round_trips() {
    let out = sweep_teaching("tls-cost.toml", "teach-tls");
    let rows = read_csv(&out.join("runs.csv"));
    assert_eq!(rows.len(), 36, "6 stacks × 2 sessions × 3 losses");
    // the run of a stack: (protocol, MQTT transport, TLS version, CoAP
    // security), a session kind and a loss
    let run = |stack: (&str, &str, &str, &str), session: &str, loss: &str| {
        rows.iter()
            .find(|r| {
                r["protocol"] == stack.0
                    && r["protocols.mqtt.transport"] == stack.1
                    && r["protocols.tls.version"] == stack.2
                    && r["protocols.coap.security"] == stack.3
                    && r["protocols.mqtt.session"] == session
                    && r["links.access.loss.p"] == loss
            })
            .unwrap_or_else(|| panic!("no run {stack:?} {session} {loss}"))
    };
    let tcp = ("mqtt", "tcp", "1.3", "none");
    let tls12 = ("mqtt", "tls", "1.2", "none");
    let tls13 = ("mqtt", "tls", "1.3", "none");
    let wss = ("mqtt", "wss", "1.3", "none");
    let coap = ("coap", "tcp", "1.3", "none");
    let dtls = ("coap", "tcp", "1.3", "dtls");
    let per =
        |r: &std::collections::BTreeMap<String, String>, c: &str| num(r, c) / num(r, "delivered");
    for loss in ["0.0", "0.1", "0.2"] {
        for session in ["per_message", "persistent"] {
            for s in [tcp, tls12, tls13, wss, coap, dtls] {
                let r = run(s, session, loss);
                assert!(num(r, "delivery_ratio") > 0.95, "{s:?} {session} {loss}");
                let secure = s.1 != "tcp" || s.3 == "dtls";
                assert_eq!(num(r, "bytes_security") > 0.0, secure, "{s:?}");
                // plain CoAP opens no connection: no time to connect
                assert_eq!(r["connect_ms_mean"].is_empty(), s == coap, "{s:?}");
            }
            // every reading a record (≥ 22 bytes) on each hop it crosses
            for s in [tls12, tls13, wss, dtls] {
                let plain = if s.0 == "coap" { coap } else { tcp };
                let extra = per(run(s, session, loss), "bytes_on_wire")
                    - per(run(plain, session, loss), "bytes_on_wire");
                assert!(extra > 44.0, "{s:?} {session} {loss}: {extra} B");
            }
        }
        // a session per reading pays a handshake per reading: security
        // bytes per reading five times the persistent session's and more
        for s in [tls12, tls13, wss, dtls] {
            let pm = run(s, "per_message", loss);
            let p = run(s, "persistent", loss);
            assert!(
                per(pm, "bytes_security") > 5.0 * per(p, "bytes_security"),
                "{s:?} {loss}"
            );
            // (at 20 % loss a reading may join a handshake still running)
            assert!(num(pm, "secure_handshakes") >= 0.7 * num(pm, "delivered"));
            assert!(num(p, "secure_handshakes") <= 2.0, "{s:?}: one per client");
        }
    }
    // time to connect on the clean link: TCP's round trip, then TLS 1.3's
    // one, TLS 1.2's two, the WebSocket upgrade's one more
    let conn = |s, loss| num(run(s, "per_message", loss), "connect_ms_mean");
    assert!(conn(tcp, "0.0") < conn(tls13, "0.0"));
    assert!(conn(tls13, "0.0") < conn(tls12, "0.0"));
    assert!(conn(tls13, "0.0") < conn(wss, "0.0"));
    assert!(conn(dtls, "0.0") < conn(tls12, "0.0"));
    // lost flights wait for their timers
    for s in [tcp, tls12, tls13, wss, dtls] {
        assert!(conn(s, "0.2") > conn(s, "0.0") + 200.0, "{s:?}");
    }
    // the charts that answer it
    let svg =
        std::fs::read_to_string(out.join("charts/connect_ms_mean_vs_links.access.loss.p.svg"))
            .expect("connect chart");
    for label in [
        "mqtt over tls, tls 1.2",
        "mqtt over wss",
        "coap security dtls",
    ] {
        assert!(svg.contains(label), "legend lacks {label}");
    }
    assert!(
        !svg.contains("mqtt over tcp, tls"),
        "TLS version shown without TLS"
    );
    assert!(out
        .join("charts/bytes_on_wire_per_delivered_vs_links.access.loss.p.svg")
        .exists());
    assert!(out
        .join("charts/bytes_by_layer_vs_links.access.loss.p__MQTT_QoS_1__mqtt_over_tls__tls_1.2__session_per_message.svg")
        .exists());
}
