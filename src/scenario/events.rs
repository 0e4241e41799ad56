//! `[[events]]` → `EventSpec`s, sorted by time (stable, so file order among
//! equal times). Each action takes exactly its own target field:
//! `link` (link_down, link_up, set_loss + `loss`), `node` (node_crash,
//! node_restart, client_disconnect, client_crash, client_connect), `nodes`
//! globs (partition), nothing (heal).

use super::check::{Ctx, MAX_DURATION};
use super::error::ScenarioError;
use super::flows::resolve_nodes;
use super::loss;
use super::schema::EventSchema;
use super::topology::Topology;
use crate::scenario::model::{Action, EventSpec};
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
];

/// Resolve every event; `horizon` = duration + drain bounds `at`.
pub(crate) fn resolve_all(
    ctx: &Ctx<'_>,
    topo: &Topology,
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
        // Which target keys this action takes.
        let wants: &[&str] = match kind {
            Kind::LinkDown | Kind::LinkUp => &["link"],
            Kind::SetLoss => &["link", "loss"],
            Kind::NodeCrash
            | Kind::NodeRestart
            | Kind::ClientDisconnect
            | Kind::ClientCrash
            | Kind::ClientConnect
            | Kind::ClientWake => &["node"],
            Kind::ClientSleep => &["node", "duration"],
            Kind::Partition => &["nodes"],
            Kind::Heal => &[],
        };
        let present = [
            ("link", e.link.as_ref().map(|v| v.span())),
            ("node", e.node.as_ref().map(|v| v.span())),
            ("nodes", e.nodes.as_ref().map(|v| v.span())),
            ("loss", e.loss.as_ref().map(|v| v.span())),
            ("duration", e.duration.as_ref().map(|v| v.span())),
        ];
        for (k, sp) in &present {
            match (sp, wants.contains(k)) {
                (Some(sp), false) => {
                    return Err(ctx.err(
                        sp.clone(),
                        &f(k),
                        format!(
                            "field `{k}` does not apply to action `{name}` (it takes: {})",
                            if wants.is_empty() {
                                "no target".to_string()
                            } else {
                                wants.join(", ")
                            }
                        ),
                    ));
                }
                (None, true) => {
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
