//! DTLS in the simulated world (issue 21): CoAP and MQTT-SN with
//! `security = "dtls"` run the `transport::dtls` endpoints through the
//! host's UDP, driven through the scenario model like any run. The
//! application's bytes stay what they were; every record adds its 29
//! bytes (AES-128-CCM-8) and the handshakes are `bytes_security`; flights
//! are retransmitted on RFC 6347's timer; the captures decode as DTLS.

mod common;
use common::sim::*;
use common::tshark;

/// A sensor 50 ms from its CoAP server (RTT 100 ms), one 20-byte CON PUT
/// every 2 s.
const COAP: &str = r#"
name = "dtls"
seed = 3
duration = "40 s"
warmup = "0 s"
drain = "20 s"

[[nodes]]
name = "sensor"
role = "client"

[[nodes]]
name = "server"
role = "client"

[[links]]
a = "sensor"
b = "server"
delay = "50 ms"
rate = "10 Mbit/s"

[[flows]]
name = "t"
pattern = "point_to_point"
protocol = "coap"
reliability = "con"
publishers = ["sensor"]
receivers = ["server"]
topic = "r/{name}"
payload_bytes = 20
interval = "2 s"
"#;

fn packets(dir: &std::path::Path) -> Vec<std::collections::BTreeMap<String, String>> {
    read_csv(&dir.join("packets.csv"))
}

/// Times (ms) of the datagrams of `kind` that `from` put on the wire.
fn times(dir: &std::path::Path, from: &str, kind: &str) -> Vec<f64> {
    packets(dir)
        .iter()
        .filter(|r| r["from"] == from && r["kind"] == kind)
        .map(|r| num(r, "time_ms"))
        .collect()
}

#[test]
fn coap_over_dtls_adds_29_bytes_per_datagram_and_the_handshake() {
    let plain = run_text("dtls-plain", COAP, &[]);
    let p = run_row(&plain, "t");
    let dir = run_text("dtls-coap", COAP, &["protocols.coap.security=\"dtls\""]);
    let r = run_row(&dir, "t");
    assert_layers_sum(&r);
    assert_eq!(num(&r, "delivered"), num(&r, "intended"));
    assert_eq!(num(&r, "delivered"), num(&p, "delivered"));
    // the CoAP bytes do not change
    for c in ["bytes_payload", "bytes_protocol"] {
        assert_eq!(num(&r, c), num(&p, c), "{c}");
    }
    assert_eq!(num(&p, "bytes_security"), 0.0);
    // every CoAP datagram is one record: 13 header + 8 nonce + 8 tag
    let rows = packets(&dir);
    let coap = rows
        .iter()
        .filter(|x| x["kind"].starts_with("coap_"))
        .count() as f64;
    let handshake: f64 = rows
        .iter()
        .filter(|x| x["kind"].starts_with("dtls_"))
        .map(|x| num(x, "bytes") - 28.0)
        .sum();
    assert!(coap >= 40.0, "{coap} CoAP datagrams");
    assert_eq!(num(&r, "bytes_security"), 29.0 * coap + handshake);
    // one association, its handshake the cookie exchange and two round
    // trips more: 3 RTT on a 100 ms path
    assert_eq!(num(&r, "secure_handshakes"), 1.0);
    let connect = num(&r, "connect_ms_mean");
    assert!((300.0..310.0).contains(&connect), "{connect} ms");
    assert_eq!(
        times(&dir, "sensor", "dtls_handshake").len(),
        3,
        "CH, CH+cookie, CKE/CCS/Fin"
    );
    assert_eq!(
        times(&dir, "server", "dtls_handshake").len(),
        3,
        "HVR, SH..SHD, CCS/Fin"
    );
    // the port follows the choice (RFC 7252 §12.7)
    let sc = load(COAP, &["protocols.coap.security=\"dtls\""]);
    assert_eq!(sc.protocols.coap.port, 5684);
    assert_eq!(load(COAP, &[]).protocols.coap.port, 5683);
}

#[test]
fn a_dead_server_sees_the_client_hello_at_1_3_7_s() {
    // the server is down from the start: the ClientHello goes unanswered
    let text = format!(
        "{COAP}
[[events]]
at = \"0 s\"
action = \"node_crash\"
node = \"server\"
"
    );
    let first = |dir: &std::path::Path| {
        let t = times(dir, "sensor", "dtls_handshake");
        let t0 = t[0];
        t.iter()
            .map(|x| ((x - t0) / 1000.0 * 1e6).round() / 1e6)
            .collect::<Vec<f64>>()
    };
    let dir = run_text("dtls-dead", &text, &["protocols.coap.security=\"dtls\""]);
    let t = first(&dir);
    // RFC 6347 §4.2.4.1: 1 s, doubling (OpenSSL's schedule)
    assert_eq!(t[..6], [0.0, 1.0, 3.0, 7.0, 15.0, 31.0], "{t:?}");
    // RFC 7925 §11's 9 s
    let dir = run_text(
        "dtls-dead9",
        &text,
        &[
            "protocols.coap.security=\"dtls\"",
            "protocols.dtls.initial_timer=\"9 s\"",
        ],
    );
    assert_eq!(first(&dir)[..3], [0.0, 9.0, 27.0]);
    // giving up is a security failure of the flow; the next reading tries
    // again with a new association
    let dir = run_text(
        "dtls-giveup",
        &text,
        &[
            "protocols.coap.security=\"dtls\"",
            "protocols.dtls.max_retransmissions=2",
        ],
    );
    let r = run_row(&dir, "t");
    assert!(num(&r, "security_failures") >= 2.0, "{r:?}");
    assert_eq!(num(&r, "delivered"), 0.0);
    assert_eq!(num(&r, "secure_handshakes"), 0.0);
    assert_layers_sum(&r);
}

#[test]
fn a_session_per_message_pays_a_handshake_per_reading() {
    let dir = run_text(
        "dtls-pm",
        COAP,
        &[
            "protocols.coap.security=\"dtls\"",
            "protocols.dtls.session=\"per_message\"",
        ],
    );
    let r = run_row(&dir, "t");
    assert_layers_sum(&r);
    let delivered = num(&r, "delivered");
    assert_eq!(delivered, num(&r, "intended"));
    assert_eq!(num(&r, "secure_handshakes"), delivered);
    let connect = num(&r, "connect_ms_mean");
    assert!((300.0..310.0).contains(&connect), "{connect} ms");
    // each ends with the client's close_notify
    assert_eq!(times(&dir, "sensor", "dtls_alert").len() as f64, delivered);
    let persistent = run_text("dtls-pm-p", COAP, &["protocols.coap.security=\"dtls\""]);
    let p = run_row(&persistent, "t");
    assert!(
        num(&r, "bytes_security") > 5.0 * num(&p, "bytes_security"),
        "{} vs {}",
        num(&r, "bytes_security"),
        num(&p, "bytes_security")
    );
}

#[test]
fn a_damaged_record_is_dropped_and_coap_retransmits() {
    // one byte of the fourth PUT's record flipped (UDP checksum
    // recomputed, so DTLS sees it): its tag fails, the record is dropped
    // (RFC 6347 §4.1.2.7), CoAP's retransmission delivers the reading
    let text = format!(
        "{COAP}
[[events]]
at = \"0 s\"
action = \"corrupt_packet\"
layer = \"payload\"
offset = 30
match = {{ kind = \"coap_con\", to = \"server\", nth = 4 }}
"
    );
    let dir = run_text("dtls-corrupt", &text, &["protocols.coap.security=\"dtls\""]);
    let r = run_row(&dir, "t");
    assert_eq!(num(&r, "delivered"), num(&r, "intended"), "{r:?}");
    assert!(num(&r, "retransmissions") >= 1.0, "{r:?}");
    assert_eq!(
        num(&r, "secure_handshakes"),
        1.0,
        "the association survives"
    );
}

/// Three sensors and three controllers through an MQTT-SN gateway, the
/// shipped point-to-point scenario, over DTLS.
#[test]
fn mqttsn_over_dtls_delivers_and_decodes_as_dtls() {
    let text = scenario_file("mqttsn-point-to-point.toml");
    let over = [
        "protocols.mqttsn.security=\"dtls\"",
        "duration=\"2 min\"",
        "warmup=\"0 s\"",
    ];
    let dir = run_text("dtls-sn", &text, &over);
    let r = run_row(&dir, "readings");
    assert_layers_sum(&r);
    assert!(num(&r, "delivery_ratio") > 0.95, "{r:?}");
    assert!(num(&r, "bytes_security") > 0.0);
    // the clients' associations with the gateway (SEARCHGW and ADVERTISE
    // stay broadcast, outside DTLS)
    assert!(num(&r, "secure_handshakes") >= 3.0, "{r:?}");
    if !tshark::available("mqttsn_over_dtls_delivers_and_decodes_as_dtls") {
        return;
    }
    let pcap = dir.join("pcap/sensor-1--gw.pcap");
    tshark::assert_clean(&pcap, &["-d", "udp.port==1883,dtls"], None);
    let n = tshark::lines(&tshark::run(
        &pcap,
        &[
            "-d",
            "udp.port==1883,dtls",
            "-Y",
            "dtls.record.content_type == 23",
        ],
    ))
    .len();
    assert!(n > 10, "{n} application-data records");
}

#[test]
fn coap_dtls_capture_decodes_with_its_suite() {
    if !tshark::available("coap_dtls_capture_decodes_with_its_suite") {
        return;
    }
    for (suite, code) in [
        ("psk-aes128-ccm8", "0xc0a8"),
        ("psk-aes128-gcm", "0x00a8"),
        ("ecdhe-psk-chacha20", "0xccac"),
    ] {
        let dir = run_text(
            "dtls-pcap",
            COAP,
            &[
                "protocols.coap.security=\"dtls\"",
                &format!("protocols.dtls.suite=\"{suite}\""),
            ],
        );
        let pcap = dir.join("pcap/sensor--server.pcap");
        tshark::assert_clean(&pcap, &[], None);
        let rows = tshark::field_rows(
            &pcap,
            &["-Y", "dtls.handshake.type == 2"],
            &["dtls.handshake.ciphersuite"],
        );
        assert_eq!(rows.len(), 1, "{suite}: one ServerHello");
        assert_eq!(rows[0][0], code, "{suite}");
    }
}

#[test]
fn bad_dtls_settings_are_refused_with_the_field() {
    let err = |text: &str, over: &[&str]| -> String {
        let o: Vec<String> = over.iter().map(|s| s.to_string()).collect();
        qossim::scenario::load_str(text, "t.toml", std::path::Path::new("."), &o)
            .expect_err("refused")
            .to_string()
    };
    let e = err(COAP, &["protocols.coap.security=\"tls\""]);
    assert!(
        e.contains("protocols.coap.security") && e.contains("dtls"),
        "{e}"
    );
    let e = err(COAP, &["protocols.dtls.suite=\"aes\""]);
    assert!(
        e.contains("protocols.dtls.suite") && e.contains("psk-aes128-ccm8"),
        "{e}"
    );
    let e = err(
        COAP,
        &[
            "protocols.dtls.initial_timer=\"10 s\"",
            "protocols.dtls.max_timer=\"5 s\"",
        ],
    );
    assert!(e.contains("protocols.dtls.max_timer"), "{e}");
    let sn = scenario_file("mqttsn-point-to-point.toml");
    let e = err(
        &sn,
        &[
            "protocols.mqttsn.transport=\"raw\"",
            "protocols.mqttsn.security=\"dtls\"",
        ],
    );
    assert!(
        e.contains("protocols.mqttsn.security") && e.contains("UDP"),
        "{e}"
    );
}
