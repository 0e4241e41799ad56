//! The calibration harness of the security overlays (issue 21 item 5,
//! docs/security.md "Calibration"): `scripts/security-calibrate.py --quick`
//! makes real TLS 1.2/1.3 handshakes (paho-mqtt → mosquitto), MQTT over
//! WebSocket with and without TLS (paho → websockify → mosquitto) and a
//! PSK DTLS exchange
//! (libcoap) on loopback, captures them and writes what they cost. These
//! tests run it and check the facts about the real stacks that the models
//! must reproduce: per-record overheads per cipher suite, round trips before
//! the first application byte, the flights' contents, the certificate chain
//! on the wire, WebSocket's subprotocol and masking.
//!
//! `models_match_the_real_handshakes` then builds each handshake with the
//! simulator's own overlays (`TlsEndpoint`, `WsEndpoint`, `DtlsEndpoint`)
//! configured as the real stacks were, and checks the model's bytes per
//! flight within 10 % of the capture's, the number of flights and the
//! round trips exactly (issue 21: "handshake bytes per flight within 10 %
//! of the real captures for the same certificate chain"). The script runs
//! once for both tests.
//!
//! Under `CI=true` a missing peer (or no permission to capture on `lo`)
//! fails the test; otherwise it says why and returns.

use std::path::Path;
use std::process::Command;
use std::sync::OnceLock;

use qossim::sim::SimTime;
use qossim::transport::dtls::{DtlsConfig, DtlsEndpoint, DtlsSuite};
use qossim::transport::layer::StreamLayer;
use qossim::transport::tls::{CipherSuite, KeyType, Resumption, TlsConfig, TlsVersion};
use qossim::transport::websocket::{WsConfig, WsEndpoint};
use serde_json::Value;

mod common;
use common::peers::{find_binary, paho_available, skip_or_fail};
use common::tls_pair::handshake;

const SCRIPT: &str = "scripts/security-calibrate.py";

/// Whether every real peer the script drives is here; when one is not,
/// [`skip_or_fail`] says which and how to install it.
fn peers_available() -> bool {
    if !common::tshark::available("security_calibration") || !paho_available() {
        return false;
    }
    let needed = [
        ("openssl", "install Debian package openssl"),
        ("mosquitto", "install Debian package mosquitto"),
        ("dumpcap", "install Debian package tshark"),
        ("websockify", "install Debian package websockify"),
    ];
    for (name, how) in needed {
        if common::peers::peer_binary(name, how).is_none() {
            return false;
        }
    }
    let libcoap = ["openssl", "gnutls"].iter().any(|f| {
        find_binary(&format!("coap-server-{f}")).is_some()
            && find_binary(&format!("coap-client-{f}")).is_some()
    });
    if !libcoap {
        skip_or_fail(
            "coap-server-openssl/coap-client-openssl (or -gnutls) not found \
             (install Debian package libcoap3-bin)",
        );
        return false;
    }
    let root = Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0");
    if !root {
        skip_or_fail("capturing on lo needs root (run the test as root)");
        return false;
    }
    true
}

/// Run the script in `--quick` mode; its JSON. Panics with its output when
/// it fails.
fn quick_run() -> Value {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let dir = common::temp_dir("security-calibration");
    let out = dir.join("calibration.json");
    let run = Command::new("python3")
        .arg(root.join(SCRIPT))
        .args(["--quick", "--out"])
        .arg(&out)
        .output()
        .expect("run python3");
    assert!(
        run.status.success(),
        "{SCRIPT} --quick failed ({}):\n{}\n{}",
        run.status,
        String::from_utf8_lossy(&run.stdout),
        String::from_utf8_lossy(&run.stderr)
    );
    let text = std::fs::read_to_string(&out).expect("read the JSON");
    let _ = std::fs::remove_dir_all(&dir);
    serde_json::from_str(&text).expect("the script's JSON parses")
}

/// The quick run's JSON, made once for all the tests of this file; `None`
/// when a peer is missing (outside CI).
fn calibration() -> Option<&'static Value> {
    static RUN: OnceLock<Option<Value>> = OnceLock::new();
    RUN.get_or_init(|| peers_available().then(quick_run))
        .as_ref()
}

fn case<'a>(v: &'a Value, name: &str) -> &'a Value {
    let c = &v["cases"][name]["reps"][0];
    assert!(c.is_object(), "case {name} missing: {}", v["cases"]);
    c
}

fn int(v: &Value, what: &str) -> i64 {
    v.as_i64()
        .unwrap_or_else(|| panic!("{what} is not an integer: {v}"))
}

fn strs(v: &Value) -> Vec<&str> {
    v.as_array()
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default()
}

/// TLS 1.2 AES-CBC-SHA256 (RFC 5246 §6.2.3.2): 5-byte header, 16-byte
/// explicit IV, 32-byte HMAC-SHA256, then padding (at least its length
/// byte) to the next 16-byte block.
fn cbc_sha256_record_bytes(plaintext: i64) -> i64 {
    5 + 16 + ((plaintext + 32) / 16 + 1) * 16
}

/// (D)TLS 1.2 AEAD record overhead: header (TLS 5, DTLS 13) + explicit
/// nonce (8 for AES-GCM and AES-CCM, none for ChaCha20-Poly1305, RFC 7905)
/// + tag (8 for the CCM_8 suites, else 16).
fn aead12_overhead(header: i64, suite: &str) -> i64 {
    let nonce = if suite.contains("_GCM_") || suite.contains("_CCM") {
        8
    } else {
        assert!(
            suite.contains("CHACHA20_POLY1305"),
            "not an AEAD suite: {suite}"
        );
        0
    };
    let tag = if suite.contains("CCM_8") { 8 } else { 16 };
    header + nonce + tag
}

#[test]
fn real_stacks_match_the_facts_the_models_use() {
    let Some(v) = calibration() else {
        return;
    };
    assert_eq!(v["schema"], "qossim-security-calibration/1");
    assert_eq!(v["mode"], "quick");
    let facts = &v["facts"];
    assert_eq!(
        facts["malformed"].as_array().map(Vec::len),
        Some(0),
        "tshark found malformed frames: {}",
        facts["malformed"]
    );

    // Per-record overheads. TLS 1.3 AEAD: 5 header + 1 inner content type
    // + 16 tag, whatever the AES-GCM key size.
    let s13 = facts["tls13_suite"].as_str().expect("tls13 suite");
    assert!(
        s13.starts_with("TLS_AES_") && s13.contains("_GCM_"),
        "{s13}"
    );
    assert_eq!(int(&facts["tls13_overhead"], "tls13 overhead"), 22);
    let s12 = facts["tls12_suite"].as_str().expect("tls12 suite");
    assert!(
        s12.contains("_GCM_"),
        "TLS 1.2 negotiated {s12}, not AES-GCM"
    );
    assert_eq!(int(&facts["tls12_overhead"], "tls12 overhead"), 29);
    assert_eq!(aead12_overhead(5, s12), 29);
    // AES-CBC-SHA256: every application record, of every length
    let cbc = case(v, "tls12_cbc");
    assert_eq!(
        cbc["cipher_suite"],
        "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256"
    );
    let apps = cbc["app_records"].as_array().expect("app records");
    assert_eq!(
        apps.len(),
        5,
        "CONNECT, CONNACK, PUBLISH, PUBACK, DISCONNECT"
    );
    for a in apps {
        let n = int(&a["mqtt_bytes"], "mqtt bytes");
        assert_eq!(
            int(&a["record_bytes"], "record bytes"),
            cbc_sha256_record_bytes(n),
            "{a}"
        );
    }
    // Every MQTT packet is its own record (paho writes one packet at a time).
    for name in ["tls12_ecdsa", "tls13_ecdsa"] {
        let kinds: Vec<&str> = case(v, name)["app_records"]
            .as_array()
            .expect("app records")
            .iter()
            .filter_map(|a| a["mqtt"].as_str())
            .collect();
        assert_eq!(
            kinds,
            ["CONNECT", "CONNACK", "PUBLISH", "PUBACK", "DISCONNECT"],
            "{name}"
        );
    }
    // DTLS: whatever libcoap negotiates, the overhead its suite implies.
    let sd = facts["dtls_suite"].as_str().expect("dtls suite");
    assert_eq!(
        int(&facts["dtls_overhead"], "dtls overhead"),
        aead12_overhead(13, sd),
        "{sd}"
    );
    assert_eq!(case(v, "dtls_psk")["version"], "DTLSv1.2");

    // Round trips after TCP's handshake before the first application byte.
    let rtt = |c: &str| int(&facts["round_trips"][c], c);
    for (c, n) in [
        ("tls12_ecdsa", 2),
        ("tls12_rsa", 2),
        ("tls12_mtls", 2),
        ("tls12_ecdsa_resumed", 1),
        ("tls13_ecdsa", 1),
        ("tls13_rsa", 1),
        ("tls13_mtls", 1),
        ("tls13_ecdsa_resumed", 1),
    ] {
        assert_eq!(rtt(c), n, "{c}");
        assert_eq!(
            facts["resumed"][c].as_bool(),
            Some(c.ends_with("_resumed")),
            "{c}"
        );
    }
    // DTLS: the cookie exchange adds one to TLS 1.2's two.
    assert_eq!(facts["dtls_cookie"], true);
    assert_eq!(rtt("dtls_psk"), 3);

    // Flights as the models must send them.
    let content = |c: &str| -> Vec<Vec<String>> {
        case(v, c)["flights"]
            .as_array()
            .expect("flights")
            .iter()
            .map(|f| {
                strs(&f["content"])
                    .iter()
                    .map(|s| s.trim_start_matches("handshake:").to_string())
                    .collect()
            })
            .collect()
    };
    assert_eq!(
        content("tls13_ecdsa"),
        [
            vec!["client_hello"],
            vec![
                "server_hello",
                "change_cipher_spec",
                "encrypted_extensions",
                "certificate",
                "certificate_verify",
                "finished"
            ],
            vec!["change_cipher_spec", "finished"],
            vec!["new_session_ticket", "new_session_ticket"],
        ]
    );
    assert_eq!(
        content("tls12_ecdsa"),
        [
            vec!["client_hello"],
            vec![
                "server_hello",
                "certificate",
                "server_key_exchange",
                "server_hello_done"
            ],
            vec!["client_key_exchange", "change_cipher_spec", "finished"],
            vec!["new_session_ticket", "change_cipher_spec", "finished"],
        ]
    );
    assert_eq!(
        content("tls12_ecdsa_resumed"),
        [
            vec!["client_hello"],
            vec!["server_hello", "change_cipher_spec", "finished"],
            vec!["change_cipher_spec", "finished"],
        ]
    );
    assert_eq!(
        content("dtls_psk")[..2],
        [vec!["client_hello"], vec!["hello_verify_request"]]
    );

    // The certificates on the wire are the chain the script made: leaf +
    // intermediate, of their DER sizes.
    let der = |n: &str| int(&v["certificates"][n]["der_bytes"], n);
    let sent = |c: &str, side: &str| -> Vec<i64> {
        case(v, c)[format!("certificates_{side}")]
            .as_array()
            .expect("certificates")
            .iter()
            .map(|x| int(x, "certificate size"))
            .collect()
    };
    for c in ["tls12_ecdsa", "tls13_ecdsa", "tls12_mtls", "tls13_mtls"] {
        assert_eq!(
            sent(c, "s"),
            [der("server_ecdsa"), der("intermediate_ca")],
            "{c}"
        );
    }
    for c in ["tls12_rsa", "tls13_rsa"] {
        assert_eq!(
            sent(c, "s"),
            [der("server_rsa"), der("intermediate_ca")],
            "{c}"
        );
    }
    for c in ["tls12_mtls", "tls13_mtls"] {
        assert_eq!(
            sent(c, "c"),
            [der("client_ecdsa"), der("intermediate_ca")],
            "{c}"
        );
    }
    // Flight bytes add up to the per-direction handshake bytes.
    for c in ["tls12_ecdsa", "tls13_ecdsa", "dtls_psk"] {
        let r = case(v, c);
        let sum: i64 = r["flights_record_bytes"]
            .as_array()
            .expect("flights")
            .iter()
            .map(|x| int(x, "flight bytes"))
            .sum();
        let total = int(&r["handshake_bytes_c"], "c") + int(&r["handshake_bytes_s"], "s");
        assert_eq!(sum, total, "{c}");
    }

    // MQTT over WebSocket: the subprotocol, masking and header sizes
    // (every MQTT packet here is ≤ 125 bytes: 2-byte header, + 4-byte mask
    // client→server).
    let ws = case(v, "websocket");
    assert_eq!(ws["request_subprotocol"], "mqtt");
    assert_eq!(ws["response_subprotocol"], "mqtt");
    assert_eq!(ws["response_status"], "HTTP/1.1 101 Switching Protocols");
    assert!(int(&ws["upgrade_request_bytes"], "upgrade request") > 100);
    assert!(int(&ws["upgrade_response_bytes"], "upgrade response") > 100);
    let frames = ws["frames"].as_array().expect("frames");
    for (i, f) in frames.iter().enumerate() {
        let client = f["dir"] == "c";
        assert_eq!(f["masked"].as_bool(), Some(client), "{f}");
        // binary frames carry MQTT; a Close frame (opcode 8) may end a
        // direction when websockify tears the connection down inside the
        // capture window (it depends on timing)
        let last_of_dir = frames[i + 1..].iter().all(|g| g["dir"] != f["dir"]);
        if f["opcode"] == 8 && last_of_dir {
            continue;
        }
        assert_eq!(f["opcode"], 2, "binary frames: {f}");
        assert_eq!(
            int(&f["header_bytes"], "header"),
            if client { 6 } else { 2 },
            "{f}"
        );
    }
    assert_eq!(int(&facts["ws_frame_header_c"], "c header"), 6);
    assert_eq!(int(&facts["ws_frame_header_s"], "s header"), 2);
    // The upgrade costs a round trip before CONNECT: 1 over TCP, TLS 1.3's
    // one more over TLS.
    assert_eq!(int(&facts["ws_round_trips_to_mqtt"], "ws"), 1);
    assert_eq!(int(&facts["wss_round_trips_to_mqtt"], "wss"), 2);
    // Over TLS 1.3 each MQTT packet costs a record (22) and a frame header.
    let wss = case(v, "wss");
    assert_eq!(wss["version"], "TLSv1.3");
    assert_eq!(int(&facts["wss_overhead_c"], "wss c"), 22 + 6);
    assert_eq!(int(&facts["wss_overhead_s"], "wss s"), 22 + 2);
    let carries: Vec<&str> = wss["app_records"]
        .as_array()
        .expect("app records")
        .iter()
        .filter_map(|a| a["carries"].as_str())
        // websockify's Close may fall inside the capture (timing)
        .filter(|c| *c != "websocket_close")
        .collect();
    assert_eq!(carries[..2], ["upgrade_request", "upgrade_response"]);
    assert_eq!(
        carries.len(),
        7,
        "upgrade and five MQTT packets: {carries:?}"
    );
}

/// The script refuses nonsense before starting anything.
#[test]
fn bad_arguments_are_refused() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let run = Command::new("python3")
        .arg(root.join(SCRIPT))
        .args(["--reps", "0", "--out", "/dev/null"])
        .output()
        .expect("run python3");
    assert_eq!(run.status.code(), Some(2), "{run:?}");
    assert!(String::from_utf8_lossy(&run.stderr).contains("--reps must be 1..50"));
}

/// One handshake, model against capture: bytes per flight (record headers
/// included; client first, then alternating), round trips before the
/// client's first application byte.
struct Compared {
    case: &'static str,
    model: Vec<usize>,
    real: Vec<usize>,
    model_rtt: usize,
    real_rtt: usize,
}

impl Compared {
    /// What is wrong with it, if anything: a flight count, a round trip
    /// count or a flight more than 10 % off.
    fn problems(&self) -> Vec<String> {
        let mut p = Vec::new();
        if self.model.len() != self.real.len() {
            p.push(format!(
                "{}: {} flights in the model, {} real",
                self.case,
                self.model.len(),
                self.real.len()
            ));
        }
        if self.model_rtt != self.real_rtt {
            p.push(format!(
                "{}: {} round trips in the model, {} real",
                self.case, self.model_rtt, self.real_rtt
            ));
        }
        for (i, (&m, &r)) in self.model.iter().zip(&self.real).enumerate() {
            if m.abs_diff(r) * 10 > r {
                p.push(format!(
                    "{}: flight {} is {m} bytes in the model, {r} real (over 10 % off)",
                    self.case,
                    i + 1
                ));
            }
        }
        p
    }

    fn row(&self) -> String {
        let cells: Vec<String> = self
            .model
            .iter()
            .zip(&self.real)
            .map(|(m, r)| {
                let pct = 100.0 * (*m as f64 - *r as f64) / *r as f64;
                format!("{m} / {r} ({pct:+.1} %)")
            })
            .collect();
        format!(
            "| {} | {} | {} / {} |",
            self.case,
            cells.join(" · "),
            self.model_rtt,
            self.real_rtt
        )
    }
}

/// Bytes per flight of a real connection, checking the flights alternate
/// from the client.
fn real_flights(c: &Value, name: &str) -> Vec<usize> {
    let flights = c["flights"].as_array().expect("flights");
    for (i, f) in flights.iter().enumerate() {
        let want = if i % 2 == 0 { "c" } else { "s" };
        assert_eq!(f["dir"], want, "{name}: flight {i} direction");
    }
    flights
        .iter()
        .map(|f| int(&f["record_bytes"], "record bytes") as usize)
        .collect()
}

/// The simulator's TLS overlay configured as the real connection was: the
/// version and suite it negotiated, the key type and the DER sizes of the
/// chains the script made, client authentication, resumption, the server
/// name the client sent.
fn tls_model(v: &Value, name: &'static str) -> Compared {
    let c = case(v, name);
    let der = |n: &str| int(&v["certificates"][n]["der_bytes"], n) as usize;
    let (key, leaf) = if name.contains("rsa") {
        (KeyType::Rsa2048, "server_rsa")
    } else {
        (KeyType::EcdsaP256, "server_ecdsa")
    };
    let suite = c["cipher_suite"].as_str().expect("cipher suite");
    let cfg = TlsConfig {
        version: match c["version"].as_str() {
            Some("TLSv1.2") => TlsVersion::Tls12,
            Some("TLSv1.3") => TlsVersion::Tls13,
            other => panic!("{name}: version {other:?}"),
        },
        suite: if suite.contains("AES_256_GCM") {
            CipherSuite::Aes256Gcm
        } else if suite.contains("AES_128_GCM") {
            CipherSuite::Aes128Gcm
        } else if suite.contains("AES_128_CBC_SHA256") {
            CipherSuite::Aes128CbcSha256
        } else {
            panic!("{name}: suite {suite} is not modelled")
        },
        resumption: if c["resumed"].as_bool() == Some(true) {
            Resumption::Resume
        } else {
            Resumption::None
        },
        mutual: name.contains("mtls"),
        key,
        server_chain: vec![der(leaf), der("intermediate_ca")],
        client_chain: vec![der("client_ecdsa"), der("intermediate_ca")],
        sni: v["inputs"]["sni"].as_str().map(String::from),
        seed: 1,
    };
    let run = handshake(&cfg, 1);
    Compared {
        case: name,
        model: run.wire.iter().map(|w| w.1.len()).collect(),
        real: real_flights(c, name),
        model_rtt: run.round_trips,
        real_rtt: int(&c["round_trips"], "round trips") as usize,
    }
}

/// The WebSocket upgrade: the request our client writes for the Host paho
/// sent, and our server's 101; one round trip before the first frame.
fn websocket_model(v: &Value) -> Compared {
    let c = case(v, "websocket");
    let cfg = WsConfig {
        host: c["request_host"].as_str().expect("request host").into(),
        ..WsConfig::default()
    };
    let mut client = WsEndpoint::client(cfg.clone(), 1);
    let mut server = WsEndpoint::server(cfg);
    let (mut request, mut response, mut app) = (Vec::new(), Vec::new(), Vec::new());
    client.connected(&mut request);
    server.connected(&mut Vec::new());
    server
        .input(&request, &mut response, &mut app)
        .expect("our server takes our request");
    let before = client.ready();
    client
        .input(&response, &mut Vec::new(), &mut app)
        .expect("our client takes our answer");
    assert!(!before && client.ready() && app.is_empty());
    Compared {
        case: "websocket upgrade",
        model: vec![request.len(), response.len()],
        real: vec![
            int(&c["upgrade_request_bytes"], "request") as usize,
            int(&c["upgrade_response_bytes"], "response") as usize,
        ],
        model_rtt: 1,
        real_rtt: int(&c["round_trips_to_mqtt"], "round trips") as usize,
    }
}

/// DTLS 1.2 with a PSK, lossless: the model's client and server with the
/// suite libcoap negotiated and the script's identity and hint; each
/// flight is what one side sends before the other answers.
fn dtls_model(v: &Value) -> Compared {
    let c = case(v, "dtls_psk");
    let suite = c["cipher_suite"].as_str().expect("suite");
    let cfg = DtlsConfig {
        suite: match suite {
            "TLS_ECDHE_PSK_WITH_CHACHA20_POLY1305_SHA256" => DtlsSuite::EcdhePskChacha20,
            "TLS_PSK_WITH_AES_128_CCM_8" => DtlsSuite::Psk128Ccm8,
            "TLS_PSK_WITH_AES_128_GCM_SHA256" => DtlsSuite::Psk128Gcm,
            other => panic!("DTLS suite {other} is not modelled"),
        },
        psk_identity: v["inputs"]["psk_identity"]
            .as_str()
            .expect("identity")
            .into(),
        psk_hint: v["inputs"]["psk_hint"].as_str().expect("hint").into(),
        ..DtlsConfig::openssl()
    };
    let now = SimTime::ZERO;
    let mut ends = [
        DtlsEndpoint::client(cfg.clone(), 1),
        DtlsEndpoint::server(cfg, 2),
    ];
    ends[0].start(now);
    let (mut flights, mut rtt, mut from) = (Vec::new(), None, 0);
    for turn in 0usize..12 {
        let mut sent = Vec::new();
        let mut buf = Vec::new();
        while let Some(n) = ends[from].poll_transmit(now, &mut buf) {
            sent.push(buf[buf.len() - n..].to_vec());
        }
        if sent.is_empty() {
            break;
        }
        flights.push(sent.iter().map(Vec::len).sum());
        for d in &sent {
            let mut app = Vec::new();
            ends[1 - from]
                .handle_datagram(now, d, &mut app)
                .expect("the peer takes the flight");
        }
        if rtt.is_none() && ends[0].is_established() {
            rtt = Some(turn.div_ceil(2));
        }
        from = 1 - from;
    }
    assert!(ends[0].is_established() && ends[1].is_established());
    Compared {
        case: "dtls_psk",
        model: flights,
        real: real_flights(c, "dtls_psk"),
        model_rtt: rtt.expect("client established"),
        real_rtt: int(&c["round_trips"], "round trips") as usize,
    }
}

/// The calibration criterion, asserted: every real handshake of
/// the quick run, rebuilt with the simulator's overlays for the same
/// versions, suites, certificate chains, names and identities, has the
/// same flights and round trips, each flight within 10 % of the capture's
/// bytes. `--nocapture` prints the model-vs-real table.
#[test]
fn models_match_the_real_handshakes() {
    let Some(v) = calibration() else {
        return;
    };
    let mut rows: Vec<Compared> = [
        "tls12_ecdsa",
        "tls12_rsa",
        "tls12_mtls",
        "tls12_ecdsa_resumed",
        "tls12_cbc",
        "tls13_ecdsa",
        "tls13_rsa",
        "tls13_mtls",
        "tls13_ecdsa_resumed",
    ]
    .into_iter()
    .map(|name| tls_model(v, name))
    .collect();
    rows.push(dtls_model(v));
    rows.push(websocket_model(v));
    println!("| case | bytes per flight, model / real (difference) | round trips model / real |");
    println!("|---|---|---|");
    for r in &rows {
        println!("{}", r.row());
    }
    let problems: Vec<String> = rows.iter().flat_map(Compared::problems).collect();
    assert!(problems.is_empty(), "{problems:#?}");
}
