//! What the broker and the client report: transmissions, events, counters
//! and errors.

use std::sync::Arc;

use thiserror::Error;

use super::codec::{DecodeError, EncodeError};
use super::packet::{ConnectReturnCode, PacketType, QoS, SubAckReturn};
use super::topic::TopicName;
use super::v5::{Properties, ReasonCode};

/// A network connection as the driver names it (opaque to the broker). The
/// driver must not reuse an id while the broker may still know it (i.e.
/// before `Close` or `connection_lost`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ConnId(pub u64);

/// What `Broker::poll_transmit` wrote into the caller's buffer: one whole
/// MQTT packet for `conn`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BrokerTransmit {
    pub conn: ConnId,
    pub kind: PacketType,
    /// Bytes written (the packet's exact encoded length).
    pub len: usize,
    /// A PUBLISH or PUBREL sent again (on reconnect or by `legacy_retry`).
    pub retransmission: bool,
}

/// Why the broker ended a connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DisconnectReason {
    /// The client sent DISCONNECT.
    Disconnect,
    /// The driver reported the transport lost (`connection_lost`).
    Lost,
    /// Nothing received for 1.5 × keep alive [MQTT-3.1.2-24].
    KeepAliveTimeout,
    /// No CONNECT within `connect_timeout`.
    ConnectTimeout,
    /// Malformed bytes or a protocol violation.
    ProtocolError,
    /// Another connection CONNECTed with the same client id [MQTT-3.1.4-2].
    TakenOver,
    /// CONNACK with a non-zero return code [MQTT-3.2.2-5].
    Refused,
    /// MQTT 5.0: the client sent DISCONNECT with reason 0x04 (Disconnect
    /// with Will Message): the will is published.
    DisconnectWithWill,
    /// A PUBLISH the ACL refuses, with `DenyPublish::Disconnect`
    /// ([MQTT-3.3.5-2]).
    NotAuthorized,
}

impl DisconnectReason {
    /// Whether the will is published (§3.1.2.5): every reason but DISCONNECT
    /// (and a refused CONNECT, which never stored one).
    pub fn publishes_will(self) -> bool {
        !matches!(
            self,
            DisconnectReason::Disconnect | DisconnectReason::Refused
        )
    }
}

/// A protocol violation by a client; the broker closes the connection.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ProtocolViolation {
    #[error("malformed packet: {0}")]
    Decode(#[from] DecodeError),
    #[error("first packet is {0}, not CONNECT [MQTT-3.1.0-1]")]
    FirstNotConnect(PacketType),
    #[error("second CONNECT on one connection [MQTT-3.1.0-2]")]
    SecondConnect,
    #[error("{0} is never sent by a client")]
    ServerOnlyPacket(PacketType),
    #[error("{0} is never sent by a server")]
    ClientOnlyPacket(PacketType),
    #[error("CONNACK before CONNECT or twice")]
    UnexpectedConnAck,
    #[error("more than {0} QoS 2 PUBLISHes held unreleased (BrokerConfig::max_incoming_qos2)")]
    TooManyUnreleased(usize),
    /// MQTT 5.0: a packet broke a rule; the broker sent DISCONNECT with
    /// this reason code.
    #[error("MQTT 5.0: {0}")]
    V5(String),
    #[error("more QoS 2 PUBLISHes unreleased than the broker's Receive Maximum [MQTT-3.3.4-8]")]
    ReceiveMaximum,
}

/// What the broker tells its driver and the metrics.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BrokerEvent {
    /// The driver must close this connection's transport (after sending the
    /// transmits `poll_transmit` already returned for it: they come first).
    /// Not raised for `connection_lost`, which the driver reported itself.
    Close(ConnId),
    /// CONNACK 0 sent.
    ClientConnected {
        conn: ConnId,
        client_id: Arc<str>,
        clean_session: bool,
        session_present: bool,
    },
    /// CONNACK with a refusal sent; a `Close` follows.
    ConnectRefused {
        conn: ConnId,
        code: ConnectReturnCode,
    },
    /// A connected client's connection ended.
    ClientDisconnected {
        conn: ConnId,
        client_id: Arc<str>,
        reason: DisconnectReason,
    },
    /// A PUBLISH from a client was accepted (and is routed now, or at PUBREL
    /// with `Qos2Forward::OnPubrel`). Not raised for DUP copies of a QoS 2
    /// message already held.
    Received {
        conn: ConnId,
        topic: TopicName,
        qos: QoS,
        retain: bool,
    },
    /// A PUBLISH to a subscriber left `poll_transmit` for the first time
    /// (only with `BrokerConfig::delivery_events`).
    Delivered {
        /// When the PUBLISH left the broker.
        at: crate::sim::SimTime,
        conn: ConnId,
        topic: TopicName,
        qos: QoS,
        retain: bool,
        payload: Arc<[u8]>,
    },
    /// A message for this client was dropped: queue full, or QoS 0 while
    /// offline.
    Dropped {
        client_id: Arc<str>,
        topic: TopicName,
        qos: QoS,
    },
    /// A will was published.
    WillPublished {
        client_id: Arc<str>,
        topic: TopicName,
    },
    /// The connection is being closed for this violation (a `Close` follows).
    ProtocolError {
        conn: ConnId,
        error: ProtocolViolation,
    },
    /// The ACL refused `action` on `topic` (a topic name, or the filter of
    /// a SUBSCRIBE) to this client: a SUBSCRIBE filter answered with
    /// Failure 0x80, a PUBLISH not forwarded (then acknowledged, or the
    /// connection closed: `DenyPublish`), a will not published.
    Denied {
        conn: ConnId,
        client_id: Arc<str>,
        action: super::acl::AclAction,
        topic: Arc<str>,
    },
}

/// Broker counters. Gauges say "now"; the rest count since creation
/// (across crashes).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BrokerStats {
    /// `accept` calls.
    pub connections_accepted: u64,
    /// CONNACK 0 sent.
    pub connects_accepted: u64,
    /// CONNACK ≠ 0 sent.
    pub connects_refused: u64,
    /// Gauge: connected clients.
    pub clients_connected: u64,
    /// Gauge: persistent sessions without a connection.
    pub clients_disconnected: u64,
    pub packets_received: u64,
    pub bytes_received: u64,
    pub packets_sent: u64,
    pub bytes_sent: u64,
    /// Per packet type, indexed by `PacketType::index()`.
    pub received_by_type: [u64; 14],
    pub sent_by_type: [u64; 14],
    pub bytes_sent_by_type: [u64; 14],
    /// PUBLISH packets accepted from clients (DUP copies of held QoS 2
    /// messages excluded).
    pub publishes_received: u64,
    /// PUBLISH packets sent to subscribers, first transmissions.
    pub publishes_sent: u64,
    /// PUBLISH (DUP) and PUBREL resent.
    pub retransmissions: u64,
    pub dropped_queue_full: u64,
    pub dropped_qos0_offline: u64,
    /// Connections closed for malformed bytes or violations.
    pub protocol_errors: u64,
    pub keep_alive_timeouts: u64,
    pub connect_timeouts: u64,
    pub takeovers: u64,
    /// MQTT 5.0: offline sessions discarded when their Session Expiry
    /// Interval passed.
    pub sessions_expired: u64,
    /// MQTT 5.0: queued copies deleted unsent because their Message Expiry
    /// Interval passed ([MQTT-3.3.2-5]).
    pub messages_expired: u64,
    /// MQTT 5.0: PUBLISHes not sent because they exceed the client's
    /// Maximum Packet Size ([MQTT-3.1.2-25]).
    pub dropped_too_large: u64,
    /// MQTT 5.0: DISCONNECTs the broker sent, by any reason.
    pub disconnects_sent: u64,
    pub wills_published: u64,
    /// Gauge: retained messages held.
    pub retained_messages: u64,
    /// Acknowledgements for unknown packet identifiers (ignored).
    pub unknown_acks: u64,
    /// Inputs ignored while crashed or for unknown connections.
    pub ignored_inputs: u64,
    /// PUBLISH packets and wills the ACL refused (not forwarded).
    pub denied_publishes: u64,
    /// SUBSCRIBE filters the ACL refused (SUBACK Failure 0x80).
    pub denied_subscriptions: u64,
}

/// A client's handle for one of its PUBLISH calls.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct MessageHandle(pub u64);

/// A client's handle for a SUBSCRIBE or UNSUBSCRIBE call.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RequestHandle(pub u64);

/// What `Client::poll_transmit` wrote.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ClientTransmit {
    pub kind: PacketType,
    pub len: usize,
    /// The publish this PUBLISH or PUBREL belongs to.
    pub message: Option<MessageHandle>,
    /// A PUBLISH (DUP) or PUBREL sent again.
    pub retransmission: bool,
}

/// Why a client's connection ended unexpectedly.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LostReason {
    /// The driver reported the transport closed.
    TransportClosed,
    /// No PINGRESP within `ping_timeout`.
    PingTimeout,
    /// No CONNACK within `connect_timeout`.
    ConnectTimeout,
    /// The broker sent malformed bytes or violated the protocol.
    ProtocolError(ProtocolViolation),
    /// 5.0: the server sent DISCONNECT with this reason code (§3.14);
    /// `props` carries its Reason String, Server Reference, ….
    ServerDisconnect {
        reason: ReasonCode,
        props: Box<Properties>,
    },
    /// 5.0: the server broke a rule; the client sent DISCONNECT with
    /// `reason` (0x81 Malformed Packet, 0x82 Protocol Error, 0x93 Receive
    /// Maximum exceeded, 0x94 Topic Alias invalid, 0x95 Packet too large)
    /// and closed. `detail` says what was wrong.
    ClientDisconnect { reason: ReasonCode, detail: String },
}

/// 5.0: why a publish was not sent (it never left the client).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DropReason {
    /// Its Message Expiry Interval ran out while it waited in the queue.
    Expired,
    /// Its PUBLISH of `len` bytes exceeds the server's Maximum Packet Size
    /// `limit` [MQTT-3.1.2-24].
    TooLarge { len: usize, limit: u32 },
    /// It asks for retain and the server's CONNACK said Retain Available 0
    /// [MQTT-3.2.2-14].
    RetainNotAvailable,
}

/// What the client tells its driver and application.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ClientEvent {
    /// Driver: open a transport connection to the broker, then call
    /// `transport_connected` (or `transport_closed` if that fails).
    OpenTransport,
    /// Driver: close the transport (after sending what `poll_transmit`
    /// returned), then call `transport_closed`.
    CloseTransport,
    /// CONNACK 0 received.
    Connected { session_present: bool },
    /// CONNACK refused the connection.
    ConnectRefused(ConnectReturnCode),
    /// An application message from the broker (QoS 2: once, even if the
    /// broker resends it).
    Message {
        topic: TopicName,
        payload: Arc<[u8]>,
        qos: QoS,
        retain: bool,
        dup: bool,
    },
    /// QoS 1 PUBACK or QoS 2 PUBCOMP for this publish.
    PublishAcked { handle: MessageHandle },
    /// SUBACK.
    Subscribed {
        handle: RequestHandle,
        codes: Vec<SubAckReturn>,
    },
    /// UNSUBACK.
    Unsubscribed { handle: RequestHandle },
    /// The connection was lost; `reconnect_at` says when the client will ask
    /// for a transport again (`None`: it will not).
    ConnectionLost {
        reason: LostReason,
        reconnect_at: Option<crate::sim::SimTime>,
    },
    /// After `disconnect`: DISCONNECT sent and the transport closed.
    Disconnected,
    /// 5.0: CONNACK refused the connection with this reason (≥ 0x80,
    /// §3.2.2.2); `props` carries its Reason String, Server Reference, ….
    ConnectRefused5 {
        reason: ReasonCode,
        props: Properties,
    },
    /// 5.0: an application message with its properties (Topic Alias
    /// resolved and removed; Subscription Identifiers, Response Topic,
    /// Correlation Data, Content Type, Payload Format Indicator, Message
    /// Expiry Interval and User Properties as received).
    Message5 {
        topic: TopicName,
        payload: Arc<[u8]>,
        qos: QoS,
        retain: bool,
        dup: bool,
        props: Properties,
    },
    /// 5.0: PUBACK or PUBREC with a failure reason (≥ 0x80) ended this
    /// publish's flow; it is not resent.
    PublishFailed {
        handle: MessageHandle,
        reason: ReasonCode,
    },
    /// 5.0: this publish was not sent at all.
    PublishDropped {
        handle: MessageHandle,
        reason: DropReason,
    },
    /// 5.0 SUBACK: one reason code per filter (granted QoS or a failure
    /// such as 0x87 Not authorized).
    Subscribed5 {
        handle: RequestHandle,
        reasons: Vec<ReasonCode>,
    },
    /// 5.0 UNSUBACK: one reason code per filter.
    Unsubscribed5 {
        handle: RequestHandle,
        reasons: Vec<ReasonCode>,
    },
}

/// Client counters.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ClientStats {
    pub packets_sent: u64,
    pub bytes_sent: u64,
    pub packets_received: u64,
    pub bytes_received: u64,
    pub publishes_sent: u64,
    pub retransmissions: u64,
    pub messages_received: u64,
    /// QoS 2 duplicates suppressed (pid still held).
    pub duplicates_suppressed: u64,
    pub connects: u64,
    pub connection_losses: u64,
    pub pings_sent: u64,
    pub protocol_errors: u64,
    pub unknown_acks: u64,
    /// 5.0: publishes ended by PUBACK/PUBREC with a failure reason.
    pub publishes_failed: u64,
    /// 5.0: publishes not sent because they exceed the server's Maximum
    /// Packet Size.
    pub publishes_too_large: u64,
    /// 5.0: queued publishes dropped when their Message Expiry Interval
    /// ran out before they could be sent.
    pub messages_expired: u64,
    /// 5.0: publishes sent at the server's Maximum QoS, below the QoS
    /// asked for.
    pub qos_downgraded: u64,
    /// 5.0: PUBLISHes sent with a Topic Alias and an empty topic.
    pub topic_alias_hits: u64,
    /// 5.0: topic bytes not sent thanks to aliases (the topic string's
    /// length on each PUBLISH sent with an empty topic; each aliased
    /// PUBLISH also carries the 3-byte Topic Alias property).
    pub topic_alias_bytes_saved: u64,
}

/// Errors from the client API.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ClientError {
    #[error("publish queue full ({limit} messages)")]
    QueueFull { limit: usize },
    #[error("cannot encode: {0}")]
    Encode(#[from] EncodeError),
    #[error("SUBSCRIBE/UNSUBSCRIBE needs at least one topic filter")]
    NoFilters,
    #[error("{0} needs an MQTT 5.0 client (ClientConfig::version = V5)")]
    Needs5(&'static str),
    #[error("property {0} cannot be set by the application here (MQTT 5.0 §2.2.2.2)")]
    PropertyNotAllowed(&'static str),
    #[error("subscription identifier {0} out of range 1..=268435455 [MQTT-3.8.2-2]")]
    SubscriptionIdentifier(u32),
    #[error("DISCONNECT may not set a session expiry when CONNECT sent 0 [MQTT-3.14.2-2]")]
    SessionExpiryOnDisconnect,
}
