//! The MQTT 5.0 behaviour of the sans-IO client (`ClientConfig::version =
//! V5`): a scripted fake server feeds it 5.0 bytes made with the codec and
//! decodes what it writes; then interop with a real mosquitto 2.x over TCP.
//!
//! Every packet the client writes is checked to be exactly what
//! `Packet5::encode` writes for the packet it decodes to.

use std::time::Duration;

use qossim::proto::mqtt::socket::ClientDriver;
use qossim::proto::mqtt::v5::{
    self, Ack5, ConnAck5, Packet5, Properties, Publish5, ReasonCode, ReasonOnly, RetainHandling,
    SubAck5, SubOptions,
};
use qossim::proto::mqtt::{
    Client, ClientConfig, ClientError, ClientEvent, ClientState, DropReason, LostReason,
    MqttVersion, PacketId, PacketType, QoS, QosPid, TopicFilter, TopicName,
};
use qossim::proto::StreamInput;
use qossim::sim::{SimDuration, SimRng, SimTime};

mod common;

use common::peers::{peer_binary, start_mosquitto};

fn cfg5(id: &str) -> ClientConfig {
    ClientConfig {
        version: MqttVersion::V5,
        ..ClientConfig::new(id)
    }
}

fn topic(s: &str) -> TopicName {
    TopicName::new(s).expect("topic")
}

fn filter(s: &str) -> TopicFilter {
    TopicFilter::new(s).expect("filter")
}

fn pid(v: u16) -> PacketId {
    PacketId::new(v).expect("pid")
}

fn connack(props: Properties) -> Packet5 {
    Packet5::ConnAck(ConnAck5 {
        session_present: false,
        reason: ReasonCode::SUCCESS,
        props,
    })
}

/// A client and the fake server's view of it.
struct Fake {
    c: Client,
    now: SimTime,
    events: Vec<ClientEvent>,
}

impl Fake {
    fn new(cfg: ClientConfig) -> Fake {
        Fake {
            c: Client::new(cfg, SimRng::stream(7, "mqtt5")),
            now: SimTime::ZERO,
            events: Vec::new(),
        }
    }

    /// What the client writes now, each packet decoded; every one must be
    /// exactly `Packet5::encode`'s bytes and `ClientTransmit::len` long.
    fn sent(&mut self) -> Vec<(Packet5, Vec<u8>)> {
        let mut out = Vec::new();
        loop {
            let mut buf = Vec::new();
            let Some(t) = self.c.poll_transmit(self.now, &mut buf) else {
                break;
            };
            assert_eq!(t.len, buf.len(), "ClientTransmit::len");
            let (p, n) = v5::decode(&buf, usize::MAX)
                .expect("client bytes decode as 5.0")
                .expect("a whole packet");
            assert_eq!(n, buf.len(), "one packet per transmit");
            let mut again = Vec::new();
            p.encode(&mut again).expect("re-encode");
            assert_eq!(again, buf, "bytes are Packet5::encode's for {p:?}");
            assert_eq!(Some(t.kind), PacketType::from_u8(p.type_number()));
            out.push((p, buf));
        }
        while let Some(e) = self.c.poll_event() {
            self.events.push(e);
        }
        out
    }

    fn packets(&mut self) -> Vec<Packet5> {
        self.sent().into_iter().map(|(p, _)| p).collect()
    }

    fn feed(&mut self, p: &Packet5) {
        let mut buf = Vec::new();
        p.encode(&mut buf).expect("encode server packet");
        self.c.handle_input(self.now, StreamInput::Bytes(&buf));
    }

    /// Connect: returns the CONNECT the client sent, after the server's
    /// CONNACK with `props` was fed.
    fn connect(&mut self, props: Properties) -> v5::Connect5 {
        self.c.connect();
        assert!(self.sent().is_empty());
        assert_eq!(self.events.pop(), Some(ClientEvent::OpenTransport));
        self.c.handle_input(self.now, StreamInput::Connected);
        let mut sent = self.packets();
        assert_eq!(sent.len(), 1);
        let Some(Packet5::Connect(c)) = sent.pop() else {
            panic!("first packet is CONNECT");
        };
        self.feed(&connack(props));
        assert!(self.c.is_connected(), "connected after CONNACK");
        c
    }

    fn advance(&mut self, d: SimDuration) {
        self.now += d;
        while let Some(t) = self.c.poll_timeout() {
            if t > self.now {
                break;
            }
            self.c.handle_timeout(self.now);
        }
    }

    fn take_events(&mut self) -> Vec<ClientEvent> {
        self.sent_keep();
        std::mem::take(&mut self.events)
    }

    /// Collect events without dropping transmissions: only when nothing
    /// is waiting to be sent.
    fn sent_keep(&mut self) {
        while let Some(e) = self.c.poll_event() {
            self.events.push(e);
        }
    }
}

fn publishes(ps: &[Packet5]) -> Vec<&Publish5> {
    ps.iter()
        .filter_map(|p| match p {
            Packet5::Publish(p) => Some(p),
            _ => None,
        })
        .collect()
}

#[test]
fn connect_is_level_5_with_the_configured_properties() {
    let cfg = ClientConfig {
        clean_session: false,
        session_expiry_interval: 60,
        receive_maximum: 10,
        topic_alias_maximum: 5,
        max_packet_size: 4096,
        request_response_information: true,
        connect_user_properties: vec![("k".into(), "v".into())],
        ..cfg5("c5")
    };
    let mut f = Fake::new(cfg);
    f.c.connect();
    f.sent();
    f.c.handle_input(f.now, StreamInput::Connected);
    let sent = f.sent();
    let (Packet5::Connect(c), bytes) = &sent[0] else {
        panic!("CONNECT expected, got {sent:?}");
    };
    assert_eq!(v5::connect_protocol_level(bytes), Some(5));
    assert!(!c.clean_start);
    assert_eq!(c.client_id, "c5");
    assert_eq!(c.keep_alive, 60);
    let want = Properties {
        session_expiry_interval: Some(60),
        receive_maximum: Some(10),
        topic_alias_maximum: Some(5),
        maximum_packet_size: Some(4096),
        request_response_information: Some(1),
        user_properties: vec![("k".into(), "v".into())],
        ..Properties::default()
    };
    assert_eq!(c.props, want);

    // the default config is still 3.1.1 (level 4)
    let mut c3 = Client::new(ClientConfig::new("c3"), SimRng::stream(7, "c3"));
    c3.connect();
    c3.handle_input(SimTime::ZERO, StreamInput::Connected);
    let mut buf = Vec::new();
    c3.poll_transmit(SimTime::ZERO, &mut buf).expect("CONNECT");
    assert_eq!(v5::connect_protocol_level(&buf), Some(4));
}

#[test]
fn default_5_connect_has_no_properties() {
    let mut f = Fake::new(cfg5("plain"));
    let c = f.connect(Properties::default());
    assert!(c.props.is_empty(), "{:?}", c.props);
    assert!(c.clean_start);
}

#[test]
fn server_receive_maximum_caps_the_in_flight_publishes() {
    let mut f = Fake::new(cfg5("rm"));
    f.connect(Properties {
        receive_maximum: Some(2),
        ..Properties::default()
    });
    for i in 0..5u8 {
        f.c.publish(f.now, topic("t"), vec![i], QoS::AtLeastOnce, false)
            .expect("publish");
    }
    let ps = f.packets();
    let pubs = publishes(&ps);
    assert_eq!(pubs.len(), 2, "only Receive Maximum = 2 in flight");
    assert_eq!((f.c.inflight_len(), f.c.queued_len()), (2, 3));
    let first = pubs[0].qos_pid.pid().expect("pid");
    f.feed(&Packet5::PubAck(Ack5::ok(first)));
    let ps = f.packets();
    assert_eq!(publishes(&ps).len(), 1, "one ack frees one slot");
    assert_eq!((f.c.inflight_len(), f.c.queued_len()), (2, 2));
    // QoS 0 is not counted against it
    let mut f = Fake::new(cfg5("rm0"));
    f.connect(Properties {
        receive_maximum: Some(1),
        ..Properties::default()
    });
    f.c.publish(f.now, topic("t"), vec![1], QoS::AtLeastOnce, false)
        .expect("publish");
    assert_eq!(publishes(&f.packets()).len(), 1);
    f.c.publish(f.now, topic("t"), vec![2], QoS::AtLeastOnce, false)
        .expect("publish");
    assert!(publishes(&f.packets()).is_empty());
}

#[test]
fn topic_alias_first_publish_sends_topic_later_ones_only_the_alias() {
    let t = "building/7/floor/3/room/12/temperature";
    let mut f = Fake::new(ClientConfig {
        topic_aliases_out: 8,
        ..cfg5("alias")
    });
    f.connect(Properties {
        topic_alias_maximum: Some(2),
        ..Properties::default()
    });
    assert_eq!(f.c.server_limits().topic_alias_maximum, 2);
    for _ in 0..3 {
        f.c.publish(f.now, topic(t), b"21.5".to_vec(), QoS::AtMostOnce, false)
            .expect("publish");
    }
    let sent = f.sent();
    assert_eq!(sent.len(), 3);
    let (Packet5::Publish(p1), b1) = &sent[0] else {
        panic!("PUBLISH")
    };
    let (Packet5::Publish(p2), b2) = &sent[1] else {
        panic!("PUBLISH")
    };
    assert_eq!(p1.topic.as_ref().map(|t| t.as_str()), Some(t));
    assert_eq!(p1.props.topic_alias, Some(1));
    assert_eq!(p2.topic, None, "later PUBLISH: empty topic");
    assert_eq!(p2.props.topic_alias, Some(1));
    // first: 2-byte length + topic + property length 1 + alias property 3;
    // later: 2-byte empty topic + 1 + 3: the topic's bytes are saved
    assert_eq!(b1.len() - b2.len(), t.len());
    // PUBLISH fixed header 2, topic 2 + 0, props 1 + 3, payload 4
    assert_eq!(b2.len(), 2 + 2 + 1 + 3 + 4);
    let st = f.c.stats();
    assert_eq!(st.topic_alias_hits, 2);
    assert_eq!(st.topic_alias_bytes_saved, 2 * t.len() as u64);

    // the server's maximum (2) bounds ours (8): a third topic goes without
    for s in ["a/1", "a/2", "a/3", "a/3"] {
        f.c.publish(f.now, topic(s), vec![0], QoS::AtMostOnce, false)
            .expect("publish");
    }
    let ps = f.packets();
    let aliases: Vec<_> = publishes(&ps)
        .iter()
        .map(|p| (p.topic.clone(), p.props.topic_alias))
        .collect();
    assert_eq!(
        aliases,
        vec![
            (Some(topic("a/1")), Some(2)),
            (Some(topic("a/2")), None),
            (Some(topic("a/3")), None),
            (Some(topic("a/3")), None),
        ]
    );

    // aliases do not outlive the connection: after a reconnect the topic
    // is sent again with its alias
    f.c.handle_input(f.now, StreamInput::Closed);
    f.take_events();
    f.advance(SimDuration::from_secs(120));
    f.sent();
    f.c.handle_input(f.now, StreamInput::Connected);
    f.sent();
    f.feed(&connack(Properties {
        topic_alias_maximum: Some(2),
        ..Properties::default()
    }));
    f.c.publish(f.now, topic(t), vec![1], QoS::AtMostOnce, false)
        .expect("publish");
    let ps = f.packets();
    let p = publishes(&ps)[0];
    assert_eq!((p.topic.is_some(), p.props.topic_alias), (true, Some(1)));
}

#[test]
fn no_aliases_without_the_servers_topic_alias_maximum() {
    let mut f = Fake::new(ClientConfig {
        topic_aliases_out: 8,
        ..cfg5("noalias")
    });
    f.connect(Properties::default());
    for _ in 0..2 {
        f.c.publish(f.now, topic("x/y"), vec![0], QoS::AtMostOnce, false)
            .expect("publish");
    }
    let ps = f.packets();
    assert!(publishes(&ps)
        .iter()
        .all(|p| p.props.topic_alias.is_none() && p.topic.is_some()));
}

#[test]
fn publish_over_the_servers_maximum_packet_size_is_not_sent() {
    let mut f = Fake::new(cfg5("mps"));
    f.connect(Properties {
        maximum_packet_size: Some(100),
        ..Properties::default()
    });
    let big =
        f.c.publish(f.now, topic("t"), vec![0u8; 200], QoS::AtLeastOnce, false)
            .expect("accepted locally");
    let small =
        f.c.publish(f.now, topic("t"), vec![0u8; 10], QoS::AtLeastOnce, false)
            .expect("publish");
    let sent = f.sent();
    assert_eq!(sent.len(), 1, "only the small PUBLISH leaves");
    assert!(sent[0].1.len() <= 100);
    let ev: Vec<_> = f.take_events();
    assert!(ev.iter().any(|e| matches!(
        e,
        ClientEvent::PublishDropped { handle, reason: DropReason::TooLarge { len, limit: 100 } }
            if *handle == big && *len > 200
    )));
    assert_eq!(f.c.stats().publishes_too_large, 1);
    assert_eq!(f.c.inflight_len(), 1);
    let _ = small;
}

#[test]
fn server_keep_alive_replaces_ours() {
    let mut f = Fake::new(ClientConfig {
        keep_alive: 60,
        ..cfg5("ka")
    });
    f.connect(Properties {
        server_keep_alive: Some(5),
        ..Properties::default()
    });
    assert_eq!(f.c.keep_alive(), 5);
    f.advance(SimDuration::from_secs(4));
    assert!(f.packets().is_empty(), "nothing before 5 s");
    f.advance(SimDuration::from_secs(1));
    assert_eq!(
        f.packets(),
        vec![Packet5::PingReq],
        "PINGREQ after 5 s, not 60"
    );
    f.feed(&Packet5::PingResp);
    f.advance(SimDuration::from_secs(5));
    assert_eq!(f.packets(), vec![Packet5::PingReq]);
}

#[test]
fn assigned_client_identifier_is_used_on_reconnect() {
    let mut f = Fake::new(cfg5(""));
    let c = f.connect(Properties {
        assigned_client_identifier: Some("auto-42".into()),
        ..Properties::default()
    });
    assert_eq!(c.client_id, "");
    assert_eq!(f.c.assigned_client_id(), Some("auto-42"));
    f.c.handle_input(f.now, StreamInput::Closed);
    f.take_events();
    f.advance(SimDuration::from_secs(120));
    f.sent();
    assert!(f.events.contains(&ClientEvent::OpenTransport));
    f.c.handle_input(f.now, StreamInput::Connected);
    let ps = f.packets();
    let Some(Packet5::Connect(c)) = ps.first() else {
        panic!("CONNECT")
    };
    assert_eq!(c.client_id, "auto-42");
}

#[test]
fn subscribe_options_identifier_and_suback_0x87() {
    let mut f = Fake::new(cfg5("sub"));
    f.connect(Properties::default());
    let opts = SubOptions {
        qos: QoS::AtLeastOnce,
        no_local: true,
        retain_as_published: true,
        retain_handling: RetainHandling::DoNotSend,
    };
    let h =
        f.c.subscribe5(
            f.now,
            vec![
                (filter("a/#"), opts),
                (filter("secret/#"), SubOptions::qos(QoS::ExactlyOnce)),
            ],
            Some(7),
            vec![("u".into(), "p".into())],
        )
        .expect("subscribe");
    let ps = f.packets();
    let Some(Packet5::Subscribe(s)) = ps.first() else {
        panic!("SUBSCRIBE")
    };
    assert_eq!(s.filters[0], (filter("a/#"), opts));
    assert_eq!(s.props.subscription_identifiers, vec![7]);
    assert_eq!(s.props.user_properties, vec![("u".into(), "p".into())]);
    f.feed(&Packet5::SubAck(SubAck5 {
        pid: s.pid,
        props: Properties::default(),
        reasons: vec![ReasonCode::GRANTED_QOS_1, ReasonCode::NOT_AUTHORIZED],
    }));
    assert!(f.take_events().contains(&ClientEvent::Subscribed5 {
        handle: h,
        reasons: vec![ReasonCode(0x01), ReasonCode(0x87)],
    }));
    assert_eq!(
        f.c.subscribe5(f.now, vec![(filter("x"), opts)], Some(0), vec![]),
        Err(ClientError::SubscriptionIdentifier(0))
    );
    // the 3.1.1 API maps to options of just the QoS
    f.c.subscribe(f.now, vec![(filter("b"), QoS::AtMostOnce)])
        .expect("subscribe");
    let ps = f.packets();
    let Some(Packet5::Subscribe(s)) = ps.first() else {
        panic!("SUBSCRIBE")
    };
    assert_eq!(
        s.filters,
        vec![(filter("b"), SubOptions::qos(QoS::AtMostOnce))]
    );
    assert!(s.props.is_empty());
}

#[test]
fn server_disconnect_0x8e_is_reported_then_reconnects() {
    let mut f = Fake::new(cfg5("taken"));
    f.connect(Properties::default());
    f.take_events();
    f.feed(&Packet5::Disconnect(ReasonOnly {
        reason: ReasonCode::SESSION_TAKEN_OVER,
        props: Properties {
            reason_string: Some("another connection".into()),
            ..Properties::default()
        },
    }));
    assert!(f.packets().is_empty(), "nothing answers a DISCONNECT");
    let ev = std::mem::take(&mut f.events);
    assert!(ev.contains(&ClientEvent::CloseTransport));
    let lost = ev.iter().find_map(|e| match e {
        ClientEvent::ConnectionLost {
            reason,
            reconnect_at,
        } => Some((reason.clone(), *reconnect_at)),
        _ => None,
    });
    let Some((LostReason::ServerDisconnect { reason, props }, Some(_))) = lost else {
        panic!("ConnectionLost with the server's reason and a reconnect: {ev:?}");
    };
    assert_eq!(reason, ReasonCode(0x8E));
    assert_eq!(props.reason_string.as_deref(), Some("another connection"));
    assert_eq!(f.c.state(), ClientState::Backoff);
}

#[test]
fn inbound_topic_alias_is_mapped() {
    let mut f = Fake::new(ClientConfig {
        topic_alias_maximum: 3,
        ..cfg5("in")
    });
    f.connect(Properties::default());
    f.take_events();
    let publish = |t: Option<&str>, alias: u16, payload: &[u8]| {
        Packet5::Publish(Publish5 {
            dup: false,
            qos_pid: QosPid::AtLeastOnce(pid(u16::from(payload[0]))),
            retain: false,
            topic: t.map(topic),
            props: Properties {
                topic_alias: Some(alias),
                ..Properties::default()
            },
            payload: payload.to_vec().into(),
        })
    };
    f.feed(&publish(Some("s/1"), 2, b"\x01"));
    f.feed(&publish(None, 2, b"\x02"));
    f.feed(&publish(Some("s/2"), 2, b"\x03")); // remapped
    f.feed(&publish(None, 2, b"\x04"));
    assert_eq!(
        f.packets(),
        (1..=4)
            .map(|i| Packet5::PubAck(Ack5::ok(pid(i))))
            .collect::<Vec<_>>()
    );
    let got: Vec<_> = f
        .take_events()
        .into_iter()
        .filter_map(|e| match e {
            ClientEvent::Message5 { topic, props, .. } => {
                assert_eq!(props.topic_alias, None, "alias consumed");
                Some(topic.to_string())
            }
            _ => None,
        })
        .collect();
    assert_eq!(got, ["s/1", "s/1", "s/2", "s/2"]);
}

#[test]
fn server_exceeding_our_receive_maximum_is_disconnected_0x93() {
    let mut f = Fake::new(ClientConfig {
        receive_maximum: 2,
        ..cfg5("rx")
    });
    let c = f.connect(Properties::default());
    assert_eq!(c.props.receive_maximum, Some(2));
    f.take_events();
    let qos2 = |i: u16| {
        Packet5::Publish(Publish5 {
            dup: false,
            qos_pid: QosPid::ExactlyOnce(pid(i)),
            retain: false,
            topic: Some(topic("t")),
            props: Properties::default(),
            payload: vec![1].into(),
        })
    };
    f.feed(&qos2(1));
    f.feed(&qos2(2));
    // PUBREL for 1 frees a slot: 3 is within the maximum
    f.feed(&Packet5::PubRel(Ack5::ok(pid(1))));
    f.feed(&qos2(3));
    assert!(f.c.is_connected());
    f.feed(&qos2(4)); // 2 and 3 unreleased: a third is one too many
    let ps = f.packets();
    assert_eq!(
        ps.last(),
        Some(&Packet5::Disconnect(ReasonOnly {
            reason: ReasonCode::RECEIVE_MAXIMUM_EXCEEDED,
            props: Properties::default(),
        }))
    );
    assert!(!f.c.is_connected());
}

#[test]
fn malformed_server_bytes_get_disconnect_with_the_codecs_reason() {
    let mut f = Fake::new(cfg5("mal"));
    f.connect(Properties::default());
    f.take_events();
    // PUBACK (0x40) with remaining length 4: pid 1, reason 0, then a
    // property length of 2 with no property bytes left in the packet:
    // malformed.
    f.c.handle_input(
        f.now,
        StreamInput::Bytes(&[0x40, 0x04, 0x00, 0x01, 0x00, 0x02]),
    );
    let ps = f.packets();
    let [Packet5::Disconnect(d)] = &ps[..] else {
        panic!("one DISCONNECT expected, got {ps:?}");
    };
    assert!(d.reason.is_failure(), "{}", d.reason);
    assert!(f.events.iter().any(|e| matches!(
        e,
        ClientEvent::ConnectionLost {
            reason: LostReason::ClientDisconnect { reason, .. },
            ..
        } if *reason == d.reason
    )));
    assert_eq!(f.c.stats().protocol_errors, 1);
}

fn expect_disconnect_0x94(f: &mut Fake) {
    let ps = f.packets();
    assert_eq!(
        ps,
        vec![Packet5::Disconnect(ReasonOnly {
            reason: ReasonCode::TOPIC_ALIAS_INVALID,
            props: Properties::default(),
        })]
    );
    let ev = std::mem::take(&mut f.events);
    assert!(ev.contains(&ClientEvent::CloseTransport));
    assert!(ev.iter().any(|e| matches!(
        e,
        ClientEvent::ConnectionLost {
            reason: LostReason::ClientDisconnect {
                reason: ReasonCode(0x94),
                ..
            },
            ..
        }
    )));
    assert!(!f.c.is_connected());
    assert_eq!(f.c.stats().protocol_errors, 1);
}

#[test]
fn inbound_alias_above_our_maximum_disconnects_0x94() {
    let mut f = Fake::new(ClientConfig {
        topic_alias_maximum: 3,
        ..cfg5("bad")
    });
    f.connect(Properties::default());
    f.take_events();
    f.feed(&Packet5::Publish(Publish5 {
        dup: false,
        qos_pid: QosPid::AtMostOnce,
        retain: false,
        topic: Some(topic("t")),
        props: Properties {
            topic_alias: Some(4),
            ..Properties::default()
        },
        payload: vec![1].into(),
    }));
    expect_disconnect_0x94(&mut f);
}

#[test]
fn inbound_unknown_alias_with_empty_topic_disconnects_0x94() {
    let mut f = Fake::new(ClientConfig {
        topic_alias_maximum: 3,
        ..cfg5("unknown")
    });
    f.connect(Properties::default());
    f.take_events();
    f.feed(&Packet5::Publish(Publish5 {
        dup: false,
        qos_pid: QosPid::AtMostOnce,
        retain: false,
        topic: None,
        props: Properties {
            topic_alias: Some(1),
            ..Properties::default()
        },
        payload: vec![1].into(),
    }));
    expect_disconnect_0x94(&mut f);
}

#[test]
fn puback_and_pubrec_failure_reasons_end_the_flow() {
    let mut f = Fake::new(cfg5("fail"));
    f.connect(Properties::default());
    let h1 =
        f.c.publish(f.now, topic("t"), vec![1], QoS::AtLeastOnce, false)
            .expect("publish");
    let h2 =
        f.c.publish(f.now, topic("t"), vec![2], QoS::ExactlyOnce, false)
            .expect("publish");
    let h3 =
        f.c.publish(f.now, topic("t"), vec![3], QoS::ExactlyOnce, false)
            .expect("publish");
    let ps = f.packets();
    let pids: Vec<PacketId> = publishes(&ps)
        .iter()
        .filter_map(|p| p.qos_pid.pid())
        .collect();
    f.take_events();
    let nack = |p, r| Ack5 {
        pid: p,
        reason: ReasonCode(r),
        props: Properties::default(),
    };
    f.feed(&Packet5::PubAck(nack(pids[0], 0x87)));
    f.feed(&Packet5::PubRec(nack(pids[1], 0x97)));
    // 0x10 No matching subscribers is a success: PUBREL follows
    f.feed(&Packet5::PubRec(nack(pids[2], 0x10)));
    assert_eq!(
        f.packets(),
        vec![Packet5::PubRel(Ack5::ok(pids[2]))],
        "no PUBREL after a failed PUBREC"
    );
    let ev = f.take_events();
    assert!(ev.contains(&ClientEvent::PublishFailed {
        handle: h1,
        reason: ReasonCode(0x87)
    }));
    assert!(ev.contains(&ClientEvent::PublishFailed {
        handle: h2,
        reason: ReasonCode(0x97)
    }));
    assert_eq!(f.c.stats().publishes_failed, 2);
    assert_eq!(f.c.inflight_len(), 1);
    // PUBCOMP 0x92 still ends the flow (the server took it at PUBREC)
    f.feed(&Packet5::PubComp(nack(pids[2], 0x92)));
    assert!(f
        .take_events()
        .contains(&ClientEvent::PublishAcked { handle: h3 }));
    assert_eq!(f.c.inflight_len(), 0);
}

#[test]
fn pubrel_for_an_unknown_id_gets_pubcomp_0x92() {
    let mut f = Fake::new(cfg5("rel"));
    f.connect(Properties::default());
    f.feed(&Packet5::Publish(Publish5 {
        dup: false,
        qos_pid: QosPid::ExactlyOnce(pid(9)),
        retain: false,
        topic: Some(topic("t")),
        props: Properties::default(),
        payload: vec![1].into(),
    }));
    assert_eq!(f.packets(), vec![Packet5::PubRec(Ack5::ok(pid(9)))]);
    f.feed(&Packet5::PubRel(Ack5::ok(pid(9))));
    assert_eq!(f.packets(), vec![Packet5::PubComp(Ack5::ok(pid(9)))]);
    f.feed(&Packet5::PubRel(Ack5::ok(pid(9))));
    assert_eq!(
        f.packets(),
        vec![Packet5::PubComp(Ack5 {
            pid: pid(9),
            reason: ReasonCode::PACKET_IDENTIFIER_NOT_FOUND,
            props: Properties::default(),
        })]
    );
}

#[test]
fn connack_refusal_carries_the_reason() {
    let mut f = Fake::new(cfg5("refused"));
    f.c.connect();
    f.sent();
    f.c.handle_input(f.now, StreamInput::Connected);
    f.sent();
    f.events.clear();
    f.feed(&Packet5::ConnAck(ConnAck5 {
        session_present: false,
        reason: ReasonCode::BAD_USER_NAME_OR_PASSWORD,
        props: Properties::default(),
    }));
    let ev = f.take_events();
    assert!(ev.contains(&ClientEvent::ConnectRefused5 {
        reason: ReasonCode(0x86),
        props: Properties::default()
    }));
    assert_eq!(f.c.state(), ClientState::Idle, "not retried");
    // a busy server is retried
    let mut f = Fake::new(cfg5("busy"));
    f.c.connect();
    f.sent();
    f.c.handle_input(f.now, StreamInput::Connected);
    f.sent();
    f.feed(&Packet5::ConnAck(ConnAck5 {
        session_present: false,
        reason: ReasonCode::SERVER_BUSY,
        props: Properties::default(),
    }));
    assert_eq!(f.c.state(), ClientState::Backoff);
}

#[test]
fn maximum_qos_downgrades_and_retain_unavailable_drops() {
    let mut f = Fake::new(cfg5("mq"));
    f.connect(Properties {
        maximum_qos: Some(0),
        retain_available: Some(0),
        ..Properties::default()
    });
    f.c.publish(f.now, topic("t"), vec![1], QoS::ExactlyOnce, false)
        .expect("publish");
    let r =
        f.c.publish(f.now, topic("t"), vec![2], QoS::AtMostOnce, true)
            .expect("publish");
    let ps = f.packets();
    let pubs = publishes(&ps);
    assert_eq!(pubs.len(), 1);
    assert_eq!(
        pubs[0].qos_pid,
        QosPid::AtMostOnce,
        "QoS 2 sent at Maximum QoS 0"
    );
    assert_eq!(f.c.stats().qos_downgraded, 1);
    assert!(f.take_events().contains(&ClientEvent::PublishDropped {
        handle: r,
        reason: DropReason::RetainNotAvailable
    }));
}

#[test]
fn queued_messages_expire_and_carry_the_time_left() {
    let mut f = Fake::new(cfg5("exp"));
    let props = |s| Properties {
        message_expiry_interval: Some(s),
        ..Properties::default()
    };
    let gone =
        f.c.publish5(
            f.now,
            topic("t"),
            vec![1],
            QoS::AtLeastOnce,
            false,
            props(5),
        )
        .expect("queued");
    f.c.publish5(
        f.now,
        topic("t"),
        vec![2],
        QoS::AtLeastOnce,
        false,
        props(30),
    )
    .expect("queued");
    assert_eq!(f.c.queued_len(), 2);
    f.now += SimDuration::from_millis(10_500);
    f.connect(Properties::default());
    let ps = f.packets();
    let pubs = publishes(&ps);
    assert_eq!(pubs.len(), 1, "the expired one is not sent");
    assert_eq!(&pubs[0].payload[..], [2]);
    assert_eq!(
        pubs[0].props.message_expiry_interval,
        Some(20),
        "30 s less 10 s waited"
    );
    assert!(f.take_events().contains(&ClientEvent::PublishDropped {
        handle: gone,
        reason: DropReason::Expired
    }));
    assert_eq!(f.c.stats().messages_expired, 1);
}

#[test]
fn request_response_properties_go_out_and_come_in() {
    let mut f = Fake::new(cfg5("rr"));
    f.connect(Properties::default());
    let props = Properties {
        response_topic: Some("reply/rr".into()),
        correlation_data: Some(vec![0xDE, 0xAD]),
        content_type: Some("application/json".into()),
        payload_format_indicator: Some(1),
        message_expiry_interval: Some(60),
        user_properties: vec![("a".into(), "1".into()), ("a".into(), "2".into())],
        ..Properties::default()
    };
    f.c.publish5(
        f.now,
        topic("req"),
        b"{}".to_vec(),
        QoS::AtLeastOnce,
        false,
        props.clone(),
    )
    .expect("publish");
    let ps = f.packets();
    assert_eq!(publishes(&ps)[0].props, props);
    // refused: a Topic Alias (the client's own), a wildcard response topic
    let alias = Properties {
        topic_alias: Some(1),
        ..Properties::default()
    };
    assert!(matches!(
        f.c.publish5(f.now, topic("req"), vec![], QoS::AtMostOnce, false, alias),
        Err(ClientError::PropertyNotAllowed(_))
    ));
    let wild = Properties {
        response_topic: Some("reply/#".into()),
        ..Properties::default()
    };
    assert!(matches!(
        f.c.publish5(f.now, topic("req"), vec![], QoS::AtMostOnce, false, wild),
        Err(ClientError::PropertyNotAllowed(_))
    ));
    f.take_events();
    let mut inbound = props.clone();
    inbound.subscription_identifiers = vec![3];
    f.feed(&Packet5::Publish(Publish5 {
        dup: false,
        qos_pid: QosPid::AtMostOnce,
        retain: false,
        topic: Some(topic("req")),
        props: inbound.clone(),
        payload: b"{}".to_vec().into(),
    }));
    let got = f.take_events().into_iter().find_map(|e| match e {
        ClientEvent::Message5 { props, .. } => Some(props),
        _ => None,
    });
    assert_eq!(got, Some(inbound));
    // 3.1.1 clients have no properties
    let mut c3 = Client::new(ClientConfig::new("c3"), SimRng::stream(7, "c3"));
    assert!(matches!(
        c3.publish5(
            SimTime::ZERO,
            topic("t"),
            vec![],
            QoS::AtMostOnce,
            false,
            props
        ),
        Err(ClientError::Needs5(_))
    ));
}

#[test]
fn disconnect_may_carry_a_session_expiry() {
    let mut f = Fake::new(ClientConfig {
        session_expiry_interval: 60,
        clean_session: false,
        ..cfg5("dis")
    });
    f.connect(Properties::default());
    f.c.disconnect5(Some(0)).expect("disconnect");
    assert_eq!(
        f.packets(),
        vec![Packet5::Disconnect(ReasonOnly {
            reason: ReasonCode::NORMAL_DISCONNECTION,
            props: Properties {
                session_expiry_interval: Some(0),
                ..Properties::default()
            },
        })]
    );
    assert!(f.events.contains(&ClientEvent::Disconnected));
    // [MQTT-3.14.2-2]: not after a CONNECT with expiry 0
    let mut f = Fake::new(cfg5("dis0"));
    f.connect(Properties::default());
    assert_eq!(
        f.c.disconnect5(Some(30)),
        Err(ClientError::SessionExpiryOnDisconnect)
    );
    f.c.disconnect();
    assert_eq!(
        f.packets(),
        vec![Packet5::Disconnect(ReasonOnly::default())],
        "plain DISCONNECT: remaining length 0"
    );
}

// ---------------------------------------------------------------------------
// Interop with mosquitto 2.x (MQTT 5.0), through the socket driver.

fn driver(cfg: ClientConfig, addr: std::net::SocketAddrV4) -> ClientDriver {
    let seed = cfg.client_id.clone();
    ClientDriver::tcp(
        Client::new(
            ClientConfig {
                reconnect: None,
                ..cfg
            },
            SimRng::stream(1, &seed),
        ),
        addr,
    )
}

fn connect5(d: &mut ClientDriver) -> bool {
    d.connect().expect("connect");
    d.run_until(Duration::from_secs(5), |e| match e {
        ClientEvent::Connected { session_present } => Some(*session_present),
        ClientEvent::ConnectRefused5 { reason, .. } => panic!("refused: {reason}"),
        ClientEvent::ConnectionLost { reason, .. } => panic!("lost before CONNACK: {reason:?}"),
        _ => None,
    })
    .expect("CONNACK within 5 s")
}

fn suback5(d: &mut ClientDriver) -> Vec<ReasonCode> {
    d.run_until(Duration::from_secs(5), |e| match e {
        ClientEvent::Subscribed5 { reasons, .. } => Some(reasons.clone()),
        _ => None,
    })
    .expect("SUBACK within 5 s")
}

#[test]
fn mosquitto_5_own_publishes_qos_0_1_2_with_topic_aliases() {
    let Some(bin) = peer_binary("mosquitto", "install Debian package mosquitto") else {
        return;
    };
    let broker = start_mosquitto(&bin);
    let mut d = driver(
        ClientConfig {
            topic_aliases_out: 4,
            topic_alias_maximum: 4,
            ..cfg5("qossim-v5-own")
        },
        broker.addr,
    );
    assert!(!connect5(&mut d));
    assert_eq!(
        d.core().server_limits().topic_alias_maximum,
        10,
        "mosquitto's default Topic Alias Maximum"
    );
    d.subscribe5(
        vec![(filter("qossim/v5/#"), SubOptions::qos(QoS::ExactlyOnce))],
        Some(11),
    )
    .expect("subscribe");
    assert_eq!(suback5(&mut d), vec![ReasonCode::GRANTED_QOS_2]);
    let t = "qossim/v5/interop/alias";
    for (i, qos) in [QoS::AtMostOnce, QoS::AtLeastOnce, QoS::ExactlyOnce]
        .into_iter()
        .enumerate()
    {
        let props = Properties {
            correlation_data: Some(vec![i as u8]),
            user_properties: vec![("n".into(), i.to_string())],
            ..Properties::default()
        };
        d.publish5(topic(t), &[i as u8], qos, false, props)
            .expect("publish");
    }
    let mut got = Vec::new();
    let mut acked = 0;
    while got.len() < 3 || acked < 2 {
        let e = d
            .run_until(Duration::from_secs(5), |e| match e {
                ClientEvent::Message5 { .. } | ClientEvent::PublishAcked { .. } => Some(e.clone()),
                ClientEvent::PublishFailed { .. } | ClientEvent::ConnectionLost { .. } => {
                    panic!("{e:?}")
                }
                _ => None,
            })
            .unwrap_or_else(|err| {
                panic!(
                    "{err}: {} messages, {acked} acks; log:\n{}",
                    got.len(),
                    broker.log()
                )
            });
        match e {
            ClientEvent::Message5 {
                topic,
                payload,
                qos,
                props,
                ..
            } => got.push((topic.to_string(), payload.to_vec(), qos, props)),
            _ => acked += 1,
        }
    }
    got.sort_by_key(|g| g.1.clone());
    for (i, (tp, payload, qos, props)) in got.iter().enumerate() {
        assert_eq!(tp, t);
        assert_eq!(payload, &vec![i as u8]);
        assert_eq!(qos.as_u8(), i as u8);
        assert_eq!(props.correlation_data, Some(vec![i as u8]));
        assert_eq!(props.user_properties, vec![("n".into(), i.to_string())]);
        assert_eq!(props.subscription_identifiers, vec![11]);
    }
    let st = d.core().stats();
    assert_eq!(st.topic_alias_hits, 2, "2nd and 3rd PUBLISH by alias only");
    assert_eq!(st.topic_alias_bytes_saved, 2 * t.len() as u64);
    assert_eq!(st.protocol_errors, 0);
    d.disconnect().expect("disconnect");
}

/// Wait (at most 5 s) until mosquitto's log shows `needle` `n` times:
/// it handles sockets in its own order, so a CONNECT on a new connection
/// may otherwise overtake the DISCONNECT sent just before on the old one
/// (a takeover, which keeps the session).
fn wait_log(broker: &common::peers::Mosquitto, needle: &str, n: usize) {
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while broker.log().matches(needle).count() < n {
        assert!(
            std::time::Instant::now() < deadline,
            "mosquitto did not log {needle:?} {n} times within 5 s; log:\n{}",
            broker.log()
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn mosquitto_5_persistent_session_keeps_messages_while_offline() {
    let Some(bin) = peer_binary("mosquitto", "install Debian package mosquitto") else {
        return;
    };
    let broker = start_mosquitto(&bin);
    let persistent = ClientConfig {
        clean_session: false,
        session_expiry_interval: 60,
        ..cfg5("qossim-v5-persist")
    };
    let mut sub = driver(persistent.clone(), broker.addr);
    connect5(&mut sub);
    sub.subscribe5(
        vec![(
            filter("qossim/v5/offline"),
            SubOptions::qos(QoS::AtLeastOnce),
        )],
        None,
    )
    .expect("subscribe");
    assert_eq!(suback5(&mut sub), vec![ReasonCode::GRANTED_QOS_1]);
    sub.disconnect().expect("disconnect");
    wait_log(&broker, "Client qossim-v5-persist disconnected", 1);

    let mut publ = driver(cfg5("qossim-v5-pub"), broker.addr);
    connect5(&mut publ);
    for i in 0..3u8 {
        publ.publish(topic("qossim/v5/offline"), &[i], QoS::AtLeastOnce, false)
            .expect("publish");
        publ.run_until(Duration::from_secs(5), |e| {
            matches!(e, ClientEvent::PublishAcked { .. }).then_some(())
        })
        .expect("PUBACK");
    }
    publ.disconnect().expect("disconnect");

    let mut sub = driver(persistent, broker.addr);
    assert!(connect5(&mut sub), "session present after reconnecting");
    let mut got = Vec::new();
    while got.len() < 3 {
        let p = sub
            .run_until(Duration::from_secs(5), |e| match e {
                ClientEvent::Message5 { payload, .. } => Some(payload.to_vec()),
                _ => None,
            })
            .unwrap_or_else(|e| panic!("{e}: got {got:?}; log:\n{}", broker.log()));
        got.push(p);
    }
    assert_eq!(got, vec![vec![0], vec![1], vec![2]]);
    // DISCONNECT with Session Expiry 0 ends the session at once
    sub.disconnect5(Some(0)).expect("disconnect");
    wait_log(&broker, "Client qossim-v5-persist disconnected", 2);
    let mut again = driver(
        ClientConfig {
            clean_session: false,
            session_expiry_interval: 60,
            ..cfg5("qossim-v5-persist")
        },
        broker.addr,
    );
    assert!(
        !connect5(&mut again),
        "no session after expiry 0; log:\n{}",
        broker.log()
    );
    again.disconnect().expect("disconnect");
}

/// Clients built from one shared `ClientConfig` (as the world builds every
/// client of a run, issue 22) each send their own Client Identifier and
/// Will, on 3.1.1 and 5.0; a restarted client keeps both; the server's
/// limits are the no-limit defaults until a 5.0 CONNACK sets them.
#[test]
fn clients_sharing_one_config_send_their_own_id_and_will() {
    use qossim::proto::mqtt::{LastWill, Packet};
    use std::sync::Arc;
    let will = |name: &str| LastWill {
        topic: topic(&format!("dead/{name}")),
        message: b"gone"[..].into(),
        qos: QoS::AtLeastOnce,
        retain: false,
    };
    // 3.1.1: decode CONNECT with the 3.1.1 codec
    let shared = Arc::new(ClientConfig::new(""));
    let connect3 = |c: &mut Client| {
        c.connect();
        c.handle_input(SimTime::ZERO, StreamInput::Connected);
        let mut buf = Vec::new();
        c.poll_transmit(SimTime::ZERO, &mut buf).expect("CONNECT");
        match qossim::proto::mqtt::decode(&buf, usize::MAX) {
            Ok(Some((Packet::Connect(c), _))) => c,
            other => panic!("CONNECT expected, got {other:?}"),
        }
    };
    let mut a = Client::with_shared(
        shared.clone(),
        "dev-a".into(),
        Some(will("a")),
        SimRng::stream(1, "a"),
    );
    let mut b = Client::with_shared(shared.clone(), "dev-b".into(), None, SimRng::stream(1, "b"));
    assert_eq!(Arc::strong_count(&shared), 3, "one copy of the options");
    let (ca, cb) = (connect3(&mut a), connect3(&mut b));
    assert_eq!(
        (ca.client_id.as_str(), cb.client_id.as_str()),
        ("dev-a", "dev-b")
    );
    assert_eq!(ca.will, Some(will("a")));
    assert_eq!(cb.will, None);
    let mut a2 = a.restarted(SimRng::stream(1, "a2"));
    assert!(!a2.is_connected(), "a restarted client starts idle");
    let ca2 = connect3(&mut a2);
    assert_eq!(
        (ca2.client_id.as_str(), ca2.will),
        ("dev-a", Some(will("a")))
    );
    assert_eq!(a2.client_id(), "dev-a");
    assert_eq!(a2.config().client_id, "", "the shared copy holds no id");

    // 5.0: the same, and CONNACK's limits land on this client only
    let shared5 = Arc::new(cfg5(""));
    let mut f = Fake::new(cfg5("unused"));
    f.c = Client::with_shared(
        shared5.clone(),
        "d5".into(),
        Some(will("d5")),
        SimRng::stream(1, "d5"),
    );
    let other = Client::with_shared(shared5, "e5".into(), None, SimRng::stream(1, "e5"));
    assert_eq!(f.c.server_limits().receive_maximum, u16::MAX);
    let c = f.connect(Properties {
        receive_maximum: Some(3),
        ..Properties::default()
    });
    assert_eq!(c.client_id, "d5");
    assert_eq!(c.will.map(|w| w.topic), Some(topic("dead/d5")));
    assert_eq!(f.c.server_limits().receive_maximum, 3);
    assert_eq!(other.server_limits().receive_maximum, u16::MAX);
}
