//! `protocol = "tcp"` flows (docs/protocols.md): each publisher keeps one
//! connection per intended receiver to `[protocols.tcp] port`, opened at its
//! first message and reopened at the next message after a failure. Messages
//! are written back to back into the stream (each is the application payload
//! with its 6-byte header, whose flow index gives the message length); bytes
//! the send buffer cannot take yet wait in the host's application backlog,
//! and that waiting counts in latency. A message counts as delivered when
//! the receiver's application has read all of its bytes; messages still
//! buffered when a connection fails are lost with it.
//!
//! A `timing = "bulk"` publisher is a saturating source (iperf-like): it
//! connects at its start time and writes a whole new message whenever the
//! send buffer has room for one, until the publishing window (or `count`)
//! ends; it stops when its connection fails.

use super::tags::Tags;
use super::{Ctx, Message, Plugin};
use crate::app::workload::APP_HEADER_LEN;
use crate::scenario::model::{Protocol, Scenario, Timing};
use crate::sim::SimTime;
use crate::world::host::{SockId, SockOpts, StreamApp, StreamEvent};
use std::collections::BTreeMap;

/// What one of the plug-in's sockets is.
#[derive(Debug)]
enum Conn {
    /// Publisher `publisher`'s connection for (flow, node, receiver).
    Sender {
        key: (u32, u32, u32),
        publisher: u32,
    },
    /// An accepted connection and the bytes of a message not yet complete.
    Receiver { rx: Vec<u8> },
}

#[derive(Debug, Default)]
struct TcpFlows {
    /// Socket tag → what it is.
    conns: Tags<Conn>,
    /// (flow, publisher node, receiver node) → its sender socket.
    senders: BTreeMap<(u32, u32, u32), SockId>,
}

pub(super) fn new(_: &Scenario) -> Box<dyn Plugin> {
    Box::<TcpFlows>::default()
}

/// Bytes of one message of flow `f` in the stream.
fn message_len(sc: &Scenario, flow: usize) -> Option<usize> {
    match sc.flows.get(flow) {
        Some(f) if f.protocol == Protocol::Tcp => {
            Some((f.payload_bytes as usize).max(APP_HEADER_LEN))
        }
        _ => None,
    }
}

impl TcpFlows {
    /// Connect publisher `p` (on `node`, of `flow`) to receiver `r`.
    fn open(
        &mut self,
        ctx: &mut Ctx<'_, '_>,
        (flow, node, r): (u32, u32, u32),
        publisher: usize,
        opts: SockOpts,
    ) -> Option<SockId> {
        let port = ctx.scenario().protocols.tcp.port;
        let tag = self.conns.add(Conn::Sender {
            key: (flow, node, r),
            publisher: publisher as u32,
        });
        match ctx.tcp_connect(node as usize, (r as usize, port), flow, tag, opts) {
            Some(s) => {
                self.senders.insert((flow, node, r), s);
                Some(s)
            }
            None => {
                // could not even start (closed at once)
                self.conns.remove(tag);
                None
            }
        }
    }
}

impl Plugin for TcpFlows {
    fn setup(&mut self, ctx: &mut Ctx<'_, '_>) {
        let sc = ctx.scenario();
        let port = sc.protocols.tcp.port;
        let opts = SockOpts {
            payload_only: true,
            want_writable: false,
            security: crate::world::host::Security::None,
        };
        for f in sc.flows.iter().filter(|f| f.protocol == Protocol::Tcp) {
            for &r in &f.receivers {
                ctx.tcp_listen(r, port, 0, opts);
            }
        }
    }

    fn publish(&mut self, ctx: &mut Ctx<'_, '_>, msg: Message<'_>) {
        let opts = SockOpts {
            payload_only: true,
            want_writable: false,
            security: crate::world::host::Security::None,
        };
        for &r in msg.receivers {
            if r == msg.node {
                ctx.deliver(r, msg.payload);
                continue;
            }
            let k = (msg.flow as u32, msg.node, r);
            let sock = match self.senders.get(&k) {
                Some(&s) => s,
                None => match self.open(ctx, k, msg.publisher, opts) {
                    Some(s) => s,
                    None => continue,
                },
            };
            ctx.tcp_write(sock, msg.payload, None, None);
            ctx.tcp_drive(sock);
        }
    }

    fn start_source(&mut self, ctx: &mut Ctx<'_, '_>, publisher: usize) {
        let (flow, node) = {
            let pb = ctx.publisher(publisher);
            (pb.flow, pb.node)
        };
        let mut receivers = Vec::with_capacity(1);
        ctx.intended(publisher, &mut receivers);
        let Some(&r) = receivers.first() else {
            return;
        };
        if r == node || self.senders.contains_key(&(flow, node, r)) {
            return;
        }
        let opts = SockOpts {
            payload_only: true,
            want_writable: true,
            security: crate::world::host::Security::None,
        };
        self.open(ctx, (flow, node, r), publisher, opts);
    }

    fn stream_app(&mut self) -> Option<&mut dyn StreamApp> {
        Some(self)
    }
}

impl StreamApp for TcpFlows {
    fn on_accept(&mut self, _ctx: &mut Ctx<'_, '_>, _sock: SockId, _listen_tag: u32) -> u32 {
        self.conns.add(Conn::Receiver { rx: Vec::new() })
    }

    fn on_stream(&mut self, ctx: &mut Ctx<'_, '_>, sock: SockId, tag: u32, ev: StreamEvent<'_>) {
        match ev {
            StreamEvent::Data(d) => {
                let node = ctx.tcp_node(sock).unwrap_or(u32::MAX);
                let Some(Conn::Receiver { rx }) = self.conns.get_mut(tag) else {
                    return; // the sender side of a flow expects no data
                };
                rx.extend_from_slice(d);
                let mut at = 0;
                let mut bad = false;
                while let Some((flow, msg)) = crate::app::workload::parse_payload(&rx[at..]) {
                    let Some(len) = message_len(ctx.scenario(), flow as usize) else {
                        bad = true;
                        break;
                    };
                    if rx.len() - at < len {
                        break;
                    }
                    ctx.deliver_message(flow as usize, msg, node);
                    at += len;
                }
                rx.drain(..at);
                if bad {
                    // framing lost: the stream cannot be resynchronised
                    self.conns.remove(tag);
                    ctx.tcp_abort(sock);
                }
            }
            StreamEvent::Ended(_) => {
                if let Some(Conn::Receiver { rx }) = self.conns.get_mut(tag) {
                    rx.clear();
                }
            }
            StreamEvent::Released => {
                if let Some(Conn::Sender { key, .. }) = self.conns.remove(tag) {
                    if self.senders.get(&key) == Some(&sock) {
                        self.senders.remove(&key);
                    }
                }
            }
            StreamEvent::Connected | StreamEvent::PeerClosed => {}
        }
    }

    fn on_writable(&mut self, ctx: &mut Ctx<'_, '_>, sock: SockId, tag: u32) {
        let Some(Conn::Sender { publisher, .. }) = self.conns.get(tag) else {
            return;
        };
        let p = *publisher as usize;
        let (flow, sent) = {
            let pb = ctx.publisher(p);
            (pb.flow as usize, pb.sent)
        };
        let sc = ctx.scenario();
        let f = &sc.flows[flow];
        if f.timing != Timing::Bulk {
            return;
        }
        let len = (f.payload_bytes as usize).max(APP_HEADER_LEN);
        let end = SimTime::ZERO + sc.duration;
        let mut sent = sent;
        let mut wrote = false;
        while ctx.tcp_send_room(sock) >= len && ctx.now() < end && f.count.is_none_or(|c| sent < c)
        {
            ctx.compose(p);
            sent += 1;
            ctx.tcp_write_payload(sock);
            wrote = true;
        }
        if wrote {
            ctx.flush_records();
        }
    }
}
