//! DTLS 1.2 datagram layer (RFC 6347, RFC 7925; issue 21 item 3): a client
//! and a server `DtlsEndpoint` stepped through a simulated pipe (lossless,
//! scripted, or seeded-lossy), time jumping to the next wake-up (DESIGN.md
//! convention 6). Flights and their sizes, the retransmission timer with a
//! dead peer, completion under 30 % loss against an exact enumeration of
//! loss patterns, record overhead read by tshark, and bad input. Run in
//! release mode: `cargo test --release --test dtls_layer`.

mod common;

use std::collections::VecDeque;

use proptest::prelude::*;
use qossim::sim::{SimDuration, SimRng, SimTime};
use qossim::transport::dtls::record::{content, hs, Fragment, Record};
use qossim::transport::dtls::{DtlsConfig, DtlsEndpoint, DtlsState, DtlsSuite};
use qossim::transport::layer::LayerError;

const CLIENT: usize = 0;
const SERVER: usize = 1;

/// Two endpoints and the pipe between them. Every datagram an endpoint
/// produces waits in `pending` until the test decides its fate
/// (delivered after `delay`, or lost), so a test can script losses, draw
/// them, or enumerate them.
#[derive(Clone)]
struct Pair {
    ends: [DtlsEndpoint; 2],
    now: SimTime,
    delay: SimDuration,
    /// In flight: (arrival, order, to, bytes).
    wire: Vec<(SimTime, u64, usize, Vec<u8>)>,
    order: u64,
    pending: VecDeque<(usize, Vec<u8>)>,
    /// Every datagram sent: (time, from, bytes, delivered).
    log: Vec<(SimTime, usize, Vec<u8>, bool)>,
    /// Application bytes each side opened.
    app: [Vec<u8>; 2],
    errors: [Option<LayerError>; 2],
}

impl Pair {
    fn new(client: DtlsConfig, server: DtlsConfig, seed: u64, delay: SimDuration) -> Pair {
        let mut p = Pair {
            ends: [
                DtlsEndpoint::client(client, seed),
                DtlsEndpoint::server(server, seed),
            ],
            now: SimTime::ZERO,
            delay,
            wire: Vec::new(),
            order: 0,
            pending: VecDeque::new(),
            log: Vec::new(),
            app: [Vec::new(), Vec::new()],
            errors: [None, None],
        };
        p.ends[CLIENT].start(SimTime::ZERO);
        p.collect();
        p
    }

    fn default_pair(seed: u64) -> Pair {
        Pair::new(
            DtlsConfig::default(),
            DtlsConfig::default(),
            seed,
            SimDuration::from_millis(10),
        )
    }

    fn collect(&mut self) {
        for i in [CLIENT, SERVER] {
            loop {
                let mut buf = Vec::new();
                if self.ends[i].poll_transmit(self.now, &mut buf).is_none() {
                    break;
                }
                self.pending.push_back((i, buf));
            }
        }
    }

    /// Run until a datagram awaits a decision (`true`) or nothing happens
    /// before `deadline` (`false`). Arrivals before timers at equal times,
    /// the client's timer before the server's.
    fn next_decision(&mut self, deadline: SimTime) -> bool {
        loop {
            if !self.pending.is_empty() {
                return true;
            }
            let arrival = self
                .wire
                .iter()
                .enumerate()
                .min_by_key(|(_, w)| (w.0, w.1))
                .map(|(i, w)| (w.0, i));
            let timers = [self.ends[0].poll_timeout(), self.ends[1].poll_timeout()];
            let next_timer = timers.iter().flatten().min().copied();
            let t = match (arrival, next_timer) {
                (Some((a, _)), Some(b)) => a.min(b),
                (Some((a, _)), None) => a,
                (None, Some(b)) => b,
                (None, None) => return false,
            };
            if t > deadline {
                return false;
            }
            self.now = t;
            match arrival {
                Some((a, i)) if a == t => {
                    let (_, _, to, bytes) = self.wire.remove(i);
                    let mut app = Vec::new();
                    if let Err(e) = self.ends[to].handle_datagram(t, &bytes, &mut app) {
                        self.errors[to].get_or_insert(e);
                    }
                    self.app[to].extend_from_slice(&app);
                }
                _ => {
                    for i in [CLIENT, SERVER] {
                        if timers[i] == Some(t) {
                            self.ends[i].handle_timeout(t);
                        }
                    }
                }
            }
            self.collect();
        }
    }

    /// Deliver (after `delay`) or lose the oldest pending datagram.
    fn decide(&mut self, deliver: bool) {
        let Some((from, bytes)) = self.pending.pop_front() else {
            return;
        };
        self.log.push((self.now, from, bytes.clone(), deliver));
        if deliver {
            self.order += 1;
            self.wire
                .push((self.now + self.delay, self.order, 1 - from, bytes));
        }
    }

    /// Run to `deadline`, each datagram delivered when `fate` says so.
    fn run(&mut self, deadline: SimTime, mut fate: impl FnMut(&Pair) -> bool) {
        while self.next_decision(deadline) {
            let d = fate(self);
            self.decide(d);
        }
    }

    fn lossless(mut self) -> Pair {
        self.run(SimTime::MAX, |_| true);
        self
    }

    /// Seal `data` on `from`, deliver it, and return what the peer opened.
    fn exchange(&mut self, from: usize, data: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        let (a, b) = self.ends[from].seal(data, &mut out).expect("seal");
        assert_eq!(b - a, data.len());
        if data.len() >= 4 {
            assert_ne!(&out[a..b], data, "sealed bytes are not the plaintext");
        }
        let mut app = Vec::new();
        self.ends[1 - from]
            .handle_datagram(self.now, &out, &mut app)
            .expect("open");
        app
    }
}

fn secs(s: u64) -> SimTime {
    SimTime::ZERO + SimDuration::from_secs(s)
}

/// The handshake messages of a datagram as the crate's record parser reads
/// them: one name per record.
fn names(d: &[u8]) -> Vec<&'static str> {
    let mut v = Vec::new();
    let mut rest = d;
    while !rest.is_empty() {
        let (r, next) = Record::parse(rest).expect("our own datagram parses");
        rest = next;
        v.push(match (r.content_type, r.epoch) {
            (content::CHANGE_CIPHER_SPEC, _) => "ChangeCipherSpec",
            (content::HANDSHAKE, 1) => "Finished",
            (content::HANDSHAKE, _) => {
                let (f, _) = Fragment::parse(r.body).expect("fragment");
                match f.msg_type {
                    hs::CLIENT_HELLO => "ClientHello",
                    hs::HELLO_VERIFY_REQUEST => "HelloVerifyRequest",
                    hs::SERVER_HELLO => "ServerHello",
                    hs::SERVER_KEY_EXCHANGE => "ServerKeyExchange",
                    hs::SERVER_HELLO_DONE => "ServerHelloDone",
                    hs::CLIENT_KEY_EXCHANGE => "ClientKeyExchange",
                    hs::NEW_SESSION_TICKET => "NewSessionTicket",
                    _ => "other handshake",
                }
            }
            (content::ALERT, _) => "Alert",
            _ => "ApplicationData",
        });
    }
    v
}

/// Sizes of a record carrying a handshake message body of `n` bytes in
/// epoch 0, and of a protected Finished with `suite`.
fn hs_record(n: usize) -> usize {
    13 + 12 + n
}
fn finished_record(suite: DtlsSuite) -> usize {
    suite.overhead() + 12 + 12
}

#[test]
fn lossless_handshake_has_the_six_flights_of_rfc_6347() {
    for suite in [
        DtlsSuite::Psk128Ccm8,
        DtlsSuite::Psk128Gcm,
        DtlsSuite::EcdhePskChacha20,
    ] {
        let cfg = DtlsConfig {
            suite,
            ..DtlsConfig::default()
        };
        let mut p = Pair::new(cfg.clone(), cfg, 7, SimDuration::from_millis(10)).lossless();
        assert!(p.ends[CLIENT].is_established() && p.ends[SERVER].is_established());
        let flights: Vec<(usize, Vec<&str>, usize)> = p
            .log
            .iter()
            .map(|(_, from, d, _)| (*from, names(d), d.len()))
            .collect();
        let ecdhe = suite == DtlsSuite::EcdhePskChacha20;
        // ClientHello body: version 2, random 32, session_id 1, cookie
        // 1 (+32), suites 2 + 2, compression 2 (+ extensions 2 + 14 for
        // ECDHE).
        let ch = 42 + if ecdhe { 16 } else { 0 };
        // ServerHello: 2 + 32 + 1 + 32 (session_id) + 2 + 1 (+ 2 + 6);
        // SKE hint "CoAP": 2 + 4 (+ 1 + 2 + 1 + 32); CKE
        // "Client_identity": 2 + 15 (+ 33).
        let sh = 70 + if ecdhe { 8 } else { 0 };
        let ske = 6 + if ecdhe { 36 } else { 0 };
        let cke = 17 + if ecdhe { 33 } else { 0 };
        let fin = finished_record(suite);
        let want: Vec<(usize, Vec<&str>, usize)> = vec![
            (CLIENT, vec!["ClientHello"], hs_record(ch)),
            (SERVER, vec!["HelloVerifyRequest"], hs_record(35)),
            (CLIENT, vec!["ClientHello"], hs_record(ch + 32)),
            (
                SERVER,
                vec!["ServerHello", "ServerKeyExchange", "ServerHelloDone"],
                hs_record(sh) + hs_record(ske) + hs_record(0),
            ),
            (
                CLIENT,
                vec!["ClientKeyExchange", "ChangeCipherSpec", "Finished"],
                hs_record(cke) + 14 + fin,
            ),
            (SERVER, vec!["ChangeCipherSpec", "Finished"], 14 + fin),
        ];
        assert_eq!(flights, want, "{suite:?}");
        let bytes: [usize; 2] = [CLIENT, SERVER].map(|s| {
            flights
                .iter()
                .filter(|f| f.0 == s)
                .map(|f| f.2)
                .sum::<usize>()
        });
        eprintln!(
            "{suite:?}: flights (bytes) {:?}; client {} + server {} = {} bytes in 6 datagrams; established at {} ms",
            flights.iter().map(|f| f.2).collect::<Vec<_>>(),
            bytes[0],
            bytes[1],
            bytes[0] + bytes[1],
            p.now.as_millis_f64()
        );
        // 3 round trips of 10 ms each way: flight 6 arrives at 60 ms.
        assert_eq!(p.now, SimTime::ZERO + SimDuration::from_millis(60));
        assert_eq!(p.exchange(CLIENT, b"GET /temp"), b"GET /temp");
        assert_eq!(p.exchange(SERVER, b"2.05 21.5 C"), b"2.05 21.5 C");
        // close_notify closes the peer.
        let mut out = Vec::new();
        p.ends[CLIENT].close(&mut out);
        assert_eq!(names(&out), ["Alert"]);
        p.ends[SERVER]
            .handle_datagram(p.now, &out, &mut Vec::new())
            .expect("close_notify");
        assert_eq!(p.ends[SERVER].state(), &DtlsState::Closed);
    }
}

#[test]
fn without_cookie_the_server_answers_the_first_hello() {
    let cfg = DtlsConfig {
        cookie: false,
        ..DtlsConfig::default()
    };
    let p = Pair::new(cfg.clone(), cfg, 3, SimDuration::from_millis(10)).lossless();
    assert!(p.ends[CLIENT].is_established() && p.ends[SERVER].is_established());
    assert_eq!(p.log.len(), 4, "two round trips, no HelloVerifyRequest");
    assert_eq!(names(&p.log[1].2)[0], "ServerHello");
}

/// Times at which the client sends its ClientHello to a peer that never
/// answers, and when it gives up.
fn dead_peer(initial: u64) -> (Vec<u64>, SimTime) {
    let cfg = DtlsConfig {
        initial_timer: SimDuration::from_secs(initial),
        ..DtlsConfig::default()
    };
    let mut p = Pair::new(cfg.clone(), cfg, 1, SimDuration::from_millis(10));
    p.run(SimTime::MAX, |_| false);
    let times = p
        .log
        .iter()
        .map(|(t, from, d, _)| {
            assert_eq!((*from, names(d)), (CLIENT, vec!["ClientHello"]));
            t.as_nanos() / 1_000_000_000
        })
        .collect();
    assert_eq!(
        p.ends[CLIENT].state(),
        &DtlsState::Failed(LayerError::Refused(
            "no answer after the last retransmission"
        ))
    );
    assert_eq!(p.ends[CLIENT].poll_timeout(), None);
    assert_eq!(p.ends[CLIENT].stats().timer_retransmissions, 12);
    (times, p.now)
}

#[test]
fn dead_peer_retransmissions_double_up_to_60_s_and_give_up_after_12() {
    // RFC 6347 §4.2.4.1 and OpenSSL: 1 s, doubling, capped at 60 s;
    // OpenSSL fails the handshake on the 13th expiry.
    let (times, gave_up) = dead_peer(1);
    assert_eq!(
        times,
        [0, 1, 3, 7, 15, 31, 63, 123, 183, 243, 303, 363, 423]
    );
    assert_eq!(gave_up, secs(483));
    // RFC 7925 §11: 9 s initial.
    let (times, gave_up) = dead_peer(9);
    assert_eq!(
        times,
        [0, 9, 27, 63, 123, 183, 243, 303, 363, 423, 483, 543, 603]
    );
    assert_eq!(gave_up, secs(663));
}

/// Run `p` to the end, losing the first datagram from `from` that carries
/// a record named `what` (see [`names`]) and delivering every other.
fn lose_first(p: &mut Pair, from: usize, what: &str) {
    let mut lost = false;
    p.run(SimTime::MAX, |p| {
        let (f, d) = p.pending.front().expect("pending");
        if !lost && *f == from && names(d).contains(&what) {
            lost = true;
            return false;
        }
        true
    });
    assert!(lost, "no {what} from {from}");
}

/// (timer, triggered) flight retransmissions of the client and the server.
fn resends(p: &Pair) -> [(u64, u64); 2] {
    p.ends.each_ref().map(|e| {
        let s = e.stats();
        (s.timer_retransmissions, s.triggered_retransmissions)
    })
}

#[test]
fn a_lost_final_flight_is_resent_when_the_client_repeats_its_flight() {
    // Lose flight 6 (the server's ChangeCipherSpec + Finished) once.
    let mut p = Pair::default_pair(5);
    lose_first(&mut p, SERVER, "Finished");
    assert!(p.ends[CLIENT].is_established() && p.ends[SERVER].is_established());
    // The client's timer resent flight 5 at 1.04 s; that made the server
    // resend flight 6 (RFC 6347 §4.2.4), which the client took.
    assert_eq!(resends(&p), [(1, 0), (0, 1)]);
    assert_eq!(p.now, SimTime::ZERO + SimDuration::from_millis(1060));
    assert_eq!(p.exchange(CLIENT, b"x"), b"x");
}

#[test]
fn a_lost_server_hello_flight_is_resent_on_the_repeated_hello() {
    let mut p = Pair::default_pair(6);
    lose_first(&mut p, SERVER, "ServerHello");
    assert!(p.ends[CLIENT].is_established() && p.ends[SERVER].is_established());
    // Flight 4 left at 30 ms and was lost. At 1.02 s the client's timer
    // resends its ClientHello; it reaches the server at 1.03 s, which
    // resends flight 4 (triggered) just before its own timer, set at
    // 30 ms, resends it again. Both copies reach the client: the first
    // gets flight 5 out, the second, a repeat, makes the client resend
    // flight 5; the server answers each flight 5 with flight 6.
    assert_eq!(resends(&p), [(1, 1), (1, 2)]);
    assert_eq!(p.now, SimTime::ZERO + SimDuration::from_millis(1060));
}

/// Probability that the client is established by `deadline` when each
/// datagram is lost with probability `loss`, by exact enumeration of loss
/// patterns: every datagram sent before the deadline is either delivered
/// or lost, and the real endpoints are run down both branches.
fn enumerate(p: Pair, loss: f64, prob: f64, deadline: SimTime, leaves: &mut u64) -> f64 {
    let mut p = p;
    let mut prob = prob;
    let mut total = 0.0;
    while p.next_decision(deadline) {
        let mut lost = p.clone();
        lost.decide(false);
        total += enumerate(lost, loss, prob * loss, deadline, leaves);
        p.decide(true);
        prob *= 1.0 - loss;
    }
    *leaves += 1;
    if p.ends[CLIENT].is_established() {
        total + prob
    } else {
        total
    }
}

#[test]
fn under_30_percent_loss_completions_match_the_exact_enumeration() {
    const N: u64 = 1000;
    const LOSS: f64 = 0.3;
    let deadline = secs(4);
    let mut leaves = 0;
    let exact = enumerate(Pair::default_pair(0), LOSS, 1.0, deadline, &mut leaves);
    let mut loss = SimRng::stream(2026, "dtls-loss");
    let (mut by_deadline, mut eventually, mut failed) = (0u64, 0u64, 0u64);
    for i in 0..N {
        let mut p = Pair::default_pair(i);
        p.run(deadline, |_| !loss.bernoulli(LOSS));
        if p.ends[CLIENT].is_established() {
            by_deadline += 1;
        }
        p.run(SimTime::MAX, |_| !loss.bernoulli(LOSS));
        match p.ends[CLIENT].state() {
            DtlsState::Established => {
                eventually += 1;
                // Matching state: both sides hold the same keys and
                // sequence numbers carry on.
                assert!(p.ends[SERVER].is_established(), "handshake {i}");
                assert_eq!(p.exchange(CLIENT, b"ping"), b"ping", "handshake {i}");
                assert_eq!(p.exchange(SERVER, b"pong"), b"pong", "handshake {i}");
            }
            DtlsState::Failed(_) => failed += 1,
            s => panic!("handshake {i} ended {s:?}"),
        }
        assert_eq!(p.errors, [None, None], "handshake {i}");
    }
    let mean = exact * N as f64;
    let se = (N as f64 * exact * (1.0 - exact)).sqrt();
    eprintln!(
        "30 % loss, 10 ms each way: P(established by 4 s) = {exact:.4} exactly \
         ({leaves} loss patterns); {by_deadline}/{N} by 4 s in simulation \
         (expected {mean:.1} ± {se:.1}); {eventually} eventually, {failed} gave up"
    );
    assert!(
        (by_deadline as f64 - mean).abs() <= 3.0 * se,
        "{by_deadline} completions by 4 s, exact mean {mean:.1}, s.e. {se:.1}"
    );
    // Giving up needs 13 losses of one flight in a row (0.3^13 ≈ 1.6e-7)
    // or repeated losses of both sides' flights: no run of 1000 should.
    assert_eq!((eventually, failed), (N, 0));
}

#[test]
fn record_overhead_and_handshake_read_by_tshark() {
    if !common::tshark::available("record_overhead_and_handshake_read_by_tshark") {
        return;
    }
    for (suite, overhead) in [
        (DtlsSuite::Psk128Ccm8, 29),
        (DtlsSuite::Psk128Gcm, 37),
        (DtlsSuite::EcdhePskChacha20, 29),
    ] {
        assert_eq!(suite.overhead(), overhead);
        let cfg = DtlsConfig {
            suite,
            ..DtlsConfig::default()
        };
        let mut p = Pair::new(cfg.clone(), cfg, 11, SimDuration::from_millis(10)).lossless();
        let mut dgrams: Vec<(SimTime, usize, usize, Vec<u8>)> = p
            .log
            .iter()
            .map(|(t, from, d, _)| (*t, *from, 1 - *from, d.clone()))
            .collect();
        let writes = [1usize, 100, 1000];
        for (k, &n) in writes.iter().enumerate() {
            let from = k % 2;
            let data = vec![b'a' + k as u8; n];
            let mut out = Vec::new();
            let (a, b) = p.ends[from].seal(&data, &mut out).expect("seal");
            assert_eq!((b - a, out.len() - n), (n, overhead), "{suite:?} {n}");
            let mut app = Vec::new();
            p.ends[1 - from]
                .handle_datagram(p.now, &out, &mut app)
                .expect("open");
            assert_eq!(app, data);
            dgrams.push((p.now, from, 1 - from, out));
        }
        let refs: Vec<(SimTime, usize, usize, &[u8])> = dgrams
            .iter()
            .map(|(t, f, to, d)| (*t, *f, *to, d.as_slice()))
            .collect();
        let file = common::tshark::udp_capture("dtls", 5684, &refs);
        let opts = ["-d", "udp.port==5684,dtls"];
        common::tshark::assert_clean(&file, &opts, Some("!dtls"));
        let rows = common::tshark::field_rows(
            &file,
            &opts,
            &[
                "udp.length",
                "dtls.record.content_type",
                "dtls.record.length",
                "dtls.handshake.type",
            ],
        );
        let hs: Vec<&str> = rows[..6].iter().map(|r| r[3].as_str()).collect();
        assert_eq!(hs, ["1", "3", "1", "2,12,14", "16", ""], "{suite:?}");
        let epochs0: Vec<&str> = rows[..6].iter().map(|r| r[1].as_str()).collect();
        assert_eq!(
            epochs0,
            ["22", "22", "22", "22,22,22", "22,20,22", "20,22"],
            "{suite:?}"
        );
        for (row, n) in rows[6..].iter().zip(writes) {
            let udp: usize = row[0].parse().expect("udp.length");
            let rec: usize = row[2].parse().expect("dtls.record.length");
            assert_eq!(row[1], "23", "{suite:?}");
            assert_eq!(udp - 8 - n, overhead, "{suite:?} {n}-byte write: {row:?}");
            assert_eq!(rec + 13, udp - 8, "{suite:?}");
        }
        eprintln!(
            "{suite:?}: tshark reads {} handshake and 3 application datagrams clean; \
             application record overhead {overhead} bytes",
            rows.len() - 3
        );
    }
}

#[test]
fn small_mtu_fragments_messages_and_still_completes() {
    let cfg = DtlsConfig {
        psk_identity: vec![b'i'; 300],
        mtu: 120,
        ..DtlsConfig::default()
    };
    let p = Pair::new(cfg.clone(), cfg, 9, SimDuration::from_millis(10)).lossless();
    assert!(p.ends[CLIENT].is_established() && p.ends[SERVER].is_established());
    let mut fragments = 0;
    for (_, _, d, _) in &p.log {
        assert!(d.len() <= 120, "datagram of {} bytes over the MTU", d.len());
        let mut rest = d.as_slice();
        while !rest.is_empty() {
            let (r, next) = Record::parse(rest).expect("record");
            rest = next;
            if r.content_type == content::HANDSHAKE && r.epoch == 0 {
                let (f, _) = Fragment::parse(r.body).expect("fragment");
                if f.data.len() < f.length as usize {
                    fragments += 1;
                }
            }
        }
    }
    // ClientKeyExchange of 302 bytes in 95-byte fragments.
    assert_eq!(fragments, 4);
}

#[test]
fn wrong_identity_ends_both_sides_with_an_alert() {
    let client = DtlsConfig {
        psk_identity: b"intruder".to_vec(),
        ..DtlsConfig::default()
    };
    let p = Pair::new(
        client,
        DtlsConfig::default(),
        4,
        SimDuration::from_millis(10),
    )
    .lossless();
    assert_eq!(
        p.errors[SERVER],
        Some(LayerError::Refused("unknown PSK identity"))
    );
    assert_eq!(
        p.errors[CLIENT],
        Some(LayerError::Refused("fatal alert from the peer"))
    );
    assert_eq!(names(&p.log.last().expect("alert").2), ["Alert"]);
}

#[test]
fn replayed_and_damaged_records_are_dropped_and_counted() {
    let mut p = Pair::default_pair(8).lossless();
    let mut out = Vec::new();
    p.ends[CLIENT].seal(b"reading 1", &mut out).expect("seal");
    let mut app = Vec::new();
    let s = &mut p.ends[SERVER];
    s.handle_datagram(p.now, &out, &mut app).expect("open");
    s.handle_datagram(p.now, &out, &mut app).expect("replay");
    assert_eq!(app, b"reading 1", "the replay is not opened");
    assert_eq!(s.stats().replayed, 1);
    let mut out = Vec::new();
    p.ends[CLIENT].seal(b"reading 2", &mut out).expect("seal");
    let k = out.len() - 12;
    out[k] ^= 0x40; // a bit of the "ciphertext"
    app.clear();
    let s = &mut p.ends[SERVER];
    s.handle_datagram(p.now, &out, &mut app).expect("damaged");
    assert!(app.is_empty());
    assert_eq!(s.stats().bad_tag, 1);
    // Application data before the handshake is refused.
    let mut fresh = DtlsEndpoint::client(DtlsConfig::default(), 1);
    assert!(fresh.seal(b"x", &mut Vec::new()).is_err());
}

#[test]
fn every_truncation_of_every_handshake_datagram_is_dropped_and_counted() {
    // Replay the lossless handshake; before each real delivery, hand the
    // receiver (a copy) every strict prefix of the datagram.
    let mut p = Pair::default_pair(12);
    let mut cut = 0;
    while p.next_decision(SimTime::MAX) {
        let (from, d) = p.pending.front().cloned().expect("pending");
        let to = 1 - from;
        let boundaries = record_ends(&d);
        for len in 0..d.len() {
            let mut e = p.ends[to].clone();
            let before = e.stats();
            let r = e.handle_datagram(p.now, &d[..len], &mut Vec::new());
            assert!(r.is_ok(), "prefix {len} of {:?}: {r:?}", names(&d));
            if !boundaries.contains(&len) {
                assert_eq!(e.stats().malformed, before.malformed + 1, "prefix {len}");
                cut += 1;
            }
        }
        p.decide(true);
    }
    assert!(p.ends[CLIENT].is_established() && p.ends[SERVER].is_established());
    assert!(cut > 500, "{cut}");
}

fn record_ends(d: &[u8]) -> Vec<usize> {
    let mut v = vec![0];
    let mut rest = d;
    while let Ok((_, next)) = Record::parse(rest) {
        v.push(d.len() - next.len());
        rest = next;
        if rest.is_empty() {
            break;
        }
    }
    v
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Random bytes, and random bytes behind a valid record header, never
    /// panic any endpoint in any state; the handshake still completes
    /// after them.
    #[test]
    fn random_datagrams_never_panic(
        junk in proptest::collection::vec(any::<u8>(), 0..300),
        ctype in 20u8..24,
        epoch in 0u16..3,
        at in 0usize..6,
    ) {
        let mut framed = vec![ctype, 0xfe, 0xfd];
        framed.extend_from_slice(&epoch.to_be_bytes());
        framed.extend_from_slice(&[0, 0, 0, 0, 0x10, 0]);
        framed.extend_from_slice(&(junk.len() as u16).to_be_bytes());
        framed.extend_from_slice(&junk);
        let mut p = Pair::default_pair(13);
        let mut step = 0;
        let mut refused = false;
        while p.next_decision(SimTime::MAX) {
            if step == at {
                for e in p.ends.iter_mut() {
                    for d in [&junk, &framed] {
                        refused |= e.handle_datagram(p.now, d, &mut Vec::new()).is_err()
                            || e.state() == &DtlsState::Closed;
                    }
                }
                p.collect();
            }
            step += 1;
            p.decide(true);
        }
        for e in &p.ends {
            // Only a well-formed alert among the junk (fatal, or
            // close_notify) may end the handshake; anything else is
            // dropped and the handshake completes.
            prop_assert!(
                e.is_established()
                    || (refused && matches!(e.state(), DtlsState::Failed(_) | DtlsState::Closed)),
                "{:?} {:?}", e.state(), e.stats()
            );
        }
    }
}

/// The model against a real DTLS server: libcoap's `coap-server-openssl`
/// (OpenSSL) on loopback, PSK with hint `CoAP`. The model's client sends
/// its ClientHello over a real UDP socket, the server must answer with a
/// HelloVerifyRequest and, to the hello with the cookie, with flight 4
/// for the one suite offered, which the model must parse and answer with
/// flight 5; the real datagrams must have the sizes the model's own
/// server sends. (The handshake cannot finish: the model's Finished is not
/// real cryptography.)
#[test]
fn openssl_server_answers_the_model_hello_with_the_model_sizes() {
    use std::net::UdpSocket;
    use std::time::{Duration, Instant};
    let Some(bin) =
        common::peers::peer_binary("coap-server-openssl", "install Debian package libcoap3-bin")
    else {
        return;
    };
    // libcoap listens for CoAP on `-p port` and for CoAPS on port + 1.
    let port = loop {
        let p = common::peers::free_port();
        if UdpSocket::bind((common::peers::LOCALHOST, p + 1)).is_ok() {
            break p;
        }
    };
    let _server = common::peers::KillOnDrop(
        std::process::Command::new(&bin)
            .args(["-A", "127.0.0.1", "-p", &port.to_string()])
            .args(["-k", "secretPSK", "-h", "CoAP"])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("spawn coap-server-openssl"),
    );
    for suite in [DtlsSuite::Psk128Ccm8, DtlsSuite::Psk128Gcm] {
        // A socket (source port) per suite: the server still holds the
        // half-done handshake of the previous one.
        let sock = UdpSocket::bind((common::peers::LOCALHOST, 0)).expect("bind");
        sock.connect((common::peers::LOCALHOST, port + 1))
            .expect("connect");
        sock.set_read_timeout(Some(Duration::from_millis(200)))
            .expect("timeout");
        let cfg = DtlsConfig {
            suite,
            ..DtlsConfig::default()
        };
        // What the model's server sends to the model's client.
        let model = Pair::new(cfg.clone(), cfg.clone(), 21, SimDuration::from_millis(1)).lossless();
        let model_sizes: Vec<usize> = model
            .log
            .iter()
            .filter(|l| l.1 == SERVER)
            .map(|l| l.2.len())
            .take(2)
            .collect();
        let mut c = DtlsEndpoint::client(cfg.clone(), 21);
        let mut now = SimTime::ZERO;
        c.start(now);
        let mut real_sizes = Vec::new();
        let mut sent_flight5 = false;
        let deadline = Instant::now() + Duration::from_secs(10);
        while !sent_flight5 {
            assert!(
                Instant::now() < deadline,
                "{suite:?}: no flight 4 within 10 s"
            );
            loop {
                let mut buf = Vec::new();
                if c.poll_transmit(now, &mut buf).is_none() {
                    break;
                }
                if names(&buf).contains(&"ClientKeyExchange") {
                    sent_flight5 = true;
                    break;
                }
                sock.send(&buf).expect("send");
            }
            let mut buf = [0u8; 2048];
            match sock.recv(&mut buf) {
                Ok(n) => {
                    real_sizes.push(n);
                    c.handle_datagram(now, &buf[..n], &mut Vec::new())
                        .expect("the model reads the real server");
                }
                Err(e) => {
                    // The server is not up yet (port unreachable comes
                    // back at once), or a datagram was lost: the model's
                    // own timer resends its flight; a model that gave up
                    // starts over.
                    if e.kind() == std::io::ErrorKind::ConnectionRefused {
                        std::thread::sleep(Duration::from_millis(100));
                    }
                    if let Some(t) = c.poll_timeout() {
                        now = t;
                        c.handle_timeout(now);
                    }
                    if matches!(c.state(), DtlsState::Failed(_)) {
                        c = DtlsEndpoint::client(cfg.clone(), 21);
                        c.start(now);
                        real_sizes.clear();
                    }
                }
            }
        }
        let s = c.stats();
        assert_eq!(
            (s.malformed, s.out_of_order, s.wrong_epoch),
            (0, 0, 0),
            "{suite:?}: {s:?}"
        );
        // The first answer to each distinct hello: HelloVerifyRequest,
        // then flight 4 (a repeat from a resent hello is dropped above).
        real_sizes.dedup();
        assert_eq!(real_sizes, model_sizes, "{suite:?}: real vs model");
        eprintln!("{suite:?}: OpenSSL server sent {real_sizes:?} bytes, the model {model_sizes:?}");
    }
}

/// A stray epoch-0 alert with a far sequence number (what proptest once
/// found: level 3, sequence 4096, at the first step) is dropped without
/// moving the server's replay window, so the real ClientHello (sequence 0)
/// still gets its answer and the handshake completes.
#[test]
fn a_stray_epoch_0_alert_does_not_move_the_replay_window() {
    let mut framed = vec![21, 0xfe, 0xfd, 0, 0, 0, 0, 0, 0x10, 0, 0, 2, 3, 1];
    let mut p = Pair::default_pair(13);
    let mut first = true;
    while p.next_decision(SimTime::MAX) {
        if first {
            first = false;
            for e in p.ends.iter_mut() {
                let _ = e.handle_datagram(p.now, &[3, 1], &mut Vec::new());
                let _ = e.handle_datagram(p.now, &framed, &mut Vec::new());
            }
            p.collect();
        }
        p.decide(true);
    }
    assert!(p.ends[CLIENT].is_established() && p.ends[SERVER].is_established());
    // a warning alert (level 1) with a far sequence number neither
    framed[12] = 1;
    let mut p = Pair::default_pair(13);
    let mut first = true;
    while p.next_decision(SimTime::MAX) {
        if first {
            first = false;
            for e in p.ends.iter_mut() {
                let _ = e.handle_datagram(p.now, &framed, &mut Vec::new());
            }
            p.collect();
        }
        p.decide(true);
    }
    assert!(p.ends[CLIENT].is_established() && p.ends[SERVER].is_established());
}

/// The OpenSSL profile (`DtlsConfig::openssl()`, libcoap's OpenSSL build at
/// both ends) gives the flights of `coap-client-openssl` →
/// `coap-server-openssl` 4.3.1 on loopback, byte for byte, with the
/// calibration script's identity `calib-device`: OpenSSL's 49-suite
/// ClientHello with its extensions, a ServerHello without session ID, the
/// NewSessionTicket before the server's ChangeCipherSpec; tshark dissects
/// every record. The ticket grows with the identity as the server's did
/// (176 bytes for 1- to 13-byte identities, 192 for 14 and 15 —
/// `Client_identity` —, 208 for 40).
#[test]
fn openssl_profile_has_libcoaps_flights() {
    let cfg = DtlsConfig {
        psk_identity: b"calib-device".to_vec(),
        ..DtlsConfig::openssl()
    };
    assert_eq!(cfg.suite, DtlsSuite::EcdhePskChacha20);
    let p = Pair::new(cfg.clone(), cfg, 5, SimDuration::from_millis(10)).lossless();
    assert!(p.ends[CLIENT].is_established() && p.ends[SERVER].is_established());
    let flights: Vec<(Vec<&str>, usize)> = p
        .log
        .iter()
        .map(|(_, _, d, _)| (names(d), d.len()))
        .collect();
    let want: Vec<(Vec<&str>, usize)> = vec![
        (vec!["ClientHello"], 265),
        (vec!["HelloVerifyRequest"], 60),
        (vec!["ClientHello"], 297),
        (
            vec!["ServerHello", "ServerKeyExchange", "ServerHelloDone"],
            170,
        ),
        (
            vec!["ClientKeyExchange", "ChangeCipherSpec", "Finished"],
            139,
        ),
        (
            vec!["NewSessionTicket", "ChangeCipherSpec", "Finished"],
            274,
        ),
    ];
    assert_eq!(flights, want);
    // Three round trips of 10 ms each way, as without the ticket.
    assert_eq!(p.now, SimTime::ZERO + SimDuration::from_millis(60));

    if common::tshark::available("openssl_profile_has_libcoaps_flights") {
        let refs: Vec<(SimTime, usize, usize, &[u8])> = p
            .log
            .iter()
            .map(|(t, from, d, _)| (*t, *from, 1 - *from, d.as_slice()))
            .collect();
        let file = common::tshark::udp_capture("dtls-openssl", 5684, &refs);
        let opts = ["-d", "udp.port==5684,dtls"];
        common::tshark::assert_clean(&file, &opts, Some("!dtls"));
        let rows = common::tshark::field_rows(
            &file,
            &opts,
            &[
                "dtls.handshake.type",
                "dtls.handshake.cipher_suites_length",
                "dtls.handshake.extensions_server_name",
                "dtls.handshake.session_id_length",
            ],
        );
        let types: Vec<&str> = rows.iter().map(|r| r[0].as_str()).collect();
        assert_eq!(types, ["1", "3", "1", "2,12,14", "16", "4"]);
        assert_eq!(rows[0][1], "98", "48 PSK suites and SCSV");
        assert_eq!(rows[0][2], "127.0.0.1");
        assert_eq!(rows[3][3], "0", "no session ID: a ticket follows");
    }

    for (identity, ticket) in [
        (1, 176),
        (12, 176),
        (13, 176),
        (14, 192),
        (15, 192),
        (40, 208),
    ] {
        let cfg = DtlsConfig {
            psk_identity: vec![b'i'; identity],
            ..DtlsConfig::openssl()
        };
        assert_eq!(cfg.ticket_len(), ticket, "{identity}-byte identity");
        let p = Pair::new(cfg.clone(), cfg, 6, SimDuration::from_millis(10)).lossless();
        let last = &p.log.last().expect("flights").2;
        // NewSessionTicket: lifetime 4 + length 2 + ticket; then CCS 14 and
        // the protected Finished.
        assert_eq!(
            last.len(),
            hs_record(6 + ticket) + 14 + finished_record(DtlsSuite::EcdhePskChacha20)
        );
    }
}
