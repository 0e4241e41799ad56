//! Topic names, filters and matching (MQTT 3.1.1 §4.7): the spec's examples,
//! the course's `house/...` lists, invalid filters, and the subscription
//! tree agreeing with `matches` on random filters and topics.

use proptest::prelude::*;
use qossim::proto::mqtt::subtree::SubscriptionTree;
use qossim::proto::mqtt::{matches, QoS, TopicError, TopicFilter, TopicName};

fn m(filter: &str, topic: &str) -> bool {
    let f = TopicFilter::new(filter).unwrap_or_else(|e| panic!("filter {filter:?}: {e}"));
    let t = TopicName::new(topic).unwrap_or_else(|e| panic!("topic {topic:?}: {e}"));
    matches(&f, &t)
}

#[test]
fn spec_examples() {
    // §4.7.1.2 multi-level wildcard.
    for t in [
        "sport/tennis/player1",
        "sport/tennis/player1/ranking",
        "sport/tennis/player1/score/wimbledon",
    ] {
        assert!(m("sport/tennis/player1/#", t), "{t}");
    }
    assert!(m("sport/#", "sport"), "# includes the parent level");
    assert!(m("#", "sport/tennis"));
    assert!(!m("sport/tennis/player1/#", "sport/tennis/player2"));
    // §4.7.1.3 single-level wildcard.
    assert!(m("sport/tennis/+", "sport/tennis/player1"));
    assert!(m("sport/tennis/+", "sport/tennis/player2"));
    assert!(!m("sport/tennis/+", "sport/tennis/player1/ranking"));
    assert!(!m("sport/+", "sport"));
    assert!(m("sport/+", "sport/"));
    assert!(m("+/+", "/finance"));
    assert!(m("/+", "/finance"));
    assert!(!m("+", "/finance"));
    assert!(m("+/tennis/#", "sport/tennis/player1"));
    // §4.7.2 topics beginning with $ [MQTT-4.7.2-1].
    assert!(!m("#", "$SYS/broker/uptime"));
    assert!(!m("+/monitor/Clients", "$SYS/monitor/Clients"));
    assert!(m("$SYS/#", "$SYS/monitor/Clients"));
    assert!(m("$SYS/monitor/+", "$SYS/monitor/Clients"));
    assert!(m("$SYS/#", "$SYS"));
}

#[test]
fn course_house_examples() {
    for t in [
        "house/room1/main-light",
        "house/room1/alarm",
        "house/garage/main-light",
        "house/main-door",
        "house",
    ] {
        assert!(m("house/#", t), "house/# ~ {t}");
    }
    assert!(!m("house/#", "houses/room1"));
    assert!(!m("house/#", "garden/house"));
    assert!(m("house/+/main-light", "house/room1/main-light"));
    assert!(m("house/+/main-light", "house/room2/main-light"));
    assert!(m("house/+/main-light", "house/garage/main-light"));
    assert!(!m("house/+/main-light", "house/room1/side-light"));
    assert!(!m("house/+/main-light", "house/room2/side-light"));
    assert!(!m("house/+/main-light", "house/room1/main-light/x"));
    assert!(!m("house/+/main-light", "house/main-light"));
    // Case sensitive [MQTT-4.7.3-4].
    assert!(!m("House/#", "house/x"));
    assert!(!m("house/room1", "house/Room1"));
}

#[test]
fn invalid_filters_and_names() {
    use TopicError::*;
    for (f, e) in [
        ("sport/tennis#", MisplacedMultiLevel),
        ("sport/#/ranking", MisplacedMultiLevel),
        ("#/a", MisplacedMultiLevel),
        ("sport+", MisplacedSingleLevel),
        ("sport/+tennis", MisplacedSingleLevel),
        ("", Empty),
        ("a\0b", NullChar),
    ] {
        assert_eq!(TopicFilter::new(f), Err(e), "{f:?}");
    }
    for ok in [
        "#",
        "+",
        "+/+",
        "/",
        "sport/+/player1",
        "sport/#",
        "$SYS/#",
        "a//b",
    ] {
        assert!(TopicFilter::new(ok).is_ok(), "{ok:?}");
    }
    assert_eq!(TopicName::new("a/+"), Err(WildcardInName));
    assert_eq!(TopicName::new("a/#"), Err(WildcardInName));
    assert_eq!(TopicName::new(""), Err(Empty));
    assert_eq!(
        TopicName::new(&"x".repeat(65536)),
        Err(TooLong { len: 65536 })
    );
    assert!(TopicName::new(&"x".repeat(65535)).is_ok());
    assert!(TopicName::new("/").is_ok());
}

#[test]
fn tree_overlapping_subscriptions_max_qos_once() {
    let mut tree = SubscriptionTree::new();
    let f = |s: &str| TopicFilter::new(s).expect("filter");
    tree.insert(&f("a/#"), 7, QoS::AtMostOnce);
    tree.insert(&f("a/+"), 7, QoS::ExactlyOnce);
    tree.insert(&f("a/b"), 7, QoS::AtLeastOnce);
    tree.insert(&f("a/b"), 3, QoS::AtLeastOnce);
    tree.insert(&f("#"), 9, QoS::AtMostOnce);
    let mut out = Vec::new();
    tree.matches(&TopicName::new("a/b").expect("t"), &mut out);
    assert_eq!(
        out,
        vec![
            (3, QoS::AtLeastOnce),
            (7, QoS::ExactlyOnce),
            (9, QoS::AtMostOnce)
        ]
    );
    // Replace keeps one entry; remove prunes.
    assert!(!tree.insert(&f("a/+"), 7, QoS::AtMostOnce));
    assert_eq!(tree.len(), 5);
    assert!(tree.remove(&f("a/+"), 7));
    assert!(!tree.remove(&f("a/+"), 7));
    tree.matches(&TopicName::new("a/b").expect("t"), &mut out);
    assert_eq!(
        out,
        vec![
            (3, QoS::AtLeastOnce),
            (7, QoS::AtLeastOnce),
            (9, QoS::AtMostOnce)
        ]
    );
    tree.matches(&TopicName::new("$SYS/x").expect("t"), &mut out);
    assert!(out.is_empty(), "# does not match $SYS topics");
}

#[test]
fn tree_scales_to_ten_thousand_clients() {
    let mut tree = SubscriptionTree::new();
    for i in 0..10_000u32 {
        let f = TopicFilter::new(&format!("building/xyz/room/{i}/+")).expect("f");
        tree.insert(&f, i, QoS::AtLeastOnce);
        tree.insert(
            &TopicFilter::new("building/#").expect("f"),
            i,
            QoS::AtMostOnce,
        );
    }
    assert_eq!(tree.len(), 20_000);
    let mut out = Vec::new();
    tree.matches(
        &TopicName::new("building/xyz/room/4711/temperature").expect("t"),
        &mut out,
    );
    assert_eq!(out.len(), 10_000, "everyone via building/#, once each");
    assert_eq!(out[4711], (4711, QoS::AtLeastOnce), "max of the two");
    assert_eq!(out[0], (0, QoS::AtMostOnce));
}

fn level() -> impl Strategy<Value = String> {
    prop_oneof!["[ab]{0,2}", Just("$x".to_string())]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(500))]
    /// The trie and the reference `matches` agree on every (filter, topic).
    #[test]
    fn tree_agrees_with_matches(
        filters in prop::collection::vec(
            prop::collection::vec(prop_oneof![level(), Just("+".to_string())], 1..4)
                .prop_flat_map(|l| {
                    let b = l.join("/");
                    prop_oneof![Just(b.clone()), Just(format!("{b}/#")), Just("#".to_string())]
                }),
            1..8),
        topics in prop::collection::vec(prop::collection::vec(level(), 1..5), 1..8),
    ) {
        let mut tree = SubscriptionTree::new();
        let filters: Vec<TopicFilter> =
            filters.iter().filter_map(|f| TopicFilter::new(f).ok()).collect();
        for (i, f) in filters.iter().enumerate() {
            tree.insert(f, i as u32, QoS::AtMostOnce);
        }
        let mut out = Vec::new();
        for t in topics {
            let Ok(t) = TopicName::new(&t.join("/")) else { continue };
            tree.matches(&t, &mut out);
            let got: Vec<u32> = out.iter().map(|x| x.0).collect();
            let want: Vec<u32> = filters.iter().enumerate()
                .filter(|(_, f)| matches(f, &t)).map(|(i, _)| i as u32).collect();
            prop_assert_eq!(got, want, "topic {}", t);
        }
    }
}

/// Issue 22: a publisher's topic is held once, shared between the workload
/// and the MQTT plug-in; a shared string is validated like any other.
#[test]
fn a_shared_topic_is_checked_and_not_copied() {
    let s: std::sync::Arc<str> = "fleet/dev-1/telemetry".into();
    let t = TopicName::from_shared(s.clone()).expect("valid");
    assert_eq!(
        t.as_str().as_ptr(),
        s.as_ptr(),
        "the same bytes, not a copy"
    );
    assert!(TopicName::from_shared("fleet/+/telemetry".into()).is_err());
    assert!(TopicName::from_shared("".into()).is_err());
}
