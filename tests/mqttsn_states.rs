//! MQTT-SN client ↔ gateway ↔ MQTT broker, driven through the Pair-style
//! harness of `mqttsn_common`: each test scripts one procedure of MQTT-SN
//! 1.2 §6 and checks what went over the wire and what the endpoints said.

mod mqttsn_common;

use mqttsn_common::*;
use qossim::proto::mqtt::{BrokerEvent, DisconnectReason, QoS};
use qossim::proto::mqttsn::client::{FoundBy, LostReason, PublishTopicType, Will};
use qossim::proto::mqttsn::gateway::{ClientGone, GatewayEvent};
use qossim::proto::mqttsn::{
    ClientConfig, ClientEvent, ClientState, GatewayConfig, GatewayMode, MsgType, Qos, ReturnCode,
    TopicIdType,
};
use qossim::sim::SimRng;

fn gw_config(mode: GatewayMode) -> GatewayConfig {
    GatewayConfig {
        mode,
        t_adv: None,
        ..GatewayConfig::default()
    }
}

fn client_config(id: &str) -> ClientConfig {
    ClientConfig {
        keep_alive: 0,
        ..ClientConfig::new(id)
    }
}

/// A net with one gateway in `mode`, `n` clients that know it, and an MQTT
/// subscriber on `#` (QoS 2).
fn setup(mode: GatewayMode, n: usize) -> Net {
    let mut net = Net::new(ms(10));
    net.add_gateway(gw_config(mode));
    for i in 0..n {
        let c = net.add_client(client_config(&format!("c{i}")));
        net.clients[c].add_gateway(1, gw_addr(0));
    }
    if mode != GatewayMode::Integrated {
        net.add_subscriber("#", QoS::ExactlyOnce);
    }
    net.run_for(secs(1));
    net
}

fn connect(net: &mut Net, i: usize) {
    let now = net.now;
    net.clients[i].connect(now);
    assert!(
        net.run_until_pred(secs(30), |n| n.clients[i].is_connected()),
        "client {i} did not connect: {:?}",
        net.client_events[i]
    );
}

fn kinds(net: &Net) -> Vec<MsgType> {
    net.log
        .iter()
        .filter(|w| !w.dropped)
        .map(|w| w.kind)
        .collect()
}

#[test]
fn connect_with_will_dialogue() {
    let mut net = setup(GatewayMode::Aggregating, 0);
    let mut cfg = client_config("willing");
    cfg.will = Some(Will {
        topic: "status/willing".into(),
        message: b"gone".to_vec(),
        qos: Qos::One,
        retain: false,
    });
    cfg.keep_alive = 10;
    let c = net.add_client(cfg);
    net.clients[c].add_gateway(1, gw_addr(0));
    connect(&mut net, c);
    // MQTT-SN 1.2 §6.2, figure 3.
    assert_eq!(
        kinds(&net),
        [
            MsgType::Connect,
            MsgType::WillTopicReq,
            MsgType::WillTopic,
            MsgType::WillMsgReq,
            MsgType::WillMsg,
            MsgType::ConnAck
        ]
    );
    assert!(net.gw_saw(0, |e| matches!(e, GatewayEvent::ClientConnected { client_id, .. } if &**client_id == "willing")));
    // §6.4: the will is replaced by WILLTOPICUPD + WILLMSGUPD.
    let now = net.now;
    net.clients[c].update_will(
        now,
        Some(Will {
            topic: "status/updated".into(),
            message: b"gone2".to_vec(),
            qos: Qos::One,
            retain: false,
        }),
    );
    net.run_for(secs(1));
    let updated = net.client_events[c]
        .iter()
        .filter(|(_, e)| {
            matches!(
                e,
                ClientEvent::WillUpdated {
                    code: ReturnCode::Accepted,
                    ..
                }
            )
        })
        .count();
    assert_eq!(updated, 2);
    // The client falls silent: 1.5 × 10 s later its (new) will is published.
    net.off[c] = true;
    net.run_for(secs(20));
    let wills: Vec<(&str, &[u8])> = net.subs[0]
        .received
        .iter()
        .map(|r| (r.1.as_str(), &r.2[..]))
        .collect();
    assert_eq!(wills, [("status/updated", &b"gone2"[..])]);
}

fn publish_all_qos(mode: GatewayMode) {
    let mut net = setup(mode, 2);
    connect(&mut net, 0);
    connect(&mut net, 1);
    if mode == GatewayMode::Integrated {
        let now = net.now;
        net.clients[1]
            .subscribe(now, "room/#", TopicIdType::Normal, Qos::Two)
            .expect("subscribe");
        net.run_for(secs(1));
    }
    let now = net.now;
    let h0 = net.clients[0]
        .publish(now, "room/1/temp", &b"q0"[..], Qos::Zero, false)
        .expect("publish");
    let h1 = net.clients[0]
        .publish(now, "room/1/temp", &b"q1"[..], Qos::One, false)
        .expect("publish");
    let h2 = net.clients[0]
        .publish(now, "room/1/temp", &b"q2"[..], Qos::Two, false)
        .expect("publish");
    net.run_for(secs(5));
    // One REGISTER for the topic (§6.5), then the three publishes.
    assert_eq!(net.sent(client_addr(0), MsgType::Register).len(), 1);
    assert_eq!(net.sent(client_addr(0), MsgType::Publish).len(), 3);
    assert_eq!(net.sent(client_addr(0), MsgType::PubRel).len(), 1);
    assert!(net.client_saw(0, |e| *e == ClientEvent::PublishSent { handle: h0 }));
    assert!(net.client_saw(0, |e| *e == ClientEvent::PublishAcked { handle: h1 }));
    assert!(net.client_saw(0, |e| *e == ClientEvent::PublishCompleted { handle: h2 }));
    assert!(net.client_saw(0, |e| matches!(e, ClientEvent::Registered { topic, by_gateway: false, .. } if &**topic == "room/1/temp")));
    if mode == GatewayMode::Integrated {
        let got: Vec<(Vec<u8>, Qos)> = net.client_events[1]
            .iter()
            .filter_map(|(_, e)| match e {
                ClientEvent::Message { payload, qos, .. } => Some((payload.to_vec(), *qos)),
                _ => None,
            })
            .collect();
        assert_eq!(
            got,
            [
                (b"q0".to_vec(), Qos::Zero),
                (b"q1".to_vec(), Qos::One),
                (b"q2".to_vec(), Qos::Two)
            ]
        );
    } else {
        let got: Vec<(String, Vec<u8>, QoS)> = net.subs[0]
            .received
            .iter()
            .map(|(_, t, p, q)| (t.clone(), p.clone(), *q))
            .collect();
        assert_eq!(
            got,
            [
                ("room/1/temp".into(), b"q0".to_vec(), QoS::AtMostOnce),
                ("room/1/temp".into(), b"q1".to_vec(), QoS::AtLeastOnce),
                ("room/1/temp".into(), b"q2".to_vec(), QoS::ExactlyOnce)
            ]
        );
    }
}

#[test]
fn register_and_publish_qos_0_1_2_aggregating() {
    publish_all_qos(GatewayMode::Aggregating);
}

#[test]
fn register_and_publish_qos_0_1_2_transparent() {
    publish_all_qos(GatewayMode::Transparent);
}

#[test]
fn register_and_publish_qos_0_1_2_integrated() {
    publish_all_qos(GatewayMode::Integrated);
}

#[test]
fn qos1_retransmits_with_dup_then_gives_up_after_n_retry() {
    let mut net = setup(GatewayMode::Aggregating, 1);
    connect(&mut net, 0);
    let now = net.now;
    net.clients[0]
        .publish(now, "a/b", &b"x"[..], Qos::One, false)
        .expect("publish");
    net.run_for(secs(1));
    // From now on every PUBLISH from the client is lost.
    net.set_loss(|w| w.kind == MsgType::Publish && w.from == client_addr(0));
    let start = net.now;
    let now = net.now;
    let h = net.clients[0]
        .publish(now, "a/b", &b"y"[..], Qos::One, false)
        .expect("publish");
    net.run_for(secs(60));
    let pubs: Vec<_> = net
        .sent(client_addr(0), MsgType::Publish)
        .into_iter()
        .filter(|w| w.at >= start)
        .map(|w| (w.at, w.dup, w.retransmission))
        .collect();
    let n = net.clients[0].config().n_retry as usize;
    let t_retry = net.clients[0].config().t_retry;
    assert_eq!(pubs.len(), n + 1, "{pubs:?}");
    assert!(!pubs[0].1, "first transmission without DUP");
    for k in 1..=n {
        assert!(pubs[k].1 && pubs[k].2, "resend {k} has DUP set");
        assert_eq!(pubs[k].0 - pubs[k - 1].0, t_retry, "T_RETRY spacing");
    }
    assert!(net.client_saw(0, |e| matches!(e, ClientEvent::GaveUp { message: Some(x), kind: MsgType::Publish, .. } if *x == h)));
    assert!(net.client_saw(0, |e| matches!(
        e,
        ClientEvent::GatewayLost {
            reason: LostReason::Retries(MsgType::Publish),
            ..
        }
    )));
    let st = net.clients[0].stats();
    assert_eq!(st.retransmissions, n as u64);
    assert_eq!(st.give_ups, 1);
    // The given-up message is dropped, not resent after reconnecting.
    assert!(net.subs[0].received.iter().all(|(_, _, p, _)| p != b"y"));
}

#[test]
fn at_most_one_qos1_publish_outstanding_and_queue_bounded() {
    let mut net = setup(GatewayMode::Aggregating, 1);
    net.clients[0] = qossim::proto::mqttsn::Client::new(
        ClientConfig {
            max_queued: 3,
            ..client_config("c0")
        },
        SimRng::stream(1, "x"),
    );
    net.clients[0].add_gateway(1, gw_addr(0));
    connect(&mut net, 0);
    let now = net.now;
    let mut ok = 0;
    let mut refused = 0;
    for k in 0..5 {
        match net.clients[0].publish(now, "t/x", vec![k as u8], Qos::One, false) {
            Ok(_) => ok += 1,
            Err(_) => refused += 1,
        }
    }
    // The first waits for REGISTER at the queue's head: the queue holds 3.
    assert_eq!((ok, refused), (3, 2));
    assert_eq!(net.clients[0].stats().dropped_queue_full, 2);
    net.run_for(secs(5));
    // Never two PUBLISHes without a PUBACK between them.
    let mut outstanding = 0;
    for w in net.log.iter().filter(|w| !w.dropped) {
        match w.kind {
            MsgType::Publish if w.from == client_addr(0) => {
                outstanding += 1;
                assert!(outstanding <= 1, "two QoS 1 PUBLISHes outstanding");
            }
            MsgType::PubAck if w.to == client_addr(0) => outstanding -= 1,
            _ => {}
        }
    }
    assert_eq!(net.subs[0].received.len(), 3);
}

#[test]
fn qos2_exactly_once_under_seeded_loss() {
    let mut net = Net::new(ms(10)).with_seed(7);
    net.add_gateway(gw_config(GatewayMode::Aggregating));
    let mut cfg = client_config("q2");
    cfg.n_retry = 10;
    cfg.t_retry = secs(1);
    cfg.max_queued = 1000;
    let c = net.add_client(cfg);
    net.clients[c].add_gateway(1, gw_addr(0));
    net.add_subscriber("#", QoS::ExactlyOnce);
    net.run_for(secs(1));
    connect(&mut net, c);
    let mut rng = SimRng::stream(42, "loss");
    net.set_loss(move |_| rng.bernoulli(0.3));
    let now = net.now;
    let total = 300u32;
    for k in 0..total {
        net.clients[c]
            .publish(now, "q2/topic", k.to_be_bytes().to_vec(), Qos::Two, false)
            .expect("publish");
    }
    net.run_for(secs(20_000));
    let completed = net.client_events[c]
        .iter()
        .filter(|(_, e)| matches!(e, ClientEvent::PublishCompleted { .. }))
        .count();
    let mut got: Vec<u32> = net.subs[0]
        .received
        .iter()
        .map(|(_, _, p, _)| u32::from_be_bytes([p[0], p[1], p[2], p[3]]))
        .collect();
    let n = got.len();
    got.sort_unstable();
    got.dedup();
    assert_eq!(got.len(), n, "a QoS 2 message was delivered twice");
    eprintln!("completed {completed} delivered {n} log {}", net.log.len());
    assert!(
        completed >= (total as usize) * 95 / 100,
        "completed {completed}"
    );
    assert!(n >= completed, "every completed message was delivered");
    assert!(
        net.gateways[0].stats().duplicates_suppressed > 0,
        "loss produced DUP PUBLISHes the gateway suppressed"
    );
}

#[test]
fn predefined_short_topics_and_qos_minus_one() {
    let mut net = Net::new(ms(10));
    let mut g = gw_config(GatewayMode::Aggregating);
    g.predefined = vec![(7, "sensors/temp".into())];
    net.add_gateway(g);
    let mut cfg = client_config("pre");
    cfg.predefined = vec![(7, "sensors/temp".into())];
    cfg.publish_topic_type = PublishTopicType::Predefined;
    let a = net.add_client(cfg);
    net.clients[a].add_gateway(1, gw_addr(0));
    let mut cfg = client_config("short");
    cfg.publish_topic_type = PublishTopicType::Short;
    let b = net.add_client(cfg);
    net.clients[b].add_gateway(1, gw_addr(0));
    net.add_subscriber("#", QoS::ExactlyOnce);
    net.run_for(secs(1));
    // QoS −1: no CONNECT at all (§6.8).
    let now = net.now;
    net.clients[a]
        .publish(now, "sensors/temp", &b"-1"[..], Qos::MinusOne, false)
        .expect("qos -1");
    // Not allowed for a name without a predefined id or short form.
    assert!(net.clients[b]
        .publish(now, "long/name", &b"x"[..], Qos::MinusOne, false)
        .is_err());
    net.run_for(secs(1));
    assert!(net.sent(client_addr(a), MsgType::Connect).is_empty());
    assert_eq!(
        net.clients[a].stats().publishes_sent,
        1,
        "a QoS −1 publish is a publish sent"
    );
    assert_eq!(
        net.subs[0].received.last().map(|r| (r.1.as_str(), r.3)),
        Some(("sensors/temp", QoS::AtMostOnce)),
        "QoS −1 is QoS 0 upstream"
    );
    connect(&mut net, a);
    connect(&mut net, b);
    let now = net.now;
    net.clients[a]
        .publish(now, "sensors/temp", &b"p1"[..], Qos::One, false)
        .expect("predefined");
    net.clients[b]
        .publish(now, "ab", &b"s1"[..], Qos::One, false)
        .expect("short");
    net.run_for(secs(2));
    assert!(
        net.log.iter().all(|w| w.kind != MsgType::Register),
        "no REGISTER needed"
    );
    let got: Vec<(&str, &[u8])> = net.subs[0]
        .received
        .iter()
        .map(|r| (r.1.as_str(), &r.2[..]))
        .collect();
    assert!(got.contains(&("sensors/temp", &b"p1"[..])));
    assert!(got.contains(&("ab", &b"s1"[..])));
}

fn subscribe_wildcard(mode: GatewayMode) {
    let mut net = setup(mode, 2);
    connect(&mut net, 0);
    connect(&mut net, 1);
    let now = net.now;
    let h = net.clients[1]
        .subscribe(now, "room/+/temp", TopicIdType::Normal, Qos::One)
        .expect("subscribe");
    net.run_for(secs(1));
    assert!(net.client_saw(1, |e| matches!(e, ClientEvent::Subscribed { handle, topic_id: 0, code: ReturnCode::Accepted, .. } if *handle == h)));
    let now = net.now;
    for r in ["room/1/temp", "room/2/temp", "room/2/humidity"] {
        net.clients[0]
            .publish(now, r, r.as_bytes().to_vec(), Qos::One, false)
            .expect("publish");
    }
    net.run_for(secs(5));
    // The gateway REGISTERs each new topic with client 1 before its
    // PUBLISH (§6.10), and client 1 answers REGACK.
    let to1: Vec<MsgType> = net
        .log
        .iter()
        .filter(|w| w.to == client_addr(1) && w.from == gw_addr(0))
        .map(|w| w.kind)
        .filter(|k| matches!(k, MsgType::Register | MsgType::Publish))
        .collect();
    assert_eq!(
        to1,
        [
            MsgType::Register,
            MsgType::Publish,
            MsgType::Register,
            MsgType::Publish
        ]
    );
    assert_eq!(net.sent(client_addr(1), MsgType::RegAck).len(), 2);
    let topics: Vec<String> = net.client_events[1]
        .iter()
        .filter_map(|(_, e)| match e {
            ClientEvent::Message { topic, .. } => Some(topic.to_string()),
            _ => None,
        })
        .collect();
    assert_eq!(topics, ["room/1/temp", "room/2/temp"]);
    // A second message on a known topic needs no REGISTER.
    let now = net.now;
    net.clients[0]
        .publish(now, "room/1/temp", &b"again"[..], Qos::Zero, false)
        .expect("publish");
    net.run_for(secs(2));
    assert_eq!(
        net.log
            .iter()
            .filter(|w| w.to == client_addr(1) && w.kind == MsgType::Register)
            .count(),
        2
    );
    // Unsubscribe: nothing more arrives.
    let now = net.now;
    net.clients[1]
        .unsubscribe(now, "room/+/temp", TopicIdType::Normal)
        .expect("unsubscribe");
    net.run_for(secs(1));
    let before = net.client_events[1].len();
    let now = net.now;
    net.clients[0]
        .publish(now, "room/1/temp", &b"late"[..], Qos::Zero, false)
        .expect("publish");
    net.run_for(secs(2));
    assert!(!net.client_events[1][before..]
        .iter()
        .any(|(_, e)| matches!(e, ClientEvent::Message { .. })));
}

#[test]
fn subscribe_wildcard_register_from_gateway_aggregating() {
    subscribe_wildcard(GatewayMode::Aggregating);
}

#[test]
fn subscribe_wildcard_register_from_gateway_integrated() {
    subscribe_wildcard(GatewayMode::Integrated);
}

#[test]
fn subscribe_wildcard_register_from_gateway_transparent() {
    subscribe_wildcard(GatewayMode::Transparent);
}

/// Client 1 subscribes to `room/#` and falls asleep for `sleep` seconds.
fn sleeper(max_buffered: usize, sleep: u16) -> Net {
    let mut net = Net::new(ms(10));
    let mut g = gw_config(GatewayMode::Aggregating);
    g.max_buffered = max_buffered;
    net.add_gateway(g);
    for i in 0..2 {
        let c = net.add_client(client_config(&format!("c{i}")));
        net.clients[c].add_gateway(1, gw_addr(0));
    }
    net.add_subscriber("#", QoS::ExactlyOnce);
    net.run_for(secs(1));
    connect(&mut net, 0);
    connect(&mut net, 1);
    let now = net.now;
    net.clients[1]
        .subscribe(now, "room/#", TopicIdType::Normal, Qos::One)
        .expect("subscribe");
    net.run_for(secs(1));
    let now = net.now;
    net.clients[1].sleep(now, sleep);
    assert!(net.run_until_pred(secs(5), |n| n.clients[1].state() == ClientState::Asleep));
    assert!(net.gateways[0].is_asleep(client_addr(1)));
    net
}

#[test]
fn sleeping_client_buffers_and_flushes_on_wake() {
    let mut net = sleeper(20, 60);
    let now = net.now;
    for k in 0..3u8 {
        net.clients[0]
            .publish(now, "room/1/temp", vec![k], Qos::One, false)
            .expect("publish");
    }
    net.run_for(secs(5));
    assert_eq!(net.gateways[0].stats().buffered_asleep, 3);
    assert_eq!(net.gateways[0].queued_for(client_addr(1)), Some(3));
    assert!(!net.client_saw(1, |e| matches!(e, ClientEvent::Message { .. })));
    let mark = net.client_events[1].len();
    net.run_for(secs(60));
    // Woke, PINGREQ with ClientId, three PUBLISHes, PINGRESP, asleep again.
    let ev: Vec<String> = net.client_events[1][mark..]
        .iter()
        .filter_map(|(_, e)| match e {
            ClientEvent::Awake => Some("awake".to_string()),
            ClientEvent::Asleep => Some("asleep".to_string()),
            ClientEvent::Message { payload, .. } => Some(format!("msg{}", payload[0])),
            _ => None,
        })
        .collect();
    assert_eq!(ev, ["awake", "msg0", "msg1", "msg2", "asleep"]);
    let pingreq = net.sent(client_addr(1), MsgType::PingReq);
    assert_eq!(pingreq.len(), 1);
    assert!(pingreq[0].len > 2, "PINGREQ carries the ClientId");
    assert_eq!(net.gateways[0].queued_for(client_addr(1)), Some(0));
    assert!(net.gateways[0].is_asleep(client_addr(1)));
}

#[test]
fn sleeping_buffer_overflow_is_counted() {
    let mut net = sleeper(2, 60);
    let now = net.now;
    for k in 0..5u8 {
        net.clients[0]
            .publish(now, "room/1/temp", vec![k], Qos::Zero, false)
            .expect("publish");
    }
    net.run_for(secs(70));
    let st = net.gateways[0].stats();
    assert_eq!((st.buffered_asleep, st.dropped_asleep), (2, 3));
    let got = net.client_events[1]
        .iter()
        .filter(|(_, e)| matches!(e, ClientEvent::Message { .. }))
        .count();
    assert_eq!(got, 2);
}

#[test]
fn oversleeping_client_and_silent_client_have_their_wills_published() {
    wills_of_lost_clients(GatewayMode::Aggregating);
}

#[test]
fn oversleeping_client_and_silent_client_wills_transparent() {
    wills_of_lost_clients(GatewayMode::Transparent);
}

fn wills_of_lost_clients(mode: GatewayMode) {
    let mut net = Net::new(ms(10));
    net.add_gateway(gw_config(mode));
    for (i, name) in ["sleepy", "silent"].iter().enumerate() {
        let mut cfg = client_config(name);
        cfg.keep_alive = if i == 1 { 10 } else { 0 };
        cfg.will = Some(Will {
            topic: format!("will/{name}"),
            message: b"bye".to_vec(),
            qos: Qos::One,
            retain: false,
        });
        let c = net.add_client(cfg);
        net.clients[c].add_gateway(1, gw_addr(0));
    }
    net.add_subscriber("will/#", QoS::AtLeastOnce);
    net.run_for(secs(1));
    connect(&mut net, 0);
    connect(&mut net, 1);
    let now = net.now;
    net.clients[0].sleep(now, 10);
    assert!(net.run_until_pred(secs(5), |n| n.clients[0].state() == ClientState::Asleep));
    // Both clients go silent (switched off).
    net.off[0] = true;
    net.off[1] = true;
    let t0 = net.now;
    net.run_for(secs(30));
    let wills: Vec<(&str, f64)> = net.subs[0]
        .received
        .iter()
        .map(|(t, topic, _, _)| (topic.as_str(), (*t - t0).as_secs_f64()))
        .collect();
    assert_eq!(wills.len(), 2, "{wills:?}");
    // 1.5 × 10 s after the last message from each.
    for (topic, at) in &wills {
        assert!(*at <= 16.0, "{topic} at {at}");
    }
    assert!(net.gw_saw(0, |e| matches!(
        e,
        GatewayEvent::ClientDisconnected {
            reason: ClientGone::SleepTimeout,
            ..
        }
    )));
    assert!(net.gw_saw(0, |e| matches!(
        e,
        GatewayEvent::ClientDisconnected {
            reason: ClientGone::KeepAliveTimeout,
            ..
        }
    )));
    assert_eq!(net.gateways[0].stats().wills_published, 2);
}

#[test]
fn discovery_by_searchgw_and_gwinfo() {
    let mut net = Net::new(ms(10));
    net.add_gateway(gw_config(GatewayMode::Aggregating));
    let a = net.add_client(client_config("a"));
    let now = net.now;
    net.clients[a].connect(now);
    assert!(net.run_until_pred(secs(30), |n| n.clients[a].is_connected()));
    let s = net.sent(client_addr(a), MsgType::SearchGw);
    assert_eq!(s.len(), 1);
    assert!(s[0].broadcast);
    // Sent after a random delay in [0, T_SEARCHGW].
    assert!(s[0].at <= qossim::sim::SimTime::ZERO + secs(5));
    let d = net.clients[a]
        .stats()
        .discovery_time
        .expect("discovery time");
    assert!(d <= secs(5) + ms(20), "{d}");
    assert!(net.client_saw(a, |e| matches!(e, ClientEvent::GatewayFound { by: FoundBy::GwInfo, addr, .. } if *addr == gw_addr(0))));

    // Client b cannot hear the gateway (nor the gateway it); client a
    // answers b's SEARCHGW with GWINFO carrying the gateway's address.
    let b = net.add_client(client_config("b"));
    net.set_reach(move |from, to| {
        !((from == client_addr(b) && to == gw_addr(0))
            || (from == gw_addr(0) && to == client_addr(b)))
    });
    let now = net.now;
    net.clients[b].connect(now);
    assert!(net.run_until_pred(secs(30), |n| n
        .client_saw(b, |e| matches!(e, ClientEvent::GatewayFound { .. }))));
    assert!(net.client_saw(b, |e| matches!(e, ClientEvent::GatewayFound { by: FoundBy::GwInfo, addr, .. } if *addr == gw_addr(0))));
    // (A broadcast is logged once per receiver: count those reaching b.)
    let gwinfo: Vec<_> = net
        .sent(client_addr(a), MsgType::GwInfo)
        .into_iter()
        .filter(|w| w.to == client_addr(b))
        .collect();
    assert_eq!(gwinfo.len(), 1);
    assert_eq!(gwinfo[0].len, 3 + 6, "GWINFO with a 6-octet GwAdd");
}

#[test]
fn client_gwinfo_answer_cancelled_when_gateway_answers_first() {
    let mut net = Net::new(ms(10));
    net.add_gateway(gw_config(GatewayMode::Aggregating));
    let a = net.add_client(client_config("a"));
    net.clients[a].add_gateway(1, gw_addr(0));
    net.run_for(secs(1));
    connect(&mut net, a);
    let b = net.add_client(client_config("b"));
    let now = net.now;
    net.clients[b].connect(now);
    assert!(net.run_until_pred(secs(30), |n| n.clients[b].is_connected()));
    net.run_for(secs(10));
    // The gateway's immediate GWINFO reached a before its random delay ran
    // out (§6.1).
    assert!(net.sent(client_addr(a), MsgType::GwInfo).is_empty());
    let to_b = net
        .sent(gw_addr(0), MsgType::GwInfo)
        .into_iter()
        .filter(|w| w.to == client_addr(b))
        .count();
    assert_eq!(to_b, 1);
}

#[test]
fn discovery_by_advertise() {
    let mut net = Net::new(ms(10));
    let mut g = gw_config(GatewayMode::Aggregating);
    g.t_adv = Some(secs(900));
    net.add_gateway(g);
    let a = net.add_client(client_config("a"));
    net.run_for(secs(1));
    assert!(net.client_saw(a, |e| matches!(
        e,
        ClientEvent::GatewayFound {
            by: FoundBy::Advertise,
            ..
        }
    )));
    connect(&mut net, a);
    assert!(net.sent(client_addr(a), MsgType::SearchGw).is_empty());
    assert_eq!(net.sent(gw_addr(0), MsgType::Advertise).len(), 1);
}

#[test]
fn failover_to_second_gateway_after_retries() {
    let mut net = Net::new(ms(10));
    net.add_gateway(gw_config(GatewayMode::Aggregating));
    net.add_gateway(GatewayConfig {
        gw_id: 2,
        ..gw_config(GatewayMode::Aggregating)
    });
    let a = net.add_client(client_config("a"));
    net.clients[a].add_gateway(1, gw_addr(0));
    net.clients[a].add_gateway(2, gw_addr(1));
    net.add_subscriber("#", QoS::AtLeastOnce);
    net.run_for(secs(1));
    connect(&mut net, a);
    assert_eq!(net.clients[a].gateway(), Some(gw_addr(0)));
    // Gateway 0 dies.
    net.set_loss(|w| w.to == gw_addr(0) || w.from == gw_addr(0));
    let now = net.now;
    net.clients[a]
        .publish(now, "x/y", &b"lost"[..], Qos::One, false)
        .expect("publish");
    net.clients[a]
        .publish(now, "x/y", &b"after"[..], Qos::One, false)
        .expect("publish");
    net.run_for(secs(120));
    assert!(net.client_saw(a, |e| matches!(
        e,
        ClientEvent::GatewayLost {
            gw_id: 1,
            reason: LostReason::Retries(_),
            ..
        }
    )));
    assert_eq!(net.clients[a].gateway(), Some(gw_addr(1)));
    assert!(net.clients[a].is_connected());
    let got: Vec<&[u8]> = net.subs[0].received.iter().map(|r| &r.2[..]).collect();
    assert_eq!(got, [&b"after"[..]], "the given-up message is not resent");
    assert_eq!(net.clients[a].gateways().count(), 1, "gateway 0 forgotten");
}

#[test]
fn failover_when_advertisements_stop() {
    let mut net = Net::new(ms(10));
    let mut g0 = gw_config(GatewayMode::Aggregating);
    g0.t_adv = Some(secs(60));
    net.add_gateway(g0);
    let mut g1 = gw_config(GatewayMode::Aggregating);
    g1.gw_id = 2;
    g1.t_adv = Some(secs(60));
    net.add_gateway(g1);
    let a = net.add_client(client_config("a"));
    net.run_for(secs(1));
    connect(&mut net, a);
    assert_eq!(net.clients[a].gateway(), Some(gw_addr(0)));
    let cut = net.now;
    net.set_loss(|w| w.from == gw_addr(0) && w.kind == MsgType::Advertise);
    net.run_for(secs(400));
    // N_ADV (3) × 60 s after the last ADVERTISE heard.
    let lost_at = net.client_events[a]
        .iter()
        .find(|(_, e)| {
            matches!(
                e,
                ClientEvent::GatewayLost {
                    reason: LostReason::AdvertiseTimeout,
                    gw_id: 1,
                    ..
                }
            )
        })
        .map(|(t, _)| *t)
        .expect("gateway 0 lost");
    let last_heard = net
        .log
        .iter()
        .filter(|w| w.from == gw_addr(0) && w.kind == MsgType::Advertise && !w.dropped)
        .map(|w| w.at + net.delay)
        .max()
        .expect("an ADVERTISE was heard");
    assert!(last_heard <= cut);
    assert_eq!(lost_at - last_heard, secs(180));
    assert_eq!(net.clients[a].gateway(), Some(gw_addr(1)));
    assert!(net.clients[a].is_connected());
}

#[test]
fn aggregating_opens_one_upstream_for_many_clients() {
    let mut net = setup(GatewayMode::Aggregating, 6);
    for i in 0..6 {
        connect(&mut net, i);
        let now = net.now;
        net.clients[i]
            .subscribe(now, "news/#", TopicIdType::Normal, Qos::One)
            .expect("subscribe");
    }
    net.run_for(secs(2));
    let now = net.now;
    net.clients[0]
        .publish(now, "news/today", &b"hi"[..], Qos::One, false)
        .expect("publish");
    net.run_for(secs(5));
    assert_eq!(net.upstream_opened.len(), 1);
    assert_eq!(net.gateways[0].upstream_count(), 1);
    assert_eq!(net.gateways[0].stats().upstream_opened, 1);
    // Fan-out: every subscribed client got it once.
    for i in 0..6 {
        let n = net.client_events[i]
            .iter()
            .filter(|(_, e)| matches!(e, ClientEvent::Message { .. }))
            .count();
        assert_eq!(n, 1, "client {i}");
    }
    // The broker saw one SUBSCRIBE for the shared filter.
    assert_eq!(net.gateways[0].stats().mqtt_sent_by_type[7], 1);
}

#[test]
fn transparent_opens_one_upstream_per_client() {
    let mut net = setup(GatewayMode::Transparent, 3);
    for i in 0..3 {
        connect(&mut net, i);
    }
    assert_eq!(net.upstream_opened.len(), 3);
    assert_eq!(
        net.broker.connection_count(),
        4,
        "3 upstreams + the subscriber"
    );
    let now = net.now;
    net.clients[1].disconnect(now);
    net.run_for(secs(2));
    assert_eq!(net.clients[1].state(), ClientState::Idle);
    assert_eq!(net.gateways[0].upstream_count(), 2);
    assert_eq!(net.broker.connection_count(), 3);
}

#[test]
fn forwarder_encapsulation_end_to_end() {
    let mut net = Net::new(ms(10));
    net.add_gateway(gw_config(GatewayMode::Aggregating));
    let f = net.add_forwarder(0);
    let a = net.add_client(client_config("behind"));
    // The client hears only the forwarder; the forwarder both sides.
    net.set_reach(move |from, to| {
        let c = client_addr(a);
        !((from == c && to != fwd_addr(f)) || (to == c && from != fwd_addr(f)))
    });
    net.add_subscriber("#", QoS::AtLeastOnce);
    net.run_for(secs(1));
    let now = net.now;
    net.clients[a].connect(now);
    assert!(net.run_until_pred(secs(30), |n| n.clients[a].is_connected()));
    // The client's gateway is the forwarder it speaks to.
    assert_eq!(net.clients[a].gateway(), Some(fwd_addr(f)));
    assert_eq!(net.gateways[0].client_id(client_addr(a)), Some("behind"));
    let now = net.now;
    net.clients[a]
        .publish(now, "fwd/t", &b"via"[..], Qos::One, false)
        .expect("publish");
    net.run_for(secs(2));
    assert!(net.client_saw(a, |e| matches!(e, ClientEvent::PublishAcked { .. })));
    assert_eq!(net.subs[0].received.len(), 1);
    let st = net.forwarders[f].stats();
    assert!(st.encapsulated >= 4 && st.decapsulated >= 4, "{st:?}");
    // Between forwarder and gateway everything is encapsulated (0xFE).
    assert!(net
        .log
        .iter()
        .filter(|w| (w.from == fwd_addr(f) && w.to == gw_addr(0))
            || (w.from == gw_addr(0) && w.to == fwd_addr(f) && !w.broadcast))
        .all(|w| w.kind == MsgType::Encapsulated));
}

#[test]
fn malformed_datagrams_are_counted_never_a_panic() {
    let mut net = setup(GatewayMode::Aggregating, 1);
    let f = net.add_forwarder(0);
    connect(&mut net, 0);
    let junk: [&[u8]; 8] = [
        &[],
        &[0x00],
        &[0x05, 0x0C, 0x03],
        &[0x02, 0x03],
        &[0x03, 0xFE, 0x00, 0x09],
        &[0x07, 0x0C, 0x03, 0, 1, 0, 1],
        &[0x01, 0xff, 0xff, 0x0C],
        &[0xff; 40],
    ];
    let before_gw = net.gateways[0].stats().decode_errors;
    for j in junk {
        net.inject(client_addr(0), gw_addr(0), j);
        net.inject(gw_addr(0), client_addr(0), j);
        net.inject(client_addr(0), fwd_addr(f), j);
        net.inject(gw_addr(0), fwd_addr(f), j);
    }
    net.run_for(secs(1));
    assert_eq!(net.gateways[0].stats().decode_errors - before_gw, 8);
    assert_eq!(net.clients[0].stats().decode_errors, 8);
    assert_eq!(net.forwarders[f].stats().decode_errors, 16);
    // Still working.
    let now = net.now;
    net.clients[0]
        .publish(now, "ok", &b"1"[..], Qos::One, false)
        .expect("publish");
    net.run_for(secs(2));
    assert!(net.client_saw(0, |e| matches!(e, ClientEvent::PublishAcked { .. })));
}

#[test]
fn gateway_refuses_with_congestion_when_full() {
    let mut net = Net::new(ms(10));
    let mut g = gw_config(GatewayMode::Integrated);
    g.max_clients = 1;
    g.max_topics_per_client = 1;
    net.add_gateway(g);
    for i in 0..2 {
        let c = net.add_client(client_config(&format!("c{i}")));
        net.clients[c].add_gateway(1, gw_addr(0));
    }
    net.run_for(secs(1));
    connect(&mut net, 0);
    let now = net.now;
    net.clients[1].connect(now);
    net.run_for(secs(5));
    assert_eq!(net.clients[1].state(), ClientState::Connecting);
    assert!(net
        .log
        .iter()
        .any(|w| w.to == client_addr(1) && w.kind == MsgType::ConnAck));
    assert_eq!(net.gateways[0].stats().connects_refused, 1);
    // Congestion: the client waits T_WAIT (5 min) before trying again.
    assert_eq!(net.sent(client_addr(1), MsgType::Connect).len(), 1);
    // A second topic is refused REGACK congestion.
    let now = net.now;
    net.clients[0]
        .publish(now, "t/1", &b"a"[..], Qos::Zero, false)
        .expect("publish");
    net.clients[0]
        .publish(now, "t/2", &b"b"[..], Qos::Zero, false)
        .expect("publish");
    net.run_for(secs(5));
    assert!(net
        .log
        .iter()
        .any(|w| w.kind == MsgType::RegAck && w.to == client_addr(0)));
    assert_eq!(net.clients[0].topic_id("t/1"), Some(1));
    assert_eq!(net.clients[0].topic_id("t/2"), None);
}

#[test]
fn keep_alive_pingreq_and_lost_gateway_after_unanswered_pings() {
    let mut net = Net::new(ms(10));
    net.add_gateway(gw_config(GatewayMode::Aggregating));
    let mut cfg = client_config("ka");
    cfg.keep_alive = 20;
    let a = net.add_client(cfg);
    net.clients[a].add_gateway(1, gw_addr(0));
    net.run_for(secs(1));
    connect(&mut net, a);
    let t0 = net.now;
    net.run_for(secs(65));
    // MQTT-SN 1.2 §6.11: PINGREQ after each silent keep-alive period.
    let pings: Vec<f64> = net
        .sent(client_addr(a), MsgType::PingReq)
        .iter()
        .map(|w| (w.at - t0).as_secs_f64())
        .collect();
    assert_eq!(pings.len(), 3, "{pings:?}");
    assert!((pings[0] - 20.0).abs() < 0.1 && (pings[1] - 40.0).abs() < 0.1);
    assert_eq!(
        net.log
            .iter()
            .filter(|w| w.kind == MsgType::PingResp && w.to == client_addr(a))
            .count(),
        3
    );
    // The gateway vanishes: N_RETRY resends of PINGREQ, then it is lost.
    net.set_loss(|w| w.to == gw_addr(0) || w.from == gw_addr(0));
    let t1 = net.now;
    net.run_for(secs(100));
    let lost = net.client_events[a]
        .iter()
        .find(|(_, e)| {
            matches!(
                e,
                ClientEvent::GatewayLost {
                    reason: LostReason::Retries(MsgType::PingReq),
                    ..
                }
            )
        })
        .map(|(t, _)| *t)
        .expect("gateway lost");
    // Next PINGREQ at ≤ 20 s, then 3 × T_RETRY (10 s), then lost at the
    // fourth expiry.
    let since = (lost - t1).as_secs_f64();
    assert!(since <= 20.0 + 40.0 + 0.1, "{since}");
    assert_eq!(
        net.sent(client_addr(a), MsgType::PingReq)
            .iter()
            .filter(|w| w.at >= t1)
            .count(),
        4
    );
}

#[test]
fn gateway_retransmits_to_client_with_dup() {
    let mut net = setup(GatewayMode::Integrated, 2);
    connect(&mut net, 0);
    connect(&mut net, 1);
    let now = net.now;
    net.clients[1]
        .subscribe(now, "d/t", TopicIdType::Normal, Qos::One)
        .expect("subscribe");
    net.run_for(secs(1));
    // The first PUBLISH towards client 1 is lost.
    let mut first = true;
    net.set_loss(move |w| {
        let hit = first && w.kind == MsgType::Publish && w.to == client_addr(1);
        if hit {
            first = false;
        }
        hit
    });
    let now = net.now;
    net.clients[0]
        .publish(now, "d/t", &b"m"[..], Qos::One, false)
        .expect("publish");
    net.run_for(secs(15));
    let to1: Vec<(bool, bool, bool)> = net
        .log
        .iter()
        .filter(|w| w.kind == MsgType::Publish && w.to == client_addr(1))
        .map(|w| (w.dropped, w.dup, w.retransmission))
        .collect();
    assert_eq!(to1, [(true, false, false), (false, true, true)]);
    let got = net.client_events[1]
        .iter()
        .filter(|(_, e)| matches!(e, ClientEvent::Message { .. }))
        .count();
    assert_eq!(got, 1);
    assert_eq!(net.gateways[0].stats().retransmissions, 1);
}

#[test]
fn gateway_holds_10000_clients_and_supervises_them() {
    use qossim::net::addr::{Addr, SockAddr};
    use qossim::proto::mqttsn::gateway::{GatewayInput, GatewayTransmit};
    use qossim::proto::mqttsn::{Gateway, Message, SubTopic, TopicRef};
    use qossim::proto::{Datagram, SansIo};
    use qossim::sim::SimTime;

    let mut g = gw_config(GatewayMode::Integrated);
    g.predefined = vec![(9, "all/news".into())];
    let mut gw = Gateway::new(g, SimRng::stream(1, "gw"));
    let mut enc = Vec::new();
    let mut buf = Vec::new();
    let mut input = |gw: &mut Gateway, now: SimTime, from: SockAddr, m: Message<'_>| {
        enc.clear();
        m.encode(&mut enc).expect("encode");
        gw.handle_input(now, GatewayInput::Datagram(Datagram { from, data: &enc }));
    };
    let addr = |i: u32| SockAddr::new(Addr::from_bits(0x0a01_0000 + i), 1883);
    let drain = |gw: &mut Gateway, buf: &mut Vec<u8>, kind: MsgType| {
        let mut n = 0;
        while let Some(t) = {
            buf.clear();
            gw.poll_transmit(SimTime::ZERO, buf)
        } {
            if let GatewayTransmit::Udp { kind: k, .. } = t {
                n += usize::from(k == kind);
            }
        }
        while gw.poll_event().is_some() {}
        n
    };
    let n = 10_000u32;
    let t = SimTime::ZERO;
    for i in 0..n {
        let id = format!("node{i}");
        input(
            &mut gw,
            t,
            addr(i),
            Message::Connect {
                will: false,
                clean_session: true,
                duration: 60,
                client_id: &id,
            },
        );
        input(
            &mut gw,
            t,
            addr(i),
            Message::Subscribe {
                dup: false,
                qos: Qos::Zero,
                msg_id: 1,
                topic: SubTopic::Name("all/#"),
            },
        );
    }
    assert_eq!(drain(&mut gw, &mut buf, MsgType::ConnAck), n as usize);
    assert_eq!(gw.client_count(), n as usize);
    assert_eq!(gw.stats().clients, u64::from(n));
    // One QoS −1 message on a predefined topic fans out to all of them.
    input(
        &mut gw,
        t,
        addr(0),
        Message::Publish {
            dup: false,
            qos: Qos::MinusOne,
            retain: false,
            topic: TopicRef::Predefined(9),
            msg_id: 0,
            data: b"hello",
        },
    );
    assert_eq!(drain(&mut gw, &mut buf, MsgType::Publish), n as usize);
    // Silent for 1.5 × 60 s: every client is lost.
    let later = t + secs(91);
    assert!(gw.poll_timeout().is_some_and(|x| x <= later));
    gw.handle_timeout(later);
    assert_eq!(gw.client_count(), 0);
    assert_eq!(gw.stats().keep_alive_timeouts, u64::from(n));
}

#[test]
fn awake_client_sends_its_queued_publish_after_pingresp() {
    let mut net = sleeper(20, 30);
    let now = net.now;
    let h = net.clients[1]
        .publish(now, "room/9/out", &b"from-sleeper"[..], Qos::One, false)
        .expect("queued while asleep");
    net.run_for(secs(5));
    assert!(net.subs[0].received.iter().all(|r| r.2 != b"from-sleeper"));
    let mark = net.client_events[1].len();
    net.run_for(secs(30));
    let ev: Vec<String> = net.client_events[1][mark..]
        .iter()
        .filter_map(|(_, e)| match e {
            ClientEvent::Awake => Some("awake".into()),
            ClientEvent::Asleep => Some("asleep".into()),
            ClientEvent::PublishAcked { handle } if *handle == h => Some("acked".into()),
            _ => None,
        })
        .collect();
    assert_eq!(ev, ["awake", "acked", "asleep"]);
    assert!(net.subs[0].received.iter().any(|r| r.2 == b"from-sleeper"));
    assert!(net.gateways[0].is_asleep(client_addr(1)));
}

#[test]
fn persistent_session_keeps_subscriptions_and_buffers_while_away() {
    let mut net = Net::new(ms(10));
    net.add_gateway(gw_config(GatewayMode::Integrated));
    let a = net.add_client(client_config("pub"));
    let mut cfg = client_config("persistent");
    cfg.clean_session = false;
    let b = net.add_client(cfg);
    for c in [a, b] {
        net.clients[c].add_gateway(1, gw_addr(0));
    }
    net.run_for(secs(1));
    connect(&mut net, a);
    connect(&mut net, b);
    let now = net.now;
    net.clients[b]
        .subscribe(now, "p/#", TopicIdType::Normal, Qos::One)
        .expect("subscribe");
    net.run_for(secs(1));
    let now = net.now;
    net.clients[b].disconnect(now);
    net.run_for(secs(1));
    assert_eq!(net.clients[b].state(), ClientState::Idle);
    let now = net.now;
    net.clients[a]
        .publish(now, "p/x", &b"while-away"[..], Qos::One, false)
        .expect("publish");
    net.run_for(secs(1));
    assert_eq!(net.gateways[0].queued_for(client_addr(b)), Some(1));
    connect(&mut net, b);
    net.run_for(secs(2));
    assert!(net.client_saw(
        b,
        |e| matches!(e, ClientEvent::Message { payload, .. } if &payload[..] == b"while-away")
    ));
    // No SUBSCRIBE was needed again.
    assert_eq!(net.sent(client_addr(b), MsgType::Subscribe).len(), 1);
}

/// Transparent: a client that DISCONNECTs right after its QoS 1 and QoS 2
/// PUBLISHes (the gateway has PUBACKed / PUBRECed them) still gets both to
/// the MQTT subscriber: its upstream connection finishes the QoS 2
/// handshake (PUBREL, PUBCOMP; the broker releases QoS 2 at PUBREL) before
/// its MQTT DISCONNECT, instead of dropping the message with the
/// connection. The connection then ends gracefully and is gone.
#[test]
fn transparent_upstream_drains_publishes_before_disconnect() {
    let mut net = setup(GatewayMode::Transparent, 1);
    connect(&mut net, 0);
    let now = net.now;
    net.clients[0]
        .publish(now, "room/2/temp", &b"last-q1"[..], Qos::One, false)
        .expect("publish");
    net.run_until_pred(secs(5), |n| {
        n.client_saw(0, |e| matches!(e, ClientEvent::PublishAcked { .. }))
    });
    let now = net.now;
    net.clients[0]
        .publish(now, "room/2/temp", &b"last-q2"[..], Qos::Two, false)
        .expect("publish");
    net.clients[0].disconnect(now);
    net.run_for(secs(5));
    assert_eq!(net.clients[0].state(), ClientState::Idle);
    let got: Vec<(Vec<u8>, QoS)> = net.subs[0]
        .received
        .iter()
        .map(|(_, _, p, q)| (p.clone(), *q))
        .collect();
    assert_eq!(
        got,
        [
            (b"last-q1".to_vec(), QoS::AtLeastOnce),
            (b"last-q2".to_vec(), QoS::ExactlyOnce)
        ],
        "the broker's subscriber"
    );
    // The upstream connection ended with an MQTT DISCONNECT, after the
    // handshake, and nothing is left of it.
    assert_eq!(net.gateways[0].upstream_count(), 0);
    assert_eq!(net.broker.connection_count(), 1, "only the subscriber");
    assert_eq!(net.gateways[0].stats().dropped, 0);
    assert!(!net.gw_saw(0, |e| matches!(e, GatewayEvent::Fate { .. })));
    assert!(net.broker_events.iter().any(|(_, e)| matches!(
        e,
        BrokerEvent::ClientDisconnected {
            reason: DisconnectReason::Disconnect,
            ..
        }
    )));
}
