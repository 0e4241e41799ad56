//! MQTT-SN 1.2 codec (DESIGN.md convention 5): golden bytes worked out
//! from the spec field by field, round trips of every message type, both
//! Length forms and every flag combination, malformed inputs as typed
//! errors, proptest (`decode` never panics, `decode(encode(m)) == m`), and
//! tshark's MQTT-SN dissector reading what we write.

mod common;

use proptest::prelude::*;
use qossim::net::ip::{Ipv4Repr, PROTO_UDP};
use qossim::net::udp::build_ipv4_udp;
use qossim::proto::mqttsn::codec::{decode, DecodeError, EncodeError, Message};
use qossim::proto::mqttsn::{MsgType, Qos, ReturnCode, SubTopic, TopicRef, WillTopic};
use qossim::report::pcap::PcapWriter;
use qossim::sim::SimTime;

fn enc(m: &Message<'_>) -> Vec<u8> {
    let mut b = Vec::new();
    let n = m.encode(&mut b).expect("encode");
    assert_eq!(n, b.len());
    assert_eq!(n, m.encoded_len(), "encoded_len of {m:?}");
    b
}

fn round_trip(m: Message<'_>) {
    let b = enc(&m);
    assert_eq!(decode(&b), Ok(m), "bytes {b:02x?}");
}

#[test]
fn golden_connect() {
    // MQTT-SN 1.2 §5.4.4 CONNECT, ClientId "sensor1", Will and
    // CleanSession set, keep alive 60 s.
    let bytes = [
        0x0D, // Length: 13 octets in all (6 header octets + 7 of ClientId)
        0x04, // MsgType: CONNECT
        0x0C, // Flags: Will (bit 3) 0x08 | CleanSession (bit 2) 0x04
        0x01, // ProtocolId: 0x01
        0x00, 0x3C, // Duration: 60 seconds, big-endian
        b's', b'e', b'n', b's', b'o', b'r', b'1', // ClientId
    ];
    let m = Message::Connect {
        will: true,
        clean_session: true,
        duration: 60,
        client_id: "sensor1",
    };
    assert_eq!(enc(&m), bytes);
    assert_eq!(decode(&bytes), Ok(m));
}

#[test]
fn golden_register() {
    // MQTT-SN 1.2 §5.4.10 REGISTER from a client: TopicId 0, MsgId 1,
    // TopicName "room/1/temp".
    let bytes = [
        0x11, // Length: 17 = 6 + 11
        0x0A, // MsgType: REGISTER
        0x00, 0x00, // TopicId: 0x0000 (a client's REGISTER, §5.4.10)
        0x00, 0x01, // MsgId: 1
        b'r', b'o', b'o', b'm', b'/', b'1', b'/', b't', b'e', b'm', b'p', // TopicName
    ];
    let m = Message::Register {
        topic_id: 0,
        msg_id: 1,
        topic_name: "room/1/temp",
    };
    assert_eq!(enc(&m), bytes);
    assert_eq!(decode(&bytes), Ok(m));
}

#[test]
fn golden_publish_qos1() {
    // MQTT-SN 1.2 §5.4.12 PUBLISH, QoS 1, normal topic id 1, MsgId 2,
    // Data "21.5".
    let bytes = [
        0x0B, // Length: 11 = 7 + 4
        0x0C, // MsgType: PUBLISH
        0x20, // Flags: DUP 0 | QoS 01 (bits 6-5) | Retain 0 | Will 0 | Clean 0 | TopicIdType 00
        0x00, 0x01, // TopicId: 1
        0x00, 0x02, // MsgId: 2
        b'2', b'1', b'.', b'5', // Data
    ];
    let m = Message::Publish {
        dup: false,
        qos: Qos::One,
        retain: false,
        topic: TopicRef::Normal(1),
        msg_id: 2,
        data: b"21.5",
    };
    assert_eq!(enc(&m), bytes);
    assert_eq!(decode(&bytes), Ok(m));
}

#[test]
fn golden_flags_qos_minus_one_short_topic_and_encapsulation() {
    // QoS −1 (0b11 in bits 6-5) with a short topic name "ab" (TopicIdType 2).
    let m = Message::Publish {
        dup: false,
        qos: Qos::MinusOne,
        retain: true,
        topic: TopicRef::Short(*b"ab"),
        msg_id: 0,
        data: b"x",
    };
    assert_eq!(
        enc(&m),
        [0x08, 0x0C, 0x60 | 0x10 | 0x02, b'a', b'b', 0, 0, b'x']
    );
    // §5.5: Length 9 (up to the end of a 6-octet Wireless Node Id), 0xFE,
    // Ctrl Radius 1, node id, then a PINGREQ (0x02 0x16).
    let inner = [0x02, 0x16];
    let e = Message::Encapsulated {
        radius: 1,
        node_id: &[10, 0, 0, 7, 0x9c, 0x40],
        inner: &inner,
    };
    let b = enc(&e);
    assert_eq!(b, [9, 0xFE, 1, 10, 0, 0, 7, 0x9c, 0x40, 0x02, 0x16]);
    assert_eq!(decode(&b), Ok(e));
}

fn every_message<'a>(data: &'a [u8], name: &'a str) -> Vec<Message<'a>> {
    let w = WillTopic {
        qos: Qos::One,
        retain: true,
        topic: name,
    };
    vec![
        Message::Advertise {
            gw_id: 7,
            duration: 900,
        },
        Message::SearchGw { radius: 2 },
        Message::GwInfo {
            gw_id: 3,
            gw_add: &[],
        },
        Message::GwInfo {
            gw_id: 3,
            gw_add: &[10, 0, 0, 1, 7, 91],
        },
        Message::Connect {
            will: false,
            clean_session: false,
            duration: 0,
            client_id: name,
        },
        Message::ConnAck {
            code: ReturnCode::Congestion,
        },
        Message::WillTopicReq,
        Message::WillTopic(Some(w)),
        Message::WillTopic(None),
        Message::WillMsgReq,
        Message::WillMsg { msg: data },
        Message::Register {
            topic_id: 5,
            msg_id: 6,
            topic_name: name,
        },
        Message::RegAck {
            topic_id: 5,
            msg_id: 6,
            code: ReturnCode::InvalidTopicId,
        },
        Message::Publish {
            dup: true,
            qos: Qos::Two,
            retain: false,
            topic: TopicRef::Predefined(77),
            msg_id: 65535,
            data,
        },
        Message::PubAck {
            topic_id: 1,
            msg_id: 2,
            code: ReturnCode::NotSupported,
        },
        Message::PubRec { msg_id: 1 },
        Message::PubRel { msg_id: 2 },
        Message::PubComp { msg_id: 3 },
        Message::Subscribe {
            dup: false,
            qos: Qos::One,
            msg_id: 9,
            topic: SubTopic::Name("a/+/#"),
        },
        Message::Subscribe {
            dup: true,
            qos: Qos::Two,
            msg_id: 9,
            topic: SubTopic::Predefined(4),
        },
        Message::Subscribe {
            dup: false,
            qos: Qos::Zero,
            msg_id: 9,
            topic: SubTopic::Short(*b"ab"),
        },
        Message::SubAck {
            qos: Qos::Two,
            topic_id: 12,
            msg_id: 9,
            code: ReturnCode::Accepted,
        },
        Message::Unsubscribe {
            msg_id: 4,
            topic: SubTopic::Name(name),
        },
        Message::Unsubscribe {
            msg_id: 4,
            topic: SubTopic::Predefined(1),
        },
        Message::Unsubscribe {
            msg_id: 4,
            topic: SubTopic::Short(*b"zz"),
        },
        Message::UnsubAck { msg_id: 4 },
        Message::PingReq { client_id: None },
        Message::PingReq {
            client_id: Some(name),
        },
        Message::PingResp,
        Message::Disconnect { duration: None },
        Message::Disconnect {
            duration: Some(3600),
        },
        Message::WillTopicUpd(Some(w)),
        Message::WillTopicUpd(None),
        Message::WillTopicResp {
            code: ReturnCode::Accepted,
        },
        Message::WillMsgUpd { msg: data },
        Message::WillMsgResp {
            code: ReturnCode::Congestion,
        },
    ]
}

#[test]
fn every_message_type_round_trips() {
    let mut seen = std::collections::BTreeSet::new();
    for m in every_message(b"payload", "topic/x") {
        seen.insert(m.msg_type());
        round_trip(m);
    }
    let inner = enc(&Message::PingReq { client_id: None });
    let e = Message::Encapsulated {
        radius: 3,
        node_id: &[1, 2],
        inner: &inner,
    };
    seen.insert(e.msg_type());
    round_trip(e);
    assert_eq!(seen.len(), MsgType::ALL.len(), "a message type is missing");
}

#[test]
fn both_length_forms_for_every_variable_message() {
    // 300-byte fields push every variable-length message into the 3-octet
    // Length form (0x01, then 16 bits).
    let data = vec![0x5a; 300];
    let name = "n".repeat(300);
    for m in every_message(&data, &name) {
        let b = enc(&m);
        if b.len() >= 256 {
            assert_eq!(b[0], 0x01, "{:?}", m.msg_type());
            assert_eq!(usize::from(u16::from_be_bytes([b[1], b[2]])), b.len());
        } else {
            assert_eq!(usize::from(b[0]), b.len());
        }
        assert_eq!(decode(&b), Ok(m));
    }
    // The largest message: 65535 octets.
    let big = vec![1u8; 65535 - 9];
    let m = Message::Publish {
        dup: false,
        qos: Qos::Zero,
        retain: false,
        topic: TopicRef::Normal(1),
        msg_id: 0,
        data: &big,
    };
    round_trip(m);
    let too_big = vec![1u8; 65535 - 8];
    let m = Message::Publish {
        dup: false,
        qos: Qos::Zero,
        retain: false,
        topic: TopicRef::Normal(1),
        msg_id: 0,
        data: &too_big,
    };
    assert_eq!(m.encode(&mut Vec::new()), Err(EncodeError::TooLarge(65536)));
}

#[test]
fn boundary_between_length_forms() {
    // 1-octet form up to 255 octets; a 256-octet message needs the 3-octet
    // form and is then 258 octets long.
    for n in 240..=260usize {
        let data = vec![0u8; n];
        let m = Message::WillMsg { msg: &data };
        let b = enc(&m);
        if n + 2 <= 255 {
            assert_eq!(b.len(), n + 2);
            assert_eq!(usize::from(b[0]), n + 2);
        } else {
            assert_eq!(b.len(), n + 4);
            assert_eq!(b[0], 0x01);
        }
        assert_eq!(decode(&b), Ok(m));
    }
    // The 3-octet form is accepted for any length (§5.2.1).
    assert_eq!(
        decode(&[0x01, 0x00, 0x05, 0x05, 0x00]),
        Ok(Message::ConnAck {
            code: ReturnCode::Accepted
        })
    );
}

#[test]
fn every_publish_and_connect_flag_combination() {
    for dup in [false, true] {
        for qos in [Qos::MinusOne, Qos::Zero, Qos::One, Qos::Two] {
            for retain in [false, true] {
                for topic in [
                    TopicRef::Normal(0x1234),
                    TopicRef::Predefined(0xfffe),
                    TopicRef::Short(*b"t1"),
                ] {
                    let m = Message::Publish {
                        dup,
                        qos,
                        retain,
                        topic,
                        msg_id: 0x0102,
                        data: b"d",
                    };
                    let b = enc(&m);
                    let f = b[2];
                    assert_eq!(f & 0x80 != 0, dup);
                    assert_eq!(f & 0x10 != 0, retain);
                    assert_eq!(f & 0x08, 0, "Will bit unused in PUBLISH");
                    assert_eq!(
                        (f >> 5) & 3,
                        match qos {
                            Qos::Zero => 0,
                            Qos::One => 1,
                            Qos::Two => 2,
                            Qos::MinusOne => 3,
                        }
                    );
                    assert_eq!(f & 3, topic.id_type() as u8);
                    assert_eq!(decode(&b), Ok(m));
                }
            }
        }
    }
    for will in [false, true] {
        for clean_session in [false, true] {
            let m = Message::Connect {
                will,
                clean_session,
                duration: 1,
                client_id: "c",
            };
            let b = enc(&m);
            assert_eq!(
                b[2],
                (if will { 0x08 } else { 0 }) | (if clean_session { 0x04 } else { 0 })
            );
            assert_eq!(decode(&b), Ok(m));
        }
    }
    for qos in [Qos::Zero, Qos::One, Qos::Two] {
        for retain in [false, true] {
            round_trip(Message::WillTopic(Some(WillTopic {
                qos,
                retain,
                topic: "w",
            })));
            round_trip(Message::WillTopicUpd(Some(WillTopic {
                qos,
                retain,
                topic: "w",
            })));
            round_trip(Message::SubAck {
                qos,
                topic_id: 1,
                msg_id: 1,
                code: ReturnCode::Accepted,
            });
        }
    }
}

#[test]
fn malformed_inputs_are_typed_errors() {
    use DecodeError as E;
    assert_eq!(decode(&[]), Err(E::Short(0)));
    assert_eq!(decode(&[0x02]), Err(E::Short(1)));
    assert_eq!(decode(&[0x01, 0x00]), Err(E::Short(2)));
    // Length says 3, datagram has 2.
    assert_eq!(
        decode(&[0x03, 0x16]),
        Err(E::LengthMismatch {
            length: 3,
            actual: 2
        })
    );
    // Length 0 / 1: smaller than the header.
    assert_eq!(decode(&[0x00, 0x16]), Err(E::BadLengthField(0)));
    assert_eq!(decode(&[0x01, 0x00, 0x03, 0x16]), Err(E::BadLengthField(3)));
    // Reserved MsgType 0x03, 0x11, 0x19, 0xFF.
    for t in [0x03, 0x11, 0x19, 0x1E, 0xFF] {
        assert_eq!(decode(&[0x02, t]), Err(E::BadType(t)));
    }
    // Reserved TopicIdType 0b11 in PUBLISH and SUBSCRIBE.
    assert_eq!(
        decode(&[0x07, 0x0C, 0x03, 0, 1, 0, 1]),
        Err(E::ReservedTopicIdType {
            ty: MsgType::Publish
        })
    );
    assert_eq!(
        decode(&[0x06, 0x12, 0x23, 0, 1, b'a']),
        Err(E::ReservedTopicIdType {
            ty: MsgType::Subscribe
        })
    );
    // ProtocolId 0x02.
    assert_eq!(
        decode(&[0x07, 0x04, 0x04, 0x02, 0, 10, b'c']),
        Err(E::BadProtocolId(2))
    );
    // Reserved ReturnCode 0x04.
    assert_eq!(
        decode(&[0x03, 0x05, 0x04]),
        Err(E::BadReturnCode {
            ty: MsgType::ConnAck,
            code: 4
        })
    );
    // Fixed-size messages with the wrong size.
    assert!(matches!(
        decode(&[0x04, 0x05, 0x00, 0x00]),
        Err(E::BadLength { .. })
    ));
    assert!(matches!(
        decode(&[0x03, 0x18, 0x00]),
        Err(E::BadLength { .. })
    ));
    assert!(matches!(
        decode(&[0x05, 0x0C, 0x20, 0x00, 0x01]),
        Err(E::BadLength { .. })
    ));
    // Predefined SUBSCRIBE topic must be exactly 2 octets.
    assert!(matches!(
        decode(&[0x08, 0x12, 0x21, 0, 1, 0, 1, 2]),
        Err(E::BadLength { .. })
    ));
    // QoS −1 is meaningful only in PUBLISH.
    assert_eq!(
        decode(&[0x06, 0x12, 0x60, 0, 1, b'a']),
        Err(E::BadQos {
            ty: MsgType::Subscribe
        })
    );
    // Invalid UTF-8 in a topic name, empty REGISTER topic name.
    assert_eq!(
        decode(&[0x07, 0x0A, 0, 0, 0, 1, 0xff]),
        Err(E::InvalidUtf8 {
            ty: MsgType::Register,
            field: "TopicName"
        })
    );
    assert_eq!(
        decode(&[0x06, 0x0A, 0, 0, 0, 1]),
        Err(E::Empty {
            ty: MsgType::Register,
            field: "TopicName"
        })
    );
    // Encapsulation: header too short, nested, malformed inner.
    assert_eq!(
        decode(&[0x02, 0xFE, 0x00, 0x02, 0x16]),
        Err(E::BadEncapsulation(2))
    );
    assert_eq!(
        decode(&[0x03, 0xFE, 0x00, 0x03, 0xFE, 0x00, 0x02, 0x16]),
        Err(E::NestedEncapsulation)
    );
    assert!(matches!(
        decode(&[0x03, 0xFE, 0x00, 0x05, 0x16]),
        Err(E::Inner(_))
    ));
    // A node id longer than 252 octets cannot be encapsulated.
    let node = [0u8; 253];
    assert_eq!(
        Message::Encapsulated {
            radius: 0,
            node_id: &node,
            inner: &[2, 0x16]
        }
        .encode(&mut Vec::new()),
        Err(EncodeError::NodeIdTooLong(256))
    );
}

fn arb_qos() -> impl Strategy<Value = Qos> {
    prop_oneof![Just(Qos::Zero), Just(Qos::One), Just(Qos::Two)]
}
fn arb_code() -> impl Strategy<Value = ReturnCode> {
    prop_oneof![
        Just(ReturnCode::Accepted),
        Just(ReturnCode::Congestion),
        Just(ReturnCode::InvalidTopicId),
        Just(ReturnCode::NotSupported)
    ]
}

/// Owned seed for a generated message (proptest needs owned values; the
/// message borrows from it).
#[derive(Debug, Clone)]
struct Seed {
    pick: u8,
    a: u16,
    b: u16,
    flag1: bool,
    flag2: bool,
    qos: Qos,
    code: ReturnCode,
    name: String,
    data: Vec<u8>,
    short: [u8; 2],
}

fn arb_seed() -> impl Strategy<Value = Seed> {
    (
        0u8..30,
        any::<u16>(),
        any::<u16>(),
        any::<bool>(),
        any::<bool>(),
        arb_qos(),
        arb_code(),
        "[a-z/+#0-9]{1,300}",
        proptest::collection::vec(any::<u8>(), 0..400),
        any::<[u8; 2]>(),
    )
        .prop_map(
            |(pick, a, b, flag1, flag2, qos, code, name, data, short)| Seed {
                pick,
                a,
                b,
                flag1,
                flag2,
                qos,
                code,
                name,
                data,
                short,
            },
        )
}

fn build(s: &Seed) -> Message<'_> {
    let w = WillTopic {
        qos: s.qos,
        retain: s.flag1,
        topic: &s.name,
    };
    let sub = match s.a % 3 {
        0 => SubTopic::Name(&s.name),
        1 => SubTopic::Predefined(s.b),
        _ => SubTopic::Short(s.short),
    };
    let topic = match s.b % 3 {
        0 => TopicRef::Normal(s.a),
        1 => TopicRef::Predefined(s.a),
        _ => TopicRef::Short(s.short),
    };
    let qos_pub = if s.flag2 && s.a.is_multiple_of(2) {
        Qos::MinusOne
    } else {
        s.qos
    };
    match s.pick {
        0 => Message::Advertise {
            gw_id: s.a as u8,
            duration: s.b,
        },
        1 => Message::SearchGw { radius: s.a as u8 },
        2 => Message::GwInfo {
            gw_id: s.a as u8,
            gw_add: &s.data,
        },
        3 => Message::Connect {
            will: s.flag1,
            clean_session: s.flag2,
            duration: s.a,
            client_id: &s.name,
        },
        4 => Message::ConnAck { code: s.code },
        5 => Message::WillTopicReq,
        6 => Message::WillTopic(s.flag2.then_some(w)),
        7 => Message::WillMsgReq,
        8 => Message::WillMsg { msg: &s.data },
        9 => Message::Register {
            topic_id: s.a,
            msg_id: s.b,
            topic_name: &s.name,
        },
        10 => Message::RegAck {
            topic_id: s.a,
            msg_id: s.b,
            code: s.code,
        },
        11 => Message::Publish {
            dup: s.flag1,
            qos: qos_pub,
            retain: s.flag2,
            topic,
            msg_id: s.b,
            data: &s.data,
        },
        12 => Message::PubAck {
            topic_id: s.a,
            msg_id: s.b,
            code: s.code,
        },
        13 => Message::PubRec { msg_id: s.a },
        14 => Message::PubRel { msg_id: s.a },
        15 => Message::PubComp { msg_id: s.a },
        16 => Message::Subscribe {
            dup: s.flag1,
            qos: s.qos,
            msg_id: s.b,
            topic: sub,
        },
        17 => Message::SubAck {
            qos: s.qos,
            topic_id: s.a,
            msg_id: s.b,
            code: s.code,
        },
        18 => Message::Unsubscribe {
            msg_id: s.b,
            topic: sub,
        },
        19 => Message::UnsubAck { msg_id: s.a },
        20 => Message::PingReq {
            client_id: s.flag1.then_some(s.name.as_str()),
        },
        21 => Message::PingResp,
        22 => Message::Disconnect {
            duration: s.flag1.then_some(s.a),
        },
        23 => Message::WillTopicUpd(s.flag2.then_some(w)),
        24 => Message::WillTopicResp { code: s.code },
        25 => Message::WillMsgUpd { msg: &s.data },
        26 => Message::WillMsgResp { code: s.code },
        _ => Message::Encapsulated {
            radius: (s.a & 3) as u8,
            node_id: &s.short,
            // A whole inner message: a PUBACK.
            inner: &[7, 0x0D, 0, 1, 0, 2, 0],
        },
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(3000))]

    #[test]
    fn decode_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
        let _ = decode(&bytes);
    }

    #[test]
    fn decode_never_panics_on_plausible_headers(
        ty in prop_oneof![0u8..0x1e, Just(0xFE)],
        long in any::<bool>(),
        body in proptest::collection::vec(any::<u8>(), 0..40),
    ) {
        // Valid Length fields with arbitrary bodies reach every per-type
        // parser.
        let mut b = Vec::new();
        if long {
            b.push(1);
            b.extend_from_slice(&((body.len() + 4) as u16).to_be_bytes());
        } else {
            b.push((body.len() + 2) as u8);
        }
        b.push(ty);
        b.extend_from_slice(&body);
        let _ = decode(&b);
    }

    #[test]
    fn decode_inverts_encode(seed in arb_seed()) {
        let m = build(&seed);
        let mut b = Vec::new();
        let n = m.encode(&mut b).expect("encode");
        prop_assert_eq!(n, m.encoded_len());
        prop_assert_eq!(decode(&b), Ok(m));
    }
}

#[test]
fn tshark_dissects_what_we_write() {
    if !common::tshark::available("tshark_dissects_what_we_write") {
        return;
    }
    let dir = common::temp_dir("mqttsn-tshark");
    let path = dir.join("mqttsn.pcap");
    let file = std::fs::File::create(&path).expect("create pcap");
    let mut w = PcapWriter::new(std::io::BufWriter::new(file)).expect("header");
    let msgs = [
        Message::Connect {
            will: true,
            clean_session: true,
            duration: 60,
            client_id: "sensor1",
        },
        Message::Register {
            topic_id: 0,
            msg_id: 1,
            topic_name: "room/1/temp",
        },
        Message::Publish {
            dup: false,
            qos: Qos::One,
            retain: false,
            topic: TopicRef::Normal(1),
            msg_id: 2,
            data: b"21.5",
        },
    ];
    let ip = Ipv4Repr {
        src: std::net::Ipv4Addr::new(10, 0, 0, 1),
        dst: std::net::Ipv4Addr::new(10, 0, 0, 2),
        protocol: PROTO_UDP,
        ttl: 64,
        ident: 1,
        dont_fragment: false,
        more_fragments: false,
        frag_offset: 0,
        payload_len: 0,
    };
    let mut pkt = Vec::new();
    for (i, m) in msgs.iter().enumerate() {
        let b = enc(m);
        build_ipv4_udp(&mut pkt, &ip, 40000, 1883, &b).expect("udp");
        w.write_packet(SimTime::from_nanos(1_000_000 * (i as u64 + 1)), &pkt)
            .expect("write");
    }
    w.flush().expect("flush");
    drop(w);
    let out = common::tshark::run(
        &path,
        &[
            "-d",
            "udp.port==1883,mqttsn",
            "-T",
            "fields",
            "-E",
            "separator=|",
            "-e",
            "mqttsn.msg.type",
            "-e",
            "mqttsn.msg.len",
            "-e",
            "mqttsn.client.id",
            "-e",
            "mqttsn.keep.alive",
            "-e",
            "mqttsn.topic",
            "-e",
            "mqttsn.topic.id",
            "-e",
            "mqttsn.msg.id",
            "-e",
            "mqttsn.qos",
        ],
    );
    let lines = common::tshark::lines(&out);
    assert_eq!(lines.len(), 3, "{out}");
    assert!(lines[0].starts_with("0x04|13|sensor1|60|"), "{}", lines[0]);
    assert!(
        lines[1].starts_with("0x0a|17|||room/1/temp|0|1"),
        "{}",
        lines[1]
    );
    assert!(lines[2].starts_with("0x0c|11||||1|2|0x01"), "{}", lines[2]);
    let malformed = common::tshark::run(
        &path,
        &[
            "-d",
            "udp.port==1883,mqttsn",
            "-Y",
            "_ws.malformed || _ws.expert.severity >= warning",
            "-T",
            "fields",
            "-e",
            "frame.number",
        ],
    );
    assert!(
        common::tshark::lines(&malformed).is_empty(),
        "tshark flags frames {malformed}"
    );
}
