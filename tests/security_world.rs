//! The security overlays in the simulated world (issue 21): MQTT over TLS
//! 1.2 / 1.3, WebSocket and WebSocket over TLS between clients and the
//! broker, driven through the scenario model like any run. The MQTT bytes
//! stay what they were; the overlay's bytes are `bytes_security`; the
//! handshake costs the round trips its version says; the captures decode
//! in tshark.

mod common;
use common::sim::*;
use common::tshark;

/// A sensor 50 ms from the broker (RTT 100 ms), a dashboard 1 ms away;
/// one 20-byte reading every 2 s at QoS 1.
const BASE: &str = r#"
name = "sec"
seed = 4
duration = "40 s"
warmup = "5 s"
drain = "20 s"

[[nodes]]
name = "sensor"
role = "client"

[[nodes]]
name = "broker"
role = "broker"

[[nodes]]
name = "dash"
role = "client"

[[links]]
a = "sensor"
b = "broker"
delay = "50 ms"
rate = "10 Mbit/s"

[[links]]
a = "dash"
b = "broker"
delay = "1 ms"
rate = "10 Mbit/s"

[[flows]]
name = "t"
pattern = "point_to_point"
protocol = "mqtt"
reliability = "qos1"
publishers = ["sensor"]
receivers = ["dash"]
topic = "readings/{name}"
payload_bytes = 20
interval = "2 s"
"#;

/// MQTT packets the flow sent in the measured window (each in its own TLS
/// record or WebSocket frame on a lossless path).
fn mqtt_packets_counted(dir: &std::path::Path) -> usize {
    read_csv(&dir.join("packets.csv"))
        .iter()
        .filter(|r| r["kind"].starts_with("mqtt_") && num(r, "time_ms") >= 5000.0)
        .count()
}

fn client_handshake_ms(dir: &std::path::Path) -> Vec<f64> {
    read_csv(&dir.join("connections.csv"))
        .iter()
        .filter(|r| r["side"] == "client" && r["node"] == "sensor")
        .map(|r| num(r, "secure_handshake_ms"))
        .collect()
}

#[test]
fn tls_carries_the_same_mqtt_with_a_22_or_29_byte_record_each() {
    let plain = run_text("sec-plain", BASE, &[]);
    let p = run_row(&plain, "t");
    for (version, per_record) in [("1.3", 22.0), ("1.2", 29.0)] {
        let dir = run_text(
            "sec-tls",
            BASE,
            &[
                "protocols.mqtt.transport=\"tls\"",
                &format!("protocols.tls.version=\"{version}\""),
            ],
        );
        let r = run_row(&dir, "t");
        assert_layers_sum(&r);
        assert_eq!(num(&r, "delivered"), num(&r, "intended"), "TLS {version}");
        assert_eq!(num(&r, "delivered"), num(&p, "delivered"));
        // the MQTT bytes do not change; the records come on top
        for c in ["bytes_payload", "bytes_protocol"] {
            assert_eq!(num(&r, c), num(&p, c), "TLS {version}: {c}");
        }
        let n = mqtt_packets_counted(&dir) as f64;
        assert!(n > 40.0, "{n} MQTT packets");
        assert_eq!(
            num(&r, "bytes_security"),
            per_record * n,
            "TLS {version}: one record per MQTT packet"
        );
        assert_eq!(num(&p, "bytes_security"), 0.0);
    }
}

#[test]
fn tls_handshake_takes_the_round_trips_of_its_version() {
    // RTT 100 ms: the client is secured 1 RTT after TCP with TLS 1.3 and
    // its PSK resumption, 2 with TLS 1.2 full, 1 with 1.2 resumption
    for (version, resumption, rtts) in [
        ("1.3", "none", 1.0),
        ("1.2", "none", 2.0),
        ("1.3", "resume", 1.0),
        ("1.2", "resume", 1.0),
    ] {
        let dir = run_text(
            "sec-rtt",
            BASE,
            &[
                "protocols.mqtt.transport=\"tls\"",
                "protocols.mqtt.session=\"per_message\"",
                &format!("protocols.tls.version=\"{version}\""),
                &format!("protocols.tls.resumption=\"{resumption}\""),
            ],
        );
        let hs = client_handshake_ms(&dir);
        assert!(hs.len() > 10, "{version}/{resumption}: {hs:?}");
        // the first connection has no session to resume: a full handshake
        let later = &hs[1..];
        for &ms in later {
            assert!(
                ms >= 100.0 * rtts && ms < 100.0 * rtts + 25.0,
                "TLS {version} {resumption}: {ms} ms, expected {rtts} RTT"
            );
        }
        let full = if version == "1.2" { 2.0 } else { 1.0 };
        assert!(
            hs[0] >= 100.0 * full && hs[0] < 100.0 * full + 25.0,
            "{hs:?}"
        );
    }
}

#[test]
fn overlay_captures_decode_as_tls_and_websocket() {
    if !tshark::available("overlay_captures_decode_as_tls_and_websocket") {
        return;
    }
    for transport in ["tls", "websocket", "wss"] {
        let dir = run_text(
            "sec-pcap",
            BASE,
            &[&format!("protocols.mqtt.transport=\"{transport}\"")],
        );
        let r = run_row(&dir, "t");
        assert_eq!(num(&r, "delivered"), num(&r, "intended"), "{transport}");
        assert_layers_sum(&r);
        let pcap = dir.join("pcap/sensor--broker.pcap");
        let lua = format!(
            "lua_script:{}/scripts/wireshark/mqtt-ws.lua",
            env!("CARGO_MANIFEST_DIR")
        );
        let opts: Vec<&str> = match transport {
            "websocket" => vec!["-X", &lua],
            _ => vec![],
        };
        let opts = opts.as_slice();
        tshark::assert_clean(&pcap, opts, None);
        let filter = match transport {
            "websocket" => "websocket && mqtt",
            _ => "tls.record",
        };
        let mut args = opts.to_vec();
        args.extend(["-Y", filter]);
        let n = tshark::lines(&tshark::run(&pcap, &args)).len();
        assert!(n > 20, "{transport}: {n} frames match {filter}");
    }
}

/// A TLS record the broker cannot read (one byte of the fourth PUBLISH's
/// record, after the warm-up, flipped; the TCP checksum recomputed so TLS
/// sees it) makes the
/// broker's TLS layer send its alert and close: counted in
/// `security_failures`, no panic, and the client reconnects (a full
/// handshake again) and goes on delivering.
#[test]
fn a_corrupt_record_ends_the_connection_and_is_counted() {
    let text = format!(
        "{BASE}
[protocols.mqtt]
transport = \"tls\"

[[events]]
at = \"0 s\"
action = \"corrupt_packet\"
layer = \"payload\"
offset = 0
match = {{ kind = \"mqtt_publish\", to = \"broker\", nth = 4 }}
"
    );
    let dir = run_text("sec-corrupt", &text, &[]);
    let r = run_row(&dir, "t");
    assert!(num(&r, "security_failures") >= 1.0, "{r:?}");
    assert_layers_sum(&r);
    // the sensor connected again and its later readings arrive
    let hs = client_handshake_ms(&dir);
    assert!(hs.len() >= 2, "reconnected: {hs:?}");
    assert!(num(&r, "delivered") >= num(&r, "intended") - 3.0, "{r:?}");
    // and the plain run counts nothing
    let plain = run_text("sec-corrupt-plain", BASE, &[]);
    assert_eq!(num(&run_row(&plain, "t"), "security_failures"), 0.0);
}

/// HTTPS (`[protocols.http] tls = true`): the same HTTP/1.1 POSTs inside
/// TLS records on port 443, one record per write, decoded as TLS.
#[test]
fn https_carries_the_same_http_in_tls_records_on_443() {
    let text = BASE
        .replace("protocol = \"mqtt\"", "protocol = \"http\"")
        .replace("reliability = \"qos1\"", "reliability = \"confirmed\"")
        .replace("role = \"broker\"", "role = \"server\"")
        .replace("receivers = [\"dash\"]", "receivers = [\"broker\"]");
    // from the start, so the connection's handshake is measured
    let text = text.replace("warmup = \"5 s\"", "warmup = \"0 s\"");
    let plain = run_text("https-plain", &text, &[]);
    let p = run_row(&plain, "t");
    let dir = run_text("https", &text, &["protocols.http.tls=true"]);
    let r = run_row(&dir, "t");
    assert_layers_sum(&r);
    assert_eq!(num(&r, "delivered"), num(&r, "intended"));
    assert!(num(&r, "delivered") >= 15.0);
    for c in ["bytes_payload", "bytes_protocol"] {
        assert_eq!(num(&r, c), num(&p, c), "{c}");
    }
    assert!(num(&r, "bytes_security") > 0.0);
    assert_eq!(num(&p, "bytes_security"), 0.0);
    assert_eq!(
        num(&r, "secure_handshakes"),
        1.0,
        "one persistent connection"
    );
    assert_eq!(
        load(&text, &["protocols.http.tls=true"])
            .protocols
            .http
            .port,
        443
    );
    if !tshark::available("https_carries_the_same_http_in_tls_records_on_443") {
        return;
    }
    let pcap = dir.join("pcap/sensor--broker.pcap");
    tshark::assert_clean(&pcap, &[], None);
    let apps = tshark::lines(&tshark::run(
        &pcap,
        &["-Y", "tcp.port == 443 && tls.app_data"],
    ))
    .len();
    assert!(apps >= 30, "{apps} application-data records");
}
