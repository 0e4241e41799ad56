//! `[[events]]` → `EventSpec`s, sorted by time (stable, so file order among
//! equal times). Each action takes exactly its own target field:
//! `link` (link_down, link_up, set_loss + `loss`), `node` (node_crash,
//! node_restart, client_disconnect, client_crash, client_connect), `nodes`
//! globs (partition), nothing (heal); packet faults (drop_packet,
//! duplicate_packet, delay_packet + `by`, corrupt_packet + `layer` and an
//! optional `offset`) take a `match` table and optional `until`/`count`.

use super::check::{Ctx, MAX_DURATION};
use super::error::ScenarioError;
use super::flows::resolve_nodes;
use super::loss;
use super::schema::EventSchema;
use super::schema::MatchSchema;
use super::topology::Topology;
use crate::scenario::model::{
    Action, CorruptLayer, EventSpec, FaultEffect, FlowSpec, PacketFault, PacketMatch, Select,
};
use crate::sim::{SimDuration, SimTime};

#[derive(Clone, Copy, PartialEq)]
enum Kind {
    LinkDown,
    LinkUp,
    SetLoss,
    NodeCrash,
    NodeRestart,
    Partition,
    Heal,
    ClientDisconnect,
    ClientCrash,
    ClientConnect,
    ClientSleep,
    ClientWake,
    DropPacket,
    DuplicatePacket,
    DelayPacket,
    CorruptPacket,
}

const ACTIONS: &[(&str, Kind)] = &[
    ("link_down", Kind::LinkDown),
    ("link_up", Kind::LinkUp),
    ("set_loss", Kind::SetLoss),
    ("node_crash", Kind::NodeCrash),
    ("node_restart", Kind::NodeRestart),
    ("partition", Kind::Partition),
    ("heal", Kind::Heal),
    ("client_disconnect", Kind::ClientDisconnect),
    ("client_crash", Kind::ClientCrash),
    ("client_connect", Kind::ClientConnect),
    ("client_sleep", Kind::ClientSleep),
    ("client_wake", Kind::ClientWake),
    ("drop_packet", Kind::DropPacket),
    ("duplicate_packet", Kind::DuplicatePacket),
    ("delay_packet", Kind::DelayPacket),
    ("corrupt_packet", Kind::CorruptPacket),
];

/// The built-in protocols' `packets.csv` kinds other than MQTT's (those come
/// from `PacketType::kind`, MQTT-SN's from `MsgType::ALL`); a plug-in's
/// kinds are `<plug-in name>_…`.
const BUILTIN_KINDS: &[&str] = &[
    "ip",
    "udp",
    "coap_con",
    "coap_non",
    "coap_ack",
    "coap_rst",
    "tcp_syn",
    "tcp_synack",
    "tcp_data",
    "tcp_ack",
    "tcp_fin",
    "tcp_rst",
    "http_request",
    "http_response",
];

/// The `packets.csv` protocols a match may name (`ip`: packets of no flow).
const BUILTIN_PROTOCOLS: &[&str] = &["ip", "udp", "coap", "tcp", "mqtt", "mqttsn", "http"];

/// Most packets a fault may act on (`count`) and the largest `nth`/`every`.
const MAX_COUNT: u64 = 1_000_000_000;

/// Resolve every event; `horizon` = duration + drain bounds `at`.
pub(crate) fn resolve_all(
    ctx: &Ctx<'_>,
    topo: &Topology,
    flows: &[FlowSpec],
    events: &[toml::Spanned<EventSchema>],
    horizon: SimDuration,
) -> Result<Vec<EventSpec>, ScenarioError> {
    let mut out = Vec::with_capacity(events.len());
    for (i, ev) in events.iter().enumerate() {
        let e = ev.get_ref();
        let field = format!("events[{i}]");
        let f = |k: &str| format!("{field}.{k}");
        let at = ctx.duration(&e.at, &f("at"), MAX_DURATION.saturating_mul(2))?;
        if at > horizon {
            return Err(ctx.err_at(
                &e.at,
                &f("at"),
                format!("event at {at} is after the end of the run (duration + drain = {horizon})"),
            ));
        }
        let kind = ctx.choice(&e.action, &f("action"), ACTIONS)?;
        let name = e.action.get_ref();
        // Which keys this action needs, and which it takes optionally.
        let (wants, may): (&[&str], &[&str]) = match kind {
            Kind::LinkDown | Kind::LinkUp => (&["link"], &[]),
            Kind::SetLoss => (&["link", "loss"], &[]),
            Kind::NodeCrash
            | Kind::NodeRestart
            | Kind::ClientDisconnect
            | Kind::ClientCrash
            | Kind::ClientConnect
            | Kind::ClientWake => (&["node"], &[]),
            Kind::ClientSleep => (&["node", "duration"], &[]),
            Kind::Partition => (&["nodes"], &[]),
            Kind::Heal => (&[], &[]),
            Kind::DropPacket | Kind::DuplicatePacket => (&["match"], &["until", "count"]),
            Kind::DelayPacket => (&["match", "by"], &["until", "count"]),
            Kind::CorruptPacket => (&["match", "layer"], &["until", "count", "offset"]),
        };
        let present = [
            ("link", e.link.as_ref().map(|v| v.span())),
            ("node", e.node.as_ref().map(|v| v.span())),
            ("nodes", e.nodes.as_ref().map(|v| v.span())),
            ("loss", e.loss.as_ref().map(|v| v.span())),
            ("duration", e.duration.as_ref().map(|v| v.span())),
            ("match", e.matcher.as_ref().map(|v| v.span())),
            ("until", e.until.as_ref().map(|v| v.span())),
            ("count", e.count.as_ref().map(|v| v.span())),
            ("by", e.by.as_ref().map(|v| v.span())),
            ("offset", e.offset.as_ref().map(|v| v.span())),
            ("layer", e.layer.as_ref().map(|v| v.span())),
        ];
        for (k, sp) in &present {
            match (sp, wants.contains(k) || may.contains(k)) {
                (Some(sp), false) => {
                    let takes: Vec<&str> = wants.iter().chain(may).copied().collect();
                    return Err(ctx.err(
                        sp.clone(),
                        &f(k),
                        format!(
                            "field `{k}` does not apply to action `{name}` (it takes: {})",
                            if takes.is_empty() {
                                "no target".to_string()
                            } else {
                                takes.join(", ")
                            }
                        ),
                    ));
                }
                (None, true) if wants.contains(k) => {
                    return Err(ctx.err(ev.span(), &f(k), format!("action `{name}` needs `{k}`")));
                }
                _ => {}
            }
        }
        let link = || e.link.as_ref().map(|l| topo.link(ctx, l, &f("link")));
        let node = || e.node.as_ref().map(|n| topo.node(ctx, n, &f("node")));
        let missing = || {
            ctx.err(
                ev.span(),
                &field,
                format!("action `{name}` is missing its target"),
            )
        };
        let action = match kind {
            Kind::LinkDown => Action::LinkDown {
                link: link().ok_or_else(missing)??,
            },
            Kind::LinkUp => Action::LinkUp {
                link: link().ok_or_else(missing)??,
            },
            Kind::SetLoss => {
                let l = e.loss.as_ref().ok_or_else(missing)?;
                Action::SetLoss {
                    link: link().ok_or_else(missing)??,
                    loss: loss::resolve(ctx, l, &f("loss"))?,
                }
            }
            Kind::NodeCrash => Action::NodeCrash {
                node: node().ok_or_else(missing)??,
            },
            Kind::NodeRestart => Action::NodeRestart {
                node: node().ok_or_else(missing)??,
            },
            Kind::Partition => {
                let pats = e.nodes.as_ref().ok_or_else(missing)?;
                Action::Partition {
                    nodes: resolve_nodes(ctx, topo, pats, &f("nodes"))?,
                }
            }
            Kind::Heal => Action::Heal,
            Kind::ClientDisconnect => Action::ClientDisconnect {
                node: node().ok_or_else(missing)??,
            },
            Kind::ClientCrash => Action::ClientCrash {
                node: node().ok_or_else(missing)??,
            },
            Kind::ClientConnect => Action::ClientConnect {
                node: node().ok_or_else(missing)??,
            },
            Kind::ClientWake => Action::ClientWake {
                node: node().ok_or_else(missing)??,
            },
            Kind::DropPacket | Kind::DuplicatePacket | Kind::DelayPacket | Kind::CorruptPacket => {
                let effect = match kind {
                    Kind::DropPacket => FaultEffect::Drop,
                    Kind::DuplicatePacket => FaultEffect::Duplicate,
                    Kind::DelayPacket => {
                        let v = e.by.as_ref().ok_or_else(missing)?;
                        let by = ctx.duration(v, &f("by"), MAX_DURATION)?;
                        if by == SimDuration::ZERO {
                            return Err(ctx.err_at(v, &f("by"), "must be > 0"));
                        }
                        FaultEffect::Delay { by }
                    }
                    _ => {
                        let l = e.layer.as_ref().ok_or_else(missing)?;
                        let layer = ctx.choice(
                            l,
                            &f("layer"),
                            &[
                                ("wire", CorruptLayer::Wire),
                                ("payload", CorruptLayer::Payload),
                            ],
                        )?;
                        let offset = match &e.offset {
                            Some(o) => Some(ctx.int_in(o, &f("offset"), 0, 65_535)? as u32),
                            None => None,
                        };
                        FaultEffect::Corrupt { offset, layer }
                    }
                };
                let m = e.matcher.as_ref().ok_or_else(missing)?;
                let matcher = resolve_match(ctx, topo, flows, m, &f("match"))?;
                let until = match &e.until {
                    Some(u) => {
                        let t = ctx.duration(u, &f("until"), MAX_DURATION.saturating_mul(2))?;
                        if t <= at {
                            return Err(ctx.err_at(
                                u,
                                &f("until"),
                                format!("{t} is not after the event's `at` ({at})"),
                            ));
                        }
                        Some(SimTime::from_nanos(t.as_nanos()))
                    }
                    None => None,
                };
                let count = match &e.count {
                    Some(c) => {
                        if let Select::Nth(_) = matcher.select {
                            return Err(ctx.err_at(
                                c,
                                &f("count"),
                                "`count` applies with `match.every` only (`nth` acts on one packet)",
                            ));
                        }
                        Some(ctx.int_in(c, &f("count"), 1, MAX_COUNT)?)
                    }
                    None => None,
                };
                Action::PacketFault(Box::new(PacketFault {
                    effect,
                    matcher,
                    until,
                    count,
                }))
            }
            Kind::ClientSleep => {
                let v = e.duration.as_ref().ok_or_else(missing)?;
                let duration = ctx.duration(v, &f("duration"), MAX_DURATION)?;
                // MQTT-SN 1.2 §5.4.21: a 16-bit Duration in seconds, ≥ 1
                if !duration.as_nanos().is_multiple_of(1_000_000_000)
                    || duration == SimDuration::ZERO
                    || duration.as_secs_f64() > 65_535.0
                {
                    return Err(ctx.err_at(
                        v,
                        &f("duration"),
                        format!("{duration} is not a whole number of seconds in 1..=65535 (the DISCONNECT Duration field)"),
                    ));
                }
                Action::ClientSleep {
                    node: node().ok_or_else(missing)??,
                    duration,
                }
            }
        };
        out.push(EventSpec {
            at: SimTime::from_nanos(at.as_nanos()),
            action,
        });
    }
    out.sort_by_key(|e| e.at);
    Ok(out)
}

/// The `match` table of a packet fault: every field optional but exactly
/// one of `nth` and `every`.
fn resolve_match(
    ctx: &Ctx<'_>,
    topo: &Topology,
    flows: &[FlowSpec],
    m: &toml::Spanned<MatchSchema>,
    field: &str,
) -> Result<PacketMatch, ScenarioError> {
    let f = |k: &str| format!("{field}.{k}");
    let s = m.get_ref();
    let select = match (&s.nth, &s.every) {
        (Some(n), None) => Select::Nth(ctx.int_in(n, &f("nth"), 1, MAX_COUNT)?),
        (None, Some(k)) => Select::Every(ctx.int_in(k, &f("every"), 1, MAX_COUNT)?),
        (Some(_), Some(k)) => {
            return Err(ctx.err_at(
                k,
                &f("every"),
                "give exactly one of `nth` (the n-th matching packet) and `every` (every k-th), not both",
            ))
        }
        (None, None) => {
            return Err(ctx.err(
                m.span(),
                &f("nth"),
                "missing: give exactly one of `nth` (the n-th matching packet, 1-based) and `every` (every k-th)",
            ))
        }
    };
    let protocol = match &s.protocol {
        Some(p) => {
            let name = p.get_ref().as_str();
            if !BUILTIN_PROTOCOLS.contains(&name) && ctx.protocols.get(name).is_none() {
                let known: Vec<&str> = BUILTIN_PROTOCOLS
                    .iter()
                    .copied()
                    .chain(ctx.protocols.ext.iter().map(|e| e.name))
                    .collect();
                return Err(ctx.err_at(
                    p,
                    &f("protocol"),
                    format!(
                        "unknown protocol \"{name}\", expected one of: {}",
                        known.join(", ")
                    ),
                ));
            }
            Some(name.to_string())
        }
        None => None,
    };
    let kind = match &s.kind {
        Some(k) => {
            let name = k.get_ref().as_str();
            if !known_kind(ctx, name) {
                return Err(ctx.err_at(
                    k,
                    &f("kind"),
                    format!(
                        "unknown packet kind \"{name}\" (the packets.csv `kind` column), expected one of: {}, the MQTT-SN kinds (mqttsn_publish, mqttsn_puback, …) or a plug-in's <name>_…",
                        builtin_kinds().collect::<Vec<_>>().join(", ")
                    ),
                ));
            }
            Some(name.to_string())
        }
        None => None,
    };
    let from = s
        .from
        .as_ref()
        .map(|n| topo.node(ctx, n, &f("from")))
        .transpose()?;
    let to =
        s.to.as_ref()
            .map(|n| topo.node(ctx, n, &f("to")))
            .transpose()?;
    let flow = match &s.flow {
        Some(v) => Some(
            flows
                .iter()
                .position(|fl| fl.name == *v.get_ref())
                .ok_or_else(|| {
                    ctx.err_at(
                        v,
                        &f("flow"),
                        format!(
                            "unknown flow \"{}\"; known flows: {}",
                            v.get_ref(),
                            super::check::list(flows.iter().map(|fl| &fl.name))
                        ),
                    )
                })?,
        ),
        None => None,
    };
    Ok(PacketMatch {
        protocol,
        kind,
        from,
        to,
        flow,
        select,
    })
}

/// The built-in kinds: IP, UDP, CoAP, TCP, then MQTT's.
fn builtin_kinds() -> impl Iterator<Item = &'static str> {
    BUILTIN_KINDS
        .iter()
        .copied()
        .chain(crate::proto::mqtt::PacketType::ALL.iter().map(|t| t.kind()))
}

/// Whether `kind` is a packet kind some protocol writes.
fn known_kind(ctx: &Ctx<'_>, kind: &str) -> bool {
    builtin_kinds().any(|k| k == kind)
        || crate::proto::mqttsn::types::MsgType::ALL
            .iter()
            .any(|t| t.label() == kind)
        || ctx.protocols.ext.iter().any(|e| {
            kind.strip_prefix(e.name)
                .is_some_and(|rest| rest.starts_with('_'))
        })
}
