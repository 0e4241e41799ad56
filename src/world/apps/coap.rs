//! CoAP flows over the simulated network (RFC 7252): each node that takes
//! part in a CoAP flow runs one `proto::coap::Endpoint` on UDP port
//! `[protocols.coap] port` (5683), acting as client and/or server.
//!
//! Flow mapping (docs/protocols.md): every message is a PUT of the payload to
//! `coap://<receiver>/<topic>` — CON for `confirmed`/`con`, NON for
//! `best_effort`/`non` — one request per intended receiver. The receiver's
//! server application (a `proto::coap::ResourceServer`) stores the value and
//! answers (2.01 Created the first time, then 2.04 Changed; piggybacked on
//! the ACK for CON, a NON response for NON); the message counts as delivered
//! when the server application gets the request (once per exchange: the
//! endpoint suppresses duplicates). Uri-Host is omitted, as clients do when
//! the host is an IP literal.
//!
//! With `coap_mode = "get"` (docs/protocols.md, "CoAP GET polling") a
//! publish sends nothing: it stores the reading in the publisher's server
//! application at its rendered topic (Content-Format 42, as PUTs carry it),
//! replacing the previous one. Each intended receiver of the publisher's
//! messages polls that resource with a GET — CON or NON as the flow's
//! reliability says — every `poll_interval`, from `start` plus an offset
//! drawn uniformly in [0, poll_interval) from the stream
//! `coap/get/<flow>/<receiver>/<publisher>`, while the poll time is before
//! `duration + poll_interval`. The server answers 2.05 Content with the
//! stored reading (piggybacked on the ACK of a CON GET, a NON response to a
//! NON GET; 4.04 before the first reading), and a reading counts as
//! delivered when the first 2.05 carrying it reaches the receiver; a later
//! response carrying it again is a duplicate, and a reading replaced before
//! any poll fetched it is lost.
//!
//! A `get` or `observe` flow with `proxy = "<node>"` (docs/protocols.md,
//! "CoAP through a caching proxy") sends its receivers' requests to that
//! node — Proxy-Uri `coap://<publisher>/<topic>` (`proxy_mode =
//! "forward"`) or Uri-Path `<publisher>/<topic>` (`"reverse"`) — where a
//! `proto::coap::Proxy` on the node's endpoint serves them from its cache
//! or asks the publisher, whose server then gives ETags and Max-Age
//! (`ResourceServer::with_validators`).
//!
//! Every CoAP flow (PUT or GET) fills four extension columns from its
//! counted exchanges (requests made after warmup): `rtt_ms_p50`,
//! `rtt_ms_p99` (first transmission of the request to the response at the
//! client, answered exchanges only), `round_trip_success` (answered /
//! (answered + failed: given up, no NON response within `non_timeout`,
//! reset); exchanges still open at the end, or whose client crashed, are
//! left out) and `bytes_per_exchange` (IPv4 bytes of every datagram the two
//! endpoints sent for the flow's counted exchanges — requests,
//! retransmissions, responses, empty ACKs, RSTs — once per datagram, not per
//! hop, divided by the counted exchanges).
//!
//! Driving: an input or a publish drives the node's endpoint at once —
//! transmits, then events (the server answers a `RequestReceived` right
//! there), then transmits again until nothing moves, then the timer — so a
//! piggybacked ACK leaves in the same instant as the request that caused
//! it; the endpoint's timer is one plug-in event per node, deduplicated by a
//! [`Wakeup`].

#[path = "coap_block.rs"]
mod block;

use super::{Ctx, Message, Plugin, PluginOutput, RunEnd};
use crate::metrics::summary::Value;
use crate::net::addr::{Addr, SockAddr};
use crate::net::ip;
use crate::net::packet::{PacketMeta, NO_FLOW};
use crate::proto::coap::server::Served;
use crate::proto::coap::{
    BlockTransfer, Code, Config, Endpoint, Event, LinkAttrs, MessageType, Method, ObserveConfig,
    Proxy, ProxyConfig, ProxyStats, Request, RequestHandle, ResourceServer,
};
use crate::proto::Datagram;
use crate::scenario::model::{CoapMode, CoapParams, Protocol, ProxyMode, Reliability, Scenario};
use crate::sim::{SimDuration, SimRng, SimTime, Wakeup};
use crate::world::host::{DatagramApp, Received};
use std::collections::BTreeMap;

pub(crate) use crate::scenario::columns::COAP_COLUMNS;

/// Timer keys with this bit set are polls (`Coap::polls` index), with
/// [`OBS_KEY`] observations (`Coap::observes` index); the others are
/// nodes' endpoint timers.
const POLL_KEY: u32 = 1 << 31;
const OBS_KEY: u32 = 1 << 30;

/// Content-Format of stored and PUT readings: application/octet-stream.
const CONTENT_FORMAT: u16 = 42;

/// All-CoAP-Nodes, the IPv4 group of multicast discovery (RFC 7252 §12.8).
pub(crate) const ALL_COAP_NODES: std::net::Ipv4Addr = crate::net::l3::ALL_COAP_NODES_V4;

/// One multicast discovery request of a `coap_mode = "discover"` flow,
/// collecting responses.
#[derive(Debug, Clone, Copy)]
struct Discovery {
    flow: u32,
    msg: u32,
    counted: bool,
    sent: SimTime,
}

/// What the plug-in remembers about an outstanding request.
#[derive(Debug, Clone, Copy)]
struct CoapReq {
    flow: u32,
    counted: bool,
    /// Its first transmission (`SimTime::MAX` while it waits behind NSTART).
    first_tx: SimTime,
}

/// A flow's counted exchanges (its `COAP_COLUMNS`).
#[derive(Debug, Default)]
struct Exchanges {
    started: u64,
    answered: u64,
    failed: u64,
    /// IPv4 bytes of every datagram sent for them.
    bytes: u64,
    /// Request (first transmission) to response, ns, per answered exchange.
    rtts: Vec<u64>,
    /// Observe (RFC 7641) counters: notifications sent (first
    /// transmissions, replacements included), accepted fresh by receivers,
    /// dropped as stale, and re-registrations.
    notif_sent: u64,
    notif_accepted: u64,
    notif_stale: u64,
    reregistrations: u64,
}

/// One receiver observing one publisher's resource (`coap_mode =
/// "observe"`).
#[derive(Debug)]
struct Obs {
    flow: u32,
    receiver: u32,
    /// The node holding the resource (the publisher, or a pubsub broker).
    publisher: u32,
    /// The node the receiver sends its registrations to: `publisher`, or
    /// the flow's proxy.
    to: u32,
    /// Proxy-Uri of the registrations (a forward proxy's flows).
    proxy_uri: Option<String>,
    confirmable: bool,
    /// Uri-Path of the registrations.
    path: String,
    /// The observation (its registering request's handle) while the
    /// receiver's endpoint has it.
    handle: Option<RequestHandle>,
    /// A registration request of ours is outstanding.
    registering: bool,
    /// The last registration answer or notification.
    last_heard: SimTime,
    /// Its timer: only the event carrying the current generation acts.
    gen: u32,
    /// No registration after this.
    end: SimTime,
}

/// One receiver polling one publisher's resource (`coap_mode = "get"`).
#[derive(Debug)]
struct Poll {
    flow: u32,
    receiver: u32,
    /// The node polled: the publisher, or the flow's proxy.
    to: u32,
    /// Proxy-Uri of the polls (a forward proxy's flows).
    proxy_uri: Option<String>,
    confirmable: bool,
    /// Uri-Path of the polls.
    path: String,
    interval: SimDuration,
    /// Polls happen strictly before this.
    end: SimTime,
}

/// Per-node CoAP state (allocated only for nodes in CoAP flows).
#[derive(Debug)]
struct CoapNode {
    ep: Endpoint,
    /// The application answering the endpoint's requests.
    server: ResourceServer,
    /// Its queued timer event.
    wake: Wakeup,
    /// Resource paths this node publishes readings to, and their flow
    /// (attributes Observe notifications to flows).
    paths: Vec<(Box<str>, u32)>,
    /// The flow (and counted flag) of the last multicast request this node
    /// received: its leisure-delayed answers are attributed to it.
    mcast_meta: Option<(u32, bool)>,
    /// The caching proxy, on a node named by a flow's `proxy`.
    proxy: Option<Box<Proxy>>,
    /// The proxy's cache entries (ids) and the flow their notifications
    /// belong to, sorted by entry.
    entry_flows: Vec<(u64, u32)>,
}

struct Coap {
    /// Endpoint per node (None for nodes in no CoAP flow, or crashed).
    nodes: Vec<Option<Box<CoapNode>>>,
    /// Crashes per node: a restarted endpoint draws from a new stream, so
    /// it does not reuse the message IDs and tokens of its previous life
    /// (RFC 7252 §4.4, §5.3.1) that peers may still remember.
    incarnations: Vec<u32>,
    /// Outstanding requests: (node, handle) → owner.
    /// (A hash map, looked up and never iterated into output: it keeps its
    /// table as the window of outstanding requests slides.)
    reqs: crate::sim::FixedMap<(u32, u64), CoapReq>,
    /// Per flow (every flow of the scenario), its counted exchanges.
    exchanges: Vec<Exchanges>,
    /// GET polls (receiver, publisher) of `coap_mode = "get"` flows.
    polls: Vec<Poll>,
    /// Observations (receiver, publisher) of `coap_mode = "observe"` flows.
    observes: Vec<Obs>,
    /// (receiver node, observation or registration request handle) →
    /// `observes` index.
    obs_of: BTreeMap<(u32, u64), u32>,
    /// Observed resources (node, path, flow): created empty at the start
    /// and at the node's restart, so registrations find them before the
    /// first reading.
    seeds: Vec<(u32, String, u32)>,
    /// Nodes that are a `pubsub` flow's broker (a PUT there is not a
    /// delivery).
    brokers: Vec<bool>,
    /// Scratch request reused for every publish.
    req: Request,
    buf: Vec<u8>,
    /// Block-wise transfers (`[protocols.coap] block_size`), else `None`.
    blocks: Option<block::Blocks>,
    /// Link attributes (RFC 6690) of the resources each node serves,
    /// applied to its store whenever its endpoint is (re)created.
    links: BTreeMap<u32, Vec<(String, LinkAttrs)>>,
    /// Leisure of multicast answers (RFC 7252 §8.2), when the scenario has
    /// a `discover` flow (servers then draw their delays from
    /// `coap/leisure/<node>`); `None`: no multicast in the run.
    leisure: Option<SimDuration>,
    /// Multicast discovery requests collecting responses: (node, handle).
    discoveries: BTreeMap<(u32, u64), Discovery>,
    /// The proxy configuration of each node a flow names `proxy` (by
    /// node: few nodes are proxies, and a run may have 10,000 nodes).
    proxies: BTreeMap<usize, ProxyConfig>,
    /// Per node, whether it is the origin of a proxied flow (its server
    /// gives ETags and Max-Age and answers 2.03 Valid).
    origins: Vec<bool>,
    /// CoAP over DTLS with `[protocols.dtls] session = "per_message"`.
    dtls_per_message: bool,
}

pub(super) fn new(sc: &Scenario) -> Box<dyn Plugin> {
    Box::new(Coap {
        nodes: (0..sc.nodes.len()).map(|_| None).collect(),
        incarnations: vec![0; sc.nodes.len()],
        reqs: crate::sim::FixedMap::default(),
        exchanges: (0..sc.flows.len()).map(|_| Exchanges::default()).collect(),
        polls: Vec::new(),
        observes: Vec::new(),
        obs_of: BTreeMap::new(),
        seeds: Vec::new(),
        brokers: vec![false; sc.nodes.len()],
        req: Request::new(Method::Put, String::new()),
        buf: Vec::with_capacity(2048),
        blocks: block_szx(&sc.protocols.coap).map(block::Blocks::new),
        links: BTreeMap::new(),
        leisure: sc
            .flows
            .iter()
            .any(|f| f.protocol == Protocol::Coap && f.coap_mode == CoapMode::Discover)
            .then(|| sc.protocols.coap.leisure()),
        discoveries: BTreeMap::new(),
        proxies: proxy_configs(sc),
        origins: (0..sc.nodes.len())
            .map(|n| {
                sc.flows
                    .iter()
                    .any(|f| f.proxy.is_some() && f.publishers.contains(&n))
            })
            .collect(),
        dtls_per_message: sc.protocols.coap.security
            == crate::scenario::model::DatagramSecurity::Dtls
            && sc.protocols.dtls.session == crate::scenario::model::DtlsSession::PerMessage,
    })
}

/// The resource server a node runs for a scenario's `[protocols.coap]`
/// (also what `qossim coap-server --scenario` serves): block-wise with
/// `block_size`, Observe with `observe_max_age` and
/// `observe_con_interval`, cache validators (ETag, Max-Age, 2.03) when
/// `validators` (the origin of a proxied flow). Multicast leisure, link
/// attributes and seeded resources are the caller's.
pub fn resource_server(p: &CoapParams, validators: bool) -> ResourceServer {
    let observe = ObserveConfig {
        con_interval: p.observe_con_interval,
        max_age: p.observe_max_age,
    };
    ResourceServer::new()
        .with_block_szx(block_szx(p))
        .with_observe(observe)
        .with_validators(validators)
}

/// The block size exponent of `[protocols.coap] block_size` (`None`:
/// block-wise off).
pub fn block_szx(p: &CoapParams) -> Option<u8> {
    p.block_size
        .and_then(|b| crate::proto::coap::block::szx_of_size(usize::from(b)))
}

/// The proxy of each node a flow names as `proxy`: a forward proxy knows
/// the flow's publishers by name, a reverse proxy routes the first path
/// segment `<publisher>` to them.
fn proxy_configs(sc: &Scenario) -> BTreeMap<usize, ProxyConfig> {
    let mut out: BTreeMap<usize, ProxyConfig> = BTreeMap::new();
    let observe = ObserveConfig {
        con_interval: sc.protocols.coap.observe_con_interval,
        max_age: sc.protocols.coap.observe_max_age,
    };
    for f in &sc.flows {
        let Some((px, mode)) = f.proxy else { continue };
        let c = out.entry(px).or_insert_with(|| ProxyConfig {
            observe,
            ..ProxyConfig::default()
        });
        for &p in &f.publishers {
            let name = sc.nodes[p].name.to_ascii_lowercase();
            let a = SockAddr::new(sc.protocols.ip.plan().node_addr(p), sc.protocols.coap.port);
            let table = match mode {
                ProxyMode::Forward => {
                    c.forward = true;
                    &mut c.hosts
                }
                ProxyMode::Reverse => &mut c.routes,
            };
            if !table.iter().any(|(n, _)| *n == name) {
                table.push((name, a));
            }
        }
    }
    out
}

/// How a receiver of flow `f` addresses publisher `p`'s resource `path`:
/// (node, Uri-Path, Proxy-Uri) — directly, or through the flow's proxy.
fn target(
    sc: &Scenario,
    f: &crate::scenario::model::FlowSpec,
    p: u32,
    path: &str,
) -> (u32, String, Option<String>) {
    let name = || sc.nodes[p as usize].name.to_ascii_lowercase();
    match f.proxy {
        None => (p, path.to_string(), None),
        Some((px, ProxyMode::Reverse)) => (px as u32, format!("{}/{path}", name()), None),
        Some((px, ProxyMode::Forward)) => {
            let uri = crate::proto::coap::uri::Uri {
                secure: false,
                host: name(),
                port: sc.protocols.coap.port,
                path: path
                    .split('/')
                    .filter(|s| !s.is_empty())
                    .map(String::from)
                    .collect(),
                query: Vec::new(),
            };
            (px as u32, String::new(), Some(uri.to_string()))
        }
    }
}

fn kind(ty: MessageType) -> &'static str {
    match ty {
        MessageType::Con => "coap_con",
        MessageType::Non => "coap_non",
        MessageType::Ack => "coap_ack",
        MessageType::Rst => "coap_rst",
    }
}

fn addr(ctx: &Ctx<'_, '_>, node: usize) -> SockAddr {
    ctx.sock_addr(node, ctx.scenario().protocols.coap.port)
}

/// The endpoint's, the server application's and the proxy's next
/// deadline.
fn next_timeout(c: &CoapNode) -> Option<SimTime> {
    let p = c.proxy.as_ref().and_then(|p| p.poll_timeout());
    [c.ep.poll_timeout(), c.server.poll_timeout(), p]
        .into_iter()
        .flatten()
        .min()
}

impl CoapNode {
    /// The flow of the resource Observe notification `r` carries.
    fn notification_flow(&self, r: crate::proto::coap::ResponseId) -> Option<u32> {
        let o = self.server.observers().by_response(r)?;
        self.paths
            .iter()
            .find(|(p, _)| **p == *o.path)
            .map(|(_, f)| *f)
    }
}

impl Coap {
    /// A receiver's request `h` of `flow` is outstanding: keep its record
    /// (and count the exchange as started when it is counted).
    fn track(&mut self, receiver: usize, h: RequestHandle, flow: u32, counted: bool) {
        self.reqs.insert(
            (receiver as u32, h.0),
            CoapReq {
                flow,
                counted,
                first_tx: SimTime::MAX,
            },
        );
        if counted {
            self.exchanges[flow as usize].started += 1;
        }
    }

    fn node(&mut self, ctx: &Ctx<'_, '_>, node: usize) -> &mut CoapNode {
        let life = self.incarnations[node];
        let (links, leisure) = (&self.links, self.leisure);
        let origin = self.origins[node];
        self.nodes[node].get_or_insert_with(|| {
            let sc = ctx.scenario();
            let stream = match life {
                0 => format!("coap/{}", ctx.node_name(node)),
                n => format!("coap/{}/{n}", ctx.node_name(node)),
            };
            let mut rng = SimRng::stream(sc.seed, &stream);
            // RFC 7252 §4.4: the initial message ID should be randomised
            let first_mid = rng.below(1 << 16) as u16;
            let mut ep = Endpoint::new(Config::from(&sc.protocols.coap), rng, first_mid);
            let mut server = resource_server(&sc.protocols.coap, origin);
            if let Some(l) = leisure {
                // its own stream, so no other draw moves (RFC 7252 §8.2)
                let name = match life {
                    0 => format!("coap/leisure/{}", ctx.node_name(node)),
                    n => format!("coap/leisure/{}/{n}", ctx.node_name(node)),
                };
                server = server.with_leisure(l, SimRng::stream(sc.seed, &name));
            }
            for (path, attrs) in links.get(&(node as u32)).into_iter().flatten() {
                server
                    .resources_mut()
                    .set_link_attrs(path.clone(), attrs.clone());
            }
            server.register_options(&mut ep);
            let proxy = self
                .proxies
                .get(&node)
                .cloned()
                .map(|c| Box::new(Proxy::new(c)));
            if let Some(p) = &proxy {
                p.register_options(&mut ep);
            }
            Box::new(CoapNode {
                ep,
                server,
                wake: Wakeup::default(),
                paths: Vec::new(),
                mcast_meta: None,
                proxy,
                entry_flows: Vec::new(),
            })
        })
    }

    /// Poll the endpoint of `node` in the documented order: transmits,
    /// events (answering requests queues more transmits), again until
    /// nothing is transmitted or emitted, then the timer. `ctx_meta`
    /// attributes packets that belong to no request of ours (e.g. the ACK
    /// answering an incoming request belongs to that request's flow).
    fn drive(&mut self, ctx: &mut Ctx<'_, '_>, node: usize, ctx_meta: PacketMeta) {
        if !ctx.node_up(node) {
            return;
        }
        // transmitting creates no events, so once an events pass finds none
        // (after the transmits before it), nothing is left to send
        loop {
            self.transmit(ctx, node, ctx_meta);
            if !self.events(ctx, node) {
                break;
            }
        }
        if let Some(c) = self.nodes[node].as_mut() {
            if let Some(t) = next_timeout(c) {
                if let Some(gen) = c.wake.arm(t) {
                    ctx.schedule(t, node as u32, gen);
                }
            }
            // [protocols.dtls] session = "per_message": a client with
            // nothing outstanding ends its associations
            if self.dtls_per_message && c.ep.outstanding_requests() == 0 {
                let port = ctx.scenario().protocols.coap.port;
                ctx.dtls_end_sessions(node, port);
            }
        }
    }

    /// Send every datagram the endpoint of `node` has queued.
    fn transmit(&mut self, ctx: &mut Ctx<'_, '_>, node: usize, ctx_meta: PacketMeta) {
        let now = ctx.now();
        let port = ctx.scenario().protocols.coap.port;
        let mut buf = std::mem::take(&mut self.buf);
        loop {
            buf.clear();
            let Some(info) = self.nodes[node]
                .as_mut()
                .and_then(|c| c.ep.poll_transmit(now, &mut buf))
            else {
                break;
            };
            let owner = info.request.and_then(|h| {
                let r = self.reqs.get_mut(&(node as u32, h.0))?;
                if r.first_tx == SimTime::MAX {
                    r.first_tx = now;
                }
                Some(*r)
            });
            // an Observe notification belongs to the flow publishing its
            // resource (counted as the run is at its transmission)
            let notification = match owner {
                Some(_) => None,
                None => info.response.and_then(|r| {
                    let c = self.nodes[node].as_ref()?;
                    // a proxy's notification: the flow of the upstream
                    // notification (or request) that caused it, remembered
                    // per cache entry for those a timer sends (paced NONs,
                    // replacements leaving at a retransmission time)
                    let entry = c.proxy.as_ref().and_then(|p| p.notification_entry(r));
                    match entry {
                        Some(e) if ctx_meta.flow != NO_FLOW => {
                            let c = self.nodes[node].as_mut()?;
                            if let Err(i) = c.entry_flows.binary_search_by_key(&e, |x| x.0) {
                                c.entry_flows.insert(i, (e, ctx_meta.flow));
                            }
                            Some(ctx_meta.flow)
                        }
                        Some(e) => c
                            .entry_flows
                            .binary_search_by_key(&e, |x| x.0)
                            .ok()
                            .map(|i| c.entry_flows[i].1),
                        None => c.notification_flow(r),
                    }
                }),
            };
            let (flow, counted) = match (owner, notification) {
                (Some(o), _) => (o.flow, o.counted),
                (None, Some(f)) => (f, ctx.counted()),
                (None, None) => (ctx_meta.flow, ctx_meta.counted),
            };
            if notification.is_some() && counted && !info.is_retransmission {
                if let Some(x) = self.exchanges.get_mut(flow as usize) {
                    x.notif_sent += 1;
                }
            }
            if counted {
                if let Some(x) = self.exchanges.get_mut(flow as usize) {
                    x.bytes += (ip::HEADER_LEN + crate::net::udp::HEADER_LEN + buf.len()) as u64;
                }
            }
            if counted {
                if let Some(s) = ctx.flow_stats(flow) {
                    // a timer-driven CON resend; repeated ACKs answering
                    // duplicates are not retransmissions
                    if info.is_retransmission && info.ty == MessageType::Con {
                        s.retransmissions += 1;
                    }
                    if info.ty == MessageType::Rst {
                        s.resets += 1;
                    }
                }
            }
            let group = info.to.addr.v4().filter(|a| a.is_multicast());
            let dst = match (group, ctx.node_of(info.to)) {
                (_, Some(d)) => d,
                (Some(_), None) => {
                    // RFC 7252 §8.1: one datagram to All-CoAP-Nodes
                    let app = crate::proto::coap::codec::payload_len(&buf);
                    let meta = PacketMeta {
                        flow,
                        kind: kind(info.ty),
                        counted,
                        created: now,
                        proto_bytes: (buf.len() - app) as u16,
                        app_bytes: app as u16,
                        ..Default::default()
                    };
                    ctx.udp_send_to((node, port), info.to, &buf, meta);
                    continue;
                }
                (None, None) => continue,
            };
            if let Some(m) = ctx.monitors() {
                let f = (flow != NO_FLOW).then_some(flow);
                let h = info.request.map(|h| h.0);
                m.coap_sent(now, node as u32, (dst as u32, info.to.port), &buf, h, f);
            }
            let app = crate::proto::coap::codec::payload_len(&buf);
            let meta = PacketMeta {
                flow,
                kind: kind(info.ty),
                counted,
                created: now,
                proto_bytes: (buf.len() - app) as u16,
                app_bytes: app as u16,
                retx: info.is_retransmission && info.ty == MessageType::Con,
                ..Default::default()
            };
            ctx.udp_send((node, port), (dst, info.to.port), &buf, meta);
        }
        self.buf = buf;
    }

    /// Hand every event of the endpoint of `node` to the plug-in (and
    /// requests to the node's server application); true if any.
    fn events(&mut self, ctx: &mut Ctx<'_, '_>, node: usize) -> bool {
        let mut any = false;
        while let Some(ev) = self.nodes[node].as_mut().and_then(|c| c.ep.poll_event()) {
            any = true;
            self.event(ctx, node, &ev);
            if let Some(c) = self.nodes[node].as_mut() {
                c.ep.recycle(ev);
            }
        }
        any
    }

    /// Our request `h` at `node` ended: answered (`Some(now)`) or failed.
    fn finish_req(
        &mut self,
        node: usize,
        h: RequestHandle,
        answered_at: Option<SimTime>,
    ) -> Option<CoapReq> {
        let r = self.reqs.remove(&(node as u32, h.0))?;
        if r.counted {
            if let Some(x) = self.exchanges.get_mut(r.flow as usize) {
                match answered_at {
                    Some(t) => {
                        x.answered += 1;
                        if r.first_tx != SimTime::MAX {
                            x.rtts.push((t - r.first_tx).0);
                        }
                    }
                    None => x.failed += 1,
                }
            }
        }
        Some(r)
    }

    fn event(&mut self, ctx: &mut Ctx<'_, '_>, node: usize, ev: &Event) {
        // a proxy node's proxy takes what is its own: requests for proxied
        // origins, answers to its upstream requests, its notifications'
        // fates
        if let Some(c) = self.nodes[node].as_mut() {
            if let Some(p) = c.proxy.as_mut() {
                if p.handle_event(ctx.now(), &mut c.ep, ev) {
                    if matches!(ev, Event::RequestReceived { .. }) {
                        ctx.charge(node, 1, 0);
                    }
                    return;
                }
            }
        }
        match ev {
            Event::RequestReceived {
                payload,
                method,
                path,
                ..
            } => {
                // the server answers first (its reply is queued in the
                // endpoint and leaves in this instant), then the delivery
                let mut served = Served::NotARequest;
                if let Some(c) = self.nodes[node].as_mut() {
                    served = c.server.serve_event(ctx.now(), &mut c.ep, ev);
                }
                // the server's service time per request (GET or PUT): its reply
                // leaves when the work is done (world::proc)
                ctx.charge(node, 1, 0);
                // at a pubsub broker a PUT only changes the topic data
                let broker = self.brokers[node];
                match served {
                    _ if broker => {}
                    // the last Block1 block: the whole body is stored
                    Served::BodyComplete => {
                        if let Some(r) = self.nodes[node]
                            .as_ref()
                            .and_then(|c| c.server.resources().get(path))
                        {
                            ctx.deliver(node as u32, &r.value);
                        }
                    }
                    Served::BlockContinue | Served::BlockRefused => {}
                    // a PUT carries a reading; a GET asks for one
                    _ => {
                        if *method != Method::Get {
                            ctx.deliver(node as u32, payload);
                        }
                    }
                }
            }
            Event::ResponseReceived {
                handle,
                code,
                payload,
                observe,
                block,
                from,
                ..
            } => {
                if let Some(d) = self.discoveries.get(&(node as u32, handle.0)).copied() {
                    // one server's answer to a discovery (RFC 7252 §8.2):
                    // that server is reached, `rtt` is its response time
                    let now = ctx.now();
                    if d.counted {
                        let x = &mut self.exchanges[d.flow as usize];
                        x.rtts.push((now - d.sent).0);
                    }
                    if code.is_success() && !payload.is_empty() {
                        if let Some(server) = ctx.node_of(*from) {
                            ctx.deliver_message(d.flow as usize, d.msg, server as u32);
                        }
                    }
                    return;
                }
                if self.block_response(ctx, node, *handle, *code, block, payload) {
                    return;
                }
                self.finish_req(node, *handle, Some(ctx.now()));
                // a polled reading arrives (`coap_mode = "get"`), or the
                // current reading with an Observe registration's answer
                // (none yet: the resource is empty)
                if *code == Code::CONTENT && !payload.is_empty() {
                    ctx.deliver(node as u32, payload);
                }
                let ok = code.is_success() && observe.is_some();
                self.registration_ended(ctx, node, *handle, ok);
            }
            Event::Notification {
                handle,
                code,
                observe,
                payload,
                ..
            } => {
                let Some(&i) = self.obs_of.get(&(node as u32, handle.0)) else {
                    return;
                };
                let now = ctx.now();
                let counted = ctx.counted();
                let o = &mut self.observes[i as usize];
                o.last_heard = now;
                if counted {
                    self.exchanges[o.flow as usize].notif_accepted += 1;
                }
                if code.is_success() && observe.is_some() {
                    if !payload.is_empty() {
                        ctx.deliver(node as u32, payload);
                    }
                } else {
                    // the server ended the observation (RFC 7641 §3.2):
                    // register again after the margin
                    self.obs_of.remove(&(node as u32, handle.0));
                    o.handle = None;
                    let at = now + ctx.scenario().protocols.coap.observe_margin;
                    self.obs_schedule(ctx, i as usize, at);
                }
            }
            Event::StaleNotification { handle } => {
                if let Some(&i) = self.obs_of.get(&(node as u32, handle.0)) {
                    let f = self.observes[i as usize].flow as usize;
                    if ctx.counted() {
                        self.exchanges[f].notif_stale += 1;
                    }
                }
            }
            Event::NoResponse { handle } => {
                self.finish_req(node, *handle, None);
                self.registration_ended(ctx, node, *handle, false);
                self.block_failed(node, *handle);
            }
            Event::GaveUp { handle } => {
                let now = ctx.now();
                if let Some(m) = ctx.monitors() {
                    m.coap_gave_up(now, node as u32, handle.0);
                }
                if let Some(r) = self.finish_req(node, *handle, None) {
                    if r.counted {
                        if let Some(s) = ctx.flow_stats(r.flow) {
                            s.give_ups += 1;
                        }
                    }
                }
                self.registration_ended(ctx, node, *handle, false);
                self.block_failed(node, *handle);
            }
            Event::ResetReceived { handle } => {
                self.finish_req(node, *handle, None);
                self.registration_ended(ctx, node, *handle, false);
                self.block_failed(node, *handle);
            }
            // the fate of the server's notifications (RFC 7641 §4.5)
            Event::ResponseAcked { .. }
            | Event::ResponseReset { .. }
            | Event::ResponseGaveUp { .. }
            | Event::ResponseExpired { .. } => {
                let now = ctx.now();
                if let Some(c) = self.nodes[node].as_mut() {
                    c.server.handle_event(now, &mut c.ep, ev);
                }
            }
            // the server application answers at once: no request expires
            Event::RequestExpired { .. } => {}
            // a discovery's collection window passed: answered if any
            // server answered, else failed
            Event::MulticastEnded { handle, responses } => {
                if let Some(d) = self.discoveries.remove(&(node as u32, handle.0)) {
                    if d.counted {
                        let x = &mut self.exchanges[d.flow as usize];
                        if *responses > 0 {
                            x.answered += 1;
                        } else {
                            x.failed += 1;
                        }
                    }
                }
            }
        }
    }
}

/// The library counters of the run's proxies, summed (in the order of
/// [`ProxyStats::NAMES`]).
const PROXY_COUNTERS: [&str; 11] = [
    "proxy_cache_hits",
    "proxy_cache_misses",
    "proxy_coalesced",
    "proxy_revalidations",
    "proxy_revalidated",
    "proxy_upstream_requests",
    "proxy_upstream_registrations",
    "proxy_upstream_deregistrations",
    "proxy_notifications_in",
    "proxy_errors",
    "proxy_evictions",
];

/// CON for `confirmed`/`con`, NON otherwise.
fn confirmable(r: Reliability) -> bool {
    matches!(r, Reliability::Confirmed | Reliability::Con)
}

impl Coap {
    /// Poll `i` is due: GET the publisher's resource from the receiver,
    /// and queue the next poll.
    fn poll(&mut self, ctx: &mut Ctx<'_, '_>, i: usize) {
        let now = ctx.now();
        let Some(p) = self.polls.get(i) else {
            return;
        };
        let (flow, receiver, publisher) = (p.flow, p.receiver as usize, p.to as usize);
        let next = now + p.interval;
        if next < p.end {
            ctx.schedule(next, POLL_KEY | i as u32, 0);
        }
        // a crashed receiver does not poll
        if !ctx.node_up(receiver) {
            return;
        }
        let mut req = std::mem::replace(&mut self.req, Request::new(Method::Get, String::new()));
        req.method = Method::Get;
        req.confirmable = p.confirmable;
        req.content_format = None;
        req.path.clear();
        req.path.push_str(&p.path);
        req.proxy_uri.clone_from(&p.proxy_uri);
        req.payload.clear();
        let counted = ctx.counted();
        let to = addr(ctx, publisher);
        if let Some(szx) = self.blocks.as_ref().map(|b| b.szx) {
            // block-wise: the reading may come in Block2 slices
            self.node(ctx, receiver);
            let t = BlockTransfer::download(to, req.clone(), Some(szx));
            let r = CoapReq {
                flow,
                counted,
                first_tx: SimTime::MAX,
            };
            self.block_start(receiver, t, r);
            if counted {
                self.exchanges[flow as usize].started += 1;
            }
        } else if let Ok(h) = self.node(ctx, receiver).ep.request(to, &req) {
            self.track(receiver, h, flow, counted);
        }
        req.proxy_uri = None;
        self.req = req;
        let meta = PacketMeta {
            flow,
            kind: "coap",
            counted,
            created: now,
            ..Default::default()
        };
        self.drive(ctx, receiver, meta);
    }
}

impl Coap {
    /// (Re)arm observation `i`'s timer for `at`.
    fn obs_schedule(&mut self, ctx: &mut Ctx<'_, '_>, i: usize, at: SimTime) {
        let o = &mut self.observes[i];
        if at >= o.end {
            return;
        }
        o.gen = o.gen.wrapping_add(1);
        ctx.schedule(at, OBS_KEY | i as u32, o.gen);
    }

    /// How long a receiver waits for a notification before it re-registers
    /// (RFC 7641 §3.3.1: Max-Age plus a margin).
    fn obs_patience(ctx: &Ctx<'_, '_>) -> SimDuration {
        let c = &ctx.scenario().protocols.coap;
        SimDuration::from_secs(u64::from(c.observe_max_age)) + c.observe_margin
    }

    /// Observation `i`'s timer: register (first time, after a failure, or
    /// when nothing was heard for Max-Age + margin), else wait on.
    fn obs_timer(&mut self, ctx: &mut Ctx<'_, '_>, i: usize, gen: u32) {
        let now = ctx.now();
        let Some(o) = self.observes.get(i) else {
            return;
        };
        if o.gen != gen || o.registering || now >= o.end {
            return;
        }
        let receiver = o.receiver as usize;
        if !ctx.node_up(receiver) {
            return; // node_restart registers again
        }
        let patience = Self::obs_patience(ctx);
        if o.handle.is_some() && now < o.last_heard + patience {
            let at = o.last_heard + patience;
            self.obs_schedule(ctx, i, at);
            return;
        }
        self.obs_register(ctx, i);
    }

    /// Send observation `i`'s registration (GET with Observe 0, CON or NON
    /// as the flow's reliability): a re-registration with the same token
    /// while the receiver's endpoint still has the observation.
    fn obs_register(&mut self, ctx: &mut Ctx<'_, '_>, i: usize) {
        let now = ctx.now();
        let o = &self.observes[i];
        let (flow, receiver, publisher) = (o.flow, o.receiver as usize, o.to as usize);
        let mut req = std::mem::replace(&mut self.req, Request::new(Method::Get, String::new()));
        req.method = Method::Get;
        req.confirmable = o.confirmable;
        req.content_format = None;
        req.path.clear();
        req.path.push_str(&o.path);
        req.proxy_uri.clone_from(&o.proxy_uri);
        req.payload.clear();
        req.observe = Some(0);
        let old = o.handle;
        let again = old.is_some() || o.last_heard != SimTime::ZERO;
        let counted = ctx.counted();
        let to = addr(ctx, publisher);
        let ep = &mut self.node(ctx, receiver).ep;
        let sent = match old.filter(|h| ep.is_observing(*h)) {
            Some(h) => ep.reregister(h, &req),
            None => ep.request(to, &req),
        };
        let alive = old.is_some_and(|h| ep.is_observing(h));
        req.observe = None;
        req.proxy_uri = None;
        self.req = req;
        if again && counted {
            self.exchanges[flow as usize].reregistrations += 1;
        }
        let Ok(h) = sent else {
            return;
        };
        let o = &mut self.observes[i];
        o.registering = true;
        if !alive {
            if let Some(old) = o.handle.take() {
                self.obs_of.remove(&(receiver as u32, old.0));
            }
            o.handle = Some(h);
        }
        self.obs_of.insert((receiver as u32, h.0), i as u32);
        self.track(receiver, h, flow, counted);
        let meta = PacketMeta {
            flow,
            kind: "coap",
            counted,
            created: now,
            ..Default::default()
        };
        self.drive(ctx, receiver, meta);
    }

    /// Request `h` of `node` ended; if it was an Observe registration,
    /// the observation is established (`ok`) or the receiver retries after
    /// the margin.
    fn registration_ended(
        &mut self,
        ctx: &mut Ctx<'_, '_>,
        node: usize,
        h: RequestHandle,
        ok: bool,
    ) {
        let key = (node as u32, h.0);
        let Some(&i) = self.obs_of.get(&key) else {
            return;
        };
        let i = i as usize;
        let now = ctx.now();
        let o = &mut self.observes[i];
        if o.handle != Some(h) {
            self.obs_of.remove(&key);
        }
        o.registering = false;
        let at = if ok {
            o.last_heard = now;
            now + Self::obs_patience(ctx)
        } else {
            let alive = o.handle.is_some_and(|h| {
                self.nodes[node]
                    .as_ref()
                    .is_some_and(|c| c.ep.is_observing(h))
            });
            if !alive {
                if let Some(old) = o.handle.take() {
                    self.obs_of.remove(&(node as u32, old.0));
                }
            }
            now + ctx.scenario().protocols.coap.observe_margin
        };
        self.obs_schedule(ctx, i, at);
    }

    /// The (empty) observed resources held at `node` (`observe`: its own
    /// readings; `pubsub`: a broker's topic data), so a registration finds
    /// them before the first reading.
    fn seed_resources(&mut self, ctx: &mut Ctx<'_, '_>, node: usize) {
        let mine: Vec<(String, u32)> = self
            .seeds
            .iter()
            .filter(|s| s.0 as usize == node)
            .map(|s| (s.1.clone(), s.2))
            .collect();
        for (path, flow) in mine {
            let c = self.node(ctx, node);
            if c.server.resources().get(&path).is_none() {
                c.server
                    .resources_mut()
                    .insert(path.clone(), Some(CONTENT_FORMAT), Vec::new());
            }
            if !c.paths.iter().any(|(p, _)| **p == *path) {
                c.paths.push((path.into(), flow));
            }
        }
    }
}

impl Coap {
    /// A `discover` flow's message: one NON GET of `/.well-known/core`
    /// with the flow's query to All-CoAP-Nodes (RFC 7252 §8.1, RFC 6690
    /// §4), collecting responses for Leisure + the NON response timeout.
    fn discover(&mut self, ctx: &mut Ctx<'_, '_>, m: &Message<'_>) {
        let node = m.node as usize;
        if !ctx.node_up(node) {
            return;
        }
        let Some((_, msg)) = crate::app::workload::parse_payload(m.payload) else {
            return;
        };
        let now = ctx.now();
        let sc = ctx.scenario();
        let flow = &sc.flows[m.flow];
        let mut req = Request::get(crate::proto::coap::server::WELL_KNOWN_CORE).confirmable(false);
        req.query.clone_from(&flow.query);
        let window =
            sc.protocols.coap.leisure() + Config::from(&sc.protocols.coap).non_response_timeout;
        let group = SockAddr::new(Addr::from(ALL_COAP_NODES), sc.protocols.coap.port);
        let c = self.node(ctx, node);
        let Ok(h) = c.ep.request_multicast(now, group, &req, window) else {
            return;
        };
        self.discoveries.insert(
            (node as u32, h.0),
            Discovery {
                flow: m.flow as u32,
                msg,
                counted: m.counted,
                sent: now,
            },
        );
        if m.counted {
            self.exchanges[m.flow].started += 1;
        }
        let meta = PacketMeta {
            flow: m.flow as u32,
            kind: "coap",
            counted: m.counted,
            created: now,
            ..Default::default()
        };
        self.drive(ctx, node, meta);
    }

    /// The link attributes (RFC 6690 §3) of every resource a CoAP flow
    /// makes a server hold, by server node: `rt` = the last segment of the
    /// resource's path (its topic), `if` = `core.s` (a sensor's reading,
    /// read with GET: `get`/`observe`, the latter `obs` too), `core.p` (a
    /// value written by PUT: `put`), or `rt = "core.ps.data"` with
    /// `obs` for `pubsub` topic data (draft-ietf-core-coap-pubsub).
    fn link_attrs(&mut self, ctx: &Ctx<'_, '_>) {
        let sc = ctx.scenario();
        let mut receivers = Vec::new();
        for p in 0..ctx.publishers() {
            let pb = ctx.publisher(p);
            let f = &sc.flows[pb.flow as usize];
            if f.protocol != Protocol::Coap || f.coap_mode == CoapMode::Discover {
                continue;
            }
            let path = pb.topic.to_string();
            let rt = path.rsplit('/').next().unwrap_or(&path).to_owned();
            let sensor = |obs| LinkAttrs {
                rt: Some(rt.clone()),
                iface: Some("core.s".into()),
                obs,
                sz: None,
            };
            let mut add = |node: u32, path: String, attrs: LinkAttrs| {
                let v = self.links.entry(node).or_default();
                if !v.iter().any(|(p, _)| *p == path) {
                    v.push((path, attrs));
                }
            };
            match f.coap_mode {
                CoapMode::Get => add(pb.node, path, sensor(false)),
                CoapMode::Observe => add(pb.node, path, sensor(true)),
                CoapMode::Pubsub => {
                    let attrs = LinkAttrs {
                        rt: Some("core.ps.data".into()),
                        iface: None,
                        obs: true,
                        sz: None,
                    };
                    add(
                        f.broker.unwrap_or_default() as u32,
                        pubsub_path(&path),
                        attrs,
                    );
                }
                CoapMode::Put => {
                    ctx.intended(p, &mut receivers);
                    for &r in &receivers {
                        let attrs = LinkAttrs {
                            rt: Some(rt.clone()),
                            iface: Some("core.p".into()),
                            obs: false,
                            sz: None,
                        };
                        add(r, path.clone(), attrs);
                    }
                }
                CoapMode::Discover => {}
            }
        }
    }
}

/// The topic-data resource of `topic` on a `pubsub` broker
/// (draft-ietf-core-coap-pubsub: topic data under the broker's `/ps`).
fn pubsub_path(topic: &str) -> String {
    format!("ps/data/{topic}")
}

impl Plugin for Coap {
    fn setup(&mut self, ctx: &mut Ctx<'_, '_>) {
        let sc = ctx.scenario();
        let port = sc.protocols.coap.port;
        for f in sc.flows.iter().filter(|f| f.protocol == Protocol::Coap) {
            let proxy = f.proxy.map(|p| p.0);
            for &n in f
                .publishers
                .iter()
                .chain(&f.receivers)
                .chain(&f.broker)
                .chain(&proxy)
            {
                let _ = ctx.udp_bind_with(n, port, sc.protocols.coap.security);
            }
        }
    }

    /// The first poll of every (receiver, publisher) of `coap_mode = "get"`
    /// flows.
    fn prime(&mut self, ctx: &mut Ctx<'_, '_>) {
        // only a run with multicast discovery lists links with attributes
        if self.leisure.is_some() {
            self.link_attrs(ctx);
        }
        let sc = ctx.scenario();
        let mut receivers = Vec::new();
        for p in 0..ctx.publishers() {
            let pb = ctx.publisher(p);
            let (fi, node, path) = (pb.flow, pb.node, pb.topic.to_string());
            let f = &sc.flows[fi as usize];
            let pubsub = f.coap_mode == CoapMode::Pubsub;
            if f.protocol == Protocol::Coap && (f.coap_mode == CoapMode::Observe || pubsub) {
                // observe: the publisher's own resource; pubsub: its topic
                // data on the broker (one registration per topic there)
                let (server, path) = match (pubsub, f.broker) {
                    (true, Some(b)) => (b as u32, pubsub_path(&path)),
                    _ => (node, path),
                };
                if pubsub {
                    self.brokers[server as usize] = true;
                }
                if !self.seeds.iter().any(|s| s.0 == server && s.1 == path) {
                    self.seeds.push((server, path.clone(), fi));
                }
                ctx.intended(p, &mut receivers);
                let (to, via_path, proxy_uri) = target(sc, f, server, &path);
                for &r in &receivers {
                    if self.observes.iter().any(|o| {
                        o.receiver == r && o.publisher == server && o.to == to && o.path == via_path
                    }) {
                        continue;
                    }
                    let stream = format!(
                        "coap/observe/{}/{}/{}",
                        f.name,
                        ctx.node_name(r as usize),
                        ctx.node_name(node as usize)
                    );
                    // registrations spread over [0, min(start, 1 s)): before
                    // the first reading when the flow starts late enough
                    let spread = f.start.0.min(SimDuration::from_secs(1).0).max(1);
                    let offset = SimDuration(SimRng::stream(sc.seed, &stream).below(spread));
                    let end = SimTime::ZERO + sc.duration;
                    self.observes.push(Obs {
                        flow: fi,
                        receiver: r,
                        publisher: server,
                        to,
                        proxy_uri: proxy_uri.clone(),
                        confirmable: confirmable(f.reliability),
                        path: via_path.clone(),
                        handle: None,
                        registering: false,
                        last_heard: SimTime::ZERO,
                        gen: 0,
                        end,
                    });
                    let i = self.observes.len() - 1;
                    self.obs_schedule(ctx, i, SimTime::ZERO + offset);
                }
                if ctx.node_up(server as usize) {
                    self.seed_resources(ctx, server as usize);
                }
                continue;
            }
            let Some(interval) = f.poll_interval else {
                continue;
            };
            if f.protocol != Protocol::Coap || f.coap_mode != CoapMode::Get {
                continue;
            }
            ctx.intended(p, &mut receivers);
            let (to, via_path, proxy_uri) = target(sc, f, node, &path);
            for &r in &receivers {
                let stream = format!(
                    "coap/get/{}/{}/{}",
                    f.name,
                    ctx.node_name(r as usize),
                    ctx.node_name(node as usize)
                );
                let offset = SimDuration(SimRng::stream(sc.seed, &stream).below(interval.0.max(1)));
                let first = SimTime::ZERO + f.start + offset;
                let end = SimTime::ZERO + sc.duration + interval;
                if first >= end {
                    continue;
                }
                let key = POLL_KEY | self.polls.len() as u32;
                self.polls.push(Poll {
                    flow: fi,
                    receiver: r,
                    to,
                    proxy_uri: proxy_uri.clone(),
                    confirmable: confirmable(f.reliability),
                    path: via_path.clone(),
                    interval,
                    end,
                });
                ctx.schedule(first, key, 0);
            }
        }
    }

    /// One request per intended receiver (`coap_mode = "put"`), or the
    /// reading stored at the publisher for receivers to poll (`"get"`).
    fn publish(&mut self, ctx: &mut Ctx<'_, '_>, m: Message<'_>) {
        let flow = &ctx.scenario().flows[m.flow];
        let confirmable = confirmable(flow.reliability);
        let node = m.node as usize;
        if flow.coap_mode == CoapMode::Discover {
            self.discover(ctx, &m);
            return;
        }
        if flow.coap_mode == CoapMode::Get {
            if ctx.node_up(node) {
                let c = self.node(ctx, node);
                c.server
                    .serve(Method::Put, m.topic, Some(CONTENT_FORMAT), m.payload);
            }
            return;
        }
        if flow.coap_mode == CoapMode::Observe {
            // the reading changes the resource; its observers are notified
            if !ctx.node_up(node) {
                return;
            }
            let now = ctx.now();
            let c = self.node(ctx, node);
            if !c.paths.iter().any(|(p, _)| **p == *m.topic) {
                c.paths.push((m.topic.into(), m.flow as u32));
            }
            c.server
                .update(now, &mut c.ep, m.topic, Some(CONTENT_FORMAT), m.payload);
            let meta = PacketMeta {
                flow: m.flow as u32,
                kind: "coap",
                counted: m.counted,
                created: now,
                ..Default::default()
            };
            self.drive(ctx, node, meta);
            return;
        }
        // pubsub: one PUT to the broker's topic data, which notifies the
        // receivers observing it
        let broker = [flow.broker.unwrap_or_default() as u32];
        let (targets, ps) = if flow.coap_mode == CoapMode::Pubsub {
            (&broker[..], true)
        } else {
            (m.receivers, false)
        };
        // one reusable request: path and payload copied into its buffers
        let mut req = std::mem::replace(&mut self.req, Request::new(Method::Put, String::new()));
        req.method = Method::Put;
        req.confirmable = confirmable;
        req.content_format = Some(CONTENT_FORMAT);
        req.path.clear();
        if ps {
            req.path.push_str("ps/data/");
        }
        req.path.push_str(m.topic);
        req.payload.clear();
        req.payload.extend_from_slice(m.payload);
        let now = ctx.now();
        let blockwise = self
            .blocks
            .as_ref()
            .is_some_and(|b| b.wants(req.payload.len()));
        for &r in targets {
            let to = addr(ctx, r as usize);
            let cr = CoapReq {
                flow: m.flow as u32,
                counted: m.counted,
                first_tx: SimTime::MAX,
            };
            let started = if blockwise {
                // RFC 7959: the body goes as Block1 requests
                self.node(ctx, node);
                let szx = self.blocks.as_ref().map_or(6, |b| b.szx);
                let t = BlockTransfer::upload(to, req.clone(), szx);
                self.block_start(node, t, cr);
                true
            } else {
                match self.node(ctx, node).ep.request(to, &req) {
                    Ok(h) => {
                        self.reqs.insert((node as u32, h.0), cr);
                        true
                    }
                    Err(_) => false,
                }
            };
            if started && m.counted {
                self.exchanges[m.flow].started += 1;
            }
            let meta = PacketMeta {
                flow: m.flow as u32,
                kind: "coap",
                counted: m.counted,
                created: now,
                ..Default::default()
            };
            self.drive(ctx, node, meta);
        }
        self.req = req;
    }

    fn on_timer(&mut self, ctx: &mut Ctx<'_, '_>, key: u32, gen: u32) {
        if key & POLL_KEY != 0 {
            self.poll(ctx, (key & !POLL_KEY) as usize);
            return;
        }
        if key & OBS_KEY != 0 {
            self.obs_timer(ctx, (key & !OBS_KEY) as usize, gen);
            return;
        }
        let node = key as usize;
        let Some(c) = self.nodes.get_mut(node).and_then(|c| c.as_mut()) else {
            return;
        };
        let now = ctx.now();
        if !c.wake.fire(gen, now) {
            return; // superseded by an earlier deadline, or stale
        }
        if c.ep.poll_timeout().is_some_and(|t| t <= now) {
            c.ep.handle_timeout(now);
        }
        // answers to a multicast request leave after their leisure delay:
        // they belong to its flow
        let mut owner = (NO_FLOW, ctx.counted());
        if c.server.poll_timeout().is_some_and(|t| t <= now) {
            if c.server.multicast_due(now) {
                owner = c.mcast_meta.unwrap_or(owner);
            }
            c.server.handle_timeout(now, &mut c.ep);
        }
        if let Some(p) = c.proxy.as_mut() {
            if p.poll_timeout().is_some_and(|t| t <= now) {
                p.handle_timeout(now, &mut c.ep);
            }
        }
        let meta = PacketMeta {
            flow: owner.0,
            kind: "coap",
            counted: owner.1,
            created: now,
            ..Default::default()
        };
        self.drive(ctx, node, meta);
    }

    /// A crash loses the endpoint's volatile state (exchanges, dedup cache,
    /// the readings its server held).
    fn node_crash(&mut self, ctx: &mut Ctx<'_, '_>, node: usize) {
        if let Some(m) = ctx.monitors() {
            m.coap_node_reset(node as u32);
        }
        self.nodes[node] = None;
        self.incarnations[node] += 1;
        let n = node as u32;
        self.reqs.retain(|k, _| k.0 != n);
        self.discoveries.retain(|k, _| k.0 != n);
        if let Some(b) = self.blocks.as_mut() {
            b.forget_node(n);
        }
        // its observations are gone with its endpoint
        self.obs_of.retain(|k, _| k.0 != n);
        for o in self.observes.iter_mut().filter(|o| o.receiver == n) {
            o.handle = None;
            o.registering = false;
        }
    }

    /// A restarted receiver registers again at once; a restarted publisher
    /// has its (empty) resources again.
    fn node_restart(&mut self, ctx: &mut Ctx<'_, '_>, node: usize) {
        let now = ctx.now();
        for i in 0..self.observes.len() {
            if self.observes[i].receiver as usize == node {
                self.obs_schedule(ctx, i, now);
            }
        }
        if self.seeds.iter().any(|s| s.0 as usize == node) {
            self.seed_resources(ctx, node);
        }
    }

    fn datagram_app(&mut self) -> Option<&mut dyn DatagramApp> {
        Some(self)
    }

    /// Endpoint counters summed over the endpoints alive at the end (the
    /// `udp_echo` benchmark's round-trip ratio).
    fn finish(&mut self, end: &RunEnd<'_>) -> PluginOutput {
        let mut s = crate::proto::coap::Stats::default();
        let (mut outstanding, mut pending, mut dedup) = (0, 0, 0);
        for n in self.nodes.iter().flatten() {
            s.add(&n.ep.stats());
            outstanding += n.ep.outstanding_requests() as u64;
            pending += n.ep.pending_requests() as u64;
            dedup += n.ep.dedup_entries() as u64;
        }
        let columns = self
            .exchanges
            .iter_mut()
            .zip(&end.scenario.flows)
            .map(|(x, f)| {
                if f.protocol != Protocol::Coap {
                    return vec![Value::Empty; COAP_COLUMNS.len()];
                }
                x.rtts.sort_unstable();
                let rtt = |q: f64| {
                    crate::metrics::stats::percentile_nearest_rank(&x.rtts, q)
                        .map_or(Value::Empty, |ns| Value::Float(ns as f64 / 1e6))
                };
                let ended = x.answered + x.failed;
                vec![
                    rtt(50.0),
                    rtt(99.0),
                    if ended == 0 {
                        Value::Empty
                    } else {
                        Value::Float(x.answered as f64 / ended as f64)
                    },
                    if x.started == 0 {
                        Value::Empty
                    } else {
                        Value::Float(x.bytes as f64 / x.started as f64)
                    },
                    Value::Int(x.notif_sent),
                    Value::Int(x.notif_accepted),
                    Value::Int(x.notif_stale),
                    Value::Int(x.reregistrations),
                ]
            })
            .collect();
        let mut counters = vec![
            ("requests_started", s.requests_started),
            ("responses_received", s.responses_received),
            ("requests_outstanding", outstanding),
            ("requests_unanswered", pending),
            ("dedup_entries", dedup),
            ("requests_tracked", self.reqs.len() as u64),
            ("polls", self.polls.len() as u64),
            ("observations", self.observes.len() as u64),
        ];
        // coap.csv: per proxy node, its counters (runs with a proxy only,
        // so other runs keep their files)
        let mut rows = Vec::new();
        if !self.proxies.is_empty() {
            let mut totals = [0u64; 11];
            for (n, node) in self.nodes.iter().enumerate() {
                let Some(p) = node.as_ref().and_then(|c| c.proxy.as_ref()) else {
                    continue;
                };
                for (i, v) in p.stats().values().into_iter().enumerate() {
                    totals[i] += v;
                    rows.push(super::mqtt::MqttRow {
                        scope: "proxy",
                        name: end.scenario.nodes[n].name.clone(),
                        metric: ProxyStats::NAMES[i].to_string(),
                        value: v.to_string(),
                    });
                }
            }
            counters.extend(PROXY_COUNTERS.into_iter().zip(totals));
        }
        let tables = if rows.is_empty() {
            Vec::new()
        } else {
            let mut csv = Vec::new();
            let _ = super::mqtt::write_mqtt_rows(&mut csv, end.run_id, &rows);
            vec![super::Table {
                file: "coap.csv",
                csv: String::from_utf8(csv).unwrap_or_default(),
            }]
        };
        if let Some(b) = &self.blocks {
            counters.push(("block_transfers_done", b.done));
            counters.push(("block_transfers_failed", b.failed));
        }
        PluginOutput {
            columns,
            tables,
            counters,
        }
    }
}

impl DatagramApp for Coap {
    fn on_datagram(&mut self, ctx: &mut Ctx<'_, '_>, rx: Received<'_>) {
        let node = rx.node as usize;
        if ctx.monitors().is_some() {
            if let Some(from) = ctx.node_of(rx.from) {
                if let Some(m) = ctx.monitors() {
                    m.coap_received(rx.node, (from as u32, rx.from.port), rx.data);
                }
            }
        }
        let c = self.node(ctx, node);
        if rx.group {
            c.mcast_meta = Some((rx.meta.flow, rx.meta.counted));
        }
        let ep = &mut c.ep;
        let dups = ep.message_layer().stats().duplicates_suppressed;
        let input = Datagram {
            from: rx.from,
            data: rx.data,
        };
        if rx.group {
            // addressed to All-CoAP-Nodes (RFC 7252 §8)
            ep.handle_multicast_input(ctx.now(), input);
        } else {
            ep.handle_input(ctx.now(), input);
        }
        let new_dups = ep.message_layer().stats().duplicates_suppressed - dups;
        if new_dups > 0 && rx.meta.counted {
            if let Some(s) = ctx.flow_stats(rx.meta.flow) {
                s.duplicates_suppressed += new_dups;
            }
        }
        self.drive(ctx, node, rx.meta);
    }
}
