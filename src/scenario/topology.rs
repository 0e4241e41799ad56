//! `[[nodes]]`, `[[groups]]` and `[[links]]` → `NodeSpec`s and `LinkSpec`s.
//!
//! Order (model.rs): explicit nodes in file order, then each group's members
//! in group order and index order; explicit links in file order, then each
//! group's member links. Group members are named by substituting `{i}` in the
//! template and linked to `link.to` by a link named `<member>--<to>`.

use super::check::{list, Ctx};
use super::error::ScenarioError;
use super::loss;
use super::schema::{FileSchema, GroupSchema, LossSchema, PlacementSchema, S};
use crate::scenario::model::{LinkSpec, LossSpec, NodeSpec, Role};
use crate::sim::{SimDuration, SimRng};
use std::collections::HashMap;

/// Most members one group may have.
pub(crate) const MAX_GROUP_COUNT: u64 = 1_000_000;
/// Most nodes a scenario may have in total.
pub(crate) const MAX_NODES: usize = 2_000_000;
/// Fastest link: 100 Gbit/s.
pub(crate) const MAX_RATE_BPS: u64 = 100_000_000_000;
/// Longest one-way propagation delay: 1 h.
pub(crate) const MAX_DELAY: SimDuration = SimDuration::from_secs(3600);
/// Smallest MTU: every IPv4 host must forward 68-byte datagrams (RFC 791).
pub(crate) const MIN_MTU: u64 = 68;
/// Largest MTU (IPv4 total length is 16 bits).
pub(crate) const MAX_MTU: u64 = 65_535;
/// Largest per-direction queue, in packets.
pub(crate) const MAX_QUEUE: u64 = 1_000_000;

/// Node roles by name.
pub(crate) const ROLES: &[(&str, Role)] = &[
    ("router", Role::Router),
    ("server", Role::Server),
    ("broker", Role::Broker),
    ("gateway", Role::Gateway),
    ("forwarder", Role::Forwarder),
    ("client", Role::Client),
];

/// A named set of link parameters that explicit fields override.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Preset {
    pub rate_bps: u64,
    pub delay: SimDuration,
    pub mtu: u32,
    pub queue: u32,
    pub loss: LossSpec,
}

/// Link presets by name; `wired` is also the default when no preset is given.
pub(crate) fn presets() -> [(&'static str, Preset); 2] {
    [
        (
            "wired",
            Preset {
                rate_bps: 100_000_000,
                delay: SimDuration::from_millis(1),
                mtu: 1500,
                queue: 100,
                loss: LossSpec::None,
            },
        ),
        (
            // A teaching link: slow, long, and losing one packet in ten.
            "slow-lossy",
            Preset {
                rate_bps: 250_000,
                delay: SimDuration::from_millis(50),
                mtu: 1500,
                queue: 32,
                loss: LossSpec::Bernoulli { p: 0.1 },
            },
        ),
    ]
}

/// Nodes and links after expansion, with name lookups.
pub struct Topology {
    pub nodes: Vec<NodeSpec>,
    pub links: Vec<LinkSpec>,
    pub node_index: HashMap<String, usize>,
    pub link_index: HashMap<String, usize>,
}

impl Topology {
    /// Index of node `name` referenced at `v`, or an error listing known nodes.
    pub fn node(&self, ctx: &Ctx<'_>, v: &S<String>, field: &str) -> Result<usize, ScenarioError> {
        self.node_index.get(v.get_ref()).copied().ok_or_else(|| {
            ctx.err_at(
                v,
                field,
                format!(
                    "unknown node \"{}\"; known nodes: {}{}",
                    v.get_ref(),
                    list(self.nodes.iter().map(|n| &n.name)),
                    super::error::did_you_mean(
                        v.get_ref(),
                        self.nodes.iter().map(|n| n.name.as_str())
                    )
                ),
            )
        })
    }

    /// Index of link `name` referenced at `v`, or an error listing known links.
    pub fn link(&self, ctx: &Ctx<'_>, v: &S<String>, field: &str) -> Result<usize, ScenarioError> {
        self.link_index.get(v.get_ref()).copied().ok_or_else(|| {
            ctx.err_at(
                v,
                field,
                format!(
                    "unknown link \"{}\"; known links: {}",
                    v.get_ref(),
                    list(self.links.iter().map(|l| &l.name))
                ),
            )
        })
    }
}

/// Check a node name: non-empty, no `.` (it separates `--set` path
/// segments), no whitespace, no glob or template characters.
pub(crate) fn check_name(
    ctx: &Ctx<'_>,
    v: &S<String>,
    name: &str,
    field: &str,
) -> Result<(), ScenarioError> {
    if name.is_empty() {
        return Err(ctx.err_at(v, field, "a name cannot be empty"));
    }
    if let Some(c) = name
        .chars()
        .find(|&c| c == '.' || c.is_whitespace() || "*?={}".contains(c))
    {
        return Err(ctx.err_at(
            v,
            field,
            format!("name \"{name}\" contains {c:?}: names cannot contain '.', whitespace, '*', '?', '=', '{{' or '}}' (they are used by --set paths, globs and templates)"),
        ));
    }
    Ok(())
}

/// Link parameters as written (shared by `[[links]]` and group link templates).
struct LinkFields<'s> {
    preset: &'s Option<S<String>>,
    rate: &'s Option<S<String>>,
    delay: &'s Option<S<String>>,
    mtu: &'s Option<S<u64>>,
    queue: &'s Option<S<u64>>,
    loss: &'s Option<S<LossSchema>>,
}

/// A member's own link field if it has one, else the template's.
fn pick<'a, T>(own: &'a Option<T>, template: &'a Option<T>) -> &'a Option<T> {
    if own.is_some() {
        own
    } else {
        template
    }
}

fn link_params(ctx: &Ctx<'_>, l: &LinkFields<'_>, field: &str) -> Result<Preset, ScenarioError> {
    let f = |k: &str| format!("{field}.{k}");
    let all = presets();
    let mut p = all[0].1.clone();
    if let Some(name) = l.preset {
        p = all
            .iter()
            .find(|(n, _)| *n == name.get_ref().as_str())
            .map(|(_, p)| p.clone())
            .ok_or_else(|| {
                ctx.err_at(
                    name,
                    &f("preset"),
                    format!(
                        "unknown preset \"{}\", known presets: {}",
                        name.get_ref(),
                        list(all.iter().map(|p| p.0))
                    ),
                )
            })?;
    }
    if let Some(r) = l.rate {
        let bps =
            super::units::parse_rate(r.get_ref()).map_err(|m| ctx.err_at(r, &f("rate"), m))?;
        if !(1..=MAX_RATE_BPS).contains(&bps) {
            return Err(ctx.err_at(
                r,
                &f("rate"),
                format!("rate {bps} bit/s is out of range: must be 1 bit/s ..= 100 Gbit/s"),
            ));
        }
        p.rate_bps = bps;
    }
    if let Some(d) = l.delay {
        p.delay = ctx.duration(d, &f("delay"), MAX_DELAY)?;
    }
    if let Some(m) = l.mtu {
        // RFC 791: every internet module must handle 68-byte datagrams.
        p.mtu = ctx.int_in(m, &f("mtu"), MIN_MTU, MAX_MTU)? as u32;
    }
    if let Some(q) = l.queue {
        p.queue = ctx.int_in(q, &f("queue"), 1, MAX_QUEUE)? as u32;
    }
    if let Some(ls) = l.loss {
        p.loss = loss::resolve(ctx, ls, &f("loss"))?;
    }
    Ok(p)
}

fn position(ctx: &Ctx<'_>, v: &S<[f64; 2]>, field: &str) -> Result<(f64, f64), ScenarioError> {
    let [x, y] = *v.get_ref();
    if !x.is_finite() || !y.is_finite() {
        return Err(ctx.err_at(
            v,
            field,
            format!("coordinates must be finite numbers, got [{x}, {y}]"),
        ));
    }
    Ok((x, y))
}

/// Positions of a group's members (index 0..count), or `None` without placement.
fn placements(
    ctx: &Ctx<'_>,
    seed: u64,
    template: &str,
    count: u64,
    pl: &S<PlacementSchema>,
    field: &str,
) -> Result<Vec<(f64, f64)>, ScenarioError> {
    let f = |k: &str| format!("{field}.{k}");
    let p = pl.get_ref();
    let kind = ctx.choice(
        &p.kind,
        &f("kind"),
        &[("line", "line"), ("grid", "grid"), ("random", "random")],
    )?;
    let origin = p
        .origin
        .as_ref()
        .map_or(Ok((0.0, 0.0)), |o| position(ctx, o, &f("origin")))?;
    let reject = |present: Option<std::ops::Range<usize>>, k: &str| match present {
        Some(s) => Err(ctx.err(
            s,
            &f(k),
            format!("field `{k}` does not apply to placement `{kind}`"),
        )),
        None => Ok(()),
    };
    let spacing = match &p.spacing {
        Some(s) => ctx.float_in(s, &f("spacing"), 0.0, f64::MAX)?,
        None => 10.0,
    };
    let mut out = Vec::with_capacity(count as usize);
    match kind {
        "line" => {
            reject(p.columns.as_ref().map(|v| v.span()), "columns")?;
            reject(p.area.as_ref().map(|v| v.span()), "area")?;
            out.extend((0..count).map(|k| (origin.0 + k as f64 * spacing, origin.1)));
        }
        "grid" => {
            reject(p.area.as_ref().map(|v| v.span()), "area")?;
            let cols = p.columns.as_ref().ok_or_else(|| {
                ctx.err(pl.span(), &f("columns"), "placement `grid` needs `columns`")
            })?;
            let cols = ctx.int_in(cols, &f("columns"), 1, MAX_GROUP_COUNT)?;
            out.extend((0..count).map(|k| {
                (
                    origin.0 + (k % cols) as f64 * spacing,
                    origin.1 + (k / cols) as f64 * spacing,
                )
            }));
        }
        _ => {
            reject(p.columns.as_ref().map(|v| v.span()), "columns")?;
            reject(p.spacing.as_ref().map(|v| v.span()), "spacing")?;
            let area = p.area.as_ref().ok_or_else(|| {
                ctx.err(
                    pl.span(),
                    &f("area"),
                    "placement `random` needs `area = [width, height]`",
                )
            })?;
            let (w, h) = position(ctx, area, &f("area"))?;
            if w < 0.0 || h < 0.0 {
                return Err(ctx.err_at(
                    area,
                    &f("area"),
                    "area width and height cannot be negative",
                ));
            }
            // Its own stream, so other random processes do not shift positions.
            let mut rng = SimRng::stream(seed, &format!("group/{template}/placement"));
            for _ in 0..count {
                let x = origin.0 + rng.uniform() * w;
                let y = origin.1 + rng.uniform() * h;
                out.push((x, y));
            }
        }
    }
    Ok(out)
}

/// Build the topology from the parsed file.
pub(crate) fn build(
    ctx: &Ctx<'_>,
    file: &FileSchema,
    seed: u64,
) -> Result<Topology, ScenarioError> {
    let mut t = Topology {
        nodes: Vec::new(),
        links: Vec::new(),
        node_index: HashMap::new(),
        link_index: HashMap::new(),
    };
    for (i, n) in file.nodes.iter().enumerate() {
        let n = n.get_ref();
        let name = n.name.get_ref().clone();
        let field = format!(
            "nodes.{}",
            super::error::element_label(Some(&name), None, i)
        );
        check_name(ctx, &n.name, &name, &format!("{field}.name"))?;
        let role = ctx.choice(&n.role, &format!("{field}.role"), ROLES)?;
        let pos = n
            .position
            .as_ref()
            .map(|p| position(ctx, p, &format!("{field}.position")))
            .transpose()?;
        add_node(
            ctx,
            &mut t,
            &n.name,
            &format!("{field}.name"),
            NodeSpec {
                name,
                role,
                position: pos,
                group: None,
                index_in_group: None,
            },
        )?;
    }
    let mut ranges = Vec::with_capacity(file.groups.len());
    for (gi, g) in file.groups.iter().enumerate() {
        ranges.push(expand_group(ctx, &mut t, g.get_ref(), gi, seed)?);
    }
    for (i, l) in file.links.iter().enumerate() {
        let l = l.get_ref();
        let default_name = format!("{}--{}", l.a.get_ref(), l.b.get_ref());
        let name = l
            .name
            .as_ref()
            .map_or(default_name.clone(), |n| n.get_ref().clone());
        let field = format!(
            "links.{}",
            super::error::element_label(Some(&name), None, i)
        );
        if let Some(n) = &l.name {
            check_name(ctx, n, n.get_ref(), &format!("{field}.name"))?;
        }
        let a = t.node(ctx, &l.a, &format!("{field}.a"))?;
        let b = t.node(ctx, &l.b, &format!("{field}.b"))?;
        if a == b {
            return Err(ctx.err_at(
                &l.b,
                &format!("{field}.b"),
                format!(
                    "a link joins two distinct nodes; both ends are \"{}\"",
                    l.a.get_ref()
                ),
            ));
        }
        let fields = LinkFields {
            preset: &l.preset,
            rate: &l.rate,
            delay: &l.delay,
            mtu: &l.mtu,
            queue: &l.queue,
            loss: &l.loss,
        };
        let p = link_params(ctx, &fields, &field)?;
        let at = l.name.as_ref().map_or(l.a.span(), |n| n.span());
        add_link(
            ctx,
            &mut t,
            at,
            &field,
            LinkSpec {
                name,
                a,
                b,
                rate_bps: p.rate_bps,
                delay: p.delay,
                mtu: p.mtu,
                queue: p.queue,
                loss: p.loss,
            },
        )?;
    }
    for (g, members) in file.groups.iter().zip(ranges) {
        let g = g.get_ref();
        let Some(link) = &g.link else { continue };
        let field = format!("groups.{}.link", g.name.get_ref());
        let l = link.get_ref();
        let to = t.node(ctx, &l.to, &format!("{field}.to"))?;
        let fields = LinkFields {
            preset: &l.preset,
            rate: &l.rate,
            delay: &l.delay,
            mtu: &l.mtu,
            queue: &l.queue,
            loss: &l.loss,
        };
        let p = link_params(ctx, &fields, &field)?;
        let own = l.members.as_ref();
        if let Some(own) = own {
            // every `members` entry names a member of this group
            for (name, v) in own {
                if !members.clone().any(|m| t.nodes[m].name == *name) {
                    return Err(ctx.err_at(
                        v,
                        &format!("{field}.members.{name}"),
                        format!(
                            "no member named \"{name}\" in group \"{}\" (its members are {}…{})",
                            g.name.get_ref(),
                            t.nodes[members.start].name,
                            t.nodes[members.end - 1].name
                        ),
                    ));
                }
            }
        }
        for m in members {
            let mine = own
                .and_then(|o| o.get(&t.nodes[m].name))
                .map(|v| v.get_ref());
            let p = match mine {
                None => p.clone(),
                Some(ml) => {
                    let fields = LinkFields {
                        preset: pick(&ml.preset, &l.preset),
                        rate: pick(&ml.rate, &l.rate),
                        delay: pick(&ml.delay, &l.delay),
                        mtu: pick(&ml.mtu, &l.mtu),
                        queue: pick(&ml.queue, &l.queue),
                        loss: pick(&ml.loss, &l.loss),
                    };
                    link_params(
                        ctx,
                        &fields,
                        &format!("{field}.members.{}", t.nodes[m].name),
                    )?
                }
            };
            if m == to {
                return Err(ctx.err_at(
                    &l.to,
                    &format!("{field}.to"),
                    format!("group member \"{}\" cannot link to itself", t.nodes[m].name),
                ));
            }
            let name = format!("{}--{}", t.nodes[m].name, t.nodes[to].name);
            add_link(
                ctx,
                &mut t,
                l.to.span(),
                &field,
                LinkSpec {
                    name,
                    a: m,
                    b: to,
                    rate_bps: p.rate_bps,
                    delay: p.delay,
                    mtu: p.mtu,
                    queue: p.queue,
                    loss: p.loss.clone(),
                },
            )?;
        }
    }
    Ok(t)
}

fn add_node(
    ctx: &Ctx<'_>,
    t: &mut Topology,
    at: &S<String>,
    field: &str,
    node: NodeSpec,
) -> Result<(), ScenarioError> {
    if t.nodes.len() >= MAX_NODES {
        return Err(ctx.err_at(
            at,
            field,
            format!("too many nodes: at most {MAX_NODES} in total"),
        ));
    }
    if t.node_index.contains_key(&node.name) {
        return Err(ctx.err_at(at, field, format!("duplicate node name \"{}\"", node.name)));
    }
    t.node_index.insert(node.name.clone(), t.nodes.len());
    t.nodes.push(node);
    Ok(())
}

fn add_link(
    ctx: &Ctx<'_>,
    t: &mut Topology,
    at: std::ops::Range<usize>,
    field: &str,
    link: LinkSpec,
) -> Result<(), ScenarioError> {
    if t.link_index.contains_key(&link.name) {
        return Err(ctx.err(
            at,
            field,
            format!(
                "duplicate link name \"{}\" (give one of them a `name`)",
                link.name
            ),
        ));
    }
    t.link_index.insert(link.name.clone(), t.links.len());
    t.links.push(link);
    Ok(())
}

/// Add a group's members; returns their index range in `t.nodes`.
fn expand_group(
    ctx: &Ctx<'_>,
    t: &mut Topology,
    g: &GroupSchema,
    gi: usize,
    seed: u64,
) -> Result<std::ops::Range<usize>, ScenarioError> {
    let template = g.name.get_ref();
    let field = format!("groups.{template}");
    if !template.contains("{i}") {
        return Err(ctx.err_at(&g.name, &format!("{field}.name"), format!("group name \"{template}\" must contain the placeholder {{i}} (e.g. \"sensor-{{i}}\")")));
    }
    let count = ctx.int_in(&g.count, &format!("{field}.count"), 1, MAX_GROUP_COUNT)?;
    let start = match &g.start_index {
        Some(s) => ctx.int_in(s, &format!("{field}.start_index"), 0, u64::MAX - count)?,
        None => 1,
    };
    let total = t.nodes.len() as u64 + count;
    if total > MAX_NODES as u64 {
        return Err(ctx.err_at(&g.count, &format!("{field}.count"), format!("this group brings the scenario to {total} nodes, more than the {MAX_NODES} allowed")));
    }
    let role = ctx.choice(&g.role, &format!("{field}.role"), ROLES)?;
    let positions = match &g.placement {
        Some(pl) => Some(placements(
            ctx,
            seed,
            template,
            count,
            pl,
            &format!("{field}.placement"),
        )?),
        None => None,
    };
    let first = t.nodes.len();
    for k in 0..count {
        let i = start + k;
        let name = template.replace("{i}", &i.to_string());
        if k == 0 {
            check_name(ctx, &g.name, &name, &format!("{field}.name"))?;
        }
        let position = positions.as_ref().and_then(|p| p.get(k as usize).copied());
        add_node(
            ctx,
            t,
            &g.name,
            &format!("{field}.name"),
            NodeSpec {
                name,
                role,
                position,
                group: Some(gi),
                index_in_group: Some(i),
            },
        )?;
    }
    Ok(first..t.nodes.len())
}
