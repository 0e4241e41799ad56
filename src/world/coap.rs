//! CoAP flows over the simulated network (RFC 7252): each node that takes
//! part in a CoAP flow runs one `proto::coap::Endpoint` on UDP port
//! `[protocols.coap] port` (5683), acting as client and/or server.
//!
//! Flow mapping (docs/protocols.md): every message is a PUT of the payload to
//! `coap://<receiver>/<topic>` — CON for `confirmed`/`con`, NON for
//! `best_effort`/`non` — one request per intended receiver. The server stores
//! the value and answers (2.04 Changed, piggybacked on the ACK for CON); the
//! message counts as delivered when the receiver's server application gets
//! the request (once per exchange: the endpoint suppresses duplicates).
//! Uri-Host is omitted, as clients do when the host is an IP literal.

use super::{Ev, World};
use crate::net::ip;
use crate::net::packet::{PacketMeta, NO_FLOW};
use crate::proto::coap::{Config, Endpoint, Event, MessageType, Method, Request, RequestHandle};
use crate::scenario::model::Reliability;
use crate::sim::{EventQueue, SimRng, SimTime};
use std::net::SocketAddrV4;

/// What the world remembers about an outstanding request.
#[derive(Debug, Clone, Copy)]
pub(crate) struct CoapReq {
    flow: u32,
    counted: bool,
}

/// Per-node CoAP state (allocated only for nodes in CoAP flows).
#[derive(Debug)]
pub(crate) struct CoapNode {
    pub(crate) ep: Endpoint,
    /// When the endpoint's timer is scheduled, and its generation.
    timer: Option<SimTime>,
    gen: u32,
}

fn kind(ty: MessageType) -> &'static str {
    match ty {
        MessageType::Con => "coap_con",
        MessageType::Non => "coap_non",
        MessageType::Ack => "coap_ack",
        MessageType::Rst => "coap_rst",
    }
}

impl World<'_> {
    fn coap_addr(&self, node: usize) -> SocketAddrV4 {
        SocketAddrV4::new(ip::node_addr(node), self.sc.protocols.coap.port)
    }

    fn coap_node(&mut self, node: usize) -> &mut CoapNode {
        let seed = self.sc.seed;
        let params = &self.sc.protocols.coap;
        let name = &self.names[node];
        self.coap[node].get_or_insert_with(|| {
            let mut rng = SimRng::stream(seed, &format!("coap/{name}"));
            // RFC 7252 §4.4: the initial message ID should be randomised
            let first_mid = rng.below(1 << 16) as u16;
            Box::new(CoapNode {
                ep: Endpoint::new(Config::from(params), rng, first_mid),
                timer: None,
                gen: 0,
            })
        })
    }

    /// Publish one message of a CoAP flow: one request per intended receiver.
    pub(crate) fn coap_publish(
        &mut self,
        now: SimTime,
        q: &mut EventQueue<Ev>,
        p: usize,
        receivers: &[u32],
        counted: bool,
    ) {
        let fi = self.publishers[p].flow as usize;
        let node = self.publishers[p].node as usize;
        let flow = &self.sc.flows[fi];
        let confirmable = matches!(flow.reliability, Reliability::Confirmed | Reliability::Con);
        // one reusable request: path and payload copied into its buffers
        let mut req =
            std::mem::replace(&mut self.coap_req, Request::new(Method::Put, String::new()));
        req.method = Method::Put;
        req.confirmable = confirmable;
        req.content_format = Some(42); // application/octet-stream
        req.path.clear();
        req.path.push_str(&self.publishers[p].topic);
        req.payload.clear();
        req.payload.extend_from_slice(&self.payload);
        for &r in receivers {
            let to = self.coap_addr(r as usize);
            let h = self.coap_node(node).ep.request(now, to, &req);
            if let Ok(h) = h {
                self.coap_reqs.insert(
                    (node as u32, h.0),
                    CoapReq {
                        flow: fi as u32,
                        counted,
                    },
                );
            }
            let ctx = PacketMeta {
                flow: fi as u32,
                kind: "coap",
                counted,
                created: now,
                ..Default::default()
            };
            self.coap_drive(now, q, node, ctx);
        }
        self.coap_req = req;
    }

    /// A CoAP datagram arrived at `node`.
    pub(crate) fn coap_input(
        &mut self,
        now: SimTime,
        q: &mut EventQueue<Ev>,
        node: usize,
        from: SocketAddrV4,
        data: &[u8],
        meta: PacketMeta,
    ) {
        let ep = &mut self.coap_node(node).ep;
        let dups = ep.stats().duplicates_suppressed;
        ep.handle_datagram(now, from, data);
        let new_dups = ep.stats().duplicates_suppressed - dups;
        if new_dups > 0 && meta.counted {
            if let Some(s) = self.flow_stats(meta.flow) {
                s.duplicates_suppressed += new_dups;
            }
        }
        self.coap_drive(now, q, node, meta);
    }

    pub(crate) fn on_coap_timer(
        &mut self,
        now: SimTime,
        q: &mut EventQueue<Ev>,
        node: usize,
        gen: u32,
    ) {
        let Some(c) = self.coap[node].as_mut() else {
            return;
        };
        if c.gen != gen {
            return; // superseded timer
        }
        c.timer = None;
        c.ep.handle_timeout(now);
        let ctx = PacketMeta {
            flow: NO_FLOW,
            kind: "coap",
            counted: now >= SimTime::ZERO + self.sc.warmup,
            created: now,
            ..Default::default()
        };
        self.coap_drive(now, q, node, ctx);
    }

    /// Poll the endpoint of `node` in the documented order: transmits, events,
    /// timer. `ctx` attributes packets that belong to no request of ours (e.g.
    /// the ACK answering an incoming request belongs to that request's flow).
    fn coap_drive(&mut self, now: SimTime, q: &mut EventQueue<Ev>, node: usize, ctx: PacketMeta) {
        if !self.nodes[node].up {
            return;
        }
        let mut buf = std::mem::take(&mut self.payload_out);
        while let Some(info) = self.coap[node]
            .as_mut()
            .and_then(|c| c.ep.poll_transmit(now, &mut buf))
        {
            let owner = info
                .request
                .and_then(|h| self.coap_reqs.get(&(node as u32, h.0)).copied());
            let (flow, counted) = match owner {
                Some(o) => (o.flow, o.counted),
                None => (ctx.flow, ctx.counted),
            };
            if counted {
                if let Some(s) = self.flow_stats(flow) {
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
            let Some(dst) = ip::addr_node(*info.to.ip()) else {
                continue;
            };
            let app = crate::proto::coap::MessageRef::parse(&buf).map_or(0, |m| m.payload.len());
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
            std::mem::swap(&mut self.payload, &mut buf);
            let port = self.sc.protocols.coap.port;
            let pkt = self.new_udp_packet(node, dst, port, info.to.port(), meta);
            std::mem::swap(&mut self.payload, &mut buf);
            if let Some(pkt) = pkt {
                self.ip_output(now, q, node, pkt);
            }
        }
        self.payload_out = buf;
        while let Some(ev) = self.coap[node].as_mut().and_then(|c| c.ep.poll_event()) {
            self.coap_event(now, node, &ev);
            if let Some(c) = self.coap[node].as_mut() {
                c.ep.recycle(ev);
            }
        }
        if let Some(c) = self.coap[node].as_mut() {
            let want = c.ep.poll_timeout();
            if want.is_some() && want != c.timer {
                c.gen = c.gen.wrapping_add(1);
                c.timer = want;
                if let Some(t) = want {
                    let _ = q.push(
                        t.max(now),
                        Ev::CoapTimer {
                            node: node as u32,
                            gen: c.gen,
                        },
                    );
                }
            }
        }
    }

    fn finish_req(&mut self, node: usize, h: RequestHandle) -> Option<CoapReq> {
        self.coap_reqs.remove(&(node as u32, h.0))
    }

    fn coap_event(&mut self, now: SimTime, node: usize, ev: &Event) {
        match ev {
            Event::RequestReceived { payload, .. } => {
                if let Some((flow, msg)) = crate::app::workload::parse_payload(payload) {
                    self.recorder
                        .on_receive(now, flow as usize, msg, node as u32);
                }
            }
            Event::ResponseReceived { handle, .. } | Event::NoResponse { handle } => {
                self.finish_req(node, *handle);
            }
            Event::GaveUp { handle } => {
                if let Some(r) = self.finish_req(node, *handle) {
                    if r.counted {
                        if let Some(s) = self.flow_stats(r.flow) {
                            s.give_ups += 1;
                        }
                    }
                }
            }
            Event::ResetReceived { handle } => {
                self.finish_req(node, *handle);
            }
        }
    }

    /// A crash loses the endpoint's volatile state (exchanges, dedup cache).
    pub(crate) fn coap_crash(&mut self, node: usize) {
        self.coap[node] = None;
        let n = node as u32;
        self.coap_reqs.retain(|k, _| k.0 != n);
    }
}
