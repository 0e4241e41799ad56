//! The sans-IO CoAP endpoint: the request/response layer (RFC 7252 §5) on
//! top of the [`MessageLayer`] (§4), client and server in one.
//!
//! One [`Endpoint`] per node. It never reads a clock, a socket or a global
//! random source: time is an argument, randomness comes from the [`SimRng`]
//! it was given (the message layer draws its retransmission timeouts from
//! it), datagrams go in through [`Endpoint::handle_input`] and come out of
//! [`Endpoint::poll_transmit`].
//!
//! Client side: [`Endpoint::request`] sends a request; its outcome is one of
//! [`Event::ResponseReceived`] (piggybacked, separate or NON response,
//! matched by token, §5.3.2), [`Event::GaveUp`], [`Event::NoResponse`] or
//! [`Event::ResetReceived`].
//!
//! Server side: the endpoint answers nothing by itself except protocol
//! errors (see below). Each new request is reported once as
//! [`Event::RequestReceived`] with an [`IncomingId`]; the application
//! answers it with [`Endpoint::respond`] — piggybacked on the ACK when the
//! ACK has not been sent yet (§5.2.1), otherwise as a separate response in
//! the request's type (CON for a CON request, §5.2.2, retransmitted by the
//! message layer until ACKed; NON for a NON request, §5.2.3) — or first
//! calls [`Endpoint::defer`] (Empty ACK now, the response later).
//!
//! Unanswered requests do not leak. A CON request neither answered nor
//! deferred within PROCESSING_DELAY (§4.8.2: the time a node takes to turn a
//! CON into its ACK) gets an Empty ACK from the endpoint itself, as if
//! deferred, so the client stops retransmitting and waits for a separate
//! response. A request still unanswered when its deduplication lifetime ends
//! (EXCHANGE_LIFETIME for a CON, NON_LIFETIME for a NON, from its arrival:
//! by then the client has stopped waiting) is forgotten and reported as
//! [`Event::RequestExpired`]; `respond` then fails.
//!
//! Protocol errors are answered by the endpoint and never reach the
//! application: a request with an unknown method code (4.05, §5.8), an
//! unrecognised or malformed critical option (4.02, §5.4.1, §5.4.3;
//! Proxy-Uri/Proxy-Scheme 5.05, §5.10.2) — piggybacked for a CON, RST for a
//! NON (§5.4.1, §4.3). [`Endpoint::recognise_option`] adds critical options
//! the application handles (e.g. Block1/Block2, RFC 7959).
//!
//! State is lazily allocated: an idle endpoint holds empty maps and queues
//! (no heap), so thousands fit in memory.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use crate::net::addr::SockAddr;
use crate::proto::{Datagram, SansIo};
use crate::sim::{DeadlineSet, FixedMap, SimRng, SimTime};

use super::code::MessageType;
use super::codec::{MessageRef, Token};
use super::config::Config;
use super::events::{EndpointError, Event, IncomingId, ResponseId, Stats, TransmitInfo};
use super::message::{Delivery, MessageEvent, MessageKey, MessageLayer};
use super::request::{encode_request, Request, RequestHandle};
use super::server::{encode_response, Reply};

mod receive;

pub use receive::observe_value;

/// How [`Endpoint::respond`] sent the response.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Responded {
    /// In the ACK of the CON request (§5.2.1).
    Piggybacked,
    /// As its own CON message after the request's ACK (§5.2.2),
    /// retransmitted until ACKed; its fate comes as `Event::ResponseAcked`,
    /// `ResponseReset` or `ResponseGaveUp` with this id.
    SeparateCon(ResponseId),
    /// As a NON message with a new message ID, to a NON request (§5.2.3).
    Non,
}

/// A CoAP endpoint (client and server): the request/response layer over a
/// [`MessageLayer`].
///
/// Driver shape ([`SansIo`], also as inherent methods). After every input —
/// `handle_input`, `handle_timeout`, or an application call (`request`,
/// `respond`, `defer`, `send_response`) — the driver polls, in this order:
/// 1. `poll_transmit(now, buf)` until `None` (each call *appends* one
///    datagram to `buf`, so clear it first);
/// 2. `poll_event()` until `None`, handing each event to the application;
/// 3. if step 2 handed out any event (the application may have answered,
///    e.g. `respond` while handling `RequestReceived`), steps 1–2 again;
///    transmitting creates no events, so stop after a step 2 that found
///    none — then nothing is left to send, and a piggybacked ACK leaves in
///    the same instant as its request;
/// 4. `poll_timeout()`, and `handle_timeout(t)` once time reaches it.
#[derive(Debug)]
pub struct Endpoint {
    msg: MessageLayer,
    next_token: u32,
    next_incoming: u64,
    /// Our requests by (peer, token), as responses are matched (§5.3.2).
    /// A hash map (looked up, never iterated): it keeps its table as the
    /// window of outstanding requests slides, where a B-tree would free
    /// and allocate nodes.
    requests: FixedMap<ExchangeKey, ClientExchange>,
    /// Our requests awaiting a separate response (after an Empty ACK), by
    /// message key: the owners of `Timer::Client` timers.
    separate: BTreeMap<u64, (SockAddr, Token)>,
    /// Received requests not answered yet.
    incoming: BTreeMap<u64, Incoming>,
    /// Our Observe registrations (RFC 7641) by (server, token): the
    /// handle of the registering request and the last accepted sequence
    /// number with its arrival time (`None` until the registration is
    /// answered).
    observations: BTreeMap<(SockAddr, Token), Observation>,
    /// Our CON responses awaiting their ACK, by message key.
    responses: BTreeSet<u64>,
    /// Request-layer timers: a client's wait for a separate response, a
    /// deferred CON request's lifetime.
    timers: DeadlineSet<(SimTime, Timer, u64)>,
    /// First deadlines of received requests, in arrival order (so in
    /// deadline order): [0] unacknowledged CONs (arrival +
    /// PROCESSING_DELAY), [1] NONs (arrival + NON_LIFETIME). Entries of
    /// requests answered or acknowledged meanwhile are popped as soon as
    /// they reach the front, so the fronts are always live (`poll_timeout`
    /// is exact) and a request answered at once costs no B-tree timer.
    arrivals: [VecDeque<(SimTime, u64)>; 2],
    events: VecDeque<Event>,
    /// Critical options the application handles besides the built-in ones.
    recognised: Vec<u16>,
    /// Request-layer counters (message-layer ones are in `msg`).
    stats: Stats,
    /// Recycled path strings for `Event::RequestReceived`.
    spare_strings: Vec<String>,
    /// Our multicast requests (RFC 7252 §8.1) still collecting responses,
    /// by token: responses come from any server, so they are matched by
    /// token alone.
    multicast: BTreeMap<Token, Multicast>,
    /// The datagram being handled arrived via a multicast address.
    rx_multicast: bool,
}

/// One of our multicast requests, collecting responses until `deadline`.
#[derive(Debug, Clone, Copy)]
struct Multicast {
    handle: u64,
    deadline: SimTime,
    responses: u32,
}

/// Handles of multicast requests have this bit set: they are untracked by
/// the message layer (no message key), so they are numbered apart.
const MULTICAST_HANDLE: u64 = 1 << 63;

/// Which request-layer record a timer belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
enum Timer {
    Client,
    Incoming,
    /// A multicast request's collection window ends (id = its handle).
    Multicast,
}

/// `(peer, token)`: how a response finds its request (§5.3.2), hashed as
/// two words (the token's bytes as one integer).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ExchangeKey(SockAddr, Token);

impl std::hash::Hash for ExchangeKey {
    fn hash<H: std::hash::Hasher>(&self, h: &mut H) {
        let t = self.1.as_slice();
        let bytes = t
            .iter()
            .fold(t.len() as u64, |n, &b| (n << 8) | u64::from(b));
        h.write_u64((u64::from(self.0.addr.to_bits()) << 16) | u64::from(self.0.port));
        h.write_u64(bytes);
    }
}

/// One of our requests.
#[derive(Debug)]
struct ClientExchange {
    /// Its message's key (= its `RequestHandle`).
    key: u64,
    /// An Empty ACK came (§5.2.2): the message layer is done with the
    /// request; a separate response is awaited until `deadline`.
    awaiting_separate: bool,
    /// 1 + retransmissions, as of the ACK.
    transmissions: u32,
    deadline: SimTime,
    /// It carries Observe 0 (a registration or re-registration).
    observe: bool,
    /// It is a CON.
    confirmable: bool,
}

/// One observation we registered (RFC 7641).
#[derive(Debug, Clone, Copy)]
struct Observation {
    /// The registering request's handle (its events and notifications
    /// carry it).
    handle: u64,
    last: Option<(u32, SimTime)>,
}

/// A received request the application has not answered yet.
#[derive(Debug)]
struct Incoming {
    peer: SockAddr,
    token: Token,
    message_id: u16,
    confirmable: bool,
    /// The ACK (Empty) was sent: the response will be separate.
    acked: bool,
    arrived: SimTime,
    deadline: SimTime,
    /// The request as received (for `request_message`).
    raw: Vec<u8>,
    /// It arrived via a multicast address (RFC 7252 §8.2).
    multicast: bool,
}

/// How many path strings an endpoint keeps for reuse.
const SPARE_STRINGS: usize = 4;

impl Endpoint {
    /// A fresh endpoint; its first message ID is `first_message_id` (§4.4:
    /// IDs are then sequential).
    pub fn new(config: Config, rng: SimRng, first_message_id: u16) -> Self {
        Endpoint {
            msg: MessageLayer::new(config, rng, first_message_id),
            next_token: 0,
            next_incoming: 0,
            requests: FixedMap::default(),
            separate: BTreeMap::new(),
            incoming: BTreeMap::new(),
            observations: BTreeMap::new(),
            responses: BTreeSet::new(),
            timers: DeadlineSet::new(),
            arrivals: [VecDeque::new(), VecDeque::new()],
            events: VecDeque::new(),
            recognised: Vec::new(),
            stats: Stats::default(),
            spare_strings: Vec::new(),
            multicast: BTreeMap::new(),
            rx_multicast: false,
        }
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        self.msg.config()
    }
    /// The message layer underneath (its own counters, dedup state).
    pub fn message_layer(&self) -> &MessageLayer {
        &self.msg
    }
    /// Counters of both layers.
    pub fn stats(&self) -> Stats {
        let m = self.msg.stats();
        Stats {
            requests_started: m.interactions_started,
            datagrams_sent: m.datagrams_sent,
            bytes_sent: m.bytes_sent,
            retransmissions: m.retransmissions,
            duplicates_suppressed: m.duplicates_suppressed,
            rst_sent: m.rst_sent,
            rst_received: m.rst_received,
            malformed_dropped: m.malformed_dropped,
            ignored: m.ignored + self.stats.ignored,
            dedup_evicted: self.msg.dedup_evicted(),
            ..self.stats
        }
    }
    /// Message IDs currently remembered for deduplication (§4.5).
    pub fn dedup_entries(&self) -> usize {
        self.msg.dedup_entries()
    }
    /// Requests made and not yet finished (sent or waiting for NSTART).
    pub fn outstanding_requests(&self) -> usize {
        self.requests.len()
    }
    /// Received requests the application has not answered yet.
    pub fn pending_requests(&self) -> usize {
        self.incoming.len()
    }

    /// Treat critical option `number` as understood: requests carrying it
    /// reach the application instead of being answered 4.02 (§5.4.1).
    pub fn recognise_option(&mut self, number: u16) {
        if !self.recognised.contains(&number) {
            self.recognised.push(number);
        }
    }

    // ---- client ---------------------------------------------------------

    /// Send `req` to `to`. It goes out at the next `poll_transmit`, or waits
    /// while NSTART requests to `to` are outstanding (§4.7); the wait counts
    /// in its latency. Fails only if the request cannot be encoded (a path
    /// segment, host or query longer than 255 bytes, §5.10).
    pub fn request(
        &mut self,
        to: SockAddr,
        req: impl std::borrow::Borrow<Request>,
    ) -> Result<RequestHandle, EndpointError> {
        let token = self.fresh_token();
        let h = self.send_request(to, req.borrow(), token)?;
        if req.borrow().observe == Some(0) {
            let obs = Observation {
                handle: h.0,
                last: None,
            };
            self.observations.insert((to, token), obs);
        }
        Ok(h)
    }

    /// Send `req` to multicast `group` (RFC 7252 §8.1) and collect the
    /// responses for `window` from its first transmission: each is reported
    /// as [`Event::ResponseReceived`] with the returned handle and the
    /// responding server in `from` (any number of them, matched by token
    /// alone, §8.2), then [`Event::MulticastEnded`]. The request is NON and
    /// sent once (no retransmission, no NSTART slot: nothing acknowledges
    /// it). A CON request is an error (§8.1: multicast requests MUST be
    /// Non-confirmable), as is a `group` that is not an IPv4 multicast
    /// address.
    pub fn request_multicast(
        &mut self,
        now: SimTime,
        group: SockAddr,
        req: &Request,
        window: crate::sim::SimDuration,
    ) -> Result<RequestHandle, EndpointError> {
        if !group.addr.v4().is_some_and(|a| a.is_multicast()) {
            return Err(EndpointError::NotMulticast { to: group });
        }
        if req.confirmable {
            return Err(EndpointError::ConfirmableMulticast { to: group });
        }
        let token = self.fresh_token();
        let spare = self.msg.take_buffer();
        let bytes = encode_request(req, token, spare)
            .map_err(|source| EndpointError::Encode { to: group, source })?;
        self.msg.send_untracked(group, bytes);
        self.stats.requests_started += 1;
        let handle = MULTICAST_HANDLE | u64::from(token_number(token));
        let deadline = now + window;
        // a token reused after 2^32 requests replaces a stale collection
        if let Some(old) = self.multicast.insert(
            token,
            Multicast {
                handle,
                deadline,
                responses: 0,
            },
        ) {
            self.timers
                .remove(&(old.deadline, Timer::Multicast, old.handle));
        }
        self.timers.insert((deadline, Timer::Multicast, handle));
        Ok(RequestHandle(handle))
    }

    /// Multicast requests still collecting responses.
    pub fn multicast_requests(&self) -> usize {
        self.multicast.len()
    }

    fn send_request(
        &mut self,
        to: SockAddr,
        req: &Request,
        token: Token,
    ) -> Result<RequestHandle, EndpointError> {
        let spare = self.msg.take_buffer();
        let bytes = encode_request(req, token, spare)
            .map_err(|source| EndpointError::Encode { to, source })?;
        let delivery = if req.confirmable {
            Delivery::Confirmable
        } else {
            Delivery::NonConfirmable
        };
        // a request still outstanding with this token (an earlier
        // re-registration) is superseded
        if let Some(old) = self.requests.get(&ExchangeKey(to, token)).map(|e| e.key) {
            self.msg.cancel(MessageKey(old));
            self.forget_client(to, token, MessageKey(old));
        }
        let key = self.msg.send(to, bytes, delivery, true);
        self.requests.insert(
            ExchangeKey(to, token),
            ClientExchange {
                key: key.0,
                awaiting_separate: false,
                transmissions: 1,
                deadline: SimTime::MAX,
                observe: req.observe == Some(0),
                confirmable: req.confirmable,
            },
        );
        Ok(RequestHandle(key.0))
    }

    /// The (server, token) of observation `handle`.
    fn observation(&self, handle: RequestHandle) -> Option<(SockAddr, Token)> {
        self.observations
            .iter()
            .find(|(_, o)| o.handle == handle.0)
            .map(|(k, _)| *k)
    }

    /// Whether observation `handle` (a request made with Observe 0) is
    /// alive: registered or being registered.
    pub fn is_observing(&self, handle: RequestHandle) -> bool {
        self.observation(handle).is_some()
    }

    /// Observations alive.
    pub fn observations(&self) -> usize {
        self.observations.len()
    }

    /// Re-register observation `handle` (RFC 7641 §3.3.1): `req` (its GET)
    /// is sent again with Observe 0 and the observation's token; the
    /// observation keeps `handle`, the returned handle is this request's.
    pub fn reregister(
        &mut self,
        handle: RequestHandle,
        req: &Request,
    ) -> Result<RequestHandle, EndpointError> {
        let (to, token) = self
            .observation(handle)
            .ok_or(EndpointError::UnknownObservation { handle })?;
        let mut req = req.clone();
        req.observe = Some(0);
        self.send_request(to, &req, token)
    }

    /// End observation `handle`. With `Some(req)` (its GET), deregister
    /// actively (§3.6: the GET with Observe 1 and the observation's token;
    /// its response comes as an ordinary `ResponseReceived` with the
    /// returned handle); with `None`, forget it: the next notification is
    /// answered with RST, which ends it at the server.
    pub fn cancel_observation(
        &mut self,
        handle: RequestHandle,
        req: Option<&Request>,
    ) -> Result<Option<RequestHandle>, EndpointError> {
        let (to, token) = self
            .observation(handle)
            .ok_or(EndpointError::UnknownObservation { handle })?;
        self.observations.remove(&(to, token));
        let Some(req) = req else {
            return Ok(None);
        };
        let mut req = req.clone();
        req.observe = Some(1);
        self.send_request(to, &req, token).map(Some)
    }

    // ---- server ---------------------------------------------------------

    /// Answer received request `id` with `reply`: piggybacked on the ACK if
    /// it has not been sent (§5.2.1), else a separate CON response (§5.2.2);
    /// a NON request gets a NON response with a new message ID (§5.2.3).
    /// The request is then done (a duplicate CON gets the same ACK again,
    /// §4.5, without a new event).
    pub fn respond(&mut self, id: IncomingId, reply: &Reply) -> Result<Responded, EndpointError> {
        let p = self
            .incoming
            .remove(&id.0)
            .ok_or(EndpointError::UnknownRequest { id })?;
        if p.acked {
            self.timers.remove(&(p.deadline, Timer::Incoming, id.0));
        }
        self.trim_arrivals();
        self.msg.give_back(p.raw);
        let mut bytes = self.msg.take_buffer();
        if !p.confirmable {
            encode_response(&mut bytes, MessageType::Non, 0, p.token, reply);
            self.msg.send_untracked(p.peer, bytes);
            return Ok(Responded::Non);
        }
        if !p.acked {
            encode_response(&mut bytes, MessageType::Ack, p.message_id, p.token, reply);
            self.msg.acknowledge(p.peer, p.message_id, bytes);
            return Ok(Responded::Piggybacked);
        }
        self.stats.separate_responses_sent += 1;
        encode_response(&mut bytes, MessageType::Con, 0, p.token, reply);
        let key = self.msg.send(p.peer, bytes, Delivery::Confirmable, false);
        self.responses.insert(key.0);
        Ok(Responded::SeparateCon(ResponseId(key.0)))
    }

    /// Acknowledge received CON request `id` now with an Empty ACK (§5.2.2)
    /// and answer it later with [`Endpoint::respond`] (a separate response).
    /// Nothing to do for a NON request or one already acknowledged. The
    /// request stays answerable until EXCHANGE_LIFETIME after its arrival
    /// (NON_LIFETIME for a NON), then `Event::RequestExpired`.
    pub fn defer(&mut self, id: IncomingId) -> Result<(), EndpointError> {
        if !self.incoming.contains_key(&id.0) {
            return Err(EndpointError::UnknownRequest { id });
        }
        self.ack_pending(id.0);
        Ok(())
    }

    /// Whether received request `id` arrived via a multicast address
    /// ([`Endpoint::handle_multicast_input`]; RFC 7252 §8.2: the server
    /// answers it, if at all, after a leisure delay).
    pub fn is_multicast(&self, id: IncomingId) -> bool {
        self.incoming.get(&id.0).is_some_and(|p| p.multicast)
    }

    /// Forget received request `id` without answering it: a server with
    /// nothing useful to say to a multicast request stays silent (RFC 7252
    /// §8.2.1). Nothing is sent (a CON would get no ACK: only for NON).
    pub fn ignore(&mut self, id: IncomingId) -> Result<(), EndpointError> {
        let p = self
            .incoming
            .remove(&id.0)
            .ok_or(EndpointError::UnknownRequest { id })?;
        if p.acked {
            self.timers.remove(&(p.deadline, Timer::Incoming, id.0));
        }
        self.trim_arrivals();
        self.msg.give_back(p.raw);
        Ok(())
    }

    /// The request `id` as received (every option, e.g. Observe or Block2),
    /// while it awaits its answer.
    pub fn request_message(&self, id: IncomingId) -> Option<MessageRef<'_>> {
        let p = self.incoming.get(&id.0)?;
        MessageRef::parse(&p.raw).ok()
    }

    /// Send a response (or, later, an Observe notification) with `token` to
    /// `to`, unsolicited by any pending request: CON (retransmitted until
    /// ACKed; `Some(id)`, its fate reported as `Event::ResponseAcked` /
    /// `ResponseReset` / `ResponseGaveUp`) or NON (`None`, sent once).
    pub fn send_response(
        &mut self,
        to: SockAddr,
        token: Token,
        reply: &Reply,
        confirmable: bool,
    ) -> Option<ResponseId> {
        let mut bytes = self.msg.take_buffer();
        if !confirmable {
            encode_response(&mut bytes, MessageType::Non, 0, token, reply);
            self.msg.send_untracked(to, bytes);
            return None;
        }
        encode_response(&mut bytes, MessageType::Con, 0, token, reply);
        let key = self.msg.send(to, bytes, Delivery::Confirmable, false);
        self.responses.insert(key.0);
        Some(ResponseId(key.0))
    }

    /// Send an Observe notification (RFC 7641 §4.2) with `token` to `to`,
    /// CON (retransmitted until ACKed) or NON; either is tracked so an RST
    /// answering it is reported (`Event::ResponseReset`), a CON's fate as
    /// `ResponseAcked` / `ResponseGaveUp`.
    pub fn notify(&mut self, to: SockAddr, token: Token, reply: &Reply, con: bool) -> ResponseId {
        let mut bytes = self.msg.take_buffer();
        let (ty, delivery) = if con {
            (MessageType::Con, Delivery::Confirmable)
        } else {
            (MessageType::Non, Delivery::NonConfirmable)
        };
        encode_response(&mut bytes, ty, 0, token, reply);
        let key = self.msg.send(to, bytes, delivery, false);
        self.responses.insert(key.0);
        ResponseId(key.0)
    }

    /// Replace CON notification `response`, still awaiting its ACK, with
    /// `reply` (RFC 7641 §4.5.2, [`MessageLayer::replace`]); false if it is
    /// no longer in flight.
    pub fn replace_notification(
        &mut self,
        response: ResponseId,
        token: Token,
        reply: &Reply,
    ) -> bool {
        if !self.responses.contains(&response.0) {
            return false;
        }
        let mut bytes = self.msg.take_buffer();
        encode_response(&mut bytes, MessageType::Con, 0, token, reply);
        self.msg.replace(MessageKey(response.0), bytes)
    }

    // ---- driving --------------------------------------------------------

    /// A datagram arrived.
    pub fn handle_input(&mut self, now: SimTime, input: Datagram<'_>) {
        self.on_datagram(now, input.from, input.data);
    }

    /// A datagram arrived that was addressed to a multicast group this
    /// node belongs to (e.g. All-CoAP-Nodes, RFC 7252 §12.8). A request in
    /// it is reported like any other, marked ([`Endpoint::is_multicast`]);
    /// a CON is dropped (§8.1: multicast requests MUST be NON) and counted
    /// as ignored; a request with an unrecognised critical option gets no
    /// RST (§8.1: a server aware of multicast MUST NOT reset a NON).
    pub fn handle_multicast_input(&mut self, now: SimTime, input: Datagram<'_>) {
        self.rx_multicast = true;
        self.on_datagram(now, input.from, input.data);
        self.rx_multicast = false;
    }

    /// Append the next datagram to `buf` (the driver clears it, or leaves
    /// header room) and describe it; `len` is the number of bytes appended.
    /// A CON's retransmission timer (a NON request's response timeout)
    /// starts here, at its first transmission.
    pub fn poll_transmit(&mut self, now: SimTime, buf: &mut Vec<u8>) -> Option<TransmitInfo> {
        let t = self.msg.poll_transmit(now, buf)?;
        // every tracked message is one of our requests or responses
        let response = t
            .key
            .filter(|k| self.responses.contains(&k.0))
            .map(|k| ResponseId(k.0));
        let request = t
            .key
            .filter(|_| response.is_none())
            .map(|k| RequestHandle(k.0));
        Some(TransmitInfo {
            to: t.to,
            ty: t.ty,
            code: t.code,
            message_id: t.message_id,
            is_retransmission: t.is_retransmission,
            len: t.len,
            request,
            response,
        })
    }

    /// The next event for the application.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// The earliest time `handle_timeout` must be called, if any.
    pub fn poll_timeout(&self) -> Option<SimTime> {
        let own = self.next_own_timer().map(|(t, _)| t);
        match (self.msg.poll_timeout(), own) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Timers due at `now`: the message layer's (retransmit, give up, NON
    /// response timeout) first, then the request layer's (separate-response
    /// wait, unanswered requests).
    pub fn handle_timeout(&mut self, now: SimTime) {
        self.msg.handle_timeout(now);
        while let Some(ev) = self.msg.poll_event() {
            match ev {
                MessageEvent::GaveUp {
                    key, peer, token, ..
                } => {
                    if self.responses.remove(&key.0) {
                        self.stats.separate_give_ups += 1;
                        self.events.push_back(Event::ResponseGaveUp {
                            response: ResponseId(key.0),
                        });
                    } else if let Some(ex) = self.forget_client(peer, token, key) {
                        self.failed_registration(peer, token, &ex);
                        self.stats.give_ups += 1;
                        self.events.push_back(Event::GaveUp {
                            handle: RequestHandle(key.0),
                        });
                    }
                }
                MessageEvent::Expired { key, peer, token } => {
                    // a NON notification of ours is no longer matched
                    if self.responses.remove(&key.0) {
                        self.events.push_back(Event::ResponseExpired {
                            response: ResponseId(key.0),
                        });
                    } else if let Some(ex) = self.forget_client(peer, token, key) {
                        self.failed_registration(peer, token, &ex);
                        self.stats.no_responses += 1;
                        self.events.push_back(Event::NoResponse {
                            handle: RequestHandle(key.0),
                        });
                    }
                }
            }
        }
        while let Some((t, source)) = self.next_own_timer() {
            if t > now {
                break;
            }
            if let Some(arrivals) = self.arrivals.get_mut(source) {
                if let Some((_, id)) = arrivals.pop_front() {
                    self.incoming_due(id);
                }
                continue;
            }
            let Some((t, timer, id)) = self.timers.pop_first() else {
                break;
            };
            debug_assert!(t <= now);
            match timer {
                Timer::Client => {
                    let Some(&(peer, token)) = self.separate.get(&id) else {
                        continue;
                    };
                    if let Some(ex) = self.forget_client(peer, token, MessageKey(id)) {
                        self.failed_registration(peer, token, &ex);
                        self.stats.no_responses += 1;
                        self.events.push_back(Event::NoResponse {
                            handle: RequestHandle(id),
                        });
                    }
                }
                Timer::Incoming => self.incoming_due(id),
                Timer::Multicast => {
                    let token = self
                        .multicast
                        .iter()
                        .find(|(_, m)| m.handle == id)
                        .map(|(t, _)| *t);
                    if let Some(m) = token.and_then(|t| self.multicast.remove(&t)) {
                        self.events.push_back(Event::MulticastEnded {
                            handle: RequestHandle(id),
                            responses: m.responses,
                        });
                    }
                }
            }
        }
    }

    /// The earliest request-layer deadline and where it is: 0 or 1 for the
    /// front of `arrivals[0/1]`, 2 for `timers`.
    fn next_own_timer(&self) -> Option<(SimTime, usize)> {
        let fronts = [
            self.arrivals[0].front().map(|e| (e.0, 0)),
            self.arrivals[1].front().map(|e| (e.0, 1)),
            self.timers.first().map(|e| (e.0, 2)),
        ];
        fronts.into_iter().flatten().min()
    }

    /// A received request's deadline came: an unacknowledged CON is ACKed
    /// (PROCESSING_DELAY passed unanswered); otherwise it is forgotten.
    fn incoming_due(&mut self, id: u64) {
        let Some(p) = self.incoming.get(&id) else {
            return;
        };
        if p.confirmable && !p.acked {
            self.stats.unanswered_acks += 1;
            self.ack_pending(id);
        } else if let Some(p) = self.incoming.remove(&id) {
            self.stats.requests_expired += 1;
            self.msg.give_back(p.raw);
            self.events
                .push_back(Event::RequestExpired { id: IncomingId(id) });
            self.trim_arrivals();
        }
    }

    /// Pop `arrivals` entries of requests no longer waiting for that
    /// deadline (answered, expired, or acknowledged).
    fn trim_arrivals(&mut self) {
        for (class, q) in self.arrivals.iter_mut().enumerate() {
            while let Some(&(t, id)) = q.front() {
                let live = self
                    .incoming
                    .get(&id)
                    .is_some_and(|p| p.deadline == t && (class == 1 || !p.acked));
                if live {
                    break;
                }
                q.pop_front();
            }
        }
    }

    /// Hand an event's buffers back after the application has read it, so
    /// the next events reuse them instead of allocating (optional; dropping
    /// the event is fine too).
    pub fn recycle(&mut self, ev: Event) {
        match ev {
            Event::RequestReceived { path, payload, .. } => {
                if self.spare_strings.len() < SPARE_STRINGS {
                    self.spare_strings.push(path);
                }
                self.msg.give_back(payload);
            }
            Event::ResponseReceived { payload, .. } => self.msg.give_back(payload),
            _ => {}
        }
    }

    // ---- internals ------------------------------------------------------

    /// Tokens from a counter, 2 to 4 bytes (§5.3.1): unique among this
    /// endpoint's outstanding requests until the counter wraps at 2^32.
    fn fresh_token(&mut self) -> Token {
        let n = self.next_token;
        self.next_token = self.next_token.wrapping_add(1);
        let need = 4 - (n.leading_zeros() as usize / 8).min(3);
        let len = need.max(usize::from(self.config().token_length.clamp(1, 8)));
        let mut b = [0u8; 8];
        b[4..].copy_from_slice(&n.to_be_bytes());
        Token::new(&b[8 - len..]).unwrap_or(Token::EMPTY)
    }

    /// Drop our request `key` (to `peer`, with `token`) from the request
    /// layer (the message layer is done with it or told separately).
    fn forget_client(
        &mut self,
        peer: SockAddr,
        token: Token,
        key: MessageKey,
    ) -> Option<ClientExchange> {
        let std::collections::hash_map::Entry::Occupied(entry) =
            self.requests.entry(ExchangeKey(peer, token))
        else {
            return None;
        };
        if entry.get().key != key.0 {
            return None;
        }
        let ex = entry.remove();
        if ex.awaiting_separate {
            self.separate.remove(&key.0);
            self.timers.remove(&(ex.deadline, Timer::Client, key.0));
        }
        Some(ex)
    }

    /// Our request `ex` to `peer` with `token` failed: if it was the first
    /// registration of an observation, the observation is gone too (a
    /// failed re-registration leaves it: the server may still have it).
    fn failed_registration(&mut self, peer: SockAddr, token: Token, ex: &ClientExchange) {
        if !ex.observe {
            return;
        }
        if let std::collections::btree_map::Entry::Occupied(o) =
            self.observations.entry((peer, token))
        {
            if o.get().last.is_none() {
                o.remove();
            }
        }
    }

    /// Send the Empty ACK of pending CON request `id` (if not sent yet); it
    /// then lives until EXCHANGE_LIFETIME after its arrival.
    fn ack_pending(&mut self, id: u64) {
        let life = self.msg.config().exchange_lifetime();
        let Some(p) = self.incoming.get_mut(&id) else {
            return;
        };
        if !p.confirmable || p.acked {
            return;
        }
        p.acked = true;
        let (peer, mid) = (p.peer, p.message_id);
        p.deadline = p.arrived + life;
        self.timers.insert((p.deadline, Timer::Incoming, id));
        self.trim_arrivals();
        self.msg.acknowledge_empty(peer, mid);
    }
}

/// The counter value a token of [`Endpoint::fresh_token`] encodes.
fn token_number(t: Token) -> u32 {
    t.as_slice()
        .iter()
        .fold(0u32, |n, &b| n.wrapping_shl(8) | u32::from(b))
}

impl SansIo for Endpoint {
    type Input<'a> = Datagram<'a>;
    type Transmit = TransmitInfo;
    type Event = Event;

    fn handle_input(&mut self, now: SimTime, input: Datagram<'_>) {
        Endpoint::handle_input(self, now, input);
    }
    fn poll_transmit(&mut self, now: SimTime, buf: &mut Vec<u8>) -> Option<TransmitInfo> {
        Endpoint::poll_transmit(self, now, buf)
    }
    fn poll_event(&mut self) -> Option<Event> {
        Endpoint::poll_event(self)
    }
    fn poll_timeout(&self) -> Option<SimTime> {
        Endpoint::poll_timeout(self)
    }
    fn handle_timeout(&mut self, now: SimTime) {
        Endpoint::handle_timeout(self, now);
    }
}
