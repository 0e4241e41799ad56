//! MQTT 5.0 (OASIS Standard, 7 March 2019) control packets as owned Rust
//! values, beside the 3.1.1 model of [`super::packet`].
//!
//! A connection speaks one version, chosen by its CONNECT's protocol level
//! (4 = 3.1.1, 5 = 5.0). The broker and client keep one state machine for
//! both: a 5.0 connection is decoded into these types at the edge, and what
//! 5.0 adds (reason codes, properties, topic aliases, flow control,
//! expiry) is handled there and in the session. Read first: MQTT 5.0 §1.5
//! (data representation, variable byte integer, UTF-8 string pair), §2.2.2
//! (properties), §2.4 (reason codes), §3 (the 15 control packets).
//!
//! * [`Properties`] — every property of §2.2.2.2, typed, with
//!   [`Properties::is_empty`] for the common case of none.
//! * [`ReasonCode`] — the one-byte reason codes of §2.4 with their names.
//! * [`Packet5`] and its structs — one per control packet, AUTH included.
//! * [`codec`] — [`decode`] and [`Packet5::encode`], byte-exact.

use std::sync::Arc;

use super::packet::{PacketId, QoS, QosPid};
use super::topic::{TopicFilter, TopicName};

pub mod codec;
pub use codec::{connect_protocol_level, decode, properties_len, Decode5Error};

/// A reason code (§2.4): one byte; values below 0x80 are success, from 0x80
/// failure.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct ReasonCode(pub u8);

#[allow(missing_docs)]
impl ReasonCode {
    pub const SUCCESS: ReasonCode = ReasonCode(0x00);
    /// Also "Normal disconnection" (DISCONNECT) and "Granted QoS 0" (SUBACK).
    pub const NORMAL_DISCONNECTION: ReasonCode = ReasonCode(0x00);
    pub const GRANTED_QOS_0: ReasonCode = ReasonCode(0x00);
    pub const GRANTED_QOS_1: ReasonCode = ReasonCode(0x01);
    pub const GRANTED_QOS_2: ReasonCode = ReasonCode(0x02);
    pub const DISCONNECT_WITH_WILL: ReasonCode = ReasonCode(0x04);
    pub const NO_MATCHING_SUBSCRIBERS: ReasonCode = ReasonCode(0x10);
    pub const NO_SUBSCRIPTION_EXISTED: ReasonCode = ReasonCode(0x11);
    pub const CONTINUE_AUTHENTICATION: ReasonCode = ReasonCode(0x18);
    pub const RE_AUTHENTICATE: ReasonCode = ReasonCode(0x19);
    pub const UNSPECIFIED_ERROR: ReasonCode = ReasonCode(0x80);
    pub const MALFORMED_PACKET: ReasonCode = ReasonCode(0x81);
    pub const PROTOCOL_ERROR: ReasonCode = ReasonCode(0x82);
    pub const IMPLEMENTATION_SPECIFIC_ERROR: ReasonCode = ReasonCode(0x83);
    pub const UNSUPPORTED_PROTOCOL_VERSION: ReasonCode = ReasonCode(0x84);
    pub const CLIENT_IDENTIFIER_NOT_VALID: ReasonCode = ReasonCode(0x85);
    pub const BAD_USER_NAME_OR_PASSWORD: ReasonCode = ReasonCode(0x86);
    pub const NOT_AUTHORIZED: ReasonCode = ReasonCode(0x87);
    pub const SERVER_UNAVAILABLE: ReasonCode = ReasonCode(0x88);
    pub const SERVER_BUSY: ReasonCode = ReasonCode(0x89);
    pub const BANNED: ReasonCode = ReasonCode(0x8A);
    pub const SERVER_SHUTTING_DOWN: ReasonCode = ReasonCode(0x8B);
    pub const BAD_AUTHENTICATION_METHOD: ReasonCode = ReasonCode(0x8C);
    pub const KEEP_ALIVE_TIMEOUT: ReasonCode = ReasonCode(0x8D);
    pub const SESSION_TAKEN_OVER: ReasonCode = ReasonCode(0x8E);
    pub const TOPIC_FILTER_INVALID: ReasonCode = ReasonCode(0x8F);
    pub const TOPIC_NAME_INVALID: ReasonCode = ReasonCode(0x90);
    pub const PACKET_IDENTIFIER_IN_USE: ReasonCode = ReasonCode(0x91);
    pub const PACKET_IDENTIFIER_NOT_FOUND: ReasonCode = ReasonCode(0x92);
    pub const RECEIVE_MAXIMUM_EXCEEDED: ReasonCode = ReasonCode(0x93);
    pub const TOPIC_ALIAS_INVALID: ReasonCode = ReasonCode(0x94);
    pub const PACKET_TOO_LARGE: ReasonCode = ReasonCode(0x95);
    pub const MESSAGE_RATE_TOO_HIGH: ReasonCode = ReasonCode(0x96);
    pub const QUOTA_EXCEEDED: ReasonCode = ReasonCode(0x97);
    pub const ADMINISTRATIVE_ACTION: ReasonCode = ReasonCode(0x98);
    pub const PAYLOAD_FORMAT_INVALID: ReasonCode = ReasonCode(0x99);
    pub const RETAIN_NOT_SUPPORTED: ReasonCode = ReasonCode(0x9A);
    pub const QOS_NOT_SUPPORTED: ReasonCode = ReasonCode(0x9B);
    pub const USE_ANOTHER_SERVER: ReasonCode = ReasonCode(0x9C);
    pub const SERVER_MOVED: ReasonCode = ReasonCode(0x9D);
    pub const SHARED_SUBSCRIPTIONS_NOT_SUPPORTED: ReasonCode = ReasonCode(0x9E);
    pub const CONNECTION_RATE_EXCEEDED: ReasonCode = ReasonCode(0x9F);
    pub const MAXIMUM_CONNECT_TIME: ReasonCode = ReasonCode(0xA0);
    pub const SUBSCRIPTION_IDENTIFIERS_NOT_SUPPORTED: ReasonCode = ReasonCode(0xA1);
    pub const WILDCARD_SUBSCRIPTIONS_NOT_SUPPORTED: ReasonCode = ReasonCode(0xA2);

    /// True for values from 0x80 (§2.4).
    pub fn is_failure(self) -> bool {
        self.0 >= 0x80
    }

    /// The granted-QoS reason code of a SUBACK.
    pub fn granted(qos: QoS) -> ReasonCode {
        ReasonCode(qos.as_u8())
    }

    /// The name in the specification's table 2-6 (the first name where
    /// one value has several), or `None` for an unassigned value.
    pub fn name(self) -> Option<&'static str> {
        Some(match self.0 {
            0x00 => "Success",
            0x01 => "Granted QoS 1",
            0x02 => "Granted QoS 2",
            0x04 => "Disconnect with Will Message",
            0x10 => "No matching subscribers",
            0x11 => "No subscription existed",
            0x18 => "Continue authentication",
            0x19 => "Re-authenticate",
            0x80 => "Unspecified error",
            0x81 => "Malformed Packet",
            0x82 => "Protocol Error",
            0x83 => "Implementation specific error",
            0x84 => "Unsupported Protocol Version",
            0x85 => "Client Identifier not valid",
            0x86 => "Bad User Name or Password",
            0x87 => "Not authorized",
            0x88 => "Server unavailable",
            0x89 => "Server busy",
            0x8A => "Banned",
            0x8B => "Server shutting down",
            0x8C => "Bad authentication method",
            0x8D => "Keep Alive timeout",
            0x8E => "Session taken over",
            0x8F => "Topic Filter invalid",
            0x90 => "Topic Name invalid",
            0x91 => "Packet Identifier in use",
            0x92 => "Packet Identifier not found",
            0x93 => "Receive Maximum exceeded",
            0x94 => "Topic Alias invalid",
            0x95 => "Packet too large",
            0x96 => "Message rate too high",
            0x97 => "Quota exceeded",
            0x98 => "Administrative action",
            0x99 => "Payload format invalid",
            0x9A => "Retain not supported",
            0x9B => "QoS not supported",
            0x9C => "Use another server",
            0x9D => "Server moved",
            0x9E => "Shared Subscriptions not supported",
            0x9F => "Connection rate exceeded",
            0xA0 => "Maximum connect time",
            0xA1 => "Subscription Identifiers not supported",
            0xA2 => "Wildcard Subscriptions not supported",
            _ => return None,
        })
    }
}

impl std::fmt::Display for ReasonCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.name() {
            Some(n) => write!(f, "{:#04x} ({n})", self.0),
            None => write!(f, "{:#04x}", self.0),
        }
    }
}

/// The properties of §2.2.2.2, typed. A property absent from the packet is
/// `None` (or an empty `Vec`); which ones a packet may carry is checked by
/// the codec (a property not allowed in a packet is a Malformed Packet, a
/// single-valued property given twice a Protocol Error).
///
/// Identifiers (type): 0x01 Payload Format Indicator (byte), 0x02 Message
/// Expiry Interval (u32), 0x03 Content Type (string), 0x08 Response Topic
/// (string), 0x09 Correlation Data (binary), 0x0B Subscription Identifier
/// (variable byte integer, repeatable in PUBLISH), 0x11 Session Expiry
/// Interval (u32), 0x12 Assigned Client Identifier (string), 0x13 Server
/// Keep Alive (u16), 0x15 Authentication Method (string), 0x16
/// Authentication Data (binary), 0x17 Request Problem Information (byte),
/// 0x18 Will Delay Interval (u32), 0x19 Request Response Information
/// (byte), 0x1A Response Information (string), 0x1C Server Reference
/// (string), 0x1F Reason String (string), 0x21 Receive Maximum (u16),
/// 0x22 Topic Alias Maximum (u16), 0x23 Topic Alias (u16), 0x24 Maximum
/// QoS (byte), 0x25 Retain Available (byte), 0x26 User Property (string
/// pair, repeatable), 0x27 Maximum Packet Size (u32), 0x28 Wildcard
/// Subscription Available (byte), 0x29 Subscription Identifier Available
/// (byte), 0x2A Shared Subscription Available (byte).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Properties {
    pub payload_format_indicator: Option<u8>,
    pub message_expiry_interval: Option<u32>,
    pub content_type: Option<String>,
    pub response_topic: Option<String>,
    pub correlation_data: Option<Vec<u8>>,
    /// Subscription Identifiers: at most one in SUBSCRIBE, any number in a
    /// PUBLISH sent to a client (one per matching subscription). Each is
    /// 1..=268,435,455.
    pub subscription_identifiers: Vec<u32>,
    pub session_expiry_interval: Option<u32>,
    pub assigned_client_identifier: Option<String>,
    pub server_keep_alive: Option<u16>,
    pub authentication_method: Option<String>,
    pub authentication_data: Option<Vec<u8>>,
    pub request_problem_information: Option<u8>,
    pub will_delay_interval: Option<u32>,
    pub request_response_information: Option<u8>,
    pub response_information: Option<String>,
    pub server_reference: Option<String>,
    pub reason_string: Option<String>,
    pub receive_maximum: Option<u16>,
    pub topic_alias_maximum: Option<u16>,
    pub topic_alias: Option<u16>,
    pub maximum_qos: Option<u8>,
    pub retain_available: Option<u8>,
    /// User Properties in the order they appear (order is significant,
    /// §3.3.2.3.7); a name may repeat.
    pub user_properties: Vec<(String, String)>,
    pub maximum_packet_size: Option<u32>,
    pub wildcard_subscription_available: Option<u8>,
    pub subscription_identifier_available: Option<u8>,
    pub shared_subscription_available: Option<u8>,
}

impl Properties {
    /// No property set.
    pub fn is_empty(&self) -> bool {
        *self == Properties::default()
    }
}

/// The will of a 5.0 CONNECT (§3.1.3.2–3.1.3.4): its properties come first.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Will5 {
    /// Will Properties: Will Delay Interval, Payload Format Indicator,
    /// Message Expiry Interval, Content Type, Response Topic, Correlation
    /// Data, User Property.
    pub props: Properties,
    pub topic: TopicName,
    pub message: Arc<[u8]>,
    pub qos: QoS,
    pub retain: bool,
}

/// CONNECT (§3.1). Protocol name "MQTT", level 5.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Connect5 {
    /// Clean Start (bit 1): discard any existing session (§3.1.2.4).
    pub clean_start: bool,
    pub keep_alive: u16,
    pub props: Properties,
    /// May be empty: the server then assigns one (§3.1.3.1).
    pub client_id: String,
    pub will: Option<Will5>,
    pub username: Option<String>,
    pub password: Option<Vec<u8>>,
}

/// CONNACK (§3.2).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConnAck5 {
    pub session_present: bool,
    pub reason: ReasonCode,
    pub props: Properties,
}

/// PUBLISH (§3.3).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Publish5 {
    pub dup: bool,
    pub qos_pid: QosPid,
    pub retain: bool,
    /// `None` encodes a zero-length Topic Name, allowed only with a Topic
    /// Alias property (§3.3.2.3.4).
    pub topic: Option<TopicName>,
    pub props: Properties,
    pub payload: Arc<[u8]>,
}

/// PUBACK, PUBREC, PUBREL, PUBCOMP (§3.4–3.7). Reason 0 with no
/// properties encodes as the 2-byte 3.1.1 form (the reason code and
/// property length may be omitted, §3.4.2.1).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ack5 {
    pub pid: PacketId,
    pub reason: ReasonCode,
    pub props: Properties,
}

impl Ack5 {
    /// Success, no properties.
    pub fn ok(pid: PacketId) -> Ack5 {
        Ack5 {
            pid,
            reason: ReasonCode::SUCCESS,
            props: Properties::default(),
        }
    }
}

/// Retain Handling of a subscription (§3.8.3.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub enum RetainHandling {
    /// 0: send retained messages at the time of the subscribe.
    #[default]
    SendOnSubscribe,
    /// 1: send them only if the subscription did not exist yet.
    SendIfNew,
    /// 2: do not send them.
    DoNotSend,
}

/// Subscription Options byte (§3.8.3.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct SubOptions {
    pub qos: QoS,
    pub no_local: bool,
    pub retain_as_published: bool,
    pub retain_handling: RetainHandling,
}

impl SubOptions {
    /// Options asking for `qos` and nothing else.
    pub fn qos(qos: QoS) -> SubOptions {
        SubOptions {
            qos,
            ..SubOptions::default()
        }
    }
}

/// SUBSCRIBE (§3.8).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Subscribe5 {
    pub pid: PacketId,
    /// Subscription Identifier (at most one), User Property.
    pub props: Properties,
    pub filters: Vec<(TopicFilter, SubOptions)>,
}

/// SUBACK (§3.9) and UNSUBACK (§3.11): one reason code per filter.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SubAck5 {
    pub pid: PacketId,
    pub props: Properties,
    pub reasons: Vec<ReasonCode>,
}

/// UNSUBSCRIBE (§3.10).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Unsubscribe5 {
    pub pid: PacketId,
    pub props: Properties,
    pub filters: Vec<TopicFilter>,
}

/// DISCONNECT (§3.14) and AUTH (§3.15): a reason code and properties;
/// reason 0 with no properties encodes with remaining length 0.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ReasonOnly {
    pub reason: ReasonCode,
    pub props: Properties,
}

/// An MQTT 5.0 control packet. Packets are transient (decoded, handled,
/// dropped one at a time), so the CONNECT with its two property blocks is
/// not boxed.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Packet5 {
    Connect(Connect5),
    ConnAck(ConnAck5),
    Publish(Publish5),
    PubAck(Ack5),
    PubRec(Ack5),
    PubRel(Ack5),
    PubComp(Ack5),
    Subscribe(Subscribe5),
    SubAck(SubAck5),
    Unsubscribe(Unsubscribe5),
    UnsubAck(SubAck5),
    PingReq,
    PingResp,
    Disconnect(ReasonOnly),
    Auth(ReasonOnly),
}

impl Packet5 {
    /// The control packet type number (1..=15, §2.1.2).
    pub fn type_number(&self) -> u8 {
        match self {
            Packet5::Connect(_) => 1,
            Packet5::ConnAck(_) => 2,
            Packet5::Publish(_) => 3,
            Packet5::PubAck(_) => 4,
            Packet5::PubRec(_) => 5,
            Packet5::PubRel(_) => 6,
            Packet5::PubComp(_) => 7,
            Packet5::Subscribe(_) => 8,
            Packet5::SubAck(_) => 9,
            Packet5::Unsubscribe(_) => 10,
            Packet5::UnsubAck(_) => 11,
            Packet5::PingReq => 12,
            Packet5::PingResp => 13,
            Packet5::Disconnect(_) => 14,
            Packet5::Auth(_) => 15,
        }
    }

    /// The packet's name as the specification writes it ("CONNECT", …).
    pub fn name(&self) -> &'static str {
        match self {
            Packet5::Connect(_) => "CONNECT",
            Packet5::ConnAck(_) => "CONNACK",
            Packet5::Publish(_) => "PUBLISH",
            Packet5::PubAck(_) => "PUBACK",
            Packet5::PubRec(_) => "PUBREC",
            Packet5::PubRel(_) => "PUBREL",
            Packet5::PubComp(_) => "PUBCOMP",
            Packet5::Subscribe(_) => "SUBSCRIBE",
            Packet5::SubAck(_) => "SUBACK",
            Packet5::Unsubscribe(_) => "UNSUBSCRIBE",
            Packet5::UnsubAck(_) => "UNSUBACK",
            Packet5::PingReq => "PINGREQ",
            Packet5::PingResp => "PINGRESP",
            Packet5::Disconnect(_) => "DISCONNECT",
            Packet5::Auth(_) => "AUTH",
        }
    }
}
