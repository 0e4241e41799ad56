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
//! Driving: an input or a publish drives the node's endpoint at once —
//! transmits, then events (the server answers a `RequestReceived` right
//! there), then transmits again until nothing moves, then the timer — so a
//! piggybacked ACK leaves in the same instant as the request that caused
//! it; the endpoint's timer is one plug-in event per node, deduplicated by a
//! [`Wakeup`].

use super::{Ctx, Message, Plugin, PluginOutput, RunEnd};
use crate::net::addr::{Addr, SockAddr};
use crate::net::ip;
use crate::net::packet::{PacketMeta, NO_FLOW};
use crate::proto::coap::{
    Config, Endpoint, Event, MessageType, Method, Request, RequestHandle, ResourceServer,
};
use crate::proto::Datagram;
use crate::scenario::model::{Protocol, Reliability, Scenario};
use crate::sim::{SimRng, SimTime, Wakeup};
use crate::world::host::{DatagramApp, Received};
use std::collections::BTreeMap;

/// What the plug-in remembers about an outstanding request.
#[derive(Debug, Clone, Copy)]
struct CoapReq {
    flow: u32,
    counted: bool,
}

/// Per-node CoAP state (allocated only for nodes in CoAP flows).
#[derive(Debug)]
struct CoapNode {
    ep: Endpoint,
    /// The application answering the endpoint's requests.
    server: ResourceServer,
    /// Its queued timer event.
    wake: Wakeup,
}

struct Coap {
    /// Endpoint per node (None for nodes in no CoAP flow, or crashed).
    nodes: Vec<Option<Box<CoapNode>>>,
    /// Outstanding requests: (node, handle) → owner.
    reqs: BTreeMap<(u32, u64), CoapReq>,
    /// Scratch request reused for every publish.
    req: Request,
    buf: Vec<u8>,
}

pub(super) fn new(sc: &Scenario) -> Box<dyn Plugin> {
    Box::new(Coap {
        nodes: (0..sc.nodes.len()).map(|_| None).collect(),
        reqs: BTreeMap::new(),
        req: Request::new(Method::Put, String::new()),
        buf: Vec::with_capacity(2048),
    })
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
    SockAddr::new(
        Addr::from(ip::node_addr(node)),
        ctx.scenario().protocols.coap.port,
    )
}

/// The endpoint's and the server application's next deadline.
fn next_timeout(c: &CoapNode) -> Option<SimTime> {
    match (c.ep.poll_timeout(), c.server.poll_timeout()) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

impl Coap {
    fn node(&mut self, ctx: &Ctx<'_, '_>, node: usize) -> &mut CoapNode {
        self.nodes[node].get_or_insert_with(|| {
            let sc = ctx.scenario();
            let mut rng = SimRng::stream(sc.seed, &format!("coap/{}", ctx.node_name(node)));
            // RFC 7252 §4.4: the initial message ID should be randomised
            let first_mid = rng.below(1 << 16) as u16;
            Box::new(CoapNode {
                ep: Endpoint::new(Config::from(&sc.protocols.coap), rng, first_mid),
                server: ResourceServer::new(),
                wake: Wakeup::default(),
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
            let owner = info
                .request
                .and_then(|h| self.reqs.get(&(node as u32, h.0)).copied());
            let (flow, counted) = match owner {
                Some(o) => (o.flow, o.counted),
                None => (ctx_meta.flow, ctx_meta.counted),
            };
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
            let Some(dst) = info.to.addr.v4().and_then(ip::addr_node) else {
                continue;
            };
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

    fn finish_req(&mut self, node: usize, h: RequestHandle) -> Option<CoapReq> {
        self.reqs.remove(&(node as u32, h.0))
    }

    fn event(&mut self, ctx: &mut Ctx<'_, '_>, node: usize, ev: &Event) {
        match ev {
            Event::RequestReceived { payload, .. } => {
                // the server answers first (its reply is queued in the
                // endpoint and leaves in this instant), then the delivery
                if let Some(c) = self.nodes[node].as_mut() {
                    c.server.handle_event(ctx.now(), &mut c.ep, ev);
                }
                // the server's service time per request: its reply leaves
                // when the work is done (world::proc)
                ctx.charge(node, 1, 0);
                ctx.deliver(node as u32, payload);
            }
            Event::ResponseReceived { handle, .. } | Event::NoResponse { handle } => {
                self.finish_req(node, *handle);
            }
            Event::GaveUp { handle } => {
                if let Some(r) = self.finish_req(node, *handle) {
                    if r.counted {
                        if let Some(s) = ctx.flow_stats(r.flow) {
                            s.give_ups += 1;
                        }
                    }
                }
            }
            Event::ResetReceived { handle } => {
                self.finish_req(node, *handle);
            }
            // the server application's own bookkeeping (it answers at once,
            // so no request expires; responses are piggybacked or NON)
            Event::RequestExpired { .. }
            | Event::ResponseAcked { .. }
            | Event::ResponseReset { .. }
            | Event::ResponseGaveUp { .. } => {}
        }
    }
}

impl Plugin for Coap {
    fn setup(&mut self, ctx: &mut Ctx<'_, '_>) {
        let sc = ctx.scenario();
        let port = sc.protocols.coap.port;
        for f in sc.flows.iter().filter(|f| f.protocol == Protocol::Coap) {
            for &n in f.publishers.iter().chain(&f.receivers) {
                let _ = ctx.udp_bind(n, port);
            }
        }
    }

    /// One request per intended receiver.
    fn publish(&mut self, ctx: &mut Ctx<'_, '_>, m: Message<'_>) {
        let flow = &ctx.scenario().flows[m.flow];
        let confirmable = matches!(flow.reliability, Reliability::Confirmed | Reliability::Con);
        let node = m.node as usize;
        // one reusable request: path and payload copied into its buffers
        let mut req = std::mem::replace(&mut self.req, Request::new(Method::Put, String::new()));
        req.method = Method::Put;
        req.confirmable = confirmable;
        req.content_format = Some(42); // application/octet-stream
        req.path.clear();
        req.path.push_str(m.topic);
        req.payload.clear();
        req.payload.extend_from_slice(m.payload);
        let now = ctx.now();
        for &r in m.receivers {
            let to = addr(ctx, r as usize);
            let h = self.node(ctx, node).ep.request(to, &req);
            if let Ok(h) = h {
                self.reqs.insert(
                    (node as u32, h.0),
                    CoapReq {
                        flow: m.flow as u32,
                        counted: m.counted,
                    },
                );
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

    fn on_timer(&mut self, ctx: &mut Ctx<'_, '_>, node: u32, gen: u32) {
        let node = node as usize;
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
        if c.server.poll_timeout().is_some_and(|t| t <= now) {
            c.server.handle_timeout(now, &mut c.ep);
        }
        let meta = PacketMeta {
            flow: NO_FLOW,
            kind: "coap",
            counted: ctx.counted(),
            created: now,
            ..Default::default()
        };
        self.drive(ctx, node, meta);
    }

    /// A crash loses the endpoint's volatile state (exchanges, dedup cache).
    fn node_crash(&mut self, _ctx: &mut Ctx<'_, '_>, node: usize) {
        self.nodes[node] = None;
        let n = node as u32;
        self.reqs.retain(|k, _| k.0 != n);
    }

    fn datagram_app(&mut self) -> Option<&mut dyn DatagramApp> {
        Some(self)
    }

    /// Endpoint counters summed over the endpoints alive at the end (the
    /// `udp_echo` benchmark's round-trip ratio).
    fn finish(&mut self, _end: &RunEnd<'_>) -> PluginOutput {
        let mut s = crate::proto::coap::Stats::default();
        let (mut outstanding, mut pending, mut dedup) = (0, 0, 0);
        for n in self.nodes.iter().flatten() {
            s.add(&n.ep.stats());
            outstanding += n.ep.outstanding_requests() as u64;
            pending += n.ep.pending_requests() as u64;
            dedup += n.ep.dedup_entries() as u64;
        }
        PluginOutput {
            counters: vec![
                ("requests_started", s.requests_started),
                ("responses_received", s.responses_received),
                ("requests_outstanding", outstanding),
                ("requests_unanswered", pending),
                ("dedup_entries", dedup),
                ("requests_tracked", self.reqs.len() as u64),
            ],
            ..Default::default()
        }
    }
}

impl DatagramApp for Coap {
    fn on_datagram(&mut self, ctx: &mut Ctx<'_, '_>, rx: Received<'_>) {
        let node = rx.node as usize;
        let ep = &mut self.node(ctx, node).ep;
        let dups = ep.message_layer().stats().duplicates_suppressed;
        ep.handle_input(
            ctx.now(),
            Datagram {
                from: rx.from,
                data: rx.data,
            },
        );
        let new_dups = ep.message_layer().stats().duplicates_suppressed - dups;
        if new_dups > 0 && rx.meta.counted {
            if let Some(s) = ctx.flow_stats(rx.meta.flow) {
                s.duplicates_suppressed += new_dups;
            }
        }
        self.drive(ctx, node, rx.meta);
    }
}
