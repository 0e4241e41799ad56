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
//!
//! MQTT 5.0 (`ClientConfig::version = V5`): the same state machine speaks
//! 5.0 on the wire, every packet written being exactly what
//! [`Packet5::encode`] writes. CONNECT carries the 5.0 options of
//! [`ClientConfig`]; what the server's CONNACK says is honoured
//! ([`ServerLimits`]): Receive Maximum caps the QoS 1/2 publishes in flight
//! [MQTT-3.3.4-7]; Topic Alias Maximum bounds the aliases the client uses
//! (`ClientConfig::topic_aliases_out`, first come first served); Maximum
//! QoS downgrades publishes above it (counted in
//! `ClientStats::qos_downgraded`); Maximum Packet Size stops a PUBLISH
//! larger than it [MQTT-3.1.2-24] and Retain Available 0 a retained one
//! [MQTT-3.2.2-14] (both `ClientEvent::PublishDropped`); Server Keep Alive
//! replaces `keep_alive`; an Assigned Client Identifier is used in the
//! CONNECTs that follow when `client_id` is empty. A publish's Message
//! Expiry Interval runs from the `publish` call: a message still queued
//! when it runs out is dropped (`PublishDropped { reason: Expired }`,
//! checked whenever the client next tries to send), and one sent after
//! waiting carries the interval less the whole seconds it waited. A
//! failure reason in PUBACK or PUBREC ends that message's flow
//! (`PublishFailed`); 0x10 No matching subscribers is a success. PUBCOMP
//! 0x92 (Packet Identifier not found) also ends the flow as acknowledged:
//! the server had taken the message over with its PUBREC. A PUBREL for an
//! identifier the client does not hold is answered PUBCOMP 0x92. When the
//! server breaks a rule the client sends DISCONNECT with the reason
//! (`LostReason::ClientDisconnect`); a server's DISCONNECT is reported as
//! `LostReason::ServerDisconnect` and followed by the usual reconnection.

use std::collections::VecDeque;
use std::sync::Arc;

use crate::sim::{SimDuration, SimRng, SimTime, TimerSlots};

use super::codec::{publish_len, EncodeError, MAX_PACKET_SIZE};
use super::config::{ClientConfig, MqttVersion};
use super::events::{
    ClientError, ClientEvent, ClientStats, ClientTransmit, DropReason, LostReason, MessageHandle,
    RequestHandle,
};
use super::packet::{
    Ack, Connect, LastWill, Packet, PacketId, PacketType, ProtocolLevel, Publish, QoS, QosPid,
    Subscribe, Unsubscribe,
};
use super::session::OutState;
use super::topic::{TopicFilter, TopicName};
use super::v5::{
    Ack5, Connect5, Packet5, Properties, Publish5, ReasonOnly, SubOptions, Subscribe5,
    Unsubscribe5, Will5,
};

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
    /// 5.0 message properties (no Topic Alias: that is per connection).
    props: Properties,
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
    /// 5.0 message properties.
    props: Properties,
    /// When `publish` was called (Message Expiry Interval runs from here).
    queued_at: SimTime,
}

/// A packet as it goes on the wire: 3.1.1 or 5.0.
#[derive(Clone, Debug)]
enum Wire {
    V3(Packet),
    V5(Box<Packet5>),
}

impl Wire {
    fn v5(p: Packet5) -> Wire {
        Wire::V5(Box::new(p))
    }
    fn encode(&self, buf: &mut Vec<u8>) -> Result<usize, EncodeError> {
        match self {
            Wire::V3(p) => p.encode(buf),
            Wire::V5(p) => p.encode(buf),
        }
    }
    /// The 3.1.1 packet type of the same number (AUTH, which the client
    /// never sends, has none).
    fn kind(&self) -> Option<PacketType> {
        match self {
            Wire::V3(p) => Some(p.packet_type()),
            Wire::V5(p) => PacketType::from_u8(p.type_number()),
        }
    }
}

#[derive(Debug)]
struct Out {
    packet: Wire,
    message: Option<MessageHandle>,
    retransmission: bool,
}

/// What the server's 5.0 CONNACK said about itself (§3.2.2.3), with the
/// specification's value for each property it left out. On 3.1.1, and
/// before the first CONNACK, these are the no-limit defaults.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServerLimits {
    /// Receive Maximum: default 65535.
    pub receive_maximum: u16,
    /// Topic Alias Maximum: aliases the server accepts from us; default 0.
    pub topic_alias_maximum: u16,
    /// Maximum QoS: default 2.
    pub maximum_qos: QoS,
    /// Retain Available: default true.
    pub retain_available: bool,
    /// Maximum Packet Size: default none (the protocol's limit).
    pub maximum_packet_size: Option<u32>,
    /// Server Keep Alive, when the server imposes one.
    pub server_keep_alive: Option<u16>,
    /// Assigned Client Identifier, when the server chose our id.
    pub assigned_client_identifier: Option<String>,
}

impl Default for ServerLimits {
    fn default() -> Self {
        NO_LIMITS.clone()
    }
}

impl ServerLimits {
    /// The limits a CONNACK's properties set.
    pub fn from_connack(p: &Properties) -> ServerLimits {
        ServerLimits {
            // 0 is a Protocol Error the codec refuses; never a window of 0
            receive_maximum: p.receive_maximum.unwrap_or(u16::MAX).max(1),
            topic_alias_maximum: p.topic_alias_maximum.unwrap_or(0),
            maximum_qos: match p.maximum_qos {
                Some(0) => QoS::AtMostOnce,
                Some(1) => QoS::AtLeastOnce,
                _ => QoS::ExactlyOnce,
            },
            retain_available: p.retain_available != Some(0),
            maximum_packet_size: p.maximum_packet_size,
            server_keep_alive: p.server_keep_alive,
            assigned_client_identifier: p.assigned_client_identifier.clone(),
        }
    }
}

/// The client.
#[derive(Debug)]
pub struct Client {
    /// The options, which a world shares between all the clients it builds
    /// from one scenario (issue 22: 240 bytes per client otherwise). Its
    /// `client_id` and `will` are empty: this client's own are below.
    config: Arc<ClientConfig>,
    client_id: Box<str>,
    will: Option<Box<LastWill>>,
    rng: SimRng,
    state: ClientState,
    timers: TimerSlots<TIMERS>,
    /// The queues; `None` while all are empty.
    q: Option<Box<Queues>>,
    last_pid: u16,
    next_handle: u64,
    attempt: u32,
    ping_outstanding: bool,
    stats: ClientStats,
    /// Keep alive in force: `config.keep_alive`, or 5.0 Server Keep Alive.
    keep_alive: u16,
    /// 5.0 state, from the first 5.0 CONNACK on (a 3.1.1 client never
    /// holds it: 120 bytes per client otherwise, issue 22).
    v5: Option<Box<V5State>>,
}

/// What a client holds only while it has something to send, to hear
/// about or to have acknowledged. Boxed and given back once all are
/// empty: inline, their seven headers took 192 bytes of every idle client
/// (issue 22).
#[derive(Debug, Default)]
struct Queues {
    outq: VecDeque<Out>,
    events: VecDeque<ClientEvent>,
    inbuf: Vec<u8>,
    inflight: Vec<InFlight>,
    queue: VecDeque<Queued>,
    /// QoS 2 packet ids received and not yet released (PUBREL).
    incoming_qos2: Vec<PacketId>,
    /// SUBSCRIBE/UNSUBSCRIBE not yet acknowledged.
    requests: Vec<(PacketId, RequestHandle, Wire)>,
}

impl Queues {
    fn is_empty(&self) -> bool {
        self.outq.is_empty()
            && self.events.is_empty()
            && self.inbuf.is_empty()
            && self.inflight.is_empty()
            && self.queue.is_empty()
            && self.incoming_qos2.is_empty()
            && self.requests.is_empty()
    }
}

/// The queues of a client that has none.
static NO_QUEUES: Queues = Queues {
    outq: VecDeque::new(),
    events: VecDeque::new(),
    inbuf: Vec::new(),
    inflight: Vec::new(),
    queue: VecDeque::new(),
    incoming_qos2: Vec::new(),
    requests: Vec::new(),
};

/// A client's queues to read (empty ones when it has none).
fn qr(q: &Option<Box<Queues>>) -> &Queues {
    q.as_deref().unwrap_or(&NO_QUEUES)
}

/// A client's queues to change, created on first use.
fn qm(q: &mut Option<Box<Queues>>) -> &mut Queues {
    q.get_or_insert_with(Box::default)
}

/// What a 5.0 client learns from its CONNACKs and keeps per connection.
#[derive(Debug, Default)]
struct V5State {
    /// What the last CONNACK said.
    server: ServerLimits,
    /// Topics given an alias on this connection; alias = index + 1.
    alias_out: Vec<TopicName>,
    /// The server's aliases on this connection; alias = index + 1.
    alias_in: Vec<Option<TopicName>>,
    /// The Assigned Client Identifier of an earlier CONNACK.
    assigned_id: Option<String>,
}

/// The limits in force before any 5.0 CONNACK (and always on 3.1.1).
static NO_LIMITS: ServerLimits = ServerLimits {
    receive_maximum: u16::MAX,
    topic_alias_maximum: 0,
    maximum_qos: QoS::ExactlyOnce,
    retain_available: true,
    maximum_packet_size: None,
    server_keep_alive: None,
    assigned_client_identifier: None,
};

impl Client {
    /// A client in state `Idle`; `rng` is its own stream (reconnect jitter).
    pub fn new(mut config: ClientConfig, rng: SimRng) -> Self {
        let client_id = std::mem::take(&mut config.client_id).into_boxed_str();
        let will = config.will.take();
        Client::with_shared(Arc::new(config), client_id, will, rng)
    }

    /// A client whose options `config` are shared (one allocation for many
    /// clients), with its own identifier and will; `config.client_id` and
    /// `config.will` are not used.
    pub fn with_shared(
        config: Arc<ClientConfig>,
        client_id: Box<str>,
        will: Option<LastWill>,
        rng: SimRng,
    ) -> Self {
        Client {
            client_id,
            will: will.map(Box::new),
            rng,
            state: ClientState::Idle,
            timers: TimerSlots::NONE,
            q: None,
            last_pid: 0,
            next_handle: 0,
            attempt: 0,
            ping_outstanding: false,
            stats: ClientStats::default(),
            keep_alive: config.keep_alive,
            v5: None,
            config,
        }
    }

    /// An idle client keeps no queue storage (issue 22): the box goes
    /// when every queue is empty, else each empty queue's storage.
    fn shed(&mut self) {
        let Some(q) = self.q.as_mut() else {
            return;
        };
        if q.is_empty() {
            self.q = None;
            return;
        }
        crate::sim::shed::shed_deque(&mut q.outq);
        crate::sim::shed::shed_deque(&mut q.events);
        crate::sim::shed::shed_vec(&mut q.inflight);
        crate::sim::shed::shed_deque(&mut q.queue);
        crate::sim::shed::shed_vec(&mut q.inbuf);
    }

    /// Keep the unread bytes of a receive for the next one.
    fn keep_inbuf(&mut self, buf: Vec<u8>) {
        match self.q.as_mut() {
            Some(q) => q.inbuf = buf,
            None if buf.is_empty() => {}
            None => qm(&mut self.q).inbuf = buf,
        }
    }

    /// The 5.0 state, created on first use.
    fn v5_state(&mut self) -> &mut V5State {
        self.v5.get_or_insert_with(Box::default)
    }

    fn is_v5(&self) -> bool {
        self.config.version == MqttVersion::V5
    }

    /// 5.0: what the last CONNACK said (defaults before it and on 3.1.1).
    pub fn server_limits(&self) -> &ServerLimits {
        self.v5.as_deref().map_or(&NO_LIMITS, |v| &v.server)
    }

    /// The keep alive in force, in seconds: `ClientConfig::keep_alive`, or
    /// the 5.0 Server Keep Alive of the last CONNACK.
    pub fn keep_alive(&self) -> u16 {
        self.keep_alive
    }

    /// 5.0: the client identifier the server assigned (kept for the
    /// CONNECTs that follow).
    pub fn assigned_client_id(&self) -> Option<&str> {
        self.v5.as_deref().and_then(|v| v.assigned_id.as_deref())
    }

    /// QoS 1/2 publishes allowed in flight: `max_inflight`, on 5.0 also at
    /// most the server's Receive Maximum [MQTT-3.3.4-7].
    fn window(&self) -> usize {
        let w = self.config.max_inflight.max(1);
        if self.is_v5() {
            w.min(usize::from(self.server_limits().receive_maximum))
                .max(1)
        } else {
            w
        }
    }

    /// The options this client was built with, shared with other clients:
    /// its identifier and will are [`Client::client_id`] and
    /// [`Client::will`] (the shared copy's are empty).
    pub fn config(&self) -> &ClientConfig {
        &self.config
    }

    /// The Client Identifier this client sends in CONNECT (empty: the
    /// server assigns one, 5.0, or refuses, 3.1.1).
    pub fn client_id(&self) -> &str {
        &self.client_id
    }

    /// The Will this client registers in CONNECT.
    pub fn will(&self) -> Option<&LastWill> {
        self.will.as_deref()
    }

    /// A new client in state `Idle` with the same options, identifier and
    /// will, drawing from `rng` (a restarted device: everything it held is
    /// gone).
    pub fn restarted(&self, rng: SimRng) -> Client {
        Client::with_shared(
            self.config.clone(),
            self.client_id.clone(),
            self.will.as_deref().cloned(),
            rng,
        )
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
        qr(&self.q).inflight.len()
    }
    /// Publishes waiting to be sent.
    pub fn queued_len(&self) -> usize {
        qr(&self.q).queue.len()
    }
    /// Payloads of the publishes in flight, then of those queued.
    pub fn carried_payloads(&self) -> impl Iterator<Item = &Arc<[u8]>> {
        let inflight = qr(&self.q).inflight.iter().map(|o| &o.publish.payload);
        inflight.chain(qr(&self.q).queue.iter().map(|q| &q.payload))
    }
    /// Nothing to send and nothing unacknowledged (per-message sessions
    /// disconnect when this turns true).
    pub fn is_idle(&self) -> bool {
        qr(&self.q).inflight.is_empty()
            && qr(&self.q).queue.is_empty()
            && qr(&self.q).requests.is_empty()
            && qr(&self.q).outq.is_empty()
    }

    fn set(&mut self, t: Timer, at: Option<SimTime>) {
        self.timers.set(t as usize, at);
    }
    fn due(&self, t: Timer, now: SimTime) -> bool {
        self.timers.get(t as usize).is_some_and(|at| at <= now)
    }

    fn alloc_pid(&mut self) -> PacketId {
        loop {
            self.last_pid = self.last_pid.wrapping_add(1);
            if let Some(p) = PacketId::new(self.last_pid) {
                if !qr(&self.q).inflight.iter().any(|o| o.pid == p)
                    && !qr(&self.q).requests.iter().any(|r| r.0 == p)
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
            qm(&mut self.q).events.push_back(ClientEvent::OpenTransport);
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
        qm(&mut self.q).inbuf.clear();
        self.keep_alive = self.config.keep_alive;
        let c = &self.config;
        let packet = if self.is_v5() {
            Wire::v5(Packet5::Connect(self.connect5()))
        } else {
            Wire::V3(Packet::Connect(Connect {
                protocol: ProtocolLevel::V311,
                clean_session: c.clean_session,
                keep_alive: c.keep_alive,
                client_id: self.client_id.to_string(),
                will: self.will.as_deref().cloned(),
                username: c.username.clone(),
                password: c.password.clone(),
            }))
        };
        qm(&mut self.q).outq.push_back(Out {
            packet,
            message: None,
            retransmission: false,
        });
        self.state = ClientState::AwaitConnAck;
        self.set(Timer::ConnAck, Some(now + self.config.connect_timeout));
    }

    /// The 5.0 CONNECT (§3.1): Clean Start is `clean_session`; the
    /// properties are those of `ClientConfig` that differ from the
    /// protocol's defaults.
    fn connect5(&self) -> Connect5 {
        let c = &self.config;
        let mut props = Properties::default();
        if c.session_expiry_interval > 0 {
            props.session_expiry_interval = Some(c.session_expiry_interval);
        }
        if c.receive_maximum != u16::MAX {
            // 0 is a Protocol Error (§3.1.2.11.3): the smallest window is 1
            props.receive_maximum = Some(c.receive_maximum.max(1));
        }
        if c.max_packet_size < MAX_PACKET_SIZE {
            let m = u32::try_from(c.max_packet_size).unwrap_or(u32::MAX);
            props.maximum_packet_size = Some(m.max(1));
        }
        if c.topic_alias_maximum > 0 {
            props.topic_alias_maximum = Some(c.topic_alias_maximum);
        }
        if c.request_response_information {
            props.request_response_information = Some(1);
        }
        props.user_properties = c.connect_user_properties.clone();
        let client_id = match (self.client_id.is_empty(), self.assigned_client_id()) {
            (true, Some(id)) => id.to_string(),
            _ => self.client_id.to_string(),
        };
        Connect5 {
            clean_start: c.clean_session,
            keep_alive: c.keep_alive,
            props,
            client_id,
            will: self.will.as_deref().map(|w| Will5 {
                props: Properties::default(),
                topic: w.topic.clone(),
                message: w.message.clone(),
                qos: w.qos,
                retain: w.retain,
            }),
            username: c.username.clone(),
            password: c.password.clone(),
        }
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
        self.disconnect_with(ReasonOnly::default());
    }

    /// 5.0 [`Client::disconnect`] whose DISCONNECT (reason 0) sets the
    /// Session Expiry Interval to `session_expiry` (e.g. 0 to end a
    /// persistent session now). Refused when CONNECT sent 0 and this is
    /// not 0 [MQTT-3.14.2-2].
    pub fn disconnect5(&mut self, session_expiry: Option<u32>) -> Result<(), ClientError> {
        if !self.is_v5() {
            return Err(ClientError::Needs5("DISCONNECT with a session expiry"));
        }
        if self.config.session_expiry_interval == 0 && session_expiry.is_some_and(|s| s > 0) {
            return Err(ClientError::SessionExpiryOnDisconnect);
        }
        let mut d = ReasonOnly::default();
        d.props.session_expiry_interval = session_expiry;
        self.disconnect_with(d);
        Ok(())
    }

    fn disconnect_with(&mut self, d: ReasonOnly) {
        let open = match self.state {
            ClientState::Connected => {
                let p = if self.is_v5() {
                    Wire::v5(Packet5::Disconnect(d))
                } else {
                    Wire::V3(Packet::Disconnect)
                };
                self.push_wire(p, None, false);
                true
            }
            ClientState::AwaitConnAck => true,
            ClientState::WaitTransport => true,
            ClientState::Backoff | ClientState::Idle => false,
        };
        if open {
            qm(&mut self.q)
                .events
                .push_back(ClientEvent::CloseTransport);
        }
        if self.state != ClientState::Idle {
            qm(&mut self.q).events.push_back(ClientEvent::Disconnected);
        }
        self.reset_connection();
        self.state = ClientState::Idle;
    }

    /// Queue a packet other than CONNECT and PUBLISH; on 5.0 as its 5.0
    /// form (acks with reason 0, DISCONNECT 0, SUBSCRIBE with options of
    /// just the QoS).
    fn push(&mut self, packet: Packet, message: Option<MessageHandle>, retransmission: bool) {
        let wire = if self.is_v5() {
            match to5(packet) {
                Some(p) => Wire::v5(p),
                None => return,
            }
        } else {
            Wire::V3(packet)
        };
        self.push_wire(wire, message, retransmission);
    }

    fn push_wire(&mut self, packet: Wire, message: Option<MessageHandle>, retransmission: bool) {
        qm(&mut self.q).outq.push_back(Out {
            packet,
            message,
            retransmission,
        });
    }

    /// Forget per-connection state (timers, input bytes, pending pings).
    /// Queued transmissions stay: a final DISCONNECT may be among them.
    fn reset_connection(&mut self) {
        qm(&mut self.q).inbuf.clear();
        self.ping_outstanding = false;
        self.timers.clear();
    }

    /// The connection is lost: report it, schedule reconnection, and (when
    /// we decided it) ask the driver to close the transport.
    fn lose(&mut self, now: SimTime, reason: LostReason, close: bool) {
        self.lose_sending(now, reason, close, None);
    }

    /// [`Client::lose`] with a last packet (a 5.0 DISCONNECT) sent before
    /// the close.
    fn lose_sending(&mut self, now: SimTime, reason: LostReason, close: bool, last: Option<Wire>) {
        self.stats.connection_losses += 1;
        qm(&mut self.q).outq.clear();
        if let Some(p) = last {
            self.push_wire(p, None, false);
        }
        self.reset_connection();
        if close {
            qm(&mut self.q)
                .events
                .push_back(ClientEvent::CloseTransport);
        }
        let reconnect_at = self.schedule_reconnect(now);
        qm(&mut self.q)
            .events
            .push_back(ClientEvent::ConnectionLost {
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
        if self.is_v5() {
            return self.publish5(now, topic, payload, qos, retain, Properties::default());
        }
        if publish_len(topic.as_str(), qos, payload.len()) > MAX_PACKET_SIZE {
            return Err(ClientError::Encode(EncodeError::TooLarge(payload.len())));
        }
        self.enqueue(now, topic, payload, qos, retain, Properties::default())
    }

    /// 5.0 [`Client::publish`] with message properties: Payload Format
    /// Indicator (0 or 1), Message Expiry Interval, Content Type, Response
    /// Topic (a topic name without wildcards), Correlation Data and User
    /// Properties; any other property is refused
    /// (`ClientError::PropertyNotAllowed`; the Topic Alias is the
    /// client's, see `ClientConfig::topic_aliases_out`).
    pub fn publish5(
        &mut self,
        now: SimTime,
        topic: TopicName,
        payload: impl Into<Arc<[u8]>>,
        qos: QoS,
        retain: bool,
        props: Properties,
    ) -> Result<MessageHandle, ClientError> {
        if !self.is_v5() {
            return Err(ClientError::Needs5("a PUBLISH with properties"));
        }
        let payload = payload.into();
        check_publish_props(&props)?;
        let probe = Packet5::Publish(Publish5 {
            dup: false,
            qos_pid: QosPid::new(qos, PacketId(std::num::NonZeroU16::MIN)),
            retain,
            topic: Some(topic.clone()),
            props: props.clone(),
            payload: payload.clone(),
        });
        probe.encoded_len()?;
        self.expire_queue(now);
        self.enqueue(now, topic, payload, qos, retain, props)
    }

    fn enqueue(
        &mut self,
        now: SimTime,
        topic: TopicName,
        payload: Arc<[u8]>,
        qos: QoS,
        retain: bool,
        props: Properties,
    ) -> Result<MessageHandle, ClientError> {
        let window = self.window();
        let send_now = self.state == ClientState::Connected
            && qr(&self.q).queue.is_empty()
            && (qos == QoS::AtMostOnce || qr(&self.q).inflight.len() < window);
        if !send_now && qr(&self.q).queue.len() >= self.config.max_queued {
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
            props,
            queued_at: now,
        };
        if send_now {
            self.send_new(now, q);
        } else {
            qm(&mut self.q).queue.push_back(q);
        }
        Ok(handle)
    }

    fn dropped(&mut self, handle: MessageHandle, reason: DropReason) {
        match reason {
            DropReason::Expired => self.stats.messages_expired += 1,
            DropReason::TooLarge { .. } => self.stats.publishes_too_large += 1,
            DropReason::RetainNotAvailable => {}
        }
        qm(&mut self.q)
            .events
            .push_back(ClientEvent::PublishDropped { handle, reason });
    }

    /// 5.0: drop the queued messages whose Message Expiry Interval ran out.
    fn expire_queue(&mut self, now: SimTime) {
        if !self.is_v5() {
            return;
        }
        let mut kept = VecDeque::with_capacity(qr(&self.q).queue.len());
        for q in std::mem::take(&mut qm(&mut self.q).queue) {
            if remaining_expiry(&q, now) == Some(None) {
                self.dropped(q.handle, DropReason::Expired);
            } else {
                kept.push_back(q);
            }
        }
        qm(&mut self.q).queue = kept;
    }

    fn send_new(&mut self, now: SimTime, q: Queued) {
        let mut props = q.props;
        let mut qos = q.qos;
        if self.is_v5() {
            match remaining_expiry_of(props.message_expiry_interval, q.queued_at, now) {
                Some(None) => return self.dropped(q.handle, DropReason::Expired),
                Some(Some(left)) => props.message_expiry_interval = Some(left),
                None => {}
            }
            if q.retain && !self.server_limits().retain_available {
                return self.dropped(q.handle, DropReason::RetainNotAvailable);
            }
            let max_qos = self.server_limits().maximum_qos;
            if qos > max_qos {
                qos = max_qos;
                self.stats.qos_downgraded += 1;
            }
        }
        let qos_pid = match qos {
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
            qm(&mut self.q).inflight.push(InFlight {
                handle: q.handle,
                pid,
                publish: publish.clone(),
                props: props.clone(),
                state: if qos == QoS::AtLeastOnce {
                    OutState::AwaitAck
                } else {
                    OutState::AwaitRec
                },
                sent_at: now,
            });
            self.arm_retry(now);
        }
        self.push_publish(publish, &props, q.handle, false);
    }

    /// Queue a PUBLISH (first or again). On 5.0 with the Topic Alias
    /// policy applied; one larger than the server's Maximum Packet Size is
    /// not sent and its flow ends (`PublishDropped`).
    fn push_publish(
        &mut self,
        p: Publish,
        props: &Properties,
        handle: MessageHandle,
        retransmission: bool,
    ) {
        if !self.is_v5() {
            return self.push(Packet::Publish(p), Some(handle), retransmission);
        }
        let limit = usize::from(
            self.config
                .topic_aliases_out
                .min(self.server_limits().topic_alias_maximum),
        );
        let alias_out = self.v5.as_deref().map_or(&[][..], |v| &v.alias_out[..]);
        let known = alias_out.iter().position(|t| *t == p.topic);
        let (alias, new) = match known {
            Some(i) => (u16::try_from(i + 1).ok(), false),
            None if alias_out.len() < limit => (u16::try_from(alias_out.len() + 1).ok(), true),
            None => (None, false),
        };
        let mut props = props.clone();
        props.topic_alias = alias;
        let topic_len = p.topic.as_str().len();
        let by_alias = alias.is_some() && !new;
        let packet = Packet5::Publish(Publish5 {
            dup: p.dup,
            qos_pid: p.qos_pid,
            retain: p.retain,
            topic: (!by_alias).then(|| p.topic.clone()),
            props,
            payload: p.payload,
        });
        let len = packet.encoded_len().unwrap_or(usize::MAX);
        if let Some(max) = self.server_limits().maximum_packet_size {
            if len > max as usize {
                qm(&mut self.q).inflight.retain(|o| o.handle != handle);
                return self.dropped(handle, DropReason::TooLarge { len, limit: max });
            }
        }
        if new {
            self.v5_state().alias_out.push(p.topic);
        }
        if let Packet5::Publish(Publish5 { topic: None, .. }) = packet {
            self.stats.topic_alias_hits += 1;
            self.stats.topic_alias_bytes_saved += topic_len as u64;
        }
        self.push_wire(Wire::v5(packet), Some(handle), retransmission);
    }

    fn arm_retry(&mut self, now: SimTime) {
        if let Some(r) = self.config.legacy_retry {
            let at = now + r;
            let cur = self.timers.get(Timer::Retry as usize);
            self.set(Timer::Retry, Some(cur.map_or(at, |c| c.min(at))));
        }
    }

    fn drain(&mut self, now: SimTime) {
        self.expire_queue(now);
        let window = self.window();
        while self.state == ClientState::Connected {
            let Some(front) = qr(&self.q).queue.front() else {
                break;
            };
            if front.qos != QoS::AtMostOnce && qr(&self.q).inflight.len() >= window {
                break;
            }
            let Some(q) = qm(&mut self.q).queue.pop_front() else {
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
        let packet = Packet::Subscribe(Subscribe { pid, filters });
        let wire = match self.is_v5() {
            true => Wire::v5(to5(packet).ok_or(ClientError::NoFilters)?),
            false => Wire::V3(packet),
        };
        Ok(self.request(wire, pid))
    }

    /// 5.0 SUBSCRIBE: each filter with its [`SubOptions`] (QoS, No Local,
    /// Retain As Published, Retain Handling), an optional Subscription
    /// Identifier (1..=268435455, echoed in the PUBLISHes it matches) and
    /// User Properties. The SUBACK comes as `ClientEvent::Subscribed5`.
    pub fn subscribe5(
        &mut self,
        _now: SimTime,
        filters: Vec<(TopicFilter, SubOptions)>,
        subscription_identifier: Option<u32>,
        user_properties: Vec<(String, String)>,
    ) -> Result<RequestHandle, ClientError> {
        if !self.is_v5() {
            return Err(ClientError::Needs5("SUBSCRIBE with options"));
        }
        if filters.is_empty() {
            return Err(ClientError::NoFilters);
        }
        if let Some(id) = subscription_identifier {
            if !(1..=MAX_SUBSCRIPTION_ID).contains(&id) {
                return Err(ClientError::SubscriptionIdentifier(id));
            }
        }
        let pid = self.alloc_pid();
        let props = Properties {
            subscription_identifiers: subscription_identifier.into_iter().collect(),
            user_properties,
            ..Properties::default()
        };
        let packet = Packet5::Subscribe(Subscribe5 {
            pid,
            props,
            filters,
        });
        Ok(self.request(Wire::v5(packet), pid))
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
        let packet = Packet::Unsubscribe(Unsubscribe { pid, filters });
        let wire = match self.is_v5() {
            true => Wire::v5(to5(packet).ok_or(ClientError::NoFilters)?),
            false => Wire::V3(packet),
        };
        Ok(self.request(wire, pid))
    }

    fn request(&mut self, packet: Wire, pid: PacketId) -> RequestHandle {
        self.next_handle += 1;
        let handle = RequestHandle(self.next_handle);
        if self.state == ClientState::Connected {
            self.push_wire(packet.clone(), None, false);
        }
        qm(&mut self.q).requests.push((pid, handle, packet));
        handle
    }

    /// The earliest time `handle_timeout` is due.
    pub fn poll_timeout(&self) -> Option<SimTime> {
        self.timers.earliest()
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
                qm(&mut self.q).events.push_back(ClientEvent::OpenTransport);
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
        for o in qm(&mut self.q).inflight.iter_mut() {
            if o.sent_at + r > now {
                continue;
            }
            o.sent_at = now;
            resend.push(o.resend());
        }
        self.push_resends(resend);
        if let Some(next) = qr(&self.q).inflight.iter().map(|o| o.sent_at + r).min() {
            self.set(Timer::Retry, Some(next));
        }
    }

    /// The next event.
    pub fn poll_event(&mut self) -> Option<ClientEvent> {
        let e = self.q.as_mut().and_then(|q| q.events.pop_front());
        if e.is_none() {
            self.shed();
        }
        e
    }

    /// Append the next packet to `buf`.
    pub fn poll_transmit(&mut self, now: SimTime, buf: &mut Vec<u8>) -> Option<ClientTransmit> {
        loop {
            let Some(out) = self.q.as_mut().and_then(|q| q.outq.pop_front()) else {
                self.shed();
                return None;
            };
            let start = buf.len();
            let (Ok(len), Some(kind)) = (out.packet.encode(buf), out.packet.kind()) else {
                buf.truncate(start);
                continue; // sizes were checked when queued
            };
            self.stats.packets_sent += 1;
            self.stats.bytes_sent += len as u64;
            if out.retransmission {
                self.stats.retransmissions += 1;
            } else if kind == PacketType::Publish {
                self.stats.publishes_sent += 1;
            }
            if self.keep_alive > 0
                && matches!(
                    self.state,
                    ClientState::Connected | ClientState::AwaitConnAck
                )
            {
                let ka = SimDuration::from_secs(u64::from(self.keep_alive));
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

/// A PUBLISH or PUBREL to send again.
enum Resend {
    Publish(Box<(Publish, Properties)>, MessageHandle),
    PubRel(PacketId, MessageHandle),
}

impl InFlight {
    /// What resending this message sends: its PUBLISH with DUP = 1
    /// [MQTT-3.3.1-1], or its PUBREL.
    fn resend(&self) -> Resend {
        match self.state {
            OutState::AwaitAck | OutState::AwaitRec => {
                let mut p = self.publish.clone();
                p.dup = true;
                Resend::Publish(Box::new((p, self.props.clone())), self.handle)
            }
            OutState::AwaitComp => Resend::PubRel(self.pid, self.handle),
        }
    }
}

impl Client {
    fn push_resends(&mut self, resend: Vec<Resend>) {
        for r in resend {
            match r {
                Resend::Publish(b, h) => {
                    let (p, props) = *b;
                    self.push_publish(p, &props, h, true)
                }
                Resend::PubRel(pid, h) => self.push(Packet::PubRel(Ack { pid }), Some(h), true),
            }
        }
    }
}

/// Largest Subscription Identifier (a variable byte integer, §3.8.2.1.2).
const MAX_SUBSCRIPTION_ID: u32 = 268_435_455;

/// The 5.0 form of a packet the client sends (acks with reason 0 and no
/// properties, DISCONNECT 0, SUBSCRIBE with options of just the QoS);
/// `None` for the packets a client never sends this way (CONNECT and
/// PUBLISH are built with their properties, the others are the server's).
fn to5(p: Packet) -> Option<Packet5> {
    Some(match p {
        Packet::PubAck(a) => Packet5::PubAck(Ack5::ok(a.pid)),
        Packet::PubRec(a) => Packet5::PubRec(Ack5::ok(a.pid)),
        Packet::PubRel(a) => Packet5::PubRel(Ack5::ok(a.pid)),
        Packet::PubComp(a) => Packet5::PubComp(Ack5::ok(a.pid)),
        Packet::PingReq => Packet5::PingReq,
        Packet::Disconnect => Packet5::Disconnect(ReasonOnly::default()),
        Packet::Subscribe(s) => Packet5::Subscribe(Subscribe5 {
            pid: s.pid,
            props: Properties::default(),
            filters: s
                .filters
                .into_iter()
                .map(|(f, q)| (f, SubOptions::qos(q)))
                .collect(),
        }),
        Packet::Unsubscribe(u) => Packet5::Unsubscribe(Unsubscribe5 {
            pid: u.pid,
            props: Properties::default(),
            filters: u.filters,
        }),
        Packet::Connect(_)
        | Packet::ConnAck(_)
        | Packet::Publish(_)
        | Packet::SubAck(_)
        | Packet::UnsubAck(_)
        | Packet::PingResp => return None,
    })
}

/// The properties an application may set on a 5.0 PUBLISH.
fn check_publish_props(p: &Properties) -> Result<(), ClientError> {
    if p.topic_alias.is_some() {
        return Err(ClientError::PropertyNotAllowed("Topic Alias"));
    }
    if !p.subscription_identifiers.is_empty() {
        return Err(ClientError::PropertyNotAllowed("Subscription Identifier"));
    }
    if p.payload_format_indicator.is_some_and(|v| v > 1) {
        return Err(ClientError::PropertyNotAllowed(
            "Payload Format Indicator other than 0 or 1",
        ));
    }
    if let Some(t) = &p.response_topic {
        if TopicName::new(t).is_err() {
            return Err(ClientError::PropertyNotAllowed(
                "Response Topic that is not a valid topic name [MQTT-3.3.2-14]",
            ));
        }
    }
    let rest = Properties {
        payload_format_indicator: None,
        message_expiry_interval: None,
        content_type: None,
        response_topic: None,
        correlation_data: None,
        user_properties: Vec::new(),
        ..p.clone()
    };
    if !rest.is_empty() {
        return Err(ClientError::PropertyNotAllowed(
            "other than Payload Format Indicator, Message Expiry Interval, Content Type,              Response Topic, Correlation Data and User Property in a PUBLISH",
        ));
    }
    Ok(())
}

/// A Message Expiry Interval after waiting since `since`: `None` when
/// there is none, `Some(None)` when it ran out, else `Some(Some(seconds
/// left))` (the interval less the whole seconds waited).
fn remaining_expiry_of(interval: Option<u32>, since: SimTime, now: SimTime) -> Option<Option<u32>> {
    let i = interval?;
    let waited = now.saturating_since(since).as_nanos() / 1_000_000_000;
    Some(u32::try_from(waited).ok().filter(|&w| w < i).map(|w| i - w))
}

fn remaining_expiry(q: &Queued, now: SimTime) -> Option<Option<u32>> {
    remaining_expiry_of(q.props.message_expiry_interval, q.queued_at, now)
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::StreamInput;

    /// Drain what the client sends; the packets' first bytes.
    fn sent(c: &mut Client, now: SimTime) -> Vec<u8> {
        let mut kinds = Vec::new();
        let mut buf = Vec::new();
        while c.poll_transmit(now, &mut buf).is_some() {
            kinds.push(buf[0]);
            buf.clear();
        }
        while c.poll_event().is_some() {}
        kinds
    }

    #[test]
    fn an_idle_client_gives_its_queues_back() {
        let t = SimTime::ZERO;
        let mut c = Client::new(ClientConfig::new("dev-1"), SimRng::stream(1, "c"));
        c.connect();
        c.handle_input(t, StreamInput::Connected);
        assert_eq!(sent(&mut c, t), [0x10], "CONNECT");
        c.handle_input(t, StreamInput::Bytes(&[0x20, 2, 0, 0]));
        sent(&mut c, t);
        assert!(c.is_connected());
        assert!(c.q.is_none(), "connected and idle: no queues held");
        let topic = TopicName::new("a/b").expect("topic");
        c.publish(t, topic, &b"x"[..], QoS::AtLeastOnce, false)
            .expect("publish");
        assert_eq!(sent(&mut c, t), [0x32], "PUBLISH QoS 1");
        assert_eq!(c.inflight_len(), 1);
        assert!(c.q.is_some(), "a publish in flight is held");
        // half a PUBACK: the unread byte is kept for the next read
        c.handle_input(t, StreamInput::Bytes(&[0x40, 2, 0]));
        sent(&mut c, t);
        assert_eq!(c.inflight_len(), 1);
        c.handle_input(t, StreamInput::Bytes(&[1]));
        sent(&mut c, t);
        assert_eq!(c.inflight_len(), 0, "PUBACK completed the flow");
        assert!(c.is_idle());
        assert!(c.q.is_none(), "acknowledged: the queues are given back");
    }
}
