//! MQTT-SN v1.2 field types (§5.2, §5.3): message types, QoS (including
//! −1), topic id types, return codes, and the topic references PUBLISH and
//! SUBSCRIBE carry.

use std::fmt;

/// The MsgType octet (§5.2.2, table 3). Reserved values are decode errors.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[repr(u8)]
pub enum MsgType {
    Advertise = 0x00,
    SearchGw = 0x01,
    GwInfo = 0x02,
    Connect = 0x04,
    ConnAck = 0x05,
    WillTopicReq = 0x06,
    WillTopic = 0x07,
    WillMsgReq = 0x08,
    WillMsg = 0x09,
    Register = 0x0A,
    RegAck = 0x0B,
    Publish = 0x0C,
    PubAck = 0x0D,
    PubComp = 0x0E,
    PubRec = 0x0F,
    PubRel = 0x10,
    Subscribe = 0x12,
    SubAck = 0x13,
    Unsubscribe = 0x14,
    UnsubAck = 0x15,
    PingReq = 0x16,
    PingResp = 0x17,
    Disconnect = 0x18,
    WillTopicUpd = 0x1A,
    WillTopicResp = 0x1B,
    WillMsgUpd = 0x1C,
    WillMsgResp = 0x1D,
    /// Forwarder encapsulation (§5.5).
    Encapsulated = 0xFE,
}

/// Number of message types (size of per-type counter arrays).
pub const MSG_TYPES: usize = 28;

impl MsgType {
    /// Every type, in [`MsgType::index`] order.
    pub const ALL: [MsgType; MSG_TYPES] = [
        MsgType::Advertise,
        MsgType::SearchGw,
        MsgType::GwInfo,
        MsgType::Connect,
        MsgType::ConnAck,
        MsgType::WillTopicReq,
        MsgType::WillTopic,
        MsgType::WillMsgReq,
        MsgType::WillMsg,
        MsgType::Register,
        MsgType::RegAck,
        MsgType::Publish,
        MsgType::PubAck,
        MsgType::PubComp,
        MsgType::PubRec,
        MsgType::PubRel,
        MsgType::Subscribe,
        MsgType::SubAck,
        MsgType::Unsubscribe,
        MsgType::UnsubAck,
        MsgType::PingReq,
        MsgType::PingResp,
        MsgType::Disconnect,
        MsgType::WillTopicUpd,
        MsgType::WillTopicResp,
        MsgType::WillMsgUpd,
        MsgType::WillMsgResp,
        MsgType::Encapsulated,
    ];

    /// The type of a MsgType octet; reserved codes give `None`.
    pub fn from_u8(v: u8) -> Option<MsgType> {
        MsgType::ALL.iter().copied().find(|t| *t as u8 == v)
    }

    /// Index 0..28 for per-type counter arrays.
    pub fn index(self) -> usize {
        MsgType::ALL.iter().position(|t| *t == self).unwrap_or(0)
    }

    /// Packet label used in per-type counters and packets.csv
    /// (`mqttsn_publish`, …).
    pub fn label(self) -> &'static str {
        match self {
            MsgType::Advertise => "mqttsn_advertise",
            MsgType::SearchGw => "mqttsn_searchgw",
            MsgType::GwInfo => "mqttsn_gwinfo",
            MsgType::Connect => "mqttsn_connect",
            MsgType::ConnAck => "mqttsn_connack",
            MsgType::WillTopicReq => "mqttsn_willtopicreq",
            MsgType::WillTopic => "mqttsn_willtopic",
            MsgType::WillMsgReq => "mqttsn_willmsgreq",
            MsgType::WillMsg => "mqttsn_willmsg",
            MsgType::Register => "mqttsn_register",
            MsgType::RegAck => "mqttsn_regack",
            MsgType::Publish => "mqttsn_publish",
            MsgType::PubAck => "mqttsn_puback",
            MsgType::PubComp => "mqttsn_pubcomp",
            MsgType::PubRec => "mqttsn_pubrec",
            MsgType::PubRel => "mqttsn_pubrel",
            MsgType::Subscribe => "mqttsn_subscribe",
            MsgType::SubAck => "mqttsn_suback",
            MsgType::Unsubscribe => "mqttsn_unsubscribe",
            MsgType::UnsubAck => "mqttsn_unsuback",
            MsgType::PingReq => "mqttsn_pingreq",
            MsgType::PingResp => "mqttsn_pingresp",
            MsgType::Disconnect => "mqttsn_disconnect",
            MsgType::WillTopicUpd => "mqttsn_willtopicupd",
            MsgType::WillTopicResp => "mqttsn_willtopicresp",
            MsgType::WillMsgUpd => "mqttsn_willmsgupd",
            MsgType::WillMsgResp => "mqttsn_willmsgresp",
            MsgType::Encapsulated => "mqttsn_encapsulated",
        }
    }
}

impl fmt::Display for MsgType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.label())
    }
}

/// Per-type counters, indexed by [`MsgType::index`].
pub type TypeCounters = [u64; MSG_TYPES];

/// Messages and bytes sent and received, by message type.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TypeStats {
    pub sent: TypeCounters,
    pub bytes_sent: TypeCounters,
    pub received: TypeCounters,
    pub bytes_received: TypeCounters,
}

impl Default for TypeStats {
    fn default() -> Self {
        TypeStats {
            sent: [0; MSG_TYPES],
            bytes_sent: [0; MSG_TYPES],
            received: [0; MSG_TYPES],
            bytes_received: [0; MSG_TYPES],
        }
    }
}

impl TypeStats {
    pub(crate) fn count_sent(&mut self, ty: MsgType, len: usize) {
        if let Some(x) = self.sent.get_mut(ty.index()) {
            *x += 1;
        }
        if let Some(x) = self.bytes_sent.get_mut(ty.index()) {
            *x += len as u64;
        }
    }
    pub(crate) fn count_received(&mut self, ty: MsgType, len: usize) {
        if let Some(x) = self.received.get_mut(ty.index()) {
            *x += 1;
        }
        if let Some(x) = self.bytes_received.get_mut(ty.index()) {
            *x += len as u64;
        }
    }
}

/// QoS level of the Flags octet (§5.3.4): bits 6–5, `0b11` is QoS −1.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub enum Qos {
    /// QoS −1: publish without a connection (§6.8), predefined or short
    /// topics only.
    MinusOne,
    #[default]
    Zero,
    One,
    Two,
}

impl Qos {
    /// The two flag bits (already shifted to bits 6–5).
    pub fn flag_bits(self) -> u8 {
        (match self {
            Qos::Zero => 0b00,
            Qos::One => 0b01,
            Qos::Two => 0b10,
            Qos::MinusOne => 0b11,
        }) << 5
    }
    /// From a Flags octet.
    pub fn from_flags(flags: u8) -> Qos {
        match (flags >> 5) & 0b11 {
            0b00 => Qos::Zero,
            0b01 => Qos::One,
            0b10 => Qos::Two,
            _ => Qos::MinusOne,
        }
    }
    /// The MQTT QoS this maps to upstream (−1 → 0, §6.8).
    pub fn to_mqtt(self) -> crate::proto::mqtt::QoS {
        use crate::proto::mqtt::QoS as M;
        match self {
            Qos::MinusOne | Qos::Zero => M::AtMostOnce,
            Qos::One => M::AtLeastOnce,
            Qos::Two => M::ExactlyOnce,
        }
    }
    pub fn from_mqtt(q: crate::proto::mqtt::QoS) -> Qos {
        use crate::proto::mqtt::QoS as M;
        match q {
            M::AtMostOnce => Qos::Zero,
            M::AtLeastOnce => Qos::One,
            M::ExactlyOnce => Qos::Two,
        }
    }
    /// True for QoS 1 and 2 (acknowledged, supervised by T_RETRY).
    pub fn acked(self) -> bool {
        matches!(self, Qos::One | Qos::Two)
    }
    /// Numeric level (−1, 0, 1, 2).
    pub fn level(self) -> i8 {
        match self {
            Qos::MinusOne => -1,
            Qos::Zero => 0,
            Qos::One => 1,
            Qos::Two => 2,
        }
    }
}

/// Flags bit 7 (§5.3.4).
pub const FLAG_DUP: u8 = 0x80;
/// Flags bit 4.
pub const FLAG_RETAIN: u8 = 0x10;
/// Flags bit 3.
pub const FLAG_WILL: u8 = 0x08;
/// Flags bit 2.
pub const FLAG_CLEAN_SESSION: u8 = 0x04;
/// Flags bits 1–0.
pub const TOPIC_ID_TYPE_MASK: u8 = 0x03;

/// TopicIdType (§5.3.4, flag bits 1–0); `0b11` is reserved.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[repr(u8)]
pub enum TopicIdType {
    /// A topic id assigned by REGISTER/REGACK (or a topic name in
    /// SUBSCRIBE/UNSUBSCRIBE).
    Normal = 0,
    /// A predefined topic id (§6.7).
    Predefined = 1,
    /// A two-character short topic name (§6.6).
    Short = 2,
}

impl TopicIdType {
    pub fn from_flags(flags: u8) -> Option<TopicIdType> {
        match flags & TOPIC_ID_TYPE_MASK {
            0 => Some(TopicIdType::Normal),
            1 => Some(TopicIdType::Predefined),
            2 => Some(TopicIdType::Short),
            _ => None,
        }
    }
}

/// ReturnCode (§5.3.10). Codes 0x04–0xFF are reserved: decode errors.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[repr(u8)]
pub enum ReturnCode {
    Accepted = 0x00,
    /// Rejected: congestion (retry after T_WAIT, §6.5, §6.8).
    Congestion = 0x01,
    /// Rejected: invalid topic ID.
    InvalidTopicId = 0x02,
    /// Rejected: not supported.
    NotSupported = 0x03,
}

impl ReturnCode {
    pub fn from_u8(v: u8) -> Option<ReturnCode> {
        match v {
            0 => Some(ReturnCode::Accepted),
            1 => Some(ReturnCode::Congestion),
            2 => Some(ReturnCode::InvalidTopicId),
            3 => Some(ReturnCode::NotSupported),
            _ => None,
        }
    }
}

/// The topic of a PUBLISH: the TopicId field read according to the
/// TopicIdType flag (§5.4.12).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum TopicRef {
    /// A registered topic id.
    Normal(u16),
    /// A predefined topic id.
    Predefined(u16),
    /// A short topic name (two octets, carried in the TopicId field).
    Short([u8; 2]),
}

impl TopicRef {
    pub fn id_type(self) -> TopicIdType {
        match self {
            TopicRef::Normal(_) => TopicIdType::Normal,
            TopicRef::Predefined(_) => TopicIdType::Predefined,
            TopicRef::Short(_) => TopicIdType::Short,
        }
    }
    /// The two octets of the TopicId field.
    pub fn field(self) -> [u8; 2] {
        match self {
            TopicRef::Normal(id) | TopicRef::Predefined(id) => id.to_be_bytes(),
            TopicRef::Short(s) => s,
        }
    }
    pub fn from_field(t: TopicIdType, b: [u8; 2]) -> TopicRef {
        match t {
            TopicIdType::Normal => TopicRef::Normal(u16::from_be_bytes(b)),
            TopicIdType::Predefined => TopicRef::Predefined(u16::from_be_bytes(b)),
            TopicIdType::Short => TopicRef::Short(b),
        }
    }
}

/// The topic of a SUBSCRIBE or UNSUBSCRIBE (§5.4.15, §5.4.17).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum SubTopic<'a> {
    /// A topic name or filter (wildcards allowed), TopicIdType 0.
    Name(&'a str),
    /// A predefined topic id, TopicIdType 1.
    Predefined(u16),
    /// A short topic name, TopicIdType 2.
    Short([u8; 2]),
}

impl SubTopic<'_> {
    pub fn id_type(self) -> TopicIdType {
        match self {
            SubTopic::Name(_) => TopicIdType::Normal,
            SubTopic::Predefined(_) => TopicIdType::Predefined,
            SubTopic::Short(_) => TopicIdType::Short,
        }
    }
}

/// The will topic of WILLTOPIC / WILLTOPICUPD (§5.4.7, §5.4.22).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WillTopic<'a> {
    pub qos: Qos,
    pub retain: bool,
    pub topic: &'a str,
}
