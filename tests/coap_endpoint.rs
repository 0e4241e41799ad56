//! CoAP endpoint tests (RFC 7252 §4, §5.2): a Pair harness steps a client
//! and a server endpoint through a scripted or seeded-lossy pipe, time
//! jumping to the next wake-up (DESIGN.md convention 6). Each endpoint's
//! server side is answered by an application: a `ResourceServer`, or the
//! test itself (`App::Manual`: requests wait for the test's `respond` /
//! `defer`). Statistical tests compare with closed forms; run them in
//! release mode: `cargo test --release --test coap_endpoint`.

use std::net::{Ipv4Addr, SocketAddrV4};

use qossim::net::addr::SockAddr;
use qossim::proto::coap::{
    Code, Config, Endpoint, Event, Message, MessageType, Method, Request, RequestHandle,
    ResourceServer, Token, TransmitInfo,
};
use qossim::proto::Datagram;
use qossim::sim::{SimDuration, SimRng, SimTime};

const A: usize = 0; // client
const B: usize = 1; // server

fn addr(i: usize) -> SockAddr {
    SockAddr::from(SocketAddrV4::new(
        Ipv4Addr::new(10, 0, 0, 1 + i as u8),
        5683,
    ))
}

/// The application on an endpoint's server side.
#[allow(dead_code)] // `Manual` is for the server-API tests
enum App {
    /// A resource server answers every request.
    Server(ResourceServer),
    /// The test answers (or not) by hand.
    Manual,
}

type DropFn = Box<dyn FnMut(&TransmitInfo, &[u8]) -> bool>;

/// One datagram on the wire, as logged by the pipe.
#[derive(Clone, Debug)]
struct Sent {
    at: SimTime,
    from: usize,
    info: TransmitInfo,
    bytes: Vec<u8>,
    dropped: bool,
}

struct Pair {
    now: SimTime,
    eps: [Endpoint; 2],
    apps: [App; 2],
    delay: SimDuration,
    /// (arrival, seq, to, bytes), kept sorted.
    in_flight: Vec<(SimTime, u64, usize, Vec<u8>)>,
    seq: u64,
    drop: [DropFn; 2],
    log: Vec<Sent>,
    events: [Vec<(SimTime, Event)>; 2],
    buf: Vec<u8>,
}

impl Pair {
    fn new(client: Config, server: Config, seed: u64) -> Self {
        Pair {
            now: SimTime::ZERO,
            eps: [
                Endpoint::new(client, SimRng::stream(seed, "coap/a"), 100),
                Endpoint::new(server, SimRng::stream(seed, "coap/b"), 5000),
            ],
            apps: [
                App::Server(ResourceServer::new()),
                App::Server(ResourceServer::new()),
            ],
            delay: SimDuration::from_millis(10),
            in_flight: Vec::new(),
            seq: 0,
            drop: [Box::new(|_, _| false), Box::new(|_, _| false)],
            log: Vec::new(),
            events: [Vec::new(), Vec::new()],
            buf: Vec::with_capacity(256),
        }
    }

    fn lossy(p: f64, m: u32, seed: u64) -> Self {
        let cfg = Config {
            max_retransmit: m,
            ..Config::default()
        };
        let mut pair = Pair::new(cfg.clone(), cfg, seed);
        for dir in [A, B] {
            let mut rng = SimRng::stream(seed, if dir == A { "pipe/ab" } else { "pipe/ba" });
            pair.drop[dir] = Box::new(move |_, _| rng.bernoulli(p));
        }
        pair
    }

    /// The resource server of endpoint `i`.
    fn server(&mut self, i: usize) -> &mut ResourceServer {
        match &mut self.apps[i] {
            App::Server(s) => s,
            App::Manual => panic!("endpoint {i} is answered by hand"),
        }
    }

    fn request(&mut self, req: Request) -> RequestHandle {
        let h = self.eps[A]
            .request(addr(B), req)
            .expect("encodable request");
        self.drive();
        h
    }

    /// Inject raw bytes into endpoint `to` as if sent by the other one.
    fn inject(&mut self, to: usize, bytes: &[u8]) {
        let from = addr(1 - to);
        self.eps[to].handle_input(self.now, Datagram { from, data: bytes });
        self.drive();
    }

    /// Flush transmissions (through the drop rule) and events, handing
    /// requests to the server applications, until nothing moves.
    fn drive(&mut self) {
        while self.drive_once() {}
    }

    fn drive_once(&mut self) -> bool {
        let mut busy = false;
        for i in [A, B] {
            loop {
                self.buf.clear();
                let Some(info) = self.eps[i].poll_transmit(self.now, &mut self.buf) else {
                    break;
                };
                busy = true;
                assert_eq!(info.len, self.buf.len());
                let dropped = (self.drop[i])(&info, &self.buf);
                self.log.push(Sent {
                    at: self.now,
                    from: i,
                    info,
                    bytes: self.buf.clone(),
                    dropped,
                });
                if !dropped {
                    self.seq += 1;
                    let e = (self.now + self.delay, self.seq, 1 - i, self.buf.clone());
                    let at = self.in_flight.partition_point(|x| (x.0, x.1) <= (e.0, e.1));
                    self.in_flight.insert(at, e);
                }
            }
            while let Some(e) = self.eps[i].poll_event() {
                busy = true;
                if let App::Server(s) = &mut self.apps[i] {
                    s.handle_event(self.now, &mut self.eps[i], &e);
                }
                self.events[i].push((self.now, e));
            }
        }
        busy
    }

    fn app_timeout(&self, i: usize) -> Option<SimTime> {
        match &self.apps[i] {
            App::Server(s) => s.poll_timeout(),
            App::Manual => None,
        }
    }

    fn next_wake(&self) -> Option<SimTime> {
        let t = [
            self.eps[A].poll_timeout(),
            self.eps[B].poll_timeout(),
            self.app_timeout(A),
            self.app_timeout(B),
            self.in_flight.first().map(|x| x.0),
        ];
        t.into_iter().flatten().min()
    }

    /// Advance to the next wake-up at or before `limit`; false when idle.
    fn step(&mut self, limit: SimTime) -> bool {
        let Some(t) = self.next_wake() else {
            return false;
        };
        if t > limit {
            return false;
        }
        assert!(t >= self.now, "time never goes back");
        self.now = t;
        while self.in_flight.first().is_some_and(|x| x.0 <= t) {
            let (_, _, to, bytes) = self.in_flight.remove(0);
            let from = addr(1 - to);
            self.eps[to].handle_input(t, Datagram { from, data: &bytes });
            self.drive();
        }
        for i in [A, B] {
            if self.eps[i].poll_timeout().is_some_and(|w| w <= t) {
                self.eps[i].handle_timeout(t);
            }
            if self.app_timeout(i).is_some_and(|w| w <= t) {
                if let App::Server(s) = &mut self.apps[i] {
                    s.handle_timeout(t, &mut self.eps[i]);
                }
            }
        }
        self.drive();
        true
    }

    fn run_until(&mut self, limit: SimTime) {
        while self.step(limit) {}
        self.now = self.now.max(limit);
    }

    fn run(&mut self) {
        self.run_until(SimTime::MAX);
    }

    fn sent_by(&self, who: usize) -> Vec<&Sent> {
        self.log.iter().filter(|s| s.from == who).collect()
    }
}

fn secs(s: u64) -> SimTime {
    SimTime::ZERO + SimDuration::from_secs(s)
}

/// A pair whose server B holds `sensors/temp` = "21.5" and answers
/// piggybacked (`separate = None`) or `Some(d)` later as a separate response.
fn seeded_server(separate: Option<SimDuration>) -> Pair {
    let mut p = Pair::new(Config::default(), Config::default(), 1);
    p.apps[B] = App::Server(ResourceServer::new().with_separate_response_delay(separate));
    p.server(B)
        .resources_mut()
        .insert("sensors/temp", Some(0), b"21.5".to_vec());
    p
}

#[test]
fn test_idle_piggybacked_get() {
    let mut p = seeded_server(None);
    let h = p.request(Request::get("sensors/temp"));
    p.run();
    let (_, ev) = &p.events[A][0];
    assert_eq!(
        ev,
        &Event::ResponseReceived {
            handle: h,
            from: addr(B),
            code: Code::CONTENT,
            content_format: Some(0),
            payload: b"21.5".to_vec(),
            transmissions: 1,
        }
    );
    let b = p.sent_by(B);
    assert_eq!(b.len(), 1);
    // §5.2.1: ACK with the request's MID carrying the response.
    assert_eq!(
        (b[0].info.ty, b[0].info.code, b[0].info.message_id),
        (MessageType::Ack, Code::CONTENT, 100)
    );
    assert!(
        matches!(&p.events[B][0].1, Event::RequestReceived { method: Method::Get, path, .. } if path == "sensors/temp")
    );
    assert_eq!(p.eps[A].poll_timeout(), None, "exchange finished");
}

#[test]
fn test_awaiting_ack_empty_ack_then_separate_response() {
    let mut p = seeded_server(Some(SimDuration::from_secs(1)));
    let h1 = p.request(Request::get("sensors/temp"));
    let h2 = p.request(Request::put("sensors/temp", &b"23.0"[..]));
    p.run();
    let b = p.sent_by(B);
    let a = p.sent_by(A);
    // Server: Empty ACK for request 1, then (1 s later) a separate CON 2.05.
    assert_eq!(
        (b[0].info.ty, b[0].info.code, b[0].info.message_id),
        (MessageType::Ack, Code::EMPTY, 100)
    );
    assert_eq!(b[0].bytes, vec![0x60, 0x00, 0x00, 100]);
    let sep = b
        .iter()
        .find(|s| s.info.ty == MessageType::Con && s.info.code == Code::CONTENT)
        .expect("separate response");
    assert_eq!(sep.at, b[0].at + SimDuration::from_secs(1));
    let req1 = Message::parse(&a[0].bytes).expect("request parses");
    let resp = Message::parse(&sep.bytes).expect("response parses");
    assert_eq!(resp.token, req1.token, "§5.3.2 token matches");
    assert_ne!(
        resp.message_id, req1.message_id,
        "separate response has its own MID"
    );
    // §4.7: the Empty ACK ended the outstanding interaction, so request 2
    // (held by NSTART = 1) went out before the separate response arrived.
    let req2 = a
        .iter()
        .find(|s| s.info.code == Code::PUT)
        .expect("PUT sent");
    assert_eq!(req2.at, b[0].at + p.delay);
    assert!(req2.at < sep.at);
    // Client ACKs the separate response (Empty ACK with the server's MID).
    let ack = a
        .iter()
        .find(|s| s.info.ty == MessageType::Ack)
        .expect("client ACK");
    assert_eq!(
        (ack.info.code, ack.info.message_id),
        (Code::EMPTY, resp.message_id)
    );
    let got: Vec<(RequestHandle, Code)> = p.events[A]
        .iter()
        .filter_map(|(_, e)| match e {
            Event::ResponseReceived { handle, code, .. } => Some((*handle, *code)),
            _ => None,
        })
        .collect();
    assert_eq!(got, vec![(h1, Code::CONTENT), (h2, Code::CHANGED)]);
    assert_eq!(p.eps[B].stats().separate_responses_sent, 2);
    assert_eq!(
        p.eps[B].stats().retransmissions + p.eps[A].stats().retransmissions,
        0
    );
    assert_eq!(
        p.eps[B].poll_timeout(),
        None,
        "separate exchange finished after its ACK"
    );
}

#[test]
fn test_idle_unknown_messages_rst_or_ignored() {
    let mut p = Pair::new(Config::default(), Config::default(), 1);
    // §4.2/§5.3.2: a CON response with a token we never sent → RST, same MID.
    let resp = Message::new(
        MessageType::Con,
        Code::CONTENT,
        0x4242,
        Token::new(&[9, 9]).expect("token"),
    )
    .with_payload(&b"x"[..]);
    p.inject(A, &resp.to_bytes().expect("emit"));
    let last = p.log.last().expect("RST sent");
    assert_eq!(
        (last.from, last.info.ty, last.info.message_id),
        (A, MessageType::Rst, 0x4242)
    );
    assert_eq!(last.bytes, vec![0x70, 0x00, 0x42, 0x42]);
    // §4.2: an ACK or RST for an unknown MID is silently ignored.
    let n = p.log.len();
    p.inject(A, &[0x60, 0x00, 0x12, 0x34]);
    p.inject(A, &[0x70, 0x00, 0x12, 0x34]);
    assert_eq!(p.log.len(), n);
    assert_eq!(p.eps[A].stats().ignored, 2);
    // §4.2: a CON with a format error (TKL 9) is rejected with RST...
    p.inject(B, &[0x49, 0x01, 0x00, 0x07]);
    assert_eq!(
        p.log.last().map(|s| (s.from, s.info.ty, s.info.message_id)),
        Some((B, MessageType::Rst, 7))
    );
    // ...§4.3: a malformed NON is silently ignored, as is an unknown version.
    let n = p.log.len();
    p.inject(B, &[0x59, 0x01, 0x00, 0x08]);
    p.inject(B, &[0x80, 0x01, 0x00, 0x09]);
    assert_eq!(p.log.len(), n);
    assert_eq!(p.eps[B].stats().malformed_dropped, 3);
    // §4.3: an Empty CON ("ping") gets RST.
    p.inject(B, &[0x40, 0x00, 0x00, 0x0A]);
    assert_eq!(
        p.log.last().map(|s| (s.info.ty, s.info.message_id)),
        Some((MessageType::Rst, 10))
    );
    assert_eq!(p.eps[B].stats().rst_sent, 2);
    assert!(p.events[B].is_empty(), "nothing reached the application");
}

#[test]
fn test_awaiting_ack_rst_received() {
    let mut p = Pair::new(Config::default(), Config::default(), 1);
    p.drop[A] = Box::new(|_, _| true);
    let h = p.request(Request::get("x"));
    p.drive();
    let mid = p.log[0].info.message_id.to_be_bytes();
    p.inject(A, &[0x70, 0x00, mid[0], mid[1]]);
    assert_eq!(
        p.events[A].last().map(|e| &e.1),
        Some(&Event::ResetReceived { handle: h })
    );
    assert_eq!(p.eps[A].poll_timeout(), None, "no retransmission after RST");
}

#[test]
fn test_awaiting_response_non_rst_received_ack_ignored() {
    let mut p = Pair::new(Config::default(), Config::default(), 1);
    p.drop[A] = Box::new(|_, _| true);
    let h = p.request(Request::get("x").confirmable(false));
    let mid = p.log[0].info.message_id.to_be_bytes();
    // §4.2: an ACK never matches a NON; §4.3: a RST with its MID rejects it.
    p.inject(A, &[0x60, 0x00, mid[0], mid[1]]);
    assert!(p.events[A].is_empty());
    assert_eq!(p.eps[A].stats().ignored, 1);
    p.inject(A, &[0x70, 0x00, mid[0], mid[1]]);
    assert_eq!(
        p.events[A],
        vec![(SimTime::ZERO, Event::ResetReceived { handle: h })]
    );
    assert_eq!(p.eps[A].poll_timeout(), None);
}

#[test]
fn test_awaiting_ack_second_request_waits_nstart() {
    let mut p = seeded_server(None);
    // Lose the first transmission of request 1 so it stays outstanding ≥ 2 s.
    let mut first = true;
    p.drop[A] = Box::new(move |_, _| std::mem::replace(&mut first, false));
    let h1 = p.request(Request::get("sensors/temp"));
    let h2 = p.request(Request::get("sensors/temp"));
    assert_eq!(
        p.sent_by(A).len(),
        1,
        "NSTART = 1: only the first request is sent"
    );
    p.run();
    let a = p.sent_by(A);
    assert_eq!(a.len(), 3, "request 1 twice, request 2 once");
    assert_eq!(a[0].info.message_id, a[1].info.message_id);
    assert!(a[1].info.is_retransmission);
    assert!(
        a[0].dropped && !a[1].dropped,
        "the script lost only the first datagram"
    );
    // Request 2 starts exactly when request 1's piggybacked ACK arrives.
    let done1 = p.events[A]
        .iter()
        .find(|(_, e)| matches!(e, Event::ResponseReceived { handle, .. } if *handle == h1));
    let t1 = done1.expect("request 1 answered").0;
    assert_eq!(a[2].at, t1);
    assert!(a[2].at >= secs(2));
    // §4.4: message IDs are sequential in sending order.
    assert_eq!(a[2].info.message_id, a[0].info.message_id + 1);
    assert!(p.events[A]
        .iter()
        .any(|(_, e)| matches!(e, Event::ResponseReceived { handle, .. } if *handle == h2)));
}

#[test]
fn test_server_duplicate_con_same_ack_delivered_once() {
    let mut p = seeded_server(None);
    let mut first = true;
    p.drop[B] = Box::new(move |_, _| std::mem::replace(&mut first, false)); // lose the first ACK
    p.request(Request::put("sensors/temp", &b"30.0"[..]));
    p.run();
    let b = p.sent_by(B);
    assert_eq!(b.len(), 2);
    assert_eq!(
        b[0].bytes, b[1].bytes,
        "§4.5: the duplicate gets the same ACK bytes"
    );
    assert_eq!(b[0].info.code, Code::CHANGED);
    assert!(b[1].info.is_retransmission);
    let reqs = p.events[B]
        .iter()
        .filter(|(_, e)| matches!(e, Event::RequestReceived { .. }))
        .count();
    assert_eq!(reqs, 1, "application sees the request once");
    assert_eq!(p.eps[B].stats().duplicates_suppressed, 1);
    assert_eq!(
        p.server(B)
            .resources()
            .get("sensors/temp")
            .map(|r| r.value.as_slice()),
        Some(&b"30.0"[..])
    );
}

#[test]
fn test_server_dedup_entry_expires_after_exchange_lifetime() {
    let mut p = Pair::new(Config::default(), Config::default(), 1);
    let req = Message::new(
        MessageType::Con,
        Code::PUT,
        77,
        Token::new(&[1, 2]).expect("token"),
    )
    .with_option(qossim::proto::coap::CoapOption::UriPath("x".into()))
    .with_payload(&b"v"[..]);
    let bytes = req.to_bytes().expect("emit");
    p.inject(B, &bytes);
    p.now = secs(246);
    p.inject(B, &bytes);
    assert_eq!(
        p.eps[B].stats().duplicates_suppressed,
        1,
        "within EXCHANGE_LIFETIME (247 s)"
    );
    p.now = secs(247);
    p.inject(B, &bytes);
    let reqs = p.events[B]
        .iter()
        .filter(|(_, e)| matches!(e, Event::RequestReceived { .. }))
        .count();
    assert_eq!(reqs, 2, "after EXCHANGE_LIFETIME the MID is new again");
    assert_eq!(p.eps[B].dedup_entries(), 1, "the expired entry was purged");
    p.now = secs(1000);
    p.inject(B, &[0x60, 0x00, 0x00, 0x01]);
    assert_eq!(
        p.eps[B].dedup_entries(),
        0,
        "purged lazily at the next input"
    );
}

#[test]
fn test_awaiting_ack_retransmissions_double_then_give_up() {
    let mut firsts = Vec::new();
    for seed in 0..50 {
        let mut p = Pair::new(Config::default(), Config::default(), seed);
        p.drop[A] = Box::new(|_, _| true);
        let h = p.request(Request::get("x"));
        p.run();
        let t: Vec<SimTime> = p.sent_by(A).iter().map(|s| s.at).collect();
        assert_eq!(t.len(), 5, "1 + MAX_RETRANSMIT (4) transmissions");
        let d: Vec<u64> = t.windows(2).map(|w| (w[1] - w[0]).as_nanos()).collect();
        assert!(
            (2_000_000_000..=3_000_000_000).contains(&d[0]),
            "first timeout {} ns in [2 s, 3 s]",
            d[0]
        );
        for w in d.windows(2) {
            assert_eq!(w[1], 2 * w[0], "each interval exactly twice the previous");
        }
        // Give-up after the last timeout: 31 × T0 after the first send,
        // i.e. MAX_TRANSMIT_WAIT at the largest T0 (§4.8.2).
        let (gave_up_at, ev) = p.events[A].last().expect("event");
        assert_eq!(ev, &Event::GaveUp { handle: h });
        assert_eq!((*gave_up_at - t[0]).as_nanos(), 31 * d[0]);
        assert!(*gave_up_at - t[0] <= p.eps[A].config().max_transmit_wait());
        assert_eq!(p.eps[A].stats().give_ups, 1);
        assert_eq!(p.eps[A].stats().retransmissions, 4);
        firsts.push(d[0]);
    }
    firsts.sort_unstable();
    firsts.dedup();
    assert!(firsts.len() > 40, "the initial timeout is drawn, not fixed");
}

#[test]
fn test_awaiting_ack_give_up_at_max_transmit_wait() {
    // With ACK_RANDOM_FACTOR = 1 the initial timeout is exactly ACK_TIMEOUT,
    // so the give-up lands exactly on MAX_TRANSMIT_WAIT = 2 s × 31 = 62 s.
    let cfg = Config {
        ack_random_factor: 1.0,
        ..Config::default()
    };
    assert_eq!(cfg.max_transmit_wait(), SimDuration::from_secs(62));
    let mut p = Pair::new(cfg.clone(), cfg, 3);
    p.drop[A] = Box::new(|_, _| true);
    let h = p.request(Request::get("x"));
    p.run_until(secs(61));
    assert!(
        p.events[A].is_empty(),
        "still trying before MAX_TRANSMIT_WAIT"
    );
    p.run();
    assert_eq!(p.events[A], vec![(secs(62), Event::GaveUp { handle: h })]);
    assert_eq!(p.eps[A].poll_timeout(), None);
}

#[test]
fn test_idle_non_request_non_response() {
    let mut p = seeded_server(None);
    let h = p.request(Request::get("sensors/temp").confirmable(false));
    p.run();
    let b = p.sent_by(B);
    assert_eq!(b.len(), 1);
    // §5.2.3: a NON request gets a NON response with its own MID.
    assert_eq!(
        (b[0].info.ty, b[0].info.code),
        (MessageType::Non, Code::CONTENT)
    );
    assert_eq!(b[0].info.message_id, 5000);
    assert!(
        matches!(&p.events[A][0].1, Event::ResponseReceived { handle, payload, .. } if *handle == h && payload == b"21.5")
    );
    // A lost NON is sent once and then reported as unanswered.
    let mut q = seeded_server(None);
    q.drop[A] = Box::new(|_, _| true);
    let h = q.request(Request::get("sensors/temp").confirmable(false));
    q.run();
    assert_eq!(q.sent_by(A).len(), 1, "§4.3: NON is never retransmitted");
    assert_eq!(
        q.events[A],
        vec![(secs(3), Event::NoResponse { handle: h })]
    );
}

#[test]
fn test_server_unknown_critical_option_bad_option() {
    let mut p = Pair::new(Config::default(), Config::default(), 1);
    // If-None-Match (5, critical) is not implemented → 4.02 (§5.4.1).
    let req = Message::new(
        MessageType::Con,
        Code::PUT,
        9,
        Token::new(&[1]).expect("token"),
    )
    .with_option(qossim::proto::coap::CoapOption::IfNoneMatch);
    p.inject(B, &req.to_bytes().expect("emit"));
    let last = p.log.last().expect("reply");
    assert_eq!(
        (last.info.ty, last.info.code, last.info.message_id),
        (MessageType::Ack, Code::BAD_OPTION, 9)
    );
    // The same option in a NON is rejected with RST (§5.4.1, §4.3).
    let non = Message::new(
        MessageType::Non,
        Code::PUT,
        10,
        Token::new(&[1]).expect("token"),
    )
    .with_option(qossim::proto::coap::CoapOption::IfNoneMatch);
    p.inject(B, &non.to_bytes().expect("emit"));
    let last = p.log.last().expect("reply");
    assert_eq!((last.info.ty, last.info.message_id), (MessageType::Rst, 10));
    assert!(p.events[B].is_empty());
}

// ---- closed-form reliability -----------------------------------------------

struct Case {
    p: f64,
    m: u32,
}

/// z-score of an observed fraction against a probability.
fn z(observed: usize, n: usize, prob: f64) -> f64 {
    let se = (prob * (1.0 - prob) / n as f64).sqrt();
    (observed as f64 / n as f64 - prob) / se
}

#[test]
fn closed_form_reliability_con() {
    const N: usize = 20_000;
    println!("  p    M   client answered (obs / closed)   server received (obs / closed)");
    for (ci, case) in [
        Case { p: 0.3, m: 4 },
        Case { p: 0.5, m: 4 },
        Case { p: 0.3, m: 2 },
        Case { p: 0.5, m: 2 },
    ]
    .into_iter()
    .enumerate()
    {
        let mut pair = Pair::lossy(case.p, case.m, 1000 + ci as u64);
        pair.server(B)
            .resources_mut()
            .insert("r", None, b"v".to_vec());
        for _ in 0..N {
            pair.eps[A]
                .request(addr(B), Request::get("r"))
                .expect("request");
        }
        pair.drive();
        pair.run();
        let m = case.m as usize;
        let mut hist = vec![0usize; m + 2]; // [k] = answered after k transmissions; [m+1+... ] gave up
        let mut gave_up = 0usize;
        for (_, e) in &pair.events[A] {
            match e {
                Event::ResponseReceived { transmissions, .. } => {
                    hist[*transmissions as usize - 1] += 1
                }
                Event::GaveUp { .. } => gave_up += 1,
                other => panic!("unexpected event {other:?}"),
            }
        }
        let answered: usize = hist.iter().sum();
        assert_eq!(answered + gave_up, N, "every exchange ends exactly once");
        let received = pair.events[B]
            .iter()
            .filter(|(_, e)| matches!(e, Event::RequestReceived { .. }))
            .count();
        let q = (1.0 - case.p) * (1.0 - case.p);
        let p_answer = 1.0 - (1.0 - q).powi(case.m as i32 + 1);
        let p_recv = 1.0 - case.p.powi(case.m as i32 + 1);
        let (za, zr) = (z(answered, N, p_answer), z(received, N, p_recv));
        println!(
            "  {:.1}  {}   {:.4} / {:.4} (z {:+.2})         {:.4} / {:.4} (z {:+.2})",
            case.p,
            case.m,
            answered as f64 / N as f64,
            p_answer,
            za,
            received as f64 / N as f64,
            p_recv,
            zr
        );
        assert!(za.abs() < 3.0, "answered fraction off by {za:.2} SE");
        assert!(zr.abs() < 3.0, "received fraction off by {zr:.2} SE");
        // Transmissions per exchange: answered on attempt k with
        // (1−q)^(k−1)·q, k = 1..=M+1; gave up after M+1 with (1−q)^(M+1).
        for (k, &count) in hist.iter().take(m + 1).enumerate() {
            let pk = (1.0 - q).powi(k as i32) * q;
            let zk = z(count, N, pk);
            println!(
                "      answered after {} tx: {:.4} / {:.4} (z {:+.2})",
                k + 1,
                count as f64 / N as f64,
                pk,
                zk
            );
            assert!(zk.abs() < 3.0, "bin {} off by {zk:.2} SE", k + 1);
        }
        let pg = (1.0 - q).powi(case.m as i32 + 1);
        let zg = z(gave_up, N, pg);
        println!(
            "      gave up after {} tx:     {:.4} / {:.4} (z {:+.2})",
            m + 1,
            gave_up as f64 / N as f64,
            pg,
            zg
        );
        assert!(zg.abs() < 3.0, "give-up bin off by {zg:.2} SE");
        // The client's own counters agree with the events.
        let st = pair.eps[A].stats();
        let tx_total: usize = hist
            .iter()
            .enumerate()
            .map(|(k, c)| (k + 1) * c)
            .sum::<usize>()
            + gave_up * (m + 1);
        assert_eq!(st.retransmissions as usize, tx_total - N);
        assert_eq!(st.give_ups as usize, gave_up);
    }
}
