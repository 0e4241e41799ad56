//! Independent verification of the MQTT 5.0 codec (`proto::mqtt::v5`,
//! issue 18 item 1), in four layers:
//!
//! 1. round trips: `decode(encode(p)) == p` and `encoded_len` exact for
//!    every [`Packet5`] variant and every property, by proptest strategies
//!    that respect which properties each packet may carry (MQTT 5.0
//!    §2.2.2.2), plus hand cases for the short forms and the variable byte
//!    integer's 3- and 4-byte lengths;
//! 2. golden bytes worked out by hand from the 5.0 specification (CONNECT
//!    with properties and a will, PUBLISH with a topic alias, SUBACK with
//!    reason codes);
//! 3. malformed input rejected with the reason code the specification
//!    names (0x81 Malformed Packet, 0x82 Protocol Error, 0x95 Packet too
//!    large), each case citing its rule; arbitrary bytes never panic;
//! 4. real peers: every packet `mosquitto_pub`/`mosquitto_sub -V 5` and
//!    paho-mqtt `MQTTv5` send decodes and re-encodes to exactly the bytes
//!    they sent, and tshark dissects a pcap of our encodings with no
//!    malformed packet and the field values we encoded.
//!
//! Property order: the encoder writes properties in ascending identifier
//! order (User Properties, 0x26, in their own order); mosquitto (given its
//! `-D` options in that order) and paho write the same order, which is what
//! makes the byte-exact comparison with them possible.

mod common;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use proptest::prelude::*;
use qossim::proto::mqtt::codec::MAX_PACKET_SIZE;
use qossim::proto::mqtt::v5::{
    self, Ack5, ConnAck5, Connect5, Packet5, Properties, Publish5, ReasonCode, ReasonOnly,
    RetainHandling, SubAck5, SubOptions, Subscribe5, Unsubscribe5, Will5,
};
use qossim::proto::mqtt::{PacketId, QoS, QosPid, TopicFilter, TopicName};

use common::peers::{self, KillOnDrop};

// ---------------------------------------------------------------------------
// helpers

fn pid(v: u16) -> PacketId {
    PacketId::new(v).expect("non-zero")
}

fn topic(s: &str) -> TopicName {
    TopicName::new(s).expect("topic name")
}

fn filter(s: &str) -> TopicFilter {
    TopicFilter::new(s).expect("topic filter")
}

/// Encode `p`, checking the count `encode` returns and `encoded_len`.
fn enc(p: &Packet5) -> Vec<u8> {
    let mut v = Vec::new();
    let n = p
        .encode(&mut v)
        .unwrap_or_else(|e| panic!("encode {}: {e}", p.name()));
    assert_eq!(n, v.len(), "{}: encode's count", p.name());
    assert_eq!(
        p.encoded_len().expect("encoded_len"),
        v.len(),
        "{}: encoded_len exact",
        p.name()
    );
    v
}

/// Decode exactly one complete packet from `b`.
fn dec(b: &[u8]) -> Packet5 {
    match v5::decode(b, MAX_PACKET_SIZE) {
        Ok(Some((p, n))) => {
            assert_eq!(n, b.len(), "{}: consumed", p.name());
            p
        }
        Ok(None) => panic!("incomplete: {}", hex(b)),
        Err(e) => panic!("rejected ({}): {e}\n{}", e.reason(), hex(b)),
    }
}

fn hex(b: &[u8]) -> String {
    b.iter()
        .map(|x| format!("{x:02x}"))
        .collect::<Vec<_>>()
        .join(" ")
}

/// `b` must be rejected with reason code `want`; `rule` names the rule.
#[track_caller]
fn reject(b: &[u8], want: u8, rule: &str) {
    match v5::decode(b, MAX_PACKET_SIZE) {
        Err(e) => {
            assert_eq!(
                e.reason(),
                ReasonCode(want),
                "{rule}: wrong reason code for {}: {e}",
                hex(b)
            );
            assert!(!e.to_string().is_empty());
        }
        Ok(r) => panic!("{rule}: accepted {}: {r:?}", hex(b)),
    }
}

/// A variable byte integer (§1.5.5), written here independently of the
/// codec.
fn vbi(mut v: usize) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let mut b = (v % 128) as u8;
        v /= 128;
        if v > 0 {
            b |= 0x80;
        }
        out.push(b);
        if v == 0 {
            return out;
        }
    }
}

/// A packet: first byte, remaining length, body.
fn frame(first: u8, body: &[u8]) -> Vec<u8> {
    let mut v = vec![first];
    v.extend(vbi(body.len()));
    v.extend_from_slice(body);
    v
}

/// A UTF-8 string field: two-byte length and bytes.
fn s(b: &[u8]) -> Vec<u8> {
    let mut v = (b.len() as u16).to_be_bytes().to_vec();
    v.extend_from_slice(b);
    v
}

/// A property block: length prefix and the raw property bytes.
fn block(props: &[u8]) -> Vec<u8> {
    let mut v = vbi(props.len());
    v.extend_from_slice(props);
    v
}

/// Length of the fixed header at the start of `b` (type byte and the
/// remaining length's variable byte integer).
fn header_len(b: &[u8]) -> usize {
    1 + b[1..]
        .iter()
        .position(|x| x & 0x80 == 0)
        .expect("complete header")
        + 1
}

fn cat(parts: &[&[u8]]) -> Vec<u8> {
    parts.concat()
}

// ---------------------------------------------------------------------------
// 1. round trips: strategies

/// Property identifiers each packet may carry (MQTT 5.0 §2.2.2.2, the table
/// of properties and the packets they are used in).
mod allowed {
    pub const CONNECT: &[u8] = &[0x11, 0x15, 0x16, 0x17, 0x19, 0x21, 0x22, 0x26, 0x27];
    pub const WILL: &[u8] = &[0x01, 0x02, 0x03, 0x08, 0x09, 0x18, 0x26];
    pub const CONNACK: &[u8] = &[
        0x11, 0x12, 0x13, 0x15, 0x16, 0x1A, 0x1C, 0x1F, 0x21, 0x22, 0x24, 0x25, 0x26, 0x27, 0x28,
        0x29, 0x2A,
    ];
    pub const PUBLISH: &[u8] = &[0x01, 0x02, 0x03, 0x08, 0x09, 0x0B, 0x23, 0x26];
    pub const ACK: &[u8] = &[0x1F, 0x26];
    pub const SUBSCRIBE: &[u8] = &[0x0B, 0x26];
    pub const SUBACK: &[u8] = &[0x1F, 0x26];
    pub const UNSUBSCRIBE: &[u8] = &[0x26];
    pub const DISCONNECT: &[u8] = &[0x11, 0x1C, 0x1F, 0x26];
    pub const AUTH: &[u8] = &[0x15, 0x16, 0x1F, 0x26];
    /// Every identifier of §2.2.2.2.
    pub const ALL: &[u8] = &[
        0x01, 0x02, 0x03, 0x08, 0x09, 0x0B, 0x11, 0x12, 0x13, 0x15, 0x16, 0x17, 0x18, 0x19, 0x1A,
        0x1C, 0x1F, 0x21, 0x22, 0x23, 0x24, 0x25, 0x26, 0x27, 0x28, 0x29, 0x2A,
    ];
}

/// Reason codes each packet may carry (§3.2.2.2, 3.4.2.1, 3.5.2.1, 3.6.2.1,
/// 3.7.2.1, 3.9.3, 3.11.3, 3.14.2.1, 3.15.2.1).
mod reasons {
    pub const CONNACK: &[u8] = &[
        0x00, 0x80, 0x81, 0x82, 0x83, 0x84, 0x85, 0x86, 0x87, 0x88, 0x89, 0x8A, 0x8C, 0x90, 0x95,
        0x97, 0x99, 0x9A, 0x9B, 0x9C, 0x9D, 0x9F,
    ];
    pub const PUBACK: &[u8] = &[0x00, 0x10, 0x80, 0x83, 0x87, 0x90, 0x91, 0x97, 0x99];
    pub const PUBREL: &[u8] = &[0x00, 0x92];
    pub const SUBACK: &[u8] = &[
        0x00, 0x01, 0x02, 0x80, 0x83, 0x87, 0x8F, 0x91, 0x97, 0x9E, 0xA1, 0xA2,
    ];
    pub const UNSUBACK: &[u8] = &[0x00, 0x11, 0x80, 0x83, 0x87, 0x8F, 0x91];
    pub const DISCONNECT: &[u8] = &[
        0x00, 0x04, 0x80, 0x81, 0x82, 0x83, 0x87, 0x89, 0x8B, 0x8D, 0x8E, 0x8F, 0x90, 0x93, 0x94,
        0x95, 0x96, 0x97, 0x98, 0x99, 0x9A, 0x9B, 0x9C, 0x9D, 0x9E, 0x9F, 0xA0, 0xA1, 0xA2,
    ];
    pub const AUTH: &[u8] = &[0x00, 0x18, 0x19];
}

/// One property value, before it is folded into [`Properties`].
#[derive(Clone, Debug)]
enum PV {
    Byte(u8),
    U16(u16),
    U32(u32),
    Str(String),
    Bin(Vec<u8>),
    Pair(String, String),
}

/// A UTF-8 string without U+0000 or other control characters (a receiver
/// may reject those, §1.5.4), multi-byte characters included.
fn utf8() -> impl Strategy<Value = String> {
    "[a-zA-Z0-9 _./é€😀-]{0,12}"
}

fn topic_name() -> impl Strategy<Value = TopicName> {
    "[a-z0-9$é]{1,6}(/[a-zA-Z0-9 _é]{0,5}){0,3}".prop_map(|s| topic(&s))
}

fn topic_filter() -> impl Strategy<Value = TopicFilter> {
    (
        prop::collection::vec(
            prop_oneof!["[a-z0-9é ]{0,4}".boxed(), Just("+".to_owned()).boxed()],
            1..4,
        ),
        any::<bool>(),
    )
        .prop_map(|(levels, hash)| {
            let mut f = levels.join("/");
            if hash {
                f.push_str("/#");
            }
            if f.is_empty() {
                f.push('x');
            }
            filter(&f)
        })
}

/// A valid value for property `id`.
fn value(id: u8) -> BoxedStrategy<PV> {
    let flag = (0u8..=1).prop_map(PV::Byte).boxed();
    match id {
        0x01 | 0x17 | 0x19 | 0x24 | 0x25 | 0x28 | 0x29 | 0x2A => flag,
        0x02 | 0x11 | 0x18 => any::<u32>().prop_map(PV::U32).boxed(),
        0x27 => (1u32..=u32::MAX).prop_map(PV::U32).boxed(),
        0x0B => prop_oneof![
            1u32..128,
            128u32..16_384,
            16_384u32..2_097_152,
            2_097_152u32..=268_435_455,
        ]
        .prop_map(PV::U32)
        .boxed(),
        0x13 | 0x22 => any::<u16>().prop_map(PV::U16).boxed(),
        0x21 | 0x23 => (1u16..=u16::MAX).prop_map(PV::U16).boxed(),
        // Response Topic is a topic name (§3.3.2.3.5)
        0x08 => topic_name()
            .prop_map(|t| PV::Str(t.as_str().to_owned()))
            .boxed(),
        0x03 | 0x12 | 0x15 | 0x1A | 0x1C | 0x1F => utf8().prop_map(PV::Str).boxed(),
        0x09 | 0x16 => prop::collection::vec(any::<u8>(), 0..12)
            .prop_map(PV::Bin)
            .boxed(),
        0x26 => (utf8(), utf8()).prop_map(|(k, v)| PV::Pair(k, v)).boxed(),
        _ => unreachable!("property {id:#04x}"),
    }
}

/// Fold `(id, value)` pairs into properties; later single values replace
/// earlier ones, User Properties and Subscription Identifiers accumulate.
fn fold(entries: Vec<(u8, PV)>) -> Properties {
    let mut p = Properties::default();
    for (id, v) in entries {
        match (id, v) {
            (0x01, PV::Byte(b)) => p.payload_format_indicator = Some(b),
            (0x02, PV::U32(x)) => p.message_expiry_interval = Some(x),
            (0x03, PV::Str(x)) => p.content_type = Some(x),
            (0x08, PV::Str(x)) => p.response_topic = Some(x),
            (0x09, PV::Bin(x)) => p.correlation_data = Some(x),
            (0x0B, PV::U32(x)) => p.subscription_identifiers.push(x),
            (0x11, PV::U32(x)) => p.session_expiry_interval = Some(x),
            (0x12, PV::Str(x)) => p.assigned_client_identifier = Some(x),
            (0x13, PV::U16(x)) => p.server_keep_alive = Some(x),
            (0x15, PV::Str(x)) => p.authentication_method = Some(x),
            (0x16, PV::Bin(x)) => p.authentication_data = Some(x),
            (0x17, PV::Byte(x)) => p.request_problem_information = Some(x),
            (0x18, PV::U32(x)) => p.will_delay_interval = Some(x),
            (0x19, PV::Byte(x)) => p.request_response_information = Some(x),
            (0x1A, PV::Str(x)) => p.response_information = Some(x),
            (0x1C, PV::Str(x)) => p.server_reference = Some(x),
            (0x1F, PV::Str(x)) => p.reason_string = Some(x),
            (0x21, PV::U16(x)) => p.receive_maximum = Some(x),
            (0x22, PV::U16(x)) => p.topic_alias_maximum = Some(x),
            (0x23, PV::U16(x)) => p.topic_alias = Some(x),
            (0x24, PV::Byte(x)) => p.maximum_qos = Some(x),
            (0x25, PV::Byte(x)) => p.retain_available = Some(x),
            (0x26, PV::Pair(k, v)) => p.user_properties.push((k, v)),
            (0x27, PV::U32(x)) => p.maximum_packet_size = Some(x),
            (0x28, PV::Byte(x)) => p.wildcard_subscription_available = Some(x),
            (0x29, PV::Byte(x)) => p.subscription_identifier_available = Some(x),
            (0x2A, PV::Byte(x)) => p.shared_subscription_available = Some(x),
            (id, v) => unreachable!("{id:#04x} {v:?}"),
        }
    }
    // Authentication Data needs an Authentication Method (§3.1.2.11.10,
    // §3.2.2.3.18).
    if p.authentication_data.is_some() && p.authentication_method.is_none() {
        p.authentication_method = Some("SCRAM-SHA-1".into());
    }
    p
}

/// Properties drawn from `ids`, each set or not, some repeated.
fn props(ids: &'static [u8]) -> BoxedStrategy<Properties> {
    prop::collection::vec(
        prop::sample::select(ids).prop_flat_map(|id| value(id).prop_map(move |v| (id, v))),
        0..8,
    )
    .prop_map(fold)
    .boxed()
}

/// Every property of `ids` set, with user properties and (where allowed)
/// several subscription identifiers: the "every property" cases.
fn all_props(ids: &'static [u8]) -> BoxedStrategy<Properties> {
    let per: Vec<BoxedStrategy<(u8, PV)>> = ids
        .iter()
        .map(|&id| value(id).prop_map(move |v| (id, v)).boxed())
        .collect();
    (per, value(0x26), value(0x0B))
        .prop_map(move |(mut entries, extra_user, extra_sub)| {
            entries.push((0x26, extra_user));
            if ids.contains(&0x0B) {
                entries.push((0x0B, extra_sub));
            }
            fold(entries)
        })
        .boxed()
}

fn either(ids: &'static [u8]) -> BoxedStrategy<Properties> {
    prop_oneof![3 => props(ids), 1 => all_props(ids)].boxed()
}

fn qos() -> impl Strategy<Value = QoS> {
    prop_oneof![
        Just(QoS::AtMostOnce),
        Just(QoS::AtLeastOnce),
        Just(QoS::ExactlyOnce)
    ]
}

fn packet_id() -> impl Strategy<Value = PacketId> {
    (1u16..=u16::MAX).prop_map(pid)
}

fn reason(codes: &'static [u8]) -> impl Strategy<Value = ReasonCode> {
    prop::sample::select(codes).prop_map(ReasonCode)
}

fn payload() -> impl Strategy<Value = Arc<[u8]>> {
    prop::collection::vec(any::<u8>(), 0..40).prop_map(Arc::from)
}

/// A payload of Payload Format Indicator 1 is UTF-8 (§3.3.2.3.2).
fn utf8_payload(p: &mut Properties, payload: &mut Arc<[u8]>) {
    if p.payload_format_indicator == Some(1) {
        let s = String::from_utf8_lossy(payload).replace('\0', " ");
        *payload = Arc::from(s.into_bytes());
    }
}

fn will() -> impl Strategy<Value = Will5> {
    (
        either(allowed::WILL),
        topic_name(),
        payload(),
        qos(),
        any::<bool>(),
    )
        .prop_map(|(mut props, topic, mut message, qos, retain)| {
            utf8_payload(&mut props, &mut message);
            Will5 {
                props,
                topic,
                message,
                qos,
                retain,
            }
        })
}

fn connect() -> impl Strategy<Value = Packet5> {
    (
        any::<bool>(),
        any::<u16>(),
        either(allowed::CONNECT),
        utf8(),
        prop::option::of(will()),
        prop::option::of(utf8()),
        prop::option::of(prop::collection::vec(any::<u8>(), 0..10)),
    )
        .prop_map(
            |(clean_start, keep_alive, props, client_id, will, username, password)| {
                Packet5::Connect(Connect5 {
                    clean_start,
                    keep_alive,
                    props,
                    client_id,
                    will,
                    username,
                    password,
                })
            },
        )
}

fn connack() -> impl Strategy<Value = Packet5> {
    (
        any::<bool>(),
        reason(reasons::CONNACK),
        either(allowed::CONNACK),
    )
        .prop_map(|(sp, reason, props)| {
            Packet5::ConnAck(ConnAck5 {
                // Session Present is 0 with a failure reason [MQTT-3.2.2-6]
                session_present: sp && !reason.is_failure(),
                reason,
                props,
            })
        })
}

fn publish() -> impl Strategy<Value = Packet5> {
    (
        any::<bool>(),
        qos(),
        packet_id(),
        any::<bool>(),
        prop::option::of(topic_name()),
        either(allowed::PUBLISH),
        payload(),
        1u16..=u16::MAX,
    )
        .prop_map(
            |(dup, qos, pid, retain, topic, mut props, mut payload, alias)| {
                // a zero-length topic needs a Topic Alias (§3.3.2.3.4)
                if topic.is_none() && props.topic_alias.is_none() {
                    props.topic_alias = Some(alias);
                }
                utf8_payload(&mut props, &mut payload);
                Packet5::Publish(Publish5 {
                    // DUP is 0 for QoS 0 [MQTT-3.3.1-2]
                    dup: dup && qos != QoS::AtMostOnce,
                    qos_pid: QosPid::new(qos, pid),
                    retain,
                    topic,
                    props,
                    payload,
                })
            },
        )
}

fn ack(codes: &'static [u8]) -> impl Strategy<Value = Ack5> {
    (
        packet_id(),
        prop_oneof![
            1 => Just(ReasonCode::SUCCESS).boxed(),
            3 => reason(codes).boxed()
        ],
        prop_oneof![1 => Just(Properties::default()), 2 => either(allowed::ACK)],
    )
        .prop_map(|(pid, reason, props)| Ack5 { pid, reason, props })
}

fn sub_options() -> impl Strategy<Value = SubOptions> {
    (
        qos(),
        any::<bool>(),
        any::<bool>(),
        prop_oneof![
            Just(RetainHandling::SendOnSubscribe),
            Just(RetainHandling::SendIfNew),
            Just(RetainHandling::DoNotSend)
        ],
    )
        .prop_map(
            |(qos, no_local, retain_as_published, retain_handling)| SubOptions {
                qos,
                no_local,
                retain_as_published,
                retain_handling,
            },
        )
}

fn subscribe() -> impl Strategy<Value = Packet5> {
    (
        packet_id(),
        either(allowed::SUBSCRIBE),
        prop::collection::vec((topic_filter(), sub_options()), 1..5),
    )
        .prop_map(|(pid, mut props, filters)| {
            // at most one Subscription Identifier in SUBSCRIBE (§3.8.2.1.2)
            props.subscription_identifiers.truncate(1);
            Packet5::Subscribe(Subscribe5 {
                pid,
                props,
                filters,
            })
        })
}

fn suback(codes: &'static [u8]) -> impl Strategy<Value = SubAck5> {
    (
        packet_id(),
        either(allowed::SUBACK),
        prop::collection::vec(reason(codes), 1..6),
    )
        .prop_map(|(pid, props, reasons)| SubAck5 {
            pid,
            props,
            reasons,
        })
}

fn unsubscribe() -> impl Strategy<Value = Packet5> {
    (
        packet_id(),
        either(allowed::UNSUBSCRIBE),
        prop::collection::vec(topic_filter(), 1..5),
    )
        .prop_map(|(pid, props, filters)| {
            Packet5::Unsubscribe(Unsubscribe5 {
                pid,
                props,
                filters,
            })
        })
}

fn reason_only(codes: &'static [u8], ids: &'static [u8]) -> impl Strategy<Value = ReasonOnly> {
    (
        prop_oneof![
            1 => Just(ReasonCode::SUCCESS).boxed(),
            3 => reason(codes).boxed()
        ],
        prop_oneof![1 => Just(Properties::default()), 2 => either(ids)],
    )
        .prop_map(|(reason, props)| ReasonOnly { reason, props })
}

fn auth() -> impl Strategy<Value = ReasonOnly> {
    reason_only(reasons::AUTH, allowed::AUTH).prop_map(|mut r| {
        // an AUTH that carries properties names its method (§3.15.2.2.2)
        if !r.props.is_empty() || r.reason != ReasonCode::SUCCESS {
            r.props
                .authentication_method
                .get_or_insert_with(|| "SCRAM-SHA-1".into());
        }
        r
    })
}

fn packet() -> impl Strategy<Value = Packet5> {
    prop_oneof![
        connect(),
        connack(),
        publish(),
        ack(reasons::PUBACK).prop_map(Packet5::PubAck),
        ack(reasons::PUBACK).prop_map(Packet5::PubRec),
        ack(reasons::PUBREL).prop_map(Packet5::PubRel),
        ack(reasons::PUBREL).prop_map(Packet5::PubComp),
        subscribe(),
        suback(reasons::SUBACK).prop_map(Packet5::SubAck),
        unsubscribe(),
        suback(reasons::UNSUBACK).prop_map(Packet5::UnsubAck),
        Just(Packet5::PingReq),
        Just(Packet5::PingResp),
        reason_only(reasons::DISCONNECT, allowed::DISCONNECT).prop_map(Packet5::Disconnect),
        auth().prop_map(Packet5::Auth),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(4000))]

    /// decode(encode(p)) == p, encoded_len exact, every strict prefix
    /// incomplete (never an error), and a following packet left alone.
    #[test]
    fn round_trip_every_packet(p in packet()) {
        let b = enc(&p);
        let (q, n) = v5::decode(&b, MAX_PACKET_SIZE)
            .map_err(|e| TestCaseError::fail(format!("{e} ({})\n{}", e.reason(), hex(&b))))?
            .ok_or_else(|| TestCaseError::fail("incomplete"))?;
        prop_assert_eq!(&q, &p);
        prop_assert_eq!(n, b.len());
        for cut in 0..b.len() {
            prop_assert!(
                matches!(v5::decode(&b[..cut], MAX_PACKET_SIZE), Ok(None)),
                "prefix of {} bytes of {} is not incomplete", cut, hex(&b)
            );
        }
        let mut two = b.clone();
        two.extend_from_slice(&[0xC0, 0x00]);
        let (q2, n2) = v5::decode(&two, MAX_PACKET_SIZE).ok().flatten().expect("first of two");
        prop_assert_eq!(q2, p);
        prop_assert_eq!(n2, b.len());
    }

    /// Every property of a packet's allowed set, all at once, through the
    /// packets that carry them: properties_len is the block's length.
    #[test]
    fn every_property_round_trips(
        c in all_props(allowed::CONNECT),
        w in all_props(allowed::WILL),
        a in all_props(allowed::CONNACK),
        p in all_props(allowed::PUBLISH),
        d in all_props(allowed::DISCONNECT),
        au in all_props(allowed::AUTH),
    ) {
        let mut w = w;
        if w.payload_format_indicator == Some(1) {
            w.payload_format_indicator = Some(0);
        }
        let mut p = p;
        p.payload_format_indicator = Some(0);
        let packets = [
            Packet5::Connect(Connect5 {
                clean_start: true,
                keep_alive: 10,
                props: c.clone(),
                client_id: "c".into(),
                will: Some(Will5 {
                    props: w.clone(),
                    topic: topic("w"),
                    message: Arc::from(&b"\xff\x00"[..]),
                    qos: QoS::AtLeastOnce,
                    retain: false,
                }),
                username: None,
                password: None,
            }),
            Packet5::ConnAck(ConnAck5 { session_present: false, reason: ReasonCode::SUCCESS, props: a.clone() }),
            Packet5::Publish(Publish5 {
                dup: false,
                qos_pid: QosPid::AtMostOnce,
                retain: false,
                topic: Some(topic("t")),
                props: p.clone(),
                payload: Arc::from(&b"\xff"[..]),
            }),
            Packet5::Disconnect(ReasonOnly { reason: ReasonCode(0x04), props: d.clone() }),
            Packet5::Auth(ReasonOnly { reason: ReasonCode(0x18), props: au.clone() }),
        ];
        for pk in &packets {
            let b = enc(pk);
            prop_assert_eq!(&dec(&b), pk);
        }
        // the CONNECT's property block starts after the 10-byte variable
        // header prefix: its length prefix covers properties_len bytes
        let b = enc(&packets[0]);
        let hdr = header_len(&b);
        let len = v5::properties_len(&c);
        let prefix = vbi(len);
        prop_assert_eq!(&b[hdr + 10..hdr + 10 + prefix.len()], &prefix[..]);
        prop_assert!(len > 0);
    }
}

// hand cases --------------------------------------------------------------

#[test]
fn puback_success_without_properties_is_the_two_byte_form() {
    // §3.4.2.1: "The Reason Code and Property Length can be omitted if the
    // Reason Code is 0x00 (Success) and there are no Properties. In this
    // case the PUBACK has a Remaining Length of 2."
    for (p, first) in [
        (Packet5::PubAck(Ack5::ok(pid(0x1234))), 0x40),
        (Packet5::PubRec(Ack5::ok(pid(0x1234))), 0x50),
        (Packet5::PubRel(Ack5::ok(pid(0x1234))), 0x62),
        (Packet5::PubComp(Ack5::ok(pid(0x1234))), 0x70),
    ] {
        let b = enc(&p);
        assert_eq!(b, [first, 0x02, 0x12, 0x34], "{}", p.name());
        assert_eq!(dec(&b), p);
    }
    // a failure reason without properties: remaining length 3, no property
    // length (§3.4.2.2.1: "If the Remaining Length is less than 4 there is
    // no Property Length and the value of 0 is used"), the form mosquitto
    // sends
    let p = Packet5::PubAck(Ack5 {
        pid: pid(7),
        reason: ReasonCode::NO_MATCHING_SUBSCRIBERS,
        props: Properties::default(),
    });
    let b = enc(&p);
    assert_eq!(b, [0x40, 0x03, 0x00, 0x07, 0x10]);
    assert_eq!(dec(&b), p);
}

#[test]
fn acks_decode_every_remaining_length_form() {
    let ok = Packet5::PubAck(Ack5::ok(pid(7)));
    // remaining length 2, 3 (reason only), 4 (reason, empty properties)
    assert_eq!(dec(&[0x40, 0x02, 0x00, 0x07]), ok);
    assert_eq!(dec(&[0x40, 0x03, 0x00, 0x07, 0x00]), ok);
    assert_eq!(dec(&[0x40, 0x04, 0x00, 0x07, 0x00, 0x00]), ok);
    let nms = Packet5::PubRec(Ack5 {
        pid: pid(7),
        reason: ReasonCode(0x10),
        props: Properties::default(),
    });
    assert_eq!(dec(&[0x50, 0x03, 0x00, 0x07, 0x10]), nms);
    assert_eq!(dec(&[0x50, 0x04, 0x00, 0x07, 0x10, 0x00]), nms);
    // DISCONNECT: remaining length 0, 1 (reason only), 2 (empty properties)
    // (§3.14.2.1, §3.14.2.2.1)
    let normal = Packet5::Disconnect(ReasonOnly::default());
    assert_eq!(dec(&[0xE0, 0x00]), normal);
    assert_eq!(dec(&[0xE0, 0x01, 0x00]), normal);
    assert_eq!(dec(&[0xE0, 0x02, 0x00, 0x00]), normal);
    assert_eq!(
        dec(&[0xE0, 0x01, 0x04]),
        Packet5::Disconnect(ReasonOnly {
            reason: ReasonCode::DISCONNECT_WITH_WILL,
            props: Properties::default()
        })
    );
    // AUTH: remaining length 0 (§3.15.2.1)
    assert_eq!(dec(&[0xF0, 0x00]), Packet5::Auth(ReasonOnly::default()));
}

#[test]
fn disconnect_and_auth_success_without_properties_have_remaining_length_0() {
    // §3.14.2.1: "The Reason Code and Property Length can be omitted if the
    // Reason Code is 0x00 (Normal disconnecton) and there are no
    // Properties. In this case the DISCONNECT has a Remaining Length of 0."
    assert_eq!(
        enc(&Packet5::Disconnect(ReasonOnly::default())),
        [0xE0, 0x00]
    );
    // §3.15.2.1, the same for AUTH
    assert_eq!(enc(&Packet5::Auth(ReasonOnly::default())), [0xF0, 0x00]);
    assert_eq!(enc(&Packet5::PingReq), [0xC0, 0x00]);
    assert_eq!(enc(&Packet5::PingResp), [0xD0, 0x00]);
    assert_eq!(dec(&[0xC0, 0x00]), Packet5::PingReq);
    assert_eq!(dec(&[0xD0, 0x00]), Packet5::PingResp);
    // a reason code with no properties: the reason byte alone, remaining
    // length 1 (§3.14.2.2.1: "If the Remaining Length is less than 2, a
    // value of 0 is used"), as mosquitto_sub's `e0 01 04` on a -W timeout
    let p = Packet5::Disconnect(ReasonOnly {
        reason: ReasonCode::SERVER_SHUTTING_DOWN,
        props: Properties::default(),
    });
    assert_eq!(enc(&p), [0xE0, 0x01, 0x8B]);
    assert_eq!(dec(&[0xE0, 0x01, 0x8B]), p);
}

#[test]
fn zero_length_topic_with_alias() {
    // §3.3.2.3.4: a Topic Alias with a zero-length Topic Name
    let p = Packet5::Publish(Publish5 {
        dup: false,
        qos_pid: QosPid::AtLeastOnce(pid(3)),
        retain: true,
        topic: None,
        props: Properties {
            topic_alias: Some(9),
            ..Properties::default()
        },
        payload: Arc::from(&b"x"[..]),
    });
    let b = enc(&p);
    #[rustfmt::skip]
    assert_eq!(b, [
        0x33,             // PUBLISH, QoS 1, RETAIN
        0x09,             // remaining length 9
        0x00, 0x00,       // topic name: zero length
        0x00, 0x03,       // packet identifier 3
        0x03,             // property length 3
        0x23, 0x00, 0x09, // Topic Alias 9
        b'x',             // payload
    ]);
    assert_eq!(dec(&b), p);
}

#[test]
fn variable_byte_integers_of_three_and_four_bytes() {
    // Subscription Identifier values at the VBI boundaries (§1.5.5 table
    // 1-1): 127 | 128, 16 383 | 16 384, 2 097 151 | 2 097 152, 268 435 455
    let cases: [(u32, &[u8]); 7] = [
        (127, &[0x7F]),
        (128, &[0x80, 0x01]),
        (16_383, &[0xFF, 0x7F]),
        (16_384, &[0x80, 0x80, 0x01]),
        (2_097_151, &[0xFF, 0xFF, 0x7F]),
        (2_097_152, &[0x80, 0x80, 0x80, 0x01]),
        (268_435_455, &[0xFF, 0xFF, 0xFF, 0x7F]),
    ];
    for (id, bytes) in cases {
        let p = Packet5::Subscribe(Subscribe5 {
            pid: pid(1),
            props: Properties {
                subscription_identifiers: vec![id],
                ..Properties::default()
            },
            filters: vec![(filter("a"), SubOptions::qos(QoS::AtLeastOnce))],
        });
        let b = enc(&p);
        let props = cat(&[&[0x0B], bytes]);
        let want = frame(
            0x82,
            &cat(&[&[0x00, 0x01], &block(&props), &s(b"a"), &[0x01]]),
        );
        assert_eq!(b, want, "subscription identifier {id}");
        assert_eq!(dec(&b), p);
        assert_eq!(
            v5::properties_len(match &p {
                Packet5::Subscribe(s) => &s.props,
                _ => unreachable!(),
            }),
            props.len()
        );
    }
    // remaining lengths of 3 and 4 bytes: PUBLISH payloads crossing 16 384
    // and 2 097 152 bytes of remaining length
    for (payload_len, rl_bytes) in [(16_384usize, 3usize), (2_097_152, 4)] {
        let p = Packet5::Publish(Publish5 {
            dup: false,
            qos_pid: QosPid::AtMostOnce,
            retain: false,
            topic: Some(topic("t")),
            props: Properties::default(),
            payload: Arc::from(vec![0xA5; payload_len]),
        });
        let b = enc(&p);
        let rl = 3 + 1 + payload_len; // topic (2 + 1), property length 0, payload
        assert_eq!(&b[1..1 + rl_bytes], &vbi(rl)[..], "remaining length {rl}");
        assert_eq!(b.len(), 1 + rl_bytes + rl);
        assert_eq!(dec(&b), p);
        // the header alone, and the packet less one byte, are incomplete
        assert!(matches!(
            v5::decode(&b[..1 + rl_bytes], MAX_PACKET_SIZE),
            Ok(None)
        ));
        assert!(matches!(
            v5::decode(&b[..b.len() - 1], MAX_PACKET_SIZE),
            Ok(None)
        ));
    }
}

#[test]
fn suback_and_unsuback_with_several_reason_codes() {
    let p = Packet5::UnsubAck(SubAck5 {
        pid: pid(0x0102),
        props: Properties {
            reason_string: Some("no".into()),
            ..Properties::default()
        },
        reasons: vec![ReasonCode(0x00), ReasonCode(0x11), ReasonCode(0x87)],
    });
    let b = enc(&p);
    #[rustfmt::skip]
    assert_eq!(b, [
        0xB0,                         // UNSUBACK
        0x0B,                         // remaining length 11
        0x01, 0x02,                   // packet identifier
        0x05,                         // property length 5
        0x1F, 0x00, 0x02, b'n', b'o', // Reason String "no"
        0x00, 0x11, 0x87,             // Success, No subscription existed, Not authorized
    ]);
    assert_eq!(dec(&b), p);
    let s = Packet5::SubAck(SubAck5 {
        pid: pid(1),
        props: Properties::default(),
        reasons: [
            0x00, 0x01, 0x02, 0x80, 0x83, 0x87, 0x8F, 0x91, 0x97, 0x9E, 0xA1, 0xA2,
        ]
        .map(ReasonCode)
        .to_vec(),
    });
    assert_eq!(dec(&enc(&s)), s);
}

#[test]
fn password_without_user_name_is_allowed_in_5() {
    // 5.0 dropped 3.1.1's [MQTT-3.1.2-22]: §3.1.2.9 lets a password be sent
    // without a user name
    let p = Packet5::Connect(Connect5 {
        clean_start: false,
        keep_alive: 0,
        props: Properties::default(),
        client_id: String::new(),
        will: None,
        username: None,
        password: Some(b"token".to_vec()),
    });
    let b = enc(&p);
    assert_eq!(b[9], 0x40, "connect flags: password only");
    assert_eq!(dec(&b), p);
}

#[test]
fn user_properties_keep_order_and_repeats() {
    // §3.3.2.3.7: order is significant, names may repeat
    let p = Packet5::PubAck(Ack5 {
        pid: pid(1),
        reason: ReasonCode::SUCCESS,
        props: Properties {
            user_properties: vec![
                ("b".into(), "1".into()),
                ("a".into(), "2".into()),
                ("b".into(), "3".into()),
                (String::new(), String::new()),
            ],
            ..Properties::default()
        },
    });
    let b = enc(&p);
    #[rustfmt::skip]
    let want = [
        0x40, 0x1E, 0x00, 0x01, 0x00, // PUBACK, rl 30, pid 1, Success
        0x1A,                         // property length 26
        0x26, 0x00, 0x01, b'b', 0x00, 0x01, b'1',
        0x26, 0x00, 0x01, b'a', 0x00, 0x01, b'2',
        0x26, 0x00, 0x01, b'b', 0x00, 0x01, b'3',
        0x26, 0x00, 0x00, 0x00, 0x00,
    ];
    assert_eq!(b, want);
    assert_eq!(dec(&b), p);
}

#[test]
fn connect_protocol_level_reads_the_level_byte() {
    let c5 = enc(&Packet5::Connect(Connect5 {
        clean_start: true,
        keep_alive: 60,
        props: Properties::default(),
        client_id: "c".into(),
        will: None,
        username: None,
        password: None,
    }));
    assert_eq!(v5::connect_protocol_level(&c5), Some(5));
    // the 3.1.1 codec's CONNECT
    let c4 = {
        let mut v = Vec::new();
        qossim::proto::mqtt::Packet::Connect(qossim::proto::mqtt::Connect {
            protocol: qossim::proto::mqtt::ProtocolLevel::V311,
            clean_session: true,
            keep_alive: 60,
            client_id: "c".into(),
            will: None,
            username: None,
            password: None,
        })
        .encode(&mut v)
        .expect("3.1.1 encode");
        v
    };
    assert_eq!(v5::connect_protocol_level(&c4), Some(4));
    // readable as soon as the level byte has arrived
    assert_eq!(v5::connect_protocol_level(&c5[..9]), Some(5));
    assert_eq!(v5::connect_protocol_level(&c5[..8]), None);
    assert_eq!(v5::connect_protocol_level(&[]), None);
    // not a CONNECT
    assert_eq!(v5::connect_protocol_level(&[0xC0, 0x00]), None);
    let publish = enc(&Packet5::Publish(Publish5 {
        dup: false,
        qos_pid: QosPid::AtMostOnce,
        retain: false,
        topic: Some(topic("MQTT/x")),
        props: Properties::default(),
        payload: Arc::from(&[5u8; 4][..]),
    }));
    assert_eq!(v5::connect_protocol_level(&publish), None);
}

// ---------------------------------------------------------------------------
// 2. golden bytes worked out by hand from the 5.0 specification

/// CONNECT (§3.1) with Session Expiry Interval, Receive Maximum, Topic
/// Alias Maximum and a User Property, a QoS 1 retained will with Will
/// Properties, a user name and a password.
#[test]
fn golden_connect_with_properties_and_will() {
    let p = Packet5::Connect(Connect5 {
        clean_start: true,
        keep_alive: 60,
        props: Properties {
            session_expiry_interval: Some(30),
            receive_maximum: Some(20),
            topic_alias_maximum: Some(10),
            user_properties: vec![("k".into(), "v".into())],
            ..Properties::default()
        },
        client_id: "dev-1".into(),
        will: Some(Will5 {
            props: Properties {
                payload_format_indicator: Some(1),
                will_delay_interval: Some(5),
                ..Properties::default()
            },
            topic: topic("dev-1/will"),
            message: Arc::from(&b"gone"[..]),
            qos: QoS::AtLeastOnce,
            retain: true,
        }),
        username: Some("ann".into()),
        password: Some(b"pw".to_vec()),
    });
    #[rustfmt::skip]
    let want: Vec<u8> = [
        &[0x10][..],                  // CONNECT, flags 0000 (§3.1.1)
        &[0x47],                      // remaining length 71 = 29 variable header + 42 payload
        // variable header (§3.1.2)
        &[0x00, 0x04], b"MQTT",       // protocol name
        &[0x05],                      // protocol version 5
        &[0xEE],                      // flags: user name 0x80 | password 0x40 | will retain 0x20
                                      //   | will QoS 1 0x08 | will 0x04 | clean start 0x02
        &[0x00, 0x3C],                // keep alive 60 s
        &[0x12],                      // property length 18
        &[0x11, 0x00, 0x00, 0x00, 0x1E], // Session Expiry Interval 30 s
        &[0x21, 0x00, 0x14],          // Receive Maximum 20
        &[0x22, 0x00, 0x0A],          // Topic Alias Maximum 10
        &[0x26, 0x00, 0x01], b"k",    // User Property name "k"
        &[0x00, 0x01], b"v",          //   value "v"
        // payload (§3.1.3)
        &[0x00, 0x05], b"dev-1",      // client identifier
        &[0x07],                      // will property length 7
        &[0x01, 0x01],                // Payload Format Indicator 1 (UTF-8)
        &[0x18, 0x00, 0x00, 0x00, 0x05], // Will Delay Interval 5 s
        &[0x00, 0x0A], b"dev-1/will", // will topic
        &[0x00, 0x04], b"gone",       // will payload
        &[0x00, 0x03], b"ann",        // user name
        &[0x00, 0x02], b"pw",         // password
    ]
    .concat();
    assert_eq!(want.len(), 2 + 71);
    assert_eq!(enc(&p), want);
    assert_eq!(dec(&want), p);
    if let Packet5::Connect(c) = &p {
        assert_eq!(v5::properties_len(&c.props), 18);
        assert_eq!(v5::properties_len(&c.will.as_ref().expect("will").props), 7);
    }
}

fn alias_publishes() -> (Packet5, Vec<u8>, Packet5, Vec<u8>) {
    let first = Packet5::Publish(Publish5 {
        dup: false,
        qos_pid: QosPid::AtLeastOnce(pid(10)),
        retain: false,
        topic: Some(topic("a/b")),
        props: Properties {
            topic_alias: Some(1),
            ..Properties::default()
        },
        payload: Arc::from(&b"hi"[..]),
    });
    #[rustfmt::skip]
    let first_bytes: Vec<u8> = [
        &[0x32][..],          // PUBLISH, DUP 0, QoS 1, RETAIN 0 (§3.3.1)
        &[0x0D],              // remaining length 13
        &[0x00, 0x03], b"a/b", // topic name
        &[0x00, 0x0A],        // packet identifier 10
        &[0x03],              // property length 3
        &[0x23, 0x00, 0x01],  // Topic Alias 1 (§3.3.2.3.4): sets alias 1 = "a/b"
        b"hi",                // payload
    ]
    .concat();
    let later = Packet5::Publish(Publish5 {
        dup: false,
        qos_pid: QosPid::AtMostOnce,
        retain: false,
        topic: None,
        props: Properties {
            topic_alias: Some(1),
            ..Properties::default()
        },
        payload: Arc::from(&b"hi"[..]),
    });
    #[rustfmt::skip]
    let later_bytes: Vec<u8> = [
        &[0x30][..],          // PUBLISH, QoS 0
        &[0x08],              // remaining length 8
        &[0x00, 0x00],        // topic name: zero length, the alias stands for it
        &[0x03],              // property length 3 (no packet identifier at QoS 0)
        &[0x23, 0x00, 0x01],  // Topic Alias 1
        b"hi",                // payload
    ]
    .concat();
    (first, first_bytes, later, later_bytes)
}

/// PUBLISH with a Topic Alias (§3.3.2.3.4): first use with the topic name,
/// later use with a zero-length topic name — 3 bytes of topic saved.
#[test]
fn golden_publish_with_topic_alias() {
    let (first, first_bytes, later, later_bytes) = alias_publishes();
    assert_eq!(enc(&first), first_bytes);
    assert_eq!(dec(&first_bytes), first);
    assert_eq!(enc(&later), later_bytes);
    assert_eq!(dec(&later_bytes), later);
}

/// SUBACK (§3.9) with reason codes Granted QoS 0, Granted QoS 1, Not
/// authorized.
#[test]
fn golden_suback_with_reason_codes() {
    let p = Packet5::SubAck(SubAck5 {
        pid: pid(7),
        props: Properties::default(),
        reasons: vec![
            ReasonCode::GRANTED_QOS_0,
            ReasonCode::GRANTED_QOS_1,
            ReasonCode::NOT_AUTHORIZED,
        ],
    });
    #[rustfmt::skip]
    let want = [
        0x90,             // SUBACK, flags 0000
        0x06,             // remaining length 6
        0x00, 0x07,       // packet identifier 7
        0x00,             // property length 0
        0x00, 0x01, 0x87, // reason codes: Granted QoS 0, Granted QoS 1, Not authorized
    ];
    assert_eq!(enc(&p), want);
    assert_eq!(dec(&want), p);
}

/// SUBSCRIBE (§3.8) with a Subscription Identifier and every subscription
/// option bit.
#[test]
fn golden_subscribe_with_options() {
    let p = Packet5::Subscribe(Subscribe5 {
        pid: pid(2),
        props: Properties {
            subscription_identifiers: vec![200],
            ..Properties::default()
        },
        filters: vec![
            (
                filter("a/+"),
                SubOptions {
                    qos: QoS::ExactlyOnce,
                    no_local: true,
                    retain_as_published: true,
                    retain_handling: RetainHandling::DoNotSend,
                },
            ),
            (
                filter("#"),
                SubOptions {
                    qos: QoS::AtMostOnce,
                    no_local: false,
                    retain_as_published: false,
                    retain_handling: RetainHandling::SendIfNew,
                },
            ),
        ],
    });
    #[rustfmt::skip]
    let want: Vec<u8> = [
        &[0x82][..],          // SUBSCRIBE, flags 0010
        &[0x10],              // remaining length 16
        &[0x00, 0x02],        // packet identifier 2
        &[0x03],              // property length 3
        &[0x0B, 0xC8, 0x01],  // Subscription Identifier 200 (VBI 0xC8 0x01)
        &[0x00, 0x03], b"a/+", // filter
        &[0x2E],              // options: retain handling 2 << 4 | RAP 0x08 | NL 0x04 | QoS 2
        &[0x00, 0x01], b"#",  // filter
        &[0x10],              // options: retain handling 1 << 4, QoS 0
    ]
    .concat();
    assert_eq!(enc(&p), want);
    assert_eq!(dec(&want), p);
}

// ---------------------------------------------------------------------------
// 3. malformed input and the reason code the specification names

const MALFORMED: u8 = 0x81;
const PROTOCOL_ERROR: u8 = 0x82;

/// The raw bytes of property `id` with a valid value.
fn raw_prop(id: u8) -> Vec<u8> {
    let mut v = vec![id];
    match id {
        0x01 | 0x17 | 0x19 | 0x24 | 0x25 | 0x28 | 0x29 | 0x2A => v.push(1),
        0x02 | 0x11 | 0x18 | 0x27 => v.extend([0, 0, 0, 9]),
        0x0B => v.push(5),
        0x13 | 0x21 | 0x22 | 0x23 => v.extend([0, 5]),
        0x03 | 0x08 | 0x12 | 0x15 | 0x1A | 0x1C | 0x1F => v.extend(s(b"x/y")),
        0x09 | 0x16 => v.extend([0, 2, 0xAB, 0xCD]),
        0x26 => v.extend(cat(&[&s(b"k"), &s(b"v")])),
        _ => unreachable!(),
    }
    v
}

/// Packets with properties, each built around a raw property block, with
/// the identifiers it may carry.
#[allow(clippy::type_complexity)]
fn skeletons() -> Vec<(&'static str, &'static [u8], Box<dyn Fn(&[u8]) -> Vec<u8>>)> {
    let connect_head = cat(&[&s(b"MQTT"), &[0x05, 0x02, 0x00, 0x3C]]);
    let ch = connect_head.clone();
    vec![
        (
            "CONNECT",
            allowed::CONNECT,
            Box::new(move |p: &[u8]| frame(0x10, &cat(&[&ch, &block(p), &s(b"c")]))),
        ),
        (
            "CONNECT will",
            allowed::WILL,
            Box::new(move |p: &[u8]| {
                let mut head = connect_head.clone();
                head[7] = 0x06; // will flag | clean start
                frame(
                    0x10,
                    &cat(&[&head, &[0x00], &s(b"c"), &block(p), &s(b"w"), &s(b"m")]),
                )
            }),
        ),
        (
            "CONNACK",
            allowed::CONNACK,
            Box::new(|p: &[u8]| frame(0x20, &cat(&[&[0x00, 0x00], &block(p)]))),
        ),
        (
            "PUBLISH",
            allowed::PUBLISH,
            Box::new(|p: &[u8]| frame(0x32, &cat(&[&s(b"t"), &[0x00, 0x01], &block(p), b"pl"]))),
        ),
        (
            "PUBACK",
            allowed::ACK,
            Box::new(|p: &[u8]| frame(0x40, &cat(&[&[0x00, 0x01, 0x10], &block(p)]))),
        ),
        (
            "PUBREC",
            allowed::ACK,
            Box::new(|p: &[u8]| frame(0x50, &cat(&[&[0x00, 0x01, 0x10], &block(p)]))),
        ),
        (
            "PUBREL",
            allowed::ACK,
            Box::new(|p: &[u8]| frame(0x62, &cat(&[&[0x00, 0x01, 0x92], &block(p)]))),
        ),
        (
            "PUBCOMP",
            allowed::ACK,
            Box::new(|p: &[u8]| frame(0x70, &cat(&[&[0x00, 0x01, 0x92], &block(p)]))),
        ),
        (
            "SUBSCRIBE",
            allowed::SUBSCRIBE,
            Box::new(|p: &[u8]| frame(0x82, &cat(&[&[0x00, 0x01], &block(p), &s(b"a"), &[1]]))),
        ),
        (
            "SUBACK",
            allowed::SUBACK,
            Box::new(|p: &[u8]| frame(0x90, &cat(&[&[0x00, 0x01], &block(p), &[0x01]]))),
        ),
        (
            "UNSUBSCRIBE",
            allowed::UNSUBSCRIBE,
            Box::new(|p: &[u8]| frame(0xA2, &cat(&[&[0x00, 0x01], &block(p), &s(b"a")]))),
        ),
        (
            "UNSUBACK",
            allowed::SUBACK,
            Box::new(|p: &[u8]| frame(0xB0, &cat(&[&[0x00, 0x01], &block(p), &[0x00]]))),
        ),
        (
            "DISCONNECT",
            allowed::DISCONNECT,
            Box::new(|p: &[u8]| frame(0xE0, &cat(&[&[0x00], &block(p)]))),
        ),
        (
            "AUTH",
            allowed::AUTH,
            Box::new(|p: &[u8]| frame(0xF0, &cat(&[&[0x18], &block(p)]))),
        ),
    ]
}

/// The property block that carries `id` in a packet that allows it:
/// Authentication Data comes with its method, and an AUTH always names
/// its method (§3.15.2.2.2).
fn carrying(name: &str, id: u8) -> Vec<u8> {
    let mut v = Vec::new();
    if id != 0x15 && (id == 0x16 || name == "AUTH") {
        v.extend(raw_prop(0x15));
    }
    v.extend(raw_prop(id));
    v
}

/// Every property in every packet: where §2.2.2.2 allows it the packet
/// decodes and re-encodes to the same bytes; where it does not, the packet
/// is a Malformed Packet (0x81, §2.2.2.2: "a Control Packet which contains
/// an Identifier which is not valid for its packet type ... is a Malformed
/// Packet").
#[test]
fn property_not_allowed_in_its_packet_is_malformed_2_2_2_2() {
    let mut checked = 0;
    for (name, ids, build) in skeletons() {
        // the skeleton itself decodes (property block empty, or just the
        // AUTH method)
        let base = if name == "AUTH" {
            raw_prop(0x15)
        } else {
            vec![]
        };
        // (with no properties an ack re-encodes to its short form)
        dec(&build(&base));
        for &id in allowed::ALL {
            let b = build(&carrying(name, id));
            if ids.contains(&id) {
                let p = dec(&b);
                assert_eq!(enc(&p), b, "{name} with property {id:#04x}");
            } else {
                reject(
                    &b,
                    MALFORMED,
                    &format!("{name} carrying property {id:#04x}"),
                );
            }
            checked += 1;
        }
    }
    assert_eq!(checked, 14 * 27);
}

/// A property identifier §2.2.2.2 does not define is a Malformed Packet
/// (0x81).
#[test]
fn unknown_property_identifier_is_malformed_2_2_2_2() {
    for (name, _, build) in skeletons() {
        for id in [0x00u8, 0x04, 0x0A, 0x10, 0x14, 0x1B, 0x1D, 0x20, 0x2B, 0x7F] {
            let mut props = carrying(name, 0x26);
            props.extend([id, 0, 0, 0, 0]);
            reject(
                &build(&props),
                MALFORMED,
                &format!("{name} with identifier {id:#04x}"),
            );
        }
    }
}

/// Every single-valued property given twice is a Protocol Error (0x82): the
/// "It is a Protocol Error to include ... more than once" sentence of each
/// property's section (§3.1.2.11, §3.1.3.2, §3.2.2.3, §3.3.2.3, §3.4.2.2,
/// §3.8.2.1.2, §3.14.2.2, §3.15.2.2). User Property may repeat anywhere,
/// Subscription Identifier in PUBLISH.
#[test]
fn duplicate_single_valued_property_is_a_protocol_error() {
    let mut checked = 0;
    for (name, ids, build) in skeletons() {
        for &id in ids {
            let mut props = carrying(name, id);
            props.extend(raw_prop(id));
            let b = build(&props);
            let repeatable = id == 0x26 || (id == 0x0B && name == "PUBLISH");
            if repeatable {
                let p = dec(&b);
                assert_eq!(enc(&p), b, "{name}: {id:#04x} twice");
            } else {
                reject(&b, PROTOCOL_ERROR, &format!("{name}: {id:#04x} twice"));
                checked += 1;
            }
        }
    }
    assert!(checked >= 35, "{checked}");
}

/// A property length that runs past the remaining length, and a property
/// value that runs past the property length: Malformed (0x81, §2.2.2.1,
/// §1.2 "Malformed Packet").
#[test]
fn property_length_past_the_remaining_length_is_malformed() {
    // PUBACK: pid, reason, property length 10, but only 3 bytes follow
    reject(
        &[0x40, 0x07, 0x00, 0x01, 0x10, 0x0A, 0x23, 0x00, 0x01],
        MALFORMED,
        "PUBACK property length 10 > 3 bytes left",
    );
    // CONNECT whose property length swallows the client identifier
    let mut b = frame(
        0x10,
        &cat(&[
            &s(b"MQTT"),
            &[0x05, 0x02, 0x00, 0x3C, 0x05],
            &raw_prop(0x11),
            &s(b"c"),
        ]),
    );
    b[12] = 0x09; // property length 9: past the end (5 + 3 bytes follow)
    reject(&b, MALFORMED, "CONNECT property length past the end");
    // property length 2, but Session Expiry Interval needs 4 bytes
    reject(
        &frame(0xE0, &[0x00, 0x03, 0x11, 0x00, 0x00]),
        MALFORMED,
        "DISCONNECT: u32 property truncated by the property length",
    );
    // a string property whose length runs past the property block
    reject(
        &frame(
            0xE0,
            &[0x00, 0x04, 0x1F, 0x00, 0x05, b'a', b'b', b'c', b'd', b'e'],
        ),
        MALFORMED,
        "DISCONNECT: Reason String past the property length",
    );
    // a User Property missing its value
    reject(
        &frame(0xE0, &[0x00, 0x04, 0x26, 0x00, 0x01, b'k']),
        MALFORMED,
        "DISCONNECT: User Property without a value",
    );
    // property length as a 5-byte variable byte integer (§1.5.5)
    reject(
        &frame(0xE0, &[0x00, 0x80, 0x80, 0x80, 0x80, 0x01]),
        MALFORMED,
        "DISCONNECT: 5-byte property length",
    );
}

#[test]
fn maximum_qos_2_is_a_protocol_error_3_2_2_3_4() {
    // "It is a Protocol Error to include Maximum QoS more than once, or to
    // have values other than 0 or 1."
    reject(
        &frame(0x20, &[0x00, 0x00, 0x02, 0x24, 0x02]),
        PROTOCOL_ERROR,
        "CONNACK Maximum QoS 2",
    );
}

#[test]
fn receive_maximum_0_is_a_protocol_error_3_1_2_11_3() {
    // "It is a Protocol Error to include the Receive Maximum value more than
    // once or for it to have the value 0." (CONNACK: §3.2.2.3.3)
    let connect = |p: &[u8]| {
        frame(
            0x10,
            &cat(&[&s(b"MQTT"), &[0x05, 0x02, 0x00, 0x3C], &block(p), &s(b"c")]),
        )
    };
    reject(
        &connect(&[0x21, 0x00, 0x00]),
        PROTOCOL_ERROR,
        "CONNECT Receive Maximum 0",
    );
    reject(
        &frame(0x20, &[0x00, 0x00, 0x03, 0x21, 0x00, 0x00]),
        PROTOCOL_ERROR,
        "CONNACK Receive Maximum 0",
    );
    // Maximum Packet Size 0, §3.1.2.11.4: "It is a Protocol Error to include
    // the Maximum Packet Size more than once, or for the value to be set to
    // zero."
    reject(
        &connect(&[0x27, 0x00, 0x00, 0x00, 0x00]),
        PROTOCOL_ERROR,
        "CONNECT Maximum Packet Size 0",
    );
}

#[test]
fn topic_alias_0_is_topic_alias_invalid_mqtt_3_3_2_8() {
    // "A Topic Alias of 0 is not permitted. A sender MUST NOT send a PUBLISH
    // packet containing a Topic Alias which has the value 0 [MQTT-3.3.2-8]."
    // The specification's reason code for a bad alias is 0x94 Topic Alias
    // invalid (§2.4, §3.14.2.1), which mosquitto sends too; more specific
    // than 0x82 Protocol Error, which a receiver may also use.
    reject(
        &frame(0x30, &cat(&[&s(b"t"), &[0x03, 0x23, 0x00, 0x00]])),
        0x94,
        "PUBLISH Topic Alias 0",
    );
}

#[test]
fn subscription_identifier_0_is_a_protocol_error_3_8_2_1_2() {
    // §3.8.2.1.2: "The Subscription Identifier can have the value of 1 to
    // 268,435,455. It is a Protocol Error if the Subscription Identifier has
    // a value of 0."
    reject(
        &frame(
            0x82,
            &cat(&[&[0x00, 0x01, 0x02, 0x0B, 0x00], &s(b"a"), &[0x01]]),
        ),
        PROTOCOL_ERROR,
        "SUBSCRIBE Subscription Identifier 0",
    );
    // §3.3.2.3.8, the same in PUBLISH
    reject(
        &frame(0x30, &cat(&[&s(b"t"), &[0x02, 0x0B, 0x00]])),
        PROTOCOL_ERROR,
        "PUBLISH Subscription Identifier 0",
    );
    // a 5-byte VBI value is malformed (§1.5.5)
    reject(
        &frame(
            0x30,
            &cat(&[&s(b"t"), &[0x06, 0x0B, 0x80, 0x80, 0x80, 0x80, 0x01]]),
        ),
        MALFORMED,
        "PUBLISH 5-byte Subscription Identifier",
    );
}

#[test]
fn boolean_properties_other_than_0_or_1_are_protocol_errors() {
    // Request Problem Information §3.1.2.11.7, Request Response Information
    // §3.1.2.11.6 (CONNECT); Retain Available §3.2.2.3.5, Wildcard
    // Subscription Available §3.2.2.3.11, Subscription Identifiers
    // Available §3.2.2.3.12, Shared Subscription Available §3.2.2.3.13
    // (CONNACK): "It is a Protocol Error to include ... more than once or
    // to have a value other than 0 or 1."
    for id in [0x17u8, 0x19] {
        reject(
            &frame(
                0x10,
                &cat(&[
                    &s(b"MQTT"),
                    &[0x05, 0x02, 0x00, 0x3C, 0x02, id, 0x02],
                    &s(b"c"),
                ]),
            ),
            PROTOCOL_ERROR,
            &format!("CONNECT property {id:#04x} = 2"),
        );
    }
    for id in [0x25u8, 0x28, 0x29, 0x2A] {
        reject(
            &frame(0x20, &[0x00, 0x00, 0x02, id, 0x02]),
            PROTOCOL_ERROR,
            &format!("CONNACK property {id:#04x} = 2"),
        );
    }
}

#[test]
fn payload_format_indicator_2_is_rejected_3_3_2_3_2() {
    // §3.3.2.3.2 and §3.1.3.2.3 define the values 0 and 1 only; the
    // specification has no Protocol Error sentence for other values, so a
    // value of 2 is a packet that "cannot be parsed according to this
    // specification" (§1.2, Malformed Packet) — what mosquitto answers
    // too is a refusal; we require 0x81 or 0x82, never acceptance.
    for b in [
        frame(0x30, &cat(&[&s(b"t"), &[0x02, 0x01, 0x02]])),
        frame(
            0x10,
            &cat(&[
                &s(b"MQTT"),
                &[0x05, 0x06, 0x00, 0x3C, 0x00],
                &s(b"c"),
                &[0x02, 0x01, 0x02],
                &s(b"w"),
                &s(b"m"),
            ]),
        ),
    ] {
        match v5::decode(&b, MAX_PACKET_SIZE) {
            Err(e) => assert!(
                e.reason() == ReasonCode(MALFORMED) || e.reason() == ReasonCode(PROTOCOL_ERROR),
                "{e}"
            ),
            Ok(r) => panic!("Payload Format Indicator 2 accepted: {r:?}"),
        }
    }
}

#[test]
fn authentication_without_method_is_a_protocol_error_3_1_2_11_10_and_3_15_2_2_2() {
    // "It is a Protocol Error to include Authentication Data if there is no
    // Authentication Method."
    reject(
        &frame(
            0x10,
            &cat(&[
                &s(b"MQTT"),
                &[0x05, 0x02, 0x00, 0x3C],
                &block(&raw_prop(0x16)),
                &s(b"c"),
            ]),
        ),
        PROTOCOL_ERROR,
        "CONNECT Authentication Data without Authentication Method",
    );
    // §3.15.2.2.2: "It is a Protocol Error to omit the Authentication
    // Method" from an AUTH (other than the empty Success form, §3.15.2.1)
    reject(
        &frame(0xF0, &[0x18, 0x00]),
        PROTOCOL_ERROR,
        "AUTH Continue authentication without a method",
    );
    reject(
        &frame(0xF0, &cat(&[&[0x00], &block(&raw_prop(0x1F))])),
        PROTOCOL_ERROR,
        "AUTH with a Reason String but no method",
    );
    assert_eq!(dec(&[0xF0, 0x00]), Packet5::Auth(ReasonOnly::default()));
}

#[test]
fn zero_length_topic_without_alias_is_a_protocol_error_3_3_2_3_4() {
    // §3.3.4: "It is a Protocol Error if the Topic Name is zero length and
    // there is no Topic Alias."
    reject(
        &frame(0x30, &[0x00, 0x00, 0x00, b'h', b'i']),
        PROTOCOL_ERROR,
        "PUBLISH empty topic without alias",
    );
}

#[test]
fn subscribe_option_bits_mqtt_3_8_3_5() {
    let sub = |opts: u8| frame(0x82, &cat(&[&[0x00, 0x01, 0x00], &s(b"a"), &[opts]]));
    // "The Server MUST treat a SUBSCRIBE packet as malformed if any of
    // Reserved bits in the Subscription Options are non-zero [MQTT-3.8.3-5]."
    reject(&sub(0x40), MALFORMED, "subscription option bit 6");
    reject(&sub(0x80), MALFORMED, "subscription option bit 7");
    // §3.8.3.1: "It is a Protocol Error to send a Retain Handling value of
    // 3." (the brief said 0x81; the specification says Protocol Error)
    reject(&sub(0x30), PROTOCOL_ERROR, "Retain Handling 3");
    // §3.8.3.1: "It is a Protocol Error if the Maximum QoS field has the
    // value 3."
    reject(&sub(0x03), PROTOCOL_ERROR, "subscription QoS 3");
    // [MQTT-3.8.3-2]: "The Payload MUST contain at least one Topic Filter
    // and Subscription Options pair ... A SUBSCRIBE packet with no Payload
    // is a Protocol Error."
    reject(
        &frame(0x82, &[0x00, 0x01, 0x00]),
        PROTOCOL_ERROR,
        "SUBSCRIBE without filters",
    );
    // [MQTT-3.10.3-2], the same for UNSUBSCRIBE
    reject(
        &frame(0xA2, &[0x00, 0x01, 0x00]),
        PROTOCOL_ERROR,
        "UNSUBSCRIBE without filters",
    );
    // every valid options byte decodes
    for qos in 0..3u8 {
        for rh in 0..3u8 {
            for nl_rap in 0..4u8 {
                let b = sub(rh << 4 | nl_rap << 2 | qos);
                assert_eq!(enc(&dec(&b)), b);
            }
        }
    }
}

#[test]
fn fixed_header_and_flag_rules_are_malformed() {
    // reserved fixed-header flags [MQTT-2.1.3-1]
    reject(&[0x41, 0x02, 0x00, 0x01], MALFORMED, "PUBACK flags 0001");
    reject(&[0x60, 0x02, 0x00, 0x01], MALFORMED, "PUBREL flags 0000");
    reject(&[0xC1, 0x00], MALFORMED, "PINGREQ flags 0001");
    reject(&[0xE2, 0x00], MALFORMED, "DISCONNECT flags 0010");
    reject(
        &frame(0x80, &cat(&[&[0x00, 0x01, 0x00], &s(b"a"), &[0x00]])),
        MALFORMED,
        "SUBSCRIBE flags 0000",
    );
    // reserved packet type 0 (§2.1.2)
    reject(&[0x00, 0x00], MALFORMED, "packet type 0");
    // PUBLISH QoS 3 [MQTT-3.3.1-4]
    reject(
        &frame(0x36, &cat(&[&s(b"t"), &[0x00, 0x01, 0x00]])),
        MALFORMED,
        "PUBLISH QoS 3",
    );
    // remaining length not in the fewest bytes [MQTT-1.5.5-1]
    reject(
        &[0xC0, 0x80, 0x00],
        MALFORMED,
        "PINGREQ remaining length 0x80 0x00",
    );
    reject(
        &frame(0xE0, &[0x00, 0x80, 0x00]),
        MALFORMED,
        "DISCONNECT property length 0x80 0x00",
    );
    // remaining length in 5 bytes (§1.5.5)
    reject(
        &[0x30, 0xFF, 0xFF, 0xFF, 0xFF, 0x7F],
        MALFORMED,
        "5-byte remaining length",
    );
    let connect = |flags: u8, rest: &[u8]| {
        frame(
            0x10,
            &cat(&[
                &s(b"MQTT"),
                &[0x05, flags, 0x00, 0x3C, 0x00],
                &s(b"c"),
                rest,
            ]),
        )
    };
    // CONNECT reserved flag [MQTT-3.1.2-3]
    reject(&connect(0x03, &[]), MALFORMED, "CONNECT reserved flag");
    // will QoS 3 [MQTT-3.1.2-12]
    reject(
        &connect(0x1E, &cat(&[&[0x00], &s(b"w"), &s(b"m")])),
        MALFORMED,
        "CONNECT will QoS 3",
    );
    // will retain without will flag [MQTT-3.1.2-13]
    reject(
        &connect(0x22, &[]),
        MALFORMED,
        "CONNECT will retain without will",
    );
    // will QoS without will flag [MQTT-3.1.2-11]
    reject(
        &connect(0x0A, &[]),
        MALFORMED,
        "CONNECT will QoS without will",
    );
    // protocol name other than "MQTT" [MQTT-3.1.2-1]
    let mut b = connect(0x02, &[]);
    b[5] = b'X';
    reject(&b, MALFORMED, "CONNECT protocol name MXTT");
    // CONNACK acknowledge flags bits 7-1 reserved (§3.2.2.1)
    reject(
        &[0x20, 0x03, 0x02, 0x00, 0x00],
        MALFORMED,
        "CONNACK reserved flag",
    );
    // bytes after the last field
    reject(
        &[0xE0, 0x03, 0x00, 0x00, 0xAA],
        MALFORMED,
        "DISCONNECT trailing byte",
    );
    reject(&[0xC0, 0x01, 0x00], MALFORMED, "PINGREQ with a body");
    // strings: ill-formed UTF-8 [MQTT-1.5.4-1] and U+0000 [MQTT-1.5.4-2]
    reject(
        &frame(0xE0, &[0x00, 0x04, 0x1F, 0x00, 0x01, 0xFF]),
        MALFORMED,
        "Reason String not UTF-8",
    );
    reject(
        &frame(
            0xE0,
            &[0x00, 0x07, 0x26, 0x00, 0x01, b'k', 0x00, 0x01, 0x00],
        ),
        MALFORMED,
        "User Property value with U+0000",
    );
    reject(
        &frame(0x30, &cat(&[&[0x00, 0x02, 0xED, 0xA0], &[0x00]])),
        MALFORMED,
        "topic with a UTF-16 surrogate [MQTT-1.5.4-1]",
    );
}

#[test]
fn protocol_level_other_than_5_is_not_for_this_decoder() {
    // §3.1.2.2: a level other than 5 is answered 0x84 (Unsupported Protocol
    // Version) [MQTT-3.1.2-2]; the 5.0 decoder refuses it with that code
    for level in [3u8, 4, 6] {
        let b = frame(
            0x10,
            &cat(&[&s(b"MQTT"), &[level, 0x02, 0x00, 0x3C, 0x00], &s(b"c")]),
        );
        assert_eq!(v5::connect_protocol_level(&b), Some(level));
        match v5::decode(&b, MAX_PACKET_SIZE) {
            Err(e) => {
                assert!(e.reason().is_failure(), "{e}");
                assert_eq!(e.reason(), ReasonCode::UNSUPPORTED_PROTOCOL_VERSION, "{e}");
                assert!(e.to_string().contains(&format!("level {level}")), "{e}");
            }
            Ok(r) => panic!("level {level} decoded as 5.0: {r:?}"),
        }
    }
}

#[test]
fn packet_larger_than_the_limit_is_0x95() {
    let (first, b, _, _) = alias_publishes();
    assert_eq!(dec(&b), first);
    // Maximum Packet Size counts the whole packet (§3.1.2.11.4)
    assert!(v5::decode(&b, b.len()).expect("at the limit").is_some());
    match v5::decode(&b, b.len() - 1) {
        Err(e) => assert_eq!(e.reason(), ReasonCode::PACKET_TOO_LARGE, "{e}"),
        Ok(r) => panic!("over the limit accepted: {r:?}"),
    }
    // known from the header alone: no need to wait for the body
    match v5::decode(&[0x30, 0xFF, 0xFF, 0x03], 1000) {
        Err(e) => assert_eq!(e.reason(), ReasonCode::PACKET_TOO_LARGE, "{e}"),
        Ok(r) => panic!("65 535-byte packet under a 1000-byte limit: {r:?}"),
    }
}

fn arbitrary_cases() -> u32 {
    std::env::var("QOSSIM_MQTT5_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(arbitrary_cases()))]

    /// Arbitrary bytes never panic; what decodes re-encodes and decodes the
    /// same; an error names one of the decoder's reason codes.
    #[test]
    fn arbitrary_bytes_never_panic(b in prop::collection::vec(any::<u8>(), 0..160), max in 0usize..400) {
        check_any(&b, max)?;
    }

    /// Valid packets with bytes changed, inserted or dropped: the decoder's
    /// deep paths with garbage in them.
    #[test]
    fn mutated_packets_never_panic(
        p in packet(),
        edits in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>(), 0u8..3), 1..4),
    ) {
        let mut b = enc(&p);
        for (at, v, kind) in edits {
            let i = at.index(b.len().max(1));
            match kind {
                0 if !b.is_empty() => {
                    let j = i.min(b.len() - 1);
                    b[j] = v;
                }
                1 => {
                    let j = i.min(b.len());
                    b.insert(j, v);
                }
                _ if !b.is_empty() => {
                    let j = i.min(b.len() - 1);
                    b.remove(j);
                }
                _ => {}
            }
        }
        check_any(&b, MAX_PACKET_SIZE)?;
    }
}

fn check_any(b: &[u8], max: usize) -> Result<(), TestCaseError> {
    let _ = v5::connect_protocol_level(b);
    match v5::decode(b, max) {
        Ok(Some((p, n))) => {
            prop_assert!(n > 0 && n <= b.len() && n <= max);
            let again = enc(&p);
            let back = v5::decode(&again, MAX_PACKET_SIZE)
                .map_err(|e| TestCaseError::fail(format!("re-encoding refused: {e}")))?;
            prop_assert_eq!(back, Some((p, again.len())));
        }
        Ok(None) => {}
        Err(e) => {
            let r = e.reason().0;
            prop_assert!(
                [0x81, 0x82, 0x84, 0x90, 0x94, 0x95].contains(&r),
                "reason {:#04x}: {}",
                r,
                e
            );
            prop_assert!(!e.to_string().is_empty());
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// 4. real peers

/// Split `buf` into whole MQTT packets by the fixed header (§2.1), written
/// here independently of the codec; the rest stays in `buf`.
fn split_packets(buf: &mut Vec<u8>) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let mut rl = 0usize;
        let mut mult = 1usize;
        let mut i = 1;
        let complete = loop {
            let Some(&b) = buf.get(i) else { break None };
            rl += usize::from(b & 0x7F) * mult;
            mult *= 128;
            i += 1;
            if b & 0x80 == 0 {
                break Some(i + rl);
            }
            assert!(i <= 4, "remaining length over 4 bytes from the peer");
        };
        match complete {
            Some(total) if buf.len() >= total => {
                out.push(buf[..total].to_vec());
                buf.drain(..total);
            }
            _ => return out,
        }
    }
}

/// What the stand-in server answers to a client's packet (encoded by the
/// codec under test; the peer would drop the connection on a bad answer).
fn answer(p: &Packet5) -> Option<Packet5> {
    Some(match p {
        Packet5::Connect(_) => Packet5::ConnAck(ConnAck5 {
            session_present: false,
            reason: ReasonCode::SUCCESS,
            props: Properties {
                topic_alias_maximum: Some(10),
                ..Properties::default()
            },
        }),
        Packet5::Publish(p) => match p.qos_pid {
            QosPid::AtMostOnce => return None,
            QosPid::AtLeastOnce(id) => Packet5::PubAck(Ack5::ok(id)),
            QosPid::ExactlyOnce(id) => Packet5::PubRec(Ack5::ok(id)),
        },
        Packet5::PubRel(a) => Packet5::PubComp(Ack5::ok(a.pid)),
        Packet5::Subscribe(s) => Packet5::SubAck(SubAck5 {
            pid: s.pid,
            props: Properties::default(),
            reasons: s
                .filters
                .iter()
                .map(|(_, o)| ReasonCode::granted(o.qos))
                .collect(),
        }),
        Packet5::Unsubscribe(u) => Packet5::UnsubAck(SubAck5 {
            pid: u.pid,
            props: Properties::default(),
            reasons: vec![ReasonCode::SUCCESS; u.filters.len()],
        }),
        Packet5::PingReq => Packet5::PingResp,
        _ => return None,
    })
}

/// Serve one connection from a peer on `listener` as a minimal 5.0 server:
/// answer CONNECT, PUBLISH, PUBREL, SUBSCRIBE, UNSUBSCRIBE and PINGREQ, and
/// after the first SUBACK send `to_subscriber` (if any). Returns every
/// packet the peer sent, as raw bytes, when it closes (or after 20 s).
fn serve(listener: &TcpListener, to_subscriber: &[Packet5]) -> Vec<Vec<u8>> {
    listener.set_nonblocking(true).expect("nonblocking");
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut conn: TcpStream = loop {
        match listener.accept() {
            Ok((c, _)) => break c,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                assert!(Instant::now() < deadline, "the peer never connected");
                std::thread::sleep(Duration::from_millis(10));
            }
            Err(e) => panic!("accept: {e}"),
        }
    };
    conn.set_nonblocking(false).expect("blocking");
    conn.set_read_timeout(Some(Duration::from_millis(200)))
        .expect("timeout");
    let mut buf = Vec::new();
    let mut seen = Vec::new();
    let mut chunk = [0u8; 4096];
    let mut sent_publishes = false;
    while Instant::now() < deadline {
        match conn.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(e)
                if e.kind() == std::io::ErrorKind::WouldBlock
                    || e.kind() == std::io::ErrorKind::TimedOut =>
            {
                continue
            }
            Err(_) => break,
        }
        for raw in split_packets(&mut buf) {
            let p = dec(&raw);
            let disconnect = matches!(p, Packet5::Disconnect(_));
            if let Some(a) = answer(&p) {
                conn.write_all(&enc(&a)).expect("answer");
            }
            if matches!(p, Packet5::Subscribe(_)) && !sent_publishes {
                sent_publishes = true;
                for q in to_subscriber {
                    conn.write_all(&enc(q)).expect("publish to subscriber");
                }
            }
            seen.push(raw);
            if disconnect {
                return seen;
            }
        }
    }
    seen
}

/// Every raw packet decodes and re-encodes to exactly its bytes.
fn assert_byte_exact(peer: &str, raw: &[Vec<u8>]) -> Vec<Packet5> {
    raw.iter()
        .map(|b| {
            let p = dec(b);
            assert_eq!(
                hex(&enc(&p)),
                hex(b),
                "{peer}: {} re-encodes differently",
                p.name()
            );
            p
        })
        .collect()
}

fn wait_exit(child: &mut KillOnDrop, peer: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match child.0.try_wait() {
            Ok(Some(st)) => {
                let mut err = String::new();
                if let Some(e) = child.0.stderr.as_mut() {
                    let _ = e.read_to_string(&mut err);
                }
                assert!(st.success(), "{peer} exited with {st}: {err}");
                return;
            }
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(20)),
            _ => panic!("{peer} did not exit"),
        }
    }
}

/// `mosquitto_pub -V 5` with connect, will and publish properties, at QoS 1
/// and QoS 2 (so PUBREL too): every packet it sends decodes to what its
/// options asked for and re-encodes to exactly the bytes it sent.
#[test]
fn mosquitto_pub_v5_packets_are_byte_exact() {
    let Some(bin) = peers::peer_binary("mosquitto_pub", "install Debian package mosquitto-clients")
    else {
        return;
    };
    for qos in ["1", "2"] {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("addr").port().to_string();
        let mut child = KillOnDrop(
            Command::new(&bin)
                .args([
                    "-V",
                    "5",
                    "-h",
                    "127.0.0.1",
                    "-p",
                    &port,
                    "-i",
                    "qossim-pub",
                ])
                .args(["-t", "sensors/t1", "-m", "21.5", "-q", qos, "-k", "30"])
                .args(["-u", "ann", "-P", "pw"])
                .args([
                    "--will-topic",
                    "sensors/t1/status",
                    "--will-payload",
                    "gone",
                ])
                .args(["--will-qos", "1", "--will-retain"])
                .args(["-D", "connect", "session-expiry-interval", "30"])
                .args(["-D", "connect", "receive-maximum", "20"])
                .args(["-D", "connect", "topic-alias-maximum", "10"])
                .args(["-D", "connect", "user-property", "site", "lab"])
                .args(["-D", "will", "content-type", "text/plain"])
                .args(["-D", "will", "will-delay-interval", "5"])
                .args(["-D", "publish", "payload-format-indicator", "1"])
                .args(["-D", "publish", "message-expiry-interval", "120"])
                .args(["-D", "publish", "content-type", "text/plain"])
                .args(["-D", "publish", "topic-alias", "1"])
                .args(["-D", "publish", "user-property", "a", "b"])
                .args(["-D", "publish", "user-property", "a", "c"])
                .args(["-D", "disconnect", "session-expiry-interval", "0"])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .expect("spawn mosquitto_pub"),
        );
        let raw = serve(&listener, &[]);
        wait_exit(&mut child, "mosquitto_pub");
        let packets = assert_byte_exact("mosquitto_pub", &raw);
        let names: Vec<&str> = packets.iter().map(|p| p.name()).collect();
        let want: &[&str] = if qos == "1" {
            &["CONNECT", "PUBLISH", "DISCONNECT"]
        } else {
            &["CONNECT", "PUBLISH", "PUBREL", "DISCONNECT"]
        };
        assert_eq!(names, want, "qos {qos}");
        let Packet5::Connect(c) = &packets[0] else {
            unreachable!()
        };
        assert_eq!(c.client_id, "qossim-pub");
        assert_eq!(c.keep_alive, 30);
        assert_eq!(c.username.as_deref(), Some("ann"));
        assert_eq!(c.password.as_deref(), Some(&b"pw"[..]));
        assert_eq!(c.props.session_expiry_interval, Some(30));
        assert_eq!(c.props.receive_maximum, Some(20));
        assert_eq!(c.props.topic_alias_maximum, Some(10));
        assert_eq!(c.props.user_properties, [("site".into(), "lab".into())]);
        let w = c.will.as_ref().expect("will");
        assert_eq!(w.topic.as_str(), "sensors/t1/status");
        assert_eq!(&*w.message, b"gone");
        assert_eq!((w.qos, w.retain), (QoS::AtLeastOnce, true));
        assert_eq!(w.props.will_delay_interval, Some(5));
        assert_eq!(w.props.content_type.as_deref(), Some("text/plain"));
        let Packet5::Publish(p) = &packets[1] else {
            unreachable!()
        };
        assert_eq!(p.topic.as_ref().map(|t| t.as_str()), Some("sensors/t1"));
        assert_eq!(&*p.payload, b"21.5");
        assert_eq!(p.props.topic_alias, Some(1));
        assert_eq!(p.props.payload_format_indicator, Some(1));
        assert_eq!(p.props.message_expiry_interval, Some(120));
        assert_eq!(
            p.props.user_properties,
            [("a".into(), "b".into()), ("a".into(), "c".into())]
        );
        let Packet5::Disconnect(d) = packets.last().expect("disconnect") else {
            unreachable!()
        };
        assert_eq!(d.props.session_expiry_interval, Some(0));
    }
}

/// `mosquitto_sub -V 5` with QoS 2 subscriptions, a subscription
/// identifier and an unsubscribe: its CONNECT, SUBSCRIBE, UNSUBSCRIBE,
/// PUBACK and DISCONNECT are byte-exact, and it accepts (prints) the two
/// PUBLISH packets we encode.
#[test]
fn mosquitto_sub_v5_packets_are_byte_exact() {
    let Some(bin) = peers::peer_binary("mosquitto_sub", "install Debian package mosquitto-clients")
    else {
        return;
    };
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port().to_string();
    let child = Command::new(&bin)
        .args([
            "-V",
            "5",
            "-h",
            "127.0.0.1",
            "-p",
            &port,
            "-i",
            "qossim-sub",
        ])
        .args(["-t", "sensors/+/t", "-t", "alerts/#", "-q", "2", "-C", "2"])
        .args(["-U", "old/#"])
        .args(["-D", "subscribe", "subscription-identifier", "300"])
        .args(["-D", "subscribe", "user-property", "u", "1"])
        .args(["-D", "unsubscribe", "user-property", "u", "2"])
        .args(["-F", "%t %p"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn();
    let mut child = KillOnDrop(child.expect("spawn mosquitto_sub"));
    // Two messages with the subscription identifier. No topic alias:
    // libmosquitto 2.0.11 refuses a PUBLISH that uses an alias alone ("A
    // network protocol error occurred"), and mosquitto_sub sends no Topic
    // Alias Maximum unless asked, and when asked writes it before its own
    // Receive Maximum (0x22 before 0x21), an order no encoder that sorts
    // properties reproduces.
    let (first, _, _, _) = alias_publishes();
    let Packet5::Publish(mut p1) = first else {
        unreachable!()
    };
    p1.topic = Some(topic("sensors/a/t"));
    p1.props.topic_alias = None;
    p1.props.subscription_identifiers = vec![300];
    let mut p2 = p1.clone();
    p2.qos_pid = QosPid::AtMostOnce;
    p2.topic = Some(topic("alerts/x"));
    p2.payload = Arc::from(&b"ho"[..]);
    let raw = serve(&listener, &[Packet5::Publish(p1), Packet5::Publish(p2)]);
    wait_exit(&mut child, "mosquitto_sub");
    let mut out = String::new();
    child
        .0
        .stdout
        .as_mut()
        .expect("stdout")
        .read_to_string(&mut out)
        .expect("read stdout");
    assert_eq!(
        out.lines().collect::<Vec<_>>(),
        ["sensors/a/t hi", "alerts/x ho"]
    );
    let packets = assert_byte_exact("mosquitto_sub", &raw);
    let names: Vec<&str> = packets.iter().map(|p| p.name()).collect();
    assert!(
        names.contains(&"SUBSCRIBE") && names.contains(&"UNSUBSCRIBE"),
        "{names:?}"
    );
    assert_eq!(names.first(), Some(&"CONNECT"));
    assert_eq!(names.last(), Some(&"DISCONNECT"));
    let s = packets
        .iter()
        .find_map(|p| match p {
            Packet5::Subscribe(s) => Some(s),
            _ => None,
        })
        .expect("SUBSCRIBE");
    assert_eq!(s.props.subscription_identifiers, [300]);
    assert_eq!(s.props.user_properties, [("u".into(), "1".into())]);
    let want = SubOptions::qos(QoS::ExactlyOnce);
    let filters: Vec<(&str, SubOptions)> =
        s.filters.iter().map(|(f, o)| (f.as_str(), *o)).collect();
    assert_eq!(filters, [("sensors/+/t", want), ("alerts/#", want)]);
    let u = packets
        .iter()
        .find_map(|p| match p {
            Packet5::Unsubscribe(u) => Some(u),
            _ => None,
        })
        .expect("UNSUBSCRIBE");
    assert_eq!(u.filters, [filter("old/#")]);
    assert_eq!(u.props.user_properties, [("u".into(), "2".into())]);
}

/// paho-mqtt 2.x as an MQTTv5 client: CONNECT with properties and a will
/// with properties, PUBLISH with a topic alias and then the alias alone,
/// QoS 2, SUBSCRIBE with options and an identifier, UNSUBSCRIBE, and a
/// DISCONNECT with a reason code and properties.
const PAHO_CLIENT: &str = r#"
import sys, time
import paho.mqtt.client as mqtt
from paho.mqtt.properties import Properties
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.subscribeoptions import SubscribeOptions
from paho.mqtt.reasoncodes import ReasonCode

port = int(sys.argv[1])
c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="paho5", protocol=mqtt.MQTTv5)
wp = Properties(PacketTypes.WILLMESSAGE)
wp.WillDelayInterval = 5
wp.MessageExpiryInterval = 60
wp.UserProperty = ("w", "1")
c.will_set("paho/will", b"bye", qos=1, retain=False, properties=wp)
c.username_pw_set("user", "secret")
cp = Properties(PacketTypes.CONNECT)
cp.SessionExpiryInterval = 30
cp.ReceiveMaximum = 20
cp.TopicAliasMaximum = 10
cp.MaximumPacketSize = 65536
cp.UserProperty = [("k", "v"), ("k", "v2")]
c.connect("127.0.0.1", port, keepalive=45, clean_start=True, properties=cp)
c.loop_start()
deadline = time.time() + 10
while not c.is_connected() and time.time() < deadline:
    time.sleep(0.01)
pp = Properties(PacketTypes.PUBLISH)
pp.TopicAlias = 1
pp.PayloadFormatIndicator = 1
pp.ContentType = "text/plain"
pp.ResponseTopic = "paho/reply"
pp.CorrelationData = b"\x01\x02"
pp.UserProperty = ("a", "b")
c.publish("paho/t", b"one", qos=1, properties=pp).wait_for_publish(10)
pa = Properties(PacketTypes.PUBLISH)
pa.TopicAlias = 1
c.publish("", b"two", qos=2, properties=pa).wait_for_publish(10)
sp = Properties(PacketTypes.SUBSCRIBE)
sp.SubscriptionIdentifier = 70000
opts = SubscribeOptions(qos=1, noLocal=True, retainAsPublished=True, retainHandling=SubscribeOptions.RETAIN_SEND_IF_NEW_SUB)
got = []
c.on_subscribe = lambda *a: got.append("sub")
c.on_unsubscribe = lambda *a: got.append("unsub")
c.subscribe([("paho/in/#", opts), ("paho/x", SubscribeOptions(qos=0))], properties=sp)
while "sub" not in got and time.time() < deadline:
    time.sleep(0.01)
up = Properties(PacketTypes.UNSUBSCRIBE)
up.UserProperty = ("why", "done")
c.unsubscribe(["paho/x"], properties=up)
while "unsub" not in got and time.time() < deadline:
    time.sleep(0.01)
dp = Properties(PacketTypes.DISCONNECT)
dp.SessionExpiryInterval = 0
dp.ReasonString = "bye now"
c.disconnect(reasoncode=ReasonCode(PacketTypes.DISCONNECT, "Disconnect with will message"), properties=dp)
c.loop_stop()
if "sub" not in got or "unsub" not in got:
    sys.exit("no SUBACK/UNSUBACK: %r" % got)
"#;

#[test]
fn paho_mqttv5_packets_are_byte_exact() {
    let ok = Command::new("python3")
        .args(["-c", "import paho.mqtt"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        peers::skip_or_fail("python3 with paho-mqtt 2.x not found (pip install 'paho-mqtt>=2,<3')");
        return;
    }
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port().to_string();
    let mut child = KillOnDrop(
        Command::new("python3")
            .args(["-c", PAHO_CLIENT, &port])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn python3"),
    );
    let raw = serve(&listener, &[]);
    wait_exit(&mut child, "paho");
    let packets = assert_byte_exact("paho", &raw);
    let names: Vec<&str> = packets.iter().map(|p| p.name()).collect();
    assert_eq!(
        names,
        [
            "CONNECT",
            "PUBLISH",
            "PUBLISH",
            "PUBREL",
            "SUBSCRIBE",
            "UNSUBSCRIBE",
            "DISCONNECT"
        ]
    );
    let Packet5::Connect(c) = &packets[0] else {
        unreachable!()
    };
    assert_eq!(
        (c.client_id.as_str(), c.keep_alive, c.clean_start),
        ("paho5", 45, true)
    );
    assert_eq!(c.props.session_expiry_interval, Some(30));
    assert_eq!(c.props.receive_maximum, Some(20));
    assert_eq!(c.props.topic_alias_maximum, Some(10));
    assert_eq!(c.props.maximum_packet_size, Some(65536));
    assert_eq!(
        c.props.user_properties,
        [("k".into(), "v".into()), ("k".into(), "v2".into())]
    );
    let w = c.will.as_ref().expect("will");
    assert_eq!(w.props.will_delay_interval, Some(5));
    assert_eq!(w.props.message_expiry_interval, Some(60));
    assert_eq!(w.props.user_properties, [("w".into(), "1".into())]);
    let (Packet5::Publish(p1), Packet5::Publish(p2)) = (&packets[1], &packets[2]) else {
        unreachable!()
    };
    assert_eq!(p1.topic.as_ref().map(|t| t.as_str()), Some("paho/t"));
    assert_eq!(p1.props.topic_alias, Some(1));
    assert_eq!(p1.props.response_topic.as_deref(), Some("paho/reply"));
    assert_eq!(p1.props.correlation_data.as_deref(), Some(&[1u8, 2][..]));
    assert_eq!(p2.topic, None, "the alias alone");
    assert_eq!(p2.props.topic_alias, Some(1));
    assert!(matches!(p2.qos_pid, QosPid::ExactlyOnce(_)));
    let Packet5::Subscribe(s) = &packets[4] else {
        unreachable!()
    };
    assert_eq!(s.props.subscription_identifiers, [70000]);
    assert_eq!(
        s.filters[0].1,
        SubOptions {
            qos: QoS::AtLeastOnce,
            no_local: true,
            retain_as_published: true,
            retain_handling: RetainHandling::SendIfNew
        }
    );
    let Packet5::Disconnect(d) = &packets[6] else {
        unreachable!()
    };
    assert_eq!(d.reason, ReasonCode::DISCONNECT_WITH_WILL);
    assert_eq!(d.props.reason_string.as_deref(), Some("bye now"));
}

// tshark ------------------------------------------------------------------

/// One TCP conversation 10.0.0.1:40000 → 10.0.0.2:1883 (tshark's MQTT port)
/// carrying `packets` (client → server when the flag is true), one per
/// segment ([`common::tshark::tcp_capture`]).
fn mqtt_pcap(tag: &str, packets: &[(bool, Vec<u8>)]) -> std::path::PathBuf {
    common::tshark::tcp_capture(tag, 1883, packets)
}

/// tshark dissects a conversation of our encodings with no malformed
/// packet, and shows the values we encoded: message types, topics, topic
/// aliases, reason codes, property identifiers, user properties,
/// subscription options.
#[test]
fn tshark_dissects_our_encodings() {
    let test = "tshark_dissects_our_encodings";
    if !common::tshark::available(test) {
        return;
    }
    let (_, publish_first, _, publish_alias) = alias_publishes();
    let connect = golden_connect_bytes();
    let convo: Vec<(bool, Packet5)> = vec![
        (true, dec(&connect)),
        (
            false,
            Packet5::ConnAck(ConnAck5 {
                session_present: false,
                reason: ReasonCode::SUCCESS,
                props: Properties {
                    topic_alias_maximum: Some(10),
                    maximum_qos: Some(1),
                    assigned_client_identifier: Some("auto-1".into()),
                    server_keep_alive: Some(120),
                    ..Properties::default()
                },
            }),
        ),
        (true, dec(&publish_first)),
        (true, dec(&publish_alias)),
        (
            false,
            Packet5::PubAck(Ack5 {
                pid: pid(10),
                reason: ReasonCode::NO_MATCHING_SUBSCRIBERS,
                props: Properties {
                    reason_string: Some("nobody".into()),
                    ..Properties::default()
                },
            }),
        ),
        (
            true,
            Packet5::Publish(Publish5 {
                dup: false,
                qos_pid: QosPid::ExactlyOnce(pid(11)),
                retain: false,
                topic: Some(topic("c/d")),
                props: Properties {
                    message_expiry_interval: Some(60),
                    user_properties: vec![("unit".into(), "C".into())],
                    ..Properties::default()
                },
                payload: Arc::from(&b"21.5"[..]),
            }),
        ),
        (false, Packet5::PubRec(Ack5::ok(pid(11)))),
        (true, Packet5::PubRel(Ack5::ok(pid(11)))),
        (false, Packet5::PubComp(Ack5::ok(pid(11)))),
        (
            true,
            Packet5::Subscribe(Subscribe5 {
                pid: pid(12),
                props: Properties {
                    subscription_identifiers: vec![16_384],
                    ..Properties::default()
                },
                filters: vec![
                    (
                        filter("a/+"),
                        SubOptions {
                            qos: QoS::ExactlyOnce,
                            no_local: true,
                            retain_as_published: true,
                            retain_handling: RetainHandling::DoNotSend,
                        },
                    ),
                    (filter("x/#"), SubOptions::qos(QoS::AtLeastOnce)),
                    (filter("secret"), SubOptions::qos(QoS::AtMostOnce)),
                ],
            }),
        ),
        (
            false,
            Packet5::SubAck(SubAck5 {
                pid: pid(12),
                props: Properties::default(),
                reasons: vec![ReasonCode(0x02), ReasonCode(0x01), ReasonCode(0x87)],
            }),
        ),
        (
            true,
            Packet5::Unsubscribe(Unsubscribe5 {
                pid: pid(13),
                props: Properties::default(),
                filters: vec![filter("x/#")],
            }),
        ),
        (
            false,
            Packet5::UnsubAck(SubAck5 {
                pid: pid(13),
                props: Properties::default(),
                reasons: vec![ReasonCode(0x11)],
            }),
        ),
        (true, Packet5::PingReq),
        (false, Packet5::PingResp),
        (
            true,
            Packet5::Auth(ReasonOnly {
                reason: ReasonCode::RE_AUTHENTICATE,
                props: Properties {
                    authentication_method: Some("SCRAM-SHA-1".into()),
                    authentication_data: Some(vec![1, 2, 3]),
                    ..Properties::default()
                },
            }),
        ),
        (
            true,
            Packet5::Disconnect(ReasonOnly {
                reason: ReasonCode::DISCONNECT_WITH_WILL,
                props: Properties {
                    session_expiry_interval: Some(0),
                    ..Properties::default()
                },
            }),
        ),
    ];
    let bytes: Vec<(bool, Vec<u8>)> = convo.iter().map(|(c, p)| (*c, enc(p))).collect();
    let file = mqtt_pcap("mqtt5-tshark", &bytes);
    let malformed = common::tshark::run(
        &file,
        &[
            "-Y",
            "_ws.malformed || mqtt.unknown_version || mqtt.unknown_topic_alias || mqtt.illegal_topic_length",
        ],
    );
    assert!(
        common::tshark::lines(&malformed).is_empty(),
        "tshark finds malformed packets:\n{malformed}"
    );
    let fields = [
        "mqtt.msgtype",
        "mqtt.topic",
        "mqtt.property.topic_alias",
        "mqtt.msgid",
        "mqtt.property_id",
        "mqtt.prop_key",
        "mqtt.prop_value",
        "mqtt.connack.reason_code",
        "mqtt.puback.reason_code",
        "mqtt.suback.reason_code",
        "mqtt.unsuback.reason_code",
        "mqtt.disconnect.reason_code",
        "mqtt.auth.reason_code",
        "mqtt.subscription_options",
        "mqtt.ver",
        "mqtt.clientid",
        "mqtt.willtopic",
        "mqtt.len",
    ];
    let mut args = vec![
        "-Y",
        "mqtt",
        "-T",
        "fields",
        "-E",
        "separator=|",
        "-E",
        "occurrence=a",
        "-E",
        "aggregator=,",
    ];
    for f in &fields {
        args.extend(["-e", f]);
    }
    let out = common::tshark::run(&file, &args);
    let rows: Vec<Vec<String>> = common::tshark::lines(&out)
        .iter()
        .map(|l| l.split('|').map(str::to_owned).collect())
        .collect();
    assert_eq!(rows.len(), convo.len(), "one MQTT frame per packet:\n{out}");
    for ((_, p), (row, (_, b))) in convo.iter().zip(rows.iter().zip(&bytes)) {
        let get = |name: &str| -> &str {
            let i = fields.iter().position(|f| *f == name).expect("field");
            row[i].as_str()
        };
        assert_eq!(
            get("mqtt.msgtype"),
            p.type_number().to_string(),
            "{}",
            p.name()
        );
        assert_eq!(get("mqtt.len"), (b.len() - header_len(b)).to_string());
        // what we encoded, field by field
        let ids = |p: &Properties| -> String {
            let mut v = Vec::new();
            let mut push = |cond: bool, id: u8| {
                if cond {
                    v.push(format!("{id:#04x}"));
                }
            };
            push(p.payload_format_indicator.is_some(), 0x01);
            push(p.message_expiry_interval.is_some(), 0x02);
            for _ in &p.subscription_identifiers {
                push(true, 0x0B);
            }
            push(p.session_expiry_interval.is_some(), 0x11);
            push(p.assigned_client_identifier.is_some(), 0x12);
            push(p.server_keep_alive.is_some(), 0x13);
            push(p.authentication_method.is_some(), 0x15);
            push(p.authentication_data.is_some(), 0x16);
            push(p.will_delay_interval.is_some(), 0x18);
            push(p.reason_string.is_some(), 0x1F);
            push(p.receive_maximum.is_some(), 0x21);
            push(p.topic_alias_maximum.is_some(), 0x22);
            push(p.topic_alias.is_some(), 0x23);
            push(p.maximum_qos.is_some(), 0x24);
            for _ in &p.user_properties {
                push(true, 0x26);
            }
            v.join(",")
        };
        match p {
            Packet5::Connect(c) => {
                assert_eq!(get("mqtt.ver"), "5");
                assert_eq!(get("mqtt.clientid"), c.client_id);
                let w = c.will.as_ref().expect("will");
                assert_eq!(get("mqtt.willtopic"), w.topic.as_str());
                // connect properties, then will properties
                let mut want = ids(&c.props);
                want.push(',');
                want.push_str(&ids(&w.props));
                assert_eq!(get("mqtt.property_id"), want);
                assert_eq!(get("mqtt.prop_key"), "k");
                assert_eq!(get("mqtt.prop_value"), "v");
            }
            Packet5::ConnAck(a) => {
                assert_eq!(get("mqtt.connack.reason_code"), "0");
                assert_eq!(get("mqtt.property_id"), ids(&a.props));
            }
            Packet5::Publish(x) => {
                // tshark shows the topic the alias stands for on later use
                let want_topic = x.topic.as_ref().map_or("a/b", |t| t.as_str());
                assert_eq!(get("mqtt.topic"), want_topic);
                assert_eq!(
                    get("mqtt.property.topic_alias"),
                    x.props
                        .topic_alias
                        .map(|a| a.to_string())
                        .unwrap_or_default()
                );
                assert_eq!(get("mqtt.property_id"), ids(&x.props));
                let keys: Vec<&str> = x
                    .props
                    .user_properties
                    .iter()
                    .map(|(k, _)| k.as_str())
                    .collect();
                assert_eq!(get("mqtt.prop_key"), keys.join(","));
                if let QosPid::ExactlyOnce(id) | QosPid::AtLeastOnce(id) = x.qos_pid {
                    assert_eq!(get("mqtt.msgid"), id.get().to_string());
                }
            }
            Packet5::PubAck(a) => {
                assert_eq!(get("mqtt.msgid"), a.pid.get().to_string());
                assert_eq!(get("mqtt.puback.reason_code"), a.reason.0.to_string());
                assert_eq!(get("mqtt.property_id"), ids(&a.props));
            }
            Packet5::PubRec(a) | Packet5::PubRel(a) | Packet5::PubComp(a) => {
                assert_eq!(get("mqtt.msgid"), a.pid.get().to_string());
            }
            Packet5::Subscribe(s) => {
                assert_eq!(get("mqtt.msgid"), "12");
                assert_eq!(get("mqtt.property_id"), ids(&s.props));
                assert_eq!(get("mqtt.topic"), "a/+,x/#,secret");
                // 0x2E = RH 2, RAP, NL, QoS 2; 0x01; 0x00
                assert_eq!(get("mqtt.subscription_options"), "0x2e,0x01,0x00");
            }
            Packet5::SubAck(_) => {
                assert_eq!(get("mqtt.suback.reason_code"), "2,1,135");
            }
            Packet5::Unsubscribe(_) => {
                assert_eq!(get("mqtt.topic"), "x/#");
            }
            Packet5::UnsubAck(_) => {
                assert_eq!(get("mqtt.unsuback.reason_code"), "17");
            }
            Packet5::Auth(a) => {
                assert_eq!(get("mqtt.auth.reason_code"), "25");
                assert_eq!(get("mqtt.property_id"), ids(&a.props));
            }
            Packet5::Disconnect(d) => {
                assert_eq!(get("mqtt.disconnect.reason_code"), "4");
                assert_eq!(get("mqtt.property_id"), ids(&d.props));
            }
            Packet5::PingReq | Packet5::PingResp => {}
        }
    }
}

/// The golden CONNECT of [`golden_connect_with_properties_and_will`], built
/// with the encoder (that test pins it to the hand-written bytes).
fn golden_connect_bytes() -> Vec<u8> {
    enc(&Packet5::Connect(Connect5 {
        clean_start: true,
        keep_alive: 60,
        props: Properties {
            session_expiry_interval: Some(30),
            receive_maximum: Some(20),
            topic_alias_maximum: Some(10),
            user_properties: vec![("k".into(), "v".into())],
            ..Properties::default()
        },
        client_id: "dev-1".into(),
        will: Some(Will5 {
            props: Properties {
                payload_format_indicator: Some(1),
                will_delay_interval: Some(5),
                ..Properties::default()
            },
            topic: topic("dev-1/will"),
            message: Arc::from(&b"gone"[..]),
            qos: QoS::AtLeastOnce,
            retain: true,
        }),
        username: Some("ann".into()),
        password: Some(b"pw".to_vec()),
    }))
}
