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

use crate::sim::{SimDuration, SimRng, SimTime};

use super::code::{Code, MessageType};
use super::codec::{write_header, Header, Token};
use super::config::Config;
use super::dedup::DedupCache;
use super::events::{EndpointError, Event, Stats, TransmitInfo};
use super::exchange::{ExState, Exchange, Outgoing, PeerSlots};
use super::request::{encode_request, Request, RequestHandle};
use super::server::ResourceStore;

mod receive;

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
    dedup: DedupCache,
    outq: VecDeque<Outgoing>,
    events: VecDeque<Event>,
    store: ResourceStore,
    stats: Stats,
    /// Recycled message buffers (at most `SPARE_BUFFERS`).
    spare: Vec<Vec<u8>>,
    /// Recycled path strings for `Event::RequestReceived`.
    spare_strings: Vec<String>,
}

/// How many finished exchanges' buffers an endpoint keeps for reuse.
const SPARE_BUFFERS: usize = 4;

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
            dedup: DedupCache::default(),
            outq: VecDeque::new(),
            events: VecDeque::new(),
            store: ResourceStore::new(),
            stats: Stats::default(),
            spare: Vec::new(),
            spare_strings: Vec::new(),
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
    /// Message IDs currently remembered for deduplication (§4.5).
    pub fn dedup_entries(&self) -> usize {
        self.dedup.len()
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
        req: impl std::borrow::Borrow<Request>,
    ) -> Result<RequestHandle, EndpointError> {
        let req = req.borrow();
        let token = self.fresh_token();
        let spare = self.spare.pop().unwrap_or_default();
        let bytes = encode_request(req, token, spare)
            .map_err(|source| EndpointError::Encode { to, source })?;
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
                Outgoing::Cached { peer, mid, repeat } => match self.dedup.reply(peer, mid) {
                    Some(reply) => {
                        buf.extend_from_slice(reply);
                        (peer, repeat)
                    }
                    None => continue,
                },
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
                    self.give_back(bytes);
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
        self.dedup.expire(now);
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
        } else {
            ex.timeout = non_wait;
            ex.state = ExState::AwaitingResponse;
        }
        // Indexed by MID so a matching ACK (CON) or RST (CON or NON, §4.3)
        // finds the exchange.
        self.by_mid.insert((ex.peer, mid), id);
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
        // keep a few encoded-message buffers for the next requests
        self.give_back(ex.bytes);
    }

    /// Keep a finished buffer for reuse (a few at most).
    fn give_back(&mut self, buf: Vec<u8>) {
        if self.spare.len() < SPARE_BUFFERS && buf.capacity() > 0 {
            self.spare.push(buf);
        }
    }

    /// Hand an event's buffers back after the application has read it, so
    /// the next events reuse them instead of allocating (optional; dropping
    /// the event is fine too).
    pub fn recycle(&mut self, ev: Event) {
        match ev {
            Event::RequestReceived { path, payload, .. } => {
                if self.spare_strings.len() < SPARE_BUFFERS {
                    self.spare_strings.push(path);
                }
                self.give_back(payload);
            }
            Event::ResponseReceived { payload, .. } => self.give_back(payload),
            _ => {}
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
        self.dedup
            .insert(peer, mid, usize::from(!con), now + life, reply);
    }
}
