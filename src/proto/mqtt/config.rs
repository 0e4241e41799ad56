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
    /// MQTT 5.0 connections only (docs/mqtt.md "MQTT 5.0"): what the
    /// broker announces in CONNACK and enforces.
    pub v5: BrokerV5Config,
}

/// The MQTT 5.0 side of [`BrokerConfig`]; a 3.1.1 connection ignores it.
/// Defaults follow mosquitto 2.0.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BrokerV5Config {
    /// Receive Maximum announced in CONNACK: QoS 1/2 PUBLISHes a client
    /// may have unacknowledged towards the broker; one more is answered
    /// with DISCONNECT 0x93 (§3.3.4). Default 65,535 (not announced).
    pub receive_maximum: u16,
    /// Topic Alias Maximum announced in CONNACK: aliases a client may use
    /// towards the broker. Default 10 (mosquitto `max_topic_alias`).
    pub topic_alias_maximum: u16,
    /// When set, CONNACK carries Server Keep Alive and the broker uses it
    /// instead of the client's keep alive (§3.2.2.3.14). Default none.
    pub server_keep_alive: Option<u16>,
    /// Retain Available (default true); a retained PUBLISH when false is
    /// answered with DISCONNECT 0x9A.
    pub retain_available: bool,
    /// Wildcard Subscription Available (default true); when false a
    /// wildcard filter gets SUBACK 0xA2.
    pub wildcard_subscriptions: bool,
    /// Subscription Identifiers Available (default true); when false a
    /// SUBSCRIBE carrying one is answered with DISCONNECT 0xA1.
    pub subscription_identifiers: bool,
    /// Shared Subscription Available (default true); when false a
    /// `$share/` filter gets SUBACK 0x9E.
    pub shared_subscriptions: bool,
    /// Largest Session Expiry Interval granted (seconds); a larger request
    /// is cut to it and CONNACK says so. Default none (any; 0xFFFFFFFF
    /// never expires).
    pub max_session_expiry: Option<u32>,
}

impl Default for BrokerV5Config {
    fn default() -> Self {
        BrokerV5Config {
            receive_maximum: u16::MAX,
            topic_alias_maximum: 10,
            server_keep_alive: None,
            retain_available: true,
            wildcard_subscriptions: true,
            subscription_identifiers: true,
            shared_subscriptions: true,
            max_session_expiry: None,
        }
    }
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
            v5: BrokerV5Config::default(),
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
    /// On 5.0 a smaller value is advertised as CONNECT's Maximum Packet
    /// Size (§3.1.2.11.4).
    pub max_packet_size: usize,
    /// Protocol version spoken on the wire. Default 3.1.1; every field
    /// below is used on 5.0 only (a 3.1.1 client ignores them).
    pub version: MqttVersion,
    /// 5.0 Session Expiry Interval in seconds sent in CONNECT (§3.1.2.11.2;
    /// 0xFFFFFFFF never expires). The 3.1.1 `clean_session` flag is sent
    /// as 5.0 Clean Start, so 3.1.1 `clean_session = false` (a session
    /// kept until the client comes back) is 5.0 `clean_session = false`
    /// with a `session_expiry_interval` above 0: with 0 (the default) the
    /// server ends the session when the connection closes. Default 0.
    pub session_expiry_interval: u32,
    /// 5.0 Receive Maximum (§3.1.2.11.3): QoS 1/2 PUBLISHes the server may
    /// have unacknowledged towards us; 65535 (default) is not sent. A
    /// server exceeding it is disconnected with 0x93.
    pub receive_maximum: u16,
    /// 5.0 Topic Alias Maximum (§3.1.2.11.5): aliases the client accepts
    /// from the server. Default 0 (none; the property is not sent).
    pub topic_alias_maximum: u16,
    /// 5.0 Request Response Information (§3.1.2.11.6). Default false.
    pub request_response_information: bool,
    /// 5.0 User Properties sent in CONNECT, in this order. Default none.
    pub connect_user_properties: Vec<(String, String)>,
    /// 5.0: at most this many topic aliases used by the client when it
    /// publishes, further bounded by the server's CONNACK Topic Alias
    /// Maximum. Policy: first come, first served: the first PUBLISH on a
    /// topic while aliases are free sends the topic and a new alias, later
    /// ones on that connection an empty topic and the alias; once all are
    /// taken other topics go without alias (no replacement). Default 0.
    pub topic_aliases_out: u16,
}

/// The MQTT version a client speaks (the CONNECT protocol level).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum MqttVersion {
    /// MQTT 3.1.1, protocol level 4.
    #[default]
    V311,
    /// MQTT 5.0, protocol level 5.
    V5,
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
            version: MqttVersion::V311,
            session_expiry_interval: 0,
            receive_maximum: u16::MAX,
            topic_alias_maximum: 0,
            request_response_information: false,
            connect_user_properties: Vec::new(),
            topic_aliases_out: 0,
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
