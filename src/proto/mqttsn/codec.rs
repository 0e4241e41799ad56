//! MQTT-SN v1.2 wire format (§5): a checked decoder returning borrowed
//! views ([`Message<'a>`]) and an encoder appending to a caller's buffer.
//!
//! * [`decode`] takes one whole datagram and returns the message it holds,
//!   or a [`DecodeError`] naming what is wrong. A datagram carries exactly
//!   one message (§5.2.1): the Length field must equal the datagram length.
//! * [`Message::encode`] appends the message; [`Message::encoded_len`] is
//!   its exact size. Nothing is allocated: topics, payloads and client ids
//!   are borrowed both ways.
//!
//! Length (§5.2.1): one octet giving the whole message length (2..=255), or
//! `0x01` followed by a 16-bit length (the whole message, these three
//! octets included). The encoder uses the 3-octet form only when the
//! message would not fit in 255 octets; the decoder accepts either form for
//! any length, as the spec allows.
//!
//! No-panic rule: every read is bounds-checked through `Reader`; malformed
//! bytes yield an error, never a panic (`tests/mqttsn_codec.rs` feeds
//! arbitrary bytes). Bits a message does not use in its Flags octet are
//! ignored on decode and written as 0.

use thiserror::Error;

use super::types::{
    MsgType, Qos, ReturnCode, SubTopic, TopicIdType, TopicRef, WillTopic, FLAG_CLEAN_SESSION,
    FLAG_DUP, FLAG_RETAIN, FLAG_WILL,
};

/// ProtocolId of CONNECT (§5.3.8).
pub const PROTOCOL_ID: u8 = 0x01;
/// Largest message the 3-octet Length field can describe.
pub const MAX_MESSAGE_LEN: usize = 65535;

/// Why a datagram is not a valid MQTT-SN message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum DecodeError {
    #[error("datagram of {0} bytes is shorter than a message header (§5.2)")]
    Short(usize),
    #[error("Length field {length} does not match the datagram's {actual} bytes (§5.2.1)")]
    LengthMismatch { length: usize, actual: usize },
    #[error("Length field {0} is smaller than the header it covers (§5.2.1)")]
    BadLengthField(usize),
    #[error("reserved MsgType {0:#04x} (§5.2.2)")]
    BadType(u8),
    #[error("{ty}: body of {len} bytes is wrong for this message (§5.4)")]
    BadLength { ty: MsgType, len: usize },
    #[error("{ty}: reserved TopicIdType 0b11 (§5.3.4)")]
    ReservedTopicIdType { ty: MsgType },
    #[error("CONNECT: ProtocolId {0:#04x} is not 0x01 (§5.3.8)")]
    BadProtocolId(u8),
    #[error("{ty}: reserved ReturnCode {code:#04x} (§5.3.10)")]
    BadReturnCode { ty: MsgType, code: u8 },
    #[error("{ty}: QoS −1 is only meaningful in PUBLISH (§5.3.4)")]
    BadQos { ty: MsgType },
    #[error("{ty}: {field} is not UTF-8")]
    InvalidUtf8 { ty: MsgType, field: &'static str },
    #[error("{ty}: empty {field}")]
    Empty { ty: MsgType, field: &'static str },
    #[error("encapsulated message: Length {0} leaves no room for Ctrl (§5.5)")]
    BadEncapsulation(usize),
    #[error("encapsulated message nests another encapsulation (§5.5)")]
    NestedEncapsulation,
    #[error("encapsulated message: inner message: {0}")]
    Inner(InnerError),
}

/// The inner message's error (boxed-free: its own description).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InnerError(pub &'static str);

impl std::fmt::Display for InnerError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.0)
    }
}

impl DecodeError {
    /// A short stable name for counters and inner errors.
    pub fn kind(&self) -> &'static str {
        match self {
            DecodeError::Short(_) => "short",
            DecodeError::LengthMismatch { .. } => "length_mismatch",
            DecodeError::BadLengthField(_) => "bad_length_field",
            DecodeError::BadType(_) => "bad_type",
            DecodeError::BadLength { .. } => "bad_length",
            DecodeError::ReservedTopicIdType { .. } => "reserved_topic_id_type",
            DecodeError::BadProtocolId(_) => "bad_protocol_id",
            DecodeError::BadReturnCode { .. } => "bad_return_code",
            DecodeError::BadQos { .. } => "bad_qos",
            DecodeError::InvalidUtf8 { .. } => "invalid_utf8",
            DecodeError::Empty { .. } => "empty_field",
            DecodeError::BadEncapsulation(_) => "bad_encapsulation",
            DecodeError::NestedEncapsulation => "nested_encapsulation",
            DecodeError::Inner(_) => "inner",
        }
    }
}

/// Why a message cannot be encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum EncodeError {
    #[error("message of {0} bytes exceeds 65535 (§5.2.1)")]
    TooLarge(usize),
    #[error("encapsulation header of {0} bytes exceeds 255 (§5.5)")]
    NodeIdTooLong(usize),
}

/// One MQTT-SN message, borrowing its variable-length fields from the
/// datagram (decode) or from the caller (encode).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Message<'a> {
    /// §5.4.1: GwId, Duration (seconds to the next ADVERTISE).
    Advertise {
        gw_id: u8,
        duration: u16,
    },
    /// §5.4.2.
    SearchGw {
        radius: u8,
    },
    /// §5.4.3: `gw_add` is empty when a gateway sends it, the gateway's
    /// address when a client answers for it.
    GwInfo {
        gw_id: u8,
        gw_add: &'a [u8],
    },
    /// §5.4.4: Flags (Will, CleanSession), ProtocolId, Duration, ClientId.
    Connect {
        will: bool,
        clean_session: bool,
        duration: u16,
        client_id: &'a str,
    },
    /// §5.4.5.
    ConnAck {
        code: ReturnCode,
    },
    /// §5.4.6.
    WillTopicReq,
    /// §5.4.7; `None` is the empty WILLTOPIC (2 octets) that deletes the
    /// will.
    WillTopic(Option<WillTopic<'a>>),
    /// §5.4.8.
    WillMsgReq,
    /// §5.4.9.
    WillMsg {
        msg: &'a [u8],
    },
    /// §5.4.10: TopicId (0 from a client), MsgId, TopicName.
    Register {
        topic_id: u16,
        msg_id: u16,
        topic_name: &'a str,
    },
    /// §5.4.11.
    RegAck {
        topic_id: u16,
        msg_id: u16,
        code: ReturnCode,
    },
    /// §5.4.12: Flags (DUP, QoS, Retain, TopicIdType), TopicId, MsgId, Data.
    Publish {
        dup: bool,
        qos: Qos,
        retain: bool,
        topic: TopicRef,
        msg_id: u16,
        data: &'a [u8],
    },
    /// §5.4.13.
    PubAck {
        topic_id: u16,
        msg_id: u16,
        code: ReturnCode,
    },
    /// §5.4.14.
    PubRec {
        msg_id: u16,
    },
    PubRel {
        msg_id: u16,
    },
    PubComp {
        msg_id: u16,
    },
    /// §5.4.15: Flags (DUP, QoS, TopicIdType), MsgId, TopicName or TopicId.
    Subscribe {
        dup: bool,
        qos: Qos,
        msg_id: u16,
        topic: SubTopic<'a>,
    },
    /// §5.4.16: Flags (granted QoS), TopicId, MsgId, ReturnCode.
    SubAck {
        qos: Qos,
        topic_id: u16,
        msg_id: u16,
        code: ReturnCode,
    },
    /// §5.4.17: Flags (TopicIdType), MsgId, TopicName or TopicId.
    Unsubscribe {
        msg_id: u16,
        topic: SubTopic<'a>,
    },
    /// §5.4.18.
    UnsubAck {
        msg_id: u16,
    },
    /// §5.4.19: ClientId only from a sleeping client waking up
    /// (`Some("")` is written as, and decodes as, `None`).
    PingReq {
        client_id: Option<&'a str>,
    },
    /// §5.4.20.
    PingResp,
    /// §5.4.21: Duration only from a client going to sleep.
    Disconnect {
        duration: Option<u16>,
    },
    /// §5.4.22; `None` is the empty WILLTOPICUPD that deletes the will.
    WillTopicUpd(Option<WillTopic<'a>>),
    /// §5.4.23.
    WillTopicResp {
        code: ReturnCode,
    },
    /// §5.4.24.
    WillMsgUpd {
        msg: &'a [u8],
    },
    /// §5.4.25.
    WillMsgResp {
        code: ReturnCode,
    },
    /// §5.5: Ctrl (Radius in bits 1–0), Wireless Node Id, then one whole
    /// MQTT-SN message (`inner`, already checked by [`decode`]).
    Encapsulated {
        radius: u8,
        node_id: &'a [u8],
        inner: &'a [u8],
    },
}

/// Total length for a body of `body` bytes after the MsgType octet.
pub fn total_len(body: usize) -> usize {
    if body + 2 <= 255 {
        body + 2
    } else {
        body + 4
    }
}

fn qos_flags(qos: Qos) -> u8 {
    qos.flag_bits()
}

impl Message<'_> {
    pub fn msg_type(&self) -> MsgType {
        match self {
            Message::Advertise { .. } => MsgType::Advertise,
            Message::SearchGw { .. } => MsgType::SearchGw,
            Message::GwInfo { .. } => MsgType::GwInfo,
            Message::Connect { .. } => MsgType::Connect,
            Message::ConnAck { .. } => MsgType::ConnAck,
            Message::WillTopicReq => MsgType::WillTopicReq,
            Message::WillTopic(_) => MsgType::WillTopic,
            Message::WillMsgReq => MsgType::WillMsgReq,
            Message::WillMsg { .. } => MsgType::WillMsg,
            Message::Register { .. } => MsgType::Register,
            Message::RegAck { .. } => MsgType::RegAck,
            Message::Publish { .. } => MsgType::Publish,
            Message::PubAck { .. } => MsgType::PubAck,
            Message::PubRec { .. } => MsgType::PubRec,
            Message::PubRel { .. } => MsgType::PubRel,
            Message::PubComp { .. } => MsgType::PubComp,
            Message::Subscribe { .. } => MsgType::Subscribe,
            Message::SubAck { .. } => MsgType::SubAck,
            Message::Unsubscribe { .. } => MsgType::Unsubscribe,
            Message::UnsubAck { .. } => MsgType::UnsubAck,
            Message::PingReq { .. } => MsgType::PingReq,
            Message::PingResp => MsgType::PingResp,
            Message::Disconnect { .. } => MsgType::Disconnect,
            Message::WillTopicUpd(_) => MsgType::WillTopicUpd,
            Message::WillTopicResp { .. } => MsgType::WillTopicResp,
            Message::WillMsgUpd { .. } => MsgType::WillMsgUpd,
            Message::WillMsgResp { .. } => MsgType::WillMsgResp,
            Message::Encapsulated { .. } => MsgType::Encapsulated,
        }
    }

    /// Bytes after the MsgType octet (for the encapsulation: after MsgType
    /// up to the end of the Wireless Node Id).
    fn body_len(&self) -> usize {
        fn sub(t: &SubTopic<'_>) -> usize {
            match t {
                SubTopic::Name(n) => n.len(),
                _ => 2,
            }
        }
        match self {
            Message::Advertise { .. } => 3,
            Message::SearchGw { .. } => 1,
            Message::GwInfo { gw_add, .. } => 1 + gw_add.len(),
            Message::Connect { client_id, .. } => 4 + client_id.len(),
            Message::ConnAck { .. } => 1,
            Message::WillTopicReq | Message::WillMsgReq | Message::PingResp => 0,
            Message::WillTopic(w) | Message::WillTopicUpd(w) => w.map_or(0, |w| 1 + w.topic.len()),
            Message::WillMsg { msg } | Message::WillMsgUpd { msg } => msg.len(),
            Message::Register { topic_name, .. } => 4 + topic_name.len(),
            Message::RegAck { .. } | Message::PubAck { .. } => 5,
            Message::Publish { data, .. } => 5 + data.len(),
            Message::PubRec { .. }
            | Message::PubRel { .. }
            | Message::PubComp { .. }
            | Message::UnsubAck { .. } => 2,
            Message::Subscribe { topic, .. } | Message::Unsubscribe { topic, .. } => 3 + sub(topic),
            Message::SubAck { .. } => 6,
            Message::PingReq { client_id } => client_id.map_or(0, str::len),
            Message::Disconnect { duration } => duration.map_or(0, |_| 2),
            Message::WillTopicResp { .. } | Message::WillMsgResp { .. } => 1,
            Message::Encapsulated { node_id, .. } => 1 + node_id.len(),
        }
    }

    /// Exact encoded size in bytes (for the encapsulation: header plus the
    /// inner message).
    pub fn encoded_len(&self) -> usize {
        match self {
            Message::Encapsulated { node_id, inner, .. } => 3 + node_id.len() + inner.len(),
            m => total_len(m.body_len()),
        }
    }

    /// Append the encoded message to `buf`; returns the bytes written.
    pub fn encode(&self, buf: &mut Vec<u8>) -> Result<usize, EncodeError> {
        let start = buf.len();
        let body = self.body_len();
        let ty = self.msg_type() as u8;
        if let Message::Encapsulated {
            radius,
            node_id,
            inner,
        } = self
        {
            // §5.5: Length counts up to the end of the Wireless Node Id.
            let hdr = 3 + node_id.len();
            let Ok(h) = u8::try_from(hdr) else {
                return Err(EncodeError::NodeIdTooLong(hdr));
            };
            buf.reserve(hdr + inner.len());
            buf.extend_from_slice(&[h, ty, radius & 0x03]);
            buf.extend_from_slice(node_id);
            buf.extend_from_slice(inner);
            return Ok(buf.len() - start);
        }
        let total = total_len(body);
        if total > MAX_MESSAGE_LEN {
            return Err(EncodeError::TooLarge(total));
        }
        buf.reserve(total);
        if total <= 255 {
            buf.push(total as u8);
        } else {
            buf.push(0x01);
            buf.extend_from_slice(&(total as u16).to_be_bytes());
        }
        buf.push(ty);
        match *self {
            Message::Advertise { gw_id, duration } => {
                buf.push(gw_id);
                buf.extend_from_slice(&duration.to_be_bytes());
            }
            Message::SearchGw { radius } => buf.push(radius),
            Message::GwInfo { gw_id, gw_add } => {
                buf.push(gw_id);
                buf.extend_from_slice(gw_add);
            }
            Message::Connect {
                will,
                clean_session,
                duration,
                client_id,
            } => {
                let mut f = 0;
                if will {
                    f |= FLAG_WILL;
                }
                if clean_session {
                    f |= FLAG_CLEAN_SESSION;
                }
                buf.extend_from_slice(&[f, PROTOCOL_ID]);
                buf.extend_from_slice(&duration.to_be_bytes());
                buf.extend_from_slice(client_id.as_bytes());
            }
            Message::ConnAck { code }
            | Message::WillTopicResp { code }
            | Message::WillMsgResp { code } => buf.push(code as u8),
            Message::WillTopicReq | Message::WillMsgReq | Message::PingResp => {}
            Message::WillTopic(w) | Message::WillTopicUpd(w) => {
                if let Some(w) = w {
                    let mut f = qos_flags(w.qos);
                    if w.retain {
                        f |= FLAG_RETAIN;
                    }
                    buf.push(f);
                    buf.extend_from_slice(w.topic.as_bytes());
                }
            }
            Message::WillMsg { msg } | Message::WillMsgUpd { msg } => buf.extend_from_slice(msg),
            Message::Register {
                topic_id,
                msg_id,
                topic_name,
            } => {
                buf.extend_from_slice(&topic_id.to_be_bytes());
                buf.extend_from_slice(&msg_id.to_be_bytes());
                buf.extend_from_slice(topic_name.as_bytes());
            }
            Message::RegAck {
                topic_id,
                msg_id,
                code,
            }
            | Message::PubAck {
                topic_id,
                msg_id,
                code,
            } => {
                buf.extend_from_slice(&topic_id.to_be_bytes());
                buf.extend_from_slice(&msg_id.to_be_bytes());
                buf.push(code as u8);
            }
            Message::Publish {
                dup,
                qos,
                retain,
                topic,
                msg_id,
                data,
            } => {
                let mut f = qos_flags(qos) | topic.id_type() as u8;
                if dup {
                    f |= FLAG_DUP;
                }
                if retain {
                    f |= FLAG_RETAIN;
                }
                buf.push(f);
                buf.extend_from_slice(&topic.field());
                buf.extend_from_slice(&msg_id.to_be_bytes());
                buf.extend_from_slice(data);
            }
            Message::PubRec { msg_id }
            | Message::PubRel { msg_id }
            | Message::PubComp { msg_id }
            | Message::UnsubAck { msg_id } => buf.extend_from_slice(&msg_id.to_be_bytes()),
            Message::Subscribe {
                dup,
                qos,
                msg_id,
                topic,
            } => {
                let mut f = qos_flags(qos) | topic.id_type() as u8;
                if dup {
                    f |= FLAG_DUP;
                }
                buf.push(f);
                buf.extend_from_slice(&msg_id.to_be_bytes());
                put_sub_topic(buf, topic);
            }
            Message::Unsubscribe { msg_id, topic } => {
                buf.push(topic.id_type() as u8);
                buf.extend_from_slice(&msg_id.to_be_bytes());
                put_sub_topic(buf, topic);
            }
            Message::SubAck {
                qos,
                topic_id,
                msg_id,
                code,
            } => {
                buf.push(qos_flags(qos));
                buf.extend_from_slice(&topic_id.to_be_bytes());
                buf.extend_from_slice(&msg_id.to_be_bytes());
                buf.push(code as u8);
            }
            Message::PingReq { client_id } => {
                if let Some(c) = client_id {
                    buf.extend_from_slice(c.as_bytes());
                }
            }
            Message::Disconnect { duration } => {
                if let Some(d) = duration {
                    buf.extend_from_slice(&d.to_be_bytes());
                }
            }
            Message::Encapsulated { .. } => {}
        }
        Ok(buf.len() - start)
    }
}

fn put_sub_topic(buf: &mut Vec<u8>, t: SubTopic<'_>) {
    match t {
        SubTopic::Name(n) => buf.extend_from_slice(n.as_bytes()),
        SubTopic::Predefined(id) => buf.extend_from_slice(&id.to_be_bytes()),
        SubTopic::Short(s) => buf.extend_from_slice(&s),
    }
}

/// Bounds-checked reader over a message body.
struct Reader<'a> {
    buf: &'a [u8],
    ty: MsgType,
}

impl<'a> Reader<'a> {
    fn bad(&self) -> DecodeError {
        DecodeError::BadLength {
            ty: self.ty,
            len: self.buf.len(),
        }
    }
    fn u8(&mut self) -> Result<u8, DecodeError> {
        let (&b, rest) = self.buf.split_first().ok_or_else(|| self.bad())?;
        self.buf = rest;
        Ok(b)
    }
    fn u16(&mut self) -> Result<u16, DecodeError> {
        let b = self.two()?;
        Ok(u16::from_be_bytes(b))
    }
    fn two(&mut self) -> Result<[u8; 2], DecodeError> {
        match self.buf {
            [a, b, rest @ ..] => {
                let r = [*a, *b];
                self.buf = rest;
                Ok(r)
            }
            _ => Err(self.bad()),
        }
    }
    fn rest(&mut self) -> &'a [u8] {
        std::mem::take(&mut self.buf)
    }
    fn str(&mut self, field: &'static str) -> Result<&'a str, DecodeError> {
        let ty = self.ty;
        std::str::from_utf8(self.rest()).map_err(|_| DecodeError::InvalidUtf8 { ty, field })
    }
    fn nonempty_str(&mut self, field: &'static str) -> Result<&'a str, DecodeError> {
        let s = self.str(field)?;
        if s.is_empty() {
            return Err(DecodeError::Empty { ty: self.ty, field });
        }
        Ok(s)
    }
    fn code(&mut self) -> Result<ReturnCode, DecodeError> {
        let c = self.u8()?;
        ReturnCode::from_u8(c).ok_or(DecodeError::BadReturnCode {
            ty: self.ty,
            code: c,
        })
    }
    fn finish(&self) -> Result<(), DecodeError> {
        if self.buf.is_empty() {
            Ok(())
        } else {
            Err(DecodeError::BadLength {
                ty: self.ty,
                len: self.buf.len(),
            })
        }
    }
    fn exact(&self, n: usize) -> Result<(), DecodeError> {
        if self.buf.len() == n {
            Ok(())
        } else {
            Err(self.bad())
        }
    }
    fn topic_id_type(&self, flags: u8) -> Result<TopicIdType, DecodeError> {
        TopicIdType::from_flags(flags).ok_or(DecodeError::ReservedTopicIdType { ty: self.ty })
    }
    fn non_minus_qos(&self, flags: u8) -> Result<Qos, DecodeError> {
        match Qos::from_flags(flags) {
            Qos::MinusOne => Err(DecodeError::BadQos { ty: self.ty }),
            q => Ok(q),
        }
    }
    fn sub_topic(&mut self, t: TopicIdType) -> Result<SubTopic<'a>, DecodeError> {
        Ok(match t {
            TopicIdType::Normal => SubTopic::Name(self.nonempty_str("TopicName")?),
            TopicIdType::Predefined => {
                self.exact(2)?;
                SubTopic::Predefined(self.u16()?)
            }
            TopicIdType::Short => {
                self.exact(2)?;
                SubTopic::Short(self.two()?)
            }
        })
    }
    fn will_topic(&mut self) -> Result<Option<WillTopic<'a>>, DecodeError> {
        if self.buf.is_empty() {
            return Ok(None); // the empty WILLTOPIC / WILLTOPICUPD (§5.4.7)
        }
        let f = self.u8()?;
        let qos = self.non_minus_qos(f)?;
        Ok(Some(WillTopic {
            qos,
            retain: f & FLAG_RETAIN != 0,
            topic: self.nonempty_str("WillTopic")?,
        }))
    }
}

/// Split the Length field: `(total length, header length)`.
fn parse_length(buf: &[u8]) -> Result<(usize, usize), DecodeError> {
    match buf {
        [] | [_] => Err(DecodeError::Short(buf.len())),
        [0x01, hi, lo, ..] => Ok((usize::from(u16::from_be_bytes([*hi, *lo])), 3)),
        [0x01, ..] => Err(DecodeError::Short(buf.len())),
        [l, ..] => Ok((usize::from(*l), 1)),
    }
}

/// Decode one datagram holding one MQTT-SN message.
pub fn decode(buf: &[u8]) -> Result<Message<'_>, DecodeError> {
    let (total, hlen) = parse_length(buf)?;
    let raw_type = *buf.get(hlen).ok_or(DecodeError::Short(buf.len()))?;
    if raw_type == MsgType::Encapsulated as u8 {
        return decode_encapsulated(buf);
    }
    if total < hlen + 1 {
        return Err(DecodeError::BadLengthField(total));
    }
    if total != buf.len() {
        return Err(DecodeError::LengthMismatch {
            length: total,
            actual: buf.len(),
        });
    }
    let ty = MsgType::from_u8(raw_type).ok_or(DecodeError::BadType(raw_type))?;
    let body = buf.get(hlen + 1..).unwrap_or(&[]);
    let mut r = Reader { buf: body, ty };
    let m = match ty {
        MsgType::Advertise => {
            r.exact(3)?;
            Message::Advertise {
                gw_id: r.u8()?,
                duration: r.u16()?,
            }
        }
        MsgType::SearchGw => {
            r.exact(1)?;
            Message::SearchGw { radius: r.u8()? }
        }
        MsgType::GwInfo => Message::GwInfo {
            gw_id: r.u8()?,
            gw_add: r.rest(),
        },
        MsgType::Connect => {
            let f = r.u8()?;
            let pid = r.u8()?;
            let duration = r.u16()?;
            if pid != PROTOCOL_ID {
                return Err(DecodeError::BadProtocolId(pid));
            }
            Message::Connect {
                will: f & FLAG_WILL != 0,
                clean_session: f & FLAG_CLEAN_SESSION != 0,
                duration,
                client_id: r.str("ClientId")?,
            }
        }
        MsgType::ConnAck => {
            r.exact(1)?;
            Message::ConnAck { code: r.code()? }
        }
        MsgType::WillTopicReq => {
            r.exact(0)?;
            Message::WillTopicReq
        }
        MsgType::WillTopic => Message::WillTopic(r.will_topic()?),
        MsgType::WillMsgReq => {
            r.exact(0)?;
            Message::WillMsgReq
        }
        MsgType::WillMsg => Message::WillMsg { msg: r.rest() },
        MsgType::Register => Message::Register {
            topic_id: r.u16()?,
            msg_id: r.u16()?,
            topic_name: r.nonempty_str("TopicName")?,
        },
        MsgType::RegAck | MsgType::PubAck => {
            r.exact(5)?;
            let (topic_id, msg_id, code) = (r.u16()?, r.u16()?, r.code()?);
            if ty == MsgType::RegAck {
                Message::RegAck {
                    topic_id,
                    msg_id,
                    code,
                }
            } else {
                Message::PubAck {
                    topic_id,
                    msg_id,
                    code,
                }
            }
        }
        MsgType::Publish => {
            let f = r.u8()?;
            let t = r.topic_id_type(f)?;
            let field = r.two()?;
            Message::Publish {
                dup: f & FLAG_DUP != 0,
                qos: Qos::from_flags(f),
                retain: f & FLAG_RETAIN != 0,
                topic: TopicRef::from_field(t, field),
                msg_id: r.u16()?,
                data: r.rest(),
            }
        }
        MsgType::PubRec | MsgType::PubRel | MsgType::PubComp | MsgType::UnsubAck => {
            r.exact(2)?;
            let msg_id = r.u16()?;
            match ty {
                MsgType::PubRec => Message::PubRec { msg_id },
                MsgType::PubRel => Message::PubRel { msg_id },
                MsgType::PubComp => Message::PubComp { msg_id },
                _ => Message::UnsubAck { msg_id },
            }
        }
        MsgType::Subscribe => {
            let f = r.u8()?;
            let t = r.topic_id_type(f)?;
            let qos = r.non_minus_qos(f)?;
            let msg_id = r.u16()?;
            Message::Subscribe {
                dup: f & FLAG_DUP != 0,
                qos,
                msg_id,
                topic: r.sub_topic(t)?,
            }
        }
        MsgType::SubAck => {
            r.exact(6)?;
            let f = r.u8()?;
            Message::SubAck {
                qos: r.non_minus_qos(f)?,
                topic_id: r.u16()?,
                msg_id: r.u16()?,
                code: r.code()?,
            }
        }
        MsgType::Unsubscribe => {
            let f = r.u8()?;
            let t = r.topic_id_type(f)?;
            let msg_id = r.u16()?;
            Message::Unsubscribe {
                msg_id,
                topic: r.sub_topic(t)?,
            }
        }
        MsgType::PingReq => {
            let c = r.str("ClientId")?;
            Message::PingReq {
                client_id: (!c.is_empty()).then_some(c),
            }
        }
        MsgType::PingResp => {
            r.exact(0)?;
            Message::PingResp
        }
        MsgType::Disconnect => {
            let duration = match r.buf.len() {
                0 => None,
                2 => Some(r.u16()?),
                _ => return Err(r.bad()),
            };
            Message::Disconnect { duration }
        }
        MsgType::WillTopicUpd => Message::WillTopicUpd(r.will_topic()?),
        MsgType::WillTopicResp | MsgType::WillMsgResp => {
            r.exact(1)?;
            let code = r.code()?;
            if ty == MsgType::WillTopicResp {
                Message::WillTopicResp { code }
            } else {
                Message::WillMsgResp { code }
            }
        }
        MsgType::WillMsgUpd => Message::WillMsgUpd { msg: r.rest() },
        MsgType::Encapsulated => return Err(DecodeError::NestedEncapsulation),
    };
    r.finish()?;
    Ok(m)
}

/// §5.5: Length (1 octet, up to the end of the Wireless Node Id), MsgType
/// 0xFE, Ctrl, Wireless Node Id, then one whole MQTT-SN message.
fn decode_encapsulated(buf: &[u8]) -> Result<Message<'_>, DecodeError> {
    let hdr = usize::from(*buf.first().ok_or(DecodeError::Short(0))?);
    if hdr < 3 {
        return Err(DecodeError::BadEncapsulation(hdr));
    }
    let ctrl = *buf.get(2).ok_or(DecodeError::Short(buf.len()))?;
    let node_id = buf.get(3..hdr).ok_or(DecodeError::Short(buf.len()))?;
    let inner = buf.get(hdr..).unwrap_or(&[]);
    match decode(inner) {
        Ok(Message::Encapsulated { .. }) => return Err(DecodeError::NestedEncapsulation),
        Ok(_) => {}
        Err(e) => return Err(DecodeError::Inner(InnerError(e.kind()))),
    }
    Ok(Message::Encapsulated {
        radius: ctrl & 0x03,
        node_id,
        inner,
    })
}

/// Longest message that may keep the 1-octet Length field when it is the
/// first byte of an IEEE 802.15.4 frame payload shared with 6LoWPAN: RFC
/// 4944 §5.1 reserves first bytes `00xxxxxx` (0x00–0x3F, "NALP": not a
/// LoWPAN frame) for other protocols, so a 1-octet Length of 64 or more
/// would be read as a 6LoWPAN dispatch.
pub const NALP_MAX_SHORT: usize = 0x3F;

/// One encoded MQTT-SN message in a form that may start a raw 802.15.4
/// frame payload beside 6LoWPAN (the NALP rule, [`NALP_MAX_SHORT`]).
///
/// Returns `msg` itself when its first byte is already 0x00–0x3F (a
/// message of up to 63 octets, any message in the 3-octet Length form, or
/// a §5.5 encapsulation whose header is under 64 octets). A message with a
/// 1-octet Length of 64..=255 that agrees with `msg.len()` is rewritten
/// into `out` (cleared first) in the 3-octet form — `0x01`, then the whole
/// new length (two octets more) big-endian, then MsgType and body as they
/// were — which MQTT-SN 1.2 §5.2.1 allows for any length and [`decode`]
/// reads back as the same [`Message`]. `out` is only written, never grown
/// beyond `msg.len() + 2`, so a buffer reused across calls stops
/// allocating once it has that capacity.
///
/// An encapsulation (§5.5, MsgType 0xFE) is never rewritten: its Length
/// octet counts only the header up to the Wireless Node Id and has no
/// 3-octet form. The forwarder's header is 9 octets, so it passes as is.
///
/// Never panics. Input it cannot rewrite comes back unchanged, and then
/// its first byte may still be 0x40 or more: empty input, a Length octet
/// that disagrees with `msg.len()`, or an encapsulation whose header is
/// 64+ octets (a Wireless Node Id of 61+). A caller putting the result on
/// a shared medium checks the first byte (`link::sixlowpan::classify`
/// gives `Nalp`) and drops such messages.
pub fn nalp_form<'a>(msg: &'a [u8], out: &'a mut Vec<u8>) -> &'a [u8] {
    match msg {
        [len, ty, body @ ..]
            if usize::from(*len) > NALP_MAX_SHORT
                && usize::from(*len) == msg.len()
                && *ty != MsgType::Encapsulated as u8 =>
        {
            // len ≤ 255, so the 3-octet form's length (len + 2) fits in u16.
            let total = (u16::from(*len) + 2).to_be_bytes();
            out.clear();
            out.extend_from_slice(&[0x01, total[0], total[1], *ty]);
            out.extend_from_slice(body);
            out
        }
        _ => msg,
    }
}

/// Encode `m` into `buf` (cleared first); the length written.
pub fn encode_into(m: &Message<'_>, buf: &mut Vec<u8>) -> Result<usize, EncodeError> {
    buf.clear();
    m.encode(buf)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn length_forms_switch_at_256() {
        let data = [7u8; 300];
        for n in [0usize, 1, 248, 249, 250, 251, 300] {
            let m = Message::Publish {
                dup: false,
                qos: Qos::One,
                retain: false,
                topic: TopicRef::Normal(1),
                msg_id: 9,
                data: &data[..n],
            };
            let mut b = Vec::new();
            let len = m.encode(&mut b).unwrap();
            assert_eq!(len, m.encoded_len());
            assert_eq!(len, b.len());
            if 7 + n <= 255 {
                assert_eq!(b[0] as usize, 7 + n);
            } else {
                assert_eq!(b[0], 0x01);
                assert_eq!(u16::from_be_bytes([b[1], b[2]]) as usize, 9 + n);
            }
            assert_eq!(decode(&b).unwrap(), m);
        }
    }

    #[test]
    fn three_octet_form_accepted_for_short_messages() {
        // PINGRESP in the long form: 0x01 0x00 0x04 0x17.
        assert_eq!(decode(&[0x01, 0x00, 0x04, 0x17]), Ok(Message::PingResp));
    }
}
