//! The sans-IO CoAP endpoint: RFC 7252 message layer (§4) plus request/
//! response matching (§5.2, §5.3) for a client and a small resource server.
//!
//! One [`Endpoint`] per node, acting as client and server at once. It never
//! reads a clock, a socket or a global random source: time is an argument,
//! randomness comes from the [`SimRng`] it was given, datagrams go in through
//! [`Endpoint::handle_datagram`] and come out of [`Endpoint::poll_transmit`].
//!
//! State is lazily allocated: an idle endpoint holds empty `BTreeMap`s and
//! `VecDeque`s (no heap), so thousands fit in memory. Deduplication entries
//! expire lazily at the next `handle_*` call after their lifetime; they never
//! wake the driver.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::net::SocketAddrV4;

use thiserror::Error;

use crate::sim::{SimDuration, SimRng, SimTime};

use super::code::{Code, MessageType, Method};
use super::codec::{
    write_header, write_payload, CodecError, Header, MessageRef, OptionWriter, Token,
};
use super::config::Config;
use super::exchange::{DedupEntry, ExState, Exchange, Outgoing, PeerSlots};
use super::option::{encode_uint, OptionNumber};
use super::server::ResourceStore;

/// Identifies one request made with [`Endpoint::request`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RequestHandle(pub u64);

/// A request as the application states it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Request {
    pub method: Method,
    /// CON (true) or NON (false) (§4.2, §4.3).
    pub confirmable: bool,
    /// Path like `building/xyz/room/120/temperature`; a leading `/` is
    /// dropped, each `/`-separated segment becomes one Uri-Path (§6.4).
    pub path: String,
    pub host: Option<String>,
    pub port: Option<u16>,
    /// Each entry becomes one Uri-Query option.
    pub query: Vec<String>,
    pub content_format: Option<u16>,
    pub payload: Vec<u8>,
}

impl Request {
    /// A confirmable request with no payload.
    pub fn new(method: Method, path: impl Into<String>) -> Self {
        Request {
            method,
            confirmable: true,
            path: path.into(),
            host: None,
            port: None,
            query: Vec::new(),
            content_format: None,
            payload: Vec::new(),
        }
    }
    /// Confirmable GET.
    pub fn get(path: impl Into<String>) -> Self {
        Request::new(Method::Get, path)
    }
    /// Confirmable PUT of `payload` (Content-Format 0, text/plain).
    pub fn put(path: impl Into<String>, payload: impl Into<Vec<u8>>) -> Self {
        Request {
            payload: payload.into(),
            content_format: Some(0),
            ..Request::new(Method::Put, path)
        }
    }
    /// Builder: CON (`true`) or NON (`false`).
    pub fn confirmable(mut self, con: bool) -> Self {
        self.confirmable = con;
        self
    }
}

/// What `poll_transmit` wrote.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TransmitInfo {
    pub to: SocketAddrV4,
    pub ty: MessageType,
    pub code: Code,
    pub message_id: u16,
    /// A retransmission of a CON, or a repeated reply to a duplicate.
    pub is_retransmission: bool,
    pub len: usize,
    /// The request this datagram carries, when it is one of ours (first
    /// transmission or retransmission), so a driver can attribute it.
    pub request: Option<RequestHandle>,
}

/// What the endpoint tells the application.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// A response matched one of our requests (§5.3.2).
    ResponseReceived {
        handle: RequestHandle,
        from: SocketAddrV4,
        code: Code,
        content_format: Option<u16>,
        payload: Vec<u8>,
        /// How many times the request was sent (1 + retransmissions).
        transmissions: u32,
    },
    /// A new request reached the server side (once per exchange: duplicates
    /// are suppressed, §4.5). The server has already answered it.
    RequestReceived {
        from: SocketAddrV4,
        method: Method,
        path: String,
        content_format: Option<u16>,
        payload: Vec<u8>,
        confirmable: bool,
    },
    /// A CON request was never acknowledged: MAX_RETRANSMIT retransmissions
    /// and the last timeout passed (§4.2).
    GaveUp { handle: RequestHandle },
    /// A NON request got no response within `non_response_timeout`, or a
    /// separate response did not follow an Empty ACK within EXCHANGE_LIFETIME.
    NoResponse { handle: RequestHandle },
    /// The peer rejected our request with RST (§4.2, §4.3).
    ResetReceived { handle: RequestHandle },
}

/// Counters, for metrics and tests.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    pub requests_started: u64,
    pub datagrams_sent: u64,
    pub bytes_sent: u64,
    pub retransmissions: u64,
    pub give_ups: u64,
    pub no_responses: u64,
    pub responses_received: u64,
    pub requests_received: u64,
    pub duplicates_suppressed: u64,
    pub rst_sent: u64,
    pub rst_received: u64,
    pub malformed_dropped: u64,
    /// ACK/RST for unknown message IDs, NON responses with unknown tokens.
    pub ignored: u64,
    pub separate_responses_sent: u64,
    pub separate_give_ups: u64,
}

/// Errors from the application API.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum EndpointError {
    #[error("request to {to}: {source}")]
    Encode {
        to: SocketAddrV4,
        #[source]
        source: CodecError,
    },
}

/// A CoAP endpoint (client and server).
///
/// Driver shape (DESIGN.md convention 1). After every input — `request`,
/// `handle_datagram`, `handle_timeout` — the driver polls, in this order:
/// 1. `poll_transmit` until `None` (datagrams in the order they were queued);
/// 2. `poll_event` until `None`;
/// 3. `poll_timeout`, and calls `handle_timeout(t)` once time reaches it.
///
/// Server side: every new request is applied to the [`ResourceStore`] and
/// answered automatically (piggybacked, or separately when
/// `Config::separate_response_delay` is set); the application sees it as
/// [`Event::RequestReceived`].
#[derive(Debug)]
pub struct Endpoint {
    config: Config,
    rng: SimRng,
    next_mid: u16,
    next_token: u32,
    next_id: u64,
    exchanges: BTreeMap<u64, Exchange>,
    by_mid: BTreeMap<(SocketAddrV4, u16), u64>,
    by_token: BTreeMap<(SocketAddrV4, Token), u64>,
    timers: BTreeSet<(SimTime, u64)>,
    peers: BTreeMap<SocketAddrV4, PeerSlots>,
    dedup: BTreeMap<(SocketAddrV4, u16), DedupEntry>,
    dedup_expiry: BTreeSet<(SimTime, SocketAddrV4, u16)>,
    outq: VecDeque<Outgoing>,
    events: VecDeque<Event>,
    store: ResourceStore,
    stats: Stats,
}

/// Options the server side understands; any other critical option in a
/// request is answered 4.02 Bad Option (§5.4.1).
const RECOGNISED: [OptionNumber; 7] = [
    OptionNumber::URI_HOST,
    OptionNumber::URI_PORT,
    OptionNumber::URI_PATH,
    OptionNumber::CONTENT_FORMAT,
    OptionNumber::URI_QUERY,
    OptionNumber::ACCEPT,
    OptionNumber::SIZE1,
];

impl Endpoint {
    /// A fresh endpoint; its first message ID is `first_message_id` (§4.4:
    /// IDs are then sequential).
    pub fn new(config: Config, rng: SimRng, first_message_id: u16) -> Self {
        Endpoint {
            config,
            rng,
            next_mid: first_message_id,
            next_token: 0,
            next_id: 0,
            exchanges: BTreeMap::new(),
            by_mid: BTreeMap::new(),
            by_token: BTreeMap::new(),
            timers: BTreeSet::new(),
            peers: BTreeMap::new(),
            dedup: BTreeMap::new(),
            dedup_expiry: BTreeSet::new(),
            outq: VecDeque::new(),
            events: VecDeque::new(),
            store: ResourceStore::new(),
            stats: Stats::default(),
        }
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.config
    }
    /// Counters.
    pub fn stats(&self) -> &Stats {
        &self.stats
    }
    /// The server's resources.
    pub fn resources(&self) -> &ResourceStore {
        &self.store
    }
    /// The server's resources, e.g. to seed values.
    pub fn resources_mut(&mut self) -> &mut ResourceStore {
        &mut self.store
    }
    /// Requests made and not yet finished (sent or waiting for NSTART).
    pub fn outstanding_requests(&self) -> usize {
        self.exchanges.values().filter(|e| e.client).count()
    }

    /// Client API: queue a request to `to`. With NSTART (§4.7) requests
    /// already outstanding to that peer it waits; the wait is part of its
    /// latency. Fails only if the request cannot be encoded (a path segment,
    /// host or query longer than 255 bytes, §5.10).
    pub fn request(
        &mut self,
        now: SimTime,
        to: SocketAddrV4,
        req: Request,
    ) -> Result<RequestHandle, EndpointError> {
        let token = self.fresh_token();
        let bytes =
            encode_request(&req, token).map_err(|source| EndpointError::Encode { to, source })?;
        let id = self.alloc_id();
        self.exchanges.insert(
            id,
            Exchange {
                peer: to,
                token,
                message_id: 0,
                confirmable: req.confirmable,
                client: true,
                state: ExState::Waiting,
                holds_slot: false,
                bytes,
                retransmissions: 0,
                timeout: SimDuration::ZERO,
                deadline: SimTime::MAX,
            },
        );
        self.by_token.insert((to, token), id);
        let nstart = self.config.nstart();
        let slots = self.peers.entry(to).or_default();
        if slots.outstanding < nstart {
            slots.outstanding += 1;
            self.start(now, id);
        } else {
            slots.waiting.push_back(id);
        }
        Ok(RequestHandle(id))
    }

    /// The earliest time `handle_timeout` must be called, if any.
    pub fn poll_timeout(&self) -> Option<SimTime> {
        self.timers.first().map(|(t, _)| *t)
    }

    /// The next event for the application.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// Write the next datagram into `buf` (cleared first) and describe it.
    pub fn poll_transmit(&mut self, _now: SimTime, buf: &mut Vec<u8>) -> Option<TransmitInfo> {
        while let Some(out) = self.outq.pop_front() {
            buf.clear();
            let mut request = None;
            let (to, repeat) = match out {
                Outgoing::Exchange { id, retransmission } => match self.exchanges.get(&id) {
                    Some(ex) => {
                        buf.extend_from_slice(&ex.bytes);
                        if ex.client {
                            request = Some(RequestHandle(id));
                        }
                        (ex.peer, retransmission)
                    }
                    None => continue,
                },
                Outgoing::Cached { peer, mid, repeat } => {
                    match self.dedup.get(&(peer, mid)).and_then(|e| e.reply.as_ref()) {
                        Some(reply) => {
                            buf.extend_from_slice(reply);
                            (peer, repeat)
                        }
                        None => continue,
                    }
                }
                Outgoing::Empty { to, rst, mid } => {
                    let ty = if rst {
                        MessageType::Rst
                    } else {
                        MessageType::Ack
                    };
                    write_header(buf, ty, Code::EMPTY, mid, &Token::EMPTY);
                    (to, false)
                }
                Outgoing::Owned { to, bytes } => {
                    buf.extend_from_slice(&bytes);
                    (to, false)
                }
            };
            let Ok(h) = Header::peek(buf) else { continue };
            self.stats.datagrams_sent += 1;
            self.stats.bytes_sent += buf.len() as u64;
            return Some(TransmitInfo {
                to,
                ty: h.ty,
                code: h.code,
                message_id: h.message_id,
                is_retransmission: repeat,
                len: buf.len(),
                request,
            });
        }
        None
    }

    /// A timer may have fired: retransmit, give up, or send a scheduled
    /// separate response.
    pub fn handle_timeout(&mut self, now: SimTime) {
        self.expire_dedup(now);
        while let Some(&(t, id)) = self.timers.first() {
            if t > now {
                break;
            }
            self.timers.remove(&(t, id));
            let Some(ex) = self.exchanges.get_mut(&id) else {
                continue;
            };
            match ex.state {
                ExState::AwaitingAck if ex.retransmissions < self.config.max_retransmit => {
                    // RFC 7252 §4.2: retransmit, double the timeout, counted.
                    ex.retransmissions += 1;
                    ex.timeout = ex.timeout.saturating_mul(2);
                    ex.deadline = t + ex.timeout;
                    self.timers.insert((ex.deadline, id));
                    self.stats.retransmissions += 1;
                    self.outq.push_back(Outgoing::Exchange {
                        id,
                        retransmission: true,
                    });
                }
                ExState::AwaitingAck => {
                    // RFC 7252 §4.2: MAX_RETRANSMIT reached and the last
                    // timeout expired: give up.
                    if ex.client {
                        self.stats.give_ups += 1;
                        self.events.push_back(Event::GaveUp {
                            handle: RequestHandle(id),
                        });
                    } else {
                        self.stats.separate_give_ups += 1;
                    }
                    self.finish(now, id);
                }
                ExState::AwaitingResponse => {
                    self.stats.no_responses += 1;
                    self.events.push_back(Event::NoResponse {
                        handle: RequestHandle(id),
                    });
                    self.finish(now, id);
                }
                ExState::Scheduled => {
                    self.stats.separate_responses_sent += 1;
                    self.start(t, id);
                }
                ExState::Waiting => {}
            }
        }
    }

    /// A datagram arrived from `from`.
    pub fn handle_datagram(&mut self, now: SimTime, from: SocketAddrV4, bytes: &[u8]) {
        self.expire_dedup(now);
        let m = match MessageRef::parse(bytes) {
            Ok(m) => m,
            Err(e) => {
                self.stats.malformed_dropped += 1;
                // RFC 7252 §3: unknown versions are silently ignored. §4.2: a
                // CON with a format error is rejected with RST; §4.3: anything
                // else malformed is silently ignored.
                if !matches!(e, CodecError::UnknownVersion { .. }) {
                    if let Ok(h) = Header::peek(bytes) {
                        if h.ty == MessageType::Con {
                            self.send_rst(from, h.message_id);
                        }
                    }
                }
                return;
            }
        };
        match m.ty {
            MessageType::Ack | MessageType::Rst => self.on_ack_or_rst(now, from, &m),
            MessageType::Con | MessageType::Non => {
                let con = m.ty == MessageType::Con;
                if m.code.is_empty() {
                    if con {
                        // RFC 7252 §4.3: an Empty CON ("CoAP ping") gets RST.
                        self.send_rst(from, m.message_id);
                    } else {
                        // §4.3: a NON must not be Empty — format error.
                        self.stats.malformed_dropped += 1;
                    }
                    return;
                }
                if self.is_duplicate(now, from, &m) {
                    return;
                }
                if m.code.class() == 0 {
                    self.on_request(now, from, &m);
                } else if m.code.is_response() {
                    self.on_response(now, from, &m);
                } else if con {
                    // Reserved classes 1, 6, 7 (§12.1): cannot process → RST (§4.2).
                    self.send_rst(from, m.message_id);
                } else {
                    self.stats.ignored += 1;
                }
            }
        }
    }

    // ---- internals ------------------------------------------------------

    fn alloc_id(&mut self) -> u64 {
        let id = self.next_id;
        self.next_id += 1;
        id
    }

    /// Tokens from a counter, 2 to 4 bytes (§5.3.1): unique among this
    /// endpoint's outstanding requests until the counter wraps at 2^32.
    fn fresh_token(&mut self) -> Token {
        let n = self.next_token;
        self.next_token = self.next_token.wrapping_add(1);
        let b = n.to_be_bytes();
        let len = if n < 0x1_0000 {
            2
        } else if n < 0x100_0000 {
            3
        } else {
            4
        };
        Token::new(&b[4 - len..]).unwrap_or(Token::EMPTY)
    }

    /// §4.4: message IDs are sequential per endpoint.
    fn fresh_mid(&mut self) -> u16 {
        let m = self.next_mid;
        self.next_mid = self.next_mid.wrapping_add(1);
        m
    }

    /// Send an exchange's message for the first time and arm its timer.
    fn start(&mut self, now: SimTime, id: u64) {
        let mid = self.fresh_mid();
        let lo = self.config.ack_timeout.as_nanos();
        let hi = self.config.max_initial_timeout().as_nanos();
        let non_wait = self.config.non_response_timeout;
        let Some(ex) = self.exchanges.get_mut(&id) else {
            return;
        };
        ex.set_message_id(mid);
        if ex.client {
            ex.holds_slot = true;
            self.stats.requests_started += 1;
        }
        if ex.confirmable {
            // RFC 7252 §4.2: initial timeout uniform in
            // [ACK_TIMEOUT, ACK_TIMEOUT·ACK_RANDOM_FACTOR], drawn once.
            ex.timeout = SimDuration::from_nanos(self.rng.range_inclusive(lo, hi));
            ex.state = ExState::AwaitingAck;
            self.by_mid.insert((ex.peer, mid), id);
        } else {
            ex.timeout = non_wait;
            ex.state = ExState::AwaitingResponse;
        }
        ex.deadline = now + ex.timeout;
        self.timers.insert((ex.deadline, id));
        self.outq.push_back(Outgoing::Exchange {
            id,
            retransmission: false,
        });
    }

    /// Forget an exchange and release its NSTART slot.
    fn finish(&mut self, now: SimTime, id: u64) {
        let Some(ex) = self.exchanges.remove(&id) else {
            return;
        };
        self.timers.remove(&(ex.deadline, id));
        if self.by_mid.get(&(ex.peer, ex.message_id)) == Some(&id) {
            self.by_mid.remove(&(ex.peer, ex.message_id));
        }
        if ex.client {
            self.by_token.remove(&(ex.peer, ex.token));
        }
        if ex.holds_slot {
            self.release_slot(now, ex.peer);
        }
    }

    /// One outstanding interaction with `peer` ended (§4.7): start waiters.
    fn release_slot(&mut self, now: SimTime, peer: SocketAddrV4) {
        let nstart = self.config.nstart();
        let mut to_start = Vec::new();
        if let Some(slots) = self.peers.get_mut(&peer) {
            slots.outstanding = slots.outstanding.saturating_sub(1);
            while slots.outstanding < nstart {
                let Some(next) = slots.waiting.pop_front() else {
                    break;
                };
                slots.outstanding += 1;
                to_start.push(next);
            }
            if slots.outstanding == 0 && slots.waiting.is_empty() {
                self.peers.remove(&peer);
            }
        }
        for id in to_start {
            self.start(now, id);
        }
    }

    fn send_rst(&mut self, to: SocketAddrV4, mid: u16) {
        self.stats.rst_sent += 1;
        self.outq.push_back(Outgoing::Empty { to, rst: true, mid });
    }

    fn expire_dedup(&mut self, now: SimTime) {
        while let Some(&(t, peer, mid)) = self.dedup_expiry.first() {
            if t > now {
                break;
            }
            self.dedup_expiry.remove(&(t, peer, mid));
            if self.dedup.get(&(peer, mid)).is_some_and(|e| e.expires == t) {
                self.dedup.remove(&(peer, mid));
            }
        }
    }

    /// Remember `(peer, mid)` for §4.5 deduplication.
    fn remember(
        &mut self,
        now: SimTime,
        peer: SocketAddrV4,
        mid: u16,
        con: bool,
        reply: Option<Box<[u8]>>,
    ) {
        let life = if con {
            self.config.exchange_lifetime()
        } else {
            self.config.non_lifetime()
        };
        let expires = now + life;
        if let Some(old) = self
            .dedup
            .insert((peer, mid), DedupEntry { expires, reply })
        {
            self.dedup_expiry.remove(&(old.expires, peer, mid));
        }
        self.dedup_expiry.insert((expires, peer, mid));
    }

    /// RFC 7252 §4.5: a CON or NON already seen from this source with this
    /// message ID is a duplicate: a CON gets the same reply again, the
    /// application does not see it again.
    fn is_duplicate(&mut self, now: SimTime, from: SocketAddrV4, m: &MessageRef<'_>) -> bool {
        let Some(entry) = self.dedup.get(&(from, m.message_id)) else {
            return false;
        };
        if entry.expires <= now {
            return false;
        }
        self.stats.duplicates_suppressed += 1;
        if m.ty == MessageType::Con && entry.reply.is_some() {
            self.outq.push_back(Outgoing::Cached {
                peer: from,
                mid: m.message_id,
                repeat: true,
            });
        }
        true
    }

    fn on_ack_or_rst(&mut self, now: SimTime, from: SocketAddrV4, m: &MessageRef<'_>) {
        // RFC 7252 §4.2: an ACK or RST matching no CON we sent is ignored.
        let Some(&id) = self.by_mid.get(&(from, m.message_id)) else {
            self.stats.ignored += 1;
            return;
        };
        let Some(ex) = self.exchanges.get_mut(&id) else {
            self.stats.ignored += 1;
            return;
        };
        if m.ty == MessageType::Rst {
            self.stats.rst_received += 1;
            if ex.client {
                self.events.push_back(Event::ResetReceived {
                    handle: RequestHandle(id),
                });
            }
            self.finish(now, id);
            return;
        }
        // The ACK ends retransmission.
        self.by_mid.remove(&(from, m.message_id));
        if !ex.client {
            self.finish(now, id); // our separate response was acknowledged
            return;
        }
        let transmissions = ex.retransmissions + 1;
        if m.code.is_response() && m.token == ex.token {
            // §5.2.1 piggybacked response.
            self.stats.responses_received += 1;
            self.events.push_back(Event::ResponseReceived {
                handle: RequestHandle(id),
                from,
                code: m.code,
                content_format: m.content_format(),
                payload: m.payload.to_vec(),
                transmissions,
            });
            self.finish(now, id);
            return;
        }
        // §5.2.2: Empty ACK — a separate response follows. The interaction is
        // no longer outstanding for NSTART (§4.7).
        self.timers.remove(&(ex.deadline, id));
        ex.state = ExState::AwaitingResponse;
        ex.deadline = now + self.config.exchange_lifetime();
        self.timers.insert((ex.deadline, id));
        let peer = ex.peer;
        if std::mem::replace(&mut ex.holds_slot, false) {
            self.release_slot(now, peer);
        }
    }

    fn on_response(&mut self, now: SimTime, from: SocketAddrV4, m: &MessageRef<'_>) {
        let con = m.ty == MessageType::Con;
        let found = self.by_token.get(&(from, m.token)).copied().filter(|id| {
            self.exchanges
                .get(id)
                .is_some_and(|e| e.state != ExState::Waiting)
        });
        let Some(id) = found else {
            // §5.3.2 / §4.2: a CON response we cannot match is rejected.
            if con {
                self.send_rst(from, m.message_id);
            } else {
                self.stats.ignored += 1;
            }
            return;
        };
        if con {
            // §5.2.2: the client ACKs a separate CON response; the ACK is
            // remembered so a retransmitted response gets it again (§4.5).
            let mut ack = Vec::with_capacity(4);
            write_header(
                &mut ack,
                MessageType::Ack,
                Code::EMPTY,
                m.message_id,
                &Token::EMPTY,
            );
            self.remember(now, from, m.message_id, true, Some(ack.into_boxed_slice()));
            self.outq.push_back(Outgoing::Cached {
                peer: from,
                mid: m.message_id,
                repeat: false,
            });
        } else {
            self.remember(now, from, m.message_id, false, None);
        }
        let transmissions = self.exchanges.get(&id).map_or(1, |e| e.retransmissions + 1);
        self.stats.responses_received += 1;
        self.events.push_back(Event::ResponseReceived {
            handle: RequestHandle(id),
            from,
            code: m.code,
            content_format: m.content_format(),
            payload: m.payload.to_vec(),
            transmissions,
        });
        self.finish(now, id);
    }

    fn on_request(&mut self, now: SimTime, from: SocketAddrV4, m: &MessageRef<'_>) {
        let con = m.ty == MessageType::Con;
        let reply = match Method::from_code(m.code) {
            // §5.8: unknown method → 4.05 Method Not Allowed.
            None => super::server::Reply {
                code: Code::METHOD_NOT_ALLOWED,
                content_format: None,
                payload: Vec::new(),
            },
            Some(method) => {
                let bad = m.options().find(|o| {
                    let n = OptionNumber(o.number);
                    let ok_len = n
                        .spec()
                        .is_some_and(|(_, lo, hi)| (lo..=hi).contains(&o.value.len()));
                    // §5.4.1, §5.4.3: unrecognised (or malformed) critical option.
                    n.is_critical() && !(RECOGNISED.contains(&n) && ok_len)
                });
                if let Some(o) = bad {
                    let code = if o.number == OptionNumber::PROXY_URI.0
                        || o.number == OptionNumber::PROXY_SCHEME.0
                    {
                        Code::PROXYING_NOT_SUPPORTED // §5.10.2
                    } else {
                        Code::BAD_OPTION
                    };
                    super::server::Reply {
                        code,
                        content_format: None,
                        payload: Vec::new(),
                    }
                } else {
                    let mut path = String::new();
                    m.write_path(&mut path);
                    let cf = m.content_format();
                    let reply = self.store.apply(method, &path, cf, m.payload);
                    self.stats.requests_received += 1;
                    self.events.push_back(Event::RequestReceived {
                        from,
                        method,
                        path,
                        content_format: cf,
                        payload: m.payload.to_vec(),
                        confirmable: con,
                    });
                    reply
                }
            }
        };
        let mut bytes = Vec::new();
        if !con {
            // §5.2.3: a NON request gets a NON response with a new ID.
            let mid = self.fresh_mid();
            encode_response(&mut bytes, MessageType::Non, mid, m.token, &reply);
            self.remember(now, from, m.message_id, false, None);
            self.outq.push_back(Outgoing::Owned { to: from, bytes });
            return;
        }
        match self.config.separate_response_delay {
            None => {
                // §5.2.1: piggybacked response in the ACK.
                encode_response(&mut bytes, MessageType::Ack, m.message_id, m.token, &reply);
            }
            Some(delay) => {
                // §5.2.2: Empty ACK now, the response later as its own CON.
                write_header(
                    &mut bytes,
                    MessageType::Ack,
                    Code::EMPTY,
                    m.message_id,
                    &Token::EMPTY,
                );
                let mut resp = Vec::new();
                encode_response(&mut resp, MessageType::Con, 0, m.token, &reply);
                let id = self.alloc_id();
                let deadline = now + delay;
                self.exchanges.insert(
                    id,
                    Exchange {
                        peer: from,
                        token: m.token,
                        message_id: 0,
                        confirmable: true,
                        client: false,
                        state: ExState::Scheduled,
                        holds_slot: false,
                        bytes: resp,
                        retransmissions: 0,
                        timeout: delay,
                        deadline,
                    },
                );
                self.timers.insert((deadline, id));
            }
        }
        self.remember(
            now,
            from,
            m.message_id,
            true,
            Some(bytes.into_boxed_slice()),
        );
        self.outq.push_back(Outgoing::Cached {
            peer: from,
            mid: m.message_id,
            repeat: false,
        });
    }
}

/// Encode a request with message ID 0 (patched when it is sent).
fn encode_request(req: &Request, token: Token) -> Result<Vec<u8>, CodecError> {
    let mut out = Vec::with_capacity(16 + req.path.len() + req.payload.len());
    let ty = if req.confirmable {
        MessageType::Con
    } else {
        MessageType::Non
    };
    write_header(&mut out, ty, req.method.code(), 0, &token);
    let mut w = OptionWriter::new();
    let checked = |number: OptionNumber, v: &[u8]| -> Result<(), CodecError> {
        match number.spec() {
            Some((_, lo, hi)) if v.len() < lo || v.len() > hi => {
                Err(CodecError::OptionValueLength {
                    number: number.0,
                    len: v.len(),
                    min: lo,
                    max: hi,
                })
            }
            _ => Ok(()),
        }
    };
    if let Some(h) = &req.host {
        checked(OptionNumber::URI_HOST, h.as_bytes())?;
        w.push(&mut out, OptionNumber::URI_HOST.0, h.as_bytes())?;
    }
    if let Some(p) = req.port {
        let (b, n) = encode_uint(u64::from(p));
        w.push(&mut out, OptionNumber::URI_PORT.0, &b[8 - n..])?;
    }
    let path = req.path.strip_prefix('/').unwrap_or(&req.path);
    if !path.is_empty() {
        for seg in path.split('/') {
            checked(OptionNumber::URI_PATH, seg.as_bytes())?;
            w.push(&mut out, OptionNumber::URI_PATH.0, seg.as_bytes())?;
        }
    }
    if let Some(cf) = req.content_format {
        let (b, n) = encode_uint(u64::from(cf));
        w.push(&mut out, OptionNumber::CONTENT_FORMAT.0, &b[8 - n..])?;
    }
    for q in &req.query {
        checked(OptionNumber::URI_QUERY, q.as_bytes())?;
        w.push(&mut out, OptionNumber::URI_QUERY.0, q.as_bytes())?;
    }
    write_payload(&mut out, &req.payload);
    Ok(out)
}

fn encode_response(
    out: &mut Vec<u8>,
    ty: MessageType,
    mid: u16,
    token: Token,
    reply: &super::server::Reply,
) {
    write_header(out, ty, reply.code, mid, &token);
    if let Some(cf) = reply.content_format {
        let (b, n) = encode_uint(u64::from(cf));
        // Content-Format of ≤ 2 bytes cannot exceed any length limit.
        let _ = OptionWriter::new().push(out, OptionNumber::CONTENT_FORMAT.0, &b[8 - n..]);
    }
    write_payload(out, &reply.payload);
}
