//! Hardening of the broker's subscription tree against deep topics (audit
//! defect 2): a filter or topic of thousands of levels used to overflow the
//! stack (recursive remove, match walk and drop) and abort the process. The
//! broker is driven with encoded packets (`accept` / `handle_bytes` /
//! `poll_transmit`) on a thread with a 2 MiB stack, the size of a spawned
//! Rust thread by default.
//!
//! A stack overflow aborts the whole process, so the deep scenarios run in a
//! child process (this test binary again, selecting the case through an
//! environment variable): the parent test fails with the child's exit status
//! and stderr instead of killing the test harness.

use qossim::proto::mqtt::BrokerInput;
use std::process::Command;

use proptest::prelude::*;
use qossim::proto::mqtt::subtree::{SessionIdx, SubscriptionTree};
use qossim::proto::mqtt::{
    decode, Broker, BrokerConfig, BrokerEvent, ConnId, Connect, DecodeError, Packet, PacketId,
    ProtocolLevel, ProtocolViolation, Publish, QoS, QosPid, SubAckReturn, Subscribe, TopicError,
    TopicFilter, TopicName,
};
use qossim::sim::SimTime;

const CHILD_ENV: &str = "QOSSIM_HARDEN_SUBTREE_CASE";
const STACK: usize = 2 << 20;

/// Run `body` on a 2 MiB thread in a child process; fail with the child's
/// status and output if it did not pass (an abort included).
fn isolated(case: &str, body: fn()) {
    if std::env::var(CHILD_ENV).as_deref() == Ok(case) {
        on_small_stack(body);
        return;
    }
    let exe = std::env::current_exe().expect("test binary path");
    let out = Command::new(exe)
        .args([case, "--exact", "--nocapture", "--test-threads", "1"])
        .env(CHILD_ENV, case)
        .output()
        .expect("spawn the child test process");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let tail = |s: &str| {
        let lines: Vec<&str> = s.lines().collect();
        lines[lines.len().saturating_sub(25)..].join("\n")
    };
    assert!(
        out.status.success() && stdout.contains("1 passed"),
        "child process for {case} failed: {}\n--- stdout ---\n{}\n--- stderr ---\n{}",
        out.status,
        tail(&stdout),
        tail(&stderr)
    );
}

fn on_small_stack(body: fn()) {
    std::thread::Builder::new()
        .name("2MiB".into())
        .stack_size(STACK)
        .spawn(body)
        .expect("spawn")
        .join()
        .expect("the scenario passed");
}

fn stage(s: &str) {
    eprintln!("stage: {s}");
}

fn config(max_topic_levels: usize) -> BrokerConfig {
    BrokerConfig {
        sys_interval: None,
        max_topic_levels,
        ..BrokerConfig::default()
    }
}

/// A broker and the packets it sent, decoded.
struct Harness {
    b: Broker,
    now: SimTime,
    buf: Vec<u8>,
}

impl Harness {
    fn new(config: BrokerConfig) -> Self {
        Harness {
            b: Broker::new(config, SimTime::ZERO),
            now: SimTime::ZERO,
            buf: Vec::new(),
        }
    }

    fn send(&mut self, conn: u64, p: Packet) {
        let mut bytes = Vec::new();
        p.encode(&mut bytes).expect("encodable");
        self.b
            .handle_input(self.now, BrokerInput::bytes(ConnId(conn), &bytes));
    }

    /// Everything `poll_transmit` has, decoded, then the events.
    fn drain(&mut self) -> (Vec<(u64, Packet)>, Vec<BrokerEvent>) {
        let mut sent = Vec::new();
        while let Some(t) = {
            self.buf.clear();
            self.b.poll_transmit(self.now, &mut self.buf)
        } {
            let (p, n) = decode(&self.buf, usize::MAX)
                .expect("well-formed")
                .expect("whole packet");
            assert_eq!(n, t.len);
            sent.push((t.conn.0, p));
        }
        let mut events = Vec::new();
        while let Some(e) = self.b.poll_event() {
            events.push(e);
        }
        (sent, events)
    }

    fn connect(&mut self, conn: u64, id: &str, clean_session: bool) {
        self.b
            .handle_input(self.now, BrokerInput::accepted(ConnId(conn)));
        self.send(
            conn,
            Packet::Connect(Connect {
                protocol: ProtocolLevel::V311,
                clean_session,
                keep_alive: 0,
                client_id: id.to_string(),
                will: None,
                username: None,
                password: None,
            }),
        );
        let (sent, _) = self.drain();
        assert!(
            matches!(sent.as_slice(), [(c, Packet::ConnAck(a))] if *c == conn && a.code as u8 == 0),
            "{sent:?}"
        );
    }

    /// SUBSCRIBE; the SUBACK's return codes.
    fn subscribe(&mut self, conn: u64, filters: &[(&str, QoS)]) -> Vec<SubAckReturn> {
        let filters = filters
            .iter()
            .map(|(f, q)| (TopicFilter::new(f).expect("valid filter"), *q))
            .collect();
        let pid = PacketId::new(7).expect("non-zero");
        self.send(conn, Packet::Subscribe(Subscribe { pid, filters }));
        let (sent, _) = self.drain();
        match sent.as_slice() {
            [(c, Packet::SubAck(s))] if *c == conn && s.pid == pid => s.codes.clone(),
            other => panic!("expected one SUBACK, got {other:?}"),
        }
    }

    fn publish(&mut self, conn: u64, topic: &str, qos_pid: QosPid) {
        self.send(
            conn,
            Packet::Publish(Publish {
                dup: false,
                qos_pid,
                retain: false,
                topic: TopicName::new(topic).expect("valid topic"),
                payload: std::sync::Arc::from(&b"deep"[..]),
            }),
        );
    }

    fn disconnect(&mut self, conn: u64) {
        self.send(conn, Packet::Disconnect);
        let (_, events) = self.drain();
        assert!(events.contains(&BrokerEvent::Close(ConnId(conn))));
    }
}

fn levels(n: usize, level: &str) -> String {
    vec![level; n].join("/")
}

// (a) 20,000 levels: subscribe, disconnect (clean session: removed from the
// tree), a persistent session's copy left for the broker's drop.

#[test]
fn a_deep_filter_survives_subscribe_disconnect_and_drop() {
    isolated(
        "a_deep_filter_survives_subscribe_disconnect_and_drop",
        deep_filter_scenario,
    );
}

fn deep_filter_scenario() {
    let deep = "/".repeat(19_999);
    let mut h = Harness::new(config(100_000));
    h.connect(1, "clean", true);
    h.connect(2, "persistent", false);
    stage("subscribe");
    for conn in [1, 2] {
        assert_eq!(
            h.subscribe(conn, &[(&deep, QoS::AtLeastOnce)]),
            [SubAckReturn::Success(QoS::AtLeastOnce)]
        );
    }
    assert_eq!(h.b.subscription_count(), 2);
    stage("disconnect clean session (tree remove)");
    h.disconnect(1);
    assert_eq!(h.b.subscription_count(), 1);
    stage("disconnect persistent session");
    h.disconnect(2);
    assert_eq!(
        h.b.subscription_count(),
        1,
        "kept for the persistent session"
    );
    stage("drop the broker (tree drop)");
    drop(h);
    stage("done");
}

// (b) A PUBLISH to a 13,000-level topic, matched against many deep
// subscriptions through `+`, `#` and literal paths.

#[test]
fn b_publish_to_a_13000_level_topic_reaches_exactly_the_matching_subscribers() {
    isolated(
        "b_publish_to_a_13000_level_topic_reaches_exactly_the_matching_subscribers",
        deep_publish_scenario,
    );
}

fn deep_publish_scenario() {
    const N: usize = 13_000;
    let topic = levels(N, "l");
    let mut plus_mid: Vec<&str> = vec!["l"; N];
    plus_mid[N / 2] = "+";
    let plus_mid = plus_mid.join("/");
    let subs: Vec<(String, QoS)> = vec![
        (topic.clone(), QoS::AtLeastOnce),                         // exact
        (topic.clone(), QoS::AtMostOnce),                          // same filter, another client
        (format!("{}/+", levels(N - 1, "l")), QoS::ExactlyOnce),   // + last
        (levels(N, "+"), QoS::AtLeastOnce),                        // + everywhere
        (format!("{}/#", levels(N - 1, "l")), QoS::AtMostOnce),    // # for the last level
        (format!("{topic}/#"), QoS::AtLeastOnce),                  // # matches the parent
        (plus_mid, QoS::ExactlyOnce),                              // + half way
        ("l/#".into(), QoS::AtMostOnce),                           // shallow #
        ("#".into(), QoS::AtMostOnce),                             // everything
        (format!("{topic}/l"), QoS::AtLeastOnce),                  // one level too deep
        (format!("{}/m", levels(N - 1, "l")), QoS::AtLeastOnce),   // last level differs
        (levels(N - 1, "+"), QoS::AtLeastOnce),                    // one level short
        (format!("{}/+/+", levels(N - 1, "l")), QoS::AtLeastOnce), // one level too deep
    ];
    let name = TopicName::new(&topic).expect("valid");
    let mut h = Harness::new(config(100_000));
    stage("subscribe");
    for (i, (f, q)) in subs.iter().enumerate() {
        let conn = 10 + i as u64;
        h.connect(conn, &format!("s{i}"), true);
        assert_eq!(h.subscribe(conn, &[(f, *q)]), [SubAckReturn::Success(*q)]);
    }
    h.connect(1, "publisher", true);
    stage("publish");
    let pid = PacketId::new(1).expect("non-zero");
    h.publish(1, &topic, QosPid::ExactlyOnce(pid));
    h.send(1, Packet::PubRel(qossim::proto::mqtt::Ack { pid }));
    let (sent, _) = h.drain();
    stage("check deliveries");
    let mut got = Vec::new();
    for (conn, p) in &sent {
        match p {
            Packet::PubRec(_) | Packet::PubComp(_) if *conn == 1 => {}
            Packet::Publish(p) => {
                assert_eq!(p.topic, name);
                got.push((*conn, p.qos_pid.qos()));
            }
            other => panic!("unexpected {other:?} to {conn}"),
        }
    }
    let want: Vec<(u64, QoS)> = subs
        .iter()
        .enumerate()
        .filter(|(_, (f, _))| TopicFilter::new(f).expect("valid").matches(&name))
        .map(|(i, (_, q))| (10 + i as u64, *q))
        .collect();
    assert_eq!(want.len(), 9, "the reference matcher agrees on the set");
    assert_eq!(
        got, want,
        "one copy per matching subscriber, in session order"
    );
    stage("disconnect everyone and drop");
    for i in 0..subs.len() {
        h.disconnect(10 + i as u64);
    }
    assert_eq!(h.b.subscription_count(), 0);
    drop(h);
    stage("done");
}

// (c) The default cap (128 levels): deeper filters are refused with 0x80,
// a deeper PUBLISH closes the connection as a protocol error.

#[test]
fn c_default_cap_refuses_deep_filters_and_closes_on_deep_publish() {
    // Isolated too: without the cap the 20,000-level filter would be stored
    // and overflow the stack when the broker is dropped.
    isolated(
        "c_default_cap_refuses_deep_filters_and_closes_on_deep_publish",
        default_cap_scenario,
    );
}

fn default_cap_scenario() {
    assert_eq!(BrokerConfig::default().max_topic_levels, 128);
    let mut h = Harness::new(config(BrokerConfig::default().max_topic_levels));
    h.connect(1, "sub", true);
    h.connect(2, "pub", true);
    let at_cap = levels(128, "a");
    let over_cap = levels(129, "a");
    let very_deep = "/".repeat(19_999);
    let codes = h.subscribe(
        1,
        &[
            (&over_cap, QoS::AtLeastOnce),
            (&at_cap, QoS::AtLeastOnce),
            (&very_deep, QoS::AtMostOnce),
            ("a/#", QoS::AtMostOnce),
        ],
    );
    assert_eq!(
        codes,
        [
            SubAckReturn::Failure,
            SubAckReturn::Success(QoS::AtLeastOnce),
            SubAckReturn::Failure,
            SubAckReturn::Success(QoS::AtMostOnce),
        ]
    );
    assert_eq!(codes[0].as_u8(), 0x80);
    assert_eq!(
        h.b.subscription_count(),
        2,
        "refused filters are not stored"
    );
    let info = h.b.session_info("sub").expect("session");
    let mut stored: Vec<String> = info.subscriptions.into_iter().map(|s| s.0).collect();
    stored.sort();
    assert_eq!(stored, ["a/#".to_string(), at_cap.clone()]);

    // At the cap: delivered.
    let pid = PacketId::new(1).expect("non-zero");
    h.publish(2, &at_cap, QosPid::AtLeastOnce(pid));
    let (sent, _) = h.drain();
    assert_eq!(
        sent.len(),
        2,
        "PUBACK and one PUBLISH (QoS 1 wins): {sent:?}"
    );
    assert!(matches!(&sent[0], (2, Packet::PubAck(a)) if a.pid == pid));
    assert!(matches!(&sent[1], (1, Packet::Publish(p)) if p.topic.as_str() == at_cap));

    // Over the cap: a protocol error, counted, the connection closed,
    // nothing acknowledged or routed.
    assert_eq!(h.b.stats().protocol_errors, 0);
    let before = h.b.connection_count();
    h.publish(2, &over_cap, QosPid::AtLeastOnce(pid));
    let (sent, events) = h.drain();
    assert_eq!(sent, [], "no PUBACK, nothing delivered");
    assert_eq!(h.b.stats().protocol_errors, 1);
    assert_eq!(h.b.connection_count(), before - 1);
    assert!(
        events.contains(&BrokerEvent::Close(ConnId(2))),
        "{events:?}"
    );
    assert!(
        events.iter().any(|e| matches!(
            e,
            BrokerEvent::ProtocolError {
                conn: ConnId(2),
                error: ProtocolViolation::Decode(DecodeError::Topic {
                    source: TopicError::TooManyLevels {
                        levels: 129,
                        max: 128
                    },
                    ..
                }),
            }
        )),
        "{events:?}"
    );
    assert_eq!(h.b.client_id(ConnId(2)), None);
    assert_eq!(h.b.stats().publishes_received, 1);

    // A 20,000-level PUBLISH is refused the same way.
    h.connect(3, "pub2", true);
    h.publish(3, &very_deep, QosPid::AtMostOnce);
    let (sent, events) = h.drain();
    assert_eq!(sent, []);
    assert!(events.contains(&BrokerEvent::Close(ConnId(3))));
    assert_eq!(h.b.stats().protocol_errors, 2);
}

// (d) The tree's matches against a reference matcher over
// `TopicFilter::matches`: the same (session, QoS) set, one entry per session
// with its highest granted QoS, in ascending session order (the order
// `route` delivers in, so the order of transmissions).

fn reference(subs: &[(TopicFilter, SessionIdx, QoS)], topic: &TopicName) -> Vec<(SessionIdx, QoS)> {
    let mut best: std::collections::BTreeMap<SessionIdx, QoS> = Default::default();
    for (f, s, q) in subs {
        if f.matches(topic) {
            let e = best.entry(*s).or_insert(*q);
            *e = (*e).max(*q);
        }
    }
    best.into_iter().collect()
}

#[test]
fn d_matches_in_pinned_order_for_a_fixed_set() {
    let subs = [
        ("sport/tennis/+", 4, QoS::AtMostOnce),
        ("sport/#", 2, QoS::AtLeastOnce),
        ("#", 7, QoS::AtMostOnce),
        ("+/+/player1", 0, QoS::ExactlyOnce),
        ("sport/tennis/player1", 4, QoS::ExactlyOnce),
        ("sport/tennis/player1/#", 3, QoS::AtMostOnce),
        ("sport/+", 5, QoS::AtLeastOnce),
        ("$SYS/#", 6, QoS::AtMostOnce),
        ("+/tennis/#", 1, QoS::AtLeastOnce),
    ];
    let mut tree = SubscriptionTree::new();
    for (f, s, q) in subs {
        tree.insert(&TopicFilter::new(f).expect("valid"), s, q);
    }
    let mut out = Vec::new();
    let mut m = |t: &str| {
        tree.matches(&TopicName::new(t).expect("valid"), &mut out);
        out.clone()
    };
    use QoS::*;
    assert_eq!(
        m("sport/tennis/player1"),
        [
            (0, ExactlyOnce),
            (1, AtLeastOnce),
            (2, AtLeastOnce),
            (3, AtMostOnce),
            (4, ExactlyOnce),
            (7, AtMostOnce)
        ]
    );
    assert_eq!(m("sport"), [(2, AtLeastOnce), (7, AtMostOnce)]);
    assert_eq!(
        m("sport/x"),
        [(2, AtLeastOnce), (5, AtLeastOnce), (7, AtMostOnce)]
    );
    assert_eq!(m("$SYS/x/player1"), [(6, AtMostOnce)]);
}

const WORDS: [&str; 5] = ["a", "b", "", "$s", "c"];

fn filter_strategy() -> impl Strategy<Value = TopicFilter> {
    let level = prop_oneof![
        3 => prop::sample::select(&WORDS[..]).prop_map(str::to_string),
        1 => Just("+".to_string()),
    ];
    (prop::collection::vec(level, 1..6), any::<bool>()).prop_map(|(mut levels, hash)| {
        if hash {
            levels.push("#".into());
        }
        let s = levels.join("/");
        TopicFilter::new(if s.is_empty() { "#" } else { &s }).expect("valid filter")
    })
}

fn topic_strategy() -> impl Strategy<Value = TopicName> {
    prop::collection::vec(prop::sample::select(&WORDS[..]), 1..7).prop_map(|levels| {
        let s = levels.join("/");
        TopicName::new(if s.is_empty() { "a" } else { &s }).expect("valid topic")
    })
}

fn qos_strategy() -> impl Strategy<Value = QoS> {
    prop::sample::select(vec![QoS::AtMostOnce, QoS::AtLeastOnce, QoS::ExactlyOnce])
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    #[test]
    fn d_matches_equal_the_reference_matcher(
        subs in prop::collection::vec((filter_strategy(), 0..12u32, qos_strategy()), 0..40),
        removals in prop::collection::vec(any::<prop::sample::Index>(), 0..10),
        topics in prop::collection::vec(topic_strategy(), 1..20),
    ) {
        let mut tree = SubscriptionTree::new();
        // The tree keeps the last QoS of a repeated (filter, session).
        let mut live: Vec<(TopicFilter, SessionIdx, QoS)> = Vec::new();
        for (f, s, q) in &subs {
            tree.insert(f, *s, *q);
            live.retain(|(g, t, _)| !(g == f && t == s));
            live.push((f.clone(), *s, *q));
        }
        for i in removals {
            if live.is_empty() {
                break;
            }
            let (f, s, _) = live.remove(i.index(live.len()));
            prop_assert!(tree.remove(&f, s));
        }
        prop_assert_eq!(tree.len(), live.len());
        let mut out = Vec::new();
        for t in &topics {
            tree.matches(t, &mut out);
            prop_assert_eq!(&out, &reference(&live, t), "topic {:?}", t);
        }
    }
}
