//! The broker's MQTT 5.0 behaviour (issue 18 item 2), driven through the
//! sans-IO `Broker` with bytes a 5.0 client would send, and the broker's
//! replies decoded with the 5.0 codec: version negotiation, CONNACK
//! capabilities, Assigned Client Identifier, Server Keep Alive, session and
//! message expiry, topic aliases both ways, Receive Maximum both ways,
//! Maximum Packet Size, shared subscriptions, subscription options and
//! identifiers, will delay, server DISCONNECT reason codes, request/response
//! properties passed through, 3.1.1 and 5.0 clients side by side.

use std::sync::Arc;

use qossim::proto::mqtt::v5::{
    self, Ack5, Connect5, Packet5, Properties, Publish5, ReasonCode, ReasonOnly, RetainHandling,
    SubAck5, SubOptions, Subscribe5, Unsubscribe5, Will5,
};
use qossim::proto::mqtt::{
    decode, Broker, BrokerConfig, BrokerInput, ConnId, Packet, PacketId, QoS, QosPid, TopicFilter,
    TopicName,
};
use qossim::proto::mqtt::{BrokerEvent, Connect, ProtocolLevel};
use qossim::sim::{SimDuration, SimTime};

/// A broker and the packets it sent, per connection.
struct H {
    b: Broker,
    now: SimTime,
    /// (conn, packet, encoded length)
    out: Vec<(u64, Packet5, usize)>,
    closed: Vec<u64>,
    /// connections speaking 3.1.1 (their output is decoded with that codec)
    v311: Vec<u64>,
    out311: Vec<(u64, Packet)>,
}

fn cfg() -> BrokerConfig {
    BrokerConfig {
        sys_interval: None,
        ..BrokerConfig::default()
    }
}

fn pid(n: u16) -> PacketId {
    PacketId::new(n).unwrap()
}

fn t(s: &str) -> TopicName {
    TopicName::new(s).unwrap()
}

fn connect(id: &str, props: Properties) -> Connect5 {
    Connect5 {
        clean_start: true,
        keep_alive: 60,
        props,
        client_id: id.into(),
        will: None,
        username: None,
        password: None,
    }
}

fn publish(topic: &str, qos: QoS, n: u16, payload: &[u8]) -> Publish5 {
    Publish5 {
        dup: false,
        qos_pid: match qos {
            QoS::AtMostOnce => QosPid::AtMostOnce,
            q => QosPid::new(q, pid(n)),
        },
        retain: false,
        topic: Some(t(topic)),
        props: Properties::default(),
        payload: Arc::from(payload),
    }
}

fn subscribe(n: u16, filter: &str, o: SubOptions, id: Option<u32>) -> Packet5 {
    Packet5::Subscribe(Subscribe5 {
        pid: pid(n),
        props: Properties {
            subscription_identifiers: id.into_iter().collect(),
            ..Properties::default()
        },
        filters: vec![(TopicFilter::new(filter).unwrap(), o)],
    })
}

impl H {
    fn new(c: BrokerConfig) -> H {
        H {
            b: Broker::new(c, SimTime::ZERO),
            now: SimTime::ZERO,
            out: Vec::new(),
            closed: Vec::new(),
            v311: Vec::new(),
            out311: Vec::new(),
        }
    }

    fn pump(&mut self) {
        let mut buf = Vec::new();
        while let Some(tx) = self.b.poll_transmit(self.now, &mut buf) {
            assert_eq!(tx.len, buf.len(), "BrokerTransmit.len is the bytes written");
            if self.v311.contains(&tx.conn.0) {
                let (p, n) = decode(&buf, usize::MAX).unwrap().unwrap();
                assert_eq!(n, buf.len());
                self.out311.push((tx.conn.0, p));
            } else {
                let (p, n) = v5::decode(&buf, usize::MAX).unwrap().unwrap();
                assert_eq!(n, buf.len(), "one whole packet per transmit");
                self.out.push((tx.conn.0, p, n));
            }
            buf.clear();
        }
        while let Some(e) = self.b.poll_event() {
            if let BrokerEvent::Close(c) = e {
                self.closed.push(c.0);
            }
        }
    }

    fn bytes(&mut self, conn: u64, b: &[u8]) {
        self.b
            .handle_input(self.now, BrokerInput::bytes(ConnId(conn), b));
        self.pump();
    }

    fn send(&mut self, conn: u64, p: Packet5) {
        let mut buf = Vec::new();
        p.encode(&mut buf).unwrap();
        self.bytes(conn, &buf);
    }

    fn open(&mut self, conn: u64, c: Connect5) -> Packet5 {
        self.b
            .handle_input(self.now, BrokerInput::accepted(ConnId(conn)));
        self.send(conn, Packet5::Connect(c));
        self.take_first(conn, |p| matches!(p, Packet5::ConnAck(_)))
            .expect("CONNACK")
    }

    /// The first packet to `conn` that `f` accepts, leaving the others.
    fn take_first(&mut self, conn: u64, f: impl Fn(&Packet5) -> bool) -> Option<Packet5> {
        let i = self.out.iter().position(|(c, p, _)| *c == conn && f(p))?;
        Some(self.out.remove(i).1)
    }

    fn open311(&mut self, conn: u64, id: &str) {
        self.v311.push(conn);
        self.b
            .handle_input(self.now, BrokerInput::accepted(ConnId(conn)));
        let mut buf = Vec::new();
        Packet::Connect(Connect {
            protocol: ProtocolLevel::V311,
            clean_session: true,
            keep_alive: 60,
            client_id: id.into(),
            will: None,
            username: None,
            password: None,
        })
        .encode(&mut buf)
        .unwrap();
        self.bytes(conn, &buf);
    }

    fn lose(&mut self, conn: u64) {
        self.b
            .handle_input(self.now, BrokerInput::closed(ConnId(conn)));
        self.pump();
    }

    fn advance(&mut self, secs: u64) {
        let end = self.now + SimDuration::from_secs(secs);
        while let Some(t) = self.b.poll_timeout().filter(|&t| t <= end) {
            self.now = self.now.max(t);
            self.b.handle_timeout(self.now);
            self.pump();
        }
        self.now = end;
    }

    /// Packets sent to `conn` since the last call, with their lengths.
    fn take(&mut self, conn: u64) -> Vec<(Packet5, usize)> {
        let (mine, rest): (Vec<_>, Vec<_>) = std::mem::take(&mut self.out)
            .into_iter()
            .partition(|(c, _, _)| *c == conn);
        self.out = rest;
        mine.into_iter().map(|(_, p, n)| (p, n)).collect()
    }

    fn publishes(&mut self, conn: u64) -> Vec<(Publish5, usize)> {
        self.take(conn)
            .into_iter()
            .filter_map(|(p, n)| match p {
                Packet5::Publish(p) => Some((p, n)),
                _ => None,
            })
            .collect()
    }

    fn sub(&mut self, conn: u64, filter: &str, o: SubOptions, id: Option<u32>) -> Vec<ReasonCode> {
        self.send(conn, subscribe(1, filter, o, id));
        match self.take_first(conn, |p| matches!(p, Packet5::SubAck(_))) {
            Some(Packet5::SubAck(a)) => a.reasons,
            other => panic!("expected SUBACK, got {other:?}"),
        }
    }
}

fn connack(p: Packet5) -> v5::ConnAck5 {
    match p {
        Packet5::ConnAck(c) => c,
        other => panic!("expected CONNACK, got {other:?}"),
    }
}

fn q1() -> SubOptions {
    SubOptions::qos(QoS::AtLeastOnce)
}

#[test]
fn connack_announces_capabilities_that_differ_from_the_defaults() {
    let mut h = H::new(cfg());
    let c = connack(h.open(1, connect("a", Properties::default())));
    assert_eq!(c.reason, ReasonCode::SUCCESS);
    assert_eq!(c.props.topic_alias_maximum, Some(10), "mosquitto's default");
    assert_eq!(c.props.maximum_packet_size, Some(1 << 20));
    assert_eq!(c.props.maximum_qos, None, "QoS 2 supported: not sent");
    assert_eq!(c.props.retain_available, None);
    assert_eq!(c.props.assigned_client_identifier, None);

    let mut conf = cfg();
    conf.max_qos = QoS::AtLeastOnce;
    conf.v5.retain_available = false;
    conf.v5.shared_subscriptions = false;
    conf.v5.wildcard_subscriptions = false;
    conf.v5.subscription_identifiers = false;
    conf.v5.receive_maximum = 5;
    conf.v5.server_keep_alive = Some(30);
    let mut h = H::new(conf);
    let c = connack(h.open(1, connect("", Properties::default())));
    let p = &c.props;
    assert_eq!(p.maximum_qos, Some(1));
    assert_eq!(p.retain_available, Some(0));
    assert_eq!(p.shared_subscription_available, Some(0));
    assert_eq!(p.wildcard_subscription_available, Some(0));
    assert_eq!(p.subscription_identifier_available, Some(0));
    assert_eq!(p.receive_maximum, Some(5));
    assert_eq!(p.server_keep_alive, Some(30), "client asked 60");
    let assigned = p.assigned_client_identifier.clone().expect("assigned id");
    assert_eq!(h.b.client_id(ConnId(1)), Some(assigned.as_str()));
    // Server Keep Alive 30 s governs: closed after 45 s of silence with
    // DISCONNECT 0x8D, not after the client's 90 s
    h.advance(46);
    let got = h.take(1);
    assert!(
        matches!(&got[..], [(Packet5::Disconnect(d), _)] if d.reason == ReasonCode::KEEP_ALIVE_TIMEOUT),
        "{got:?}"
    );
    assert_eq!(h.closed, [1]);
    // shared / wildcard refused with their reason codes
    let mut h2 = H::new({
        let mut c = cfg();
        c.v5.shared_subscriptions = false;
        c.v5.wildcard_subscriptions = false;
        c
    });
    h2.open(1, connect("s", Properties::default()));
    assert_eq!(
        h2.sub(1, "$share/g/a", q1(), None),
        [ReasonCode::SHARED_SUBSCRIPTIONS_NOT_SUPPORTED]
    );
    assert_eq!(
        h2.sub(1, "a/#", q1(), None),
        [ReasonCode::WILDCARD_SUBSCRIPTIONS_NOT_SUPPORTED]
    );
}

#[test]
fn protocol_levels_other_than_4_and_5_are_refused_in_their_form() {
    // level 6: 5.0-form CONNACK reason 0x84; level 3: 3.1.1 CONNACK 0x01
    for (level, want) in [(6u8, vec![0x20, 3, 0, 0x84, 0]), (3, vec![0x20, 2, 0, 1])] {
        let mut b = Broker::new(cfg(), SimTime::ZERO);
        b.handle_input(SimTime::ZERO, BrokerInput::accepted(ConnId(1)));
        let connect = [0x10, 10, 0, 4, b'M', b'Q', b'T', b'T', level, 2, 0, 60];
        let mut connect = connect.to_vec();
        connect.extend_from_slice(&[0, 0]); // client id ""
        connect[1] = (connect.len() - 2) as u8;
        b.handle_input(SimTime::ZERO, BrokerInput::bytes(ConnId(1), &connect));
        let mut buf = Vec::new();
        assert!(b.poll_transmit(SimTime::ZERO, &mut buf).is_some());
        assert_eq!(buf, want, "level {level}");
        let mut closed = false;
        while let Some(e) = b.poll_event() {
            closed |= e == BrokerEvent::Close(ConnId(1));
        }
        assert!(closed, "level {level}: closed");
    }
}

#[test]
fn inbound_topic_alias_maps_and_an_invalid_alias_disconnects_with_0x94() {
    let mut h = H::new(cfg());
    h.open(1, connect("sub", Properties::default()));
    h.open(2, connect("pub", Properties::default()));
    h.sub(1, "a/#", SubOptions::qos(QoS::AtMostOnce), None);
    let mut p = publish("a/long/topic", QoS::AtMostOnce, 0, b"1");
    p.props.topic_alias = Some(3);
    h.send(2, Packet5::Publish(p));
    let mut p = publish("a/x", QoS::AtMostOnce, 0, b"2");
    p.topic = None;
    p.props.topic_alias = Some(3);
    h.send(2, Packet5::Publish(p));
    let got: Vec<_> = h
        .publishes(1)
        .into_iter()
        .map(|(p, _)| (p.topic.unwrap().as_str().to_string(), p.payload.to_vec()))
        .collect();
    assert_eq!(
        got,
        [
            ("a/long/topic".to_string(), b"1".to_vec()),
            ("a/long/topic".to_string(), b"2".to_vec())
        ]
    );
    // alias 11 > Topic Alias Maximum 10
    let mut p = publish("a/y", QoS::AtMostOnce, 0, b"3");
    p.props.topic_alias = Some(11);
    h.send(2, Packet5::Publish(p));
    let got = h.take(2);
    assert!(
        matches!(&got[..], [(Packet5::Disconnect(d), _)] if d.reason == ReasonCode::TOPIC_ALIAS_INVALID),
        "{got:?}"
    );
    assert_eq!(h.closed, [2]);
    // an unknown alias with an empty topic: Protocol Error
    h.open(3, connect("pub2", Properties::default()));
    let mut p = publish("a/z", QoS::AtMostOnce, 0, b"4");
    p.topic = None;
    p.props.topic_alias = Some(1);
    h.send(3, Packet5::Publish(p));
    let got = h.take(3);
    assert!(
        matches!(&got[..], [(Packet5::Disconnect(d), _)] if d.reason == ReasonCode::PROTOCOL_ERROR)
    );
}

#[test]
fn outbound_topic_aliases_save_the_topic_bytes_after_first_use() {
    let topic = "building/1518/basement/hvac/719/temperature";
    let mut h = H::new(cfg());
    let props = Properties {
        topic_alias_maximum: Some(1),
        ..Properties::default()
    };
    h.open(1, connect("sub", props));
    h.open(2, connect("plain", Properties::default())); // alias max 0
    h.open(3, connect("pub", Properties::default()));
    h.sub(1, "building/#", SubOptions::qos(QoS::AtMostOnce), None);
    h.sub(2, "building/#", SubOptions::qos(QoS::AtMostOnce), None);
    for (i, tp) in [topic, topic, "building/other", topic].iter().enumerate() {
        h.send(
            3,
            Packet5::Publish(publish(tp, QoS::AtMostOnce, 0, &[i as u8])),
        );
    }
    let aliased = h.publishes(1);
    let plain = h.publishes(2);
    let summary: Vec<_> = aliased
        .iter()
        .map(|(p, _)| {
            (
                p.topic.as_ref().map(|t| t.as_str().to_string()),
                p.props.topic_alias,
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            (Some(topic.to_string()), Some(1)),
            (None, Some(1)),
            (Some("building/other".to_string()), None), // only one alias allowed
            (None, Some(1)),
        ]
    );
    // first use costs the 3-byte property, later ones save topic − 3 bytes
    assert_eq!(aliased[0].1, plain[0].1 + 3, "the Topic Alias property");
    assert_eq!(plain[1].1 - aliased[1].1, topic.len() - 3);
    assert!(plain.iter().all(|(p, _)| p.props.topic_alias.is_none()));
}

#[test]
fn session_expiry_keeps_then_discards_an_offline_session() {
    let mut h = H::new(cfg());
    let persistent = |id: &str, expiry: u32| Connect5 {
        clean_start: false,
        props: Properties {
            session_expiry_interval: Some(expiry),
            ..Properties::default()
        },
        ..connect(id, Properties::default())
    };
    let c = connack(h.open(1, persistent("dev", 10)));
    assert!(!c.session_present);
    h.sub(1, "cmd/dev", q1(), None);
    h.lose(1);
    h.open(2, connect("ctl", Properties::default()));
    h.send(
        2,
        Packet5::Publish(publish("cmd/dev", QoS::AtLeastOnce, 1, b"on")),
    );
    h.advance(5);
    let c = connack(h.open(3, persistent("dev", 10)));
    assert!(c.session_present, "within the 10 s expiry");
    let got = h.publishes(3);
    assert_eq!(got.len(), 1, "queued while offline");
    // gone after the interval
    h.lose(3);
    h.advance(9);
    assert!(h.b.session_info("dev").is_some());
    h.advance(2);
    assert!(h.b.session_info("dev").is_none(), "expired after 10 s");
    assert_eq!(h.b.stats().sessions_expired, 1);
    let c = connack(h.open(4, persistent("dev", 10)));
    assert!(!c.session_present);
    // expiry 0 (the default) ends the session with the connection, and
    // Clean Start discards an existing one
    h.lose(4);
    let c = connack(h.open(5, connect("dev", Properties::default())));
    assert!(!c.session_present, "clean start");
    h.lose(5);
    assert!(h.b.session_info("dev").is_none(), "expiry 0");
}

#[test]
fn disconnect_may_change_a_non_zero_session_expiry_but_not_set_one_after_0() {
    let mut h = H::new(cfg());
    let disconnect = |expiry: u32| {
        Packet5::Disconnect(v5::ReasonOnly {
            reason: ReasonCode::SUCCESS,
            props: Properties {
                session_expiry_interval: Some(expiry),
                ..Properties::default()
            },
        })
    };
    // CONNECT with 0 (the default), DISCONNECT asks for 60 s: a Protocol
    // Error [MQTT-3.14.2-2] — the broker answers DISCONNECT 0x82, closes,
    // and the session ends with the connection as CONNECT said
    h.open(1, connect("a", Properties::default()));
    h.send(1, disconnect(60));
    let got = h.take(1);
    assert!(
        got.iter().any(
            |(p, _)| matches!(p, Packet5::Disconnect(d) if d.reason == ReasonCode::PROTOCOL_ERROR)
        ),
        "{got:?}"
    );
    assert!(h.closed.contains(&1));
    assert!(h.b.session_info("a").is_none(), "expiry stayed 0");
    // CONNECT with 10 s, DISCONNECT with 60 s: accepted, the session
    // outlives the 10 s of the CONNECT
    let c = Connect5 {
        clean_start: false,
        props: Properties {
            session_expiry_interval: Some(10),
            ..Properties::default()
        },
        ..connect("b", Properties::default())
    };
    h.open(2, c.clone());
    h.send(2, disconnect(60));
    assert!(h.closed.contains(&2));
    h.advance(30);
    assert!(h.b.session_info("b").is_some(), "60 s from the DISCONNECT");
    h.advance(31);
    assert!(h.b.session_info("b").is_none(), "expired after 60 s");
    // and DISCONNECT with 0 ends a 10 s session at once
    h.open(3, c);
    h.send(3, disconnect(0));
    assert!(h.b.session_info("b").is_none(), "DISCONNECT set 0");
}

#[test]
fn message_expiry_drops_stale_queued_copies_and_counts_down_on_forwarding() {
    let mut h = H::new(cfg());
    let persistent = Connect5 {
        clean_start: false,
        props: Properties {
            session_expiry_interval: Some(3600),
            ..Properties::default()
        },
        ..connect("dev", Properties::default())
    };
    h.open(1, persistent.clone());
    h.sub(1, "t", q1(), None);
    h.lose(1);
    h.open(2, connect("pub", Properties::default()));
    let mut p = publish("t", QoS::AtLeastOnce, 1, b"short");
    p.props.message_expiry_interval = Some(2);
    h.send(2, Packet5::Publish(p));
    let mut p = publish("t", QoS::AtLeastOnce, 2, b"long");
    p.props.message_expiry_interval = Some(10);
    h.send(2, Packet5::Publish(p));
    h.advance(3);
    h.open(3, persistent);
    let got = h.publishes(3);
    assert_eq!(got.len(), 1, "the 2 s message expired: {got:?}");
    assert_eq!(&got[0].0.payload[..], b"long");
    assert_eq!(
        got[0].0.props.message_expiry_interval,
        Some(7),
        "10 s less the 3 s it waited"
    );
    assert_eq!(h.b.stats().messages_expired, 1);
}

#[test]
fn receive_maximum_caps_the_brokers_in_flight_window() {
    let mut h = H::new(cfg());
    let props = Properties {
        receive_maximum: Some(2),
        ..Properties::default()
    };
    h.open(1, connect("slow", props));
    h.open(2, connect("pub", Properties::default()));
    h.sub(1, "t", q1(), None);
    for i in 1..=5 {
        h.send(
            2,
            Packet5::Publish(publish("t", QoS::AtLeastOnce, i, &[i as u8])),
        );
    }
    let first = h.publishes(1);
    assert_eq!(first.len(), 2, "Receive Maximum 2");
    let id = first[0].0.qos_pid.pid().unwrap();
    h.send(1, Packet5::PubAck(Ack5::ok(id)));
    assert_eq!(h.publishes(1).len(), 1, "one acked, one more sent");
}

#[test]
fn the_brokers_receive_maximum_is_enforced_with_0x93() {
    let mut c = cfg();
    c.v5.receive_maximum = 2;
    let mut h = H::new(c);
    let ack = connack(h.open(1, connect("p", Properties::default())));
    assert_eq!(ack.props.receive_maximum, Some(2));
    for i in 1..=3 {
        h.send(1, Packet5::Publish(publish("t", QoS::ExactlyOnce, i, b"x")));
    }
    let got = h.take(1);
    let last = got.last().map(|(p, _)| p.clone());
    assert!(
        matches!(last, Some(Packet5::Disconnect(ref d)) if d.reason == ReasonCode::RECEIVE_MAXIMUM_EXCEEDED),
        "{got:?}"
    );
}

#[test]
fn maximum_packet_size_of_the_client_is_respected() {
    let mut h = H::new(cfg());
    let props = Properties {
        maximum_packet_size: Some(40),
        ..Properties::default()
    };
    h.open(1, connect("tiny", props));
    h.open(2, connect("pub", Properties::default()));
    h.sub(1, "t", q1(), None);
    h.send(
        2,
        Packet5::Publish(publish("t", QoS::AtLeastOnce, 1, &[0; 100])),
    );
    h.send(
        2,
        Packet5::Publish(publish("t", QoS::AtLeastOnce, 2, &[1; 10])),
    );
    let got = h.publishes(1);
    assert_eq!(got.len(), 1);
    assert!(got[0].1 <= 40);
    assert_eq!(&got[0].0.payload[..], &[1; 10]);
    assert_eq!(h.b.stats().dropped_too_large, 1);
    assert_eq!(
        h.b.session_info("tiny").unwrap().inflight,
        1,
        "the dropped QoS 1 copy counts as delivered"
    );
}

#[test]
fn shared_subscriptions_spread_messages_round_robin_over_online_members() {
    let mut h = H::new(cfg());
    h.open(1, connect("w1", Properties::default()));
    h.open(2, connect("w2", Properties::default()));
    h.open(3, connect("all", Properties::default()));
    h.open(4, connect("pub", Properties::default()));
    assert_eq!(
        h.sub(1, "$share/g/jobs/#", q1(), None),
        [ReasonCode::GRANTED_QOS_1]
    );
    assert_eq!(
        h.sub(2, "$share/g/jobs/#", q1(), None),
        [ReasonCode::GRANTED_QOS_1]
    );
    h.sub(3, "jobs/#", SubOptions::qos(QoS::AtMostOnce), None);
    assert_eq!(h.b.shared_groups(), [("$share/g/jobs/#".to_string(), 2)]);
    for i in 0..6u8 {
        h.send(
            4,
            Packet5::Publish(publish("jobs/x", QoS::AtMostOnce, 0, &[i])),
        );
    }
    let w1: Vec<u8> = h.publishes(1).iter().map(|(p, _)| p.payload[0]).collect();
    let w2: Vec<u8> = h.publishes(2).iter().map(|(p, _)| p.payload[0]).collect();
    assert_eq!(w1, [0, 2, 4]);
    assert_eq!(w2, [1, 3, 5]);
    assert_eq!(h.publishes(3).len(), 6, "a plain subscriber gets every one");
    // an offline member is skipped
    h.lose(2);
    for i in 6..9u8 {
        h.send(
            4,
            Packet5::Publish(publish("jobs/x", QoS::AtMostOnce, 0, &[i])),
        );
    }
    assert_eq!(h.publishes(1).len(), 3);
    // invalid share names are refused with 0x8F
    assert_eq!(
        h.sub(1, "$share//x", q1(), None),
        [ReasonCode::TOPIC_FILTER_INVALID]
    );
    // unsubscribing leaves the group; unknown filters get 0x11
    h.send(
        1,
        Packet5::Unsubscribe(Unsubscribe5 {
            pid: pid(9),
            props: Properties::default(),
            filters: vec![
                TopicFilter::new("$share/g/jobs/#").unwrap(),
                TopicFilter::new("nope").unwrap(),
            ],
        }),
    );
    let got = h.take(1);
    assert!(
        matches!(&got[..], [(Packet5::UnsubAck(SubAck5 { reasons, .. }), _)] if reasons[..] == [ReasonCode::SUCCESS, ReasonCode::NO_SUBSCRIPTION_EXISTED]),
        "{got:?}"
    );
    assert!(h.b.shared_groups().is_empty(), "w2's session ended with it");
}

#[test]
fn will_delay_defers_the_will_and_a_reconnect_cancels_it() {
    let with_will = |id: &str| Connect5 {
        clean_start: false,
        props: Properties {
            session_expiry_interval: Some(60),
            ..Properties::default()
        },
        will: Some(Will5 {
            props: Properties {
                will_delay_interval: Some(5),
                ..Properties::default()
            },
            topic: t("status/dev"),
            message: Arc::from(&b"offline"[..]),
            qos: QoS::AtLeastOnce,
            retain: false,
        }),
        ..connect(id, Properties::default())
    };
    let mut h = H::new(cfg());
    h.open(1, connect("watch", Properties::default()));
    h.sub(1, "status/#", q1(), None);
    h.open(2, with_will("dev"));
    h.lose(2);
    h.advance(4);
    assert!(h.publishes(1).is_empty(), "not before 5 s");
    h.advance(2);
    assert_eq!(h.publishes(1).len(), 1, "published after the delay");
    // reconnecting within the delay cancels it
    h.open(3, with_will("dev"));
    h.lose(3);
    h.advance(2);
    h.open(4, with_will("dev"));
    h.advance(10);
    assert!(h.publishes(1).is_empty(), "cancelled by the reconnect");
    // DISCONNECT 0x04 publishes the will (after its delay); 0x00 drops it
    h.send(
        4,
        Packet5::Disconnect(ReasonOnly {
            reason: ReasonCode::DISCONNECT_WITH_WILL,
            props: Properties::default(),
        }),
    );
    h.advance(6);
    assert_eq!(h.publishes(1).len(), 1);
    h.open(5, with_will("dev"));
    h.send(5, Packet5::Disconnect(ReasonOnly::default()));
    h.advance(6);
    assert!(h.publishes(1).is_empty());
}

#[test]
fn subscription_options_no_local_retain_as_published_and_retain_handling() {
    let mut h = H::new(cfg());
    h.open(1, connect("me", Properties::default()));
    let nl = SubOptions {
        no_local: true,
        ..SubOptions::qos(QoS::AtMostOnce)
    };
    h.sub(1, "chat/#", nl, None);
    h.send(
        1,
        Packet5::Publish(publish("chat/a", QoS::AtMostOnce, 0, b"mine")),
    );
    assert!(h.publishes(1).is_empty(), "No Local");
    h.open(2, connect("other", Properties::default()));
    h.send(
        2,
        Packet5::Publish(publish("chat/a", QoS::AtMostOnce, 0, b"theirs")),
    );
    assert_eq!(h.publishes(1).len(), 1);
    // Retain As Published keeps RETAIN on forwarding; plain clears it
    let rap = SubOptions {
        retain_as_published: true,
        ..SubOptions::qos(QoS::AtMostOnce)
    };
    h.open(3, connect("rap", Properties::default()));
    h.sub(3, "r", rap, None);
    h.open(4, connect("plain", Properties::default()));
    h.sub(4, "r", SubOptions::qos(QoS::AtMostOnce), None);
    let mut p = publish("r", QoS::AtMostOnce, 0, b"v");
    p.retain = true;
    h.send(2, Packet5::Publish(p));
    assert!(h.publishes(3)[0].0.retain);
    assert!(!h.publishes(4)[0].0.retain);
    // Retain Handling: 2 never, 1 only for a new subscription, 0 always
    let rh = |r| SubOptions {
        retain_handling: r,
        ..SubOptions::qos(QoS::AtMostOnce)
    };
    h.open(5, connect("rh", Properties::default()));
    h.sub(5, "r", rh(RetainHandling::DoNotSend), None);
    assert!(h.publishes(5).is_empty());
    h.sub(5, "r", rh(RetainHandling::SendIfNew), None);
    assert!(h.publishes(5).is_empty(), "already subscribed");
    h.sub(5, "r", rh(RetainHandling::SendOnSubscribe), None);
    let got = h.publishes(5);
    assert_eq!(got.len(), 1);
    assert!(got[0].0.retain, "retained copies keep RETAIN");
}

#[test]
fn subscription_identifiers_ride_with_the_matching_copies() {
    let mut h = H::new(cfg());
    h.open(1, connect("s", Properties::default()));
    h.sub(1, "a/+", SubOptions::qos(QoS::AtMostOnce), Some(7));
    h.sub(1, "a/#", SubOptions::qos(QoS::AtMostOnce), Some(300));
    h.sub(1, "b", SubOptions::qos(QoS::AtMostOnce), None);
    h.open(2, connect("p", Properties::default()));
    h.send(
        2,
        Packet5::Publish(publish("a/x", QoS::AtMostOnce, 0, b"1")),
    );
    h.send(2, Packet5::Publish(publish("b", QoS::AtMostOnce, 0, b"2")));
    let got = h.publishes(1);
    assert_eq!(got.len(), 2, "one copy per message");
    let mut ids = got[0].0.props.subscription_identifiers.clone();
    ids.sort();
    assert_eq!(ids, [7, 300]);
    assert!(got[1].0.props.subscription_identifiers.is_empty());
    // a client PUBLISH may not carry one
    let mut p = publish("a/x", QoS::AtMostOnce, 0, b"3");
    p.props.subscription_identifiers = vec![1];
    h.send(2, Packet5::Publish(p));
    assert!(
        matches!(&h.take(2)[..], [(Packet5::Disconnect(d), _)] if d.reason == ReasonCode::PROTOCOL_ERROR)
    );
}

#[test]
fn request_response_properties_pass_through_and_3_1_1_peers_interoperate() {
    let mut h = H::new(cfg());
    h.open(1, connect("responder", Properties::default()));
    h.sub(1, "req/#", SubOptions::qos(QoS::AtMostOnce), None);
    h.open311(3, "old-sub");
    let mut buf = Vec::new();
    Packet::Subscribe(qossim::proto::mqtt::Subscribe {
        pid: pid(1),
        filters: vec![(TopicFilter::new("req/#").unwrap(), QoS::AtMostOnce)],
    })
    .encode(&mut buf)
    .unwrap();
    h.bytes(3, &buf);
    h.open(2, connect("requester", Properties::default()));
    let mut p = publish("req/lamp", QoS::AtMostOnce, 0, b"{\"on\":true}");
    p.props.response_topic = Some("resp/requester".into());
    p.props.correlation_data = Some(vec![1, 2, 3]);
    p.props.content_type = Some("application/json".into());
    p.props.payload_format_indicator = Some(1);
    p.props.user_properties = vec![("a".into(), "1".into()), ("a".into(), "2".into())];
    let sent = p.props.clone();
    h.send(2, Packet5::Publish(p));
    let got = h.publishes(1);
    assert_eq!(got[0].0.props, sent, "passed on unchanged, in order");
    // the 3.1.1 subscriber gets the message without properties
    let old: Vec<_> = h
        .out311
        .iter()
        .filter_map(|(c, p)| match (c, p) {
            (3, Packet::Publish(p)) => Some(p.payload.to_vec()),
            _ => None,
        })
        .collect();
    assert_eq!(old, [b"{\"on\":true}".to_vec()]);
}

#[test]
fn acks_carry_5_0_reason_codes() {
    let mut h = H::new(cfg());
    h.open(1, connect("p", Properties::default()));
    // nobody subscribed: PUBACK 0x10 (3 bytes), as mosquitto answers
    h.send(
        1,
        Packet5::Publish(publish("void", QoS::AtLeastOnce, 1, b"x")),
    );
    let got = h.take(1);
    assert!(
        matches!(&got[..], [(Packet5::PubAck(a), 5)] if a.reason == ReasonCode::NO_MATCHING_SUBSCRIBERS),
        "{got:?}"
    );
    h.send(
        1,
        Packet5::Publish(publish("void", QoS::ExactlyOnce, 2, b"x")),
    );
    let got = h.take(1);
    assert!(
        matches!(&got[..], [(Packet5::PubRec(a), _)] if a.reason == ReasonCode::NO_MATCHING_SUBSCRIBERS)
    );
    // PUBREL for an unknown id: PUBCOMP 0x92
    h.send(1, Packet5::PubRel(Ack5::ok(pid(77))));
    let got = h.take(1);
    assert!(
        matches!(&got[..], [(Packet5::PubComp(a), _)] if a.reason == ReasonCode::PACKET_IDENTIFIER_NOT_FOUND)
    );
    // with a subscriber: success, 2-byte form
    h.sub(1, "void", q1(), None);
    h.send(
        1,
        Packet5::Publish(publish("void", QoS::AtLeastOnce, 3, b"x")),
    );
    let got = h.take(1);
    assert!(got.iter().any(
        |(p, n)| matches!(p, Packet5::PubAck(a) if a.reason == ReasonCode::SUCCESS) && *n == 4
    ));
    // a subscriber's failed PUBREC ends that flow (no PUBREL)
    h.sub(1, "q2", SubOptions::qos(QoS::ExactlyOnce), None);
    h.open(2, connect("p2", Properties::default()));
    h.send(
        2,
        Packet5::Publish(publish("q2", QoS::ExactlyOnce, 1, b"y")),
    );
    h.send(2, Packet5::PubRel(Ack5::ok(pid(1))));
    let got = h.publishes(1);
    let id = got[0].0.qos_pid.pid().unwrap();
    let before = h.b.session_info("p").unwrap().inflight;
    h.send(
        1,
        Packet5::PubRec(Ack5 {
            pid: id,
            reason: ReasonCode::QUOTA_EXCEEDED,
            props: Properties::default(),
        }),
    );
    assert!(h.take(1).is_empty(), "no PUBREL after a failed PUBREC");
    assert_eq!(h.b.session_info("p").unwrap().inflight, before - 1);
}

#[test]
fn maximum_qos_and_takeover_disconnect_with_reason_codes() {
    let mut c = cfg();
    c.max_qos = QoS::AtLeastOnce;
    let mut h = H::new(c);
    h.open(1, connect("p", Properties::default()));
    h.send(1, Packet5::Publish(publish("t", QoS::ExactlyOnce, 1, b"x")));
    assert!(
        matches!(&h.take(1)[..], [(Packet5::Disconnect(d), _)] if d.reason == ReasonCode::QOS_NOT_SUPPORTED)
    );
    // a second connection with the same client id takes over: 0x8E
    h.open(2, connect("dup", Properties::default()));
    h.open(3, connect("dup", Properties::default()));
    assert!(
        matches!(&h.take(2)[..], [(Packet5::Disconnect(d), _)] if d.reason == ReasonCode::SESSION_TAKEN_OVER)
    );
    assert!(h.closed.contains(&2));
}

#[test]
fn access_control_answers_5_0_clients_with_0x87() {
    use qossim::proto::mqtt::{Acl, AclRule, DenyPublish};
    let rule = |c: &str, p: &[&str], s: &[&str]| AclRule {
        clients: Some(c.to_string()),
        users: None,
        publish: p.iter().map(|x| x.to_string()).collect(),
        subscribe: s.iter().map(|x| x.to_string()).collect(),
    };
    for deny in [DenyPublish::Drop, DenyPublish::Disconnect] {
        let mut c = cfg();
        c.acl = Acl::new(vec![
            rule("sensor-*", &["sensors/%c/#"], &[]),
            rule("dashboard", &[], &["sensors/#"]),
        ])
        .unwrap();
        c.acl_deny_publish = deny;
        let mut h = H::new(c);
        h.open(1, connect("dashboard", Properties::default()));
        assert_eq!(h.sub(1, "#", q1(), None), [ReasonCode::NOT_AUTHORIZED]);
        assert_eq!(
            h.sub(1, "sensors/#", q1(), None),
            [ReasonCode::GRANTED_QOS_1]
        );
        assert_eq!(
            h.sub(1, "$share/g/admin/#", q1(), None),
            [ReasonCode::NOT_AUTHORIZED],
            "a shared filter is checked by its inner filter"
        );
        h.open(2, connect("sensor-7", Properties::default()));
        h.send(
            2,
            Packet5::Publish(publish("sensors/sensor-8/t", QoS::AtLeastOnce, 1, b"spoof")),
        );
        let got = h.take(2);
        assert!(
            matches!(&got[..], [(Packet5::PubAck(a), _)] if a.reason == ReasonCode::NOT_AUTHORIZED),
            "{deny:?}: {got:?}"
        );
        h.send(
            2,
            Packet5::Publish(publish("sensors/sensor-8/t", QoS::ExactlyOnce, 2, b"spoof")),
        );
        let got = h.take(2);
        assert!(
            matches!(&got[..], [(Packet5::PubRec(a), _)] if a.reason == ReasonCode::NOT_AUTHORIZED),
            "{deny:?}: {got:?}"
        );
        assert!(
            h.publishes(1).is_empty(),
            "the refused messages reach no one"
        );
        h.send(
            2,
            Packet5::Publish(publish("sensors/sensor-7/t", QoS::AtLeastOnce, 3, b"ok")),
        );
        assert_eq!(h.publishes(1).len(), 1);
        assert!(
            h.closed.is_empty(),
            "{deny:?}: QoS ≥ 1 refusals are answered, not closed"
        );
    }
}
