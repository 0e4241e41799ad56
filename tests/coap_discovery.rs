//! CoAP resource discovery (RFC 6690, RFC 7252 §8): `/.well-known/core`
//! with link attributes and query filters, and multicast discovery with
//! response leisure — on the endpoint and resource server the simulator
//! runs (a small harness: one client, N servers, a fixed one-way delay; a
//! multicast datagram reaches every server), and through the simulator on
//! an 802.15.4 medium. Run in release mode:
//! `cargo test --release --test coap_discovery`.

mod common;

use std::net::{Ipv4Addr, SocketAddrV4};

use common::sim::*;
use qossim::net::addr::SockAddr;
use qossim::proto::coap::link::{self, Filter};
use qossim::proto::coap::{
    Code, Config, Endpoint, EndpointError, Event, LinkAttrs, Request, RequestHandle, ResourceServer,
};
use qossim::proto::Datagram;
use qossim::sim::{SimDuration, SimRng, SimTime};

const DELAY: SimDuration = SimDuration::from_millis(10);

fn addr(i: usize) -> SockAddr {
    SockAddr::from(SocketAddrV4::new(
        Ipv4Addr::new(10, 0, 0, 1 + i as u8),
        5683,
    ))
}

fn group() -> SockAddr {
    SockAddr::from(SocketAddrV4::new(Ipv4Addr::new(224, 0, 1, 187), 5683))
}

/// Endpoint 0 is the client, 1..=n servers, each a [`ResourceServer`].
struct Lan {
    now: SimTime,
    eps: Vec<Endpoint>,
    servers: Vec<ResourceServer>,
    /// (arrival, seq, to, multicast, from, bytes)
    in_flight: Vec<(SimTime, u64, usize, bool, usize, Vec<u8>)>,
    seq: u64,
    /// Datagrams each endpoint sent.
    sent: Vec<u64>,
    /// Client events with their time.
    events: Vec<(SimTime, Event)>,
    buf: Vec<u8>,
}

impl Lan {
    /// `n` servers answering multicast after [0, leisure], each drawing from
    /// its own stream; each holds `resources` (path, attrs).
    fn new(n: usize, leisure: SimDuration, seed: u64, resources: &[(&str, LinkAttrs)]) -> Self {
        let mut eps = Vec::new();
        let mut servers = Vec::new();
        for i in 0..=n {
            let rng = SimRng::stream(seed, &format!("coap/{i}"));
            eps.push(Endpoint::new(Config::default(), rng, 100 * i as u16));
            let mut s = ResourceServer::new()
                .with_leisure(leisure, SimRng::stream(seed, &format!("coap/leisure/{i}")));
            for (path, attrs) in resources {
                s.resources_mut().insert(*path, Some(0), b"21.5".to_vec());
                s.resources_mut().set_link_attrs(*path, attrs.clone());
            }
            servers.push(s);
        }
        Lan {
            now: SimTime::ZERO,
            eps,
            servers,
            in_flight: Vec::new(),
            seq: 0,
            sent: vec![0; n + 1],
            events: Vec::new(),
            buf: Vec::new(),
        }
    }

    fn index_of(&self, a: SockAddr) -> Option<usize> {
        (0..self.eps.len()).find(|&i| addr(i) == a)
    }

    /// Flush every endpoint's transmissions and events until nothing moves.
    fn drive(&mut self) {
        loop {
            let mut busy = false;
            for i in 0..self.eps.len() {
                loop {
                    self.buf.clear();
                    let Some(t) = self.eps[i].poll_transmit(self.now, &mut self.buf) else {
                        break;
                    };
                    busy = true;
                    self.sent[i] += 1;
                    let bytes = self.buf.clone();
                    if t.to == group() {
                        // every other node of the link takes it
                        for j in (0..self.eps.len()).filter(|&j| j != i) {
                            self.seq += 1;
                            let at = self.now + DELAY;
                            self.in_flight
                                .push((at, self.seq, j, true, i, bytes.clone()));
                        }
                    } else if let Some(j) = self.index_of(t.to) {
                        self.seq += 1;
                        self.in_flight
                            .push((self.now + DELAY, self.seq, j, false, i, bytes));
                    }
                }
                while let Some(ev) = self.eps[i].poll_event() {
                    busy = true;
                    if i == 0 {
                        self.events.push((self.now, ev));
                    } else {
                        let now = self.now;
                        self.servers[i].handle_event(now, &mut self.eps[i], &ev);
                    }
                }
            }
            if !busy {
                break;
            }
        }
    }

    fn next_wakeup(&self) -> Option<SimTime> {
        let a = self.in_flight.iter().map(|f| f.0).min();
        let b = (0..self.eps.len())
            .flat_map(|i| [self.eps[i].poll_timeout(), self.servers[i].poll_timeout()])
            .flatten()
            .min();
        match (a, b) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Run until `until` (or nothing is left to do).
    fn run(&mut self, until: SimTime) {
        self.drive();
        while let Some(t) = self.next_wakeup().filter(|&t| t <= until) {
            self.now = t;
            self.in_flight.sort_by_key(|f| (f.0, f.1));
            while self.in_flight.first().is_some_and(|f| f.0 <= t) {
                let (_, _, to, mc, from, bytes) = self.in_flight.remove(0);
                let d = Datagram {
                    from: addr(from),
                    data: &bytes,
                };
                if mc {
                    self.eps[to].handle_multicast_input(t, d);
                } else {
                    self.eps[to].handle_input(t, d);
                }
                self.drive();
            }
            for i in 0..self.eps.len() {
                if self.eps[i].poll_timeout().is_some_and(|x| x <= t) {
                    self.eps[i].handle_timeout(t);
                }
                if self.servers[i].poll_timeout().is_some_and(|x| x <= t) {
                    let (s, e) = (&mut self.servers[i], &mut self.eps[i]);
                    s.handle_timeout(t, e);
                }
            }
            self.drive();
        }
        self.now = until;
    }

    /// Responses to `h`: (time, server index, code, payload).
    fn responses(&self, h: RequestHandle) -> Vec<(SimTime, usize, Code, Vec<u8>)> {
        self.events
            .iter()
            .filter_map(|(t, e)| match e {
                Event::ResponseReceived {
                    handle,
                    from,
                    code,
                    payload,
                    ..
                } if *handle == h => Some((*t, self.index_of(*from)?, *code, payload.clone())),
                _ => None,
            })
            .collect()
    }
}

fn sensor(rt: &str, iface: &str) -> LinkAttrs {
    LinkAttrs {
        rt: Some(rt.into()),
        iface: Some(iface.into()),
        obs: false,
        sz: None,
    }
}

fn get_wkc(query: &[&str], confirmable: bool) -> Request {
    let mut r = Request::get(".well-known/core").confirmable(confirmable);
    r.query = query.iter().map(|q| q.to_string()).collect();
    r
}

/// A unicast GET of `/.well-known/core?query` to server 1; its response.
fn unicast(lan: &mut Lan, query: &[&str]) -> (Code, Vec<u8>) {
    let h = lan.eps[0]
        .request(addr(1), get_wkc(query, true))
        .expect("request");
    let until = lan.now + SimDuration::from_secs(5);
    lan.run(until);
    let r = lan.responses(h);
    assert_eq!(r.len(), 1, "one response to a unicast GET");
    (r[0].2, r[0].3.clone())
}

fn hrefs(payload: &[u8]) -> Vec<String> {
    link::parse(payload)
        .expect("valid link format")
        .into_iter()
        .map(|l| l.href)
        .collect()
}

/// Forty resources (a listing of ~3 KB, past the old 1 KiB cut): every one
/// is listed, with its rt and if, and the listing parses back.
#[test]
fn well_known_core_lists_every_resource_with_rt_and_if() {
    let paths: Vec<String> = (0..40)
        .map(|i| format!("building/xyz/room/{i}/temperature"))
        .collect();
    let res: Vec<(&str, LinkAttrs)> = paths
        .iter()
        .map(|p| (p.as_str(), sensor("temperature-c", "core.s")))
        .collect();
    let mut lan = Lan::new(1, SimDuration::ZERO, 1, &res);
    let (code, payload) = unicast(&mut lan, &[]);
    assert_eq!(code, Code::CONTENT);
    assert!(payload.len() > 1024, "{} bytes", payload.len());
    let links = link::parse(&payload).expect("valid link format");
    assert_eq!(links.len(), 40);
    let mut want: Vec<String> = paths.iter().map(|p| format!("/{p}")).collect();
    want.sort();
    let got: Vec<String> = links.iter().map(|l| l.href.clone()).collect();
    assert_eq!(got, want);
    for l in &links {
        assert_eq!(l.param("rt"), Some("temperature-c"), "{l:?}");
        assert_eq!(l.param("if"), Some("core.s"), "{l:?}");
        assert_eq!(l.param("ct"), Some("0"), "{l:?}");
    }
}

/// A filtered listing longer than a block is served block-wise (RFC 7959
/// Block2, 64-byte blocks) and reassembles to exactly the unicast
/// listing with the same filter.
#[test]
fn long_filtered_listing_goes_block_wise() {
    use qossim::proto::coap::{BlockStep, BlockTransfer};
    let paths: Vec<String> = (0..12).map(|i| format!("room/{i}/temperature")).collect();
    let mut res: Vec<(&str, LinkAttrs)> = paths
        .iter()
        .map(|p| (p.as_str(), sensor("temperature-c", "core.s")))
        .collect();
    res.push(("room/0/valve", sensor("valve", "core.a")));
    let mut lan = Lan::new(1, SimDuration::ZERO, 6, &res);
    let (_, whole) = unicast(&mut lan, &["rt=temp*"]);
    assert_eq!(hrefs(&whole).len(), 12);
    // now the server answers block-wise
    let mut server = ResourceServer::new().with_block_szx(Some(2));
    for (path, attrs) in &res {
        server
            .resources_mut()
            .insert(*path, Some(0), b"21.5".to_vec());
        server.resources_mut().set_link_attrs(*path, attrs.clone());
    }
    server.register_options(&mut lan.eps[1]);
    lan.servers[1] = server;
    let mut t = BlockTransfer::download(addr(1), get_wkc(&["rt=temp*"], true), Some(2));
    t.start(&mut lan.eps[0]).expect("starts");
    let mut blocks = 0;
    loop {
        let until = lan.now + SimDuration::from_secs(5);
        lan.run(until);
        let h = t.handle();
        let ev = lan.events.iter().find_map(|(_, e)| match e {
            Event::ResponseReceived {
                handle,
                code,
                block,
                payload,
                ..
            } if *handle == h => Some((*code, *block, payload.clone())),
            _ => None,
        });
        let (code, block, payload) = ev.expect("a response to the block request");
        blocks += 1;
        match t.on_response(&mut lan.eps[0], code, &block, &payload) {
            BlockStep::Next(_) => continue,
            BlockStep::Done(c) => {
                assert_eq!(c, Code::CONTENT);
                break;
            }
            BlockStep::Failed(f) => panic!("{f:?}"),
        }
    }
    assert_eq!(blocks, whole.len().div_ceil(64), "{} bytes", whole.len());
    assert_eq!(t.body(), &whole[..]);
    assert!(lan.servers[1].block_stats().block2_sent >= blocks as u64);
}

/// RFC 6690 §4.1 filters on a unicast GET: exact, prefix `*`, `if`, `href`;
/// a filter matching nothing gets 2.05 with an empty payload.
#[test]
fn rt_if_href_filters_with_prefix_match() {
    let res = [
        ("room/1/temp", sensor("temperature-c", "core.s")),
        ("room/1/hum", sensor("humidity", "core.s")),
        ("room/2/temp", sensor("temperature-f", "core.s")),
        ("room/2/valve", sensor("valve", "core.a")),
    ];
    let mut lan = Lan::new(1, SimDuration::ZERO, 2, &res);
    let cases: [(&[&str], &[&str]); 8] = [
        (&["rt=temperature-c"], &["/room/1/temp"]),
        (&["rt=temperature*"], &["/room/1/temp", "/room/2/temp"]),
        (&["rt=temp"], &[]),
        (&["if=core.a"], &["/room/2/valve"]),
        (
            &["if=core.*"],
            &[
                "/room/1/hum",
                "/room/1/temp",
                "/room/2/temp",
                "/room/2/valve",
            ],
        ),
        (&["href=/room/1*"], &["/room/1/hum", "/room/1/temp"]),
        (&["href=/room/2/temp"], &["/room/2/temp"]),
        (&["rt=temperature*", "href=/room/2*"], &["/room/2/temp"]),
    ];
    for (q, want) in cases {
        let (code, payload) = unicast(&mut lan, q);
        assert_eq!(code, Code::CONTENT, "{q:?}");
        assert_eq!(hrefs(&payload), want, "{q:?}");
    }
    let (code, payload) = unicast(&mut lan, &["rt=pressure"]);
    assert_eq!(
        (code, payload.len()),
        (Code::CONTENT, 0),
        "no match: empty 2.05"
    );
    // the client side of the same rule agrees with the server's choice
    let (_, payload) = unicast(&mut lan, &["if=core.s"]);
    let f = Filter::from_queries(["if=core.s"]);
    let links = link::parse(&payload).expect("parses");
    assert_eq!(links.len(), 3);
    assert!(links.iter().all(|l| f.matches_link(l)));
}

/// RFC 7252 §8.1: a CON multicast request is an error at the client, and
/// a CON arriving via multicast is not processed by a server (no ACK, no
/// event).
#[test]
fn con_to_multicast_is_rejected() {
    let res = [("t", sensor("temperature-c", "core.s"))];
    let mut lan = Lan::new(3, SimDuration::from_secs(5), 3, &res);
    let err = lan.eps[0]
        .request_multicast(
            lan.now,
            group(),
            &get_wkc(&[], true),
            SimDuration::from_secs(8),
        )
        .expect_err("CON to multicast");
    assert_eq!(err, EndpointError::ConfirmableMulticast { to: group() });
    let err = lan.eps[0]
        .request_multicast(
            lan.now,
            addr(1),
            &get_wkc(&[], false),
            SimDuration::from_secs(8),
        )
        .expect_err("not a group");
    assert_eq!(err, EndpointError::NotMulticast { to: addr(1) });
    lan.drive();
    assert_eq!(lan.sent[0], 0, "nothing sent");
    // a CON sent to the group anyway (by a unicast API, as a broken client
    // would): servers ignore it
    let mut bytes = Vec::new();
    let mut raw = Endpoint::new(Config::default(), SimRng::stream(3, "raw"), 7);
    raw.request(group(), get_wkc(&[], true)).expect("encodes");
    raw.poll_transmit(SimTime::ZERO, &mut bytes).expect("a CON");
    for s in 1..=3 {
        lan.eps[s].handle_multicast_input(
            lan.now,
            Datagram {
                from: addr(0),
                data: &bytes,
            },
        );
    }
    lan.run(SimTime::ZERO + SimDuration::from_secs(20));
    assert_eq!(lan.sent[1..], [0, 0, 0], "no ACK, no response");
    for s in 1..=3 {
        assert_eq!(lan.eps[s].stats().requests_received, 0);
        assert_eq!(lan.eps[s].stats().ignored, 1);
    }
}

/// A multicast GET gets exactly one response per server, none before the
/// link delay, all within Leisure + link delays, spread over the leisure
/// (60 servers, fixed seed): mean ≈ L/2, each quarter of [0, L] holds
/// 25 % ± 12 %, then `MulticastEnded` with the count.
#[test]
fn multicast_get_one_response_per_server_spread_over_leisure() {
    let n = 60;
    let leisure = SimDuration::from_secs(5);
    let res = [("s/temp", sensor("temperature-c", "core.s"))];
    let mut lan = Lan::new(n, leisure, 4, &res);
    let t0 = lan.now;
    let h = lan.eps[0]
        .request_multicast(
            t0,
            group(),
            &get_wkc(&["rt=temp*"], false),
            leisure + DELAY + DELAY,
        )
        .expect("NON multicast");
    lan.run(t0 + SimDuration::from_secs(30));
    assert_eq!(lan.sent[0], 1, "one datagram to the group");
    let r = lan.responses(h);
    let mut servers: Vec<usize> = r.iter().map(|x| x.1).collect();
    servers.sort_unstable();
    assert_eq!(servers, (1..=n).collect::<Vec<_>>(), "one per server");
    let l = leisure.0 as f64;
    let delays: Vec<f64> = r
        .iter()
        .map(|x| (x.0 - t0).0 as f64 - 2.0 * DELAY.0 as f64)
        .collect();
    assert!(delays.iter().all(|&d| (0.0..=l).contains(&d)), "{delays:?}");
    let mean = delays.iter().sum::<f64>() / n as f64;
    // uniform: sd of the mean = L/sqrt(12 n); allow 3 of them
    let tol = 3.0 * l / (12.0 * n as f64).sqrt();
    assert!((mean - l / 2.0).abs() < tol, "mean {mean} vs {}", l / 2.0);
    for q in 0..4 {
        let lo = l * q as f64 / 4.0;
        let k = delays
            .iter()
            .filter(|&&d| d >= lo && d < lo + l / 4.0)
            .count();
        assert!((8..=22).contains(&k), "quarter {q}: {k} of {n}");
    }
    for (_, _, code, payload) in &r {
        assert_eq!(*code, Code::CONTENT);
        assert_eq!(hrefs(payload), ["/s/temp"]);
    }
    let ended: Vec<u32> = lan
        .events
        .iter()
        .filter_map(|(_, e)| match e {
            Event::MulticastEnded { handle, responses } if *handle == h => Some(*responses),
            _ => None,
        })
        .collect();
    assert_eq!(ended, [n as u32]);
    // a late response (after the window) is not matched to it
    assert_eq!(lan.eps[0].multicast_requests(), 0);
    for s in 1..=n {
        assert_eq!(lan.servers[s].multicast_stats().answered, 1);
    }
}

/// §8.2.1 / RFC 6690 §4.1: a multicast filter matching nothing on a server
/// gets no response from it (not an empty 2.05); servers that match
/// answer.
#[test]
fn non_matching_filter_gets_no_multicast_response() {
    let res = [("s/hum", sensor("humidity", "core.s"))];
    let mut lan = Lan::new(4, SimDuration::from_secs(2), 5, &res);
    // server 4 also has a temperature resource
    lan.servers[4]
        .resources_mut()
        .insert("s/temp", Some(0), b"20".to_vec());
    lan.servers[4]
        .resources_mut()
        .set_link_attrs("s/temp", sensor("temperature-c", "core.s"));
    let h = lan.eps[0]
        .request_multicast(
            lan.now,
            group(),
            &get_wkc(&["rt=temperature-c"], false),
            SimDuration::from_secs(3),
        )
        .expect("NON multicast");
    lan.run(SimTime::ZERO + SimDuration::from_secs(20));
    assert_eq!(lan.sent[1..4], [0, 0, 0], "silent servers send nothing");
    let r = lan.responses(h);
    assert_eq!(r.len(), 1);
    assert_eq!(r[0].1, 4);
    for s in 1..4 {
        assert_eq!(lan.servers[s].multicast_stats().silent, 1);
        assert_eq!(lan.eps[s].stats().multicast_requests_received, 1);
    }
    // a GET of a path nobody has: a 4.04 is nothing useful, so silence
    let mut req = get_wkc(&[], false);
    req.path = "no/such".into();
    let h = lan.eps[0]
        .request_multicast(lan.now, group(), &req, SimDuration::from_secs(3))
        .expect("NON multicast");
    let until = lan.now + SimDuration::from_secs(20);
    lan.run(until);
    assert!(lan.responses(h).is_empty());
    assert!(lan.events.iter().any(|(_, e)| matches!(
        e,
        Event::MulticastEnded { handle, responses: 0 } if *handle == h
    )));
}

// ---- through the simulator ---------------------------------------------

fn radio_scenario(n: u32, leisure: &str, query: &str) -> String {
    format!(
        r#"
name = "disco"
seed = 3
duration = "10 min"
drain = "30 s"
[[nodes]]
name = "client"
role = "client"
position = [10.0, 10.0]
[[groups]]
name = "s-{{i}}"
count = {n}
role = "server"
placement = {{ kind = "random", origin = [2.0, 2.0], area = [16.0, 16.0] }}
[[nodes]]
name = "other"
role = "server"
position = [12.0, 12.0]
[[media]]
name = "wpan"
preset = "ieee802154"
members = ["client", "s-*", "other"]
[[flows]]
name = "readings"
pattern = "fan_in"
protocol = "coap"
coap_mode = "observe"
reliability = "non"
publishers = ["s-*"]
receivers = ["client"]
topic = "room/{{i}}/temperature"
payload_bytes = 8
interval = "1 min"
[[flows]]
name = "hum"
pattern = "fan_in"
protocol = "coap"
coap_mode = "observe"
reliability = "non"
publishers = ["other"]
receivers = ["client"]
topic = "room/0/humidity"
payload_bytes = 8
interval = "1 min"
[[flows]]
name = "disc"
pattern = "broadcast"
protocol = "coap"
coap_mode = "discover"
reliability = "non"
publishers = ["client"]
receivers = ["s-*"]
query = "{query}"
topic = "d"
payload_bytes = 8
interval = "1 min"
start = "20 s"
[protocols.coap]
leisure = "{leisure}"
"#
    )
}

/// The simulator: one multicast GET per minute from `client` over an
/// 802.15.4 medium reaches 20 sensors; every matching sensor answers once
/// per request (delivered = intended, no duplicates), response times within
/// the leisure plus airtime, spread (mean ≈ L/2); the humidity sensor with
/// nothing matching never answers; the request is one broadcast frame.
#[test]
fn simulator_multicast_discovery_on_the_radio_medium() {
    let dir = run_text("disco-radio", &radio_scenario(20, "4 s", "rt=temp*"), &[]);
    let r = run_row(&dir, "disc");
    let sent = num(&r, "sent");
    assert!(sent >= 9.0, "{sent}");
    assert_eq!(num(&r, "intended"), 20.0 * sent);
    assert_eq!(num(&r, "delivered"), 20.0 * sent, "one answer per server");
    assert_eq!(num(&r, "duplicates"), 0.0);
    let msgs = read_csv(&dir.join("messages.csv"));
    let lat: Vec<f64> = msgs
        .iter()
        .filter(|m| m["flow"] == "disc")
        .map(|m| m["latency_ms"].parse::<f64>().expect("delivered"))
        .collect();
    assert_eq!(lat.len() as f64, 20.0 * sent);
    // airtime of the request and response frames with CSMA backoffs: < 100 ms
    assert!(lat.iter().all(|&l| l > 0.0 && l < 4100.0), "{lat:?}");
    let mean = lat.iter().sum::<f64>() / lat.len() as f64;
    let tol = 3.0 * 4000.0 / (12.0 * lat.len() as f64).sqrt() + 50.0;
    assert!((mean - 2000.0).abs() < tol, "mean {mean} ms");
    let early = lat.iter().filter(|&&l| l < 1000.0).count();
    let late = lat.iter().filter(|&&l| l >= 3000.0).count();
    assert!(early > 0 && late > 0, "spread: {early} early, {late} late");
    // "other" (humidity only) never answered, nor was it intended
    let packets = read_csv(&dir.join("packets.csv"));
    let from_other_in_window = packets
        .iter()
        .filter(|p| p["from"] == "other" && p["kind"] == "coap_non")
        .filter(|p| p["bytes"].parse::<u32>().unwrap_or(0) > 100)
        .count();
    assert_eq!(from_other_in_window, 0, "the humidity sensor stayed silent");
    // each request leaves as one radio frame: one row per receiver (20
    // sensors and `other`) at the same instant
    let mut per_time = std::collections::BTreeMap::new();
    for p in packets.iter().filter(|p| p["from"] == "client") {
        *per_time.entry(p["time_ms"].clone()).or_insert(0) += 1;
    }
    let frames = per_time.values().filter(|&&k| k == 21).count();
    assert_eq!(frames as f64, sent, "one broadcast frame per discovery");
}

/// Why the leisure exists: with Leisure 0 the six sensors answer at
/// once, their frames collide on the shared channel and answers are lost;
/// with 4 s every answer arrives. Runs are deterministic (same seed, same
/// messages.csv), and the leisure does not move the other flows.
#[test]
fn simulator_leisure_zero_collides_and_runs_are_deterministic() {
    let text = radio_scenario(6, "0 s", "if=core.s");
    let a = run_text("disco-l0-a", &text, &[]);
    let b = run_text("disco-l0-b", &text, &[]);
    let ma = std::fs::read(a.join("messages.csv")).expect("read");
    let mb = std::fs::read(b.join("messages.csv")).expect("read");
    assert_eq!(ma, mb, "deterministic");
    let r0 = run_row(&a, "disc");
    assert!(num(&r0, "latency_ms_max") < 300.0, "at once: {r0:?}");
    let c = run_text("disco-l4", &radio_scenario(6, "4 s", "if=core.s"), &[]);
    let r4 = run_row(&c, "disc");
    assert_eq!(num(&r4, "delivered"), num(&r4, "intended"));
    assert!(
        num(&r0, "delivered") < num(&r4, "delivered"),
        "leisure 0: {} of {}",
        num(&r0, "delivered"),
        num(&r0, "intended")
    );
    assert_eq!(
        num(&run_row(&a, "readings"), "delivered"),
        num(&run_row(&c, "readings"), "delivered")
    );
}

/// `qossim check` errors name the file, line and field.
#[test]
fn check_rejects_bad_discovery_settings() {
    let base = radio_scenario(2, "4 s", "rt=temp*");
    let cases = [
        (
            base.replacen(
                "coap_mode = \"discover\"\nreliability = \"non\"",
                "coap_mode = \"discover\"\nreliability = \"con\"",
                1,
            ),
            "flows.disc.reliability",
            "must be NON",
        ),
        (
            base.replace("query = \"rt=temp*\"", "query = \"foo=bar\""),
            "flows.disc.query",
            "filter on one of",
        ),
        (
            base.replace("query = \"rt=temp*\"", "query = \"rt=te*mp\""),
            "flows.disc.query",
            "may only end",
        ),
        (
            base.replacen(
                "topic = \"room/0/humidity\"",
                "topic = \"room/0/humidity\"\nquery = \"rt=x\"",
                1,
            ),
            "flows.hum.query",
            "only to coap_mode",
        ),
        (
            base.replace("leisure = \"4 s\"", "leisure = \"2 h\""),
            "protocols.coap.leisure",
            "",
        ),
    ];
    for (text, field, words) in cases {
        let err = qossim::scenario::load_str(&text, "d.toml", std::path::Path::new("."), &[])
            .expect_err(field)
            .to_string();
        assert!(err.contains("d.toml:"), "{err}");
        assert!(err.contains(field), "{field}: {err}");
        assert!(err.contains(words), "{field}: {err}");
    }
}
