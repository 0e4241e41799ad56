//! The spec-oracle monitors (docs/checks.md): each rule fed a violating and
//! a clean event sequence directly; mutated protocol variants (test-only
//! knobs, unreachable from scenario files) caught in scenarios with loss
//! and connection breaks while the real code gives zero; shipped scenarios
//! clean under `--check`; `violations.csv` byte-identical for one seed; the
//! runs.csv column empty when the monitors are off.

mod common;

use common::sim::read_csv;
use common::temp_dir;
use qossim::check::{CoapParams, Monitors, Report, Rule};
use qossim::proto::mqtt::v5::{
    Connect5, Packet5, Properties, Publish5, ReasonCode, ReasonOnly, RetainHandling, SubOptions,
    Subscribe5, Will5,
};
use qossim::proto::mqtt::{
    Ack, Connect, LastWill, Packet, PacketId, ProtocolLevel, Publish, QoS, QosPid, Subscribe,
    TopicFilter, TopicName, Unsubscribe,
};
use qossim::run::{run_scenario, RunOptions};
use qossim::scenario::{self, model::Scenario};
use qossim::sim::{SimDuration, SimTime};
use std::path::{Path, PathBuf};

fn ms(v: u64) -> SimTime {
    SimTime(v * 1_000_000)
}

fn rules(r: &Report) -> Vec<Rule> {
    r.violations.iter().map(|v| v.rule).collect()
}

// ----- each rule fed directly -----

#[test]
fn mqtt_qos2_repeat_in_one_session_is_a_violation() {
    let mut m = Monitors::new(vec![Some(Rule::MqttQos2Once), None], 3);
    m.session_start(ms(0), 2);
    // message 7 of flow 0 first reached node 2 at 10 ms, again at 50 ms
    m.repeat_delivery(ms(50), 0, 7, 2, ms(10));
    let r = m.finish();
    assert_eq!(rules(&r), [Rule::MqttQos2Once]);
    assert_eq!(r.per_flow, [1, 0]);
    let v = &r.violations[0];
    assert_eq!((v.t, v.node, v.flow), (ms(50), 2, Some(0)));
    assert!(v.detail.contains("message 7"), "{}", v.detail);
}

#[test]
fn mqtt_qos2_clean_sequences_give_zero() {
    let mut m = Monitors::new(vec![Some(Rule::MqttQos2Once), None], 3);
    // a new session at node 2 (no session present) after the first
    // delivery: the old session's state is gone, a repeat is allowed
    m.session_start(ms(20), 2);
    m.repeat_delivery(ms(50), 0, 7, 2, ms(10));
    // a flow without an exactly-once rule (QoS 1) may repeat
    m.repeat_delivery(ms(60), 1, 3, 1, ms(30));
    let r = m.finish();
    assert!(r.violations.is_empty(), "{:?}", r.violations);
    assert_eq!(r.per_flow, [0, 0]);
}

#[test]
fn coap_duplicate_con_reaching_the_application_is_a_violation() {
    let mut m = Monitors::new(vec![Some(Rule::CoapConOnce)], 2);
    m.repeat_delivery(ms(4000), 0, 1, 1, ms(100));
    let r = m.finish();
    assert_eq!(rules(&r), [Rule::CoapConOnce]);
    assert_eq!(Rule::CoapConOnce.clause(), "RFC 7252 §4.5");
    // a server restart forgets its deduplication state legitimately
    let mut m = Monitors::new(vec![Some(Rule::CoapConOnce)], 2);
    m.session_start(ms(200), 1);
    m.repeat_delivery(ms(4000), 0, 1, 1, ms(100));
    assert!(m.finish().violations.is_empty());
}

#[test]
fn tcp_stream_in_order_is_clean() {
    let mut m = Monitors::new(vec![None], 2);
    m.tcp_written(5, b"hello ");
    m.tcp_written(5, b"world");
    m.tcp_read(ms(1), 1, 5, Some(0), b"hel");
    m.tcp_read(ms(2), 1, 5, Some(0), b"lo world");
    // a stream never written to (its sender gone) is not judged
    m.tcp_read(ms(3), 0, 9, None, b"x");
    assert!(m.finish().violations.is_empty());
}

#[test]
fn tcp_stream_out_of_order_gap_and_duplicate_are_violations() {
    // out of order: "world" read before "hello "
    let mut m = Monitors::new(vec![None], 2);
    m.tcp_written(5, b"hello world");
    m.tcp_read(ms(1), 1, 5, Some(0), b"world");
    // checking stops once a stream is out of step: one violation
    m.tcp_read(ms(2), 1, 5, Some(0), b"hello ");
    let r = m.finish();
    assert_eq!(rules(&r), [Rule::TcpStream]);
    assert_eq!(r.per_flow, [1]);
    assert!(
        r.violations[0].detail.contains("byte 0"),
        "{:?}",
        r.violations
    );
    // a gap: bytes 3..6 skipped
    let mut m = Monitors::new(vec![None], 2);
    m.tcp_written(1, b"abcdefghi");
    m.tcp_read(ms(1), 1, 1, None, b"abc");
    m.tcp_read(ms(2), 1, 1, None, b"ghi");
    let r = m.finish();
    assert_eq!(rules(&r), [Rule::TcpStream]);
    assert!(
        r.violations[0].detail.contains("byte 3"),
        "{:?}",
        r.violations
    );
    assert_eq!(r.violations[0].flow, None);
    // a duplicate: the same bytes read twice, more than was written
    let mut m = Monitors::new(vec![None], 2);
    m.tcp_written(1, b"abc");
    m.tcp_read(ms(1), 1, 1, None, b"abc");
    m.tcp_read(ms(2), 1, 1, None, b"abc");
    let r = m.finish();
    assert_eq!(rules(&r), [Rule::TcpStream]);
    assert!(r.violations[0].detail.contains("never written"));
}

#[test]
fn tcp_forget_drops_the_stream_state() {
    let mut m = Monitors::new(vec![None], 2);
    m.tcp_written(1, b"abc");
    m.tcp_forget(1);
    m.tcp_read(ms(1), 1, 1, None, b"zzz");
    assert!(m.finish().violations.is_empty());
}

#[test]
fn mqtt_first_deliveries_out_of_publish_order_are_a_violation() {
    let mut m = Monitors::new(vec![None, None], 4).with_order(vec![true, false]);
    // publisher at node 1, subscriber node 3: message 5 first, then 4
    m.first_delivery(ms(10), 0, 5, 1, 3);
    m.first_delivery(ms(20), 0, 4, 1, 3);
    let r = m.finish();
    assert_eq!(rules(&r), [Rule::MqttTopicOrder]);
    assert_eq!(Rule::MqttTopicOrder.clause(), "MQTT-4.6.0-6");
    assert!(
        r.violations[0]
            .detail
            .contains("message 4 first delivered after message 5"),
        "{:?}",
        r.violations
    );
}

#[test]
fn mqtt_first_deliveries_in_order_per_publisher_are_clean() {
    let mut m = Monitors::new(vec![None, None], 4).with_order(vec![true, false]);
    // in order per (publisher, subscriber); interleaving publishers and
    // subscribers is free; gaps (lost messages) are allowed
    m.first_delivery(ms(10), 0, 4, 1, 3);
    m.first_delivery(ms(11), 0, 2, 2, 3);
    m.first_delivery(ms(12), 0, 1, 1, 0);
    m.first_delivery(ms(13), 0, 7, 1, 3);
    m.first_delivery(ms(14), 0, 3, 2, 3);
    // an unordered flow (QoS 0) is not judged
    m.first_delivery(ms(15), 1, 9, 1, 3);
    m.first_delivery(ms(16), 1, 8, 1, 3);
    assert!(m.finish().violations.is_empty());
}

// ----- MQTT wire rules: packets encoded by the codec -----

fn mqtt_bytes(p: &Packet) -> Vec<u8> {
    let mut b = Vec::new();
    p.encode(&mut b).unwrap();
    b
}

fn publish(qos: QoS, pid: u16, dup: bool) -> Vec<u8> {
    mqtt_bytes(&Packet::Publish(Publish {
        dup,
        qos_pid: QosPid::new(qos, PacketId::new(pid).unwrap()),
        retain: false,
        topic: TopicName::new("t/1").unwrap(),
        payload: b"reading".as_slice().into(),
    }))
}

fn ack(ty: fn(Ack) -> Packet, pid: u16) -> Vec<u8> {
    mqtt_bytes(&ty(Ack {
        pid: PacketId::new(pid).unwrap(),
    }))
}

#[test]
fn mqtt_packet_id_reused_while_in_flight_is_a_violation() {
    let mut m = Monitors::new(vec![None], 2);
    // QoS 1 id 5 sent on connection 7, no PUBACK yet: a new PUBLISH (DUP
    // 0) with id 5 is a violation
    m.mqtt_sent(ms(1), 0, 7, &publish(QoS::AtLeastOnce, 5, false), Some(0));
    m.mqtt_sent(ms(2), 0, 7, &publish(QoS::AtLeastOnce, 5, false), Some(0));
    // QoS 2 id 9: PUBREC received does not complete it, PUBCOMP does
    m.mqtt_sent(ms(3), 0, 7, &publish(QoS::ExactlyOnce, 9, false), Some(0));
    m.mqtt_received(ms(0), 7, &ack(Packet::PubRec, 9), None);
    m.mqtt_sent(ms(4), 0, 7, &publish(QoS::ExactlyOnce, 9, false), Some(0));
    let r = m.finish();
    assert_eq!(
        rules(&r),
        [Rule::MqttPacketIdInUse, Rule::MqttPacketIdInUse]
    );
    assert_eq!(Rule::MqttPacketIdInUse.clause(), "MQTT-2.3.1-2");
    assert_eq!(r.per_flow, [2]);
    assert!(
        r.violations[0].detail.contains("packet identifier 5"),
        "{:?}",
        r.violations
    );
}

#[test]
fn mqtt_packet_ids_completed_resent_or_on_other_connections_are_clean() {
    let mut m = Monitors::new(vec![None], 2);
    // QoS 1 id 5 acknowledged (the PUBACK split over two reads), then
    // reused
    m.mqtt_sent(ms(1), 0, 7, &publish(QoS::AtLeastOnce, 5, false), None);
    let a = ack(Packet::PubAck, 5);
    m.mqtt_received(ms(0), 7, &a[..1], None);
    m.mqtt_received(ms(0), 7, &a[1..], None);
    m.mqtt_sent(ms(2), 0, 7, &publish(QoS::AtLeastOnce, 5, false), None);
    // a resend with DUP keeps its id
    m.mqtt_sent(ms(3), 0, 7, &publish(QoS::AtLeastOnce, 5, true), None);
    // QoS 2: PUBREC, then PUBCOMP (in one read with other packets)
    m.mqtt_sent(ms(4), 0, 7, &publish(QoS::ExactlyOnce, 6, false), None);
    let mut rx = ack(Packet::PubRec, 6);
    rx.extend(ack(Packet::PubComp, 6));
    rx.extend(mqtt_bytes(&Packet::PingResp));
    m.mqtt_received(ms(0), 7, &rx, None);
    m.mqtt_sent(ms(5), 0, 7, &publish(QoS::ExactlyOnce, 6, false), None);
    // the other end of the connection, or another connection, has its own
    // identifiers; QoS 0 has none
    m.mqtt_sent(ms(6), 1, 8, &publish(QoS::AtLeastOnce, 5, false), None);
    m.mqtt_sent(ms(7), 0, 9, &publish(QoS::AtLeastOnce, 5, false), None);
    m.mqtt_sent(ms(8), 0, 7, &publish(QoS::AtMostOnce, 1, false), None);
    m.mqtt_sent(ms(9), 0, 7, &publish(QoS::AtMostOnce, 1, false), None);
    // a connection's socket released: its state goes (a new session
    // starts on the next connection)
    m.mqtt_forget(0, 9);
    m.mqtt_sent(ms(10), 0, 9, &publish(QoS::AtLeastOnce, 5, false), None);
    let r = m.finish();
    assert!(r.violations.is_empty(), "{:?}", r.violations);
}

fn connect(id: &str, will: bool) -> Vec<u8> {
    mqtt_bytes(&Packet::Connect(Connect {
        protocol: ProtocolLevel::V311,
        clean_session: true,
        keep_alive: 10,
        client_id: id.to_string(),
        will: will.then(|| LastWill {
            topic: TopicName::new("status/a").unwrap(),
            message: b"offline".as_slice().into(),
            qos: QoS::AtLeastOnce,
            retain: true,
        }),
        username: None,
        password: None,
    }))
}

#[test]
fn mqtt_will_published_after_disconnect_or_missing_is_a_violation() {
    let mut m = Monitors::new(vec![None], 3);
    // broker at node 0; client "a" (will) ends with DISCONNECT, yet its
    // will is published
    m.mqtt_received(ms(0), 11, &connect("a", true), Some(0));
    m.mqtt_received(ms(0), 11, &mqtt_bytes(&Packet::Disconnect), Some(0));
    m.mqtt_session_ended(ms(0), 0, 11, "a");
    m.mqtt_will_published(ms(5), 0, "a", "status/a", Some(0));
    m.mqtt_wills_settled(ms(5), 0, |_| Some(0));
    // client "b" (will) vanishes without DISCONNECT, no will follows
    m.mqtt_received(ms(0), 12, &connect("b", true), Some(0));
    m.mqtt_session_ended(ms(0), 0, 12, "b");
    m.mqtt_wills_settled(ms(6), 0, |id| (id == "b").then_some(0));
    let r = m.finish();
    assert_eq!(rules(&r), [Rule::MqttWill, Rule::MqttWill]);
    assert_eq!(Rule::MqttWill.clause(), "MQTT-3.1.2-8, MQTT-3.1.2-10");
    assert!(r.violations[0].detail.contains("DISCONNECT"));
    assert!(r.violations[1].detail.contains("not published"));
    assert_eq!(r.per_flow, [2]);
}

#[test]
fn mqtt_will_iff_no_disconnect_is_clean() {
    let mut m = Monitors::new(vec![None], 3);
    // lost without DISCONNECT: the will is published (the socket was
    // released before the broker reported the end)
    m.mqtt_received(ms(0), 11, &connect("a", true), Some(0));
    m.mqtt_forget(0, 11);
    m.mqtt_session_ended(ms(0), 0, 11, "a");
    m.mqtt_will_published(ms(5), 0, "a", "status/a", None);
    m.mqtt_wills_settled(ms(5), 0, |_| None);
    // DISCONNECT (in the same read as a PINGREQ): no will
    let mut rx = mqtt_bytes(&Packet::PingReq);
    rx.extend(mqtt_bytes(&Packet::Disconnect));
    m.mqtt_received(ms(0), 12, &connect("b", true), Some(0));
    m.mqtt_received(ms(0), 12, &rx, Some(0));
    m.mqtt_session_ended(ms(0), 0, 12, "b");
    m.mqtt_wills_settled(ms(6), 0, |_| None);
    // no will in the CONNECT: nothing owed
    m.mqtt_received(ms(0), 13, &connect("c", false), Some(0));
    m.mqtt_session_ended(ms(0), 0, 13, "c");
    m.mqtt_wills_settled(ms(7), 0, |_| None);
    let r = m.finish();
    assert!(r.violations.is_empty(), "{:?}", r.violations);
}

fn retained(topic: &str, payload: &[u8], qos: QoS, pid: u16, dup: bool) -> Vec<u8> {
    mqtt_bytes(&Packet::Publish(Publish {
        dup,
        qos_pid: QosPid::new(qos, PacketId::new(pid).unwrap()),
        retain: true,
        topic: TopicName::new(topic).unwrap(),
        payload: payload.into(),
    }))
}

fn subscribe(filter: &str) -> Vec<u8> {
    mqtt_bytes(&Packet::Subscribe(Subscribe {
        pid: PacketId::new(1).unwrap(),
        filters: vec![(TopicFilter::new(filter).unwrap(), QoS::AtLeastOnce)],
    }))
}

#[test]
fn mqtt_retained_message_not_the_last_one_is_a_violation() {
    let mut m = Monitors::new(vec![None], 3);
    // broker node 0: a publisher (connection 1) retains "21.5" then
    // "22.0" on room/1; a subscriber (connection 2) subscribes to room/+
    m.mqtt_received(ms(0), 1, &connect("pub", false), Some(0));
    m.mqtt_received(
        ms(0),
        1,
        &retained("room/1", b"21.5", QoS::AtLeastOnce, 1, false),
        Some(0),
    );
    m.mqtt_received(
        ms(0),
        1,
        &retained("room/1", b"22.0", QoS::AtLeastOnce, 2, false),
        Some(0),
    );
    m.mqtt_received(ms(0), 2, &connect("sub", false), Some(0));
    m.mqtt_received(ms(0), 2, &subscribe("room/+"), Some(0));
    // the broker sends the older one
    let stale = retained("room/1", b"21.5", QoS::AtLeastOnce, 1, false);
    m.mqtt_broker_sent(ms(10), 0, 2, &stale, Some(0));
    // a zero-byte retained PUBLISH clears room/2's; a later subscriber
    // is sent one anyway
    m.mqtt_received(
        ms(0),
        1,
        &retained("room/2", b"x", QoS::AtMostOnce, 1, false),
        Some(0),
    );
    m.mqtt_received(
        ms(0),
        1,
        &retained("room/2", b"", QoS::AtMostOnce, 1, false),
        Some(0),
    );
    m.mqtt_received(ms(0), 3, &connect("late", false), Some(0));
    m.mqtt_received(ms(0), 3, &subscribe("room/2"), Some(0));
    let gone = retained("room/2", b"x", QoS::AtMostOnce, 1, false);
    m.mqtt_broker_sent(ms(20), 0, 3, &gone, None);
    // a broker restart without persistence loses its retained messages
    m.mqtt_received(
        ms(0),
        1,
        &retained("room/3", b"y", QoS::AtMostOnce, 1, false),
        Some(0),
    );
    m.mqtt_broker_crash(ms(25), 0, false);
    m.mqtt_received(ms(0), 3, &subscribe("room/3"), Some(0));
    let lost = retained("room/3", b"y", QoS::AtMostOnce, 1, false);
    m.mqtt_broker_sent(ms(30), 0, 3, &lost, None);
    let r = m.finish();
    assert_eq!(
        rules(&r),
        [
            Rule::MqttRetainedLast,
            Rule::MqttRetainedLast,
            Rule::MqttRetainedLast
        ]
    );
    assert_eq!(Rule::MqttRetainedLast.clause(), "MQTT-3.3.1-6");
    assert_eq!(r.per_flow, [1]);
    assert!(r.violations[1].detail.contains("no retained message"));
}

#[test]
fn mqtt_retained_messages_as_held_at_subscribe_are_clean() {
    let mut m = Monitors::new(vec![None], 3);
    m.mqtt_received(ms(0), 1, &connect("pub", false), Some(0));
    m.mqtt_received(
        ms(0),
        1,
        &retained("room/1", b"21.5", QoS::AtLeastOnce, 1, false),
        Some(0),
    );
    m.mqtt_received(ms(0), 2, &connect("sub", false), Some(0));
    m.mqtt_received(ms(0), 2, &subscribe("room/#"), Some(0));
    // a newer retained message arrives before the broker got to send the
    // one held at the SUBSCRIBE: that one is still what it owes
    m.mqtt_received(
        ms(0),
        1,
        &retained("room/1", b"22.0", QoS::AtLeastOnce, 2, false),
        Some(0),
    );
    let held = retained("room/1", b"21.5", QoS::AtLeastOnce, 7, false);
    m.mqtt_broker_sent(ms(10), 0, 2, &held, None);
    // its resend (DUP) is not judged again; normal forwarding has
    // RETAIN 0
    let dup = retained("room/1", b"21.5", QoS::AtLeastOnce, 7, true);
    m.mqtt_broker_sent(ms(11), 0, 2, &dup, None);
    m.mqtt_broker_sent(ms(12), 0, 2, &publish(QoS::AtLeastOnce, 8, false), None);
    // a retained will becomes the topic's retained message
    m.mqtt_received(ms(0), 4, &connect("a", true), Some(0));
    m.mqtt_session_ended(ms(0), 0, 4, "a");
    m.mqtt_will_published(ms(20), 0, "a", "status/a", None);
    m.mqtt_wills_settled(ms(20), 0, |_| None);
    m.mqtt_received(ms(0), 3, &connect("dash", false), Some(0));
    m.mqtt_received(ms(0), 3, &subscribe("status/+"), Some(0));
    let will = retained("status/a", b"offline", QoS::AtLeastOnce, 1, false);
    m.mqtt_broker_sent(ms(21), 0, 3, &will, None);
    // QoS 2 retained topics are not judged (the broker may store one at
    // PUBREL, and a DUP may or may not be new)
    m.mqtt_received(
        ms(0),
        1,
        &retained("room/9", b"1", QoS::ExactlyOnce, 3, false),
        Some(0),
    );
    m.mqtt_received(ms(0), 3, &subscribe("room/9"), Some(0));
    let q2 = retained("room/9", b"0", QoS::ExactlyOnce, 2, false);
    m.mqtt_broker_sent(ms(22), 0, 3, &q2, None);
    let r = m.finish();
    assert!(r.violations.is_empty(), "{:?}", r.violations);
}

/// A QoS 1 PUBLISH of message `msg` of flow 0 on `topic`.
fn reading(topic: &str, msg: u32, pid: u16) -> Vec<u8> {
    let mut payload = Vec::new();
    qossim::app::workload::build_payload(&mut payload, 0, msg, 21.5, 24);
    mqtt_bytes(&Packet::Publish(Publish {
        dup: false,
        qos_pid: QosPid::new(QoS::AtLeastOnce, PacketId::new(pid).unwrap()),
        retain: false,
        topic: TopicName::new(topic).unwrap(),
        payload: payload.into(),
    }))
}

/// Broker node 0: subscriber "sub" (node 2) on connection 2 subscribed to
/// room/+ at QoS 1; publisher "pub" on connection 1; message 3 of flow 0
/// taken and acknowledged (PUBACK 5) at 10 ms.
fn qos1_acked(m: &mut Monitors) {
    m.mqtt_received(ms(0), 2, &connect("sub", false), Some(0));
    m.mqtt_client_connected(0, 2, "sub");
    m.mqtt_received(ms(1), 2, &subscribe("room/+"), Some(0));
    m.mqtt_received(ms(2), 1, &connect("pub", false), Some(0));
    m.mqtt_client_connected(0, 1, "pub");
    m.mqtt_received(ms(10), 1, &reading("room/1", 3, 5), Some(0));
    m.mqtt_broker_acked(ms(10), 0, 1, &ack(Packet::PubAck, 5), |id| {
        (id == "sub").then_some(2)
    });
}

#[test]
fn mqtt_qos1_message_acked_but_never_delivered_is_a_violation() {
    let mut m = Monitors::new(vec![None], 3);
    qos1_acked(&mut m);
    // the subscriber stays connected, nothing is in flight to it, and
    // message 3 never reaches node 2 (another message does)
    m.delivered(0, 4, 2);
    let r = m.finish();
    assert_eq!(rules(&r), [Rule::MqttQos1AtLeastOnce]);
    assert_eq!(Rule::MqttQos1AtLeastOnce.clause(), "MQTT-4.3.2");
    let v = &r.violations[0];
    assert_eq!((v.node, v.flow, v.t), (2, Some(0), ms(10)));
    assert!(v.detail.contains("message 3"), "{}", v.detail);
}

#[test]
fn mqtt_qos1_delivered_or_excused_misses_are_clean() {
    // delivered (late or not: any receipt counts)
    let mut m = Monitors::new(vec![None], 3);
    qos1_acked(&mut m);
    m.delivered(0, 3, 2);
    assert!(m.finish().violations.is_empty());
    // the subscriber's connection ended after the PUBACK
    let mut m = Monitors::new(vec![None], 3);
    qos1_acked(&mut m);
    m.mqtt_session_ended(ms(20), 0, 2, "sub");
    assert!(m.finish().violations.is_empty());
    // the broker dropped a message for it (queue full)
    let mut m = Monitors::new(vec![None], 3);
    qos1_acked(&mut m);
    m.mqtt_dropped(ms(20), 0, "sub");
    assert!(m.finish().violations.is_empty());
    // the broker crashed; the subscriber's node restarted
    let mut m = Monitors::new(vec![None], 3);
    qos1_acked(&mut m);
    m.mqtt_broker_crash(ms(20), 0, true);
    assert!(m.finish().violations.is_empty());
    let mut m = Monitors::new(vec![None], 3);
    qos1_acked(&mut m);
    m.session_start(ms(20), 2);
    assert!(m.finish().violations.is_empty());
    // the broker still has a PUBLISH in flight to it at the end
    let mut m = Monitors::new(vec![None], 3);
    qos1_acked(&mut m);
    m.mqtt_sent(ms(11), 0, 2, &reading("room/1", 3, 9), Some(0));
    assert!(m.finish().violations.is_empty());
    // not owed: a QoS 0 subscription, an unsubscribed one, another topic,
    // a subscriber not connected, a PUBLISH never acknowledged
    let mut m = Monitors::new(vec![None], 3);
    m.mqtt_received(ms(0), 2, &connect("sub", false), Some(0));
    m.mqtt_client_connected(0, 2, "sub");
    let q0 = mqtt_bytes(&Packet::Subscribe(Subscribe {
        pid: PacketId::new(1).unwrap(),
        filters: vec![(TopicFilter::new("room/0").unwrap(), QoS::AtMostOnce)],
    }));
    m.mqtt_received(ms(1), 2, &q0, Some(0));
    m.mqtt_received(ms(1), 2, &subscribe("room/9"), Some(0));
    let unsub = mqtt_bytes(&Packet::Unsubscribe(Unsubscribe {
        pid: PacketId::new(2).unwrap(),
        filters: vec![TopicFilter::new("room/9").unwrap()],
    }));
    m.mqtt_received(ms(1), 2, &unsub, Some(0));
    m.mqtt_received(ms(1), 3, &connect("off", false), Some(0));
    m.mqtt_received(ms(1), 3, &subscribe("room/#"), Some(0));
    m.mqtt_received(ms(2), 1, &connect("pub", false), Some(0));
    for (i, t) in ["room/0", "room/9", "hall/1"].into_iter().enumerate() {
        let pid = i as u16 + 1;
        m.mqtt_received(ms(10), 1, &reading(t, pid as u32, pid), Some(0));
        m.mqtt_broker_acked(ms(10), 0, 1, &ack(Packet::PubAck, pid), |_| Some(2));
    }
    m.mqtt_received(ms(10), 1, &reading("room/0", 7, 7), Some(0));
    let r = m.finish();
    assert!(r.violations.is_empty(), "{:?}", r.violations);
}

// ----- MQTT 5.0: the same rules on packets of the 5.0 codec -----

fn v5_bytes(p: &Packet5) -> Vec<u8> {
    let mut b = Vec::new();
    p.encode(&mut b).unwrap();
    b
}

/// A 5.0 CONNECT: Clean Start, Session Expiry Interval `expiry` (s), and
/// a retained will on status/<id> with Will Delay Interval `will_delay`.
fn connect5(id: &str, clean_start: bool, expiry: u32, will_delay: Option<u32>) -> Vec<u8> {
    v5_bytes(&Packet5::Connect(Connect5 {
        clean_start,
        keep_alive: 10,
        props: Properties {
            session_expiry_interval: Some(expiry),
            ..Properties::default()
        },
        client_id: id.to_string(),
        will: will_delay.map(|d| Will5 {
            props: Properties {
                will_delay_interval: (d > 0).then_some(d),
                ..Properties::default()
            },
            topic: TopicName::new(&format!("status/{id}")).unwrap(),
            message: b"offline".as_slice().into(),
            qos: QoS::AtLeastOnce,
            retain: false,
        }),
        username: None,
        password: None,
    }))
}

fn disconnect5(reason: u8) -> Vec<u8> {
    v5_bytes(&Packet5::Disconnect(ReasonOnly {
        reason: ReasonCode(reason),
        props: Properties::default(),
    }))
}

/// A 5.0 PUBLISH: `topic` `None` sends the alias alone.
fn publish5(
    topic: Option<&str>,
    alias: Option<u16>,
    retain: bool,
    payload: &[u8],
    pid: u16,
) -> Vec<u8> {
    v5_bytes(&Packet5::Publish(Publish5 {
        dup: false,
        qos_pid: QosPid::new(QoS::AtLeastOnce, PacketId::new(pid).unwrap()),
        retain,
        topic: topic.map(|t| TopicName::new(t).unwrap()),
        props: Properties {
            topic_alias: alias,
            ..Properties::default()
        },
        payload: payload.into(),
    }))
}

fn subscribe5(filter: &str, opts: SubOptions) -> Vec<u8> {
    v5_bytes(&Packet5::Subscribe(Subscribe5 {
        pid: PacketId::new(1).unwrap(),
        props: Properties::default(),
        filters: vec![(TopicFilter::new(filter).unwrap(), opts)],
    }))
}

fn reading_payload(msg: u32) -> Vec<u8> {
    let mut payload = Vec::new();
    qossim::app::workload::build_payload(&mut payload, 0, msg, 21.5, 24);
    payload
}

#[test]
fn mqtt5_wills_disconnect_0x04_and_will_delay_are_judged() {
    let mut m = Monitors::new(vec![None], 3);
    // "a": DISCONNECT with reason 0x04 (Disconnect with Will Message)
    // still owes the will; none follows
    m.mqtt_received(ms(0), 11, &connect5("a", true, 0, Some(0)), Some(0));
    m.mqtt_received(ms(1), 11, &disconnect5(0x04), Some(0));
    m.mqtt_session_ended(ms(1), 0, 11, "a");
    m.mqtt_wills_settled(ms(1), 0, |_| Some(0));
    // "b": a delayed will and a normal DISCONNECT: published later anyway
    m.mqtt_received(ms(0), 12, &connect5("b", true, 0, Some(30)), Some(0));
    m.mqtt_received(ms(1), 12, &disconnect5(0x00), Some(0));
    m.mqtt_session_ended(ms(1), 0, 12, "b");
    m.mqtt_wills_settled(ms(1), 0, |_| Some(0));
    m.mqtt_will_published(ms(31_001), 0, "b", "status/b", Some(0));
    let r = m.finish();
    assert_eq!(
        rules(&r),
        [Rule::MqttWill, Rule::MqttWill],
        "{:?}",
        r.violations
    );
    assert!(
        r.violations[0].detail.contains("not published"),
        "{:?}",
        r.violations
    );
    assert!(
        r.violations[1].detail.contains("DISCONNECT"),
        "{:?}",
        r.violations
    );
}

#[test]
fn mqtt5_wills_as_owed_are_clean() {
    let mut m = Monitors::new(vec![None], 3);
    // 0x04: the will is published
    m.mqtt_received(ms(0), 11, &connect5("a", true, 0, Some(0)), Some(0));
    m.mqtt_received(ms(1), 11, &disconnect5(0x04), Some(0));
    m.mqtt_session_ended(ms(1), 0, 11, "a");
    m.mqtt_will_published(ms(1), 0, "a", "status/a", None);
    m.mqtt_wills_settled(ms(1), 0, |_| None);
    // a delayed will, lost connection: nothing at the end of that step,
    // published 30 s later
    m.mqtt_received(ms(0), 12, &connect5("b", false, 60, Some(30)), Some(0));
    m.mqtt_session_ended(ms(1), 0, 12, "b");
    m.mqtt_wills_settled(ms(1), 0, |_| None);
    m.mqtt_will_published(ms(30_001), 0, "b", "status/b", None);
    // a delayed will cancelled by a reconnect within the delay
    m.mqtt_received(ms(0), 13, &connect5("c", false, 60, Some(30)), Some(0));
    m.mqtt_session_ended(ms(1), 0, 13, "c");
    m.mqtt_wills_settled(ms(1), 0, |_| None);
    m.mqtt_received(ms(5_000), 14, &connect5("c", false, 60, Some(30)), Some(0));
    // DISCONNECT 0x00, no delay: none
    m.mqtt_received(ms(0), 15, &connect5("d", true, 0, Some(0)), Some(0));
    m.mqtt_received(ms(1), 15, &disconnect5(0x00), Some(0));
    m.mqtt_session_ended(ms(1), 0, 15, "d");
    m.mqtt_wills_settled(ms(1), 0, |_| None);
    let r = m.finish();
    assert!(r.violations.is_empty(), "{:?}", r.violations);
}

#[test]
fn mqtt5_retained_messages_are_read_through_topic_aliases() {
    // the publisher sets alias 1 for room/1 and then retains by alias
    // alone; the broker's copies to the subscriber use its own alias 3
    let run = |sent: &[u8]| {
        let mut m = Monitors::new(vec![None], 3);
        m.mqtt_received(ms(0), 1, &connect5("pub", true, 0, None), Some(0));
        m.mqtt_received(
            ms(0),
            1,
            &publish5(Some("room/1"), Some(1), true, b"21.5", 1),
            Some(0),
        );
        m.mqtt_received(
            ms(0),
            1,
            &publish5(None, Some(1), true, b"22.0", 2),
            Some(0),
        );
        m.mqtt_received(ms(0), 2, &connect5("sub", true, 0, None), Some(0));
        m.mqtt_received(
            ms(0),
            2,
            &subscribe5("room/+", SubOptions::qos(QoS::AtLeastOnce)),
            Some(0),
        );
        // an earlier copy (not retained) set the broker's alias 3
        m.mqtt_broker_sent(
            ms(5),
            0,
            2,
            &publish5(Some("room/1"), Some(3), false, b"x", 6),
            None,
        );
        m.mqtt_broker_sent(ms(10), 0, 2, sent, Some(0));
        m.finish()
    };
    let ok = run(&publish5(None, Some(3), true, b"22.0", 7));
    assert!(ok.violations.is_empty(), "{:?}", ok.violations);
    let stale = run(&publish5(None, Some(3), true, b"21.5", 7));
    assert_eq!(
        rules(&stale),
        [Rule::MqttRetainedLast],
        "{:?}",
        stale.violations
    );
    assert!(stale.violations[0].detail.contains("room/1"));
}

#[test]
fn mqtt5_retain_handling_and_retain_as_published() {
    let mut m = Monitors::new(vec![None], 3);
    m.mqtt_received(ms(0), 1, &connect5("pub", true, 0, None), Some(0));
    m.mqtt_received(
        ms(0),
        1,
        &publish5(Some("room/1"), None, true, b"21.5", 1),
        Some(0),
    );
    // Retain Handling 2: nothing is owed, so a retained copy is a violation
    m.mqtt_received(ms(0), 2, &connect5("a", true, 0, None), Some(0));
    let mut o = SubOptions::qos(QoS::AtLeastOnce);
    o.retain_handling = RetainHandling::DoNotSend;
    m.mqtt_received(ms(0), 2, &subscribe5("room/1", o), Some(0));
    m.mqtt_broker_sent(
        ms(1),
        0,
        2,
        &publish5(Some("room/1"), None, true, b"21.5", 1),
        None,
    );
    // Retain As Published: a forwarded copy may carry RETAIN 1, not judged
    m.mqtt_received(ms(0), 3, &connect5("b", true, 0, None), Some(0));
    let mut o = SubOptions::qos(QoS::AtLeastOnce);
    o.retain_as_published = true;
    o.retain_handling = RetainHandling::DoNotSend;
    m.mqtt_received(ms(0), 3, &subscribe5("room/1", o), Some(0));
    m.mqtt_broker_sent(
        ms(2),
        0,
        3,
        &publish5(Some("room/1"), None, true, b"23.0", 1),
        None,
    );
    let r = m.finish();
    assert_eq!(rules(&r), [Rule::MqttRetainedLast], "{:?}", r.violations);
    assert!(r.violations[0].detail.contains(" a "), "{:?}", r.violations);
}

#[test]
fn mqtt5_qos1_owed_across_session_expiry_and_no_local() {
    // "sub" (session expiry 10 s) subscribed at QoS 1; it drops and comes
    // back without Clean Start after `gap`; then "pub" publishes
    let run = |gap_ms: u64, no_local_self: bool| {
        let mut m = Monitors::new(vec![None], 3);
        m.mqtt_received(ms(0), 2, &connect5("sub", true, 10, None), Some(0));
        m.mqtt_client_connected(0, 2, "sub");
        m.mqtt_received(
            ms(1),
            2,
            &subscribe5("room/+", SubOptions::qos(QoS::AtLeastOnce)),
            Some(0),
        );
        m.mqtt_session_ended(ms(2), 0, 2, "sub");
        m.mqtt_received(
            ms(2 + gap_ms),
            4,
            &connect5("sub", false, 10, None),
            Some(0),
        );
        m.mqtt_client_connected(0, 4, "sub");
        let t = 3 + gap_ms;
        // the publisher: another client, or "sub" itself under No Local
        let (conn, id) = if no_local_self {
            (4, "sub")
        } else {
            (1, "pub")
        };
        if no_local_self {
            let mut o = SubOptions::qos(QoS::AtLeastOnce);
            o.no_local = true;
            m.mqtt_received(ms(t), 4, &subscribe5("room/+", o), Some(0));
        } else {
            m.mqtt_received(ms(t), 1, &connect5(id, true, 0, None), Some(0));
            m.mqtt_client_connected(0, 1, id);
        }
        m.mqtt_received(
            ms(t + 10),
            conn,
            &publish5(Some("room/1"), None, false, &reading_payload(3), 5),
            Some(0),
        );
        m.mqtt_broker_acked(ms(t + 10), 0, conn, &ack(Packet::PubAck, 5), |id| {
            (id == "sub").then_some(2)
        });
        m.finish()
    };
    // back within the interval: the session and its subscription remain,
    // the message is owed and never delivered
    let r = run(5_000, false);
    assert_eq!(rules(&r), [Rule::MqttQos1AtLeastOnce], "{:?}", r.violations);
    // back after it: a new session without subscriptions owes nothing
    assert!(run(20_000, false).violations.is_empty());
    // its own message under No Local is not owed to it
    assert!(run(5_000, true).violations.is_empty());
}

// ----- CoAP message-layer rules: datagrams built by RFC 7252 §3 -----

const COAP: CoapParams = CoapParams {
    max_retransmit: 4,
    exchange_lifetime: SimDuration::from_secs(247),
    non_lifetime: SimDuration::from_secs(145),
};

/// A CoAP datagram: type (0 CON, 1 NON, 2 ACK, 3 RST), code, Message ID,
/// then a 1-byte token and a payload.
fn coap(ty: u8, code: u8, mid: u16, token: u8, payload: &[u8]) -> Vec<u8> {
    let mut b = vec![
        0x40 | (ty << 4) | 1,
        code,
        (mid >> 8) as u8,
        mid as u8,
        token,
    ];
    if !payload.is_empty() {
        b.push(0xff);
        b.extend_from_slice(payload);
    }
    b
}

#[test]
fn coap_con_sent_too_often_or_given_up_early_is_a_violation() {
    let mut m = Monitors::new(vec![None], 3).with_coap(COAP);
    // CON 100 from node 0 to node 1: 6 transmissions (MAX_RETRANSMIT 4)
    let con = coap(0, 3, 100, 7, b"x");
    for t in 0..6 {
        m.coap_sent(ms(t * 1000), 0, (1, 5683), &con, Some(1), Some(0));
    }
    // CON 101 (request handle 2) given up after 2 transmissions
    let con = coap(0, 3, 101, 8, b"y");
    m.coap_sent(ms(10_000), 0, (1, 5683), &con, Some(2), Some(0));
    m.coap_sent(ms(12_000), 0, (1, 5683), &con, Some(2), Some(0));
    m.coap_gave_up(ms(20_000), 0, 2);
    let r = m.finish();
    assert_eq!(rules(&r), [Rule::CoapConOutcome, Rule::CoapConOutcome]);
    assert_eq!(Rule::CoapConOutcome.clause(), "RFC 7252 §4.2");
    assert!(
        r.violations[0].detail.contains("sent 6 times"),
        "{:?}",
        r.violations
    );
    assert!(r.violations[1].detail.contains("after 2 transmissions"));
}

#[test]
fn coap_con_acked_reset_or_given_up_after_max_retransmit_is_clean() {
    let mut m = Monitors::new(vec![None], 3).with_coap(COAP);
    // 1 + MAX_RETRANSMIT transmissions, then given up
    let con = coap(0, 3, 100, 7, b"x");
    for t in 0..5 {
        m.coap_sent(ms(t * 1000), 0, (1, 5683), &con, Some(1), None);
    }
    m.coap_gave_up(ms(93_000), 0, 1);
    // acknowledged after one retransmission (the piggybacked ACK)
    let con = coap(0, 3, 101, 8, b"y");
    m.coap_sent(ms(100), 0, (1, 5683), &con, Some(2), None);
    m.coap_sent(ms(2100), 0, (1, 5683), &con, Some(2), None);
    m.coap_received(0, (1, 5683), &coap(2, 0x44, 101, 8, b""));
    // reset
    let con = coap(0, 3, 102, 9, b"z");
    m.coap_sent(ms(200), 0, (1, 5683), &con, Some(3), None);
    m.coap_received(0, (1, 5683), &coap(3, 0, 102, 0, b""));
    // the receiver's repeated ACKs answer duplicates: not judged
    let a = coap(2, 0x44, 101, 8, b"");
    m.coap_sent(ms(300), 1, (0, 5683), &a, None, None);
    m.coap_sent(ms(2300), 1, (0, 5683), &a, None, None);
    let r = m.finish();
    assert!(r.violations.is_empty(), "{:?}", r.violations);
}

#[test]
fn coap_message_id_reused_within_its_lifetime_is_a_violation() {
    let mut m = Monitors::new(vec![None], 3).with_coap(COAP);
    // CON 100 to node 1, acknowledged; a different CON with MID 100 to
    // the same endpoint 10 s later (EXCHANGE_LIFETIME 247 s)
    m.coap_sent(ms(0), 0, (1, 5683), &coap(0, 3, 100, 1, b"a"), None, None);
    m.coap_received(0, (1, 5683), &coap(2, 0x44, 100, 1, b""));
    m.coap_sent(
        ms(10_000),
        0,
        (1, 5683),
        &coap(0, 3, 100, 2, b"b"),
        None,
        Some(0),
    );
    // a NON reused within NON_LIFETIME (145 s)
    m.coap_sent(ms(0), 0, (1, 5683), &coap(1, 3, 200, 3, b"c"), None, None);
    m.coap_sent(
        ms(100_000),
        0,
        (1, 5683),
        &coap(1, 3, 200, 4, b"d"),
        None,
        None,
    );
    let r = m.finish();
    assert_eq!(rules(&r), [Rule::CoapMidReuse, Rule::CoapMidReuse]);
    assert_eq!(Rule::CoapMidReuse.clause(), "RFC 7252 §4.4");
    assert_eq!(r.per_flow, [1]);
    assert!(r.violations[0].detail.contains("Message ID 100"));
}

#[test]
fn coap_message_ids_after_their_lifetime_or_to_other_endpoints_are_clean() {
    let mut m = Monitors::new(vec![None], 3).with_coap(COAP);
    m.coap_sent(ms(0), 0, (1, 5683), &coap(0, 3, 100, 1, b"a"), None, None);
    m.coap_received(0, (1, 5683), &coap(2, 0x44, 100, 1, b""));
    // another endpoint, another sender: their own spaces
    m.coap_sent(ms(1), 0, (2, 5683), &coap(0, 3, 100, 2, b"b"), None, None);
    m.coap_sent(ms(2), 2, (1, 5683), &coap(0, 3, 100, 3, b"c"), None, None);
    // after EXCHANGE_LIFETIME
    m.coap_sent(
        ms(248_000),
        0,
        (1, 5683),
        &coap(0, 3, 100, 4, b"d"),
        None,
        None,
    );
    // a NON after NON_LIFETIME
    m.coap_sent(ms(0), 0, (1, 5683), &coap(1, 3, 300, 5, b"e"), None, None);
    m.coap_sent(
        ms(146_000),
        0,
        (1, 5683),
        &coap(1, 3, 300, 6, b"f"),
        None,
        None,
    );
    // a crashed endpoint starts afresh
    m.coap_sent(
        ms(150_000),
        1,
        (0, 5683),
        &coap(0, 3, 7, 1, b"g"),
        None,
        None,
    );
    m.coap_node_reset(1);
    m.coap_sent(
        ms(151_000),
        1,
        (0, 5683),
        &coap(0, 3, 7, 2, b"h"),
        None,
        None,
    );
    // without parameters the rules are off
    let mut off = Monitors::new(vec![None], 3);
    off.coap_sent(ms(0), 0, (1, 5683), &coap(0, 3, 1, 1, b"a"), None, None);
    off.coap_sent(ms(1), 0, (1, 5683), &coap(0, 3, 1, 2, b"b"), None, None);
    assert!(off.finish().violations.is_empty());
    let r = m.finish();
    assert!(r.violations.is_empty(), "{:?}", r.violations);
}

// ----- MQTT-SN -----

#[test]
fn mqttsn_msgid_reused_while_in_flight_is_a_violation() {
    let mut m = Monitors::new(vec![None], 3);
    // client node 2 to gateway node 1: QoS 1 MsgId 4 not acknowledged
    m.mqttsn_publish_sent(ms(1), 2, 1, 4, 1, false, Some(0));
    m.mqttsn_publish_sent(ms(2), 2, 1, 4, 1, false, Some(0));
    // gateway to client: QoS 2 MsgId 9, PUBACK is not its completion
    m.mqttsn_publish_sent(ms(3), 1, 2, 9, 2, false, Some(0));
    m.mqttsn_ack_received(1, 2, 9, 1);
    m.mqttsn_publish_sent(ms(4), 1, 2, 9, 2, false, Some(0));
    let r = m.finish();
    assert_eq!(rules(&r), [Rule::MqttsnMsgIdInUse, Rule::MqttsnMsgIdInUse]);
    assert_eq!(
        Rule::MqttsnMsgIdInUse.clause(),
        "MQTT-SN 1.2 §5.3.7 (MQTT-2.3.1-2)"
    );
    assert_eq!(r.per_flow, [2]);
}

#[test]
fn mqttsn_msgids_completed_resent_or_in_a_new_session_are_clean() {
    let mut m = Monitors::new(vec![None], 3);
    m.mqttsn_publish_sent(ms(1), 2, 1, 4, 1, false, None);
    m.mqttsn_publish_sent(ms(2), 2, 1, 4, 1, true, None); // DUP resend
    m.mqttsn_ack_received(2, 1, 4, 1);
    m.mqttsn_publish_sent(ms(3), 2, 1, 4, 1, false, None);
    m.mqttsn_publish_sent(ms(4), 1, 2, 9, 2, false, None);
    m.mqttsn_ack_received(1, 2, 9, 2); // PUBCOMP
    m.mqttsn_publish_sent(ms(5), 1, 2, 9, 2, false, None);
    // QoS 0 and −1 carry no MsgId to hold
    m.mqttsn_publish_sent(ms(6), 2, 1, 0, 0, false, None);
    m.mqttsn_publish_sent(ms(7), 2, 1, 0, 0, false, None);
    // client 2 connects again: a new session for both directions
    m.mqttsn_connect_sent(2);
    m.mqttsn_publish_sent(ms(8), 2, 1, 4, 1, false, None);
    m.mqttsn_publish_sent(ms(9), 1, 2, 9, 2, false, None);
    // a crashed node's own state is gone
    m.mqttsn_node_reset(1);
    m.mqttsn_publish_sent(ms(10), 1, 2, 9, 2, false, None);
    let r = m.finish();
    assert!(r.violations.is_empty(), "{:?}", r.violations);
}

#[test]
fn mqttsn_qos2_repeat_in_one_session_is_a_violation() {
    let mut m = Monitors::new(vec![Some(Rule::MqttsnQos2Once)], 3);
    m.repeat_delivery(ms(50), 0, 7, 2, ms(10));
    // a gateway restart (state every delivery passed through) starts a
    // new session everywhere
    m.session_start_all(ms(60));
    m.repeat_delivery(ms(70), 0, 8, 2, ms(55));
    let r = m.finish();
    assert_eq!(rules(&r), [Rule::MqttsnQos2Once]);
    assert_eq!(
        Rule::MqttsnQos2Once.clause(),
        "MQTT-SN 1.2 §6.6, §6.10 (MQTT-4.3.3)"
    );
}

#[test]
fn every_rule_has_a_distinct_id_and_a_clause() {
    let ids: std::collections::BTreeSet<_> = Rule::ALL.iter().map(|r| r.id()).collect();
    assert_eq!(ids.len(), Rule::ALL.len());
    assert!(Rule::ALL.iter().all(|r| !r.clause().is_empty()));
}

#[test]
fn violations_csv_rows_quote_what_needs_it() {
    let mut m = Monitors::new(vec![None], 2);
    m.tcp_written(1, b"ab");
    m.tcp_read(ms(1), 1, 1, None, b"b");
    let mut buf = Vec::new();
    let names = ["a".to_string(), "node, b".to_string()];
    m.finish().write_csv(&mut buf, 3, &names).unwrap();
    let text = String::from_utf8(buf).unwrap();
    let mut lines = text.lines();
    assert_eq!(lines.next(), Some("run_id,t_ms,node,rule,clause,detail"));
    let row = lines.next().unwrap();
    assert!(
        row.starts_with("3,1.000000,\"node, b\",tcp-stream-order,RFC 9293 §3.10.7.4,"),
        "{row}"
    );
    assert_eq!(lines.next(), None);
}

// ----- runs -----

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn load(rel: &str) -> Scenario {
    scenario::load_file(&root().join(rel), &[]).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

fn run(tag: &str, sc: &Scenario, check: bool) -> PathBuf {
    let dir = temp_dir(tag);
    run_scenario(
        sc,
        &RunOptions {
            out_dir: dir.clone(),
            fsync: false,
            check,
            ..Default::default()
        },
    )
    .unwrap_or_else(|e| panic!("run: {e}"));
    dir
}

/// (rule id, count) of violations.csv, and the runs.csv `violations` sum.
fn found(dir: &Path) -> (Vec<String>, u64) {
    let rows = read_csv(&dir.join("violations.csv"));
    let ids = rows.iter().map(|r| r["rule"].clone()).collect();
    let sum = read_csv(&dir.join("runs.csv"))
        .iter()
        .map(|r| {
            r["violations"]
                .parse::<u64>()
                .expect("violations is a count")
        })
        .sum();
    (ids, sum)
}

fn assert_caught(tag: &str, clean: &Scenario, mutant: &Scenario, rule: &str) {
    let (ids, sum) = found(&run(&format!("{tag}-clean"), clean, true));
    assert!(ids.is_empty(), "{tag}: the real code violates {ids:?}");
    assert_eq!(sum, 0);
    let (ids, sum) = found(&run(&format!("{tag}-mutant"), mutant, true));
    assert!(!ids.is_empty(), "{tag}: the mutant went unnoticed");
    assert!(ids.iter().all(|i| i == rule), "{tag}: {ids:?}");
    assert_eq!(
        sum,
        ids.len() as u64,
        "{tag}: runs.csv column ≠ violations.csv rows"
    );
}

/// scenarios/tcp-bulk.toml for 10 s with 2 % loss.
const TCP_BULK_LOSS: &str = r#"
name = "tcp-bulk-loss"
seed = 1
duration = "10 s"
drain = "30 s"

[[nodes]]
name = "sender"
role = "client"

[[nodes]]
name = "receiver"
role = "server"

[[links]]
a = "sender"
b = "receiver"
rate = "1 Mbit/s"
delay = "50 ms"
mtu = 1500
queue = 20
loss = { model = "bernoulli", p = 0.02 }

[[flows]]
name = "bulk"
pattern = "point_to_point"
protocol = "tcp"
publishers = ["sender"]
receivers = ["receiver"]
topic = "bulk"
payload_bytes = 1000
timing = "bulk"

[protocols.tcp]
profile = "linux-like"
"#;

fn load_text(text: &str) -> Scenario {
    scenario::load_str(text, "test.toml", &root(), &[]).unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn mutant_broker_forgetting_qos2_ids_is_caught() {
    // QoS 2 over a lossy uplink that goes down just after a PUBLISH left:
    // the client resends it with DUP after reconnecting
    let clean = load("scenarios/regression/mqtt-qos2-exactly-once.toml");
    let mut mutant = clean.clone();
    mutant.protocols.mqtt.mutant_forget_qos2 = true;
    assert_caught("mqtt", &clean, &mutant, "mqtt-qos2-exactly-once");
}

#[test]
fn mutant_broker_skipping_qos1_copies_is_caught() {
    // QoS 1 to connected subscribers: a broker that acknowledges every
    // PUBLISH but never sends some copies
    let clean = load("scenarios/mqtt-point-to-point.toml");
    let mut mutant = clean.clone();
    mutant.protocols.mqtt.mutant_skip_qos1 = true;
    assert_caught("mqtt-qos1", &clean, &mutant, "mqtt-qos1-at-least-once");
}

#[test]
fn mutant_broker_skipping_qos1_copies_is_caught_in_mqtt_5() {
    // the same over MQTT 5.0: the monitors read 5.0 packets (properties,
    // topic aliases, session expiry) and still see the missing copies
    let mut clean = load("scenarios/mqtt-point-to-point.toml");
    clean.protocols.mqtt.version = qossim::proto::mqtt::MqttVersion::V5;
    clean.protocols.mqtt.topic_aliases = 4;
    let mut mutant = clean.clone();
    mutant.protocols.mqtt.mutant_skip_qos1 = true;
    assert_caught("mqtt5-qos1", &clean, &mutant, "mqtt-qos1-at-least-once");
}

#[test]
fn mqtt_versions_teaching_scenario_is_clean_under_check_in_both_versions() {
    for v in ["3.1.1", "5.0"] {
        let sc = scenario::load_file(
            &root().join("scenarios/teaching/mqtt-versions.toml"),
            &[format!("protocols.mqtt.version={v}")],
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let (ids, sum) = found(&run(&format!("versions-{v}"), &sc, true));
        assert!(ids.is_empty(), "{v}: {ids:?}");
        assert_eq!(sum, 0, "{v}");
    }
}

#[test]
fn mutant_coap_server_without_dedup_is_caught() {
    // CON PUTs over a link losing 20 % each way: lost ACKs make clients
    // retransmit CONs the server already took
    let clean = load("scenarios/regression/coap-con-loss.toml");
    let mut mutant = clean.clone();
    mutant.protocols.coap.mutant_no_dedup = true;
    assert_caught("coap", &clean, &mutant, "coap-con-dedup");
}

#[test]
fn mutant_tcp_receiver_delivering_out_of_order_is_caught() {
    // a saturating sender over a link losing 2 %: segments behind a lost
    // one arrive before its retransmission
    let clean = load_text(TCP_BULK_LOSS);
    let mut mutant = clean.clone();
    mutant.protocols.tcp.mutant_deliver_out_of_order = true;
    assert_caught("tcp", &clean, &mutant, "tcp-stream-order");
}

#[test]
fn shipped_scenarios_are_clean_under_check() {
    for rel in [
        "scenarios/mqtt-vs-coap.toml",
        "scenarios/coap-get.toml",
        "scenarios/teaching/qos-levels.toml",
        "scenarios/regression/mqtt-broker-restart.toml",
        "scenarios/tcp-bulk.toml",
    ] {
        let dir = run("shipped", &load(rel), true);
        let (ids, sum) = found(&dir);
        assert!(ids.is_empty(), "{rel}: {ids:?}");
        assert_eq!(sum, 0, "{rel}");
    }
}

#[test]
fn same_seed_gives_byte_identical_violations_csv() {
    let mut sc = load("scenarios/regression/coap-con-loss.toml");
    sc.protocols.coap.mutant_no_dedup = true;
    let a = std::fs::read(run("det-a", &sc, true).join("violations.csv")).unwrap();
    let b = std::fs::read(run("det-b", &sc, true).join("violations.csv")).unwrap();
    assert!(a.len() > 100, "expected violations to compare");
    assert_eq!(a, b);
}

#[test]
fn monitors_off_leave_the_column_empty_and_no_file() {
    let sc = load("scenarios/coap-get.toml");
    let dir = run("off", &sc, false);
    assert!(!dir.join("violations.csv").exists());
    for r in read_csv(&dir.join("runs.csv")) {
        assert_eq!(r["violations"], "", "a count nobody measured");
    }
    // a stale violations.csv from an earlier checked run is removed
    let dir2 = run("off-stale", &sc, true);
    assert!(dir2.join("violations.csv").exists());
    run_scenario(
        &sc,
        &RunOptions {
            out_dir: dir2.clone(),
            ..Default::default()
        },
    )
    .unwrap();
    assert!(!dir2.join("violations.csv").exists());
}

#[test]
fn an_expectation_on_violations_turns_the_monitors_on() {
    let path = root().join("scenarios/regression/coap-con-loss.toml");
    let mut text = std::fs::read_to_string(&path).unwrap();
    text.push_str("\n[[expect]]\nname = \"no spec violations\"\nmetric = \"violations\"\nop = \"==\"\nvalue = 0\n");
    let sc = scenario::load_str(&text, "t.toml", &root().join("scenarios/regression"), &[])
        .unwrap_or_else(|e| panic!("{e}"));
    let dir = run("expect", &sc, false);
    assert!(dir.join("violations.csv").exists());
    let (ids, sum) = found(&dir);
    assert!(ids.is_empty() && sum == 0);
    // and the same expectation fails on the mutant
    let mut m = sc.clone();
    m.protocols.coap.mutant_no_dedup = true;
    let dir = temp_dir("expect-mutant");
    let rep = run_scenario(
        &m,
        &RunOptions {
            out_dir: dir.clone(),
            ..Default::default()
        },
    )
    .unwrap();
    let ev = rep.expectations.expect("evaluated");
    assert!(
        !ev.all_pass(),
        "the violations expectation held on the mutant"
    );
}

#[test]
fn qossim_run_check_writes_violations_csv() {
    let out = temp_dir("cli");
    let scenario = root().join("scenarios/coap-get.toml");
    let (scenario, out_s) = (scenario.to_str().unwrap(), out.to_str().unwrap());
    let (code, _, err) = common::cli::run(&["run", scenario, "--out", out_s, "--quiet", "--check"]);
    assert_eq!(code, 0, "{err}");
    let (ids, sum) = found(&out);
    assert!(ids.is_empty() && sum == 0, "{ids:?}");
    // without the flag: no file, empty cells
    let (code, _, err) = common::cli::run(&["run", scenario, "--out", out_s, "--quiet"]);
    assert_eq!(code, 0, "{err}");
    assert!(!out.join("violations.csv").exists());
    assert!(read_csv(&out.join("runs.csv"))
        .iter()
        .all(|r| r["violations"].is_empty()));
}

/// Same scenario, seed and fault plan ⇒ byte-identical `violations.csv`
/// and `trace.csv`: CoAP CON over 20 % loss with every third CON
/// duplicated by a `duplicate_packet` fault, served by the mutant without
/// duplicate detection (so there are violations to compare).
#[test]
fn same_fault_plan_gives_byte_identical_violations_and_trace() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(root.join("scenarios/regression/coap-con-loss.toml"))
        .expect("read")
        + "\n[[events]]\nat = \"0 s\"\naction = \"duplicate_packet\"\nmatch = { kind = \"coap_con\", every = 3 }\n";
    let mut sc =
        scenario::load_str(&text, "fault.toml", root, &[]).unwrap_or_else(|e| panic!("{e}"));
    sc.protocols.coap.mutant_no_dedup = true;
    let once = |tag: &str| {
        let dir = temp_dir(tag);
        run_scenario(
            &sc,
            &RunOptions {
                out_dir: dir.clone(),
                check: true,
                trace: Some(Default::default()),
                ..Default::default()
            },
        )
        .unwrap_or_else(|e| panic!("run: {e}"));
        (
            std::fs::read(dir.join("violations.csv")).expect("violations.csv"),
            std::fs::read(dir.join("trace.csv")).expect("trace.csv"),
        )
    };
    let (va, ta) = once("fault-det-a");
    let (vb, tb) = once("fault-det-b");
    assert!(
        String::from_utf8_lossy(&va)
            .matches("coap-con-dedup")
            .count()
            >= 3,
        "expected violations to compare"
    );
    assert!(
        String::from_utf8_lossy(&ta).contains("coap_con"),
        "a trace of the run"
    );
    assert_eq!(va, vb);
    assert_eq!(ta, tb);
}
