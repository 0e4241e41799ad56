//! `[[flows]]` → `FlowSpec`: pattern, protocol and reliability rules, node
//! globs, topic templates, timing and value generators.

use super::check::{list, Ctx, MAX_DURATION};
use super::error::ScenarioError;
use super::schema::{FlowSchema, ValueSchema, S};
use super::topology::Topology;
use crate::scenario::model::{
    CoapMode, FlowSpec, NodeSpec, Pattern, Protocol, ProxyMode, Reliability, Timing, ValueGen,
};
use crate::sim::SimDuration;
use std::collections::BTreeSet;

/// Smallest payload: the 6-byte application header (docs/metrics.md).
pub const MIN_PAYLOAD: u64 = 6;
/// Largest payload (fits a UDP datagram with headroom).
pub const MAX_PAYLOAD: u64 = 60_000;
/// Most messages per publisher.
pub const MAX_COUNT: u64 = 1_000_000_000;
/// Topic placeholders.
pub const PLACEHOLDERS: &[&str] = &["{i}", "{name}", "{flow}"];

/// Does `name` match the glob `pat` (`*` any run, `?` one character)?
pub fn glob_match(pat: &str, name: &str) -> bool {
    let p: Vec<char> = pat.chars().collect();
    let n: Vec<char> = name.chars().collect();
    let (mut pi, mut ni) = (0usize, 0usize);
    let mut star: Option<(usize, usize)> = None;
    while ni < n.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == n[ni]) {
            pi += 1;
            ni += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some((pi, ni));
            pi += 1;
        } else if let Some((sp, sn)) = star {
            pi = sp + 1;
            ni = sn + 1;
            star = Some((sp, sn + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == '*')
}

/// Resolve a list of names/globs to node indices in node order,
/// deduplicated; every entry must match at least one node.
pub fn resolve_nodes(
    ctx: &Ctx<'_>,
    topo: &Topology,
    pats: &S<Vec<S<String>>>,
    field: &str,
) -> Result<Vec<usize>, ScenarioError> {
    if pats.get_ref().is_empty() {
        return Err(ctx.err_at(
            pats,
            field,
            "the list is empty: give at least one node name or glob",
        ));
    }
    let mut set = BTreeSet::new();
    for pat in pats.get_ref() {
        let p = pat.get_ref();
        if p.contains(['*', '?']) {
            let mut any = false;
            for (i, n) in topo.nodes.iter().enumerate() {
                if glob_match(p, &n.name) {
                    set.insert(i);
                    any = true;
                }
            }
            if !any {
                return Err(ctx.err_at(
                    pat,
                    field,
                    format!(
                        "glob \"{p}\" matches no node; known nodes: {}",
                        list(topo.nodes.iter().map(|n| &n.name))
                    ),
                ));
            }
        } else {
            set.insert(topo.node(ctx, pat, field)?);
        }
    }
    Ok(set.into_iter().collect())
}

/// A discovery flow's `query` (RFC 6690 §4.1): `&`-separated terms
/// `name=value` (a value may end in `*`, a prefix match) or `name` alone,
/// name one of the link attributes the servers advertise; each term is one
/// Uri-Query option (at most 255 bytes, RFC 7252 §5.10).
fn discover_query(ctx: &Ctx<'_>, q: &S<String>, field: &str) -> Result<Vec<String>, ScenarioError> {
    const NAMES: [&str; 6] = ["rt", "if", "href", "ct", "sz", "obs"];
    let text = q.get_ref();
    if text.is_empty() {
        return Ok(Vec::new());
    }
    let mut terms = Vec::new();
    for term in text.split('&') {
        let name = term.split_once('=').map_or(term, |(n, _)| n);
        if !NAMES.contains(&name) {
            return Err(ctx.err_at(
                q,
                field,
                format!(
                    "query term \"{term}\": filter on one of {} (RFC 6690 §4.1), as name=value or name=prefix*",
                    NAMES.join(", ")
                ),
            ));
        }
        if term.len() > 255 {
            return Err(ctx.err_at(
                q,
                field,
                "a query term is one Uri-Query option: at most 255 bytes (RFC 7252 §5.10)",
            ));
        }
        if let Some((_, v)) = term.split_once('=') {
            if v.trim_end_matches('*').contains('*') {
                return Err(ctx.err_at(
                    q,
                    field,
                    format!("query term \"{term}\": `*` may only end a value (a prefix match, RFC 6690 §4.1)"),
                ));
            }
        }
        terms.push(term.to_owned());
    }
    Ok(terms)
}

/// Check that a topic template uses only the known placeholders.
fn check_topic(ctx: &Ctx<'_>, t: &S<String>, field: &str) -> Result<(), ScenarioError> {
    let mut rest = t.get_ref().as_str();
    while let Some(open) = rest.find('{') {
        let after = &rest[open..];
        let Some(close) = after.find('}') else {
            return Err(ctx.err_at(
                t,
                field,
                format!(
                    "unclosed '{{' in topic template; placeholders: {}",
                    PLACEHOLDERS.join(", ")
                ),
            ));
        };
        let ph = &after[..=close];
        if !PLACEHOLDERS.contains(&ph) {
            return Err(ctx.err_at(t, field, format!("unknown placeholder {ph} in topic template; placeholders: {} ({{i}} = the publisher's group index, or its 1-based position among the flow's publishers)", PLACEHOLDERS.join(", "))));
        }
        rest = &after[close + 1..];
    }
    if rest.contains('}') {
        return Err(ctx.err_at(t, field, "unmatched '}' in topic template"));
    }
    Ok(())
}

/// The topic of `flow` for its `pos`-th publisher (0-based): `{i}` is the
/// node's group index, or `pos + 1` for explicit nodes; `{name}` the node
/// name; `{flow}` the flow name.
pub fn topic_for(flow: &FlowSpec, nodes: &[NodeSpec], pos: usize) -> String {
    let (name, i) = match flow.publishers.get(pos).and_then(|&n| nodes.get(n)) {
        Some(n) => (n.name.as_str(), n.index_in_group.unwrap_or(pos as u64 + 1)),
        None => ("", pos as u64 + 1),
    };
    crate::app::workload::render_topic(&flow.topic, &flow.name, name, i)
}

fn value_gen(ctx: &Ctx<'_>, v: &S<ValueSchema>, field: &str) -> Result<ValueGen, ScenarioError> {
    let f = |k: &str| format!("{field}.{k}");
    let s = v.get_ref();
    let kind = ctx.choice(
        &s.kind,
        &f("kind"),
        &[
            ("temperature", "temperature"),
            ("constant", "constant"),
            ("counter", "counter"),
            ("uniform", "uniform"),
        ],
    )?;
    let keys: &[&str] = match kind {
        "temperature" => &["mean", "sd"],
        "constant" => &["value"],
        "uniform" => &["min", "max"],
        _ => &[],
    };
    let all = [
        ("mean", &s.mean),
        ("sd", &s.sd),
        ("value", &s.value),
        ("min", &s.min),
        ("max", &s.max),
    ];
    for (k, val) in &all {
        if let (Some(val), false) = (val, keys.contains(k)) {
            return Err(ctx.err_at(
                val,
                &f(k),
                format!(
                    "field `{k}` does not apply to value kind `{kind}` (its fields: {})",
                    list(keys.iter())
                ),
            ));
        }
    }
    let need = |k: &str| -> Result<f64, ScenarioError> {
        let val = all
            .iter()
            .find(|(n, _)| *n == k)
            .and_then(|(_, v)| v.as_ref());
        let val = val
            .ok_or_else(|| ctx.err(v.span(), &f(k), format!("value kind `{kind}` needs `{k}`")))?;
        ctx.finite(val, &f(k))
    };
    Ok(match kind {
        "temperature" => {
            let sd = need("sd")?;
            if sd < 0.0 {
                return Err(ctx.err(v.span(), &f("sd"), format!("sd = {sd} cannot be negative")));
            }
            ValueGen::Temperature {
                mean: need("mean")?,
                sd,
            }
        }
        "constant" => ValueGen::Constant {
            value: need("value")?,
        },
        "uniform" => {
            let (min, max) = (need("min")?, need("max")?);
            if min > max {
                return Err(ctx.err(
                    v.span(),
                    &f("max"),
                    format!("max = {max} is below min = {min}"),
                ));
            }
            ValueGen::Uniform { min, max }
        }
        _ => ValueGen::Counter,
    })
}

/// The protocols a flow may name: the built-in ones, then the plug-ins.
fn available(ctx: &Ctx<'_>) -> String {
    ["udp", "coap", "tcp", "mqtt", "mqttsn", "http"]
        .into_iter()
        .chain(ctx.protocols.ext.iter().map(|e| e.name))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Resolve one flow (`idx` is its position, for unnamed paths).
pub fn resolve(
    ctx: &Ctx<'_>,
    topo: &Topology,
    fl: &FlowSchema,
    duration: SimDuration,
    params: &crate::scenario::model::ProtocolParams,
) -> Result<FlowSpec, ScenarioError> {
    let field = format!("flows.{}", fl.name.get_ref());
    let f = |k: &str| format!("{field}.{k}");
    let pattern = ctx.choice(
        &fl.pattern,
        &f("pattern"),
        &[
            ("point_to_point", Pattern::PointToPoint),
            ("broadcast", Pattern::Broadcast),
            ("fan_in", Pattern::FanIn),
        ],
    )?;
    let protocol = match fl.protocol.get_ref().as_str() {
        "udp" => Protocol::Udp,
        "coap" => Protocol::Coap,
        "tcp" => Protocol::Tcp,
        "mqtt" => Protocol::Mqtt,
        "mqttsn" => Protocol::Mqttsn,
        "http" => Protocol::Http,
        p if ctx.protocols.get(p).is_some() => {
            Protocol::Ext(ctx.protocols.get(p).map_or("", |e| e.name))
        }
        p => {
            return Err(ctx.err_at(
                &fl.protocol,
                &f("protocol"),
                format!(
                    "unknown protocol \"{p}\", expected one of: {}",
                    available(ctx)
                ),
            ))
        }
    };
    let ext = match protocol {
        Protocol::Ext(name) => ctx.protocols.get(name),
        _ => None,
    };
    let reliability = match &fl.reliability {
        None if matches!(protocol, Protocol::Tcp | Protocol::Http) => Reliability::Confirmed,
        None => ext
            .and_then(|e| e.reliabilities.first().copied())
            .unwrap_or(Reliability::BestEffort),
        Some(r) => {
            let rel = ctx.choice(
                r,
                &f("reliability"),
                &[
                    ("best_effort", Reliability::BestEffort),
                    ("confirmed", Reliability::Confirmed),
                    ("exactly_once", Reliability::ExactlyOnce),
                    ("non", Reliability::Non),
                    ("con", Reliability::Con),
                    ("qos0", Reliability::Qos0),
                    ("qos1", Reliability::Qos1),
                    ("qos2", Reliability::Qos2),
                    ("qos_minus1", Reliability::QosMinus1),
                ],
            )?;
            let ok = match protocol {
                Protocol::Udp => rel == Reliability::BestEffort,
                Protocol::Mqttsn => !matches!(rel, Reliability::Non | Reliability::Con),
                Protocol::Coap => matches!(
                    rel,
                    Reliability::BestEffort
                        | Reliability::Confirmed
                        | Reliability::Non
                        | Reliability::Con
                ),
                Protocol::Tcp | Protocol::Http => rel == Reliability::Confirmed,
                Protocol::Mqtt => !matches!(
                    rel,
                    Reliability::Non | Reliability::Con | Reliability::QosMinus1
                ),
                Protocol::Ext(_) => ext.is_some_and(|e| e.reliabilities.contains(&rel)),
            };
            if !ok {
                let advice = match (protocol, rel) {
                    (Protocol::Udp, _) => "UDP has no acknowledgements; udp accepts only best_effort (use protocol = \"coap\" for confirmed delivery)",
                    (Protocol::Tcp, _) => "TCP is a reliable byte stream; tcp accepts only confirmed (delivery fails only when the connection does)",
                    (Protocol::Http, _) => "HTTP runs over TCP and answers every request; http accepts only confirmed",
                    (Protocol::Mqtt, Reliability::QosMinus1) => "QoS -1 is MQTT-SN's publish without a connection; use protocol = \"mqttsn\"",
                    (Protocol::Mqtt, _) => "MQTT has QoS levels: best_effort/qos0, confirmed/qos1, exactly_once/qos2",
                    (Protocol::Mqttsn, _) => "MQTT-SN has QoS levels: qos_minus1, best_effort/qos0, confirmed/qos1, exactly_once/qos2",
                    (Protocol::Coap, Reliability::ExactlyOnce) => "CoAP has no exactly-once delivery (RFC 7252 §4.5 only deduplicates within EXCHANGE_LIFETIME); use confirmed (CON) or best_effort/non",
                    (Protocol::Coap, _) => "CoAP has NON and CON: best_effort/non or confirmed/con",
                    (Protocol::Ext(_), _) => "the protocol plug-in does not offer it",
                };
                return Err(ctx.err_at(
                    r,
                    &f("reliability"),
                    format!(
                        "reliability \"{}\" is not available with protocol \"{}\": {advice}",
                        rel.as_str(),
                        protocol.as_str()
                    ),
                ));
            }
            rel
        }
    };
    let publishers = resolve_nodes(ctx, topo, &fl.publishers, &f("publishers"))?;
    let receivers = resolve_nodes(ctx, topo, &fl.receivers, &f("receivers"))?;
    match pattern {
        Pattern::FanIn if receivers.len() != 1 => {
            return Err(ctx.err_at(
                &fl.receivers,
                &f("receivers"),
                format!(
                    "pattern fan_in needs exactly one receiver, got {}: {}",
                    receivers.len(),
                    list(receivers.iter().map(|&i| &topo.nodes[i].name))
                ),
            ));
        }
        Pattern::PointToPoint if receivers.len() != publishers.len() => {
            return Err(ctx.err_at(&fl.receivers, &f("receivers"), format!("pattern point_to_point pairs publishers and receivers in order: got {} publishers and {} receivers", publishers.len(), receivers.len())));
        }
        _ => {}
    }
    // A publisher is never its own receiver: for fan_in and point_to_point
    // that would be a flow to itself; for broadcast each publisher's
    // intended receivers are `receivers` minus itself.
    let self_loop = match pattern {
        Pattern::FanIn => publishers.iter().position(|p| receivers.contains(p)),
        Pattern::PointToPoint => publishers.iter().zip(&receivers).position(|(p, r)| p == r),
        Pattern::Broadcast => None,
    };
    if let Some(k) = self_loop {
        return Err(ctx.err_at(
            &fl.receivers,
            &f("receivers"),
            format!(
                "node \"{}\" would publish to itself; a publisher is never its own receiver",
                topo.nodes[publishers[k]].name
            ),
        ));
    }
    check_topic(ctx, &fl.topic, &f("topic"))?;
    let payload_bytes = ctx.int_in(
        &fl.payload_bytes,
        &f("payload_bytes"),
        MIN_PAYLOAD,
        MAX_PAYLOAD,
    )? as u32;
    let kind = match &fl.timing {
        None => 0,
        Some(t) => ctx.choice(
            t,
            &f("timing"),
            &[("periodic", 0), ("poisson", 1), ("bulk", 2)],
        )?,
    };
    let timing = if kind == 2 {
        if protocol != Protocol::Tcp {
            return Err(ctx.err_at(
                fl.timing.as_ref().unwrap_or(&fl.name),
                &f("timing"),
                format!(
                    "timing = \"bulk\" needs a byte stream with flow control; it is available with protocol \"tcp\", not \"{}\"",
                    protocol.as_str()
                ),
            ));
        }
        if pattern == Pattern::Broadcast {
            return Err(ctx.err_at(
                &fl.pattern,
                &f("pattern"),
                "timing = \"bulk\" fills one connection per publisher: use point_to_point or fan_in",
            ));
        }
        for (v, k) in [(&fl.interval, "interval"), (&fl.jitter, "jitter")] {
            if let Some(v) = v {
                return Err(ctx.err_at(
                    v,
                    &f(k),
                    format!("{k} does not apply to timing = \"bulk\" (the source sends as fast as TCP takes the bytes)"),
                ));
            }
        }
        Timing::Bulk
    } else {
        let Some(iv) = &fl.interval else {
            return Err(ctx.err(
                fl.name.span(),
                &f("interval"),
                "missing field `interval` (a duration such as \"10 s\"; required unless timing = \"bulk\")",
            ));
        };
        let interval = ctx.duration(iv, &f("interval"), MAX_DURATION)?;
        if interval == SimDuration::ZERO {
            return Err(ctx.err_at(iv, &f("interval"), "interval must be positive"));
        }
        if kind == 1 {
            if let Some(j) = &fl.jitter {
                return Err(ctx.err_at(
                    j,
                    &f("jitter"),
                    "jitter applies only to timing = \"periodic\" (Poisson gaps are already random)",
                ));
            }
            Timing::Poisson {
                mean_interval: interval,
            }
        } else {
            let jitter =
                ctx.duration_or(&fl.jitter, &f("jitter"), SimDuration::ZERO, MAX_DURATION)?;
            if jitter > interval {
                return Err(ctx.err(
                    fl.jitter.as_ref().map_or(iv.span(), |j| j.span()),
                    &f("jitter"),
                    format!("jitter {jitter} exceeds interval {interval}"),
                ));
            }
            Timing::Periodic { interval, jitter }
        }
    };
    let start = ctx.duration_or(&fl.start, &f("start"), SimDuration::ZERO, MAX_DURATION)?;
    if start >= duration {
        let sp = fl.start.as_ref().map_or(fl.name.span(), |s| s.span());
        return Err(ctx.err(sp, &f("start"), format!("start {start} is not before the scenario duration {duration}: the flow would never send")));
    }
    let count = fl
        .count
        .as_ref()
        .map(|c| ctx.int_in(c, &f("count"), 1, MAX_COUNT))
        .transpose()?;
    let value = fl
        .value
        .as_ref()
        .map_or(Ok(ValueGen::Counter), |v| value_gen(ctx, v, &f("value")))?;
    let subscribe_with = match &fl.subscribe_with {
        None => protocol,
        // the flow's own protocol is the default written out (so a sweep
        // over protocols can set it on every point)
        Some(v) if v.get_ref() == protocol.as_str() => protocol,
        Some(v) => {
            let w = ctx.choice(
                v,
                &f("subscribe_with"),
                &[("mqtt", Protocol::Mqtt), ("mqttsn", Protocol::Mqttsn)],
            )?;
            if !matches!(protocol, Protocol::Mqtt | Protocol::Mqttsn) {
                return Err(ctx.err_at(
                    v,
                    &f("subscribe_with"),
                    format!(
                        "`subscribe_with` applies to protocols \"mqtt\" and \"mqttsn\", not \"{}\"",
                        protocol.as_str()
                    ),
                ));
            }
            w
        }
    };
    let integrated =
        params.mqttsn.gateway_mode == crate::scenario::model::MqttsnGatewayMode::Integrated;
    if integrated
        && matches!(protocol, Protocol::Mqtt | Protocol::Mqttsn)
        && subscribe_with != protocol
    {
        let sp = fl
            .subscribe_with
            .as_ref()
            .map_or(fl.protocol.span(), |v| v.span());
        return Err(ctx.err(
            sp,
            &f("subscribe_with"),
            "an integrated MQTT-SN gateway is the broker of its MQTT-SN clients only, so MQTT and MQTT-SN clients cannot meet through it: use [protocols.mqttsn] gateway_mode = \"aggregating\" or \"transparent\" with a broker",
        ));
    }
    let coap_mode = match &fl.coap_mode {
        None => CoapMode::Put,
        Some(v) => {
            if protocol != Protocol::Coap {
                return Err(ctx.err_at(
                    v,
                    &f("coap_mode"),
                    format!(
                        "`coap_mode` applies to protocol \"coap\" only, not \"{}\"",
                        protocol.as_str()
                    ),
                ));
            }
            ctx.choice(
                v,
                &f("coap_mode"),
                &[
                    ("put", CoapMode::Put),
                    ("get", CoapMode::Get),
                    ("observe", CoapMode::Observe),
                    ("pubsub", CoapMode::Pubsub),
                    ("discover", CoapMode::Discover),
                ],
            )?
        }
    };
    // RFC 7252 §8.1: multicast requests MUST be Non-confirmable
    if coap_mode == CoapMode::Discover
        && !matches!(reliability, Reliability::BestEffort | Reliability::Non)
    {
        let at = fl.reliability.as_ref().unwrap_or(&fl.protocol);
        return Err(ctx.err_at(
            at,
            &f("reliability"),
            "coap_mode = \"discover\" sends multicast requests, which must be NON (RFC 7252 §8.1): use reliability = \"best_effort\" or \"non\"",
        ));
    }
    let query =
        match (&fl.query, coap_mode) {
            (Some(q), CoapMode::Discover) => discover_query(ctx, q, &f("query"))?,
            (Some(q), _) => return Err(ctx.err_at(
                q,
                &f("query"),
                "`query` applies only to coap_mode = \"discover\" (the /.well-known/core filter)",
            )),
            (None, _) => Vec::new(),
        };
    // a broker is needed by MQTT clients and by gateways that are not the
    // broker themselves
    let needs_broker = match protocol {
        Protocol::Mqtt => true,
        Protocol::Mqttsn => !integrated || subscribe_with == Protocol::Mqtt,
        // draft-ietf-core-coap-pubsub: publishers PUT to the broker's
        // topic-data resources, receivers observe them there
        Protocol::Coap => coap_mode == CoapMode::Pubsub,
        _ => false,
    };
    let broker = match (&fl.broker, needs_broker) {
        (Some(b), true) => Some(topo.node(ctx, b, &f("broker"))?),
        (Some(b), false) => {
            return Err(ctx.err_at(
                b,
                &f("broker"),
                format!(
                    "`broker` applies only to protocols \"mqtt\" and \"mqttsn\" (not with an integrated gateway) and to coap with coap_mode = \"pubsub\", not \"{}\"",
                    protocol.as_str()
                ),
            ))
        }
        (None, true) => {
            let brokers: Vec<usize> = topo
                .nodes
                .iter()
                .enumerate()
                .filter(|(_, n)| n.role == crate::scenario::model::Role::Broker)
                .map(|(i, _)| i)
                .collect();
            match brokers.as_slice() {
                [b] => Some(*b),
                [] => {
                    return Err(ctx.err_at(
                        &fl.protocol,
                        &f("broker"),
                        format!("an {} flow needs a broker: give a node role = \"broker\" or name one with broker = \"<node>\"", protocol.as_str()),
                    ))
                }
                many => {
                    let names: Vec<&str> =
                        many.iter().map(|&i| topo.nodes[i].name.as_str()).collect();
                    return Err(ctx.err_at(
                        &fl.protocol,
                        &f("broker"),
                        format!(
                            "several nodes have role \"broker\" ({}): name this flow's with broker = \"<node>\"",
                            names.join(", ")
                        ),
                    ));
                }
            }
        }
        (None, false) => None,
    };
    let uses_mqttsn = protocol == Protocol::Mqttsn || subscribe_with == Protocol::Mqttsn;
    if uses_mqttsn
        && !topo
            .nodes
            .iter()
            .any(|n| n.role == crate::scenario::model::Role::Gateway)
    {
        return Err(ctx.err_at(
            &fl.protocol,
            &f("protocol"),
            "MQTT-SN clients need a gateway: give a node role = \"gateway\"",
        ));
    }
    let retain = match &fl.retain {
        Some(r) if !matches!(protocol, Protocol::Mqtt | Protocol::Mqttsn) && *r.get_ref() => {
            return Err(ctx.err_at(
                r,
                &f("retain"),
                format!(
                    "`retain` is an MQTT feature; protocol \"{}\" has no retained messages",
                    protocol.as_str()
                ),
            ))
        }
        Some(r) => *r.get_ref(),
        None => false,
    };
    let poll_interval = match (&fl.poll_interval, coap_mode) {
        (Some(v), CoapMode::Get) => {
            let d = ctx.duration(v, &f("poll_interval"), MAX_DURATION)?;
            if d == SimDuration::ZERO {
                return Err(ctx.err_at(v, &f("poll_interval"), "poll_interval must be positive"));
            }
            Some(d)
        }
        (Some(v), _) => return Err(ctx.err_at(
            v,
            &f("poll_interval"),
            "`poll_interval` applies only to coap_mode = \"get\" (receivers poll the publishers)",
        )),
        (None, CoapMode::Get) => Some(match &timing {
            Timing::Periodic { interval, .. } => *interval,
            Timing::Poisson { mean_interval } => *mean_interval,
            // not reachable: bulk is tcp only
            Timing::Bulk => SimDuration::from_secs(1),
        }),
        (None, _) => None,
    };
    let proxy = flow_proxy(
        ctx,
        topo,
        fl,
        protocol,
        coap_mode,
        &publishers,
        &receivers,
        params,
        &f,
    )?;
    let spec = FlowSpec {
        name: fl.name.get_ref().clone(),
        pattern,
        protocol,
        reliability,
        publishers,
        receivers,
        topic: fl.topic.get_ref().clone(),
        payload_bytes,
        timing,
        start,
        count,
        value,
        broker,
        retain,
        subscribe_with,
        coap_mode,
        poll_interval,
        query,
        proxy,
    };
    if matches!(protocol, Protocol::Mqtt | Protocol::Mqttsn) {
        check_mqtt_topics(ctx, topo, fl, &spec, &f("topic"))?;
    }
    if protocol == Protocol::Mqttsn {
        check_mqttsn_topics(ctx, topo, fl, &spec, &params.mqttsn, &f)?;
    }
    Ok(spec)
}

/// Checks across the flows that use MQTT-SN (after every flow resolved):
/// MQTT-SN clients do not run on gateway or forwarder nodes (they would
/// share the MQTT-SN port), and the gateways reach one broker.
/// A flow's `proxy` and `proxy_mode`: CoAP `get`/`observe` only, a known
/// node that is neither a publisher nor a receiver of the flow, without
/// block-wise transfer (the proxy does not relay Block1/Block2).
#[allow(clippy::too_many_arguments)]
fn flow_proxy(
    ctx: &Ctx<'_>,
    topo: &Topology,
    fl: &FlowSchema,
    protocol: Protocol,
    coap_mode: CoapMode,
    publishers: &[usize],
    receivers: &[usize],
    params: &crate::scenario::model::ProtocolParams,
    f: &dyn Fn(&str) -> String,
) -> Result<Option<(usize, ProxyMode)>, ScenarioError> {
    let Some(p) = &fl.proxy else {
        if let Some(m) = &fl.proxy_mode {
            return Err(ctx.err_at(
                m,
                &f("proxy_mode"),
                "`proxy_mode` needs `proxy = \"<node>\"`",
            ));
        }
        return Ok(None);
    };
    if protocol != Protocol::Coap || !matches!(coap_mode, CoapMode::Get | CoapMode::Observe) {
        return Err(ctx.err_at(
            p,
            &f("proxy"),
            format!(
                "`proxy` applies to protocol \"coap\" with coap_mode = \"get\" or \"observe\" only, not {} with coap_mode = \"{}\"",
                protocol.as_str(),
                coap_mode.as_str()
            ),
        ));
    }
    let node = topo.node(ctx, p, &f("proxy"))?;
    if publishers.contains(&node) || receivers.contains(&node) {
        return Err(ctx.err_at(
            p,
            &f("proxy"),
            format!(
                "the proxy \"{}\" is a publisher or receiver of this flow; name a node between them",
                p.get_ref()
            ),
        ));
    }
    if params.coap.block_size.is_some() {
        return Err(ctx.err_at(
            p,
            &f("proxy"),
            "the proxy does not relay block-wise transfers: unset [protocols.coap] block_size",
        ));
    }
    let mode = match &fl.proxy_mode {
        None => ProxyMode::Forward,
        Some(m) => ctx.choice(
            m,
            &f("proxy_mode"),
            &[
                ("forward", ProxyMode::Forward),
                ("reverse", ProxyMode::Reverse),
            ],
        )?,
    };
    Ok(Some((node, mode)))
}

pub(crate) fn check_mqttsn_flows(
    ctx: &Ctx<'_>,
    topo: &Topology,
    schemas: &[&FlowSchema],
    flows: &[FlowSpec],
) -> Result<(), ScenarioError> {
    use crate::scenario::model::Role;
    let mut broker: Option<(usize, &str)> = None;
    for (fl, spec) in schemas.iter().zip(flows) {
        let f = |k: &str| format!("flows.{}.{k}", spec.name);
        let sides = [
            (
                spec.protocol == Protocol::Mqttsn,
                &spec.publishers,
                &fl.publishers,
                "publishers",
            ),
            (
                spec.subscribe_with == Protocol::Mqttsn,
                &spec.receivers,
                &fl.receivers,
                "receivers",
            ),
        ];
        for (is_sn, nodes, field, key) in sides {
            if !is_sn {
                continue;
            }
            if let Some(&n) = nodes
                .iter()
                .find(|&&n| matches!(topo.nodes[n].role, Role::Gateway | Role::Forwarder))
            {
                let node = &topo.nodes[n];
                return Err(ctx.err_at(
                    field,
                    &f(key),
                    format!(
                        "node \"{}\" has role \"{}\": an MQTT-SN client cannot run on a gateway or forwarder node (both use the MQTT-SN port); give the client its own node",
                        node.name,
                        node.role.as_str()
                    ),
                ));
            }
        }
        if spec.protocol != Protocol::Mqttsn && spec.subscribe_with != Protocol::Mqttsn {
            continue;
        }
        let Some(b) = spec.broker else { continue };
        match broker {
            None => broker = Some((b, spec.name.as_str())),
            Some((b0, first)) if b0 != b => {
                let sp = fl.broker.as_ref().map_or(fl.protocol.span(), |v| v.span());
                return Err(ctx.err(
                    sp,
                    &f("broker"),
                    format!(
                        "MQTT-SN gateways connect to one broker: flow \"{first}\" uses \"{}\", this one \"{}\"",
                        topo.nodes[b0].name, topo.nodes[b].name
                    ),
                ));
            }
            Some(_) => {}
        }
    }
    Ok(())
}

/// MQTT-SN publishers' topics must fit the topic form they publish with
/// (MQTT-SN 1.2 §6.5–§6.8): short names are exactly two characters;
/// predefined ids exist for the topics; QoS −1 (no connection, so no
/// REGISTER) needs a predefined or short topic.
fn check_mqttsn_topics(
    ctx: &Ctx<'_>,
    topo: &Topology,
    fl: &FlowSchema,
    spec: &FlowSpec,
    sn: &crate::scenario::model::MqttsnParams,
    f: &dyn Fn(&str) -> String,
) -> Result<(), ScenarioError> {
    use crate::scenario::model::MqttsnTopicType;
    for k in 0..spec.publishers.len() {
        let node = &topo.nodes[spec.publishers[k]].name;
        let t = topic_for(spec, &topo.nodes, k);
        let predefined = sn.predefined_id(&t).is_some();
        match sn.topic_id_type {
            MqttsnTopicType::Short if t.chars().count() != 2 => {
                return Err(ctx.err_at(
                    &fl.topic,
                    &f("topic"),
                    format!("topic_id_type = \"short\": for publisher \"{node}\" the topic renders as \"{t}\", not a two-character short topic name (MQTT-SN 1.2 §3.3)"),
                ));
            }
            MqttsnTopicType::Predefined if !predefined => {
                return Err(ctx.err_at(
                    &fl.topic,
                    &f("topic"),
                    format!("topic_id_type = \"predefined\": topic \"{t}\" of publisher \"{node}\" has no id in [protocols.mqttsn] predefined"),
                ));
            }
            _ => {}
        }
        if spec.reliability == Reliability::QosMinus1
            && !predefined
            && !(sn.topic_id_type == MqttsnTopicType::Short && t.chars().count() == 2)
        {
            let at = fl.reliability.as_ref().unwrap_or(&fl.protocol);
            return Err(ctx.err_at(
                at,
                &f("reliability"),
                format!("QoS -1 publishes without a connection, so without REGISTER: publisher \"{node}\"'s topic \"{t}\" needs a predefined id ([protocols.mqttsn] predefined) or topic_id_type = \"short\" with a two-character topic (MQTT-SN 1.2 §6.8)"),
            ));
        }
    }
    Ok(())
}

/// Every publisher's rendered topic must be an MQTT topic name, and the
/// subscription filter made from the template a valid filter
/// ([MQTT-4.7.1-1], [MQTT-4.7.3-1]): caught here rather than as silently
/// dropped publishes.
fn check_mqtt_topics(
    ctx: &Ctx<'_>,
    topo: &Topology,
    fl: &FlowSchema,
    spec: &FlowSpec,
    field: &str,
) -> Result<(), ScenarioError> {
    use crate::proto::mqtt::{TopicFilter, TopicName};
    for (k, &p) in spec.publishers.iter().enumerate() {
        let node = &topo.nodes[p];
        let t = topic_for(spec, &topo.nodes, k);
        if let Err(e) = TopicName::new(&t) {
            return Err(ctx.err_at(
                &fl.topic,
                field,
                format!(
                    "for publisher \"{}\" the topic renders as \"{t}\", which is not an MQTT topic name: {e}",
                    node.name
                ),
            ));
        }
    }
    let filter = crate::proto::mqtt::topic::template_filter(&spec.topic);
    if let Err(e) = TopicFilter::new(&filter) {
        return Err(ctx.err_at(
            &fl.topic,
            field,
            format!(
                "the subscription filter \"{filter}\" made from this template is not valid: {e}"
            ),
        ));
    }
    Ok(())
}

/// Most messages one flow may offer in a run ([`messages_offered`]): beyond
/// it the loader refuses the scenario. Measured: MQTT at 1 µs from 5
/// publishers for 15 s (7.5·10⁷ offered) ran 176 s and peaked at 3.9 GB,
/// about 50 bytes of records per message offered; 10⁸ is about 5 GB.
pub const MAX_MESSAGES: f64 = 1e8;
/// Bytes of message records per message offered, for the warning
/// (measured as above).
pub const RECORD_BYTES_PER_MESSAGE: f64 = 50.0;

/// Messages the flow's publishers offer in `duration` (periodic and
/// Poisson: publishers × (duration − start) / interval; bulk: 0, it sends
/// as fast as TCP takes the bytes).
pub fn messages_offered(flow: &FlowSpec, duration: SimDuration) -> f64 {
    let interval = match flow.timing {
        Timing::Periodic { interval, .. } => interval,
        Timing::Poisson { mean_interval } => mean_interval,
        Timing::Bulk => return 0.0,
    };
    let active = duration.as_nanos().saturating_sub(flow.start.as_nanos()) as f64;
    flow.publishers.len() as f64 * active / interval.as_nanos().max(1) as f64
}

#[cfg(test)]
mod tests {
    use super::glob_match;

    #[test]
    fn globs() {
        assert!(glob_match("sensor-*", "sensor-12"));
        assert!(glob_match("*", "x"));
        assert!(glob_match("s?n*-1", "sen-sor-1"));
        assert!(!glob_match("sensor-?", "sensor-12"));
        assert!(!glob_match("gw*", "sensor-1"));
        assert!(glob_match("a*b*c", "aXbYbZc"));
    }
}
