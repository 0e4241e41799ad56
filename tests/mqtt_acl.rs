//! Access control (issue 18 item 3): the rule semantics of
//! `proto::mqtt::acl`, the sans-IO broker applying them (SUBACK 0x80 for a
//! refused filter while the packet's others stand, refused publishes
//! acknowledged and forwarded to nobody or the connection closed, wills),
//! and the same through the simulated world from a scenario file
//! (`[protocols.mqtt] acl`, the `mqtt_denied` column, located errors).

mod common;
mod mqtt_common;

use common::sim::*;
use mqtt_common::{cfg, Net};
use qossim::proto::mqtt::acl::{covers, glob_match, pattern_matches};
use qossim::proto::mqtt::{
    Acl, AclAction, AclRule, BrokerConfig, BrokerEvent, ClientConfig, ClientEvent, DenyPublish,
    DisconnectReason, LastWill, QoS, Refusal, SubAckReturn, TopicName,
};
use qossim::sim::SimDuration;
use std::path::Path;

fn ms(s: u64) -> SimDuration {
    SimDuration::from_millis(s)
}

fn rule(clients: &str, publish: &[&str], subscribe: &[&str]) -> AclRule {
    AclRule {
        clients: Some(clients.to_string()),
        users: None,
        publish: publish.iter().map(|s| s.to_string()).collect(),
        subscribe: subscribe.iter().map(|s| s.to_string()).collect(),
    }
}

fn broker(rules: Vec<AclRule>, deny: DenyPublish) -> BrokerConfig {
    BrokerConfig {
        sys_interval: None,
        acl: Acl::new(rules).expect("valid rules"),
        acl_deny_publish: deny,
        ..BrokerConfig::default()
    }
}

/// Sensors publish under their own id, the dashboard reads `sensors/#`,
/// everyone else nothing.
fn site_rules() -> Vec<AclRule> {
    vec![
        rule("sensor-*", &["sensors/%c/#"], &[]),
        rule("dashboard", &[], &["sensors/#"]),
    ]
}

fn suback_codes(n: &Net, i: usize) -> Vec<Vec<SubAckReturn>> {
    n.events[i]
        .iter()
        .filter_map(|(_, e)| match e {
            ClientEvent::Subscribed { codes, .. } => Some(codes.clone()),
            _ => None,
        })
        .collect()
}

fn denied(n: &Net) -> Vec<(String, AclAction, String)> {
    n.broker_events
        .iter()
        .filter_map(|(_, e)| match e {
            BrokerEvent::Denied {
                client_id,
                action,
                topic,
                ..
            } => Some((client_id.to_string(), *action, topic.to_string())),
            _ => None,
        })
        .collect()
}

#[test]
fn glob_pattern_and_cover_rules() {
    assert!(glob_match("sensor-*", "sensor-12"));
    assert!(glob_match("sensor-*", "sensor-"));
    assert!(!glob_match("sensor-*", "actuator-1"));
    assert!(glob_match("s?n*r-*x", "sensor-abx"));
    assert!(!glob_match("s?n", "sn"));
    assert!(glob_match("*", ""));
    assert!(pattern_matches("sensors/#", "sensors"));
    assert!(pattern_matches("sensors/+/t", "sensors/a/t"));
    assert!(!pattern_matches("#", "$SYS/x"), "[MQTT-4.7.2-1]");
    // a filter is allowed only when one pattern matches every topic it can
    assert!(covers("sensors/#", "sensors/#"));
    assert!(covers("sensors/#", "sensors/+/temp"));
    assert!(covers("sensors/#", "sensors"));
    assert!(!covers("sensors/#", "#"));
    assert!(!covers("sensors/#", "+/temp"));
    assert!(!covers("sensors/+", "sensors/#"), "# reaches deeper than +");
    assert!(!covers("sensors/a", "sensors/+"));
    assert!(covers("sensors/+/t", "sensors/x/t"));
    assert!(
        !covers("#", "$SYS/#"),
        "a wildcard pattern reaches no $ topic"
    );
    assert!(covers("$SYS/#", "$SYS/broker/+"));
    assert!(!covers("a", "a/#"));
}

#[test]
fn first_matching_rule_applies_with_substitution() {
    let acl = Acl::new(vec![
        AclRule {
            clients: None,
            users: Some("admin".into()),
            publish: vec!["#".into()],
            subscribe: vec!["#".into()],
        },
        rule("sensor-*", &["sensors/%c/#"], &["cmd/%c"]),
        rule("*", &[], &["public/#"]),
    ])
    .expect("valid");
    assert!(acl.allows_publish("sensor-1", None, "sensors/sensor-1/t"));
    assert!(!acl.allows_publish("sensor-1", None, "sensors/sensor-2/t"));
    assert!(acl.allows_subscribe("sensor-1", None, "cmd/sensor-1"));
    // first match: a sensor's rule has no public/#, the catch-all is not read
    assert!(!acl.allows_subscribe("sensor-1", None, "public/news"));
    assert!(acl.allows_subscribe("other", None, "public/news"));
    assert!(!acl.allows_subscribe("other", None, "#"));
    assert!(acl.allows_subscribe("sensor-1", Some("admin"), "#"));
    // a client id with a wildcard or separator cannot widen its pattern
    assert!(!acl.allows_publish("sensor-#", None, "sensors/x/y"));
    assert!(!acl.allows_publish("sensor-a/b", None, "sensors/sensor-a/b/t"));
    // %u without a user name grants nothing
    let u = Acl::new(vec![rule("*", &["users/%u/#"], &[])]).expect("valid");
    assert!(u.allows_publish("c", Some("ann"), "users/ann/x"));
    assert!(!u.allows_publish("c", None, "users//x"));
    // no rule for the client: default deny; no rules at all: allow
    let only = Acl::new(vec![rule("a", &["#"], &["#"])]).expect("valid");
    assert!(!only.allows_publish("b", None, "x"));
    assert!(Acl::default().allows_subscribe("b", None, "#"));
    // bad patterns and globs are refused
    assert!(Acl::new(vec![rule("*", &["a/#/b"], &[])]).is_err());
    assert!(Acl::new(vec![rule("*", &["a/%x"], &[])]).is_err());
    assert!(Acl::new(vec![rule("", &["a"], &[])]).is_err());
    assert_eq!(
        Refusal::NotAuthorized.reason_code(AclAction::Subscribe).0,
        0x87
    );
    assert_eq!(
        Refusal::NotAuthorized.reason_code(AclAction::Publish).0,
        0x87
    );
}

/// A SUBSCRIBE with a refused and an allowed filter: one SUBACK, 0x80 for
/// the refused one, the allowed one granted and served; `#` is refused
/// under the narrow `sensors/#` rule, and the refused filter receives
/// nothing (not even a retained message).
#[test]
fn denied_subscription_gets_0x80_and_receives_nothing() {
    let mut n = Net::new(broker(site_rules(), DenyPublish::Drop));
    let s = n.add(cfg("sensor-7"));
    let d = n.add(cfg("dashboard"));
    n.run_for(ms(100));
    n.publish(s, "sensors/sensor-7/t", b"21", QoS::AtLeastOnce, true);
    n.run_for(ms(100));
    let now = n.now;
    n.clients[d]
        .subscribe(
            now,
            vec![
                ("#".try_into().expect("f"), QoS::AtLeastOnce),
                ("sensors/+/t".try_into().expect("f"), QoS::AtLeastOnce),
                ("admin/x".try_into().expect("f"), QoS::AtMostOnce),
            ],
        )
        .expect("subscribe");
    n.pump();
    n.run_for(ms(100));
    assert_eq!(
        suback_codes(&n, d),
        vec![vec![
            SubAckReturn::Failure,
            SubAckReturn::Success(QoS::AtLeastOnce),
            SubAckReturn::Failure
        ]]
    );
    // the retained reading came once, through the allowed filter
    assert_eq!(n.messages(d).len(), 1, "{:?}", n.messages(d));
    let subs = n.broker.session_info("dashboard").expect("s").subscriptions;
    assert_eq!(subs, vec![("sensors/+/t".to_string(), QoS::AtLeastOnce)]);
    assert_eq!(n.broker.stats().denied_subscriptions, 2);
    let den = denied(&n);
    assert_eq!(
        den,
        vec![
            ("dashboard".into(), AclAction::Subscribe, "#".into()),
            ("dashboard".into(), AclAction::Subscribe, "admin/x".into()),
        ]
    );
    // messages outside the allowed filter never reach the dashboard
    n.publish(s, "sensors/sensor-7/h", b"40", QoS::AtMostOnce, false);
    n.run_for(ms(100));
    assert_eq!(n.messages(d).len(), 1);
    // a sensor may subscribe to nothing: 0x80
    n.subscribe(s, "sensors/#", QoS::AtMostOnce);
    n.run_for(ms(100));
    assert_eq!(suback_codes(&n, s), vec![vec![SubAckReturn::Failure]]);
}

/// A publish outside the client's rule is acknowledged as usual (QoS 1
/// PUBACK, QoS 2 PUBREC…PUBCOMP), reaches no subscriber, and is not
/// retained; counted once per message.
#[test]
fn denied_publish_is_acknowledged_and_reaches_no_subscriber() {
    let mut n = Net::new(broker(site_rules(), DenyPublish::Drop));
    let s = n.add(cfg("sensor-7"));
    let d = n.add(cfg("dashboard"));
    n.run_for(ms(100));
    n.subscribe(d, "sensors/#", QoS::ExactlyOnce);
    n.run_for(ms(100));
    for q in [QoS::AtMostOnce, QoS::AtLeastOnce, QoS::ExactlyOnce] {
        n.publish(s, "sensors/sensor-8/t", &[q.as_u8()], q, true);
    }
    n.publish(s, "sensors/sensor-7/t", b"ok", QoS::AtLeastOnce, false);
    n.run_for(ms(300));
    let acked = n.events[s]
        .iter()
        .filter(|(_, e)| matches!(e, ClientEvent::PublishAcked { .. }))
        .count();
    assert_eq!(
        acked, 3,
        "QoS 1 and 2 refused ones acknowledged, and the allowed one"
    );
    assert!(n.connected(s), "drop mode keeps the connection");
    assert_eq!(
        n.messages(d),
        vec![(
            "sensors/sensor-7/t".into(),
            b"ok".to_vec(),
            QoS::AtLeastOnce,
            false
        )]
    );
    assert_eq!(n.broker.retained("sensors/sensor-8/t"), None);
    assert_eq!(n.broker.stats().denied_publishes, 3);
    assert_eq!(n.broker.stats().publishes_received, 1);
    assert_eq!(
        n.broker.session_info("sensor-7").expect("s").incoming_qos2,
        0
    );
}

/// `DenyPublish::Disconnect`: the refused PUBLISH is not acknowledged, the
/// connection is closed, and the client's will (allowed) is published.
#[test]
fn disconnect_mode_closes_the_connection() {
    let mut n = Net::new(broker(site_rules(), DenyPublish::Disconnect));
    let mut c = cfg("sensor-7");
    c.reconnect = None;
    c.will = Some(LastWill {
        topic: TopicName::new("sensors/sensor-7/status").expect("t"),
        message: b"gone".to_vec().into(),
        qos: QoS::AtMostOnce,
        retain: false,
    });
    let s = n.add(c);
    let d = n.add(cfg("dashboard"));
    n.run_for(ms(100));
    n.subscribe(d, "sensors/#", QoS::AtMostOnce);
    n.run_for(ms(100));
    n.publish(s, "sensors/other/t", b"x", QoS::AtLeastOnce, false);
    n.run_for(ms(200));
    assert!(!n.connected(s));
    assert!(!n.events[s]
        .iter()
        .any(|(_, e)| matches!(e, ClientEvent::PublishAcked { .. })));
    assert!(n.broker_events.iter().any(|(_, e)| matches!(
        e,
        BrokerEvent::ClientDisconnected {
            reason: DisconnectReason::NotAuthorized,
            ..
        }
    )));
    assert_eq!(
        n.messages(d),
        vec![(
            "sensors/sensor-7/status".into(),
            b"gone".to_vec(),
            QoS::AtMostOnce,
            false
        )],
        "the refused message never, the will yes"
    );
    assert_eq!(n.broker.stats().denied_publishes, 1);
}

/// A will outside the client's rule is not published (and counted).
#[test]
fn denied_will_is_not_published() {
    let mut n = Net::new(broker(site_rules(), DenyPublish::Drop));
    let mut c = cfg("sensor-7");
    c.reconnect = None;
    c.will = Some(LastWill {
        topic: TopicName::new("sensors/everyone/status").expect("t"),
        message: b"gone".to_vec().into(),
        qos: QoS::AtMostOnce,
        retain: false,
    });
    let s = n.add(c);
    let d = n.add(cfg("dashboard"));
    n.run_for(ms(100));
    n.subscribe(d, "sensors/#", QoS::AtMostOnce);
    n.run_for(ms(100));
    n.kill_transport(s);
    n.run_for(ms(200));
    assert!(n.messages(d).is_empty());
    assert_eq!(n.broker.stats().wills_published, 0);
    assert_eq!(
        denied(&n),
        vec![(
            "sensor-7".into(),
            AclAction::Will,
            "sensors/everyone/status".into()
        )]
    );
}

/// Rules matching on the user name (CONNECT's), first match.
#[test]
fn user_name_rules() {
    let rules = vec![AclRule {
        clients: None,
        users: Some("ops".into()),
        publish: vec![],
        subscribe: vec!["#".into()],
    }];
    let mut n = Net::new(broker(rules, DenyPublish::Drop));
    let ops = n.add(ClientConfig {
        username: Some("ops".into()),
        ..cfg("a")
    });
    let anon = n.add(cfg("b"));
    n.run_for(ms(100));
    n.subscribe(ops, "#", QoS::AtMostOnce);
    n.subscribe(anon, "#", QoS::AtMostOnce);
    n.run_for(ms(100));
    assert_eq!(
        suback_codes(&n, ops),
        vec![vec![SubAckReturn::Success(QoS::AtMostOnce)]]
    );
    assert_eq!(suback_codes(&n, anon), vec![vec![SubAckReturn::Failure]]);
}

// ---- through the simulated world, from a scenario file ----

const BASE: &str = r#"
name = "acl"
seed = 1
duration = "30 s"
drain = "10 s"
[[nodes]]
name = "sensor"
role = "client"
[[nodes]]
name = "broker"
role = "broker"
[[nodes]]
name = "monitor"
role = "client"
[[links]]
a = "sensor"
b = "broker"
rate = "1 Mbit/s"
delay = "10 ms"
[[links]]
a = "monitor"
b = "broker"
rate = "1 Mbit/s"
delay = "10 ms"
[[flows]]
name = "readings"
pattern = "point_to_point"
protocol = "mqtt"
reliability = "qos1"
publishers = ["sensor"]
receivers = ["monitor"]
topic = "site/{name}/temp"
payload_bytes = 20
interval = "1 s"
[protocols.mqtt]
"#;

fn with_acl(acl: &str) -> String {
    format!("{BASE}{acl}\n")
}

#[test]
fn world_allowed_flow_delivers_with_no_denial() {
    let text = with_acl(
        r##"acl = [
  { clients = "sensor", publish = ["site/%c/#"] },
  { clients = "monitor", subscribe = ["site/+/temp"] },
] "##,
    );
    let dir = run_text_checked("acl-allowed", &text);
    let row = run_row(&dir, "readings");
    assert_eq!(num(&row, "delivery_ratio"), 1.0);
    assert_eq!(num(&row, "mqtt_denied"), 0.0);
    assert_eq!(num(&row, "violations"), 0.0);
}

#[test]
fn world_denied_publish_reaches_no_subscriber() {
    let text = with_acl(
        r##"acl = [
  { clients = "sensor", publish = ["elsewhere/#"] },
  { clients = "monitor", subscribe = ["site/#"] },
] "##,
    );
    let dir = run_text_checked("acl-pub", &text);
    let row = run_row(&dir, "readings");
    assert_eq!(num(&row, "delivered"), 0.0);
    assert!(num(&row, "sent") >= 25.0, "{row:?}");
    assert_eq!(num(&row, "mqtt_denied"), num(&row, "sent"), "{row:?}");
    assert_eq!(num(&row, "mqtt_connection_losses"), 0.0, "drop mode");
    // the monitors know the ACL: an acknowledged refused QoS 1 message
    // owes nobody a delivery
    assert_eq!(num(&row, "violations"), 0.0);
}

#[test]
fn world_denied_subscription_receives_nothing() {
    // point to point: the receiver subscribes to the publisher's topic
    // site/sensor/temp, which its rule does not cover (0x80)
    let text = with_acl(
        r##"acl = [
  { clients = "sensor", publish = ["site/sensor/temp"] },
  { clients = "monitor", subscribe = ["site/other/#"] },
] "##,
    );
    let dir = run_text_checked("acl-sub", &text);
    let row = run_row(&dir, "readings");
    assert_eq!(num(&row, "delivered"), 0.0);
    assert!(num(&row, "mqtt_denied") >= 1.0, "{row:?}");
    assert_eq!(num(&row, "violations"), 0.0);
}

#[test]
fn world_disconnect_mode_closes_the_publisher() {
    let text = with_acl(
        r##"acl_deny_publish = "disconnect"
acl = [
  { clients = "sensor", publish = ["elsewhere/#"] },
  { clients = "monitor", subscribe = ["#"] },
] "##,
    );
    let dir = run_text("acl-disc", &text, &[]);
    let row = run_row(&dir, "readings");
    assert_eq!(num(&row, "delivered"), 0.0);
    assert!(num(&row, "mqtt_connection_losses") >= 1.0, "{row:?}");
    assert!(num(&row, "mqtt_denied") >= 1.0, "{row:?}");
}

/// Bad ACL entries are refused where they are written: file:line:col, the
/// field, what was expected.
#[test]
fn acl_errors_are_located() {
    let bad = |acl: &str, field: &str, want: &str, line: usize| {
        let text = with_acl(acl);
        let e = qossim::scenario::load_str(&text, "t.toml", Path::new("."), &[])
            .expect_err("must be refused")
            .to_string();
        assert!(e.contains(field), "{e}");
        assert!(e.contains(want), "{e}");
        assert!(e.contains(&format!("t.toml:{line}:")), "{e}");
    };
    let base_lines = BASE.lines().count();
    bad(
        "acl = [\n  { clients = \"sensor\", publish = [\"a/#/b\"] },\n]",
        "protocols.mqtt.acl[0].publish[0]",
        "expected an MQTT topic filter",
        base_lines + 2,
    );
    bad(
        "acl = [\n  { clients = \"*\" },\n  { clients = \"m\", subscribe = [\"x\", \"a/%q\"] },\n]",
        "protocols.mqtt.acl[1].subscribe[1]",
        "%",
        base_lines + 3,
    );
    bad(
        "acl = [ { clients = \"\", publish = [\"a\"] } ]",
        "protocols.mqtt.acl[0].clients",
        "glob",
        base_lines + 1,
    );
    bad(
        "acl_deny_publish = \"ignore\"",
        "protocols.mqtt.acl_deny_publish",
        "disconnect",
        base_lines + 1,
    );
    let e = qossim::scenario::load_str(
        &with_acl("acl = [ { client = \"x\" } ]"),
        "t.toml",
        Path::new("."),
        &[],
    )
    .expect_err("unknown field");
    assert!(e.to_string().contains("client"), "{e}");
}
