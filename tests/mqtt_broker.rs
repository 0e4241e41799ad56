//! Broker and client semantics through the in-memory harness
//! (`tests/mqtt_common`): retained messages, wills, sessions, takeover,
//! authentication, `$SYS`, persistence, QoS 2 across reconnection,
//! qos2_forward timing, in-flight and queue limits, QoS downgrade.

mod mqtt_common;

use mqtt_common::{cfg, persistent, Net};
use proptest::prelude::*;
use qossim::proto::mqtt::BrokerInput;
use qossim::proto::mqtt::{
    Broker, BrokerConfig, BrokerEvent, Client, ClientConfig, ClientEvent, ConnId,
    ConnectReturnCode, DisconnectReason, LastWill, LostReason, PacketType, Persistence, QoS,
    Qos2Forward, TopicName,
};
use qossim::proto::StreamInput;
use qossim::sim::{SimDuration, SimRng, SimTime};

fn secs(s: u64) -> SimDuration {
    SimDuration::from_secs(s)
}
fn ms(s: u64) -> SimDuration {
    SimDuration::from_millis(s)
}

fn no_sys() -> BrokerConfig {
    BrokerConfig {
        sys_interval: None,
        ..BrokerConfig::default()
    }
}

#[test]
fn connect_subscribe_publish_all_qos_with_split_stream() {
    for chunk in [usize::MAX, 1, 3] {
        let mut n = Net::new(no_sys());
        n.chunk = chunk;
        let s = n.add(cfg("sub"));
        let p = n.add(cfg("pub"));
        n.run_for(ms(100));
        assert!(n.connected(s) && n.connected(p), "chunk {chunk}");
        n.subscribe(s, "a/#", QoS::ExactlyOnce);
        n.run_for(ms(100));
        for q in [QoS::AtMostOnce, QoS::AtLeastOnce, QoS::ExactlyOnce] {
            n.publish(p, "a/b", &[q.as_u8()], q, false);
        }
        n.run_for(ms(200));
        let got = n.messages(s);
        assert_eq!(got.len(), 3, "chunk {chunk}: {got:?}");
        for (i, (t, pl, q, r)) in got.iter().enumerate() {
            assert_eq!(
                (t.as_str(), pl.as_slice(), q.as_u8(), *r),
                ("a/b", &[i as u8][..], i as u8, false)
            );
        }
        let acked = n.events[p]
            .iter()
            .filter(|(_, e)| matches!(e, ClientEvent::PublishAcked { .. }))
            .count();
        assert_eq!(acked, 2, "QoS 1 PUBACK and QoS 2 PUBCOMP");
        assert_eq!(n.broker.stats().protocol_errors, 0);
    }
}

/// Issue 22: a session keeps its subscriptions and queues in a box that
/// exists only while one of them holds something, so a million publishing
/// clients' sessions carry none.
#[test]
fn a_session_holds_its_queues_only_while_it_needs_them() {
    let mut n = Net::new(no_sys());
    let s = n.add(persistent("sub"));
    let p = n.add(persistent("pub"));
    n.run_for(ms(100));
    let held = |n: &Net, id: &str| n.broker.session_info(id).expect(id).queues_held;
    assert!(
        !held(&n, "sub") && !held(&n, "pub"),
        "fresh sessions hold nothing"
    );
    n.subscribe(s, "a/#", QoS::AtLeastOnce);
    n.run_for(ms(100));
    assert!(held(&n, "sub"), "a subscription lives in the box");
    // QoS 2 in: the broker holds the packet id until PUBREL; then nothing
    n.publish(p, "a/b", b"x", QoS::ExactlyOnce, false);
    n.publish(p, "a/c", b"y", QoS::AtLeastOnce, false);
    n.run_for(ms(200));
    assert_eq!(n.messages(s).len(), 2);
    let info = n.broker.session_info("pub").expect("pub");
    assert_eq!(info.incoming_qos2, 0);
    assert!(!info.queues_held, "the publisher's box went back: {info:?}");
    let info = n.broker.session_info("sub").expect("sub");
    assert_eq!(info.inflight, 0);
    assert!(info.queues_held, "kept for the subscription");
    // resuming the publisher's session (resend, then drain) finds nothing
    // to do and allocates nothing
    n.kill_transport(p);
    n.run_for(ms(100));
    let again = n.add(persistent("pub"));
    n.run_for(ms(100));
    assert!(n.connected(again));
    let info = n.broker.session_info("pub").expect("pub");
    assert!(info.connected && !info.queues_held, "{info:?}");
}

#[test]
fn retained_delivered_on_subscribe_replaced_and_cleared() {
    let mut n = Net::new(no_sys());
    let p = n.add(cfg("pub"));
    n.run_for(ms(50));
    n.publish(p, "house/t", b"20", QoS::AtLeastOnce, true);
    n.publish(p, "house/t", b"21", QoS::AtLeastOnce, true); // replaces
    n.publish(p, "house/h", b"55", QoS::AtMostOnce, true);
    n.run_for(ms(100));
    assert_eq!(
        n.broker.retained("house/t"),
        Some((&b"21"[..], QoS::AtLeastOnce))
    );
    let s = n.add(cfg("late"));
    n.run_for(ms(50));
    n.subscribe(s, "house/+", QoS::AtLeastOnce);
    n.run_for(ms(100));
    let mut got = n.messages(s);
    got.sort();
    assert_eq!(
        got,
        vec![
            ("house/h".into(), b"55".to_vec(), QoS::AtMostOnce, true),
            ("house/t".into(), b"21".to_vec(), QoS::AtLeastOnce, true),
        ],
        "retained copies carry RETAIN=1 [MQTT-3.3.1-8]"
    );
    // A live subscriber gets later retained publishes with RETAIN=0.
    n.publish(p, "house/t", b"22", QoS::AtLeastOnce, true);
    // An empty retained payload deletes it [MQTT-3.3.1-10] and is forwarded.
    n.publish(p, "house/h", b"", QoS::AtMostOnce, true);
    n.run_for(ms(100));
    let got = n.messages(s);
    assert_eq!(
        got[2],
        ("house/t".into(), b"22".to_vec(), QoS::AtLeastOnce, false)
    );
    assert_eq!(got[3], ("house/h".into(), vec![], QoS::AtMostOnce, false));
    assert_eq!(n.broker.retained("house/h"), None);
    assert_eq!(n.broker.stats().retained_messages, 1);
    let s2 = n.add(cfg("later"));
    n.run_for(ms(50));
    n.subscribe(s2, "house/#", QoS::AtMostOnce);
    n.run_for(ms(100));
    assert_eq!(
        n.messages(s2),
        vec![("house/t".into(), b"22".to_vec(), QoS::AtMostOnce, true)],
        "only the surviving retained message, downgraded to the granted QoS"
    );
}

fn with_will(id: &str, keep_alive: u16, retain: bool) -> ClientConfig {
    ClientConfig {
        keep_alive,
        will: Some(LastWill {
            topic: TopicName::new(&format!("wills/{id}")).expect("t"),
            message: std::sync::Arc::from(&b"gone"[..]),
            qos: QoS::AtLeastOnce,
            retain,
        }),
        reconnect: None,
        ..ClientConfig::new(id)
    }
}

#[test]
fn will_on_keep_alive_expiry_not_after_disconnect() {
    let mut n = Net::new(no_sys());
    let w = n.add(cfg("watcher"));
    let a = n.add(with_will("a", 10, false));
    let b = n.add(with_will("b", 10, false));
    n.run_for(ms(50));
    n.subscribe(w, "wills/#", QoS::AtLeastOnce);
    n.run_for(ms(50));
    n.disconnect(b); // clean DISCONNECT: will discarded [MQTT-3.14.4-3]
    let t_cut = n.now;
    n.cut[a] = true; // silent network failure
    n.run_for(secs(20));
    let got = n.message_times(w);
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(got[0].1, b"gone");
    // Broker gives up after 1.5 × 10 s of silence [MQTT-3.1.2-24]; the last
    // packet from `a` arrived shortly before the cut.
    let lag = got[0].0 - t_cut;
    assert!(lag >= secs(14) && lag <= secs(16), "will after {lag}");
    assert_eq!(n.broker.stats().keep_alive_timeouts, 1);
    assert_eq!(n.broker.stats().wills_published, 1);
    assert!(n.broker_events.iter().any(|(_, e)| matches!(
        e,
        BrokerEvent::WillPublished { client_id, topic } if &**client_id == "a" && topic.as_str() == "wills/a"
    )));
    assert!(n.broker_events.iter().any(|(_, e)| matches!(
        e,
        BrokerEvent::ClientDisconnected {
            reason: DisconnectReason::KeepAliveTimeout,
            ..
        }
    )));
}

#[test]
fn will_with_retain_becomes_the_retained_message_and_fires_on_lost_transport() {
    let mut n = Net::new(no_sys());
    let a = n.add(with_will("a", 60, true));
    n.run_for(ms(50));
    n.kill_transport(a);
    n.run_for(ms(50));
    assert_eq!(
        n.broker.retained("wills/a"),
        Some((&b"gone"[..], QoS::AtLeastOnce))
    );
    let s = n.add(cfg("late"));
    n.run_for(ms(50));
    n.subscribe(s, "wills/+", QoS::ExactlyOnce);
    n.run_for(ms(100));
    assert_eq!(
        n.messages(s),
        vec![("wills/a".into(), b"gone".to_vec(), QoS::AtLeastOnce, true)]
    );
}

#[test]
fn persistent_session_gets_qos1_published_while_offline() {
    let mut n = Net::new(no_sys());
    let s = n.add(persistent("sensor-sink"));
    let p = n.add(cfg("pub"));
    n.run_for(ms(50));
    n.subscribe(s, "t/#", QoS::AtLeastOnce);
    n.run_for(ms(50));
    n.disconnect(s);
    n.run_for(ms(50));
    for i in 0..5u8 {
        n.publish(p, "t/x", &[i], QoS::AtLeastOnce, false);
    }
    n.publish(p, "t/x", b"q0", QoS::AtMostOnce, false); // not queued offline
    n.run_for(ms(100));
    let info = n.broker.session_info("sensor-sink").expect("kept");
    assert!(!info.connected);
    assert_eq!(info.queued, 5);
    assert_eq!(n.broker.stats().dropped_qos0_offline, 1);
    assert_eq!(n.broker.stats().clients_disconnected, 1);
    n.clients[s].connect();
    n.pump();
    n.run_for(ms(200));
    assert!(n.events[s].iter().any(|(_, e)| *e
        == ClientEvent::Connected {
            session_present: true
        }));
    let got: Vec<Vec<u8>> = n.messages(s).into_iter().map(|m| m.1).collect();
    assert_eq!(
        got,
        (0..5u8).map(|i| vec![i]).collect::<Vec<_>>(),
        "in order"
    );
    // A clean session would have lost them.
    let c = n.add(cfg("cleaner"));
    n.run_for(ms(50));
    n.subscribe(c, "t/#", QoS::AtLeastOnce);
    n.run_for(ms(50));
    n.disconnect(c);
    assert_eq!(n.broker.session_count(), 3);
    n.run_for(ms(50));
    assert_eq!(
        n.broker.session_count(),
        2,
        "clean session discarded on disconnect"
    );
}

#[test]
fn client_id_takeover_closes_the_old_connection() {
    let mut n = Net::new(no_sys());
    let mut c1 = with_will("dup", 60, false);
    c1.reconnect = None;
    let first = n.add(c1.clone());
    let w = n.add(cfg("watcher"));
    n.run_for(ms(50));
    n.subscribe(w, "wills/#", QoS::AtMostOnce);
    n.run_for(ms(50));
    let second = n.add(c1);
    n.run_for(ms(100));
    assert!(n.connected(second));
    assert!(!n.connected(first), "old connection closed [MQTT-3.1.4-2]");
    assert!(n.events[first].iter().any(|(_, e)| matches!(
        e,
        ClientEvent::ConnectionLost {
            reason: LostReason::TransportClosed,
            ..
        }
    )));
    assert_eq!(n.broker.stats().takeovers, 1);
    assert_eq!(n.broker.stats().clients_connected, 2);
    assert_eq!(n.messages(w).len(), 1, "the taken-over connection's will");
}

#[test]
fn credentials_checked() {
    let mut bc = no_sys();
    bc.users.insert("hans".into(), b"letmein".to_vec());
    bc.allow_anonymous = false;
    let mut n = Net::new(bc);
    let mk = |u: Option<&str>, p: Option<&[u8]>| ClientConfig {
        username: u.map(String::from),
        password: p.map(|p| p.to_vec()),
        reconnect: None,
        ..ClientConfig::new("x")
    };
    let good = n.add(mk(Some("hans"), Some(b"letmein")));
    n.run_for(ms(50));
    assert!(n.connected(good));
    n.disconnect(good);
    let bad_pw = n.add(mk(Some("hans"), Some(b"wrong")));
    let bad_user = n.add(mk(Some("eve"), Some(b"letmein")));
    let anon = n.add(mk(None, None));
    n.run_for(ms(100));
    let refused = |i: usize| {
        n.events[i].iter().find_map(|(_, e)| match e {
            ClientEvent::ConnectRefused(c) => Some(*c),
            _ => None,
        })
    };
    assert_eq!(
        refused(bad_pw),
        Some(ConnectReturnCode::BadUserNameOrPassword)
    );
    assert_eq!(
        refused(bad_user),
        Some(ConnectReturnCode::BadUserNameOrPassword)
    );
    assert_eq!(refused(anon), Some(ConnectReturnCode::NotAuthorized));
    assert_eq!(n.broker.stats().connects_refused, 3);
    assert_eq!(n.broker.connection_count(), 0, "refused connections closed");
}

#[test]
fn sys_topics_report_true_counts() {
    let mut n = Net::new(BrokerConfig {
        sys_interval: Some(secs(10)),
        ..BrokerConfig::default()
    });
    let m = n.add(cfg("monitor"));
    let _a = n.add(cfg("a"));
    let b = n.add(persistent("b"));
    n.run_for(ms(50));
    n.subscribe(m, "$SYS/#", QoS::AtMostOnce);
    n.subscribe(m, "#", QoS::AtMostOnce); // must not see $SYS [MQTT-4.7.2-1]
    n.run_for(ms(50));
    n.disconnect(b);
    n.run_for(secs(10)); // first publication at t = 10 s
    let got = n.messages(m);
    let value = |t: &str| {
        got.iter()
            .filter(|x| x.0 == t)
            .map(|x| String::from_utf8(x.1.clone()).expect("utf8"))
            .next_back()
    };
    assert_eq!(value("$SYS/broker/clients/connected").as_deref(), Some("2"));
    assert_eq!(
        value("$SYS/broker/clients/disconnected").as_deref(),
        Some("1")
    );
    assert_eq!(value("$SYS/broker/clients/total").as_deref(), Some("3"));
    assert_eq!(value("$SYS/broker/uptime").as_deref(), Some("10 seconds"));
    // messages/sent = every packet the broker handed out before this
    // publication: 3 CONNACK + 2 SUBACK (this round's $SYS messages were
    // still queued).
    let sent: u64 = value("$SYS/broker/messages/sent")
        .expect("sent")
        .parse()
        .expect("n");
    assert_eq!(sent, 5);
    assert_eq!(got.len(), 5, "each $SYS topic once, not twice through #");
    assert!(got.iter().all(|x| !x.3), "live delivery has RETAIN 0");
    assert_eq!(
        n.broker.retained("$SYS/broker/clients/total"),
        Some((&b"3"[..], QoS::AtMostOnce))
    );
}

fn crash_restart(persistence: Persistence) -> (Vec<Vec<u8>>, Option<Vec<u8>>) {
    let mut n = Net::new(BrokerConfig {
        persistence,
        sys_interval: None,
        ..BrokerConfig::default()
    });
    let s = n.add(persistent("sink"));
    let p = n.add(cfg("pub"));
    n.run_for(ms(50));
    n.subscribe(s, "d/#", QoS::AtLeastOnce);
    n.publish(p, "d/r", b"kept?", QoS::AtLeastOnce, true);
    n.run_for(ms(100));
    n.disconnect(s);
    n.run_for(ms(50));
    n.publish(p, "d/x", b"queued", QoS::AtLeastOnce, false);
    n.run_for(ms(50));
    n.clear_events();
    n.broker.crash();
    n.pump();
    n.run_for(ms(100));
    assert!(!n.connected(p), "crash closes connections");
    let now = n.now;
    n.broker.restart(now);
    n.clients[s].connect();
    n.pump();
    n.run_for(secs(5)); // publisher reconnects by itself (backoff ≤ 1 s)
    assert!(n.connected(p) && n.connected(s));
    let got = n.messages(s).into_iter().map(|m| m.1).collect();
    (got, n.broker.retained("d/r").map(|r| r.0.to_vec()))
}

#[test]
fn durable_vs_no_persistence_across_crash() {
    let (got, retained) = crash_restart(Persistence::Durable);
    assert_eq!(
        got,
        vec![b"queued".to_vec()],
        "session and its queue survive"
    );
    assert_eq!(retained.as_deref(), Some(&b"kept?"[..]));
    let (got, retained) = crash_restart(Persistence::None);
    assert!(got.is_empty(), "{got:?}");
    assert_eq!(retained, None);
}

/// QoS 2 both ways with persistent sessions; the publisher's transport is
/// killed at seeded random moments. Every message arrives exactly once.
#[test]
fn qos2_exactly_once_across_reconnects() {
    for (seed, forward) in [
        (1u64, Qos2Forward::OnPubrel),
        (2, Qos2Forward::OnPublish),
        (3, Qos2Forward::OnPubrel),
    ] {
        let mut n = Net::new(BrokerConfig {
            qos2_forward: forward,
            sys_interval: None,
            max_inflight: 5,
            ..BrokerConfig::default()
        });
        let s = n.add(persistent("sub"));
        let mut pc = persistent("pub");
        pc.max_inflight = 3;
        let p = n.add(pc);
        n.run_for(ms(50));
        n.subscribe(s, "q/#", QoS::ExactlyOnce);
        n.run_for(ms(50));
        let mut rng = SimRng::stream(seed, "kills");
        let total = 200u32;
        for i in 0..total {
            n.publish(p, "q/2", &i.to_be_bytes(), QoS::ExactlyOnce, false);
            n.run_for(ms(rng.next_u64() % 15));
            if rng.bernoulli(0.05) {
                let victim = if rng.bernoulli(0.5) { p } else { s };
                n.kill_transport(victim);
            }
        }
        n.run_for(secs(120));
        let got: Vec<u32> = n
            .messages(s)
            .iter()
            .map(|m| u32::from_be_bytes(m.1.as_slice().try_into().expect("4 bytes")))
            .collect();
        let mut sorted = got.clone();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(sorted.len(), got.len(), "seed {seed}: duplicates");
        assert_eq!(
            sorted,
            (0..total).collect::<Vec<_>>(),
            "seed {seed}: losses"
        );
        assert_eq!(got, sorted, "seed {seed}: order kept (§4.6)");
        let losses =
            n.clients[p].stats().connection_losses + n.clients[s].stats().connection_losses;
        assert!(
            losses >= 3,
            "seed {seed}: the test did kill transports ({losses})"
        );
        assert!(
            n.log.iter().any(|w| w.retransmission),
            "something was resent"
        );
    }
}

#[test]
fn qos2_forward_timing() {
    let mut at = Vec::new();
    for forward in [Qos2Forward::OnPublish, Qos2Forward::OnPubrel] {
        let mut n = Net::new(BrokerConfig {
            qos2_forward: forward,
            sys_interval: None,
            ..BrokerConfig::default()
        });
        let s = n.add(cfg("s"));
        let p = n.add(cfg("p"));
        n.run_for(ms(100));
        n.subscribe(s, "x", QoS::ExactlyOnce);
        n.run_for(ms(100));
        let t0 = n.now;
        n.publish(p, "x", b"1", QoS::ExactlyOnce, false);
        n.run_for(ms(500));
        let got = n.message_times(s);
        assert_eq!(got.len(), 1);
        at.push(got[0].0 - t0);
    }
    // One-way delay 10 ms. OnPublish: PUBLISH in, PUBLISH out = 20 ms.
    // OnPubrel: + PUBREC back and PUBREL in = 40 ms.
    assert_eq!(at, vec![ms(20), ms(40)]);
}

#[test]
fn inflight_limit_queues_excess() {
    let mut n = Net::new(BrokerConfig {
        max_inflight: 2,
        sys_interval: None,
        ..BrokerConfig::default()
    });
    let s = n.add(cfg("s"));
    let p = n.add(cfg("p"));
    n.run_for(ms(50));
    n.subscribe(s, "x", QoS::AtLeastOnce);
    n.run_for(ms(50));
    n.log.clear();
    for i in 0..10u8 {
        n.publish(p, "x", &[i], QoS::AtLeastOnce, false);
    }
    n.run_for(ms(50));
    let (mut outstanding, mut max) = (0i32, 0i32);
    for w in n.log.iter().filter(|w| w.client == s) {
        match (w.kind, w.to_broker) {
            (PacketType::Publish, false) => outstanding += 1,
            (PacketType::PubAck, true) => outstanding -= 1,
            _ => {}
        }
        max = max.max(outstanding);
    }
    assert_eq!(max, 2, "never more than max_inflight unacknowledged");
    n.run_for(secs(1));
    let got: Vec<u8> = n.messages(s).iter().map(|m| m.1[0]).collect();
    assert_eq!(got, (0..10).collect::<Vec<u8>>());
}

#[test]
fn offline_queue_limit_counts_drops() {
    let mut n = Net::new(BrokerConfig {
        max_queued: 3,
        sys_interval: None,
        ..BrokerConfig::default()
    });
    let s = n.add(persistent("s"));
    let p = n.add(cfg("p"));
    n.run_for(ms(50));
    n.subscribe(s, "x", QoS::ExactlyOnce);
    n.run_for(ms(50));
    n.disconnect(s);
    n.run_for(ms(50));
    for i in 0..5u8 {
        n.publish(p, "x", &[i], QoS::ExactlyOnce, false);
    }
    n.run_for(ms(200));
    assert_eq!(n.broker.stats().dropped_queue_full, 2);
    let drops = n
        .broker_events
        .iter()
        .filter(|(_, e)| matches!(e, BrokerEvent::Dropped { .. }))
        .count();
    assert_eq!(drops, 2);
    n.clients[s].connect();
    n.pump();
    n.run_for(ms(300));
    let got: Vec<u8> = n.messages(s).iter().map(|m| m.1[0]).collect();
    assert_eq!(got, vec![0, 1, 2], "the oldest three were kept");
}

#[test]
fn qos_downgraded_to_granted() {
    let mut n = Net::new(BrokerConfig {
        max_qos: QoS::AtLeastOnce,
        sys_interval: None,
        ..BrokerConfig::default()
    });
    let s0 = n.add(cfg("s0"));
    let s1 = n.add(cfg("s1"));
    let s2 = n.add(cfg("s2"));
    let p = n.add(cfg("p"));
    n.run_for(ms(50));
    n.subscribe(s0, "x", QoS::AtMostOnce);
    n.subscribe(s1, "x", QoS::AtLeastOnce);
    n.subscribe(s2, "x", QoS::ExactlyOnce); // capped to 1 by max_qos
    n.run_for(ms(50));
    let granted = n.events[s2].iter().find_map(|(_, e)| match e {
        ClientEvent::Subscribed { codes, .. } => Some(codes.clone()),
        _ => None,
    });
    assert_eq!(
        granted,
        Some(vec![qossim::proto::mqtt::SubAckReturn::Success(
            QoS::AtLeastOnce
        )])
    );
    n.publish(p, "x", b"m", QoS::ExactlyOnce, false);
    n.run_for(ms(100));
    assert_eq!(n.messages(s0)[0].2, QoS::AtMostOnce);
    assert_eq!(n.messages(s1)[0].2, QoS::AtLeastOnce);
    assert_eq!(n.messages(s2)[0].2, QoS::AtLeastOnce);
}

#[test]
fn dead_broker_detected_and_reconnect_backs_off() {
    let mut n = Net::new(no_sys());
    let c = n.add(ClientConfig {
        keep_alive: 5,
        ping_timeout: secs(2),
        ..ClientConfig::new("c")
    });
    n.run_for(ms(50));
    n.cut[c] = true;
    n.run_for(secs(60));
    let lost: Vec<(SimTime, LostReason, Option<SimTime>)> = n.events[c]
        .iter()
        .filter_map(|(t, e)| match e {
            ClientEvent::ConnectionLost {
                reason,
                reconnect_at,
            } => Some((*t, reason.clone(), *reconnect_at)),
            _ => None,
        })
        .collect();
    assert_eq!(lost[0].1, LostReason::PingTimeout);
    // PINGREQ after 5 s of silence, no PINGRESP within 2 s.
    assert!(
        lost[0].0 >= SimTime::ZERO + secs(7) && lost[0].0 <= SimTime::ZERO + secs(8),
        "{lost:?}"
    );
    // Then CONNACK timeouts (10 s) with growing, jittered backoff: attempt n
    // waits in [d/2, d], d = min(60 s, 1 s · 2^n).
    assert!(lost.len() >= 3, "{lost:?}");
    for (n_attempt, (t, _, at)) in lost.iter().enumerate() {
        let wait = at.expect("reconnect") - *t;
        let d = secs(1u64 << n_attempt).min(secs(60));
        assert!(
            wait <= d && wait.as_nanos() >= d.as_nanos() / 2,
            "attempt {n_attempt}: {wait}"
        );
    }
    assert!(lost[1..].iter().all(|l| l.1 == LostReason::ConnectTimeout));
}

#[test]
fn legacy_retry_resends_while_connected_only_when_enabled() {
    for retry in [None, Some(secs(5))] {
        let mut n = Net::new(BrokerConfig {
            legacy_retry: retry,
            sys_interval: None,
            ..BrokerConfig::default()
        });
        let s = n.add(cfg("s"));
        let p = n.add(cfg("p"));
        n.run_for(ms(50));
        n.subscribe(s, "x", QoS::AtLeastOnce);
        n.run_for(ms(50));
        // The subscriber's first PUBACK is lost (a misbehaving client).
        let mut dropped = false;
        n.drop = Some(Box::new(move |w| {
            let hit = !dropped && w.to_broker && w.client == 0 && w.kind == PacketType::PubAck;
            dropped |= hit;
            hit
        }));
        n.publish(p, "x", b"m", QoS::AtLeastOnce, false);
        n.run_for(secs(12));
        let resends = n
            .log
            .iter()
            .filter(|w| !w.to_broker && w.kind == PacketType::Publish && w.retransmission)
            .count();
        match retry {
            None => {
                assert_eq!(resends, 0, "MQTT 3.1.1: no resend while connected (§4.4)");
                assert_eq!(n.broker.session_info("s").expect("s").inflight, 1);
            }
            Some(_) => {
                assert_eq!(resends, 1, "resent once after 5 s, then acknowledged");
                assert_eq!(n.broker.session_info("s").expect("s").inflight, 0);
                let got = n.messages(s);
                assert_eq!(got.len(), 2, "QoS 1: the duplicate reaches the app");
            }
        }
    }
}

#[test]
fn malformed_bytes_close_with_will_and_are_counted() {
    let mut n = Net::new(no_sys());
    let w = n.add(cfg("w"));
    let a = n.add(with_will("a", 60, false));
    n.run_for(ms(50));
    n.subscribe(w, "wills/#", QoS::AtMostOnce);
    n.run_for(ms(50));
    let conn = n.conn_of[a].expect("conn");
    let now = n.now;
    n.broker
        .handle_input(now, BrokerInput::bytes(conn, &[0x36, 0x00])); // PUBLISH QoS 3
    n.pump();
    n.run_for(ms(100));
    assert_eq!(n.broker.stats().protocol_errors, 1);
    assert!(!n.connected(a));
    assert_eq!(n.messages(w).len(), 1, "will published on protocol error");
    assert!(n
        .broker_events
        .iter()
        .any(|(_, e)| matches!(e, BrokerEvent::ProtocolError { .. })));
}

#[test]
fn first_packet_must_be_connect_and_connect_timeout() {
    let mut b = Broker::new(no_sys(), SimTime::ZERO);
    let mut buf = Vec::new();
    b.handle_input(SimTime::ZERO, BrokerInput::accepted(ConnId(1)));
    b.handle_input(SimTime::ZERO, BrokerInput::bytes(ConnId(1), &[0xC0, 0x00])); // PINGREQ first
    assert!(b.poll_transmit(SimTime::ZERO, &mut buf).is_none());
    let evs: Vec<_> = std::iter::from_fn(|| b.poll_event()).collect();
    assert!(
        matches!(evs.last(), Some(BrokerEvent::Close(ConnId(1)))),
        "{evs:?}"
    );
    b.handle_input(SimTime::ZERO, BrokerInput::accepted(ConnId(2)));
    assert_eq!(b.poll_timeout(), Some(SimTime::ZERO + secs(10)));
    b.handle_timeout(SimTime::ZERO + secs(10));
    assert_eq!(b.poll_event(), Some(BrokerEvent::Close(ConnId(2))));
    assert_eq!(b.stats().connect_timeouts, 1);
    // Protocol level 3 gets CONNACK 1 [MQTT-3.1.2-2] (level 5 is MQTT
    // 5.0, accepted since issue 18; tests/mqtt5_broker.rs covers levels
    // above 5).
    b.handle_input(SimTime::ZERO, BrokerInput::accepted(ConnId(3)));
    b.handle_input(
        SimTime::ZERO,
        BrokerInput::bytes(
            ConnId(3),
            &[
                0x10, 0x0D, 0, 4, b'M', b'Q', b'T', b'T', 3, 2, 0, 60, 0, 1, b'x',
            ],
        ),
    );
    buf.clear();
    let t = b.poll_transmit(SimTime::ZERO, &mut buf).expect("CONNACK");
    assert_eq!(t.kind, PacketType::ConnAck);
    assert_eq!(buf, vec![0x20, 0x02, 0x00, 0x01]);
}

/// Connect `c` on `conn` through `b`, exchanging packets until quiet.
fn exchange(b: &mut Broker, conn: ConnId, c: &mut Client, buf: &mut Vec<u8>) {
    loop {
        let mut progress = false;
        while {
            buf.clear();
            c.poll_transmit(SimTime::ZERO, buf).is_some()
        } {
            b.handle_input(SimTime::ZERO, BrokerInput::bytes(conn, buf));
            progress = true;
        }
        while let Some(t) = {
            buf.clear();
            b.poll_transmit(SimTime::ZERO, buf)
        } {
            assert_eq!(t.conn, conn);
            c.handle_input(SimTime::ZERO, StreamInput::Bytes(buf));
            progress = true;
        }
        if !progress {
            break;
        }
    }
}

#[test]
fn ten_thousand_clients_fan_in() {
    let mut b = Broker::new(
        BrokerConfig {
            delivery_events: false,
            sys_interval: None,
            ..BrokerConfig::default()
        },
        SimTime::ZERO,
    );
    let mut buf = Vec::new();
    let n = 10_000u64;
    let collector = ConnId(n);
    b.handle_input(SimTime::ZERO, BrokerInput::accepted(collector));
    let mut col = Client::new(ClientConfig::new("collector"), SimRng::stream(1, "y"));
    col.connect();
    col.handle_input(SimTime::ZERO, StreamInput::Connected);
    let all = qossim::proto::mqtt::TopicFilter::new("building/#").expect("f");
    col.subscribe(SimTime::ZERO, vec![(all, QoS::AtMostOnce)])
        .expect("sub");
    exchange(&mut b, collector, &mut col, &mut buf);
    let mut sensors = Vec::new();
    for i in 0..n {
        let conn = ConnId(i);
        b.handle_input(SimTime::ZERO, BrokerInput::accepted(conn));
        let mut c = Client::new(
            ClientConfig {
                clean_session: false,
                ..ClientConfig::new(format!("sensor-{i}"))
            },
            SimRng::stream(1, "x"),
        );
        c.connect();
        c.handle_input(SimTime::ZERO, StreamInput::Connected);
        exchange(&mut b, conn, &mut c, &mut buf);
        assert!(c.is_connected());
        sensors.push(c);
    }
    assert_eq!(b.session_count(), n as usize + 1);
    assert_eq!(b.stats().clients_connected, n + 1);
    for (i, c) in sensors.iter_mut().enumerate() {
        let topic = TopicName::new(&format!("building/room/{i}/t")).expect("t");
        c.publish(SimTime::ZERO, topic, vec![2u8; 16], QoS::AtLeastOnce, false)
            .expect("publish");
        while {
            buf.clear();
            c.poll_transmit(SimTime::ZERO, &mut buf).is_some()
        } {
            b.handle_input(SimTime::ZERO, BrokerInput::bytes(ConnId(i as u64), &buf));
        }
    }
    let (mut to_collector, mut pubacks) = (0, 0);
    while let Some(t) = {
        buf.clear();
        b.poll_transmit(SimTime::ZERO, &mut buf)
    } {
        match (t.conn == collector, t.kind) {
            (true, PacketType::Publish) => to_collector += 1,
            (false, PacketType::PubAck) => pubacks += 1,
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!((to_collector, pubacks), (n, n));
    assert_eq!(b.stats().publishes_received, n);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn arbitrary_bytes_never_panic_broker_or_client(
        chunks in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..64), 1..6),
        connect_first in any::<bool>(),
    ) {
        let mut b = Broker::new(BrokerConfig { max_packet_size: 1024, ..BrokerConfig::default() }, SimTime::ZERO);
        let mut buf = Vec::new();
        b.handle_input(SimTime::ZERO, BrokerInput::accepted(ConnId(1)));
        if connect_first {
            b.handle_input(SimTime::ZERO, BrokerInput::bytes(ConnId(1), &[0x10, 0x0D, 0, 4, b'M', b'Q', b'T', b'T', 4, 2, 0, 1, 0, 1, b'x']));
        }
        let mut c = Client::new(ClientConfig { max_packet_size: 1024, ..ClientConfig::new("c") }, SimRng::stream(1, "c"));
        c.connect();
        c.handle_input(SimTime::ZERO, StreamInput::Connected);
        if connect_first {
            c.handle_input(SimTime::ZERO, StreamInput::Bytes(&[0x20, 0x02, 0x00, 0x00]));
        }
        for (k, ch) in chunks.iter().enumerate() {
            let t = SimTime::ZERO + SimDuration::from_millis(k as u64 * 700);
            b.handle_input(t, BrokerInput::bytes(ConnId(1), ch));
            c.handle_input(t, StreamInput::Bytes(ch));
            b.handle_timeout(t);
            c.handle_timeout(t);
            while b.poll_transmit(t, &mut buf).is_some() {}
            while b.poll_event().is_some() {}
            while c.poll_transmit(t, &mut buf).is_some() {}
            while c.poll_event().is_some() {}
        }
    }
}

/// Events until the queue is empty.
fn drain_events(b: &mut Broker) -> Vec<BrokerEvent> {
    std::iter::from_fn(|| b.poll_event()).collect()
}

/// A CONNECT for client id "b" (keep-alive 0: no timeout bounds the wait).
const CONNECT_B: [u8; 15] = [
    0x10, 0x0D, 0, 4, b'M', b'Q', b'T', b'T', 4, 2, 0, 0, 0, 1, b'b',
];

/// Fixed header of a packet of type byte `t` announcing `remaining` bytes.
fn header(t: u8, mut remaining: usize) -> Vec<u8> {
    let mut h = vec![t];
    loop {
        let b = (remaining % 128) as u8;
        remaining /= 128;
        h.push(if remaining > 0 { b | 0x80 } else { b });
        if remaining == 0 {
            return h;
        }
    }
}

/// The broker buffers at most `max_connect_packet_size` (64 KiB) of a first
/// packet and `max_packet_size` (1 MiB) afterwards: a fixed header announcing
/// more closes the connection at once, counted, instead of buffering what
/// follows (hardening issue, defect 4: 256 MiB per connection before).
#[test]
fn announced_packet_sizes_are_bounded_before_and_after_connect() {
    let mut b = Broker::new(no_sys(), SimTime::ZERO);
    let t = SimTime::ZERO;
    // a CONNECT announcing 256 MiB: closed on its header
    b.handle_input(t, BrokerInput::accepted(ConnId(1)));
    b.handle_input(t, BrokerInput::bytes(ConnId(1), &header(0x10, 256 << 20)));
    assert!(
        drain_events(&mut b).contains(&BrokerEvent::Close(ConnId(1))),
        "256 MiB CONNECT refused on its header"
    );
    // a CONNECT of 70 KiB (a huge client id) exceeds the 64 KiB first-packet bound
    b.handle_input(t, BrokerInput::accepted(ConnId(2)));
    b.handle_input(t, BrokerInput::bytes(ConnId(2), &header(0x10, 70 << 10)));
    assert!(drain_events(&mut b).contains(&BrokerEvent::Close(ConnId(2))));
    // after CONNECT: a 512 KiB PUBLISH is within 1 MiB and waits for its
    // bytes; a 2 MiB one closes the connection
    b.handle_input(t, BrokerInput::accepted(ConnId(3)));
    b.handle_input(t, BrokerInput::bytes(ConnId(3), &CONNECT_B));
    let mut half = header(0x30, 512 << 10);
    half.extend_from_slice(&[0, 1, b't']);
    b.handle_input(t, BrokerInput::bytes(ConnId(3), &half));
    assert!(!drain_events(&mut b).contains(&BrokerEvent::Close(ConnId(3))));
    b.handle_input(t, BrokerInput::accepted(ConnId(4)));
    b.handle_input(t, BrokerInput::bytes(ConnId(4), &CONNECT_B[..]));
    b.handle_input(t, BrokerInput::bytes(ConnId(4), &header(0x30, 2 << 20)));
    assert!(drain_events(&mut b).contains(&BrokerEvent::Close(ConnId(4))));
    assert_eq!(b.stats().protocol_errors, 3, "each refusal is counted");
    // the first-packet bound applies to the CONNECT only: a CONNECT and a
    // 100 KiB PUBLISH in one read are both taken
    b.handle_input(t, BrokerInput::accepted(ConnId(5)));
    let mut both = CONNECT_B.to_vec();
    both[CONNECT_B.len() - 1] = b'c';
    let payload = 100 << 10;
    both.extend(header(0x30, 3 + payload));
    both.extend_from_slice(&[0, 1, b't']);
    both.resize(both.len() + payload, 7);
    let before = b.stats().packets_received;
    b.handle_input(t, BrokerInput::bytes(ConnId(5), &both));
    assert!(!drain_events(&mut b).contains(&BrokerEvent::Close(ConnId(5))));
    assert_eq!(b.stats().packets_received, before + 2);
    // configurable: with max_packet_size 4 MiB the 2 MiB PUBLISH is fine
    let mut b = Broker::new(
        BrokerConfig {
            max_packet_size: 4 << 20,
            ..no_sys()
        },
        SimTime::ZERO,
    );
    b.handle_input(t, BrokerInput::accepted(ConnId(1)));
    b.handle_input(t, BrokerInput::bytes(ConnId(1), &CONNECT_B));
    b.handle_input(t, BrokerInput::bytes(ConnId(1), &header(0x30, 2 << 20)));
    assert!(!drain_events(&mut b).contains(&BrokerEvent::Close(ConnId(1))));
}

/// A QoS 2 PUBLISH to "t" with packet id `pid` and a one-byte payload.
fn qos2_publish(pid: u16) -> Vec<u8> {
    let mut p = vec![0x34, 0x06, 0x00, 0x01, b't'];
    p.extend_from_slice(&pid.to_be_bytes());
    p.push(pid as u8);
    p
}

/// Transmitted packet kinds until the broker is quiet.
fn sent_kinds(b: &mut Broker) -> Vec<PacketType> {
    let mut buf = Vec::new();
    std::iter::from_fn(|| {
        buf.clear();
        b.poll_transmit(SimTime::ZERO, &mut buf).map(|t| t.kind)
    })
    .collect()
}

/// A session holds at most `max_incoming_qos2` unreleased QoS 2 messages
/// (hardening issue, defect 4: 65,535 held 279 MB); the one past the cap
/// closes the connection as a protocol error and gets no PUBREC. Held ids
/// are found by binary search: PUBRELs in any order release the right
/// message, a resend of a held id is answered but not forwarded again.
#[test]
fn unreleased_qos2_messages_are_capped() {
    let mut b = Broker::new(
        BrokerConfig {
            max_incoming_qos2: 10,
            ..no_sys()
        },
        SimTime::ZERO,
    );
    let t = SimTime::ZERO;
    b.handle_input(t, BrokerInput::accepted(ConnId(1)));
    b.handle_input(t, BrokerInput::bytes(ConnId(1), &CONNECT_B));
    let _ = sent_kinds(&mut b); // CONNACK
    for pid in (1..=10u16).rev() {
        b.handle_input(t, BrokerInput::bytes(ConnId(1), &qos2_publish(pid)));
    }
    // a resend of a held id: PUBREC again, still 10 held
    b.handle_input(t, BrokerInput::bytes(ConnId(1), &qos2_publish(4)));
    assert_eq!(sent_kinds(&mut b), vec![PacketType::PubRec; 11]);
    assert_eq!(b.stats().publishes_received, 10);
    // release 7, then 3: each once; releasing 7 again only gets PUBCOMP
    for pid in [7u16, 3, 7] {
        b.handle_input(
            t,
            BrokerInput::bytes(ConnId(1), &[0x62, 0x02, 0x00, pid as u8]),
        );
    }
    assert_eq!(sent_kinds(&mut b), vec![PacketType::PubComp; 3]);
    // 8 held: two more fit, the eleventh unreleased one closes
    for pid in [11u16, 12] {
        b.handle_input(t, BrokerInput::bytes(ConnId(1), &qos2_publish(pid)));
    }
    assert_eq!(sent_kinds(&mut b), vec![PacketType::PubRec; 2]);
    let _ = drain_events(&mut b);
    b.handle_input(t, BrokerInput::bytes(ConnId(1), &qos2_publish(13)));
    assert!(sent_kinds(&mut b).is_empty(), "no PUBREC past the cap");
    let evs = drain_events(&mut b);
    assert!(evs.contains(&BrokerEvent::Close(ConnId(1))), "{evs:?}");
    assert_eq!(b.stats().protocol_errors, 1);
}
