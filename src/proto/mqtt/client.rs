//! The sans-IO MQTT 3.1.1 client: one per connection to one broker.
//!
//! Driver shape (DESIGN.md convention 1). Application commands:
//! [`Client::connect`], [`Client::publish`], [`Client::subscribe`],
//! [`Client::unsubscribe`], [`Client::disconnect`]. Transport inputs:
//! [`Client::handle_input`] with a [`crate::sansio::StreamInput`]
//! (connected, bytes, closed); timers: [`Client::handle_timeout`]. After
//! every input the driver polls, in this order:
//! 1. [`Client::poll_transmit`] until `None` (one packet per call);
//! 2. [`Client::poll_event`] until `None`. `ClientEvent::OpenTransport` asks
//!    for a TCP connection to the broker (answer with `transport_connected`,
//!    or `transport_closed` if it fails); `ClientEvent::CloseTransport` asks
//!    to close it after sending what step 1 returned. From `CloseTransport`
//!    on, the client treats that transport as gone: do not report its close
//!    with `transport_closed` (that call is for losses the driver detects);
//! 3. [`Client::poll_timeout`], calling `handle_timeout` when it is due.
//!
//! Randomness: the reconnect jitter is drawn from the [`SimRng`] stream the
//! client is constructed with (as the CoAP endpoint does), so a run is
//! reproducible from its seed and the client needs no RNG argument per call.
//!
//! Reliability: unacknowledged QoS 1/2 publishes and PUBRELs are resent on
//! reconnection with their original packet identifiers and DUP = 1 (§4.4),
//! whatever the CleanSession flag; exactly-once across a reconnection needs
//! `clean_session = false` so the broker keeps its half of the state. A
//! SUBSCRIBE or UNSUBSCRIBE not yet acknowledged is also sent again. After
//! `Connected { session_present: false }` the application must subscribe
//! again if it wants its subscriptions back.
//!
//! Per-message sessions (connect, publish, disconnect) are a driver pattern:
//! `connect`, `publish`, wait until [`Client::is_idle`], `disconnect`.

use std::collections::VecDeque;
use std::sync::Arc;

use crate::sim::{SimDuration, SimRng, SimTime};

use super::codec::{publish_len, EncodeError, MAX_PACKET_SIZE};
use super::config::ClientConfig;
use super::events::{
    ClientError, ClientEvent, ClientStats, ClientTransmit, LostReason, MessageHandle, RequestHandle,
};
use super::packet::{
    Ack, Connect, Packet, PacketId, PacketType, ProtocolLevel, Publish, QoS, QosPid, Subscribe,
    Unsubscribe,
};
use super::session::OutState;
use super::topic::{TopicFilter, TopicName};

mod receive;

/// Where the client is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClientState {
    /// Not connected, not trying to.
    Idle,
    /// Waiting to reconnect (`ConnectionLost::reconnect_at`).
    Backoff,
    /// Asked for a transport (`OpenTransport`).
    WaitTransport,
    /// CONNECT sent, waiting for CONNACK.
    AwaitConnAck,
    Connected,
}

#[derive(Clone, Copy, Debug)]
enum Timer {
    ConnAck = 0,
    PingResp = 1,
    KeepAlive = 2,
    Reconnect = 3,
    Retry = 4,
}
const TIMERS: usize = 5;

#[derive(Debug)]
struct InFlight {
    handle: MessageHandle,
    pid: PacketId,
    publish: Publish,
    state: OutState,
    sent_at: SimTime,
}

#[derive(Debug)]
struct Queued {
    handle: MessageHandle,
    topic: TopicName,
    payload: Arc<[u8]>,
    qos: QoS,
    retain: bool,
}

#[derive(Debug)]
struct Out {
    packet: Packet,
    message: Option<MessageHandle>,
    retransmission: bool,
}

/// The client.
#[derive(Debug)]
pub struct Client {
    config: ClientConfig,
    rng: SimRng,
    state: ClientState,
    timers: [Option<SimTime>; TIMERS],
    outq: VecDeque<Out>,
    events: VecDeque<ClientEvent>,
    inbuf: Vec<u8>,
    inflight: Vec<InFlight>,
    queue: VecDeque<Queued>,
    /// QoS 2 packet ids received and not yet released (PUBREL).
    incoming_qos2: Vec<PacketId>,
    /// SUBSCRIBE/UNSUBSCRIBE not yet acknowledged.
    requests: Vec<(PacketId, RequestHandle, Packet)>,
    last_pid: u16,
    next_handle: u64,
    attempt: u32,
    ping_outstanding: bool,
    stats: ClientStats,
}

impl Client {
    /// A client in state `Idle`; `rng` is its own stream (reconnect jitter).
    pub fn new(config: ClientConfig, rng: SimRng) -> Self {
        Client {
            config,
            rng,
            state: ClientState::Idle,
            timers: [None; TIMERS],
            outq: VecDeque::new(),
            events: VecDeque::new(),
            inbuf: Vec::new(),
            inflight: Vec::new(),
            queue: VecDeque::new(),
            incoming_qos2: Vec::new(),
            requests: Vec::new(),
            last_pid: 0,
            next_handle: 0,
            attempt: 0,
            ping_outstanding: false,
            stats: ClientStats::default(),
        }
    }

    pub fn config(&self) -> &ClientConfig {
        &self.config
    }
    pub fn stats(&self) -> &ClientStats {
        &self.stats
    }
    pub fn state(&self) -> ClientState {
        self.state
    }
    pub fn is_connected(&self) -> bool {
        self.state == ClientState::Connected
    }
    /// QoS 1/2 publishes sent and not yet completed.
    pub fn inflight_len(&self) -> usize {
        self.inflight.len()
    }
    /// Publishes waiting to be sent.
    pub fn queued_len(&self) -> usize {
        self.queue.len()
    }
    /// Payloads of the publishes in flight, then of those queued.
    pub fn carried_payloads(&self) -> impl Iterator<Item = &Arc<[u8]>> {
        let inflight = self.inflight.iter().map(|o| &o.publish.payload);
        inflight.chain(self.queue.iter().map(|q| &q.payload))
    }
    /// Nothing to send and nothing unacknowledged (per-message sessions
    /// disconnect when this turns true).
    pub fn is_idle(&self) -> bool {
        self.inflight.is_empty()
            && self.queue.is_empty()
            && self.requests.is_empty()
            && self.outq.is_empty()
    }

    fn set(&mut self, t: Timer, at: Option<SimTime>) {
        if let Some(x) = self.timers.get_mut(t as usize) {
            *x = at;
        }
    }
    fn due(&self, t: Timer, now: SimTime) -> bool {
        self.timers
            .get(t as usize)
            .copied()
            .flatten()
            .is_some_and(|at| at <= now)
    }

    fn alloc_pid(&mut self) -> PacketId {
        loop {
            self.last_pid = self.last_pid.wrapping_add(1);
            if let Some(p) = PacketId::new(self.last_pid) {
                if !self.inflight.iter().any(|o| o.pid == p)
                    && !self.requests.iter().any(|r| r.0 == p)
                {
                    return p;
                }
            }
        }
    }

    /// Start connecting (from `Idle`, or at once from `Backoff`): emits
    /// `OpenTransport`. Ignored in other states.
    pub fn connect(&mut self) {
        if matches!(self.state, ClientState::Idle | ClientState::Backoff) {
            self.attempt = 0;
            self.set(Timer::Reconnect, None);
            self.state = ClientState::WaitTransport;
            self.events.push_back(ClientEvent::OpenTransport);
        }
    }

    /// The transport asked for with `OpenTransport` is up: send CONNECT.
    /// The transport reported something: it is up, bytes arrived, or it is
    /// gone.
    pub fn handle_input(&mut self, now: SimTime, input: crate::proto::StreamInput<'_>) {
        match input {
            crate::proto::StreamInput::Connected => self.transport_connected(now),
            crate::proto::StreamInput::Bytes(b) => self.receive(now, b),
            crate::proto::StreamInput::Closed => self.transport_closed(now),
        }
    }

    fn transport_connected(&mut self, now: SimTime) {
        if self.state != ClientState::WaitTransport {
            return;
        }
        self.inbuf.clear();
        let c = &self.config;
        let connect = Connect {
            protocol: ProtocolLevel::V311,
            clean_session: c.clean_session,
            keep_alive: c.keep_alive,
            client_id: c.client_id.clone(),
            will: c.will.clone(),
            username: c.username.clone(),
            password: c.password.clone(),
        };
        self.outq.push_back(Out {
            packet: Packet::Connect(connect),
            message: None,
            retransmission: false,
        });
        self.state = ClientState::AwaitConnAck;
        self.set(Timer::ConnAck, Some(now + self.config.connect_timeout));
    }

    /// The transport failed or the broker closed it (or `OpenTransport`
    /// could not connect).
    fn transport_closed(&mut self, now: SimTime) {
        if matches!(
            self.state,
            ClientState::WaitTransport | ClientState::AwaitConnAck | ClientState::Connected
        ) {
            self.lose(now, LostReason::TransportClosed, false);
        }
    }

    /// Send DISCONNECT (when connected) and ask for the transport to be
    /// closed; no reconnection follows. Unacknowledged messages stay for the
    /// next `connect` (resent if the session persists).
    pub fn disconnect(&mut self) {
        let open = match self.state {
            ClientState::Connected => {
                self.push(Packet::Disconnect, None, false);
                true
            }
            ClientState::AwaitConnAck => true,
            ClientState::WaitTransport => true,
            ClientState::Backoff | ClientState::Idle => false,
        };
        if open {
            self.events.push_back(ClientEvent::CloseTransport);
        }
        if self.state != ClientState::Idle {
            self.events.push_back(ClientEvent::Disconnected);
        }
        self.reset_connection();
        self.state = ClientState::Idle;
    }

    fn push(&mut self, packet: Packet, message: Option<MessageHandle>, retransmission: bool) {
        self.outq.push_back(Out {
            packet,
            message,
            retransmission,
        });
    }

    /// Forget per-connection state (timers, input bytes, pending pings).
    /// Queued transmissions stay: a final DISCONNECT may be among them.
    fn reset_connection(&mut self) {
        self.inbuf.clear();
        self.ping_outstanding = false;
        self.timers = [None; TIMERS];
    }

    /// The connection is lost: report it, schedule reconnection, and (when
    /// we decided it) ask the driver to close the transport.
    fn lose(&mut self, now: SimTime, reason: LostReason, close: bool) {
        self.stats.connection_losses += 1;
        self.outq.clear();
        self.reset_connection();
        if close {
            self.events.push_back(ClientEvent::CloseTransport);
        }
        let reconnect_at = self.schedule_reconnect(now);
        self.events.push_back(ClientEvent::ConnectionLost {
            reason,
            reconnect_at,
        });
    }

    fn schedule_reconnect(&mut self, now: SimTime) -> Option<SimTime> {
        let Some(r) = self.config.reconnect else {
            self.state = ClientState::Idle;
            return None;
        };
        let base = r
            .initial_delay
            .saturating_mul(1u64 << self.attempt.min(32))
            .min(r.max_delay);
        self.attempt = self.attempt.saturating_add(1);
        let jitter = r.jitter.clamp(0.0, 1.0);
        let cut = (base.as_nanos() as f64 * jitter * self.rng.uniform()) as u64;
        let at = now + SimDuration::from_nanos(base.as_nanos().saturating_sub(cut));
        self.state = ClientState::Backoff;
        self.set(Timer::Reconnect, Some(at));
        Some(at)
    }

    /// Publish `payload` on `topic`. Sent now when connected and the
    /// in-flight window allows, else queued (sent after connecting). The
    /// handle names this message in `PublishAcked` and `ClientTransmit`.
    pub fn publish(
        &mut self,
        now: SimTime,
        topic: TopicName,
        payload: impl Into<Arc<[u8]>>,
        qos: QoS,
        retain: bool,
    ) -> Result<MessageHandle, ClientError> {
        let payload = payload.into();
        if publish_len(topic.as_str(), qos, payload.len()) > MAX_PACKET_SIZE {
            return Err(ClientError::Encode(EncodeError::TooLarge(payload.len())));
        }
        let window = self.config.max_inflight.max(1);
        let send_now = self.state == ClientState::Connected
            && self.queue.is_empty()
            && (qos == QoS::AtMostOnce || self.inflight.len() < window);
        if !send_now && self.queue.len() >= self.config.max_queued {
            return Err(ClientError::QueueFull {
                limit: self.config.max_queued,
            });
        }
        self.next_handle += 1;
        let handle = MessageHandle(self.next_handle);
        let q = Queued {
            handle,
            topic,
            payload,
            qos,
            retain,
        };
        if send_now {
            self.send_new(now, q);
        } else {
            self.queue.push_back(q);
        }
        Ok(handle)
    }

    fn send_new(&mut self, now: SimTime, q: Queued) {
        let qos_pid = match q.qos {
            QoS::AtMostOnce => QosPid::AtMostOnce,
            qos => QosPid::new(qos, self.alloc_pid()),
        };
        let publish = Publish {
            dup: false,
            qos_pid,
            retain: q.retain,
            topic: q.topic,
            payload: q.payload,
        };
        if let Some(pid) = qos_pid.pid() {
            self.inflight.push(InFlight {
                handle: q.handle,
                pid,
                publish: publish.clone(),
                state: if q.qos == QoS::AtLeastOnce {
                    OutState::AwaitAck
                } else {
                    OutState::AwaitRec
                },
                sent_at: now,
            });
            self.arm_retry(now);
        }
        self.push(Packet::Publish(publish), Some(q.handle), false);
    }

    fn arm_retry(&mut self, now: SimTime) {
        if let Some(r) = self.config.legacy_retry {
            let at = now + r;
            let cur = self.timers.get(Timer::Retry as usize).copied().flatten();
            self.set(Timer::Retry, Some(cur.map_or(at, |c| c.min(at))));
        }
    }

    fn drain(&mut self, now: SimTime) {
        let window = self.config.max_inflight.max(1);
        while self.state == ClientState::Connected {
            let Some(front) = self.queue.front() else {
                break;
            };
            if front.qos != QoS::AtMostOnce && self.inflight.len() >= window {
                break;
            }
            let Some(q) = self.queue.pop_front() else {
                break;
            };
            self.send_new(now, q);
        }
    }

    /// Subscribe to `filters` (each with its requested QoS).
    pub fn subscribe(
        &mut self,
        _now: SimTime,
        filters: Vec<(TopicFilter, QoS)>,
    ) -> Result<RequestHandle, ClientError> {
        if filters.is_empty() {
            return Err(ClientError::NoFilters);
        }
        let pid = self.alloc_pid();
        Ok(self.request(Packet::Subscribe(Subscribe { pid, filters }), pid))
    }

    /// Unsubscribe from `filters`.
    pub fn unsubscribe(
        &mut self,
        _now: SimTime,
        filters: Vec<TopicFilter>,
    ) -> Result<RequestHandle, ClientError> {
        if filters.is_empty() {
            return Err(ClientError::NoFilters);
        }
        let pid = self.alloc_pid();
        Ok(self.request(Packet::Unsubscribe(Unsubscribe { pid, filters }), pid))
    }

    fn request(&mut self, packet: Packet, pid: PacketId) -> RequestHandle {
        self.next_handle += 1;
        let handle = RequestHandle(self.next_handle);
        if self.state == ClientState::Connected {
            self.push(packet.clone(), None, false);
        }
        self.requests.push((pid, handle, packet));
        handle
    }

    /// The earliest time `handle_timeout` is due.
    pub fn poll_timeout(&self) -> Option<SimTime> {
        self.timers.iter().flatten().min().copied()
    }

    /// Fire due timers in a fixed order: CONNACK wait, PINGRESP wait,
    /// keep-alive PINGREQ, reconnection, `legacy_retry`.
    pub fn handle_timeout(&mut self, now: SimTime) {
        if self.due(Timer::ConnAck, now) {
            self.set(Timer::ConnAck, None);
            if self.state == ClientState::AwaitConnAck {
                self.lose(now, LostReason::ConnectTimeout, true);
            }
        }
        if self.due(Timer::PingResp, now) {
            self.set(Timer::PingResp, None);
            if self.state == ClientState::Connected && self.ping_outstanding {
                self.lose(now, LostReason::PingTimeout, true);
            }
        }
        if self.due(Timer::KeepAlive, now) {
            // Re-armed by poll_transmit whenever a packet leaves.
            self.set(Timer::KeepAlive, None);
            if self.state == ClientState::Connected && !self.ping_outstanding {
                // [MQTT-3.1.2-23]: nothing sent for a keep-alive period.
                self.ping_outstanding = true;
                self.stats.pings_sent += 1;
                self.push(Packet::PingReq, None, false);
                self.set(Timer::PingResp, Some(now + self.config.ping_timeout));
            }
        }
        if self.due(Timer::Reconnect, now) {
            self.set(Timer::Reconnect, None);
            if self.state == ClientState::Backoff {
                self.state = ClientState::WaitTransport;
                self.events.push_back(ClientEvent::OpenTransport);
            }
        }
        if self.due(Timer::Retry, now) {
            self.set(Timer::Retry, None);
            if let (Some(r), ClientState::Connected) = (self.config.legacy_retry, self.state) {
                self.legacy_resend(now, r);
            }
        }
    }

    /// `legacy_retry` (not MQTT 3.1.1): resend what waited `r` or longer.
    fn legacy_resend(&mut self, now: SimTime, r: SimDuration) {
        let mut resend = Vec::new();
        for o in self.inflight.iter_mut() {
            if o.sent_at + r > now {
                continue;
            }
            o.sent_at = now;
            resend.push(match o.state {
                OutState::AwaitAck | OutState::AwaitRec => {
                    let mut p = o.publish.clone();
                    p.dup = true;
                    (Packet::Publish(p), o.handle)
                }
                OutState::AwaitComp => (Packet::PubRel(Ack { pid: o.pid }), o.handle),
            });
        }
        for (p, h) in resend {
            self.push(p, Some(h), true);
        }
        if let Some(next) = self.inflight.iter().map(|o| o.sent_at + r).min() {
            self.set(Timer::Retry, Some(next));
        }
    }

    /// The next event.
    pub fn poll_event(&mut self) -> Option<ClientEvent> {
        self.events.pop_front()
    }

    /// Append the next packet to `buf`.
    pub fn poll_transmit(&mut self, now: SimTime, buf: &mut Vec<u8>) -> Option<ClientTransmit> {
        loop {
            let out = self.outq.pop_front()?;
            let start = buf.len();
            let Ok(len) = out.packet.encode(buf) else {
                buf.truncate(start);
                continue; // sizes were checked when queued
            };
            let kind = out.packet.packet_type();
            self.stats.packets_sent += 1;
            self.stats.bytes_sent += len as u64;
            if out.retransmission {
                self.stats.retransmissions += 1;
            } else if kind == PacketType::Publish {
                self.stats.publishes_sent += 1;
            }
            if self.config.keep_alive > 0
                && matches!(
                    self.state,
                    ClientState::Connected | ClientState::AwaitConnAck
                )
            {
                let ka = SimDuration::from_secs(u64::from(self.config.keep_alive));
                self.set(Timer::KeepAlive, Some(now + ka));
            }
            return Some(ClientTransmit {
                kind,
                len,
                message: out.message,
                retransmission: out.retransmission,
            });
        }
    }
}

impl crate::proto::SansIo for Client {
    type Input<'a> = crate::proto::StreamInput<'a>;
    type Transmit = ClientTransmit;
    type Event = ClientEvent;
    fn handle_input(&mut self, now: SimTime, input: Self::Input<'_>) {
        Client::handle_input(self, now, input)
    }
    fn poll_transmit(&mut self, now: SimTime, buf: &mut Vec<u8>) -> Option<ClientTransmit> {
        Client::poll_transmit(self, now, buf)
    }
    fn poll_event(&mut self) -> Option<ClientEvent> {
        Client::poll_event(self)
    }
    fn poll_timeout(&self) -> Option<SimTime> {
        Client::poll_timeout(self)
    }
    fn handle_timeout(&mut self, now: SimTime) {
        Client::handle_timeout(self, now)
    }
}
