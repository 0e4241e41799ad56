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
//! Under `CI=true` a missing peer (or no permission to capture on `lo`)
//! fails the test; otherwise it says why and returns.

use std::path::Path;
use std::process::Command;

use serde_json::Value;

mod common;
use common::peers::{find_binary, paho_available, skip_or_fail};

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
    if !peers_available() {
        return;
    }
    let v = quick_run();
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
    let cbc = case(&v, "tls12_cbc");
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
        let kinds: Vec<&str> = case(&v, name)["app_records"]
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
    assert_eq!(case(&v, "dtls_psk")["version"], "DTLSv1.2");

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
        case(&v, c)["flights"]
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
        case(&v, c)[format!("certificates_{side}")]
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
        let r = case(&v, c);
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
    let ws = case(&v, "websocket");
    assert_eq!(ws["request_subprotocol"], "mqtt");
    assert_eq!(ws["response_subprotocol"], "mqtt");
    assert_eq!(ws["response_status"], "HTTP/1.1 101 Switching Protocols");
    assert!(int(&ws["upgrade_request_bytes"], "upgrade request") > 100);
    assert!(int(&ws["upgrade_response_bytes"], "upgrade response") > 100);
    for f in ws["frames"].as_array().expect("frames") {
        let client = f["dir"] == "c";
        assert_eq!(f["masked"].as_bool(), Some(client), "{f}");
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
    let wss = case(&v, "wss");
    assert_eq!(wss["version"], "TLSv1.3");
    assert_eq!(int(&facts["wss_overhead_c"], "wss c"), 22 + 6);
    assert_eq!(int(&facts["wss_overhead_s"], "wss s"), 22 + 2);
    let carries: Vec<&str> = wss["app_records"]
        .as_array()
        .expect("app records")
        .iter()
        .filter_map(|a| a["carries"].as_str())
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
