//! MQTT 3.1.1 codec tests in three layers (DESIGN.md convention 5): golden
//! bytes hand-computed from the spec, `decode(encode(p)) == p` for every
//! packet type, and arbitrary bytes that must never panic the decoder.

use std::sync::Arc;

use proptest::prelude::*;
use qossim::proto::mqtt::codec::{
    decode, decode_view, parse_fixed_header, PacketView, MAX_PACKET_SIZE,
};
use qossim::proto::mqtt::{
    Ack, ConnAck, Connect, ConnectReturnCode, DecodeError, LastWill, Packet, PacketId, PacketType,
    ProtocolLevel, Publish, QoS, QosPid, SubAck, SubAckReturn, Subscribe, TopicFilter, TopicName,
    Unsubscribe,
};

fn pid(v: u16) -> PacketId {
    PacketId::new(v).expect("non-zero")
}

fn enc(p: &Packet) -> Vec<u8> {
    let mut v = Vec::new();
    let n = p.encode(&mut v).expect("encode");
    assert_eq!(n, v.len());
    assert_eq!(p.encoded_len().expect("len"), v.len(), "encoded_len exact");
    v
}

fn dec(b: &[u8]) -> Packet {
    let (p, n) = decode(b, MAX_PACKET_SIZE)
        .expect("valid")
        .expect("complete");
    assert_eq!(n, b.len());
    p
}

/// The course's CONNECT example, byte by byte.
#[test]
fn golden_connect_course_example() {
    let p = Packet::Connect(Connect {
        protocol: ProtocolLevel::V311,
        clean_session: true,
        keep_alive: 60,
        client_id: "client-1".into(),
        will: Some(LastWill {
            topic: TopicName::new("/hans/will").expect("topic"),
            message: Arc::from(&b"unexpected exit"[..]),
            qos: QoS::ExactlyOnce,
            retain: false,
        }),
        username: Some("hans".into()),
        password: Some(b"letmein".to_vec()),
    });
    #[rustfmt::skip]
    let want: Vec<u8> = [
        &[0x10][..],                 // CONNECT, flags 0000
        &[0x40],                     // remaining length 64 = 10 + 10 + 12 + 17 + 6 + 9
        &[0x00, 0x04], b"MQTT",      // protocol name
        &[0x04],                     // protocol level 4 (3.1.1)
        &[0xD6],                     // flags: user 0x80 | password 0x40 | will QoS 2 0x10 | will 0x04 | clean 0x02
        &[0x00, 0x3C],               // keep alive 60 s
        &[0x00, 0x08], b"client-1",  // client identifier
        &[0x00, 0x0A], b"/hans/will",// will topic
        &[0x00, 0x0F], b"unexpected exit", // will message
        &[0x00, 0x04], b"hans",      // user name
        &[0x00, 0x07], b"letmein",   // password
    ]
    .concat();
    assert_eq!(want.len(), 66); // 1 + 1 + 64
    assert_eq!(enc(&p), want);
    assert_eq!(dec(&want), p);
}

#[test]
fn golden_publish_qos1() {
    let p = Packet::Publish(Publish {
        dup: false,
        qos_pid: QosPid::AtLeastOnce(pid(10)),
        retain: false,
        topic: TopicName::new("a/b").expect("topic"),
        payload: Arc::from(&b"hi"[..]),
    });
    #[rustfmt::skip]
    let want: Vec<u8> = [
        &[0x32][..],          // PUBLISH, DUP 0, QoS 1 (0b010), RETAIN 0
        &[0x09],              // remaining length: 2 + 3 + 2 + 2
        &[0x00, 0x03], b"a/b",// topic name
        &[0x00, 0x0A],        // packet identifier 10
        b"hi",                // payload
    ]
    .concat();
    assert_eq!(enc(&p), want);
    assert_eq!(dec(&want), p);
    // DUP and RETAIN bits, QoS 2.
    let p2 = Packet::Publish(Publish {
        dup: true,
        qos_pid: QosPid::ExactlyOnce(pid(10)),
        retain: true,
        topic: TopicName::new("a/b").expect("topic"),
        payload: Arc::from(&b"hi"[..]),
    });
    assert_eq!(enc(&p2)[0], 0x3D);
}

#[test]
fn golden_subscribe() {
    let p = Packet::Subscribe(Subscribe {
        pid: pid(1),
        filters: vec![
            (TopicFilter::new("a/+").expect("f"), QoS::AtLeastOnce),
            (TopicFilter::new("#").expect("f"), QoS::ExactlyOnce),
        ],
    });
    #[rustfmt::skip]
    let want: Vec<u8> = [
        &[0x82][..],           // SUBSCRIBE, reserved flags 0010 [MQTT-3.8.1-1]
        &[0x0C],               // remaining length: 2 + (2+3+1) + (2+1+1)
        &[0x00, 0x01],         // packet identifier 1
        &[0x00, 0x03], b"a/+", &[0x01], // filter, requested QoS 1
        &[0x00, 0x01], b"#", &[0x02],   // filter, requested QoS 2
    ]
    .concat();
    assert_eq!(enc(&p), want);
    assert_eq!(dec(&want), p);
}

#[test]
fn golden_small_packets() {
    let cases: Vec<(Packet, Vec<u8>)> = vec![
        (
            Packet::ConnAck(ConnAck {
                session_present: true,
                code: ConnectReturnCode::Accepted,
            }),
            vec![0x20, 0x02, 0x01, 0x00],
        ),
        (
            Packet::PubAck(Ack { pid: pid(0x1234) }),
            vec![0x40, 0x02, 0x12, 0x34],
        ),
        (
            Packet::PubRec(Ack { pid: pid(1) }),
            vec![0x50, 0x02, 0x00, 0x01],
        ),
        (
            Packet::PubRel(Ack { pid: pid(1) }),
            vec![0x62, 0x02, 0x00, 0x01],
        ),
        (
            Packet::PubComp(Ack { pid: pid(1) }),
            vec![0x70, 0x02, 0x00, 0x01],
        ),
        (
            Packet::SubAck(SubAck {
                pid: pid(1),
                codes: vec![
                    SubAckReturn::Success(QoS::AtLeastOnce),
                    SubAckReturn::Failure,
                ],
            }),
            vec![0x90, 0x04, 0x00, 0x01, 0x01, 0x80],
        ),
        (
            Packet::Unsubscribe(Unsubscribe {
                pid: pid(2),
                filters: vec![TopicFilter::new("a").expect("f")],
            }),
            vec![0xA2, 0x05, 0x00, 0x02, 0x00, 0x01, b'a'],
        ),
        (
            Packet::UnsubAck(Ack { pid: pid(2) }),
            vec![0xB0, 0x02, 0x00, 0x02],
        ),
        (Packet::PingReq, vec![0xC0, 0x00]),
        (Packet::PingResp, vec![0xD0, 0x00]),
        (Packet::Disconnect, vec![0xE0, 0x00]),
    ];
    for (p, want) in cases {
        assert_eq!(enc(&p), want, "{}", p.name());
        assert_eq!(dec(&want), p, "{}", p.name());
    }
}

#[test]
fn packet_type_names() {
    let names: Vec<&str> = PacketType::ALL.iter().map(|t| t.name()).collect();
    assert_eq!(
        names,
        [
            "CONNECT",
            "CONNACK",
            "PUBLISH",
            "PUBACK",
            "PUBREC",
            "PUBREL",
            "PUBCOMP",
            "SUBSCRIBE",
            "SUBACK",
            "UNSUBSCRIBE",
            "UNSUBACK",
            "PINGREQ",
            "PINGRESP",
            "DISCONNECT"
        ]
    );
    assert_eq!(Packet::PingReq.name(), "PINGREQ");
}

#[test]
fn remaining_length_varint_boundaries() {
    // §2.2.3 table 2.4: 127 → 1 byte, 128 → 2, 16383 → 2, 16384 → 3, 2097152 → 4.
    for (payload, hdr) in [
        (127 - 4, 2usize),
        (128 - 4, 3),
        (16_383 - 4, 3),
        (16_384 - 4, 4),
        (2_097_152 - 4, 5),
    ] {
        let p = Packet::Publish(Publish {
            dup: false,
            qos_pid: QosPid::AtMostOnce,
            retain: false,
            topic: TopicName::new("ab").expect("t"),
            payload: Arc::from(vec![7u8; payload]),
        });
        let b = enc(&p);
        assert_eq!(b.len(), hdr + payload + 4, "payload {payload}");
        assert_eq!(dec(&b), p);
    }
    assert_eq!(
        parse_fixed_header(&[0x30, 0xFF, 0xFF, 0xFF, 0x7F]),
        Ok(Some((0x30, 268_435_455, 5)))
    );
    assert_eq!(
        parse_fixed_header(&[0x30, 0xFF, 0xFF, 0xFF, 0xFF, 0x01]),
        Err(DecodeError::RemainingLength)
    );
}

#[test]
fn streaming_incomplete_and_multiple() {
    let mut stream = enc(&Packet::PingReq);
    stream.extend(enc(&Packet::PubAck(Ack { pid: pid(5) })));
    for cut in 0..stream.len() {
        let r = decode(&stream[..cut], MAX_PACKET_SIZE).expect("no error");
        match cut {
            0 | 1 => assert_eq!(r, None),
            _ => assert_eq!(r, Some((Packet::PingReq, 2))),
        }
    }
    assert_eq!(
        decode(&stream[2..5], MAX_PACKET_SIZE).expect("ok"),
        None,
        "PUBACK missing its last byte"
    );
    assert_eq!(
        decode(&stream[2..], MAX_PACKET_SIZE).expect("ok"),
        Some((Packet::PubAck(Ack { pid: pid(5) }), 4))
    );
}

#[test]
fn max_packet_size_rejects_early() {
    // Header announces 1000 bytes; with a 100-byte limit the error comes
    // before the body arrives.
    let r = decode(&[0x30, 0xE8, 0x07], 100);
    assert_eq!(
        r,
        Err(DecodeError::TooLarge {
            size: 1003,
            max: 100
        })
    );
}

#[test]
fn malformed_packets_are_errors() {
    let bad: Vec<(&[u8], &str)> = vec![
        (&[0x00, 0x00], "reserved type 0"),
        (&[0xF0, 0x00], "reserved type 15"),
        (&[0xC1, 0x00], "PINGREQ flags"),
        (
            &[0x60, 0x02, 0x00, 0x01],
            "PUBREL flags 0000 [MQTT-3.6.1-1]",
        ),
        (&[0x80, 0x06, 0, 1, 0, 1, b'a', 0], "SUBSCRIBE flags 0000"),
        (&[0x36, 0x05, 0, 1, b'a', 0, 1], "PUBLISH QoS 3"),
        (&[0x38, 0x03, 0, 1, b'a'], "DUP on QoS 0"),
        (&[0x30, 0x03, 0, 1, b'+'], "wildcard in topic name"),
        (&[0x30, 0x02, 0, 0], "empty topic name"),
        (&[0x32, 0x05, 0, 1, b'a', 0, 0], "packet id 0"),
        (&[0x30, 0x04, 0, 2, 0xC3, 0x28], "invalid UTF-8"),
        (&[0x30, 0x04, 0, 2, b'a', 0], "U+0000 in topic"),
        (
            &[0x30, 0x05, 0, 3, 0xED, 0xA0, 0x80],
            "UTF-16 surrogate encoded",
        ),
        (&[0x82, 0x02, 0, 1], "SUBSCRIBE without filters"),
        (
            &[0x82, 0x06, 0, 1, 0, 1, b'a', 4],
            "SUBSCRIBE reserved QoS bits",
        ),
        (&[0x82, 0x06, 0, 1, 0, 1, b'a', 3], "SUBSCRIBE QoS 3"),
        (
            &[
                0x82, 0x0B, 0, 1, 0, 6, b's', b'p', b'o', b'r', b't', b'+', 0,
            ],
            "bad filter",
        ),
        (&[0xA2, 0x02, 0, 1], "UNSUBSCRIBE without filters"),
        (&[0x40, 0x03, 0, 1, 0], "PUBACK too long"),
        (&[0xC0, 0x01, 0], "PINGREQ with body"),
        (&[0x20, 0x02, 0x02, 0x00], "CONNACK reserved flag"),
        (&[0x20, 0x02, 0x00, 0x06], "CONNACK code 6"),
        (&[0x90, 0x03, 0, 1, 0x03], "SUBACK code 3"),
        (
            &[0x10, 0x0C, 0, 4, b'M', b'Q', b'T', b'X', 4, 2, 0, 60, 0, 0],
            "protocol name",
        ),
        (
            &[0x10, 0x0C, 0, 4, b'M', b'Q', b'T', b'T', 4, 3, 0, 60, 0, 0],
            "reserved connect flag",
        ),
        (
            &[
                0x10, 0x0C, 0, 4, b'M', b'Q', b'T', b'T', 4, 0x22, 0, 60, 0, 0,
            ],
            "will retain w/o will",
        ),
        (
            &[
                0x10, 0x0C, 0, 4, b'M', b'Q', b'T', b'T', 4, 0x42, 0, 60, 0, 0,
            ],
            "password w/o user",
        ),
        (
            &[
                0x10, 0x0C, 0, 4, b'M', b'Q', b'T', b'T', 4, 0x1E, 0, 60, 0, 0,
            ],
            "will QoS 3",
        ),
        (
            &[
                0x10, 0x0D, 0, 4, b'M', b'Q', b'T', b'T', 4, 2, 0, 60, 0, 0, 9,
            ],
            "trailing byte",
        ),
        (
            &[0x10, 0x0B, 0, 4, b'M', b'Q', b'T', b'T', 4, 2, 0, 60, 0],
            "truncated client id",
        ),
    ];
    for (b, what) in bad {
        assert!(
            decode(b, MAX_PACKET_SIZE).is_err(),
            "{what}: {:?}",
            decode(b, MAX_PACKET_SIZE)
        );
    }
    assert_eq!(
        decode(
            &[0x10, 0x0C, 0, 4, b'M', b'Q', b'T', b'T', 5, 2, 0, 60, 0, 0],
            MAX_PACKET_SIZE
        ),
        Err(DecodeError::UnsupportedProtocolLevel(5))
    );
}

fn topic_name() -> impl Strategy<Value = TopicName> {
    "[a-z$/ é]{1,12}".prop_filter_map("valid", |s| TopicName::new(&s).ok())
}

fn topic_filter() -> impl Strategy<Value = TopicFilter> {
    prop::collection::vec(prop_oneof!["[a-z]{0,4}", Just("+".to_string())], 1..4).prop_flat_map(
        |levels| {
            let base = levels.join("/");
            prop_oneof![Just(base.clone()), Just(format!("{base}/#"))]
                .prop_filter_map("valid", |s| TopicFilter::new(&s).ok())
        },
    )
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

fn bytes(max: usize) -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(any::<u8>(), 0..max)
}

fn packet() -> impl Strategy<Value = Packet> {
    let will =
        (topic_name(), bytes(40), qos(), any::<bool>()).prop_map(|(topic, m, qos, retain)| {
            LastWill {
                topic,
                message: Arc::from(m),
                qos,
                retain,
            }
        });
    let connect = (
        any::<bool>(),
        any::<u16>(),
        "[a-zA-Z0-9-]{0,23}",
        prop::option::of(will),
        prop::option::of(("[a-z]{0,8}", prop::option::of(bytes(12)))),
    )
        .prop_map(|(clean_session, keep_alive, client_id, will, cred)| {
            let (username, password) = match cred {
                Some((u, p)) => (Some(u), p),
                None => (None, None),
            };
            Packet::Connect(Connect {
                protocol: ProtocolLevel::V311,
                clean_session,
                keep_alive,
                client_id,
                will,
                username,
                password,
            })
        });
    let publish = (
        any::<bool>(),
        qos(),
        packet_id(),
        any::<bool>(),
        topic_name(),
        bytes(300),
    )
        .prop_map(|(dup, q, id, retain, topic, payload)| {
            let qos_pid = QosPid::new(q, id);
            Packet::Publish(Publish {
                dup: dup && q != QoS::AtMostOnce,
                qos_pid,
                retain,
                topic,
                payload: Arc::from(payload),
            })
        });
    let code = prop_oneof![
        qos().prop_map(SubAckReturn::Success),
        Just(SubAckReturn::Failure)
    ];
    prop_oneof![
        connect,
        (any::<bool>(), 0u8..=5).prop_map(|(s, c)| Packet::ConnAck(ConnAck {
            session_present: s,
            code: ConnectReturnCode::from_u8(c).expect("0..=5"),
        })),
        publish,
        packet_id().prop_map(|p| Packet::PubAck(Ack { pid: p })),
        packet_id().prop_map(|p| Packet::PubRec(Ack { pid: p })),
        packet_id().prop_map(|p| Packet::PubRel(Ack { pid: p })),
        packet_id().prop_map(|p| Packet::PubComp(Ack { pid: p })),
        (
            packet_id(),
            prop::collection::vec((topic_filter(), qos()), 1..4)
        )
            .prop_map(|(p, filters)| Packet::Subscribe(Subscribe { pid: p, filters })),
        (packet_id(), prop::collection::vec(code, 0..5))
            .prop_map(|(p, codes)| Packet::SubAck(SubAck { pid: p, codes })),
        (packet_id(), prop::collection::vec(topic_filter(), 1..4))
            .prop_map(|(p, filters)| Packet::Unsubscribe(Unsubscribe { pid: p, filters })),
        packet_id().prop_map(|p| Packet::UnsubAck(Ack { pid: p })),
        Just(Packet::PingReq),
        Just(Packet::PingResp),
        Just(Packet::Disconnect),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn round_trip(p in packet()) {
        let b = enc(&p);
        prop_assert_eq!(decode(&b, MAX_PACKET_SIZE), Ok(Some((p.clone(), b.len()))));
        // Every strict prefix is incomplete, never an error.
        for cut in [0, 1, b.len() / 2, b.len() - 1] {
            prop_assert_eq!(decode(&b[..cut], MAX_PACKET_SIZE), Ok(None));
        }
    }

    /// The borrowed view of an encoded packet shows the packet's own
    /// fields, and its owned form is the packet.
    #[test]
    fn view_round_trip(p in packet()) {
        let b = enc(&p);
        let (v, n) = decode_view(&b, MAX_PACKET_SIZE)
            .expect("valid")
            .expect("complete");
        prop_assert_eq!(n, b.len());
        prop_assert_eq!(v.packet_type(), p.packet_type());
        match (v, &p) {
            (PacketView::Connect(v), Packet::Connect(c)) => {
                prop_assert_eq!(v.protocol(), c.protocol);
                prop_assert_eq!(v.clean_session(), c.clean_session);
                prop_assert_eq!(v.keep_alive(), c.keep_alive);
                prop_assert_eq!(v.client_id(), c.client_id.as_str());
                prop_assert_eq!(v.username(), c.username.as_deref());
                prop_assert_eq!(v.password(), c.password.as_deref());
                let will = v.will().map(|w| (w.topic(), w.message(), w.qos(), w.retain()));
                let want = c.will.as_ref().map(|w| (w.topic.as_str(), &w.message[..], w.qos, w.retain));
                prop_assert_eq!(will, want);
            }
            (PacketView::Publish(v), Packet::Publish(q)) => {
                prop_assert_eq!(
                    (v.dup(), v.qos_pid(), v.retain(), v.topic(), v.payload()),
                    (q.dup, q.qos_pid, q.retain, q.topic.as_str(), &q.payload[..])
                );
            }
            (PacketView::Subscribe(v), Packet::Subscribe(s)) => {
                prop_assert_eq!(v.pid(), s.pid);
                let got: Vec<_> = v.filters().collect();
                let want: Vec<_> = s.filters.iter().map(|(f, q)| (f.as_str(), *q)).collect();
                prop_assert_eq!(got, want);
            }
            (PacketView::SubAck(v), Packet::SubAck(s)) => {
                prop_assert_eq!(v.pid(), s.pid);
                prop_assert_eq!(v.codes().collect::<Vec<_>>(), s.codes.clone());
            }
            (PacketView::Unsubscribe(v), Packet::Unsubscribe(u)) => {
                prop_assert_eq!(v.pid(), u.pid);
                let want: Vec<_> = u.filters.iter().map(|f| f.as_str()).collect();
                prop_assert_eq!(v.filters().collect::<Vec<_>>(), want);
            }
            (PacketView::ConnAck(a), Packet::ConnAck(b)) => prop_assert_eq!(a, *b),
            (PacketView::PubAck(a), Packet::PubAck(b))
            | (PacketView::PubRec(a), Packet::PubRec(b))
            | (PacketView::PubRel(a), Packet::PubRel(b))
            | (PacketView::PubComp(a), Packet::PubComp(b))
            | (PacketView::UnsubAck(a), Packet::UnsubAck(b)) => prop_assert_eq!(a, *b),
            (PacketView::PingReq, Packet::PingReq)
            | (PacketView::PingResp, Packet::PingResp)
            | (PacketView::Disconnect, Packet::Disconnect) => {}
            (v, p) => prop_assert!(false, "view {:?} of packet {:?}", v, p),
        }
        prop_assert_eq!(v.to_packet(), p);
    }

    #[test]
    fn arbitrary_bytes_never_panic(b in bytes(200), max in 0usize..300) {
        let mut off = 0;
        while let Ok(Some((_, n))) = decode(&b[off..], max) {
            prop_assert!(n > 0 && off + n <= b.len());
            off += n;
        }
    }

    #[test]
    fn mutated_packets_never_panic(p in packet(), at in any::<prop::sample::Index>(), v in any::<u8>()) {
        let mut b = enc(&p);
        let i = at.index(b.len());
        b[i] = v;
        if let Ok(Some((q, n))) = decode(&b, MAX_PACKET_SIZE) {
            // Whatever decoded re-encodes to the bytes it consumed, unless the
            // mutation only hit a don't-care representation (none in 3.1.1
            // besides a non-minimal varint).
            let mut again = Vec::new();
            q.encode(&mut again).expect("re-encode");
            if again.len() == n {
                prop_assert_eq!(&again[..], &b[..n]);
            }
        }
    }
}
