//! Topic-practice warnings (issue 18 item 5; README.md "Warnings"): MQTT
//! and MQTT-SN topics that are valid but make a topic tree hard to use,
//! each located at the scenario line and suggesting the better form built
//! from the actual names.
//!
//! Checked per MQTT/MQTT-SN flow, on the topic as each publisher renders
//! it:
//! * `leading-slash`: a topic starting with `/` (an empty first level);
//! * `empty-level`: `//` or a trailing `/`;
//! * `space-or-non-ascii`: spaces or characters outside ASCII;
//! * `upper-case`: upper-case letters (topics are case-sensitive, so
//!   `Room` and `room` are two trees);
//! * `subscribe-all`: receivers whose subscription filter is wildcards
//!   only (every level `+`, or `#`): a device receiving the whole tree; and
//!   an `acl` rule that lets device nodes subscribe to `#`;
//! * `indistinguishable`: several publishers rendering the same topic with
//!   the receivers unable to tell them apart;
//! * `client-id`: a device's topic that names neither its client id (the
//!   node's name, which the simulated MQTT and MQTT-SN clients use) as a
//!   level nor any other identifier of its own — the template has no
//!   per-publisher placeholder (`{name}`, `{i}`) — so a subscriber, a log
//!   or an ACL cannot tell which device a message came from. Checked on
//!   point-to-point and fan-in flows (device data); a point-to-point topic
//!   may name its receiver instead (a command addressed to that device);
//!   a broadcast flow's topic names what it addresses (a set-point to
//!   every device), not its sender. Not repeated where
//!   `indistinguishable` already fired.
//!
//! A scenario that shows bad practice on purpose says so with
//! `[report] demonstrates = ["topic-practice"]`, which silences them; one
//! that departs from one practice for a stated reason (a topic that must
//! equal a CoAP URI, or a real testbed's) names that kind in
//! `[report] allow = ["client-id"]`, which silences that kind only.

use super::error::Warning;
use super::model::{Pattern, Protocol, Role, Scenario};

/// The `[report] demonstrates` value that silences these warnings.
pub const DEMONSTRATES: &str = "topic-practice";

/// The kinds of warning, as `[report] allow` names them.
pub const KINDS: [&str; 7] = [
    "leading-slash",
    "empty-level",
    "space-or-non-ascii",
    "upper-case",
    "subscribe-all",
    "indistinguishable",
    "client-id",
];

/// `topic` in the recommended form: no leading, trailing or doubled `/`,
/// lower case, spaces as `-`, characters outside ASCII dropped.
pub fn better_form(topic: &str) -> String {
    topic
        .split('/')
        .map(|l| {
            let l: String = l
                .trim()
                .chars()
                .filter(char::is_ascii)
                .map(|c| {
                    if c == ' ' {
                        '-'
                    } else {
                        c.to_ascii_lowercase()
                    }
                })
                .collect();
            l
        })
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join("/")
}

/// `topic` with `id` as a level: before the last level (what is measured,
/// e.g. `plant/sensor1/temperature`), or after a single one.
fn with_client_id(topic: &str, id: &str) -> String {
    match topic.rsplit_once('/') {
        Some((head, last)) => format!("{head}/{id}/{last}"),
        None if topic.is_empty() => id.to_string(),
        None => format!("{topic}/{id}"),
    }
}

/// The topic-practice warnings of `sc` (none when the scenario
/// demonstrates bad practice).
pub fn warnings(sc: &Scenario) -> Vec<Warning> {
    let mut out = Vec::new();
    if sc.report.demonstrates.iter().any(|d| d == DEMONSTRATES) {
        return out;
    }
    let allowed = &sc.report.allow;
    // every message starts "topic practice (<kind>): ", the kind
    // `[report] allow` names
    let mut warn = |kind: &str, field: &str, message: String| {
        debug_assert!(KINDS.contains(&kind), "{kind} is not in KINDS");
        if !allowed.iter().any(|a| a == kind) {
            let message = format!("topic practice ({kind}): {message}");
            out.push(Warning::at(&sc.origin, &sc.text, Some(field), message));
        }
    };
    for f in &sc.flows {
        if !matches!(f.protocol, Protocol::Mqtt | Protocol::Mqttsn) {
            continue;
        }
        let field = format!("flows.{}.topic", f.name);
        let rendered: Vec<(String, String)> = (0..f.publishers.len())
            .map(|k| {
                let name = sc.nodes[f.publishers[k]].name.clone();
                (name, super::flows::topic_for(f, &sc.nodes, k))
            })
            .collect();
        let Some((first_name, first)) = rendered.first() else {
            continue;
        };
        let better = better_form(first);
        let subject = format!("flow `{}` publishes to \"{first}\"", f.name);
        if first.starts_with('/') {
            warn(
                "leading-slash",
                &field,
                format!(
                    "{}: a leading '/' adds an empty first level; better \"{better}\"",
                    subject
                ),
            );
        }
        if first.trim_start_matches('/').contains("//") || first.ends_with('/') {
            warn("empty-level", &field, format!(
                "{}: an empty level (\"//\" or a trailing '/') is a level no one means to match; better \"{better}\"",
                subject
            ));
        }
        if first.contains(' ') || !first.is_ascii() {
            warn("space-or-non-ascii", &field, format!(
                "{}: spaces and non-ASCII characters break tools and filters typed by hand; better \"{better}\"",
                subject
            ));
        }
        if first.chars().any(|c| c.is_ascii_uppercase()) {
            warn("upper-case", &field, format!(
                "{}: topics are case-sensitive, mixed case splits one tree in two; better \"{better}\"",
                subject
            ));
        }
        // receivers' filter (broadcast and fan-in: the template's)
        if f.pattern != Pattern::PointToPoint && !f.receivers.is_empty() {
            let filter = crate::proto::mqtt::topic::template_filter(&f.topic);
            if filter.split('/').all(|l| l == "+" || l == "#") {
                let fixed = format!("{}/{}", better_form(&f.name), f.topic.trim_matches('/'));
                warn("subscribe-all", &field, format!(
                    "the receivers of flow `{}` subscribe to \"{filter}\", every topic of that depth — a device should subscribe to its own subtree; publish under a prefix, e.g. \"{}\" (filter \"{}\")",
                    f.name,
                    super::flows::topic_for(
                        &super::model::FlowSpec { topic: fixed.clone(), ..f.clone() },
                        &sc.nodes,
                        0
                    ),
                    crate::proto::mqtt::topic::template_filter(&fixed),
                ));
            }
        }
        let shared = rendered.len() > 1 && rendered.iter().all(|(_, t)| t == first);
        let own_id = f.topic.contains("{name}") || f.topic.contains("{i}");
        if !shared && !own_id && f.pattern != Pattern::Broadcast {
            // a point-to-point topic may name its receiver instead: a
            // command addressed to that device
            let receivers: Vec<&str> = if f.pattern == Pattern::PointToPoint {
                f.receivers
                    .iter()
                    .map(|&r| sc.nodes[r].name.as_str())
                    .collect()
            } else {
                Vec::new()
            };
            if let Some((name, topic)) = rendered.iter().find(|(name, topic)| {
                !topic
                    .split('/')
                    .any(|l| l == name || receivers.contains(&l))
            }) {
                warn("client-id", &field, format!(
                    "flow `{}` publishes to \"{topic}\", which does not name its client id `{name}`, so whoever reads it cannot tell which device sent it; better \"{}\" (template: `{{name}}` in place of the client id)",
                    f.name,
                    with_client_id(&better_form(topic), &better_form(name)),
                ));
            }
        }
        if shared {
            let names: Vec<&str> = rendered.iter().map(|(n, _)| n.as_str()).collect();
            let shown = names.iter().take(3).copied().collect::<Vec<_>>().join(", ");
            warn("indistinguishable", &field, format!(
                "{}: its {} publishers ({shown}{}) share that one topic, so a subscriber cannot tell them apart; better one topic each, e.g. \"{better}/{}\" (template \"{}/{{name}}\")",
                subject,
                names.len(),
                if names.len() > 3 { ", …" } else { "" },
                better_form(first_name),
                f.topic.trim_end_matches('/'),
            ));
        }
    }
    // acl rules that let devices subscribe to everything
    for (i, r) in sc.protocols.mqtt.acl.rules().iter().enumerate() {
        if !r.subscribe.iter().any(|p| p == "#") {
            continue;
        }
        let devices: Vec<&str> = sc
            .nodes
            .iter()
            .filter(|n| n.role == Role::Client)
            .filter(|n| {
                r.clients
                    .as_deref()
                    .is_none_or(|g| crate::proto::mqtt::acl::glob_match(g, &n.name))
            })
            .map(|n| n.name.as_str())
            .collect();
        if r.users.is_none() {
            if let Some(d) = devices.first() {
                warn(
                    "subscribe-all",
                    "protocols.mqtt.acl",
                    format!(
                        "acl rule {i} lets device nodes ({}{}) subscribe to \"#\", the whole tree; better a subtree, e.g. subscribe = [\"<site>/%c/#\"] (for {d}: \"<site>/{d}/#\")",
                        devices.iter().take(3).copied().collect::<Vec<_>>().join(", "),
                        if devices.len() > 3 { ", …" } else { "" },
                    ),
                );
            }
        }
    }
    out
}
