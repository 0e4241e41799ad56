//! `protocol = "http"` (issue 16 item 7): the HTTP/1.1 baseline over the TCP
//! model — bytes per reading from the real encoded messages, tshark
//! dissecting every request and response, persistent and
//! one-connection-per-reading modes, loss, a corrupted request answered 400,
//! and the scenario checks.

mod common;
use common::sim::*;
use std::collections::BTreeMap;
use std::path::Path;

type Row = BTreeMap<String, String>;

/// Three sensors POST a 16-byte reading every 5 s to a collector.
const BASE: &str = r#"
name = "http-fan-in"
seed = 1
duration = "60 s"
drain = "30 s"

[[nodes]]
name = "collector"
role = "server"

[[nodes]]
name = "router"
role = "router"

[[groups]]
name = "sensor-{i}"
count = 3
role = "client"
link = { to = "router", rate = "250 kbit/s", delay = "20 ms" }

[[links]]
a = "router"
b = "collector"
rate = "10 Mbit/s"
delay = "2 ms"

[[flows]]
name = "readings"
pattern = "fan_in"
protocol = "http"
publishers = ["sensor-*"]
receivers = ["collector"]
topic = "plant/temperature"
payload_bytes = 16
interval = "5 s"
"#;

fn rows(dir: &Path, file: &str) -> Vec<Row> {
    read_csv(&dir.join(file))
}

fn bytes(r: &Row) -> u64 {
    r["bytes"].parse().expect("bytes")
}

/// The encoded request and response of one 16-byte reading.
fn encoded(close: bool) -> (usize, usize) {
    let mut req = Vec::new();
    qossim::proto::http::encode_post(
        &mut req,
        "collector",
        "/plant/temperature",
        "application/octet-stream",
        &[0; 16],
        close,
    );
    let mut resp = Vec::new();
    qossim::proto::http::encode_response(&mut resp, 204, b"", close);
    (req.len(), resp.len())
}

#[test]
fn bytes_per_reading_are_the_encoded_messages_plus_tcp_ip_headers() {
    let dir = run_text("http-bytes", BASE, &[]);
    let run = run_row(&dir, "readings");
    assert_eq!(num(&run, "delivery_ratio"), 1.0);
    let sent = num(&run, "sent") as usize;
    assert_eq!(sent, 36);
    let packets = rows(&dir, "packets.csv");
    let link: Vec<&Row> = packets
        .iter()
        .filter(|r| r["link"] == "sensor-1--router" && r["outcome"] == "delivered")
        .collect();
    // a pure ACK is IPv4 + the TCP header with the options this connection
    // negotiated (timestamps): the header every data segment carries too
    let ack = link
        .iter()
        .find(|r| r["kind"] == "tcp_ack")
        .map(|r| bytes(r))
        .expect("a pure ACK");
    let (req, resp) = encoded(false);
    let requests: Vec<u64> = link
        .iter()
        .filter(|r| r["kind"] == "http_request")
        .map(|r| bytes(r))
        .collect();
    let responses: Vec<u64> = link
        .iter()
        .filter(|r| r["kind"] == "http_response")
        .map(|r| bytes(r))
        .collect();
    assert_eq!(requests.len(), 12, "one request per reading of sensor-1");
    assert_eq!(responses.len(), 12);
    assert!(
        requests.iter().all(|&b| b == ack + req as u64),
        "{requests:?}"
    );
    assert!(
        responses.iter().all(|&b| b == ack + resp as u64),
        "{responses:?}"
    );
    // one connection per sensor (persistent), each opened once
    let conns = rows(&dir, "connections.csv");
    assert_eq!(conns.iter().filter(|c| c["side"] == "client").count(), 3);
    // bytes_payload counts the bodies on every transmission (two hops
    // each, no loss)
    assert_eq!(num(&run, "bytes_payload"), (36 * 16 * 2) as f64);
}

#[test]
fn tshark_dissects_every_request_and_response() {
    if !common::tshark::available("tshark_dissects_every_request_and_response") {
        return;
    }
    let dir = run_text("http-tshark", BASE, &[]);
    let packets = rows(&dir, "packets.csv");
    for link in ["sensor-1--router", "sensor-2--router", "router--collector"] {
        let pcap = dir.join(format!("pcap/{link}.pcap"));
        let count = |kind: &str| {
            packets
                .iter()
                .filter(|r| r["link"] == link && r["kind"] == kind && r["outcome"] == "delivered")
                .count()
        };
        let req = common::tshark::run(&pcap, &["-Y", "http.request.method == \"POST\""]);
        let resp = common::tshark::run(&pcap, &["-Y", "http.response.code == 204"]);
        assert_eq!(
            common::tshark::lines(&req).len(),
            count("http_request"),
            "{link}"
        );
        assert_eq!(
            common::tshark::lines(&resp).len(),
            count("http_response"),
            "{link}"
        );
        assert!(count("http_request") >= 12, "{link}");
        let bad = common::tshark::run(
            &pcap,
            &["-Y", "_ws.malformed || _ws.expert.severity >= error"],
        );
        assert!(common::tshark::lines(&bad).is_empty(), "{link}: {bad}");
        // the body tshark sees is the reading's 16 bytes
        let len = common::tshark::run(
            &pcap,
            &[
                "-Y",
                "http.request",
                "-T",
                "fields",
                "-e",
                "http.content_length",
            ],
        );
        assert!(
            common::tshark::lines(&len).iter().all(|l| l.trim() == "16"),
            "{len}"
        );
    }
}

#[test]
fn without_persistence_every_reading_has_its_own_connection() {
    let text = format!("{BASE}\n[protocols.http]\npersistent = false\n");
    let dir = run_text("http-close", &text, &[]);
    let run = run_row(&dir, "readings");
    assert_eq!(num(&run, "delivery_ratio"), 1.0);
    let conns = rows(&dir, "connections.csv");
    let clients: Vec<&Row> = conns.iter().filter(|c| c["side"] == "client").collect();
    assert_eq!(clients.len(), 36, "one connection per reading");
    assert!(
        clients.iter().all(|c| c["outcome"] == "closed"),
        "{clients:?}"
    );
    let (req, resp) = encoded(true);
    let packets = rows(&dir, "packets.csv");
    let ack = packets
        .iter()
        .find(|r| r["kind"] == "tcp_ack")
        .map(bytes)
        .expect("ack");
    for r in packets.iter().filter(|r| r["outcome"] == "delivered") {
        match r["kind"].as_str() {
            "http_request" => assert_eq!(bytes(r), ack + req as u64, "{r:?}"),
            "http_response" => assert_eq!(bytes(r), ack + resp as u64, "{r:?}"),
            _ => {}
        }
    }
    // more bytes per reading than with one persistent connection: the
    // handshakes, FINs and the Connection headers
    let persistent = run_row(&run_text("http-keep", BASE, &[]), "readings");
    assert!(num(&run, "bytes_on_wire") > num(&persistent, "bytes_on_wire") * 1.5);
}

#[test]
fn loss_is_repaired_by_tcp_and_every_reading_arrives() {
    let text = BASE.replace(
        "link = { to = \"router\", rate = \"250 kbit/s\", delay = \"20 ms\" }",
        "link = { to = \"router\", rate = \"250 kbit/s\", delay = \"20 ms\", loss = { model = \"bernoulli\", p = 0.1 } }",
    );
    assert!(text.contains("bernoulli"));
    let dir = run_text("http-loss", &text, &[]);
    let run = run_row(&dir, "readings");
    assert_eq!(num(&run, "delivery_ratio"), 1.0);
    assert_eq!(num(&run, "duplicates"), 0.0);
    assert!(num(&run, "tcp_retransmissions") > 0.0);
    assert!(num(&run, "drops_channel") > 0.0);
}

#[test]
fn a_corrupted_request_gets_400_and_the_connection_closes() {
    let text = format!(
        "{BASE}\n[[events]]\nat = \"0 s\"\naction = \"corrupt_packet\"\nlayer = \"payload\"\noffset = 0\nmatch = {{ kind = \"http_request\", from = \"sensor-1\", nth = 2 }}\n"
    );
    let dir = run_text("http-corrupt", &text, &[]);
    let run = run_row(&dir, "readings");
    // the corrupted reading is lost; the others arrive on a new connection
    assert_eq!(num(&run, "delivered"), num(&run, "sent") - 1.0);
    let conns = rows(&dir, "connections.csv");
    let s1: Vec<&Row> = conns
        .iter()
        .filter(|c| c["side"] == "client" && c["node"] == "sensor-1")
        .collect();
    assert_eq!(
        s1.len(),
        2,
        "sensor-1 reconnects after the server closed: {s1:?}"
    );
    if common::tshark::available("a_corrupted_request_gets_400_and_the_connection_closes") {
        let pcap = dir.join("pcap/sensor-1--router.pcap");
        let bad = common::tshark::run(&pcap, &["-Y", "http.response.code == 400"]);
        assert_eq!(common::tshark::lines(&bad).len(), 1, "{bad}");
    }
}

#[test]
fn scenario_checks_name_the_field() {
    let err = |text: &str| match qossim::scenario::load_str(text, "t.toml", Path::new("."), &[]) {
        Ok(_) => panic!("loaded:\n{text}"),
        Err(e) => e.to_string(),
    };
    let e = err(&BASE.replace(
        "protocol = \"http\"",
        "protocol = \"http\"\nreliability = \"qos1\"",
    ));
    assert!(
        e.contains("reliability") && e.contains("http accepts only confirmed"),
        "{e}"
    );
    let e = err(&format!("{BASE}\n[protocols.http]\nport = 1883\n"));
    assert!(
        e.contains("protocols.http.port") && e.contains("[protocols.mqtt]"),
        "{e}"
    );
    let e = err(&format!("{BASE}\n[protocols.http]\nport = 0\n"));
    assert!(e.contains("protocols.http.port"), "{e}");
    let e = err(&format!("{BASE}\n[protocols.http]\nkeepalive = true\n"));
    assert!(e.contains("keepalive"), "{e}");
}
