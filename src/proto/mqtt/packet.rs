//! MQTT 3.1.1 control packets as owned Rust values (OASIS MQTT 3.1.1 §2, §3).
//!
//! Every packet with a variable header is a struct, so MQTT 5.0 can later add
//! reason codes and a `properties` member to it without changing the
//! [`Packet`] enum's shape; [`Connect::protocol`] records which protocol
//! level a CONNECT asked for. Types make invalid packets hard to build: a
//! PUBLISH carries its packet identifier inside its QoS ([`QosPid`]), topics
//! are validated newtypes ([`TopicName`], [`TopicFilter`]), packet
//! identifiers are non-zero ([`PacketId`]).

use std::fmt;
use std::num::NonZeroU16;
use std::sync::Arc;

use super::topic::{TopicFilter, TopicName};

/// Quality of service level (§4.3).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
#[repr(u8)]
pub enum QoS {
    /// At most once (§4.3.1).
    #[default]
    AtMostOnce = 0,
    /// At least once (§4.3.2).
    AtLeastOnce = 1,
    /// Exactly once (§4.3.3).
    ExactlyOnce = 2,
}

impl QoS {
    /// The QoS for a 2-bit field value; 3 is malformed.
    pub fn from_u8(v: u8) -> Option<QoS> {
        match v {
            0 => Some(QoS::AtMostOnce),
            1 => Some(QoS::AtLeastOnce),
            2 => Some(QoS::ExactlyOnce),
            _ => None,
        }
    }
    /// The numeric level.
    pub fn as_u8(self) -> u8 {
        self as u8
    }
}

/// A packet identifier (§2.3.1): never zero [MQTT-2.3.1-1].
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PacketId(pub NonZeroU16);

impl PacketId {
    /// `None` for zero.
    pub fn new(v: u16) -> Option<PacketId> {
        NonZeroU16::new(v).map(PacketId)
    }
    /// The numeric value.
    pub fn get(self) -> u16 {
        self.0.get()
    }
    /// The identifier after this one, wrapping from 65535 to 1.
    pub fn next(self) -> PacketId {
        PacketId(NonZeroU16::new(self.get().wrapping_add(1)).unwrap_or(NonZeroU16::MIN))
    }
}

impl fmt::Display for PacketId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.get())
    }
}

/// A PUBLISH's QoS together with its packet identifier, which is present
/// exactly when QoS > 0 [MQTT-2.3.1-5].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum QosPid {
    AtMostOnce,
    AtLeastOnce(PacketId),
    ExactlyOnce(PacketId),
}

impl QosPid {
    /// Build from a QoS and an identifier (ignored for QoS 0).
    pub fn new(qos: QoS, pid: PacketId) -> QosPid {
        match qos {
            QoS::AtMostOnce => QosPid::AtMostOnce,
            QoS::AtLeastOnce => QosPid::AtLeastOnce(pid),
            QoS::ExactlyOnce => QosPid::ExactlyOnce(pid),
        }
    }
    pub fn qos(self) -> QoS {
        match self {
            QosPid::AtMostOnce => QoS::AtMostOnce,
            QosPid::AtLeastOnce(_) => QoS::AtLeastOnce,
            QosPid::ExactlyOnce(_) => QoS::ExactlyOnce,
        }
    }
    pub fn pid(self) -> Option<PacketId> {
        match self {
            QosPid::AtMostOnce => None,
            QosPid::AtLeastOnce(p) | QosPid::ExactlyOnce(p) => Some(p),
        }
    }
}

/// The protocol a CONNECT names (§3.1.2.1, §3.1.2.2). Only level 4
/// (MQTT 3.1.1) is decoded; the enum leaves room for level 5.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum ProtocolLevel {
    /// Protocol name "MQTT", level 4.
    #[default]
    V311,
}

impl ProtocolLevel {
    /// The protocol level byte.
    pub fn level(self) -> u8 {
        match self {
            ProtocolLevel::V311 => 4,
        }
    }
}

/// A will message (§3.1.2.5).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LastWill {
    pub topic: TopicName,
    pub message: Arc<[u8]>,
    pub qos: QoS,
    pub retain: bool,
}

/// CONNECT (§3.1).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Connect {
    pub protocol: ProtocolLevel,
    pub clean_session: bool,
    /// Seconds; 0 turns the mechanism off (§3.1.2.10).
    pub keep_alive: u16,
    /// May be empty (the server then assigns one when `clean_session`,
    /// [MQTT-3.1.3-6]).
    pub client_id: String,
    pub will: Option<LastWill>,
    pub username: Option<String>,
    pub password: Option<Vec<u8>>,
}

/// CONNACK return codes (§3.2.2.3, table 3.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[repr(u8)]
pub enum ConnectReturnCode {
    Accepted = 0,
    UnacceptableProtocolVersion = 1,
    IdentifierRejected = 2,
    ServerUnavailable = 3,
    BadUserNameOrPassword = 4,
    NotAuthorized = 5,
}

impl ConnectReturnCode {
    pub fn from_u8(v: u8) -> Option<Self> {
        use ConnectReturnCode::*;
        Some(match v {
            0 => Accepted,
            1 => UnacceptableProtocolVersion,
            2 => IdentifierRejected,
            3 => ServerUnavailable,
            4 => BadUserNameOrPassword,
            5 => NotAuthorized,
            _ => return None,
        })
    }
}

/// CONNACK (§3.2).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConnAck {
    pub session_present: bool,
    pub code: ConnectReturnCode,
}

/// PUBLISH (§3.3).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Publish {
    pub dup: bool,
    pub qos_pid: QosPid,
    pub retain: bool,
    pub topic: TopicName,
    pub payload: Arc<[u8]>,
}

/// The packet identifier–only acknowledgements PUBACK, PUBREC, PUBREL,
/// PUBCOMP and UNSUBACK (§3.4–3.7, §3.11). MQTT 5.0 adds a reason code and
/// properties here.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ack {
    pub pid: PacketId,
}

/// SUBSCRIBE (§3.8): at least one filter [MQTT-3.8.3-3].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Subscribe {
    pub pid: PacketId,
    pub filters: Vec<(TopicFilter, QoS)>,
}

/// One SUBACK return code (§3.9.3).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SubAckReturn {
    Success(QoS),
    Failure,
}

impl SubAckReturn {
    pub fn as_u8(self) -> u8 {
        match self {
            SubAckReturn::Success(q) => q.as_u8(),
            SubAckReturn::Failure => 0x80,
        }
    }
    pub fn from_u8(v: u8) -> Option<Self> {
        match v {
            0x80 => Some(SubAckReturn::Failure),
            v => QoS::from_u8(v).map(SubAckReturn::Success),
        }
    }
}

/// SUBACK (§3.9).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SubAck {
    pub pid: PacketId,
    pub codes: Vec<SubAckReturn>,
}

/// UNSUBSCRIBE (§3.10): at least one filter [MQTT-3.10.3-2].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Unsubscribe {
    pub pid: PacketId,
    pub filters: Vec<TopicFilter>,
}

/// The 14 control packet types (§2.2.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[repr(u8)]
pub enum PacketType {
    Connect = 1,
    ConnAck = 2,
    Publish = 3,
    PubAck = 4,
    PubRec = 5,
    PubRel = 6,
    PubComp = 7,
    Subscribe = 8,
    SubAck = 9,
    Unsubscribe = 10,
    UnsubAck = 11,
    PingReq = 12,
    PingResp = 13,
    Disconnect = 14,
}

impl PacketType {
    /// All 14, in type-number order (index = number − 1).
    pub const ALL: [PacketType; 14] = [
        PacketType::Connect,
        PacketType::ConnAck,
        PacketType::Publish,
        PacketType::PubAck,
        PacketType::PubRec,
        PacketType::PubRel,
        PacketType::PubComp,
        PacketType::Subscribe,
        PacketType::SubAck,
        PacketType::Unsubscribe,
        PacketType::UnsubAck,
        PacketType::PingReq,
        PacketType::PingResp,
        PacketType::Disconnect,
    ];

    /// The type for the high nibble of the first byte; 0 and 15 are reserved.
    pub fn from_u8(v: u8) -> Option<PacketType> {
        PacketType::ALL.get(usize::from(v).checked_sub(1)?).copied()
    }

    /// The name the spec uses ("CONNECT", "PUBLISH", …), for per-type byte
    /// accounting.
    pub fn name(self) -> &'static str {
        match self {
            PacketType::Connect => "CONNECT",
            PacketType::ConnAck => "CONNACK",
            PacketType::Publish => "PUBLISH",
            PacketType::PubAck => "PUBACK",
            PacketType::PubRec => "PUBREC",
            PacketType::PubRel => "PUBREL",
            PacketType::PubComp => "PUBCOMP",
            PacketType::Subscribe => "SUBSCRIBE",
            PacketType::SubAck => "SUBACK",
            PacketType::Unsubscribe => "UNSUBSCRIBE",
            PacketType::UnsubAck => "UNSUBACK",
            PacketType::PingReq => "PINGREQ",
            PacketType::PingResp => "PINGRESP",
            PacketType::Disconnect => "DISCONNECT",
        }
    }

    /// Index 0..14, for per-type counter arrays.
    pub fn index(self) -> usize {
        self as usize - 1
    }

    /// The `packets.csv` kind of a TCP segment whose first byte belongs to
    /// a packet of this type (`mqtt_publish`, …); also the names a packet
    /// fault's `kind` may give. The one table of these names.
    pub fn kind(self) -> &'static str {
        const KINDS: [&str; 14] = [
            "mqtt_connect",
            "mqtt_connack",
            "mqtt_publish",
            "mqtt_puback",
            "mqtt_pubrec",
            "mqtt_pubrel",
            "mqtt_pubcomp",
            "mqtt_subscribe",
            "mqtt_suback",
            "mqtt_unsubscribe",
            "mqtt_unsuback",
            "mqtt_pingreq",
            "mqtt_pingresp",
            "mqtt_disconnect",
        ];
        KINDS[self.index()]
    }
}

impl fmt::Display for PacketType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Any MQTT 3.1.1 control packet.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Packet {
    Connect(Connect),
    ConnAck(ConnAck),
    Publish(Publish),
    PubAck(Ack),
    PubRec(Ack),
    PubRel(Ack),
    PubComp(Ack),
    Subscribe(Subscribe),
    SubAck(SubAck),
    Unsubscribe(Unsubscribe),
    UnsubAck(Ack),
    PingReq,
    PingResp,
    Disconnect,
}

impl Packet {
    /// The control packet type.
    pub fn packet_type(&self) -> PacketType {
        match self {
            Packet::Connect(_) => PacketType::Connect,
            Packet::ConnAck(_) => PacketType::ConnAck,
            Packet::Publish(_) => PacketType::Publish,
            Packet::PubAck(_) => PacketType::PubAck,
            Packet::PubRec(_) => PacketType::PubRec,
            Packet::PubRel(_) => PacketType::PubRel,
            Packet::PubComp(_) => PacketType::PubComp,
            Packet::Subscribe(_) => PacketType::Subscribe,
            Packet::SubAck(_) => PacketType::SubAck,
            Packet::Unsubscribe(_) => PacketType::Unsubscribe,
            Packet::UnsubAck(_) => PacketType::UnsubAck,
            Packet::PingReq => PacketType::PingReq,
            Packet::PingResp => PacketType::PingResp,
            Packet::Disconnect => PacketType::Disconnect,
        }
    }
    /// "CONNECT", "PUBLISH", …
    pub fn name(&self) -> &'static str {
        self.packet_type().name()
    }
}
