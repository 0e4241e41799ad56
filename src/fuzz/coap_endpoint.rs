//! Stateful fuzz target `coap_endpoint`: one real CoAP [`Endpoint`] with a
//! [`ResourceServer`] answering its requests (small store bounds, Observe
//! on), three model peers sending it requests built with the codec, copies
//! and mutations of them, ACKs/RSTs and responses to the endpoint's own
//! client requests, and time advances in between.
//!
//! Layout: byte 0 picks the configuration (bit 0 CoCoA instead of the
//! default retransmission timers, bit 1 validators, bit 2 separate
//! responses after 1 s, bits 3–4 MAX_RETRANSMIT 1–4, bit 5 NSTART 2);
//! bytes 1–2 the endpoint's first message ID; then actions, see [`run`].
//!
//! Invariants (a panic reports a broken one):
//! * every datagram the endpoint emits parses as a CoAP message whose
//!   type, code and message ID are the ones reported;
//! * a CON message (a destination and message ID) is sent at most
//!   1 + MAX_RETRANSMIT times (§4.2);
//! * the deduplication store holds no more message IDs than distinct
//!   (peer, message ID) pairs arrived within EXCHANGE_LIFETIME (§4.5);
//! * the resource store stays within its bounds (resources, bytes held,
//!   value size);
//! * nothing panics.

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddrV4};

use crate::net::addr::SockAddr;
use crate::proto::coap::{
    CoapOption, Code, Config, Congestion, Endpoint, Message, MessageRef, MessageType, Method,
    Request, ResourceServer, ResourceStore, Token,
};
use crate::proto::Datagram;
use crate::sim::{SimDuration, SimRng, SimTime};

use super::Script;

const PEERS: usize = 3;
const PATHS: [&str; 6] = ["a", "b", "c/d", "e", ".well-known/core", "obs"];
/// The store's bounds: resources, bytes held, value size.
pub const STORE_LIMITS: (usize, usize, usize) = (4, 96, 24);

/// Deliberate faults, so tests can show that each check fires.
#[derive(Clone, Copy, Debug, Default)]
pub struct CoapFaults {
    /// Count one retransmission fewer as allowed.
    pub tighter_retransmit: bool,
    /// Count arrivals for the deduplication bound over half the lifetime.
    pub short_lifetime: bool,
    /// Check the store against a byte bound one smaller.
    pub tighter_store: bool,
    /// Check every emitted datagram with its first byte's version bits
    /// cleared.
    pub corrupt_emitted: bool,
}

fn addr(i: usize) -> SockAddr {
    SockAddr::from(SocketAddrV4::new(
        Ipv4Addr::new(10, 0, 0, 2 + i as u8),
        5683 + i as u16,
    ))
}

struct Peer {
    mid: u16,
    token: u16,
    /// The last datagram this peer sent.
    last: Vec<u8>,
    /// The message ID of the last CON the endpoint sent here.
    con: Option<u16>,
    /// The last request the endpoint sent here: (message ID, CON, token).
    request: Option<(u16, bool, Token)>,
}

struct Model {
    ep: Endpoint,
    server: ResourceServer,
    now: SimTime,
    faults: CoapFaults,
    max_transmissions: u32,
    lifetime: SimDuration,
    peers: Vec<Peer>,
    /// CON transmissions per (destination, message ID).
    cons: BTreeMap<(SockAddr, u16), u32>,
    /// Arrivals: (time, peer, message ID).
    arrivals: Vec<(SimTime, SockAddr, u16)>,
    buf: Vec<u8>,
}

impl Model {
    fn new(s: &mut Script<'_>, faults: CoapFaults) -> Model {
        let b = s.byte();
        let mut config = Config {
            max_retransmit: 1 + u32::from((b >> 3) & 3),
            nstart: 1 + u32::from((b >> 5) & 1),
            ..Config::default()
        };
        if b & 1 != 0 {
            config.congestion = Congestion::Cocoa;
        }
        let max_transmissions = 1 + config.max_retransmit - u32::from(faults.tighter_retransmit);
        let mut lifetime = config.exchange_lifetime();
        if faults.short_lifetime {
            lifetime = SimDuration(lifetime.0 / 2);
        }
        let first_mid = s.u16();
        let ep = Endpoint::new(config, SimRng::stream(0xC0A9, "fuzz"), first_mid);
        let mut server = ResourceServer::new()
            .with_validators(b & 2 != 0)
            .with_separate_response_delay((b & 4 != 0).then(|| SimDuration::from_secs(1)));
        let (n, bytes, value) = STORE_LIMITS;
        *server.resources_mut() = ResourceStore::new().with_limits(n, bytes, value);
        server
            .resources_mut()
            .insert("a", Some(0), b"21.5".to_vec());
        server.resources_mut().insert("obs", Some(0), b"0".to_vec());
        let peers = (0..PEERS)
            .map(|i| Peer {
                mid: 0x100 * i as u16,
                token: 0,
                last: Vec::new(),
                con: None,
                request: None,
            })
            .collect();
        Model {
            ep,
            server,
            now: SimTime::ZERO,
            faults,
            max_transmissions,
            lifetime,
            peers,
            cons: BTreeMap::new(),
            arrivals: Vec::new(),
            buf: Vec::new(),
        }
    }

    /// Hand `bytes` from peer `p` to the endpoint.
    fn input(&mut self, p: usize, bytes: &[u8]) {
        let from = addr(p);
        if bytes.len() >= 4 && bytes[0] >> 6 == 1 {
            let mid = u16::from_be_bytes([bytes[2], bytes[3]]);
            self.arrivals.push((self.now, from, mid));
        }
        self.peers[p].last = bytes.to_vec();
        self.ep
            .handle_input(self.now, Datagram { from, data: bytes });
        self.pump();
    }

    /// Poll the endpoint and the server until both are quiet, checking
    /// every datagram and the bounds.
    fn pump(&mut self) {
        loop {
            let mut busy = false;
            loop {
                self.buf.clear();
                let Some(info) = self.ep.poll_transmit(self.now, &mut self.buf) else {
                    break;
                };
                busy = true;
                assert_eq!(info.len, self.buf.len(), "transmit length != bytes written");
                if self.faults.corrupt_emitted {
                    self.buf[0] &= 0x3F;
                }
                let m = MessageRef::parse(&self.buf).unwrap_or_else(|e| {
                    panic!(
                        "emitted datagram does not parse: {e} ({info:?}) {:02x?}",
                        self.buf
                    )
                });
                let h = m;
                assert_eq!(h.ty, info.ty, "emitted datagram: type");
                assert_eq!(h.code, info.code, "emitted datagram: code");
                assert_eq!(
                    h.message_id, info.message_id,
                    "emitted datagram: message ID"
                );
                let peer = (0..PEERS).find(|&i| addr(i) == info.to);
                let Some(peer) = peer else {
                    panic!("datagram to an unknown address {:?}", info.to)
                };
                if h.ty == MessageType::Con {
                    let n = self.cons.entry((info.to, h.message_id)).or_insert(0);
                    *n += 1;
                    assert!(
                        *n <= self.max_transmissions,
                        "CON {} to {:?} sent {n} times (MAX_RETRANSMIT allows {})",
                        h.message_id,
                        info.to,
                        self.max_transmissions
                    );
                    self.peers[peer].con = Some(h.message_id);
                }
                if h.code.is_request() {
                    self.peers[peer].request =
                        Some((h.message_id, h.ty == MessageType::Con, m.token));
                }
            }
            while let Some(ev) = self.ep.poll_event() {
                busy = true;
                self.server.handle_event(self.now, &mut self.ep, &ev);
                self.ep.recycle(ev);
            }
            if !busy {
                break;
            }
        }
        self.check_bounds();
    }

    fn check_bounds(&mut self) {
        // an entry lives while arrival + lifetime > now
        let (now, lifetime) = (self.now, self.lifetime);
        self.arrivals.retain(|a| a.0 + lifetime > now);
        let mut keys: Vec<(SockAddr, u16)> = self.arrivals.iter().map(|a| (a.1, a.2)).collect();
        keys.sort();
        keys.dedup();
        assert!(
            self.ep.dedup_entries() <= keys.len(),
            "{} message IDs remembered, {} distinct arrived within EXCHANGE_LIFETIME",
            self.ep.dedup_entries(),
            keys.len()
        );
        let (n, bytes, value) = STORE_LIMITS;
        let store = self.server.resources();
        let bytes = bytes - usize::from(self.faults.tighter_store);
        assert!(
            store.len() <= n,
            "{} resources stored, bound {n}",
            store.len()
        );
        assert!(
            store.bytes() <= bytes,
            "{} bytes stored, bound {bytes}",
            store.bytes()
        );
        for (path, r) in store.iter() {
            assert!(
                r.value.len() <= value,
                "resource {path}: value of {}",
                r.value.len()
            );
        }
    }

    fn advance(&mut self, d: SimDuration) {
        let until = self.now + d;
        loop {
            let next = [self.ep.poll_timeout(), self.server.poll_timeout()]
                .into_iter()
                .flatten()
                .min()
                .filter(|t| *t <= until);
            let Some(t) = next else { break };
            self.now = self.now.max(t);
            self.ep.handle_timeout(self.now);
            if self.server.poll_timeout().is_some_and(|w| w <= self.now) {
                self.server.handle_timeout(self.now, &mut self.ep);
            }
            self.pump();
        }
        self.now = until;
        self.ep.handle_timeout(self.now);
        self.pump();
    }

    fn token(&mut self, p: usize) -> Token {
        let peer = &mut self.peers[p];
        peer.token = peer.token.wrapping_add(1);
        Token::new(&peer.token.to_be_bytes()).unwrap_or_else(|e| panic!("token: {e}"))
    }

    fn mid(&mut self, p: usize) -> u16 {
        let peer = &mut self.peers[p];
        peer.mid = peer.mid.wrapping_add(1);
        peer.mid
    }

    /// Peer `p` sends a request built with the codec.
    fn request(&mut self, p: usize, a: u8, b: u8) {
        let code = [Code::GET, Code::PUT, Code::POST, Code::DELETE][usize::from(a & 3)];
        let ty = if a & 4 != 0 {
            MessageType::Non
        } else {
            MessageType::Con
        };
        let path = PATHS[usize::from(a >> 3) % PATHS.len()];
        let (mid, token) = (self.mid(p), self.token(p));
        let mut m = Message::new(ty, code, mid, token);
        if b & 0x80 != 0 && code == Code::GET {
            m = m.with_option(CoapOption::Observe(u32::from(b & 1)));
        }
        for seg in path.split('/') {
            m = m.with_option(CoapOption::UriPath(seg.into()));
        }
        if code == Code::PUT || code == Code::POST {
            m = m
                .with_option(CoapOption::ContentFormat(0))
                .with_payload(vec![b'0' + (b % 10); usize::from(b & 0x3F)]);
        }
        if let Ok(bytes) = m.to_bytes() {
            self.input(p, &bytes);
        }
    }

    /// Peer `p` answers the endpoint: an Empty ACK or RST for its last
    /// CON, or a response to its last request.
    fn answer(&mut self, p: usize, a: u8) {
        let msg = match a % 4 {
            0 => self.peers[p]
                .con
                .map(|mid| Message::empty(MessageType::Ack, mid)),
            1 => self.peers[p]
                .con
                .map(|mid| Message::empty(MessageType::Rst, mid)),
            2 => self.peers[p].request.map(|(mid, con, token)| {
                let ty = if con {
                    MessageType::Ack
                } else {
                    MessageType::Non
                };
                let mid = if con { mid } else { self.mid(p) };
                Message::new(ty, Code::CONTENT, mid, token).with_payload(&b"ok"[..])
            }),
            _ => self.peers[p].request.map(|(_, con, token)| {
                let ty = if con {
                    MessageType::Con
                } else {
                    MessageType::Non
                };
                let mid = self.mid(p);
                Message::new(ty, Code::CONTENT, mid, token)
                    .with_option(CoapOption::Observe(u32::from(mid)))
                    .with_payload(&b"sep"[..])
            }),
        };
        if let Some(bytes) = msg.and_then(|m| m.to_bytes().ok()) {
            self.input(p, &bytes);
        }
    }

    /// The endpoint's own client sends a request to peer `p`.
    fn client_request(&mut self, p: usize, a: u8) {
        let method = [Method::Get, Method::Put, Method::Post, Method::Delete][usize::from(a & 3)];
        let mut req = Request::new(method, PATHS[usize::from(a >> 2) % PATHS.len()]);
        req.confirmable = a & 0x40 == 0;
        if a & 0x80 != 0 && method == Method::Get {
            req.observe = Some(0);
        }
        if method == Method::Put || method == Method::Post {
            req.payload = b"v".to_vec();
        }
        if self.ep.request(addr(p), req).is_ok() {
            self.pump();
        }
    }
}

/// Play `data` against an endpoint with `faults` (none for the fuzz
/// target).
///
/// Actions (opcode `% 8`, a peer byte, then arguments; a missing byte
/// reads as 0): 0 request `a b` (method `a & 3`, NON if bit 2, path
/// `a >> 3`, Observe if `b` bit 7, payload of `b & 63` bytes); 1 the same
/// datagram again (a duplicate); 2 a mutant of it `at v` (byte `at` set to
/// `v`); 3 raw bytes `len bytes…`; 4 an answer `a` to the endpoint (`a % 4`:
/// Empty ACK or RST for its last CON to the peer, piggybacked or separate
/// response to its last request); 5 a client request of the endpoint `a`;
/// 6 advance time by `(a + 1) × 250 ms`; 7 the application updates a
/// resource `a` (observers are notified).
pub fn run(data: &[u8], faults: CoapFaults) {
    let mut s = Script::new(data);
    let mut m = Model::new(&mut s, faults);
    while !s.done() {
        let op = s.byte() % 8;
        let p = usize::from(s.byte()) % PEERS;
        match op {
            0 => {
                let (a, b) = (s.byte(), s.byte());
                m.request(p, a, b);
            }
            1 => {
                let last = m.peers[p].last.clone();
                if !last.is_empty() {
                    m.input(p, &last);
                }
            }
            2 => {
                let (at, v) = (usize::from(s.byte()), s.byte());
                let mut last = m.peers[p].last.clone();
                if let Some(x) = last.get_mut(at) {
                    *x = v;
                    m.input(p, &last);
                }
            }
            3 => {
                let n = usize::from(s.byte());
                let bytes = s.take(n).to_vec();
                m.input(p, &bytes);
            }
            4 => m.answer(p, s.byte()),
            5 => m.client_request(p, s.byte()),
            6 => m.advance(SimDuration::from_millis((u64::from(s.byte()) + 1) * 250)),
            _ => {
                let a = s.byte();
                let path = PATHS[usize::from(a) % PATHS.len()];
                let value = vec![b'a' + (a >> 3) % 26; usize::from(a >> 3)];
                let now = m.now;
                m.server.update(now, &mut m.ep, path, Some(0), &value);
                m.pump();
            }
        }
    }
}
