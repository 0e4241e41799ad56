//! Broker and client configuration, with defaults (documented in
//! docs/mqtt.md).

use std::collections::BTreeMap;

use crate::sim::SimDuration;

use super::acl::{Acl, DenyPublish};
use super::codec::MAX_PACKET_SIZE;
use super::packet::{LastWill, QoS};

/// When the broker forwards an incoming QoS 2 PUBLISH to subscribers
/// (§4.3.3 allows both).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Qos2Forward {
    /// At once, when the PUBLISH arrives (Method B of figure 4.3); the
    /// packet identifier is remembered until PUBREL so a DUP is not
    /// forwarded twice.
    OnPublish,
    /// Only when the PUBREL arrives (Method A; mosquitto's behaviour). The
    /// message is stored in the session until then.
    #[default]
    OnPubrel,
}

/// What survives [`crate::proto::mqtt::Broker::crash`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Persistence {
    /// Nothing: sessions, subscriptions, queued messages and retained
    /// messages are lost (mosquitto `persistence false`).
    #[default]
    None,
    /// Persistent sessions (subscriptions, in-flight and queued messages,
    /// QoS 2 receive state) and retained messages survive, as if written to
    /// disk at every change. Clean sessions and wills are lost.
    Durable,
}

/// Default [`BrokerConfig::max_packet_size`]: 1 MiB.
pub const DEFAULT_BROKER_MAX_PACKET: usize = 1 << 20;
/// Default [`BrokerConfig::max_connect_packet_size`]: 64 KiB.
pub const DEFAULT_MAX_CONNECT_PACKET: usize = 64 << 10;

/// Broker options. Defaults follow mosquitto 2.0 where the spec leaves a
/// choice.
#[derive(Clone, Debug, PartialEq)]
pub struct BrokerConfig {
    /// Largest packet accepted (header included); larger ones are a protocol
    /// error that closes the connection as soon as the fixed header
    /// announces them, so no more than this is ever buffered for one
    /// connection. Default 1 MiB (mosquitto has no default limit; the
    /// protocol maximum, 268 435 460 bytes, would let every connection
    /// hold 256 MiB of a partial packet), above every scenario's payload
    /// (at most 60 kB).
    pub max_packet_size: usize,
    /// Largest first packet (the CONNECT) accepted from a new connection,
    /// whose peer has not identified itself yet. Default 64 KiB.
    pub max_connect_packet_size: usize,
    /// QoS 1/2 messages in flight (sent, not fully acknowledged) per client;
    /// more wait in the client's queue. Default 20 (mosquitto
    /// `max_inflight_messages`). 0 means 1.
    pub max_inflight: usize,
    /// Messages queued per client (offline, or behind a full in-flight
    /// window); more are dropped and counted. Default 1000 (mosquitto
    /// `max_queued_messages`).
    pub max_queued: usize,
    /// Queue QoS 0 messages for offline persistent sessions. Default false
    /// (mosquitto `queue_qos0_messages false`): they are dropped and counted.
    pub queue_qos0_offline: bool,
    /// When incoming QoS 2 messages are forwarded. Default `OnPubrel`.
    pub qos2_forward: Qos2Forward,
    /// Highest QoS granted to a subscription (requested QoS is capped).
    /// Default QoS 2.
    pub max_qos: QoS,
    /// NOT in MQTT 3.1.1 (§4.4 allows resending only on reconnect): resend
    /// unacknowledged PUBLISH (DUP=1) and PUBREL to a connected client after
    /// this long, like MQTT 3.1 brokers did. Default `None`.
    pub legacy_retry: Option<SimDuration>,
    /// How long a new connection may take to send CONNECT before the broker
    /// closes it (§3.1: "within a reasonable amount of time"). Default 10 s.
    pub connect_timeout: SimDuration,
    /// Interval of the retained `$SYS/broker/...` publications; `None` turns
    /// them off. Default 10 s (mosquitto `sys_interval`).
    pub sys_interval: Option<SimDuration>,
    /// Allow connections without a user name. Default true.
    pub allow_anonymous: bool,
    /// User name → password. A CONNECT with a user name must match an entry
    /// (else CONNACK 4); when the table is empty any user name is accepted.
    pub users: BTreeMap<String, Vec<u8>>,
    /// Emit `BrokerEvent::Delivered` for every PUBLISH sent to a subscriber.
    /// Default true; turn off to save work in large fan-outs.
    pub delivery_events: bool,
    /// What survives a crash. Default `None`.
    pub persistence: Persistence,
    /// Most levels (`/`-separated parts) a topic filter or topic name may
    /// have. A deeper filter in a SUBSCRIBE is refused with return code
    /// Failure 0x80 (§3.9.3, [MQTT-3.8.4-5]) while the packet's other
    /// filters are handled as usual; a PUBLISH to a deeper topic is a
    /// protocol error that closes the connection (§4.8) and counts in
    /// `BrokerStats::protocol_errors`. MQTT 3.1.1 itself has no such limit
    /// (only the 65535-byte string length): this guards against
    /// pathological topics. Default 128, far beyond real topic trees.
    pub max_topic_levels: usize,
    /// QoS 2 PUBLISHes a session may hold unreleased (PUBREC sent, PUBREL
    /// not yet received). MQTT 3.1.1 sets no limit; a client past this one
    /// is closed as a protocol error (nothing acknowledged past it), so one
    /// client cannot make the broker hold 65,535 messages. Default 1000
    /// (mosquitto's `max_queued_messages` default).
    pub max_incoming_qos2: usize,
    /// Access control (`acl` module; docs/mqtt.md "Access control").
    /// Default empty: every client may publish and subscribe to anything.
    pub acl: Acl,
    /// What happens to a PUBLISH the ACL refuses. Default
    /// `DenyPublish::Drop`.
    pub acl_deny_publish: DenyPublish,
    /// Test-only mutation knob (tests/monitors.rs): not reachable from
    /// scenario files; always off in real runs.
    #[doc(hidden)]
    /// A broken broker: a QoS 2 PUBLISH is forwarded at once and its
    /// packet id forgotten, so a DUP resend is forwarded again ([MQTT-4.3.3]
    /// violated).
    pub mutant_forget_qos2: bool,
    /// Test-only mutation knob (tests/monitors.rs), as above: a broken
    /// broker that silently skips every fifth QoS 1 PUBLISH it would send a
    /// connected subscriber ([MQTT-4.3.2] violated).
    #[doc(hidden)]
    pub mutant_skip_qos1: bool,
}

impl Default for BrokerConfig {
    fn default() -> Self {
        BrokerConfig {
            max_packet_size: DEFAULT_BROKER_MAX_PACKET,
            max_connect_packet_size: DEFAULT_MAX_CONNECT_PACKET,
            max_inflight: 20,
            max_queued: 1000,
            queue_qos0_offline: false,
            qos2_forward: Qos2Forward::OnPubrel,
            max_qos: QoS::ExactlyOnce,
            legacy_retry: None,
            connect_timeout: SimDuration::from_secs(10),
            sys_interval: Some(SimDuration::from_secs(10)),
            allow_anonymous: true,
            users: BTreeMap::new(),
            delivery_events: true,
            persistence: Persistence::None,
            max_topic_levels: 128,
            max_incoming_qos2: 1000,
            acl: Acl::default(),
            acl_deny_publish: DenyPublish::Drop,
            mutant_forget_qos2: false,
            mutant_skip_qos1: false,
        }
    }
}

/// Reconnection after an unexpected connection loss: the n-th attempt
/// (n = 0, 1, …) waits `d = min(max_delay, initial_delay · 2ⁿ)` reduced by
/// a random fraction: `d · (1 − jitter · u)`, `u` uniform in [0, 1) drawn
/// from the client's own `SimRng` stream.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Reconnect {
    /// Default 1 s.
    pub initial_delay: SimDuration,
    /// Default 60 s.
    pub max_delay: SimDuration,
    /// In [0, 1]; default 0.5.
    pub jitter: f64,
}

impl Default for Reconnect {
    fn default() -> Self {
        Reconnect {
            initial_delay: SimDuration::from_secs(1),
            max_delay: SimDuration::from_secs(60),
            jitter: 0.5,
        }
    }
}

/// Client options.
#[derive(Clone, Debug, PartialEq)]
pub struct ClientConfig {
    /// Client identifier (DESIGN.md: defaults to the node name).
    pub client_id: String,
    /// CleanSession flag. Default true.
    pub clean_session: bool,
    /// Keep alive in seconds (§3.1.2.10); 0 turns PINGREQ off. Default 60.
    pub keep_alive: u16,
    pub will: Option<LastWill>,
    pub username: Option<String>,
    pub password: Option<Vec<u8>>,
    /// How long to wait for PINGRESP before declaring the broker dead and
    /// closing the connection. Default 10 s.
    pub ping_timeout: SimDuration,
    /// How long to wait for CONNACK after the transport connects. Default 10 s.
    pub connect_timeout: SimDuration,
    /// Reconnect after unexpected loss; `None` stays disconnected. Default
    /// `Some(Reconnect::default())`.
    pub reconnect: Option<Reconnect>,
    /// QoS 1/2 publishes in flight; more wait in the queue. Default 20.
    pub max_inflight: usize,
    /// Publishes waiting (window full or not connected); beyond this
    /// `publish` fails with `ClientError::QueueFull`. Default 10 000.
    pub max_queued: usize,
    /// NOT in MQTT 3.1.1: resend unacknowledged PUBLISH/PUBREL while
    /// connected after this long. Default `None`.
    pub legacy_retry: Option<SimDuration>,
    /// Largest packet accepted from the broker. Default the protocol maximum.
    pub max_packet_size: usize,
}

impl Default for ClientConfig {
    fn default() -> Self {
        ClientConfig {
            client_id: String::new(),
            clean_session: true,
            keep_alive: 60,
            will: None,
            username: None,
            password: None,
            ping_timeout: SimDuration::from_secs(10),
            connect_timeout: SimDuration::from_secs(10),
            reconnect: Some(Reconnect::default()),
            max_inflight: 20,
            max_queued: 10_000,
            legacy_retry: None,
            max_packet_size: MAX_PACKET_SIZE,
        }
    }
}

impl ClientConfig {
    /// Defaults with this client id.
    pub fn new(client_id: impl Into<String>) -> Self {
        ClientConfig {
            client_id: client_id.into(),
            ..Self::default()
        }
    }
}
