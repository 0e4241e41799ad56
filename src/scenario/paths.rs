//! Roles mean something (scenarios/README.md "Roles"): only `role =
//! "router"` forwards IP packets, so a flow whose hosts can reach each other
//! only through another kind of node (a `gateway`, `forwarder`, `server`,
//! `client`, …) could deliver nothing — every packet between them would be
//! counted in `drops_no_route`. The loader refuses such a scenario, naming
//! the flow, both hosts, the node in the way and the fix.
//!
//! Only the static topology is considered: links taken down by `[[events]]`
//! are a run-time matter (`qossim run` warns after the run about flows with
//! `drops_no_route > 0`).

use super::check::Ctx;
use super::error::ScenarioError;
use super::radio::MediumSpec;
use super::schema::FlowSchema;
use crate::scenario::model::{CoapMode, FlowSpec, LinkSpec, NodeSpec, Protocol};
use std::collections::{BTreeMap, VecDeque};
use toml::Spanned;

/// Hosts a flow's packets must travel between at the IP level: MQTT
/// clients and their broker, CoAP pub/sub sensors and observers and their
/// broker, a proxied CoAP flow's receivers and proxy and the proxy and
/// publishers, every other CoAP, UDP, TCP and HTTP publisher and receiver.
/// MQTT-SN clients are left out (which gateway a client takes is found at
/// run time, and a forwarder relays MQTT-SN above IP); so is CoAP discovery
/// (one multicast hop).
fn ip_pairs(f: &FlowSpec) -> Vec<(usize, usize)> {
    let mut v = Vec::new();
    let to_hub = |v: &mut Vec<(usize, usize)>, hub: usize, ends: &[usize]| {
        v.extend(ends.iter().filter(|&&e| e != hub).map(|&e| (e, hub)));
    };
    match f.protocol {
        Protocol::Mqtt => {
            if let Some(b) = f.broker {
                to_hub(&mut v, b, &f.publishers);
                if f.subscribe_with == Protocol::Mqtt {
                    to_hub(&mut v, b, &f.receivers);
                }
            }
        }
        Protocol::Mqttsn => {
            if let (Some(b), Protocol::Mqtt) = (f.broker, f.subscribe_with) {
                to_hub(&mut v, b, &f.receivers);
            }
        }
        Protocol::Coap if f.coap_mode == CoapMode::Discover => {}
        Protocol::Coap if f.coap_mode == CoapMode::Pubsub => {
            if let Some(b) = f.broker {
                to_hub(&mut v, b, &f.publishers);
                to_hub(&mut v, b, &f.receivers);
            }
        }
        Protocol::Coap if f.proxy.is_some() => {
            if let Some((p, _)) = f.proxy {
                to_hub(&mut v, p, &f.publishers);
                to_hub(&mut v, p, &f.receivers);
            }
        }
        _ => {
            for &p in &f.publishers {
                v.extend(f.receivers.iter().filter(|&&r| r != p).map(|&r| (p, r)));
            }
        }
    }
    v
}

/// Refuse the first flow (file order) whose hosts reach each other only
/// through a node that does not forward: the error is at the flow's
/// `name`, names the first such pair of hosts and every non-forwarding
/// node on the shortest path between them, and says how to fix it.
pub(crate) fn check(
    ctx: &Ctx<'_>,
    nodes: &[NodeSpec],
    links: &[LinkSpec],
    media: &[MediumSpec],
    flows: &[FlowSpec],
    schemas: &[&Spanned<FlowSchema>],
) -> Result<(), ScenarioError> {
    let n = nodes.len();
    let mut adj: Vec<Vec<usize>> = vec![Vec::new(); n];
    for l in links {
        adj[l.a].push(l.b);
        adj[l.b].push(l.a);
    }
    for m in media {
        // a shared medium: every member hears every other (one hop)
        for &a in &m.members {
            adj[a].extend(m.members.iter().copied().filter(|&b| b != a));
        }
    }
    // breadth-first from `src`, through forwarding nodes only or through
    // any node; the predecessor of every reached node
    let search = |src: usize, forwarding_only: bool| {
        let mut prev = vec![usize::MAX; n];
        prev[src] = src;
        let mut queue = VecDeque::from([src]);
        while let Some(x) = queue.pop_front() {
            if x != src && forwarding_only && !nodes[x].role.forwards() {
                continue;
            }
            for &y in &adj[x] {
                if prev[y] == usize::MAX {
                    prev[y] = x;
                    queue.push_back(y);
                }
            }
        }
        prev
    };
    // Searches are symmetric (links are two-way; only the nodes between the
    // ends must forward), so each pair is searched from its more frequent
    // end: one search per broker or hub, not one per client (a search per
    // client cost O(nodes²) memory: 6 GB at 20,000 MQTT clients).
    let pairs: Vec<Vec<(usize, usize)>> = flows.iter().map(ip_pairs).collect();
    let mut seen = vec![0u32; n];
    for &(a, b) in pairs.iter().flatten() {
        seen[a] += 1;
        seen[b] += 1;
    }
    let mut cache: BTreeMap<usize, (Vec<usize>, Vec<usize>)> = BTreeMap::new();
    for ((f, schema), pairs) in flows.iter().zip(schemas).zip(&pairs) {
        for &(a, b) in pairs {
            let (root, other) = if seen[b] > seen[a] { (b, a) } else { (a, b) };
            let (routed, any) = cache
                .entry(root)
                .or_insert_with(|| (search(root, true), search(root, false)));
            if routed[other] != usize::MAX || any[other] == usize::MAX {
                continue;
            }
            // the nodes in the way, from `other` back to `root`
            let mut hosts = Vec::new();
            let mut x = any[other];
            while x != root {
                if !nodes[x].role.forwards() {
                    hosts.push(format!(
                        "`{}` (role {})",
                        nodes[x].name,
                        nodes[x].role.as_str()
                    ));
                }
                x = any[x];
            }
            // named from `a` to `b`
            if root == a {
                hosts.reverse();
            }
            let name = &schema.get_ref().name;
            return Err(ctx.err_at(
                name,
                &format!("flows.{}", name.get_ref()),
                format!(
                    "flow `{}`: `{}` reaches `{}` only through {}, which does not forward IP packets (only role = \"router\" does; scenarios/README.md \"Roles\"): every packet between them would be dropped (drops_no_route). Make that node a router (role = \"router\"), or link the hosts to a router",
                    f.name,
                    nodes[a].name,
                    nodes[b].name,
                    hosts.join(", ")
                ),
            ));
        }
    }
    Ok(())
}
