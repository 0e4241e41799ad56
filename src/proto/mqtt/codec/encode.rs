//! The encoding half of the codec: packets into a caller-provided
//! `Vec<u8>`, with exact lengths computed without encoding.

use super::super::packet::{Packet, PacketId, PacketType, QoS, QosPid};
use super::super::topic::{TopicName, MAX_STRING_LEN};
use super::{EncodeError, MAX_REMAINING_LEN};

/// Bytes needed for the remaining-length varint of `len` (1–4).
pub fn varint_len(len: usize) -> usize {
    match len {
        0..=127 => 1,
        128..=16_383 => 2,
        16_384..=2_097_151 => 3,
        _ => 4,
    }
}

/// Append `len` as a variable byte integer (§2.2.3; 5.0 §1.5.5).
pub(crate) fn put_varint(buf: &mut Vec<u8>, mut len: usize) {
    loop {
        let mut b = (len % 128) as u8;
        len /= 128;
        if len > 0 {
            b |= 0x80;
        }
        buf.push(b);
        if len == 0 {
            break;
        }
    }
}

fn put_u16(buf: &mut Vec<u8>, v: u16) {
    buf.extend_from_slice(&v.to_be_bytes());
}

fn put_bytes(buf: &mut Vec<u8>, b: &[u8]) {
    // Lengths were checked by `check_str` before any byte was written.
    put_u16(buf, u16::try_from(b.len()).unwrap_or(u16::MAX));
    buf.extend_from_slice(b);
}

fn check_str(field: &'static str, len: usize) -> Result<usize, EncodeError> {
    if len > MAX_STRING_LEN {
        return Err(EncodeError::StringTooLong { field, len });
    }
    Ok(2 + len)
}

/// Remaining length of a PUBLISH with these parts.
fn publish_remaining(topic: &str, qos: QoS, payload_len: usize) -> usize {
    2 + topic.len() + if qos == QoS::AtMostOnce { 0 } else { 2 } + payload_len
}

/// Exact encoded length of a PUBLISH with these parts.
pub fn publish_len(topic: &str, qos: QoS, payload_len: usize) -> usize {
    let rem = publish_remaining(topic, qos, payload_len);
    1 + varint_len(rem) + rem
}

/// Append a PUBLISH built from borrowed parts (no `Packet` needed).
pub fn encode_publish(
    buf: &mut Vec<u8>,
    dup: bool,
    qos_pid: QosPid,
    retain: bool,
    topic: &TopicName,
    payload: &[u8],
) -> Result<usize, EncodeError> {
    let qos = qos_pid.qos();
    let rem = publish_remaining(topic.as_str(), qos, payload.len());
    if rem > MAX_REMAINING_LEN {
        return Err(EncodeError::TooLarge(rem));
    }
    let dup = dup && qos != QoS::AtMostOnce; // [MQTT-3.3.1-2]
    let total = 1 + varint_len(rem) + rem;
    buf.reserve(total);
    buf.push(0x30 | (u8::from(dup) << 3) | (qos.as_u8() << 1) | u8::from(retain));
    put_varint(buf, rem);
    put_bytes(buf, topic.as_str().as_bytes());
    if let Some(pid) = qos_pid.pid() {
        put_u16(buf, pid.get());
    }
    buf.extend_from_slice(payload);
    Ok(total)
}

/// Append a 4-byte packet-identifier-only packet (PUBACK, PUBREC, PUBREL,
/// PUBCOMP, UNSUBACK).
pub fn encode_ack(buf: &mut Vec<u8>, ty: PacketType, pid: PacketId) -> usize {
    let flags = if ty == PacketType::PubRel { 0b0010 } else { 0 };
    let [hi, lo] = pid.get().to_be_bytes();
    buf.extend_from_slice(&[((ty as u8) << 4) | flags, 2, hi, lo]);
    4
}

impl Packet {
    /// The remaining length (§2.2.3) this packet encodes to.
    pub fn remaining_len(&self) -> Result<usize, EncodeError> {
        Ok(match self {
            Packet::Connect(c) => {
                let mut n = 10 + check_str("client identifier", c.client_id.len())?;
                if let Some(w) = &c.will {
                    n += check_str("will topic", w.topic.as_str().len())?;
                    n += check_str("will message", w.message.len())?;
                }
                if let Some(u) = &c.username {
                    n += check_str("user name", u.len())?;
                }
                if let Some(p) = &c.password {
                    n += check_str("password", p.len())?;
                }
                n
            }
            Packet::ConnAck(_) => 2,
            Packet::Publish(p) => {
                publish_remaining(p.topic.as_str(), p.qos_pid.qos(), p.payload.len())
            }
            Packet::PubAck(_)
            | Packet::PubRec(_)
            | Packet::PubRel(_)
            | Packet::PubComp(_)
            | Packet::UnsubAck(_) => 2,
            Packet::Subscribe(s) => {
                if s.filters.is_empty() {
                    return Err(EncodeError::NoFilters {
                        packet: "SUBSCRIBE",
                    });
                }
                2 + s
                    .filters
                    .iter()
                    .map(|(f, _)| 3 + f.as_str().len())
                    .sum::<usize>()
            }
            Packet::SubAck(s) => 2 + s.codes.len(),
            Packet::Unsubscribe(u) => {
                if u.filters.is_empty() {
                    return Err(EncodeError::NoFilters {
                        packet: "UNSUBSCRIBE",
                    });
                }
                2 + u
                    .filters
                    .iter()
                    .map(|f| 2 + f.as_str().len())
                    .sum::<usize>()
            }
            Packet::PingReq | Packet::PingResp | Packet::Disconnect => 0,
        })
    }

    /// Exact number of bytes [`Packet::encode`] appends.
    pub fn encoded_len(&self) -> Result<usize, EncodeError> {
        let rem = self.remaining_len()?;
        if rem > MAX_REMAINING_LEN {
            return Err(EncodeError::TooLarge(rem));
        }
        Ok(1 + varint_len(rem) + rem)
    }

    /// Append the packet to `buf`; returns the number of bytes written.
    /// On error nothing is written.
    pub fn encode(&self, buf: &mut Vec<u8>) -> Result<usize, EncodeError> {
        let ty = self.packet_type();
        // The per-message packets first: they check their own lengths.
        match self {
            Packet::Publish(p) => {
                return encode_publish(buf, p.dup, p.qos_pid, p.retain, &p.topic, &p.payload)
            }
            Packet::PubAck(a)
            | Packet::PubRec(a)
            | Packet::PubRel(a)
            | Packet::PubComp(a)
            | Packet::UnsubAck(a) => return Ok(encode_ack(buf, ty, a.pid)),
            _ => {}
        }
        let total = self.encoded_len()?;
        let rem = self.remaining_len()?;
        let start = buf.len();
        buf.reserve(total);
        match self {
            Packet::Subscribe(_) | Packet::Unsubscribe(_) => buf.push(((ty as u8) << 4) | 0b0010),
            _ => buf.push((ty as u8) << 4),
        }
        put_varint(buf, rem);
        match self {
            Packet::Connect(c) => {
                put_bytes(buf, b"MQTT");
                buf.push(c.protocol.level());
                let mut flags = 0u8;
                if c.clean_session {
                    flags |= 0x02;
                }
                if let Some(w) = &c.will {
                    flags |= 0x04 | (w.qos.as_u8() << 3) | if w.retain { 0x20 } else { 0 };
                }
                if c.password.is_some() {
                    flags |= 0x40;
                }
                if c.username.is_some() {
                    flags |= 0x80;
                }
                buf.push(flags);
                put_u16(buf, c.keep_alive);
                put_bytes(buf, c.client_id.as_bytes());
                if let Some(w) = &c.will {
                    put_bytes(buf, w.topic.as_str().as_bytes());
                    put_bytes(buf, &w.message);
                }
                if let Some(u) = &c.username {
                    put_bytes(buf, u.as_bytes());
                }
                if let Some(p) = &c.password {
                    put_bytes(buf, p);
                }
            }
            Packet::ConnAck(c) => {
                buf.push(u8::from(c.session_present));
                buf.push(c.code as u8);
            }
            Packet::Subscribe(s) => {
                put_u16(buf, s.pid.get());
                for (f, q) in &s.filters {
                    put_bytes(buf, f.as_str().as_bytes());
                    buf.push(q.as_u8());
                }
            }
            Packet::SubAck(s) => {
                put_u16(buf, s.pid.get());
                buf.extend(s.codes.iter().map(|c| c.as_u8()));
            }
            Packet::Unsubscribe(u) => {
                put_u16(buf, u.pid.get());
                for f in &u.filters {
                    put_bytes(buf, f.as_str().as_bytes());
                }
            }
            _ => {}
        }
        debug_assert_eq!(buf.len() - start, total);
        Ok(total)
    }
}
