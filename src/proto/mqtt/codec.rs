//! MQTT 3.1.1 wire format (OASIS MQTT 3.1.1 §1.5, §2, §3): a streaming
//! decoder and an encoder into caller-provided buffers.
//!
//! * [`decode`] takes the bytes received so far on a connection and returns
//!   `Ok(Some((packet, consumed)))`, `Ok(None)` when the first packet is not
//!   complete yet, or a [`DecodeError`] when the bytes are malformed (the
//!   receiver then closes the network connection, §4.8).
//! * [`decode_view`] is the same parser returning a [`PacketView`] that
//!   borrows topic, payload and strings from the input and allocates
//!   nothing; [`decode`] is `decode_view` then [`PacketView::to_packet`].
//! * [`Packet::encode`] appends a packet to a `Vec<u8>`;
//!   [`Packet::encoded_len`] is its exact length, for overhead accounting.
//!   [`encode_publish`] and [`publish_len`] encode a PUBLISH from borrowed
//!   parts, so a broker fanning one message out builds no `Packet` per copy.
//!
//! No-panic rule: every read is bounds-checked through [`Reader`]; no
//! arithmetic on input-derived values can overflow; malformed bytes yield an
//! error naming the rule, never a panic (`tests/mqtt_codec.rs` feeds
//! arbitrary bytes). MQTT 5.0 would add a properties section after each
//! variable header: the per-packet functions below are where it goes, keyed
//! on the protocol level a CONNECT announced.

use thiserror::Error;

use super::packet::{
    Ack, ConnAck, ConnectReturnCode, Packet, PacketId, PacketType, ProtocolLevel, QoS, QosPid,
    SubAckReturn,
};
use super::topic::{TopicError, TopicFilter, TopicName};

mod encode;
mod view;
pub(crate) use encode::put_varint;
pub use encode::{encode_ack, encode_publish, publish_len, varint_len};
pub use view::{
    ConnectView, LastWillView, PacketView, PublishView, SubAckView, SubscribeView, UnsubscribeView,
};

/// Largest remaining length the 4-byte varint can express (§2.2.3).
pub const MAX_REMAINING_LEN: usize = 268_435_455;
/// Largest whole packet: 1 header byte + 4 length bytes + remaining length.
pub const MAX_PACKET_SIZE: usize = 1 + 4 + MAX_REMAINING_LEN;

/// Why bytes could not be decoded. The receiver closes the connection.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum DecodeError {
    #[error("reserved control packet type {0} (§2.2.1)")]
    ReservedType(u8),
    #[error("{packet}: invalid fixed-header flags {flags:#06b} [MQTT-2.2.2-2]")]
    InvalidFlags { packet: &'static str, flags: u8 },
    #[error("remaining length encoded in more than 4 bytes (§2.2.3)")]
    RemainingLength,
    #[error("packet of {size} bytes exceeds the {max}-byte limit")]
    TooLarge { size: usize, max: usize },
    #[error("{packet}: remaining length {len} is wrong for this packet type")]
    BadLength { packet: &'static str, len: usize },
    #[error("{packet}: field {field} runs past the packet's remaining length")]
    Truncated {
        packet: &'static str,
        field: &'static str,
    },
    #[error("{packet}: {extra} bytes after the last field")]
    TrailingBytes { packet: &'static str, extra: usize },
    #[error("{packet}: {field} is not well-formed UTF-8 [MQTT-1.5.3-1]")]
    InvalidUtf8 {
        packet: &'static str,
        field: &'static str,
    },
    #[error("{packet}: {field} contains U+0000 [MQTT-1.5.3-2]")]
    NullChar {
        packet: &'static str,
        field: &'static str,
    },
    #[error("CONNECT: protocol name {0:?} is not \"MQTT\" [MQTT-3.1.2-1]")]
    ProtocolName(String),
    /// Not malformed as such: the server answers CONNACK 0x01 and closes
    /// [MQTT-3.1.2-2].
    #[error("CONNECT: unsupported protocol level {0} [MQTT-3.1.2-2]")]
    UnsupportedProtocolLevel(u8),
    #[error("CONNECT: reserved flag bit set [MQTT-3.1.2-3]")]
    ConnectReservedFlag,
    #[error("CONNECT: will QoS/retain set without the will flag [MQTT-3.1.2-11]")]
    WillFlags,
    #[error("CONNECT: password flag without user name flag [MQTT-3.1.2-22]")]
    PasswordWithoutUsername,
    #[error("{packet}: invalid QoS 3 [MQTT-3.3.1-4]")]
    InvalidQos { packet: &'static str },
    #[error("PUBLISH: DUP set on a QoS 0 message [MQTT-3.3.1-2]")]
    DupOnQos0,
    #[error("{packet}: packet identifier 0 [MQTT-2.3.1-1]")]
    ZeroPacketId { packet: &'static str },
    #[error("{packet}: invalid topic: {source}")]
    Topic {
        packet: &'static str,
        #[source]
        source: TopicError,
    },
    #[error("{packet}: no topic filters [MQTT-3.8.3-3]")]
    NoFilters { packet: &'static str },
    #[error("SUBSCRIBE: reserved bits set in requested QoS byte {0:#04x} [MQTT-3.8.3-4]")]
    SubscribeReserved(u8),
    #[error("CONNACK: reserved bits set in acknowledge flags {0:#04x} (§3.2.2.1)")]
    ConnAckFlags(u8),
    #[error("CONNACK: reserved return code {0}")]
    ConnAckCode(u8),
    #[error("SUBACK: invalid return code {0:#04x} (§3.9.3)")]
    SubAckCode(u8),
}

/// Why a packet could not be encoded.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum EncodeError {
    #[error("{field}: string of {len} bytes exceeds 65535 (§1.5.3)")]
    StringTooLong { field: &'static str, len: usize },
    #[error("packet remaining length {0} exceeds 268435455 (§2.2.3)")]
    TooLarge(usize),
    #[error("{packet}: no topic filters [MQTT-3.8.3-3]")]
    NoFilters { packet: &'static str },
}

/// The variable byte integer at the start of `buf` (§2.2.3; 5.0 §1.5.5):
/// `Ok(None)` while incomplete, else `(value, bytes)`; a fifth byte is an
/// error.
pub fn read_varint(buf: &[u8]) -> Result<Option<(usize, usize)>, DecodeError> {
    let mut len = 0usize;
    let mut mult = 1usize;
    for i in 0..4 {
        let Some(&b) = buf.get(i) else {
            return Ok(None);
        };
        len += usize::from(b & 0x7F) * mult;
        if b & 0x80 == 0 {
            return Ok(Some((len, 1 + i)));
        }
        mult *= 128;
    }
    Err(DecodeError::RemainingLength)
}

/// Parse the fixed header at the start of `buf`: `Ok(None)` if the
/// remaining-length varint is incomplete, else `(first byte, remaining
/// length, header length)`.
pub fn parse_fixed_header(buf: &[u8]) -> Result<Option<(u8, usize, usize)>, DecodeError> {
    let Some((&first, rest)) = buf.split_first() else {
        return Ok(None);
    };
    Ok(read_varint(rest)?.map(|(len, n)| (first, len, 1 + n)))
}

/// Decode the first packet in `buf`. `max_packet_size` bounds the whole
/// packet (header included); larger packets are an error as soon as their
/// header is seen, so a peer cannot make the receiver buffer them.
pub fn decode(buf: &[u8], max_packet_size: usize) -> Result<Option<(Packet, usize)>, DecodeError> {
    let Some(f) = frame(buf, max_packet_size)? else {
        return Ok(None);
    };
    Ok(Some((decode_body(f.first, f.body)?.to_packet(), f.size)))
}

/// [`decode`] without allocating: the first packet in `buf` as a view
/// borrowing from `buf`. Accepts and rejects exactly what `decode` does.
pub fn decode_view(
    buf: &[u8],
    max_packet_size: usize,
) -> Result<Option<(PacketView<'_>, usize)>, DecodeError> {
    let Some(f) = frame(buf, max_packet_size)? else {
        return Ok(None);
    };
    Ok(Some((decode_body(f.first, f.body)?, f.size)))
}

/// A complete packet at the start of a buffer: its first byte, its body
/// (variable header and payload) and its whole size.
struct Frame<'a> {
    first: u8,
    body: &'a [u8],
    size: usize,
}

/// The first packet in `buf`, once it is complete.
#[inline(always)]
fn frame(buf: &[u8], max_packet_size: usize) -> Result<Option<Frame<'_>>, DecodeError> {
    let Some((first, rem, hlen)) = parse_fixed_header(buf)? else {
        return Ok(None);
    };
    let size = hlen + rem;
    if size > max_packet_size {
        return Err(DecodeError::TooLarge {
            size,
            max: max_packet_size,
        });
    }
    Ok(buf.get(hlen..size).map(|body| Frame { first, body, size }))
}

/// A bounds-checked cursor over one packet's variable header and payload.
pub struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
    packet: &'static str,
}

impl<'a> Reader<'a> {
    pub fn new(buf: &'a [u8], packet: &'static str) -> Self {
        Reader {
            buf,
            pos: 0,
            packet,
        }
    }
    fn truncated(&self, field: &'static str) -> DecodeError {
        DecodeError::Truncated {
            packet: self.packet,
            field,
        }
    }
    pub fn remaining(&self) -> usize {
        self.buf.len().saturating_sub(self.pos)
    }
    pub fn u8(&mut self, field: &'static str) -> Result<u8, DecodeError> {
        let b = *self
            .buf
            .get(self.pos)
            .ok_or_else(|| self.truncated(field))?;
        self.pos += 1;
        Ok(b)
    }
    pub fn u16(&mut self, field: &'static str) -> Result<u16, DecodeError> {
        let s = self
            .buf
            .get(self.pos..self.pos + 2)
            .ok_or_else(|| self.truncated(field))?;
        self.pos += 2;
        Ok(u16::from_be_bytes([s[0], s[1]]))
    }
    pub fn bytes(&mut self, field: &'static str) -> Result<&'a [u8], DecodeError> {
        let n = usize::from(self.u16(field)?);
        self.take(n, field)
    }
    pub fn take(&mut self, n: usize, field: &'static str) -> Result<&'a [u8], DecodeError> {
        let s = self
            .buf
            .get(self.pos..self.pos + n)
            .ok_or_else(|| self.truncated(field))?;
        self.pos += n;
        Ok(s)
    }
    pub fn rest(&mut self) -> &'a [u8] {
        let s = self.buf.get(self.pos..).unwrap_or(&[]);
        self.pos = self.buf.len();
        s
    }
    /// A UTF-8 encoded string (§1.5.3): well-formed [MQTT-1.5.3-1], no
    /// U+0000 [MQTT-1.5.3-2]. (U+FEFF is passed through [MQTT-1.5.3-3].)
    pub fn str(&mut self, field: &'static str) -> Result<&'a str, DecodeError> {
        let packet = self.packet;
        let b = self.bytes(field)?;
        let s = std::str::from_utf8(b).map_err(|_| DecodeError::InvalidUtf8 { packet, field })?;
        // A plain scan rather than `contains` (memchr): these strings are
        // short, and the loop is vectorised inline.
        if b.iter().fold(false, |nul, &x| nul | (x == 0)) {
            return Err(DecodeError::NullChar { packet, field });
        }
        Ok(s)
    }
    pub fn pid(&mut self) -> Result<PacketId, DecodeError> {
        let packet = self.packet;
        PacketId::new(self.u16("packet identifier")?).ok_or(DecodeError::ZeroPacketId { packet })
    }
    pub fn finish(&self) -> Result<(), DecodeError> {
        match self.remaining() {
            0 => Ok(()),
            extra => Err(DecodeError::TrailingBytes {
                packet: self.packet,
                extra,
            }),
        }
    }
}

fn topic_err(packet: &'static str) -> impl Fn(TopicError) -> DecodeError {
    move |source| DecodeError::Topic { packet, source }
}

// Inlined into both `decode` and `decode_view`, so each writes its result
// in place: returned by value through a call, the view is stored field by
// field and reloaded in 16-byte moves, a store-forwarding stall that cost
// more than decoding a PUBACK (perf, benches/codec_peers.rs).
#[inline(always)]
fn decode_body(first: u8, body: &[u8]) -> Result<PacketView<'_>, DecodeError> {
    let ty = PacketType::from_u8(first >> 4).ok_or(DecodeError::ReservedType(first >> 4))?;
    let flags = first & 0x0F;
    let name = ty.name();
    // [MQTT-2.2.2-1], [MQTT-2.2.2-2]: fixed flags; PUBREL, SUBSCRIBE and
    // UNSUBSCRIBE carry 0b0010 [MQTT-3.6.1-1], [MQTT-3.8.1-1], [MQTT-3.10.1-1].
    let want = match ty {
        PacketType::Publish => None,
        PacketType::PubRel | PacketType::Subscribe | PacketType::Unsubscribe => Some(0b0010),
        _ => Some(0),
    };
    if want.is_some_and(|w| w != flags) {
        return Err(DecodeError::InvalidFlags {
            packet: name,
            flags,
        });
    }
    let mut r = Reader::new(body, name);
    let fixed_len = |n: usize| {
        if body.len() == n {
            Ok(())
        } else {
            Err(DecodeError::BadLength {
                packet: name,
                len: body.len(),
            })
        }
    };
    let p = match ty {
        PacketType::Connect => PacketView::Connect(decode_connect(&mut r)?),
        PacketType::ConnAck => {
            fixed_len(2)?;
            let f = r.u8("acknowledge flags")?;
            if f & 0xFE != 0 {
                return Err(DecodeError::ConnAckFlags(f));
            }
            let c = r.u8("return code")?;
            PacketView::ConnAck(ConnAck {
                session_present: f & 1 == 1,
                code: ConnectReturnCode::from_u8(c).ok_or(DecodeError::ConnAckCode(c))?,
            })
        }
        PacketType::Publish => PacketView::Publish(decode_publish(flags, &mut r)?),
        PacketType::PubAck
        | PacketType::PubRec
        | PacketType::PubRel
        | PacketType::PubComp
        | PacketType::UnsubAck => {
            fixed_len(2)?;
            let a = Ack { pid: r.pid()? };
            match ty {
                PacketType::PubAck => PacketView::PubAck(a),
                PacketType::PubRec => PacketView::PubRec(a),
                PacketType::PubRel => PacketView::PubRel(a),
                PacketType::PubComp => PacketView::PubComp(a),
                _ => PacketView::UnsubAck(a),
            }
        }
        PacketType::Subscribe => {
            let pid = r.pid()?;
            let payload = body.get(2..).unwrap_or(&[]);
            if r.remaining() == 0 {
                return Err(DecodeError::NoFilters { packet: name });
            }
            while r.remaining() > 0 {
                TopicFilter::check(r.str("topic filter")?).map_err(topic_err(name))?;
                let q = r.u8("requested QoS")?;
                if q & 0xFC != 0 {
                    return Err(DecodeError::SubscribeReserved(q));
                }
                QoS::from_u8(q).ok_or(DecodeError::InvalidQos { packet: name })?;
            }
            PacketView::Subscribe(SubscribeView { pid, payload })
        }
        PacketType::SubAck => {
            let pid = r.pid()?;
            let codes = r.rest();
            if let Some(&c) = codes.iter().find(|&&c| SubAckReturn::from_u8(c).is_none()) {
                return Err(DecodeError::SubAckCode(c));
            }
            PacketView::SubAck(SubAckView { pid, codes })
        }
        PacketType::Unsubscribe => {
            let pid = r.pid()?;
            let payload = body.get(2..).unwrap_or(&[]);
            if r.remaining() == 0 {
                return Err(DecodeError::NoFilters { packet: name });
            }
            while r.remaining() > 0 {
                TopicFilter::check(r.str("topic filter")?).map_err(topic_err(name))?;
            }
            PacketView::Unsubscribe(UnsubscribeView { pid, payload })
        }
        PacketType::PingReq | PacketType::PingResp | PacketType::Disconnect => {
            fixed_len(0)?;
            match ty {
                PacketType::PingReq => PacketView::PingReq,
                PacketType::PingResp => PacketView::PingResp,
                _ => PacketView::Disconnect,
            }
        }
    };
    r.finish()?;
    Ok(p)
}

fn decode_connect<'a>(r: &mut Reader<'a>) -> Result<ConnectView<'a>, DecodeError> {
    let name = r.str("protocol name")?;
    if name != "MQTT" {
        return Err(DecodeError::ProtocolName(name.to_string()));
    }
    let level = r.u8("protocol level")?;
    let protocol = match level {
        4 => ProtocolLevel::V311,
        l => return Err(DecodeError::UnsupportedProtocolLevel(l)),
    };
    let flags = r.u8("connect flags")?;
    if flags & 0x01 != 0 {
        return Err(DecodeError::ConnectReservedFlag);
    }
    let clean_session = flags & 0x02 != 0;
    let will_flag = flags & 0x04 != 0;
    let will_qos = (flags >> 3) & 0x03;
    let will_retain = flags & 0x20 != 0;
    let password_flag = flags & 0x40 != 0;
    let username_flag = flags & 0x80 != 0;
    if !will_flag && (will_qos != 0 || will_retain) {
        // [MQTT-3.1.2-11], [MQTT-3.1.2-13], [MQTT-3.1.2-15]
        return Err(DecodeError::WillFlags);
    }
    let will_qos = QoS::from_u8(will_qos).ok_or(DecodeError::InvalidQos { packet: "CONNECT" })?;
    if password_flag && !username_flag {
        return Err(DecodeError::PasswordWithoutUsername);
    }
    let keep_alive = r.u16("keep alive")?;
    // Payload order: client id, will topic, will message, user name,
    // password [MQTT-3.1.3-1].
    let client_id = r.str("client identifier")?;
    let will = if will_flag {
        let topic = r.str("will topic")?;
        TopicName::check(topic).map_err(topic_err("CONNECT"))?;
        let message = r.bytes("will message")?;
        Some(LastWillView {
            topic,
            message,
            qos: will_qos,
            retain: will_retain,
        })
    } else {
        None
    };
    let username = if username_flag {
        Some(r.str("user name")?)
    } else {
        None
    };
    let password = if password_flag {
        Some(r.bytes("password")?)
    } else {
        None
    };
    Ok(ConnectView {
        protocol,
        clean_session,
        keep_alive,
        client_id,
        will,
        username,
        password,
    })
}

fn decode_publish<'a>(flags: u8, r: &mut Reader<'a>) -> Result<PublishView<'a>, DecodeError> {
    let dup = flags & 0x08 != 0;
    let retain = flags & 0x01 != 0;
    let qos =
        QoS::from_u8((flags >> 1) & 0x03).ok_or(DecodeError::InvalidQos { packet: "PUBLISH" })?;
    if dup && qos == QoS::AtMostOnce {
        return Err(DecodeError::DupOnQos0);
    }
    let topic = r.str("topic name")?;
    TopicName::check(topic).map_err(topic_err("PUBLISH"))?;
    let qos_pid = match qos {
        QoS::AtMostOnce => QosPid::AtMostOnce,
        q => QosPid::new(q, r.pid()?),
    };
    Ok(PublishView {
        dup,
        qos_pid,
        retain,
        topic,
        payload: r.rest(),
    })
}
