//! CoAP endpoint tests (RFC 7252 §4, §5.2): a Pair harness steps a client
//! and a server endpoint through a scripted or seeded-lossy pipe, time
//! jumping to the next wake-up (DESIGN.md convention 6). Each endpoint's
//! server side is answered by an application: a `ResourceServer`, or the
//! test itself (`App::Manual`: requests wait for the test's `respond` /
//! `defer`). Statistical tests compare with closed forms; run them in
//! release mode: `cargo test --release --test coap_endpoint`.

mod common;

use std::net::{Ipv4Addr, SocketAddrV4};

use qossim::net::addr::SockAddr;
use qossim::proto::coap::endpoint::observe_value;
use qossim::proto::coap::{
    BlockOptions, CoapOption, Code, Config, Endpoint, EndpointError, Event, IncomingId, Message,
    MessageRef, MessageType, Method, Reply, Request, RequestHandle, ResourceServer, Responded,
    Token, TransmitInfo,
};
use qossim::proto::{Datagram, SansIo};
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
            observe: None,
            block: BlockOptions::NONE,
            cache: Default::default(),
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

// ---- the server API: the application answers --------------------------------

/// The requests endpoint `i` reported, with their ids.
fn requests_seen(p: &Pair, i: usize) -> Vec<(SimTime, IncomingId, bool)> {
    p.events[i]
        .iter()
        .filter_map(|(t, e)| match e {
            Event::RequestReceived {
                id, confirmable, ..
            } => Some((*t, *id, *confirmable)),
            _ => None,
        })
        .collect()
}

fn content(payload: &[u8]) -> Reply {
    Reply::new(Code::CONTENT, Some(0), payload.to_vec())
}

/// A CON request (as a client would send it) with `mid` and token [7].
fn con_get(mid: u16) -> Vec<u8> {
    Message::new(
        MessageType::Con,
        Code::GET,
        mid,
        Token::new(&[7]).expect("token"),
    )
    .with_option(qossim::proto::coap::CoapOption::UriPath("x".into()))
    .to_bytes()
    .expect("emit")
}

#[test]
fn test_server_app_defers_then_separate_con_retransmitted_until_acked() {
    let mut p = Pair::new(Config::default(), Config::default(), 7);
    p.apps[B] = App::Manual;
    // lose the first transmission of the separate response
    p.drop[B] = Box::new(|info, _| info.ty == MessageType::Con && !info.is_retransmission);
    let h = p.request(Request::get("slow"));
    p.run_until(p.now + p.delay);
    let seen = requests_seen(&p, B);
    assert_eq!(seen.len(), 1, "the request reached the application");
    let (arrived, id, _) = seen[0];
    assert!(
        p.sent_by(B).is_empty(),
        "nothing is sent before the app acts"
    );
    assert_eq!(p.eps[B].pending_requests(), 1);
    // §5.2.2: defer → Empty ACK at once, with the request's MID
    p.eps[B].defer(id).expect("pending");
    p.drive();
    let b = p.sent_by(B);
    assert_eq!(b.len(), 1);
    assert_eq!(b[0].at, arrived);
    assert_eq!(
        b[0].bytes,
        vec![0x60, 0x00, 0x00, 100],
        "Empty ACK, MID 100"
    );
    // a duplicate of the request now gets the same Empty ACK (§4.5), no event
    let req_bytes = p.sent_by(A)[0].bytes.clone();
    p.inject(B, &req_bytes);
    let b = p.sent_by(B);
    assert_eq!((b.len(), &b[1].bytes), (2, &b[0].bytes));
    assert!(b[1].info.is_retransmission);
    assert_eq!(requests_seen(&p, B).len(), 1);
    // the client stops retransmitting at the Empty ACK and waits
    p.run_until(arrived + SimDuration::from_secs(5));
    assert_eq!(
        p.sent_by(A).len(),
        1,
        "no client retransmission after the ACK"
    );
    assert!(p.events[A].is_empty());
    // 5 s later the application answers: a separate CON (§5.2.2)
    let r = p.eps[B].respond(id, &content(b"late")).expect("pending");
    let Responded::SeparateCon(rid) = r else {
        panic!("expected a separate CON response, got {r:?}");
    };
    p.drive();
    p.run();
    let cons: Vec<&Sent> = p
        .sent_by(B)
        .into_iter()
        .filter(|s| s.info.ty == MessageType::Con)
        .collect();
    assert_eq!(cons.len(), 2, "lost once, retransmitted once");
    assert!(cons[0].dropped && !cons[1].dropped && cons[1].info.is_retransmission);
    assert_eq!(cons[0].bytes, cons[1].bytes, "same message, same MID");
    assert_eq!(cons[0].info.message_id, 5000, "B's first MID: a new one");
    let t0 = (cons[1].at - cons[0].at).as_nanos();
    assert!(
        (2_000_000_000..=3_000_000_000).contains(&t0),
        "retransmitted after the initial timeout: {t0} ns"
    );
    let req = Message::parse(&req_bytes).expect("request");
    let resp = Message::parse(&cons[0].bytes).expect("response");
    assert_eq!((resp.code, resp.token), (Code::CONTENT, req.token));
    // the client ACKs it (Empty, the response's MID) and gets the response
    let ack = p
        .sent_by(A)
        .into_iter()
        .find(|s| s.info.ty == MessageType::Ack)
        .map(|s| (s.info.code, s.info.message_id));
    assert_eq!(ack, Some((Code::EMPTY, 5000)));
    assert!(p.events[A].iter().any(|(_, e)| matches!(
        e,
        Event::ResponseReceived { handle, code: Code::CONTENT, payload, transmissions: 1, .. }
            if *handle == h && payload == b"late"
    )));
    assert!(p.events[B]
        .iter()
        .any(|(_, e)| matches!(e, Event::ResponseAcked { response, .. } if *response == rid)));
    let st = p.eps[B].stats();
    assert_eq!(
        (
            st.separate_responses_sent,
            st.retransmissions,
            st.unanswered_acks
        ),
        (1, 1, 0)
    );
    assert_eq!(p.eps[B].poll_timeout(), None, "nothing left on B");
    assert_eq!(p.eps[B].pending_requests(), 0);
    assert_eq!(
        p.eps[B].respond(id, &content(b"again")),
        Err(EndpointError::UnknownRequest { id }),
        "answered once"
    );
}

#[test]
fn test_server_app_answers_non_request_with_non_new_mid() {
    let mut p = Pair::new(Config::default(), Config::default(), 1);
    p.apps[B] = App::Manual;
    let h = p.request(Request::get("x").confirmable(false));
    p.run_until(p.now + p.delay);
    let (_, id, con) = requests_seen(&p, B)[0];
    assert!(!con);
    // defer has nothing to send for a NON (no ACK exists, §4.3)
    p.eps[B].defer(id).expect("pending");
    p.drive();
    assert!(p.sent_by(B).is_empty());
    p.run_until(p.now + SimDuration::from_secs(1));
    assert_eq!(
        p.eps[B].respond(id, &content(b"n")),
        Ok(Responded::Non),
        "§5.2.3: a NON request gets a NON response"
    );
    p.drive();
    p.run();
    let b = p.sent_by(B);
    assert_eq!(b.len(), 1);
    assert_eq!(
        (b[0].info.ty, b[0].info.code),
        (MessageType::Non, Code::CONTENT)
    );
    let req = Message::parse(&p.sent_by(A)[0].bytes).expect("request");
    let resp = Message::parse(&b[0].bytes).expect("response");
    assert_eq!(req.message_id, 100);
    assert_eq!(resp.message_id, 5000, "a new MID from B's sequence");
    assert_eq!(resp.token, req.token);
    assert_eq!(
        p.events[A],
        vec![(
            b[0].at + p.delay,
            Event::ResponseReceived {
                handle: h,
                from: addr(B),
                code: Code::CONTENT,
                content_format: Some(0),
                payload: b"n".to_vec(),
                transmissions: 1,
                observe: None,
                block: BlockOptions::NONE,
                cache: Default::default(),
            }
        )]
    );
    assert_eq!(p.eps[B].poll_timeout(), None);
}

#[test]
fn test_server_duplicate_con_after_app_answer_gets_cached_ack_no_event() {
    let mut p = Pair::new(Config::default(), Config::default(), 1);
    p.apps[B] = App::Manual;
    let req = con_get(0x1234);
    p.inject(B, &req);
    let (_, id, con) = requests_seen(&p, B)[0];
    assert!(con);
    // a duplicate before the application answered: suppressed, nothing sent
    p.inject(B, &req);
    assert!(p.sent_by(B).is_empty());
    assert_eq!(requests_seen(&p, B).len(), 1);
    // the app reads the full request, then answers: piggybacked (§5.2.1)
    let m = p.eps[B].request_message(id).expect("pending request");
    assert_eq!((m.message_id, m.code), (0x1234, Code::GET));
    p.now += SimDuration::from_millis(500);
    assert_eq!(
        p.eps[B].respond(id, &content(b"v")),
        Ok(Responded::Piggybacked)
    );
    p.drive();
    assert!(p.eps[B].request_message(id).is_none(), "answered");
    // §4.5: the next duplicate gets the very same ACK, and no event
    p.now += SimDuration::from_secs(2);
    p.inject(B, &req);
    let b = p.sent_by(B);
    assert_eq!(b.len(), 2);
    assert_eq!(
        (b[0].info.ty, b[0].info.code, b[0].info.message_id),
        (MessageType::Ack, Code::CONTENT, 0x1234)
    );
    assert_eq!(b[0].bytes, b[1].bytes, "the cached piggybacked ACK");
    assert!(!b[0].info.is_retransmission && b[1].info.is_retransmission);
    assert_eq!(requests_seen(&p, B).len(), 1, "one event for three copies");
    assert_eq!(p.eps[B].stats().duplicates_suppressed, 2);
    assert_eq!(p.eps[B].stats().requests_received, 1);
}

#[test]
fn test_server_unanswered_request_acked_after_processing_delay_then_expires() {
    // a client talking to a server application that never answers
    let mut p = Pair::new(Config::default(), Config::default(), 5);
    p.apps[B] = App::Manual;
    let h = p.request(Request::get("void"));
    let non = Message::new(
        MessageType::Non,
        Code::GET,
        9,
        Token::new(&[1]).expect("token"),
    )
    .to_bytes()
    .expect("emit");
    p.inject(B, &non);
    p.run_until(secs(1));
    let seen = requests_seen(&p, B);
    assert_eq!(seen.len(), 2);
    let (con_at, con_id, _) = seen[1]; // the CON arrives after the pipe delay
    let (non_at, non_id, _) = seen[0];
    assert!(p.sent_by(B).is_empty());
    assert_eq!(p.eps[B].pending_requests(), 2);
    // PROCESSING_DELAY (2 s) after its arrival the endpoint ACKs the CON
    p.run_until(secs(40));
    let b = p.sent_by(B);
    assert_eq!(b.len(), 1, "only the CON is ACKed; a NON has no ACK");
    assert_eq!(b[0].at, con_at + SimDuration::from_secs(2));
    assert_eq!(
        (b[0].info.ty, b[0].info.code, b[0].info.message_id),
        (MessageType::Ack, Code::EMPTY, 100)
    );
    let ack_at = b[0].at;
    assert_eq!(p.eps[B].stats().unanswered_acks, 1);
    assert!(
        p.eps[A].stats().retransmissions <= 1,
        "retransmissions stop at the ACK"
    );
    // still answerable as a separate response; nobody answers. The NON is
    // forgotten after NON_LIFETIME (145 s), the CON after EXCHANGE_LIFETIME
    // (247 s), both from their arrival.
    p.run();
    let expired: Vec<(SimTime, IncomingId)> = p.events[B]
        .iter()
        .filter_map(|(t, e)| match e {
            Event::RequestExpired { id } => Some((*t, *id)),
            _ => None,
        })
        .collect();
    assert_eq!(
        expired,
        vec![
            (non_at + SimDuration::from_secs(145), non_id),
            (con_at + SimDuration::from_secs(247), con_id)
        ]
    );
    assert_eq!(p.eps[B].pending_requests(), 0, "nothing leaks");
    assert_eq!(p.eps[B].stats().requests_expired, 2);
    assert_eq!(
        p.eps[B].respond(con_id, &content(b"too late")),
        Err(EndpointError::UnknownRequest { id: con_id })
    );
    assert_eq!(p.eps[B].poll_timeout(), None);
    // the client gave up waiting for the separate response EXCHANGE_LIFETIME
    // after the Empty ACK reached it
    assert_eq!(
        p.events[A],
        vec![(
            ack_at + p.delay + SimDuration::from_secs(247),
            Event::NoResponse { handle: h }
        )]
    );
}

#[test]
fn test_resource_server_get_put_post_delete() {
    let mut p = seeded_server(None);
    let ask = |p: &mut Pair, req: Request| -> (Code, Option<u16>, Vec<u8>) {
        let h = p.request(req);
        p.run();
        p.events[A]
            .iter()
            .find_map(|(_, e)| match e {
                Event::ResponseReceived {
                    handle,
                    code,
                    content_format,
                    payload,
                    ..
                } if *handle == h => Some((*code, *content_format, payload.clone())),
                _ => None,
            })
            .expect("answered")
    };
    // §5.8.1 GET: 2.05 with the value and its Content-Format, or 4.04
    assert_eq!(
        ask(&mut p, Request::get("sensors/temp")),
        (Code::CONTENT, Some(0), b"21.5".to_vec())
    );
    assert_eq!(ask(&mut p, Request::get("nope")).0, Code::NOT_FOUND);
    // §5.8.3 PUT: 2.01 Created when new, 2.04 Changed after; §5.8.2 POST
    assert_eq!(ask(&mut p, Request::put("a/b", &b"1"[..])).0, Code::CREATED);
    assert_eq!(ask(&mut p, Request::put("a/b", &b"2"[..])).0, Code::CHANGED);
    let post = Request {
        payload: b"3".to_vec(),
        content_format: Some(50),
        ..Request::new(Method::Post, "a/b")
    };
    assert_eq!(ask(&mut p, post).0, Code::CHANGED);
    assert_eq!(
        ask(&mut p, Request::get("a/b")),
        (Code::CONTENT, Some(50), b"3".to_vec())
    );
    // §5.8.4 DELETE: 2.02, idempotent
    let del = || Request::new(Method::Delete, "a/b");
    assert_eq!(ask(&mut p, del()).0, Code::DELETED);
    assert_eq!(ask(&mut p, del()).0, Code::DELETED);
    assert_eq!(ask(&mut p, Request::get("a/b")).0, Code::NOT_FOUND);
    assert!(p.server(B).resources().get("a/b").is_none());
    // every request reached the application once and was answered in its ACK
    assert_eq!(requests_seen(&p, B).len(), 9);
    assert!(p
        .sent_by(B)
        .iter()
        .all(|s| s.info.ty == MessageType::Ack && s.info.code.is_response()));
    // an unknown method (0.05) is the endpoint's: 4.05, no event (§5.8)
    let fetch = Message::new(
        MessageType::Con,
        Code::new(0, 5),
        77,
        Token::new(&[2]).expect("token"),
    )
    .to_bytes()
    .expect("emit");
    p.inject(B, &fetch);
    let last = p.log.last().expect("reply");
    assert_eq!(
        (last.info.ty, last.info.code, last.info.message_id),
        (MessageType::Ack, Code::METHOD_NOT_ALLOWED, 77)
    );
    assert_eq!(requests_seen(&p, B).len(), 9);
}

#[test]
fn test_send_response_con_retransmitted_and_reset_reported() {
    // an unsolicited CON response (what an Observe notification will be):
    // the message layer retransmits it; the client, knowing no such token,
    // rejects it with RST (§5.3.2), which the application is told
    let mut p = Pair::new(Config::default(), Config::default(), 3);
    let mut lost = 0;
    p.drop[B] = Box::new(move |_, _| {
        lost += 1;
        lost == 1
    });
    let token = Token::new(&[0xAB]).expect("token");
    let rid = p.eps[B]
        .send_response(addr(A), token, &content(b"n1"), true)
        .expect("a CON is tracked");
    p.drive();
    p.run();
    let b = p.sent_by(B);
    assert_eq!(b.len(), 2, "lost once, retransmitted once");
    assert_eq!(b[0].bytes, b[1].bytes);
    let rst = p.sent_by(A);
    assert_eq!(
        rst.iter()
            .map(|s| (s.info.ty, s.info.message_id))
            .collect::<Vec<_>>(),
        vec![(MessageType::Rst, b[0].info.message_id)]
    );
    assert_eq!(
        p.events[B],
        vec![(rst[0].at + p.delay, Event::ResponseReset { response: rid })]
    );
    assert_eq!(p.eps[B].poll_timeout(), None, "retransmission stopped");
    // a NON one is sent once and not tracked
    assert_eq!(
        p.eps[B].send_response(addr(A), token, &content(b"n2"), false),
        None
    );
}

/// The endpoint has the project's one driver shape, `SansIo`, and
/// `poll_transmit` appends (the driver may keep header room in front).
#[test]
fn test_endpoint_is_sans_io_and_poll_transmit_appends() {
    fn drain<S: SansIo>(s: &mut S, now: SimTime, buf: &mut Vec<u8>) -> Vec<S::Transmit> {
        let mut out = Vec::new();
        while let Some(t) = SansIo::poll_transmit(s, now, buf) {
            out.push(t);
        }
        out
    }
    let mut ep = Endpoint::new(Config::default(), SimRng::stream(1, "x"), 42);
    ep.request(addr(B), Request::get("a")).expect("request");
    assert_eq!(ep.poll_timeout(), None, "the timer starts when it is sent");
    let mut buf = vec![0xEE; 8]; // header room
    let sent = drain(&mut ep, secs(10), &mut buf);
    assert_eq!(sent.len(), 1);
    assert_eq!(&buf[..8], &[0xEE; 8], "bytes in front are kept");
    assert_eq!(sent[0].len, buf.len() - 8);
    let m = Message::parse(&buf[8..]).expect("the appended datagram");
    assert_eq!(
        (m.ty, m.code, m.message_id),
        (MessageType::Con, Code::GET, 42)
    );
    let t = SansIo::poll_timeout(&ep).expect("retransmission timer");
    assert!(t >= secs(12) && t <= secs(13), "armed at the send: {t:?}");
    SansIo::handle_input(
        &mut ep,
        secs(11),
        Datagram {
            from: addr(B),
            // piggybacked 2.05 with the request's token (the first: 00 00)
            data: &[0x62, 0x45, 0x00, 42, 0x00, 0x00],
        },
    );
    assert_eq!(SansIo::poll_timeout(&ep), None, "answered");
    assert!(matches!(
        SansIo::poll_event(&mut ep),
        Some(Event::ResponseReceived {
            code: Code::CONTENT,
            transmissions: 1,
            ..
        })
    ));
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

// ---------------------------------------------------------------------------
// Observe (RFC 7641)

/// A pair whose server B holds `sensors/temp` and A registers on it.
fn observed(con: bool) -> (Pair, RequestHandle) {
    let mut p = seeded_server(None);
    let mut req = Request::get("sensors/temp").confirmable(con);
    req.observe = Some(0);
    let h = p.request(req);
    p.run_until(secs(1));
    (p, h)
}

fn update(p: &mut Pair, value: &[u8]) {
    let now = p.now;
    let App::Server(s) = &mut p.apps[B] else {
        panic!("B is a server")
    };
    s.update(now, &mut p.eps[B], "sensors/temp", Some(0), value);
    p.drive();
}

fn notifications(p: &Pair) -> Vec<(Vec<u8>, Option<u32>)> {
    p.events[A]
        .iter()
        .filter_map(|(_, e)| match e {
            Event::Notification {
                payload, observe, ..
            } => Some((payload.clone(), *observe)),
            _ => None,
        })
        .collect()
}

/// RFC 7641 §1.2 figure 2's exchange: GET with Observe 0, 2.05 with
/// Observe and the current state, then a notification per change, each a
/// 2.05 carrying the token and a higher Observe value.
#[test]
fn observe_registration_then_notifications_per_change() {
    let (mut p, h) = observed(true);
    let reg = &p.sent_by(A)[0];
    let m = Message::parse(&reg.bytes).expect("registration");
    assert_eq!((m.ty, m.code), (MessageType::Con, Code::GET));
    let req = MessageRef::parse(&reg.bytes).expect("ref");
    assert_eq!(observe_value(&req), Some(0));
    let answer = match &p.events[A][0].1 {
        Event::ResponseReceived {
            handle,
            code,
            observe,
            payload,
            ..
        } => (*handle, *code, *observe, payload.clone()),
        e => panic!("{e:?}"),
    };
    assert_eq!(answer.0, h);
    assert_eq!(answer.1, Code::CONTENT);
    assert!(answer.2.is_some(), "the 2.05 carries Observe");
    assert_eq!(answer.3, b"21.5");
    assert!(p.eps[A].is_observing(h));
    assert_eq!(p.server(B).observers().len(), 1);
    for (i, v) in [&b"22.0"[..], b"22.5", b"23.0"].into_iter().enumerate() {
        update(&mut p, v);
        p.run_until(secs(2 + i as u64));
    }
    let n = notifications(&p);
    assert_eq!(
        n.iter().map(|x| x.0.as_slice()).collect::<Vec<_>>(),
        vec![&b"22.0"[..], b"22.5", b"23.0"]
    );
    let seqs: Vec<u32> = n.iter().map(|x| x.1.expect("observe")).collect();
    assert!(seqs.windows(2).all(|w| w[0] < w[1]), "{seqs:?}");
    assert!(seqs[0] > answer.2.unwrap_or(0));
    // CON notifications (the registration was CON), each acknowledged
    let notes: Vec<_> = p
        .sent_by(B)
        .into_iter()
        .filter(|s| s.info.response.is_some())
        .collect();
    assert_eq!(notes.len(), 3);
    assert!(notes.iter().all(|s| s.info.ty == MessageType::Con));
    assert_eq!(p.eps[A].stats().notifications_accepted, 3);

    // the same exchange as Wireshark decodes it (RFC 7641 figure 2 plus
    // the ACKs of the CON notifications): Observe 0 in the registration,
    // the server's sequence numbers in the answer and each notification
    if common::tshark::available("observe_registration_then_notifications_per_change") {
        let d: Vec<_> = p
            .log
            .iter()
            .map(|s| (s.at, s.from, 1 - s.from, &s.bytes[..]))
            .collect();
        let file = common::tshark::coap_capture("observe-figure", &d);
        let seen = common::tshark::coap_figure(&file);
        let o = |i: usize| seqs.get(i).copied().unwrap_or_default();
        let first = answer.2.unwrap_or_default();
        assert_eq!(
            seen,
            [
                "CON 0.01 Observe:0".to_string(),
                format!("ACK 2.05 Observe:{first}"),
                format!("CON 2.05 Observe:{}", o(0)),
                "ACK 0.00".to_string(),
                format!("CON 2.05 Observe:{}", o(1)),
                "ACK 0.00".to_string(),
                format!("CON 2.05 Observe:{}", o(2)),
                "ACK 0.00".to_string(),
            ]
        );
    }
}

/// §3.4: a notification older than the last one (within 128 s) is not
/// delivered; after 128 s any sequence number is fresh.
#[test]
fn observe_stale_notification_is_dropped_within_128_s() {
    let (mut p, h) = observed(false);
    let token = {
        let reg = &p.sent_by(A)[0];
        MessageRef::parse(&reg.bytes).expect("reg").token
    };
    let note = |mid: u16, seq: u32, v: &[u8]| -> Vec<u8> {
        Message::new(MessageType::Non, Code::CONTENT, mid, token)
            .with_option(CoapOption::Observe(seq))
            .with_option(CoapOption::ContentFormat(0))
            .with_payload(v)
            .to_bytes()
            .expect("encodes")
    };
    p.inject(A, &note(9000, 1000, b"new"));
    p.inject(A, &note(9001, 999, b"old"));
    p.inject(A, &note(9002, 1001, b"newer"));
    let n = notifications(&p);
    assert_eq!(
        n.iter().map(|x| x.0.as_slice()).collect::<Vec<_>>(),
        vec![&b"new"[..], b"newer"]
    );
    assert_eq!(p.eps[A].stats().notifications_stale, 1);
    assert!(p.events[A]
        .iter()
        .any(|(_, e)| *e == Event::StaleNotification { handle: h }));
    // 129 s later an older number is fresh again (§3.4, third condition)
    p.run_until(p.now + SimDuration::from_secs(129));
    p.inject(A, &note(9003, 5, b"after-window"));
    assert_eq!(
        notifications(&p).last().map(|x| x.0.clone()),
        Some(b"after-window".to_vec())
    );
}

/// §4.5: a CON notification that is never acknowledged (every datagram
/// from B lost) ends the observation at the server.
#[test]
fn observe_server_drops_observer_when_con_notification_times_out() {
    let (mut p, _h) = observed(true);
    assert_eq!(p.server(B).observers().len(), 1);
    p.drop[B] = Box::new(|_, _| true);
    update(&mut p, b"lost");
    p.run_until(p.now + SimDuration::from_secs(300));
    assert_eq!(p.server(B).observers().len(), 0);
    assert_eq!(p.server(B).observers().stats().dropped_timeout, 1);
    assert!(p.events[B]
        .iter()
        .any(|(_, e)| matches!(e, Event::ResponseGaveUp { .. })));
}

/// §3.6: a client that forgot the observation answers the next
/// notification with RST, and the server removes it; an active
/// deregistration (GET with Observe 1) removes it too.
#[test]
fn observe_cancellation_passive_rst_and_active_deregistration() {
    let (mut p, h) = observed(false);
    p.eps[A]
        .cancel_observation(h, None)
        .expect("observation exists");
    update(&mut p, b"x");
    p.run_until(p.now + SimDuration::from_secs(5));
    assert_eq!(p.server(B).observers().len(), 0);
    assert_eq!(p.server(B).observers().stats().dropped_reset, 1);
    assert!(notifications(&p).is_empty());

    let (mut p, h) = observed(true);
    let d = p.eps[A]
        .cancel_observation(h, Some(&Request::get("sensors/temp")))
        .expect("observation exists")
        .expect("a request was sent");
    p.drive();
    p.run_until(p.now + SimDuration::from_secs(5));
    assert_eq!(p.server(B).observers().len(), 0);
    assert_eq!(p.server(B).observers().stats().deregistrations, 1);
    let last = p.sent_by(A).last().map(|s| s.bytes.clone()).expect("sent");
    assert_eq!(
        observe_value(&MessageRef::parse(&last).expect("ref")),
        Some(1)
    );
    assert!(p.events[A]
        .iter()
        .any(|(_, e)| matches!(e, Event::ResponseReceived { handle, .. } if *handle == d)));
    assert!(!p.eps[A].is_observing(h));
}

/// §4.5.2: a change while a CON notification is still unacknowledged
/// replaces it in flight — the newer state leaves at the old one's next
/// retransmission, with a new message ID, and only it is delivered.
#[test]
fn observe_newer_state_replaces_unacked_con_notification() {
    let (mut p, _h) = observed(true);
    // lose B's next datagram only (the first notification)
    let mut left = 1;
    p.drop[B] = Box::new(move |_, _| {
        let d = left > 0;
        left -= 1;
        d
    });
    update(&mut p, b"first");
    p.run_until(p.now + SimDuration::from_millis(500));
    update(&mut p, b"second");
    p.run_until(p.now + SimDuration::from_secs(60));
    let n = notifications(&p);
    assert_eq!(
        n.iter().map(|x| x.0.as_slice()).collect::<Vec<_>>(),
        vec![&b"second"[..]]
    );
    let notes: Vec<_> = p
        .sent_by(B)
        .into_iter()
        .filter(|s| s.info.response.is_some())
        .collect();
    assert_eq!(notes.len(), 2, "first (lost), then its replacement");
    assert_ne!(notes[0].info.message_id, notes[1].info.message_id);
    assert!(!notes[1].info.is_retransmission);
    // it left when the first one's retransmission timer fired (≥ ACK_TIMEOUT)
    assert!(notes[1].at - notes[0].at >= SimDuration::from_secs(2));
    assert_eq!(p.server(B).observers().stats().replaced_in_flight, 1);
}

/// §4.5.1: NON notifications to one observer are spaced by at least its
/// RTT; the first is CON (no RTT estimate yet), later states that come
/// faster than one per RTT wait and only the latest is sent.
#[test]
fn observe_non_notifications_paced_by_rtt() {
    let (mut p, _h) = observed(false);
    p.delay = SimDuration::from_millis(100); // RTT 200 ms
    update(&mut p, b"a");
    p.run_until(p.now + SimDuration::from_secs(1));
    // the first notification was CON: it measured the RTT
    for v in [&b"b"[..], b"c", b"d"] {
        update(&mut p, v);
        p.run_until(p.now + SimDuration::from_millis(50));
    }
    p.run_until(p.now + SimDuration::from_secs(2));
    let got: Vec<Vec<u8>> = notifications(&p).into_iter().map(|x| x.0).collect();
    assert_eq!(got, vec![b"a".to_vec(), b"b".to_vec(), b"d".to_vec()]);
    let notes: Vec<_> = p
        .sent_by(B)
        .into_iter()
        .filter(|s| s.info.response.is_some())
        .collect();
    assert_eq!(notes[0].info.ty, MessageType::Con);
    assert!(notes[1..].iter().all(|s| s.info.ty == MessageType::Non));
    assert!(notes[2].at - notes[1].at >= SimDuration::from_millis(200));
    assert_eq!(p.server(B).observers().stats().paced, 1);
}
