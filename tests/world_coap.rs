//! CoAP through the simulator: the same endpoint the interop tests drive,
//! over simulated lossy links, checked against RFC 7252's closed forms and
//! exact byte counts.

mod common;
use common::sim::*;

/// `n` sensors, each behind its own lossy access link (loss p both ways) to a
/// router, a clean backhaul to the server; one flow.
fn star(n: u32, p: f64, reliability: &str, interval: &str, duration: &str) -> String {
    format!(
        r#"
name = "coap-star"
duration = "{duration}"
drain = "200 s"
[[nodes]]
name = "server"
role = "server"
[[nodes]]
name = "r"
role = "router"
[[groups]]
name = "s-{{i}}"
count = {n}
role = "client"
link = {{ to = "r", rate = "1 Mbit/s", delay = "10 ms", loss = {{ model = "bernoulli", p = {p} }} }}
[[links]]
a = "r"
b = "server"
[[flows]]
name = "f"
pattern = "fan_in"
protocol = "coap"
reliability = "{reliability}"
publishers = ["s-*"]
receivers = ["server"]
topic = "t"
payload_bytes = 8
interval = "{interval}"
"#
    )
}

#[test]
fn non_delivery_is_one_minus_p() {
    let dir = run_text("coap-non", &star(50, 0.2, "non", "10 s", "4000 s"), &[]);
    let r = run_row(&dir, "f");
    let n = num(&r, "intended");
    assert!(n >= 19_000.0, "{n}");
    assert_proportion(num(&r, "delivery_ratio"), 0.8, n, 3.0, "NON delivery");
    assert_eq!(num(&r, "retransmissions"), 0.0);
    assert_eq!(num(&r, "duplicates"), 0.0);
}

/// Server application receives = 1 − p^(M+1); the client sees an answer with
/// 1 − (1 − (1−p)²)^(M+1) (the rest are give-ups), per RFC 7252 §4.2 with
/// independent loss p in each direction.
fn con_case(p: f64, m: u32) {
    let text = star(50, p, "con", "20 s", "8000 s");
    let dir = run_text(
        "coap-con",
        &text,
        &[&format!("protocols.coap.max_retransmit={m}")],
    );
    let r = run_row(&dir, "f");
    let sent = num(&r, "sent");
    assert!(sent >= 19_000.0, "{sent}");
    let recv = 1.0 - p.powi(m as i32 + 1);
    assert_proportion(
        num(&r, "delivery_ratio"),
        recv,
        sent,
        3.0,
        &format!("server receives, p={p} M={m}"),
    );
    let answered = 1.0 - (1.0 - (1.0 - p) * (1.0 - p)).powi(m as i32 + 1);
    let seen = 1.0 - num(&r, "give_ups") / sent;
    eprintln!(
        "p={p} M={m} n={sent}: server receives {:.5} (closed form {recv:.5}), client answered {seen:.5} (closed form {answered:.5})",
        num(&r, "delivery_ratio")
    );
    assert_proportion(
        seen,
        answered,
        sent,
        3.0,
        &format!("client answered, p={p} M={m}"),
    );
    // the application never sees a duplicate; the endpoint absorbed them
    assert_eq!(num(&r, "duplicates"), 0.0);
    assert!(num(&r, "duplicates_suppressed") > 0.0);
    // every CON transmission beyond the first of each exchange is a retransmission
    let pk = read_csv(&dir.join("packets.csv"));
    let con_tx = pk
        .iter()
        .filter(|x| {
            x["kind"] == "coap_con" && x["link"].starts_with("s-") && x["from"].starts_with("s-")
        })
        .count() as f64;
    assert_eq!(con_tx, sent + num(&r, "retransmissions"));
    // the layers add up to every byte on the wire; retransmitted CONs are
    // whole packets of the retransmission layer
    common::sim::assert_layers_sum(&r);
    assert!(num(&r, "bytes_retransmissions") > 0.0);
}

#[test]
fn con_matches_closed_forms_p03_m4() {
    con_case(0.3, 4);
}

#[test]
fn con_matches_closed_forms_p05_m2() {
    con_case(0.5, 2);
}

#[test]
fn coap_packets_have_their_exact_sizes() {
    // CON PUT: 20 IPv4 + 8 UDP + 4 header + 2 token + Uri-Path "t" (2)
    //          + Content-Format 42 (2) + payload marker (1) + 8 payload = 47
    // piggybacked ACK 2.04: 20 + 8 + 4 + 2 token = 34
    let dir = run_text("coap-bytes", &star(1, 0.0, "con", "10 s", "60 s"), &[]);
    let pk = read_csv(&dir.join("packets.csv"));
    assert!(!pk.is_empty());
    for p in &pk {
        match p["kind"].as_str() {
            "coap_con" => assert_eq!(p["bytes"], "47", "{p:?}"),
            "coap_ack" => assert_eq!(p["bytes"], "34", "{p:?}"),
            k => panic!("unexpected kind {k}"),
        }
    }
    let r = run_row(&dir, "f");
    // 2 hops each way: (47 + 34) · 2 per message
    let sent = num(&r, "sent");
    assert_eq!(num(&r, "bytes_on_wire"), sent * 162.0);
    // by layer: payload 8 on the CON; CoAP 4+2+2+2+1 on the CON and 4+2 on
    // the ACK; 28 bytes of IPv4+UDP on each packet; no retransmissions
    assert_eq!(num(&r, "bytes_payload"), sent * 2.0 * 8.0);
    assert_eq!(num(&r, "bytes_protocol"), sent * 2.0 * (11.0 + 6.0));
    assert_eq!(num(&r, "bytes_transport_ip"), sent * 4.0 * 28.0);
    assert_eq!(num(&r, "bytes_retransmissions"), 0.0);
    assert_eq!(num(&r, "delivery_ratio"), 1.0);
}

#[test]
fn nstart_queueing_counts_in_latency() {
    // a publisher sending every 100 ms over a 500 ms RTT: NSTART = 1 makes each
    // request wait for the previous exchange, so latencies grow
    let text =
        star(1, 0.0, "con", "100 ms", "5 s").replace("delay = \"10 ms\"", "delay = \"250 ms\"");
    let dir = run_text("coap-nstart", &text, &[]);
    let msgs = read_csv(&dir.join("messages.csv"));
    let lat: Vec<f64> = msgs
        .iter()
        .map(|m| m["latency_ms"].parse().unwrap_or(f64::NAN))
        .collect();
    assert!(lat.iter().all(|l| l.is_finite()), "all delivered");
    assert!(lat[0] < 300.0, "first request goes at once: {}", lat[0]);
    assert!(
        lat.last().copied().unwrap_or(0.0) > 10_000.0,
        "the queue grew: {lat:?}"
    );
    // raising NSTART to 100 removes the waiting
    let dir = run_text("coap-nstart100", &text, &["protocols.coap.nstart=100"]);
    let msgs = read_csv(&dir.join("messages.csv"));
    assert!(msgs
        .iter()
        .all(|m| m["latency_ms"].parse::<f64>().unwrap_or(1e9) < 300.0));
}
