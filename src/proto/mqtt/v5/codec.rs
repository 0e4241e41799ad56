//! The MQTT 5.0 codec: [`decode`] one packet from the front of a byte
//! stream, [`Packet5::encode`] one packet into a `Vec<u8>`, byte-exact.
//!
//! Shared with 3.1.1 (`super::super::codec`): the fixed header and its
//! remaining length, the bounds-checked [`Reader`], UTF-8 string rules,
//! packet identifiers. Added by 5.0: the property block after each variable
//! header (§2.2.2: a variable byte integer length, then identifier/value
//! pairs), reason codes (§2.4), the CONNECT and SUBSCRIBE changes.
//!
//! Encoding takes the shortest form the specification allows: PUBACK,
//! PUBREC, PUBREL and PUBCOMP with reason 0 and no properties are the
//! 2-byte 3.1.1 form, with a reason but no properties 3 bytes
//! (§3.4.2.1); DISCONNECT and AUTH with reason 0 and no properties have
//! remaining length 0, with a reason but no properties 1 (§3.14.2.1,
//! §3.15.2.1). mosquitto and paho encode the same way.
//!
//! Errors carry the reason code a receiver sends in its DISCONNECT
//! ([`Decode5Error::reason`]): 0x81 Malformed Packet for bytes that do not
//! parse (wrong lengths, a property not allowed in the packet, §2.2.2.2),
//! 0x82 Protocol Error for well-formed bytes breaking a rule (a property
//! given twice, a value out of range), 0x94 for Topic Alias 0, 0x95 for a
//! packet above the size limit. Nothing here panics on any input.

use std::sync::Arc;

use thiserror::Error;

use super::super::codec::{
    parse_fixed_header, put_varint, varint_len, DecodeError, EncodeError, Reader,
};
use super::super::packet::{PacketId, QoS, QosPid};
use super::super::topic::{TopicError, TopicFilter, TopicName, MAX_STRING_LEN};
use super::{
    Ack5, ConnAck5, Connect5, Packet5, Properties, Publish5, ReasonCode, ReasonOnly,
    RetainHandling, SubAck5, SubOptions, Subscribe5, Unsubscribe5, Will5,
};

/// Largest value of a variable byte integer (§1.5.5).
pub const MAX_VARINT: u32 = 268_435_455;

/// Why bytes could not be decoded as an MQTT 5.0 packet.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum Decode5Error {
    /// A rule shared with 3.1.1 (fixed header, lengths, strings, packet
    /// identifiers, topics).
    #[error(transparent)]
    Frame(#[from] DecodeError),
    #[error(
        "{packet}: variable byte integer {field} longer than 4 bytes or not minimal [MQTT-1.5.5-1]"
    )]
    VarInt {
        packet: &'static str,
        field: &'static str,
    },
    #[error("{packet}: unknown property identifier {id:#04x} (§2.2.2.2)")]
    UnknownProperty { packet: &'static str, id: u32 },
    #[error("{packet}: property {name} ({id:#04x}) is not allowed in this packet (§2.2.2.2)")]
    PropertyNotAllowed {
        packet: &'static str,
        id: u8,
        name: &'static str,
    },
    #[error("{packet}: property {name} given more than once (§3)")]
    DuplicateProperty {
        packet: &'static str,
        name: &'static str,
    },
    #[error("{packet}: property {name} has the invalid value {value} (§3)")]
    PropertyValue {
        packet: &'static str,
        name: &'static str,
        value: u32,
    },
    #[error("{packet}: Topic Alias 0 is not permitted [MQTT-3.3.2-8]")]
    TopicAliasZero { packet: &'static str },
    #[error("{packet}: reason code {code:#04x} is not valid in this packet (§2.4)")]
    InvalidReason { packet: &'static str, code: u8 },
    #[error("PUBLISH: zero-length Topic Name without a Topic Alias (§3.3.2.1)")]
    EmptyTopicWithoutAlias,
    #[error("SUBSCRIBE: reserved bits set in subscription options {0:#04x} [MQTT-3.8.3-5]")]
    SubscribeReserved(u8),
    #[error("SUBSCRIBE: Retain Handling 3 (§3.8.3.1)")]
    RetainHandling3,
    #[error("SUBSCRIBE: maximum QoS 3 in subscription options (§3.8.3.1)")]
    SubscribeQos3,
    #[error("{packet}: {what} without an Authentication Method ({section})")]
    NoAuthMethod {
        packet: &'static str,
        what: &'static str,
        section: &'static str,
    },
    #[error("SUBSCRIBE: No Local set on a shared subscription [MQTT-3.8.3-4]")]
    NoLocalShared,
}

impl Decode5Error {
    /// The reason code a receiver puts in its DISCONNECT (or CONNACK).
    pub fn reason(&self) -> ReasonCode {
        match self {
            Decode5Error::Frame(DecodeError::TooLarge { .. }) => ReasonCode::PACKET_TOO_LARGE,
            Decode5Error::Frame(DecodeError::UnsupportedProtocolLevel(_)) => {
                ReasonCode::UNSUPPORTED_PROTOCOL_VERSION
            }
            // "A SUBSCRIBE packet with no Payload is a Protocol Error"
            // [MQTT-3.8.3-2]; the same for UNSUBSCRIBE [MQTT-3.10.3-2]
            Decode5Error::Frame(DecodeError::NoFilters { .. }) => ReasonCode::PROTOCOL_ERROR,
            Decode5Error::Frame(DecodeError::Topic {
                source: TopicError::WildcardInName,
                ..
            }) => ReasonCode::TOPIC_NAME_INVALID,
            Decode5Error::Frame(_)
            | Decode5Error::VarInt { .. }
            | Decode5Error::UnknownProperty { .. }
            | Decode5Error::PropertyNotAllowed { .. }
            | Decode5Error::InvalidReason { .. }
            | Decode5Error::SubscribeReserved(_) => ReasonCode::MALFORMED_PACKET,
            Decode5Error::TopicAliasZero { .. } => ReasonCode::TOPIC_ALIAS_INVALID,
            Decode5Error::DuplicateProperty { .. }
            | Decode5Error::PropertyValue { .. }
            | Decode5Error::EmptyTopicWithoutAlias
            | Decode5Error::RetainHandling3
            | Decode5Error::SubscribeQos3
            | Decode5Error::NoAuthMethod { .. }
            | Decode5Error::NoLocalShared => ReasonCode::PROTOCOL_ERROR,
        }
    }
}

/// The protocol level byte of a CONNECT at the start of `buf`, once the
/// fixed header, protocol name and level are readable; `None` if `buf`
/// does not start with a CONNECT or is too short yet. Lets a server choose
/// the codec for a new connection.
pub fn connect_protocol_level(buf: &[u8]) -> Option<u8> {
    let (first, _, hlen) = parse_fixed_header(buf).ok()??;
    if first >> 4 != 1 {
        return None;
    }
    let rest = buf.get(hlen..)?;
    let name_len = usize::from(u16::from_be_bytes([*rest.first()?, *rest.get(1)?]));
    rest.get(2 + name_len).copied()
}

// ---------------------------------------------------------------- properties

/// Where a property block sits, for the allowed-identifier table (§2.2.2.2,
/// table 2-4).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Site {
    Connect,
    Will,
    ConnAck,
    Publish,
    Ack,
    Subscribe,
    SubAck,
    Unsubscribe,
    Disconnect,
    Auth,
}

const PFI: u8 = 0x01;
const MEI: u8 = 0x02;
const CT: u8 = 0x03;
const RT: u8 = 0x08;
const CD: u8 = 0x09;
const SID: u8 = 0x0B;
const SEI: u8 = 0x11;
const ACI: u8 = 0x12;
const SKA: u8 = 0x13;
const AM: u8 = 0x15;
const AD: u8 = 0x16;
const RPI: u8 = 0x17;
const WDI: u8 = 0x18;
const RRI: u8 = 0x19;
const RI: u8 = 0x1A;
const SR: u8 = 0x1C;
const RS: u8 = 0x1F;
const RM: u8 = 0x21;
const TAM: u8 = 0x22;
const TA: u8 = 0x23;
const MQ: u8 = 0x24;
const RA: u8 = 0x25;
const UP: u8 = 0x26;
const MPS: u8 = 0x27;
const WSA: u8 = 0x28;
const SIA: u8 = 0x29;
const SSA: u8 = 0x2A;

fn allowed(site: Site, id: u8) -> bool {
    let list: &[u8] = match site {
        Site::Connect => &[SEI, AM, AD, RPI, RRI, RM, TAM, UP, MPS],
        Site::Will => &[PFI, MEI, CT, RT, CD, WDI, UP],
        Site::ConnAck => &[
            SEI, ACI, SKA, AM, AD, RI, SR, RS, RM, TAM, MQ, RA, UP, MPS, WSA, SIA, SSA,
        ],
        Site::Publish => &[PFI, MEI, CT, RT, CD, SID, TA, UP],
        Site::Ack | Site::SubAck => &[RS, UP],
        Site::Subscribe => &[SID, UP],
        Site::Unsubscribe => &[UP],
        Site::Disconnect => &[SEI, SR, RS, UP],
        Site::Auth => &[AM, AD, RS, UP],
    };
    list.contains(&id)
}

fn prop_name(id: u8) -> &'static str {
    match id {
        PFI => "Payload Format Indicator",
        MEI => "Message Expiry Interval",
        CT => "Content Type",
        RT => "Response Topic",
        CD => "Correlation Data",
        SID => "Subscription Identifier",
        SEI => "Session Expiry Interval",
        ACI => "Assigned Client Identifier",
        SKA => "Server Keep Alive",
        AM => "Authentication Method",
        AD => "Authentication Data",
        RPI => "Request Problem Information",
        WDI => "Will Delay Interval",
        RRI => "Request Response Information",
        RI => "Response Information",
        SR => "Server Reference",
        RS => "Reason String",
        RM => "Receive Maximum",
        TAM => "Topic Alias Maximum",
        TA => "Topic Alias",
        MQ => "Maximum QoS",
        RA => "Retain Available",
        UP => "User Property",
        MPS => "Maximum Packet Size",
        WSA => "Wildcard Subscription Available",
        SIA => "Subscription Identifier Available",
        SSA => "Shared Subscription Available",
        _ => "unknown",
    }
}

/// Read a variable byte integer (§1.5.5): at most 4 bytes, minimal.
fn read_varint(
    r: &mut Reader<'_>,
    packet: &'static str,
    field: &'static str,
) -> Result<u32, Decode5Error> {
    let mut value = 0u32;
    let mut mult = 1u32;
    for i in 0..4 {
        let b = r.u8(field)?;
        value += u32::from(b & 0x7F) * mult;
        if b & 0x80 == 0 {
            // a final 0 byte after the first is a non-minimal encoding
            if i > 0 && b == 0 {
                return Err(Decode5Error::VarInt { packet, field });
            }
            return Ok(value);
        }
        mult = mult.saturating_mul(128);
    }
    Err(Decode5Error::VarInt { packet, field })
}

fn set_once<T>(
    slot: &mut Option<T>,
    v: T,
    packet: &'static str,
    id: u8,
) -> Result<(), Decode5Error> {
    if slot.is_some() {
        return Err(Decode5Error::DuplicateProperty {
            packet,
            name: prop_name(id),
        });
    }
    *slot = Some(v);
    Ok(())
}

/// A byte property whose only values are 0 and 1.
fn flag(r: &mut Reader<'_>, packet: &'static str, id: u8) -> Result<u8, Decode5Error> {
    let v = r.u8(prop_name(id))?;
    if v > 1 {
        return Err(Decode5Error::PropertyValue {
            packet,
            name: prop_name(id),
            value: u32::from(v),
        });
    }
    Ok(v)
}

fn u32_be(r: &mut Reader<'_>, field: &'static str) -> Result<u32, Decode5Error> {
    let hi = r.u16(field)?;
    let lo = r.u16(field)?;
    Ok((u32::from(hi) << 16) | u32::from(lo))
}

fn nonzero<T: Into<u32> + Copy>(v: T, packet: &'static str, id: u8) -> Result<T, Decode5Error> {
    if v.into() == 0 {
        return Err(Decode5Error::PropertyValue {
            packet,
            name: prop_name(id),
            value: 0,
        });
    }
    Ok(v)
}

/// Read a property block (length, then properties) at `r`'s position.
fn read_props(
    r: &mut Reader<'_>,
    packet: &'static str,
    site: Site,
) -> Result<Properties, Decode5Error> {
    let len = read_varint(r, packet, "property length")?;
    let block = r.take(len as usize, "properties")?;
    let mut r = Reader::new(block, packet);
    let mut p = Properties::default();
    while r.remaining() > 0 {
        let id = read_varint(&mut r, packet, "property identifier")?;
        let Ok(id8) = u8::try_from(id) else {
            return Err(Decode5Error::UnknownProperty { packet, id });
        };
        if prop_name(id8) == "unknown" {
            return Err(Decode5Error::UnknownProperty { packet, id });
        }
        if !allowed(site, id8) {
            return Err(Decode5Error::PropertyNotAllowed {
                packet,
                id: id8,
                name: prop_name(id8),
            });
        }
        let name = prop_name(id8);
        match id8 {
            PFI => {
                let v = flag(&mut r, packet, id8)?;
                set_once(&mut p.payload_format_indicator, v, packet, id8)?;
            }
            MEI => {
                let v = u32_be(&mut r, name)?;
                set_once(&mut p.message_expiry_interval, v, packet, id8)?;
            }
            CT => set_once(&mut p.content_type, r.str(name)?.to_string(), packet, id8)?,
            RT => {
                let s = r.str(name)?;
                // a topic name: no wildcards [MQTT-3.3.2-14]
                TopicName::new(s).map_err(|source| DecodeError::Topic { packet, source })?;
                set_once(&mut p.response_topic, s.to_string(), packet, id8)?;
            }
            CD => set_once(
                &mut p.correlation_data,
                r.bytes(name)?.to_vec(),
                packet,
                id8,
            )?,
            SID => {
                let v = nonzero(read_varint(&mut r, packet, name)?, packet, id8)?;
                if site == Site::Subscribe && !p.subscription_identifiers.is_empty() {
                    return Err(Decode5Error::DuplicateProperty { packet, name });
                }
                p.subscription_identifiers.push(v);
            }
            SEI => {
                let v = u32_be(&mut r, name)?;
                set_once(&mut p.session_expiry_interval, v, packet, id8)?;
            }
            ACI => set_once(
                &mut p.assigned_client_identifier,
                r.str(name)?.to_string(),
                packet,
                id8,
            )?,
            SKA => {
                let v = r.u16(name)?;
                set_once(&mut p.server_keep_alive, v, packet, id8)?;
            }
            AM => set_once(
                &mut p.authentication_method,
                r.str(name)?.to_string(),
                packet,
                id8,
            )?,
            AD => set_once(
                &mut p.authentication_data,
                r.bytes(name)?.to_vec(),
                packet,
                id8,
            )?,
            RPI => {
                let v = flag(&mut r, packet, id8)?;
                set_once(&mut p.request_problem_information, v, packet, id8)?;
            }
            WDI => {
                let v = u32_be(&mut r, name)?;
                set_once(&mut p.will_delay_interval, v, packet, id8)?;
            }
            RRI => {
                let v = flag(&mut r, packet, id8)?;
                set_once(&mut p.request_response_information, v, packet, id8)?;
            }
            RI => set_once(
                &mut p.response_information,
                r.str(name)?.to_string(),
                packet,
                id8,
            )?,
            SR => set_once(
                &mut p.server_reference,
                r.str(name)?.to_string(),
                packet,
                id8,
            )?,
            RS => set_once(&mut p.reason_string, r.str(name)?.to_string(), packet, id8)?,
            RM => {
                let v = nonzero(r.u16(name)?, packet, id8)?;
                set_once(&mut p.receive_maximum, v, packet, id8)?;
            }
            TAM => {
                let v = r.u16(name)?;
                set_once(&mut p.topic_alias_maximum, v, packet, id8)?;
            }
            TA => {
                let v = r.u16(name)?;
                if v == 0 {
                    return Err(Decode5Error::TopicAliasZero { packet });
                }
                set_once(&mut p.topic_alias, v, packet, id8)?;
            }
            MQ => {
                let v = flag(&mut r, packet, id8)?;
                set_once(&mut p.maximum_qos, v, packet, id8)?;
            }
            RA => {
                let v = flag(&mut r, packet, id8)?;
                set_once(&mut p.retain_available, v, packet, id8)?;
            }
            UP => {
                let k = r.str(name)?.to_string();
                let v = r.str(name)?.to_string();
                p.user_properties.push((k, v));
            }
            MPS => {
                let v = nonzero(u32_be(&mut r, name)?, packet, id8)?;
                set_once(&mut p.maximum_packet_size, v, packet, id8)?;
            }
            WSA => {
                let v = flag(&mut r, packet, id8)?;
                set_once(&mut p.wildcard_subscription_available, v, packet, id8)?;
            }
            SIA => {
                let v = flag(&mut r, packet, id8)?;
                set_once(&mut p.subscription_identifier_available, v, packet, id8)?;
            }
            SSA => {
                let v = flag(&mut r, packet, id8)?;
                set_once(&mut p.shared_subscription_available, v, packet, id8)?;
            }
            _ => return Err(Decode5Error::UnknownProperty { packet, id }),
        }
    }
    Ok(p)
}

// -------------------------------------------------------------------- decode

/// Decode the first MQTT 5.0 packet in `buf`: `Ok(None)` while incomplete.
/// `max_packet_size` bounds the whole packet (header included); a larger
/// one is an error as soon as its fixed header is readable.
pub fn decode(
    buf: &[u8],
    max_packet_size: usize,
) -> Result<Option<(Packet5, usize)>, Decode5Error> {
    let Some((first, rem, hlen)) = parse_fixed_header(buf)? else {
        return Ok(None);
    };
    // the remaining length in the fewest bytes [MQTT-1.5.5-1], as every
    // variable byte integer in the packet (the 3.1.1 parser accepts a
    // padded one)
    if hlen != 1 + varint_len(rem) {
        return Err(Decode5Error::VarInt {
            packet: "fixed header",
            field: "remaining length",
        });
    }
    let size = hlen + rem;
    if size > max_packet_size {
        return Err(DecodeError::TooLarge {
            size,
            max: max_packet_size,
        }
        .into());
    }
    let Some(body) = buf.get(hlen..size) else {
        return Ok(None);
    };
    Ok(Some((decode_body(first, body)?, size)))
}

fn flags_must_be(packet: &'static str, first: u8, want: u8) -> Result<(), Decode5Error> {
    if first & 0x0F != want {
        return Err(DecodeError::InvalidFlags {
            packet,
            flags: first & 0x0F,
        }
        .into());
    }
    Ok(())
}

fn check_reason(packet: &'static str, code: u8, valid: &[u8]) -> Result<ReasonCode, Decode5Error> {
    if valid.contains(&code) {
        Ok(ReasonCode(code))
    } else {
        Err(Decode5Error::InvalidReason { packet, code })
    }
}

const CONNACK_REASONS: &[u8] = &[
    0x00, 0x80, 0x81, 0x82, 0x83, 0x84, 0x85, 0x86, 0x87, 0x88, 0x89, 0x8A, 0x8C, 0x90, 0x95, 0x97,
    0x99, 0x9A, 0x9B, 0x9C, 0x9D, 0x9F,
];
const PUBACK_REASONS: &[u8] = &[0x00, 0x10, 0x80, 0x83, 0x87, 0x90, 0x91, 0x97, 0x99];
const PUBREL_REASONS: &[u8] = &[0x00, 0x92];
const SUBACK_REASONS: &[u8] = &[
    0x00, 0x01, 0x02, 0x80, 0x83, 0x87, 0x8F, 0x91, 0x97, 0x9E, 0xA1, 0xA2,
];
const UNSUBACK_REASONS: &[u8] = &[0x00, 0x11, 0x80, 0x83, 0x87, 0x8F, 0x91];
const DISCONNECT_REASONS: &[u8] = &[
    0x00, 0x04, 0x80, 0x81, 0x82, 0x83, 0x87, 0x89, 0x8B, 0x8D, 0x8E, 0x8F, 0x90, 0x93, 0x94, 0x95,
    0x96, 0x97, 0x98, 0x99, 0x9A, 0x9B, 0x9C, 0x9D, 0x9E, 0x9F, 0xA0, 0xA1, 0xA2,
];
const AUTH_REASONS: &[u8] = &[0x00, 0x18, 0x19];

fn decode_body(first: u8, body: &[u8]) -> Result<Packet5, Decode5Error> {
    let ty = first >> 4;
    match ty {
        1 => {
            flags_must_be("CONNECT", first, 0)?;
            decode_connect(body).map(Packet5::Connect)
        }
        2 => {
            flags_must_be("CONNACK", first, 0)?;
            let mut r = Reader::new(body, "CONNACK");
            let ack = r.u8("acknowledge flags")?;
            if ack & 0xFE != 0 {
                return Err(DecodeError::ConnAckFlags(ack).into());
            }
            let reason = check_reason("CONNACK", r.u8("reason code")?, CONNACK_REASONS)?;
            let props = read_props(&mut r, "CONNACK", Site::ConnAck)?;
            r.finish()?;
            Ok(Packet5::ConnAck(ConnAck5 {
                session_present: ack & 1 == 1,
                reason,
                props,
            }))
        }
        3 => decode_publish(first, body).map(Packet5::Publish),
        4..=7 => {
            let (name, flags, valid) = match ty {
                4 => ("PUBACK", 0, PUBACK_REASONS),
                5 => ("PUBREC", 0, PUBACK_REASONS),
                6 => ("PUBREL", 2, PUBREL_REASONS),
                _ => ("PUBCOMP", 0, PUBREL_REASONS),
            };
            flags_must_be(name, first, flags)?;
            let mut r = Reader::new(body, name);
            let pid = r.pid()?;
            let mut ack = Ack5::ok(pid);
            if r.remaining() > 0 {
                ack.reason = check_reason(name, r.u8("reason code")?, valid)?;
            }
            if r.remaining() > 0 {
                ack.props = read_props(&mut r, name, Site::Ack)?;
            }
            r.finish()?;
            Ok(match ty {
                4 => Packet5::PubAck(ack),
                5 => Packet5::PubRec(ack),
                6 => Packet5::PubRel(ack),
                _ => Packet5::PubComp(ack),
            })
        }
        8 => {
            flags_must_be("SUBSCRIBE", first, 2)?;
            decode_subscribe(body).map(Packet5::Subscribe)
        }
        9 | 11 => {
            let (name, site, valid) = if ty == 9 {
                ("SUBACK", Site::SubAck, SUBACK_REASONS)
            } else {
                ("UNSUBACK", Site::SubAck, UNSUBACK_REASONS)
            };
            flags_must_be(name, first, 0)?;
            let mut r = Reader::new(body, name);
            let pid = r.pid()?;
            let props = read_props(&mut r, name, site)?;
            let mut reasons = Vec::with_capacity(r.remaining());
            while r.remaining() > 0 {
                reasons.push(check_reason(name, r.u8("reason code")?, valid)?);
            }
            let ack = SubAck5 {
                pid,
                props,
                reasons,
            };
            Ok(if ty == 9 {
                Packet5::SubAck(ack)
            } else {
                Packet5::UnsubAck(ack)
            })
        }
        10 => {
            flags_must_be("UNSUBSCRIBE", first, 2)?;
            let mut r = Reader::new(body, "UNSUBSCRIBE");
            let pid = r.pid()?;
            let props = read_props(&mut r, "UNSUBSCRIBE", Site::Unsubscribe)?;
            let mut filters = Vec::new();
            while r.remaining() > 0 {
                let s = r.str("topic filter")?;
                filters.push(TopicFilter::new(s).map_err(|source| DecodeError::Topic {
                    packet: "UNSUBSCRIBE",
                    source,
                })?);
            }
            if filters.is_empty() {
                return Err(DecodeError::NoFilters {
                    packet: "UNSUBSCRIBE",
                }
                .into());
            }
            Ok(Packet5::Unsubscribe(Unsubscribe5 {
                pid,
                props,
                filters,
            }))
        }
        12 | 13 => {
            let name = if ty == 12 { "PINGREQ" } else { "PINGRESP" };
            flags_must_be(name, first, 0)?;
            if !body.is_empty() {
                return Err(DecodeError::BadLength {
                    packet: name,
                    len: body.len(),
                }
                .into());
            }
            Ok(if ty == 12 {
                Packet5::PingReq
            } else {
                Packet5::PingResp
            })
        }
        14 | 15 => {
            let (name, site, valid) = if ty == 14 {
                ("DISCONNECT", Site::Disconnect, DISCONNECT_REASONS)
            } else {
                ("AUTH", Site::Auth, AUTH_REASONS)
            };
            flags_must_be(name, first, 0)?;
            let mut r = Reader::new(body, name);
            let mut p = ReasonOnly::default();
            if r.remaining() > 0 {
                p.reason = check_reason(name, r.u8("reason code")?, valid)?;
            }
            if r.remaining() > 0 {
                p.props = read_props(&mut r, name, site)?;
            }
            r.finish()?;
            // an AUTH other than the empty Success form names its method:
            // "It is a Protocol Error to omit the Authentication Method"
            // (§3.15.2.2.2)
            if ty == 15
                && (p.reason != ReasonCode::SUCCESS || !p.props.is_empty())
                && p.props.authentication_method.is_none()
            {
                return Err(Decode5Error::NoAuthMethod {
                    packet: name,
                    what: "AUTH",
                    section: "§3.15.2.2.2",
                });
            }
            Ok(if ty == 14 {
                Packet5::Disconnect(p)
            } else {
                Packet5::Auth(p)
            })
        }
        other => Err(DecodeError::ReservedType(other).into()),
    }
}

fn decode_connect(body: &[u8]) -> Result<Connect5, Decode5Error> {
    const P: &str = "CONNECT";
    let mut r = Reader::new(body, P);
    let name = r.str("protocol name")?;
    if name != "MQTT" {
        return Err(DecodeError::ProtocolName(name.to_string()).into());
    }
    let level = r.u8("protocol level")?;
    if level != 5 {
        return Err(DecodeError::UnsupportedProtocolLevel(level).into());
    }
    let flags = r.u8("connect flags")?;
    if flags & 0x01 != 0 {
        return Err(DecodeError::ConnectReservedFlag.into());
    }
    let will_flag = flags & 0x04 != 0;
    let will_qos = (flags >> 3) & 0x03;
    let will_retain = flags & 0x20 != 0;
    if !will_flag && (will_qos != 0 || will_retain) {
        return Err(DecodeError::WillFlags.into());
    }
    let keep_alive = r.u16("keep alive")?;
    let props = read_props(&mut r, P, Site::Connect)?;
    // "It is a Protocol Error to include Authentication Data if there is no
    // Authentication Method" (§3.1.2.11.10)
    if props.authentication_data.is_some() && props.authentication_method.is_none() {
        return Err(Decode5Error::NoAuthMethod {
            packet: P,
            what: "Authentication Data",
            section: "§3.1.2.11.10",
        });
    }
    let client_id = r.str("client identifier")?.to_string();
    let will = if will_flag {
        let wprops = read_props(&mut r, P, Site::Will)?;
        let topic = TopicName::new(r.str("will topic")?)
            .map_err(|source| DecodeError::Topic { packet: P, source })?;
        let message: Arc<[u8]> = Arc::from(r.bytes("will payload")?);
        let qos = QoS::from_u8(will_qos).ok_or(DecodeError::InvalidQos { packet: P })?;
        Some(Will5 {
            props: wprops,
            topic,
            message,
            qos,
            retain: will_retain,
        })
    } else {
        None
    };
    // 5.0 allows a password without a user name (§3.1.2.9)
    let username = if flags & 0x80 != 0 {
        Some(r.str("user name")?.to_string())
    } else {
        None
    };
    let password = if flags & 0x40 != 0 {
        Some(r.bytes("password")?.to_vec())
    } else {
        None
    };
    r.finish()?;
    Ok(Connect5 {
        clean_start: flags & 0x02 != 0,
        keep_alive,
        props,
        client_id,
        will,
        username,
        password,
    })
}

fn decode_publish(first: u8, body: &[u8]) -> Result<Publish5, Decode5Error> {
    const P: &str = "PUBLISH";
    let dup = first & 0x08 != 0;
    let qos = QoS::from_u8((first >> 1) & 0x03).ok_or(DecodeError::InvalidQos { packet: P })?;
    let retain = first & 0x01 != 0;
    if dup && qos == QoS::AtMostOnce {
        return Err(DecodeError::DupOnQos0.into());
    }
    let mut r = Reader::new(body, P);
    let t = r.str("topic name")?;
    let topic = if t.is_empty() {
        None
    } else {
        Some(TopicName::new(t).map_err(|source| DecodeError::Topic { packet: P, source })?)
    };
    let qos_pid = match qos {
        QoS::AtMostOnce => QosPid::AtMostOnce,
        q => QosPid::new(q, r.pid()?),
    };
    let props = read_props(&mut r, P, Site::Publish)?;
    if topic.is_none() && props.topic_alias.is_none() {
        return Err(Decode5Error::EmptyTopicWithoutAlias);
    }
    let payload: Arc<[u8]> = Arc::from(r.rest());
    Ok(Publish5 {
        dup,
        qos_pid,
        retain,
        topic,
        props,
        payload,
    })
}

fn decode_subscribe(body: &[u8]) -> Result<Subscribe5, Decode5Error> {
    const P: &str = "SUBSCRIBE";
    let mut r = Reader::new(body, P);
    let pid = r.pid()?;
    let props = read_props(&mut r, P, Site::Subscribe)?;
    let mut filters = Vec::new();
    while r.remaining() > 0 {
        let f = TopicFilter::new(r.str("topic filter")?)
            .map_err(|source| DecodeError::Topic { packet: P, source })?;
        let o = r.u8("subscription options")?;
        if o & 0xC0 != 0 {
            return Err(Decode5Error::SubscribeReserved(o));
        }
        // "It is a Protocol Error if the Maximum QoS field has the value 3"
        // (§3.8.3.1)
        let qos = QoS::from_u8(o & 0x03).ok_or(Decode5Error::SubscribeQos3)?;
        let retain_handling = match (o >> 4) & 0x03 {
            0 => RetainHandling::SendOnSubscribe,
            1 => RetainHandling::SendIfNew,
            2 => RetainHandling::DoNotSend,
            _ => return Err(Decode5Error::RetainHandling3),
        };
        let no_local = o & 0x04 != 0;
        if no_local && f.as_str().starts_with("$share/") {
            return Err(Decode5Error::NoLocalShared);
        }
        filters.push((
            f,
            SubOptions {
                qos,
                no_local,
                retain_as_published: o & 0x08 != 0,
                retain_handling,
            },
        ));
    }
    if filters.is_empty() {
        return Err(DecodeError::NoFilters { packet: P }.into());
    }
    Ok(Subscribe5 {
        pid,
        props,
        filters,
    })
}

// -------------------------------------------------------------------- encode

fn put_u16(buf: &mut Vec<u8>, v: u16) {
    buf.extend_from_slice(&v.to_be_bytes());
}

fn put_u32(buf: &mut Vec<u8>, v: u32) {
    buf.extend_from_slice(&v.to_be_bytes());
}

/// Length-prefixed bytes; lengths were checked by [`Packet5::encoded_len`]
/// before anything was written.
fn put_bytes(buf: &mut Vec<u8>, b: &[u8]) {
    put_u16(buf, u16::try_from(b.len()).unwrap_or(u16::MAX));
    buf.extend_from_slice(b);
}

fn str_len(field: &'static str, len: usize) -> Result<usize, EncodeError> {
    if len > MAX_STRING_LEN {
        return Err(EncodeError::StringTooLong { field, len });
    }
    Ok(2 + len)
}

fn sid_ok(v: u32) -> Result<u32, EncodeError> {
    if v == 0 || v > MAX_VARINT {
        return Err(EncodeError::TooLarge(v as usize));
    }
    Ok(v)
}

/// Bytes of `p`'s property block without its length prefix, after checking
/// every string and integer fits its encoding.
fn props_body_len(p: &Properties) -> Result<usize, EncodeError> {
    let s = |o: &Option<String>, f: &'static str| -> Result<usize, EncodeError> {
        o.as_ref().map_or(Ok(0), |v| Ok(1 + str_len(f, v.len())?))
    };
    let b = |o: &Option<Vec<u8>>, f: &'static str| -> Result<usize, EncodeError> {
        o.as_ref().map_or(Ok(0), |v| Ok(1 + str_len(f, v.len())?))
    };
    let n = |o: bool, w: usize| if o { 1 + w } else { 0 };
    let mut len = 0;
    len += n(p.payload_format_indicator.is_some(), 1);
    len += n(p.message_expiry_interval.is_some(), 4);
    len += s(&p.content_type, "Content Type")?;
    len += s(&p.response_topic, "Response Topic")?;
    len += b(&p.correlation_data, "Correlation Data")?;
    for &v in &p.subscription_identifiers {
        len += 1 + varint_len(sid_ok(v)? as usize);
    }
    len += n(p.session_expiry_interval.is_some(), 4);
    len += s(&p.assigned_client_identifier, "Assigned Client Identifier")?;
    len += n(p.server_keep_alive.is_some(), 2);
    len += s(&p.authentication_method, "Authentication Method")?;
    len += b(&p.authentication_data, "Authentication Data")?;
    len += n(p.request_problem_information.is_some(), 1);
    len += n(p.will_delay_interval.is_some(), 4);
    len += n(p.request_response_information.is_some(), 1);
    len += s(&p.response_information, "Response Information")?;
    len += s(&p.server_reference, "Server Reference")?;
    len += s(&p.reason_string, "Reason String")?;
    len += n(p.receive_maximum.is_some(), 2);
    len += n(p.topic_alias_maximum.is_some(), 2);
    len += n(p.topic_alias.is_some(), 2);
    len += n(p.maximum_qos.is_some(), 1);
    len += n(p.retain_available.is_some(), 1);
    for (k, v) in &p.user_properties {
        len += 1 + str_len("User Property", k.len())? + str_len("User Property", v.len())?;
    }
    len += n(p.maximum_packet_size.is_some(), 4);
    len += n(p.wildcard_subscription_available.is_some(), 1);
    len += n(p.subscription_identifier_available.is_some(), 1);
    len += n(p.shared_subscription_available.is_some(), 1);
    Ok(len)
}

/// Bytes of `p`'s property block without its length prefix (0 when `p` is
/// empty). Strings over 65,535 bytes count as if truncated; encoding such
/// a block fails.
pub fn properties_len(p: &Properties) -> usize {
    props_body_len(p).unwrap_or(0)
}

/// Bytes of a property block with its length prefix.
fn props_len(p: &Properties) -> Result<usize, EncodeError> {
    let body = props_body_len(p)?;
    let body32 = u32::try_from(body).map_err(|_| EncodeError::TooLarge(body))?;
    if body32 > MAX_VARINT {
        return Err(EncodeError::TooLarge(body));
    }
    Ok(varint_len(body32 as usize) + body)
}

/// Write a property block (length prefix included), identifiers in
/// ascending order (user properties in their own order).
fn put_props(buf: &mut Vec<u8>, p: &Properties) {
    put_varint(buf, props_body_len(p).unwrap_or(0));
    let byte = |buf: &mut Vec<u8>, id: u8, v: Option<u8>| {
        if let Some(v) = v {
            buf.push(id);
            buf.push(v);
        }
    };
    let two = |buf: &mut Vec<u8>, id: u8, v: Option<u16>| {
        if let Some(v) = v {
            buf.push(id);
            put_u16(buf, v);
        }
    };
    let four = |buf: &mut Vec<u8>, id: u8, v: Option<u32>| {
        if let Some(v) = v {
            buf.push(id);
            put_u32(buf, v);
        }
    };
    let bin = |buf: &mut Vec<u8>, id: u8, v: Option<&[u8]>| {
        if let Some(v) = v {
            buf.push(id);
            put_bytes(buf, v);
        }
    };
    byte(buf, PFI, p.payload_format_indicator);
    four(buf, MEI, p.message_expiry_interval);
    bin(buf, CT, p.content_type.as_deref().map(str::as_bytes));
    bin(buf, RT, p.response_topic.as_deref().map(str::as_bytes));
    bin(buf, CD, p.correlation_data.as_deref());
    for &v in &p.subscription_identifiers {
        buf.push(SID);
        put_varint(buf, v as usize);
    }
    four(buf, SEI, p.session_expiry_interval);
    bin(
        buf,
        ACI,
        p.assigned_client_identifier.as_deref().map(str::as_bytes),
    );
    two(buf, SKA, p.server_keep_alive);
    bin(
        buf,
        AM,
        p.authentication_method.as_deref().map(str::as_bytes),
    );
    bin(buf, AD, p.authentication_data.as_deref());
    byte(buf, RPI, p.request_problem_information);
    four(buf, WDI, p.will_delay_interval);
    byte(buf, RRI, p.request_response_information);
    bin(
        buf,
        RI,
        p.response_information.as_deref().map(str::as_bytes),
    );
    bin(buf, SR, p.server_reference.as_deref().map(str::as_bytes));
    bin(buf, RS, p.reason_string.as_deref().map(str::as_bytes));
    two(buf, RM, p.receive_maximum);
    two(buf, TAM, p.topic_alias_maximum);
    two(buf, TA, p.topic_alias);
    byte(buf, MQ, p.maximum_qos);
    byte(buf, RA, p.retain_available);
    for (k, v) in &p.user_properties {
        buf.push(UP);
        put_bytes(buf, k.as_bytes());
        put_bytes(buf, v.as_bytes());
    }
    four(buf, MPS, p.maximum_packet_size);
    byte(buf, WSA, p.wildcard_subscription_available);
    byte(buf, SIA, p.subscription_identifier_available);
    byte(buf, SSA, p.shared_subscription_available);
}

/// Whether an ack-like packet needs its reason byte / property block.
fn short_form(reason: ReasonCode, props: &Properties) -> (bool, bool) {
    let has_props = !props.is_empty();
    (reason != ReasonCode::SUCCESS || has_props, has_props)
}

impl Packet5 {
    /// Remaining length (everything after the fixed header).
    pub fn remaining_len(&self) -> Result<usize, EncodeError> {
        Ok(match self {
            Packet5::Connect(c) => {
                let mut n = 6 + 1 + 1 + 2 + props_len(&c.props)?;
                n += str_len("client identifier", c.client_id.len())?;
                if let Some(w) = &c.will {
                    n += props_len(&w.props)?;
                    n += str_len("will topic", w.topic.as_str().len())?;
                    n += str_len("will payload", w.message.len())?;
                }
                if let Some(u) = &c.username {
                    n += str_len("user name", u.len())?;
                }
                if let Some(p) = &c.password {
                    n += str_len("password", p.len())?;
                }
                n
            }
            Packet5::ConnAck(c) => 2 + props_len(&c.props)?,
            Packet5::Publish(p) => {
                let topic = p.topic.as_ref().map_or(0, |t| t.as_str().len());
                str_len("topic name", topic)?
                    + if p.qos_pid.pid().is_some() { 2 } else { 0 }
                    + props_len(&p.props)?
                    + p.payload.len()
            }
            Packet5::PubAck(a) | Packet5::PubRec(a) | Packet5::PubRel(a) | Packet5::PubComp(a) => {
                let (reason, props) = short_form(a.reason, &a.props);
                2 + usize::from(reason) + if props { props_len(&a.props)? } else { 0 }
            }
            Packet5::Subscribe(s) => {
                if s.filters.is_empty() {
                    return Err(EncodeError::NoFilters {
                        packet: "SUBSCRIBE",
                    });
                }
                let mut n = 2 + props_len(&s.props)?;
                for (f, _) in &s.filters {
                    n += str_len("topic filter", f.as_str().len())? + 1;
                }
                n
            }
            Packet5::SubAck(s) | Packet5::UnsubAck(s) => 2 + props_len(&s.props)? + s.reasons.len(),
            Packet5::Unsubscribe(u) => {
                if u.filters.is_empty() {
                    return Err(EncodeError::NoFilters {
                        packet: "UNSUBSCRIBE",
                    });
                }
                let mut n = 2 + props_len(&u.props)?;
                for f in &u.filters {
                    n += str_len("topic filter", f.as_str().len())?;
                }
                n
            }
            Packet5::PingReq | Packet5::PingResp => 0,
            Packet5::Disconnect(d) | Packet5::Auth(d) => {
                let (reason, props) = short_form(d.reason, &d.props);
                usize::from(reason) + if props { props_len(&d.props)? } else { 0 }
            }
        })
    }

    /// Exact encoded length, fixed header included.
    pub fn encoded_len(&self) -> Result<usize, EncodeError> {
        let rem = self.remaining_len()?;
        if rem > MAX_VARINT as usize {
            return Err(EncodeError::TooLarge(rem));
        }
        Ok(1 + varint_len(rem) + rem)
    }

    /// Append the encoded packet to `buf`; returns the bytes written. On
    /// error nothing is written.
    pub fn encode(&self, buf: &mut Vec<u8>) -> Result<usize, EncodeError> {
        let rem = self.remaining_len()?;
        if rem > MAX_VARINT as usize {
            return Err(EncodeError::TooLarge(rem));
        }
        let start = buf.len();
        let first = match self {
            Packet5::Publish(p) => {
                (3 << 4)
                    | (u8::from(p.dup) << 3)
                    | (p.qos_pid.qos().as_u8() << 1)
                    | u8::from(p.retain)
            }
            Packet5::PubRel(_) | Packet5::Subscribe(_) | Packet5::Unsubscribe(_) => {
                (self.type_number() << 4) | 0x02
            }
            other => other.type_number() << 4,
        };
        buf.push(first);
        put_varint(buf, rem);
        match self {
            Packet5::Connect(c) => {
                put_bytes(buf, b"MQTT");
                buf.push(5);
                let mut flags = 0u8;
                if c.username.is_some() {
                    flags |= 0x80;
                }
                if c.password.is_some() {
                    flags |= 0x40;
                }
                if let Some(w) = &c.will {
                    flags |= 0x04 | (w.qos.as_u8() << 3);
                    if w.retain {
                        flags |= 0x20;
                    }
                }
                if c.clean_start {
                    flags |= 0x02;
                }
                buf.push(flags);
                put_u16(buf, c.keep_alive);
                put_props(buf, &c.props);
                put_bytes(buf, c.client_id.as_bytes());
                if let Some(w) = &c.will {
                    put_props(buf, &w.props);
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
            Packet5::ConnAck(c) => {
                buf.push(u8::from(c.session_present));
                buf.push(c.reason.0);
                put_props(buf, &c.props);
            }
            Packet5::Publish(p) => {
                put_bytes(
                    buf,
                    p.topic.as_ref().map_or(&[][..], |t| t.as_str().as_bytes()),
                );
                if let Some(pid) = p.qos_pid.pid() {
                    put_u16(buf, pid.get());
                }
                put_props(buf, &p.props);
                buf.extend_from_slice(&p.payload);
            }
            Packet5::PubAck(a) | Packet5::PubRec(a) | Packet5::PubRel(a) | Packet5::PubComp(a) => {
                put_u16(buf, a.pid.get());
                let (reason, props) = short_form(a.reason, &a.props);
                if reason {
                    buf.push(a.reason.0);
                }
                if props {
                    put_props(buf, &a.props);
                }
            }
            Packet5::Subscribe(s) => {
                put_u16(buf, s.pid.get());
                put_props(buf, &s.props);
                for (f, o) in &s.filters {
                    put_bytes(buf, f.as_str().as_bytes());
                    buf.push(sub_options_byte(*o));
                }
            }
            Packet5::SubAck(s) | Packet5::UnsubAck(s) => {
                put_u16(buf, s.pid.get());
                put_props(buf, &s.props);
                buf.extend(s.reasons.iter().map(|r| r.0));
            }
            Packet5::Unsubscribe(u) => {
                put_u16(buf, u.pid.get());
                put_props(buf, &u.props);
                for f in &u.filters {
                    put_bytes(buf, f.as_str().as_bytes());
                }
            }
            Packet5::PingReq | Packet5::PingResp => {}
            Packet5::Disconnect(d) | Packet5::Auth(d) => {
                let (reason, props) = short_form(d.reason, &d.props);
                if reason {
                    buf.push(d.reason.0);
                }
                if props {
                    put_props(buf, &d.props);
                }
            }
        }
        Ok(buf.len() - start)
    }
}

/// The Subscription Options byte (§3.8.3.1).
pub fn sub_options_byte(o: SubOptions) -> u8 {
    let rh = match o.retain_handling {
        RetainHandling::SendOnSubscribe => 0,
        RetainHandling::SendIfNew => 1,
        RetainHandling::DoNotSend => 2,
    };
    o.qos.as_u8() | (u8::from(o.no_local) << 2) | (u8::from(o.retain_as_published) << 3) | (rh << 4)
}

/// A PUBACK/PUBREC/PUBREL/PUBCOMP with `reason` and no properties, as the
/// broker's hot path sends it (no `Packet5` built).
pub fn encode_ack5(buf: &mut Vec<u8>, ty: u8, pid: PacketId, reason: ReasonCode) -> usize {
    let flags = if ty == 6 { 0x02 } else { 0 };
    buf.push((ty << 4) | flags);
    if reason == ReasonCode::SUCCESS {
        buf.push(2);
        put_u16(buf, pid.get());
        4
    } else {
        buf.push(3);
        put_u16(buf, pid.get());
        buf.push(reason.0);
        5
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rt(p: Packet5) -> Vec<u8> {
        let mut buf = Vec::new();
        let n = p.encode(&mut buf).unwrap();
        assert_eq!(n, buf.len());
        assert_eq!(p.encoded_len().unwrap(), n);
        let (q, used) = decode(&buf, usize::MAX).unwrap().unwrap();
        assert_eq!(used, n);
        assert_eq!(q, p);
        buf
    }

    #[test]
    fn publish_with_alias_and_empty_topic() {
        let props = Properties {
            topic_alias: Some(3),
            ..Properties::default()
        };
        let p = Packet5::Publish(Publish5 {
            dup: false,
            qos_pid: QosPid::AtLeastOnce(PacketId::new(10).unwrap()),
            retain: false,
            topic: None,
            props,
            payload: Arc::from(&b"hi"[..]),
        });
        // 0x32, rem 9: topic len 0 (2), pid (2), props len 3 (1) + 0x23 00 03, payload 2
        assert_eq!(rt(p), [0x32, 10, 0, 0, 0, 10, 3, 0x23, 0, 3, b'h', b'i']);
    }

    #[test]
    fn acks_take_the_short_forms() {
        let pid = PacketId::new(1).unwrap();
        assert_eq!(rt(Packet5::PubAck(Ack5::ok(pid))), [0x40, 2, 0, 1]);
        let mut a = Ack5::ok(pid);
        a.reason = ReasonCode::NOT_AUTHORIZED;
        assert_eq!(rt(Packet5::PubRec(a)), [0x50, 3, 0, 1, 0x87]);
        assert_eq!(rt(Packet5::Disconnect(ReasonOnly::default())), [0xE0, 0]);
        let mut buf = Vec::new();
        encode_ack5(&mut buf, 5, pid, ReasonCode::NOT_AUTHORIZED);
        assert_eq!(buf, [0x50, 3, 0, 1, 0x87]);
    }

    #[test]
    fn duplicate_and_misplaced_properties_are_refused() {
        // CONNACK with Receive Maximum twice → Protocol Error
        let b = [0x20, 9, 0, 0, 6, 0x21, 0, 5, 0x21, 0, 5];
        assert_eq!(
            decode(&b, 1000).unwrap_err().reason(),
            ReasonCode::PROTOCOL_ERROR
        );
        // CONNACK with a Topic Alias → Malformed Packet
        let b = [0x20, 6, 0, 0, 3, 0x23, 0, 1];
        assert_eq!(
            decode(&b, 1000).unwrap_err().reason(),
            ReasonCode::MALFORMED_PACKET
        );
    }

    #[test]
    fn connect_level_is_peeked() {
        let c = Packet5::Connect(Connect5 {
            clean_start: true,
            keep_alive: 60,
            props: Properties::default(),
            client_id: "a".into(),
            will: None,
            username: None,
            password: None,
        });
        let b = rt(c);
        assert_eq!(connect_protocol_level(&b), Some(5));
        assert_eq!(connect_protocol_level(&b[..8]), None);
    }
}
